//! The lab screen: terminal set-up, the event loop, and the threads that feed it.
//!
//! One channel carries everything the lab reacts to: key/mouse/resize events from the input
//! thread and [`TrainEvent`]s from every trainer thread. The loop applies them to [`App`],
//! carries out the resulting [`Effect`]s, and redraws at most every [`FRAME`].

pub mod app;
pub mod diagram;
pub mod ui;

use std::collections::HashMap;
use std::io::Stdout;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::Terminal;

use crate::data::{Dataset, PreparedData};
use crate::train::{self, RunHandle, TrainEvent};
use app::{App, Effect};

/// Shortest time between two redraws (at most 20 frames a second).
pub const FRAME: Duration = Duration::from_millis(50);
/// Share of the training set held out for validation in lab runs.
pub const VAL_FRACTION: f64 = 0.1;

/// Everything the lab loop reacts to.
#[derive(Debug)]
pub enum AppEvent {
    Input(Event),
    Train {
        run: usize,
        event: TrainEvent,
    },
    /// The input thread could not read the terminal.
    InputFailed(String),
}

/// Options of the lab.
#[derive(Clone, Debug)]
pub struct LabOptions {
    pub ascii: bool,
    /// Runs trained at the same time; later ones queue.
    pub parallel: usize,
    /// Where runs train.
    pub device: crate::device::Device,
    /// Shown at start (e.g. why `auto` chose the CPU).
    pub note: Option<String>,
}

fn restore_terminal() {
    // Best effort: each step may fail independently if the terminal is already gone.
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        DisableMouseCapture,
        crossterm::cursor::Show
    );
}

/// Restores the terminal before a panic message of the lab's own thread is printed. Other
/// threads stay quiet: trainers (and their worker pools) catch their panics and report them
/// as failed runs, and nothing may print over the screen while the lab owns it.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some("main") {
            return;
        }
        restore_terminal();
        previous(info);
    }));
}

/// Opens the lab on the real terminal, runs it until the user quits, restores the terminal.
pub fn run(data: Dataset, options: LabOptions) -> Result<()> {
    enable_raw_mode().context("cannot put the terminal in raw mode (is this a terminal?)")?;
    install_panic_hook();
    let mut stdout = std::io::stdout();
    if let Err(e) = execute!(stdout, EnterAlternateScreen, EnableMouseCapture) {
        restore_terminal();
        return Err(e).context("cannot open the alternate screen");
    }
    let result = (|| {
        let mut terminal: Terminal<CrosstermBackend<Stdout>> =
            Terminal::new(CrosstermBackend::new(stdout))?;
        terminal.clear()?;
        let (tx, rx) = mpsc::channel();
        spawn_input_thread(tx.clone());
        let mut app = App::new(data.shape, data.class_names.len(), &data.name);
        app.ascii = options.ascii;
        app.parallel = options.parallel.max(1);
        app.device = options.device;
        app.message = options.note.clone();
        start(&mut terminal, app, Arc::new(data), tx, rx).map(|_| ())
    })();
    restore_terminal();
    result
}

fn spawn_input_thread(tx: Sender<AppEvent>) {
    std::thread::Builder::new()
        .name("skiplab-input".into())
        .spawn(move || loop {
            let message = match event::read() {
                Ok(ev) => AppEvent::Input(ev),
                Err(e) => AppEvent::InputFailed(e.to_string()),
            };
            let failed = matches!(message, AppEvent::InputFailed(_));
            if tx.send(message).is_err() || failed {
                break;
            }
        })
        .expect("spawning the input thread");
}

/// The lab loop on any backend (tests pass ratatui's `TestBackend`). Returns the final
/// state when the user quits or every sender is gone.
pub fn start<B: Backend>(
    terminal: &mut Terminal<B>,
    mut app: App,
    data: Arc<Dataset>,
    tx: Sender<AppEvent>,
    rx: Receiver<AppEvent>,
) -> Result<App> {
    let mut lab = Lab {
        handles: HashMap::new(),
        prepared: HashMap::new(),
        data,
        tx,
    };
    terminal.draw(|f| ui::draw(f, &mut app))?;
    let mut last_draw = Instant::now();
    while let Ok(first) = rx.recv() {
        let mut quit = lab.apply(&mut app, first)?;
        // Take everything that is already waiting, then wait out the rest of the frame.
        while !quit {
            let wait = FRAME.saturating_sub(last_draw.elapsed());
            match rx.recv_timeout(wait) {
                Ok(ev) => quit = lab.apply(&mut app, ev)?,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if quit {
            break;
        }
        terminal.draw(|f| ui::draw(f, &mut app))?;
        last_draw = Instant::now();
    }
    for handle in lab.handles.into_values() {
        handle.stop();
        handle.join();
    }
    Ok(app)
}

/// What the loop owns besides the app state: the trainer threads.
struct Lab {
    handles: HashMap<usize, RunHandle>,
    prepared: HashMap<u64, Arc<PreparedData>>,
    data: Arc<Dataset>,
    tx: Sender<AppEvent>,
}

impl Lab {
    /// Applies one event; returns true when the lab should close.
    fn apply(&mut self, app: &mut App, event: AppEvent) -> Result<bool> {
        let effects = match event {
            AppEvent::Input(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                app.handle_key(key)
            }
            AppEvent::Input(Event::Mouse(mouse)) => {
                app.handle_mouse(mouse);
                Vec::new()
            }
            AppEvent::Input(_) => Vec::new(),
            AppEvent::Train { run, event } => {
                let ended = matches!(event, TrainEvent::Ended { .. });
                let effects = app.handle_train_event(run, event);
                if ended {
                    if let Some(handle) = self.handles.remove(&run) {
                        handle.join();
                    }
                }
                effects
            }
            AppEvent::InputFailed(message) => anyhow::bail!("cannot read the terminal: {message}"),
        };
        let mut pending = effects;
        while let Some(effect) = (!pending.is_empty()).then(|| pending.remove(0)) {
            match effect {
                Effect::Quit => return Ok(true),
                Effect::Send(run, command) => {
                    if let Some(handle) = self.handles.get(&run) {
                        handle.send(command);
                    }
                }
                Effect::Start(run) => pending.extend(self.start_run(app, run)),
            }
        }
        Ok(false)
    }

    fn start_run(&mut self, app: &mut App, id: usize) -> Vec<Effect> {
        let Some(run) = app.runs.iter().find(|r| r.id == id) else {
            return Vec::new();
        };
        let seed = run.config.seed;
        let data = self
            .prepared
            .entry(seed)
            .or_insert_with(|| Arc::new(PreparedData::prepare(&self.data, VAL_FRACTION, seed)))
            .clone();
        let tx = self.tx.clone();
        let sink = move |event: TrainEvent| tx.send(AppEvent::Train { run: id, event }).is_ok();
        match train::spawn(
            run.topology.clone(),
            data,
            run.config.clone(),
            app.device,
            sink,
        ) {
            Ok(handle) => {
                self.handles.insert(id, handle);
                Vec::new()
            }
            Err(e) => app.run_failed_to_start(id, e.to_string()),
        }
    }
}

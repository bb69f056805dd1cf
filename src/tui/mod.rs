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

use std::path::PathBuf;

use crate::data::store::write_atomically;
use crate::data::{Dataset, PreparedData};
use crate::experiment::{list_presets, Experiment};
use crate::runs;
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
    /// Where presets are listed and saved.
    pub presets_dir: PathBuf,
    /// Where every run is saved; `None` saves nothing.
    pub saves_dir: Option<PathBuf>,
    /// The preset the lab opens with (its name and experiment).
    pub preset: Option<(String, Experiment)>,
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
        app.presets_dir = options.presets_dir.clone();
        app.saves_dir = options.saves_dir.clone();
        if let Some((name, experiment)) = &options.preset {
            app.load_experiment(name, experiment);
        }
        if options.note.is_some() {
            app.message = options.note.clone();
        }
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
                Effect::ListPresets => app.show_presets(
                    list_presets(&app.presets_dir)
                        .into_iter()
                        .map(|p| app::PresetItem {
                            name: p.name,
                            experiment: p.experiment.map_err(|e| {
                                // The file is named in the list already; keep line:col.
                                e.to_string()
                            }),
                        })
                        .collect(),
                ),
                Effect::SavePreset(name) => {
                    let result = save_preset(&app.presets_dir, &name, &app.experiment());
                    app.preset_saved(result);
                }
                Effect::ListSavedRuns => {
                    let saves = app
                        .saves_dir
                        .clone()
                        .unwrap_or_else(|| PathBuf::from("saves"));
                    app.show_saved_runs(
                        runs::list_runs(&saves)
                            .into_iter()
                            .map(saved_item)
                            .collect(),
                    );
                }
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
        let (topology, config) = (run.topology.clone(), run.config.clone());
        let spawned = match &app.saves_dir {
            Some(saves) => {
                let experiment =
                    Experiment::from_parts(&topology, app.dataset, &config, VAL_FRACTION);
                let recorder = runs::create_run_dir(saves, "lab").and_then(|(_, dir)| {
                    runs::Recorder::start(
                        sink.clone(),
                        dir,
                        &experiment,
                        &topology,
                        &app.device.to_string(),
                    )
                });
                match recorder {
                    Ok(recorder) => train::spawn(topology, data, config, app.device, recorder),
                    Err(e) => {
                        app.message = Some(format!("run-{id} is not saved: {e}"));
                        train::spawn(topology, data, config, app.device, sink)
                    }
                }
            }
            None => train::spawn(topology, data, config, app.device, sink),
        };
        match spawned {
            Ok(handle) => {
                self.handles.insert(id, handle);
                Vec::new()
            }
            Err(e) => app.run_failed_to_start(id, e.to_string()),
        }
    }
}

/// Writes `presets/<name>.ron`, refusing to overwrite an existing preset.
fn save_preset(
    dir: &std::path::Path,
    name: &str,
    experiment: &Experiment,
) -> Result<PathBuf, String> {
    let path = dir.join(format!("{name}.ron"));
    if path.exists() {
        return Err(format!("{} exists; choose another name", path.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    write_atomically(&path, experiment.to_ron().as_bytes()).map_err(|e| e.to_string())?;
    Ok(path)
}

/// A saved run as a line of the loader and as a runs-table entry.
fn saved_item(run: Result<runs::SavedRun, runs::RunError>) -> app::SavedItem {
    use crate::train::RunStatus;
    match run {
        Err(e) => app::SavedItem {
            label: format!("unreadable: {e}"),
            run: Err(e.to_string()),
        },
        Ok(saved) => {
            let best = saved
                .summary
                .best_val_accuracy
                .map_or("-".into(), |v| format!("{:.2}%", 100.0 * v));
            let topology = saved.experiment.topology();
            let label = format!(
                "{:<36} {:<14} {:<44} best val {best:>7}  {}",
                saved.id,
                saved.experiment.dataset.as_str(),
                topology
                    .as_ref()
                    .map_or("invalid topology".into(), |t| t.summary()),
                saved.summary.status,
            );
            let run = topology.map_err(|e| e.to_string()).map(|topology| {
                let status = match saved.summary.status.as_str() {
                    "finished" => RunStatus::Finished,
                    "stopped" | "running" => RunStatus::Stopped,
                    other => RunStatus::Failed(other.to_string()),
                };
                app::Run {
                    id: 0,
                    name: saved.id.clone(),
                    topology,
                    config: saved.experiment.train_config(),
                    state: app::RunState::Ended(status),
                    epochs: saved.epochs.iter().map(|r| r.to_metrics()).collect(),
                    progress: None,
                    test_accuracy: saved.summary.test_accuracy,
                    skips_enabled_after: saved.summary.skips_enabled_after,
                }
            });
            app::SavedItem { label, run }
        }
    }
}

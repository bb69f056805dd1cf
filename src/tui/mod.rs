//! The lab screen: terminal set-up, the event loop, and the threads that feed it.
//!
//! One channel carries everything the lab reacts to: key/mouse/resize events from the input
//! thread and [`TrainEvent`]s from every trainer thread. The loop applies them to [`App`],
//! carries out the resulting [`Effect`]s, and redraws at most every [`FRAME`].

pub mod app;
pub mod context;
pub mod keys;
pub mod run_list;
pub mod studies;
pub mod ui;
pub mod views;
pub mod widgets;

use std::io::Stdout;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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

use crate::data::store::write_atomically;
use crate::data::DatasetName;
use crate::experiment::Experiment;
use crate::runs;
use crate::session::{Message, Outlet, RunRequest, Session, Settings, Threads};
use app::{App, Effect};

/// Shortest time between two redraws (at most 20 frames a second).
pub const FRAME: Duration = Duration::from_millis(50);
pub use context::VAL_FRACTION;

/// Everything the lab loop reacts to.
#[derive(Debug)]
pub enum AppEvent {
    Input(Event),
    /// A trainer's event for the session, or a signal.
    Session(Message),
    /// The saved runs, read off the lab's thread.
    SavedRuns(Vec<views::browser::BrowserItem>),
    /// The input thread could not read the terminal.
    InputFailed(String),
    /// An analysis's progress or result, computed off the lab's thread.
    Analysis(views::analysis::AnalysisUpdate),
    /// What changed in the watched saves folders (`--watch`).
    Watched(Vec<crate::watch::WatchEvent>),
}

/// Options of the lab.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Where the lab's log goes (`skiplab.log`).
    pub log_dir: PathBuf,
    pub ascii: bool,
    /// Colours (the theme, or none under NO_COLOR).
    pub colours: app::Colours,
    /// The keys (the config file's bindings over the defaults).
    pub keys: keys::KeyTable,
    /// Runs trained at the same time; later ones queue.
    pub parallel: usize,
    /// Where runs train.
    pub device: crate::device::Device,
    /// Shown at start (e.g. why `auto` chose the CPU).
    pub note: Option<String>,
    /// What runs train on, and where data sets other than the built-in one are.
    pub dataset: DatasetName,
    pub data_dir: PathBuf,
    /// Where presets are listed and saved.
    pub presets_dir: PathBuf,
    /// Where every run is saved; `None` saves nothing.
    pub saves_dir: Option<PathBuf>,
    /// Where `L` reads saved runs (the saves folder first; empty: `saves`).
    pub read_saves: Vec<PathBuf>,
    /// The preset the lab opens with (its name and experiment).
    pub preset: Option<(String, Experiment)>,
    /// Follow the saves folders (`read_saves`) as other processes write them.
    pub watch: Option<crate::watch::WatchOptions>,
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
fn install_panic_hook(log: Option<PathBuf>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(
            "panic in thread {:?}: {info}",
            std::thread::current().name()
        );
        if std::thread::current().name() != Some("main") {
            return;
        }
        restore_terminal();
        previous(info);
        if let Some(log) = &log {
            eprintln!("skiplab: the lab's log is {}", log.display());
        }
    }));
}

/// Logs to `dir/skiplab.log` (appended; `SKIPLAB_LOG` filters, default `info`) while the
/// lab runs: the screen is the lab's, so this is where full messages and panics go. Returns
/// the log's path and the guard that flushes it, or `None` when the folder cannot be made.
pub fn start_log(
    dir: &std::path::Path,
) -> Option<(PathBuf, tracing_appender::non_blocking::WorkerGuard)> {
    std::fs::create_dir_all(dir).ok()?;
    let appender = tracing_appender::rolling::never(dir, "skiplab.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKIPLAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some((dir.join("skiplab.log"), guard))
}

/// Where the lab's trainers post: into the lab's one channel.
pub fn outlet(tx: Sender<AppEvent>) -> Outlet {
    Arc::new(move |m| tx.send(AppEvent::Session(m)).is_ok())
}

/// Opens the lab on the real terminal, runs it until the user quits (or a signal arrives:
/// it is returned), restores the terminal.
pub fn run(options: LabOptions) -> Result<Option<i32>> {
    let log = start_log(&options.log_dir);
    tracing::info!(
        "lab started: skiplab {}, data {}, device {}",
        env!("CARGO_PKG_VERSION"),
        options.dataset,
        options.device
    );
    enable_raw_mode().context("cannot put the terminal in raw mode (is this a terminal?)")?;
    install_panic_hook(log.as_ref().map(|(path, _)| path.clone()));
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
        let signal_tx = tx.clone();
        crate::session::forward_signals(move |signal| {
            let _ = signal_tx.send(AppEvent::Session(Message::Signal(signal)));
        })?;
        let mut settings = Settings::new(
            options.device,
            options.data_dir.clone(),
            options.saves_dir.clone(),
        );
        settings.slots = options.parallel.max(1);
        let session = Session::new(settings, Box::new(Threads), outlet(tx.clone()))?;
        let dataset = options.dataset;
        let mut app = App::new(dataset.input_shape(), dataset.classes(), dataset.as_str());
        app.cx.ascii = options.ascii;
        app.cx.colours = options.colours;
        app.cx.keys = options.keys.clone();
        app.cx.device = options.device;
        app.cx.presets_dir = options.presets_dir.clone();
        app.cx.data_dir = options.data_dir.clone();
        app.cx.saves_dir = options.saves_dir.clone();
        app.cx.read_saves = options.read_saves.clone();
        if let Some((name, experiment)) = &options.preset {
            app.load_experiment(name, experiment);
        }
        if options.note.is_some() {
            app.cx.message = options.note.clone();
        }
        if let Some(watch) = options.watch {
            spawn_watch_thread(app.cx.saved_run_folders(), watch, tx.clone())?;
        }
        start(&mut terminal, app, session, tx, rx).map(|app| app.ended_by_signal)
    })();
    restore_terminal();
    result
}

/// Follows `folders` on a thread of its own, sending what changed; it ends with the lab.
pub fn spawn_watch_thread(
    folders: Vec<PathBuf>,
    options: crate::watch::WatchOptions,
    tx: Sender<AppEvent>,
) -> Result<()> {
    std::thread::Builder::new()
        .name("skiplab-watch".into())
        .spawn(move || {
            let mut watcher = crate::watch::Watcher::new(folders, options);
            let mut events = watcher.scan();
            loop {
                if !events.is_empty() && tx.send(AppEvent::Watched(events)).is_err() {
                    return;
                }
                events = watcher.next(Duration::from_secs(1));
            }
        })
        .context("cannot start the watch thread")?;
    Ok(())
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

/// The lab loop on any backend (tests pass ratatui's `TestBackend`) with a session whose
/// trainers post into `rx` (see [`outlet`]). Returns the final state when the user quits,
/// a signal arrives or every sender is gone; every run is stopped and recorded first.
pub fn start<B: Backend>(
    terminal: &mut Terminal<B>,
    mut app: App,
    session: Session,
    tx: Sender<AppEvent>,
    rx: Receiver<AppEvent>,
) -> Result<App> {
    let mut lab = Lab {
        session,
        tx,
        analysis: Arc::default(),
    };
    terminal.draw(|f| ui::draw(f, &mut app))?;
    let mut last_draw = Instant::now();
    let result = (|| {
        while let Ok(first) = rx.recv() {
            let mut quit = lab.apply_logged(&mut app, first)?;
            // Take everything that is already waiting, then wait out the rest of the frame.
            while !quit {
                let wait = FRAME.saturating_sub(last_draw.elapsed());
                match rx.recv_timeout(wait) {
                    Ok(ev) => quit = lab.apply_logged(&mut app, ev)?,
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
        Ok(())
    })();
    // The log names every run the closing stopped, and why the lab closed.
    let why = match app.ended_by_signal {
        Some(signal) => format!("signal {signal}"),
        None => "quit".to_string(),
    };
    for run in lab.session.shutdown() {
        tracing::info!("run {run} ended: Stopped (the lab closed: {why})");
    }
    result.map(|()| app)
}

/// What the loop owns besides the app state: the session, a way back into the loop, and the
/// ticket of the analysis that may run (an analysis thread stops when it changes).
struct Lab {
    session: Session,
    tx: Sender<AppEvent>,
    analysis: Arc<AtomicU64>,
}

impl Lab {
    /// [`Lab::apply`], logging each new message line in full (the screen cuts it to its
    /// width) and every run's end.
    fn apply_logged(&mut self, app: &mut App, event: AppEvent) -> Result<bool> {
        let before = app.cx.message.clone();
        if let AppEvent::Session(Message::Run(
            run,
            crate::train::TrainEvent::Ended { status, .. },
        )) = &event
        {
            tracing::info!("run {run} ended: {status:?}");
        }
        let quit = self.apply(app, event)?;
        if app.cx.message != before {
            if let Some(message) = &app.cx.message {
                tracing::info!("message: {message}");
            }
        }
        Ok(quit)
    }

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
            AppEvent::Session(Message::Run(run, event)) => {
                for update in self.session.handle(run, event) {
                    app.on_session(update);
                }
                Vec::new()
            }
            AppEvent::Session(Message::Signal(signal)) => {
                app.ended_by_signal = Some(signal);
                return Ok(true);
            }
            AppEvent::SavedRuns(items) => {
                app.show_saved_runs(items);
                Vec::new()
            }
            AppEvent::InputFailed(message) => anyhow::bail!("cannot read the terminal: {message}"),
            AppEvent::Analysis(update) => {
                app.on_analysis(update);
                Vec::new()
            }
            AppEvent::Watched(events) => {
                app.on_watch(events);
                Vec::new()
            }
        };
        for effect in effects {
            match effect {
                Effect::Quit => return Ok(true),
                Effect::Submit(experiment) => {
                    // The lab starts runs only from its train form.
                    let origin = format!("{} (lab: train form)", crate::provenance::command_line());
                    let request = RunRequest::new(*experiment).from_origin(origin);
                    match self.session.submit_all(vec![request]) {
                        Ok(updates) => updates.into_iter().for_each(|u| app.on_session(u)),
                        Err(e) => app.submit_failed(e.to_string()),
                    }
                }
                Effect::Send(run, command) => {
                    for update in self.session.command(run, command) {
                        app.on_session(update);
                    }
                }
                Effect::ListPresets => app.show_presets(
                    crate::folders::list_all_presets(&app.cx.presets_dir)
                        .into_iter()
                        .map(|p| app::PresetItem {
                            name: p.name,
                            // The file is named in the list already; keep line:col.
                            experiment: p.experiment.map_err(|e| e.to_string()),
                        })
                        .collect(),
                ),
                Effect::SavePreset(name) => {
                    let result = save_preset(&app.cx.presets_dir, &name, &app.experiment());
                    app.preset_saved(result);
                }
                Effect::ExportCsv(csv) => {
                    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                        .to_string()
                        .replace(':', "");
                    let path = PathBuf::from(format!("skiplab-compare-{}.csv", &stamp[..17]));
                    app.cx.message = Some(match write_atomically(&path, csv.as_bytes()) {
                        Ok(()) => format!("wrote {}", path.display()),
                        Err(e) => format!("not exported: {e}"),
                    });
                }
                Effect::Analyse(request) => {
                    self.analysis.store(request.ticket, Ordering::SeqCst);
                    let (current, tx) = (Arc::clone(&self.analysis), self.tx.clone());
                    let (data_dir, device) = (app.cx.data_dir.clone(), app.cx.device);
                    std::thread::Builder::new()
                        .name("skiplab-analysis".into())
                        .spawn(move || {
                            let tell = |update| {
                                let _ = tx.send(AppEvent::Analysis(update));
                            };
                            let update =
                                studies::answer(&request, &data_dir, device, &current, &tell);
                            if current.load(Ordering::SeqCst) == request.ticket {
                                let _ = tx.send(AppEvent::Analysis(update));
                            }
                        })
                        .context("cannot start the analysis thread")?;
                }
                Effect::CancelAnalysis => self.analysis.store(0, Ordering::SeqCst),
                Effect::ListSavedRuns => {
                    // Hundreds of runs are read and parsed: not on the thread that draws.
                    let folders = app.cx.saved_run_folders();
                    let names: Vec<String> =
                        folders.iter().map(|f| f.display().to_string()).collect();
                    app.cx.message = Some(format!("reading saved runs in {}...", names.join(", ")));
                    let tx = self.tx.clone();
                    std::thread::spawn(move || {
                        let items = runs::list_runs_in(&folders).0.into_iter().map(saved_item);
                        let _ = tx.send(AppEvent::SavedRuns(items.collect()));
                    });
                }
            }
        }
        Ok(false)
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

/// A saved run as a line of the run browser and as a runs-table entry.
fn saved_item(run: Result<runs::SavedRun, runs::RunError>) -> views::browser::BrowserItem {
    use crate::train::RunStatus;
    match run {
        Err(e) => views::browser::BrowserItem {
            id: e.path.display().to_string(),
            best_val: None,
            status: "unreadable".into(),
            detail: String::new(),
            facets: Vec::new(),
            run: Err(e.message.clone()),
        },
        Ok(saved) => {
            let topology = saved.experiment.topology();
            let detail = format!(
                "{} {}",
                saved.experiment.dataset,
                topology
                    .as_ref()
                    .map_or("invalid topology".into(), |t| t.summary()),
            );
            // Left `Running` by a process: loaded, it is a snapshot that trains no more
            // here (`--watch` follows runs as they train).
            let run = run_list::Run::from_saved(&saved).map(|mut run| {
                if run.state.is_active() {
                    run.state = run_list::RunState::Ended(RunStatus::Stopped);
                }
                run
            });
            views::browser::BrowserItem {
                facets: crate::compare::facets(&saved.experiment, &saved.summary.resumed_after),
                id: saved.id,
                best_val: saved.summary.best_val_accuracy,
                status: saved.summary.status.word().to_string(),
                detail,
                run,
            }
        }
    }
}

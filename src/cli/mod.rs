//! The command line, one file per command. Each is a thin user of the library: anything that
//! trains goes through a [`Session`], followed by an observer (the table/JSON printer, the
//! reproduction report).

pub mod analyze;
pub mod bench;
pub mod compare;
pub mod config;
pub mod data;
pub mod export;
pub mod figures;
pub mod lab;
pub mod parity;
pub mod reproduce;
pub mod resume;
pub mod runs;
pub mod sweep;
pub mod train;
pub mod watch;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use skiplab::device::{self as devices, DeviceChoice};
use skiplab::session::print::Printer;
use skiplab::session::{
    forward_signals, Ending, Message, Observer, RunState, Session, SessionEvent, Settings,
};
use skiplab::train::RunStatus;

/// Exit codes, as the README documents them.
pub mod exit {
    /// Training stopped (or was refused midway) or failed.
    pub const STOPPED_OR_FAILED: u8 = 1;
    pub const BAD_ARGUMENTS: u8 = 2;
    pub const DIVERGED: u8 = 3;
    /// A data set, preset, run or file that is not there (or data that does not load).
    pub const MISSING: u8 = 4;
    /// Reading or writing failed (a full disk, no permission).
    pub const IO_FAILURE: u8 = 5;
    /// The reader of stdout went away (what a tool killed by SIGPIPE reports).
    pub const BROKEN_PIPE: u8 = 141;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// CUDA when a usable GPU is found (in a `--features cuda` build), else the CPU.
    Auto,
    Cpu,
    Cuda,
}

impl DeviceKind {
    /// The config file's device, else `auto` (a bad value is reported at start-up).
    pub fn configured() -> Self {
        DeviceKind::from_str(&skiplab::folders::default_device(), true).unwrap_or(DeviceKind::Auto)
    }
}

impl From<DeviceKind> for DeviceChoice {
    fn from(kind: DeviceKind) -> Self {
        match kind {
            DeviceKind::Auto => DeviceChoice::Auto,
            DeviceKind::Cpu => DeviceChoice::Cpu,
            DeviceKind::Cuda => DeviceChoice::Cuda,
        }
    }
}

/// Where a run trains, finds its data and is saved (shared by train, resume, reproduce).
#[derive(Args, Debug)]
pub struct Place {
    /// Where to train.
    #[arg(long, value_enum, default_value_t = DeviceKind::configured())]
    pub device: DeviceKind,
    /// Folder holding one folder per data set (see `skiplab data`): ./data when the current
    /// folder has one, else the config file's data_dir, else the platform's.
    #[arg(long, env = "SKIPLAB_DATA_DIR", default_value_os_t = skiplab::folders::default_data_dir())]
    pub data_dir: PathBuf,
    /// Where runs are saved, one folder each: ./saves when the current folder has one,
    /// else the config file's saves_dir, else the platform's.
    #[arg(long, env = "SKIPLAB_SAVES_DIR", default_value_os_t = skiplab::folders::default_saves())]
    pub saves: PathBuf,
}

/// Saves folders a command reads: `--saves A --saves B`, or a glob (`'cluster/*/saves'`)
/// for folders copied from several machines; a run id in two folders is read from the first.
#[derive(Args, Debug)]
pub struct Saves {
    /// Where saved runs are read from: repeat for several folders, or give a glob.
    #[arg(long = "saves", env = "SKIPLAB_SAVES_DIR", default_values_os_t = vec![skiplab::folders::default_saves()])]
    pub saves: Vec<PathBuf>,
}

impl Saves {
    /// The folders, globs expanded (one that matches nothing is an error naming it).
    pub fn folders(&self) -> Result<Vec<PathBuf>> {
        let mut folders = Vec::new();
        for pattern in &self.saves {
            let text = pattern.to_string_lossy();
            if !text.contains(['*', '?', '[']) {
                // A file where a folder is meant is a mistake to name, not an empty folder.
                if pattern.exists() && !pattern.is_dir() {
                    anyhow::bail!("--saves {text}: is a file, not a folder of saved runs");
                }
                folders.push(pattern.clone());
                continue;
            }
            let matched: Vec<PathBuf> = glob::glob(&text)
                .with_context(|| format!("--saves {text}: not a valid pattern"))?
                .flatten()
                .filter(|p| p.is_dir())
                .collect();
            if matched.is_empty() {
                anyhow::bail!("--saves {text}: no folder matches");
            }
            folders.extend(matched);
        }
        Ok(folders)
    }
}

/// A write to stdout failed; main tells a closed pipe (quiet exit) from other failures.
#[derive(Debug, thiserror::Error)]
#[error("cannot write to stdout: {0}")]
pub struct OutputError(io::Error);

/// Standard output whose failures say so: `println!` would panic on a closed pipe.
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        io::stdout().write(bytes).map_err(output_error)
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stdout().flush().map_err(output_error)
    }
}

fn output_error(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), OutputError(e))
}

/// `writeln!` to stdout, returning from the command on failure.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!($crate::cli::Stdout, $($arg)*)?
    };
}

/// What is wrong with the config file, checked whole: its own values (read by
/// [`skiplab::folders::config`]) and its key bindings (the lab's), naming the file.
pub fn config_problem() -> Option<String> {
    match skiplab::folders::config() {
        Err(e) => Some(e.clone()),
        Ok(c) => skiplab::tui::keys::KeyTable::with_bindings(&c.keys)
            .err()
            .map(|e| format!("{}: keys: {e}", skiplab::folders::config_path().display())),
    }
}

/// What `main` does with a command's error: the exit code, and the message if any.
pub fn report_error(e: &anyhow::Error) -> (ExitCode, Option<String>) {
    let output = e.chain().find_map(|c| {
        c.downcast_ref::<io::Error>()
            .filter(|io| io.get_ref().is_some_and(|inner| inner.is::<OutputError>()))
    });
    match output {
        Some(io) if io.kind() == io::ErrorKind::BrokenPipe => {
            (ExitCode::from(exit::BROKEN_PIPE), None)
        }
        Some(io) => (
            ExitCode::from(exit::STOPPED_OR_FAILED),
            Some(format!("error: {io}")),
        ),
        None => (
            ExitCode::from(failure_code(e)),
            Some(format!("error: {e:#}")),
        ),
    }
}

/// 4 for what is not there (a data set, a preset file, a saved run) or data that does not
/// load, 5 for a read or write that failed, else 2 (the request itself is wrong).
fn failure_code(e: &anyhow::Error) -> u8 {
    use skiplab::data::DataError;
    use skiplab::experiment::PresetError;
    use skiplab::runs::RunError;
    use skiplab::session::SessionError;
    let written = |message: &str| {
        [
            "cannot create",
            "cannot write",
            "cannot save",
            "cannot rename",
            "cannot clear",
        ]
        .iter()
        .any(|w| message.contains(w))
    };
    for cause in e.chain() {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::NotFound => exit::MISSING,
                _ => exit::IO_FAILURE,
            };
        }
        // Transparent variants hide their inner error from the chain: look inside.
        let session = cause.downcast_ref::<SessionError>();
        if let Some(SessionError::MissingData(_)) = session {
            return exit::MISSING;
        }
        let run = match session {
            Some(SessionError::Saves(r)) => Some(r),
            _ => cause.downcast_ref::<RunError>(),
        };
        if let Some(r) = run {
            if written(&r.message) {
                return exit::IO_FAILURE;
            }
            if !r.path.exists() {
                return exit::MISSING;
            }
        }
        if let Some(d) = cause.downcast_ref::<DataError>() {
            return if written(&d.message) {
                exit::IO_FAILURE
            } else {
                exit::MISSING
            };
        }
        if let Some(p) = cause.downcast_ref::<PresetError>() {
            if p.at.is_none() && !p.path.exists() {
                return exit::MISSING;
            }
        }
    }
    exit::BAD_ARGUMENTS
}

/// A headless session for `place`: runs are saved in `place.saves` unless `save` is false,
/// and SIGINT, SIGTERM and SIGHUP stop them.
pub fn headless(
    place: &Place,
    save: bool,
) -> Result<(Session, std::sync::mpsc::Receiver<Message>)> {
    headless_with_slots(place, save, 1)
}

/// [`headless`] training `slots` runs at once.
pub fn headless_with_slots(
    place: &Place,
    save: bool,
    slots: usize,
) -> Result<(Session, std::sync::mpsc::Receiver<Message>)> {
    let (device, note) = devices::resolve(place.device.into())?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let saves = save.then(|| place.saves.clone());
    // A saves folder that cannot be written is known before anything trains.
    if let Some(saves) = &saves {
        std::fs::create_dir_all(saves)
            .with_context(|| format!("cannot create the saves folder {}", saves.display()))?;
        tempfile::NamedTempFile::new_in(saves)
            .with_context(|| format!("cannot write into the saves folder {}", saves.display()))?;
    }
    let settings = Settings {
        slots,
        load_first: true,
        ..Settings::new(device, place.data_dir.clone(), saves)
    };
    let (session, tx, rx) = Session::headless(settings)?;
    forward_signals(move |signal| {
        let _ = tx.send(Message::Signal(signal));
    })?;
    Ok((session, rx))
}

/// Follows a session's runs (`first`: what submitting them returned) to the end with
/// `observer`; `Some(signal)` when a signal stopped them. Output that failed (a closed
/// pipe) is an error, after every run was stopped and recorded.
pub fn follow(
    session: &mut Session,
    inbox: &std::sync::mpsc::Receiver<Message>,
    first: Vec<SessionEvent>,
    observer: &mut dyn Observer,
) -> Result<Option<i32>> {
    match session.follow(inbox, first, observer) {
        Ending::OutputFailed(e) => Err(e.into()),
        Ending::Interrupted(signal) => Ok(Some(signal)),
        Ending::Finished => Ok(None),
    }
}

/// What a process stopped by `signal` reports: 128 + its number.
pub fn signal_exit(signal: i32) -> ExitCode {
    ExitCode::from((128 + signal) as u8)
}

/// 128 + the signal when interrupted; else 1 if a run stopped or failed, 3 if one diverged,
/// 0 when all finished.
pub fn exit_code(session: &Session, signal: Option<i32>) -> ExitCode {
    if let Some(signal) = signal {
        return signal_exit(signal);
    }
    let code = session
        .runs()
        .iter()
        .fold(0u8, |code, run| match &run.state {
            RunState::Ended(RunStatus::Finished) => code,
            RunState::Ended(RunStatus::Diverged { .. }) if code == 0 => exit::DIVERGED,
            RunState::Ended(RunStatus::Diverged { .. }) => code,
            _ => exit::STOPPED_OR_FAILED,
        });
    ExitCode::from(code)
}

/// The table printer on stdout (progress bars when stderr is a terminal), or JSON lines.
pub fn printer(json: bool, announce: bool) -> Printer<Stdout, io::Stderr> {
    Printer::new(
        Stdout,
        io::stderr(),
        json,
        io::stderr().is_terminal(),
        announce,
    )
}

/// How a watch follows the folders.
#[derive(Args, Clone, Debug)]
pub struct Follow {
    /// Watching: a run that says it trains but whose files have not changed for this long
    /// shows as stalled (a preempted task): `90s`, `10m`.
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration, default_value = "10m")]
    pub stall_after: std::time::Duration,
    /// Watching: poll the folders only, without file notification (they are polled anyway:
    /// NFS and Lustre do not notify one node of another's writes).
    #[arg(long)]
    pub poll: bool,
    /// Watching: exit once this many runs have ended (finished, failed, diverged, stopped or
    /// interrupted), e.g. the size of a job array.
    #[arg(long, value_name = "N")]
    pub until_ended: Option<usize>,
}

impl Follow {
    pub fn watcher(&self, folders: Vec<PathBuf>) -> skiplab::watch::Watcher {
        skiplab::watch::Watcher::new(
            folders,
            skiplab::watch::WatchOptions {
                stall_after: self.stall_after,
                notify: !self.poll,
            },
        )
    }
}

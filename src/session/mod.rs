//! The session: one owner for the life of every run, shared by the lab and the CLI.
//!
//! A run goes: request (an experiment, or a saved run to resume) → checked → queued → a
//! slot frees → its folder is made and its recorder set up → a trainer thread loads its
//! data (through the session's [`DataCache`]) and trains → the trainer's events come back
//! through the consumer's channel as [`Message`]s → [`Session::handle`] applies them and
//! returns [`SessionEvent`]s for the front end → the run ends with its [`Summary`], and the
//! next queued run starts.
//!
//! The session owns no thread and no terminal: the lab calls it from its event loop, the
//! headless commands through [`Session::follow`] with an [`Observer`] (the table or JSON
//! printer, the reproduction report). Trainers are started through a [`Spawner`], so tests
//! drive the session with scripted runs, and runs are written through
//! [`crate::runs::RunFiles`], so tests can make a disk fill up.

pub mod data;
pub mod print;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

pub use data::DataCache;

use crate::device::Device;
use crate::experiment::{Experiment, Resolved};
use crate::provenance::Provenance;
use crate::runs::{self, Disk, Recorder, RunError, RunFiles, SavedRun, Summary, Weights};
use crate::topology::Topology;
/// Where a run stands (one type from the trainer to the saved files).
pub use crate::train::RunState;
use crate::train::{
    self, Command, EpochMetrics, EventSink, FlowPoint, RunHandle, RunStatus, StepMetrics,
    TrainConfig,
};
use crate::train::{TrainEvent, TrainJob};

/// A run's number within its session (1, 2, ...); its saved id is another thing.
pub type RunId = usize;

/// How a session runs things.
#[derive(Clone)]
pub struct Settings {
    pub device: Device,
    /// Where data sets other than the built-in one are read from.
    pub data_dir: PathBuf,
    /// Where runs are saved, one folder each; `None` saves nothing.
    pub saves: Option<PathBuf>,
    /// Runs that train at once; the rest wait in the queue.
    pub slots: usize,
    /// How run folders are written.
    pub files: Arc<dyn RunFiles>,
    /// Load data sets when runs are submitted, refusing at once what the data cannot serve
    /// (headless commands); the lab leaves loading to the runs' threads.
    pub load_first: bool,
}

impl Settings {
    pub fn new(device: Device, data_dir: PathBuf, saves: Option<PathBuf>) -> Self {
        Self {
            device,
            data_dir,
            saves,
            slots: 1,
            files: Arc::new(Disk),
            load_first: false,
        }
    }
}

/// What to run.
pub struct RunRequest {
    experiment: Experiment,
    /// The network, where the experiment came resolved (checked) already.
    resolved: Option<Topology>,
    resume: Option<(SavedRun, Weights)>,
    /// A fixed run id (a sweep's) instead of one made from the time.
    folder: Option<String>,
    /// What asked for the run, for its provenance: this process's command line unless said.
    origin: Option<String>,
}

impl RunRequest {
    pub fn new(experiment: Experiment) -> Self {
        Self {
            experiment,
            resolved: None,
            resume: None,
            folder: None,
            origin: None,
        }
    }

    /// An experiment the front end resolved already (to name its own flags in errors): the
    /// session does not check it or build its network again.
    pub fn resolved(resolved: Resolved) -> Self {
        let (experiment, topology) = resolved.into_parts();
        Self {
            resolved: Some(topology),
            ..Self::new(experiment)
        }
    }

    /// Records `origin` (a lab action, say) as what started the run.
    pub fn from_origin(self, origin: impl Into<String>) -> Self {
        Self {
            origin: Some(origin.into()),
            ..self
        }
    }

    /// Saved as `saves/<id>` (see [`runs::create_named_run_dir`]: an unfinished attempt
    /// there is replaced).
    pub fn in_folder(self, id: impl Into<String>) -> Self {
        Self {
            folder: Some(id.into()),
            ..self
        }
    }

    /// `saved` for `epochs` more epochs, in its own folder, from its weights (checked to be
    /// its own first: see [`SavedRun::weights_to_resume`]).
    pub fn resume(saved: SavedRun, epochs: usize) -> Result<Self, RunError> {
        if runs::writer_gone(&saved.dir) == Some(false) {
            return Err(RunError {
                path: saved.dir.clone(),
                message:
                    "is being trained by another process right now; resume it once that has ended"
                        .into(),
            });
        }
        let weights = saved.weights_to_resume()?;
        // What the trainer runs: the further epochs, on the saved topology. (What the folder
        // will say the run is, all its epochs and where the optimiser restarted, the recorder
        // writes: see [`Recorder::resume`].)
        let mut experiment = saved.experiment.clone();
        experiment.epochs = epochs;
        // The saved topology is the one to go on with.
        experiment.schedule = None;
        Ok(Self {
            resume: Some((saved, weights)),
            ..Self::new(experiment)
        })
    }
}

/// A request the session refuses, before anything is allocated or written.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Refused(String),
    /// The data set is not in the data folder.
    #[error(transparent)]
    MissingData(#[from] crate::data::DataError),
    #[error(transparent)]
    Saves(#[from] RunError),
}

/// What a run trains, as the front ends show it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    pub experiment: Experiment,
    /// The network it starts with (skip*: the one it switches to; resume: the saved one).
    pub topology: Topology,
    pub config: TrainConfig,
}

/// A saved run's id and folder.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedAt {
    pub id: String,
    pub dir: PathBuf,
}

/// One run as the session keeps it.
pub struct Run {
    pub id: RunId,
    pub info: RunInfo,
    pub state: RunState,
    pub saved: Option<SavedAt>,
    /// The same figures `summary.ron` holds, over the whole run (a resumed run's saved epochs
    /// included).
    pub summary: Summary,
    /// Every epoch so far, a resumed run's saved ones first.
    pub epochs: Vec<EpochMetrics>,
    /// Every step point so far, likewise.
    pub steps: Vec<StepMetrics>,
    /// Every gradient-flow point so far, likewise.
    pub flows: Vec<FlowPoint>,
    handle: Option<RunHandle>,
    /// What only the start needs.
    resume: Option<(SavedRun, Weights)>,
    folder: Option<String>,
}

/// What happened to a run, for the front ends.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// Accepted; waits for a slot.
    Queued(Box<RunInfo>),
    /// Left the queue: it has its folder (when saved) and its thread.
    Starting { saved: Option<SavedAt> },
    /// The trainer's own report (never `Ended`: that arrives as [`Update::Ended`]).
    Train(TrainEvent),
    /// The last update of every run.
    Ended {
        status: RunStatus,
        summary: Box<Summary>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct SessionEvent {
    pub run: RunId,
    pub update: Update,
}

/// What arrives in the consumer's channel for the session.
#[derive(Debug)]
pub enum Message {
    /// A trainer's event, to pass to [`Session::handle`].
    Run(RunId, TrainEvent),
    /// SIGINT, SIGTERM or SIGHUP: the consumer stops every run.
    Signal(i32),
}

/// Where trainer threads post their events. Returning `false` (nobody listens any more)
/// stops the run.
pub type Outlet = Arc<dyn Fn(Message) -> bool + Send + Sync>;

/// Starts trainer threads (tests hand in one that scripts them).
pub trait Spawner: Send {
    fn spawn(&mut self, job: TrainJob, events: Box<dyn EventSink>) -> RunHandle;
}

/// The real thing: one thread per run (see [`train::spawn`]).
pub struct Threads;

impl Spawner for Threads {
    fn spawn(&mut self, job: TrainJob, events: Box<dyn EventSink>) -> RunHandle {
        train::spawn(job, events)
    }
}

/// A front end that follows a session headless.
pub trait Observer {
    /// Sees every update after the session applied it. An error (stdout closed) stops every
    /// run; the observer is not called again.
    fn update(&mut self, session: &Session, event: &SessionEvent) -> std::io::Result<()>;
}

/// Why [`Session::follow`] returned; every run has ended either way.
#[derive(Debug)]
pub enum Ending {
    Finished,
    /// A signal arrived and every run was stopped.
    Interrupted(i32),
    /// The observer could not write (a closed pipe, a full disk) and every run was stopped.
    OutputFailed(std::io::Error),
}

pub struct Session {
    settings: Settings,
    spawner: Box<dyn Spawner>,
    outlet: Outlet,
    data: Arc<DataCache>,
    runs: Vec<Run>,
}

impl Session {
    /// A session whose trainers post to `outlet`. The saves folder is created now, so a
    /// folder that cannot be written is an error before anything trains.
    pub fn new(
        settings: Settings,
        spawner: Box<dyn Spawner>,
        outlet: Outlet,
    ) -> Result<Self, SessionError> {
        if let Some(saves) = &settings.saves {
            std::fs::create_dir_all(saves).map_err(|e| RunError {
                path: saves.clone(),
                message: format!("cannot create: {e}"),
            })?;
        }
        Ok(Self {
            data: Arc::new(DataCache::new(settings.data_dir.clone())),
            settings,
            spawner,
            outlet,
            runs: Vec::new(),
        })
    }

    /// A session for a headless command: real trainer threads posting into a channel, whose
    /// sender is returned too (signal handlers post there).
    pub fn headless(
        settings: Settings,
    ) -> Result<(Self, Sender<Message>, Receiver<Message>), SessionError> {
        let (tx, rx) = mpsc::channel();
        let outlet_tx = tx.clone();
        let outlet: Outlet = Arc::new(move |m| outlet_tx.send(m).is_ok());
        Ok((Self::new(settings, Box::new(Threads), outlet)?, tx, rx))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Loads every request's data set now (the runs then find it loaded) and refuses, naming
    /// the value, a request the data cannot serve: a data set without images, a validation
    /// share that holds out none, a batch larger than the training split. A data set that
    /// does not load is [`SessionError::MissingData`].
    fn check_data(&self, experiments: &[&Experiment]) -> Result<(), SessionError> {
        for &e in experiments {
            let dataset = self.data.dataset(e.dataset)?;
            let where_ = self.settings.data_dir.join(e.dataset.as_str());
            let name = e.dataset;
            let n = dataset.train.len();
            if n == 0 || dataset.test.is_empty() {
                return Err(SessionError::Refused(format!(
                    "data set `{name}` ({}) has {n} training and {} test images; it needs both",
                    where_.display(),
                    dataset.test.len()
                )));
            }
            let (train, val) = crate::data::PreparedData::split_sizes(n, e.val_fraction);
            if val == 0 {
                return Err(SessionError::Refused(format!(
                    "val_fraction {:e} holds out none of the {n} training images of `{name}`; the validation split picks the best epoch, so hold out at least {:.2e}",
                    e.val_fraction,
                    0.5 / n as f64
                )));
            }
            if e.batch > train {
                return Err(SessionError::Refused(format!(
                    "batch {} is larger than the {train} images `{name}` trains on (after holding out {val} for validation)",
                    e.batch
                )));
            }
        }
        Ok(())
    }

    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    pub fn run(&self, id: RunId) -> Option<&Run> {
        self.index(id).map(|i| &self.runs[i])
    }

    /// Runs are kept in the order of their ids (each new one gets the next), so a search
    /// halves: a hundred thousand queued seeds are each found at once.
    fn index(&self, id: RunId) -> Option<usize> {
        self.runs.binary_search_by_key(&id, |r| r.id).ok()
    }

    /// True when no run is queued or active.
    pub fn is_idle(&self) -> bool {
        self.runs.iter().all(|r| !r.state.is_active())
    }

    /// Checks every request, then queues them all in order (none if one is refused); they
    /// start as slots are free.
    pub fn submit_all(
        &mut self,
        requests: Vec<RunRequest>,
    ) -> Result<Vec<SessionEvent>, SessionError> {
        let next = self.runs.last().map_or(1, |r| r.id + 1);
        // Every request checked before any data loads: a bad value is named at once.
        let admitted = requests
            .into_iter()
            .enumerate()
            .map(|(k, request)| self.admit(next + k, request))
            .collect::<Result<Vec<_>, _>>()?;
        if self.settings.load_first {
            let experiments: Vec<&Experiment> =
                admitted.iter().map(|r| &r.info.experiment).collect();
            self.check_data(&experiments)?;
        }
        let mut events = Vec::new();
        for run in admitted {
            events.push(SessionEvent {
                run: run.id,
                update: Update::Queued(Box::new(run.info.clone())),
            });
            self.runs.push(run);
        }
        events.extend(self.start_queued());
        Ok(events)
    }

    /// A request checked (the experiment, the network's size against this machine) and made
    /// into a queued run.
    fn admit(&self, id: RunId, request: RunRequest) -> Result<Run, SessionError> {
        let RunRequest {
            experiment,
            resolved,
            resume,
            folder,
            origin,
        } = request;
        let provenance = Provenance::here(origin.unwrap_or_else(crate::provenance::command_line));
        // Checked, and its network built, once: here, or by the front end that resolved it.
        let built = match resolved {
            Some(topology) => topology,
            None => {
                experiment
                    .clone()
                    .resolve()
                    .map_err(SessionError::Refused)?
                    .into_parts()
                    .1
            }
        };
        let topology = match &resume {
            Some((_, weights)) => weights.topology.clone(),
            None => built,
        };
        check_memory(
            &topology,
            experiment.batch,
            self.settings.device,
            self.settings.slots,
        )?;
        // Loading waits for the run's thread; a data set that is not there at all is known now.
        if let Some(missing) = crate::data::missing(experiment.dataset, &self.settings.data_dir) {
            return Err(SessionError::MissingData(missing));
        }
        let (summary, epochs, steps, flows) = match &resume {
            Some((saved, _)) => (
                Summary {
                    status: RunState::Running,
                    provenance: Some(provenance),
                    // A resumed run is a configuration of its own: where it was resumed.
                    resumed_after: [&saved.summary.resumed_after[..], &[saved.epochs.len()]]
                        .concat(),
                    ..saved.summary.clone()
                },
                saved.epochs.iter().map(|r| r.to_metrics()).collect(),
                saved.steps.clone(),
                saved.flows.clone(),
            ),
            None => (
                Summary::new(&topology, &self.settings.device.to_string(), provenance),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            ),
        };
        Ok(Run {
            id,
            info: RunInfo {
                config: experiment.train_config(),
                experiment,
                topology,
            },
            state: RunState::Queued,
            saved: None,
            summary,
            epochs,
            steps,
            flows,
            handle: None,
            resume,
            folder,
        })
    }

    /// Starts queued runs while slots are free.
    fn start_queued(&mut self) -> Vec<SessionEvent> {
        let mut events = Vec::new();
        loop {
            let busy = self
                .runs
                .iter()
                .filter(|r| r.state.is_active() && r.state != RunState::Queued)
                .count();
            let next = self.runs.iter().position(|r| r.state == RunState::Queued);
            match next {
                Some(i) if busy < self.settings.slots.max(1) => events.extend(self.start(i)),
                _ => return events,
            }
        }
    }

    fn start(&mut self, i: usize) -> Vec<SessionEvent> {
        let outlet = Arc::clone(&self.outlet);
        let settings = &self.settings;
        let run = &mut self.runs[i];
        let id = run.id;
        let forward = move |event: TrainEvent| outlet(Message::Run(id, event));
        let files = Arc::clone(&settings.files);
        let resume = run.resume.take();
        // A resumed run goes on in its folder; a new one gets a folder when runs are saved.
        let label = run.info.experiment.run_label();
        let saved = match (&resume, &settings.saves) {
            (Some((s, _)), _) => Ok(Some((s.id.clone(), s.dir.clone()))),
            (None, Some(saves)) => match &run.folder {
                Some(id) => runs::create_named_run_dir(saves, id).map(Some),
                None => runs::create_run_dir(saves, &label).map(Some),
            },
            (None, None) => Ok(None),
        };
        let sink = saved.and_then(|saved| {
            let sink: Box<dyn EventSink> = match (&resume, &saved) {
                (Some((s, _)), _) => {
                    let more = run.info.experiment.epochs;
                    Box::new(Recorder::resume(
                        forward,
                        files,
                        s,
                        run.summary.clone(),
                        more,
                    )?)
                }
                (None, Some((_, dir))) => Box::new(Recorder::start(
                    forward,
                    files,
                    dir.clone(),
                    &run.info.experiment,
                    &run.info.topology,
                    run.summary.clone(),
                )?),
                (None, None) => Box::new(forward),
            };
            Ok((sink, saved.map(|(id, dir)| SavedAt { id, dir })))
        });
        let (sink, saved) = match sink {
            Ok(r) => r,
            Err(e) => return self.end(i, RunStatus::Failed(format!("cannot save the run: {e}"))),
        };
        run.saved = saved.clone();
        run.state = RunState::Preparing;
        let e = &run.info.experiment;
        let (dataset, val_fraction, seed) = (e.dataset, e.val_fraction, e.seed);
        let cache = Arc::clone(&self.data);
        let job = TrainJob {
            topology: run.info.topology.clone(),
            config: run.info.config.clone(),
            device: settings.device,
            resume: resume.map(|(saved, weights)| train::Resume {
                best: saved.best_to_resume(&weights),
                params: weights.params,
                epochs_done: saved.epochs.len(),
                seconds_done: saved.epochs.iter().map(|r| r.seconds).sum(),
            }),
            data: Box::new(move || {
                cache
                    .prepared(dataset, val_fraction, seed)
                    .map_err(|e| e.to_string())
            }),
        };
        run.handle = Some(self.spawner.spawn(job, sink));
        vec![SessionEvent {
            run: id,
            update: Update::Starting { saved },
        }]
    }

    /// Marks run `i` ended (its thread, if any, is done) and starts what is queued.
    fn end(&mut self, i: usize, status: RunStatus) -> Vec<SessionEvent> {
        let mut events = vec![Self::mark_ended(&mut self.runs[i], status)];
        events.extend(self.start_queued());
        events
    }

    /// Records `run` as ended (its thread, if any, joined) and says so; starts nothing.
    fn mark_ended(run: &mut Run, status: RunStatus) -> SessionEvent {
        if let Some(handle) = run.handle.take() {
            handle.join();
        }
        run.summary.status = status.clone().into();
        run.state = RunState::Ended(status.clone());
        SessionEvent {
            run: run.id,
            update: Update::Ended {
                status,
                summary: Box::new(run.summary.clone()),
            },
        }
    }

    /// Applies a trainer's event for run `id`.
    pub fn handle(&mut self, id: RunId, event: TrainEvent) -> Vec<SessionEvent> {
        let Some(i) = self.index(id) else {
            return Vec::new();
        };
        let run = &mut self.runs[i];
        run.summary.observe(&event);
        match (RunState::after(&event), &event) {
            (Some(RunState::Ended(status)), _) => return self.end(i, status),
            (Some(state), _) => run.state = state,
            (None, TrainEvent::Epoch(m)) => run.epochs.push(m.clone()),
            (None, TrainEvent::Step(m)) => run.steps.push(m.clone()),
            (None, TrainEvent::Flow(f)) => run.flows.push(f.clone()),
            (None, _) => {}
        }
        vec![SessionEvent {
            run: id,
            update: Update::Train(event),
        }]
    }

    /// Pause, resume or stop run `id`. A queued run that is stopped ends without starting.
    pub fn command(&mut self, id: RunId, command: Command) -> Vec<SessionEvent> {
        let Some(i) = self.index(id) else {
            return Vec::new();
        };
        let run = &self.runs[i];
        match (&run.state, command, &run.handle) {
            (RunState::Queued, Command::Stop, _) => self.end(i, RunStatus::Stopped),
            (_, _, Some(handle)) => {
                handle.send(command);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Stops every run: queued ones end at once (so none starts), active ones at their next
    /// step, recording `Stopped`.
    pub fn stop_all(&mut self) -> Vec<SessionEvent> {
        // One pass: ending queued runs one by one (each looking for the next to start) took
        // quadratic time, minutes for 100,000 queued seeds.
        let events: Vec<SessionEvent> = self
            .runs
            .iter_mut()
            .filter(|r| r.state == RunState::Queued)
            .map(|r| Self::mark_ended(r, RunStatus::Stopped))
            .collect();
        for run in &self.runs {
            if let Some(handle) = &run.handle {
                handle.send(Command::Stop);
            }
        }
        events
    }

    /// Stops every run and waits for their threads (the lab, quitting). Their recorders
    /// write `Stopped` before the threads end. Returns the runs that were queued or active,
    /// so whoever closes can say they were stopped (their ends are not followed any more).
    pub fn shutdown(&mut self) -> Vec<RunId> {
        let stopped = self
            .runs
            .iter()
            .filter(|r| r.state.is_active())
            .map(|r| r.id)
            .collect();
        self.stop_all();
        for run in &mut self.runs {
            if let Some(handle) = run.handle.take() {
                // How its thread ended (its recorder wrote the same), for whoever asks after;
                // nobody follows the session any more, so the event itself goes.
                let status = handle.join();
                Self::mark_ended(run, status);
            }
        }
        stopped
    }

    /// Follows the session until every run has ended, handing `first` and every later
    /// update to `observer`. A signal or an observer that cannot write stops every run;
    /// the ending says which.
    pub fn follow(
        &mut self,
        inbox: &Receiver<Message>,
        first: Vec<SessionEvent>,
        observer: &mut dyn Observer,
    ) -> Ending {
        let mut ending = Ending::Finished;
        let mut pending: VecDeque<SessionEvent> = first.into();
        loop {
            while let Some(event) = pending.pop_front() {
                if matches!(ending, Ending::OutputFailed(_)) {
                    continue;
                }
                if let Err(e) = observer.update(self, &event) {
                    pending.extend(self.stop_all());
                    ending = Ending::OutputFailed(e);
                }
            }
            if self.is_idle() {
                return ending;
            }
            match inbox.recv() {
                Ok(Message::Run(id, event)) => pending.extend(self.handle(id, event)),
                Ok(Message::Signal(signal)) => {
                    if let Ending::Finished = ending {
                        ending = Ending::Interrupted(signal);
                    }
                    pending.extend(self.stop_all());
                }
                // Every sender gone: no run can report any more.
                Err(_) => return ending,
            }
        }
    }
}

/// Passes SIGINT, SIGTERM and SIGHUP to `deliver` (on a thread of its own), so a command or
/// the lab can stop its runs and record them as stopped. A second signal exits at once, with
/// 128 + its number, for a user who does not want to wait for the current step.
pub fn forward_signals(deliver: impl Fn(i32) + Send + 'static) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("skiplab-signals".into())
        .spawn(move || {
            let mut seen = false;
            for signal in signals.forever() {
                if seen {
                    std::process::exit(128 + signal);
                }
                seen = true;
                deliver(signal);
            }
        })?;
    Ok(())
}

/// Refuses a network whose training would not fit this machine's memory, before anything
/// is allocated (an allocation that large aborts the process).
/// Refuses a run whose training, times the runs that train at once (`--parallel`), needs
/// more memory than the machine has.
fn check_memory(
    topology: &Topology,
    batch: usize,
    device: Device,
    at_once: usize,
) -> Result<(), SessionError> {
    let (Device::Cpu, Some(memory)) = (device, crate::device::physical_memory()) else {
        return Ok(());
    };
    let what = format!("{} at batch {batch}", topology.summary());
    memory_refusal(&what, topology.training_bytes(batch), at_once, memory)
        .map_or(Ok(()), |m| Err(SessionError::Refused(m)))
}

/// Why `at_once` runs of `what`, each needing `per_run` bytes, do not fit in `memory`.
fn memory_refusal(what: &str, per_run: u64, at_once: usize, memory: u64) -> Option<String> {
    let at_once = at_once.max(1);
    let needed = per_run.saturating_mul(at_once as u64);
    let gb = |b: u64| b as f64 / 1e9;
    (needed > memory).then(|| match at_once {
        1 => format!(
            "training {what} needs about {:.1} GB; this machine has {:.1} GB",
            gb(needed),
            gb(memory)
        ),
        n => format!(
            "training {n} runs of {what} at once needs about {:.1} GB ({:.1} GB each); this machine has {:.1} GB: train fewer at once (--parallel)",
            gb(needed),
            gb(per_run),
            gb(memory)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::memory_refusal;

    #[test]
    fn the_memory_check_counts_the_runs_that_train_at_once() {
        let gb = 1_000_000_000;
        assert_eq!(memory_refusal("mlp", 3 * gb, 1, 8 * gb), None);
        let e = memory_refusal("mlp", 3 * gb, 4, 8 * gb).unwrap();
        assert!(
            e.contains("training 4 runs of mlp at once needs about 12.0 GB (3.0 GB each)")
                && e.contains("--parallel"),
            "{e}"
        );
        let e = memory_refusal("mlp", 9 * gb, 1, 8 * gb).unwrap();
        assert_eq!(
            e,
            "training mlp needs about 9.0 GB; this machine has 8.0 GB"
        );
    }
}

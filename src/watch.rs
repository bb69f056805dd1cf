//! Following saves folders that other processes write: `sweep task` array jobs on other
//! nodes, `sweep run`, GNU parallel, a `train` in another terminal. The [`Watcher`] turns
//! what appears in the run folders into the events a live run sends ([`TrainEvent`]s: its
//! epochs, step points, gradient flow and end), so the lab and the headless commands show a
//! watched run as they show their own.
//!
//! It reads only what changed: a run folder whose modification time is unchanged is not
//! looked into (a run's files are renamed into it, which changes it), a file whose size and
//! modification time are unchanged is not opened, and of `metrics.csv`, `steps.csv` and
//! `gradflow.csv` only the rows past those already read are parsed ([`CsvTail`]); between
//! epochs, `live.json` tells the epoch's progress and step points so far. Files are
//! published whole by a rename, and only whole lines are read, so a half-written row is never
//! shown. File notification (the `notify` crate) wakes it where the system gives it; cluster
//! file systems (NFS, Lustre) do not tell one node of another's writes, so it also polls,
//! backing off while nothing changes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime};

use crate::experiment::Experiment;
use crate::runs::{self, CsvTail, EpochRow, FlowRow, RunError, SavedRun, Summary, Tail};
use crate::train::{RunState, RunStatus, StepMetrics, TrainEvent};

/// How the watcher follows the folders.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WatchOptions {
    /// A run that says it trains but whose files have not changed for this long is stalled
    /// (a preempted task, a hung process, or a writer on a node whose lock is not visible).
    pub stall_after: Duration,
    /// Use file notification where the system gives it (polling goes on beside it).
    pub notify: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            stall_after: Duration::from_secs(600),
            notify: true,
        }
    }
}

/// The shortest and longest wait between two scans: the wait doubles while nothing changes.
pub const POLL_MIN: Duration = Duration::from_millis(250);
pub const POLL_MAX: Duration = Duration::from_secs(4);
/// A folder modified this recently is looked into even if its time is unchanged (file
/// systems that keep whole seconds would hide a second rename within the same second).
const RECENT: Duration = Duration::from_secs(2);

/// Something that happened to a watched run.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    /// The run's id (its folder's name) and folder.
    pub id: String,
    pub dir: PathBuf,
    pub change: Change,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A run folder appeared, or was rewritten from the start: all it holds so far (a run
    /// whose process died without a word reads as failed, interrupted).
    Found(Box<SavedRun>),
    /// What its process recorded since: an epoch, a step point, gradient flow, skip*'s
    /// switch, its end (a process that died without recording it ends it as interrupted).
    Train(TrainEvent),
    /// It says it trains, but nothing changed for [`WatchOptions::stall_after`].
    Stalled { quiet: Duration },
    /// It changed again after it stalled.
    Active,
    /// The folder cannot be read as a run (said once until it changes).
    Unreadable(RunError),
}

/// What the watcher knows of one run folder.
#[derive(Debug)]
struct Followed {
    id: String,
    dir: PathBuf,
    /// The folder's modification time at the last look.
    dir_stamp: Option<SystemTime>,
    experiment: Option<Experiment>,
    summary_stamp: Option<(u64, SystemTime)>,
    summary: Option<Summary>,
    metrics: CsvTail,
    steps: CsvTail,
    flows: CsvTail,
    /// `live.json`'s size and time at the last read.
    live_stamp: Option<(u64, SystemTime)>,
    /// The last step point and gradient-flow step told (later ones are new).
    last_step: Option<usize>,
    last_flow: Option<usize>,
    /// Whether `Found` was told.
    found: bool,
    ended: bool,
    /// When a file last changed (or it was found).
    last_change: Instant,
    stalled: bool,
    /// The problem told, while the folder stays unreadable.
    unreadable: Option<RunError>,
}

impl Followed {
    fn new(id: String, dir: PathBuf) -> Self {
        Self {
            id,
            dir,
            dir_stamp: None,
            experiment: None,
            summary_stamp: None,
            summary: None,
            metrics: CsvTail::default(),
            steps: CsvTail::default(),
            flows: CsvTail::default(),
            live_stamp: None,
            last_step: None,
            last_flow: None,
            found: false,
            ended: false,
            last_change: Instant::now(),
            stalled: false,
            unreadable: None,
        }
    }

    /// Starts over: the folder was rewritten (a sweep's retry clears it).
    fn restart(&mut self) {
        *self = Followed::new(std::mem::take(&mut self.id), std::mem::take(&mut self.dir));
    }

    /// Reads what changed; the events in the order they happened.
    fn look(&mut self, options: &WatchOptions, out: &mut Vec<Change>) {
        let stamp = std::fs::metadata(&self.dir).and_then(|m| m.modified()).ok();
        let recent = stamp
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < RECENT);
        if self.found && stamp.is_some() && stamp == self.dir_stamp && !recent {
            self.check_alive(options, out);
            return;
        }
        self.dir_stamp = stamp;
        match self.read(out) {
            Ok(true) => {
                self.last_change = Instant::now();
                self.unreadable = None;
                if std::mem::take(&mut self.stalled) {
                    out.push(Change::Active);
                }
            }
            Ok(false) => self.check_alive(options, out),
            Err(e) => {
                if self.unreadable.as_ref() != Some(&e) {
                    self.unreadable = Some(e.clone());
                    out.push(Change::Unreadable(e));
                }
            }
        }
    }

    /// Reads the files that changed: `true` if any did.
    fn read(&mut self, out: &mut Vec<Change>) -> Result<bool, RunError> {
        if self.experiment.is_none() {
            let path = self.dir.join(runs::EXPERIMENT);
            if !path.exists() {
                // A folder being made: its first files come in a moment.
                return Ok(false);
            }
            let experiment = Experiment::load(&path).map_err(|e| RunError {
                path: e.path.clone(),
                message: e.to_string(),
            })?;
            self.experiment = Some(experiment);
        }
        let summary_path = self.dir.join(runs::SUMMARY);
        let summary_stamp = std::fs::metadata(&summary_path)
            .ok()
            .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
        let mut summary = None;
        if summary_stamp.is_some() && summary_stamp != self.summary_stamp {
            let text = std::fs::read_to_string(&summary_path).map_err(|e| RunError {
                path: summary_path.clone(),
                message: format!("cannot read: {e}"),
            })?;
            summary = Some(Summary::from_ron(&text, &summary_path)?);
            self.summary_stamp = summary_stamp;
        }
        if !self.found && summary.is_none() && self.summary.is_none() {
            // experiment.ron comes first, summary.ron right after.
            return Ok(false);
        }
        let epochs = self
            .metrics
            .read::<EpochRow>(&self.dir.join(runs::METRICS))?;
        let steps = self
            .steps
            .read::<StepMetrics>(&self.dir.join(runs::STEPS))?;
        let flows = self.flows.read::<FlowRow>(&self.dir.join(runs::FLOW))?;
        if [
            matches!(epochs, Tail::Restarted(_)),
            matches!(steps, Tail::Restarted(_)),
            matches!(flows, Tail::Restarted(_)),
        ]
        .contains(&true)
            && self.found
        {
            // Rewritten from the start (a resume undone, a retry): found anew.
            self.restart();
            return self.read(out);
        }
        let (epochs, mut steps, mut flows) = (epochs.rows(), steps.rows(), flows.rows());
        // The epoch in progress: its step points and gradient flow so far (those an epoch's
        // files saved since are told once: only points past the last told are new).
        let live = self.read_live()?;
        if let Some(live) = &live {
            steps.extend(live.steps.iter().cloned());
            flows.extend(live.flows.iter().cloned());
        }
        // Each point once (a live file read with the epoch that saved its points), in order.
        let mut seen = HashSet::new();
        steps.retain(|s| self.last_step.is_none_or(|last| s.step > last) && seen.insert(s.step));
        steps.sort_by_key(|s| s.step);
        let mut seen = HashSet::new();
        flows.retain(|f| {
            self.last_flow.is_none_or(|last| f.step > last)
                && seen.insert((f.step, f.layer.clone()))
        });
        // Stable: a step's layers keep their order.
        flows.sort_by_key(|f| f.step);
        if let Some(last) = steps.last() {
            self.last_step = Some(last.step);
        }
        if let Some(last) = flows.last() {
            self.last_flow = Some(last.step);
        }
        let progress = live.map(|l| {
            Change::Train(TrainEvent::Progress {
                epoch: l.epoch,
                step: l.step,
                steps_per_epoch: l.steps_per_epoch,
                loss: l.loss,
            })
        });
        let changed = summary.is_some()
            || !epochs.is_empty()
            || !steps.is_empty()
            || !flows.is_empty()
            || progress.is_some();
        if !self.found {
            let mut summary = summary
                .or_else(|| self.summary.clone())
                .expect("checked above");
            summary.reconcile(&epochs);
            if summary.status == RunState::Running && runs::writer_gone(&self.dir) == Some(true) {
                summary.status = RunStatus::Failed(runs::INTERRUPTED.into()).into();
            }
            self.ended = !summary.status.is_active();
            self.summary = Some(summary.clone());
            self.found = true;
            out.push(Change::Found(Box::new(SavedRun {
                id: self.id.clone(),
                dir: self.dir.clone(),
                experiment: self.experiment.clone().expect("read above"),
                epochs,
                steps,
                flows: runs::flow_points(flows),
                summary,
            })));
            out.extend(progress.filter(|_| !self.ended));
            return Ok(true);
        }
        let before = self.summary.clone();
        for step in steps {
            out.push(Change::Train(TrainEvent::Step(step)));
        }
        for point in runs::flow_points(flows) {
            out.push(Change::Train(TrainEvent::Flow(point)));
        }
        for row in epochs {
            out.push(Change::Train(TrainEvent::Epoch(row.to_metrics())));
        }
        out.extend(progress);
        if let Some(summary) = summary {
            let was = before.as_ref();
            if summary.skips_enabled_after.is_some()
                && was.and_then(|s| s.skips_enabled_after).is_none()
            {
                let edges = self
                    .experiment
                    .as_ref()
                    .and_then(|e| e.topology().ok())
                    .map_or(0, |t| t.skips().len());
                out.push(Change::Train(TrainEvent::SkipsEnabled {
                    after_epoch: summary.skips_enabled_after.unwrap_or(0),
                    edges,
                }));
            }
            if let (RunState::Ended(status), false) = (&summary.status, self.ended) {
                self.ended = true;
                out.push(Change::Train(TrainEvent::Ended {
                    status: status.clone(),
                    epochs_done: summary.epochs_done,
                    test_accuracy: summary.test_accuracy,
                    test_epoch: summary.test_epoch,
                }));
            }
            self.summary = Some(summary);
        }
        Ok(changed)
    }

    /// `live.json`, where it changed since the last look.
    fn read_live(&mut self) -> Result<Option<runs::Live>, RunError> {
        let path = self.dir.join(runs::LIVE);
        let Ok(meta) = std::fs::metadata(&path) else {
            return Ok(None);
        };
        let stamp = (
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        if self.live_stamp == Some(stamp) {
            return Ok(None);
        }
        self.live_stamp = Some(stamp);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            // Gone since: the run ended or saved an epoch.
            Err(_) => return Ok(None),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RunError {
                path,
                message: e.to_string(),
            })
    }

    /// A run that says it trains but did not change: interrupted if its writer is gone,
    /// stalled once quiet for long enough.
    fn check_alive(&mut self, options: &WatchOptions, out: &mut Vec<Change>) {
        if !self.found || self.ended {
            return;
        }
        if runs::writer_gone(&self.dir) == Some(true) {
            // Read once more: the writer may have ended it just before it let go.
            let before = out.len();
            self.dir_stamp = None;
            let _ = self.read(out);
            if self.ended || out.len() > before {
                return;
            }
            self.ended = true;
            let epochs_done = self.summary.as_ref().map_or(0, |s| s.epochs_done);
            out.push(Change::Train(TrainEvent::Ended {
                status: RunStatus::Failed(runs::INTERRUPTED.into()),
                epochs_done,
                test_accuracy: None,
                test_epoch: None,
            }));
            return;
        }
        let quiet = self.last_change.elapsed();
        if !self.stalled && quiet >= options.stall_after {
            self.stalled = true;
            out.push(Change::Stalled { quiet });
        }
    }
}

/// The watched runs as the events tell them: what `runs --watch` and `sweep watch` show.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Board {
    /// The runs found, in the order they were.
    pub runs: Vec<SavedRun>,
    /// The ids of those stalled now.
    pub stalled: HashSet<String>,
    /// Folders that cannot be read as runs, with why.
    pub unreadable: Vec<RunError>,
}

impl Board {
    /// Takes one event in.
    pub fn apply(&mut self, event: &WatchEvent) {
        let at = self.runs.iter().position(|r| r.id == event.id);
        match (&event.change, at) {
            (Change::Found(run), Some(i)) => self.runs[i] = run.as_ref().clone(),
            (Change::Found(run), None) => self.runs.push(run.as_ref().clone()),
            (Change::Train(train), Some(i)) => {
                let run = &mut self.runs[i];
                run.summary.observe(train);
                match train {
                    TrainEvent::Epoch(m) => {
                        let skips_on = run.experiment.schedule.is_none()
                            || run.summary.skips_enabled_after.is_some();
                        run.epochs.push(EpochRow::from_metrics(m, skips_on));
                    }
                    TrainEvent::Step(s) => run.steps.push(s.clone()),
                    TrainEvent::Flow(f) => run.flows.push(f.clone()),
                    TrainEvent::Ended { .. } => {
                        self.stalled.remove(&event.id);
                    }
                    _ => {}
                }
            }
            (Change::Stalled { .. }, _) => {
                self.stalled.insert(event.id.clone());
            }
            (Change::Active, _) => {
                self.stalled.remove(&event.id);
            }
            (Change::Unreadable(e), _) => {
                self.unreadable
                    .retain(|u| u.path.parent() != e.path.parent());
                self.unreadable.push(e.clone());
            }
            (Change::Train(_), None) => {}
        }
        if matches!(event.change, Change::Found(_)) {
            self.unreadable.retain(|u| !u.path.starts_with(&event.dir));
        }
    }

    /// One word for where `run` stands: `running`, `stalled`, `interrupted`, `finished`,
    /// `stopped`, `diverged` or `failed`.
    pub fn status(&self, run: &SavedRun) -> &'static str {
        match &run.summary.status {
            RunState::Ended(RunStatus::Failed(why)) if why == runs::INTERRUPTED => "interrupted",
            status if status.is_active() && self.stalled.contains(&run.id) => "stalled",
            status => status.word(),
        }
    }

    /// How many runs have ended, however they did.
    pub fn ended(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| !r.summary.status.is_active())
            .count()
    }
}

/// Follows every run folder in some saves folders.
pub struct Watcher {
    folders: Vec<PathBuf>,
    options: WatchOptions,
    runs: Vec<Followed>,
    /// Run folders by path, and the ids taken (an id in two folders: the first's).
    known: HashMap<PathBuf, usize>,
    ids: HashSet<String>,
    /// File notification, where it started.
    notifier: Option<(notify::RecommendedWatcher, Receiver<()>)>,
    wait: Duration,
}

impl Watcher {
    pub fn new(folders: Vec<PathBuf>, options: WatchOptions) -> Self {
        let notifier = options.notify.then(|| notifier(&folders)).flatten();
        Self {
            folders,
            options,
            runs: Vec::new(),
            known: HashMap::new(),
            ids: HashSet::new(),
            notifier,
            wait: POLL_MIN,
        }
    }

    /// Whether file notification wakes the watcher (else it only polls).
    pub fn notifying(&self) -> bool {
        self.notifier.is_some()
    }

    /// The runs followed.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Looks at every folder once: new run folders, and what changed in the known ones.
    pub fn scan(&mut self) -> Vec<WatchEvent> {
        let mut events = Vec::new();
        for folder in &self.folders {
            let Ok(entries) = std::fs::read_dir(folder) else {
                continue;
            };
            let mut fresh: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .filter(|p| !self.known.contains_key(p))
                .collect();
            fresh.sort();
            for dir in fresh {
                let id = dir
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if !self.ids.insert(id.clone()) {
                    continue;
                }
                self.known.insert(dir.clone(), self.runs.len());
                self.runs.push(Followed::new(id, dir));
            }
        }
        let mut changes = Vec::new();
        for run in &mut self.runs {
            run.look(&self.options, &mut changes);
            events.extend(changes.drain(..).map(|change| WatchEvent {
                id: run.id.clone(),
                dir: run.dir.clone(),
                change,
            }));
        }
        events
    }

    /// Waits for a change (a notification, or the next poll: sooner after a change, later
    /// while nothing changes, between [`POLL_MIN`] and [`POLL_MAX`]), at most `limit`, and
    /// scans.
    pub fn next(&mut self, limit: Duration) -> Vec<WatchEvent> {
        let wait = self.wait.min(limit);
        match &self.notifier {
            Some((_, rx)) => {
                if rx.recv_timeout(wait).is_ok() {
                    // A burst of renames (an epoch's files): take them in one scan.
                    std::thread::sleep(Duration::from_millis(50));
                    while rx.try_recv().is_ok() {}
                }
            }
            None => std::thread::sleep(wait),
        }
        let events = self.scan();
        self.wait = match events.is_empty() {
            true => (self.wait * 2).min(POLL_MAX),
            false => POLL_MIN,
        };
        events
    }
}

/// File notification on `folders` and the run folders in them (recursively), as a channel
/// of wake-ups; `None` where the system gives none.
fn notifier(folders: &[PathBuf]) -> Option<(notify::RecommendedWatcher, Receiver<()>)> {
    use notify::Watcher as _;
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    })
    .ok()?;
    let mut any = false;
    for folder in folders {
        any |= watcher
            .watch(Path::new(folder), notify::RecursiveMode::Recursive)
            .is_ok();
    }
    any.then_some((watcher, rx))
}

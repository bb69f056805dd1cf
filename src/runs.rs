//! Saved runs: `saves/<run-id>/` holds
//! - `experiment.ron`: the experiment (a preset; `skiplab train --preset` reruns it),
//! - `metrics.csv`: one row per finished epoch,
//! - `steps.csv`: training loss and accuracy every few steps (of finished epochs),
//! - `gradflow.csv`: each layer's gradient norm and update ratio at the same steps,
//! - `weights.safetensors`: the weights after the latest epoch, the topology and the epoch in
//!   its metadata (what `resume` goes on from),
//! - `best.safetensors`: likewise, of the epoch with the best validation accuracy (what the
//!   test accuracy measures),
//! - `summary.ron`: status (a typed enum), best and test accuracy, size and timing,
//! - `live.json`, while an epoch trains: its progress and step points so far (for watchers).
//!
//! After each epoch the weights, metrics, steps and summary are staged as temporary files and only
//! then renamed into place, so a process killed at any moment, or a write that fails (a full
//! disk), leaves the last saved epoch readable and the three files in step.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::data::store;
use crate::experiment::Experiment;
use crate::net::HostParam;
use crate::provenance::Provenance;
use crate::topology::{SkipEdge, SkipSelection, Topology};
use crate::train::{
    BestWeights, EpochMetrics, EventSink, FlowPoint, LayerFlow, RunState, RunStatus, StepMetrics,
    TrainEvent,
};

pub const EXPERIMENT: &str = "experiment.ron";
pub const METRICS: &str = "metrics.csv";
pub const STEPS: &str = "steps.csv";
pub const FLOW: &str = "gradflow.csv";
pub const WEIGHTS: &str = "weights.safetensors";
/// The weights of the epoch with the best validation accuracy (the test set's).
pub const BEST: &str = "best.safetensors";
pub const SUMMARY: &str = "summary.ron";
/// Where an epoch stands while it trains (written at most every [`LIVE_INTERVAL`], gone when
/// the run ends): what a process watching the folder shows between two epochs.
pub const LIVE: &str = "live.json";
/// The shortest time between two writes of [`LIVE`].
pub const LIVE_INTERVAL: Duration = Duration::from_secs(2);

/// [`LIVE`]: the epoch's progress and the step points and gradient flow measured since the
/// last saved epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Live {
    pub epoch: usize,
    pub step: usize,
    pub steps_per_epoch: usize,
    pub loss: f64,
    pub steps: Vec<StepMetrics>,
    pub flows: Vec<FlowRow>,
}

/// A problem with a saved run, naming the file.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct RunError {
    pub path: PathBuf,
    pub message: String,
}

/// A failed atomic write names the same file either way.
impl From<crate::data::DataError> for RunError {
    fn from(e: crate::data::DataError) -> Self {
        RunError {
            path: e.path,
            message: e.message,
        }
    }
}

fn err(path: &Path, message: impl Into<String>) -> RunError {
    RunError {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// One row of `metrics.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub samples_per_sec: f64,
    pub seconds: f64,
    /// Whether the skips were on during this epoch (false in skip*'s first phase).
    pub skips_on: bool,
    /// Mean |w| per enabled skip edge, as `0-2:0.0123;1-3:0.0456` (full precision).
    pub skip_weights: String,
    /// The global step that ended the epoch (0 in files from before it was recorded).
    #[serde(default)]
    pub step: usize,
}

impl EpochRow {
    pub fn from_metrics(m: &EpochMetrics, skips_on: bool) -> Self {
        let skip_weights: Vec<String> = m
            .skip_weights
            .iter()
            .map(|(e, w)| format!("{e}:{w}"))
            .collect();
        Self {
            epoch: m.epoch,
            train_loss: m.train_loss,
            train_accuracy: m.train_accuracy,
            val_loss: m.val_loss,
            val_accuracy: m.val_accuracy,
            samples_per_sec: m.samples_per_sec,
            seconds: m.seconds,
            skips_on,
            skip_weights: skip_weights.join(";"),
            step: m.step,
        }
    }

    pub fn to_metrics(&self) -> EpochMetrics {
        let skip_weights = self
            .skip_weights
            .split(';')
            .filter(|s| !s.is_empty())
            .filter_map(|item| {
                let (edge, w) = item.split_once(':')?;
                let (from, to) = edge.split_once('-')?;
                Some((
                    SkipEdge::new(from.parse().ok()?, to.parse().ok()?),
                    w.parse().ok()?,
                ))
            })
            .collect();
        EpochMetrics {
            epoch: self.epoch,
            train_loss: self.train_loss,
            train_accuracy: self.train_accuracy,
            val_loss: self.val_loss,
            val_accuracy: self.val_accuracy,
            samples_per_sec: self.samples_per_sec,
            seconds: self.seconds,
            skip_weights,
            step: self.step,
        }
    }
}

/// One row of `gradflow.csv`: a layer at a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowRow {
    pub step: usize,
    pub epoch: usize,
    pub layer: String,
    pub grad_norm: f64,
    pub update_ratio: f64,
}

fn flow_rows(points: &[FlowPoint]) -> Vec<FlowRow> {
    points
        .iter()
        .flat_map(|p| {
            p.layers.iter().map(|l| FlowRow {
                step: p.step,
                epoch: p.epoch,
                layer: l.layer.clone(),
                grad_norm: l.grad_norm,
                update_ratio: l.update_ratio,
            })
        })
        .collect()
}

pub fn flow_points(rows: Vec<FlowRow>) -> Vec<FlowPoint> {
    let mut points: Vec<FlowPoint> = Vec::new();
    for row in rows {
        let layer = LayerFlow {
            layer: row.layer,
            grad_norm: row.grad_norm,
            update_ratio: row.update_ratio,
        };
        match points.last_mut() {
            Some(p) if p.step == row.step => p.layers.push(layer),
            _ => points.push(FlowPoint {
                step: row.step,
                epoch: row.epoch,
                layers: vec![layer],
            }),
        }
    }
    points
}

/// `summary.ron`'s spelling of a run's state: `Running` (while a process trains it, or if that
/// process was killed), else how it ended, as `Finished`, `Diverged(...)` and so on. The
/// program reads and writes [`RunState`]; only the file says it so.
mod file_status {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::train::{RunState, RunStatus};

    #[derive(Serialize, Deserialize)]
    enum Status {
        Running,
        Finished,
        Stopped,
        Diverged {
            epoch: usize,
            step: usize,
            loss: f64,
        },
        Failed(String),
    }

    pub fn serialize<S: Serializer>(state: &RunState, s: S) -> Result<S::Ok, S::Error> {
        match state.ended() {
            None => Status::Running,
            Some(RunStatus::Finished) => Status::Finished,
            Some(RunStatus::Stopped) => Status::Stopped,
            Some(RunStatus::Diverged { epoch, step, loss }) => {
                Status::Diverged { epoch, step, loss }
            }
            Some(RunStatus::Failed(m)) => Status::Failed(m),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RunState, D::Error> {
        Ok(match Status::deserialize(d)? {
            Status::Running => RunState::Running,
            Status::Finished => RunState::Ended(RunStatus::Finished),
            Status::Stopped => RunState::Ended(RunStatus::Stopped),
            Status::Diverged { epoch, step, loss } => {
                RunState::Ended(RunStatus::Diverged { epoch, step, loss })
            }
            Status::Failed(m) => RunState::Ended(RunStatus::Failed(m)),
        })
    }

    /// Reads the status as summaries before the typed enum wrote it (`"finished"`,
    /// `"diverged: loss NaN at epoch 1, step 3"`, `"failed: ..."`).
    pub fn from_text(text: &str) -> RunState {
        let diverged = || {
            let rest = text.strip_prefix("diverged: loss ")?;
            let (loss, rest) = rest.split_once(" at epoch ")?;
            let (epoch, step) = rest.split_once(", step ")?;
            Some(RunStatus::Diverged {
                epoch: epoch.parse().ok()?,
                step: step.parse().ok()?,
                loss: loss.parse().ok()?,
            })
        };
        match text {
            "running" => RunState::Running,
            "finished" => RunState::Ended(RunStatus::Finished),
            "stopped" => RunState::Ended(RunStatus::Stopped),
            _ => RunState::Ended(diverged().unwrap_or_else(|| {
                RunStatus::Failed(text.strip_prefix("failed: ").unwrap_or(text).to_string())
            })),
        }
    }
}

/// A run's figures: written as `summary.ron`, kept live by the session, shown by every
/// front end. [`Summary::observe`] is the one place they are computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    #[serde(with = "file_status")]
    pub status: RunState,
    pub epochs_done: usize,
    pub best_val_accuracy: Option<f64>,
    pub best_epoch: Option<usize>,
    /// Test accuracy of the weights of `test_epoch`.
    pub test_accuracy: Option<f64>,
    /// The epoch the test accuracy measured: the best-validation epoch (absent in runs saved
    /// before that was so: theirs measured the last epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_epoch: Option<usize>,
    pub params: usize,
    pub macs_per_sample: usize,
    /// Mean seconds an epoch spent training and validating (pauses excluded).
    pub mean_epoch_seconds: Option<f64>,
    pub device: String,
    /// When the run started, RFC 3339 UTC.
    pub started: String,
    #[serde(default)]
    pub skips_enabled_after: Option<usize>,
    /// The epochs after which `skiplab resume` trained on (its optimiser restarted there):
    /// part of what the run's configuration is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_after: Vec<usize>,
    /// The build, machine and command that trained it (of the latest resume, for a resumed
    /// run; absent in runs saved before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// SHA-256 of the `weights.safetensors` this run last saved: `resume` refuses a file
    /// that is not it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
}

/// `summary.ron` as written before the status was typed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextStatusSummary {
    status: String,
    epochs_done: usize,
    best_val_accuracy: Option<f64>,
    best_epoch: Option<usize>,
    test_accuracy: Option<f64>,
    params: usize,
    macs_per_sample: usize,
    mean_epoch_seconds: Option<f64>,
    device: String,
    started: String,
    #[serde(default)]
    skips_enabled_after: Option<usize>,
}

impl Summary {
    /// A run of `topology` on `device` that starts now, as `provenance` says.
    pub fn new(topology: &Topology, device: &str, provenance: Provenance) -> Self {
        Summary {
            status: RunState::Running,
            epochs_done: 0,
            best_val_accuracy: None,
            best_epoch: None,
            test_accuracy: None,
            test_epoch: None,
            params: topology.param_count(),
            macs_per_sample: topology.macs_per_sample(),
            mean_epoch_seconds: None,
            device: device.to_string(),
            started: now(),
            skips_enabled_after: None,
            resumed_after: Vec::new(),
            provenance: Some(provenance),
            weights_sha256: None,
        }
    }

    /// Takes in one trainer event.
    pub fn observe(&mut self, event: &TrainEvent) {
        match event {
            TrainEvent::Epoch(m) => {
                self.epochs_done = m.epoch;
                if self.best_val_accuracy.is_none_or(|b| m.val_accuracy > b) {
                    self.best_val_accuracy = Some(m.val_accuracy);
                    self.best_epoch = Some(m.epoch);
                }
                // Epochs are numbered 1, 2, ... across resumes: a running mean over them.
                let n = m.epoch.max(1) as f64;
                self.mean_epoch_seconds = Some(
                    self.mean_epoch_seconds
                        .map_or(m.seconds, |mean| mean + (m.seconds - mean) / n),
                );
            }
            TrainEvent::SkipsEnabled { after_epoch, .. } => {
                self.skips_enabled_after = Some(*after_epoch)
            }
            TrainEvent::Ended {
                status,
                test_accuracy,
                test_epoch,
                ..
            } => {
                self.status = status.clone().into();
                self.test_accuracy = *test_accuracy;
                self.test_epoch = *test_epoch;
                if let Some(p) = &mut self.provenance {
                    p.ended = Some(now());
                }
            }
            _ => {}
        }
    }

    /// Makes the per-epoch figures agree with `rows` (metrics.csv is the record they are
    /// computed from; a process killed between renaming the two leaves the summary an epoch
    /// behind).
    pub fn reconcile(&mut self, rows: &[EpochRow]) {
        let Some(last) = rows.last() else {
            return;
        };
        self.epochs_done = last.epoch;
        // The first of equal bests, as `observe` keeps it; a value that is not a number (a
        // file edited by hand) is no best.
        let best = rows
            .iter()
            .filter(|r| r.val_accuracy.is_finite())
            .reduce(|a, b| {
                if b.val_accuracy > a.val_accuracy {
                    b
                } else {
                    a
                }
            });
        self.best_val_accuracy = best.map(|b| b.val_accuracy);
        self.best_epoch = best.map(|b| b.epoch);
        self.mean_epoch_seconds =
            Some(rows.iter().map(|r| r.seconds).sum::<f64>() / rows.len() as f64);
    }

    fn to_ron(&self) -> String {
        ron::ser::to_string_pretty(self, Default::default()).expect("summaries serialise")
    }

    /// Reads `summary.ron`, old text-status files included; `path` names it in errors.
    pub fn from_ron(text: &str, path: &Path) -> Result<Self, RunError> {
        let typed = ron::from_str::<Summary>(text);
        let e = match typed {
            Ok(summary) => return Ok(summary),
            Err(e) => e,
        };
        if let Ok(old) = ron::from_str::<TextStatusSummary>(text) {
            return Ok(Summary {
                status: file_status::from_text(&old.status),
                epochs_done: old.epochs_done,
                best_val_accuracy: old.best_val_accuracy,
                best_epoch: old.best_epoch,
                test_accuracy: old.test_accuracy,
                test_epoch: None,
                params: old.params,
                macs_per_sample: old.macs_per_sample,
                mean_epoch_seconds: old.mean_epoch_seconds,
                device: old.device,
                started: old.started,
                skips_enabled_after: old.skips_enabled_after,
                resumed_after: Vec::new(),
                provenance: None,
                weights_sha256: None,
            });
        }
        Err(err(
            path,
            format!(
                "line {}, column {}: {}",
                e.span.start.line, e.span.start.col, e.code
            ),
        ))
    }
}

/// The time now, RFC 3339 UTC to the second.
fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// `saves/<id>` for a run whose id is fixed in advance (a sweep's), empty: what an earlier,
/// unfinished attempt left there is removed first. The caller decides that the folder may go
/// (and holds its lock); ids are plain names (letters, digits, `.`, `_`, `+`, `-`).
pub fn create_named_run_dir(saves: &Path, id: &str) -> Result<(String, PathBuf), RunError> {
    let plain = !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if !plain {
        return Err(err(&saves.join(id), "not a plain run id"));
    }
    std::fs::create_dir_all(saves).map_err(|e| err(saves, format!("cannot create: {e}")))?;
    let dir = saves.join(id);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(&dir, format!("cannot clear an earlier attempt: {e}"))),
    }
    std::fs::create_dir(&dir).map_err(|e| err(&dir, format!("cannot create: {e}")))?;
    Ok((id.to_string(), dir))
}

/// A fresh `saves/<id>/`: the id is the UTC start time and `label` (what the run is, e.g.
/// `mlp3-skips-s2`), with `-2`, `-3` ... only if that folder exists already. An id given
/// whole always finds its own run (see [`find_run`]).
pub fn create_run_dir(saves: &Path, label: &str) -> Result<(String, PathBuf), RunError> {
    std::fs::create_dir_all(saves).map_err(|e| err(saves, format!("cannot create: {e}")))?;
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let stamp: String = stamp
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect::<String>()
        .replace('T', "-");
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    for n in 1.. {
        let id = if n == 1 {
            format!("{stamp}-{label}")
        } else {
            format!("{stamp}-{label}-{n}")
        };
        let dir = saves.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(&dir, format!("cannot create: {e}"))),
        }
    }
    unreachable!("some counter is free")
}

/// How a run folder's files are written. The recorder writes through it, so tests can hand
/// in one that fails (a full disk) at a chosen moment.
pub trait RunFiles: Send + Sync {
    /// Replaces each file whole. All are staged before any is renamed into place: if one
    /// cannot be written, none changes.
    fn replace(&self, files: &[(PathBuf, Vec<u8>)]) -> Result<(), RunError>;
}

/// The real file system: temporary files synced, then renamed.
pub struct Disk;

impl RunFiles for Disk {
    fn replace(&self, files: &[(PathBuf, Vec<u8>)]) -> Result<(), RunError> {
        let staged = files
            .iter()
            .map(|(path, bytes)| store::stage(path, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        for (tmp, (path, _)) in staged.into_iter().zip(files) {
            store::persist(tmp, path)?;
        }
        Ok(())
    }
}

/// Writes a run to disk as its events arrive, then passes each event on.
pub struct Recorder<S: EventSink> {
    inner: S,
    files: Arc<dyn RunFiles>,
    dir: PathBuf,
    rows: Vec<EpochRow>,
    steps: Vec<StepMetrics>,
    flows: Vec<FlowPoint>,
    summary: Summary,
    /// The rows, steps, flow points and summary the files hold (as of the last saved epoch).
    saved: (usize, usize, usize, Summary),
    skips_on: bool,
    /// A resume stopped before it trained an epoch puts the folder back as it was.
    undo: Option<ResumeUndo>,
    /// When `live.json` was last written.
    live_at: Option<std::time::Instant>,
    /// Held while this recorder writes the folder: readers tell a live run from one whose
    /// process died.
    _writer: WriterLock,
}

/// A resumed run's folder before the resume: its rows, experiment and summary.
struct ResumeUndo {
    rows: usize,
    experiment: Vec<u8>,
    summary: Vec<u8>,
}

impl<S: EventSink> Recorder<S> {
    /// Writes `experiment.ron` and `summary` (`Running`) into `dir` right away, so a problem
    /// with the folder shows before training starts.
    pub fn start(
        inner: S,
        files: Arc<dyn RunFiles>,
        dir: PathBuf,
        experiment: &Experiment,
        topology: &Topology,
        summary: Summary,
    ) -> Result<Self, RunError> {
        let writer = WriterLock::take(&dir)?;
        files.replace(&[
            (dir.join(EXPERIMENT), experiment.to_ron().into_bytes()),
            (dir.join(SUMMARY), summary.to_ron().into_bytes()),
        ])?;
        Ok(Self {
            inner,
            files,
            rows: Vec::new(),
            steps: Vec::new(),
            flows: Vec::new(),
            saved: (0, 0, 0, summary.clone()),
            summary,
            skips_on: experiment.schedule.is_none() && !topology.skips().is_empty(),
            dir,
            undo: None,
            live_at: None,
            _writer: writer,
        })
    }

    /// Continues writing a saved run (`skiplab resume`): its rows go on from `saved`, and its
    /// experiment (as `saved` has it, with the resume recorded) and `summary` (running) are
    /// written.
    pub fn resume(
        inner: S,
        files: Arc<dyn RunFiles>,
        saved: &SavedRun,
        summary: Summary,
        more: usize,
    ) -> Result<Self, RunError> {
        // This process owns the folder now: whatever a killed one left half-written goes.
        let writer = WriterLock::take(&saved.dir)?;
        remove_stale_temps(&saved.dir, Duration::ZERO);
        // The run now trains all these epochs (its summary says where it was resumed).
        let mut experiment = saved.experiment.clone();
        experiment.epochs = saved.epochs.len() + more;
        files.replace(&[
            (saved.dir.join(EXPERIMENT), experiment.to_ron().into_bytes()),
            (saved.dir.join(SUMMARY), summary.to_ron().into_bytes()),
        ])?;
        let undo = Some(ResumeUndo {
            rows: saved.epochs.len(),
            experiment: saved.experiment.to_ron().into_bytes(),
            summary: saved.summary.to_ron().into_bytes(),
        });
        Ok(Self {
            inner,
            files,
            dir: saved.dir.clone(),
            rows: saved.epochs.clone(),
            steps: saved.steps.clone(),
            flows: saved.flows.clone(),
            saved: (
                saved.epochs.len(),
                saved.steps.len(),
                saved.flows.len(),
                summary.clone(),
            ),
            summary,
            skips_on: saved.epochs.last().is_some_and(|r| r.skips_on)
                || saved.summary.skips_enabled_after.is_some(),
            undo,
            live_at: None,
            _writer: writer,
        })
    }

    /// `rows` as the CSV file `name` in the run folder.
    fn csv<R: Serialize>(&self, name: &str, rows: &[R]) -> Result<Vec<u8>, RunError> {
        let path = self.dir.join(name);
        let mut writer = csv::Writer::from_writer(Vec::new());
        for row in rows {
            writer
                .serialize(row)
                .map_err(|e| err(&path, e.to_string()))?;
        }
        writer.into_inner().map_err(|e| err(&path, e.to_string()))
    }

    /// Saves epoch `epoch`: weights (the best ones too when it is the best epoch so far),
    /// metrics, steps and summary together, or none of them.
    fn save_epoch(
        &mut self,
        epoch: usize,
        topology: &Topology,
        params: &[HostParam],
    ) -> Result<(), RunError> {
        let id = self.dir.file_name().unwrap_or_default().to_string_lossy();
        let weights = weights_bytes(&self.dir.join(WEIGHTS), topology, params, epoch, &id)?;
        self.summary.weights_sha256 = Some(store::sha256_bytes(&weights));
        let best = match self.summary.best_epoch == Some(epoch) {
            true => vec![(self.dir.join(BEST), weights.clone())],
            false => Vec::new(),
        };
        self.files.replace(
            &[
                best,
                vec![
                    (self.dir.join(WEIGHTS), weights),
                    (self.dir.join(METRICS), self.csv(METRICS, &self.rows)?),
                    (self.dir.join(STEPS), self.csv(STEPS, &self.steps)?),
                    (
                        self.dir.join(FLOW),
                        self.csv(FLOW, &flow_rows(&self.flows))?,
                    ),
                    (self.dir.join(SUMMARY), self.summary.to_ron().into_bytes()),
                ],
            ]
            .concat(),
        )
    }
}

impl<S: EventSink> EventSink for Recorder<S> {
    fn emit(&mut self, mut event: TrainEvent) -> bool {
        self.summary.observe(&event);
        match &mut event {
            // Kept in memory until the epoch's weights arrive: the three files change together.
            TrainEvent::Epoch(m) => self.rows.push(EpochRow::from_metrics(m, self.skips_on)),
            TrainEvent::Step(m) => self.steps.push(m.clone()),
            TrainEvent::Flow(f) => self.flows.push(f.clone()),
            TrainEvent::SkipsEnabled { .. } => self.skips_on = true,
            TrainEvent::Progress {
                epoch,
                step,
                steps_per_epoch,
                loss,
            } => {
                let due = self.live_at.is_none_or(|t| t.elapsed() >= LIVE_INTERVAL);
                if due {
                    self.live_at = Some(std::time::Instant::now());
                    let live = Live {
                        epoch: *epoch,
                        step: *step,
                        steps_per_epoch: *steps_per_epoch,
                        loss: *loss,
                        steps: self.steps[self.saved.1..].to_vec(),
                        flows: flow_rows(&self.flows[self.saved.2..]),
                    };
                    let bytes = serde_json::to_vec(&live).expect("progress serialises");
                    // Best effort: watchers do without it; the epoch's files are the record.
                    let _ = self.files.replace(&[(self.dir.join(LIVE), bytes)]);
                }
            }
            TrainEvent::Ended { status, .. } => {
                let _ = std::fs::remove_file(self.dir.join(LIVE));
                let path = self.dir.join(SUMMARY);
                // Stopped before a new epoch (`resume | head -1`): nothing happened to the
                // run, so its folder says what it said before, a Finished run Finished.
                let undo = self
                    .undo
                    .as_ref()
                    .filter(|u| *status == RunStatus::Stopped && self.rows.len() == u.rows);
                let written = match undo {
                    Some(u) => self.files.replace(&[
                        (self.dir.join(EXPERIMENT), u.experiment.clone()),
                        (path, u.summary.clone()),
                    ]),
                    None => self
                        .files
                        .replace(&[(path, self.summary.to_ron().into_bytes())]),
                };
                if let (Err(e), false) = (written, matches!(status, RunStatus::Failed(_))) {
                    // Say so: the files still claim the run is running.
                    *status = RunStatus::Failed(format!("could not save the summary: {e}"));
                }
            }
            _ => {}
        }
        self.inner.emit(event)
    }

    fn wants_checkpoints(&self) -> bool {
        true
    }

    fn checkpoint(
        &mut self,
        epoch: usize,
        topology: &Topology,
        params: Vec<HostParam>,
    ) -> Result<(), String> {
        match self.save_epoch(epoch, topology, &params) {
            Ok(()) => {
                self.saved = (
                    self.rows.len(),
                    self.steps.len(),
                    self.flows.len(),
                    self.summary.clone(),
                );
                Ok(())
            }
            Err(e) => {
                // Back to what the files hold, so the final summary agrees with them.
                self.rows.truncate(self.saved.0);
                self.steps.truncate(self.saved.1);
                self.flows.truncate(self.saved.2);
                self.summary = self.saved.3.clone();
                Err(format!("could not save epoch {epoch}: {e}"))
            }
        }
    }
}

/// The weights as safetensors (f32, row-major), with the topology (JSON), the epoch they
/// were taken after and the id of the run they belong to in the metadata (`skiplab.topology`,
/// `skiplab.epoch`, `skiplab.run`). `path` only names the file in errors.
pub fn weights_bytes(
    path: &Path,
    topology: &Topology,
    params: &[HostParam],
    epoch: usize,
    run: &str,
) -> Result<Vec<u8>, RunError> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = params
        .iter()
        .map(|p| {
            let data = p.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (p.name.clone(), data, p.dims.clone())
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, data, dims)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, dims.clone(), data)
                .map(|view| (name.clone(), view))
                .map_err(|e| err(path, format!("parameter {name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let topology_json = serde_json::to_string(topology).map_err(|e| err(path, e.to_string()))?;
    let metadata = HashMap::from([
        ("skiplab.topology".to_string(), topology_json),
        ("skiplab.epoch".to_string(), epoch.to_string()),
        ("skiplab.run".to_string(), run.to_string()),
    ]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| err(path, e.to_string()))
}

/// Weights as read back from a run folder.
#[derive(Clone, Debug)]
pub struct Weights {
    pub topology: Topology,
    pub params: Vec<HostParam>,
    /// The epoch they were saved after (absent in files from before it was recorded).
    pub epoch: Option<usize>,
    /// The id of the run that saved them (likewise).
    pub run: Option<String>,
    /// SHA-256 of the file, as hex.
    pub sha256: String,
}

/// Reads weights back: the topology and epoch from the metadata and every parameter. The
/// topology is validated (its size included) before anything is built from it.
pub fn read_weights(path: &Path) -> Result<Weights, RunError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let corrupt = |e: safetensors::SafeTensorError| {
        err(path, format!("not a readable safetensors file: {e}"))
    };
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).map_err(corrupt)?;
    let metadata = metadata.metadata().clone().unwrap_or_default();
    let topology_json = metadata
        .get("skiplab.topology")
        .ok_or_else(|| err(path, "has no skiplab.topology in its metadata"))?;
    let topology: Topology = serde_json::from_str(topology_json)
        .map_err(|e| err(path, format!("its topology metadata is unreadable: {e}")))?;
    topology
        .validate()
        .map_err(|e| err(path, format!("its topology is invalid: {e}")))?;
    let epoch = match metadata.get("skiplab.epoch") {
        None => None,
        Some(text) => Some(
            text.parse()
                .map_err(|_| err(path, format!("its epoch metadata `{text}` is not a number")))?,
        ),
    };
    let tensors = safetensors::SafeTensors::deserialize(&bytes).map_err(corrupt)?;
    let mut params = Vec::new();
    for (name, view) in tensors.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(err(
                path,
                format!("parameter {name} is {:?}, expected F32", view.dtype()),
            ));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        params.push(HostParam {
            name,
            dims: view.shape().to_vec(),
            values,
        });
    }
    params.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Weights {
        topology,
        params,
        epoch,
        run: metadata.get("skiplab.run").cloned(),
        sha256: store::sha256_bytes(&bytes),
    })
}

/// A saved run as read back from its folder.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedRun {
    pub id: String,
    pub dir: PathBuf,
    pub experiment: Experiment,
    pub epochs: Vec<EpochRow>,
    /// Training loss and accuracy every few steps (none in runs saved before they were).
    pub steps: Vec<StepMetrics>,
    /// Gradient flow at the same steps (likewise).
    pub flows: Vec<FlowPoint>,
    pub summary: Summary,
}

impl SavedRun {
    /// The saved weights, checked to belong to this run: saved by this run (its id in their
    /// metadata), the very file its summary recorded (their digest), of the network
    /// `experiment.ron` trains (for a skip* run still in its first phase, that network without
    /// skips) and the epoch the metrics end with. Another run's weights copied in are refused,
    /// never trained.
    pub fn weights_to_resume(&self) -> Result<Weights, RunError> {
        let path = self.dir.join(WEIGHTS);
        let weights = read_weights(&path)?;
        if let Some(run) = weights.run.as_ref().filter(|r| **r != self.id) {
            return Err(err(
                &path,
                format!(
                    "holds the weights of run {run}, not of run {}; they belong to another run, so this one cannot resume from them",
                    self.id
                ),
            ));
        }
        if let Some(recorded) = self
            .summary
            .weights_sha256
            .as_ref()
            .filter(|d| **d != weights.sha256)
        {
            return Err(err(
                &path,
                format!(
                    "is not the file run {} saved (SHA-256 {}, but {SUMMARY} recorded {}); they belong to another run or were changed, so this one cannot resume from them",
                    self.id,
                    &weights.sha256[..12],
                    &recorded[..recorded.len().min(12)]
                ),
            ));
        }
        let mut expected = self
            .experiment
            .topology()
            .map_err(|e| err(&self.dir.join(EXPERIMENT), e.to_string()))?;
        if self.experiment.schedule.is_some() && self.summary.skips_enabled_after.is_none() {
            expected
                .apply_skips(&SkipSelection::None)
                .expect("removing skips always fits");
        }
        if weights.topology != expected {
            return Err(err(
                &path,
                format!(
                    "holds the weights of {}, but {EXPERIMENT} trains {}; they belong to another run, so this one cannot resume from them",
                    weights.topology.summary(),
                    expected.summary()
                ),
            ));
        }
        if let Some(epoch) = weights.epoch.filter(|&e| e != self.epochs.len()) {
            return Err(err(
                &path,
                format!(
                    "holds the weights after epoch {epoch}, but {METRICS} has {} epochs; the folder is inconsistent",
                    self.epochs.len()
                ),
            ));
        }
        Ok(weights)
    }
}

impl SavedRun {
    /// The best-validation epoch of the saved epochs, for a resume to go on comparing with:
    /// its weights from `best.safetensors` (or `last`, the resumed weights, when the last
    /// epoch is the best), or none where they were not kept (runs saved before they were).
    pub fn best_to_resume(&self, last: &Weights) -> Option<BestWeights> {
        let epoch = self.summary.best_epoch?;
        let val_accuracy = self.summary.best_val_accuracy?;
        let kept = match read_weights(&self.dir.join(BEST)) {
            Ok(best) if best.epoch == Some(epoch) => Some(best),
            _ if last.epoch == Some(epoch) => Some(last.clone()),
            _ => None,
        };
        Some(BestWeights {
            epoch,
            val_accuracy,
            topology: kept
                .as_ref()
                .map_or_else(|| last.topology.clone(), |w| w.topology.clone()),
            params: kept.map(|w| w.params),
        })
    }
}

pub fn read_metrics(path: &Path) -> Result<Vec<EpochRow>, RunError> {
    read_csv(path)
}

fn read_csv_if_there<R: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<R>, RunError> {
    match path.exists() {
        true => read_csv(path),
        false => Ok(Vec::new()),
    }
}

fn read_csv<R: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<R>, RunError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| err(path, e.to_string()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| err(path, format!("row {}: {e}", i + 1))))
        .collect()
}

/// A run's CSV file read as it grows, by a process that does not write it: each read parses
/// only the rows written since the one before. The recorder replaces the file whole by a
/// rename after each epoch, and a later file begins with the earlier one's rows, so the rows
/// past the bytes already read are the new ones; a file that got shorter (a resume undone)
/// is read again from the start. Only whole lines count: no half-written row is ever taken.
#[derive(Clone, Debug, Default)]
pub struct CsvTail {
    /// Bytes read so far (whole lines).
    offset: u64,
    header: Option<csv::StringRecord>,
    /// The size and modification time at the last read: unchanged, the file is not opened.
    stamp: Option<(u64, SystemTime)>,
}

/// What a [`CsvTail`] read found.
#[derive(Clone, Debug, PartialEq)]
pub enum Tail<R> {
    /// The file is as it was (or is not there yet).
    Same,
    /// Rows added since the last read.
    More(Vec<R>),
    /// The file was rewritten from the start: all its rows.
    Restarted(Vec<R>),
}

impl<R> Tail<R> {
    /// The rows read, whichever way.
    pub fn rows(self) -> Vec<R> {
        match self {
            Tail::Same => Vec::new(),
            Tail::More(rows) | Tail::Restarted(rows) => rows,
        }
    }
}

impl CsvTail {
    pub fn read<R: serde::de::DeserializeOwned>(
        &mut self,
        path: &Path,
    ) -> Result<Tail<R>, RunError> {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(Tail::Same);
        };
        let stamp = (
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        if self.stamp == Some(stamp) {
            return Ok(Tail::Same);
        }
        let restarted = stamp.0 < self.offset;
        if restarted {
            *self = CsvTail::default();
        }
        let mut file =
            std::fs::File::open(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| err(path, format!("cannot read: {e}")))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| err(path, format!("cannot read: {e}")))?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&bytes[..whole]);
        let mut rows = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| err(path, e.to_string()))?;
            match &self.header {
                None => self.header = Some(record),
                Some(header) => rows.push(
                    record
                        .deserialize(Some(header))
                        .map_err(|e| err(path, format!("row {}: {e}", i + 1)))?,
                ),
            }
        }
        self.offset += whole as u64;
        // Stamped only once every byte is read: a half-written last line is read again.
        self.stamp = (whole == bytes.len()).then_some(stamp);
        Ok(match (restarted, rows.is_empty()) {
            (true, _) => Tail::Restarted(rows),
            (false, true) => Tail::Same,
            (false, false) => Tail::More(rows),
        })
    }
}

/// How old a temporary file must be before a reader removes it: a write takes far less, so
/// older ones were left by a killed process.
pub const STALE_TEMP: Duration = Duration::from_secs(10 * 60);
/// The same where no process holds the run's writer lock: a temporary file then belongs to
/// nobody. (The minute is a margin for file systems whose locks other nodes do not see.)
pub const ORPHAN_TEMP: Duration = Duration::from_secs(60);

/// The lock file in a run folder that the process writing the run holds (`flock`), and
/// that the system releases when the process dies, however it dies.
pub const WRITER_LOCK: &str = ".writer.lock";

/// The writer lock of a run folder, held while a recorder writes it.
#[derive(Debug)]
pub struct WriterLock(#[allow(dead_code)] std::fs::File);

impl WriterLock {
    /// Takes the lock of `dir`, waiting a moment for readers (they hold it for the time it
    /// takes to ask); another writer holding it is an error, never a wait without end.
    pub fn take(dir: &Path) -> Result<Self, RunError> {
        let path = dir.join(WRITER_LOCK);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| err(&path, format!("cannot create: {e}")))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WriterLock(file)),
                Err(std::fs::TryLockError::WouldBlock)
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(err(
                        dir,
                        "is being written by another process (it holds the run's lock): wait until that run ends",
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(err(&path, format!("cannot lock: {e}")))
                }
            }
        }
    }
}

/// Whether the process that wrote `dir` is gone: `Some(true)` when nobody holds its writer
/// lock, `Some(false)` while someone does, `None` where there is no lock to ask (runs saved
/// before it, or a file system without locks).
pub fn writer_gone(dir: &Path) -> Option<bool> {
    let file = std::fs::File::open(dir.join(WRITER_LOCK)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => Some(true),
        Err(std::fs::TryLockError::WouldBlock) => Some(false),
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

/// What a `Running` summary whose writer is gone says instead.
pub const INTERRUPTED: &str = "interrupted: the process training it ended without recording how the run ended (killed, or its disk was full); `skiplab resume` trains it on";

/// Removes the temporary files (`.tmp*`) a killed write left in `dir`, if at least `age` old.
pub fn remove_stale_temps(dir: &Path, age: Duration) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let is_temp = entry.file_name().to_string_lossy().starts_with(".tmp");
        let old_enough = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|a| a >= age);
        if is_temp && old_enough && entry.path().is_file() {
            std::fs::remove_file(entry.path()).ok();
        }
    }
}

pub fn load_run(dir: &Path) -> Result<SavedRun, RunError> {
    if !dir.join(EXPERIMENT).exists() {
        return Err(err(
            &dir.join(EXPERIMENT),
            "is not there: without it the folder cannot be read as a run (what trained it is unknown)",
        ));
    }
    let gone = writer_gone(dir);
    let orphaned = gone == Some(true);
    remove_stale_temps(dir, if orphaned { ORPHAN_TEMP } else { STALE_TEMP });
    let experiment =
        Experiment::load(&dir.join(EXPERIMENT)).map_err(|e| err(&e.path, e.to_string()))?;
    let summary_path = dir.join(SUMMARY);
    let text = std::fs::read_to_string(&summary_path)
        .map_err(|e| err(&summary_path, format!("cannot read: {e}")))?;
    let mut summary = Summary::from_ron(&text, &summary_path)?;
    if orphaned && summary.status == RunState::Running {
        summary.status = RunStatus::Failed(INTERRUPTED.into()).into();
    }
    let epochs = read_csv_if_there(&dir.join(METRICS))?;
    summary.reconcile(&epochs);
    let steps = read_csv_if_there(&dir.join(STEPS))?;
    let flows = flow_points(read_csv_if_there(&dir.join(FLOW))?);
    Ok(SavedRun {
        id: dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        dir: dir.to_path_buf(),
        experiment,
        epochs,
        steps,
        flows,
        summary,
    })
}

/// Every saved run in `saves`, oldest first; unreadable ones with their error.
pub fn list_runs(saves: &Path) -> Vec<Result<SavedRun, RunError>> {
    list_runs_in(&[saves.to_path_buf()]).0
}

/// The runs of several saves folders merged (`--saves A --saves B`, machines' folders copied
/// side by side): a run id found in more than one folder is taken from the first, and the
/// folders it shadows are returned beside the runs.
pub fn list_runs_in(folders: &[PathBuf]) -> (Vec<Result<SavedRun, RunError>>, Vec<PathBuf>) {
    let mut seen = std::collections::HashSet::new();
    let (mut runs, mut shadowed) = (Vec::new(), Vec::new());
    for folder in folders {
        let mut dirs: Vec<PathBuf> = run_dirs(folder).collect();
        dirs.sort();
        for dir in dirs {
            let id = dir.file_name().unwrap_or_default().to_owned();
            if seen.insert(id) {
                runs.push(load_run(&dir));
            } else {
                shadowed.push(dir);
            }
        }
    }
    (runs, shadowed)
}

/// The run folders in `folder`: those holding any file a run writes (one that lost its
/// `experiment.ron` is listed, as unreadable, rather than skipped without a word).
fn run_dirs(folder: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            !hidden
                && p.is_dir()
                && [EXPERIMENT, SUMMARY, METRICS, WEIGHTS]
                    .iter()
                    .any(|f| p.join(f).exists())
        })
}

/// Finds a run by its id (an exact id always wins), by a path to its folder, or by a prefix
/// of the id that only one run has.
pub fn find_run(saves: &Path, key: &str) -> Result<PathBuf, RunError> {
    find_run_in(&[saves.to_path_buf()], key)
}

/// [`find_run`] over several saves folders: an exact id in any folder (the first that has
/// it) wins over a prefix, which must be one run's across all of them.
pub fn find_run_in(folders: &[PathBuf], key: &str) -> Result<PathBuf, RunError> {
    let saves = folders.first().map_or(Path::new("saves"), |f| f.as_path());
    for folder in folders {
        let exact = folder.join(key);
        if !key.is_empty() && exact.join(EXPERIMENT).exists() {
            return Ok(exact);
        }
    }
    let as_path = Path::new(key);
    if as_path.join(EXPERIMENT).exists() {
        return Ok(as_path.to_path_buf());
    }
    let mut matches: Vec<PathBuf> = Vec::new();
    for folder in folders {
        std::fs::read_dir(folder).map_err(|e| err(folder, format!("cannot list: {e}")))?;
        for dir in run_dirs(folder) {
            let name = dir.file_name().unwrap_or_default().to_owned();
            let taken = matches
                .iter()
                .any(|m| m.file_name() == Some(name.as_os_str()));
            if name.to_string_lossy().starts_with(key) && !taken {
                matches.push(dir);
            }
        }
    }
    matches.sort();
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(err(&saves.join(key), "no saved run by that id")),
        n => {
            let names: Vec<String> = matches
                .iter()
                .take(4)
                .map(|p| {
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            Err(err(
                &saves.join(key),
                format!(
                    "{n} saved runs start with that ({}{}); give more of the id",
                    names.join(", "),
                    if n > 4 { ", ..." } else { "" }
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD_SUMMARY: &str = r#"(
    status: "diverged: loss NaN at epoch 1, step 37",
    epochs_done: 0,
    best_val_accuracy: None,
    best_epoch: None,
    test_accuracy: None,
    params: 10,
    macs_per_sample: 10,
    mean_epoch_seconds: None,
    device: "cpu",
    started: "2026-11-30T10:00:00Z",
)"#;

    #[test]
    fn summaries_with_a_text_status_still_read_and_typed_ones_round_trip() {
        let p = Path::new("saves/x/summary.ron");
        let old = Summary::from_ron(OLD_SUMMARY, p).unwrap();
        let RunState::Ended(RunStatus::Diverged { epoch, step, loss }) = old.status else {
            panic!("{:?}", old.status)
        };
        assert_eq!((epoch, step), (1, 37));
        assert!(loss.is_nan());
        for (text, status) in [
            ("finished", RunStatus::Finished.into()),
            ("running", RunState::Running),
            (
                "failed: the disk is full",
                RunStatus::Failed("the disk is full".into()).into(),
            ),
        ] {
            let old = OLD_SUMMARY.replace("diverged: loss NaN at epoch 1, step 37", text);
            assert_eq!(Summary::from_ron(&old, p).unwrap().status, status);
        }
        let mut typed = old.clone();
        typed.status = RunStatus::Failed("could not save epoch 3: full".into()).into();
        let text = typed.to_ron();
        assert!(
            text.contains(r#"status: Failed("could not save epoch 3: full")"#),
            "{text}"
        );
        assert_eq!(Summary::from_ron(&text, p).unwrap(), typed);
        let e = Summary::from_ron("(status: Finished,", p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("saves/x/summary.ron: line "), "{e}");
    }

    #[test]
    fn a_value_that_is_not_a_number_is_no_best() {
        let mut summary = Summary::from_ron(OLD_SUMMARY, Path::new("s.ron")).unwrap();
        let row = |epoch, val_accuracy| EpochRow {
            epoch,
            train_loss: 1.0,
            train_accuracy: 0.5,
            val_loss: 1.0,
            val_accuracy,
            samples_per_sec: 1.0,
            seconds: 1.0,
            skips_on: false,
            skip_weights: String::new(),
            step: epoch,
        };
        summary.reconcile(&[row(1, f64::NAN), row(2, 0.7), row(3, 0.6)]);
        assert_eq!(
            (summary.best_val_accuracy, summary.best_epoch),
            (Some(0.7), Some(2))
        );
        summary.reconcile(&[row(1, f64::NAN)]);
        assert_eq!(summary.best_val_accuracy, None);
    }

    #[test]
    fn weights_naming_a_huge_network_are_refused_before_it_is_built() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(WEIGHTS);
        let huge = r#"{"Mlp":{"input":784,"hidden":[100000000,100000000],"classes":10}}"#;
        let metadata = HashMap::from([("skiplab.topology".to_string(), huge.to_string())]);
        let views: Vec<(String, safetensors::tensor::TensorView)> = Vec::new();
        std::fs::write(
            &path,
            safetensors::serialize(views, Some(metadata)).unwrap(),
        )
        .unwrap();
        let e = read_weights(&path).unwrap_err().to_string();
        assert!(
            e.contains("its topology is invalid: layer 1's width is 100000000"),
            "{e}"
        );
    }

    #[test]
    fn an_exact_id_wins_over_a_longer_one_it_prefixes() {
        let tmp = tempfile::tempdir().unwrap();
        for id in [
            "20261202-100000-mlp3-skips-s1",
            "20261202-100000-mlp3-skips-s1-2",
        ] {
            std::fs::create_dir(tmp.path().join(id)).unwrap();
            std::fs::write(tmp.path().join(id).join(EXPERIMENT), "").unwrap();
        }
        let found = find_run(tmp.path(), "20261202-100000-mlp3-skips-s1").unwrap();
        assert!(found.ends_with("20261202-100000-mlp3-skips-s1"));
        let e = find_run(tmp.path(), "20261202").unwrap_err().to_string();
        assert!(
            e.contains("2 saved runs start with that (20261202-100000-mlp3-skips-s1, "),
            "{e}"
        );
    }
}

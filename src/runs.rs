//! Saved runs: `saves/<run-id>/` holds
//! - `experiment.ron`: the experiment (a preset; `skiplab train --preset` reruns it),
//! - `metrics.csv`: one row per finished epoch,
//! - `weights.safetensors`: the weights after the latest epoch, the topology in its metadata,
//! - `summary.ron`: status, best and test accuracy, size and timing.
//!
//! Every file is rewritten whole through a temporary file and a rename after each epoch, so
//! a process killed at any moment leaves every finished epoch readable and no file torn.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::data::store::write_atomically;
use crate::experiment::Experiment;
use crate::net::HostParam;
use crate::topology::{SkipEdge, Topology};
use crate::train::{EpochMetrics, EventSink, RunStatus, TrainEvent};

pub const EXPERIMENT: &str = "experiment.ron";
pub const METRICS: &str = "metrics.csv";
pub const WEIGHTS: &str = "weights.safetensors";
pub const SUMMARY: &str = "summary.ron";

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
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// `running`, or how the run ended.
    pub status: String,
    pub epochs_done: usize,
    pub best_val_accuracy: Option<f64>,
    pub best_epoch: Option<usize>,
    pub test_accuracy: Option<f64>,
    pub params: usize,
    pub macs_per_sample: usize,
    pub mean_epoch_seconds: Option<f64>,
    pub device: String,
    /// When the run started, RFC 3339 UTC.
    pub started: String,
    #[serde(default)]
    pub skips_enabled_after: Option<usize>,
}

pub fn status_text(status: &RunStatus) -> String {
    match status {
        RunStatus::Finished => "finished".into(),
        RunStatus::Stopped => "stopped".into(),
        RunStatus::Diverged { epoch, step, loss } => {
            format!("diverged: loss {loss} at epoch {epoch}, step {step}")
        }
        RunStatus::Failed(m) => format!("failed: {m}"),
    }
}

/// A fresh `saves/<id>/` for a run of `experiment`: the id is the UTC start time and a
/// short description, made unique with a counter.
pub fn create_run_dir(saves: &Path, label: &str) -> Result<(String, PathBuf), RunError> {
    std::fs::create_dir_all(saves).map_err(|e| err(saves, format!("cannot create: {e}")))?;
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
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

/// Writes a run to disk as its events arrive, then passes each event on.
pub struct Recorder<S: EventSink> {
    inner: S,
    dir: PathBuf,
    rows: Vec<EpochRow>,
    summary: Summary,
    skips_on: bool,
    /// The first write that failed (the run goes on; the caller reports it).
    error: Arc<Mutex<Option<RunError>>>,
}

impl<S: EventSink> Recorder<S> {
    /// Writes `experiment.ron` and a `running` summary into `dir` right away, so a problem
    /// with the folder shows before training starts.
    pub fn start(
        inner: S,
        dir: PathBuf,
        experiment: &Experiment,
        topology: &Topology,
        device: &str,
    ) -> Result<Self, RunError> {
        write_atomically(&dir.join(EXPERIMENT), experiment.to_ron().as_bytes())?;
        let skip_star = experiment.schedule.is_some();
        let recorder = Self {
            inner,
            rows: Vec::new(),
            summary: Summary {
                status: "running".into(),
                epochs_done: 0,
                best_val_accuracy: None,
                best_epoch: None,
                test_accuracy: None,
                params: topology.param_count(),
                macs_per_sample: topology.macs_per_sample(),
                mean_epoch_seconds: None,
                device: device.to_string(),
                started: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                    .to_string(),
                skips_enabled_after: None,
            },
            skips_on: !skip_star && !topology.skips().is_empty(),
            error: Arc::new(Mutex::new(None)),
            dir,
        };
        recorder.write_summary()?;
        Ok(recorder)
    }

    /// Continues writing a saved run (`skiplab resume`): its rows and summary go on.
    pub fn resume(inner: S, saved: &SavedRun) -> Result<Self, RunError> {
        let mut summary = saved.summary.clone();
        summary.status = "running".into();
        let recorder = Self {
            inner,
            dir: saved.dir.clone(),
            rows: saved.epochs.clone(),
            summary,
            skips_on: saved.epochs.last().is_some_and(|r| r.skips_on)
                || saved.summary.skips_enabled_after.is_some(),
            error: Arc::new(Mutex::new(None)),
        };
        recorder.write_summary()?;
        Ok(recorder)
    }

    /// Where a failed write is reported (shared, so it can be read after the run).
    pub fn error_slot(&self) -> Arc<Mutex<Option<RunError>>> {
        Arc::clone(&self.error)
    }

    fn write_summary(&self) -> Result<(), RunError> {
        let text = ron::ser::to_string_pretty(&self.summary, Default::default())
            .map_err(|e| err(&self.dir.join(SUMMARY), e.to_string()))?;
        write_atomically(&self.dir.join(SUMMARY), text.as_bytes()).map_err(RunError::from)
    }

    fn write_metrics(&self) -> Result<(), RunError> {
        let path = self.dir.join(METRICS);
        let mut writer = csv::Writer::from_writer(Vec::new());
        for row in &self.rows {
            writer
                .serialize(row)
                .map_err(|e| err(&path, e.to_string()))?;
        }
        let bytes = writer.into_inner().map_err(|e| err(&path, e.to_string()))?;
        write_atomically(&path, &bytes).map_err(RunError::from)
    }

    fn record(&mut self, result: Result<(), RunError>) {
        if let Err(e) = result {
            let mut slot = self.error.lock().expect("not poisoned");
            slot.get_or_insert(e);
        }
    }

    fn observe(&mut self, event: &TrainEvent) {
        match event {
            TrainEvent::Epoch(m) => {
                self.rows.push(EpochRow::from_metrics(m, self.skips_on));
                let s = &mut self.summary;
                s.epochs_done = m.epoch;
                if s.best_val_accuracy.is_none_or(|b| m.val_accuracy > b) {
                    s.best_val_accuracy = Some(m.val_accuracy);
                    s.best_epoch = Some(m.epoch);
                }
                s.mean_epoch_seconds =
                    Some(self.rows.iter().map(|r| r.seconds).sum::<f64>() / self.rows.len() as f64);
                let written = self.write_metrics().and_then(|()| self.write_summary());
                self.record(written);
            }
            TrainEvent::SkipsEnabled { after_epoch, .. } => {
                self.skips_on = true;
                self.summary.skips_enabled_after = Some(*after_epoch);
                let written = self.write_summary();
                self.record(written);
            }
            TrainEvent::Ended {
                status,
                test_accuracy,
                ..
            } => {
                self.summary.status = status_text(status);
                self.summary.test_accuracy = *test_accuracy;
                let written = self.write_summary();
                self.record(written);
            }
            _ => {}
        }
    }
}

impl<S: EventSink> EventSink for Recorder<S> {
    fn emit(&mut self, event: TrainEvent) -> bool {
        self.observe(&event);
        self.inner.emit(event)
    }

    fn wants_checkpoints(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, _epoch: usize, topology: &Topology, params: Vec<HostParam>) {
        let written = write_weights(&self.dir.join(WEIGHTS), topology, &params);
        self.record(written);
    }
}

/// The weights as safetensors (f32, row-major), with the topology (JSON) in the metadata
/// under `skiplab.topology`.
pub fn write_weights(
    path: &Path,
    topology: &Topology,
    params: &[HostParam],
) -> Result<(), RunError> {
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
    let metadata = HashMap::from([("skiplab.topology".to_string(), topology_json)]);
    let serialized =
        safetensors::serialize(views, Some(metadata)).map_err(|e| err(path, e.to_string()))?;
    write_atomically(path, &serialized).map_err(RunError::from)
}

/// Reads weights back: the topology from the metadata and every parameter.
pub fn read_weights(path: &Path) -> Result<(Topology, Vec<HostParam>), RunError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let corrupt = |e: safetensors::SafeTensorError| {
        err(path, format!("not a readable safetensors file: {e}"))
    };
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).map_err(corrupt)?;
    let topology_json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get("skiplab.topology"))
        .ok_or_else(|| err(path, "has no skiplab.topology in its metadata"))?;
    let topology: Topology = serde_json::from_str(topology_json)
        .map_err(|e| err(path, format!("its topology metadata is unreadable: {e}")))?;
    topology
        .validate()
        .map_err(|e| err(path, format!("its topology is invalid: {e}")))?;
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
    Ok((topology, params))
}

/// A saved run as read back from its folder.
#[derive(Clone, Debug)]
pub struct SavedRun {
    pub id: String,
    pub dir: PathBuf,
    pub experiment: Experiment,
    pub epochs: Vec<EpochRow>,
    pub summary: Summary,
}

pub fn read_metrics(path: &Path) -> Result<Vec<EpochRow>, RunError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| err(path, e.to_string()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| err(path, format!("row {}: {e}", i + 1))))
        .collect()
}

pub fn load_run(dir: &Path) -> Result<SavedRun, RunError> {
    let experiment =
        Experiment::load(&dir.join(EXPERIMENT)).map_err(|e| err(&e.path, e.to_string()))?;
    let summary_path = dir.join(SUMMARY);
    let text = std::fs::read_to_string(&summary_path)
        .map_err(|e| err(&summary_path, format!("cannot read: {e}")))?;
    let summary: Summary = ron::from_str(&text).map_err(|e| {
        err(
            &summary_path,
            format!(
                "line {}, column {}: {}",
                e.span.start.line, e.span.start.col, e.code
            ),
        )
    })?;
    let metrics_path = dir.join(METRICS);
    let epochs = if metrics_path.exists() {
        read_metrics(&metrics_path)?
    } else {
        Vec::new()
    };
    Ok(SavedRun {
        id: dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        dir: dir.to_path_buf(),
        experiment,
        epochs,
        summary,
    })
}

/// Every saved run in `saves`, oldest first; unreadable ones with their error.
pub fn list_runs(saves: &Path) -> Vec<Result<SavedRun, RunError>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(saves)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join(EXPERIMENT).exists())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load_run(d)).collect()
}

/// Finds a run by id, by a unique prefix of it, or by path.
pub fn find_run(saves: &Path, key: &str) -> Result<PathBuf, RunError> {
    let as_path = Path::new(key);
    if as_path.join(EXPERIMENT).exists() {
        return Ok(as_path.to_path_buf());
    }
    let matches: Vec<PathBuf> = std::fs::read_dir(saves)
        .map_err(|e| err(saves, format!("cannot list: {e}")))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.join(EXPERIMENT).exists()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(key))
        })
        .collect();
    match matches.len() {
        1 => Ok(matches.into_iter().next().expect("one")),
        0 => Err(err(&saves.join(key), "no saved run by that id")),
        n => Err(err(
            &saves.join(key),
            format!("{n} saved runs start with that; give more of the id"),
        )),
    }
}

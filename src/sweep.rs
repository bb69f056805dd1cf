//! Sweeps: a base preset and axes (seeds, lr, L2, batch, skips, widths) expanded into a grid
//! of planned runs, each with a stable id made from its axis values, so that any process on
//! any machine (a local queue, a Slurm array task, a GNU parallel job) trains run N into the
//! same `saves/<id>` folder, and a rerun sees which are finished.
//!
//! ```ron
//! (
//!     name: "l2-lr",                 // default: the file's stem
//!     base: "../presets/quick.ron",  // relative to this file
//!     epochs: 5,                     // optional: overrides the base's
//!     seeds: [1, 2, 3],
//!     lr: [0.01, 0.05],
//!     weight_decay: [0.0, 0.0001],
//!     batch: [],                     // empty: the base's value
//!     skips: ["none", "all"],
//!     widths: ["128,256", "128,256,256"],
//! )
//! ```
//!
//! A sweep can also list its runs one by one (`runs: [(id: "...", experiment: (...)), ...]`,
//! no base or axes): `skiplab reproduce --emit-sweep` writes the paper's grid that way.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compare::{mean_sd, welch, SeedSummary, Spread};
use crate::experiment::{parse_widths, Experiment, Model, Optimizer, PresetError, Skips};
use crate::runs::{self, SavedRun};
use crate::train::{RunState, RunStatus};

/// A sweep file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    base: Option<PathBuf>,
    #[serde(default)]
    epochs: Option<usize>,
    #[serde(default)]
    seeds: Vec<u64>,
    #[serde(default)]
    lr: Vec<f64>,
    #[serde(default)]
    weight_decay: Vec<f64>,
    #[serde(default)]
    batch: Vec<usize>,
    #[serde(default)]
    skips: Vec<String>,
    #[serde(default)]
    widths: Vec<String>,
    /// Runs listed one by one instead of a base and axes.
    #[serde(default)]
    runs: Vec<ListedRun>,
}

/// A run of a sweep that lists its runs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListedRun {
    pub id: String,
    /// Runs that differ only in their seed share it [default: the id without `-s<seed>`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub experiment: Experiment,
}

/// What a sweep that lists its runs writes.
#[derive(Serialize)]
struct ListedSweep<'a> {
    name: &'a str,
    runs: &'a [ListedRun],
}

fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
}

/// One value of one axis.
#[derive(Clone, Debug, PartialEq)]
pub enum AxisValue {
    Lr(f64),
    WeightDecay(f64),
    Batch(usize),
    Skips(String),
    Widths(String),
    Seed(u64),
}

impl AxisValue {
    /// The axis's name, as in the sweep file.
    pub fn axis(&self) -> &'static str {
        match self {
            AxisValue::Lr(_) => "lr",
            AxisValue::WeightDecay(_) => "weight_decay",
            AxisValue::Batch(_) => "batch",
            AxisValue::Skips(_) => "skips",
            AxisValue::Widths(_) => "widths",
            AxisValue::Seed(_) => "seeds",
        }
    }

    /// The value as a reader wants it: `0.05`, `all`, `128,256`.
    pub fn value(&self) -> String {
        match self {
            AxisValue::Lr(v) | AxisValue::WeightDecay(v) => format!("{v}"),
            AxisValue::Batch(v) => v.to_string(),
            AxisValue::Skips(s) | AxisValue::Widths(s) => s.clone(),
            AxisValue::Seed(s) => s.to_string(),
        }
    }

    /// The value's part of a run id: letters, digits and `.+_-` only.
    fn id_part(&self) -> String {
        let plain = |text: &str| -> String {
            text.chars()
                .map(|c| match c {
                    ',' => '+',
                    ':' | '>' => '.',
                    '/' => '_',
                    c if c.is_ascii_alphanumeric() || "._+-".contains(c) => c,
                    _ => '_',
                })
                .collect()
        };
        match self {
            AxisValue::Lr(v) => format!("lr{v}"),
            AxisValue::WeightDecay(v) => format!("wd{v}"),
            AxisValue::Batch(v) => format!("b{v}"),
            AxisValue::Skips(s) => format!("sk{}", plain(s)),
            AxisValue::Widths(s) => format!("w{}", plain(s)),
            AxisValue::Seed(s) => format!("s{s}"),
        }
    }

    fn apply(&self, e: &mut Experiment) -> Result<(), String> {
        match self {
            AxisValue::Lr(v) => match &mut e.optimizer {
                Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } => *lr = *v,
            },
            AxisValue::WeightDecay(v) => e.weight_decay = *v,
            AxisValue::Batch(v) => e.batch = *v,
            AxisValue::Seed(v) => e.seed = *v,
            AxisValue::Skips(text) => {
                let parsed = Skips(
                    text.parse()
                        .map_err(|err| format!("skips `{text}`: {err}"))?,
                );
                match &mut e.model {
                    Model::Mlp { skips, .. } | Model::Cnn { skips, .. } => *skips = parsed,
                }
            }
            AxisValue::Widths(text) => {
                let stages = parse_widths(text).map_err(|err| format!("widths: {err}"))?;
                match &mut e.model {
                    Model::Mlp { widths, .. } => {
                        if stages.len() != 1 {
                            return Err(format!(
                                "widths `{text}`: an MLP takes one list of widths, not stages"
                            ));
                        }
                        *widths = stages.concat();
                    }
                    Model::Cnn { stages: s, .. } => *s = stages,
                }
            }
        }
        Ok(())
    }
}

/// One run of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRun {
    /// Position in the plan: a Slurm array index, a GNU parallel job's argument.
    pub index: usize,
    /// `<sweep>-<value>-...-s<seed>`: the folder in `saves/`.
    pub id: String,
    /// The axis values that made it, in axis order (seed last); none for a listed run.
    pub values: Vec<AxisValue>,
    pub experiment: Experiment,
    /// What the run is but for its seed: runs that differ only in the seed share it.
    pub group: String,
}

impl PlannedRun {
    pub fn configuration(&self) -> String {
        self.group.clone()
    }
}

fn group_of(values: &[AxisValue]) -> String {
    let parts: Vec<String> = values
        .iter()
        .filter(|v| !matches!(v, AxisValue::Seed(_)))
        .map(|v| format!("{} {}", v.axis(), v.value()))
        .collect();
    if parts.is_empty() {
        "base".into()
    } else {
        parts.join(" · ")
    }
}

/// A sweep file, loaded and expanded.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub name: String,
    /// The sweep file.
    pub path: PathBuf,
    /// The base preset, as read (with the file's `epochs` applied).
    pub base: Experiment,
    pub base_path: PathBuf,
    /// The axes with values, in the order they vary (the last fastest; seeds are last).
    pub axes: Vec<Vec<AxisValue>>,
    pub runs: Vec<PlannedRun>,
}

/// Where a planned run stands in a saves folder.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// No folder yet.
    Missing,
    /// A folder from an attempt that did not end (killed, stopped, failed, preempted): it is
    /// trained again from the start, so every result is what an uninterrupted run gives.
    Unfinished {
        epochs_done: usize,
        status: RunState,
    },
    /// Finished, or diverged (a result too: that learning rate is too high).
    Done(RunState),
    /// The folder holds another experiment under this id (the base preset changed since).
    Conflict(String),
}

impl Progress {
    pub fn is_done(&self) -> bool {
        matches!(self, Progress::Done(_))
    }
    pub fn describe(&self) -> String {
        match self {
            Progress::Missing => "to train".into(),
            Progress::Unfinished {
                epochs_done,
                status,
            } => format!(
                "unfinished ({}, {epochs_done} epochs): trains again",
                status.word()
            ),
            Progress::Done(status) => status.word().into(),
            Progress::Conflict(why) => format!("conflict: {why}"),
        }
    }
}

fn bad(path: &Path, message: impl Into<String>) -> PresetError {
    PresetError {
        path: path.to_path_buf(),
        at: None,
        message: message.into(),
    }
}

impl Sweep {
    pub fn load(path: &Path) -> Result<Self, PresetError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
        Self::from_ron(&text, path)
    }

    /// Parses a sweep file's text; `path` names it in errors and anchors `base`.
    pub fn from_ron(text: &str, path: &Path) -> Result<Self, PresetError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // `epochs: 5` as well as `epochs: Some(5)`.
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let file: SweepFile = options.from_str(text).map_err(|e| PresetError {
            path: path.to_path_buf(),
            at: Some((e.span.start.line, e.span.start.col)),
            message: e.code.to_string(),
        })?;
        let name = match &file.name {
            Some(name) => name.clone(),
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "sweep".into()),
        };
        if !plain_id(&name) {
            return Err(bad(
                path,
                format!("name `{name}`: use letters, digits, `.`, `_`, `+` and `-` (it starts every run id)"),
            ));
        }
        if !file.runs.is_empty() {
            return Self::listed(name, path, file);
        }
        let Some(base) = &file.base else {
            return Err(bad(
                path,
                "needs a `base` preset (and axes) or a list of `runs`",
            ));
        };
        // A file beside the sweep, else a preset name (`base: "quick"`).
        let mut base_path = path.parent().unwrap_or(Path::new(".")).join(base);
        let mut base = if base_path.is_file() {
            Experiment::load(&base_path)
        } else {
            let presets = crate::folders::default_presets_dir();
            crate::folders::resolve_preset(base, &presets).map(|(name, e)| {
                base_path = PathBuf::from(format!("preset {name}"));
                e
            })
        }
        .map_err(|e| bad(path, format!("base: {e}")))?;
        if let Some(epochs) = file.epochs {
            base.epochs = epochs;
        }
        // Axes in a fixed order, the seed last so one configuration's seeds are neighbours.
        let axes: Vec<Vec<AxisValue>> = [
            file.lr
                .iter()
                .map(|&v| AxisValue::Lr(v))
                .collect::<Vec<_>>(),
            file.weight_decay
                .iter()
                .map(|&v| AxisValue::WeightDecay(v))
                .collect(),
            file.batch.iter().map(|&v| AxisValue::Batch(v)).collect(),
            file.skips.iter().cloned().map(AxisValue::Skips).collect(),
            file.widths.iter().cloned().map(AxisValue::Widths).collect(),
            file.seeds.iter().map(|&v| AxisValue::Seed(v)).collect(),
        ]
        .into_iter()
        .filter(|axis| !axis.is_empty())
        .collect();
        for axis in &axes {
            let mut seen = HashSet::new();
            for v in axis {
                if !seen.insert(v.id_part()) {
                    return Err(bad(
                        path,
                        format!("{}: `{}` is listed twice", v.axis(), v.value()),
                    ));
                }
            }
        }
        let total = axes.iter().map(Vec::len).product::<usize>();
        if total > 100_000 {
            return Err(bad(
                path,
                format!("{total} runs: more than 100,000 in one sweep"),
            ));
        }
        let mut runs = Vec::with_capacity(total);
        for index in 0..total {
            // Mixed-radix digits of the index, the last axis fastest.
            let mut rest = index;
            let mut values = vec![AxisValue::Seed(0); axes.len()];
            for (k, axis) in axes.iter().enumerate().rev() {
                values[k] = axis[rest % axis.len()].clone();
                rest /= axis.len();
            }
            let mut experiment = base.clone();
            for v in &values {
                v.apply(&mut experiment)
                    .map_err(|e| bad(path, format!("run {index}: {e}")))?;
            }
            experiment
                .validate()
                .map_err(|e| bad(path, format!("run {index}: {e}")))?;
            let mut id = name.clone();
            for v in &values {
                id.push('-');
                id.push_str(&v.id_part());
            }
            runs.push(PlannedRun {
                index,
                id,
                group: group_of(&values),
                values,
                experiment,
            });
        }
        Ok(Sweep {
            name,
            path: path.to_path_buf(),
            base,
            base_path,
            axes,
            runs,
        })
    }

    /// A sweep of runs listed one by one (each experiment checked, ids plain and distinct).
    fn listed(name: String, path: &Path, file: SweepFile) -> Result<Self, PresetError> {
        let axes = !(file.seeds.is_empty()
            && file.lr.is_empty()
            && file.weight_decay.is_empty()
            && file.batch.is_empty()
            && file.skips.is_empty()
            && file.widths.is_empty()
            && file.base.is_none()
            && file.epochs.is_none());
        if axes {
            return Err(bad(
                path,
                "a sweep lists `runs` or has a base and axes, not both",
            ));
        }
        Self::from_runs(name, path, file.runs)
    }

    /// A sweep of these runs, `path` naming it (for errors and the report).
    pub fn from_runs(
        name: String,
        path: &Path,
        listed: Vec<ListedRun>,
    ) -> Result<Self, PresetError> {
        let mut seen = HashSet::new();
        let mut runs = Vec::with_capacity(listed.len());
        for (index, run) in listed.into_iter().enumerate() {
            if !plain_id(&run.id) {
                return Err(bad(
                    path,
                    format!("run {index}: id `{}` is not a plain name", run.id),
                ));
            }
            if !seen.insert(run.id.clone()) {
                return Err(bad(
                    path,
                    format!("run {index}: id `{}` is listed twice", run.id),
                ));
            }
            run.experiment
                .validate()
                .map_err(|e| bad(path, format!("run {index} ({}): {e}", run.id)))?;
            let group = run.group.clone().unwrap_or_else(|| {
                let seedless = run.id.rsplit_once("-s").filter(|(_, seed)| {
                    !seed.is_empty() && seed.chars().all(|c| c.is_ascii_digit())
                });
                seedless.map_or(run.id.clone(), |(group, _)| group.to_string())
            });
            runs.push(PlannedRun {
                index,
                id: run.id,
                values: Vec::new(),
                experiment: run.experiment,
                group,
            });
        }
        let Some(first) = runs.first() else {
            return Err(bad(path, "lists no runs"));
        };
        Ok(Sweep {
            name,
            path: path.to_path_buf(),
            base: first.experiment.clone(),
            base_path: path.to_path_buf(),
            axes: Vec::new(),
            runs,
        })
    }

    /// The sweep as a file that lists its runs (what [`Sweep::load`] reads back).
    pub fn to_listed_ron(&self) -> String {
        let runs: Vec<ListedRun> = self
            .runs
            .iter()
            .map(|r| ListedRun {
                id: r.id.clone(),
                group: Some(r.group.clone()),
                experiment: r.experiment.clone(),
            })
            .collect();
        let sweep = ListedSweep {
            name: &self.name,
            runs: &runs,
        };
        let config = ron::ser::PrettyConfig::new().struct_names(false);
        ron::ser::to_string_pretty(&sweep, config).expect("a sweep serialises")
    }

    /// Where each run stands in `saves` (where the sweep's runs are written).
    pub fn progress(&self, saves: &Path) -> Vec<Progress> {
        self.runs.iter().map(|r| progress(r, saves)).collect()
    }

    /// Where one run stands (an array task reads its own folder only, not the sweep's).
    pub fn progress_of(&self, run: &PlannedRun, saves: &Path) -> Progress {
        progress(run, saves)
    }

    /// The configuration whose values are the base preset's own (what every other is tested
    /// against), else the first.
    fn base_configuration(&self) -> String {
        let is_base = |run: &PlannedRun| {
            run.values.iter().all(|v| {
                let mut e = self.base.clone();
                v.apply(&mut e).is_ok() && (matches!(v, AxisValue::Seed(_)) || e == self.base)
            })
        };
        self.runs
            .iter()
            .find(|r| is_base(r))
            .or(self.runs.first())
            .map(PlannedRun::configuration)
            .unwrap_or_default()
    }
}

fn progress(run: &PlannedRun, saves: &Path) -> Progress {
    let dir = saves.join(&run.id);
    if !dir.join(runs::EXPERIMENT).exists() {
        return Progress::Missing;
    }
    match runs::load_run(&dir) {
        Err(_) => Progress::Unfinished {
            epochs_done: 0,
            status: RunStatus::Failed("unreadable".into()).into(),
        },
        Ok(saved) => progress_of_saved(run, &saved),
    }
}

/// Where a planned run stands, its folder read as `saved`.
pub fn progress_of_saved(run: &PlannedRun, saved: &SavedRun) -> Progress {
    if saved.experiment != run.experiment {
        return Progress::Conflict(format!(
            "{} holds another experiment (the base preset changed?): remove it or rename the sweep",
            saved.dir.display()
        ));
    }
    match &saved.summary.status {
        RunState::Ended(RunStatus::Finished)
            if saved.summary.epochs_done >= run.experiment.epochs =>
        {
            Progress::Done(RunStatus::Finished.into())
        }
        status @ RunState::Ended(RunStatus::Diverged { .. }) => Progress::Done(status.clone()),
        status => Progress::Unfinished {
            epochs_done: saved.summary.epochs_done,
            status: status.clone(),
        },
    }
}

/// A run's folder lock, held while one process trains it: a second process (a requeued
/// Slurm task, a second `sweep run`) leaves the run alone. Released when dropped or when the
/// process dies. The lock file sits beside the folder, which is replaced on a retry; while
/// held it names its holder (see [`lock_holder`]).
pub struct RunLock(#[allow(dead_code)] std::fs::File);

impl RunLock {
    /// `None` when another process holds it.
    pub fn try_take(saves: &Path, id: &str) -> std::io::Result<Option<Self>> {
        std::fs::create_dir_all(saves)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(saves.join(format!(".{id}.lock")))?;
        match file.try_lock() {
            Ok(()) => {
                // Who holds it, for `sweep watch`: the file is this process's now.
                use std::io::Write;
                let mut file = file;
                file.set_len(0)?;
                file.write_all(holder().as_bytes())?;
                Ok(Some(RunLock(file)))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// This process as a lock's holder: its Slurm array task where it is one, its host and pid.
fn holder() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into());
    let pid = std::process::id();
    match (
        std::env::var("SLURM_ARRAY_JOB_ID"),
        std::env::var("SLURM_ARRAY_TASK_ID"),
    ) {
        (Ok(job), Ok(task)) => format!("slurm {job}_{task} on {host} (pid {pid})"),
        _ => format!("pid {pid} on {host}"),
    }
}

/// Who trains run `id` of a sweep in `saves` now: the holder its lock names, while a process
/// holds it (`None` when none does, or the file system keeps no locks).
pub fn lock_holder(saves: &Path, id: &str) -> Option<String> {
    let path = saves.join(format!(".{id}.lock"));
    let file = std::fs::File::open(&path).ok()?;
    match file.try_lock_shared() {
        Err(std::fs::TryLockError::WouldBlock) => {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            Some(match text.trim() {
                "" => "another process".to_string(),
                who => who.to_string(),
            })
        }
        _ => None,
    }
}

/// `0,2,5-7`: indices as a Slurm `--array` list.
pub fn array_ranges(indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut k = 0;
    while k < indices.len() {
        let start = indices[k];
        let mut end = start;
        while k + 1 < indices.len() && indices[k + 1] == end + 1 {
            k += 1;
            end = indices[k];
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        k += 1;
    }
    parts.join(",")
}

/// The sweep's results as Markdown: one row per configuration (mean ± sd over its seeds,
/// Welch's t-test against the base configuration), the best value of each axis, and what is
/// missing. `saved` are the runs found (any folders); the plan's ids pick them out.
pub fn report(sweep: &Sweep, saved: &[SavedRun]) -> String {
    let found = |run: &PlannedRun| {
        saved.iter().find(|s| {
            s.id == run.id && s.experiment == run.experiment && s.summary.status.has_result()
        })
    };
    let mut out = String::new();
    let done: Vec<(&PlannedRun, &SavedRun)> = sweep
        .runs
        .iter()
        .filter_map(|r| found(r).map(|s| (r, s)))
        .collect();
    let _ = writeln!(
        out,
        "# Sweep {}\n\nBase: {} ({} epochs). {} runs planned, {} done{}.\n",
        sweep.name,
        sweep.base_path.display(),
        sweep.base.epochs,
        sweep.runs.len(),
        done.len(),
        if done.len() < sweep.runs.len() {
            format!(", {} missing (listed below)", sweep.runs.len() - done.len())
        } else {
            String::new()
        }
    );
    // Configurations in plan order, with their runs' best and test accuracies.
    let mut configurations: Vec<(String, Vec<&SavedRun>)> = Vec::new();
    for run in &sweep.runs {
        let key = run.configuration();
        if !configurations.iter().any(|(k, _)| *k == key) {
            configurations.push((key.clone(), Vec::new()));
        }
        if let Some(s) = found(run) {
            let entry = configurations.iter_mut().find(|(k, _)| *k == key);
            entry.expect("pushed above").1.push(s);
        }
    }
    let seeds = |runs: &[&SavedRun]| SeedSummary::of(runs.iter().map(|s| &s.summary));
    let pm = |values: &[f64]| Spread::of(values).map_or("-".to_string(), |s| s.text(100.0, 2));
    let base_key = sweep.base_configuration();
    let base_best = configurations
        .iter()
        .find(|(k, _)| *k == base_key)
        .map(|(_, runs)| seeds(runs).best_val)
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "| configuration | seeds | best val % | test % (best-val epoch) | s/epoch | best val vs base ({base_key}) |\n|---|---|---|---|---|---|"
    );
    for (key, runs) in &configurations {
        let summary = seeds(runs);
        let (val, test) = (&summary.best_val, &summary.test);
        let diverged = runs
            .iter()
            .filter(|s| matches!(s.summary.status.ended(), Some(RunStatus::Diverged { .. })))
            .count();
        let versus = if *key == base_key {
            "(base)".to_string()
        } else {
            match welch(val, &base_best) {
                Some(w) => format!(
                    "{:+.2} points, p = {:.3} ({})",
                    100.0 * w.difference,
                    w.p,
                    if w.p < 0.05 {
                        "beyond noise"
                    } else {
                        "within noise"
                    }
                ),
                None => "needs 2+ seeds on each side".into(),
            }
        };
        let _ = writeln!(
            out,
            "| {key} | {}{} | {} | {} | {} | {versus} |",
            runs.len(),
            if diverged > 0 {
                format!(" ({diverged} diverged)")
            } else {
                String::new()
            },
            pm(val),
            pm(test),
            summary
                .mean_epoch_seconds()
                .map_or("-".into(), |s| format!("{s:.2}")),
        );
    }
    // The best value of each axis: its mean best val over every run that has it.
    let varying: Vec<&Vec<AxisValue>> = sweep
        .axes
        .iter()
        .filter(|a| a.len() > 1 && !matches!(a[0], AxisValue::Seed(_)))
        .collect();
    if !varying.is_empty() {
        let _ = writeln!(
            out,
            "\nBest per axis (mean best val over every run with the value):\n"
        );
        for axis in varying {
            let means: Vec<(String, Option<f64>, usize)> = axis
                .iter()
                .map(|value| {
                    let vals: Vec<f64> = done
                        .iter()
                        .filter(|(r, _)| r.values.contains(value))
                        .filter_map(|(_, s)| s.summary.best_val_accuracy)
                        .collect();
                    let mean = (!vals.is_empty()).then(|| mean_sd(&vals).0);
                    (value.value(), mean, vals.len())
                })
                .collect();
            let top = means
                .iter()
                .filter_map(|(v, m, _)| m.map(|m| (v.clone(), m)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let list: Vec<String> = means
                .iter()
                .map(|(v, m, n)| match m {
                    Some(m) => format!("{v}: {:.2} ({n} runs)", 100.0 * m),
                    None => format!("{v}: -"),
                })
                .collect();
            let _ = writeln!(
                out,
                "- {}: **{}** ({})",
                axis[0].axis(),
                top.map_or("-".into(), |(v, _)| v),
                list.join(", ")
            );
        }
    }
    let missing: Vec<&PlannedRun> = sweep.runs.iter().filter(|r| found(r).is_none()).collect();
    if !missing.is_empty() {
        let _ = writeln!(out, "\nMissing ({}):\n", missing.len());
        for run in missing {
            let _ = writeln!(out, "- [{}] {}", run.index, run.id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(text: &str) -> Result<Sweep, PresetError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("base.ron"),
            r#"(dataset: "builtin", model: Mlp(widths: [16], skips: "none"),
                optimizer: Sgd(lr: 0.01, momentum: 0.9), batch: 64, epochs: 1)"#,
        )
        .unwrap();
        let path = dir.path().join("grid.ron");
        Sweep::from_ron(text, &path)
    }

    #[test]
    fn the_grid_is_the_product_of_the_axes_with_stable_ids() {
        let s = sweep(
            r#"(base: "base.ron", seeds: [1, 2], lr: [0.01, 0.05], skips: ["none", "0-2"], epochs: Some(3))"#,
        )
        .unwrap();
        assert_eq!(s.name, "grid");
        assert_eq!(s.runs.len(), 8);
        let ids: Vec<&str> = s.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids[0], "grid-lr0.01-sknone-s1");
        assert_eq!(ids[1], "grid-lr0.01-sknone-s2", "seeds vary fastest");
        assert_eq!(ids[3], "grid-lr0.01-sk0-2-s2");
        assert_eq!(ids[7], "grid-lr0.05-sk0-2-s2");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 8, "unique");
        let r = &s.runs[7];
        assert_eq!(r.experiment.seed, 2);
        assert_eq!(r.experiment.epochs, 3);
        assert!(matches!(r.experiment.optimizer, Optimizer::Sgd { lr, .. } if lr == 0.05));
        assert_eq!(r.experiment.topology().unwrap().skips().len(), 1);
        assert_eq!(r.configuration(), "lr 0.05 · skips 0-2");
        // The same file gives the same plan.
        let again = sweep(
            r#"(base: "base.ron", seeds: [1, 2], lr: [0.01, 0.05], skips: ["none", "0-2"], epochs: Some(3))"#,
        )
        .unwrap();
        assert_eq!(again.runs, s.runs);
        // The base configuration is the one with the base's own values.
        assert_eq!(s.base_configuration(), "lr 0.01 · skips none");
    }

    #[test]
    fn bad_sweeps_name_the_file_and_the_problem() {
        let e = sweep(r#"(base: "base.ron", sedes: [1])"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("grid.ron:1:") && e.contains("sedes"), "{e}");
        let e = sweep(r#"(base: "nope.ron")"#).unwrap_err().to_string();
        assert!(e.contains("base:") && e.contains("nope.ron"), "{e}");
        let e = sweep(r#"(base: "base.ron", lr: [0.1, 0.1])"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lr: `0.1` is listed twice"), "{e}");
        let e = sweep(r#"(base: "base.ron", lr: [-1.0])"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("run 0") && e.contains("lr"), "{e}");
        let e = sweep(r#"(base: "base.ron", skips: ["9-2"])"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("run 0"), "{e}");
        let e = sweep(r#"(base: "base.ron", widths: ["16/16"])"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("one list of widths"), "{e}");
        let e = sweep(r#"(name: "a b", base: "base.ron")"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("name `a b`"), "{e}");
    }

    #[test]
    fn a_listed_sweep_round_trips_through_its_file() {
        let skipstar = Experiment::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/presets/fashion-mlp3-skipstar.ron"
        )))
        .unwrap();
        assert!(skipstar.schedule.is_some());
        let runs = (1..=2)
            .map(|seed| ListedRun {
                id: format!("paper-x-s{seed}"),
                group: None,
                experiment: Experiment {
                    seed,
                    ..skipstar.clone()
                },
            })
            .collect();
        let path = Path::new("listed.ron");
        let sweep = Sweep::from_runs("listed".into(), path, runs).unwrap();
        assert_eq!(sweep.runs[1].group, "paper-x", "the id without its seed");
        let back = Sweep::from_ron(&sweep.to_listed_ron(), path).unwrap();
        assert_eq!(back.runs, sweep.runs);
        assert_eq!(back.name, "listed");
        let e = Sweep::from_ron(r#"(name: "x", runs: [], lr: [0.1])"#, path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs a `base`"), "{e}");
    }

    #[test]
    fn array_lists_compress_runs_of_indices() {
        assert_eq!(array_ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(array_ranges(&[3]), "3");
        assert_eq!(array_ranges(&[]), "");
    }

    #[test]
    fn a_lock_is_held_once() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(lock_holder(dir.path(), "x"), None);
        let first = RunLock::try_take(dir.path(), "x").unwrap();
        assert!(first.is_some());
        assert!(RunLock::try_take(dir.path(), "x").unwrap().is_none());
        // It names its holder while held.
        let holder = lock_holder(dir.path(), "x").unwrap();
        assert!(
            holder.starts_with(&format!("pid {} on ", std::process::id())),
            "{holder}"
        );
        drop(first);
        assert_eq!(lock_holder(dir.path(), "x"), None);
        assert!(RunLock::try_take(dir.path(), "x").unwrap().is_some());
    }
}

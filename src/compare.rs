//! Comparing runs, with no terminal and no files: what tells runs apart (the rest is common),
//! which runs differ only in their seed (a group), curves on an epoch, step or wall-clock
//! axis, TensorBoard's debiased smoothing, and Welch's t-test between two groups.

use std::fmt;

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::experiment::{Experiment, Model};
use crate::hyperparams::Schedule;
use crate::topology::{BlockOrder, Downsample, EdgeKind, Head, Shortcut, SkipEdge, Topology};
use crate::train::{EpochMetrics, FlowPoint, StepMetrics};

/// One aspect of a run, as a short phrase: `skips 1-4,2-5`, `lr 0.05`, `seed 2`.
pub type Facet = (&'static str, String);

/// The facet that only tells seeds apart: every other facet is the configuration.
pub const SEED: &str = "seed";

/// What a run is, aspect by aspect, in the order a description reads: the skip edges first
/// (the thing being compared, with their kind), then the network, the data, the optimiser,
/// the schedule, and the seed last. Every field of the experiment that changes the network or
/// its training is a facet, and so are the epochs a resume added (`resumed_after`: the
/// epochs after which the run was resumed), because a resumed run's optimiser restarts.
pub fn facets(experiment: &Experiment, resumed_after: &[usize]) -> Vec<Facet> {
    let topology = match experiment.topology() {
        Ok(t) => t,
        Err(e) => {
            return vec![
                ("net", format!("invalid: {e}")),
                (SEED, format!("seed {}", experiment.seed)),
            ]
        }
    };
    let layout = match &experiment.model {
        Model::Cnn {
            shortcut,
            downsample,
            head,
            order,
            ..
        } => cnn_layout(*shortcut, *downsample, *head, *order),
        Model::Mlp { .. } => String::new(),
    };
    let (activation, init, norm) = match &experiment.model {
        Model::Mlp {
            activation,
            init,
            norm,
            ..
        } => (
            activation.name().to_string(),
            format!("{} init", init.name()),
            norm.label().to_string(),
        ),
        // A CNN's activation and initialisation are fixed (ReLU, He).
        Model::Cnn { norm, .. } => (String::new(), String::new(), norm.label().to_string()),
    };
    let (optimizer, lr) = (experiment.optimizer.text(), experiment.optimizer.lr());
    let schedule = match experiment.schedule {
        Some(Schedule::SkipStar {
            max_vanilla_epochs,
            patience,
        }) => format!("skip* (vanilla up to {max_vanilla_epochs} epochs, patience {patience})"),
        None => String::new(),
    };
    let epochs = if resumed_after.is_empty() {
        match experiment.epochs {
            1 => "1 epoch".to_string(),
            n => format!("{n} epochs"),
        }
    } else {
        // 2 epochs, resumed for 5 more: `2+5 epochs`.
        let mut parts = Vec::new();
        let mut done = 0;
        for &after in resumed_after {
            parts.push((after - done.min(after)).to_string());
            done = after;
        }
        parts.push(experiment.epochs.saturating_sub(done).to_string());
        format!("{} epochs", parts.join("+"))
    };
    vec![
        ("skips", skip_text(&topology)),
        ("schedule", schedule),
        ("net", topology.shape_text()),
        ("activation", activation),
        ("init", init),
        ("norm", norm),
        ("layout", layout),
        ("data", experiment.dataset.to_string()),
        (
            "val",
            format!("val {}%", trim_float(100.0 * experiment.val_fraction)),
        ),
        ("optimizer", optimizer),
        ("lr", format!("lr {lr}")),
        ("wd", format!("wd {}", experiment.weight_decay)),
        ("batch", format!("batch {}", experiment.batch)),
        ("epochs", epochs),
        (SEED, format!("seed {}", experiment.seed)),
    ]
}

/// A CNN's choices beside its widths, where they are not the paper's: `strided`, `avg-pool
/// head`, `pad shortcuts`, joined by commas (empty for the paper's layout).
pub fn cnn_layout(
    shortcut: Shortcut,
    downsample: Downsample,
    head: Head,
    order: BlockOrder,
) -> String {
    let mut parts = Vec::new();
    if order == BlockOrder::Pre {
        parts.push("pre-activation".to_string());
    }
    if downsample == Downsample::Stride {
        parts.push("strided".to_string());
    }
    if head == Head::Average {
        parts.push("avg-pool head".to_string());
    }
    if shortcut != Shortcut::default() {
        parts.push(format!("{} shortcuts", shortcut.name()));
    }
    parts.join(", ")
}

/// One aspect in which two runs' configurations differ: its name and each run's value
/// (empty where a run has none, like a CNN's activation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub facet: &'static str,
    pub a: String,
    pub b: String,
}

/// Where run `a`'s configuration differs from run `b`'s, facet by facet in description order,
/// the skip edges spelled edge by edge (only in a, only in b, and of another kind).
pub fn differences(a: &Experiment, b: &Experiment) -> Vec<Difference> {
    let (fa, fb) = (facets(a, &[]), facets(b, &[]));
    let value = |facets: &[Facet], name: &str| {
        facets
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let mut names: Vec<&'static str> = fa.iter().map(|(n, _)| *n).collect();
    names.extend(
        fb.iter()
            .map(|(n, _)| *n)
            .filter(|n| !fa.iter().any(|(m, _)| m == n)),
    );
    let mut out: Vec<Difference> = names
        .into_iter()
        .map(|facet| Difference {
            facet,
            a: value(&fa, facet),
            b: value(&fb, facet),
        })
        .filter(|d| d.a != d.b)
        .collect();
    if let (Ok(ta), Ok(tb)) = (a.topology(), b.topology()) {
        let edges = |t: &Topology, other: &Topology| -> Vec<String> {
            t.skips()
                .iter()
                .filter(|e| !other.skips().contains(e))
                .map(|e| e.to_string())
                .collect()
        };
        let (only_a, only_b) = (edges(&ta, &tb), edges(&tb, &ta));
        if !only_a.is_empty() || !only_b.is_empty() {
            out.push(Difference {
                facet: "edges on in one only",
                a: only_a.join(","),
                b: only_b.join(","),
            });
        }
        let kinds: Vec<SkipEdge> = ta
            .skips()
            .iter()
            .filter(|&&e| tb.skips().contains(&e) && ta.edge_kind(e) != tb.edge_kind(e))
            .copied()
            .collect();
        if !kinds.is_empty() {
            let kind = |t: &Topology| {
                kinds
                    .iter()
                    .map(|&e| match t.edge_kind(e) {
                        Some(EdgeKind::Residual) => format!("{e} residual"),
                        _ => format!("{e} concat"),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            out.push(Difference {
                facet: "edge kinds",
                a: kind(&ta),
                b: kind(&tb),
            });
        }
    }
    out
}

/// `10` for 10.0, `12.5` for 12.5 (no float noise: 100 * 0.1 is 10.000000000000002).
fn trim_float(v: f64) -> String {
    let text = format!("{v:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The enabled skip edges with their kind: `vanilla`, `all 3 skips`, `skips 0-2,1-3`,
/// `residual 0-2,2-4`, or both kinds: `skips 0-3 + residual 0-2,2-4`.
pub fn skip_text(topology: &Topology) -> String {
    let candidates = topology.candidate_edges().len();
    let (residual, concat): (Vec<SkipEdge>, Vec<SkipEdge>) = topology
        .skips()
        .iter()
        .partition(|&&e| topology.edge_kind(e) == Some(EdgeKind::Residual));
    let list = |edges: &[SkipEdge], all: &str, some: &str| -> Option<String> {
        match edges.len() {
            0 => None,
            n if n == candidates && n > 1 => Some(format!("all {n} {all}")),
            _ => {
                let names: Vec<String> = edges.iter().map(SkipEdge::to_string).collect();
                Some(format!("{some} {}", names.join(",")))
            }
        }
    };
    let parts: Vec<String> = [
        list(&concat, "skips", "skips"),
        list(&residual, "residual skips", "residual"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "vanilla".to_string()
    } else {
        parts.join(" + ")
    }
}

/// Runs described against each other.
#[derive(Clone, Debug, PartialEq)]
pub struct Described {
    /// What every run shares (for a title).
    pub common: String,
    /// What sets each run apart; empty where nothing does.
    pub each: Vec<String>,
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The facets every run shares go into `common`; each run's others into its description.
pub fn describe(runs: &[Vec<Facet>]) -> Described {
    let Some(first) = runs.first() else {
        return Described {
            common: String::new(),
            each: Vec::new(),
        };
    };
    // Once per facet, not once per run and facet: a lab watching 1,000 runs describes them
    // every frame.
    let shared: Vec<bool> = (0..first.len())
        .map(|k| runs.iter().all(|r| r.get(k) == first.get(k)))
        .collect();
    let shared = |k: usize| shared.get(k).copied().unwrap_or(false);
    let common = join(
        (0..first.len())
            .filter(|&k| shared(k))
            .map(|k| first[k].1.clone()),
    );
    let each = runs
        .iter()
        .map(|r| join((0..r.len()).filter(|&k| !shared(k)).map(|k| r[k].1.clone())))
        .collect();
    Described { common, each }
}

/// [`describe`] without the seeds: what each run's configuration is against the others
/// (the seeds of one configuration get the same description).
pub fn describe_configurations(runs: &[Vec<Facet>]) -> Described {
    let unseeded: Vec<Vec<Facet>> = runs
        .iter()
        .map(|f| f.iter().filter(|(n, _)| *n != SEED).cloned().collect())
        .collect();
    describe(&unseeded)
}

/// What runs of one configuration share: every facet but the seed.
pub fn group_key(facets: &[Facet]) -> String {
    join(
        facets
            .iter()
            .filter(|(name, _)| *name != SEED)
            .map(|(_, v)| v.clone()),
    )
}

/// One configuration's runs, sample by sample. A sample is a seed: runs of one
/// configuration that share their seed (the same run trained twice) are one sample, never
/// independent ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Configuration {
    /// Indices of its runs, in order.
    pub members: Vec<usize>,
    /// The runs of each distinct seed, in order of first appearance.
    pub samples: Vec<Vec<usize>>,
}

impl Configuration {
    /// Runs beyond the first of their seed: repeats, not samples.
    pub fn repeats(&self) -> usize {
        self.members.len() - self.samples.len()
    }

    /// One value per sample that has one: the mean over its runs' values.
    pub fn values(&self, value: impl Fn(usize) -> Option<f64>) -> Vec<f64> {
        sample_means(&self.samples, value)
    }
}

/// One value per sample (the runs of one seed) that has one: the mean over its runs' values.
pub fn sample_means(samples: &[Vec<usize>], value: impl Fn(usize) -> Option<f64>) -> Vec<f64> {
    samples
        .iter()
        .filter_map(|runs| {
            let values: Vec<f64> = runs.iter().filter_map(|&i| value(i)).collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        })
        .collect()
}

/// The runs (given by their facets) as configurations, in order of first appearance: runs
/// whose facets agree but for the seed are one configuration, and within it runs of one seed
/// are one sample.
pub fn configurations(runs: &[Vec<Facet>]) -> Vec<Configuration> {
    let seed = |f: &[Facet]| f.iter().find(|(n, _)| *n == SEED).map(|(_, v)| v.clone());
    let keys: Vec<String> = runs.iter().map(|f| group_key(f)).collect();
    groups(&keys)
        .into_iter()
        .map(|members| {
            let seeds: Vec<Option<String>> = members.iter().map(|&i| seed(&runs[i])).collect();
            let samples = groups_by(&seeds)
                .into_iter()
                .map(|g| g.into_iter().map(|k| members[k]).collect())
                .collect();
            Configuration { members, samples }
        })
        .collect()
}

/// Groups of indices into `keys` with equal keys, in order of first appearance.
pub fn groups(keys: &[String]) -> Vec<Vec<usize>> {
    groups_by(keys)
}

fn groups_by<K: PartialEq>(keys: &[K]) -> Vec<Vec<usize>> {
    let mut out: Vec<(&K, Vec<usize>)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => out.push((key, vec![i])),
        }
    }
    out.into_iter().map(|(_, members)| members).collect()
}

/// Mean and sample standard deviation (0 for one value, NaN for none). Where a spread is
/// shown, use [`Spread`]: one value has no standard deviation.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// What the runs of one configuration came to over their seeds: best validation accuracy,
/// test accuracy at the best-validation epoch, and seconds per epoch, each from the runs that
/// have one (a run that diverged before its first epoch has none: it is counted, not averaged
/// in as zero). `train --seeds` and `sweep report` both print this.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeedSummary {
    pub runs: usize,
    pub best_val: Vec<f64>,
    pub test: Vec<f64>,
    pub epoch_seconds: Vec<f64>,
}

impl SeedSummary {
    pub fn of<'a>(runs: impl IntoIterator<Item = &'a crate::runs::Summary>) -> Self {
        let mut out = SeedSummary::default();
        for run in runs {
            out.runs += 1;
            out.best_val.extend(run.best_val_accuracy);
            out.test.extend(run.test_accuracy);
            out.epoch_seconds.extend(run.mean_epoch_seconds);
        }
        out
    }

    pub fn best_val_spread(&self) -> Option<Spread> {
        Spread::of(&self.best_val)
    }

    pub fn test_spread(&self) -> Option<Spread> {
        Spread::of(&self.test)
    }

    /// Mean seconds per epoch, if any run has finished an epoch.
    pub fn mean_epoch_seconds(&self) -> Option<f64> {
        Spread::of(&self.epoch_seconds).map(|s| s.mean)
    }
}

/// A value over samples as a report gives it: the mean, and the sample standard deviation
/// where there are two samples or more (of one sample it is undefined).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub sd: Option<f64>,
    pub n: usize,
}

impl Spread {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let (mean, sd) = mean_sd(values);
        Some(Spread {
            mean,
            sd: (values.len() > 1).then_some(sd),
            n: values.len(),
        })
    }

    /// `84.03 ± 0.41` or `84.03 (n=1)`, values times `scale` (100 for percentages).
    pub fn text(&self, scale: f64, decimals: usize) -> String {
        match self.sd {
            Some(sd) => format!(
                "{:.decimals$} ± {:.decimals$}",
                scale * self.mean,
                scale * sd
            ),
            None => format!("{:.decimals$} (n=1)", scale * self.mean),
        }
    }
}

/// Welch's t-test of two samples' means (unequal variances).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Welch {
    /// Mean of `a` minus mean of `b`.
    pub difference: f64,
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    pub n: (usize, usize),
}

/// `None` with fewer than two values on a side, or no spread on both (no test is possible).
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let ((ma, sa), (mb, sb)) = (mean_sd(a), mean_sd(b));
    let (va, vb) = (sa * sa / a.len() as f64, sb * sb / b.len() as f64);
    if va + vb == 0.0 {
        return None;
    }
    let t = (ma - mb) / (va + vb).sqrt();
    let df =
        (va + vb).powi(2) / (va * va / (a.len() as f64 - 1.0) + vb * vb / (b.len() as f64 - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(Welch {
        difference: ma - mb,
        t,
        df,
        p: 2.0 * (1.0 - dist.cdf(t.abs())),
        n: (a.len(), b.len()),
    })
}

impl fmt::Display for Welch {
    /// `p = 0.130 (Welch's t-test, 3 vs 3 seeds)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = if self.p < 0.001 {
            "p < 0.001".to_string()
        } else {
            format!("p = {:.3}", self.p)
        };
        write!(
            f,
            "{p} (Welch's t-test, {} vs {} seeds)",
            self.n.0, self.n.1
        )
    }
}

/// TensorBoard's smoothing: an exponential moving average with weight `w` in [0, 1),
/// debiased so the first points are not pulled towards zero.
pub fn smooth(values: &[f64], w: f64) -> Vec<f64> {
    let mut last = 0.0;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            last = last * w + (1.0 - w) * v;
            let debias = 1.0 - w.powi(i as i32 + 1);
            if debias > 0.0 {
                last / debias
            } else {
                v
            }
        })
        .collect()
}

/// The horizontal axis of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XAxis {
    #[default]
    Epoch,
    Step,
    /// Wall-clock seconds since the run started: accuracy against training time.
    Seconds,
}

impl XAxis {
    pub fn next(self) -> Self {
        match self {
            XAxis::Epoch => XAxis::Step,
            XAxis::Step => XAxis::Seconds,
            XAxis::Seconds => XAxis::Epoch,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            XAxis::Epoch => "epoch",
            XAxis::Step => "step",
            XAxis::Seconds => "seconds",
        }
    }
}

/// The curve a comparison shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Metric {
    #[default]
    ValAccuracy,
    TrainAccuracy,
    TrainLoss,
    ValLoss,
    /// log10 of the first layer's gradient norm: where a vanishing gradient shows.
    FirstLayerGradient,
}

impl Metric {
    pub fn next(self) -> Self {
        match self {
            Metric::ValAccuracy => Metric::TrainAccuracy,
            Metric::TrainAccuracy => Metric::TrainLoss,
            Metric::TrainLoss => Metric::ValLoss,
            Metric::ValLoss => Metric::FirstLayerGradient,
            Metric::FirstLayerGradient => Metric::ValAccuracy,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Metric::ValAccuracy => "val acc",
            Metric::TrainAccuracy => "train acc",
            Metric::TrainLoss => "train loss",
            Metric::ValLoss => "val loss",
            Metric::FirstLayerGradient => "log10 layer-1 |grad|",
        }
    }
    pub fn is_accuracy(self) -> bool {
        matches!(self, Metric::ValAccuracy | Metric::TrainAccuracy)
    }
    /// Whether higher is better (accuracies) or lower (losses).
    pub fn higher_is_better(self) -> bool {
        self.is_accuracy()
    }
}

/// One run's `metric` against `x`. Validation figures exist per epoch, at the step and time
/// the epoch ended; training figures come every few steps (per epoch on the epoch axis, or
/// where a run has no step points).
pub fn series(
    epochs: &[EpochMetrics],
    steps: &[StepMetrics],
    flows: &[FlowPoint],
    x: XAxis,
    metric: Metric,
) -> Vec<(f64, f64)> {
    if metric == Metric::FirstLayerGradient {
        // Flow points come with step points: the same step, at the same time.
        return flows
            .iter()
            .filter_map(|f| {
                let layer = f.layers.first()?;
                let at = match x {
                    XAxis::Step => f.step as f64,
                    XAxis::Epoch => {
                        // Within its epoch, by step (the epoch's end step is epoch * its steps).
                        let end = epochs.iter().find(|m| m.epoch == f.epoch).map(|m| m.step);
                        let per_epoch = end.filter(|&e| e > 0).map(|e| e as f64 / f.epoch as f64);
                        per_epoch.map_or(f.epoch as f64, |n| f.step as f64 / n)
                    }
                    XAxis::Seconds => steps.iter().find(|s| s.step == f.step)?.seconds,
                };
                Some((at, layer.grad_norm.max(1e-30).log10()))
            })
            .collect();
    }
    let per_step = matches!(metric, Metric::TrainAccuracy | Metric::TrainLoss)
        && x != XAxis::Epoch
        && !steps.is_empty();
    if per_step {
        return steps
            .iter()
            .map(|s| {
                let at = if x == XAxis::Step {
                    s.step as f64
                } else {
                    s.seconds
                };
                let y = match metric {
                    Metric::TrainAccuracy => s.train_accuracy,
                    _ => s.train_loss,
                };
                (at, y)
            })
            .collect();
    }
    let mut elapsed = 0.0;
    epochs
        .iter()
        // Files from before steps were recorded have none: no point on the step axis.
        .filter(|m| x != XAxis::Step || m.step > 0)
        .map(|m| {
            elapsed += m.seconds;
            let at = match x {
                XAxis::Epoch => m.epoch as f64,
                XAxis::Step => m.step as f64,
                XAxis::Seconds => elapsed,
            };
            let y = match metric {
                Metric::ValAccuracy => m.val_accuracy,
                Metric::TrainAccuracy => m.train_accuracy,
                Metric::TrainLoss => m.train_loss,
                Metric::ValLoss | Metric::FirstLayerGradient => m.val_loss,
            };
            (at, y)
        })
        .collect()
}

/// A seed group's curves as one: point by point (up to the shortest), the mean x, the mean y
/// and the standard deviation of y.
pub fn band(curves: &[Vec<(f64, f64)>]) -> Vec<(f64, f64, f64)> {
    let len = curves.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .map(|i| {
            let xs: Vec<f64> = curves.iter().map(|c| c[i].0).collect();
            let ys: Vec<f64> = curves.iter().map(|c| c[i].1).collect();
            let (y, sd) = mean_sd(&ys);
            (mean_sd(&xs).0, y, sd)
        })
        .collect()
}

/// Round tick values (1, 2 or 5 times a power of ten apart, about `count` steps) from the
/// last one at or below `lo` to the first one at or above `hi`: evenly spaced, so they can
/// be the bounds of an axis whose labels are spread evenly.
pub fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater)
        || !lo.is_finite()
        || !hi.is_finite()
    {
        return vec![lo];
    }
    let raw = (hi - lo) / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    let (first, last) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
    (first..=last).map(|k| k as f64 * step).collect()
}

/// One value of one run in long format, for spreadsheets and plotting scripts.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LongRow {
    pub run: String,
    /// What the run's configuration is, against the others exported with it.
    pub group: String,
    pub epoch: usize,
    pub step: usize,
    /// Wall-clock seconds of the run at that point.
    pub seconds: f64,
    /// `val_accuracy`, `val_loss`, `epoch_train_accuracy`, `epoch_train_loss` (per epoch),
    /// or `train_accuracy`, `train_loss` (every few steps).
    pub metric: &'static str,
    pub value: f64,
}

/// A run's epochs and step points as long rows.
pub fn long_rows(
    run: &str,
    group: &str,
    epochs: &[EpochMetrics],
    steps: &[StepMetrics],
) -> Vec<LongRow> {
    let row = |epoch, step, seconds, metric, value| LongRow {
        run: run.to_string(),
        group: group.to_string(),
        epoch,
        step,
        seconds,
        metric,
        value,
    };
    let mut elapsed = 0.0;
    let mut rows = Vec::new();
    for m in epochs {
        elapsed += m.seconds;
        for (metric, value) in [
            ("val_accuracy", m.val_accuracy),
            ("val_loss", m.val_loss),
            ("epoch_train_accuracy", m.train_accuracy),
            ("epoch_train_loss", m.train_loss),
        ] {
            rows.push(row(m.epoch, m.step, elapsed, metric, value));
        }
    }
    for s in steps {
        rows.push(row(
            s.epoch,
            s.step,
            s.seconds,
            "train_accuracy",
            s.train_accuracy,
        ));
        rows.push(row(s.epoch, s.step, s.seconds, "train_loss", s.train_loss));
    }
    rows
}

/// Long rows as CSV text with a header.
pub fn long_csv(rows: &[LongRow]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        writer
            .write_record([
                "run", "group", "epoch", "step", "seconds", "metric", "value",
            ])
            .expect("writing to memory");
    }
    for row in rows {
        writer.serialize(row).expect("writing to memory");
    }
    String::from_utf8(writer.into_inner().expect("writing to memory")).expect("UTF-8 fields")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Optimizer;

    fn experiment(skips: &str, lr: f64, seed: u64) -> Experiment {
        let text = format!(
            r#"(dataset: "builtin", model: Mlp(widths: [128, 256], skips: "{skips}"), optimizer: Sgd(lr: {lr:?}, momentum: 0.9), batch: 64, epochs: 5, seed: {seed})"#
        );
        Experiment::from_ron(&text, std::path::Path::new("test.ron")).unwrap()
    }

    #[test]
    fn a_seed_summary_counts_a_run_without_a_result_but_averages_only_results() {
        let t = Topology::default_mlp(crate::topology::ImageShape::new(1, 28, 28), 10);
        let here = crate::provenance::Provenance::here("test");
        let run = |best: Option<f64>, test: Option<f64>| crate::runs::Summary {
            best_val_accuracy: best,
            test_accuracy: test,
            mean_epoch_seconds: best.map(|_| 2.0),
            ..crate::runs::Summary::new(&t, "cpu", here.clone())
        };
        let runs = [
            run(Some(0.80), Some(0.79)),
            run(Some(0.84), Some(0.83)),
            // Diverged before its first epoch: no accuracy at all, not 0 %.
            run(None, None),
        ];
        let s = SeedSummary::of(&runs);
        assert_eq!(s.runs, 3);
        let best = s.best_val_spread().unwrap();
        assert_eq!((best.n, (best.mean * 100.0).round()), (2, 82.0));
        assert_eq!(s.test_spread().unwrap().n, 2);
        assert_eq!(s.mean_epoch_seconds(), Some(2.0));
        assert_eq!(SeedSummary::of(&runs[2..]).best_val_spread(), None);
    }
    #[test]
    fn descriptions_say_what_differs_and_groups_ignore_the_seed() {
        let runs = vec![
            facets(&experiment("0-2,1-3", 0.01, 1), &[]),
            facets(&experiment("0-2,1-3", 0.01, 2), &[]),
            facets(&experiment("none", 0.05, 1), &[]),
            facets(&experiment("all", 0.05, 1), &[]),
        ];
        let d = describe(&runs);
        assert_eq!(
            d.common,
            "mlp 784-128-256-10 · relu · he init · builtin · val 10% · sgd m 0.9 · wd 0 · batch 64 · 5 epochs"
        );
        assert_eq!(
            d.each,
            [
                "skips 0-2,1-3 · lr 0.01 · seed 1",
                "skips 0-2,1-3 · lr 0.01 · seed 2",
                "vanilla · lr 0.05 · seed 1",
                "all 3 skips · lr 0.05 · seed 1",
            ]
        );
        let keys: Vec<String> = runs.iter().map(|f| group_key(f)).collect();
        assert_eq!(groups(&keys), [vec![0, 1], vec![2], vec![3]]);
        // Nothing differs: empty descriptions, everything common.
        let same = describe(&runs[..1]);
        assert_eq!(same.each, [""]);
    }

    #[test]
    fn every_field_that_changes_the_network_or_its_training_sets_runs_apart() {
        let base = experiment("chain:2", 0.01, 1);
        let residual = experiment("res:chain:2", 0.01, 1);
        let d = describe(&[facets(&base, &[]), facets(&residual, &[])]);
        assert_eq!(d.each, ["skips 0-2", "residual 0-2"]);
        let mut variants: Vec<(&str, Experiment)> = Vec::new();
        let mut change = |name, f: &dyn Fn(&mut Experiment)| {
            let mut e = base.clone();
            f(&mut e);
            variants.push((name, e));
        };
        change("activation", &|e| {
            if let Model::Mlp { activation, .. } = &mut e.model {
                *activation = crate::topology::Activation::Sigmoid;
            }
        });
        change("norm", &|e| {
            if let Model::Mlp { norm, .. } = &mut e.model {
                *norm = crate::topology::Norm::Batch;
            }
        });
        for (name, cnn) in [
            ("shortcut", Shortcut::Pad),
            ("downsample", Shortcut::Projection),
            ("head", Shortcut::Projection),
            ("order", Shortcut::Projection),
        ] {
            let mut a = base.clone();
            a.model = Model::Cnn {
                stages: vec![vec![4, 4], vec![8, 8]],
                skips: crate::experiment::Skips("res:blocks:2".parse().unwrap()),
                norm: Default::default(),
                shortcut: Shortcut::Projection,
                downsample: Default::default(),
                head: Default::default(),
                order: Default::default(),
            };
            let mut b = a.clone();
            if let Model::Cnn {
                shortcut,
                downsample,
                head,
                order,
                ..
            } = &mut b.model
            {
                *shortcut = cnn;
                match name {
                    "downsample" => *downsample = Downsample::Stride,
                    "head" => *head = Head::Average,
                    "order" => *order = BlockOrder::Pre,
                    _ => {}
                }
            }
            let (fa, fb) = (facets(&a, &[]), facets(&b, &[]));
            assert_ne!(group_key(&fa), group_key(&fb), "{name} must set runs apart");
            assert!(!describe(&[fa, fb]).each[1].is_empty(), "{name}");
        }
        change("init", &|e| {
            if let Model::Mlp { init, .. } = &mut e.model {
                *init = crate::topology::InitScheme::Xavier;
            }
        });
        change("data", &|e| e.dataset = crate::data::DatasetName::Mnist);
        change("val", &|e| e.val_fraction = 0.2);
        change("epochs", &|e| e.epochs = 6);
        change("schedule", &|e| {
            e.schedule = Some(Schedule::SkipStar {
                max_vanilla_epochs: 2,
                patience: 1,
            })
        });
        change("optimizer", &|e| e.optimizer = Optimizer::adam(0.01));
        change("adam betas", &|e| {
            e.optimizer = Optimizer::Adam {
                lr: 0.01,
                beta1: 0.8,
                beta2: 0.999,
                eps: 1e-8,
            }
        });
        for (name, e) in &variants {
            let (a, b) = (facets(&base, &[]), facets(e, &[]));
            assert_ne!(group_key(&a), group_key(&b), "{name} must set runs apart");
            let differs = describe(&[a, b]).each;
            assert!(!differs[1].is_empty(), "{name}: {differs:?}");
        }
        // A resumed run (2 epochs, then 3 more) is not a 5-epoch run straight through.
        let straight = facets(&base, &[]);
        let resumed = facets(&base, &[2]);
        assert_ne!(group_key(&straight), group_key(&resumed));
        assert_eq!(describe(&[straight, resumed]).each[1], "2+3 epochs");
        // The seed alone never does.
        let other_seed = experiment("chain:2", 0.01, 7);
        assert_eq!(
            group_key(&facets(&base, &[])),
            group_key(&facets(&other_seed, &[]))
        );
    }

    #[test]
    fn runs_of_one_configuration_and_seed_are_one_sample() {
        let runs = vec![
            facets(&experiment("all", 0.01, 1), &[]),
            facets(&experiment("all", 0.01, 1), &[]),
            facets(&experiment("all", 0.01, 2), &[]),
            facets(&experiment("none", 0.01, 1), &[]),
        ];
        let c = configurations(&runs);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].members, [0, 1, 2]);
        assert_eq!(c[0].samples, [vec![0, 1], vec![2]]);
        assert_eq!(c[0].repeats(), 1);
        // One value per seed: the repeat's mean, never two samples.
        let best = [0.80, 0.82, 0.90, 0.5];
        assert_eq!(c[0].values(|i| Some(best[i])), [0.81, 0.90]);
        assert_eq!(c[1].values(|i| Some(best[i])), [0.5]);
    }

    #[test]
    fn one_sample_has_no_standard_deviation() {
        assert_eq!(Spread::of(&[0.8]).unwrap().text(100.0, 1), "80.0 (n=1)");
        assert_eq!(
            Spread::of(&[0.8, 0.82]).unwrap().text(100.0, 2),
            "81.00 ± 1.41"
        );
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn welch_matches_a_reference_computation() {
        // scipy.stats.ttest_ind([0.80, 0.82, 0.81], [0.78, 0.79, 0.785], equal_var=False):
        // t = 3.87298, df = 2.94118, two-sided p = 0.031562.
        let w = welch(&[0.80, 0.82, 0.81], &[0.78, 0.79, 0.785]).unwrap();
        assert!((w.t - 3.872983).abs() < 1e-5, "{w:?}");
        assert!((w.df - 2.941176).abs() < 1e-5, "{w:?}");
        assert!((w.p - 0.031562).abs() < 1e-5, "{w:?}");
        assert_eq!(w.n, (3, 3));
        assert_eq!(w.to_string(), "p = 0.032 (Welch's t-test, 3 vs 3 seeds)");
        assert!(welch(&[0.8], &[0.7, 0.71]).is_none());
        assert!(welch(&[0.8, 0.8], &[0.7, 0.7]).is_none());
        // Where a two-standard-error rule says "beyond noise", the test says p = 0.106
        // (scipy: t = 2.08207, df = 4).
        let a = [0.820, 0.810, 0.830];
        let b = a.map(|v| v - 0.017);
        let w = welch(&a, &b).unwrap();
        assert!((w.p - 0.105775).abs() < 1e-5, "{w:?}");
    }

    #[test]
    fn smoothing_is_tensorboards_debiased_ema() {
        assert_eq!(smooth(&[1.0, 1.0, 1.0], 0.9), [1.0, 1.0, 1.0]);
        let s = smooth(&[0.0, 1.0], 0.5);
        // last: 0, then 0.5; debiased by 1 - 0.5 and 1 - 0.25.
        assert_eq!(s, [0.0, 0.5 / 0.75]);
        assert_eq!(smooth(&[3.0, 5.0], 0.0), [3.0, 5.0]);
    }

    #[test]
    fn curves_on_each_axis_and_bands_and_ticks() {
        let epoch = |e: usize, val: f64| EpochMetrics {
            epoch: e,
            train_loss: 1.0,
            train_accuracy: 0.5,
            val_loss: 1.0,
            val_accuracy: val,
            samples_per_sec: 1.0,
            seconds: 2.0,
            skip_weights: Vec::new(),
            step: e * 100,
        };
        let epochs = vec![epoch(1, 0.8), epoch(2, 0.85)];
        let steps = vec![StepMetrics {
            step: 50,
            epoch: 1,
            seconds: 1.0,
            train_loss: 1.5,
            train_accuracy: 0.4,
        }];
        let val = |x| series(&epochs, &steps, &[], x, Metric::ValAccuracy);
        assert_eq!(val(XAxis::Epoch), [(1.0, 0.8), (2.0, 0.85)]);
        assert_eq!(val(XAxis::Step), [(100.0, 0.8), (200.0, 0.85)]);
        assert_eq!(val(XAxis::Seconds), [(2.0, 0.8), (4.0, 0.85)]);
        assert_eq!(
            series(&epochs, &steps, &[], XAxis::Seconds, Metric::TrainLoss),
            [(1.0, 1.5)]
        );
        assert_eq!(
            series(&epochs, &steps, &[], XAxis::Epoch, Metric::TrainLoss),
            [(1.0, 1.0), (2.0, 1.0)]
        );
        let b = band(&[vec![(1.0, 0.8), (2.0, 0.9)], vec![(3.0, 0.6)]]);
        assert_eq!(b.len(), 1);
        assert!((b[0].0 - 2.0).abs() < 1e-12 && (b[0].1 - 0.7).abs() < 1e-12);
        assert_eq!(ticks(0.0, 10.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(81.3, 86.9, 4), [80.0, 82.0, 84.0, 86.0, 88.0]);
        assert_eq!(ticks(0.5, 0.5, 4), [0.5]);
    }
}

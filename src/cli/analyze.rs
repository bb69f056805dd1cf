//! `skiplab analyze`: analyses of saved runs' trained networks, as a table, JSON or CSV.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::runs::load_all;
use crate::outln;
use skiplab::analysis::cka::{network_cka_on, LayerCka};
use skiplab::analysis::landscape::{landscape_on, Landscape, LandscapeOptions};
use skiplab::analysis::lesion::{lesion_on, Lesion, LesionOptions, Score};
use skiplab::analysis::usage::{edge_usage, EdgeUsage, Reading};
use skiplab::data::store::write_atomically;
use skiplab::runs::{self, SavedRun};

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    #[command(subcommand)]
    analysis: Analysis,
}

#[derive(Subcommand, Debug)]
enum Analysis {
    /// Edge usage (Huang et al.'s DenseNet heat map): for every weight block through which a
    /// layer reads an earlier layer's features, Σ|w| per input feature; over several runs of
    /// one topology (a seed group), the mean and standard deviation.
    Usage(UsageArgs),
    /// Lesion study (Veit et al. 2016): accuracy with each hidden layer deleted (a residual
    /// block's branch dropped, or a plain layer passed through), each skip edge removed, and
    /// k random blocks deleted at once; no retraining. Over a seed group, mean ± sd.
    Lesion(LesionArgs),
    /// Linear CKA (Kornblith et al. 2019), minibatch (Nguyen et al. 2021): how alike the
    /// hidden layers' representations of the same examples are, within one run or between
    /// two (another seed, another topology).
    Cka(CkaArgs),
    /// Loss landscape (Li et al. 2018): the loss over a fixed training subset along random,
    /// filter-normalised directions from the trained weights, as a 1-D curve or a 2-D map,
    /// with a sharpness summary. Several runs get the same directions' seed.
    Landscape(LandscapeArgs),
}

#[derive(Args, Debug)]
struct LandscapeArgs {
    /// Run ids (or unique prefixes, or paths); each gets its own landscape.
    #[arg(required = true, num_args = 1..)]
    runs: Vec<String>,
    /// The weights of the best validation epoch (`best.safetensors`) instead of the last.
    #[arg(long)]
    best: bool,
    /// 1: a curve along one direction; 2: a map over two.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    dims: u8,
    /// Grid points per axis, from -range to range.
    #[arg(long, default_value_t = 51, value_parser = clap::value_parser!(u64).range(1..=1001))]
    points: u64,
    /// How far along each direction (in units of the filter-normalised direction).
    #[arg(long, default_value_t = 1.0)]
    range: f64,
    /// Training examples the loss is measured on (the first N of each run's training split).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    samples: usize,
    /// The directions' seed (the same seed, the same directions for networks of one shape).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One JSON document with every run's grid.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// One CSV row per run and grid point (alpha, beta, loss, accuracy).
    #[arg(long)]
    csv: bool,
    /// Also draw the landscapes as SVG into this file: the curves on one chart (1-D), or the
    /// first run's map in contour bands (2-D).
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
    #[command(flatten)]
    on: Evaluation,
    #[command(flatten)]
    saves: super::Saves,
}

#[derive(Args, Debug)]
struct CkaArgs {
    /// The run whose layers are the rows.
    run: String,
    /// The run whose layers are the columns [default: the first run again].
    other: Option<String>,
    /// The weights of the best validation epoch (`best.safetensors`) instead of the last.
    #[arg(long)]
    best: bool,
    /// Which examples: the data set's test set (the same for every run), or the first run's
    /// validation split.
    #[arg(long, value_enum, default_value_t = Split::Test)]
    split: Split,
    /// How many examples (the first N of the split).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    samples: usize,
    /// Examples per minibatch (at least 4; every batch the same size).
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// One JSON document: the layers and the matrix.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// One CSV row per pair of layers.
    #[arg(long)]
    csv: bool,
    /// Also draw the matrix as an SVG heat map into this file.
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
    #[command(flatten)]
    on: Evaluation,
    #[command(flatten)]
    saves: super::Saves,
}

/// Which split a study evaluates on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Split {
    /// The run's own validation split (its seed and share): the baseline is its last
    /// validation accuracy.
    Val,
    /// The data set's test set.
    Test,
}

/// Where a study evaluates a network, and where it finds the data.
#[derive(Args, Debug)]
struct Evaluation {
    /// Where to evaluate.
    #[arg(long, value_enum, default_value_t = super::DeviceKind::configured())]
    device: super::DeviceKind,
    /// Folder holding one folder per data set (see `skiplab data`).
    #[arg(long, env = "SKIPLAB_DATA_DIR", default_value_os_t = skiplab::folders::default_data_dir())]
    data_dir: std::path::PathBuf,
}

impl Evaluation {
    /// The device asked for, saying on stderr what `auto` chose where it says anything.
    fn device(&self) -> Result<skiplab::device::Device> {
        let (device, note) = skiplab::device::resolve(self.device.into())?;
        if let Some(note) = note {
            eprintln!("{note}");
        }
        Ok(device)
    }

    /// `run`'s data set, loaded once into `loaded`.
    fn data<'a>(
        &self,
        loaded: &'a mut BTreeMap<skiplab::data::DatasetName, skiplab::data::Dataset>,
        run: &SavedRun,
    ) -> Result<&'a skiplab::data::Dataset> {
        let name = run.experiment.dataset;
        Ok(match loaded.entry(name) {
            std::collections::btree_map::Entry::Occupied(data) => data.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                let data = skiplab::data::load(name, &self.data_dir).with_context(|| {
                    format!("run {}: its data set {name} (see `skiplab data`)", run.id)
                })?;
                slot.insert(data)
            }
        })
    }
}

#[derive(Args, Debug)]
struct LesionArgs {
    /// Run ids (or unique prefixes, or paths), all of one topology; a run named twice counts
    /// once.
    #[arg(required = true, num_args = 1..)]
    runs: Vec<String>,
    /// The weights of the best validation epoch (`best.safetensors`) instead of the last.
    #[arg(long)]
    best: bool,
    /// Which split to evaluate on: the run's own validation split, or the test set.
    #[arg(long, value_enum, default_value_t = Split::Val)]
    split: Split,
    /// Evaluate on the first N samples of the split only.
    #[arg(long, value_name = "N")]
    samples: Option<usize>,
    /// Random draws for each k of the k-deletion curve.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    draws: u64,
    /// The largest k of the curve [default: every block].
    #[arg(long, value_name = "K")]
    max_k: Option<usize>,
    /// Seed of the curve's draws (the same seed draws the same blocks).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One JSON document: the summary over the runs, then every run's study in full.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// One CSV row per deletion, removal and k.
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    on: Evaluation,
    #[command(flatten)]
    saves: super::Saves,
}

#[derive(Args, Debug)]
struct UsageArgs {
    /// Run ids (or unique prefixes, or paths), all of one topology; a run named twice counts
    /// once.
    #[arg(required = true, num_args = 1..)]
    runs: Vec<String>,
    /// The weights of the best validation epoch (`best.safetensors`) instead of the last.
    #[arg(long)]
    best: bool,
    /// One JSON document: the layers, every block and the source × target map.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// One CSV row per block.
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    saves: super::Saves,
}

pub fn analyze(args: AnalyzeArgs) -> Result<ExitCode> {
    match args.analysis {
        Analysis::Usage(args) => usage(args),
        Analysis::Lesion(args) => lesion(args),
        Analysis::Cka(args) => cka(args),
        Analysis::Landscape(args) => landscape(args),
    }
}

/// A value over the runs: the mean, and the sample standard deviation from two runs on.
#[derive(Clone, Copy, Debug, Serialize)]
struct Spread {
    mean: f64,
    sd: Option<f64>,
}

impl Spread {
    /// `values` must not be empty.
    fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.len() > 1).then(|| {
            let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (ss / (n - 1.0)).sqrt()
        });
        Spread { mean, sd }
    }

    fn text(&self) -> String {
        match self.sd {
            Some(sd) => format!("{:.4} ± {:.4}", self.mean, sd),
            None => format!("{:.4}", self.mean),
        }
    }
}

#[derive(Serialize)]
struct BlockRow {
    source: usize,
    target: usize,
    reading: Reading,
    block: String,
    features: usize,
    usage: Option<Spread>,
}

#[derive(Serialize)]
struct MapCell {
    source: usize,
    target: usize,
    usage: Spread,
}

#[derive(Serialize)]
struct UsageReport {
    runs: Vec<String>,
    weights: &'static str,
    layers: Vec<String>,
    blocks: Vec<BlockRow>,
    map: Vec<MapCell>,
}

/// The weights a run is analysed with: its last (checked to be its own) or its best.
/// The run's weights: of its last epoch, or (`best`) of its best-validation epoch.
pub fn weights_of(run: &SavedRun, best: bool) -> Result<runs::Weights> {
    if !best {
        return Ok(run.weights_to_resume()?);
    }
    let path = run.dir.join(runs::BEST);
    let weights = runs::read_weights(&path)?;
    if let Some(owner) = weights.run.as_deref().filter(|owner| *owner != run.id) {
        bail!(
            "{}: saved by run {owner}, not by {}",
            path.display(),
            run.id
        );
    }
    Ok(weights)
}

fn usage(args: UsageArgs) -> Result<ExitCode> {
    let saved = load_all(&args.saves, &args.runs)?;
    let mut analysed: Vec<(String, EdgeUsage)> = Vec::new();
    let mut topology = None;
    for run in &saved {
        let weights = weights_of(run, args.best)?;
        match &topology {
            None => topology = Some((run.id.clone(), weights.topology.clone())),
            Some((first, t)) if *t != weights.topology => bail!(
                "runs {first} and {} have different topologies: edge usage is averaged over \
                 runs of one topology (compare them one at a time)",
                run.id
            ),
            Some(_) => {}
        }
        let usage = edge_usage(&weights.topology, &weights.params)
            .with_context(|| format!("run {}", run.id))?;
        analysed.push((run.id.clone(), usage));
    }
    let first = &analysed[0].1;
    let blocks = first
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let values: Option<Vec<f64>> =
                analysed.iter().map(|(_, u)| u.blocks[i].usage).collect();
            BlockRow {
                source: b.source,
                target: b.target,
                reading: b.reading,
                block: b.block.clone(),
                features: b.features,
                usage: values.map(|v| Spread::of(&v)),
            }
        })
        .collect();
    let maps: Vec<BTreeMap<(usize, usize), f64>> = analysed.iter().map(|(_, u)| u.map()).collect();
    let map = maps[0]
        .keys()
        .map(|&(source, target)| {
            let values: Vec<f64> = maps.iter().map(|m| m[&(source, target)]).collect();
            MapCell {
                source,
                target,
                usage: Spread::of(&values),
            }
        })
        .collect();
    let report = UsageReport {
        runs: analysed.iter().map(|(id, _)| id.clone()).collect(),
        weights: if args.best { "best" } else { "last" },
        layers: first.layers.clone(),
        blocks,
        map,
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.csv {
        print_csv(&report)?;
    } else {
        print_table(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn reading_name(r: Reading) -> &'static str {
    match r {
        Reading::Main => "main",
        Reading::Skip => "skip",
        Reading::Projection => "projection",
        Reading::Identity => "identity",
    }
}

fn print_csv(report: &UsageReport) -> Result<()> {
    outln!("source,target,source_name,target_name,reading,block,features,usage,sd,runs");
    for b in &report.blocks {
        let (mean, sd) = match b.usage {
            Some(s) => (
                s.mean.to_string(),
                s.sd.map(|v| v.to_string()).unwrap_or_default(),
            ),
            None => (String::new(), String::new()),
        };
        outln!(
            "{},{},{},{},{},{},{},{},{},{}",
            b.source,
            b.target,
            report.layers[b.source],
            report.layers[b.target],
            reading_name(b.reading),
            b.block,
            b.features,
            mean,
            sd,
            report.runs.len()
        );
    }
    Ok(())
}

fn print_table(report: &UsageReport) -> Result<()> {
    let of = match report.runs.as_slice() {
        [one] => format!("run {one}"),
        many => format!("{} runs ({}), mean ± sd", many.len(), many.join(", ")),
    };
    outln!(
        "edge usage of {of}, {} weights: Σ|w| per input feature",
        report.weights
    );
    outln!(
        "{:<8} {:<8} {:<10} {:<18} {:>8}  usage",
        "source",
        "target",
        "reading",
        "block",
        "features"
    );
    for b in &report.blocks {
        let usage = b.usage.map_or("(no weights)".to_string(), |s| s.text());
        outln!(
            "{:<8} {:<8} {:<10} {:<18} {:>8}  {usage}",
            report.layers[b.source],
            report.layers[b.target],
            reading_name(b.reading),
            b.block,
            b.features
        );
    }
    // The heat map as a matrix: a row per source, a column per target (means).
    let layers_of = |pick: fn(&MapCell) -> usize| {
        let mut numbers: Vec<usize> = report.map.iter().map(pick).collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers
    };
    let (sources, targets) = (layers_of(|c| c.source), layers_of(|c| c.target));
    outln!();
    let mut header = format!("{:<10}", "from \\ to");
    for &t in &targets {
        header.push_str(&format!(" {:>8}", report.layers[t]));
    }
    outln!("{header}");
    for &s in &sources {
        let mut line = format!("{:<10}", report.layers[s]);
        for &t in &targets {
            match report.map.iter().find(|c| (c.source, c.target) == (s, t)) {
                Some(c) => line.push_str(&format!(" {:>8.4}", c.usage.mean)),
                None => line.push_str(&format!(" {:>8}", "·")),
            }
        }
        outln!("{line}");
    }
    Ok(())
}

/// One deletion or removal over the runs.
#[derive(Serialize)]
struct LesionRow {
    /// `layer`, `edge` or `k`.
    kind: &'static str,
    /// The layer's or edge's name, or k.
    target: String,
    /// How a layer was deleted (`branch`, `identity`), an edge's kind, or the k-deletion
    /// pool's size.
    how: String,
    /// Why a layer cannot be deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    why_not: Option<String>,
    accuracy: Option<Spread>,
    loss: Option<Spread>,
    /// Accuracy lost against the intact network (baseline minus lesioned), per run.
    drop: Option<Spread>,
}

#[derive(Serialize)]
struct LesionReport {
    runs: Vec<String>,
    weights: &'static str,
    split: &'static str,
    samples: usize,
    baseline_accuracy: Spread,
    baseline_loss: Spread,
    pool: Vec<String>,
    rows: Vec<LesionRow>,
    studies: Vec<Lesion>,
}

fn lesion(args: LesionArgs) -> Result<ExitCode> {
    let saved = load_all(&args.saves, &args.runs)?;
    let device = args.on.device()?;
    let options = LesionOptions {
        max_k: args.max_k,
        draws: args.draws as usize,
        seed: args.seed,
    };
    let mut studies: Vec<(String, Lesion)> = Vec::new();
    let mut topology: Option<(String, skiplab::topology::Topology)> = None;
    let mut datasets: BTreeMap<skiplab::data::DatasetName, skiplab::data::Dataset> =
        BTreeMap::new();
    for run in &saved {
        let weights = weights_of(run, args.best)?;
        match &topology {
            None => topology = Some((run.id.clone(), weights.topology.clone())),
            Some((first, t)) if *t != weights.topology => bail!(
                "runs {first} and {} have different topologies: a lesion study is averaged over \
                 runs of one topology (study them one at a time)",
                run.id
            ),
            Some(_) => {}
        }
        let e = &run.experiment;
        let dataset = args.on.data(&mut datasets, run)?;
        let prepared = skiplab::data::PreparedData::prepare(dataset, e.val_fraction, e.seed);
        let mut samples = match args.split {
            Split::Val => prepared.val,
            Split::Test => prepared.test,
        };
        if let Some(n) = args.samples {
            samples.truncate(n);
        }
        let bar = StudyBar::new(&run.id, "evaluations");
        let study = lesion_on(
            device,
            &weights.topology,
            &weights.params,
            &samples,
            &options,
            &mut |p| bar.show(p),
        )
        .with_context(|| format!("run {}", run.id))?;
        bar.finish();
        studies.push((run.id.clone(), study));
    }
    let report = lesion_report(&args, studies);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.csv {
        outln!("kind,target,how,accuracy,accuracy_sd,loss,loss_sd,drop,drop_sd,runs,why_not");
        let cell = |s: &Option<Spread>| match s {
            Some(s) => (
                s.mean.to_string(),
                s.sd.map(|v| v.to_string()).unwrap_or_default(),
            ),
            None => (String::new(), String::new()),
        };
        let baseline = LesionRow {
            kind: "baseline",
            target: String::new(),
            how: String::new(),
            why_not: None,
            accuracy: Some(report.baseline_accuracy),
            loss: Some(report.baseline_loss),
            drop: None,
        };
        for row in std::iter::once(&baseline).chain(&report.rows) {
            let ((a, a_sd), (l, l_sd), (d, d_sd)) =
                (cell(&row.accuracy), cell(&row.loss), cell(&row.drop));
            let why = row.why_not.as_deref().unwrap_or_default();
            outln!(
                "{},{},{},{a},{a_sd},{l},{l_sd},{d},{d_sd},{},{}",
                row.kind,
                row.target,
                row.how,
                report.runs.len(),
                csv_field(why)
            );
        }
    } else {
        print_lesion(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A CSV field, quoted where it holds a comma or a quote.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The studies of a seed group summarised: every value as mean ± sd over the runs.
fn lesion_report(args: &LesionArgs, studies: Vec<(String, Lesion)>) -> LesionReport {
    let first = &studies[0].1;
    let over = |pick: &dyn Fn(&Lesion) -> Option<f64>| -> Option<Spread> {
        let values: Option<Vec<f64>> = studies.iter().map(|(_, s)| pick(s)).collect();
        values.map(|v| Spread::of(&v))
    };
    let mut rows = Vec::new();
    for (i, d) in first.deletions.iter().enumerate() {
        let score = |s: &Lesion| s.deletions[i].score;
        rows.push(LesionRow {
            kind: "layer",
            target: d.name.clone(),
            how: d.deletion.map_or("-", |h| h.name()).to_string(),
            why_not: d.why_not.clone(),
            accuracy: over(&|s| score(s).map(|x| x.accuracy)),
            loss: over(&|s| score(s).map(|x| x.loss)),
            drop: over(&|s| score(s).map(|x| s.baseline.accuracy - x.accuracy)),
        });
    }
    for (i, e) in first.edges.iter().enumerate() {
        let score = |s: &Lesion| Some(s.edges[i].score);
        rows.push(LesionRow {
            kind: "edge",
            target: e.edge.to_string(),
            how: match e.kind {
                skiplab::topology::EdgeKind::Concat => "concat",
                skiplab::topology::EdgeKind::Residual => "residual",
            }
            .to_string(),
            why_not: None,
            accuracy: over(&|s| score(s).map(|x| x.accuracy)),
            loss: over(&|s| score(s).map(|x| x.loss)),
            drop: over(&|s| score(s).map(|x| s.baseline.accuracy - x.accuracy)),
        });
    }
    // A run's value at k is its mean over its draws; the spread is over the runs (one run:
    // over its draws).
    let mean_of = |p: &skiplab::analysis::lesion::CurvePoint, f: &dyn Fn(&Score) -> f64| {
        p.draws.iter().map(|(_, s)| f(s)).sum::<f64>() / p.draws.len() as f64
    };
    for (i, p) in first.curve.iter().enumerate() {
        let spread = |f: &dyn Fn(&Lesion, &Score) -> f64| -> Option<Spread> {
            if studies.len() == 1 {
                let values: Vec<f64> = p.draws.iter().map(|(_, s)| f(first, s)).collect();
                return Some(Spread::of(&values));
            }
            over(&|s| s.curve.get(i).map(|q| mean_of(q, &|x| f(s, x))))
        };
        rows.push(LesionRow {
            kind: "k",
            target: p.k.to_string(),
            how: format!("{} draws", p.draws.len()),
            why_not: None,
            accuracy: spread(&|_, x| x.accuracy),
            loss: spread(&|_, x| x.loss),
            drop: spread(&|s, x| s.baseline.accuracy - x.accuracy),
        });
    }
    LesionReport {
        runs: studies.iter().map(|(id, _)| id.clone()).collect(),
        weights: if args.best { "best" } else { "last" },
        split: match args.split {
            Split::Val => "validation",
            Split::Test => "test",
        },
        samples: first.samples,
        baseline_accuracy: Spread::of(
            &studies
                .iter()
                .map(|(_, s)| s.baseline.accuracy)
                .collect::<Vec<_>>(),
        ),
        baseline_loss: Spread::of(
            &studies
                .iter()
                .map(|(_, s)| s.baseline.loss)
                .collect::<Vec<_>>(),
        ),
        pool: first
            .pool
            .iter()
            .map(|&l| first.layers[l].clone())
            .collect(),
        rows,
        studies: studies.into_iter().map(|(_, s)| s).collect(),
    }
}

fn percent(s: &Option<Spread>) -> String {
    match s {
        None => String::new(),
        Some(Spread { mean, sd: Some(sd) }) => format!("{:.1} ± {:.1}", 100.0 * mean, 100.0 * sd),
        Some(Spread { mean, sd: None }) => format!("{:.1}", 100.0 * mean),
    }
}

fn print_lesion(report: &LesionReport) -> Result<()> {
    let of = match report.runs.as_slice() {
        [one] => format!("run {one}"),
        many => format!("{} runs ({}), mean ± sd", many.len(), many.join(", ")),
    };
    outln!(
        "lesion study of {of}, {} weights, {} {} samples: accuracy {}%, loss {:.3}",
        report.weights,
        report.samples,
        report.split,
        percent(&Some(report.baseline_accuracy)),
        report.baseline_loss.mean
    );
    outln!("(accuracy and its drop in percentage points; no retraining)");
    let mut section = "";
    for row in &report.rows {
        if row.kind != section {
            section = row.kind;
            outln!();
            match row.kind {
                "layer" => outln!(
                    "{:<12} {:<10} {:>14} {:>14}",
                    "deleted",
                    "how",
                    "accuracy",
                    "drop"
                ),
                "edge" => outln!(
                    "{:<12} {:<10} {:>14} {:>14}",
                    "removed",
                    "kind",
                    "accuracy",
                    "drop"
                ),
                _ => {
                    outln!(
                        "k blocks deleted at random from {} ({}):",
                        report.pool.len(),
                        report.pool.join(" ")
                    );
                    outln!(
                        "{:<12} {:<10} {:>14} {:>14}",
                        "k",
                        "draws",
                        "accuracy",
                        "drop"
                    );
                }
            }
        }
        match &row.why_not {
            Some(why) => outln!("{:<12} cannot: {why}", row.target),
            None => outln!(
                "{:<12} {:<10} {:>14} {:>14}",
                row.target,
                row.how.trim_end_matches(" draws"),
                percent(&row.accuracy),
                percent(&row.drop)
            ),
        }
    }
    if report.pool.is_empty() {
        outln!("\nno block can be deleted, so there is no k-deletion curve");
    }
    Ok(())
}

#[derive(Serialize)]
struct CkaReport {
    rows_run: String,
    columns_run: String,
    weights: &'static str,
    split: &'static str,
    #[serde(flatten)]
    cka: LayerCka,
    /// Between two runs of one topology: for how many layers the most similar layer of the
    /// other run is the one at the same place (Kornblith et al.'s sanity check).
    identified: Option<(usize, usize)>,
}

fn cka(args: CkaArgs) -> Result<ExitCode> {
    let mut keys = vec![args.run.clone()];
    keys.extend(args.other.clone());
    let saved = load_all(&args.saves, &keys)?;
    let (first, second) = (&saved[0], saved.get(1).unwrap_or(&saved[0]));
    if first.experiment.dataset != second.experiment.dataset {
        bail!(
            "runs {} ({}) and {} ({}) train on different data sets: CKA compares representations of the same examples",
            first.id,
            first.experiment.dataset,
            second.id,
            second.experiment.dataset
        );
    }
    let device = args.on.device()?;
    let weights_a = weights_of(first, args.best)?;
    let weights_b = match saved.get(1) {
        Some(run) => Some(weights_of(run, args.best)?),
        None => None,
    };
    let e = &first.experiment;
    let mut loaded = BTreeMap::new();
    let data = args.on.data(&mut loaded, first)?;
    // Normalised as the first run saw them (its training split's statistics; another
    // seed's differ in the third decimal).
    let prepared = skiplab::data::PreparedData::prepare(data, e.val_fraction, e.seed);
    let mut samples = match args.split {
        Split::Test => prepared.test,
        Split::Val => prepared.val,
    };
    samples.truncate(args.samples);
    let bar = StudyBar::new("CKA", "batches");
    let result = network_cka_on(
        device,
        (&weights_a.topology, &weights_a.params),
        weights_b
            .as_ref()
            .map(|w| (&w.topology, w.params.as_slice())),
        &samples,
        args.batch,
        &mut |p| bar.show(p),
    )
    .with_context(|| format!("CKA of {} and {}", first.id, second.id))?;
    bar.finish();
    let identified = (saved.len() == 2
        && weights_b.as_ref().map(|w| &w.topology) == Some(&weights_a.topology))
    .then(|| {
        let hits = result
            .cka
            .iter()
            .enumerate()
            .filter(|(i, row)| {
                let best = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(j, _)| j);
                best == Some(*i)
            })
            .count();
        (hits, result.cka.len())
    });
    if let Some(path) = &args.svg {
        let title = format!(
            "linear CKA: {} (rows) against {} (columns)",
            first.id, second.id
        );
        let svg = super::figures::heat_map(
            &title,
            &result.rows,
            &result.columns,
            &result.cka,
            (0.0, 1.0),
            None,
        )?;
        write_atomically(path, svg.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    let report = CkaReport {
        rows_run: first.id.clone(),
        columns_run: second.id.clone(),
        weights: if args.best { "best" } else { "last" },
        split: match args.split {
            Split::Val => "validation",
            Split::Test => "test",
        },
        cka: result,
        identified,
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.csv {
        outln!("row_run,row_layer,column_run,column_layer,cka,samples,batch");
        for (i, row) in report.cka.cka.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                outln!(
                    "{},{},{},{},{v},{},{}",
                    report.rows_run,
                    report.cka.rows[i],
                    report.columns_run,
                    report.cka.columns[j],
                    report.cka.samples,
                    report.cka.batch
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "linear CKA (minibatch, {} {} examples in batches of {}), {} weights: rows {}, columns {}",
        report.cka.samples,
        report.split,
        report.cka.batch,
        report.weights,
        report.rows_run,
        report.columns_run
    );
    let mut header = format!("{:<10}", "");
    for c in &report.cka.columns {
        header.push_str(&format!(" {c:>7}"));
    }
    outln!("{header}");
    for (name, row) in report.cka.rows.iter().zip(&report.cka.cka) {
        let mut line = format!("{name:<10}");
        for v in row {
            line.push_str(&format!(" {v:>7.3}"));
        }
        outln!("{line}");
    }
    if let Some((hits, of)) = report.identified {
        outln!(
            "\n{hits} of {of} layers are most similar to the layer at the same place in the other run (Kornblith et al.: 99.3% across seeds)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn landscape(args: LandscapeArgs) -> Result<ExitCode> {
    if !(args.range > 0.0 && args.range.is_finite()) {
        bail!("--range {}: must be a positive number", args.range);
    }
    let saved = load_all(&args.saves, &args.runs)?;
    let device = args.on.device()?;
    let options = LandscapeOptions {
        dims: usize::from(args.dims),
        points: args.points as usize,
        range: args.range,
        seed: args.seed,
    };
    let mut datasets: BTreeMap<skiplab::data::DatasetName, skiplab::data::Dataset> =
        BTreeMap::new();
    let mut results: Vec<(String, Landscape, f64)> = Vec::new();
    for run in &saved {
        let weights = weights_of(run, args.best)?;
        let e = &run.experiment;
        let dataset = args.on.data(&mut datasets, run)?;
        let mut samples =
            skiplab::data::PreparedData::prepare(dataset, e.val_fraction, e.seed).train;
        samples.truncate(args.samples);
        let bar = StudyBar::new(&run.id, "points");
        let start = std::time::Instant::now();
        let result = landscape_on(
            device,
            &weights.topology,
            &weights.params,
            &samples,
            &options,
            &mut |p| bar.show(p),
        )
        .with_context(|| format!("run {}", run.id))?;
        bar.finish();
        results.push((run.id.clone(), result, start.elapsed().as_secs_f64()));
    }
    if let Some(path) = &args.svg {
        let svg = match options.dims {
            1 => {
                let curves: Vec<(String, Vec<(f64, f64)>)> = results
                    .iter()
                    .map(|(id, l, _)| {
                        let points = l.axis.iter().copied().zip(l.loss.iter().copied());
                        (
                            format!("{id} (sharpness {:.3})", l.sharpness),
                            points.collect(),
                        )
                    })
                    .collect();
                let title = "loss along a filter-normalised direction";
                super::figures::curves(title, "alpha", "loss", &curves)?
            }
            _ => {
                let (id, l, _) = &results[0];
                let n = l.axis.len();
                // Log scale: far from the weights the loss grows by orders of magnitude.
                let log: Vec<f64> = l.loss.iter().map(|v| v.max(1e-12).log10()).collect();
                let rows: Vec<Vec<f64>> = log.chunks(n).map(|r| r.to_vec()).collect();
                let labels: Vec<String> = l.axis.iter().map(|a| format!("{a:.2}")).collect();
                let lo = log.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = log.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                super::figures::heat_map(
                    &format!("log10 loss around {id}: alpha down, beta across, 10 contour bands"),
                    &labels,
                    &labels,
                    &rows,
                    (lo, hi),
                    Some(10),
                )?
            }
        };
        write_atomically(path, svg.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    if args.json {
        let runs: Vec<serde_json::Value> = results
            .iter()
            .map(|(id, l, seconds)| {
                serde_json::json!({"run": id, "seconds": seconds, "landscape": l})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.csv {
        outln!("run,alpha,beta,loss,accuracy");
        for (id, l, _) in &results {
            for (k, (loss, accuracy)) in l.loss.iter().zip(&l.accuracy).enumerate() {
                let (alpha, beta) = match l.dims {
                    1 => (l.axis[k], String::new()),
                    _ => (
                        l.axis[k / l.axis.len()],
                        l.axis[k % l.axis.len()].to_string(),
                    ),
                };
                outln!("{id},{alpha},{beta},{loss},{accuracy}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "loss landscape ({}-D, {} points per axis from -{} to {}, direction seed {}), {} training examples, {} weights",
        options.dims,
        options.points,
        options.range,
        options.range,
        options.seed,
        results.first().map_or(0, |r| r.1.samples),
        if args.best { "best" } else { "last" }
    );
    outln!(
        "{:<40} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "run",
        "loss at θ",
        "min",
        "max",
        "sharpness",
        "seconds"
    );
    for (id, l, seconds) in &results {
        let min = l.loss.iter().copied().fold(f64::INFINITY, f64::min);
        let max = l.loss.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        outln!(
            "{id:<40} {:>10.4} {min:>10.4} {max:>10.4} {:>10.4} {seconds:>8.1}",
            l.centre_loss,
            l.sharpness
        );
    }
    outln!("(sharpness: the mean rise of the loss over the grid above the loss at the trained weights)");
    if options.dims == 1 {
        outln!();
        let mut header = format!("{:>8}", "alpha");
        for (i, _) in results.iter().enumerate() {
            header.push_str(&format!(" {:>10}", format!("run {}", i + 1)));
        }
        outln!("{header}");
        let axis = &results[0].1.axis;
        for (k, alpha) in axis.iter().enumerate() {
            let mut line = format!("{alpha:>8.3}");
            for (_, l, _) in &results {
                line.push_str(&format!(" {:>10.4}", l.loss[k]));
            }
            outln!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A study's progress on stderr where it is a terminal (nothing where it is piped).
struct StudyBar(Option<indicatif::ProgressBar>);

impl StudyBar {
    /// A bar labelled `label`, counting `unit` (`evaluations`, `batches`, `points`).
    fn new(label: &str, unit: &str) -> Self {
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let template = format!("  {{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} · ETA {{eta}}");
            let style = indicatif::ProgressStyle::with_template(&template)
                .expect("a valid template")
                .progress_chars("#>-");
            indicatif::ProgressBar::new(0)
                .with_style(style)
                .with_message(label.to_string())
        });
        Self(bar)
    }

    /// Shows `p`; the study goes on.
    fn show(&self, p: skiplab::analysis::lesion::Progress) -> bool {
        if let Some(bar) = &self.0 {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
        }
        true
    }

    fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

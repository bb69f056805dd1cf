//! `skiplab analyze`: analyses of saved runs' trained networks, as a table, JSON or CSV.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::runs::load_all;
use crate::outln;
use skiplab::analysis::usage::{edge_usage, EdgeUsage, Reading};
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
    }
}

/// A value over the runs: the mean, and the sample standard deviation from two runs on.
#[derive(Clone, Copy, Debug, Serialize)]
struct Spread {
    mean: f64,
    sd: Option<f64>,
}

impl Spread {
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
fn weights_of(run: &SavedRun, best: bool) -> Result<runs::Weights> {
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

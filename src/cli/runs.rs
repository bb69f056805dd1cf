//! `skiplab runs`: the saved runs in a table (or JSON lines), sorted and filtered, each
//! described by what sets it apart from the others.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::outln;
use skiplab::compare::{self, Facet};
use skiplab::runs::{self, SavedRun};

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(flatten)]
    pub saves: super::Saves,
    /// Sort by this column (best and test: the best first; the others ascending).
    #[arg(long, value_enum, default_value_t = Column::Run)]
    pub sort: Column,
    /// Reverse the order.
    #[arg(long)]
    pub reverse: bool,
    /// Only runs whose id, data set, description, network or status contains TEXT (any
    /// case).
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// One JSON object per run and line, for scripts (with --watch: one per change).
    #[arg(long)]
    pub json: bool,
    /// Follow the folders as other processes write them (sweep tasks on other nodes, GNU
    /// parallel jobs, a `train` in another terminal) until Ctrl-C: the table redrawn as runs
    /// appear, train and end (piped or with --json: one JSON object per change).
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub follow: super::Follow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Column {
    /// The order runs started in (their ids).
    Run,
    Data,
    Epochs,
    /// Best validation accuracy.
    Best,
    /// Test accuracy (of the best-validation epoch's weights).
    Test,
    /// Seconds per epoch.
    Time,
    Status,
    Description,
}

/// A share as a percentage; `-` for none, and for a value that is not a number (a
/// `metrics.csv` edited by hand).
pub fn pct(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map_or("-".into(), |v| format!("{:.2}%", 100.0 * v))
}

/// Every run `keys` names (ids, prefixes or paths), in order, from any of the folders. A run
/// named more than once (by its id and a prefix, say) is one run: loaded once, and said so on
/// stderr.
pub fn load_all(saves: &super::Saves, keys: &[String]) -> Result<Vec<SavedRun>> {
    let folders = saves.folders()?;
    let mut seen: Vec<(std::path::PathBuf, &str)> = Vec::new();
    let mut all = Vec::new();
    for key in keys {
        let dir = runs::find_run_in(&folders, key)?;
        let same = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if let Some((_, first)) = seen.iter().find(|(d, _)| *d == same) {
            eprintln!("note: `{key}` names the same run as `{first}`; it counts once",);
            continue;
        }
        seen.push((same, key));
        all.push(runs::load_run(&dir)?);
    }
    Ok(all)
}

pub fn model_text(run: &SavedRun) -> String {
    run.experiment
        .topology()
        .map(|t| t.summary())
        .unwrap_or_else(|e| format!("invalid: {e}"))
}

/// What a saved run is, facet by facet (see [`compare::facets`]).
pub fn facets(run: &SavedRun) -> Vec<Facet> {
    compare::facets(&run.experiment, &run.summary.resumed_after)
}

/// What the runs share, and what sets each apart.
pub fn describe(runs: &[SavedRun]) -> compare::Described {
    compare::describe(&runs.iter().map(facets).collect::<Vec<_>>())
}

/// A run as a JSON object (what `runs --json` and `compare --json` print).
pub fn json(run: &SavedRun, description: &str) -> serde_json::Value {
    let s = &run.summary;
    serde_json::json!({
        "id": run.id,
        "dir": run.dir,
        "dataset": run.experiment.dataset.as_str(),
        "description": description,
        "model": model_text(run),
        "seed": run.experiment.seed,
        "epochs": s.epochs_done,
        "best_val_accuracy": s.best_val_accuracy,
        "best_epoch": s.best_epoch,
        "test_accuracy": s.test_accuracy,
        "test_epoch": s.test_epoch,
        "mean_epoch_seconds": s.mean_epoch_seconds,
        "status": s.status.to_string(),
        "device": s.device,
        "started": s.started,
        "provenance": s.provenance,
        "resumed_after": s.resumed_after,
        "experiment": run.experiment,
    })
}

pub fn list(args: RunsArgs) -> Result<ExitCode> {
    let (mut all, mut unreadable) = (Vec::new(), Vec::new());
    let folders = args.saves.folders()?;
    let (found, shadowed) = runs::list_runs_in(&folders);
    for dir in shadowed {
        eprintln!(
            "note: {} is also in an earlier --saves folder; that one is listed",
            dir.display()
        );
    }
    for run in found {
        match run {
            Ok(run) => all.push(run),
            Err(e) => unreadable.push(e),
        }
    }
    let described = describe(&all);
    let shown = shown(&all, &described.each, &args);
    if args.json {
        for (run, description) in &shown {
            outln!("{}", json(run, description));
        }
        for e in &unreadable {
            outln!(
                "{}",
                serde_json::json!({"unreadable": e.path, "error": e.message})
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() && unreadable.is_empty() {
        let names: Vec<String> = folders.iter().map(|f| f.display().to_string()).collect();
        outln!("no saved runs in {}", names.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    if all.len() > 1 && !described.common.is_empty() {
        outln!("all runs: {}", described.common);
    }
    for line in table(&shown, &|r| r.summary.status.word().to_string()) {
        outln!("{line}");
    }
    for e in &unreadable {
        outln!("unreadable: {e}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The runs the table shows, with their descriptions (`each`, in the order of `all`):
/// filtered and sorted as `args` ask.
pub fn shown<'a>(
    all: &'a [SavedRun],
    each: &[String],
    args: &RunsArgs,
) -> Vec<(&'a SavedRun, String)> {
    let needle = args.filter.as_deref().unwrap_or_default().to_lowercase();
    let mut shown: Vec<(&SavedRun, String)> = all
        .iter()
        .zip(each.iter().cloned())
        .filter(|(r, d)| {
            needle.is_empty()
                || [
                    r.id.as_str(),
                    r.experiment.dataset.as_str(),
                    d.as_str(),
                    &model_text(r),
                    &r.summary.status.to_string(),
                ]
                .iter()
                .any(|t| t.to_lowercase().contains(&needle))
        })
        .collect();
    let best_first = |v: Option<f64>| -v.unwrap_or(f64::NEG_INFINITY);
    match args.sort {
        Column::Run => shown.sort_by(|a, b| a.0.id.cmp(&b.0.id)),
        Column::Data => shown.sort_by_key(|r| r.0.experiment.dataset.as_str()),
        Column::Epochs => shown.sort_by_key(|r| r.0.summary.epochs_done),
        Column::Best => shown.sort_by(|a, b| {
            best_first(a.0.summary.best_val_accuracy)
                .total_cmp(&best_first(b.0.summary.best_val_accuracy))
        }),
        Column::Test => shown.sort_by(|a, b| {
            best_first(a.0.summary.test_accuracy).total_cmp(&best_first(b.0.summary.test_accuracy))
        }),
        Column::Time => shown.sort_by(|a, b| {
            let t = |r: &SavedRun| r.summary.mean_epoch_seconds.unwrap_or(f64::INFINITY);
            t(a.0).total_cmp(&t(b.0))
        }),
        Column::Status => shown.sort_by_key(|r| r.0.summary.status.word()),
        Column::Description => shown.sort_by(|a, b| a.1.cmp(&b.1)),
    }
    if args.reverse {
        shown.reverse();
    }
    shown
}

/// The runs table: a header, then a line per run with the word `status` gives it.
pub fn table(shown: &[(&SavedRun, String)], status: &dyn Fn(&SavedRun) -> String) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<40} {:<15} {:>6} {:>9} {:>9} {:>8}  {:<11} description",
        "run", "data", "epochs", "best val", "test@best", "s/epoch", "status"
    )];
    for (r, description) in shown {
        let description = match description.is_empty() {
            true => model_text(r),
            false => description.to_string(),
        };
        lines.push(format!(
            "{:<40} {:<15} {:>6} {:>9} {:>9} {:>8}  {:<11} {description}",
            r.id,
            r.experiment.dataset.as_str(),
            r.summary.epochs_done,
            pct(r.summary.best_val_accuracy),
            pct(r.summary.test_accuracy),
            r.summary
                .mean_epoch_seconds
                .map_or("-".into(), |s| format!("{s:.2}")),
            status(r),
        ));
    }
    lines
}

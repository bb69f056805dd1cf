//! `skiplab compare`: saved runs side by side, with what sets them apart and, where they
//! form seed groups, Welch's t-test between the groups.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::runs::{describe, facets, json, load_all, model_text, pct};
use crate::outln;
use skiplab::compare;
use skiplab::experiment::Model;
use skiplab::provenance::Provenance;
use skiplab::runs::SavedRun;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Run ids (or unique prefixes, or paths to run folders).
    #[arg(required = true, num_args = 1..)]
    runs: Vec<String>,
    #[command(flatten)]
    saves: super::Saves,
    /// One JSON object: the runs (with their epochs) and the group tests.
    #[arg(long)]
    json: bool,
}

/// Runs that differ only in their seed, against the first such group: the difference of
/// their best validation accuracies and Welch's t-test, one sample per seed.
struct GroupTest {
    first: String,
    other: String,
    test: Option<compare::Welch>,
    n: (usize, usize),
}

/// The configurations of `runs`, their tests against the first, and a note for each set of
/// runs that repeat one configuration and seed (they are one sample).
fn group_tests(runs: &[SavedRun]) -> (Vec<GroupTest>, Vec<String>) {
    let facets: Vec<_> = runs.iter().map(facets).collect();
    let configurations = compare::configurations(&facets);
    let names = compare::describe_configurations(&facets).each;
    let bests = |c: &compare::Configuration| c.values(|i| runs[i].summary.best_val_accuracy);
    let repeats = configurations
        .iter()
        .flat_map(|c| &c.samples)
        .filter(|sample| sample.len() > 1)
        .map(|sample| {
            let ids: Vec<&str> = sample.iter().map(|&i| runs[i].id.as_str()).collect();
            format!(
                "{} repeat one configuration and seed ({}): one sample, their mean",
                ids.join(" and "),
                runs[sample[0]].experiment.seed
            )
        })
        .collect();
    let Some((first, others)) = configurations.split_first() else {
        return (Vec::new(), repeats);
    };
    let tests = others
        .iter()
        .map(|c| {
            let (a, b) = (bests(c), bests(first));
            GroupTest {
                first: names[first.members[0]].clone(),
                other: names[c.members[0]].clone(),
                test: compare::welch(&a, &b),
                n: (a.len(), b.len()),
            }
        })
        .collect();
    (tests, repeats)
}

/// A field of a run's provenance, or `-` for runs saved before it was recorded.
fn provenance(run: &SavedRun, field: impl Fn(&Provenance) -> String) -> String {
    run.summary.provenance.as_ref().map_or("-".into(), field)
}

/// Where the runs compared came from different builds, devices or CPUs: a difference between
/// them may then be the program's or the machine's, not the configuration's.
fn provenance_warnings(runs: &[SavedRun]) -> Vec<String> {
    let distinct = |value: &dyn Fn(&SavedRun) -> String| {
        let mut values: Vec<String> = runs.iter().map(value).collect();
        values.sort();
        values.dedup();
        values
    };
    let mut warnings = Vec::new();
    let builds = distinct(&|r| provenance(r, |p| p.build()));
    if builds.len() > 1 {
        warnings.push(format!(
            "the runs come from different builds ({}): a difference may be the program's",
            builds.join(", ")
        ));
    }
    let devices = distinct(&|r| r.summary.device.clone());
    if devices.len() > 1 {
        warnings.push(format!(
            "the runs trained on different devices ({}): results and times may differ by device",
            devices.join(", ")
        ));
    }
    let cpus = distinct(&|r| provenance(r, |p| p.cpu.clone()));
    if cpus.len() > 1 {
        warnings.push(format!(
            "the runs trained on different CPUs ({}): compare their times with care",
            cpus.join(", ")
        ));
    }
    warnings
}

/// One row of `compare`: how to show a field of a run.
type Field = Box<dyn Fn(&SavedRun) -> String>;

pub fn compare(args: CompareArgs) -> Result<ExitCode> {
    let runs = load_all(&args.saves, &args.runs)?;
    let described = describe(&runs);
    let (tests, repeats) = group_tests(&runs);
    let warnings = provenance_warnings(&runs);
    if args.json {
        let runs: Vec<serde_json::Value> = runs
            .iter()
            .zip(&described.each)
            .map(|(r, d)| {
                let mut v = json(r, d);
                v["epochs_metrics"] = serde_json::json!(r.epochs);
                v
            })
            .collect();
        let tests: Vec<serde_json::Value> = tests
            .iter()
            .map(|t| {
                serde_json::json!({
                    "metric": "best_val_accuracy",
                    "group": t.other,
                    "against": t.first,
                    "seeds": [t.n.0, t.n.1],
                    "best_val_difference": t.test.map(|w| w.difference),
                    "t": t.test.map(|w| w.t),
                    "df": t.test.map(|w| w.df),
                    "p": t.test.map(|w| w.p),
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::json!({"common": described.common, "runs": runs, "tests": tests, "repeats": repeats, "warnings": warnings})
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<(&str, Field)> = vec![
        ("data set", Box::new(|r| r.experiment.dataset.to_string())),
        ("model", Box::new(model_text)),
        (
            "skips",
            Box::new(|r| match &r.experiment.model {
                Model::Mlp { skips, .. } | Model::Cnn { skips, .. } => skips.to_string(),
            }),
        ),
        ("params", Box::new(|r| r.summary.params.to_string())),
        (
            "MACs/sample",
            Box::new(|r| r.summary.macs_per_sample.to_string()),
        ),
        (
            "optimizer",
            Box::new(|r| {
                let o = &r.experiment.optimizer;
                format!("{} lr {}", o.text(), o.lr())
            }),
        ),
        (
            "weight decay",
            Box::new(|r| r.experiment.weight_decay.to_string()),
        ),
        ("batch", Box::new(|r| r.experiment.batch.to_string())),
        ("seed", Box::new(|r| r.experiment.seed.to_string())),
        (
            "schedule",
            Box::new(|r| match r.summary.skips_enabled_after {
                Some(e) => format!("skip*, skips on after epoch {e}"),
                None if r.experiment.schedule.is_some() => "skip* (not switched)".into(),
                None => "-".into(),
            }),
        ),
        ("epochs", Box::new(|r| r.summary.epochs_done.to_string())),
        (
            "best val",
            Box::new(|r| {
                format!(
                    "{} (epoch {})",
                    pct(r.summary.best_val_accuracy),
                    r.summary.best_epoch.map_or("-".into(), |e| e.to_string())
                )
            }),
        ),
        (
            "test@best",
            Box::new(|r| match r.summary.test_epoch {
                Some(e) => format!("{} (epoch {e})", pct(r.summary.test_accuracy)),
                None => pct(r.summary.test_accuracy),
            }),
        ),
        (
            "s/epoch",
            Box::new(|r| {
                r.summary
                    .mean_epoch_seconds
                    .map_or("-".into(), |s| format!("{s:.2}"))
            }),
        ),
        ("device", Box::new(|r| r.summary.device.clone())),
        ("build", Box::new(|r| provenance(r, |p| p.build()))),
        ("cpu", Box::new(|r| provenance(r, |p| p.cpu.clone()))),
        (
            "threads",
            Box::new(|r| provenance(r, |p| p.threads.to_string())),
        ),
        ("started", Box::new(|r| r.summary.started.clone())),
        (
            "ended",
            Box::new(|r| provenance(r, |p| p.ended.clone().unwrap_or("-".into()))),
        ),
        ("status", Box::new(|r| r.summary.status.to_string())),
    ];
    let width = runs
        .iter()
        .map(|r| r.id.len())
        .chain(runs.iter().map(|r| model_text(r).len()))
        .chain(described.each.iter().map(|d| d.chars().count()))
        .max()
        .unwrap_or(10)
        .max(12);
    write!(crate::cli::Stdout, "{:<14}", "")?;
    for r in &runs {
        write!(crate::cli::Stdout, " {:<width$}", r.id)?;
    }
    outln!();
    for (name, value) in &rows {
        write!(crate::cli::Stdout, "{name:<14}")?;
        for r in &runs {
            write!(crate::cli::Stdout, " {:<width$}", value(r))?;
        }
        outln!();
    }
    write!(crate::cli::Stdout, "{:<14}", "differs in")?;
    for d in &described.each {
        let d = if d.is_empty() { "-" } else { d.as_str() };
        write!(crate::cli::Stdout, " {d:<width$}")?;
    }
    outln!();
    if !described.common.is_empty() && runs.len() > 1 {
        outln!("{:<14} {}", "all share", described.common);
    }
    let epochs = runs.iter().map(|r| r.epochs.len()).max().unwrap_or(0);
    outln!("validation accuracy by epoch:");
    for e in 0..epochs {
        write!(crate::cli::Stdout, "{:<14}", format!("  epoch {}", e + 1))?;
        for r in &runs {
            write!(
                crate::cli::Stdout,
                " {:<width$}",
                pct(r.epochs.get(e).map(|row| row.val_accuracy))
            )?;
        }
        outln!();
    }
    for note in &repeats {
        outln!("note: {note}");
    }
    for warning in &warnings {
        outln!("warning: {warning}");
    }
    for t in &tests {
        let verdict = match t.test {
            Some(w) => format!("{:+.2} points, {w}", 100.0 * w.difference),
            None if t.n.0 < 2 || t.n.1 < 2 => format!(
                "no test ({} vs {} seeds: a test needs two on each side)",
                t.n.0, t.n.1
            ),
            None => "no test (no spread over seeds)".into(),
        };
        outln!("best val, {} vs {}: {verdict}", t.other, t.first);
    }
    Ok(ExitCode::SUCCESS)
}

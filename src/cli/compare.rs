//! `skiplab compare`: saved runs side by side.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::runs::{load_all, model_text, pct};
use crate::outln;
use skiplab::experiment::{Model, Optimizer};
use skiplab::runs::SavedRun;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Run ids (or unique prefixes, or paths to run folders).
    #[arg(required = true, num_args = 1..)]
    runs: Vec<String>,
    #[arg(long, env = "SKIPLAB_SAVES_DIR", default_value = "saves")]
    saves: PathBuf,
}

/// One row of `compare`: how to show a field of a run.
type Field = Box<dyn Fn(&SavedRun) -> String>;

pub fn compare(args: CompareArgs) -> Result<ExitCode> {
    let runs = load_all(&args.saves, &args.runs)?;
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
            Box::new(|r| match r.experiment.optimizer {
                Optimizer::Sgd { lr, momentum } => format!("sgd lr {lr} m {momentum}"),
                Optimizer::Adam { lr } => format!("adam lr {lr}"),
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
        ("test", Box::new(|r| pct(r.summary.test_accuracy))),
        (
            "s/epoch",
            Box::new(|r| {
                r.summary
                    .mean_epoch_seconds
                    .map_or("-".into(), |s| format!("{s:.2}"))
            }),
        ),
        ("device", Box::new(|r| r.summary.device.clone())),
        ("status", Box::new(|r| r.summary.status.to_string())),
    ];
    let width = runs
        .iter()
        .map(|r| r.id.len())
        .chain(runs.iter().map(|r| model_text(r).len()))
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
    Ok(ExitCode::SUCCESS)
}

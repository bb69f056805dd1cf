//! `skiplab runs`: the saved runs in a table.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::outln;
use skiplab::runs::{self, SavedRun};

#[derive(Args, Debug)]
pub struct RunsArgs {
    /// Where runs are saved.
    #[arg(long, env = "SKIPLAB_SAVES_DIR", default_value = "saves")]
    saves: PathBuf,
}

pub fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.2}%", 100.0 * v))
}

pub fn load(saves: &Path, key: &str) -> Result<SavedRun> {
    Ok(runs::load_run(&runs::find_run(saves, key)?)?)
}

/// Every run `keys` names (ids, prefixes or paths), in order.
pub fn load_all(saves: &Path, keys: &[String]) -> Result<Vec<SavedRun>> {
    keys.iter().map(|k| load(saves, k)).collect()
}

pub fn model_text(run: &SavedRun) -> String {
    run.experiment
        .topology()
        .map(|t| t.summary())
        .unwrap_or_else(|e| format!("invalid: {e}"))
}

pub fn list(args: RunsArgs) -> Result<ExitCode> {
    let all = runs::list_runs(&args.saves);
    if all.is_empty() {
        outln!("no saved runs in {}", args.saves.display());
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<40} {:<15} {:>6} {:>9} {:>9} {:>8}  {:<10} model",
        "run",
        "data",
        "epochs",
        "best val",
        "test",
        "s/epoch",
        "status"
    );
    for run in all {
        match run {
            Ok(r) => outln!(
                "{:<40} {:<15} {:>6} {:>9} {:>9} {:>8}  {:<10} {}",
                r.id,
                r.experiment.dataset.as_str(),
                r.summary.epochs_done,
                pct(r.summary.best_val_accuracy),
                pct(r.summary.test_accuracy),
                r.summary
                    .mean_epoch_seconds
                    .map_or("-".into(), |s| format!("{s:.2}")),
                r.summary.status.word(),
                model_text(&r)
            ),
            Err(e) => outln!("unreadable: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

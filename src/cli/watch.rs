//! `skiplab runs --watch` and `skiplab sweep watch`: saves folders followed as other
//! processes write them. On a terminal, the table redrawn in place as runs change; piped (or
//! with `--json`), one JSON object per change.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::runs::{describe, json, shown, table, RunsArgs};
use super::{Follow, Stdout};
use crate::outln;
use skiplab::sweep::{self, Sweep};
use skiplab::train::TrainEvent;
use skiplab::watch::{Board, Change, WatchEvent, Watcher};

/// A change as one JSON object (`None` for step points and gradient flow: too many to print).
pub fn change_json(event: &WatchEvent, board: &Board) -> Option<serde_json::Value> {
    let mut value = match &event.change {
        Change::Found(run) => {
            let mut v = json(run, "");
            v["status"] = board.status(run).into();
            v["event"] = "found".into();
            v
        }
        Change::Train(TrainEvent::Epoch(m)) => skiplab::session::print::epoch_json(m),
        Change::Train(TrainEvent::SkipsEnabled { after_epoch, .. }) => {
            serde_json::json!({"event": "skips_enabled", "after_epoch": after_epoch})
        }
        Change::Train(TrainEvent::Ended {
            status,
            epochs_done,
            test_accuracy,
            ..
        }) => {
            let run = board.runs.iter().find(|r| r.id == event.id);
            serde_json::json!({
                "event": "ended",
                "status": run.map_or("ended", |r| board.status(r)),
                "detail": skiplab::train::RunState::Ended(status.clone()).to_string(),
                "epochs": epochs_done,
                "test_accuracy": test_accuracy,
            })
        }
        Change::Train(_) => return None,
        Change::Stalled { quiet } => {
            serde_json::json!({"event": "stalled", "quiet_seconds": quiet.as_secs_f64()})
        }
        Change::Active => serde_json::json!({"event": "active"}),
        Change::Unreadable(e) => {
            serde_json::json!({"event": "unreadable", "path": e.path, "error": e.message})
        }
    };
    value["run"] = event.id.clone().into();
    Some(value)
}

/// Clears the terminal and puts the cursor top left (the table is redrawn in place).
fn clear_screen() -> Result<()> {
    write!(Stdout, "\x1b[H\x1b[2J")?;
    Ok(())
}

/// How many runs stand how: `3 running, 1 stalled, 12 finished`.
fn tally(board: &Board) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for run in &board.runs {
        let word = board.status(run);
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some((_, n)) => *n += 1,
            None => counts.push((word, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    match parts.is_empty() {
        true => "no runs yet".into(),
        false => parts.join(", "),
    }
}

fn how(watcher: &Watcher) -> &'static str {
    match watcher.notifying() {
        true => "notified and polled",
        false => "polled",
    }
}

/// `skiplab runs --watch`.
pub fn runs(args: &RunsArgs) -> Result<ExitCode> {
    let folders = args.saves.folders()?;
    let names: Vec<String> = folders.iter().map(|f| f.display().to_string()).collect();
    let mut watcher = args.follow.watcher(folders);
    let mut board = Board::default();
    let lines = args.json || !std::io::stdout().is_terminal();
    let mut events = watcher.scan();
    let mut first = true;
    loop {
        for event in &events {
            board.apply(event);
            if lines {
                if let Some(value) = change_json(event, &board) {
                    outln!("{value}");
                }
            }
        }
        if !lines && (first || !events.is_empty()) {
            clear_screen()?;
            outln!(
                "watching {} ({}) · {} · Ctrl-C stops",
                names.join(", "),
                how(&watcher),
                tally(&board)
            );
            let described = describe(&board.runs);
            for line in table(&shown(&board.runs, &described.each, args), &|r| {
                board.status(r).to_string()
            }) {
                outln!("{line}");
            }
            for e in &board.unreadable {
                outln!("unreadable: {e}");
            }
            Stdout.flush()?;
        }
        first = false;
        if args.follow.until_ended.is_some_and(|n| board.ended() >= n) {
            return Ok(ExitCode::SUCCESS);
        }
        events = watcher.next(Duration::from_secs(1));
    }
}

/// `skiplab sweep watch FILE`: the sweep's planned runs as they train, and the report so far.
pub fn sweep(file: &Path, saves: &Path, follow: &Follow, json_lines: bool) -> Result<ExitCode> {
    let plan = Sweep::load(file)?;
    let mut watcher = follow.watcher(vec![saves.to_path_buf()]);
    let mut board = Board::default();
    let lines = json_lines || !std::io::stdout().is_terminal();
    let planned = |id: &str| plan.runs.iter().find(|r| r.id == id);
    let mut events = watcher.scan();
    let mut first = true;
    let mut told: Option<Best> = None;
    loop {
        for event in &events {
            board.apply(event);
            let Some(run) = planned(&event.id) else {
                continue;
            };
            if lines {
                if let Some(mut value) = change_json(event, &board) {
                    value["index"] = run.index.into();
                    outln!("{value}");
                }
            }
        }
        let ours: Vec<skiplab::runs::SavedRun> = board
            .runs
            .iter()
            .filter(|r| planned(&r.id).is_some())
            .cloned()
            .collect();
        let done = plan
            .runs
            .iter()
            .filter(|p| {
                ours.iter()
                    .find(|r| r.id == p.id)
                    .is_some_and(|r| sweep::progress_of_saved(p, r).is_done())
            })
            .count();
        let best = best_so_far(&plan, &ours);
        if lines && best.is_some() && best != told {
            let b = best.clone().expect("checked");
            let value = serde_json::json!({
                "event": "best",
                "configuration": b.configuration,
                "mean_best_val_accuracy": b.mean,
                "sd": b.sd,
                "seeds": b.seeds,
                "planned": b.planned,
            });
            outln!("{value}");
            told = best.clone();
        }
        if !lines && (first || !events.is_empty()) {
            clear_screen()?;
            outln!(
                "sweep {}: {} runs, {done} done · watching {} ({}) · Ctrl-C stops",
                plan.name,
                plan.runs.len(),
                saves.display(),
                how(&watcher)
            );
            let width = plan.runs.iter().map(|r| r.id.len()).max().unwrap_or(2);
            outln!(
                "{:>5}  {:<width$}  {:<11} {:>6} {:>9}  held by",
                "index",
                "id",
                "status",
                "epochs",
                "best val"
            );
            for p in &plan.runs {
                let run = ours.iter().find(|r| r.id == p.id);
                let status = run.map_or("pending", |r| board.status(r));
                let holder = sweep::lock_holder(saves, &p.id).unwrap_or_default();
                outln!(
                    "{:>5}  {:<width$}  {:<11} {:>6} {:>9}  {holder}",
                    p.index,
                    p.id,
                    status,
                    run.map_or("-".into(), |r| format!(
                        "{}/{}",
                        r.summary.epochs_done, p.experiment.epochs
                    )),
                    super::runs::pct(run.and_then(|r| r.summary.best_val_accuracy)),
                );
            }
            outln!();
            if let Some(best) = &best {
                outln!(
                    "best so far: {}: {:.2} ± {:.2}% best val ({} of {} seeds done)",
                    best.configuration,
                    100.0 * best.mean,
                    100.0 * best.sd,
                    best.seeds,
                    best.planned
                );
            }
            outln!("{}", sweep::report(&plan, &ours));
            Stdout.flush()?;
        }
        first = false;
        if follow.until_ended.is_some_and(|n| board.ended() >= n) || done == plan.runs.len() {
            return Ok(ExitCode::SUCCESS);
        }
        events = watcher.next(Duration::from_secs(1));
    }
}

/// The sweep's best configuration so far.
#[derive(Clone, Debug, PartialEq)]
struct Best {
    configuration: String,
    /// Mean and sd of its runs' best validation accuracies.
    mean: f64,
    sd: f64,
    /// Its runs done, of those planned.
    seeds: usize,
    planned: usize,
}

/// The configuration with the highest mean best validation accuracy over its runs done so
/// far.
fn best_so_far(plan: &Sweep, done: &[skiplab::runs::SavedRun]) -> Option<Best> {
    let mut configurations: Vec<(String, Vec<f64>, usize)> = Vec::new();
    for p in &plan.runs {
        let key = p.configuration();
        let value = done
            .iter()
            .find(|r| r.id == p.id)
            .filter(|r| sweep::progress_of_saved(p, r).is_done())
            .and_then(|r| r.summary.best_val_accuracy);
        match configurations.iter_mut().find(|(k, ..)| *k == key) {
            Some((_, values, planned)) => {
                values.extend(value);
                *planned += 1;
            }
            None => configurations.push((key, value.into_iter().collect(), 1)),
        }
    }
    let (key, values, planned) = configurations
        .into_iter()
        .filter(|(_, values, _)| !values.is_empty())
        .max_by(|a, b| {
            let mean = |v: &[f64]| skiplab::compare::mean_sd(v).0;
            mean(&a.1).total_cmp(&mean(&b.1))
        })?;
    let (mean, sd) = skiplab::compare::mean_sd(&values);
    Some(Best {
        configuration: key,
        mean,
        sd,
        seeds: values.len(),
        planned,
    })
}

//! Watching saves folders that other processes write: a headless run's epochs arrive in
//! order and then its end; a killed writer reads as interrupted and a frozen one as stalled;
//! a half-written row is never shown; a folder rewritten from the start is found anew. Each
//! with file notification and with polling alone.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skiplab::runs;
use skiplab::train::{RunState, RunStatus, TrainEvent};
use skiplab::watch::{Change, WatchEvent, WatchOptions, Watcher};

fn train(saves: &Path, epochs: &str, batch: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_skiplab"))
        .args([
            "train", "--epochs", epochs, "--widths", "32", "--batch", batch,
        ])
        .env("SKIPLAB_SAVES_DIR", saves)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Watches until `done` says so of the events so far (or panics after `limit`).
fn watch_until(
    watcher: &mut Watcher,
    limit: Duration,
    done: impl Fn(&[WatchEvent]) -> bool,
) -> Vec<WatchEvent> {
    let start = Instant::now();
    let mut events = Vec::new();
    while !done(&events) {
        assert!(start.elapsed() < limit, "gave up waiting: {events:#?}");
        events.extend(watcher.next(Duration::from_millis(200)));
    }
    events
}

fn ended(events: &[WatchEvent]) -> Option<RunStatus> {
    events.iter().find_map(|e| match &e.change {
        Change::Train(TrainEvent::Ended { status, .. }) => Some(status.clone()),
        Change::Found(run) => run.summary.status.ended(),
        _ => None,
    })
}

fn options(notify: bool, stall_after: Duration) -> WatchOptions {
    WatchOptions {
        stall_after,
        notify,
    }
}

#[test]
fn a_headless_runs_epochs_arrive_in_order_then_its_end() {
    for notify in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let saves = tmp.path().to_path_buf();
        let mut watcher = Watcher::new(
            vec![saves.clone()],
            options(notify, Duration::from_secs(600)),
        );
        assert!(watcher.scan().is_empty());
        let mut child = train(&saves, "6", "64");
        let events = watch_until(&mut watcher, Duration::from_secs(120), |e| {
            ended(e).is_some()
        });
        child.wait().unwrap();
        // Found once, first; then each epoch once, in order, then the end.
        let Change::Found(found) = &events[0].change else {
            panic!("{:?}", events[0])
        };
        assert!(
            events[1..]
                .iter()
                .all(|e| !matches!(e.change, Change::Found(_))),
            "{events:#?}"
        );
        let mut epochs: Vec<usize> = found.epochs.iter().map(|r| r.epoch).collect();
        epochs.extend(events.iter().filter_map(|e| match &e.change {
            Change::Train(TrainEvent::Epoch(m)) => Some(m.epoch),
            _ => None,
        }));
        assert_eq!(epochs, [1, 2, 3, 4, 5, 6], "notify {notify}");
        assert_eq!(ended(&events), Some(RunStatus::Finished));
        // Step points came with the epochs, in order.
        let mut steps: Vec<usize> = found.steps.iter().map(|s| s.step).collect();
        steps.extend(events.iter().filter_map(|e| match &e.change {
            Change::Train(TrainEvent::Step(s)) => Some(s.step),
            _ => None,
        }));
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
        // What the watcher saw is what the run saved.
        let saved = runs::load_run(&found.dir).unwrap();
        assert_eq!(steps.len(), saved.steps.len());
        // Nothing more to say once it ended.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(watcher.scan(), []);
    }
}

/// The process of a run found on disk.
fn running_run(saves: &Path) -> (Child, Watcher, PathBuf) {
    let child = train(saves, "500", "256");
    let mut watcher = Watcher::new(
        vec![saves.to_path_buf()],
        options(false, Duration::from_millis(1500)),
    );
    let events = watch_until(&mut watcher, Duration::from_secs(120), |e| {
        e.iter().any(
            |e| matches!(&e.change, Change::Found(run) if run.summary.status == RunState::Running),
        )
    });
    (child, watcher, events[0].dir.clone())
}

#[test]
fn a_killed_writer_reads_as_interrupted_and_a_frozen_one_as_stalled() {
    let tmp = tempfile::tempdir().unwrap();
    // Frozen (SIGSTOP: it holds its lock but writes nothing): stalled, then active again.
    let (mut child, mut watcher, _) = running_run(tmp.path());
    let pid = child.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    let events = watch_until(&mut watcher, Duration::from_secs(30), |e| {
        e.iter().any(|e| matches!(e.change, Change::Stalled { .. }))
    });
    assert!(ended(&events).is_none(), "{events:#?}");
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    watch_until(&mut watcher, Duration::from_secs(60), |e| {
        e.iter().any(|e| matches!(e.change, Change::Active))
    });
    // Killed: its lock goes with it.
    child.kill().unwrap();
    child.wait().unwrap();
    let events = watch_until(&mut watcher, Duration::from_secs(30), |e| {
        ended(e).is_some()
    });
    assert_eq!(
        ended(&events),
        Some(RunStatus::Failed(runs::INTERRUPTED.into())),
        "{events:#?}"
    );
}

/// A run folder written by hand: experiment, summary and `rows` of metrics.csv, then `tail`
/// (a row being written) without its newline.
fn hand_written_run(dir: &Path, rows: &[String], tail: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let experiment = skiplab::experiment::Experiment::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/quick.ron"),
    )
    .unwrap();
    std::fs::write(dir.join(runs::EXPERIMENT), experiment.to_ron()).unwrap();
    let topology = experiment.topology().unwrap();
    let summary = runs::Summary::new(
        &topology,
        "cpu",
        skiplab::provenance::Provenance::here("test"),
    );
    let text = ron::ser::to_string_pretty(&summary, Default::default()).unwrap();
    std::fs::write(dir.join(runs::SUMMARY), text).unwrap();
    let mut csv = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,samples_per_sec,seconds,skips_on,skip_weights\n".to_string();
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    csv.push_str(tail);
    // Published by a rename, as the recorder does.
    std::fs::write(dir.join(".tmp-metrics"), csv).unwrap();
    std::fs::rename(dir.join(".tmp-metrics"), dir.join(runs::METRICS)).unwrap();
}

fn row(epoch: usize) -> String {
    format!("{epoch},0.5,0.8,0.6,0.7{epoch},1000,1.5,true,")
}

#[test]
fn a_half_written_row_is_never_shown_and_a_rewritten_folder_is_found_anew() {
    for notify in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("20261207-120000-mlp-s1");
        hand_written_run(&dir, &[row(1)], "2,0.4,0.8");
        let mut watcher = Watcher::new(
            vec![tmp.path().to_path_buf()],
            options(notify, Duration::from_secs(600)),
        );
        let events = watcher.scan();
        let [WatchEvent {
            change: Change::Found(run),
            ..
        }] = events.as_slice()
        else {
            panic!("{events:#?}")
        };
        assert_eq!(run.epochs.len(), 1, "the half row is not a row");
        assert!(watcher.scan().is_empty());
        // The row completed, and one more.
        hand_written_run(&dir, &[row(1), row(2), row(3)], "");
        let events = watch_until(&mut watcher, Duration::from_secs(10), |e| {
            e.iter()
                .filter(|e| matches!(e.change, Change::Train(TrainEvent::Epoch(_))))
                .count()
                == 2
        });
        let epochs: Vec<(usize, f64)> = events
            .iter()
            .filter_map(|e| match &e.change {
                Change::Train(TrainEvent::Epoch(m)) => Some((m.epoch, m.val_accuracy)),
                _ => None,
            })
            .collect();
        assert_eq!(epochs, [(2, 0.72), (3, 0.73)]);
        // Rewritten from the start (a sweep's retry): found anew with what it holds now.
        hand_written_run(&dir, &[row(1)], "");
        let events = watch_until(&mut watcher, Duration::from_secs(10), |e| !e.is_empty());
        let [WatchEvent {
            change: Change::Found(run),
            ..
        }] = events.as_slice()
        else {
            panic!("{events:#?}")
        };
        assert_eq!(run.epochs.len(), 1);
    }
}

#[test]
fn a_folder_that_is_not_a_run_is_said_once_and_other_folders_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("broken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(runs::EXPERIMENT), "not ron (").unwrap();
    std::fs::create_dir_all(tmp.path().join(".hidden")).unwrap();
    std::fs::create_dir_all(tmp.path().join("empty")).unwrap();
    let mut watcher = Watcher::new(
        vec![tmp.path().to_path_buf()],
        options(false, Duration::from_secs(600)),
    );
    let events = watcher.scan();
    let [WatchEvent {
        id,
        change: Change::Unreadable(e),
        ..
    }] = events.as_slice()
    else {
        panic!("{events:#?}")
    };
    assert_eq!(id, "broken");
    assert!(e.path.ends_with(runs::EXPERIMENT), "{e}");
    assert!(watcher.scan().is_empty());
    assert_eq!(watcher.len(), 2, "the hidden folder is not followed");
}

/// Within an epoch, the watcher tells where it stands and its step points so far (from
/// `live.json`), before the epoch's files are saved; each step point once.
#[test]
fn an_epoch_in_progress_shows_its_steps_before_it_is_saved() {
    let tmp = tempfile::tempdir().unwrap();
    // A long epoch: wide layers, tiny batches.
    let mut child = Command::new(env!("CARGO_BIN_EXE_skiplab"))
        .args([
            "train",
            "--epochs",
            "2",
            "--widths",
            "1024,1024",
            "--batch",
            "4",
        ])
        .env("SKIPLAB_SAVES_DIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut watcher = Watcher::new(
        vec![tmp.path().to_path_buf()],
        options(false, Duration::from_secs(600)),
    );
    let events = watch_until(&mut watcher, Duration::from_secs(60), |e| {
        e.iter()
            .filter(|e| matches!(e.change, Change::Train(TrainEvent::Progress { .. })))
            .count()
            >= 2
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.change, Change::Train(TrainEvent::Epoch(_)))),
        "the first epoch took less than a few seconds: {events:#?}"
    );
    let progress: Vec<(usize, usize)> = events
        .iter()
        .filter_map(|e| match e.change {
            Change::Train(TrainEvent::Progress { epoch, step, .. }) => Some((epoch, step)),
            _ => None,
        })
        .collect();
    assert!(
        progress.iter().all(|&(epoch, _)| epoch == 1),
        "{progress:?}"
    );
    assert!(progress.windows(2).all(|w| w[0].1 < w[1].1), "{progress:?}");
    let steps: Vec<usize> = events
        .iter()
        .filter_map(|e| match &e.change {
            Change::Train(TrainEvent::Step(s)) => Some(s.step),
            Change::Found(run) if !run.steps.is_empty() => Some(run.steps[0].step),
            _ => None,
        })
        .collect();
    assert!(
        !steps.is_empty(),
        "no step point before the epoch ended: {events:#?}"
    );
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    let flows = events
        .iter()
        .filter(|e| matches!(e.change, Change::Train(TrainEvent::Flow(_))))
        .count();
    assert!(flows > 0, "{events:#?}");
}

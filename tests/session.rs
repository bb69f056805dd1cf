//! The session without a terminal or a subprocess: its queue driven by scripted trainers,
//! and real training whose disk fills up midway.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiplab::device::Device;
use skiplab::experiment::{Experiment, Model, Skips};
use skiplab::runs::{self, Disk, RunError, RunFiles};
use skiplab::session::print::Printer;
use skiplab::session::{
    Ending, Message, Outlet, RunRequest, RunState, Session, SessionError, SessionEvent, Settings,
    Spawner, Update,
};
use skiplab::train::{Command, EventSink, RunHandle, RunStatus, TrainEvent, TrainJob};

/// A small experiment on the built-in data: a few hundred milliseconds an epoch.
fn small(epochs: usize, seed: u64) -> Experiment {
    let quick = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/quick.ron");
    let mut e = Experiment::load(&quick).unwrap();
    e.model = Model::mlp(vec![16], Skips("all".parse().unwrap()));
    e.batch = 256;
    e.epochs = epochs;
    e.seed = seed;
    e
}

fn channel_outlet() -> (Outlet, Receiver<Message>) {
    let (tx, rx) = mpsc::channel();
    (Arc::new(move |m| tx.send(m).is_ok()), rx)
}

/// Trainers that start, then wait until the test lets them finish (or they are stopped).
#[derive(Clone, Default)]
struct Scripted {
    /// Jobs in the order they were spawned.
    jobs: Arc<Mutex<Vec<u64>>>,
    /// Seeds allowed to finish.
    finish: Arc<Mutex<Vec<u64>>>,
}

impl Spawner for Scripted {
    fn spawn(&mut self, job: TrainJob, mut events: Box<dyn EventSink>) -> RunHandle {
        let seed = job.config.seed;
        self.jobs.lock().unwrap().push(seed);
        let finish = Arc::clone(&self.finish);
        RunHandle::spawn(move |commands| {
            events.emit(TrainEvent::Preparing);
            events.emit(TrainEvent::Started {
                params: 1,
                steps_per_epoch: 1,
                train_samples: 1,
                val_samples: 1,
                test_samples: 1,
            });
            let status = loop {
                if let Ok(Command::Stop) = commands.try_recv() {
                    break RunStatus::Stopped;
                }
                if finish.lock().unwrap().contains(&seed) {
                    break RunStatus::Finished;
                }
                std::thread::sleep(Duration::from_millis(2));
            };
            events.emit(TrainEvent::Ended {
                status: status.clone(),
                epochs_done: 0,
                test_accuracy: None,
                test_epoch: None,
            });
            status
        })
    }
}

/// Feeds the session its trainers' events until `done` holds; returns every update.
fn pump(
    session: &mut Session,
    rx: &Receiver<Message>,
    done: impl Fn(&Session) -> bool,
) -> Vec<SessionEvent> {
    let mut updates = Vec::new();
    while !done(session) {
        match rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a trainer event")
        {
            Message::Run(id, event) => updates.extend(session.handle(id, event)),
            Message::Signal(_) => unreachable!(),
        }
    }
    updates
}

fn states(session: &Session) -> Vec<RunState> {
    session.runs().iter().map(|r| r.state.clone()).collect()
}

#[test]
fn the_queue_runs_as_many_as_it_has_slots_and_stops_queued_runs_without_starting_them() {
    let spawner = Scripted::default();
    let (outlet, rx) = channel_outlet();
    let mut settings = Settings::new(Device::Cpu, "data".into(), None);
    settings.slots = 2;
    let mut session = Session::new(settings, Box::new(spawner.clone()), outlet).unwrap();
    let requests = (1..=4)
        .map(|seed| RunRequest::new(small(1, seed)))
        .collect();
    let first = session.submit_all(requests).unwrap();
    let queued = first
        .iter()
        .filter(|e| matches!(e.update, Update::Queued(_)))
        .count();
    let starting: Vec<usize> = first
        .iter()
        .filter(|e| matches!(e.update, Update::Starting { saved: None }))
        .map(|e| e.run)
        .collect();
    assert_eq!((queued, starting), (4, vec![1, 2]), "{first:?}");
    assert_eq!(states(&session)[2..], [RunState::Queued, RunState::Queued]);
    // Both slots busy: the third waits until the first finishes.
    pump(&mut session, &rx, |s| {
        s.runs()[1].state == RunState::Running
    });
    spawner.finish.lock().unwrap().push(1);
    let updates = pump(&mut session, &rx, |s| !s.runs()[0].state.is_active());
    assert_eq!(states(&session)[0], RunState::Ended(RunStatus::Finished));
    assert!(
        updates
            .iter()
            .any(|e| e.run == 3 && matches!(e.update, Update::Starting { .. })),
        "{updates:?}"
    );
    assert_eq!(*spawner.jobs.lock().unwrap(), [1, 2, 3]);
    // Stopping everything: the queued fourth ends at once and never starts.
    let stopped = session.stop_all();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(states(&session)[3], RunState::Ended(RunStatus::Stopped));
    pump(&mut session, &rx, Session::is_idle);
    assert_eq!(
        states(&session),
        [
            RunState::Ended(RunStatus::Finished),
            RunState::Ended(RunStatus::Stopped),
            RunState::Ended(RunStatus::Stopped),
            RunState::Ended(RunStatus::Stopped),
        ]
    );
    assert_eq!(*spawner.jobs.lock().unwrap(), [1, 2, 3], "4 never spawned");
    // A command to an ended run does nothing.
    assert!(session.command(1, Command::Stop).is_empty());
}

#[test]
fn bad_requests_are_refused_before_anything_is_queued() {
    let spawner = Scripted::default();
    let (outlet, _rx) = channel_outlet();
    let tmp = tempfile::tempdir().unwrap();
    let settings = Settings::new(Device::Cpu, tmp.path().into(), None);
    let mut session = Session::new(settings, Box::new(spawner.clone()), outlet).unwrap();
    let mut huge = small(1, 1);
    huge.model = Model::mlp(vec![100_000_000], Skips("none".parse().unwrap()));
    let mut wide = small(1, 5);
    wide.model = Model::mlp(vec![200_000], Skips("none".parse().unwrap()));
    let mut no_val = small(1, 2);
    no_val.val_fraction = 0.0;
    let mut missing = small(1, 3);
    missing.dataset = skiplab::data::DatasetName::Cifar10;
    missing.model = Model::mlp(vec![8], Skips("none".parse().unwrap()));
    let mut cases = vec![
        (
            huge,
            "layer 1's width is 100000000; skiplab allows at most 1,048,576",
        ),
        (
            wide,
            "the network has 159,000,010 parameters; skiplab trains at most 100,000,000",
        ),
        (no_val, "val_fraction 0 must be above 0"),
        (missing, "cifar10: missing: `skiplab data fetch cifar10`"),
    ];
    if skiplab::device::physical_memory().is_some() {
        let mut big_batch = small(1, 4);
        big_batch.batch = 1_000_000_000;
        cases.push((big_batch, "at batch 1000000000 needs about"));
    }
    for (experiment, message) in cases {
        // Among good requests: none of them is queued either.
        let requests = vec![RunRequest::new(small(1, 9)), RunRequest::new(experiment)];
        let e = session.submit_all(requests).unwrap_err();
        assert!(
            matches!(e, SessionError::Refused(_) | SessionError::MissingData(_)),
            "{e:?}"
        );
        assert!(e.to_string().contains(message), "{e}");
    }
    assert!(session.runs().is_empty());
    assert!(spawner.jobs.lock().unwrap().is_empty());
}

#[test]
fn a_bad_value_is_named_before_any_data_loads_and_a_resolved_request_is_taken_as_it_is() {
    let spawner = Scripted::default();
    let (outlet, _rx) = channel_outlet();
    let tmp = tempfile::tempdir().unwrap();
    // Data loaded up front, from a folder without CIFAR-10: the rate is wrong as well.
    let settings = Settings {
        load_first: true,
        ..Settings::new(Device::Cpu, tmp.path().join("no-data"), None)
    };
    let mut session = Session::new(settings, Box::new(spawner.clone()), outlet).unwrap();
    let mut bad = small(1, 1);
    bad.dataset = skiplab::data::DatasetName::Cifar10;
    bad.model = Model::mlp(vec![8], Skips("none".parse().unwrap()));
    bad.optimizer = skiplab::experiment::Optimizer::Sgd {
        lr: -1.0,
        momentum: 0.9,
    };
    let e = session.submit_all(vec![RunRequest::new(bad)]).unwrap_err();
    assert!(
        matches!(&e, SessionError::Refused(m) if m == "optimizer.lr -1 must be a positive number"),
        "{e:?}"
    );
    // A front end that resolved its experiment hands it over checked, network and all.
    let resolved = small(1, 7).resolve().unwrap();
    let network = resolved.topology().clone();
    let events = session
        .submit_all(vec![RunRequest::resolved(resolved)])
        .unwrap();
    let Update::Queued(info) = &events[0].update else {
        panic!("{events:?}");
    };
    assert_eq!(info.topology, network);
    assert_eq!(info.experiment.seed, 7);
    // An experiment that breaks a rule cannot be resolved, so cannot be handed over so.
    let mut zero = small(0, 1);
    zero.epochs = 0;
    assert_eq!(zero.resolve().unwrap_err(), "epochs must be at least 1");
}

/// The file system with a disk that fills up: every replacement that includes the weights
/// fails once `epochs_that_fit` epochs are saved; with `summary_too`, so does everything
/// after that.
struct FillsUp {
    epochs_that_fit: usize,
    summary_too: bool,
    saved: AtomicUsize,
}

impl RunFiles for FillsUp {
    fn replace(&self, files: &[(PathBuf, Vec<u8>)]) -> Result<(), RunError> {
        let full = self.saved.load(Ordering::SeqCst) >= self.epochs_that_fit;
        let epoch = files.iter().any(|(p, _)| p.ends_with(runs::WEIGHTS));
        if full && (epoch || self.summary_too) {
            return Err(RunError {
                path: files[0].0.clone(),
                message: "cannot write: No space left on device (os error 28)".into(),
            });
        }
        Disk.replace(files)?;
        if epoch {
            self.saved.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[test]
fn a_disk_that_fills_up_fails_the_run_and_keeps_the_saved_epochs_consistent() {
    for summary_too in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let mut settings = Settings::new(Device::Cpu, "data".into(), Some(tmp.path().into()));
        settings.files = Arc::new(FillsUp {
            epochs_that_fit: 2,
            summary_too,
            saved: AtomicUsize::new(0),
        });
        let (mut session, _tx, rx) = Session::headless(settings).unwrap();
        let first = session
            .submit_all(vec![RunRequest::new(small(6, 1))])
            .unwrap();
        let mut printer = Printer::new(Vec::new(), Vec::new(), false, false, false);
        let ending = session.follow(&rx, first, &mut printer);
        assert!(matches!(ending, Ending::Finished), "{ending:?}");
        let run = &session.runs()[0];
        let RunState::Ended(RunStatus::Failed(why)) = &run.state else {
            panic!("{:?}", run.state)
        };
        assert!(
            why.starts_with("could not save epoch 3: ") && why.contains("No space left"),
            "{why}"
        );
        let out = String::from_utf8(printer.into_parts().0).unwrap();
        assert!(
            out.lines()
                .last()
                .unwrap()
                .starts_with("failed: could not save epoch 3"),
            "{out}"
        );
        // Not "saved as", which reads like a result: what was saved, and where.
        assert!(
            !out.contains("saved as") && out.contains("what it saved before it failed is in "),
            "{out}"
        );
        // On disk: epochs 1 and 2, in all four files.
        let saved = runs::load_run(&run.saved.as_ref().unwrap().dir).unwrap();
        let epochs: Vec<usize> = saved.epochs.iter().map(|r| r.epoch).collect();
        assert_eq!(epochs, [1, 2], "summary_too {summary_too}");
        assert_eq!(saved.summary.epochs_done, 2);
        let best = saved
            .epochs
            .iter()
            .map(|r| r.val_accuracy)
            .fold(0.0, f64::max);
        assert_eq!(saved.summary.best_val_accuracy, Some(best));
        assert_eq!(
            runs::read_weights(&saved.dir.join(runs::WEIGHTS))
                .unwrap()
                .epoch,
            Some(2)
        );
        saved
            .weights_to_resume()
            .expect("a consistent folder resumes");
        match (&saved.summary.status, summary_too) {
            (RunState::Ended(RunStatus::Failed(m)), false) => assert_eq!(m, why),
            // The final summary could not be written either: it still says running, but its
            // writer is gone, so it reads as interrupted.
            (RunState::Ended(RunStatus::Failed(m)), true) => assert_eq!(m, runs::INTERRUPTED),
            other => panic!("{other:?}"),
        }
        assert!(
            std::fs::read_dir(&saved.dir).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".tmp")),
            "no temporary file left behind"
        );
    }
}

#[test]
fn runs_share_one_data_split_per_seed_and_save_under_ids_that_say_what_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = Settings::new(Device::Cpu, "data".into(), Some(tmp.path().into()));
    let (mut session, _tx, rx) = Session::headless(settings).unwrap();
    let mut vanilla = small(1, 2);
    vanilla.model = Model::mlp(vec![8, 8], Skips("none".parse().unwrap()));
    let requests = vec![
        RunRequest::new(small(1, 1)),
        RunRequest::new(small(1, 1)),
        RunRequest::new(vanilla),
    ];
    let first = session.submit_all(requests).unwrap();
    let mut printer = Printer::new(Vec::new(), Vec::new(), true, false, false);
    assert!(matches!(
        session.follow(&rx, first, &mut printer),
        Ending::Finished
    ));
    let ids: Vec<String> = session
        .runs()
        .iter()
        .map(|r| r.saved.as_ref().unwrap().id.clone())
        .collect();
    assert!(ids[0].ends_with("-mlp2-skips-s1"), "{ids:?}");
    assert!(ids[2].ends_with("-mlp3-vanilla-s2"), "{ids:?}");
    // Same seed, same data: the same validation figures for the same network and seed.
    let (a, b) = (&session.runs()[0], &session.runs()[1]);
    assert_eq!(a.epochs[0].val_accuracy, b.epochs[0].val_accuracy);
    // Every id, even one that prefixes another, finds its own run.
    for (run, id) in session.runs().iter().zip(&ids) {
        let dir = runs::find_run(tmp.path(), id).unwrap();
        assert_eq!(dir, run.saved.as_ref().unwrap().dir);
    }
    // JSON lines: saving, epoch and ended for each run, in order.
    let out = String::from_utf8(printer.into_parts().0).unwrap();
    let events: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(events.len(), 9, "{out}");
    assert_eq!(events[..3], ["\"saving\"", "\"epoch\"", "\"ended\""]);
}

#[test]
fn a_resumed_run_continues_its_summary_and_refuses_another_runs_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let run_in = |requests: Vec<RunRequest>| {
        let settings = Settings::new(Device::Cpu, "data".into(), Some(tmp.path().into()));
        let (mut session, _tx, rx) = Session::headless(settings).unwrap();
        let first = session.submit_all(requests).unwrap();
        let mut printer = Printer::new(Vec::new(), Vec::new(), false, false, false);
        assert!(matches!(
            session.follow(&rx, first, &mut printer),
            Ending::Finished
        ));
        session
    };
    let mut other = small(1, 1);
    other.model = Model::mlp(vec![8], Skips("none".parse().unwrap()));
    let first = run_in(vec![RunRequest::new(small(2, 1)), RunRequest::new(other)]);
    let dir = |i: usize| first.runs()[i].saved.as_ref().unwrap().dir.clone();
    let saved = runs::load_run(&dir(0)).unwrap();
    let resumed = run_in(vec![RunRequest::resume(saved.clone(), 1).unwrap()]);
    let run = &resumed.runs()[0];
    let epochs: Vec<usize> = run.epochs.iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, [1, 2, 3]);
    let best = run
        .epochs
        .iter()
        .map(|m| m.val_accuracy)
        .fold(0.0, f64::max);
    assert_eq!(
        run.summary.best_val_accuracy,
        Some(best),
        "over the whole run"
    );
    assert_eq!(runs::load_run(&dir(0)).unwrap().epochs.len(), 3);
    // Metrics that end before the weights' epoch: an inconsistent folder, refused.
    let metrics = std::fs::read_to_string(dir(0).join(runs::METRICS)).unwrap();
    let two_lines: String = metrics.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir(0).join(runs::METRICS), two_lines).unwrap();
    let e = RunRequest::resume(runs::load_run(&dir(0)).unwrap(), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("holds the weights after epoch 3, but metrics.csv has 1 epochs"),
        "{e}"
    );
    std::fs::write(dir(0).join(runs::METRICS), metrics).unwrap();
    // Another run's weights copied in: refused, nothing appended.
    std::fs::copy(dir(1).join(runs::WEIGHTS), dir(0).join(runs::WEIGHTS)).unwrap();
    let e = RunRequest::resume(runs::load_run(&dir(0)).unwrap(), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("holds the weights of run ")
            && e.contains("-mlp2-vanilla-s1, not of run ")
            && e.contains("belong to another run"),
        "{e}"
    );
    assert_eq!(runs::load_run(&dir(0)).unwrap().epochs.len(), 3);
}

#[test]
fn stopping_ends_every_queued_run_at_once_and_starts_none() {
    let spawner = Scripted::default();
    let (outlet, _rx) = channel_outlet();
    let settings = Settings::new(Device::Cpu, "data".into(), None);
    let mut session = Session::new(settings, Box::new(spawner.clone()), outlet).unwrap();
    let requests = (1..=5000)
        .map(|seed| RunRequest::new(small(1, seed)))
        .collect();
    session.submit_all(requests).unwrap();
    assert_eq!(
        spawner.jobs.lock().unwrap().len(),
        1,
        "one slot: one run started"
    );
    let events = session.stop_all();
    let ended = events
        .iter()
        .filter(|e| matches!(e.update, Update::Ended { .. }))
        .count();
    assert_eq!(ended, 4999, "every queued run ends, in one pass");
    assert_eq!(
        spawner.jobs.lock().unwrap().len(),
        1,
        "no queued run starts while the others are stopped"
    );
    assert!(session
        .runs()
        .iter()
        .skip(1)
        .all(|r| r.state == RunState::Ended(RunStatus::Stopped)));
    // Each is still found by its id.
    assert_eq!(
        session.run(4321).map(|r| r.info.experiment.seed),
        Some(4321)
    );
}

#[test]
fn shutting_down_names_the_runs_it_stopped() {
    let spawner = Scripted::default();
    let (outlet, _rx) = channel_outlet();
    let settings = Settings::new(Device::Cpu, "data".into(), None);
    let mut session = Session::new(settings, Box::new(spawner.clone()), outlet).unwrap();
    let requests = (1..=3)
        .map(|seed| RunRequest::new(small(1, seed)))
        .collect();
    session.submit_all(requests).unwrap();
    assert_eq!(session.shutdown(), [1, 2, 3]);
    assert!(session.shutdown().is_empty(), "nothing is left to stop");
}

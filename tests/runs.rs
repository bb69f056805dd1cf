//! Presets and saved runs: shipped presets build, a run saved and loaded back gives the same
//! metrics and bit-identical predictions, skip* switches without changing the function, and
//! a training process killed mid-run leaves every finished epoch readable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use dfdx::prelude::*;
use skiplab::data::{self, PreparedData};
use skiplab::experiment::{list_presets, Experiment};
use skiplab::net::Network;
use skiplab::runs::{self, Recorder};
use skiplab::train::{self, EpochMetrics, RunState, RunStatus, Schedule, TrainEvent, Trainer};

fn presets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("presets")
}

#[test]
fn every_shipped_preset_parses_and_builds_a_network() {
    let presets = list_presets(&presets_dir());
    assert!(presets.len() >= 25, "{} presets", presets.len());
    let dev = Cpu::default();
    for p in &presets {
        let e = p.experiment.as_ref().unwrap_or_else(|e| panic!("{e}"));
        let topology = e.topology().unwrap();
        let net = Network::<f32, Cpu>::new(topology.clone(), &dev, e.seed).unwrap();
        assert_eq!(net.param_count(), topology.param_count(), "{}", p.name);
        // Text round trip: preset -> experiment -> preset.
        assert_eq!(
            &Experiment::from_ron(&e.to_ron(), &p.path).unwrap(),
            e,
            "{}",
            p.name
        );
    }
    let names: Vec<&str> = presets.iter().map(|p| p.name.as_str()).collect();
    for expected in [
        "quick",
        "emnist-mlp3-skipstar",
        "cifar-mlp4-vanilla",
        "cifar-cnn-reinforced",
        "fashion-cnn-skip",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    // The reinforced CNN is as wide as the skip CNN's concatenations.
    let width = |name: &str| {
        let e = presets.iter().find(|p| p.name == name).unwrap();
        let t = e.experiment.as_ref().unwrap().topology().unwrap();
        match t {
            skiplab::topology::Topology::Cnn(c) => c
                .layers()
                .iter()
                .map(|l| c.groups(l.number).iter().map(|g| g.channels).sum::<usize>())
                .collect::<Vec<_>>(),
            _ => unreachable!(),
        }
    };
    assert_eq!(width("cifar-cnn-skip"), width("cifar-cnn-reinforced"));
}

#[test]
fn broken_presets_are_listed_with_their_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(presets_dir().join("quick.ron"), tmp.path().join("good.ron")).unwrap();
    let text = std::fs::read_to_string(presets_dir().join("quick.ron")).unwrap();
    std::fs::write(tmp.path().join("cut.ron"), &text[..text.len() / 2]).unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "not a preset").unwrap();
    let listed = list_presets(tmp.path());
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].name, "cut");
    let e = listed[0].experiment.as_ref().unwrap_err().to_string();
    assert!(e.contains("cut.ron:") && e.matches(':').count() >= 3, "{e}");
    assert!(listed[1].experiment.is_ok());
}

fn quick(epochs: usize, schedule: Option<Schedule>) -> (Experiment, Arc<PreparedData>) {
    let mut e = Experiment::load(&presets_dir().join("quick.ron")).unwrap();
    e.epochs = epochs;
    e.schedule = schedule;
    e.model = skiplab::experiment::Model::mlp(
        vec![32, 32],
        "all".parse().map(skiplab::experiment::Skips).unwrap(),
    );
    let data = PreparedData::prepare(&data::builtin(), e.val_fraction, e.seed);
    (e, Arc::new(data))
}

#[test]
fn a_saved_run_loads_back_with_identical_metrics_and_predictions() {
    let (experiment, data) = quick(2, None);
    let topology = experiment.topology().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (id, dir) = runs::create_run_dir(tmp.path(), "quick").unwrap();
    let (tx, rx) = mpsc::channel();
    let mut recorder = Recorder::start(
        tx,
        Arc::new(runs::Disk),
        dir.clone(),
        &experiment,
        &topology,
        runs::Summary::new(
            &topology,
            "cpu",
            skiplab::provenance::Provenance::here("test"),
        ),
    )
    .unwrap();
    let dev = Cpu::default();
    let mut trainer =
        Trainer::new(topology, Arc::clone(&data), experiment.train_config(), &dev).unwrap();
    let (_commands_tx, commands) = mpsc::channel();
    assert_eq!(trainer.run(&mut recorder, &commands), RunStatus::Finished);
    let events: Vec<TrainEvent> = rx.try_iter().collect();
    let metrics: Vec<EpochMetrics> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Epoch(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(metrics.len(), 2);

    let saved = runs::load_run(&dir).unwrap();
    assert_eq!(saved.id, id);
    assert_eq!(saved.experiment, experiment);
    assert_eq!(saved.summary.status, RunState::Ended(RunStatus::Finished));
    assert_eq!(saved.summary.epochs_done, 2);
    let loaded: Vec<EpochMetrics> = saved.epochs.iter().map(|r| r.to_metrics()).collect();
    assert_eq!(loaded, metrics, "metrics survive the CSV exactly");
    // steps.csv: 20 points an epoch, steps and seconds counted over the whole run.
    assert_eq!(saved.steps.len(), 40);
    assert!(saved
        .steps
        .windows(2)
        .all(|w| w[0].step < w[1].step && w[0].seconds <= w[1].seconds));
    assert_eq!(
        saved.steps[19].step, metrics[0].step,
        "the epoch's last point ends it"
    );
    assert_eq!(saved.steps.last().unwrap().step, metrics[1].step);
    assert!(saved
        .steps
        .iter()
        .all(|p| (0.0..=1.0).contains(&p.train_accuracy)));
    // gradflow.csv: every layer at every step point.
    assert_eq!(
        saved.flows.iter().map(|p| p.step).collect::<Vec<_>>(),
        saved.steps.iter().map(|p| p.step).collect::<Vec<_>>(),
        "one flow point with each step point"
    );
    let flow_events: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Flow(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(saved.flows, flow_events, "flow survives the CSV exactly");

    let runs::Weights {
        topology,
        params,
        epoch,
        run,
        sha256,
    } = runs::read_weights(&dir.join(runs::WEIGHTS)).unwrap();
    assert_eq!(epoch, Some(2));
    // Tied to their run: its id inside, their digest in its summary.
    assert_eq!(run.as_deref(), Some(id.as_str()));
    assert_eq!(saved.summary.weights_sha256, Some(sha256));
    assert_eq!(&topology, trainer.network().topology());
    let mut net = Network::<f32, Cpu>::new(topology, &dev, 99).unwrap();
    net.import(&params).unwrap();
    let x = dev.tensor_from_vec(data.test.images[..784 * 50].to_vec(), (50usize, 784usize));
    let before = trainer.network().forward::<NoneTape>(x.clone()).as_vec();
    let after = net.forward::<NoneTape>(x).as_vec();
    assert_eq!(
        before.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        after.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "bit-identical predictions"
    );

    // Weights that do not fit the topology are refused with the parameter named.
    let mut other = Network::<f32, Cpu>::new(
        skiplab::topology::Topology::Mlp(skiplab::topology::MlpSpec::new(784, vec![16], 10)),
        &dev,
        1,
    )
    .unwrap();
    let e = other.import(&params).unwrap_err();
    assert!(e.contains("parameter `fc"), "{e}");
    // A truncated weights file is an error naming it.
    let bytes = std::fs::read(dir.join(runs::WEIGHTS)).unwrap();
    std::fs::write(dir.join(runs::WEIGHTS), &bytes[..bytes.len() / 2]).unwrap();
    let e = runs::read_weights(&dir.join(runs::WEIGHTS))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("weights.safetensors") && e.contains("not a readable safetensors"),
        "{e}"
    );
}

#[test]
fn skip_star_switches_once_and_keeps_the_function_at_the_switch() {
    let (experiment, data) = quick(
        3,
        Some(Schedule::SkipStar {
            max_vanilla_epochs: 1,
            patience: 5,
        }),
    );
    let topology = experiment.topology().unwrap();
    let dev = Cpu::default();
    let mut trainer = Trainer::new(
        topology.clone(),
        Arc::clone(&data),
        experiment.train_config(),
        &dev,
    )
    .unwrap();
    assert!(
        trainer.network().topology().skips().is_empty(),
        "phase 1 has no skips"
    );
    let x = dev.tensor_from_vec(data.test.images[..784 * 20].to_vec(), (20usize, 784usize));
    let watch = Watch::new();
    let (_c, commands) = mpsc::channel();
    // Phase 1 alone (one epoch, then the switch).
    let mut phase1 = experiment.train_config();
    phase1.epochs = 1;
    let mut one = Trainer::new(topology.clone(), Arc::clone(&data), phase1, &dev).unwrap();
    one.run(&mut watch.clone(), &commands);
    assert!(watch.0.lock().unwrap().events.iter().any(|e| matches!(
        e,
        TrainEvent::SkipsEnabled {
            after_epoch: 1,
            edges: 3
        }
    )));
    let switched = one.into_network();
    assert_eq!(switched.topology(), &topology, "switched after epoch 1");
    // The vanilla network with the trained weights computes exactly what the switched one does.
    let mut vanilla_topology = topology.clone();
    vanilla_topology
        .apply_skips(&skiplab::topology::SkipSelection::None)
        .unwrap();
    let mut vanilla = Network::<f32, Cpu>::new(vanilla_topology, &dev, 5).unwrap();
    let trained: Vec<_> = switched
        .export()
        .into_iter()
        .filter(|p| vanilla.params().contains_key(&p.name))
        .collect();
    vanilla.import(&trained).unwrap();
    assert_eq!(
        vanilla.forward::<NoneTape>(x.clone()).as_vec(),
        switched.forward::<NoneTape>(x).as_vec()
    );
    // The full schedule: one switch; checkpoints carry the topology in use.
    let full = Watch::new();
    trainer.run(&mut full.clone(), &commands);
    let w = full.0.lock().unwrap();
    let switches = w
        .events
        .iter()
        .filter(|e| matches!(e, TrainEvent::SkipsEnabled { .. }))
        .count();
    assert_eq!(switches, 1);
    assert_eq!(w.checkpoints, vec![(1, 3), (2, 3), (3, 3)]);
}

/// Records events and which topology each checkpoint had.
#[derive(Default)]
struct Seen {
    events: Vec<TrainEvent>,
    checkpoints: Vec<(usize, usize)>,
}

#[derive(Clone)]
struct Watch(Arc<std::sync::Mutex<Seen>>);

impl Watch {
    fn new() -> Self {
        Watch(Arc::default())
    }
}

impl train::EventSink for Watch {
    fn emit(&mut self, event: TrainEvent) -> bool {
        self.0.lock().unwrap().events.push(event);
        true
    }
    fn wants_checkpoints(&self) -> bool {
        true
    }
    fn checkpoint(
        &mut self,
        epoch: usize,
        topology: &skiplab::topology::Topology,
        _: Vec<skiplab::net::HostParam>,
    ) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .checkpoints
            .push((epoch, topology.skips().len()));
        Ok(())
    }
}

mod common;

fn skiplab(args: &[&str], saves: &Path) -> (i32, String, String) {
    common::skiplab(args, &[("SKIPLAB_SAVES_DIR", saves)])
}

#[test]
fn runs_compare_and_export_work_on_saved_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let quick = presets_dir().join("quick.ron");
    let quick = quick.to_str().unwrap();
    let (code, out, err) = skiplab(
        &["train", "--preset", quick, "--epochs", "2", "--json"],
        tmp.path(),
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["event"], "saving");
    assert_eq!(lines.iter().filter(|l| l["event"] == "epoch").count(), 2);
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "ended");
    assert_eq!(last["status"], "finished");
    let first = last["run"].as_str().unwrap().to_string();
    let (code, _, err) = skiplab(&["train", "--epochs", "1", "--widths", "32"], tmp.path());
    assert_eq!(code, 0, "{err}");

    let (code, out, _) = skiplab(&["runs"], tmp.path());
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(
        out.starts_with("all runs: relu · he init · builtin · "),
        "{out}"
    );
    assert!(out.contains(&first) && out.contains("finished"), "{out}");
    // Sorted by best validation accuracy, best first, as JSON lines; and filtered.
    let (code, out, _) = skiplab(&["runs", "--sort", "best", "--json"], tmp.path());
    assert_eq!(code, 0);
    let listed: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    let best = |v: &serde_json::Value| v["best_val_accuracy"].as_f64().unwrap();
    assert!(best(&listed[0]) >= best(&listed[1]), "{out}");
    assert_eq!(listed[0]["status"], "finished");
    let (code, out, _) = skiplab(&["runs", "--filter", "784-32-10"], tmp.path());
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().filter(|l| l.contains("finished")).count(),
        1,
        "{out}"
    );
    let ids: Vec<String> = runs::list_runs(tmp.path())
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect();
    let (code, out, err) = skiplab(&["compare", &ids[0], &ids[1]], tmp.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("mlp 784-128-256-10, 3/3 skips") && out.contains("mlp 784-32-10"),
        "{out}"
    );
    assert!(out.contains("  epoch 2"), "{out}");
    let (code, out, _) = skiplab(&["export", &first, "--csv"], tmp.path());
    assert_eq!(code, 0);
    assert!(
        out.starts_with("run,group,epoch,step,seconds,metric,value\n"),
        "{out}"
    );
    let metric = |name: &str| {
        out.lines()
            .filter(|l| l.contains(&format!(",{name},")))
            .count()
    };
    assert_eq!(metric("val_accuracy"), 2, "one per epoch: {out}");
    assert!(
        metric("train_loss") >= 2 * 10,
        "about 20 step points an epoch: {out}"
    );
    // Several runs in one file, each row naming its run and configuration.
    let (code, out, _) = skiplab(&["export", &ids[0], &ids[1], "--csv"], tmp.path());
    assert_eq!(code, 0);
    for id in &ids {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{id},"))),
            "{id}: {out}"
        );
    }
    assert!(out.contains(",all 3 skips · mlp 784-128-256-10"), "{out}");
    let svg = tmp.path().join("chart.svg");
    let (code, _, err) = skiplab(
        &[
            "export",
            &ids[0],
            &ids[1],
            "--svg",
            "-o",
            svg.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<svg") && text.contains("accuracy per epoch") && text.contains(&ids[1]),
        "{}",
        &text[..200]
    );
    let (code, _, err) = skiplab(&["compare", "nope"], tmp.path());
    assert_ne!(code, 0);
    assert!(err.contains("no saved run by that id"), "{err}");
    // An unwritable saves folder is a clear error before training starts.
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let (code, _, err) = skiplab(
        &[
            "train",
            "--epochs",
            "1",
            "--saves",
            blocker.join("x").to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(code, 5, "an I/O failure");
    assert!(err.contains("cannot create"), "{err}");
}

#[test]
fn a_killed_training_keeps_every_finished_epoch_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_skiplab"))
        .args([
            "train", "--epochs", "200", "--widths", "64", "--batch", "256",
        ])
        .env("SKIPLAB_SAVES_DIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let metrics = loop {
        assert!(Instant::now() < deadline, "no epochs written in time");
        let found = std::fs::read_dir(tmp.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join(runs::METRICS))
            .find(|p| p.exists());
        if let Some(path) = found {
            if runs::read_metrics(&path).map(|r| r.len()).unwrap_or(0) >= 3 {
                break path;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let dir = metrics.parent().unwrap();
    // A temporary file two minutes old, as a killed write leaves one: kept while the run's
    // process lives (it might still be writing it), gone once it is dead.
    let left = dir.join(".tmpLeft42");
    std::fs::write(&left, b"half a weights file").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&left)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(120))
        .unwrap();
    let alive = runs::load_run(dir).unwrap();
    assert_eq!(alive.summary.status, RunState::Running);
    assert!(left.exists(), "the live writer's files are left alone");
    child.kill().unwrap(); // SIGKILL on Unix: no chance to clean up
    child.wait().unwrap();
    let saved = runs::load_run(dir).unwrap();
    assert!(saved.epochs.len() >= 3);
    for (i, row) in saved.epochs.iter().enumerate() {
        assert_eq!(row.epoch, i + 1);
        assert!(row.val_accuracy > 0.0);
    }
    assert_eq!(
        saved.summary.status,
        RunState::Ended(RunStatus::Failed(runs::INTERRUPTED.into())),
        "a run whose process died reads as interrupted, not running"
    );
    assert!(
        !left.exists(),
        "the dead writer's temporary file is removed"
    );
    assert!(saved.summary.epochs_done >= 3);
    let runs::Weights {
        topology, params, ..
    } = runs::read_weights(&dir.join(runs::WEIGHTS)).unwrap();
    let mut net = Network::<f32, Cpu>::new(topology, &Cpu::default(), 1).unwrap();
    net.import(&params).unwrap();
}

#[test]
fn a_saved_run_resumes_for_more_epochs_in_its_own_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = skiplab(&["train", "--epochs", "2", "--widths", "32"], tmp.path());
    assert_eq!(code, 0, "{err}");
    let id = runs::list_runs(tmp.path())[0].as_ref().unwrap().id.clone();
    let before = runs::read_weights(&tmp.path().join(&id).join(runs::WEIGHTS))
        .unwrap()
        .params;
    let (code, out, err) = skiplab(&["resume", &id[..12], "--epochs", "1"], tmp.path());
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("after epoch 2 for 1 more"), "{out}");
    let saved = runs::load_run(&tmp.path().join(&id)).unwrap();
    let epochs: Vec<usize> = saved.epochs.iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, [1, 2, 3]);
    assert_eq!(saved.summary.epochs_done, 3);
    assert_eq!(saved.summary.status, RunState::Ended(RunStatus::Finished));
    let after = runs::read_weights(&tmp.path().join(&id).join(runs::WEIGHTS))
        .unwrap()
        .params;
    assert_ne!(before, after, "the weights trained on");
    assert_eq!(runs::list_runs(tmp.path()).len(), 1, "no new folder");
    // The resume is part of what the run is: 2 epochs, then 1 more with a fresh optimiser.
    assert_eq!(saved.summary.resumed_after, [2]);
    assert_eq!(saved.experiment.epochs, 3);
    let (code, out, err) = skiplab(&["train", "--epochs", "3", "--widths", "32"], tmp.path());
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = skiplab(&["runs", "--json"], tmp.path());
    assert_eq!(code, 0, "{err}");
    let descriptions: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["description"].to_string())
        .collect();
    assert!(
        descriptions.contains(&"\"2+1 epochs\"".to_string()),
        "{descriptions:?}"
    );
    assert!(
        descriptions.contains(&"\"3 epochs\"".to_string()),
        "{descriptions:?}"
    );
    // The best epoch's weights are kept beside the last ones, and the test measured them.
    let best = runs::read_weights(&tmp.path().join(&id).join(runs::BEST)).unwrap();
    assert_eq!(best.epoch, saved.summary.best_epoch);
    assert_eq!(saved.summary.test_epoch, saved.summary.best_epoch);
}

/// Trains a small deep MLP on the built-in data with `skips`; returns the run's id.
fn train_deep(saves: &Path, skips: &str, seed: &str) -> String {
    let before: Vec<String> = runs::list_runs(saves)
        .into_iter()
        .filter_map(|r| r.ok().map(|r| r.id))
        .collect();
    let (code, out, err) = skiplab(
        &[
            "train",
            "--widths",
            "16x6",
            "--activation",
            "sigmoid",
            "--init",
            "xavier",
            "--skips",
            skips,
            "--epochs",
            "1",
            "--seed",
            seed,
            "--lr",
            "0.1",
        ],
        saves,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    runs::list_runs(saves)
        .into_iter()
        .filter_map(|r| r.ok().map(|r| r.id))
        .find(|id| !before.contains(id))
        .expect("a new run")
}

#[test]
fn comparisons_tell_edge_kinds_apart_and_count_each_run_once() {
    let tmp = tempfile::tempdir().unwrap();
    let saves = tmp.path();
    let concat = train_deep(saves, "chain:2", "1");
    let residual = train_deep(saves, "res:chain:2", "1");
    // Residual and concatenating edges are two configurations, whatever the edges.
    let (code, out, err) = skiplab(&["compare", &concat, &residual], saves);
    assert_eq!(code, 0, "{err}");
    let differs = out.lines().find(|l| l.starts_with("differs in")).unwrap();
    assert!(
        differs.contains("skips 0-2,2-4,4-6") && differs.contains("residual 0-2,2-4,4-6"),
        "{out}"
    );
    let (code, csv, err) = skiplab(&["export", &concat, &residual, "--csv"], saves);
    assert_eq!(code, 0, "{err}");
    let groups: std::collections::BTreeSet<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(!groups.contains("all"), "{groups:?}");
    let (_, listed, _) = skiplab(&["runs"], saves);
    assert!(listed.contains("residual 0-2,2-4"), "{listed}");
    // Two seeds of each, then the first run named twice and the same seed trained again:
    // still two samples a side.
    let concat2 = train_deep(saves, "chain:2", "2");
    let residual2 = train_deep(saves, "res:chain:2", "2");
    let again = train_deep(saves, "chain:2", "1");
    let (code, out, err) = skiplab(
        &[
            "compare", &concat, &concat2, &residual, &residual2, &concat, &again, "--json",
        ],
        saves,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("names the same run"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["runs"].as_array().unwrap().len(),
        5,
        "a run named twice counts once"
    );
    assert_eq!(v["tests"][0]["seeds"], serde_json::json!([2, 2]), "{v}");
    let repeats = v["repeats"].as_array().unwrap();
    assert_eq!(repeats.len(), 1, "{v}");
    assert!(repeats[0].as_str().unwrap().contains(&again), "{v}");
    // Every run says what made it.
    let run = &v["runs"][0];
    let provenance = &run["provenance"];
    assert_eq!(provenance["version"], env!("CARGO_PKG_VERSION"), "{run}");
    assert!(
        provenance["command"]
            .as_str()
            .unwrap()
            .contains("--skips chain:2"),
        "{run}"
    );
    assert!(
        provenance["ended"].is_string() && provenance["threads"].as_u64() >= Some(1),
        "{run}"
    );
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
}

#[test]
fn any_experiment_runs_over_seeds_with_mean_and_deviation() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = skiplab(
        &[
            "train", "--epochs", "1", "--widths", "16", "--seeds", "3", "--json",
        ],
        tmp.path(),
    );
    assert_eq!(code, 0, "{err}");
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "seeds");
    assert_eq!(last["seeds"], 3);
    let sd = last["best_val_sd"].as_f64().unwrap();
    assert!(sd > 0.0 && sd < 0.05, "{last}");
    let seeds: Vec<u64> = runs::list_runs(tmp.path())
        .into_iter()
        .map(|r| r.unwrap().experiment.seed)
        .collect();
    let mut sorted = seeds.clone();
    sorted.sort();
    assert_eq!(sorted, [1, 2, 3]);
}

#[test]
fn reproduce_writes_the_tables_beside_the_papers_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("report.md");
    let (code, out, err) = skiplab(
        &[
            "reproduce",
            "table1",
            "--dataset",
            "builtin",
            "--seeds",
            "2",
            "--epochs",
            "2",
            "--l2",
            "0",
            "--report",
            report.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("[8/8] mlp4 vanilla"), "{out}");
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(
        text.contains(
            "Table 1. Results of two MLPs on EMNIST — on **builtin** instead of emnist-letters"
        ),
        "{text}"
    );
    assert!(
        text.contains("(91) |") && text.contains("(88.6) |"),
        "paper numbers beside ours:\n{text}"
    );
    assert!(text.contains("mlp3 skip vs mlp3 vanilla: val"), "{text}");
    assert!(text.contains("noise"), "{text}");
    assert_eq!(runs::list_runs(tmp.path()).len(), 8, "every run saved");
}

#[test]
fn reproduce_gradient_tabulates_every_wiring_with_its_gradient_norms() {
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("gradient.md");
    let args = [
        "reproduce",
        "gradient",
        "--depths",
        "10",
        "--width",
        "16",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--report",
        report.to_str().unwrap(),
    ];
    let (code, out, err) = skiplab(&args, tmp.path());
    assert_eq!(code, 0, "{out}\n{err}");
    let text = std::fs::read_to_string(&report).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| 10 |")).collect();
    assert_eq!(rows.len(), 9, "3 activations x 3 wirings:\n{text}");
    for activation in ["sigmoid", "tanh", "relu"] {
        for wiring in ["vanilla", "residual", "dense"] {
            assert!(
                rows.iter()
                    .any(|r| r.starts_with(&format!("| 10 | {activation} | {wiring}"))),
                "{activation} {wiring}:\n{text}"
            );
        }
    }
    // Every row has a measured layer-1 gradient norm, in scientific notation.
    assert!(
        rows.iter()
            .all(|r| r.split('|').nth(7).unwrap().contains('e')),
        "{text}"
    );
    assert_eq!(runs::list_runs(tmp.path()).len(), 9, "every run saved");

    // Run again: a sweep of stable ids, so every run is found saved and none trains.
    let (code, out, err) = skiplab(&args, tmp.path());
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.matches("(saved earlier)").count(), 9, "{out}");
    assert_eq!(runs::list_runs(tmp.path()).len(), 9, "no new folder");
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        text,
        "the same report"
    );

    // Or hand the runs to a sweep: --emit-sweep writes them, `sweep run` trains them (here a
    // new depth), and reproduce then reports from the saves.
    let sweep_file = tmp.path().join("gradient-sweep.ron");
    let mut deeper = args.to_vec();
    deeper[3] = "12";
    let mut emit = deeper.clone();
    emit.extend(["--emit-sweep", sweep_file.to_str().unwrap()]);
    let (code, out, err) = skiplab(&emit, tmp.path());
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("(9 runs)"), "{out}");
    assert_eq!(runs::list_runs(tmp.path()).len(), 9, "nothing trained");
    let (code, out, err) = skiplab(
        &[
            "sweep",
            "run",
            sweep_file.to_str().unwrap(),
            "--parallel",
            "2",
        ],
        tmp.path(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("0 done, 9 to train here"), "{out}");
    let (code, out, err) = skiplab(&deeper, tmp.path());
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.matches("(saved earlier)").count(), 9, "{out}");
    assert!(out.contains("| 12 | relu | dense"), "{out}");
}

/// Starts a long `train` whose runs are saved in `saves`; returns it once an epoch is saved.
// The child is returned for the caller to signal and wait on; clippy cannot see that.
#[allow(clippy::zombie_processes)]
fn long_training(saves: &Path, stdout: std::process::Stdio) -> (std::process::Child, PathBuf) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skiplab"))
        .args([
            "train", "--epochs", "200", "--widths", "64", "--batch", "256",
        ])
        .env("SKIPLAB_SAVES_DIR", saves)
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("no epoch written in time");
        }
        let dir = std::fs::read_dir(saves)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join(runs::METRICS).exists());
        if let Some(dir) = dir {
            return (child, dir);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigint_and_sigterm_stop_the_run_record_it_stopped_and_exit_128_plus_the_signal() {
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let tmp = tempfile::tempdir().unwrap();
        let (child, dir) = long_training(tmp.path(), std::process::Stdio::piped());
        let killed = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{signal}: {stdout}");
        assert!(
            stdout.lines().last().unwrap().starts_with("stopped after "),
            "{stdout}"
        );
        let saved = runs::load_run(&dir).unwrap();
        assert_eq!(
            saved.summary.status,
            RunState::Ended(RunStatus::Stopped),
            "{signal}"
        );
        assert!(saved.summary.epochs_done >= 1);
        assert_eq!(saved.summary.epochs_done, saved.epochs.len());
        saved.weights_to_resume().unwrap();
    }
}

#[test]
fn a_closed_stdout_stops_the_run_quietly_and_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, dir) = long_training(tmp.path(), std::process::Stdio::piped());
    // The reader goes away (as `skiplab train | head -4` does).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let saved = runs::load_run(&dir).unwrap();
    assert_eq!(saved.summary.status, RunState::Ended(RunStatus::Stopped));
}

#[test]
fn listing_into_a_closed_pipe_or_a_full_disk_does_not_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = skiplab(&["train", "--epochs", "1", "--widths", "8"], tmp.path());
    assert_eq!(code, 0, "{err}");
    // A pipe whose reader is gone before skiplab starts: every write meets a closed pipe
    // (closing it after the spawn raced with a fast first write).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_skiplab"))
        .arg("runs")
        .env("SKIPLAB_SAVES_DIR", tmp.path())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "quiet: {stderr}");
    if Path::new("/dev/full").exists() {
        let out = Command::new(env!("CARGO_BIN_EXE_skiplab"))
            .arg("runs")
            .env("SKIPLAB_SAVES_DIR", tmp.path())
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("cannot write to stdout") && stderr.contains("No space left"),
            "{stderr}"
        );
    }
}

#[test]
fn every_seed_of_a_run_is_exported_by_its_exact_id_and_foreign_weights_do_not_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = skiplab(
        &["train", "--epochs", "1", "--widths", "16", "--seeds", "3"],
        tmp.path(),
    );
    assert_eq!(code, 0, "{err}");
    let ids: Vec<String> = runs::list_runs(tmp.path())
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect();
    assert_eq!(ids.len(), 3);
    for (id, seed) in ids.iter().zip(1..) {
        assert!(id.ends_with(&format!("-mlp2-vanilla-s{seed}")), "{id}");
        let (code, out, err) = skiplab(&["export", id, "--csv"], tmp.path());
        assert_eq!(code, 0, "{id}: {err}");
        assert!(
            out.lines().skip(1).all(|l| l.starts_with(id.as_str())),
            "{out}"
        );
    }
    // A folder whose name prefixes another's is still found by its own id.
    let prefix = tmp.path().join(&ids[0]);
    let longer = tmp.path().join(format!("{}-2", ids[0]));
    copy_dir(&prefix, &longer);
    let (code, _, err) = skiplab(&["compare", &ids[0]], tmp.path());
    assert_eq!(code, 0, "{err}");
    // Another network's weights copied into seed 1's folder: resume refuses them.
    let (code, _, err) = skiplab(
        &["train", "--epochs", "1", "--widths", "8", "--seeds", "2"],
        tmp.path(),
    );
    assert_eq!(code, 0, "{err}");
    // Two configurations over seeds: compare tests them against each other.
    let copy = format!("{}-2", ids[0]);
    let all: Vec<String> = runs::list_runs(tmp.path())
        .into_iter()
        .map(|r| r.unwrap().id)
        .filter(|id| *id != copy)
        .collect();
    let mut args = vec!["compare"];
    args.extend(all.iter().map(String::as_str));
    let (code, out, err) = skiplab(&args, tmp.path());
    assert_eq!(code, 0, "{err}");
    let test = out.lines().last().unwrap();
    assert!(
        test.contains(" vs ") && test.contains("(Welch's t-test, 2 vs 3 seeds)"),
        "{out}"
    );
    args.push("--json");
    let (code, out, _) = skiplab(&args, tmp.path());
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 5);
    assert_eq!(v["tests"][0]["seeds"], serde_json::json!([2, 3]));
    assert!(v["tests"][0]["p"].as_f64().unwrap() <= 1.0);
    let other = runs::list_runs(tmp.path())
        .into_iter()
        .map(|r| r.unwrap())
        .find(|r| r.summary.params != runs::load_run(&prefix).unwrap().summary.params)
        .unwrap();
    std::fs::copy(other.dir.join(runs::WEIGHTS), prefix.join(runs::WEIGHTS)).unwrap();
    let metrics = std::fs::read(prefix.join(runs::METRICS)).unwrap();
    let (code, _, err) = skiplab(&["resume", &ids[0], "--epochs", "1"], tmp.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("belong to another run"), "{err}");
    assert_eq!(std::fs::read(prefix.join(runs::METRICS)).unwrap(), metrics);
    // Seed 3's weights in seed 2's folder: the same network and epoch, still refused, naming
    // both runs.
    let (seed2, seed3) = (tmp.path().join(&ids[1]), tmp.path().join(&ids[2]));
    std::fs::copy(seed3.join(runs::WEIGHTS), seed2.join(runs::WEIGHTS)).unwrap();
    let (code, _, err) = skiplab(&["resume", &ids[1], "--epochs", "1"], tmp.path());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "holds the weights of run {}, not of run {}",
            ids[2], ids[1]
        )),
        "{err}"
    );
    // And a file changed in place (its id kept) does not match the digest the summary holds.
    let mut bytes = std::fs::read(seed3.join(runs::WEIGHTS)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(seed3.join(runs::WEIGHTS), bytes).unwrap();
    let (code, _, err) = skiplab(&["resume", &ids[2], "--epochs", "1"], tmp.path());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is not the file run") && err.contains("recorded"),
        "{err}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn stale_temporary_files_go_when_a_run_folder_is_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = skiplab(&["train", "--epochs", "1", "--widths", "8"], tmp.path());
    assert_eq!(code, 0, "{err}");
    let dir = runs::list_runs(tmp.path())[0].as_ref().unwrap().dir.clone();
    let old = dir.join(".tmpAbC123");
    let fresh = dir.join(".tmpXyZ789");
    std::fs::write(&old, b"half a weights file").unwrap();
    std::fs::write(&fresh, b"being written right now").unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let (code, out, _) = skiplab(&["runs"], tmp.path());
    assert_eq!(code, 0, "{out}");
    assert!(!old.exists(), "a temp file a killed write left is removed");
    assert!(fresh.exists(), "one that may still be written is kept");
}

/// The resident memory of process `pid`, in MiB (Linux).
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

#[test]
fn memory_stays_flat_over_many_seeds() {
    use std::io::BufRead;
    if rss_mib(std::process::id()).is_none() {
        eprintln!("no /proc here; skipping");
        return;
    }
    let seeds = 10;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_skiplab"))
        .args([
            "train",
            "--epochs",
            "1",
            "--widths",
            "4",
            "--batch",
            "512",
            "--no-save",
        ])
        .args(["--json", "--seeds", &seeds.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Resident memory as each seed ends.
    let mut after = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("\"event\":\"ended\"") {
            after.push(rss_mib(pid).unwrap_or(f64::NAN));
        }
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(after.len(), seeds, "{after:?}");
    // Each seed's split of the built-in data is about 41 MB: kept, ten seeds add 300 or more.
    // (The process may be gone when the last line is read: the last reading there is.)
    let last = after.iter().rev().find(|v| v.is_finite()).unwrap();
    let growth = last - after[1];
    eprintln!("resident MiB after each seed: {after:.0?}");
    assert!(
        growth < 80.0,
        "memory grew {growth:.0} MiB over {seeds} seeds: {after:.0?}"
    );
}

#[test]
fn a_run_folder_without_its_experiment_is_listed_as_unreadable() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = skiplab(&["train", "--epochs", "1", "--widths", "8"], tmp.path());
    assert_eq!(code, 0, "{err}");
    let dir = runs::list_runs(tmp.path())[0].as_ref().unwrap().dir.clone();
    std::fs::remove_file(dir.join(runs::EXPERIMENT)).unwrap();
    let (code, out, _) = skiplab(&["runs"], tmp.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("unreadable:") && out.contains("experiment.ron: is not there"),
        "{out}"
    );
}

#[test]
fn a_resume_stopped_before_its_first_epoch_leaves_the_run_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = skiplab(&["train", "--epochs", "2", "--widths", "8"], tmp.path());
    assert_eq!(code, 0, "{err}");
    let saved = runs::list_runs(tmp.path()).remove(0).unwrap();
    let before = (saved.experiment.clone(), saved.summary.clone());
    assert_eq!(before.1.status, RunState::Ended(RunStatus::Finished));
    let (tx, _rx) = mpsc::channel();
    let mut resumed = saved.summary.clone();
    resumed.status = RunState::Running;
    resumed.resumed_after.push(2);
    let mut recorder = Recorder::resume(tx, Arc::new(runs::Disk), &saved, resumed, 5).unwrap();
    // While it runs, the folder says what it is becoming.
    let during = runs::load_run(&saved.dir).unwrap();
    assert_eq!(during.experiment.epochs, 7);
    assert_eq!(during.summary.resumed_after, [2]);
    // Stopped before an epoch (`resume | head -1`): as it was, Finished.
    use skiplab::train::EventSink;
    recorder.emit(TrainEvent::Ended {
        status: RunStatus::Stopped,
        epochs_done: 2,
        test_accuracy: None,
        test_epoch: None,
    });
    drop(recorder);
    let after = runs::load_run(&saved.dir).unwrap();
    assert_eq!(after.experiment, before.0);
    assert_eq!(after.summary.status, RunState::Ended(RunStatus::Finished));
    assert!(after.summary.resumed_after.is_empty());
    assert_eq!(after.summary.test_accuracy, before.1.test_accuracy);
}

#[test]
fn a_run_another_process_trains_is_not_resumed_under_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, dir) = long_training(tmp.path(), std::process::Stdio::null());
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    let (code, _, err) = skiplab(&["resume", &id, "--epochs", "1"], tmp.path());
    child.kill().ok();
    child.wait().ok();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is being trained by another process right now"),
        "{err}"
    );
}

/// `analyze usage` on saved runs: one run's JSON equals the analysis of its weights read
/// back; two seeds of one topology give mean ± sd (a run named twice counts once); runs of
/// different topologies are refused, naming both.
#[test]
fn analyze_usage_reads_saved_runs_and_averages_a_seed_group() {
    use skiplab::analysis::usage::edge_usage;
    let tmp = tempfile::tempdir().unwrap();
    let saves = tmp.path();
    let a = train_deep(saves, "0-3,2-5", "1");
    let b = train_deep(saves, "0-3,2-5", "2");
    let (code, out, err) = skiplab(&["analyze", "usage", &a, "--json"], saves);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let weights = runs::read_weights(&saves.join(&a).join(runs::WEIGHTS)).unwrap();
    let direct = edge_usage(&weights.topology, &weights.params).unwrap();
    let blocks = report["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), direct.blocks.len());
    for (json, block) in blocks.iter().zip(&direct.blocks) {
        assert_eq!(json["block"], block.block.as_str());
        assert_eq!(json["source"], block.source);
        let mean = json["usage"]["mean"].as_f64().unwrap();
        assert!((mean - block.usage.unwrap()).abs() <= 1e-12 * mean.abs());
        assert!(json["usage"]["sd"].is_null());
    }
    // The skip edges are there: 0-3 and 2-5 read as skips.
    let skips: Vec<(u64, u64)> = blocks
        .iter()
        .filter(|b| b["reading"] == "skip")
        .map(|b| (b["source"].as_u64().unwrap(), b["target"].as_u64().unwrap()))
        .collect();
    assert_eq!(skips, [(0, 3), (2, 5)]);

    let (code, out, err) = skiplab(&["analyze", "usage", &a, &b, &a], saves);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("names the same run"), "{err}");
    assert!(out.contains("2 runs"), "{out}");
    assert!(out.contains(" ± "), "{out}");
    assert!(out.contains("from \\ to"), "{out}");
    let (code, out, _) = skiplab(&["analyze", "usage", &a, &b, "--csv"], saves);
    assert_eq!(code, 0);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("source,target,source_name,target_name,reading,block,features,usage,sd,runs")
    );
    let row = lines.find(|l| l.contains("fc3.w0")).expect("the 0-3 block");
    let cells: Vec<&str> = row.split(',').collect();
    assert_eq!(&cells[..5], ["0", "3", "input", "fc3", "skip"]);
    assert!(cells[8].parse::<f64>().unwrap() >= 0.0, "{row}");
    assert_eq!(cells[9], "2");

    let other = train_deep(saves, "0-2", "1");
    let (code, _, err) = skiplab(&["analyze", "usage", &a, &other], saves);
    assert_ne!(code, 0);
    assert!(err.contains(&a) && err.contains(&other), "{err}");
    assert!(err.contains("different topologies"), "{err}");
}

/// `analyze lesion` studies saved runs on their own validation split: its baseline is the
/// run's last validation accuracy, its study the library's on the weights read back, and a
/// seed group gives mean ± sd.
#[test]
fn analyze_lesion_studies_saved_runs_on_their_own_split() {
    use skiplab::analysis::lesion::{lesion, LesionOptions};
    let tmp = tempfile::tempdir().unwrap();
    let saves = tmp.path();
    let a = train_deep(saves, "res:1-3,res:3-5", "1");
    let b = train_deep(saves, "res:1-3,res:3-5", "2");
    let args = [
        "analyze", "lesion", &a, "--json", "--draws", "3", "--seed", "4",
    ];
    let (code, out, err) = skiplab(&args, saves);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let run = runs::load_run(&saves.join(&a)).unwrap();
    let val = run.epochs.last().unwrap().val_accuracy;
    let baseline = report["baseline_accuracy"]["mean"].as_f64().unwrap();
    assert!((baseline - val).abs() < 1e-9, "{baseline} against {val}");
    // The same study in the library, on the weights read back and the run's split.
    let weights = runs::read_weights(&saves.join(&a).join(runs::WEIGHTS)).unwrap();
    let split = PreparedData::prepare(&data::builtin(), 0.1, 1);
    let options = LesionOptions {
        max_k: None,
        draws: 3,
        seed: 4,
    };
    let dev = Cpu::seed_from_u64(0);
    let direct = lesion(
        &dev,
        &weights.topology,
        &weights.params,
        &split.val,
        &options,
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(
        report["studies"][0],
        serde_json::to_value(&direct).unwrap(),
        "the CLI's study is the library's"
    );
    // Sigmoid layers without a residual cannot be passed through; the blocks 3 and 5 can
    // lose their branches.
    assert_eq!(report["pool"], serde_json::json!(["fc3", "fc5"]));
    let rows = report["rows"].as_array().unwrap();
    let row = |target: &str| rows.iter().find(|r| r["target"] == target).unwrap();
    assert_eq!(row("fc3")["how"], "branch");
    assert!(row("fc2")["why_not"]
        .as_str()
        .unwrap()
        .contains("sigmoid does not pass its input through"));
    assert_eq!(row("1-3")["how"], "residual");

    let (code, out, err) = skiplab(&["analyze", "lesion", &a, &b], saves);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 runs") && out.contains(" ± "), "{out}");
    assert!(
        out.contains("k blocks deleted at random from 2 (fc3 fc5)"),
        "{out}"
    );
    let (code, out, _) = skiplab(
        &[
            "analyze",
            "lesion",
            &a,
            "--csv",
            "--split",
            "test",
            "--samples",
            "100",
        ],
        saves,
    );
    assert_eq!(code, 0);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("kind,target,how,accuracy,accuracy_sd,loss,loss_sd,drop,drop_sd,runs,why_not")
    );
    let baseline: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(baseline[0], "baseline");
    // 100 samples: accuracy in hundredths.
    let accuracy: f64 = baseline[3].parse().unwrap();
    assert!(((accuracy * 100.0).round() - accuracy * 100.0).abs() < 1e-9);

    let other = train_deep(saves, "0-2", "1");
    let (code, _, err) = skiplab(&["analyze", "lesion", &a, &other], saves);
    assert_ne!(code, 0);
    assert!(err.contains("different topologies"), "{err}");
    let (code, _, err) = skiplab(&["analyze", "lesion", "no-such-run"], saves);
    assert_ne!(code, 0);
    assert!(err.contains("no-such-run"), "{err}");
}

/// `reproduce lesion` trains the depth study's networks (or finds them saved: a second call
/// trains nothing), lesions each on its validation split and sets plain beside residual.
#[test]
fn reproduce_lesion_studies_the_depth_studys_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let saves = tmp.path().join("saves");
    let report = tmp.path().join("lesion.md");
    let args = [
        "reproduce",
        "lesion",
        "--families",
        "mlp",
        "--depths",
        "8",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--report",
        report.to_str().unwrap(),
    ];
    let (code, out, err) = skiplab(&args, &saves);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("2 configurations x 1 seeds = 2 runs"), "{out}");
    let text = std::fs::read_to_string(&report).unwrap();
    // 8 layers: hidden 1..7; the plain net passes 2..7 through, the residual net's blocks
    // are 4 and 6 (block 0-2's projection is normalised with its branch).
    assert!(text.contains("| mlp | 8 | plain | 6 layers |"), "{text}");
    assert!(text.contains("| mlp | 8 | residual | 2 blocks |"), "{text}");
    assert!(text.contains("acc, 2 deleted"), "{text}");
    assert!(saves.join("depth-builtin-e1-mlp-8-residual-s1").is_dir());
    let (code, out, err) = skiplab(&args, &saves);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("(saved earlier)").count(), 2, "{out}");
    let (code, _, err) = skiplab(&["reproduce", "lesion", "--no-save"], &saves);
    assert_ne!(code, 0);
    assert!(err.contains("saved weights"), "{err}");
}

/// `analyze cka` compares hidden layers on the test set: one run with itself (1 on the
/// diagonal, the library's values), two seeds with the identification count.
#[test]
fn analyze_cka_compares_the_layers_of_saved_runs() {
    use skiplab::analysis::cka::network_cka;
    let tmp = tempfile::tempdir().unwrap();
    let saves = tmp.path();
    let a = train_deep(saves, "0-3,2-5", "1");
    let b = train_deep(saves, "0-3,2-5", "2");
    let (code, out, err) = skiplab(
        &[
            "analyze",
            "cka",
            &a,
            "--json",
            "--samples",
            "600",
            "--batch",
            "200",
        ],
        saves,
    );
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["samples"], 600);
    let names: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names, ["fc1", "fc2", "fc3", "fc4", "fc5", "fc6"]);
    let weights = runs::read_weights(&saves.join(&a).join(runs::WEIGHTS)).unwrap();
    let mut test = PreparedData::prepare(&data::builtin(), 0.1, 1).test;
    test.images.truncate(600 * test.dim());
    test.labels.truncate(600);
    let dev = Cpu::seed_from_u64(0);
    let direct = network_cka(
        &dev,
        (&weights.topology, &weights.params),
        None,
        &test,
        200,
        &mut |_| true,
    )
    .unwrap();
    for (i, row) in direct.cka.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let json = report["cka"][i][j].as_f64().unwrap();
            assert!((json - v).abs() < 1e-12, "{i} {j}: {json} against {v}");
            assert!((0.0..=1.0 + 1e-9).contains(v), "{v}");
        }
        assert!(
            (row[i] - 1.0).abs() < 1e-9,
            "a layer with itself: {}",
            row[i]
        );
    }
    let svg = saves.join("cka.svg");
    let (code, out, err) = skiplab(
        &[
            "analyze",
            "cka",
            &a,
            &b,
            "--samples",
            "500",
            "--svg",
            svg.to_str().unwrap(),
        ],
        saves,
    );
    assert_eq!(code, 0, "{err}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.starts_with("<svg") && picture.contains("linear CKA"),
        "{picture}"
    );
    assert!(
        out.contains("linear CKA (minibatch, 500 test examples in batches of 250)"),
        "{out}"
    );
    assert!(out.contains("of 6 layers are most similar"), "{out}");
    let (code, _, err) = skiplab(&["analyze", "cka", &a, "--batch", "3"], saves);
    assert_ne!(code, 0);
    assert!(err.contains("at least 4"), "{err}");
}

/// `analyze landscape` measures the loss around saved weights: the grid's centre is the loss
/// at the weights, a 2-D map has points² rows, and several runs share the directions' seed.
#[test]
fn analyze_landscape_maps_the_loss_around_saved_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let saves = tmp.path();
    let a = train_deep(saves, "res:1-3,res:3-5", "1");
    let b = train_deep(saves, "none", "1");
    let args = [
        "analyze",
        "landscape",
        &a,
        "--points",
        "5",
        "--samples",
        "300",
        "--json",
    ];
    let (code, out, err) = skiplab(&args, saves);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let l = &report[0]["landscape"];
    assert_eq!(l["samples"], 300);
    assert_eq!(l["axis"], serde_json::json!([-1.0, -0.5, 0.0, 0.5, 1.0]));
    assert_eq!(l["loss"][2], l["centre_loss"]);
    let svg = saves.join("map.svg");
    let (code, out, err) = skiplab(
        &[
            "analyze",
            "landscape",
            &a,
            "--dims",
            "2",
            "--points",
            "3",
            "--samples",
            "100",
            "--csv",
            "--svg",
            svg.to_str().unwrap(),
        ],
        saves,
    );
    assert_eq!(code, 0, "{err}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.starts_with("<svg") && picture.contains("log10 loss"),
        "{picture}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "run,alpha,beta,loss,accuracy");
    assert_eq!(lines.len(), 1 + 9);
    assert!(lines[5].starts_with(&format!("{a},0,0,")), "{}", lines[5]);
    let (code, out, err) = skiplab(
        &[
            "analyze",
            "landscape",
            &a,
            &b,
            "--points",
            "3",
            "--samples",
            "100",
        ],
        saves,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("sharpness") && out.contains(&a) && out.contains(&b),
        "{out}"
    );
    let (code, _, err) = skiplab(&["analyze", "landscape", &a, "--range", "-1"], saves);
    assert_ne!(code, 0);
    assert!(err.contains("--range"), "{err}");
}

/// `reproduce landscape` trains (or finds) the depth study's networks and measures each
/// along the same direction's seed, plain beside residual with Welch's test.
#[test]
fn reproduce_landscape_measures_the_depth_studys_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let saves = tmp.path().join("saves");
    let report = tmp.path().join("landscape.md");
    let args = [
        "reproduce",
        "landscape",
        "--families",
        "mlp",
        "--depths",
        "4",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--report",
        report.to_str().unwrap(),
    ];
    let (code, out, err) = skiplab(&args, &saves);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("2 configurations x 2 seeds = 4 runs"), "{out}");
    let measured = out
        .lines()
        .filter(|l| l.starts_with('[') && l.contains(": sharpness 0."))
        .count();
    assert_eq!(measured, 4, "{out}");
    let text = std::fs::read_to_string(&report).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with("| mlp | 4 |"))
        .unwrap_or_else(|| panic!("{text}"));
    // Two seeds a side: every figure has a spread and the pair a p-value.
    assert_eq!(row.matches(" ± ").count(), 6, "{row}");
    assert!(text.contains("Li et al."), "{text}");
}

/// The lab's analysis worker on saved runs: CKA of two runs with each one's seed-to-seed
/// ceiling (the diagonal of its CKA with its twin), every marked run's landscape curve along
/// the same seed's direction, a 2-D map, progress over all the parts, and a cancelled request
/// stopping.
#[test]
fn the_labs_analysis_worker_computes_ceilings_curves_and_maps_of_saved_runs() {
    use skiplab::analysis::cka::network_cka;
    use skiplab::analysis::landscape::{landscape, LandscapeOptions};
    use skiplab::tui::views::analysis::{
        AnalysisKind, AnalysisRequest, AnalysisUpdate, StudiedRun,
    };
    use std::sync::atomic::AtomicU64;
    let tmp = tempfile::tempdir().unwrap();
    let saves = tmp.path();
    let a = train_deep(saves, "0-3,2-5", "1");
    let twin = train_deep(saves, "0-3,2-5", "2");
    let c = train_deep(saves, "none", "1");
    let studied = |id: &str, name: &str, twin: Option<StudiedRun>| StudiedRun {
        id: id.into(),
        name: name.into(),
        twin: twin.map(Box::new),
    };
    let ask = |ticket: u64, kind: AnalysisKind, runs: Vec<StudiedRun>| {
        let request = AnalysisRequest {
            ticket,
            kind,
            runs,
            folders: vec![saves.to_path_buf()],
        };
        let current = AtomicU64::new(ticket);
        let heard = std::cell::RefCell::new(Vec::new());
        let update = skiplab::tui::studies::answer(
            &request,
            Path::new("data"),
            skiplab::device::Device::Cpu,
            &current,
            &|update| heard.borrow_mut().push(update),
        );
        let progress: Vec<(usize, usize)> = heard
            .take()
            .into_iter()
            .map(|e| match e {
                AnalysisUpdate::Progress { done, total, .. } => (done, total),
                other => panic!("{other:?}"),
            })
            .collect();
        (update, progress)
    };
    let weights = |id: &str| runs::read_weights(&saves.join(id).join(runs::WEIGHTS)).unwrap();
    let (wa, wtwin, wc) = (weights(&a), weights(&twin), weights(&c));
    let split = PreparedData::prepare(&data::builtin(), 0.1, 1);
    let first = |mut s: data::Samples, n: usize| {
        s.images.truncate(n * s.dim());
        s.labels.truncate(n);
        s
    };
    let dev = Cpu::seed_from_u64(0);

    // CKA: run a against run c; a's twin is another seed of a, c has none.
    let (update, progress) = ask(
        1,
        AnalysisKind::Similarity,
        vec![
            studied(&a, "run-1", Some(studied(&twin, "run-2", None))),
            studied(&c, "run-3", None),
        ],
    );
    let AnalysisUpdate::Similarity {
        ticket: 1,
        result: Ok(similarity),
    } = update
    else {
        panic!("{update:?}")
    };
    let test = first(split.test.clone(), 1000);
    let cka = |x: &runs::Weights, y: &runs::Weights| {
        network_cka(
            &dev,
            (&x.topology, &x.params),
            Some((&y.topology, &y.params)),
            &test,
            250,
            &mut |_| true,
        )
        .unwrap()
    };
    assert_eq!(similarity.map, cka(&wa, &wc));
    let own = cka(&wa, &wtwin);
    let (name, diagonal) = similarity.ceilings[0].clone().expect("a's ceiling");
    assert_eq!(name, "run-2");
    assert_eq!(diagonal, (0..6).map(|i| own.cka[i][i]).collect::<Vec<_>>());
    assert_eq!(similarity.ceilings[1], None);
    // Two parts of 4 batches each, in order.
    assert_eq!(progress.len(), 8, "{progress:?}");
    assert!(progress.iter().all(|&(_, total)| total == 8));
    assert_eq!(progress.last(), Some(&(8, 8)));

    // Curves of two runs along directions of one seed, each as the analysis computes it.
    let (update, progress) = ask(
        2,
        AnalysisKind::Landscape,
        vec![studied(&a, "run-1", None), studied(&c, "run-3", None)],
    );
    let AnalysisUpdate::Landscape {
        result: Ok(curves), ..
    } = update
    else {
        panic!("{update:?}")
    };
    let train = first(split.train.clone(), 1000);
    let options = LandscapeOptions {
        points: 41,
        ..Default::default()
    };
    for (curve, w) in curves.iter().zip([&wa, &wc]) {
        let direct = landscape(&dev, &w.topology, &w.params, &train, &options, &mut |_| {
            true
        });
        assert_eq!(curve, &direct.unwrap());
    }
    assert_eq!(progress.len(), 82);
    assert_eq!(progress.last(), Some(&(82, 82)));

    // The map: 21 × 21 points around run c's weights.
    let (update, _) = ask(
        3,
        AnalysisKind::LandscapeMap,
        vec![studied(&c, "run-3", None)],
    );
    let AnalysisUpdate::LandscapeMap {
        result: Ok(map), ..
    } = update
    else {
        panic!("{update:?}")
    };
    assert_eq!(
        (map.dims, map.axis.len(), map.loss.len(), map.samples),
        (2, 21, 441, 500)
    );

    // A request whose ticket is no longer current stops at its first report.
    let request = AnalysisRequest {
        ticket: 4,
        kind: AnalysisKind::Landscape,
        runs: vec![studied(&a, "run-1", None)],
        folders: vec![saves.to_path_buf()],
    };
    let heard = std::cell::Cell::new(0);
    let update = skiplab::tui::studies::answer(
        &request,
        Path::new("data"),
        skiplab::device::Device::Cpu,
        &AtomicU64::new(0),
        &|_| heard.set(heard.get() + 1),
    );
    assert!(
        matches!(&update, AnalysisUpdate::Landscape { result: Err(e), .. } if e.contains("cancelled")),
        "{update:?}"
    );
    assert_eq!(heard.get(), 0);
    // A run that is not there is named.
    let (update, _) = ask(
        5,
        AnalysisKind::Usage,
        vec![studied("no-such-run", "run-9", None)],
    );
    assert!(
        matches!(&update, AnalysisUpdate::Usage { result: Err(e), .. } if e.contains("no-such-run")),
        "{update:?}"
    );
}

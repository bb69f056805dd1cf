//! The trainer end to end on the built-in data: determinism, accuracy, divergence, control.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use dfdx::prelude::*;
use skiplab::data::{self, PreparedData};
use skiplab::net::optim::OptimizerConfig;
use skiplab::net::Network;
use skiplab::topology::{MlpSpec, SkipEdge, SkipSelection, Topology};
use skiplab::train::{self, RunStatus, TrainConfig, TrainEvent, TrainJob, Trainer};

fn builtin(seed: u64) -> Arc<PreparedData> {
    Arc::new(PreparedData::prepare(&data::builtin(), 0.1, seed))
}

fn paper_mlp_all_skips() -> Topology {
    let mut t = Topology::Mlp(MlpSpec::new(784, vec![128, 256], 10));
    t.apply_skips(&SkipSelection::All).unwrap();
    t
}

fn config(optimizer: OptimizerConfig, epochs: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        optimizer,
        batch_size: 64,
        epochs,
        seed,
        schedule: None,
    }
}

fn losses(seed: u64, steps: usize) -> Vec<f64> {
    let data = builtin(seed);
    let dev = Cpu::seed_from_u64(seed);
    let cfg = config(OptimizerConfig::sgd(0.01, 0.9, 1e-4), 1, seed);
    let mut trainer = Trainer::new(paper_mlp_all_skips(), data, cfg, &dev).unwrap();
    (0..steps)
        .map(|s| {
            let batch: Vec<usize> = (s * 64..(s + 1) * 64).collect();
            trainer.train_step(&batch).unwrap().0
        })
        .collect()
}

#[test]
fn same_seed_gives_identical_losses_and_another_seed_does_not() {
    let a = losses(5, 25);
    let b = losses(5, 25);
    let c = losses(6, 25);
    assert_eq!(a, b, "same seed must replay bit for bit");
    assert_ne!(a, c);
    assert!(a.last().unwrap() < a.first().unwrap(), "loss falls: {a:?}");
}

/// Collects every event of a run.
fn run_to_end(topology: Topology, cfg: TrainConfig) -> Vec<TrainEvent> {
    let (tx, rx) = mpsc::channel();
    let handle = train::spawn(TrainJob::new(topology, builtin(cfg.seed), cfg), tx);
    let events: Vec<TrainEvent> = rx.iter().collect();
    handle.join();
    events
}

#[test]
fn paper_mlp_with_all_skips_reaches_82_percent_on_builtin_data() {
    let events = run_to_end(
        paper_mlp_all_skips(),
        config(OptimizerConfig::adam(1e-3, 0.0), 6, 1),
    );
    let (best_epoch, best) = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Epoch(m) => Some((m.epoch, m.val_accuracy)),
            _ => None,
        })
        .fold((0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
    assert!(best >= 0.82, "best validation accuracy {best}");
    let Some(TrainEvent::Ended {
        status: RunStatus::Finished,
        epochs_done: 6,
        test_accuracy: Some(test),
        test_epoch: Some(test_epoch),
    }) = events.last()
    else {
        panic!("run should finish: {:?}", events.last());
    };
    assert!(*test > 0.78, "test accuracy {test}");
    assert_eq!(
        *test_epoch, best_epoch,
        "the test measures the best-val epoch"
    );
    // Every epoch reports the skip weights, and they are not negligible.
    let TrainEvent::Epoch(m) = &events[events.len() - 2] else {
        panic!("last epoch before the end")
    };
    assert_eq!(m.skip_weights.len(), 3);
    assert!(
        m.skip_weights.iter().all(|(_, w)| *w > 1e-3),
        "{:?}",
        m.skip_weights
    );
}

#[test]
fn nan_loss_ends_the_run_as_diverged_without_panicking() {
    let events = run_to_end(
        paper_mlp_all_skips(),
        config(OptimizerConfig::sgd(1e6, 0.9, 0.0), 2, 1),
    );
    match events.last() {
        Some(TrainEvent::Ended {
            status:
                RunStatus::Diverged {
                    epoch: 1,
                    step,
                    loss,
                },
            test_accuracy: None,
            ..
        }) => assert!(*step >= 1 && !loss.is_finite(), "step {step} loss {loss}"),
        other => panic!("expected divergence, got {other:?}"),
    }
}

#[test]
fn pause_resume_and_stop_are_obeyed() {
    let (tx, rx) = mpsc::channel();
    let cfg = config(OptimizerConfig::sgd(0.01, 0.9, 0.0), 50, 1);
    let handle = train::spawn(TrainJob::new(paper_mlp_all_skips(), builtin(1), cfg), tx);
    handle.pause();
    let next = |rx: &mpsc::Receiver<TrainEvent>| loop {
        match rx.recv_timeout(Duration::from_secs(60)).expect("an event") {
            TrainEvent::Preparing | TrainEvent::Progress { .. } | TrainEvent::Epoch(_) => continue,
            e => return e,
        }
    };
    assert!(matches!(next(&rx), TrainEvent::Started { .. }));
    assert_eq!(next(&rx), TrainEvent::Paused);
    // Paused: nothing arrives.
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    handle.resume();
    assert_eq!(next(&rx), TrainEvent::Resumed);
    handle.stop();
    match next(&rx) {
        TrainEvent::Ended {
            status: RunStatus::Stopped,
            ..
        } => {}
        e => panic!("expected a stop, got {e:?}"),
    }
    assert_eq!(handle.join(), RunStatus::Stopped);
}

#[test]
fn enabling_an_edge_keeps_the_function_and_every_other_weight() {
    let dev = Cpu::seed_from_u64(0);
    let data = builtin(1);
    let topology = Topology::Mlp(MlpSpec::new(784, vec![128, 256], 10));
    let mut net = Network::<f32, Cpu>::new(topology.clone(), &dev, 4).unwrap();
    let x = dev.tensor_from_vec(data.val.images[..8 * 784].to_vec(), (8, 784));
    let before = net.forward::<NoneTape>(x.clone()).as_vec();
    let weights_before: Vec<(String, Vec<f32>)> = net
        .params()
        .iter()
        .map(|(k, p)| (k.clone(), p.to_vec()))
        .collect();

    let mut with_skip = topology.clone();
    with_skip.set_skip(SkipEdge::new(0, 2), true).unwrap();
    let change = net.set_topology(with_skip, 9).unwrap();
    assert_eq!(change.added_zero, vec!["fc2.w0".to_string()]);
    assert!(change.removed.is_empty() && change.reinitialised.is_empty());
    assert_eq!(
        net.forward::<NoneTape>(x.clone()).as_vec(),
        before,
        "function unchanged at the switch"
    );
    for (name, values) in &weights_before {
        assert_eq!(&net.params()[name].to_vec(), values, "{name} kept");
    }
    net.set_topology(topology, 9).unwrap();
    assert!(
        !net.params().contains_key("fc2.w0"),
        "disabled edge drops its block"
    );
}

/// The validation accuracy of a run's first epoch.
fn first_val(events: &[TrainEvent]) -> f64 {
    events
        .iter()
        .find_map(|e| match e {
            TrainEvent::Epoch(m) => Some(m.val_accuracy),
            _ => None,
        })
        .expect("one epoch")
}

#[test]
fn cnn_with_skips_learns_the_builtin_data() {
    use skiplab::topology::{CnnSpec, ImageShape};
    let mut topology = Topology::Cnn(CnnSpec::new(
        ImageShape::new(1, 28, 28),
        vec![vec![8, 8], vec![16, 16]],
        10,
    ));
    topology.apply_skips(&"1-4,2-5".parse().unwrap()).unwrap();
    let Topology::Cnn(spec) = &topology else {
        unreachable!()
    };
    assert_eq!(spec.channels(5), 24);
    let mut cfg = config(OptimizerConfig::adam(2e-3, 0.0), 1, 2);
    cfg.batch_size = 32;
    let val = first_val(&run_to_end(topology, cfg));
    assert!(val > 0.75, "validation accuracy after one epoch {val}");
}

/// The CPU keeps host copies of the weights for its kernels (dfdx gives no direct access to a
/// tensor's buffer). After optimiser steps, an import and a topology change, the network must
/// compute exactly what it computes from the tensors alone (`params_mut` drops the copies).
#[test]
fn host_weight_copies_stay_equal_to_the_parameters() {
    use skiplab::net::optim::Optimizer;
    use skiplab::topology::{CnnSpec, ImageShape};
    let dev = Cpu::seed_from_u64(0);
    let data = builtin(1);
    let mut cnn = Topology::Cnn(CnnSpec::paper(
        ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        },
        10,
    ));
    cnn.apply_skips(&SkipSelection::Paper).unwrap();
    for topology in [paper_mlp_all_skips(), cnn] {
        let batch = 8;
        let x = dev.tensor_from_vec(data.val.images[..batch * 784].to_vec(), (batch, 784));
        let mut labels = vec![0.0f32; batch * 10];
        for (i, &label) in data.val.labels[..batch].iter().enumerate() {
            labels[i * 10 + label as usize] = 1.0;
        }
        let y = dev.tensor_from_vec(labels, (batch, 10));
        let mut net = Network::<f32, Cpu>::new(topology.clone(), &dev, 4).unwrap();
        let mut optimizer = Optimizer::new(OptimizerConfig::sgd(0.05, 0.9, 1e-4));
        let outputs = |net: &mut Network<f32, Cpu>| {
            let cached = net.forward::<NoneTape>(x.clone()).as_vec();
            net.params_mut();
            let fresh = net.forward::<NoneTape>(x.clone()).as_vec();
            (cached, fresh)
        };
        let before = net.forward::<NoneTape>(x.clone()).as_vec();
        for _ in 0..3 {
            let logits = net.forward::<OwnedTape<f32, Cpu>>(x.clone());
            let mut grads = cross_entropy_with_logits_loss(logits, y.clone()).backward();
            optimizer.step(&mut net, &mut grads).unwrap();
        }
        let (cached, fresh) = outputs(&mut net);
        assert_ne!(cached, before, "the steps changed the network");
        assert_eq!(cached, fresh, "after optimiser steps");

        let other = Network::<f32, Cpu>::new(topology.clone(), &dev, 5).unwrap();
        net.forward::<NoneTape>(x.clone());
        net.import(&other.export()).unwrap();
        let (cached, fresh) = outputs(&mut net);
        assert_eq!(cached, other.forward::<NoneTape>(x.clone()).as_vec());
        assert_eq!(cached, fresh, "after an import");

        let mut fewer = topology.clone();
        fewer.apply_skips(&SkipSelection::None).unwrap();
        net.forward::<NoneTape>(x.clone());
        net.set_topology(fewer, 6).unwrap();
        let (cached, fresh) = outputs(&mut net);
        assert_eq!(cached, fresh, "after a topology change");
    }
}

#[test]
fn a_50_layer_residual_mlp_trains_a_step_saves_and_reloads_to_the_same_predictions() {
    let mut mlp = MlpSpec::new(784, vec![32; 50], 10);
    mlp.activation = skiplab::topology::Activation::Tanh;
    mlp.init = skiplab::topology::InitScheme::Xavier;
    let mut topology = Topology::Mlp(mlp);
    topology
        .apply_skips(&"res:chain:2,next:1".parse().unwrap())
        .unwrap();
    assert_eq!(topology.layer_summaries().len(), 52);
    let Topology::Mlp(m) = &topology else {
        unreachable!()
    };
    assert_eq!(m.residual.len(), 25, "0-2, 2-4, ..., 48-50");
    let cfg = config(OptimizerConfig::sgd(0.01, 0.9, 0.0), 1, 1);
    let dev = Cpu::default();
    let mut trainer = Trainer::new(topology.clone(), builtin(1), cfg, &dev).unwrap();
    let batch: Vec<usize> = (0..64).collect();
    let (loss, _, flow) = trainer.step(&batch, true).unwrap();
    assert!(loss.is_finite());
    let flow = flow.unwrap();
    assert_eq!(flow.len(), 51, "every weight layer's gradient flow");
    assert!(flow
        .iter()
        .all(|l| l.grad_norm > 0.0 && l.update_ratio > 0.0));
    let net = trainer.network();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("weights.safetensors");
    let bytes =
        skiplab::runs::weights_bytes(&path, net.topology(), &net.export(), 1, "test").unwrap();
    std::fs::write(&path, bytes).unwrap();
    let saved = skiplab::runs::read_weights(&path).unwrap();
    assert_eq!(&saved.topology, net.topology());
    let mut back = Network::<f32, Cpu>::new(saved.topology, &dev, 99).unwrap();
    back.import(&saved.params).unwrap();
    let x = dev.tensor_from_vec(
        builtin(1).test.images[..784 * 20].to_vec(),
        (20usize, 784usize),
    );
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
    assert_eq!(
        bits(net.forward::<NoneTape>(x.clone()).as_vec()),
        bits(back.forward::<NoneTape>(x).as_vec()),
        "bit-identical predictions"
    );
}

/// Each layer of a network with the names of its parameters (`Network::layer_weights`).
type Layers = Vec<(String, Vec<String>)>;

/// One plain-SGD step with gradient flow on the built-in data: each layer's update ratio is
/// checked against lr * |grad| / |w|. The layers (with their parameters), the flow, and how
/// many layers moved by more than rounding come back.
fn one_flow_step(topology: Topology, lr: f64) -> (Layers, Vec<train::LayerFlow>, usize) {
    let cfg = config(OptimizerConfig::sgd(lr, 0.0, 0.0), 1, 3);
    let dev = Cpu::default();
    let mut trainer = Trainer::new(topology, builtin(3), cfg, &dev).unwrap();
    let before: std::collections::HashMap<String, Vec<f32>> = trainer
        .network()
        .export()
        .into_iter()
        .map(|p| (p.name, p.values))
        .collect();
    let layers = trainer.network().layer_weights();
    let batch: Vec<usize> = (0..64).collect();
    let flow = trainer.step(&batch, true).unwrap().2.unwrap();
    assert_eq!(flow.len(), layers.len());
    let mut checked = 0;
    for (f, (layer, names)) in flow.iter().zip(&layers) {
        assert_eq!(&f.layer, layer);
        let size: f64 = names
            .iter()
            .flat_map(|n| before[n].iter())
            .map(|&w| (w as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        // f32 weights round away changes below ~1e-7 of their size (a vanishing layer's
        // update can be exactly 0), hence the absolute term.
        let expected = lr * f.grad_norm / size;
        checked += usize::from(expected > 1e-4);
        assert!(
            (f.update_ratio - expected).abs() <= 1e-3 * expected + 1e-7,
            "{layer}: update ratio {} vs lr*|g|/|w| {expected}",
            f.update_ratio
        );
    }
    (layers, flow, checked)
}

/// Plain SGD moves each weight by lr * gradient, so a layer's update ratio is
/// lr * |grad| / |w|: checks both numbers the flow view shows against each other.
#[test]
fn gradient_flow_agrees_with_plain_sgd_and_shows_a_deep_sigmoid_net_vanishing() {
    let deep = |skips: &str| {
        let mut mlp = MlpSpec::new(784, vec![32; 20], 10);
        mlp.activation = skiplab::topology::Activation::Sigmoid;
        mlp.init = skiplab::topology::InitScheme::Xavier;
        let mut t = Topology::Mlp(mlp);
        t.apply_skips(&skips.parse().unwrap()).unwrap();
        t
    };
    let lr = 0.05;
    let first_over_last = |topology: Topology| {
        let (_, flow, checked) = one_flow_step(topology, lr);
        assert!(checked >= 2, "some layers move by more than rounding");
        flow[0].grad_norm / flow[flow.len() - 1].grad_norm
    };
    let vanilla = first_over_last(deep("none"));
    let dense = first_over_last(deep("all"));
    assert!(vanilla < 1e-4, "vanilla sigmoid vanishes: {vanilla:e}");
    assert!(dense > 1e-2, "dense skips carry the gradient: {dense:e}");
}

#[test]
fn a_pause_is_not_training_time() {
    let (tx, rx) = mpsc::channel();
    let small = Topology::Mlp(MlpSpec::new(784, vec![16], 10));
    let cfg = config(OptimizerConfig::sgd(0.01, 0.9, 0.0), 1, 1);
    let handle = train::spawn(TrainJob::new(small, builtin(1), cfg), tx);
    // Paused at the first step of epoch 1, for far longer than the epoch trains.
    handle.pause();
    let pause = Duration::from_secs(3);
    loop {
        match rx.recv_timeout(Duration::from_secs(60)).expect("an event") {
            TrainEvent::Paused => break,
            _ => continue,
        }
    }
    std::thread::sleep(pause);
    handle.resume();
    let events: Vec<TrainEvent> = rx.iter().collect();
    handle.join();
    let epoch = events
        .iter()
        .find_map(|e| match e {
            TrainEvent::Epoch(m) => Some(m.clone()),
            _ => None,
        })
        .expect("the epoch finished");
    assert!(
        epoch.seconds < pause.as_secs_f64() - 1.0,
        "a {pause:?} pause counted as training: the epoch took {} s",
        epoch.seconds
    );
    let last_point = events
        .iter()
        .rev()
        .find_map(|e| match e {
            TrainEvent::Step(s) => Some(s.seconds),
            _ => None,
        })
        .expect("step points");
    assert!(
        last_point <= epoch.seconds,
        "{last_point} > {}",
        epoch.seconds
    );
}

#[test]
fn the_test_set_measures_the_weights_of_the_best_validation_epoch() {
    let dev = Cpu::seed_from_u64(1);
    let data = builtin(1);
    let small = Topology::Mlp(MlpSpec::new(784, vec![16], 10));
    let (_commands_tx, commands) = mpsc::channel();
    let ended = |events: &[TrainEvent]| match events.last() {
        Some(TrainEvent::Ended {
            test_accuracy: Some(t),
            test_epoch: Some(e),
            ..
        }) => (*t, *e),
        other => panic!("{other:?}"),
    };
    let sgd = OptimizerConfig::sgd(0.05, 0.9, 0.0);
    let (tx, rx) = mpsc::channel();
    let mut first =
        Trainer::new(small.clone(), Arc::clone(&data), config(sgd, 1, 1), &dev).unwrap();
    first.run(&mut tx.clone(), &commands);
    drop(tx);
    let (test_after_1, epoch) = ended(&rx.iter().collect::<Vec<_>>());
    assert_eq!(epoch, 1);
    let best = first.best().expect("a best epoch").clone();
    assert_eq!(best.epoch, 1);
    // Resumed for two more epochs, with an epoch-1 best that no later epoch can beat: the
    // test set is measured on epoch 1's weights, not the last epoch's.
    let params = best.params.clone().expect("kept");
    let mut net = Network::new(small, &dev, 1).unwrap();
    net.import(&params).unwrap();
    let resume = train::Resume {
        params,
        epochs_done: 1,
        seconds_done: 0.0,
        best: Some(train::BestWeights {
            val_accuracy: 2.0,
            ..best
        }),
    };
    let mut second = Trainer::resumed(net, data, config(sgd, 2, 1), &resume);
    let (tx, rx) = mpsc::channel();
    second.run(&mut tx.clone(), &commands);
    drop(tx);
    let events: Vec<TrainEvent> = rx.iter().collect();
    let (test, epoch) = ended(&events);
    assert_eq!(epoch, 1, "the best-val epoch's weights");
    assert_eq!(test, test_after_1);
    let (_, last) = second.evaluate(&builtin(1).test);
    assert_ne!(last, test, "the last epoch's weights give another accuracy");
}

/// The gradient study's 50-layer ReLU MLP with identity residuals every two layers diverges
/// at its 4th step without normalisation (README, "The gradient study"); with batch norm it
/// trains, evaluates with its running estimates, and passes 80 % on the built-in data.
#[test]
fn a_50_layer_residual_relu_mlp_trains_with_batch_norm() {
    let deep = |norm| {
        let mut mlp = MlpSpec::new(784, vec![64; 50], 10);
        mlp.norm = norm;
        let mut t = Topology::Mlp(mlp);
        t.apply_skips(&"res:chain:2".parse().unwrap()).unwrap();
        t
    };
    let best = |events: &[TrainEvent]| {
        events
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Epoch(m) => Some(m.val_accuracy),
                _ => None,
            })
            .reduce(f64::max)
    };
    let plain = run_to_end(
        deep(skiplab::topology::Norm::None),
        config(OptimizerConfig::sgd(0.01, 0.9, 0.0), 1, 1),
    );
    assert!(
        plain.iter().any(|e| matches!(
            e,
            TrainEvent::Ended {
                status: RunStatus::Diverged { .. },
                ..
            }
        )),
        "without normalisation it diverges"
    );
    let normed = run_to_end(
        deep(skiplab::topology::Norm::Batch),
        config(OptimizerConfig::adam(1e-3, 0.0), 6, 1),
    );
    let best = best(&normed).expect("epochs ran");
    assert!(best > 0.80, "best val {best}");
}

/// Batch norm's running estimates travel with the weights: a reloaded network evaluates as
/// the saved one did, and weights without them are refused, naming what is missing.
#[test]
fn batch_norms_running_estimates_are_saved_and_loaded_with_the_weights() {
    let mut mlp = MlpSpec::new(784, vec![32, 32], 10);
    mlp.norm = skiplab::topology::Norm::Batch;
    let topology = Topology::Mlp(mlp);
    let dev = Cpu::seed_from_u64(1);
    let net = Network::<f32, Cpu>::new(topology.clone(), &dev, 1).unwrap();
    let x: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(64, 784));
    for _ in 0..3 {
        let _ = net.forward::<OwnedTape<f32, Cpu>>(x.clone());
    }
    let moved = net.running_estimates();
    assert!(moved["fc1.running_mean"].iter().any(|&m| m != 0.0));
    let saved = net.export();
    let evaluated = net.forward::<NoneTape>(x.clone()).as_vec();
    let mut fresh = Network::<f32, Cpu>::new(topology, &dev, 2).unwrap();
    fresh.import(&saved).unwrap();
    assert_eq!(fresh.forward::<NoneTape>(x).as_vec(), evaluated);
    let without: Vec<_> = saved
        .into_iter()
        .filter(|p| p.name != "fc2.running_var")
        .collect();
    assert_eq!(
        fresh.import(&without).unwrap_err(),
        "running estimate `fc2.running_var` is missing"
    );
}

/// Gradient flow shows a normalised layer's scale and shift as a layer of their own, after
/// the layer they normalise, with the same check as the weights' (plain SGD: the update
/// ratio is lr * |grad| / |w|).
#[test]
fn gradient_flow_covers_the_normalisation_layers() {
    let mut mlp = MlpSpec::new(784, vec![32, 32], 10);
    mlp.norm = skiplab::topology::Norm::Batch;
    let (layers, flow, _) = one_flow_step(Topology::Mlp(mlp), 0.05);
    let names: Vec<&str> = layers.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(names, ["fc1", "fc1.bn", "fc2", "fc2.bn", "fc3"]);
    assert_eq!(layers[1].1, ["fc1.beta", "fc1.gamma"]);
    for f in &flow {
        assert!(f.grad_norm > 0.0 && f.grad_norm.is_finite(), "{}", f.layer);
    }
}

/// The `fashion-resnet20` preset (He et al.'s ResNet-20: stride-2 stages, batch norm,
/// identity and option-A shortcuts, global average pool) learns the built-in data in one
/// epoch, well past a coin's 10 %.
#[test]
fn resnet20_learns_the_builtin_data_in_one_epoch() {
    use skiplab::data::DatasetName;
    use skiplab::experiment::Experiment;
    let preset = |name: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("presets")
            .join(format!("{name}.ron"));
        let mut experiment = Experiment::load(&path).unwrap();
        experiment.dataset = DatasetName::Builtin;
        experiment
    };
    let resnet = preset("fashion-resnet20");
    let topology = resnet.topology().unwrap();
    assert_eq!(topology.skips().len(), 9, "nine two-layer blocks");
    assert_eq!(topology.residual_edges().len(), 9);
    let mut cfg = resnet.train_config();
    cfg.epochs = 1;
    let val = first_val(&run_to_end(topology, cfg));
    assert!(val > 0.5, "validation accuracy after one epoch {val}");
}

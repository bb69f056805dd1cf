//! Lesion studies: exact expectations on small hand-built networks, then Veit et al.'s finding
//! (a residual network survives the deletion of a block, a plain one does not) on the
//! built-in data.

use std::sync::Arc;

use dfdx::prelude::*;
use rand::{Rng, SeedableRng};
use skiplab::analysis::lesion::{
    delete_layer, deletion, lesion, remove_edge, Deletion, LesionOptions, Progress,
};
use skiplab::data::{self, PreparedData, Samples};
use skiplab::hyperparams::OptimizerConfig;
use skiplab::net::{HostParam, Network};
use skiplab::topology::{
    CnnSpec, Downsample, ImageShape, MlpSpec, Norm, SkipEdge, SkipSelection, Topology,
};
use skiplab::train::{TrainConfig, Trainer};

/// A network of `topology` with random weights, and random running estimates where it has
/// batch norm (so an identity made from them is tested, not one made from 0 and 1).
fn random_params(topology: &Topology, seed: u64) -> Vec<HostParam> {
    let dev = Cpu::seed_from_u64(seed);
    let net = Network::<f32, Cpu>::new(topology.clone(), &dev, seed).expect("valid topology");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    net.export()
        .into_iter()
        .map(|mut p| {
            for v in p.values.iter_mut() {
                *v = match () {
                    _ if p.name.ends_with("running_var") => rng.gen_range(0.5..2.0),
                    _ if p.name.ends_with("gamma") => rng.gen_range(0.5..1.5),
                    _ => rng.gen_range(-0.5..0.5),
                };
            }
            p
        })
        .collect()
}

/// Logits of `topology` with `params` on `x` (`[rows, input]`), in evaluation mode.
fn logits(topology: &Topology, params: &[HostParam], x: &[f32]) -> Vec<f32> {
    let dev = Cpu::seed_from_u64(0);
    let mut net = Network::<f32, Cpu>::new(topology.clone(), &dev, 0).expect("valid topology");
    net.import(params).expect("weights fit");
    let rows = x.len() / topology.input_len();
    let x = dev.tensor_from_vec(x.to_vec(), (rows, topology.input_len()));
    net.forward::<NoneTape>(x).as_vec()
}

fn inputs(topology: &Topology, rows: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..rows * topology.input_len())
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect()
}

/// `params` renamed: every name passed through `rename`, those it drops (`None`) left out.
fn renamed(params: &[HostParam], rename: impl Fn(&str) -> Option<String>) -> Vec<HostParam> {
    params
        .iter()
        .filter_map(|p| rename(&p.name).map(|name| HostParam { name, ..p.clone() }))
        .collect()
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * (1.0 + x.abs().max(y.abs())),
            "{what}: logit {i}: {x} against {y}"
        );
    }
}

fn mlp(hidden: Vec<usize>, skips: &str, norm: Norm) -> Topology {
    let mut spec = MlpSpec::new(5, hidden, 3);
    spec.norm = norm;
    let mut t = Topology::Mlp(spec);
    t.apply_skips(&skips.parse::<SkipSelection>().expect("selection"))
        .expect("valid edges");
    t
}

/// A plain layer passed through as identity computes what the network without that layer
/// computes (its successor reading its predecessor with the successor's own weights), with and
/// without batch norm.
#[test]
fn a_plain_layer_deleted_is_the_network_without_it() {
    for norm in [Norm::None, Norm::Batch] {
        let long = mlp(vec![4, 4, 4], "none", norm);
        let short = mlp(vec![4, 4], "none", norm);
        let params = random_params(&long, 3);
        let mut lesioned = params.clone();
        assert_eq!(
            delete_layer(&long, &mut lesioned, 2),
            Ok(Deletion::Identity)
        );
        // Layer 2 goes; 3 becomes 2 and reads 1; the output (4) becomes 3 and reads 2.
        let short_params = renamed(&params, |name| {
            let map = [
                ("fc3.w2", "fc2.w1"),
                ("fc4.w3", "fc3.w2"),
                ("fc3.", "fc2."),
                ("fc4.", "fc3."),
            ];
            if name.starts_with("fc2.") {
                return None;
            }
            for (from, to) in map {
                if let Some(rest) = name.strip_prefix(from) {
                    return Some(format!("{to}{rest}"));
                }
            }
            Some(name.to_string())
        });
        let x = inputs(&long, 7, 1);
        assert_close(
            &logits(&long, &lesioned, &x),
            &logits(&short, &short_params, &x),
            &format!("{norm:?}"),
        );
        // And the deletion did change the network.
        assert_ne!(logits(&long, &lesioned, &x), logits(&long, &params, &x));
    }
}

/// A residual block deleted leaves its shortcut: the output layer then reads what the block
/// received, as a network without the block does.
#[test]
fn a_residual_block_deleted_leaves_its_shortcut() {
    for norm in [Norm::None, Norm::Batch] {
        let long = mlp(vec![4, 4, 4], "res:1-3", norm);
        let short = mlp(vec![4], "none", norm);
        let params = random_params(&long, 4);
        let mut lesioned = params.clone();
        assert_eq!(delete_layer(&long, &mut lesioned, 3), Ok(Deletion::Branch));
        let short_params = renamed(&params, |name| {
            if name.starts_with("fc1.") {
                Some(name.to_string())
            } else {
                name.strip_prefix("fc4.w3")
                    .map(|rest| format!("fc2.w1{rest}"))
                    .or_else(|| name.strip_prefix("fc4.b").map(|_| "fc2.b".to_string()))
            }
        });
        let x = inputs(&long, 7, 2);
        assert_close(
            &logits(&long, &lesioned, &x),
            &logits(&short, &short_params, &x),
            &format!("{norm:?}"),
        );
    }
}

/// A deletion that changes nothing: a block whose weights already are the identity (a plain
/// layer), or whose branch is already zero (a residual one), gives the same logits, bit for
/// bit where no batch norm rounds.
#[test]
fn deleting_a_layer_whose_block_is_the_identity_changes_nothing() {
    let t = mlp(vec![4, 4, 4], "res:1-3", Norm::None);
    let mut params = random_params(&t, 5);
    for p in params.iter_mut() {
        match p.name.as_str() {
            "fc2.w1" => {
                for (i, v) in p.values.iter_mut().enumerate() {
                    *v = f32::from(u8::from(i / 4 == i % 4));
                }
            }
            "fc2.b" | "fc3.w2" | "fc3.b" => p.values.fill(0.0),
            _ => {}
        }
    }
    let x = inputs(&t, 9, 3);
    let before = logits(&t, &params, &x);
    for layer in [2, 3] {
        let mut lesioned = params.clone();
        delete_layer(&t, &mut lesioned, layer).expect("deletable");
        assert_eq!(logits(&t, &lesioned, &x), before, "layer {layer}");
    }
    // Through the whole study: the deletions score as the baseline does.
    let samples = Samples {
        images: x,
        labels: vec![0, 1, 2, 0, 1, 2, 0, 1, 2],
    };
    let dev = Cpu::seed_from_u64(0);
    let study = lesion(
        &dev,
        &t,
        &params,
        &samples,
        &LesionOptions::default(),
        &mut |_| true,
    )
    .expect("study");
    for d in study.deletions.iter().filter(|d| d.layer >= 2) {
        assert_eq!(d.score, Some(study.baseline), "{d:?}");
    }
    assert!(study.deletions[0]
        .why_not
        .as_deref()
        .unwrap()
        .contains("5 units where it has 4"));
}

/// A CNN's convolution passed through as identity (channel groups, 3x3 windows, batch norm)
/// is the CNN without it; a residual convolution's branch deleted leaves its shortcut.
#[test]
fn cnn_deletions_equal_the_networks_without_the_layer() {
    let cnn = |stage: Vec<usize>, skips: &str| {
        let mut spec = CnnSpec::new(ImageShape::new(2, 4, 4), vec![stage], 3);
        spec.norm = Norm::Batch;
        spec.downsample = Downsample::Pool;
        let mut t = Topology::Cnn(spec);
        t.apply_skips(&skips.parse::<SkipSelection>().expect("selection"))
            .expect("valid edges");
        t
    };
    // conv1 conv2 conv3 pool4 against conv1 conv2 pool3.
    let long = cnn(vec![3, 3, 3], "none");
    let short = cnn(vec![3, 3], "none");
    let params = random_params(&long, 6);
    let mut lesioned = params.clone();
    assert_eq!(
        delete_layer(&long, &mut lesioned, 2),
        Ok(Deletion::Identity)
    );
    let short_params = renamed(&params, |name| {
        if name.starts_with("conv2.") {
            return None;
        }
        Some(
            name.replace("conv3.w[2]", "conv2.w[1]")
                .replace("conv3.", "conv2.")
                .replace("out.w[3]", "out.w[2]"),
        )
    });
    let x = inputs(&long, 5, 4);
    assert_close(
        &logits(&long, &lesioned, &x),
        &logits(&short, &short_params, &x),
        "identity conv",
    );

    // A residual 1-3: conv3's branch deleted leaves conv1's output, which the head reads.
    let long = cnn(vec![3, 3, 3], "res:1-3");
    let short = cnn(vec![3], "none");
    let params = random_params(&long, 7);
    let mut lesioned = params.clone();
    assert_eq!(delete_layer(&long, &mut lesioned, 3), Ok(Deletion::Branch));
    let short_params = renamed(&params, |name| {
        if name.starts_with("conv1.") || name == "out.b" {
            return Some(name.to_string());
        }
        (name == "out.w[3]").then(|| "out.w[1]".to_string())
    });
    assert_close(
        &logits(&long, &lesioned, &x),
        &logits(&short, &short_params, &x),
        "residual conv",
    );
    // A pool and the first convolution cannot be deleted, and say why.
    assert!(deletion(&long, 4).unwrap_err().contains("pool"));
    assert!(deletion(&long, 1)
        .unwrap_err()
        .contains("2 channels where it has 3 filters"));
}

/// Zeroing an edge's weight blocks computes what removing the edge (the lab's toggle) does:
/// an MLP's concatenating block, a CNN's channel group carried on by a later skip.
#[test]
fn zeroing_an_edge_equals_removing_it() {
    let t = mlp(vec![4, 3, 4, 5], "0-2,1-3,res:2-4", Norm::Batch);
    let params = random_params(&t, 8);
    let x = inputs(&t, 6, 5);
    for (edge, blocks) in [
        (SkipEdge::new(0, 2), vec!["fc2.w0"]),
        (SkipEdge::new(2, 4), vec!["fc4.r2"]),
    ] {
        let mut zeroed = params.clone();
        for p in zeroed
            .iter_mut()
            .filter(|p| blocks.contains(&p.name.as_str()))
        {
            p.values.fill(0.0);
        }
        let (without, kept) = remove_edge(&t, &params, edge).expect("removable");
        assert!(kept.len() < params.len());
        assert_close(
            &logits(&t, &zeroed, &x),
            &logits(&without, &kept, &x),
            &format!("{edge}"),
        );
    }

    let mut paper = Topology::Cnn(CnnSpec::paper(ImageShape::new(1, 8, 8), 3));
    paper
        .apply_skips(&"paper".parse::<SkipSelection>().expect("selection"))
        .expect("valid edges");
    let params = random_params(&paper, 9);
    let x = inputs(&paper, 3, 6);
    // Conv 1's channels reach conv 4 by 1-4 and go on to conv 5, to 7 by 4-7, to the head.
    let mut zeroed = params.clone();
    let mut touched = 0;
    for p in zeroed.iter_mut().filter(|p| p.name.contains("[1>4")) {
        p.values.fill(0.0);
        touched += 1;
    }
    assert!(touched >= 2, "{touched} blocks carry 1-4");
    let (without, kept) = remove_edge(&paper, &params, SkipEdge::new(1, 4)).expect("removable");
    assert_close(
        &logits(&paper, &zeroed, &x),
        &logits(&without, &kept, &x),
        "cnn 1-4",
    );
}

fn builtin(seed: u64) -> Arc<PreparedData> {
    Arc::new(PreparedData::prepare(&data::builtin(), 0.1, seed))
}

/// Trains `topology` on the built-in data for `epochs` epochs (Adam 0.001, batch 64).
fn trained(topology: Topology, epochs: usize, seed: u64) -> Vec<HostParam> {
    let data = builtin(seed);
    let dev = Cpu::seed_from_u64(seed);
    let config = TrainConfig {
        optimizer: OptimizerConfig::adam(1e-3, 0.0),
        batch_size: 64,
        epochs,
        seed,
        schedule: None,
    };
    let mut trainer = Trainer::new(topology, data.clone(), config, &dev).expect("trainer");
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..epochs {
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        for batch in order.chunks_exact(64) {
            trainer.train_step(batch).expect("step");
        }
    }
    trainer.network().export()
}

/// A run's weights written as a run saves them and read back study exactly as the network
/// in memory does.
#[test]
fn lesion_of_a_reloaded_run_equals_lesion_in_memory() {
    let t = mlp(vec![16, 16, 16], "res:1-3,0-2", Norm::Batch);
    let t = match t {
        Topology::Mlp(mut m) => {
            m.input = 784;
            m.classes = 10;
            Topology::Mlp(m)
        }
        other => other,
    };
    let params = trained(t.clone(), 1, 2);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("weights.safetensors");
    let bytes = skiplab::runs::weights_bytes(&path, &t, &params, 1, "run-1").expect("bytes");
    std::fs::write(&path, bytes).expect("written");
    let read = skiplab::runs::read_weights(&path).expect("read back");
    assert_eq!(read.topology, t);
    let val = &builtin(2).val;
    let dev = Cpu::seed_from_u64(0);
    let options = LesionOptions {
        max_k: Some(2),
        draws: 3,
        seed: 7,
    };
    let mut seen = Vec::new();
    let in_memory = lesion(&dev, &t, &params, val, &options, &mut |p| {
        seen.push(p);
        true
    })
    .expect("study");
    let reloaded = lesion(
        &dev,
        &read.topology,
        &read.params,
        val,
        &options,
        &mut |_| true,
    )
    .expect("study");
    assert_eq!(in_memory, reloaded);
    assert_eq!(in_memory.samples, val.len());
    // Baseline, 2 deletable layers (fc2 identity, fc3 branch), 2 edges, 1 + 0 draws: the
    // pool is fc3 alone, so k stops at 1.
    assert_eq!(in_memory.pool, [3]);
    assert_eq!(in_memory.curve.len(), 1);
    assert_eq!(seen.last(), Some(&Progress { done: 6, total: 6 }));
    // Cancelling stops the study.
    let cancelled = lesion(&dev, &t, &params, val, &options, &mut |p| p.done < 2);
    assert_eq!(cancelled, Err(skiplab::analysis::StudyError::Cancelled));
}

/// Veit et al.: deleting a block from a residual network costs little, deleting a layer from
/// its plain twin costs much. The depth study's deep MLPs (12 layers of 64, batch norm,
/// residual edges every two layers), trained 2 epochs on the built-in data.
#[test]
fn a_residual_deep_mlp_survives_single_deletions_its_plain_twin_does_not() {
    let deep = |skips: &str| {
        let mut spec = MlpSpec::new(784, vec![64; 11], 10);
        spec.norm = Norm::Batch;
        let mut t = Topology::Mlp(spec);
        t.apply_skips(&skips.parse::<SkipSelection>().expect("selection"))
            .expect("valid edges");
        t
    };
    let dev = Cpu::seed_from_u64(0);
    let val = builtin(1).val.clone();
    let options = LesionOptions {
        max_k: Some(3),
        draws: 5,
        seed: 1,
    };
    let study = |t: Topology| {
        let params = trained(t.clone(), 2, 1);
        lesion(&dev, &t, &params, &val, &options, &mut |_| true).expect("study")
    };
    let plain = study(deep("none"));
    let residual = study(deep("res:chain:2"));
    // The mean accuracy lost by a single deletion from each pool (interior layers for the
    // plain net, blocks for the residual one).
    let mean_drop = |s: &skiplab::analysis::lesion::Lesion| {
        let drops: Vec<f64> = s
            .deletions
            .iter()
            .filter(|d| s.pool.contains(&d.layer))
            .map(|d| s.baseline.accuracy - d.score.expect("scored").accuracy)
            .collect();
        drops.iter().sum::<f64>() / drops.len() as f64
    };
    let (plain_drop, residual_drop) = (mean_drop(&plain), mean_drop(&residual));
    assert!(plain.baseline.accuracy > 0.7 && residual.baseline.accuracy > 0.7);
    assert_eq!(plain.pool, (2..=11).collect::<Vec<_>>());
    // Block 0-2's shortcut is a projection normalised with its branch: not deletable.
    assert_eq!(residual.pool, [4, 6, 8, 10]);
    // Measured: the plain net falls to chance (0.80 to about 0.11), the residual one loses
    // 0.02 to 0.17 (the first block the most, as Veit's downsampling blocks do).
    assert!(
        plain_drop > 0.4,
        "a plain layer deleted costs {plain_drop:.3} on average"
    );
    assert!(
        residual_drop < 0.12 && residual_drop * 4.0 < plain_drop,
        "a residual block deleted costs {residual_drop:.3}, a plain layer {plain_drop:.3}"
    );
    // Three blocks deleted still leave the residual net far above its plain twin.
    let three = |s: &skiplab::analysis::lesion::Lesion| s.curve[2].accuracy().expect("draws").mean;
    assert!(three(&residual) > three(&plain) + 0.2);
}

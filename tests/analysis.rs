//! The analyses on small hand-built networks, with values worked out by hand.

use dfdx::prelude::*;
use skiplab::analysis::usage::{edge_usage, Reading, UsageError};
use skiplab::net::{HostParam, Network};
use skiplab::topology::{CnnSpec, ImageShape, MlpSpec, SkipSelection, Topology};

/// The parameters of `topology` as saved, each filled by `fill(name, index)`.
fn params(topology: &Topology, fill: impl Fn(&str, usize) -> f32) -> Vec<HostParam> {
    let dev = Cpu::seed_from_u64(0);
    let net = Network::<f32, Cpu>::new(topology.clone(), &dev, 0).expect("valid topology");
    net.export()
        .into_iter()
        .map(|mut p| {
            for (i, v) in p.values.iter_mut().enumerate() {
                *v = fill(&p.name, i);
            }
            p
        })
        .collect()
}

/// Input 3, hidden 2-4-2, 2 classes; 0-2 concatenates, 1-3 is an identity residual (2 to 2
/// units), 2-4 a residual projection (4 to 2).
fn small_mlp() -> Topology {
    let mut t = Topology::Mlp(MlpSpec::new(3, vec![2, 4, 2], 2));
    let skips: SkipSelection = "0-2,res:1-3,res:2-4".parse().expect("selection");
    t.apply_skips(&skips).expect("valid edges");
    t
}

#[test]
fn mlp_edge_usage_equals_the_hand_computed_map() {
    let t = small_mlp();
    // Block values: fc2.w0 (3x4) is 1, -2, 3, ..., -12 over 10; every other weight block is
    // its index + 1 with alternating sign; biases and norms are ignored.
    let p = params(&t, |name, i| {
        let v = (i + 1) as f32 * if i % 2 == 0 { 1.0 } else { -1.0 };
        if name == "fc2.w0" {
            v / 10.0
        } else {
            v
        }
    });
    let usage = edge_usage(&t, &p).expect("usage");
    assert_eq!(usage.layers, ["input", "fc1", "fc2", "fc3", "out"]);
    let find = |s: usize, t: usize, r: Reading| {
        usage
            .blocks
            .iter()
            .find(|b| (b.source, b.target, b.reading) == (s, t, r))
            .unwrap_or_else(|| panic!("no block {s} -> {t} {r:?}"))
            .clone()
    };
    // Σ 1..n over k input features: n(n+1)/2 / k.
    let tri = |n: usize| (n * (n + 1) / 2) as f64;
    // Values are f32 (tenths are not exact): relative 1e-6.
    let close = |a: Option<f64>, b: f64| (a.expect("a value") - b).abs() <= 1e-6 * b.abs();
    // fc1 reads the input (3x2): 21 / 3.
    assert!(close(find(0, 1, Reading::Main).usage, tri(6) / 3.0));
    // fc2: the main input fc1 (2x4): 36 / 2; the skip from the input (3x4): 7.8 / 3.
    assert!(close(find(1, 2, Reading::Main).usage, tri(8) / 2.0));
    let skip = find(0, 2, Reading::Skip);
    assert_eq!((skip.block.as_str(), skip.features), ("fc2.w0", 3));
    assert!(close(skip.usage, tri(12) / 10.0 / 3.0));
    // fc3: main from fc2 (4x2): 36 / 4; the identity from fc1 has no weights.
    assert!(close(find(2, 3, Reading::Main).usage, tri(8) / 4.0));
    let identity = find(1, 3, Reading::Identity);
    assert_eq!((identity.usage, identity.block.as_str()), (None, ""));
    // out: main from fc3 (2x2): 10 / 2; the projection from fc2 (4x2): 36 / 4.
    assert!(close(find(3, 4, Reading::Main).usage, tri(4) / 2.0));
    let projection = find(2, 4, Reading::Projection);
    assert_eq!(projection.block, "fc4.r2");
    assert!(close(projection.usage, tri(8) / 4.0));
    assert_eq!(usage.blocks.len(), 7);
    // The map has a cell per pair with weights, the identity none.
    let map = usage.map();
    assert_eq!(map.len(), 6);
    assert!(!map.contains_key(&(1, 3)));
    assert!(close(Some(map[&(0, 2)]), tri(12) / 10.0 / 3.0));
}

/// The paper's CNN (skips 1-4, 2-5, 4-7, 5-8) with every weight 1: a conv block reads each
/// input channel through 9 taps into every filter (usage 9 x filters), the flattening head
/// through every pixel into every class; the groups name their source layers.
#[test]
fn cnn_edge_usage_follows_the_channel_groups() {
    let mut t = Topology::Cnn(CnnSpec::paper(ImageShape::new(1, 8, 8), 3));
    t.apply_skips(&"paper".parse::<SkipSelection>().expect("selection"))
        .expect("valid edges");
    let Topology::Cnn(cnn) = &t else {
        unreachable!()
    };
    let usage = edge_usage(&t, &params(&t, |_, _| 1.0)).expect("usage");
    let out = usage.layers.len() - 1;
    assert_eq!(usage.layers[out], "out");
    let last = *cnn.layers().last().expect("layers");
    for b in &usage.blocks {
        let expected = match b.target == out {
            true => (last.height * last.width * 3) as f64,
            false => 9.0 * cnn.filters(b.target).expect("a conv") as f64,
        };
        assert!(
            (b.usage.expect("weights") - expected).abs() < 1e-6,
            "{b:?}: expected {expected}"
        );
        assert_eq!(b.reading == Reading::Skip, b.block.contains('>'), "{b:?}");
    }
    // Conv 5 reads conv 4's output and conv 1's, carried by the skip 1-4.
    let into_5: Vec<(usize, Reading)> = usage
        .blocks
        .iter()
        .filter(|b| b.target == 5)
        .map(|b| (b.source, b.reading))
        .collect();
    assert_eq!(into_5, [(4, Reading::Main), (1, Reading::Skip)]);
}

#[test]
fn edge_usage_names_a_missing_or_misshapen_block() {
    let t = small_mlp();
    let mut p = params(&t, |_, _| 1.0);
    p.retain(|p| p.name != "fc4.r2");
    assert_eq!(
        edge_usage(&t, &p),
        Err(UsageError::Missing("fc4.r2".into()))
    );
    let mut p = params(&t, |_, _| 1.0);
    p.iter_mut()
        .find(|p| p.name == "fc2.w0")
        .expect("block")
        .values
        .pop();
    assert_eq!(
        edge_usage(&t, &p),
        Err(UsageError::WrongSize {
            name: "fc2.w0".into(),
            expected: 12,
            found: 11
        })
    );
}

/// Linear CKA equals google-research's reference (NumPy, `bench/cka_reference.py`) on the
/// committed fixture: full (biased and debiased) and minibatch, every pair of three layers.
#[test]
fn linear_cka_equals_the_numpy_reference() {
    use skiplab::analysis::cka::{linear_cka, minibatch_cka, Activations};
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cka_reference.json");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let n = fixture["examples"].as_u64().unwrap() as usize;
    let layers: Vec<Activations> = fixture["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let values: Vec<f64> = l["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            Activations::new(n, l["features"].as_u64().unwrap() as usize, values)
        })
        .collect();
    let expected = |key: &str, i: usize, j: usize| fixture[key][i][j].as_f64().unwrap();
    let batch = fixture["minibatch"]["batch"].as_u64().unwrap() as usize;
    let mini = minibatch_cka(&layers, &layers, batch);
    for i in 0..layers.len() {
        for j in 0..layers.len() {
            let full = linear_cka(&layers[i], &layers[j], false);
            let debiased = linear_cka(&layers[i], &layers[j], true);
            assert!(
                (full - expected("full", i, j)).abs() < 1e-10,
                "{i} {j}: {full}"
            );
            assert!(
                (debiased - expected("full_debiased", i, j)).abs() < 1e-10,
                "{i} {j}: {debiased}"
            );
            let reference = fixture["minibatch"]["cka"][i][j].as_f64().unwrap();
            assert!(
                (mini[i][j] - reference).abs() < 1e-10,
                "{i} {j}: {}",
                mini[i][j]
            );
        }
    }
    // The layers differ: the noisy linear map is nearer the input than the tanh is.
    assert!(expected("full", 0, 1) > expected("full", 0, 2));
}

/// Nguyen et al.'s minibatch estimate is within 0.01 of the full (debiased) CKA on 2,000
/// examples in batches of 250.
#[test]
fn minibatch_cka_is_within_a_hundredth_of_the_full_computation() {
    use rand::{Rng, SeedableRng};
    use skiplab::analysis::cka::{linear_cka, minibatch_cka, Activations};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let n = 2000;
    let mut normal = || -> f64 {
        // Box-Muller: rand's distributions crate is not a dependency.
        let (u, v): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen_range(0.0..1.0));
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let first: Vec<f64> = (0..n * 8).map(|_| normal()).collect();
    let map: Vec<f64> = (0..8 * 12).map(|_| normal()).collect();
    let mut second = vec![0.0; n * 12];
    for i in 0..n {
        for j in 0..12 {
            let s: f64 = (0..8).map(|k| first[i * 8 + k] * map[k * 12 + j]).sum();
            second[i * 12 + j] = (s / 2.0).tanh() + 0.3 * normal();
        }
    }
    let a = Activations::new(n, 8, first);
    let b = Activations::new(n, 12, second);
    let full = linear_cka(&a, &b, true);
    let mini = minibatch_cka(std::slice::from_ref(&a), std::slice::from_ref(&b), 250)[0][0];
    assert!(full > 0.3 && full < 0.95, "{full}");
    assert!((full - mini).abs() < 0.01, "full {full}, minibatch {mini}");
}

/// The paper's MLP shape (small) with random weights, as a landscape's network.
fn landscape_net(seed: u64) -> (Topology, Vec<HostParam>) {
    use rand::{Rng, SeedableRng};
    let mut t = Topology::Mlp(MlpSpec::new(12, vec![6, 5], 3));
    t.apply_skips(&"0-2,1-3".parse::<SkipSelection>().unwrap())
        .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let p = params(&t, |_, _| 0.0)
        .into_iter()
        .map(|mut p| {
            p.values
                .iter_mut()
                .for_each(|v| *v = rng.gen_range(-1.0..1.0));
            p
        })
        .collect();
    (t, p)
}

/// Filter normalisation: every unit's direction (its column across its layer's blocks) has
/// the norm of its trained weights; biases get none; the same seed draws the same direction
/// for networks of the same shapes, another seed another.
#[test]
fn landscape_directions_are_filter_normalised_and_seeded() {
    use skiplab::analysis::landscape::direction;
    let (_, a) = landscape_net(1);
    let (_, b) = landscape_net(2);
    let (da, db) = (direction(&a, 5), direction(&b, 5));
    // fc3 reads fc2 (5 units) and fc1 (6) through two blocks: 3 columns each.
    let column_norm = |params: &[(&[f32], usize)], col: usize| -> f64 {
        params
            .iter()
            .flat_map(|(values, cols)| values.iter().skip(col).step_by(*cols))
            .map(|v| f64::from(*v).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let find = |ps: &[HostParam], name: &str| ps.iter().find(|p| p.name == name).unwrap().clone();
    for col in 0..3 {
        let w: Vec<HostParam> = vec![find(&a, "fc3.w2"), find(&a, "fc3.w1")];
        let weights: Vec<(&[f32], usize)> = w.iter().map(|p| (p.values.as_slice(), 3)).collect();
        let dirs: Vec<(&[f32], usize)> =
            vec![(da["fc3.w2"].as_slice(), 3), (da["fc3.w1"].as_slice(), 3)];
        let (wn, dn) = (column_norm(&weights, col), column_norm(&dirs, col));
        assert!(
            (wn - dn).abs() <= 1e-5 * wn,
            "column {col}: {wn} against {dn}"
        );
    }
    assert!(da["fc1.b"].iter().all(|v| *v == 0.0));
    // Same seed: each element is the same draw, scaled by its column's weight norm.
    let (wa, wb) = (find(&a, "fc1.w0"), find(&b, "fc1.w0"));
    let col_norm = |p: &HostParam, c: usize| column_norm(&[(p.values.as_slice(), 6)], c);
    for (i, (x, y)) in da["fc1.w0"].iter().zip(&db["fc1.w0"]).enumerate() {
        let c = i % 6;
        let (x, y) = (
            f64::from(*x) / col_norm(&wa, c),
            f64::from(*y) / col_norm(&wb, c),
        );
        assert!(
            (x - y).abs() <= 1e-5 * x.abs().max(1e-6),
            "{i}: {x} against {y}"
        );
    }
    assert_ne!(direction(&a, 6)["fc1.w0"], da["fc1.w0"]);
}

/// At α = β = 0 the landscape is the network's own loss on the subset; the grid has the
/// points asked for; moving off the trained weights of a random net changes the loss.
#[test]
fn landscape_centre_is_the_networks_own_loss() {
    use rand::{Rng, SeedableRng};
    use skiplab::analysis::landscape::{landscape, LandscapeOptions};
    let (t, p) = landscape_net(3);
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let samples = skiplab::data::Samples {
        images: (0..40 * 12).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        labels: (0..40).map(|i| (i % 3) as u8).collect(),
    };
    let dev = Cpu::seed_from_u64(0);
    let options = LandscapeOptions {
        dims: 2,
        points: 5,
        range: 0.5,
        seed: 9,
    };
    let l = landscape(&dev, &t, &p, &samples, &options, &mut |_| true).unwrap();
    assert_eq!(l.loss.len(), 25);
    assert_eq!(l.axis, [-0.5, -0.25, 0.0, 0.25, 0.5]);
    let mut net = Network::<f32, Cpu>::new(t.clone(), &dev, 0).unwrap();
    net.import(&p).unwrap();
    let own = skiplab::train::Evaluator::default()
        .evaluate(&net, &samples)
        .0;
    assert_eq!(l.centre_loss, own);
    assert_eq!(l.loss[12], own, "the grid's centre is α = β = 0");
    assert!(l.loss.iter().any(|&x| (x - own).abs() > 1e-3));
    let one = landscape(
        &dev,
        &t,
        &p,
        &samples,
        &LandscapeOptions { dims: 1, ..options },
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(one.loss.len(), 5);
    assert_eq!(one.loss[2], own);
    // The same seed gives the same grid twice; another seed another.
    let again = landscape(&dev, &t, &p, &samples, &options, &mut |_| true).unwrap();
    assert_eq!(again, l);
    let other = LandscapeOptions {
        seed: 10,
        ..options
    };
    let other = landscape(&dev, &t, &p, &samples, &other, &mut |_| true).unwrap();
    assert_ne!(other.loss, l.loss);
}

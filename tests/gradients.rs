//! Finite-difference checks of every composed op and of whole networks, in f64.
//!
//! Tolerance: central differences with step 1e-6; an analytic gradient `a` passes against the
//! numeric `n` when `|a - n| <= 1e-6 + 1e-4 * |n|`.

use dfdx::prelude::*;
use rand::{Rng, SeedableRng};
use skiplab::net::ops::{conv3x3, im2col_index, maxpool2, Images};
use skiplab::net::{Network, NormMode, Param};
use skiplab::topology::{
    Activation, BlockOrder, CnnSpec, Downsample, Head, ImageShape, InitScheme, MlpSpec, Norm,
    Shortcut, SkipEdge, SkipSelection, Topology,
};

type Dev = Cpu;
const STEP: f64 = 1e-6;

fn close(analytic: f64, numeric: f64) -> bool {
    (analytic - numeric).abs() <= 1e-6 + 1e-4 * numeric.abs()
}

fn random(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// Checks d loss / d values for `values` (a flat buffer the closure reads) at every index in
/// `indices`, with `analytic` holding the tape's gradient.
fn check(
    what: &str,
    values: &mut [f64],
    analytic: &[f64],
    indices: impl Iterator<Item = usize>,
    mut loss: impl FnMut(&[f64]) -> f64,
) -> usize {
    let mut checked = 0;
    for i in indices {
        let orig = values[i];
        values[i] = orig + STEP;
        let up = loss(values);
        values[i] = orig - STEP;
        let down = loss(values);
        values[i] = orig;
        let numeric = (up - down) / (2.0 * STEP);
        assert!(
            close(analytic[i], numeric),
            "{what}[{i}]: analytic {} vs numeric {numeric}",
            analytic[i]
        );
        checked += 1;
    }
    checked
}

fn one_hot(batch: usize, classes: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0.0; batch * classes];
    for b in 0..batch {
        v[b * classes + rng.gen_range(0..classes)] = 1.0;
    }
    v
}

/// Whole-network check: every parameter's gradient (up to `per_param` entries of each).
fn check_network(topology: Topology, batch: usize, per_param: usize) {
    let dev = Dev::seed_from_u64(0);
    let mut net = Network::<f64, Dev>::new(topology.clone(), &dev, 3).unwrap();
    // Batch norm as it trains, in the numeric passes (without a tape) too.
    net.set_norm_mode(Some(NormMode::Train));
    // Move biases off zero so their gradients see a generic point.
    for (i, p) in net.params_mut().values_mut().enumerate() {
        if let Param::Vector(_) = p {
            let n = p.len();
            p.copy_from(
                &random(n, 100 + i as u64)
                    .iter()
                    .map(|v| v * 0.1)
                    .collect::<Vec<_>>(),
            );
        }
    }
    let inputs = topology.input_len();
    let classes = topology.classes();
    let x = dev.tensor_from_vec(random(batch * inputs, 9), (batch, inputs));
    let y = dev.tensor_from_vec(one_hot(batch, classes, 10), (batch, classes));

    let logits = net.forward::<OwnedTape<f64, Dev>>(x.clone());
    let grads = cross_entropy_with_logits_loss(logits, y.clone()).backward();
    let names: Vec<String> = net.params().keys().cloned().collect();
    let mut total = 0;
    for name in &names {
        let analytic = match &net.params()[name] {
            Param::Vector(t) => grads.get(t).as_vec(),
            Param::Matrix(t) => grads.get(t).as_vec(),
        };
        let mut values = net.params()[name].to_vec();
        let stride = (values.len() / per_param).max(1);
        let indices = (0..values.len()).step_by(stride);
        let net_ref = &mut net;
        total += check(name, &mut values, &analytic, indices, |v| {
            net_ref.params_mut().get_mut(name).unwrap().copy_from(v);
            let logits = net_ref.forward::<NoneTape>(x.clone());
            cross_entropy_with_logits_loss(logits, y.clone()).array()
        });
        let restored = values.clone();
        net.params_mut().get_mut(name).unwrap().copy_from(&restored);
    }
    assert!(total > names.len(), "checked {total} entries");
}

#[test]
fn mlp_with_all_skips_matches_finite_differences() {
    let mut topo = Topology::Mlp(MlpSpec::new(6, vec![5, 4, 4], 3));
    topo.apply_skips(&SkipSelection::All).unwrap();
    assert_eq!(topo.skips().len(), 6);
    check_network(topo, 4, 1000);
}

/// Batch and layer normalisation in training mode, with concatenating and residual edges
/// (identity and projected) around them.
#[test]
fn batch_and_layer_norm_match_finite_differences() {
    for norm in [Norm::Batch, Norm::Layer] {
        let mut mlp = MlpSpec::new(6, vec![5, 5, 4, 4], 3);
        mlp.norm = norm;
        let mut topo = Topology::Mlp(mlp);
        topo.apply_skips(&"0-2,res:1-3,res:2-4".parse().unwrap())
            .unwrap();
        check_network(topo, 6, 1000);
    }
    // A CNN's batch norm, with the paper's pooled-concatenating skips around it.
    let mut cnn = CnnSpec::new(
        ImageShape::new(2, 8, 8),
        vec![vec![3, 3], vec![4, 4], vec![5, 5]],
        3,
    );
    cnn.norm = Norm::Batch;
    let mut topo = Topology::Cnn(cnn);
    topo.apply_skips(&SkipSelection::Paper).unwrap();
    check_network(topo, 3, 40);
}

/// Residual edges on CNNs: identity, and across a stage both shortcuts (projection, pad),
/// with pooled downsampling and post-activation blocks, then strided downsampling and
/// pre-activation ones, both heads, with and without batch norm, beside a concatenating
/// edge, on an odd size (7x5 -> 4x3).
#[test]
fn residual_cnns_match_finite_differences() {
    let orders = [BlockOrder::Post, BlockOrder::Pre];
    for (downsample, order) in [Downsample::Pool, Downsample::Stride]
        .into_iter()
        .zip(orders)
    {
        for shortcut in [Shortcut::Projection, Shortcut::Pad] {
            for norm in [Norm::None, Norm::Batch] {
                let mut cnn =
                    CnnSpec::new(ImageShape::new(2, 7, 5), vec![vec![3, 3, 3], vec![4, 4]], 3);
                cnn.downsample = downsample;
                cnn.shortcut = shortcut;
                cnn.norm = norm;
                cnn.order = order;
                cnn.head = match norm {
                    Norm::None => Head::Flatten,
                    _ => Head::Average,
                };
                let mut topo = Topology::Cnn(cnn);
                topo.apply_skips(&"res:blocks:2,2-5".parse().unwrap())
                    .unwrap_or_else(|e| panic!("{downsample:?} {shortcut:?}: {e}"));
                let Topology::Cnn(c) = &topo else {
                    unreachable!()
                };
                // 1-3 is an identity; 3-5 crosses the stage through the shortcut.
                let residual: Vec<String> = c.residual.iter().map(|e| e.to_string()).collect();
                assert_eq!(residual, ["1-3", "3-5"]);
                check_network(topo, 3, 30);
            }
        }
    }
}

/// A tiny ResNet against PyTorch's (`bench/resnet_fixture.py`): a strided convolution,
/// identity, projection (1x1, stride 2, batch norm) and option-A shortcuts, post- and
/// pre-activation blocks and the global-average-pool head give PyTorch's logits, loss and
/// gradients in training mode and its logits in evaluation mode.
#[test]
fn residual_cnn_equals_pytorchs_resnet() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/resnet_pytorch.json")).unwrap();
    let (c_in, h, w, classes) = (2, 5, 5, 3);
    for (key, shortcut, order) in [
        ("projection", Shortcut::Projection, BlockOrder::Post),
        ("pad", Shortcut::Pad, BlockOrder::Post),
        ("pre", Shortcut::Pad, BlockOrder::Pre),
    ] {
        let case = &fixture[key];
        let mut cnn = CnnSpec::new(
            ImageShape::new(c_in, h, w),
            vec![vec![4, 4, 4], vec![6, 6]],
            classes,
        );
        cnn.norm = Norm::Batch;
        cnn.downsample = Downsample::Stride;
        cnn.head = Head::Average;
        cnn.shortcut = shortcut;
        cnn.order = order;
        let mut topo = Topology::Cnn(cnn);
        topo.apply_skips(&"res:blocks:2".parse().unwrap()).unwrap();
        let dev = Dev::seed_from_u64(0);
        let mut net = Network::<f64, Dev>::new(topo, &dev, 1).unwrap();
        let ours: Vec<&String> = net.params().keys().collect();
        assert_eq!(
            ours.len(),
            case["params"].as_object().unwrap().len(),
            "{key}: {ours:?}"
        );
        equals_fixture(&mut net, case, key, classes, &same_name);
    }
}

/// The numbers `bench/norm_fixture.py` had PyTorch compute.
fn pytorch_fixture() -> serde_json::Value {
    serde_json::from_str(include_str!("fixtures/norm_pytorch.json")).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Ours against PyTorch's, to 1e-7 relative (both in f64).
fn near(what: &str, ours: &[f64], theirs: &[f64]) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= 1e-9 + 1e-7 * b.abs(),
            "{what}[{i}]: {a} vs {b}"
        );
    }
}

/// Loads a fixture case's parameters into `net` (`name_of` maps the fixture's names to
/// ours), trains one pass on its batch and checks PyTorch's logits, loss and gradients, then
/// evaluates its second batch against PyTorch's evaluation logits. Batch norm's running
/// estimates are the caller's to check (the evaluation pass leaves them alone).
fn equals_fixture(
    net: &mut Network<f64, Dev>,
    case: &serde_json::Value,
    what: &str,
    classes: usize,
    name_of: &dyn Fn(&Network<f64, Dev>, &str) -> String,
) {
    let dev = net.device().clone();
    for (key, values) in case["params"].as_object().unwrap() {
        let name = name_of(net, key);
        let param = net.params_mut().get_mut(&name);
        let param = param.unwrap_or_else(|| panic!("{what}: no parameter {name}"));
        param.copy_from(&floats(values));
    }
    let (x, x_eval) = (floats(&case["x"]), floats(&case["x_eval"]));
    let labels = case["labels"].as_array().unwrap();
    let (batch, inputs) = (labels.len(), x.len() / labels.len());
    let mut y = vec![0.0; batch * classes];
    for (b, label) in labels.iter().enumerate() {
        y[b * classes + label.as_u64().unwrap() as usize] = 1.0;
    }
    let logits = net.forward::<OwnedTape<f64, Dev>>(dev.tensor_from_vec(x, (batch, inputs)));
    near(
        &format!("{what} train logits"),
        &logits.as_vec(),
        &floats(&case["train_logits"]),
    );
    let loss = cross_entropy_with_logits_loss(logits, dev.tensor_from_vec(y, (batch, classes)));
    assert!((loss.array() - case["loss"].as_f64().unwrap()).abs() < 1e-9);
    let grads = loss.backward();
    for (key, expected) in case["grads"].as_object().unwrap() {
        let analytic = match &net.params()[&name_of(net, key)] {
            Param::Vector(t) => grads.get(t).as_vec(),
            Param::Matrix(t) => grads.get(t).as_vec(),
        };
        near(&format!("{what} grad {key}"), &analytic, &floats(expected));
    }
    let eval = net.forward::<NoneTape>(dev.tensor_from_vec(x_eval, (batch, inputs)));
    near(
        &format!("{what} eval logits"),
        &eval.as_vec(),
        &floats(&case["eval_logits"]),
    );
}

/// The fixture's names are ours.
fn same_name(_: &Network<f64, Dev>, name: &str) -> String {
    name.to_string()
}

/// skiplab's batch and layer norm against PyTorch's (`bench/norm_fixture.py` wrote the numbers):
/// logits and every gradient in training mode, batch norm's running estimates after that pass
/// (momentum 0.1, unbiased variance), and logits in evaluation mode.
#[test]
fn batch_and_layer_norm_equal_pytorchs() {
    let fixture = pytorch_fixture();
    let (inputs, hidden, classes) = (4, 5, 3);
    for (key, norm) in [("batch", Norm::Batch), ("layer", Norm::Layer)] {
        let case = &fixture[key];
        let mut mlp = MlpSpec::new(inputs, vec![hidden], classes);
        mlp.norm = norm;
        let dev = Dev::seed_from_u64(0);
        let mut net = Network::<f64, Dev>::new(Topology::Mlp(mlp), &dev, 1).unwrap();
        equals_fixture(&mut net, case, key, classes, &same_name);
        if norm == Norm::Batch {
            let running = net.running_estimates();
            near(
                "running mean",
                &running["fc1.running_mean"],
                &floats(&case["running_mean"]),
            );
            near(
                "running var",
                &running["fc1.running_var"],
                &floats(&case["running_var"]),
            );
        }
    }
}

/// A CNN's batch norm is PyTorch's `BatchNorm2d` (per channel, over the batch and the
/// pixels): one convolution, batch norm, ReLU, pool and the classifier against the fixture.
#[test]
fn cnn_batch_norm_equals_pytorchs_batchnorm2d() {
    let fixture = pytorch_fixture();
    let case = &fixture["cnn_batch"];
    let (c_in, c, h, w, classes) = (2, 3, 4, 4, 3);
    let mut cnn = CnnSpec::new(ImageShape::new(c_in, h, w), vec![vec![c]], classes);
    cnn.norm = Norm::Batch;
    let dev = Dev::seed_from_u64(0);
    let mut net = Network::<f64, Dev>::new(Topology::Cnn(cnn), &dev, 1).unwrap();
    // The fixture's names for skiplab's: the one weight block of conv 1 and of the classifier.
    let name_of = |net: &Network<f64, Dev>, key: &str| -> String {
        let prefix = match key {
            "conv" => "conv1.w",
            "gamma" => "conv1.gamma",
            "beta" => "conv1.beta",
            "out" => "out.w",
            _ => "out.b",
        };
        let names: Vec<&String> = net
            .params()
            .keys()
            .filter(|n| n.starts_with(prefix))
            .collect();
        assert_eq!(names.len(), 1, "{key}: {names:?}");
        names[0].clone()
    };
    equals_fixture(&mut net, case, "cnn", classes, &name_of);
    let running = net.running_estimates();
    near(
        "cnn running mean",
        &running["conv1.running_mean"],
        &floats(&case["running_mean"]),
    );
    near(
        "cnn running var",
        &running["conv1.running_var"],
        &floats(&case["running_var"]),
    );
}

#[test]
fn cnn_with_paper_skips_matches_finite_differences() {
    let mut topo = Topology::Cnn(CnnSpec::new(
        ImageShape::new(2, 8, 8),
        vec![vec![3, 3], vec![4, 4], vec![5, 5]],
        3,
    ));
    topo.apply_skips(&SkipSelection::Paper).unwrap();
    check_network(topo, 2, 40);
}

/// The two CNNs above on both Winograd kernels (their few channels would pick im2col), and one
/// wide enough that the automatic choice takes Winograd for every layer but the first.
#[test]
fn cnn_on_the_winograd_kernel_matches_finite_differences() {
    use skiplab::net::cpu_ops::{with_conv_kernel, ConvKernel, WINOGRAD_MIN_CHANNELS};
    for kernel in [ConvKernel::WinogradF2, ConvKernel::WinogradF4] {
        with_conv_kernel(kernel, || {
            for (image, stages) in [
                (
                    ImageShape::new(2, 8, 8),
                    vec![vec![3, 3], vec![4, 4], vec![5, 5]],
                ),
                (
                    ImageShape::new(1, 7, 5),
                    vec![vec![3, 3], vec![4, 4], vec![3, 3]],
                ),
            ] {
                let mut topo = Topology::Cnn(CnnSpec::new(image, stages, 3));
                topo.apply_skips(&SkipSelection::Paper).unwrap();
                check_network(topo, 2, 40);
            }
        });
    }
    let wide = WINOGRAD_MIN_CHANNELS;
    let topo = Topology::Cnn(CnnSpec::new(
        ImageShape::new(1, 5, 6),
        vec![vec![wide, wide], vec![wide]],
        3,
    ));
    check_network(topo, 2, 30);
}

/// Odd sizes (7 -> 4 -> 2 -> 1), as the paper's CNN meets on the 28x28 MNIST family, with
/// skips whose sources are pooled through odd sizes.
#[test]
fn cnn_on_odd_sizes_matches_finite_differences() {
    let mut topo = Topology::Cnn(CnnSpec::new(
        ImageShape::new(1, 7, 5),
        vec![vec![3, 3], vec![4, 4], vec![3, 3]],
        3,
    ));
    topo.apply_skips(&SkipSelection::Paper).unwrap();
    check_network(topo, 2, 40);
}

#[test]
fn cpu_conv_matches_direct_convolution_and_finite_differences() {
    let dev = Dev::seed_from_u64(0);
    let (b, h, w, c, f) = (2, 4, 5, 3, 2);
    let x_vals = random(b * h * w * c, 1);
    let w_vals = random(9 * c * f, 2);
    let index = im2col_index(&dev, b, h, w);
    let run = |xv: &[f64], wv: &[f64]| -> Vec<f64> {
        let x = dev.tensor_from_vec(xv.to_vec(), (b, h, w, c));
        let wt = dev.tensor_from_vec(wv.to_vec(), (9 * c, f));
        conv3x3(x, wt, &index).as_vec()
    };
    // Direct 3x3 "same" convolution, channels-last, weight row = tap * c + channel.
    let out = run(&x_vals, &w_vals);
    for bi in 0..b {
        for y in 0..h as isize {
            for xx in 0..w as isize {
                for fi in 0..f {
                    let mut s = 0.0;
                    for dy in -1..=1isize {
                        for dx in -1..=1isize {
                            let (sy, sx) = (y + dy, xx + dx);
                            if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                                continue;
                            }
                            let tap = ((dy + 1) * 3 + dx + 1) as usize;
                            for ci in 0..c {
                                let xi = ((bi * h + sy as usize) * w + sx as usize) * c + ci;
                                s += x_vals[xi] * w_vals[(tap * c + ci) * f + fi];
                            }
                        }
                    }
                    let oi = ((bi * h + y as usize) * w + xx as usize) * f + fi;
                    assert!((out[oi] - s).abs() < 1e-12, "conv output {oi}");
                }
            }
        }
    }
    // Gradients of a weighted sum of the outputs, for input and weight.
    let proj = random(out.len(), 3);
    let loss = |xv: &[f64], wv: &[f64]| {
        run(xv, wv)
            .iter()
            .zip(&proj)
            .map(|(a, p)| a * p)
            .sum::<f64>()
    };
    let x = dev.tensor_from_vec(x_vals.clone(), (b, h, w, c));
    let wt = dev.tensor_from_vec(w_vals.clone(), (9 * c, f));
    let p = dev.tensor_from_vec(proj.clone(), (b, h, w, f));
    let y = conv3x3(x.leaky_trace(), wt.retaped::<OwnedTape<f64, Dev>>(), &index);
    let grads = (y * p).sum::<Rank0, _>().backward();
    let (gx, gw) = (grads.get(&x).as_vec(), grads.get(&wt).as_vec());
    let mut xv = x_vals.clone();
    check("conv dx", &mut xv, &gx, 0..x_vals.len(), |v| {
        loss(v, &w_vals)
    });
    let mut wv = w_vals.clone();
    check("conv dw", &mut wv, &gw, 0..w_vals.len(), |v| {
        loss(&x_vals, v)
    });
}

#[test]
fn composed_pool_matches_direct_max_and_finite_differences() {
    use skiplab::net::ops::maxpool2_composed;
    let dev = Dev::seed_from_u64(0);
    // Even sizes, and odd ones whose last row/column pools on its own (ceil mode).
    for (b, h, w, c) in [(2usize, 4usize, 6usize, 3usize), (2, 5, 7, 3), (1, 3, 1, 2)] {
        let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
        let vals = random(b * h * w * c, 4);
        for composed in [false, true] {
            let pool = |t: Images<f64, Dev, OwnedTape<f64, Dev>>| {
                if composed {
                    maxpool2_composed(t)
                } else {
                    maxpool2(t)
                }
            };
            let run =
                |v: &[f64]| pool(dev.tensor_from_vec(v.to_vec(), (b, h, w, c)).retaped()).as_vec();
            let out = run(&vals);
            assert_eq!(out.len(), b * oh * ow * c);
            for bi in 0..b {
                for y in 0..oh {
                    for x in 0..ow {
                        for ci in 0..c {
                            let at = |yy: usize, xx: usize| {
                                if yy < h && xx < w {
                                    vals[((bi * h + yy) * w + xx) * c + ci]
                                } else {
                                    f64::NEG_INFINITY
                                }
                            };
                            let m = at(2 * y, 2 * x)
                                .max(at(2 * y + 1, 2 * x))
                                .max(at(2 * y, 2 * x + 1))
                                .max(at(2 * y + 1, 2 * x + 1));
                            assert_eq!(out[((bi * oh + y) * ow + x) * c + ci], m);
                        }
                    }
                }
            }
            let proj = random(out.len(), 5);
            let t = dev.tensor_from_vec(vals.clone(), (b, h, w, c));
            let p = dev.tensor_from_vec(proj.clone(), (b, oh, ow, c));
            let grads = (pool(t.leaky_trace()) * p).sum::<Rank0, _>().backward();
            let g = grads.get(&t).as_vec();
            let mut v = vals.clone();
            check(
                &format!("pool dx {h}x{w} composed={composed}"),
                &mut v,
                &g,
                0..vals.len(),
                |v| run(v).iter().zip(&proj).map(|(a, p)| a * p).sum(),
            );
        }
    }
}

/// A tensor read by two ops (what every skip source is) must receive the sum of both
/// gradients. dfdx 0.13's CPU `slice` gets this wrong, so the nets never slice; this pins
/// the pattern they do use (`with_empty_tape` copies sharing one id).
#[test]
fn tensor_consumed_by_two_ops_accumulates_both_gradients() {
    let dev = Dev::seed_from_u64(0);
    let x_vals = random(3 * 4, 6);
    let w1 = dev.tensor_from_vec(random(4 * 5, 7), (4, 5));
    let w2 = dev.tensor_from_vec(random(5 * 2, 8), (5, 2));
    let w3 = dev.tensor_from_vec(random(5 * 2, 9), (5, 2));
    let f = |x: Tensor<(usize, usize), f64, Dev, OwnedTape<f64, Dev>>| {
        let a = x.matmul(w1.clone()).relu();
        let copy = a.with_empty_tape();
        let left = a.matmul(w2.clone());
        let right = copy.exp().matmul(w3.clone());
        (left * right).sum::<Rank0, _>()
    };
    let x = dev.tensor_from_vec(x_vals.clone(), (3, 4));
    let g = f(x.leaky_trace()).backward().get(&x).as_vec();
    let mut v = x_vals.clone();
    check("shared dx", &mut v, &g, 0..x_vals.len(), |v| {
        f(dev.tensor_from_vec(v.to_vec(), (3, 4)).leaky_trace()).array()
    });
}

/// The custom CPU im2col kernel computes exactly what the composed dfdx ops compute, forward
/// and backward (the composed version is what CUDA runs).
#[test]
fn custom_cpu_conv_equals_the_composed_conv() {
    use skiplab::net::ops::conv3x3_composed;
    let dev = Dev::seed_from_u64(0);
    let (b, h, w, c, f) = (3, 6, 4, 5, 7);
    let x = dev.tensor_from_vec(random(b * h * w * c, 11), (b, h, w, c));
    let wt = dev.tensor_from_vec(random(9 * c * f, 12), (9 * c, f));
    let p = dev.tensor_from_vec(random(b * h * w * f, 13), (b, h, w, f));
    let index = im2col_index(&dev, b, h, w);
    let run = |composed: bool| {
        let (xt, wt2) = (x.leaky_trace(), wt.retaped::<OwnedTape<f64, Dev>>());
        let y = if composed {
            conv3x3_composed(xt, wt2, &index)
        } else {
            conv3x3(xt, wt2, &index)
        };
        let out = y.as_vec();
        let grads = (y * p.clone()).sum::<Rank0, _>().backward();
        (out, grads.get(&x).as_vec(), grads.get(&wt).as_vec())
    };
    let (custom, composed) = (run(false), run(true));
    for (a, b) in [
        (&custom.0, &composed.0),
        (&custom.1, &composed.1),
        (&custom.2, &composed.2),
    ] {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b.iter()) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }
}

/// The custom CPU max-pool equals the composed one, forward and backward (inputs without
/// ties, where the gradient is defined).
#[test]
fn custom_cpu_pool_equals_the_composed_pool() {
    use skiplab::net::ops::maxpool2_composed;
    let dev = Dev::seed_from_u64(0);
    let (b, h, w, c): (usize, usize, usize, usize) = (3, 7, 8, 5);
    let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
    let x = dev.tensor_from_vec(random(b * h * w * c, 21), (b, h, w, c));
    let p = dev.tensor_from_vec(random(b * oh * ow * c, 22), (b, oh, ow, c));
    let run = |composed: bool| {
        let y = if composed {
            maxpool2_composed(x.leaky_trace())
        } else {
            maxpool2(x.leaky_trace())
        };
        let out = y.as_vec();
        let grads = (y * p.clone()).sum::<Rank0, _>().backward();
        (out, grads.get(&x).as_vec())
    };
    assert_eq!(run(false), run(true));
}

/// The CPU's fused dense kernel computes what the composed dfdx ops compute, forward and
/// backward, for every kind of input at once: rows that need a gradient (one tensor read
/// twice, so its gradients must add up), network input rows (no gradient), the 3x3 windows of
/// image batches with and without a gradient (on the CPU one block of columns, one image read
/// twice), plus bias and ReLU.
#[test]
fn custom_cpu_dense_equals_the_composed_dense() {
    use skiplab::net::cpu_ops::{with_conv_kernel, ConvKernel};
    for kernel in [
        ConvKernel::Auto,
        ConvKernel::Im2col,
        ConvKernel::WinogradF2,
        ConvKernel::WinogradF4,
    ] {
        with_conv_kernel(kernel, || {
            // Small (odd sizes: Winograd's edge tiles), and large enough that the matmuls
            // split across threads.
            dense_equals_composed((2, 5, 3, 4), 7, 6);
            dense_equals_composed((4, 8, 8, 16), 70, 40);
            dense_equals_composed((3, 7, 1, 5), 4, 3);
        });
    }
}

/// The Winograd kernel's fused passes split the batch into blocks of samples, at most the
/// batch over the threads: 5 samples in one block (1 thread), in blocks of 3 and 2 (2
/// threads), and of 2, 2 and 1 (3 threads), each equal to the composed ops, with a partial
/// last block and an image read by two groups whose input gradients add up.
#[test]
fn winograd_blocks_of_every_split_equal_the_composed_dense() {
    use skiplab::net::cpu_ops::{with_conv_kernel, ConvKernel};
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        for kernel in [ConvKernel::WinogradF2, ConvKernel::WinogradF4] {
            // The kernel choice is per thread: set it on the pool's.
            pool.install(|| {
                with_conv_kernel(kernel, || dense_equals_composed((5, 9, 9, 16), 7, 6))
            });
        }
    }
}

fn dense_equals_composed((b, h, w, c): (usize, usize, usize, usize), k: usize, n: usize) {
    use skiplab::net::ops::{dense_composed, DenseInput, NetDevice};
    type T = OwnedTape<f64, Dev>;
    let dev = Dev::seed_from_u64(0);
    let m = b * h * w;
    let rows = dev.tensor_from_vec(random(m * k, 40), (m, k));
    let input_rows = dev.tensor_from_vec(random(m * 3, 41), (m, 3));
    let image = dev.tensor_from_vec(random(m * c, 42), (b, h, w, c));
    let input_image = dev.tensor_from_vec(random(m * 2, 43), (b, h, w, 2));
    let weights: Vec<_> = [k, k, 3, 9 * c, 18, 9 * c]
        .iter()
        .enumerate()
        .map(|(i, &k)| dev.tensor_from_vec(random(k * n, 50 + i as u64), (k, n)))
        .collect();
    let bias = dev.tensor_from_vec(random(n, 60), (n,));
    let p = dev.tensor_from_vec(random(m * n, 61), (m, n));
    let index = im2col_index(&dev, b, h, w);
    let run = |composed: bool| {
        // One tape for the rows read twice: the second read shares the first one's id.
        let traced = rows.leaky_trace();
        let again = traced.with_empty_tape();
        let wt = |i: usize| weights[i].retaped::<T>();
        let inputs = vec![
            DenseInput::new(traced, wt(0)),
            DenseInput::new(again, wt(1)),
            DenseInput::network_input(input_rows.clone(), wt(2)),
            DenseInput::conv3x3(image.retaped::<T>(), wt(3), &index),
            DenseInput::conv3x3_network_input(input_image.clone(), wt(4), &index),
            // The image read twice: its gradients add up.
            DenseInput::conv3x3(image.retaped::<T>(), wt(5), &index),
        ];
        let b = Some(bias.retaped::<T>());
        let y = if composed {
            dense_composed(inputs, b, true)
        } else {
            Dev::dense(inputs, b, true)
        };
        let out = y.as_vec();
        let grads = (y * p.clone()).sum::<Rank0, _>().backward();
        let mut all = vec![out, grads.get(&rows).as_vec(), grads.get(&image).as_vec()];
        all.extend(weights.iter().map(|w| grads.get(w).as_vec()));
        all.push(grads.get(&bias).as_vec());
        all
    };
    let (custom, composed) = (run(false), run(true));
    // The ReLU clamps some outputs and passes others.
    assert!(custom[0].contains(&0.0) && custom[0].iter().any(|&v| v > 0.0));
    for (i, (a, b)) in custom.iter().zip(&composed).enumerate() {
        assert_eq!(a.len(), b.len(), "result {i}");
        assert!(a.iter().any(|&v| v != 0.0), "result {i} is all zero");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "result {i}: {x} vs {y}");
        }
    }
}

/// A stride-2 layer on the CPU kernel (im2col over the kept windows only) equals the composed
/// one (the strided gather) and the stride-1 layer subsampled (what PyTorch's `stride=2,
/// padding=1` computes), on odd and even sizes, with two channel groups: values and the
/// gradients of the images and weights.
#[test]
fn strided_windows_equal_the_composed_and_the_subsampled_convolution() {
    use skiplab::net::ops::{
        dense_composed, im2col_index_strided, subsample2, subsample_index, DenseInput, NetDevice,
    };
    type T = OwnedTape<f64, Dev>;
    let dev = Dev::seed_from_u64(0);
    for (b, h, w) in [(2, 6, 6), (3, 5, 7)] {
        let (c1, c2, n) = (3, 2, 4);
        let first = dev.tensor_from_vec(random(b * h * w * c1, 80), (b, h, w, c1));
        let second = dev.tensor_from_vec(random(b * h * w * c2, 81), (b, h, w, c2));
        let w1 = dev.tensor_from_vec(random(9 * c1 * n, 82), (9 * c1, n));
        let w2 = dev.tensor_from_vec(random(9 * c2 * n, 83), (9 * c2, n));
        let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
        let p = dev.tensor_from_vec(random(b * oh * ow * n, 84), (b * oh * ow, n));
        let strided = im2col_index_strided(&dev, b, h, w, 2);
        let dense = im2col_index(&dev, b, h, w);
        let run = |how: usize| {
            let inputs = |index| {
                vec![
                    DenseInput::conv3x3(first.retaped::<T>(), w1.retaped::<T>(), index),
                    DenseInput::conv3x3(second.retaped::<T>(), w2.retaped::<T>(), index),
                ]
            };
            let at_stride_2 = || {
                let inputs = inputs(&strided).into_iter();
                inputs.map(|i| i.strided(2, &strided)).collect()
            };
            let y = match how {
                0 => Dev::dense(at_stride_2(), None, false),
                1 => dense_composed(at_stride_2(), None, false),
                _ => {
                    let full = dense_composed(inputs(&dense), None, false);
                    let index = subsample_index(&dev, b, h, w);
                    subsample2(full.reshape_like(&(b, h, w, n)), &index)
                        .reshape_like(&(b * oh * ow, n))
                }
            };
            let out = y.as_vec();
            let grads = (y * p.clone()).sum::<Rank0, _>().backward();
            let g = |t: &Images<f64, Dev>| grads.get(t).as_vec();
            let gw = |t: &Tensor<(usize, usize), f64, Dev>| grads.get(t).as_vec();
            vec![out, g(&first), g(&second), gw(&w1), gw(&w2)]
        };
        let (custom, composed, subsampled) = (run(0), run(1), run(2));
        for (i, ((a, b), c)) in custom.iter().zip(&composed).zip(&subsampled).enumerate() {
            assert_eq!((a.len(), a.len()), (b.len(), c.len()), "result {i}");
            assert!(a.iter().any(|&v| v != 0.0), "result {i} is all zero");
            for ((x, y), z) in a.iter().zip(b).zip(c) {
                assert!(
                    (x - y).abs() < 1e-12 && (x - z).abs() < 1e-12,
                    "result {i}: {x} {y} {z}"
                );
            }
        }
    }
}

/// The CPU's parallel SGD step gives every parameter and velocity bit for bit what dfdx's own
/// kernel gives, for every momentum and weight decay variant, and leaves its host copy of the
/// parameter equal to it.
#[test]
fn cpu_sgd_step_equals_dfdx_sgd_kernel() {
    use dfdx::optim::{Momentum, WeightDecay};
    use dfdx::tensor_ops::SgdConfig;
    use skiplab::net::ops::NetDevice;
    let dev = Cpu::seed_from_u64(0);
    // Longer than one parallel chunk, and not a multiple of it.
    let len = 40_000;
    let values = |seed| -> Vec<f32> { random(len, seed).iter().map(|&v| v as f32).collect() };
    for momentum in [
        None,
        Some(Momentum::Classic(0.9)),
        Some(Momentum::Nesterov(0.8)),
    ] {
        for weight_decay in [
            None,
            Some(WeightDecay::L2(1e-3)),
            Some(WeightDecay::Decoupled(1e-2)),
        ] {
            let cfg = SgdConfig {
                lr: 0.05,
                momentum,
                weight_decay,
            };
            let mut results = Vec::new();
            for ours in [true, false] {
                let mut param = dev.tensor_from_vec(values(72), (len,));
                let mut velocity = Storage::<f32>::try_alloc_len(&dev, len).unwrap();
                velocity.copy_from_slice(&values(73));
                let mut grad = Storage::<f32>::try_alloc_len(&dev, len).unwrap();
                grad.copy_from_slice(&values(71));
                // Two steps, so the velocity written by the first is read by the second.
                let mut mirror = None;
                for _ in 0..2 {
                    if ours {
                        Cpu::sgd_update(&cfg, &mut param, &mut velocity, &grad, &mut mirror)
                            .unwrap();
                        let mirror = mirror.as_ref().expect("the CPU keeps a host copy");
                        assert_eq!(**mirror, param.as_vec(), "host copy equals the parameter");
                    } else {
                        cfg.try_update(&mut param, &mut velocity, &grad).unwrap();
                    }
                    grad.iter_mut().for_each(|g| *g *= 0.5);
                }
                results.push((param.as_vec(), velocity.to_vec()));
            }
            assert!(
                results[0] == results[1],
                "{momentum:?} {weight_decay:?}: the parallel step differs from dfdx's"
            );
        }
    }
}

/// An MLP with every edge kind: identity residuals (equal widths, from the input too), a
/// projected residual (widths differ, into the output as well) and a concatenation.
fn mixed_mlp(activation: Activation, init: InitScheme) -> Topology {
    let mut mlp = MlpSpec::new(4, vec![4, 4, 4, 5], 3);
    mlp.activation = activation;
    mlp.init = init;
    let mut topo = Topology::Mlp(mlp);
    topo.apply_skips(
        &"res:0-2,res:1-3,res:2-4,0-3,res:1-5,res:3-5"
            .parse()
            .unwrap(),
    )
    .unwrap();
    topo
}

#[test]
fn residual_edges_and_every_activation_match_finite_differences() {
    for activation in Activation::ALL {
        for init in [InitScheme::He, InitScheme::Torch] {
            let topo = mixed_mlp(activation, init);
            let Topology::Mlp(m) = &topo else {
                unreachable!()
            };
            // 0-2 and 1-3 are identities (4 -> 4); 2-4 (4 -> 5), 1-5 and 3-5 (-> 3) project.
            assert_eq!(m.residuals_into(3), [(1, true)]);
            assert_eq!(m.residuals_into(4), [(2, false)]);
            assert_eq!(m.residuals_into(5), [(1, false), (3, false)]);
            check_network(topo, 3, 1000);
        }
    }
}

#[test]
fn a_projected_residual_starts_at_zero_and_an_identity_one_changes_the_function() {
    let dev = Dev::seed_from_u64(0);
    let x = dev.tensor_from_vec(random(3 * 4, 5), (3usize, 4usize));
    let base = mixed_mlp(Activation::Tanh, InitScheme::He);
    let net = Network::<f64, Dev>::new(base.clone(), &dev, 1).unwrap();
    let before = net.forward::<NoneTape>(x.clone()).as_vec();
    // 2-4 is a projection: switching it on (set_topology) adds a zero block and keeps the
    // function.
    let mut without = base.clone();
    without.set_skip(SkipEdge::new(2, 4), false).unwrap();
    let mut net2 = Network::<f64, Dev>::new(without.clone(), &dev, 1).unwrap();
    let off = net2.forward::<NoneTape>(x.clone()).as_vec();
    net2.set_topology(base.clone(), 1).unwrap();
    assert_eq!(
        net2.forward::<NoneTape>(x.clone()).as_vec(),
        off,
        "projection starts at zero"
    );
    // An identity residual has no weights: turning it on changes the function at once.
    let mut identity_off = base.clone();
    identity_off.set_skip(SkipEdge::new(1, 3), false).unwrap();
    let mut net3 = Network::<f64, Dev>::new(identity_off, &dev, 1).unwrap();
    let off = net3.forward::<NoneTape>(x.clone()).as_vec();
    net3.set_topology(base, 1).unwrap();
    assert_ne!(net3.forward::<NoneTape>(x).as_vec(), off);
    assert_eq!(before.len(), 9);
    assert_eq!(net.param_count(), net.topology().param_count());
}

/// dfdx 0.13's exact GELU (`accurate_gelu`) has a wrong gradient (at x = -0.5: 0.0596 where
/// the derivative is 0.1325); its tanh approximation is right, and is what skiplab uses.
#[test]
fn dfdx_exact_gelu_gradient_is_wrong_and_the_tanh_one_is_right() {
    let dev = Dev::seed_from_u64(0);
    let x0 = -0.5f64;
    let x = dev.tensor([x0]);
    let numeric = |f: &dyn Fn(f64) -> f64| (f(x0 + STEP) - f(x0 - STEP)) / (2.0 * STEP);
    let exact = x
        .leaky_trace()
        .accurate_gelu()
        .sum()
        .backward()
        .get(&x)
        .array()[0];
    let n = numeric(&|v| dev.tensor([v]).accurate_gelu().array()[0]);
    assert!(
        !close(exact, n),
        "if dfdx fixed it, use accurate_gelu again"
    );
    let tanh = x.leaky_trace().fast_gelu().sum().backward().get(&x).array()[0];
    let n = numeric(&|v| dev.tensor([v]).fast_gelu().array()[0]);
    assert!(close(tanh, n), "{tanh} vs {n}");
}

/// In f32 the Winograd kernels stay within float noise of im2col on a layer of the paper
/// CNN's size (64 channels in and out, 14x14, weights at He scale): F(4x4, 3x3)'s larger
/// coefficients cost some precision, bounded here (relative to the largest value).
#[test]
fn winograd_in_f32_stays_close_to_im2col() {
    use skiplab::net::cpu_ops::{with_conv_kernel, ConvKernel};
    let dev = Dev::seed_from_u64(0);
    let (b, h, w, c, f) = (2, 14, 14, 64, 64);
    let f32s = |n: usize, seed: u64, scale: f64| -> Vec<f32> {
        random(n, seed)
            .iter()
            .map(|&v| (v * scale) as f32)
            .collect()
    };
    let he = (6.0 / (9.0 * c as f64)).sqrt();
    let (x, wv, p) = (
        f32s(b * h * w * c, 70, 1.0),
        f32s(9 * c * f, 71, he),
        f32s(b * h * w * f, 72, 1.0),
    );
    let index = im2col_index(&dev, b, h, w);
    let run = |kernel| {
        with_conv_kernel(kernel, || {
            let xt = dev.tensor_from_vec(x.clone(), (b, h, w, c));
            let wt = dev.tensor_from_vec(wv.clone(), (9 * c, f));
            let pt = dev.tensor_from_vec(p.clone(), (b, h, w, f));
            let y = conv3x3(
                xt.leaky_trace(),
                wt.retaped::<OwnedTape<f32, Dev>>(),
                &index,
            );
            let out = y.as_vec();
            let grads = (y * pt).sum::<Rank0, _>().backward();
            [out, grads.get(&xt).as_vec(), grads.get(&wt).as_vec()]
        })
    };
    let reference = run(ConvKernel::Im2col);
    for kernel in [ConvKernel::WinogradF2, ConvKernel::WinogradF4] {
        let got = run(kernel);
        let names = ["output", "input gradient", "weight gradient"];
        for (what, (a, r)) in names.iter().zip(got.iter().zip(&reference)) {
            let scale = r.iter().fold(0f32, |m, v| m.max(v.abs()));
            let error = a.iter().zip(r).fold(0f32, |m, (a, r)| m.max((a - r).abs()));
            eprintln!("{kernel:?} {what}: relative error {:e}", error / scale);
            assert!(
                error / scale < 2e-5,
                "{kernel:?} {what}: relative error {}",
                error / scale
            );
        }
    }
}

/// The CPU's batch-norm kernel against the composed ops it replaces, over several blocks of
/// rows, with and without ReLU and a residual: outputs, batch statistics and the gradients
/// of the input, scale, shift and residual.
#[test]
fn custom_cpu_batch_norm_equals_the_composed_one() {
    use skiplab::net::cpu_ops::batch_norm;
    use skiplab::net::ops::batch_norm_composed;
    let dev = Dev::seed_from_u64(0);
    // Rows over several parallel blocks; units fewer and more than a vector's lanes.
    for (m, n) in [(700, 6), (300, 37)] {
        let z = dev.tensor_from_vec(
            random(m * n, 31).iter().map(|v| 3.0 * v + 0.5).collect(),
            (m, n),
        );
        let gamma = dev.tensor_from_vec(random(n, 32), (n,));
        let beta = dev.tensor_from_vec(random(n, 33), (n,));
        let weights = dev.tensor_from_vec(random(m * n, 34), (m, n));
        let shortcut = dev.tensor_from_vec(random(m * n, 35), (m, n));
        let run = |custom: bool, relu: bool, residual: bool| {
            let traced = (
                z.clone().leaky_traced(),
                gamma.clone().leaky_traced(),
                beta.clone().leaky_traced(),
            );
            let r = residual.then(|| shortcut.clone().leaky_traced());
            let (y, mean, var) = match custom {
                true => batch_norm(traced.0, traced.1, traced.2, 1e-5, relu, r),
                false => batch_norm_composed(traced.0, traced.1, traced.2, 1e-5, relu, r),
            };
            let values = y.as_vec();
            let grads = (y * weights.clone()).sum().backward();
            let g = |t: &Tensor<(usize, usize), f64, Dev>| grads.get(t).as_vec();
            let v = |t: &Tensor<(usize,), f64, Dev>| grads.get(t).as_vec();
            let r = if residual { g(&shortcut) } else { vec![1.0] };
            (values, mean, var, g(&z), v(&gamma), v(&beta), r)
        };
        let same = |what: &str, x: &[f64], y: &[f64]| {
            assert_eq!(x.len(), y.len());
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert!(
                    (p - q).abs() <= 1e-10 + 1e-9 * q.abs(),
                    "{what}[{i}]: {p} vs {q}"
                );
            }
        };
        // With a residual (a shortcut added before the ReLU) and without.
        for (relu, residual) in [(false, false), (true, false), (false, true), (true, true)] {
            let (a, b) = (run(true, relu, residual), run(false, relu, residual));
            same("output", &a.0, &b.0);
            same("mean", &a.1, &b.1);
            same("variance", &a.2, &b.2);
            same("grad z", &a.3, &b.3);
            same("grad gamma", &a.4, &b.4);
            same("grad beta", &a.5, &b.5);
            same("grad residual", &a.6, &b.6);
            // ReLU zeroes some outputs, or the check would not see it.
            assert_eq!(relu, a.0.iter().filter(|&&v| v == 0.0).count() > m * n / 10);
        }
    }
}

/// The CPU's fused dense layer and batch norm against the composed ops (dense, then batch
/// norm), on a layer with a rows input and an image's 3x3 windows, on both window kernels,
/// with and without ReLU and a residual: outputs, batch statistics and the gradients of both
/// inputs, both weights, scale, shift and residual.
#[test]
fn fused_dense_and_batch_norm_equal_the_composed_ops() {
    use skiplab::net::cpu_ops::{dense_batch_norm, with_conv_kernel, ConvKernel};
    use skiplab::net::ops::{batch_norm_composed, dense_composed, DenseInput};
    let dev = Dev::seed_from_u64(0);
    // 16 channels: Winograd takes the windows under the automatic choice.
    let (b, h, w, c, k, n) = (3, 6, 5, 16, 7, 19);
    let m = b * h * w;
    let rows = dev.tensor_from_vec(random(m * k, 40), (m, k));
    let image = dev.tensor_from_vec(random(m * c, 41), (b, h, w, c));
    let w_rows = dev.tensor_from_vec(random(k * n, 42), (k, n));
    let w_image = dev.tensor_from_vec(random(9 * c * n, 43), (9 * c, n));
    let gamma = dev.tensor_from_vec(random(n, 44), (n,));
    let beta = dev.tensor_from_vec(random(n, 45), (n,));
    let shortcut = dev.tensor_from_vec(random(m * n, 46), (m, n));
    let weights = dev.tensor_from_vec(random(m * n, 47), (m, n));
    let index = im2col_index(&dev, b, h, w);
    type T = OwnedTape<f64, Dev>;
    let run = |fused: bool, relu: bool, residual: bool| {
        let inputs = vec![
            DenseInput::new(rows.retaped::<T>(), w_rows.retaped::<T>()),
            DenseInput::conv3x3(image.retaped::<T>(), w_image.retaped::<T>(), &index),
        ];
        let (gamma_t, beta_t) = (gamma.retaped::<T>(), beta.retaped::<T>());
        let r = residual.then(|| shortcut.retaped::<T>());
        let (y, mean, var) = match fused {
            true => dense_batch_norm(inputs, gamma_t, beta_t, 1e-5, relu, r),
            false => {
                let z = dense_composed(inputs, None, false);
                batch_norm_composed(z, gamma_t, beta_t, 1e-5, relu, r)
            }
        };
        let values = y.as_vec();
        let grads = (y * weights.clone()).sum().backward();
        [
            values,
            mean,
            var,
            grads.get(&rows).as_vec(),
            grads.get(&image).as_vec(),
            grads.get(&w_rows).as_vec(),
            grads.get(&w_image).as_vec(),
            grads.get(&gamma).as_vec(),
            grads.get(&beta).as_vec(),
            if residual {
                grads.get(&shortcut).as_vec()
            } else {
                vec![]
            },
        ]
    };
    let names = [
        "output",
        "mean",
        "variance",
        "grad rows",
        "grad image",
        "grad rows weight",
        "grad image weight",
        "grad gamma",
        "grad beta",
        "grad residual",
    ];
    for kernel in [ConvKernel::Auto, ConvKernel::Im2col] {
        for (relu, residual) in [(false, false), (true, false), (false, true), (true, true)] {
            let (a, r) = with_conv_kernel(kernel, || {
                (run(true, relu, residual), run(false, relu, residual))
            });
            for (what, (a, r)) in names.iter().zip(a.iter().zip(&r)) {
                assert_eq!(a.len(), r.len(), "{what}");
                for (i, (p, q)) in a.iter().zip(r).enumerate() {
                    assert!(
                        (p - q).abs() <= 1e-9 + 1e-8 * q.abs(),
                        "{kernel:?} relu {relu} residual {residual} {what}[{i}]: {p} vs {q}"
                    );
                }
            }
            // ReLU zeroes some outputs, or the check would not see it.
            assert_eq!(
                relu,
                a[0].iter().filter(|&&v| v == 0.0).count() > m * n / 10
            );
        }
    }
}

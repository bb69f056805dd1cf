//! Exported networks checked by engines no one here wrote: ONNX Runtime runs the exported
//! ONNX model and PyTorch the exported `model.py`, and both compute the logits skiplab's own
//! forward pass computes (to 1e-5 of the largest logit); the `onnx` package's checker and
//! strict shape inference accept the file. They run where a Python with the packages is
//! found (`SKIPLAB_PYTHON` for onnxruntime, `SKIPLAB_TORCH_PYTHON` for torch, else `python3`;
//! `.ci/run` makes the first); elsewhere they say so and skip, so `cargo test` passes in a
//! user's clone. The evaluator's own host pass for MLPs is held to the forward pass the same
//! way, on the same networks.

use std::path::{Path, PathBuf};
use std::process::Command;

use dfdx::prelude::*;
use rand::{Rng, SeedableRng};
use skiplab::net::{HostParam, Network};
use skiplab::topology::{
    Activation, BlockOrder, CnnSpec, Downsample, ImageShape, MlpSpec, Norm, Shortcut, SkipEdge,
    SkipSelection, Topology,
};

/// A Python that imports `modules` (from the environment variable `var`, else `python3`),
/// or why there is none.
fn python_with(var: &str, modules: &str) -> Result<String, String> {
    let python = std::env::var(var).unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    match ok {
        true => Ok(python),
        false => Err(format!(
            "{python} cannot import {modules} (pip install them, or set {var})"
        )),
    }
}

/// A Python that runs `scripts/onnx_run.py`.
fn python() -> Result<String, String> {
    python_with("SKIPLAB_PYTHON", "onnxruntime, numpy")
}

/// A Python that runs `scripts/torch_run.py`.
fn torch_python() -> Result<String, String> {
    python_with("SKIPLAB_TORCH_PYTHON", "torch, safetensors, numpy")
}

/// Random weights for `topology`, batch norm's scale, shift and running estimates included.
fn random_params(topology: &Topology, seed: u64) -> Vec<HostParam> {
    let dev = Cpu::seed_from_u64(seed);
    let net = Network::<f32, Cpu>::new(topology.clone(), &dev, seed).expect("a valid topology");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut params = net.export();
    for p in &mut params {
        let range = match p.name.rsplit('.').next() {
            Some("running_var") => 0.5..2.0,
            Some("running_mean" | "beta" | "b") => -0.5..0.5,
            Some("gamma") => 0.5..1.5,
            // Residual projections start at zero: give them something to carry.
            Some(n) if n.starts_with('r') => -0.2..0.2,
            _ => continue,
        };
        for v in &mut p.values {
            *v = rng.gen_range(range.clone());
        }
    }
    params
}

/// `rows` inputs of `topology`, uniform in [0, 1) as pixels are.
fn random_inputs(topology: &Topology, rows: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..rows * topology.input_len())
        .map(|_| rng.gen_range(0.0..1.0))
        .collect()
}

fn logits(topology: &Topology, params: &[HostParam], x: &[f32]) -> Vec<f32> {
    let dev = Cpu::seed_from_u64(0);
    let mut net = Network::<f32, Cpu>::new(topology.clone(), &dev, 0).unwrap();
    net.import(params).unwrap();
    let rows = x.len() / topology.input_len();
    net.forward::<NoneTape>(dev.tensor_from_vec(x.to_vec(), (rows, topology.input_len())))
        .as_vec()
}

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Runs `scripts/<script>` on `target` (a model file or an export folder) and `x` (`rows`
/// rows): the logits it wrote, and what it printed.
fn run_script(
    python: &str,
    script: &str,
    target: &Path,
    x: &[f32],
    rows: usize,
) -> (Vec<f32>, String) {
    let dir = match target.is_dir() {
        true => target,
        false => target.parent().unwrap(),
    };
    let (input, output) = (dir.join("x.f32"), dir.join("y.f32"));
    write_f32(&input, x);
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(script);
    let out = Command::new(python)
        .arg(script)
        .arg(target)
        .arg(&input)
        .arg(rows.to_string())
        .arg((x.len() / rows).to_string())
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        read_f32(&output),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// ONNX Runtime's logits for `model` on `x`, and what checked the file.
fn onnx_runtime(python: &str, model: &Path, x: &[f32], rows: usize) -> (Vec<f32>, String) {
    run_script(python, "onnx_run.py", model, x, rows)
}

/// PyTorch's logits for the module exported in `dir` on `x`.
fn pytorch(python: &str, dir: &Path, x: &[f32], rows: usize) -> Vec<f32> {
    run_script(python, "torch_run.py", dir, x, rows).0
}

/// The largest difference between two sets of logits, relative to the largest of `ours`.
fn worst(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    let scale = ours.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0.0f32, f32::max)
}

/// The cases: the paper's EMNIST MLP with every dense skip, a deep residual MLP with batch
/// norm, projections with layer norm and GELU, and random edges of both kinds.
fn cases() -> Vec<(&'static str, Topology)> {
    let mut paper = Topology::Mlp(MlpSpec::new(784, vec![128, 256, 256], 26));
    paper
        .apply_skips(&"all".parse::<SkipSelection>().unwrap())
        .unwrap();
    let mut deep = MlpSpec::new(784, vec![64; 12], 10);
    deep.norm = Norm::Batch;
    let mut deep = Topology::Mlp(deep);
    deep.apply_skips(&"res:chain:2".parse::<SkipSelection>().unwrap())
        .unwrap();
    let mut projected = MlpSpec::new(784, vec![128, 64, 128, 32], 10);
    projected.norm = Norm::Layer;
    projected.activation = Activation::Gelu;
    for (edge, residual) in [
        ((0, 2), true),
        ((2, 4), true),
        ((1, 3), false),
        ((1, 5), false),
    ] {
        let edge = SkipEdge::new(edge.0, edge.1);
        projected.skips.insert(edge);
        if residual {
            projected.residual.insert(edge);
        }
    }
    let mut cases = vec![
        ("paper EMNIST MLP, all dense skips", paper),
        ("residual MLP, 12 layers, batch norm", deep),
        ("projections, layer norm, GELU", Topology::Mlp(projected)),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for (i, activation) in [Activation::Tanh, Activation::Sigmoid, Activation::Relu]
        .into_iter()
        .enumerate()
    {
        let widths: Vec<usize> = (0..6).map(|_| [16, 32][rng.gen_range(0..2)]).collect();
        let mut mlp = MlpSpec::new(784, widths, 10);
        mlp.activation = activation;
        mlp.norm = [Norm::None, Norm::Batch, Norm::Layer][i];
        for edge in mlp.candidate_edges() {
            if rng.gen_bool(0.3) {
                mlp.skips.insert(edge);
                if rng.gen_bool(0.5) {
                    mlp.residual.insert(edge);
                }
            }
        }
        let name = [
            "random edges, tanh",
            "random edges, sigmoid, batch norm",
            "random edges, layer norm",
        ][i];
        cases.push((name, Topology::Mlp(mlp)));
    }
    cases.extend(cnn_cases());
    cases
}

/// The network of a preset in `presets/`.
fn preset(file: &str) -> Topology {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("presets")
        .join(file);
    let experiment = skiplab::experiment::Experiment::load(&path).unwrap();
    experiment.topology().unwrap()
}

/// The paper's CNNs (vanilla, skip, reinforced) and on Fashion-MNIST's 28 x 28 (7 x 7 pooled
/// to 4 x 4: an odd size), ResNet-20 (strided, option A, average pool), a pre-activation
/// ResNet with projections, and random edges of both kinds.
fn cnn_cases() -> Vec<(&'static str, Topology)> {
    let mut pre = CnnSpec::he_cifar(ImageShape::new(1, 28, 28), 1, 10);
    pre.order = BlockOrder::Pre;
    pre.shortcut = Shortcut::Projection;
    let mut pre = Topology::Cnn(pre);
    pre.apply_skips(&"res:blocks:2".parse::<SkipSelection>().unwrap())
        .unwrap();
    let mut random = CnnSpec::new(
        ImageShape::new(2, 12, 12),
        vec![vec![8, 8], vec![8, 8], vec![16, 16]],
        10,
    );
    random.norm = Norm::Batch;
    random.shortcut = Shortcut::Projection;
    random.downsample = Downsample::Pool;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for edge in random.candidate_edges() {
        if rng.gen_bool(0.5) {
            random.skips.insert(edge);
            if rng.gen_bool(0.5) && random.check_residual(edge).is_ok() {
                random.residual.insert(edge);
            }
        }
    }
    let random = Topology::Cnn(random);
    random.validate().unwrap();
    vec![
        ("paper CNN, vanilla", preset("cifar-cnn-vanilla.ron")),
        (
            "paper CNN, skips 1-4 2-5 4-7 5-8",
            preset("cifar-cnn-skip.ron"),
        ),
        ("paper CNN, reinforced", preset("cifar-cnn-reinforced.ron")),
        (
            "paper CNN with skips, 28 x 28",
            preset("fashion-cnn-skip.ron"),
        ),
        ("ResNet-20, option A", preset("resnet20.ron")),
        ("pre-activation ResNet-8, projections", pre),
        ("random CNN edges, batch norm", random),
    ]
}

#[test]
fn onnx_runtime_computes_what_skiplab_computes() {
    let python = match python() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    for (k, (name, topology)) in cases().into_iter().enumerate() {
        let params = random_params(&topology, k as u64 + 1);
        let rows = 32;
        let x = random_inputs(&topology, rows, k as u64);
        let ours = logits(&topology, &params, &x);
        let path: PathBuf = tmp.path().join(format!("case{k}.onnx"));
        std::fs::write(
            &path,
            skiplab::onnx::model_bytes(&topology, &params, name).unwrap(),
        )
        .unwrap();
        let (theirs, checked) = onnx_runtime(&python, &path, &x, rows);
        let worst = worst(&ours, &theirs);
        assert!(
            worst <= 1e-5,
            "{name}: logits differ by {worst} of the largest"
        );
        eprintln!(
            "{name} ({}): worst difference {worst:.1e} of the largest logit; {}",
            topology.summary(),
            checked.trim()
        );
    }
}

/// The evaluator runs an MLP on the CPU on host buffers (`Network::dense_stack`: every
/// source's products with all the layers it feeds as one gemm, layers finished in place):
/// its logits, loss and accuracy are the forward pass's, on every MLP case (concatenating
/// skips, identity and projected residual edges, batch norm's running estimates, layer norm,
/// each activation), with a row count that splits unevenly between threads.
#[test]
fn the_evaluators_host_pass_computes_what_the_forward_pass_computes() {
    let mlps = cases()
        .into_iter()
        .filter(|(_, t)| matches!(t, Topology::Mlp(_)));
    for (k, (name, topology)) in mlps.enumerate() {
        let params = random_params(&topology, k as u64 + 11);
        let rows = 301;
        let x = random_inputs(&topology, rows, k as u64 + 3);
        let expected = logits(&topology, &params, &x);
        let dev = Cpu::seed_from_u64(0);
        let mut net = Network::<f32, Cpu>::new(topology.clone(), &dev, 0).unwrap();
        net.import(&params).unwrap();
        let stack = net
            .dense_stack()
            .expect("an MLP on the CPU runs on host buffers");
        let ours = stack.forward(&x, rows);
        let worst = worst(&ours, &expected);
        assert!(
            worst <= 1e-5,
            "{name}: logits differ by {worst} of the largest"
        );

        let classes = topology.classes();
        let labels: Vec<u8> = (0..rows).map(|i| (i * 7 % classes) as u8).collect();
        let one_hot: Vec<f32> = labels
            .iter()
            .flat_map(|&l| (0..classes).map(move |c| f32::from(c == l as usize)))
            .collect();
        let expected_loss = cross_entropy_with_logits_loss(
            dev.tensor_from_vec(expected.clone(), (rows, classes)),
            dev.tensor_from_vec(one_hot, (rows, classes)),
        )
        .as_vec()[0] as f64;
        let hits = expected
            .chunks(classes)
            .zip(&labels)
            .filter(|(row, &l)| row.iter().all(|&v| v <= row[l as usize]))
            .count();
        let samples = skiplab::data::Samples { images: x, labels };
        let (loss, accuracy) = skiplab::train::Evaluator::default().evaluate(&net, &samples);
        assert!(
            (loss - expected_loss).abs() <= 1e-5 * expected_loss.abs().max(1.0),
            "{name}: loss {loss} against {expected_loss}"
        );
        assert_eq!(accuracy, hits as f64 / rows as f64, "{name}: accuracy");
    }
}

/// Where the host pass would not compute what a forward pass without a tape does, there is
/// none: a CNN, and batch norm while the network is set to use the batch's statistics.
#[test]
fn the_host_pass_is_only_taken_where_it_computes_the_forward_pass() {
    let dev = Cpu::seed_from_u64(0);
    let (_, cnn) = cnn_cases().remove(0);
    assert!(Network::<f32, Cpu>::new(cnn, &dev, 0)
        .unwrap()
        .dense_stack()
        .is_none());
    let mut mlp = MlpSpec::new(784, vec![32, 32], 10);
    mlp.norm = Norm::Batch;
    let net = Network::<f32, Cpu>::new(Topology::Mlp(mlp), &dev, 0).unwrap();
    assert!(net.dense_stack().is_some());
    net.set_norm_mode(Some(skiplab::net::NormMode::Train));
    assert!(net.dense_stack().is_none());
}

mod common;

/// `skiplab export RUN --onnx FILE` and `--pytorch DIR` on a saved run: the file holds the run's network with
/// the weights of the epoch asked for (ONNX Runtime's logits equal skiplab's on them, where
/// it is installed); more than one run, or a CNN, is refused with a message.
#[test]
fn export_writes_a_saved_runs_network_as_onnx_and_as_pytorch() {
    use prost::Message;
    let tmp = tempfile::tempdir().unwrap();
    let saves = tmp.path().join("saves");
    let env = [("SKIPLAB_SAVES_DIR", saves.as_path())];
    let train = [
        "train",
        "--widths",
        "32,32,32",
        "--skips",
        "res:0-2,1-3",
        "--norm",
        "batch",
        "--epochs",
        "2",
        "--seeds",
        "2",
    ];
    let (code, out, err) = common::skiplab(&train, &env);
    assert_eq!(code, 0, "{out}{err}");
    let mut runs = skiplab::runs::list_runs(&saves);
    let (run, other) = (runs.remove(0).unwrap(), runs.remove(0).unwrap());
    let export = |flag: &str, to: &Path| {
        let args = ["export", &run.id, flag, to.to_str().unwrap(), "--best"];
        common::skiplab(&args, &env)
    };
    let file = tmp.path().join("net.onnx");
    let (code, _, err) = export("--onnx", &file);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("as ONNX (opset 20"), "{err}");
    let model =
        skiplab::onnx::proto::ModelProto::decode(std::fs::read(&file).unwrap().as_slice()).unwrap();
    let graph = model.graph.unwrap();
    assert_eq!(graph.name, run.id);
    assert_eq!(
        (graph.input[0].name.as_str(), graph.output[0].name.as_str()),
        ("input", "logits")
    );
    let names: Vec<&str> = graph.node.iter().map(|n| n.name.as_str()).collect();
    for expected in [
        "fc1",
        "fc2.r0.matmul",
        "fc2.add_r0",
        "fc3.concat",
        "fc3.batch_norm",
        "logits",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    let best = skiplab::runs::read_weights(&run.dir.join(skiplab::runs::BEST)).unwrap();
    if let Ok(python) = python() {
        let x: Vec<f32> = (0..8 * 784).map(|i| (i % 255) as f32 / 255.0).collect();
        let ours = logits(&best.topology, &best.params, &x);
        let (theirs, _) = onnx_runtime(&python, &file, &x, 8);
        assert!(worst(&ours, &theirs) <= 1e-5);
    }
    let (code, _, err) = common::skiplab(&["export", &run.id, &other.id, "--onnx", "x.onnx"], &env);
    assert_ne!(code, 0);
    assert!(err.contains("exports one run"), "{err}");
    // The PyTorch module beside the best epoch's weights, as they were saved.
    let dir = tmp.path().join("torch");
    let (code, _, err) = export("--pytorch", &dir);
    assert_eq!(code, 0, "{err}");
    let module = std::fs::read_to_string(dir.join("model.py")).unwrap();
    assert!(
        module.contains("self.fc2_r0 = nn.Linear(784, 32, bias=False)"),
        "{module}"
    );
    assert!(module.contains("torch.cat([h2, h1], dim=1)"), "{module}");
    assert_eq!(
        std::fs::read(dir.join(skiplab::runs::WEIGHTS)).unwrap(),
        std::fs::read(run.dir.join(skiplab::runs::BEST)).unwrap()
    );
    if let Ok(python) = torch_python() {
        let x: Vec<f32> = (0..8 * 784).map(|i| (i % 253) as f32 / 253.0).collect();
        let ours = logits(&best.topology, &best.params, &x);
        assert!(worst(&ours, &pytorch(&python, &dir, &x, 8)) <= 1e-5);
    }
    let (code, _, err) = common::skiplab(&["export", &run.id, "--csv", "--best"], &env);
    assert_ne!(code, 0);
    assert!(err.contains("--best chooses the weights"), "{err}");
}

/// The exported `model.py` with the weights a run saves computes skiplab's logits in PyTorch,
/// for every case ONNX Runtime checks. (torch is a large download: this runs where it
/// imports, not in CI.)
#[test]
fn pytorch_computes_what_skiplab_computes() {
    let python = match torch_python() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    for (k, (name, topology)) in cases().into_iter().enumerate() {
        let params = random_params(&topology, k as u64 + 1);
        let dir = tmp.path().join(format!("case{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        let weights = dir.join(skiplab::runs::WEIGHTS);
        let bytes = skiplab::runs::weights_bytes(&weights, &topology, &params, 1, name).unwrap();
        std::fs::write(&weights, bytes).unwrap();
        std::fs::write(
            dir.join("model.py"),
            skiplab::pytorch::module(&topology, name),
        )
        .unwrap();
        let rows = 16;
        let x = random_inputs(&topology, rows, k as u64);
        let ours = logits(&topology, &params, &x);
        let worst = worst(&ours, &pytorch(&python, &dir, &x, rows));
        assert!(
            worst <= 1e-5,
            "{name}: logits differ by {worst} of the largest"
        );
        eprintln!("{name}: PyTorch's logits within {worst:.1e} of the largest");
    }
}

/// A trained CNN from the command line (a concatenating skip across a pool, a projected
/// residual edge, batch norm): the ONNX graph has the lab's layer names and the edges as
/// `Concat` of a `MaxPool` and `Add` of a projection; `model.py` spells both out; ONNX Runtime
/// and PyTorch compute skiplab's logits where they are installed.
#[test]
fn export_writes_a_saved_cnn_as_onnx_and_as_pytorch() {
    use prost::Message;
    let tmp = tempfile::tempdir().unwrap();
    let saves = tmp.path().join("saves");
    let env = [("SKIPLAB_SAVES_DIR", saves.as_path())];
    let train = [
        "train",
        "--model",
        "cnn",
        "--widths",
        "8,8/16,16",
        "--skips",
        "1-4,res:2-5",
        "--norm",
        "batch",
        "--epochs",
        "1",
    ];
    let (code, out, err) = common::skiplab(&train, &env);
    assert_eq!(code, 0, "{out}{err}");
    let run = skiplab::runs::list_runs(&saves).remove(0).unwrap();
    let file = tmp.path().join("cnn.onnx");
    let args = ["export", &run.id, "--onnx", file.to_str().unwrap()];
    let (code, _, err) = common::skiplab(&args, &env);
    assert_eq!(code, 0, "{err}");
    let model =
        skiplab::onnx::proto::ModelProto::decode(std::fs::read(&file).unwrap().as_slice()).unwrap();
    let nodes: Vec<(String, String)> = model
        .graph
        .unwrap()
        .node
        .into_iter()
        .map(|n| (n.name, n.op_type))
        .collect();
    for (name, op) in [
        ("pool3", "MaxPool"),
        ("conv4.skip1.maxpool", "MaxPool"),
        ("conv4", "Concat"),
        ("conv5.r2.conv", "Conv"),
        ("conv5.r2.batch_norm", "BatchNormalization"),
        ("conv5.add_2", "Add"),
        ("conv5", "Relu"),
        ("logits", "Identity"),
    ] {
        let node = (name.to_string(), op.to_string());
        assert!(nodes.contains(&node), "{node:?} not in {nodes:?}");
    }
    let dir = tmp.path().join("torch");
    let args = ["export", &run.id, "--pytorch", dir.to_str().unwrap()];
    let (code, _, err) = common::skiplab(&args, &env);
    assert_eq!(code, 0, "{err}");
    let module = std::fs::read_to_string(dir.join("model.py")).unwrap();
    for line in [
        "h4 = torch.cat([F.relu(self.conv4_norm(self.conv4(h3))), halve(h1)], dim=1)",
        "h5 = F.relu(self.conv5_norm(self.conv5(h4)) + self.conv5_r2_norm(self.conv5_r2(h3)))",
        "self.conv5 = nn.Conv2d(24, 16, 3, stride=1, padding=1, bias=False)",
    ] {
        assert!(module.contains(line), "{line} not in {module}");
    }
    let weights = skiplab::runs::read_weights(&run.dir.join(skiplab::runs::WEIGHTS)).unwrap();
    let x = random_inputs(&weights.topology, 8, 3);
    let ours = logits(&weights.topology, &weights.params, &x);
    if let Ok(python) = python() {
        assert!(worst(&ours, &onnx_runtime(&python, &file, &x, 8).0) <= 1e-5);
    }
    if let Ok(python) = torch_python() {
        assert!(worst(&ours, &pytorch(&python, &dir, &x, 8)) <= 1e-5);
    }
}

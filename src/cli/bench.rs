//! `skiplab bench`: training throughput and memory of the paper's networks beside a PyTorch
//! twin measured in the same run, and (`--data`) load times against the I/O floor.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};

use crate::outln;
use skiplab::data::{self, Dataset, DatasetName, PreparedData, Samples};
use skiplab::device as devices;
use skiplab::net::ops::NetDevice;
use skiplab::net::optim::OptimizerConfig;
use skiplab::topology::{CnnSpec, ImageShape, MlpSpec, Norm, SkipSelection, Topology};
use skiplab::train::{TrainConfig, Trainer};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Training steps per MLP measurement (memory is read at step 100 and at the end).
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Training steps per CNN measurement.
    #[arg(long, default_value_t = 150)]
    cnn_steps: usize,
    /// Which models to measure.
    #[arg(long, value_enum, default_value_t = BenchModels::All)]
    models: BenchModels,
    /// Rounds per model; each reports the median, skiplab and PyTorch interleaved.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Python with `torch` for the PyTorch twin (bench/torch_twin.py); skipped when absent.
    #[arg(long, env = "SKIPLAB_PYTHON", default_value = "python3")]
    python: String,
    /// Do not run the PyTorch twin.
    #[arg(long)]
    no_torch: bool,
    /// Also measure the CNN with skips on the composed ops, to show what the custom CPU
    /// kernels gain.
    #[arg(long)]
    composed_too: bool,
    /// Also measure each CNN on the im2col kernel (`SKIPLAB_CPU_CONV=im2col`) every round, to
    /// show what the Winograd kernel gains.
    #[arg(long)]
    im2col_too: bool,
    /// Where to measure.
    #[arg(long, value_enum, default_value_t = BenchDevice::Cpu)]
    device: BenchDevice,
    /// Also measure at the larger batch sizes (MLP 256, CNN 128).
    #[arg(long)]
    large_batches: bool,
    /// Measure data loading instead: full Fashion-MNIST (gzip) from the data directory and
    /// a generated 60,000-record CIFAR-10 folder, against just reading (and gunzipping) the
    /// same bytes.
    #[arg(long)]
    data: bool,
    /// Where `--data` finds fashion-mnist/ (e.g. ../shared/data).
    #[arg(long, env = "SKIPLAB_DATA_DIR", default_value_os_t = skiplab::folders::default_data_dir())]
    data_dir: PathBuf,
    /// Internal: measure one model in this process and print one JSON line.
    #[arg(long, hide = true)]
    single: Option<String>,
    #[arg(long, hide = true)]
    batch: Option<usize>,
    #[arg(long, hide = true)]
    composed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchModels {
    All,
    Mlp,
    /// The paper's CNNs and the ResNet rows.
    Cnn,
    /// `resnet20` and `plain20` alone.
    Resnet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchDevice {
    Cpu,
    Cuda,
}

/// Resident memory of this process in MiB (Linux): `VmRSS` now or `VmHWM` (the peak).
fn memory_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn synthetic(shape: ImageShape, classes: usize, n: usize) -> Arc<PreparedData> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let samples = Samples {
        images: (0..n * shape.len()).map(|_| rng.gen::<f32>()).collect(),
        labels: (0..n).map(|_| rng.gen_range(0..classes as u8)).collect(),
    };
    let dataset = Dataset {
        name: "synthetic".into(),
        shape,
        class_names: (0..classes).map(|c| c.to_string()).collect(),
        train: samples.clone(),
        test: Samples {
            images: samples.images[..shape.len()].to_vec(),
            labels: samples.labels[..1].to_vec(),
        },
    };
    Arc::new(PreparedData::prepare(&dataset, 0.0, 1))
}

/// One measurement, as the `--single` child prints it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Measurement {
    samples_per_sec: f64,
    rss_at_100: Option<f64>,
    rss_at_end: Option<f64>,
    peak_rss_mib: Option<f64>,
}

fn bench_one<D: NetDevice<f32>>(
    dev: &D,
    topology: Topology,
    batch: usize,
    steps: usize,
) -> Result<Measurement> {
    let (shape, classes) = match &topology {
        Topology::Mlp(m) => (ImageShape::new(1, 1, m.input), m.classes),
        Topology::Cnn(c) => (c.input, c.classes),
    };
    let data = synthetic(shape, classes, batch * 50);
    let config = TrainConfig {
        optimizer: OptimizerConfig::sgd(0.01, 0.9, 0.0),
        batch_size: batch,
        epochs: 1,
        seed: 1,
        schedule: None,
    };
    let mut trainer = Trainer::new(topology, data.clone(), config, dev)?;
    let batches: Vec<Vec<usize>> = (0..50)
        .map(|b| (b * batch..(b + 1) * batch).collect())
        .collect();
    let warmup = 10.min(steps);
    let mut rss_at_100 = None;
    let mut start = Instant::now();
    for step in 0..steps {
        if step == warmup {
            start = Instant::now();
        }
        trainer
            .train_step(&batches[step % batches.len()])
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if step + 1 == 100 {
            rss_at_100 = memory_mib("VmRSS:");
        }
    }
    let timed = (steps - warmup).max(1);
    Ok(Measurement {
        samples_per_sec: (timed * batch) as f64 / start.elapsed().as_secs_f64(),
        rss_at_100,
        rss_at_end: memory_mib("VmRSS:"),
        peak_rss_mib: memory_mib("VmHWM:"),
    })
}

#[cfg(feature = "cuda")]
fn bench_cuda(topology: Topology, batch: usize, steps: usize) -> Result<Measurement> {
    devices::probe_cuda().map_err(|e| anyhow::anyhow!("no usable GPU: {e}"))?;
    let dev = dfdx::prelude::Cuda::try_build(0, 1)
        .map_err(|e| anyhow::anyhow!("cannot start CUDA: {e}"))?;
    bench_one(&dev, topology, batch, steps)
}

#[cfg(not(feature = "cuda"))]
fn bench_cuda(_: Topology, _: usize, _: usize) -> Result<Measurement> {
    Err(devices::DeviceError::NotBuilt.into())
}

/// The benchmark's models: name, topology, batch size, description.
fn bench_model(name: &str) -> Result<(Topology, usize, &'static str)> {
    let mlp = |input: usize, hidden: Vec<usize>, classes: usize| -> Result<Topology> {
        let mut t = Topology::Mlp(MlpSpec::new(input, hidden, classes));
        t.apply_skips(&SkipSelection::All)?;
        Ok(t)
    };
    let cnn = |stages: Vec<Vec<usize>>, skips: SkipSelection| -> Result<Topology> {
        let mut t = Topology::Cnn(CnnSpec::new(ImageShape::new(3, 32, 32), stages, 10));
        t.apply_skips(&skips)?;
        Ok(t)
    };
    let paper = || vec![vec![32, 32], vec![64, 64], vec![128, 128]];
    Ok(match name {
        "mlp-paper" => (
            mlp(784, vec![128, 256, 256], 26)?,
            64,
            "mlp 784-128-256-256-26, all skips",
        ),
        "mlp-cifar" => (
            mlp(3072, vec![512, 256, 256], 10)?,
            64,
            "mlp 3072-512-256-256-10, all skips",
        ),
        "cnn-vanilla" => (
            cnn(paper(), SkipSelection::None)?,
            32,
            "cnn 3x32x32 paper, vanilla",
        ),
        "cnn-vanilla-bn" => {
            let mut t = cnn(paper(), SkipSelection::None)?;
            if let Topology::Cnn(c) = &mut t {
                c.norm = Norm::Batch;
            }
            (t, 32, "cnn 3x32x32 paper, vanilla, batch norm")
        }
        "cnn-skip" => (
            cnn(paper(), SkipSelection::Paper)?,
            32,
            "cnn 3x32x32 paper, skips 1-4,2-5,4-7,5-8",
        ),
        "cnn-reinforced" => (
            cnn(
                vec![vec![32, 32], vec![96, 96], vec![224, 224]],
                SkipSelection::None,
            )?,
            32,
            "cnn 3x32x32 reinforced vanilla (96/224)",
        ),
        "resnet20" | "plain20" => {
            let mut t = Topology::Cnn(CnnSpec::he_cifar(ImageShape::new(3, 32, 32), 3, 10));
            let residual = name == "resnet20";
            let skips = if residual { "res:blocks:2" } else { "none" };
            t.apply_skips(&skips.parse()?)?;
            let label = if residual {
                "resnet20 3x32x32, batch norm, option A"
            } else {
                "plain20 3x32x32, batch norm (no shortcuts)"
            };
            (t, 128, label)
        }
        other => bail!("unknown benchmark model `{other}`"),
    })
}

/// The CPU's model name and the SIMD width its kernels use, for the header: ratios between
/// machines differ with both.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let name = info.lines().find_map(|l| {
        l.strip_prefix("model name")?
            .split_once(':')
            .map(|(_, v)| v.trim())
    })?;
    let avx512 = info
        .lines()
        .any(|l| l.starts_with("flags") && l.contains(" avx512f"));
    Some(format!("{name}{}", if avx512 { ", AVX-512" } else { "" }))
}

/// Each round's rates and ratio, in round order: the machine's speed can drift during a run
/// (a shared VM's did by 1.8x within an hour), and the two programs of one round ran back to
/// back, so the spread of these ratios shows how far the ratio of the medians can be trusted.
fn per_round_line(name: &str, ours: &[f64], theirs: &[f64]) -> String {
    let rates = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ratios = ours
        .iter()
        .zip(theirs)
        .map(|(o, t)| format!("{:.2}x", o / t))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "  {name} per round: skiplab {}/s, torch {}/s, ratio {ratios}",
        rates(ours),
        rates(theirs)
    )
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs one measurement of this binary in a child process (clean memory figures per model).
fn measure_skiplab(
    model: &str,
    batch: usize,
    steps: usize,
    device: BenchDevice,
    composed: bool,
    conv: Option<&str>,
) -> Result<Measurement> {
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    if let Some(conv) = conv {
        cmd.env("SKIPLAB_CPU_CONV", conv);
    }
    cmd.args([
        "bench",
        "--single",
        model,
        "--batch",
        &batch.to_string(),
        "--steps",
        &steps.to_string(),
    ]);
    if device == BenchDevice::Cuda {
        cmd.args(["--device", "cuda"]);
    }
    if composed {
        cmd.arg("--composed");
    }
    let out = cmd.output()?;
    if !out.status.success() {
        bail!(
            "measuring {model}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim())
        .with_context(|| format!("reading the measurement of {model}: {line}"))
}

/// Runs the PyTorch twin; `None` when it could not run.
fn measure_torch(
    python: &str,
    model: &str,
    batch: usize,
    steps: usize,
    device: BenchDevice,
    threads: usize,
    channels_last: bool,
) -> Result<Measurement> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/torch_twin.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .args([
            "--model",
            model,
            "--batch",
            &batch.to_string(),
            "--steps",
            &steps.to_string(),
        ])
        .args(["--threads", &threads.to_string()])
        .args(channels_last.then_some("--channels-last"))
        .args([
            "--device",
            if device == BenchDevice::Cuda {
                "cuda"
            } else {
                "cpu"
            },
        ])
        .output()?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(Measurement {
        samples_per_sec: v["samples_per_sec"].as_f64().context("twin output")?,
        rss_at_100: None,
        rss_at_end: None,
        peak_rss_mib: v["peak_rss_mib"].as_f64(),
    })
}

fn torch_available(python: &str) -> Option<String> {
    let out = std::process::Command::new(python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn bench(args: BenchArgs) -> Result<ExitCode> {
    if args.data {
        return bench_data(&args.data_dir, args.rounds.max(1));
    }
    if let Some(model) = &args.single {
        // The child: one measurement, one JSON line.
        skiplab::net::cpu_ops::set_force_composed(args.composed);
        let (topology, default_batch, _) = bench_model(model)?;
        let batch = args.batch.unwrap_or(default_batch);
        let m = match args.device {
            BenchDevice::Cpu => {
                // As a CPU training run does (see `cpu_worker_pool_here`).
                let _pool = skiplab::train::cpu_worker_pool_here();
                bench_one(
                    &skiplab::net::cpu_ops::training_device(1),
                    topology,
                    batch,
                    args.steps,
                )?
            }
            BenchDevice::Cuda => bench_cuda(topology, batch, args.steps)?,
        };
        outln!("{}", serde_json::to_string(&m)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let torch = if args.no_torch {
        None
    } else {
        torch_available(&args.python)
    };
    let device = if args.device == BenchDevice::Cuda {
        "cuda"
    } else {
        "cpu"
    };
    outln!(
        "skiplab bench on {device} ({}): {} CPU threads, {} rounds (median), {} steps per MLP, {} per CNN, 10 of them warm-up",
        cpu_model().unwrap_or_else(|| "CPU model unknown".into()),
        threads,
        args.rounds,
        args.steps,
        args.cnn_steps
    );
    if device == "cpu" {
        outln!(
            "CPU 3x3 convolutions: {} (SKIPLAB_CPU_CONV); GFLOP/s counts a direct convolution's multiply-adds",
            skiplab::net::cpu_ops::conv_kernel_name()
        );
    }
    match &torch {
        Some(v) => outln!(
            "PyTorch twin: torch {v} via {}, {threads} threads, same models and batches",
            args.python
        ),
        None => outln!(
            "PyTorch twin: not run (`{}` cannot import torch; set --python)",
            args.python
        ),
    }
    let mut names: Vec<(&str, bool)> = Vec::new();
    if matches!(args.models, BenchModels::All | BenchModels::Mlp) {
        names.extend([("mlp-paper", false), ("mlp-cifar", false)]);
    }
    if matches!(args.models, BenchModels::All | BenchModels::Cnn) {
        // The batch-norm row right after its plain twin: the norm's cost is their ratio.
        names.extend([
            ("cnn-vanilla", true),
            ("cnn-vanilla-bn", true),
            ("cnn-skip", true),
            ("cnn-reinforced", true),
        ]);
    }
    if matches!(
        args.models,
        BenchModels::All | BenchModels::Cnn | BenchModels::Resnet
    ) {
        names.extend([("resnet20", true), ("plain20", true)]);
    }
    outln!(
        "{:<44} {:>5} {:>10} {:>7} {:>16} {:>7} {:>9} {:>9} {:>9}",
        "model",
        "batch",
        "skiplab/s",
        "GFLOP/s",
        "torch/s",
        "ratio",
        "RSS@100",
        "RSS@end",
        "peak MiB"
    );
    let mut grew = false;
    // skiplab's median rate by model and batch, for the rows compared with each other.
    let mut rates: Vec<(&str, usize, f64)> = Vec::new();
    for (name, is_cnn) in names {
        let (topology, default_batch, label) = bench_model(name)?;
        // Training work per sample: the forward product and the two backward ones (inputs'
        // and weights' gradients), 2 FLOPs per multiply-add.
        let flops_per_sample = 6.0 * topology.macs_per_sample() as f64;
        let mut batches = vec![default_batch];
        let large = if is_cnn { 128 } else { 256 };
        if args.large_batches && large != default_batch {
            batches.push(large);
        }
        for batch in batches {
            let steps = if is_cnn { args.cnn_steps } else { args.steps };
            // PyTorch's CNNs twice a round: NCHW (its default) and channels_last (its best
            // eager CPU setting); the ratio is against the faster.
            let settings: &[bool] = if is_cnn { &[false, true] } else { &[false] };
            let mut ours = Vec::new();
            let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); settings.len()];
            let mut last = None;
            let im2col_too = args.im2col_too && is_cnn && args.device == BenchDevice::Cpu;
            let mut im2col = Vec::new();
            for _ in 0..args.rounds {
                let m = measure_skiplab(name, batch, steps, args.device, false, None)?;
                ours.push(m.samples_per_sec);
                last = Some(m);
                if im2col_too {
                    let m =
                        measure_skiplab(name, batch, steps, args.device, false, Some("im2col"))?;
                    im2col.push(m.samples_per_sec);
                }
                for (k, &cl) in settings.iter().enumerate() {
                    if torch.is_none() {
                        break;
                    }
                    match measure_torch(&args.python, name, batch, steps, args.device, threads, cl)
                    {
                        Ok(t) => theirs[k].push(t.samples_per_sec),
                        Err(e) => eprintln!("PyTorch twin failed on {name}: {e}"),
                    }
                }
            }
            let m = last.expect("at least one round");
            let per_round = ours;
            let ours = median(&per_round);
            rates.push((name, batch, ours));
            if !im2col.is_empty() {
                let im2col = median(&im2col);
                eprintln!(
                    "  skiplab {name}: im2col {im2col:.0}/s, configured kernel {ours:.0}/s: {:.2}x",
                    ours / im2col
                );
            }
            let medians: Vec<Option<f64>> = theirs
                .iter()
                .map(|t| (!t.is_empty()).then(|| median(t)))
                .collect();
            let best = medians
                .iter()
                .enumerate()
                .filter_map(|(k, m)| m.map(|m| (k, m)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((k, _)) = best {
                if args.rounds > 1 {
                    eprintln!("{}", per_round_line(name, &per_round, &theirs[k]));
                }
            }
            let (torch_text, ratio) = match best {
                None => ("-".to_string(), "-".to_string()),
                Some((k, t)) => {
                    let setting = match (settings.len(), settings[k]) {
                        (1, _) => "",
                        (_, true) => " (NHWC)",
                        (_, false) => " (NCHW)",
                    };
                    (format!("{t:.0}{setting}"), format!("{:.2}x", ours / t))
                }
            };
            if let [Some(nchw), Some(nhwc)] = medians[..] {
                eprintln!("  torch {name}: NCHW {nchw:.0}/s, channels_last {nhwc:.0}/s");
            }
            let gflops = ours * flops_per_sample / 1e9;
            if let (Some(a), Some(b)) = (m.rss_at_100, m.rss_at_end) {
                // Allow allocator noise; a leak of one batch per step would be far larger.
                grew |= b > a + 16.0;
            }
            let mib = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
            outln!(
                "{label:<44} {batch:>5} {ours:>10.0} {gflops:>7.1} {torch_text:>16} {ratio:>7} {:>9} {:>9} {:>9}",
                mib(m.rss_at_100),
                mib(m.rss_at_end),
                mib(m.peak_rss_mib)
            );
        }
    }
    // What batch norm costs: the same CNN with and without it, measured in this run.
    for &(name, batch, plain) in &rates {
        let normed = rates
            .iter()
            .find(|(n, b, _)| *n == "cnn-vanilla-bn" && *b == batch && name == "cnn-vanilla");
        if let Some((_, _, normed)) = normed {
            outln!(
                "batch norm costs {:+.0}% per step on the paper's vanilla CNN at batch {batch} (cnn-vanilla-bn against cnn-vanilla)",
                100.0 * (plain / normed - 1.0)
            );
        }
    }
    if args.composed_too && args.device == BenchDevice::Cpu && args.models != BenchModels::Mlp {
        let (_, batch, label) = bench_model("cnn-skip")?;
        let custom = measure_skiplab("cnn-skip", batch, args.cnn_steps, args.device, false, None)?;
        let composed = measure_skiplab("cnn-skip", batch, args.cnn_steps, args.device, true, None)?;
        outln!(
            "{label}: custom CPU kernels {:.0}/s vs composed dfdx ops {:.0}/s: {:.2}x",
            custom.samples_per_sec,
            composed.samples_per_sec,
            custom.samples_per_sec / composed.samples_per_sec
        );
    }
    if grew {
        outln!("memory: GREW from step 100 to the end (more than 16 MiB)");
        Ok(ExitCode::from(1))
    } else {
        outln!("memory: steady from step 100 to the end (within 16 MiB) where a run had 100 steps");
        Ok(ExitCode::SUCCESS)
    }
}

/// Median wall time of `rounds` runs of `f`, in seconds.
fn median_seconds<T>(rounds: usize, mut f: impl FnMut() -> Result<T>) -> Result<f64> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        std::hint::black_box(f()?);
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// `skiplab bench --data`: load times against the I/O floor measured in the same run.
fn bench_data(data_dir: &std::path::Path, rounds: usize) -> Result<ExitCode> {
    use skiplab::data::{cifar, idx};
    let fashion = data_dir.join("fashion-mnist");
    if !fashion.is_dir() {
        bail!(
            "{}: missing; --data times Fashion-MNIST from the data directory (e.g. --data-dir ../shared/data)",
            fashion.display()
        );
    }
    outln!("skiplab bench --data: median of {rounds} rounds; reference = reading (and gunzipping) the same bytes");
    outln!(
        "{:<44} {:>8} {:>10} {:>12} {:>7}  target",
        "load",
        "records",
        "load s",
        "reference s",
        "ratio"
    );
    let mut missed = 0;
    let mut row = |what: &str, records: usize, load: f64, reference: f64| -> Result<()> {
        let ok = load < 1.0;
        missed += usize::from(!ok);
        outln!(
            "{what:<44} {records:>8} {load:>10.3} {reference:>12.3} {:>6.2}x  {} (< 1 s)",
            load / reference,
            if ok { "met" } else { "MISSED" }
        );
        Ok(())
    };
    let files: Vec<PathBuf> = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    .iter()
    .map(|f| idx::find(&fashion, f))
    .collect::<Result<_, _>>()?;
    let reference = median_seconds(rounds, || {
        files
            .iter()
            .map(|f| Ok(idx::maybe_gunzip(&std::fs::read(f)?, f)?.len()))
            .sum::<Result<usize>>()
    })?;
    let mut records = 0;
    let load = median_seconds(rounds, || {
        let d = data::load(DatasetName::FashionMnist, data_dir)?;
        records = d.train.len() + d.test.len();
        Ok(d)
    })?;
    row("Fashion-MNIST, 4 gzip IDX files", records, load, reference)?;

    let tmp = tempfile::tempdir()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut batch = vec![0u8; 10_000 * cifar::RECORD];
    for name in cifar::TRAIN_BATCHES.iter().chain([&cifar::TEST_BATCH]) {
        rng.fill(&mut batch[..]);
        for record in batch.chunks_mut(cifar::RECORD) {
            record[0] %= 10;
        }
        std::fs::write(tmp.path().join(name), &batch)?;
    }
    let reference = median_seconds(rounds, || {
        cifar::TRAIN_BATCHES
            .iter()
            .chain([&cifar::TEST_BATCH])
            .map(|n| Ok(std::fs::read(tmp.path().join(n))?.len()))
            .sum::<Result<usize>>()
    })?;
    let load = median_seconds(rounds, || {
        let d = cifar::load_dir(tmp.path())?;
        records = d.train.len() + d.test.len();
        Ok(d)
    })?;
    row(
        "CIFAR-10 format, 6 generated batch files",
        records,
        load,
        reference,
    )?;
    Ok(if missed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_round_ratios_pair_each_round_with_its_own() {
        let line = per_round_line(
            "cnn-vanilla",
            &[665.0, 1033.4, 1010.0],
            &[492.0, 595.0, 500.0],
        );
        assert_eq!(
            line,
            "  cnn-vanilla per round: skiplab 665 1033 1010/s, torch 492 595 500/s, ratio 1.35x 1.74x 2.02x"
        );
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 4.0);
    }
}

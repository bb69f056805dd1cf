//! `skiplab bench`: training throughput and memory of the paper's networks beside a PyTorch
//! twin measured in the same run, and (`--data`) load times against the I/O floor.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use crate::outln;
pub use common::BenchDevice;
use common::{
    bench_model, cpu_model, measure_skiplab, measure_torch, median, median_of_measured, memory_mib,
    synthetic, torch_available, torch_columns, Job, Measurement,
};
use skiplab::device as devices;
use skiplab::net::ops::NetDevice;
use skiplab::net::optim::OptimizerConfig;
use skiplab::topology::Topology;
use skiplab::train::{TrainConfig, Trainer};

mod common;
mod data;
mod eval;

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
    /// Rounds per model, skiplab and PyTorch interleaved; a row reports the median rates and
    /// the median of the rounds' own ratios.
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
    /// Measure training at the models' default batch sizes only (MLP 64, CNN 32; ResNets 128),
    /// not also at the larger ones (MLP 256, CNN 128).
    #[arg(long)]
    default_batches_only: bool,
    /// Leave out the forward-only rows (evaluating 1,000 examples a call, as the analyses do).
    #[arg(long, conflicts_with = "eval_only")]
    no_eval: bool,
    /// Only the forward-only rows, no training.
    #[arg(long)]
    eval_only: bool,
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
    /// Internal, with --single: time forward-only evaluation instead of training.
    #[arg(long, hide = true)]
    eval: bool,
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

fn bench_one<D: NetDevice<f32>>(
    dev: &D,
    topology: Topology,
    batch: usize,
    steps: usize,
) -> Result<Measurement> {
    let data = synthetic(&topology, batch * 50);
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
fn bench_cuda(topology: Topology, batch: usize, steps: usize, eval: bool) -> Result<Measurement> {
    devices::probe_cuda().map_err(|e| anyhow::anyhow!("no usable GPU: {e}"))?;
    let dev = dfdx::prelude::Cuda::try_build(0, 1)
        .map_err(|e| anyhow::anyhow!("cannot start CUDA: {e}"))?;
    match eval {
        true => eval::measure_here(&dev, topology, batch, steps),
        false => bench_one(&dev, topology, batch, steps),
    }
}

#[cfg(not(feature = "cuda"))]
fn bench_cuda(_: Topology, _: usize, _: usize, _: bool) -> Result<Measurement> {
    Err(devices::DeviceError::NotBuilt.into())
}

pub fn bench(args: BenchArgs) -> Result<ExitCode> {
    if args.data {
        return data::bench_data(&args.data_dir, args.rounds.max(1));
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
                let dev = skiplab::net::cpu_ops::training_device(1);
                match args.eval {
                    true => eval::measure_here(&dev, topology, batch, args.steps)?,
                    false => bench_one(&dev, topology, batch, args.steps)?,
                }
            }
            BenchDevice::Cuda => bench_cuda(topology, batch, args.steps, args.eval)?,
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
        "skiplab bench on {device} ({}): {} CPU threads, {} rounds (median rates; ratio: median of the rounds' ratios), {} steps per MLP, {} per CNN, 10 of them warm-up",
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
    if args.eval_only {
        names.clear();
    }
    if !names.is_empty() {
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
    }
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
        if !args.default_batches_only && large != default_batch {
            batches.push(large);
        }
        for batch in batches {
            let steps = if is_cnn { args.cnn_steps } else { args.steps };
            // PyTorch's CNNs twice a round: NCHW (its default) and channels_last (its best
            // eager CPU setting); the ratio is against the faster.
            let settings: &[bool] = if is_cnn { &[false, true] } else { &[false] };
            let mut ours = Vec::new();
            let mut theirs: Vec<Vec<Option<f64>>> = vec![Vec::new(); settings.len()];
            let mut last = None;
            let im2col_too = args.im2col_too && is_cnn && args.device == BenchDevice::Cpu;
            let mut im2col = Vec::new();
            let job = Job {
                model: name,
                batch,
                steps,
                device: args.device,
                eval: false,
            };
            for _ in 0..args.rounds {
                let m = measure_skiplab(job, false, None)?;
                ours.push(m.samples_per_sec);
                last = Some(m);
                if im2col_too {
                    let m = measure_skiplab(job, false, Some("im2col"))?;
                    im2col.push(m.samples_per_sec);
                }
                for (k, &cl) in settings.iter().enumerate() {
                    if torch.is_none() {
                        break;
                    }
                    let rate = measure_torch(&args.python, job, threads, cl)
                        .inspect_err(|e| eprintln!("PyTorch twin failed on {name}: {e}"));
                    theirs[k].push(rate.ok().map(|t| t.samples_per_sec));
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
            let medians: Vec<Option<f64>> = theirs.iter().map(|t| median_of_measured(t)).collect();
            let (torch_text, ratio) = torch_columns(name, &per_round, &theirs, settings);
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
    if !args.no_eval {
        let mut models = Vec::new();
        if matches!(args.models, BenchModels::All | BenchModels::Mlp) {
            models.extend(["mlp-paper", "mlp-cifar"]);
        }
        if matches!(args.models, BenchModels::All | BenchModels::Cnn) {
            models.extend(["cnn-vanilla", "cnn-skip", "cnn-reinforced"]);
        }
        let python = torch.is_some().then_some(args.python.as_str());
        eval::rows(&models, args.rounds, args.device, python, threads)?;
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
        let job = Job {
            model: "cnn-skip",
            batch,
            steps: args.cnn_steps,
            device: args.device,
            eval: false,
        };
        let custom = measure_skiplab(job, false, None)?;
        let composed = measure_skiplab(job, true, None)?;
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

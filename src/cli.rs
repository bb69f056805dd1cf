//! The headless commands: `train` and `bench`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use dfdx::prelude::*;
use rand::{Rng, SeedableRng};

use skiplab::data::{self, Dataset, DatasetName, PreparedData, Samples};
use skiplab::device::{self as devices, DeviceChoice};
use skiplab::experiment::{Experiment, Model, Skips};
use skiplab::net::ops::NetDevice;
use skiplab::net::optim::OptimizerConfig;
use skiplab::runs;
use skiplab::topology::{CnnSpec, ImageShape, MlpSpec, SkipSelection, Topology};
use skiplab::train::{self, RunStatus, Schedule, TrainConfig, TrainEvent, Trainer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    Mlp,
    Cnn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerKind {
    Sgd,
    Adam,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// CUDA when a usable GPU is found (in a `--features cuda` build), else the CPU.
    Auto,
    Cpu,
    Cuda,
}

impl From<DeviceKind> for DeviceChoice {
    fn from(kind: DeviceKind) -> Self {
        match kind {
            DeviceKind::Auto => DeviceChoice::Auto,
            DeviceKind::Cpu => DeviceChoice::Cpu,
            DeviceKind::Cuda => DeviceChoice::Cuda,
        }
    }
}

/// Where a run trains, finds its data and is saved (shared by train, resume, reproduce).
#[derive(Args, Debug)]
pub struct Place {
    /// Where to train.
    #[arg(long, value_enum, default_value_t = DeviceKind::Auto)]
    device: DeviceKind,
    /// Folder holding one folder per data set (see `skiplab data`).
    #[arg(long, env = "SKIPLAB_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Where runs are saved, one folder each.
    #[arg(long, env = "SKIPLAB_SAVES_DIR", default_value = "saves")]
    saves: PathBuf,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Run the experiment in this preset file (RON, see presets/); --epochs, --seed,
    /// --batch, --device and --data-dir still apply.
    #[arg(long, conflicts_with_all = ["model", "widths", "skips", "dataset", "optimizer", "lr", "momentum", "weight_decay", "val_fraction"])]
    preset: Option<PathBuf>,
    /// Network family.
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp)]
    model: ModelKind,
    /// Hidden widths of an MLP (`128,256`), or CNN stages separated by `/`
    /// (`32,32/64,64/128,128`). Defaults to the paper's networks.
    #[arg(long)]
    widths: Option<String>,
    /// Skip edges: `all`, `none`, `paper` (all for an MLP, 1-4,2-5,4-7,5-8 for the CNN) or
    /// pairs like `0-2,1-3`. MLP layer 0 is the input; CNN layers count convs and pools from 1.
    #[arg(long, default_value = "none")]
    skips: String,
    /// Data set.
    /// Data set: builtin, mnist, fashion-mnist, emnist-letters or cifar10 (all but builtin
    /// from the data directory; see `skiplab data`).
    #[arg(long, default_value = "builtin")]
    dataset: DatasetName,
    #[arg(long, value_enum, default_value_t = OptimizerKind::Sgd)]
    optimizer: OptimizerKind,
    /// Learning rate (default 0.01 for SGD, 0.001 for Adam).
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// SGD momentum (0 for plain SGD).
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    momentum: f64,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    weight_decay: f64,
    /// Batch size [default: 64, or the preset's].
    #[arg(long)]
    batch: Option<usize>,
    /// Epochs [default: 5, or the preset's].
    #[arg(long)]
    epochs: Option<usize>,
    /// Seeds initialisation, the validation split and batch order [default: 1, or the
    /// preset's].
    #[arg(long)]
    seed: Option<u64>,
    /// Share of the training set held out for validation.
    #[arg(long, default_value_t = 0.1)]
    val_fraction: f64,
    #[command(flatten)]
    place: Place,
    /// Do not save this run.
    #[arg(long)]
    no_save: bool,
    /// Print one JSON object per line (saving, epoch, skips_enabled, ended, seeds) instead
    /// of a table, for scripts.
    #[arg(long)]
    json: bool,
    /// Train this many seeds (--seed, --seed + 1, ...) and report mean ± standard deviation.
    #[arg(long, default_value_t = 1)]
    seeds: usize,
}

fn parse_widths(text: &str) -> Result<Vec<Vec<usize>>> {
    text.split('/')
        .map(|stage| {
            stage
                .split(',')
                .map(|w| {
                    w.trim().parse::<usize>().with_context(|| {
                        format!("--widths: `{}` is not a width in `{text}`", w.trim())
                    })
                })
                .collect()
        })
        .collect()
}

/// Builds the topology the flags describe for data of `shape` with `classes` classes.
fn topology_from_args(args: &TrainArgs, shape: ImageShape, classes: usize) -> Result<Topology> {
    let mut topology = match args.model {
        ModelKind::Mlp => {
            let stages = parse_widths(args.widths.as_deref().unwrap_or("128,256"))?;
            if stages.len() != 1 {
                bail!("--widths: an MLP takes one list of widths like `128,256`, without `/`");
            }
            Topology::Mlp(MlpSpec::new(shape.len(), stages.concat(), classes))
        }
        ModelKind::Cnn => {
            let stages = parse_widths(args.widths.as_deref().unwrap_or("32,32/64,64/128,128"))?;
            Topology::Cnn(CnnSpec::new(shape, stages, classes))
        }
    };
    topology.validate()?;
    let selection: SkipSelection = args.skips.parse()?;
    topology.apply_skips(&selection)?;
    Ok(topology)
}

fn optimizer_from(
    kind: OptimizerKind,
    lr: Option<f64>,
    momentum: f64,
    weight_decay: f64,
) -> Result<OptimizerConfig> {
    let config = match kind {
        OptimizerKind::Sgd => OptimizerConfig::sgd(lr.unwrap_or(0.01), momentum, weight_decay),
        OptimizerKind::Adam => OptimizerConfig::adam(lr.unwrap_or(0.001), weight_decay),
    };
    if !(config.lr() > 0.0 && config.lr().is_finite()) {
        bail!("--lr must be a positive number");
    }
    if !(0.0..1.0).contains(&momentum) {
        bail!("--momentum must be in [0, 1)");
    }
    if !(config.weight_decay() >= 0.0 && config.weight_decay().is_finite()) {
        bail!("--weight-decay must be zero or positive");
    }
    Ok(config)
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

/// The experiment the flags (or the preset) describe, checked.
fn experiment_from_args(args: &TrainArgs) -> Result<(Experiment, String)> {
    if let Some(path) = &args.preset {
        let mut experiment = Experiment::load(path)?;
        if let Some(epochs) = args.epochs {
            experiment.epochs = epochs;
        }
        if let Some(seed) = args.seed {
            experiment.seed = seed;
        }
        if let Some(batch) = args.batch {
            experiment.batch = batch;
        }
        experiment
            .validate()
            .map_err(|m| anyhow::anyhow!("{}: {m}", path.display()))?;
        let label = path
            .file_stem()
            .map_or("preset".into(), |s| s.to_string_lossy().into_owned());
        return Ok((experiment, label));
    }
    if !(0.0..0.9).contains(&args.val_fraction) {
        bail!("--val-fraction must be in [0, 0.9)");
    }
    if args.epochs == Some(0) {
        bail!("--epochs must be at least 1");
    }
    let shape = args.dataset.input_shape();
    let topology = topology_from_args(args, shape, args.dataset.classes())?;
    let optimizer = optimizer_from(args.optimizer, args.lr, args.momentum, args.weight_decay)?;
    let config = TrainConfig {
        optimizer,
        batch_size: args.batch.unwrap_or(64),
        epochs: args.epochs.unwrap_or(5),
        seed: args.seed.unwrap_or(1),
        schedule: None,
    };
    let mut experiment =
        Experiment::from_parts(&topology, args.dataset, &config, args.val_fraction);
    // Keep the selection as the user wrote it (`all`, `paper`), not as the edges it made.
    let skips = Skips(args.skips.parse()?);
    match &mut experiment.model {
        Model::Mlp { skips: s, .. } | Model::Cnn { skips: s, .. } => *s = skips,
    }
    experiment.validate().map_err(|m| anyhow::anyhow!("{m}"))?;
    let label = match args.model {
        ModelKind::Mlp => "mlp",
        ModelKind::Cnn => "cnn",
    };
    Ok((experiment, label.to_string()))
}

pub fn train(args: TrainArgs) -> Result<ExitCode> {
    let (experiment, label) = experiment_from_args(&args)?;
    if args.seeds <= 1 {
        return Ok(train_once(&args, experiment, &label)?.code);
    }
    // Several seeds: one run each (seed, seed + 1, ...), then mean ± standard deviation.
    let first = experiment.seed;
    let mut outcomes = Vec::new();
    for seed in first..first + args.seeds as u64 {
        let mut e = experiment.clone();
        e.seed = seed;
        if !args.json {
            println!("== seed {seed} ==");
        }
        outcomes.push(train_once(&args, e, &label)?);
    }
    let summary = |values: Vec<f64>| {
        let (m, sd) = skiplab::reproduce::mean_std(&values);
        format!(
            "{:.2}% ± {:.2} ({} runs)",
            100.0 * m,
            100.0 * sd,
            values.len()
        )
    };
    let best: Vec<f64> = outcomes.iter().filter_map(|o| o.best_val).collect();
    let test: Vec<f64> = outcomes.iter().filter_map(|o| o.test).collect();
    if args.json {
        let (bm, bsd) = skiplab::reproduce::mean_std(&best);
        let (tm, tsd) = skiplab::reproduce::mean_std(&test);
        println!(
            "{}",
            serde_json::json!({"event": "seeds", "seeds": args.seeds, "best_val_mean": bm, "best_val_sd": bsd, "test_mean": tm, "test_sd": tsd})
        );
    } else {
        println!(
            "over {} seeds: best val {}, test {}",
            args.seeds,
            summary(best),
            summary(test)
        );
    }
    let failed = outcomes.iter().any(|o| o.code != ExitCode::SUCCESS);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn train_once(args: &TrainArgs, experiment: Experiment, label: &str) -> Result<RunOutcome> {
    let (device, note) = devices::resolve(args.place.device.into())?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let dataset = data::load(experiment.dataset, &args.place.data_dir)?;
    let topology = experiment.topology()?;
    let config = experiment.train_config();
    let optimizer = config.optimizer;
    let data = Arc::new(PreparedData::prepare(
        &dataset,
        experiment.val_fraction,
        experiment.seed,
    ));
    drop(dataset);
    let json = args.json;
    let say = |line: String| {
        if !json {
            println!("{line}");
        }
    };
    say(format!(
        "{} on {} ({} train / {} val / {} test), {} params, {} MACs/sample",
        topology.summary(),
        data.name,
        data.train.len(),
        data.val.len(),
        data.test.len(),
        topology.param_count(),
        topology.macs_per_sample()
    ));
    say(format!(
        "{} lr {} batch {} epochs {} weight decay {} seed {} on {device}{}",
        optimizer.name(),
        optimizer.lr(),
        config.batch_size,
        config.epochs,
        optimizer.weight_decay(),
        config.seed,
        match config.schedule {
            Some(Schedule::SkipStar {
                max_vanilla_epochs,
                patience,
            }) => format!(
                ", skip*: skips off for up to {max_vanilla_epochs} epochs (patience {patience})"
            ),
            None => String::new(),
        }
    ));
    let (tx, rx) = mpsc::channel();
    let (handle, saved) = if args.no_save {
        (train::spawn(topology, data, config, device, tx)?, None)
    } else {
        let (id, dir) = runs::create_run_dir(&args.place.saves, label)?;
        let recorder =
            runs::Recorder::start(tx, dir.clone(), &experiment, &topology, &device.to_string())?;
        let errors = recorder.error_slot();
        say(format!("saving to {}", dir.display()));
        if json {
            println!(
                "{}",
                serde_json::json!({"event": "saving", "run": id, "dir": dir})
            );
        }
        (
            train::spawn(topology, data, config, device, recorder)?,
            Some((id, errors)),
        )
    };
    report(rx, handle, json, saved)
}

/// Where a saved run records its first write error.
type SaveErrors = Arc<std::sync::Mutex<Option<runs::RunError>>>;

/// Follows a run: a table (or JSON lines) per epoch, a summary line, the exit code.
fn report(
    rx: mpsc::Receiver<TrainEvent>,
    handle: train::RunHandle,
    json: bool,
    saved: Option<(String, SaveErrors)>,
) -> Result<RunOutcome> {
    let say = |line: String| {
        if !json {
            println!("{line}");
        }
    };
    let tty = std::io::stderr().is_terminal() && !json;
    say(format!(
        "{:>5}  {:>10}  {:>9}  {:>8}  {:>9}  {:>9}  {:>7}",
        "epoch", "train loss", "train acc", "val loss", "val acc", "samples/s", "time"
    ));
    let mut epochs: Vec<skiplab::train::EpochMetrics> = Vec::new();
    let mut end = None;
    for event in rx {
        match event {
            TrainEvent::Progress {
                epoch,
                step,
                steps_per_epoch,
                loss,
            } if tty => {
                let done = step * 30 / steps_per_epoch.max(1);
                eprint!(
                    "\r  epoch {epoch} [{}{}] {step}/{steps_per_epoch} loss {loss:.4}\x1b[K",
                    "#".repeat(done),
                    " ".repeat(30 - done)
                );
            }
            TrainEvent::Epoch(m) if json => {
                println!(
                    "{}",
                    serde_json::json!({
                        "event": "epoch",
                        "epoch": m.epoch,
                        "train_loss": m.train_loss,
                        "train_accuracy": m.train_accuracy,
                        "val_loss": m.val_loss,
                        "val_accuracy": m.val_accuracy,
                        "samples_per_sec": m.samples_per_sec,
                        "seconds": m.seconds,
                    })
                );
                std::io::stdout().flush().ok();
                epochs.push(m);
            }
            TrainEvent::SkipsEnabled { after_epoch, edges } => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"event": "skips_enabled", "after_epoch": after_epoch, "edges": edges})
                    );
                } else {
                    if tty {
                        eprint!("\r\x1b[K");
                    }
                    println!("skip*: {edges} skips enabled after epoch {after_epoch} (weights kept, new skip weights zero)");
                }
            }
            TrainEvent::Epoch(m) => {
                if tty {
                    eprint!("\r\x1b[K");
                }
                println!(
                    "{:>5}  {:>10.4}  {:>9}  {:>8.4}  {:>9}  {:>9.0}  {:>6.1}s",
                    m.epoch,
                    m.train_loss,
                    pct(m.train_accuracy),
                    m.val_loss,
                    pct(m.val_accuracy),
                    m.samples_per_sec,
                    m.seconds
                );
                std::io::stdout().flush().ok();
                epochs.push(m);
            }
            TrainEvent::Ended {
                status,
                epochs_done,
                test_accuracy,
            } => end = Some((status, epochs_done, test_accuracy)),
            _ => {}
        }
    }
    handle.join();
    let (status, epochs_done, test_accuracy) = end.unwrap_or((
        RunStatus::Failed("the trainer ended without a report".into()),
        0,
        None,
    ));
    let best = epochs
        .iter()
        .max_by(|a, b| a.val_accuracy.total_cmp(&b.val_accuracy));
    let mean_time = epochs.iter().map(|m| m.seconds).sum::<f64>() / epochs.len().max(1) as f64;
    let best_text = best.map_or("no epoch finished".to_string(), |b| {
        format!("best val {} (epoch {})", pct(b.val_accuracy), b.epoch)
    });
    let test_text = test_accuracy.map_or(String::new(), |t| format!(", test {}", pct(t)));
    if let Some((id, errors)) = &saved {
        if let Some(e) = errors.lock().expect("not poisoned").take() {
            eprintln!("warning: the run could not be saved completely: {e}");
        } else if !json {
            println!("saved as {id}");
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "event": "ended",
                "status": runs::status_text(&status),
                "epochs_done": epochs_done,
                "best_val_accuracy": best.map(|b| b.val_accuracy),
                "test_accuracy": test_accuracy,
                "run": saved.as_ref().map(|(id, _)| id.clone()),
            })
        );
    }
    let code = match &status {
        RunStatus::Finished => ExitCode::SUCCESS,
        RunStatus::Diverged { .. } => ExitCode::from(3),
        _ => ExitCode::from(1),
    };
    let outcome = RunOutcome {
        code,
        best_val: best.map(|b| b.val_accuracy),
        test: test_accuracy,
    };
    if json {
        return Ok(outcome);
    }
    match status {
        RunStatus::Finished => {
            println!(
                "finished: {epochs_done} epochs, {best_text}{test_text}, {mean_time:.2} s/epoch"
            );
        }
        RunStatus::Stopped => {
            println!("stopped after {epochs_done} epochs: {best_text}{test_text}");
        }
        RunStatus::Diverged { epoch, step, loss } => {
            println!(
                "diverged: loss became {loss} at step {step} (epoch {epoch}); try a lower --lr. {best_text}"
            );
        }
        RunStatus::Failed(message) => println!("failed: {message}"),
    }
    Ok(outcome)
}

/// How a followed run ended.
struct RunOutcome {
    code: ExitCode,
    best_val: Option<f64>,
    test: Option<f64>,
}

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
    #[arg(long, env = "SKIPLAB_DATA_DIR", default_value = "data")]
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
    Cnn,
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
    let dev = Cuda::try_build(0, 1).map_err(|e| anyhow::anyhow!("cannot start CUDA: {e}"))?;
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
        other => bail!("unknown benchmark model `{other}`"),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
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
) -> Result<Measurement> {
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
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
        skiplab::net::ops::set_force_composed(args.composed);
        let (topology, default_batch, _) = bench_model(model)?;
        let batch = args.batch.unwrap_or(default_batch);
        let m = match args.device {
            BenchDevice::Cpu => {
                // As a CPU training run does (see `cpu_worker_pool_here`).
                let _pool = skiplab::train::cpu_worker_pool_here();
                bench_one(&Cpu::seed_from_u64(1), topology, batch, args.steps)?
            }
            BenchDevice::Cuda => bench_cuda(topology, batch, args.steps)?,
        };
        println!("{}", serde_json::to_string(&m)?);
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
    println!(
        "skiplab bench on {device}: {} CPU threads, {} rounds (median), {} steps per MLP, {} per CNN, 10 of them warm-up",
        threads, args.rounds, args.steps, args.cnn_steps
    );
    match &torch {
        Some(v) => println!(
            "PyTorch twin: torch {v} via {}, {threads} threads, same models and batches",
            args.python
        ),
        None => println!(
            "PyTorch twin: not run (`{}` cannot import torch; set --python)",
            args.python
        ),
    }
    let mut names: Vec<(&str, bool)> = Vec::new();
    if args.models != BenchModels::Cnn {
        names.extend([("mlp-paper", false), ("mlp-cifar", false)]);
    }
    if args.models != BenchModels::Mlp {
        names.extend([
            ("cnn-vanilla", true),
            ("cnn-skip", true),
            ("cnn-reinforced", true),
        ]);
    }
    println!(
        "{:<44} {:>5} {:>10} {:>10} {:>7} {:>9} {:>9} {:>9}",
        "model", "batch", "skiplab/s", "torch/s", "ratio", "RSS@100", "RSS@end", "peak MiB"
    );
    let mut grew = false;
    for (name, is_cnn) in names {
        let (_, default_batch, label) = bench_model(name)?;
        let mut batches = vec![default_batch];
        if args.large_batches {
            batches.push(if is_cnn { 128 } else { 256 });
        }
        for batch in batches {
            let steps = if is_cnn { args.cnn_steps } else { args.steps };
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            let mut last = None;
            for _ in 0..args.rounds {
                let m = measure_skiplab(name, batch, steps, args.device, false)?;
                ours.push(m.samples_per_sec);
                last = Some(m);
                if torch.is_some() {
                    match measure_torch(&args.python, name, batch, steps, args.device, threads) {
                        Ok(t) => theirs.push(t.samples_per_sec),
                        Err(e) => eprintln!("PyTorch twin failed on {name}: {e}"),
                    }
                }
            }
            let m = last.expect("at least one round");
            let ours = median(ours);
            let (torch_text, ratio) = if theirs.is_empty() {
                ("-".to_string(), "-".to_string())
            } else {
                let t = median(theirs);
                (format!("{t:.0}"), format!("{:.2}x", ours / t))
            };
            if let (Some(a), Some(b)) = (m.rss_at_100, m.rss_at_end) {
                // Allow allocator noise; a leak of one batch per step would be far larger.
                grew |= b > a + 16.0;
            }
            let mib = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
            println!(
                "{label:<44} {batch:>5} {ours:>10.0} {torch_text:>10} {ratio:>7} {:>9} {:>9} {:>9}",
                mib(m.rss_at_100),
                mib(m.rss_at_end),
                mib(m.peak_rss_mib)
            );
        }
    }
    if args.composed_too && args.device == BenchDevice::Cpu && args.models != BenchModels::Mlp {
        let (_, batch, label) = bench_model("cnn-skip")?;
        let custom = measure_skiplab("cnn-skip", batch, args.cnn_steps, args.device, false)?;
        let composed = measure_skiplab("cnn-skip", batch, args.cnn_steps, args.device, true)?;
        println!(
            "{label}: custom CPU kernels {:.0}/s vs composed dfdx ops {:.0}/s: {:.2}x",
            custom.samples_per_sec,
            composed.samples_per_sec,
            custom.samples_per_sec / composed.samples_per_sec
        );
    }
    if grew {
        println!("memory: GREW from step 100 to the end (more than 16 MiB)");
        Ok(ExitCode::from(1))
    } else {
        println!(
            "memory: steady from step 100 to the end (within 16 MiB) where a run had 100 steps"
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// Compares the CPU with the first CUDA GPU on every skiplab op and network (see
/// `skiplab::parity`); prints one verdict line per check.
pub fn parity() -> Result<ExitCode> {
    parity_cuda()
}

#[cfg(feature = "cuda")]
fn parity_cuda() -> Result<ExitCode> {
    use skiplab::parity::{compare, compare_with_reference, network_snapshot, ops_snapshot};
    devices::probe_cuda().map_err(|e| anyhow::anyhow!("parity needs a GPU: {e}"))?;
    let cuda = Cuda::try_build(0, 0).map_err(|e| anyhow::anyhow!("cannot start CUDA: {e}"))?;
    let cpu = Cpu::seed_from_u64(0);
    let mut mlp = Topology::Mlp(MlpSpec::new(784, vec![128, 256, 256], 26));
    mlp.apply_skips(&SkipSelection::All)?;
    let mut cnn = Topology::Cnn(CnnSpec::paper(ImageShape::new(3, 32, 32), 10));
    cnn.apply_skips(&SkipSelection::Paper)?;
    // Each case: CUDA f32 against CPU f64, next to CPU f32 against CPU f64.
    let mut verdicts = Vec::new();
    let cases: [(&str, &Topology, usize); 2] =
        [("mlp all skips", &mlp, 64), ("cnn paper skips", &cnn, 16)];
    verdicts.extend(compare_with_reference(
        "ops",
        &ops_snapshot::<f64, _>(&cpu, 7),
        &ops_snapshot::<f32, _>(&cpu, 7),
        &ops_snapshot::<f32, _>(&cuda, 7),
    ));
    for (case, topology, batch) in cases {
        verdicts.extend(compare_with_reference(
            case,
            &network_snapshot::<f64, _>(&cpu, topology, batch, 7),
            &network_snapshot::<f32, _>(&cpu, topology, batch, 7),
            &network_snapshot::<f32, _>(&cuda, topology, batch, 7),
        ));
    }
    // CUDA against itself: run-to-run differences would point at a race, not at an op.
    verdicts.extend(compare(
        "cuda run-to-run, cnn paper skips",
        &network_snapshot::<f32, _>(&cuda, &cnn, 16, 7),
        &network_snapshot::<f32, _>(&cuda, &cnn, 16, 7),
    ));
    for v in &verdicts {
        println!("{v}");
    }
    let failed = verdicts.iter().filter(|v| !v.passed()).count();
    println!("{} passed, {failed} failed", verdicts.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(not(feature = "cuda"))]
fn parity_cuda() -> Result<ExitCode> {
    bail!("parity compares the CPU with a CUDA GPU; this skiplab was built without the `cuda` feature (see the README)")
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
    println!("skiplab bench --data: median of {rounds} rounds; reference = reading (and gunzipping) the same bytes");
    println!(
        "{:<44} {:>8} {:>10} {:>12} {:>7}  target",
        "load", "records", "load s", "reference s", "ratio"
    );
    let mut missed = 0;
    let mut row = |what: &str, records: usize, load: f64, reference: f64| {
        let ok = load < 1.0;
        missed += usize::from(!ok);
        println!(
            "{what:<44} {records:>8} {load:>10.3} {reference:>12.3} {:>6.2}x  {} (< 1 s)",
            load / reference,
            if ok { "met" } else { "MISSED" }
        );
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
    row("Fashion-MNIST, 4 gzip IDX files", records, load, reference);

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
    );
    Ok(if missed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The saved run (id, unique prefix of it, or path).
    run: String,
    /// Further epochs to train.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    #[command(flatten)]
    place: Place,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// `skiplab resume`: trains a saved run for more epochs from its saved weights, in its own
/// folder (rows are appended; the optimiser's momentum starts afresh).
pub fn resume(args: ResumeArgs) -> Result<ExitCode> {
    if args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    let dir = runs::find_run(&args.place.saves, &args.run)?;
    let saved = runs::load_run(&dir)?;
    let (topology, params) = runs::read_weights(&dir.join(runs::WEIGHTS))?;
    let experiment = &saved.experiment;
    let (device, note) = devices::resolve(args.place.device.into())?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let dataset = data::load(experiment.dataset, &args.place.data_dir)?;
    // The same split as the first run: the same seed and fraction.
    let data = Arc::new(PreparedData::prepare(
        &dataset,
        experiment.val_fraction,
        experiment.seed,
    ));
    drop(dataset);
    let mut config = experiment.train_config();
    config.epochs = args.epochs;
    config.schedule = None; // the saved topology is the one to go on with
    let epochs_done = saved.summary.epochs_done;
    if !args.json {
        println!(
            "resuming {} ({}) after epoch {epochs_done} for {} more on {device}",
            saved.id,
            topology.summary(),
            args.epochs
        );
    }
    let (tx, rx) = mpsc::channel();
    let recorder = runs::Recorder::resume(tx, &saved)?;
    let errors = recorder.error_slot();
    let handle = train::spawn_from(
        topology,
        data,
        config,
        device,
        recorder,
        Some(train::Resume {
            params,
            epochs_done,
        }),
    )?;
    Ok(report(rx, handle, args.json, Some((saved.id.clone(), errors)))?.code)
}

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Which tables: table1..table5, comma-separated, or all.
    #[arg(default_value = "all")]
    tables: String,
    /// Run every table on this data set instead of the paper's (EMNIST letters, CIFAR-10);
    /// the report marks it as a substitute.
    #[arg(long)]
    dataset: Option<DatasetName>,
    /// Seeds per configuration and L2 value.
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// Epochs per run.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// The L2 grid; each configuration reports the value with the best validation accuracy.
    #[arg(long, default_value = "0,0.0001", value_delimiter = ',')]
    l2: Vec<f64>,
    #[command(flatten)]
    place: Place,
    #[arg(long)]
    no_save: bool,
    /// The Markdown report.
    #[arg(long, default_value = "reproduce.md")]
    report: PathBuf,
}

/// `skiplab reproduce`: the experiments behind the paper's tables, over seeds and an L2
/// grid, printed beside the published numbers and written as a Markdown report.
pub fn reproduce(args: ReproduceArgs) -> Result<ExitCode> {
    use skiplab::reproduce::{self as rep, Config, Outcome, Table};
    let tables = Table::parse_list(&args.tables).map_err(anyhow::Error::msg)?;
    if args.seeds == 0 || args.epochs < 2 {
        bail!("--seeds must be at least 1 and --epochs at least 2");
    }
    if args.l2.is_empty() || args.l2.iter().any(|v| !(*v >= 0.0 && v.is_finite())) {
        bail!("--l2 takes zero or positive values, e.g. 0,0.0001");
    }
    let dataset_for = |t: Table| args.dataset.unwrap_or(t.paper_dataset());
    // Every configuration the tables and their comparisons need, once.
    let mut jobs: Vec<(Config, DatasetName)> = Vec::new();
    for &t in &tables {
        let mut configs: Vec<Config> = t.rows().into_iter().flat_map(|(_, c)| c).collect();
        if t == Table::T2 {
            configs.extend(Table::T1.rows().into_iter().flat_map(|(_, c)| c));
        }
        if t == Table::T5 {
            configs.push(Config::Cnn(rep::CnnVariant::Skip));
        }
        for c in configs {
            if !jobs.contains(&(c, dataset_for(t))) {
                jobs.push((c, dataset_for(t)));
            }
        }
    }
    let (device, note) = devices::resolve(args.place.device.into())?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let total = jobs.len() * args.l2.len() * args.seeds;
    println!(
        "reproducing {}: {} configurations x {} L2 values x {} seeds = {total} runs of {} epochs on {device}",
        args.tables,
        jobs.len(),
        args.l2.len(),
        args.seeds,
        args.epochs
    );
    let mut datasets: std::collections::HashMap<DatasetName, data::Dataset> = Default::default();
    let mut prepared: std::collections::HashMap<(DatasetName, u64), Arc<PreparedData>> =
        Default::default();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut report = String::new();
    let mut done = 0;
    for (config, dataset) in &jobs {
        for &l2 in &args.l2 {
            for seed in 1..=args.seeds as u64 {
                done += 1;
                let experiment = config.experiment(*dataset, args.epochs, seed, l2);
                let topology = experiment.topology()?;
                if !datasets.contains_key(dataset) {
                    datasets.insert(*dataset, data::load(*dataset, &args.place.data_dir)?);
                }
                let data = prepared
                    .entry((*dataset, seed))
                    .or_insert_with(|| {
                        Arc::new(PreparedData::prepare(
                            &datasets[dataset],
                            experiment.val_fraction,
                            seed,
                        ))
                    })
                    .clone();
                let (tx, rx) = mpsc::channel();
                let handle = if args.no_save {
                    train::spawn(
                        topology.clone(),
                        data,
                        experiment.train_config(),
                        device,
                        tx,
                    )?
                } else {
                    let (_, dir) = runs::create_run_dir(&args.place.saves, "reproduce")?;
                    let recorder = runs::Recorder::start(
                        tx,
                        dir,
                        &experiment,
                        &topology,
                        &device.to_string(),
                    )?;
                    train::spawn(
                        topology.clone(),
                        data,
                        experiment.train_config(),
                        device,
                        recorder,
                    )?
                };
                let mut epochs = Vec::new();
                let mut problem = None;
                for event in rx {
                    match event {
                        TrainEvent::Epoch(m) => epochs.push(m),
                        TrainEvent::Ended { status, .. } if status != RunStatus::Finished => {
                            problem = Some(runs::status_text(&status))
                        }
                        _ => {}
                    }
                }
                handle.join();
                let best = epochs
                    .iter()
                    .max_by(|a, b| a.val_accuracy.total_cmp(&b.val_accuracy));
                let outcome = Outcome {
                    config: *config,
                    seed,
                    l2,
                    val: best.map_or(f64::NAN, |b| b.val_accuracy),
                    train: best.map_or(f64::NAN, |b| b.train_accuracy),
                    seconds_per_epoch: epochs.iter().map(|m| m.seconds).sum::<f64>()
                        / epochs.len().max(1) as f64,
                    params: topology.param_count(),
                    macs: topology.macs_per_sample(),
                    problem: problem
                        .or_else(|| epochs.is_empty().then(|| "no epoch finished".into())),
                };
                println!(
                    "[{done}/{total}] {:<16} {dataset} l2 {l2} seed {seed}: val {:.2}% train {:.2}%, {:.2} s/epoch{}",
                    config.label(),
                    100.0 * outcome.val,
                    100.0 * outcome.train,
                    outcome.seconds_per_epoch,
                    outcome.problem.as_deref().map_or(String::new(), |p| format!(" ({p})"))
                );
                outcomes.push(outcome);
                // The report so far, after every run: an interrupted reproduction keeps it.
                report = rep::report(
                    &tables,
                    &outcomes,
                    &dataset_for,
                    args.epochs,
                    args.seeds,
                    &args.l2,
                );
                skiplab::data::store::write_atomically(&args.report, report.as_bytes())?;
            }
        }
    }
    println!("\n{report}");
    println!("report written to {}", args.report.display());
    Ok(ExitCode::SUCCESS)
}

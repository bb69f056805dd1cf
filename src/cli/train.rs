//! `skiplab train`: one experiment (flags or a preset), one run per seed, headless.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use crate::cli::{self, Place};
use crate::outln;
use skiplab::compare::{SeedSummary, Spread};
use skiplab::data::DatasetName;
use skiplab::experiment::{Experiment, Model, Optimizer, Resolved, Skips};
use skiplab::session::RunRequest;
use skiplab::topology::{Activation, BlockOrder, Downsample, Head, InitScheme, Norm, Shortcut};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    Mlp,
    Cnn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActivationKind {
    Relu,
    Tanh,
    Sigmoid,
    Linear,
    /// The tanh form of GELU.
    Gelu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitKind {
    He,
    Lecun,
    Xavier,
    Torch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerKind {
    Sgd,
    Adam,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Run the experiment in this preset file (RON, see presets/); --epochs, --seed,
    /// --batch, --device and --data-dir still apply.
    #[arg(long, conflicts_with_all = ["model", "widths", "skips", "activation", "init", "norm", "shortcut", "downsample", "head", "order", "dataset", "optimizer", "lr", "momentum", "weight_decay", "val_fraction"])]
    preset: Option<PathBuf>,
    /// Network family.
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp)]
    model: ModelKind,
    /// Hidden widths of an MLP (`128,256`; `64x20` is twenty layers of 64), or CNN stages
    /// separated by `/` (`32,32/64,64/128,128`). Defaults to the paper's networks.
    #[arg(long)]
    widths: Option<String>,
    /// Skip edges: `all`, `none`, `paper` (all for an MLP, 1-4,2-5,4-7,5-8 for the CNN),
    /// pairs like `0-2,1-3`, or patterns: `every:k`, `next:k`, `chain:k`, `blocks:k`; `res:`
    /// before any term makes its edges residual, e.g. `res:chain:2` (an MLP's two-layer
    /// blocks), `res:blocks:2` (a CNN's). MLP layer 0 is the input; CNN layers count convs and
    /// pools from 1.
    #[arg(long, default_value = "none")]
    skips: String,
    /// The MLP's activation after every hidden layer.
    #[arg(long, value_enum, default_value_t = ActivationKind::Relu)]
    activation: ActivationKind,
    /// How the MLP's weights start: he (hidden; LeCun for the output), lecun, xavier, or
    /// torch (PyTorch's nn.Linear default, biases too).
    #[arg(long, value_enum, default_value_t = InitKind::He)]
    init: InitKind,
    /// Normalise every hidden layer of an MLP or every convolution of a CNN: none, batch
    /// (batch statistics while training, running estimates when evaluating) or layer (MLP).
    #[arg(long, default_value = "none")]
    norm: Norm,
    /// CNN: how a residual edge reaches a later stage: projection (a 1x1 convolution) or pad
    /// (every other pixel, zero channels after; ResNet's option A).
    #[arg(long, default_value = "projection")]
    shortcut: Shortcut,
    /// CNN: halve the resolution with a max-pool after every stage, or with a stride-2 first
    /// convolution in every later stage (ResNet's).
    #[arg(long, default_value = "pool")]
    downsample: Downsample,
    /// CNN: the classifier reads every pixel (flatten) or each channel's mean (average).
    #[arg(long, default_value = "flatten")]
    head: Head,
    /// CNN: post-activation blocks (conv, norm, + residual, ReLU: ResNet v1) or pre-activation
    /// ones (norm, ReLU, conv, + residual: ResNet v2).
    #[arg(long, default_value = "post")]
    order: BlockOrder,
    /// Data set: builtin, mnist, fashion-mnist, emnist-letters or cifar10 (all but builtin
    /// from the data directory; see `skiplab data`).
    #[arg(long, default_value = "builtin")]
    dataset: DatasetName,
    /// Optimiser: SGD (with --momentum) or Adam (beta1 0.9, beta2 0.999).
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

/// The flags' names for the preset fields a message names (`optimizer.lr` is `--lr`).
fn flag_names(message: String) -> String {
    const FIELDS: [(&str, &str); 7] = [
        ("optimizer.lr ", "--lr "),
        ("optimizer.momentum ", "--momentum "),
        ("weight_decay ", "--weight-decay "),
        ("val_fraction ", "--val-fraction "),
        ("batch ", "--batch "),
        ("epochs ", "--epochs "),
        ("model: ", ""),
    ];
    FIELDS
        .iter()
        .find_map(|(field, flag)| {
            message
                .strip_prefix(field)
                .map(|rest| format!("{flag}{rest}"))
        })
        .unwrap_or(message)
}

/// The experiment the flags (or the preset) describe, resolved: checked against the
/// experiment's rules and its network built, once (the session takes it as it is).
fn experiment_from_args(args: &TrainArgs) -> Result<Resolved> {
    if let Some(path) = &args.preset {
        let presets = skiplab::folders::default_presets_dir();
        let (_, mut experiment) = skiplab::folders::resolve_preset(path, &presets)?;
        if let Some(epochs) = args.epochs {
            experiment.epochs = epochs;
        }
        if let Some(seed) = args.seed {
            experiment.seed = seed;
        }
        if let Some(batch) = args.batch {
            experiment.batch = batch;
        }
        return experiment
            .resolve()
            .map_err(|m| anyhow::anyhow!("{}: {m}", path.display()));
    }
    // Parsed once, and kept as written (`all`, `paper`), not as the edges it makes.
    let skips = Skips(args.skips.parse()?);
    let widths = |default: &str| {
        skiplab::experiment::parse_widths(args.widths.as_deref().unwrap_or(default))
            .map_err(|e| anyhow::anyhow!("--widths: {e}"))
    };
    let model = match args.model {
        ModelKind::Mlp => {
            let stages = widths("128,256")?;
            if stages.len() != 1 {
                bail!("--widths: an MLP takes one list of widths like `128,256`, without `/`");
            }
            if args.shortcut != Shortcut::default()
                || args.downsample != Downsample::default()
                || args.head != Head::default()
                || args.order != BlockOrder::default()
            {
                bail!("--shortcut, --downsample, --head and --order are for CNNs (--model cnn)");
            }
            Model::Mlp {
                widths: stages.concat(),
                skips,
                activation: match args.activation {
                    ActivationKind::Relu => Activation::Relu,
                    ActivationKind::Tanh => Activation::Tanh,
                    ActivationKind::Sigmoid => Activation::Sigmoid,
                    ActivationKind::Linear => Activation::Linear,
                    ActivationKind::Gelu => Activation::Gelu,
                },
                init: match args.init {
                    InitKind::He => InitScheme::He,
                    InitKind::Lecun => InitScheme::Lecun,
                    InitKind::Xavier => InitScheme::Xavier,
                    InitKind::Torch => InitScheme::Torch,
                },
                norm: args.norm,
            }
        }
        ModelKind::Cnn => {
            if args.activation != ActivationKind::Relu || args.init != InitKind::He {
                bail!("--activation and --init are for MLPs; a CNN uses ReLU and He-uniform");
            }
            Model::Cnn {
                stages: widths("32,32/64,64/128,128")?,
                skips,
                norm: args.norm,
                shortcut: args.shortcut,
                downsample: args.downsample,
                head: args.head,
                order: args.order,
            }
        }
    };
    let optimizer = match args.optimizer {
        OptimizerKind::Sgd => Optimizer::Sgd {
            lr: args.lr.unwrap_or(0.01),
            momentum: args.momentum,
        },
        OptimizerKind::Adam => Optimizer::adam(args.lr.unwrap_or(0.001)),
    };
    let experiment = Experiment {
        description: String::new(),
        dataset: args.dataset,
        model,
        optimizer,
        weight_decay: args.weight_decay,
        batch: args.batch.unwrap_or(64),
        epochs: args.epochs.unwrap_or(5),
        seed: args.seed.unwrap_or(1),
        val_fraction: args.val_fraction,
        schedule: None,
    };
    experiment
        .resolve()
        .map_err(|m| anyhow::anyhow!("{}", flag_names(m)))
}

pub fn train(args: TrainArgs) -> Result<ExitCode> {
    let experiment = experiment_from_args(&args)?;
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let first = experiment.experiment().seed;
    let last = first.checked_add(args.seeds as u64 - 1).with_context(|| {
        format!(
            "--seed {first} with --seeds {}: the seeds would run past the largest, {}",
            args.seeds,
            u64::MAX
        )
    })?;
    // One run each for seeds --seed, --seed + 1, ...
    let requests = (first..=last)
        .map(|seed| RunRequest::resolved(experiment.with_seed(seed)))
        .collect();
    let (mut session, inbox) = cli::headless(&args.place, !args.no_save)?;
    let several = args.seeds > 1;
    let mut printer = cli::printer(args.json, several);
    let first = session.submit_all(requests)?;
    let signal = cli::follow(&mut session, &inbox, first, &mut printer)?;
    if several {
        let seeds = SeedSummary::of(session.runs().iter().map(|r| &r.summary));
        let (b, t) = (seeds.best_val_spread(), seeds.test_spread());
        let (best, test) = (&seeds.best_val, &seeds.test);
        if args.json {
            let mean = |s: Option<Spread>| s.map(|s| s.mean);
            let sd = |s: Option<Spread>| s.and_then(|s| s.sd);
            outln!(
                "{}",
                serde_json::json!({"event": "seeds", "seeds": args.seeds, "best_val_mean": mean(b), "best_val_sd": sd(b), "best_val_n": best.len(), "test_mean": mean(t), "test_sd": sd(t), "test_n": test.len(), "test_at": "best_val_epoch"})
            );
        } else {
            let text = |s: Option<Spread>, n: usize| match s {
                Some(s) => format!("{}% ({n} runs)", s.text(100.0, 2)),
                None => "-".to_string(),
            };
            outln!(
                "over {} seeds: best val {}, test at the best-val epoch {}",
                args.seeds,
                text(b, best.len()),
                text(t, test.len())
            );
        }
    }
    Ok(cli::exit_code(&session, signal))
}

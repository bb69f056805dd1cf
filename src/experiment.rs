//! An experiment as a preset file: model, data set, optimiser and schedule, in RON.
//!
//! ```ron
//! (
//!     description: "The paper's 3-layer MLP with every skip",
//!     dataset: "fashion-mnist",
//!     model: Mlp(widths: [128, 256], skips: "all"),
//!     optimizer: Sgd(lr: 0.01, momentum: 0.9),
//!     weight_decay: 0.0001,
//!     batch: 64,
//!     epochs: 10,
//!     seed: 1,
//! )
//! ```
//!
//! Unknown fields and invalid values are errors that name the file, line and column (or the
//! field); skips are written as users type them: `"all"`, `"none"`, `"paper"`, `"0-2,1-3"`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::DatasetName;
use crate::hyperparams::OptimizerConfig;
use crate::topology::{
    Activation, BlockOrder, CnnSpec, Downsample, Head, InitScheme, MlpSpec, Norm, Shortcut,
    SkipEdge, SkipSelection, Topology,
};

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
use crate::hyperparams::{Schedule, TrainConfig};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub dataset: DatasetName,
    pub model: Model,
    pub optimizer: Optimizer,
    /// L2 regularisation (the paper's tuned regulariser).
    #[serde(default)]
    pub weight_decay: f64,
    pub batch: usize,
    pub epochs: usize,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Share of the training set held out for validation.
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

fn default_seed() -> u64 {
    1
}

fn default_val_fraction() -> f64 {
    0.1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Model {
    /// Hidden widths; the input and output follow from the data set. Skips may be
    /// residual (`res:...`); the activation and the initialisation default to ReLU and He.
    Mlp {
        widths: Vec<usize>,
        skips: Skips,
        #[serde(default, skip_serializing_if = "is_default")]
        activation: Activation,
        #[serde(default, skip_serializing_if = "is_default")]
        init: InitScheme,
        /// Batch or layer normalisation of every hidden layer (none unless said).
        #[serde(default, skip_serializing_if = "is_default")]
        norm: Norm,
    },
    /// Stages of convolution widths, each followed by a 2x2 max-pool (or, with `downsample:
    /// stride`, each after the first starting with a stride-2 convolution). Skips may be
    /// residual (`res:...`).
    Cnn {
        stages: Vec<Vec<usize>>,
        skips: Skips,
        /// Batch normalisation of every convolution (none unless said).
        #[serde(default, skip_serializing_if = "is_default")]
        norm: Norm,
        /// How a residual edge reaches a later stage (projection unless said).
        #[serde(default, skip_serializing_if = "is_default")]
        shortcut: Shortcut,
        /// Pools between stages (unless said) or strided convolutions.
        #[serde(default, skip_serializing_if = "is_default")]
        downsample: Downsample,
        /// The classifier reads every pixel (unless said) or each channel's average.
        #[serde(default, skip_serializing_if = "is_default")]
        head: Head,
        /// Post-activation blocks (unless said) or pre-activation ones.
        #[serde(default, skip_serializing_if = "is_default")]
        order: BlockOrder,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Optimizer {
    Sgd {
        lr: f64,
        #[serde(default)]
        momentum: f64,
    },
    /// Adam; its betas and epsilon are written only where they differ from the usual
    /// 0.9, 0.999 and 1e-8.
    Adam {
        lr: f64,
        #[serde(default = "adam::beta1", skip_serializing_if = "adam::is_beta1")]
        beta1: f64,
        #[serde(default = "adam::beta2", skip_serializing_if = "adam::is_beta2")]
        beta2: f64,
        #[serde(default = "adam::eps", skip_serializing_if = "adam::is_eps")]
        eps: f64,
    },
}

/// An experiment that passed every rule, with the network it builds (made only by
/// [`Experiment::resolve`], so holding one proves it was checked).
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    experiment: Experiment,
    topology: Topology,
}

impl Resolved {
    pub fn experiment(&self) -> &Experiment {
        &self.experiment
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn into_parts(self) -> (Experiment, Topology) {
        (self.experiment, self.topology)
    }

    /// The same experiment with another seed (the seed changes no rule and no network).
    pub fn with_seed(&self, seed: u64) -> Self {
        let mut next = self.clone();
        next.experiment.seed = seed;
        next
    }
}

/// Adam's usual constants, the defaults of its fields.
mod adam {
    pub const BETA1: f64 = 0.9;
    pub const BETA2: f64 = 0.999;
    pub const EPS: f64 = 1e-8;
    pub fn beta1() -> f64 {
        BETA1
    }
    pub fn beta2() -> f64 {
        BETA2
    }
    pub fn eps() -> f64 {
        EPS
    }
    pub fn is_beta1(v: &f64) -> bool {
        *v == BETA1
    }
    pub fn is_beta2(v: &f64) -> bool {
        *v == BETA2
    }
    pub fn is_eps(v: &f64) -> bool {
        *v == EPS
    }
}

impl Optimizer {
    /// Adam with the usual betas and epsilon.
    pub fn adam(lr: f64) -> Self {
        Optimizer::Adam {
            lr,
            beta1: adam::BETA1,
            beta2: adam::BETA2,
            eps: adam::EPS,
        }
    }

    pub fn lr(&self) -> f64 {
        match *self {
            Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } => lr,
        }
    }

    /// The optimiser without its learning rate, as descriptions show it: `sgd m 0.9`,
    /// `adam`, or `adam β 0.8/0.99 ε 1e-6` where the constants are not the usual ones.
    pub fn text(&self) -> String {
        match *self {
            Optimizer::Sgd { momentum, .. } => format!("sgd m {momentum}"),
            Optimizer::Adam {
                beta1, beta2, eps, ..
            } => {
                let usual = adam::is_beta1(&beta1) && adam::is_beta2(&beta2) && adam::is_eps(&eps);
                match usual {
                    true => "adam".to_string(),
                    false => format!("adam β {beta1}/{beta2} ε {eps:e}"),
                }
            }
        }
    }
}

impl Model {
    /// An MLP with these hidden widths and skips, ReLU and He initialisation.
    pub fn mlp(widths: Vec<usize>, skips: Skips) -> Self {
        Model::Mlp {
            widths,
            skips,
            activation: Activation::default(),
            init: InitScheme::default(),
            norm: Norm::default(),
        }
    }
}

/// A skip selection written as a string: `"all"`, `"none"`, `"paper"` or `"0-2,1-3"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skips(pub SkipSelection);

impl fmt::Display for Skips {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            SkipSelection::All => f.write_str("all"),
            SkipSelection::None => f.write_str("none"),
            SkipSelection::Paper => f.write_str("paper"),
            SkipSelection::Edges(edges) => {
                let list: Vec<String> = edges.iter().map(SkipEdge::to_string).collect();
                f.write_str(&list.join(","))
            }
            SkipSelection::Terms(terms) => {
                let list: Vec<String> = terms.iter().map(|t| t.to_string()).collect();
                f.write_str(&list.join(","))
            }
        }
    }
}

impl Serialize for Skips {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Skips {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map(Skips)
            .map_err(|e| serde::de::Error::custom(format!("skips: {e}")))
    }
}

/// Widths as users write them: `128,256`, `64x20` (twenty layers of 64), CNN stages
/// separated by `/` (`32,32/64,64/128,128`).
pub fn parse_widths(text: &str) -> Result<Vec<Vec<usize>>, String> {
    let width = |w: &str| {
        w.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{}` is not a width in `{text}`", w.trim()))
    };
    text.split('/')
        .map(|stage| {
            let mut widths = Vec::new();
            for item in stage.split(',') {
                match item.trim().split_once('x') {
                    Some((w, n)) => {
                        let n = n
                            .trim()
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (1..=1024).contains(n));
                        let n = n.ok_or_else(|| {
                            format!("`{item}` repeats a width 1 to 1024 times, like `64x20`")
                        })?;
                        widths.extend(std::iter::repeat_n(width(w)?, n));
                    }
                    None => widths.push(width(item)?),
                }
            }
            Ok(widths)
        })
        .collect()
}

/// A preset that cannot be used, naming the file and where.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), at.map_or(String::new(), |(l, c)| format!(":{l}:{c}")))]
pub struct PresetError {
    pub path: PathBuf,
    /// Line and column, when the problem is in the text.
    pub at: Option<(usize, usize)>,
    pub message: String,
}

impl Experiment {
    /// Parses preset text; `path` only names the source in errors.
    pub fn from_ron(text: &str, path: &Path) -> Result<Self, PresetError> {
        // Editors on Windows may start a UTF-8 file with a byte-order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let experiment: Experiment = ron::from_str(text).map_err(|e| PresetError {
            path: path.to_path_buf(),
            at: Some((e.span.start.line, e.span.start.col)),
            message: e.code.to_string(),
        })?;
        experiment.validate().map_err(|message| PresetError {
            path: path.to_path_buf(),
            at: None,
            message,
        })?;
        Ok(experiment)
    }

    pub fn load(path: &Path) -> Result<Self, PresetError> {
        let text = std::fs::read_to_string(path).map_err(|e| PresetError {
            path: path.to_path_buf(),
            at: None,
            message: format!("cannot read: {e}"),
        })?;
        Self::from_ron(&text, path)
    }

    pub fn to_ron(&self) -> String {
        let config = ron::ser::PrettyConfig::default().struct_names(false);
        let mut text = ron::ser::to_string_pretty(self, config).expect("experiments serialise");
        text.push('\n');
        text
    }

    /// Every value in range and a topology that builds: the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.check_values()?;
        self.topology()
            .map(|_| ())
            .map_err(|e| format!("model: {e}"))
    }

    /// The experiment checked once against every rule, with the network it builds: what the
    /// session runs. The message names the field, as [`Experiment::validate`]'s does.
    pub fn resolve(self) -> Result<Resolved, String> {
        self.check_values()?;
        let topology = self.topology().map_err(|e| format!("model: {e}"))?;
        Ok(Resolved {
            experiment: self,
            topology,
        })
    }

    /// Every value in range (the network is checked by building it).
    fn check_values(&self) -> Result<(), String> {
        let lr = match self.optimizer {
            Optimizer::Sgd { lr, momentum } => {
                rules::momentum(momentum)
                    .map_err(|e| format!("optimizer.momentum {momentum} {e}"))?;
                lr
            }
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                for (name, beta) in [("beta1", beta1), ("beta2", beta2)] {
                    rules::beta(beta).map_err(|e| format!("optimizer.{name} {beta} {e}"))?;
                }
                rules::eps(eps).map_err(|e| format!("optimizer.eps {eps} {e}"))?;
                lr
            }
        };
        rules::lr(lr).map_err(|e| format!("optimizer.lr {lr} {e}"))?;
        rules::weight_decay(self.weight_decay)
            .map_err(|e| format!("weight_decay {} {e}", self.weight_decay))?;
        rules::at_least_one(self.batch).map_err(|e| format!("batch {e}"))?;
        rules::at_least_one(self.epochs).map_err(|e| format!("epochs {e}"))?;
        if !(self.val_fraction > 0.0 && self.val_fraction < 0.9) {
            return Err(format!(
                "val_fraction {} must be above 0 and below 0.9 (the validation split picks the best epoch)",
                self.val_fraction
            ));
        }
        if let Some(Schedule::SkipStar {
            max_vanilla_epochs, ..
        }) = self.schedule
        {
            if max_vanilla_epochs == 0 || max_vanilla_epochs >= self.epochs {
                return Err(format!(
                    "schedule: max_vanilla_epochs {max_vanilla_epochs} must be between 1 and epochs - 1 ({})",
                    self.epochs - 1
                ));
            }
        }
        Ok(())
    }

    /// The network, with the skips the preset asks for (for skip*, the skips of phase 2).
    pub fn topology(&self) -> Result<Topology, crate::topology::TopologyError> {
        let (shape, classes) = (self.dataset.input_shape(), self.dataset.classes());
        let (mut topology, skips) = match &self.model {
            Model::Mlp {
                widths,
                skips,
                activation,
                init,
                norm,
            } => {
                let mut mlp = MlpSpec::new(shape.len(), widths.clone(), classes);
                mlp.activation = *activation;
                mlp.init = *init;
                mlp.norm = *norm;
                (Topology::Mlp(mlp), skips)
            }
            Model::Cnn {
                stages,
                skips,
                norm,
                shortcut,
                downsample,
                head,
                order,
            } => (
                Topology::Cnn(CnnSpec {
                    norm: *norm,
                    shortcut: *shortcut,
                    downsample: *downsample,
                    head: *head,
                    order: *order,
                    ..CnnSpec::new(shape, stages.clone(), classes)
                }),
                skips,
            ),
        };
        topology.validate()?;
        topology.apply_skips(&skips.0)?;
        Ok(topology)
    }

    /// What the run is, in a few characters for its id: `mlp3-skips-s2`, `cnn6-vanilla-s1`,
    /// `mlp4-skipstar-s3` (MLP layers as the paper counts them, hidden plus output; CNN
    /// convolutions).
    pub fn run_label(&self) -> String {
        let (net, skips) = match &self.model {
            Model::Mlp {
                widths,
                skips,
                norm,
                ..
            } => {
                // A normalised network says so: `mlp51-bn-...`, `mlp4-ln-...`.
                let norm = match norm {
                    Norm::None => "",
                    Norm::Batch => "-bn",
                    Norm::Layer => "-ln",
                };
                (format!("mlp{}{norm}", widths.len() + 1), skips)
            }
            Model::Cnn {
                stages,
                skips,
                norm,
                ..
            } => {
                let norm = if *norm == Norm::Batch { "-bn" } else { "" };
                let convs = stages.iter().map(Vec::len).sum::<usize>();
                (format!("cnn{convs}{norm}"), skips)
            }
        };
        let vanilla = matches!(&skips.0, SkipSelection::None)
            || matches!(&skips.0, SkipSelection::Edges(e) if e.is_empty());
        let residual = skips.0.terms().iter().any(|t| t.residual);
        let kind = match (self.schedule, vanilla, residual) {
            (_, true, _) => "vanilla",
            (Some(_), false, _) => "skipstar",
            (None, false, true) => "res",
            (None, false, false) => "skips",
        };
        format!("{net}-{kind}-s{}", self.seed)
    }

    pub fn train_config(&self) -> TrainConfig {
        let optimizer = match self.optimizer {
            Optimizer::Sgd { lr, momentum } => {
                OptimizerConfig::sgd(lr, momentum, self.weight_decay)
            }
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay: self.weight_decay,
            },
        };
        TrainConfig {
            optimizer,
            batch_size: self.batch,
            epochs: self.epochs,
            seed: self.seed,
            schedule: self.schedule,
        }
    }

    /// The experiment that trains `topology` on `dataset` with `config` (what the lab saves).
    pub fn from_parts(
        topology: &Topology,
        dataset: DatasetName,
        config: &TrainConfig,
        val_fraction: f64,
    ) -> Self {
        let skips = Skips(topology.selection());
        let model = match topology {
            Topology::Mlp(m) => Model::Mlp {
                widths: m.hidden.clone(),
                skips,
                activation: m.activation,
                init: m.init,
                norm: m.norm,
            },
            Topology::Cnn(c) => Model::Cnn {
                stages: c.stages.clone(),
                skips,
                norm: c.norm,
                shortcut: c.shortcut,
                downsample: c.downsample,
                head: c.head,
                order: c.order,
            },
        };
        let (optimizer, weight_decay) = match config.optimizer {
            OptimizerConfig::Sgd {
                lr,
                momentum,
                weight_decay,
            } => (Optimizer::Sgd { lr, momentum }, weight_decay),
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => (
                Optimizer::Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                },
                weight_decay,
            ),
        };
        Experiment {
            description: String::new(),
            dataset,
            model,
            optimizer,
            weight_decay,
            batch: config.batch_size,
            epochs: config.epochs,
            seed: config.seed,
            val_fraction,
            schedule: config.schedule,
        }
    }
}

/// The ranges of an experiment's values, one rule each, shared by every front end that takes
/// them ([`Experiment::validate`], the lab's train form): `Err` says what the value must be.
pub mod rules {
    pub fn lr(lr: f64) -> Result<(), &'static str> {
        match lr > 0.0 && lr.is_finite() {
            true => Ok(()),
            false => Err("must be a positive number"),
        }
    }

    pub fn momentum(momentum: f64) -> Result<(), &'static str> {
        match (0.0..1.0).contains(&momentum) {
            true => Ok(()),
            false => Err("must be in [0, 1)"),
        }
    }

    pub fn weight_decay(weight_decay: f64) -> Result<(), &'static str> {
        match weight_decay >= 0.0 && weight_decay.is_finite() {
            true => Ok(()),
            false => Err("must be zero or positive"),
        }
    }

    /// Adam's betas (the decay of its moment estimates).
    pub fn beta(beta: f64) -> Result<(), &'static str> {
        momentum(beta)
    }

    /// Adam's epsilon (added to the root of the second moment).
    pub fn eps(eps: f64) -> Result<(), &'static str> {
        match eps > 0.0 && eps.is_finite() {
            true => Ok(()),
            false => Err("must be a positive number"),
        }
    }

    /// Batch size, epochs.
    pub fn at_least_one(n: usize) -> Result<(), &'static str> {
        match n >= 1 {
            true => Ok(()),
            false => Err("must be at least 1"),
        }
    }
}

/// A preset file in a folder: its name (the file stem) and what it holds, or why it cannot
/// be used.
#[derive(Clone, Debug)]
pub struct PresetEntry {
    pub name: String,
    pub path: PathBuf,
    pub experiment: Result<Experiment, PresetError>,
}

/// Every `*.ron` in `dir`, sorted by name; broken files are listed with their error.
pub fn list_presets(dir: &Path) -> Vec<PresetEntry> {
    let mut entries: Vec<PresetEntry> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|path| PresetEntry {
            name: path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            experiment: Experiment::load(&path),
            path,
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// A name usable as a file stem: letters, digits, `-`, `_` and `.`, not starting with `.`.
pub fn valid_preset_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"(
    description: "3-layer MLP, all skips",
    dataset: "fashion-mnist",
    model: Mlp(widths: [128, 256], skips: "all"),
    optimizer: Sgd(lr: 0.01, momentum: 0.9),
    weight_decay: 0.0001,
    batch: 64,
    epochs: 10,
)"#;

    #[test]
    fn adams_betas_and_eps_survive_a_save_a_reload_and_the_trainer_config() {
        let text = EXAMPLE.replace(
            "Sgd(lr: 0.01, momentum: 0.9)",
            "Adam(lr: 0.002, beta1: 0.8, beta2: 0.99, eps: 1e-6)",
        );
        let e = Experiment::from_ron(&text, Path::new("adam.ron")).unwrap();
        let config = e.train_config();
        let OptimizerConfig::Adam {
            beta1, beta2, eps, ..
        } = config.optimizer
        else {
            panic!("{config:?}");
        };
        assert_eq!((beta1, beta2, eps), (0.8, 0.99, 1e-6));
        // Through the lab's path (topology and trainer config back to an experiment) and a
        // file, nothing is dropped.
        let back =
            Experiment::from_parts(&e.topology().unwrap(), e.dataset, &config, e.val_fraction);
        assert_eq!(back.optimizer, e.optimizer);
        let reloaded = Experiment::from_ron(&back.to_ron(), Path::new("again.ron")).unwrap();
        assert_eq!(reloaded.optimizer, e.optimizer);
        // The usual constants are not written, so older presets read and write as they did.
        let usual = Experiment::from_ron(
            &EXAMPLE.replace("Sgd(lr: 0.01, momentum: 0.9)", "Adam(lr: 0.001)"),
            Path::new("u.ron"),
        )
        .unwrap();
        assert_eq!(usual.optimizer, Optimizer::adam(0.001));
        assert!(!usual.to_ron().contains("beta"), "{}", usual.to_ron());
        // Out of range: named.
        let bad = text.replace("beta2: 0.99", "beta2: 1.5");
        let error = Experiment::from_ron(&bad, Path::new("bad.ron"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("optimizer.beta2 1.5 must be in [0, 1)"),
            "{error}"
        );
    }

    #[test]
    fn preset_to_experiment_to_preset_round_trips() {
        let e = Experiment::from_ron(EXAMPLE, Path::new("x.ron")).unwrap();
        assert_eq!(e.seed, 1);
        assert_eq!(e.val_fraction, 0.1);
        assert_eq!(e.topology().unwrap().skips().len(), 3);
        let text = e.to_ron();
        assert_eq!(Experiment::from_ron(&text, Path::new("y.ron")).unwrap(), e);
        // Explicit edges survive as text.
        let mut edges = e.clone();
        edges.model = Model::mlp(vec![128, 256], "0-2,1-3".parse().map(Skips).unwrap());
        assert!(
            edges.to_ron().contains(r#"skips: "0-2,1-3""#),
            "{}",
            edges.to_ron()
        );
        assert_eq!(
            Experiment::from_ron(&edges.to_ron(), Path::new("z")).unwrap(),
            edges
        );
        // And a topology built in the lab comes back as the same network.
        let config = e.train_config();
        let back =
            Experiment::from_parts(&e.topology().unwrap(), e.dataset, &config, e.val_fraction);
        assert_eq!(back.topology().unwrap(), e.topology().unwrap());
        assert_eq!(back.train_config(), config);
        // Edge kinds, the activation and the initialisation survive a save as a preset.
        let mut deep = crate::topology::MlpSpec::new(784, vec![64; 6], 10);
        deep.activation = crate::topology::Activation::Tanh;
        deep.init = crate::topology::InitScheme::Xavier;
        let mut deep = Topology::Mlp(deep);
        deep.apply_skips(&"res:chain:2,0-3,1-7".parse().unwrap())
            .unwrap();
        let text = Experiment::from_parts(&deep, e.dataset, &config, e.val_fraction).to_ron();
        assert!(
            text.contains("activation: tanh") && text.contains("res:"),
            "{text}"
        );
        let back = Experiment::from_ron(&text, Path::new("deep.ron")).unwrap();
        assert_eq!(back.topology().unwrap(), deep, "{text}");
    }

    #[test]
    fn errors_name_the_file_line_and_column_or_the_field() {
        let p = Path::new("presets/bad.ron");
        let unknown = EXAMPLE.replace("batch: 64", "batch: 64,\n    dropout: 0.5");
        let e = Experiment::from_ron(&unknown, p).unwrap_err().to_string();
        assert!(e.starts_with("presets/bad.ron:8:5: "), "{e}");
        assert!(e.contains("dropout"), "{e}");
        let truncated = &EXAMPLE[..EXAMPLE.len() / 2];
        let e = Experiment::from_ron(truncated, p).unwrap_err();
        assert!(e.at.is_some(), "{e}");
        let bad_skips = EXAMPLE.replace(r#"skips: "all""#, r#"skips: "0-x""#);
        let e = Experiment::from_ron(&bad_skips, p).unwrap_err().to_string();
        assert!(
            e.starts_with("presets/bad.ron:4:") && e.contains("`x`"),
            "{e}"
        );
        let bad_edge = EXAMPLE.replace(r#"skips: "all""#, r#"skips: "1-2""#);
        let e = Experiment::from_ron(&bad_edge, p).unwrap_err().to_string();
        assert!(e.contains("model: skip edge 1-2"), "{e}");
        let bad_lr = EXAMPLE.replace("lr: 0.01", "lr: -1.0");
        let e = Experiment::from_ron(&bad_lr, p).unwrap_err().to_string();
        assert_eq!(
            e,
            "presets/bad.ron: optimizer.lr -1 must be a positive number"
        );
        let bad_data = EXAMPLE.replace("fashion-mnist", "imagenet");
        let e = Experiment::from_ron(&bad_data, p).unwrap_err().to_string();
        assert!(e.contains("unknown data set `imagenet`"), "{e}");
    }

    #[test]
    fn a_width_repeated_zero_times_is_refused() {
        assert_eq!(parse_widths("64x2").unwrap(), [vec![64, 64]]);
        let e = parse_widths("64x0").unwrap_err();
        assert!(e.contains("`64x0` repeats a width 1 to 1024 times"), "{e}");
    }

    #[test]
    fn preset_names_are_plain_file_stems() {
        assert!(valid_preset_name("fashion-mlp3_skip.v2"));
        for bad in ["", ".hidden", "a/b", "a b", "../x"] {
            assert!(!valid_preset_name(bad), "{bad}");
        }
    }
}

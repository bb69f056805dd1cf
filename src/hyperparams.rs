//! What a run trains with, as plain data: the optimiser and its hyperparameters, the batch,
//! the epochs, the seed and the schedule. No dfdx here, so the lab, the preset format and
//! `compare` read a configuration without the network layer; `net::optim` runs it.

use serde::{Deserialize, Serialize};

/// Which optimiser, with its hyperparameters. Weight decay is L2 (added to the gradient).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum OptimizerConfig {
    Sgd {
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    },
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    pub fn sgd(lr: f64, momentum: f64, weight_decay: f64) -> Self {
        OptimizerConfig::Sgd {
            lr,
            momentum,
            weight_decay,
        }
    }

    pub fn adam(lr: f64, weight_decay: f64) -> Self {
        OptimizerConfig::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }

    pub fn lr(&self) -> f64 {
        match *self {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::Adam { lr, .. } => lr,
        }
    }

    pub fn weight_decay(&self) -> f64 {
        match *self {
            OptimizerConfig::Sgd { weight_decay, .. }
            | OptimizerConfig::Adam { weight_decay, .. } => weight_decay,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adam { .. } => "adam",
        }
    }
}

/// How to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub optimizer: OptimizerConfig,
    pub batch_size: usize,
    pub epochs: usize,
    pub seed: u64,
    #[serde(default)]
    pub schedule: Option<Schedule>,
}

/// A change of topology during training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Schedule {
    /// The paper's skip*: train with every skip off until validation accuracy has not
    /// improved for `patience` epochs (or `max_vanilla_epochs` have passed), then enable the
    /// topology's skips, keeping every trained weight (new skip weights start at zero, so the
    /// function is unchanged at the switch), and train on to `epochs` in all.
    SkipStar {
        max_vanilla_epochs: usize,
        patience: usize,
    },
}

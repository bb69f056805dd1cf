//! The study the paper names but skips: skip connections as a gradient shortcut in deep MLPs.
//! Depth x activation x (vanilla, residual every two layers, dense skips), each reported by
//! its accuracy, how soon it reached 80%, and how large its first layer's gradient was.

use std::fmt::Write as _;

use crate::data::DatasetName;
use crate::experiment::{Experiment, Model, Optimizer, Skips};
use crate::topology::{Activation, InitScheme};
use crate::train::{EpochMetrics, FlowPoint};

/// How the study wires a deep MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wiring {
    Vanilla,
    /// `res:chain:2`: a residual edge over every two layers (identity where widths match).
    Residual,
    /// `all`: every non-adjacent pair concatenated (the paper's dense skips).
    Dense,
}

impl Wiring {
    pub const ALL: [Wiring; 3] = [Wiring::Vanilla, Wiring::Residual, Wiring::Dense];
    pub fn name(self) -> &'static str {
        match self {
            Wiring::Vanilla => "vanilla",
            Wiring::Residual => "residual every 2",
            Wiring::Dense => "dense skips",
        }
    }
    fn skips(self) -> &'static str {
        match self {
            Wiring::Vanilla => "none",
            Wiring::Residual => "res:chain:2",
            Wiring::Dense => "all",
        }
    }
}

/// One configuration of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeepConfig {
    /// Hidden layers.
    pub depth: usize,
    pub activation: Activation,
    pub wiring: Wiring,
}

/// The initialisation the study uses: Xavier, balanced for every activation it compares
/// (He makes a deep ReLU net with identity residuals blow up; PyTorch's default starves a
/// deep vanilla ReLU net).
pub const STUDY_INIT: InitScheme = InitScheme::Xavier;

impl DeepConfig {
    /// Every configuration for these depths: sigmoid, tanh, ReLU x the three wirings.
    pub fn grid(depths: &[usize]) -> Vec<DeepConfig> {
        let mut out = Vec::new();
        for &depth in depths {
            for activation in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
                for wiring in Wiring::ALL {
                    out.push(DeepConfig {
                        depth,
                        activation,
                        wiring,
                    });
                }
            }
        }
        out
    }

    pub fn label(self) -> String {
        format!(
            "{} layers {} {}",
            self.depth,
            self.activation.name(),
            self.wiring.name()
        )
    }

    pub fn experiment(
        self,
        dataset: DatasetName,
        width: usize,
        epochs: usize,
        seed: u64,
    ) -> Experiment {
        Experiment {
            description: format!("gradient study: {}", self.label()),
            dataset,
            model: Model::Mlp {
                widths: vec![width; self.depth],
                skips: Skips(
                    self.wiring
                        .skips()
                        .parse()
                        .expect("the study's patterns parse"),
                ),
                activation: self.activation,
                init: STUDY_INIT,
                norm: Default::default(),
            },
            optimizer: Optimizer::Sgd {
                lr: 0.01,
                momentum: 0.9,
            },
            weight_decay: 0.0,
            batch: 64,
            epochs,
            seed,
            val_fraction: 0.1,
            schedule: None,
        }
    }
}

/// What one run of the study gave.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepOutcome {
    pub config: DeepConfig,
    pub final_val: Option<f64>,
    pub best_val: Option<f64>,
    /// The first epoch whose validation accuracy reached 80%.
    pub epochs_to_80: Option<usize>,
    /// Geometric mean of the first layer's gradient norm over the first epoch's points.
    pub first_layer_gradient: Option<f64>,
    /// The same for the output layer.
    pub output_gradient: Option<f64>,
    pub seconds_per_epoch: Option<f64>,
    /// Why it did not finish, if it did not.
    pub problem: Option<String>,
}

impl DeepOutcome {
    pub fn new(
        config: DeepConfig,
        epochs: &[EpochMetrics],
        flows: &[FlowPoint],
        seconds_per_epoch: Option<f64>,
        problem: Option<String>,
    ) -> Self {
        let first_epoch: Vec<&FlowPoint> = flows.iter().filter(|f| f.epoch == 1).collect();
        let geometric = |pick: &dyn Fn(&FlowPoint) -> Option<f64>| {
            let logs: Vec<f64> = first_epoch
                .iter()
                .filter_map(|f| pick(f))
                .map(|g| g.max(1e-30).ln())
                .collect();
            (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
        };
        Self {
            config,
            final_val: epochs.last().map(|m| m.val_accuracy),
            best_val: epochs.iter().map(|m| m.val_accuracy).reduce(f64::max),
            epochs_to_80: epochs
                .iter()
                .find(|m| m.val_accuracy >= 0.8)
                .map(|m| m.epoch),
            first_layer_gradient: geometric(&|f| f.layers.first().map(|l| l.grad_norm)),
            output_gradient: geometric(&|f| f.layers.last().map(|l| l.grad_norm)),
            seconds_per_epoch,
            problem,
        }
    }
}

/// A gradient norm in two digits; one that underflowed f32 to zero shows as 0 (the mean
/// floors norms at 1e-30 to take their logarithm).
pub fn norm_text(norm: Option<f64>) -> String {
    match norm {
        None => "-".into(),
        Some(v) if v <= 1e-29 => "0".into(),
        Some(v) => format!("{v:.1e}"),
    }
}

/// The study as a Markdown table, a row per configuration, in the order given.
pub fn report(
    outcomes: &[DeepOutcome],
    dataset: DatasetName,
    width: usize,
    epochs: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Deep MLPs of width {width} on {dataset}, {epochs} epochs, SGD lr 0.01 momentum 0.9, batch 64, {} initialisation, one seed. Layer-1 |grad|: geometric mean of the first layer's gradient norm over epoch 1; ratio: that over the output layer's.\n",
        STUDY_INIT.name()
    );
    let _ = writeln!(
        out,
        "| hidden layers | activation | wiring | final val | best val | epochs to 80% | layer-1 \\|grad\\| | layer-1 / output | s/epoch |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v));
    let sci = norm_text;
    for o in outcomes {
        let c = o.config;
        let ratio = o.first_layer_gradient.zip(o.output_gradient).map(|(a, b)| {
            if a <= 1e-29 {
                0.0
            } else {
                a / b.max(1e-30)
            }
        });
        let reached = match (o.epochs_to_80, &o.problem) {
            (_, Some(p)) => p.split(':').next().unwrap_or(p).to_string(),
            (Some(e), None) => e.to_string(),
            (None, None) => "not reached".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {reached} | {} | {} | {} |",
            c.depth,
            c.activation.name(),
            c.wiring.name(),
            pct(o.final_val),
            pct(o.best_val),
            sci(o.first_layer_gradient),
            sci(ratio),
            o.seconds_per_epoch
                .map_or("-".into(), |s| format!("{s:.2}"))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::LayerFlow;

    #[test]
    fn the_grid_builds_and_outcomes_summarise_the_first_epoch() {
        let grid = DeepConfig::grid(&[20]);
        assert_eq!(grid.len(), 9);
        for c in &grid {
            let t = c
                .experiment(DatasetName::Builtin, 32, 2, 1)
                .topology()
                .unwrap();
            assert_eq!(t.layer_summaries().len(), 22, "{}", c.label());
        }
        let flow = |epoch, first: f64, last: f64| FlowPoint {
            step: 1,
            epoch,
            layers: vec![
                LayerFlow {
                    layer: "fc1".into(),
                    grad_norm: first,
                    update_ratio: 0.0,
                },
                LayerFlow {
                    layer: "fc21".into(),
                    grad_norm: last,
                    update_ratio: 0.0,
                },
            ],
        };
        let flows = [flow(1, 1e-6, 1e-2), flow(1, 1e-4, 1e-2), flow(2, 1.0, 1.0)];
        let o = DeepOutcome::new(grid[0], &[], &flows, None, None);
        assert!((o.first_layer_gradient.unwrap() - 1e-5).abs() < 1e-12);
        let text = report(&[o], DatasetName::Builtin, 32, 2);
        assert!(
            text.contains("| 20 | sigmoid | vanilla | - | - | not reached | 1.0e-5 | 1.0e-3 | - |"),
            "{text}"
        );
    }
}

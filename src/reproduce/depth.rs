//! Plain against residual as depth grows: the degradation problem (He et al. 2015: a deeper
//! plain network trains *worse*, its training loss as well as its accuracy) and how residual
//! edges remove it, for ResNet-style CNNs with batch norm and for deep MLPs with batch norm.
//! Each pair is tested seed against seed with Welch's t-test.

use std::fmt::Write as _;

use crate::compare::{mean_sd, welch};
use crate::data::DatasetName;
use crate::experiment::{Experiment, Model, Optimizer, Skips};
use crate::topology::{Downsample, Head, Norm, Shortcut};
use crate::train::EpochMetrics;

/// Which kind of network the study deepens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// He et al.'s CIFAR ResNet layout: a 16-channel stem, three stages of n two-conv blocks
    /// at 16/32/64 channels (stride-2 downsampling, option-A shortcuts), batch norm, global
    /// average pool: `6n + 2` layers.
    Cnn,
    /// Hidden layers of 64 with batch norm; residual edges every two layers.
    Mlp,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Cnn => "cnn",
            Family::Mlp => "mlp",
        }
    }
}

/// One configuration: a family at a depth (layers with weights, the classifier counted),
/// plain or residual.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DepthConfig {
    pub family: Family,
    pub depth: usize,
    pub residual: bool,
}

/// The MLP study's hidden width.
pub const MLP_WIDTH: usize = 64;

impl DepthConfig {
    /// Plain and residual for every family and depth; a CNN depth must be `6n + 2` (8, 20,
    /// 32, 56, 110) and an MLP's at least 3.
    pub fn grid(families: &[Family], depths: &[usize]) -> Result<Vec<DepthConfig>, String> {
        let mut out = Vec::new();
        for &family in families {
            for &depth in depths {
                match family {
                    Family::Cnn if depth < 8 || (depth - 2) % 6 != 0 => {
                        return Err(format!(
                            "a ResNet-style CNN has 6n + 2 layers (8, 20, 32, 56, 110): {depth} is not one"
                        ))
                    }
                    Family::Mlp if depth < 3 => {
                        return Err(format!("an MLP of depth {depth} has no block to skip"))
                    }
                    _ => {}
                }
                for residual in [false, true] {
                    out.push(DepthConfig {
                        family,
                        depth,
                        residual,
                    });
                }
            }
        }
        Ok(out)
    }

    /// `cnn 20 residual`, `mlp 50 plain`.
    pub fn label(self) -> String {
        let wiring = if self.residual { "residual" } else { "plain" };
        format!("{} {} {wiring}", self.family.name(), self.depth)
    }

    pub fn experiment(self, dataset: DatasetName, epochs: usize, seed: u64) -> Experiment {
        let (model, optimizer, weight_decay, batch) = match self.family {
            Family::Cnn => {
                let n = (self.depth - 2) / 6;
                let skips = if self.residual {
                    "res:blocks:2"
                } else {
                    "none"
                };
                (
                    Model::Cnn {
                        stages: vec![vec![16; 2 * n + 1], vec![32; 2 * n], vec![64; 2 * n]],
                        skips: Skips(skips.parse().expect("the study's patterns parse")),
                        norm: Norm::Batch,
                        shortcut: Shortcut::Pad,
                        downsample: Downsample::Stride,
                        head: Head::Average,
                        order: Default::default(),
                    },
                    // He et al.'s: SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128.
                    Optimizer::Sgd {
                        lr: 0.1,
                        momentum: 0.9,
                    },
                    1e-4,
                    128,
                )
            }
            Family::Mlp => {
                let skips = if self.residual { "res:chain:2" } else { "none" };
                (
                    Model::Mlp {
                        widths: vec![MLP_WIDTH; self.depth - 1],
                        skips: Skips(skips.parse().expect("the study's patterns parse")),
                        activation: Default::default(),
                        init: Default::default(),
                        norm: Norm::Batch,
                    },
                    Optimizer::adam(1e-3),
                    0.0,
                    64,
                )
            }
        };
        Experiment {
            description: format!("depth study: {}", self.label()),
            dataset,
            model,
            optimizer,
            weight_decay,
            batch,
            epochs,
            seed,
            val_fraction: 0.1,
            schedule: None,
        }
    }
}

/// What one run gave: its last epoch's training loss and validation accuracy.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthOutcome {
    pub config: DepthConfig,
    pub seed: u64,
    pub train_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub seconds_per_epoch: Option<f64>,
    /// Why it did not finish, if it did not.
    pub problem: Option<String>,
}

impl DepthOutcome {
    pub fn new(
        config: DepthConfig,
        seed: u64,
        epochs: &[EpochMetrics],
        seconds_per_epoch: Option<f64>,
        problem: Option<String>,
    ) -> Self {
        let last = epochs.last();
        Self {
            config,
            seed,
            train_loss: last.map(|m| m.train_loss),
            val_accuracy: last.map(|m| m.val_accuracy),
            seconds_per_epoch,
            problem,
        }
    }
}

/// Li et al. 2018 (Table 1), CIFAR-10 test error in % with / without shortcuts, by depth.
pub const LI_ET_AL: [(usize, f64, f64); 3] =
    [(20, 7.37, 8.18), (56, 5.89, 13.31), (110, 5.79, 16.44)];

/// An outcome of one of the depth study's runs: what the depth, lesion and landscape reports
/// group, plain beside residual.
pub trait DepthRun {
    fn config(&self) -> DepthConfig;
}

impl DepthRun for DepthOutcome {
    fn config(&self) -> DepthConfig {
        self.config
    }
}

/// One family and depth of a report: its plain runs and its residual runs.
pub struct Setting<'a, T> {
    pub family: Family,
    pub depth: usize,
    pub plain: Vec<&'a T>,
    pub residual: Vec<&'a T>,
}

/// The outcomes by family and depth, in the order they first appear.
pub fn settings<T: DepthRun>(outcomes: &[T]) -> Vec<Setting<'_, T>> {
    let mut keys: Vec<(Family, usize)> = Vec::new();
    for o in outcomes {
        let key = (o.config().family, o.config().depth);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(family, depth)| {
            let side = |residual: bool| {
                outcomes
                    .iter()
                    .filter(|o| {
                        o.config()
                            == DepthConfig {
                                family,
                                depth,
                                residual,
                            }
                    })
                    .collect()
            };
            Setting {
                family,
                depth,
                plain: side(false),
                residual: side(true),
            }
        })
        .collect()
}

/// `values` times `scale` as a report cell: `mean ± sd` in `digits` decimals, one value as
/// itself, none as `-`.
pub fn mean_sd_cell(values: &[f64], scale: f64, digits: usize) -> String {
    match values.len() {
        0 => "-".to_string(),
        1 => format!("{:.*}", digits, scale * values[0]),
        _ => {
            let (m, sd) = mean_sd(values);
            format!("{:.*} ± {:.*}", digits, scale * m, digits, scale * sd)
        }
    }
}

/// Welch's p for two samples as a report cell (`< 0.001`; `-` where a side has too few).
pub fn p_cell(a: &[f64], b: &[f64]) -> String {
    welch(a, b).map_or("-".to_string(), |w| {
        if w.p < 0.001 {
            "< 0.001".into()
        } else {
            format!("{:.3}", w.p)
        }
    })
}

/// The study as Markdown: a row per family and depth, plain beside residual (mean ± sd over
/// seeds), each difference with Welch's t-test, and Li et al.'s CIFAR-10 errors where they
/// published that depth.
pub fn report(outcomes: &[DepthOutcome], dataset: DatasetName, epochs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plain against residual on {dataset}, {epochs} epochs, the last epoch's figures. CNN: He et al.'s CIFAR ResNet layout (16/32/64 channels, stride-2 stages, option-A shortcuts, batch norm, average-pool head), SGD 0.1 momentum 0.9, weight decay 1e-4, batch 128, no augmentation. MLP: hidden layers of {MLP_WIDTH} with batch norm, residual edges every two layers, Adam 0.001, batch 64. Differences are residual minus plain; p from Welch's t-test over seeds.\n"
    );
    let _ = writeln!(
        out,
        "| net | depth | train loss plain | train loss residual | p | val acc plain | val acc residual | difference | p | s/epoch plain / residual | Li et al. CIFAR-10 error plain / residual |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    for setting in settings(outcomes) {
        let Setting { family, depth, .. } = setting;
        let (plain, residual) = (setting.plain, setting.residual);
        let values = |runs: &[&DepthOutcome], pick: &dyn Fn(&DepthOutcome) -> Option<f64>| {
            runs.iter()
                .filter_map(|o| pick(o))
                .filter(|v| v.is_finite())
                .collect::<Vec<f64>>()
        };
        let shown = |v: &[f64], scale: f64, digits: usize, failed: usize| {
            let text = mean_sd_cell(v, scale, digits);
            match failed {
                0 => text,
                n => format!("{text} ({n} failed)"),
            }
        };
        let failed = |runs: &[&DepthOutcome]| runs.iter().filter(|o| o.problem.is_some()).count();
        let p = |a: &[f64], b: &[f64]| p_cell(b, a);
        let loss = |o: &DepthOutcome| o.train_loss;
        let acc = |o: &DepthOutcome| o.val_accuracy;
        let (lp, lr) = (values(&plain, &loss), values(&residual, &loss));
        let (ap, ar) = (values(&plain, &acc), values(&residual, &acc));
        let difference = match (ap.is_empty(), ar.is_empty()) {
            (false, false) => format!("{:+.2} pp", 100.0 * (mean_sd(&ar).0 - mean_sd(&ap).0)),
            _ => "-".into(),
        };
        let seconds = |runs: &[&DepthOutcome]| {
            let s = values(runs, &|o| o.seconds_per_epoch);
            match mean_sd(&s).0 {
                _ if s.is_empty() => "-".to_string(),
                m if m < 10.0 => format!("{m:.1}"),
                m => format!("{m:.0}"),
            }
        };
        let li = match family {
            Family::Cnn => LI_ET_AL
                .iter()
                .find(|(d, ..)| *d == depth)
                .map_or("-".to_string(), |(_, with, without)| {
                    format!("{without}% / {with}%")
                }),
            Family::Mlp => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | {depth} | {} | {} | {} | {} | {} | {difference} | {} | {} / {} | {li} |",
            family.name(),
            shown(&lp, 1.0, 3, failed(&plain)),
            shown(&lr, 1.0, 3, failed(&residual)),
            p(&lp, &lr),
            shown(&ap, 100.0, 2, 0),
            shown(&ar, 100.0, 2, 0),
            p(&ap, &ar),
            seconds(&plain),
            seconds(&residual),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_builds_he_et_al_s_layouts_and_refuses_other_depths() {
        let grid = DepthConfig::grid(&[Family::Cnn, Family::Mlp], &[8, 20]).unwrap();
        assert_eq!(grid.len(), 8);
        for c in &grid {
            let t = c.experiment(DatasetName::Builtin, 1, 1).topology().unwrap();
            // Layers with weights: convolutions and the classifier, or hidden and output.
            let weighted = t.layer_summaries().iter().filter(|l| l.params > 0).count();
            assert_eq!(weighted, c.depth, "{}", c.label());
            let blocks = match (c.residual, c.family) {
                (false, _) => 0,
                (true, Family::Cnn) => 3 * (c.depth - 2) / 6,
                // Layers 0 (the input) to depth (the output), an edge every two.
                (true, Family::Mlp) => c.depth / 2,
            };
            assert_eq!(t.residual_edges().len(), blocks, "{}", c.label());
        }
        // ResNet-20 has about 0.27 million parameters (He et al.).
        let resnet20 = DepthConfig {
            family: Family::Cnn,
            depth: 20,
            residual: true,
        };
        let params = resnet20
            .experiment(DatasetName::Cifar10, 1, 1)
            .topology()
            .unwrap()
            .param_count();
        assert!((265_000..275_000).contains(&params), "{params}");
        assert!(DepthConfig::grid(&[Family::Cnn], &[10]).is_err());
    }

    #[test]
    fn the_report_tests_each_pair_and_cites_li_et_al() {
        let run = |residual, seed, loss, acc| DepthOutcome {
            config: DepthConfig {
                family: Family::Cnn,
                depth: 20,
                residual,
            },
            seed,
            train_loss: Some(loss),
            val_accuracy: Some(acc),
            seconds_per_epoch: Some(10.0),
            problem: None,
        };
        let outcomes = [
            run(false, 1, 0.50, 0.80),
            run(false, 2, 0.52, 0.81),
            run(true, 1, 0.30, 0.88),
            run(true, 2, 0.31, 0.89),
        ];
        let text = report(&outcomes, DatasetName::FashionMnist, 3);
        assert!(
            text.contains("| cnn | 20 | 0.510 ± 0.014 | 0.305 ± 0.007 |"),
            "{text}"
        );
        assert!(
            text.contains("80.50 ± 0.71 | 88.50 ± 0.71 | +8.00 pp |"),
            "{text}"
        );
        assert!(text.contains("| 10 / 10 | 8.18% / 7.37% |"), "{text}");
    }
}

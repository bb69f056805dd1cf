//! Veit, Wilber and Belongie 2016 at small scale: the depth study's plain networks and their
//! residual twins, trained, then lesioned without retraining. A plain network should fall to
//! chance when any one layer is deleted; a residual one should barely notice most single
//! block deletions, and lose accuracy smoothly as more blocks go.

use std::fmt::Write as _;

use crate::analysis::lesion::Lesion;
use crate::compare::mean_sd;
use crate::data::DatasetName;

use super::depth::{mean_sd_cell, p_cell, settings, DepthConfig, DepthRun, Setting, MLP_WIDTH};

/// What one run's lesion study came to.
#[derive(Clone, Debug, PartialEq)]
pub struct LesionOutcome {
    pub config: DepthConfig,
    pub seed: u64,
    /// The intact network's validation accuracy.
    pub baseline: Option<f64>,
    /// Accuracy lost by deleting each layer of the pool alone (baseline minus lesioned).
    pub drops: Vec<f64>,
    /// The pool's size.
    pub blocks: usize,
    /// The mean accuracy over the draws at k = 1, 2, ...
    pub curve: Vec<f64>,
    /// Why there is no study, if there is none.
    pub problem: Option<String>,
}

impl LesionOutcome {
    pub fn new(config: DepthConfig, seed: u64, study: &Lesion) -> Self {
        let drops = study
            .deletions
            .iter()
            .filter(|d| study.pool.contains(&d.layer))
            .filter_map(|d| d.score.map(|s| study.baseline.accuracy - s.accuracy))
            .collect();
        let curve = study
            .curve
            .iter()
            .filter_map(|p| p.accuracy().map(|s| s.mean))
            .collect();
        Self {
            config,
            seed,
            baseline: Some(study.baseline.accuracy),
            drops,
            blocks: study.pool.len(),
            curve,
            problem: None,
        }
    }

    pub fn failed(config: DepthConfig, seed: u64, problem: String) -> Self {
        Self {
            config,
            seed,
            baseline: None,
            drops: Vec::new(),
            blocks: 0,
            curve: Vec::new(),
            problem: Some(problem),
        }
    }

    /// The mean accuracy lost by one deletion.
    pub fn mean_drop(&self) -> Option<f64> {
        (!self.drops.is_empty()).then(|| mean_sd(&self.drops).0)
    }

    pub fn worst_drop(&self) -> Option<f64> {
        self.drops.iter().copied().reduce(f64::max)
    }
}

/// How many k columns the report shows at most.
pub const CURVE_COLUMNS: usize = 6;

impl DepthRun for LesionOutcome {
    fn config(&self) -> DepthConfig {
        self.config
    }
}

/// The study as Markdown: per family and depth, plain beside residual (mean ± sd over seeds):
/// the intact accuracy, the mean and worst loss from one deletion (Welch's t-test on the
/// mean), and the k-deletion curve.
pub fn report(outcomes: &[LesionOutcome], dataset: DatasetName, epochs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Lesion study (Veit et al. 2016) on {dataset}, {epochs} epochs: the depth study's networks (CNN: He et al.'s CIFAR ResNet layout with batch norm and option-A shortcuts, and its plain twin; MLP: hidden layers of {MLP_WIDTH} with batch norm, residual edges every two layers, and its plain twin), trained, then evaluated on their validation split with parts deleted and no retraining. A plain network's unit is a layer passed through as identity; a residual network's is a block whose branch is dropped. Accuracy in %, drops in percentage points, mean ± sd over seeds; p from Welch's t-test on the mean drop.\n"
    );
    let max_k = outcomes
        .iter()
        .map(|o| o.curve.len())
        .max()
        .unwrap_or(0)
        .min(CURVE_COLUMNS);
    let mut header =
        "| net | depth | wiring | units | val acc | mean drop, 1 deleted | worst drop | p |"
            .to_string();
    let mut rule = "|---|---|---|---|---|---|---|---|".to_string();
    for k in 1..=max_k {
        let _ = write!(header, " acc, {k} deleted |");
        rule.push_str("---|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    let shown = |v: &[f64]| mean_sd_cell(v, 100.0, 1);
    for setting in settings(outcomes) {
        let Setting { family, depth, .. } = setting;
        let (plain, residual) = (setting.plain, setting.residual);
        let mean_drops = |runs: &[&LesionOutcome]| -> Vec<f64> {
            runs.iter().filter_map(|o| o.mean_drop()).collect()
        };
        let p = p_cell(&mean_drops(&plain), &mean_drops(&residual));
        for (runs, wiring) in [(&plain, "plain"), (&residual, "residual")] {
            if runs.is_empty() {
                continue;
            }
            let failed = runs.iter().filter(|o| o.problem.is_some()).count();
            let units = runs.iter().map(|o| o.blocks).max().unwrap_or(0);
            let unit = if wiring == "plain" {
                "layers"
            } else {
                "blocks"
            };
            let baseline: Vec<f64> = runs.iter().filter_map(|o| o.baseline).collect();
            let worst: Vec<f64> = runs.iter().filter_map(|o| o.worst_drop()).collect();
            let mut line = format!(
                "| {} | {depth} | {wiring}{} | {units} {unit} | {} | {} | {} | {} |",
                family.name(),
                match failed {
                    0 => String::new(),
                    n => format!(" ({n} failed)"),
                },
                shown(&baseline),
                shown(&mean_drops(runs)),
                shown(&worst),
                if wiring == "plain" { "" } else { p.as_str() },
            );
            for k in 0..max_k {
                let at_k: Vec<f64> = runs
                    .iter()
                    .filter_map(|o| o.curve.get(k).copied())
                    .collect();
                let _ = write!(line, " {} |", shown(&at_k));
            }
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = writeln!(
        out,
        "\nVeit et al. (CIFAR-10): deleting any single layer of a VGG network leaves it at chance (about 90% error); deleting a single block of a 110-layer ResNet barely changes its error, except at the downsampling blocks; error grows smoothly as more blocks are deleted at random."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reproduce::depth::Family;

    #[test]
    fn the_report_sets_plain_beside_residual_with_the_curve() {
        let outcome = |residual, seed, baseline, drops: Vec<f64>, curve: Vec<f64>| LesionOutcome {
            config: DepthConfig {
                family: Family::Mlp,
                depth: 12,
                residual,
            },
            seed,
            baseline: Some(baseline),
            blocks: drops.len(),
            drops,
            curve,
            problem: None,
        };
        let outcomes = [
            outcome(false, 1, 0.80, vec![0.70, 0.68], vec![0.10, 0.10]),
            outcome(false, 2, 0.80, vec![0.72, 0.70], vec![0.12, 0.10]),
            outcome(true, 1, 0.82, vec![0.02, 0.04], vec![0.79, 0.75]),
            outcome(true, 2, 0.84, vec![0.04, 0.06], vec![0.80, 0.74]),
        ];
        let text = report(&outcomes, DatasetName::Builtin, 2);
        assert!(
            text.contains("| mlp | 12 | plain | 2 layers | 80.0 ± 0.0 | 70.0 ± 1.4 | 71.0 ± 1.4 |  | 11.0 ± 1.4 | 10.0 ± 0.0 |"),
            "{text}"
        );
        assert!(
            text.contains("| mlp | 12 | residual | 2 blocks | 83.0 ± 1.4 | 4.0 ± 1.4 | 5.0 ± 1.4 | < 0.001 | 79.5 ± 0.7 | 74.5 ± 0.7 |"),
            "{text}"
        );
        assert!(text.contains("acc, 2 deleted"), "{text}");
    }
}

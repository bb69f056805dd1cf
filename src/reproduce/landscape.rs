//! Li et al. 2018 at small scale: the loss along a filter-normalised random direction of
//! plain networks and their residual twins (the depth study's), at a shallow and a deep
//! setting, the same directions' seed for all, and a sharpness compared over seeds.

use std::fmt::Write as _;

use crate::data::DatasetName;

use super::depth::{mean_sd_cell, p_cell, settings, DepthConfig, DepthRun, Setting};

/// What one run's landscape came to.
#[derive(Clone, Debug, PartialEq)]
pub struct LandscapeOutcome {
    pub config: DepthConfig,
    pub seed: u64,
    /// The mean rise of the loss over the curve above the trained weights' loss.
    pub sharpness: Option<f64>,
    pub centre_loss: Option<f64>,
    /// The loss at the curve's ends (α = ±range), the larger.
    pub edge_loss: Option<f64>,
    pub problem: Option<String>,
}

/// Grid points and examples the reproduction uses.
pub const POINTS: usize = 21;
pub const EXAMPLES: usize = 1000;

impl DepthRun for LandscapeOutcome {
    fn config(&self) -> DepthConfig {
        self.config
    }
}

/// The study as Markdown: per family and depth, plain beside residual (mean ± sd over
/// seeds), Welch's t-test on the sharpness, and Li et al.'s finding.
pub fn report(outcomes: &[LandscapeOutcome], dataset: DatasetName, epochs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Loss landscapes (Li et al. 2018) on {dataset}, {epochs} epochs: the depth study's plain networks and residual twins, each run's training loss on {EXAMPLES} training examples at {POINTS} points along one random filter-normalised direction (α from -1 to 1, direction seed 0 for every run), evaluation mode. Sharpness: the mean rise of the loss over the curve above the loss at the trained weights. Mean ± sd over seeds; p from Welch's t-test on the sharpness.\n"
    );
    let _ = writeln!(
        out,
        "| net | depth | loss at θ plain / residual | sharpness plain | sharpness residual | p | loss at α = ±1 plain / residual |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let shown = |v: &[f64]| mean_sd_cell(v, 1.0, 3);
    for setting in settings(outcomes) {
        let Setting { family, depth, .. } = setting;
        let (plain, residual) = (setting.plain, setting.residual);
        let pick = |runs: &[&LandscapeOutcome], f: &dyn Fn(&LandscapeOutcome) -> Option<f64>| {
            runs.iter().filter_map(|o| f(o)).collect::<Vec<f64>>()
        };
        let sharp = |o: &LandscapeOutcome| o.sharpness;
        let (sp, sr) = (pick(&plain, &sharp), pick(&residual, &sharp));
        let p = p_cell(&sr, &sp);
        let centre = |o: &LandscapeOutcome| o.centre_loss;
        let edge = |o: &LandscapeOutcome| o.edge_loss;
        let _ = writeln!(
            out,
            "| {} | {depth} | {} / {} | {} | {} | {p} | {} / {} |",
            family.name(),
            shown(&pick(&plain, &centre)),
            shown(&pick(&residual, &centre)),
            shown(&sp),
            shown(&sr),
            shown(&pick(&plain, &edge)),
            shown(&pick(&residual, &edge)),
        );
    }
    let _ = writeln!(
        out,
        "\nLi et al. (CIFAR-10): without shortcuts the landscape turns from nearly convex to chaotic as depth grows (ResNet-56 against its no-shortcut twin, their Fig. 5); at 20 layers the difference is hardly visible."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reproduce::depth::Family;

    #[test]
    fn the_report_tests_the_sharpness_of_each_pair() {
        let o = |residual, seed, sharpness| LandscapeOutcome {
            config: DepthConfig {
                family: Family::Mlp,
                depth: 20,
                residual,
            },
            seed,
            sharpness: Some(sharpness),
            centre_loss: Some(0.4),
            edge_loss: Some(sharpness * 3.0),
            problem: None,
        };
        let outcomes = [
            o(false, 1, 2.0),
            o(false, 2, 2.2),
            o(true, 1, 0.5),
            o(true, 2, 0.6),
        ];
        let text = report(&outcomes, DatasetName::Builtin, 3);
        assert!(
            text.contains(
                "| mlp | 20 | 0.400 ± 0.000 / 0.400 ± 0.000 | 2.100 ± 0.141 | 0.550 ± 0.071 |"
            ),
            "{text}"
        );
    }
}

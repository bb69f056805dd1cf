//! Li et al. 2018 at small scale: the loss along a filter-normalised random direction of
//! plain networks and their residual twins (the depth study's), at a shallow and a deep
//! setting, the same directions' seed for all, and a sharpness compared over seeds.

use std::fmt::Write as _;

use crate::compare::{mean_sd, welch};
use crate::data::DatasetName;

use super::depth::{DepthConfig, Family};

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
    let mut keys: Vec<(Family, usize)> = Vec::new();
    for o in outcomes {
        let key = (o.config.family, o.config.depth);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let shown = |v: &[f64]| match v.len() {
        0 => "-".to_string(),
        1 => format!("{:.3}", v[0]),
        _ => {
            let (m, sd) = mean_sd(v);
            format!("{m:.3} ± {sd:.3}")
        }
    };
    for (family, depth) in keys {
        let pick = |residual: bool, f: &dyn Fn(&LandscapeOutcome) -> Option<f64>| -> Vec<f64> {
            outcomes
                .iter()
                .filter(|o| {
                    o.config.family == family
                        && o.config.depth == depth
                        && o.config.residual == residual
                })
                .filter_map(f)
                .collect()
        };
        let sharp = |o: &LandscapeOutcome| o.sharpness;
        let (sp, sr) = (pick(false, &sharp), pick(true, &sharp));
        let p = welch(&sr, &sp).map_or("-".to_string(), |w| {
            if w.p < 0.001 {
                "< 0.001".into()
            } else {
                format!("{:.3}", w.p)
            }
        });
        let centre = |o: &LandscapeOutcome| o.centre_loss;
        let edge = |o: &LandscapeOutcome| o.edge_loss;
        let _ = writeln!(
            out,
            "| {} | {depth} | {} / {} | {} | {} | {p} | {} / {} |",
            family.name(),
            shown(&pick(false, &centre)),
            shown(&pick(true, &centre)),
            shown(&sp),
            shown(&sr),
            shown(&pick(false, &edge)),
            shown(&pick(true, &edge)),
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

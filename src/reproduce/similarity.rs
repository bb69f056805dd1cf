//! The paper's own question in numbers: is a skip's reused feature worth as much as a filter
//! the network learns itself? Linear CKA (Kornblith et al. 2019) between the skip CNN and the
//! capacity-matched reinforced CNN, layer by layer, against each architecture's seed-to-seed
//! ceiling, and Kornblith et al.'s layer-identification rate across seeds.

use std::fmt::Write as _;

use crate::compare::mean_sd;
use crate::data::DatasetName;

/// One pair of runs compared: whose, and the CKA matrix (rows: the first run's layers).
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    /// `skip`/`reinforced` for each side, with the seeds.
    pub first: (&'static str, u64),
    pub second: (&'static str, u64),
    pub layers: Vec<String>,
    pub cka: Vec<Vec<f64>>,
}

impl Pair {
    /// The diagonal: each layer against the same layer of the other run.
    pub fn diagonal(&self) -> Vec<f64> {
        (0..self.cka.len().min(self.cka.first().map_or(0, Vec::len)))
            .map(|i| self.cka[i][i])
            .collect()
    }

    /// Layers whose most similar layer in the other run is the one at the same place.
    pub fn identified(&self) -> usize {
        self.cka
            .iter()
            .enumerate()
            .filter(|(i, row)| {
                row.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(j, _)| j)
                    == Some(*i)
            })
            .count()
    }
}

/// The report as Markdown: per layer, CKA(skip, reinforced) (same seed) beside each
/// architecture's seed-to-seed CKA (mean ± sd over seed pairs), then the identification
/// rates.
pub fn report(pairs: &[Pair], dataset: DatasetName, epochs: usize, examples: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Linear CKA (minibatch, {examples} test examples) of the paper's skip CNN (1-4, 2-5, 4-7, 5-8) and its capacity-matched reinforced CNN, on {dataset}, {epochs} epochs, layer by layer, always between runs of different seeds (runs of one seed start from the same random stream). The ceilings are each architecture's CKA with itself trained from another seed: how alike two runs of one architecture are. Mean ± sd over the pairs. A skip-vs-reinforced value at its ceilings means the two learn the same representation there.\n"
    );
    let of = |a: &str, b: &str| -> Vec<&Pair> {
        pairs
            .iter()
            .filter(|p| p.first.0 == a && p.second.0 == b)
            .collect()
    };
    let (cross, skip, reinforced) = (
        of("skip", "reinforced"),
        of("skip", "skip"),
        of("reinforced", "reinforced"),
    );
    let layers = pairs.first().map_or(Vec::new(), |p| p.layers.clone());
    let _ = writeln!(
        out,
        "| layer | skip vs reinforced | skip vs skip (ceiling) | reinforced vs reinforced (ceiling) |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let cell = |group: &[&Pair], i: usize| -> String {
        let values: Vec<f64> = group
            .iter()
            .filter_map(|p| p.diagonal().get(i).copied())
            .collect();
        match values.len() {
            0 => "-".into(),
            1 => format!("{:.3}", values[0]),
            _ => {
                let (m, sd) = mean_sd(&values);
                format!("{m:.3} ± {sd:.3}")
            }
        }
    };
    for (i, name) in layers.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            cell(&cross, i),
            cell(&skip, i),
            cell(&reinforced, i)
        );
    }
    let rate = |group: &[&Pair]| -> String {
        let (hits, of): (usize, usize) = group
            .iter()
            .map(|p| (p.identified(), p.cka.len()))
            .fold((0, 0), |(h, n), (a, b)| (h + a, n + b));
        match of {
            0 => "-".into(),
            _ => format!("{hits} of {of} ({:.0}%)", 100.0 * hits as f64 / of as f64),
        }
    };
    let _ = writeln!(
        out,
        "\nLayer identification across seeds (the most similar layer of the other run is the one at the same place): skip CNN {}, reinforced CNN {}. Kornblith et al. report 99.3% for linear CKA (CCA 1.4%) on CIFAR-10 CNNs trained to convergence.",
        rate(&skip),
        rate(&reinforced)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_sets_the_cross_values_beside_the_ceilings() {
        let pair = |first, second, d: [f64; 2]| Pair {
            first,
            second,
            layers: vec!["conv1".into(), "conv2".into()],
            cka: vec![vec![d[0], 0.1], vec![0.2, d[1]]],
        };
        let pairs = [
            pair(("skip", 1), ("reinforced", 1), [0.9, 0.5]),
            pair(("skip", 1), ("skip", 2), [0.95, 0.8]),
            pair(("skip", 1), ("skip", 3), [0.97, 0.7]),
            pair(("reinforced", 1), ("reinforced", 2), [0.96, 0.85]),
        ];
        let text = report(&pairs, DatasetName::FashionMnist, 2, 2000);
        assert!(
            text.contains("| conv1 | 0.900 | 0.960 ± 0.014 | 0.960 |"),
            "{text}"
        );
        assert!(
            text.contains("| conv2 | 0.500 | 0.750 ± 0.071 | 0.850 |"),
            "{text}"
        );
        assert!(text.contains("skip CNN 4 of 4 (100%)"), "{text}");
    }
}

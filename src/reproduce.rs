//! The paper's Tables 1-5: which experiments stand behind each, how results are summarised
//! over seeds and a small L2 grid, and the published numbers to print beside ours.

pub mod depth;
pub mod gradient;
pub mod landscape;
pub mod lesion;
pub mod similarity;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::data::DatasetName;
use crate::experiment::{Experiment, Model, Optimizer, Skips};
use crate::topology::SkipSelection;
use crate::train::Schedule;

/// The paper's tables, grouped by the runs they share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    /// EMNIST MLPs, vanilla vs skip (3 and 4 layers).
    T1,
    /// EMNIST MLPs, skip*.
    T2,
    /// CIFAR-10 MLPs: skip, vanilla, skip*.
    T3,
    /// CIFAR-10 CNN: skip vs vanilla.
    T4,
    /// CIFAR-10 reinforced vanilla CNN.
    T5,
}

impl Table {
    pub const ALL: [Table; 5] = [Table::T1, Table::T2, Table::T3, Table::T4, Table::T5];

    pub fn parse_list(text: &str) -> Result<Vec<Table>, String> {
        let mut tables = Vec::new();
        for item in text.split(',').map(str::trim) {
            match item {
                "all" => tables.extend(Table::ALL),
                "table1" | "1" => tables.push(Table::T1),
                "table2" | "2" => tables.push(Table::T2),
                "table3" | "3" => tables.push(Table::T3),
                "table4" | "4" => tables.push(Table::T4),
                "table5" | "5" => tables.push(Table::T5),
                other => return Err(format!("`{other}` is not a table (table1..table5 or all)")),
            }
        }
        tables.sort();
        tables.dedup();
        Ok(tables)
    }

    /// The data set the paper used.
    pub fn paper_dataset(self) -> DatasetName {
        match self {
            Table::T1 | Table::T2 => DatasetName::EmnistLetters,
            _ => DatasetName::Cifar10,
        }
    }

    pub fn caption(self) -> &'static str {
        match self {
            Table::T1 => "Table 1. Results of two MLPs on EMNIST",
            Table::T2 => "Table 2. Results of skip version using the new training strategy",
            Table::T3 => "Table 3. Results of two MLPs on CIFAR-10",
            Table::T4 => "Table 4. Results of two CNNs on CIFAR-10",
            Table::T5 => "Table 5. Results of reinforced CNN on CIFAR-10",
        }
    }

    /// The table's rows: (row label, configurations by column group).
    pub fn rows(self) -> Vec<(&'static str, Vec<Config>)> {
        let first = self.mlp_first_width();
        let mlp = |variant| {
            vec![
                Config::mlp(3, variant, first),
                Config::mlp(4, variant, first),
            ]
        };
        match self {
            Table::T1 => vec![
                ("skip", mlp(Variant::Skip)),
                ("vanilla", mlp(Variant::Vanilla)),
            ],
            Table::T2 => vec![("skip*", mlp(Variant::SkipStar))],
            Table::T3 => vec![
                ("skip", mlp(Variant::Skip)),
                ("vanilla", mlp(Variant::Vanilla)),
                ("skip*", mlp(Variant::SkipStar)),
            ],
            Table::T4 => vec![
                ("skip", vec![Config::Cnn(CnnVariant::Skip)]),
                ("vanilla", vec![Config::Cnn(CnnVariant::Vanilla)]),
            ],
            Table::T5 => vec![("vanilla*", vec![Config::Cnn(CnnVariant::Reinforced)])],
        }
    }

    /// The first hidden width of the table's MLPs: the paper's CIFAR-10 MLPs (Table 3) are
    /// wider than its EMNIST ones (Tables 1 and 2), whatever data set they run on here.
    pub fn mlp_first_width(self) -> usize {
        match self {
            Table::T3 => 512,
            _ => 128,
        }
    }

    /// The published (train, val) percentages of a row's configurations, in order.
    pub fn paper(self, row: &str) -> Vec<(f64, f64)> {
        match (self, row) {
            (Table::T1, "skip") => vec![(91.0, 89.0), (91.6, 89.1)],
            (Table::T1, _) => vec![(90.4, 88.6), (92.0, 90.0)],
            (Table::T2, _) => vec![(91.2, 89.4), (92.5, 90.9)],
            (Table::T3, "skip") => vec![(64.9, 64.1), (67.8, 66.6)],
            (Table::T3, "vanilla") => vec![(64.0, 63.2), (66.5, 65.8)],
            (Table::T3, _) => vec![(64.9, 64.2), (68.0, 66.7)],
            (Table::T4, "skip") => vec![(84.2, 83.5)],
            (Table::T4, _) => vec![(81.7, 80.9)],
            (Table::T5, _) => vec![(84.9, 84.1)],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Variant {
    Vanilla,
    Skip,
    SkipStar,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CnnVariant {
    Vanilla,
    Skip,
    Reinforced,
}

/// One network configuration behind a table cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Config {
    Mlp {
        layers: usize,
        variant: Variant,
        /// The first hidden layer's width: 128 (the EMNIST tables) or 512 (CIFAR-10's).
        first: usize,
    },
    Cnn(CnnVariant),
}

impl Config {
    pub fn mlp(layers: usize, variant: Variant, first: usize) -> Self {
        Config::Mlp {
            layers,
            variant,
            first,
        }
    }

    /// `mlp3 skip` (the EMNIST tables' MLP), `mlp3-512 skip` (CIFAR-10's), `cnn vanilla`.
    pub fn label(self) -> String {
        match self {
            Config::Mlp {
                layers,
                variant,
                first: 128,
            } => format!("mlp{layers} {variant:?}").to_lowercase(),
            Config::Mlp {
                layers,
                variant,
                first,
            } => format!("mlp{layers}-{first} {variant:?}").to_lowercase(),
            Config::Cnn(v) => format!("cnn {v:?}").to_lowercase(),
        }
    }

    /// The experiment for this configuration on `dataset`: the paper's widths (the MLP's from
    /// its table, not from the data set), SGD with momentum.
    pub fn experiment(self, dataset: DatasetName, epochs: usize, seed: u64, l2: f64) -> Experiment {
        let skips = |s| Skips(s);
        let (model, batch, schedule) = match self {
            Config::Mlp {
                layers,
                variant,
                first,
            } => {
                let widths = if layers == 3 {
                    vec![first, 256]
                } else {
                    vec![first, 256, 256]
                };
                let selection = match variant {
                    Variant::Vanilla => SkipSelection::None,
                    _ => SkipSelection::All,
                };
                let schedule = (variant == Variant::SkipStar).then_some(Schedule::SkipStar {
                    max_vanilla_epochs: (epochs / 2).max(1),
                    patience: 2,
                });
                (
                    Model::Mlp {
                        widths,
                        skips: skips(selection),
                        activation: Default::default(),
                        init: Default::default(),
                        norm: Default::default(),
                    },
                    64,
                    schedule,
                )
            }
            Config::Cnn(v) => {
                let paper = vec![vec![32, 32], vec![64, 64], vec![128, 128]];
                let stages = match v {
                    // Derived from the skip network, as the paper did by hand (96 / 224).
                    CnnVariant::Reinforced => {
                        let mut skip =
                            crate::topology::Topology::Cnn(crate::topology::CnnSpec::new(
                                dataset.input_shape(),
                                paper,
                                dataset.classes(),
                            ));
                        skip.apply_skips(&SkipSelection::Paper)
                            .expect("the paper's skips fit the paper's CNN");
                        match skip.reinforced() {
                            crate::topology::Topology::Cnn(c) => c.stages,
                            crate::topology::Topology::Mlp(_) => {
                                unreachable!("a CNN reinforces to a CNN")
                            }
                        }
                    }
                    _ => paper,
                };
                let selection = if v == CnnVariant::Skip {
                    SkipSelection::Paper
                } else {
                    SkipSelection::None
                };
                (
                    Model::Cnn {
                        stages,
                        skips: skips(selection),
                        norm: Default::default(),
                        shortcut: Default::default(),
                        downsample: Default::default(),
                        head: Default::default(),
                        order: Default::default(),
                    },
                    32,
                    None,
                )
            }
        };
        Experiment {
            description: format!("reproduce: {}", self.label()),
            dataset,
            model,
            optimizer: Optimizer::Sgd {
                lr: 0.01,
                momentum: 0.9,
            },
            weight_decay: l2,
            batch,
            epochs,
            seed,
            val_fraction: 0.1,
            schedule,
        }
    }
}

/// What one run gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub config: Config,
    pub seed: u64,
    pub l2: f64,
    /// Best validation accuracy over the epochs, and the training accuracy of that epoch.
    pub val: f64,
    pub train: f64,
    pub seconds_per_epoch: f64,
    pub params: usize,
    pub macs: usize,
    /// Why the run did not finish, if it did not.
    pub problem: Option<String>,
}

use crate::compare::{mean_sd, Spread};

/// A configuration's result at its chosen L2.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub l2: f64,
    pub train: Spread,
    pub val: Spread,
    pub seeds: usize,
    pub seconds_per_epoch: f64,
    pub params: usize,
    pub macs: usize,
}

/// Picks, for `config`, the L2 with the highest mean validation accuracy (as the paper tuned
/// its regulariser) and summarises that grid point over seeds.
pub fn summarise(outcomes: &[Outcome], config: Config) -> Option<Cell> {
    let mine: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.config == config && o.problem.is_none())
        .collect();
    let mut grid: Vec<f64> = mine.iter().map(|o| o.l2).collect();
    grid.sort_by(f64::total_cmp);
    grid.dedup();
    let at = |l2: f64| -> Vec<&Outcome> { mine.iter().copied().filter(|o| o.l2 == l2).collect() };
    let best = grid.into_iter().max_by(|a, b| {
        let m = |l2| mean_sd(&at(l2).iter().map(|o| o.val).collect::<Vec<_>>()).0;
        m(*a).total_cmp(&m(*b))
    })?;
    let runs = at(best);
    let vals: Vec<f64> = runs.iter().map(|o| o.val).collect();
    let trains: Vec<f64> = runs.iter().map(|o| o.train).collect();
    Some(Cell {
        l2: best,
        train: Spread::of(&trains)?,
        val: Spread::of(&vals)?,
        seeds: runs.len(),
        seconds_per_epoch: runs.iter().map(|o| o.seconds_per_epoch).sum::<f64>()
            / runs.len() as f64,
        params: runs[0].params,
        macs: runs[0].macs,
    })
}

/// The validation accuracies behind a cell: every seed of `config` at the cell's L2.
fn cell_values(outcomes: &[Outcome], config: Config, cell: &Cell) -> Vec<f64> {
    outcomes
        .iter()
        .filter(|o| o.config == config && o.l2 == cell.l2 && o.problem.is_none())
        .map(|o| o.val)
        .collect()
}

/// Whether two configurations differ by more than seed noise: Welch's t-test on their
/// seeds' validation accuracies, at 5% (two-sided).
pub fn noise_verdict(a: &[f64], b: &[f64]) -> String {
    if a.len() < 2 || b.len() < 2 {
        return "noise not measured (one seed)".into();
    }
    match crate::compare::welch(a, b) {
        Some(w) if w.p < 0.05 => format!("beyond noise: {w}"),
        Some(w) => format!("within noise: {w}"),
        None => "no spread over seeds: no test".into(),
    }
}

fn pct(m: Spread) -> String {
    m.text(100.0, 1)
}

/// The tables in the paper's layout, ours beside the paper's, as Markdown.
pub fn report(
    tables: &[Table],
    outcomes: &[Outcome],
    dataset_for: &dyn Fn(Table) -> DatasetName,
    epochs: usize,
    seeds: usize,
    grid: &[f64],
) -> String {
    let mut out = String::new();
    let grid_text: Vec<String> = grid.iter().map(|g| g.to_string()).collect();
    let _ = writeln!(
        out,
        "Each cell: mean ± standard deviation over {seeds} seed(s), {epochs} epochs, at the L2 (of {}) with the best mean validation accuracy; val = best validation accuracy over the epochs, train = training accuracy (running, over that epoch's batches) of the same epoch. Paper values in parentheses.\n",
        grid_text.join(", ")
    );
    for &table in tables {
        let dataset = dataset_for(table);
        let substitute = if dataset != table.paper_dataset() {
            format!(
                " — on **{dataset}** instead of {} (a substitute: compare differences, not levels)",
                table.paper_dataset()
            )
        } else {
            String::new()
        };
        let _ = writeln!(out, "### {}{substitute}\n", table.caption());
        let rows = table.rows();
        let columns = rows[0].1.len();
        if columns == 2 {
            let _ = writeln!(out, "| | train (3-layer) | val (3-l) | train (4-l) | val (4-l) | L2 (3-l / 4-l) | s/epoch (3-l / 4-l) |");
            let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        } else {
            let _ = writeln!(
                out,
                "| | train | val | L2 | s/epoch | params | MACs/sample |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        }
        for (label, configs) in &rows {
            let paper = table.paper(label);
            let cells: Vec<Option<Cell>> =
                configs.iter().map(|c| summarise(outcomes, *c)).collect();
            let mut line = format!("| {label} |");
            for (cell, (pt, pv)) in cells.iter().zip(&paper) {
                match cell {
                    Some(c) => {
                        let _ = write!(line, " {} ({pt}) | {} ({pv}) |", pct(c.train), pct(c.val));
                    }
                    None => line.push_str(" - | - |"),
                }
            }
            let l2: Vec<String> = cells
                .iter()
                .map(|c| c.as_ref().map_or("-".into(), |c| c.l2.to_string()))
                .collect();
            let secs: Vec<String> = cells
                .iter()
                .map(|c| {
                    c.as_ref()
                        .map_or("-".into(), |c| format!("{:.2}", c.seconds_per_epoch))
                })
                .collect();
            let _ = write!(line, " {} | {} |", l2.join(" / "), secs.join(" / "));
            if columns == 1 {
                let c = cells[0].as_ref();
                let _ = write!(
                    line,
                    " {} | {} |",
                    c.map_or("-".into(), |c| c.params.to_string()),
                    c.map_or("-".into(), |c| c.macs.to_string())
                );
            }
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
        for note in comparisons(table, outcomes) {
            let _ = writeln!(out, "- {note}");
        }
        let _ = writeln!(out);
    }
    out
}

/// The comparisons each table is about, each marked as beyond or within noise.
pub fn comparisons(table: Table, outcomes: &[Outcome]) -> Vec<String> {
    let first = table.mlp_first_width();
    let mlp = |layers, variant| Config::mlp(layers, variant, first);
    let pairs: Vec<(Config, Config)> = match table {
        Table::T1 => (3..=4)
            .map(|l| (mlp(l, Variant::Skip), mlp(l, Variant::Vanilla)))
            .collect(),
        Table::T2 | Table::T3 => (3..=4)
            .flat_map(|l| {
                [
                    (mlp(l, Variant::SkipStar), mlp(l, Variant::Vanilla)),
                    (mlp(l, Variant::Skip), mlp(l, Variant::Vanilla)),
                ]
            })
            .collect(),
        Table::T4 => vec![(
            Config::Cnn(CnnVariant::Skip),
            Config::Cnn(CnnVariant::Vanilla),
        )],
        Table::T5 => vec![(
            Config::Cnn(CnnVariant::Reinforced),
            Config::Cnn(CnnVariant::Skip),
        )],
    };
    let mut notes = Vec::new();
    for (a, b) in pairs {
        let (Some(ca), Some(cb)) = (summarise(outcomes, a), summarise(outcomes, b)) else {
            continue;
        };
        let diff = 100.0 * (ca.val.mean - cb.val.mean);
        let verdict = noise_verdict(
            &cell_values(outcomes, a, &ca),
            &cell_values(outcomes, b, &cb),
        );
        let mut note = format!(
            "{} vs {}: val {diff:+.2} points, {verdict}",
            a.label(),
            b.label()
        );
        if ca.seconds_per_epoch > 0.0 && cb.seconds_per_epoch > 0.0 {
            let _ = write!(
                note,
                "; time per epoch {:.2}x",
                ca.seconds_per_epoch / cb.seconds_per_epoch
            );
        }
        notes.push(note);
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(config: Config, seed: u64, l2: f64, val: f64) -> Outcome {
        Outcome {
            config,
            seed,
            l2,
            val,
            train: val + 0.02,
            seconds_per_epoch: 1.0,
            params: 10,
            macs: 10,
            problem: None,
        }
    }

    #[test]
    fn the_l2_with_the_best_mean_val_is_chosen_and_noise_is_judged() {
        let skip = Config::mlp(3, Variant::Skip, 128);
        let vanilla = Config::mlp(3, Variant::Vanilla, 128);
        let mut o = Vec::new();
        for (seed, v) in [(1, 0.80), (2, 0.82), (3, 0.81)] {
            o.push(outcome(skip, seed, 0.0, v));
            o.push(outcome(skip, seed, 1e-4, v + 0.01));
            o.push(outcome(vanilla, seed, 0.0, v + 0.001));
        }
        let cell = summarise(&o, skip).unwrap();
        assert_eq!(cell.l2, 1e-4);
        assert!((cell.val.mean - 0.82).abs() < 1e-12);
        assert!((cell.val.sd.unwrap() - 0.01).abs() < 1e-12);
        // 0.82 vs 0.811 with sd 0.01 over 3 seeds: within noise.
        let notes = comparisons(Table::T1, &o);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains("val +0.90 points, within noise: p = 0.33")
                && notes[0].contains("(Welch's t-test, 3 vs 3 seeds)"),
            "{notes:?}"
        );
        let report = report(
            &[Table::T1],
            &o,
            &|_| DatasetName::FashionMnist,
            10,
            3,
            &[0.0, 1e-4],
        );
        assert!(
            report.contains("on **fashion-mnist** instead of emnist-letters"),
            "{report}"
        );
        assert!(
            report.contains("| skip | 84.0 ± 1.0 (91) | 82.0 ± 1.0 (89) |"),
            "{report}"
        );
    }

    #[test]
    fn table3_keeps_its_wide_mlp_on_any_data_set_and_one_seed_has_no_sd() {
        let t1 = Table::T1.rows()[0].1[0];
        let t3 = Table::T3.rows()[0].1[0];
        assert_ne!(t1, t3, "Table 3 must not reuse Table 1's runs");
        let widths = |c: Config| match c.experiment(DatasetName::FashionMnist, 1, 1, 0.0).model {
            Model::Mlp { widths, .. } => widths,
            Model::Cnn { .. } => unreachable!(),
        };
        assert_eq!(widths(t3), [512, 256]);
        assert_eq!(widths(t1), [128, 256]);
        assert_eq!(t3.label(), "mlp3-512 skip");
        let o = vec![outcome(t3, 1, 0.0, 0.8)];
        let text = report(
            &[Table::T3],
            &o,
            &|_| DatasetName::FashionMnist,
            1,
            1,
            &[0.0],
        );
        assert!(
            text.contains("| skip | 82.0 (n=1) (64.9) | 80.0 (n=1) (64.1) |"),
            "{text}"
        );
        assert!(!text.contains("± 0.0"), "{text}");
    }

    #[test]
    fn reinforced_widths_equal_the_skip_networks_concatenated_widths() {
        let shape = |v| {
            let t = Config::Cnn(v)
                .experiment(DatasetName::Cifar10, 1, 1, 0.0)
                .topology()
                .unwrap();
            let crate::topology::Topology::Cnn(c) = t else {
                unreachable!()
            };
            c.layers()
                .iter()
                .map(|l| c.groups(l.number).iter().map(|g| g.channels).sum::<usize>())
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(CnnVariant::Skip), shape(CnnVariant::Reinforced));
        assert_eq!(shape(CnnVariant::Reinforced)[3], 96);
        assert_eq!(
            Table::parse_list("table1,3").unwrap(),
            vec![Table::T1, Table::T3]
        );
        assert!(Table::parse_list("table9").is_err());
    }
}

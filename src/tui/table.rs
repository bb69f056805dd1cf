//! The runs table and the compare chart as the lab shows them: which runs, in which rows
//! (seed groups), in which order, described by what sets them apart; and the chart's curves.
//! No terminal here: `ui` draws what this computes.

use crate::compare::{self, Facet, Metric, XAxis};
use crate::tui::app::{App, Run};

/// Which panel the arrows and Space act on (Tab switches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Focus {
    #[default]
    Topology,
    Runs,
}

/// What the runs table is sorted by (`s` steps through them, `v` reverses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortKey {
    /// The order runs were started in.
    #[default]
    Run,
    /// Best validation accuracy, best first.
    BestVal,
    SecondsPerEpoch,
    Description,
    Status,
    Params,
}

impl SortKey {
    pub fn next(self) -> Self {
        match self {
            SortKey::Run => SortKey::BestVal,
            SortKey::BestVal => SortKey::SecondsPerEpoch,
            SortKey::SecondsPerEpoch => SortKey::Description,
            SortKey::Description => SortKey::Status,
            SortKey::Status => SortKey::Params,
            SortKey::Params => SortKey::Run,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Run => "run",
            SortKey::BestVal => "best val",
            SortKey::SecondsPerEpoch => "s/epoch",
            SortKey::Description => "description",
            SortKey::Status => "status",
            SortKey::Params => "params",
        }
    }
}

/// The compare chart's axes and smoothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChartView {
    pub x: XAxis,
    pub metric: Metric,
    /// TensorBoard's smoothing weight, 0 (none) to 0.99.
    pub smoothing: f64,
}

impl Default for ChartView {
    fn default() -> Self {
        Self {
            x: XAxis::Epoch,
            metric: Metric::ValAccuracy,
            smoothing: 0.0,
        }
    }
}

/// The smoothing weights `[` and `]` step through.
const SMOOTHING: [f64; 6] = [0.0, 0.5, 0.8, 0.9, 0.95, 0.99];

impl ChartView {
    pub fn smoother(&mut self, more: bool) {
        let at = SMOOTHING
            .iter()
            .position(|&w| w >= self.smoothing)
            .unwrap_or(0);
        let next = if more {
            (at + 1).min(SMOOTHING.len() - 1)
        } else {
            at.saturating_sub(1)
        };
        self.smoothing = SMOOTHING[next];
    }
}

/// One row of the runs table: a run, or a seed group (runs that differ only in their seed).
#[derive(Clone, Debug, PartialEq)]
pub struct RowView {
    /// Indices into `App::runs`, in run order.
    pub members: Vec<usize>,
    /// The members by seed: runs that repeat a seed are one sample (a single run: itself).
    pub samples: Vec<Vec<usize>>,
    /// What sets it apart from the other runs (a group: without the seed).
    pub description: String,
}

impl RowView {
    fn single(i: usize, description: String) -> Self {
        RowView {
            members: vec![i],
            samples: vec![vec![i]],
            description,
        }
    }

    pub fn is_group(&self) -> bool {
        self.members.len() > 1
    }

    /// Runs beyond the first of their seed.
    pub fn repeats(&self) -> usize {
        self.members.len() - self.samples.len()
    }
}

fn run_facets(run: &Run) -> Vec<Facet> {
    compare::facets(&run.experiment, &run.resumed_after)
}

/// What every run in the lab shares (the runs panel's title).
pub fn common(app: &App) -> String {
    let facets: Vec<Vec<Facet>> = app.runs.iter().map(run_facets).collect();
    compare::describe(&facets).common
}

/// A row's best validation accuracies, one per sample (seed) that has an epoch.
pub fn best_vals(app: &App, row: &RowView) -> Vec<f64> {
    compare::sample_means(&row.samples, |i| app.runs[i].best_val())
}

fn mean_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let values: Vec<f64> = values.flatten().collect();
    (!values.is_empty()).then(|| compare::mean_sd(&values).0)
}

/// The table's rows: runs matching the filter (any part of their name, saved id,
/// description or network), grouped by configuration if asked, in the chosen order.
/// Descriptions compare every run in the lab, so they do not change as the filter does.
pub fn rows(app: &App) -> Vec<RowView> {
    let facets: Vec<Vec<Facet>> = app.runs.iter().map(run_facets).collect();
    let each = compare::describe(&facets).each;
    // Groups are described without their seeds.
    let group_each = compare::describe_configurations(&facets).each;
    let needle = app.filter.to_lowercase();
    let visible: Vec<usize> = (0..app.runs.len())
        .filter(|&i| {
            let run = &app.runs[i];
            needle.is_empty()
                || [
                    run.name.as_str(),
                    run.saved_id.as_deref().unwrap_or_default(),
                    &each[i],
                    &run.topology.summary(),
                ]
                .iter()
                .any(|text| text.to_lowercase().contains(&needle))
        })
        .collect();
    let mut rows: Vec<RowView> = if app.grouped {
        let shown: Vec<Vec<Facet>> = visible.iter().map(|&i| facets[i].clone()).collect();
        compare::configurations(&shown)
            .into_iter()
            .map(|c| {
                let to_run = |k: &usize| visible[*k];
                let members: Vec<usize> = c.members.iter().map(to_run).collect();
                let samples = c
                    .samples
                    .iter()
                    .map(|s| s.iter().map(to_run).collect())
                    .collect();
                let description = if members.len() > 1 {
                    group_each[members[0]].clone()
                } else {
                    each[members[0]].clone()
                };
                RowView {
                    members,
                    samples,
                    description,
                }
            })
            .collect()
    } else {
        visible
            .into_iter()
            .map(|i| RowView::single(i, each[i].clone()))
            .collect()
    };
    let (key, reversed) = app.sort;
    let number = |row: &RowView| -> f64 {
        let runs = row.members.iter().map(|&i| &app.runs[i]);
        let value = match key {
            SortKey::BestVal => mean_of(runs.map(Run::best_val)).map(|v| -v),
            SortKey::SecondsPerEpoch => mean_of(runs.map(Run::mean_epoch_seconds)),
            SortKey::Params => mean_of(runs.map(|r| Some(r.topology.param_count() as f64))),
            _ => Some(row.members[0] as f64),
        };
        // Rows without a value go last.
        value.unwrap_or(f64::INFINITY)
    };
    match key {
        SortKey::Description => rows.sort_by(|a, b| a.description.cmp(&b.description)),
        SortKey::Status => rows.sort_by_key(|r| status_label(app, r)),
        _ => rows.sort_by(|a, b| number(a).total_cmp(&number(b))),
    }
    if reversed {
        rows.reverse();
    }
    rows
}

/// A row's status: its run's, or for a group how many are at which state (`3 done`,
/// `1 running 2 done`).
pub fn status_label(app: &App, row: &RowView) -> String {
    if !row.is_group() {
        return app.runs[row.members[0]].state.label();
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for &i in &row.members {
        let label = app.runs[i].state.label();
        match counts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => counts.push((label, 1)),
        }
    }
    counts
        .iter()
        .map(|(l, n)| format!("{n} {l}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Points of a curve: (x, y).
pub type Points = Vec<(f64, f64)>;

/// One curve of the chart: a run, or a seed group's mean with its ±1 sd band.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub label: String,
    /// (x, y) after smoothing; accuracies in percent.
    pub points: Points,
    /// For a group: the mean - sd and mean + sd curves.
    pub band: Option<(Points, Points)>,
    /// The members' best values of the metric (for the t-test between two groups).
    pub bests: Vec<f64>,
}

/// The rows the chart shows: those with a marked run, or all when none is marked.
pub fn chart_rows(app: &App) -> Vec<RowView> {
    let rows = rows(app);
    let any_marked = app.runs.iter().any(|r| r.marked);
    rows.into_iter()
        .filter(|r| !any_marked || r.members.iter().any(|&i| app.runs[i].marked))
        .collect()
}

fn label(app: &App, row: &RowView) -> String {
    let first = &app.runs[row.members[0]];
    let who = match (row.is_group(), row.samples.len()) {
        (false, _) => first.name.clone(),
        (true, 1) => format!("1 seed ({} runs)", row.members.len()),
        (true, n) => format!("{n} seeds"),
    };
    match row.description.is_empty() {
        true => who,
        false => format!("{who}: {}", row.description),
    }
}

/// The chart's curves for the current axes and smoothing.
pub fn curves(app: &App) -> Vec<Curve> {
    let view = app.chart;
    let scale = if view.metric.is_accuracy() {
        100.0
    } else {
        1.0
    };
    let smooth = |points: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
        let ys = compare::smooth(&ys, view.smoothing);
        points
            .iter()
            .zip(ys)
            .map(|(p, y)| (p.0, y * scale))
            .collect()
    };
    chart_rows(app)
        .iter()
        .map(|row| {
            // One curve per sample: a seed's repeated runs are one sample, drawn by its first.
            let raw: Vec<Vec<(f64, f64)>> = row
                .samples
                .iter()
                .map(|sample| {
                    let run = &app.runs[sample[0]];
                    compare::series(&run.epochs, &run.steps, &run.flows, view.x, view.metric)
                })
                .collect();
            let bests = raw
                .iter()
                .filter_map(|c| {
                    let ys = c.iter().map(|p| p.1);
                    match view.metric.higher_is_better() {
                        true => ys.reduce(f64::max),
                        false => ys.reduce(f64::min),
                    }
                })
                .collect();
            let (points, band) = if raw.len() > 1 {
                let b = compare::band(&raw);
                let mean = smooth(b.iter().map(|&(x, y, _)| (x, y)).collect());
                let low = smooth(b.iter().map(|&(x, y, sd)| (x, y - sd)).collect());
                let high = smooth(b.iter().map(|&(x, y, sd)| (x, y + sd)).collect());
                (mean, Some((low, high)))
            } else {
                (smooth(raw.into_iter().next().unwrap_or_default()), None)
            };
            Curve {
                label: label(app, row),
                points,
                band,
                bests,
            }
        })
        .collect()
}

/// With exactly two curves of several seeds each: the difference of their best values of the
/// metric and Welch's t-test, as a line for the chart naming the metric and both groups. None
/// for a metric whose best value is no outcome (the log gradient norm).
pub fn two_group_test(app: &App, curves: &[Curve]) -> Option<String> {
    let [a, b] = curves else {
        return None;
    };
    let metric = app.chart.metric;
    if metric == Metric::FirstLayerGradient {
        return None;
    }
    let w = compare::welch(&a.bests, &b.bests)?;
    let p = if w.p < 0.001 {
        "p < 0.001".to_string()
    } else {
        format!("p = {:.3}", w.p)
    };
    let (best, unit) = match metric.higher_is_better() {
        true => ("best", " points"),
        false => ("lowest", ""),
    };
    Some(format!(
        "{best} {}, {} − {}: {:+.2}{unit}, {p} (Welch, {} vs {} seeds)",
        metric.name(),
        group_name(&a.label),
        group_name(&b.label),
        if metric.is_accuracy() { 100.0 } else { 1.0 } * w.difference,
        w.n.0,
        w.n.1
    ))
}

/// A curve's label without its count (`3 seeds: skips 0-2` -> `skips 0-2`).
fn group_name(label: &str) -> &str {
    label.split_once(": ").map_or(label, |(_, d)| d)
}

/// The chart's runs in long format: `run,group,epoch,step,seconds,metric,value`, every
/// epoch metric and every step point, unsmoothed.
pub fn chart_csv(app: &App) -> String {
    let rows: Vec<compare::LongRow> = chart_rows(app)
        .iter()
        .flat_map(|row| {
            let group = match row.description.is_empty() {
                true => "all".to_string(),
                false => row.description.clone(),
            };
            row.members.iter().flat_map(move |&i| {
                let run = &app.runs[i];
                let id = run.saved_id.clone().unwrap_or_else(|| run.name.clone());
                compare::long_rows(&id, &group, &run.epochs, &run.steps)
            })
        })
        .collect();
    compare::long_csv(&rows)
}

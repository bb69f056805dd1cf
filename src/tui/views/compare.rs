//! The compare chart (`c`): the marked runs (or all) on one chart, a seed group as its mean
//! with a ±1 sd band, any metric against epochs, steps or seconds, smoothed as TensorBoard
//! does; two groups get Welch's t-test. It exports what it shows as long-format CSV.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

use super::{Effect, Reply, Request, View};
use crate::compare::{self, Metric, XAxis};
use crate::tui::context::Context;
use crate::tui::keys::Action;
use crate::tui::run_list::{RowView, RunList};
use crate::tui::widgets::{fit, hint_line};

/// Colours that cycle over runs in the compare chart (256-colour safe).
pub const RUN_COLORS: [Color; 6] = [
    Color::Cyan,
    Color::Magenta,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Red,
];

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

/// The compare chart's state: its axes and smoothing, kept between visits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CompareView {
    pub chart: ChartView,
}

impl View for CompareView {
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        cx.message = None;
        if key.code == KeyCode::Esc || cx.keys.keys(Action::Compare).contains(&key.code) {
            return Reply::Close;
        }
        let chart = &mut self.chart;
        match cx.keys.chart_action(key.code) {
            Some(Action::Quit) => return Reply::Then(Request::Quit),
            Some(Action::ChartX) => chart.x = chart.x.next(),
            Some(Action::ChartMetric) => chart.metric = chart.metric.next(),
            Some(Action::Smoother) => chart.smoother(true),
            Some(Action::Rougher) => chart.smoother(false),
            Some(Action::Group) => cx.runs.grouped = !cx.runs.grouped,
            Some(Action::ExportCsv) => {
                return Reply::Effects(vec![Effect::ExportCsv(chart_csv(&cx.runs))]);
            }
            _ => {}
        }
        Reply::Stay
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let view = self.chart;
        let curves = self.curves(&cx.runs);
        let test = self.two_group_test(&curves);
        // The legend and the test line go below the plot, never over its data.
        // The test line wraps rather than lose the groups' names or its figures.
        let test_rows = test.as_ref().map_or(0, |t| {
            (t.chars().count() + 1).div_ceil(area.width.max(1) as usize) as u16
        });
        let legend_rows = curves.len().min(MAX_LEGEND_ROWS) as u16 + test_rows;
        let [chart_area, legend_area, hints] = Layout::vertical([
            Constraint::Min(5),
            Constraint::Length(legend_rows),
            Constraint::Length(1),
        ])
        .areas(area);
        let mut datasets = Vec::new();
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for (i, curve) in curves.iter().enumerate() {
            let color = RUN_COLORS[i % RUN_COLORS.len()];
            datasets.push(
                Dataset::default()
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::default().fg(color))
                    .data(&curve.points),
            );
            xs.extend(curve.points.iter().map(|p| p.0));
            ys.extend(curve.points.iter().map(|p| p.1));
            if let Some((low, high)) = &curve.band {
                // The seed group's mean ± 1 sd, as dim dots around its line.
                for edge in [low, high] {
                    datasets.push(
                        Dataset::default()
                            .marker(Marker::Dot)
                            .graph_type(GraphType::Scatter)
                            .style(Style::default().fg(color).add_modifier(Modifier::DIM))
                            .data(edge),
                    );
                    ys.extend(edge.iter().map(|p| p.1));
                }
            }
        }
        let fold = |v: &[f64]| {
            v.iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
        };
        let (x_lo, x_hi) = fold(&xs);
        let (y_lo, y_hi) = fold(&ys);
        let (x_bounds, x_ticks) = axis(x_low(view.x, x_lo, x_hi), x_hi, 5);
        let (y_bounds, y_ticks) = axis(y_lo, y_hi.max(y_lo + 1e-3), 4);
        let unit = if view.metric.is_accuracy() { " %" } else { "" };
        let smoothing = match view.smoothing {
            0.0 => String::new(),
            w => format!(" · smoothed {w}"),
        };
        let grouping = if cx.runs.grouped {
            " · seed groups: mean ± sd"
        } else {
            ""
        };
        let title = format!(
            " Compare: {}{unit} by {}{smoothing}{grouping} ",
            view.metric.name(),
            view.x.name()
        );
        let block = Block::default().borders(Borders::ALL).title(title);
        let inner = block.inner(chart_area);
        // ratatui gets the first and last x labels; the others are drawn at their values below.
        let x_labels: Vec<Span> = x_ticks
            .iter()
            .enumerate()
            .map(|(i, (_, l))| match i == 0 || i + 1 == x_ticks.len() {
                true => Span::raw(l.clone()),
                false => Span::raw(""),
            })
            .collect();
        let y_label_width = y_ticks.iter().map(|(_, l)| l.len()).max().unwrap_or(0) as u16;
        let first_x_width = x_ticks.first().map_or(0, |(_, l)| l.len()) as u16;
        let chart = Chart::new(datasets)
            .block(block)
            .x_axis(
                Axis::default()
                    .title(view.x.name())
                    .bounds(x_bounds)
                    .labels(x_labels),
            )
            .y_axis(
                Axis::default()
                    .title(format!("{}{unit}", view.metric.name()))
                    .bounds(y_bounds)
                    .labels(y_ticks.iter().map(|(_, l)| Span::raw(l.clone()))),
            )
            .legend_position(None);
        if xs.is_empty() {
            frame.render_widget(
                Paragraph::new("Nothing to compare yet: no run in the table has a finished epoch.")
                    .alignment(Alignment::Center)
                    .block(Block::default().borders(Borders::ALL).title(" Compare ")),
                chart_area,
            );
        } else {
            frame.render_widget(chart, chart_area);
            let graph = graph_columns(inner, y_label_width, first_x_width);
            draw_x_ticks(frame.buffer_mut(), inner, graph, x_bounds, &x_ticks);
        }
        let mut legend: Vec<Line> = curves
            .iter()
            .take(MAX_LEGEND_ROWS)
            .enumerate()
            .map(|(i, curve)| {
                let color = RUN_COLORS[i % RUN_COLORS.len()];
                let more = curves.len() - MAX_LEGEND_ROWS.min(curves.len());
                let text = match (i + 1 == MAX_LEGEND_ROWS, more) {
                    (true, m) if m > 0 => format!("{} (+{m} more curves)", curve.label),
                    _ => curve.label.clone(),
                };
                Line::from(vec![
                    Span::styled(" ── ", Style::default().fg(color)),
                    Span::raw(fit(&text, area.width.saturating_sub(5) as usize)),
                ])
            })
            .collect();
        if let Some(test) = test {
            legend.push(Line::from(format!(" {test}")));
        }
        frame.render_widget(
            Paragraph::new(legend).wrap(Wrap { trim: false }),
            legend_area,
        );
        // A message (the export's file name) takes the hint line whole until the next key.
        let line = match &cx.message {
            Some(message) => {
                Line::styled(format!(" {message}"), Style::default().fg(Color::Yellow))
            }
            None => self.hints(cx).unwrap_or_default(),
        };
        frame.render_widget(Paragraph::new(line), hints);
    }

    fn hints(&self, cx: &Context) -> Option<Line<'static>> {
        Some({
            let view = self.chart;
            let label = |actions: &[Action], joiner| cx.keys.hint_label(actions, joiner);
            hint_line([
                (
                    label(&[Action::ChartX], ""),
                    format!("axis: {}", view.x.name()),
                ),
                (
                    label(&[Action::ChartMetric], ""),
                    view.metric.name().to_string(),
                ),
                (
                    label(&[Action::Rougher, Action::Smoother], " "),
                    "smoothing".into(),
                ),
                (label(&[Action::Group], ""), "seed groups".into()),
                (label(&[Action::ExportCsv], ""), "export CSV".into()),
                ("Esc".into(), "back".into()),
            ])
        })
    }

    fn full_screen(&self) -> bool {
        true
    }
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
pub fn chart_rows(runs: &RunList) -> Vec<RowView> {
    let any_marked = runs.all.iter().any(|r| r.marked);
    runs.rows()
        .into_iter()
        .filter(|r| !any_marked || r.members.iter().any(|&i| runs.all[i].marked))
        .collect()
}

fn label(runs: &RunList, row: &RowView) -> String {
    let first = &runs.all[row.members[0]];
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

impl CompareView {
    /// The chart's curves for the current axes and smoothing.
    pub fn curves(&self, runs: &RunList) -> Vec<Curve> {
        let view = self.chart;
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
        chart_rows(runs)
            .iter()
            .map(|row| {
                // One curve per sample: a seed's repeated runs are one sample, drawn by its first.
                let raw: Vec<Vec<(f64, f64)>> = row
                    .samples
                    .iter()
                    .map(|sample| {
                        let run = &runs.all[sample[0]];
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
                    label: label(runs, row),
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
    pub fn two_group_test(&self, curves: &[Curve]) -> Option<String> {
        let [a, b] = curves else {
            return None;
        };
        let metric = self.chart.metric;
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
}

/// A curve's label without its count (`3 seeds: skips 0-2` -> `skips 0-2`).
fn group_name(label: &str) -> &str {
    label.split_once(": ").map_or(label, |(_, d)| d)
}

/// The chart's runs in long format: `run,group,epoch,step,seconds,metric,value`, every
/// epoch metric and every step point, unsmoothed.
pub fn chart_csv(runs: &RunList) -> String {
    let rows: Vec<compare::LongRow> = chart_rows(runs)
        .iter()
        .flat_map(|row| {
            let group = match row.description.is_empty() {
                true => "all".to_string(),
                false => row.description.clone(),
            };
            row.members.iter().flat_map(move |&i| {
                let run = &runs.all[i];
                let id = run.saved_id.clone().unwrap_or_else(|| run.name.clone());
                compare::long_rows(&id, &group, &run.epochs, &run.steps)
            })
        })
        .collect();
    compare::long_csv(&rows)
}

/// The most curves the compare chart's legend lists (one row each).
const MAX_LEGEND_ROWS: usize = 6;

/// `v` as a tick label: no decimals for large steps, a few for small ones.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    format!("{v:.decimals$}")
}

/// Axis bounds on round ticks, and the ticks' labels.
fn axis(lo: f64, hi: f64, count: usize) -> ([f64; 2], Vec<(f64, String)>) {
    let ticks = crate::compare::ticks(lo, hi, count);
    let step = if ticks.len() > 1 {
        ticks[1] - ticks[0]
    } else {
        1.0
    };
    let bounds = [ticks[0], *ticks.last().unwrap_or(&hi)];
    let labels = ticks.iter().map(|&t| (t, tick_label(t, step))).collect();
    (bounds, labels)
}

/// The x axis's lower bound: the data's, or one unit below a single point; never below zero
/// (epochs, steps and seconds are not negative) and for seconds zero (time since the start).
fn x_low(x: XAxis, lo: f64, hi: f64) -> f64 {
    match x {
        XAxis::Seconds => 0.0,
        _ => lo.min(hi - 1.0).max(0.0),
    }
}

/// The columns of the graph a [`Chart`] draws inside `inner` (its block's inner area): its
/// first column and its width. Mirrors ratatui 0.29's layout: the widest y label (or the first
/// x label, less one, when wider), at most a third of the width, then the y axis line.
fn graph_columns(inner: Rect, y_label_width: u16, first_x_label_width: u16) -> (u16, u16) {
    let left = y_label_width
        .max(first_x_label_width.saturating_sub(1))
        .min(inner.width / 3);
    let x = inner.left() + left + 1;
    (x, inner.right().saturating_sub(x))
}

/// Draws the x tick labels between the first and the last at their values: ratatui spreads
/// middle labels evenly by their count, which puts a tick's value up to half a tick away from
/// where its curve point is drawn. Labels that would touch a neighbour are left out.
fn draw_x_ticks(
    buf: &mut Buffer,
    inner: Rect,
    graph: (u16, u16),
    bounds: [f64; 2],
    ticks: &[(f64, String)],
) {
    let (left, width) = graph;
    if ticks.len() < 3 || width < 2 || inner.height == 0 {
        return;
    }
    let row = inner.bottom() - 1;
    let span = bounds[1] - bounds[0];
    let first_end = left + ticks[0].1.len() as u16;
    let last_start = (left + width).saturating_sub(ticks[ticks.len() - 1].1.len() as u16);
    let mut free_from = first_end + 1;
    for (value, label) in &ticks[1..ticks.len() - 1] {
        let column = left as f64 + (value - bounds[0]) / span * (width - 1) as f64;
        let start = (column.round() as u16).saturating_sub(label.len() as u16 / 2);
        let end = start + label.len() as u16;
        if start < free_from || end + 1 > last_start {
            continue;
        }
        buf.set_string(start, row, label, Style::default());
        free_from = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use XAxis;

    #[test]
    fn x_axes_start_at_zero_or_above_and_ticks_sit_at_their_values() {
        // A run under a second: the seconds axis starts at 0, never below.
        assert_eq!(x_low(XAxis::Seconds, 0.3, 0.9), 0.0);
        assert_eq!(x_low(XAxis::Epoch, 1.0, 1.0), 0.0);
        assert_eq!(x_low(XAxis::Epoch, 1.0, 6.0), 1.0);
        let (bounds, _) = axis(0.0, 0.9, 5);
        assert!(bounds[0] >= 0.0, "{bounds:?}");
        // Ticks 0, 2, 4, 6 over a graph 61 columns wide: the middle ones at 20 and 40.
        let inner = Rect::new(0, 0, 64, 10);
        let graph = (3, 61);
        let mut buf = Buffer::empty(inner);
        let ticks: Vec<(f64, String)> = [0.0, 2.0, 4.0, 6.0].map(|t| (t, format!("{t}"))).to_vec();
        draw_x_ticks(&mut buf, inner, graph, [0.0, 6.0], &ticks);
        let row: String = (0..64).map(|x| buf[(x, 9)].symbol().to_string()).collect();
        assert_eq!(row.find('2'), Some(3 + 20), "{row:?}");
        assert_eq!(row.find('4'), Some(3 + 40), "{row:?}");
    }
}

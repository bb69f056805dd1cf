//! The runs panel: one row per run (or seed group) with its status, epoch, best validation
//! accuracy and speed, and its train and validation sparklines side by side; sorted,
//! filtered and grouped as the user asks. Its keys select, mark, pause, stop and remove.

use crossterm::event::KeyEvent;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, SparklineBar};
use ratatui::Frame;

use super::{Effect, Opening, Reply, View};
use crate::topology::grouped;
use crate::train::Command;
use crate::tui::context::{Context, Focus};
use crate::tui::keys::{Action, Hint};
use crate::tui::run_list::{RunState, SortKey};
use crate::tui::widgets::{fit, key_hints, pct};

/// The panel's hint bar: most used first (a narrow terminal cuts the end).
const HINTS: &[Hint] = &[
    (&[Action::Up, Action::Down], "", "run"),
    (&[Action::Toggle], "", "mark for chart"),
    (&[Action::Compare], "", "compare"),
    (&[Action::Filter], "", "filter"),
    (&[Action::Sort, Action::Reverse], "/", "sort/reverse"),
    (&[Action::Group], "", "group seeds"),
    (&[Action::SwitchPanel], "", "topology"),
    (&[Action::Pause], "", "pause"),
    (&[Action::Stop], "", "stop"),
    (&[Action::Delete], "", "delete"),
    (&[Action::Help], "", "help"),
    (&[Action::Quit], "", "quit"),
];

/// Room for a saved run's id, `20261202-121924-mlp3-skipstar-s10`.
const SAVED_ID_WIDTH: usize = 34;

/// The panel's own state: where its rows were drawn, for clicks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunsView {
    hits: Vec<(Rect, usize)>,
}

/// The command for the selected run, when it is a live run in a state that takes it.
fn command(cx: &Context, pick: fn(&RunState) -> Option<Command>) -> Reply {
    let Some(run) = cx.runs.selected() else {
        return Reply::Stay;
    };
    match (run.live, pick(&run.state)) {
        (Some(id), Some(command)) => Reply::Effects(vec![Effect::Send(id, command)]),
        _ => Reply::Stay,
    }
}

impl View for RunsView {
    /// The run keys; Up, Down and Space only while the panel has the focus (the router asks
    /// the focused panel first).
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        let Some(action) = cx.keys.action(key.code) else {
            return Reply::Ignored;
        };
        let focused = cx.focus == Focus::Runs;
        let runs = &mut cx.runs;
        match action {
            Action::Down if focused => runs.step(1),
            Action::Up if focused => runs.step(-1),
            Action::Toggle if focused => {
                if let Some(message) = runs.mark_selected() {
                    cx.say(message);
                }
            }
            Action::NextRun => runs.step(1),
            Action::PrevRun => runs.step(-1),
            Action::Filter => return Reply::Open(Opening::Filter),
            Action::Sort => runs.sort = (runs.sort.0.next(), false),
            Action::Reverse => runs.sort.1 = !runs.sort.1,
            Action::Group => runs.grouped = !runs.grouped,
            Action::Pause => {
                return command(cx, |state| match state {
                    RunState::Running => Some(Command::Pause),
                    RunState::Paused => Some(Command::Resume),
                    _ => None,
                })
            }
            Action::Stop => {
                return command(cx, |state| state.is_active().then_some(Command::Stop));
            }
            Action::Delete => {
                if let Some(i) = runs.selected {
                    return Reply::Open(Opening::ConfirmDelete(i));
                }
            }
            _ => return Reply::Ignored,
        }
        Reply::Stay
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let runs = &cx.runs;
        self.hits.clear();
        let inner_width = area.width.saturating_sub(2) as usize;
        // Fixed columns: marker, chart mark, run, status, epoch, best val, s/epoch.
        let fixed = 2 + 2 + 6 + 1 + 1 + 9 + 1 + 6 + 1 + 9 + 1 + 7;
        let params_column = inner_width >= fixed + 10 + 30;
        let id_column = inner_width >= fixed + 10 + 2 + SAVED_ID_WIDTH + 30;
        let described = inner_width
            - fixed.min(inner_width)
            - if params_column { 10 } else { 0 }
            - if id_column { 2 + SAVED_ID_WIDTH } else { 0 };
        let rows = runs.rows();
        let mut title = String::from(" Runs");
        let (key, reversed) = runs.sort;
        if key != SortKey::Run || reversed {
            let arrow = if reversed { "↑" } else { "↓" };
            title.push_str(&format!(" · by {} {arrow}", key.name()));
        }
        if !runs.filter.is_empty() {
            let shown: usize = rows.iter().map(|r| r.members.len()).sum();
            let all = runs.all.len();
            title.push_str(&format!(" · filter \"{}\" {shown}/{all}", runs.filter));
        }
        if runs.grouped {
            title.push_str(" · seeds grouped");
        }
        // What every run shares, last: the line may be cut.
        let common = runs.common();
        if !common.is_empty() && runs.all.len() > 1 {
            title.push_str(&format!(" · {common}"));
        }
        title.push(' ');
        let mut block = Block::default()
            .borders(Borders::ALL)
            .title(fit(&title, inner_width));
        if cx.focus == Focus::Runs {
            block = block.border_style(Style::default().fg(Color::Yellow));
        }
        // The selected run's saved id (the id `runs`, `compare` and `export` take), where there
        // is no column for it.
        if let Some(run) = runs.selected() {
            if let (Some(id), false) = (&run.saved_id, id_column) {
                if *id != run.name {
                    let text = match run.watched {
                        true => format!(" {} is {id}, trained by another process ", run.name),
                        false => format!(" {} is saves/{id} ", run.name),
                    };
                    block = block.title_bottom(text);
                }
            }
        }
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if runs.all.is_empty() {
            frame.render_widget(
                Paragraph::new(vec![
                    Line::from("No runs yet."),
                    Line::from("Press t (or Enter) to train the topology above."),
                ])
                .style(Style::default().fg(Color::DarkGray)),
                inner,
            );
            return;
        }
        let mut header = format!(
            "    {:<6} {:<described$} {:<9} {:>6} {:>9} {:>7}",
            "run", "description", "status", "epoch", "best val", "s/epoch"
        );
        if params_column {
            header.push_str(&format!(" {:>9}", "params"));
        }
        if id_column {
            header.push_str("  saved as");
        }
        frame.render_widget(
            Paragraph::new(Line::from(header).add_modifier(Modifier::BOLD)),
            Rect::new(inner.x, inner.y, inner.width, 1),
        );
        if rows.is_empty() {
            frame.render_widget(
                Paragraph::new(format!(
                    "No run matches \"{}\" (/ to change, Esc clears).",
                    runs.filter
                ))
                .style(Style::default().fg(Color::DarkGray)),
                Rect::new(inner.x, inner.y + 1, inner.width, 1),
            );
            return;
        }
        // Each sparkline column on its own scale, over the rows shown.
        let train_range = value_range(
            rows.iter()
                .flat_map(|r| runs.row_curve(r, |m| m.train_accuracy)),
        );
        let val_range = value_range(
            rows.iter()
                .flat_map(|r| runs.row_curve(r, |m| m.val_accuracy)),
        );
        let rows_fit = (inner.height.saturating_sub(1) / 2) as usize;
        let selected = runs
            .selected
            .and_then(|i| rows.iter().position(|r| r.members.contains(&i)));
        // Keep the selected row visible.
        let first = selected
            .unwrap_or(0)
            .saturating_sub(rows_fit.saturating_sub(1));
        for (slot, row) in rows.iter().enumerate().skip(first).take(rows_fit) {
            let y = inner.y + 1 + (slot - first) as u16 * 2;
            let lead = &runs.all[row.members[0]];
            let is_selected = selected == Some(slot);
            let marker = if is_selected { "▸ " } else { "  " };
            let marked = if row.members.iter().any(|&i| runs.all[i].marked) {
                "● "
            } else {
                "  "
            };
            // A group counts its samples (seeds); runs repeating a seed add `+N`.
            let name = match (row.is_group(), row.repeats()) {
                (false, _) => lead.name.clone(),
                (true, 0) => format!("×{}", row.samples.len()),
                (true, r) => format!("×{}+{r}", row.samples.len()),
            };
            let epoch = match (lead.progress, row.is_group()) {
                (Some((e, step, steps)), false) => format!("{e}:{}%", step * 100 / steps.max(1)),
                _ => {
                    let done = row.members.iter().map(|&i| runs.all[i].epochs.len()).min();
                    format!("{}/{}", done.unwrap_or(0), lead.config.epochs)
                }
            };
            let bests = runs.best_vals(row);
            let best = match (bests.len(), row.is_group()) {
                (0, _) => "-".to_string(),
                (_, false) => pct(bests[0]),
                (_, true) => match crate::compare::Spread::of(&bests) {
                    Some(s @ crate::compare::Spread { sd: Some(sd), .. }) => {
                        format!("{:.1}±{:.1}", 100.0 * s.mean, 100.0 * sd)
                    }
                    // One sample: no spread to give.
                    Some(s) => format!("{:.1} n=1", 100.0 * s.mean),
                    None => "-".to_string(),
                },
            };
            let seconds: Vec<f64> = row
                .members
                .iter()
                .filter_map(|&i| runs.all[i].mean_epoch_seconds())
                .collect();
            let seconds = match seconds.is_empty() {
                true => "-".to_string(),
                false => format!("{:.2}", crate::compare::mean_sd(&seconds).0),
            };
            let mut line = format!(
                "{marker}{marked}{:<6} {:<described$} {:<9} {:>6} {:>9} {:>7}",
                fit(&name, 6),
                fit(&row.description, described),
                fit(&runs.status_label(row), 9),
                epoch,
                best,
                seconds,
            );
            if params_column {
                line.push_str(&format!(" {:>9}", grouped(lead.topology.param_count())));
            }
            if id_column && !row.is_group() {
                line.push_str(&format!("  {}", lead.saved_id.as_deref().unwrap_or("-")));
            }
            let failed = row.members.iter().any(|&i| {
                matches!(
                    runs.all[i].state,
                    RunState::Ended(
                        crate::train::RunStatus::Diverged { .. }
                            | crate::train::RunStatus::Failed(_)
                    )
                )
            });
            let style = match (failed, is_selected) {
                (_, true) => Style::default().add_modifier(Modifier::BOLD),
                (true, _) => Style::default().fg(Color::Red),
                _ => Style::default(),
            };
            let row_area = Rect::new(inner.x, y, inner.width, 1);
            frame.render_widget(Paragraph::new(Line::from(line)).style(style), row_area);
            self.hits
                .push((Rect::new(inner.x, y, inner.width, 2), row.members[0]));
            let curves = [
                (
                    "train",
                    runs.row_curve(row, |m| m.train_accuracy),
                    train_range,
                    Color::Green,
                ),
                (
                    "val",
                    runs.row_curve(row, |m| m.val_accuracy),
                    val_range,
                    Color::Cyan,
                ),
            ];
            draw_sparklines(
                frame,
                Rect::new(inner.x + 4, y + 1, inner.width.saturating_sub(4), 1),
                &curves,
            );
        }
    }

    fn hints(&self, cx: &Context) -> Option<Line<'static>> {
        Some(key_hints(&cx.keys, HINTS))
    }

    fn click(&mut self, at: Position, cx: &mut Context) -> bool {
        let Some(&(_, i)) = self.hits.iter().find(|(r, _)| r.contains(at)) else {
            return false;
        };
        cx.runs.selected = Some(i);
        cx.focus = Focus::Runs;
        true
    }
}

/// The range of `values` with a little room, for one column of sparklines.
fn value_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        (0.0, 1.0)
    } else {
        let pad = ((hi - lo) * 0.05).max(0.002);
        ((lo - pad).max(0.0), (hi + pad).min(1.0))
    }
}

fn spark_data(values: &[f64], range: (f64, f64)) -> Vec<u64> {
    let (lo, hi) = range;
    values
        .iter()
        // The lowest value still draws its lowest bar (1/8 of the height).
        .map(|v| (12.5 + 87.5 * ((v - lo) / (hi - lo).max(1e-9)).clamp(0.0, 1.0)) as u64)
        .collect()
}

/// Train and validation sparklines of one row, side by side, each on its column's scale:
/// the latest value after it, the best epoch's bar highlighted and (validation) its value.
/// One sparkline column: its label, values, the scale they share with the column, colour.
type SparkColumn<'a> = (&'a str, Vec<f64>, (f64, f64), Color);

fn draw_sparklines(frame: &mut Frame, area: Rect, curves: &[SparkColumn]) {
    let half = area.width / 2;
    for (k, (label, values, range, color)) in curves.iter().enumerate() {
        let x = area.x + k as u16 * half;
        let latest = values
            .last()
            .map_or("  -   ".to_string(), |v| format!("{:>6}", pct(*v)));
        let best_at = values
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        let best = match (best_at, *label == "val") {
            (Some(i), true) => format!(" ↑{:.1}", 100.0 * values[i]),
            _ => String::new(),
        };
        let label_text = format!("{label:<5} ");
        let text_width = (latest.len() + best.chars().count()) as u16;
        let spark_width = half.saturating_sub(label_text.len() as u16 + text_width + 2);
        frame.render_widget(
            Paragraph::new(Span::styled(
                label_text.clone(),
                Style::default().fg(Color::Gray),
            )),
            Rect::new(x, area.y, label_text.len() as u16, 1),
        );
        let data = spark_data(values, *range);
        let skip = data.len().saturating_sub(spark_width as usize);
        let bars: Vec<SparklineBar> = data
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, &v)| {
                let bar = SparklineBar::from(v);
                match best_at == Some(i) {
                    true => bar.style(Style::default().fg(Color::Yellow)),
                    false => bar,
                }
            })
            .collect();
        let spark_x = x + label_text.len() as u16;
        frame.render_widget(
            Sparkline::default()
                .data(bars)
                .max(100)
                .style(Style::default().fg(*color)),
            Rect::new(spark_x, area.y, spark_width, 1),
        );
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(latest.clone(), Style::default().fg(*color).bold()),
                Span::styled(best.clone(), Style::default().fg(Color::Yellow)),
            ])),
            Rect::new(spark_x + spark_width + 1, area.y, text_width, 1),
        );
    }
}

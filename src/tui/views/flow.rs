//! Gradient flow (`f`): the selected run's gradient norm per layer over time, one row per
//! layer, on a log scale over the whole run. A vanishing gradient is a dark (blue) top.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::{Reply, Request, View};
use crate::tui::context::Context;
use crate::tui::keys::Action;
use crate::tui::widgets::heat_map::{legend, shade};
use crate::tui::widgets::{fit, hint_line};

/// A gradient norm in three significant digits: `3.21e-5`.
fn sci(v: f64) -> String {
    // An update f32 rounded away entirely is exactly 0: say so plainly.
    if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.2e}")
    }
}

/// The view's state: the first layer it shows (kept between visits, reset with the run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowView {
    pub scroll: usize,
}

impl View for FlowView {
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        let scroll = |by: isize| (self.scroll as isize + by).max(0) as usize;
        match (key.code, cx.keys.action(key.code)) {
            // Arrows scroll the layers (the drawing keeps the window on them).
            (KeyCode::Down, _) => self.scroll = scroll(1),
            (KeyCode::Up, _) => self.scroll = scroll(-1),
            (KeyCode::PageDown, _) => self.scroll = scroll(10),
            (KeyCode::PageUp, _) => self.scroll = scroll(-10),
            (KeyCode::Esc, _) => return Reply::Close,
            (_, Some(Action::Quit)) => return Reply::Then(Request::Quit),
            (_, Some(Action::NextRun)) => {
                cx.runs.step(1);
                self.scroll = 0;
            }
            (_, Some(Action::PrevRun)) => {
                cx.runs.step(-1);
                self.scroll = 0;
            }
            _ => return Reply::Close,
        }
        Reply::Stay
    }

    /// The selected run's gradient flow: one row per layer (first at the top), one column per
    /// time slice, each cell the layer's gradient norm on a log scale over the whole run; the
    /// latest norm and update ratio at the right. A vanishing gradient is a dark (blue) top.
    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let [body, hints] =
            Layout::vertical([Constraint::Min(5), Constraint::Length(1)]).areas(area);
        let Some(run) = cx.runs.selected() else {
            frame.render_widget(
                Paragraph::new("No run selected (J/K select one; t trains one).").block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title(" Gradient flow "),
                ),
                body,
            );
            return;
        };
        frame.render_widget(Paragraph::new(self.hints(cx).unwrap_or_default()), hints);
        // The verdict and the shade scale take two lines where one is too narrow for them.
        let footer_rows: u16 = if area.width >= 100 { 1 } else { 2 };
        let inner = Block::default().borders(Borders::ALL).inner(body);
        let rows = inner.height.saturating_sub(1 + footer_rows).max(1) as usize;
        let n = run.flows.last().map_or(0, |p| p.layers.len());
        // Consecutive layers from the scroll position, every one of them reachable.
        let first = self.scroll.min(n.saturating_sub(rows));
        self.scroll = first;
        let Some(run) = cx.runs.selected() else {
            return;
        };
        let window = match n > rows {
            true => format!(" · layers {}-{} of {n}", first + 1, first + rows),
            false => String::new(),
        };
        let title = format!(
            " Gradient flow: {} · {}{window} · gradient norm per layer, log scale ",
            run.name,
            run.topology.summary()
        );
        let block = Block::default()
            .borders(Borders::ALL)
            .title(fit(&title, area.width as usize - 2));
        frame.render_widget(block, body);
        let Some(last) = run.flows.last() else {
            frame.render_widget(
            Paragraph::new(
                "No gradient flow yet: it is measured with the step points (about 20 an epoch).",
            )
            .style(Style::default().fg(Color::DarkGray)),
            inner,
        );
            return;
        };
        let layers: Vec<&str> = last.layers.iter().map(|l| l.layer.as_str()).collect();
        let shown: Vec<usize> = (first..(first + rows).min(n)).collect();
        let label_width = 7usize;
        let values_width = 22usize;
        let columns = (inner.width as usize)
            .saturating_sub(label_width + values_width + 2)
            .max(1);
        // Columns: the run's points in time slices, each the mean of its log norms.
        let log = |v: f64| v.max(1e-30).log10();
        let all: Vec<f64> = run
            .flows
            .iter()
            .flat_map(|p| p.layers.iter().map(|l| log(l.grad_norm)))
            .collect();
        let (lo, hi) = all
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let slices = run.flows.len().min(columns);
        let slice = |k: usize| {
            let n = run.flows.len();
            &run.flows[k * n / slices..((k + 1) * n / slices).max(k * n / slices + 1)]
        };
        let header = format!(
            "{:<label_width$} {:<columns$}  {:>10} {:>10}",
            "layer",
            format!("steps {}..{}", run.flows[0].step, last.step),
            "|grad|",
            "upd/w"
        );
        frame.render_widget(
            Paragraph::new(Line::from(header).bold()),
            Rect::new(inner.x, inner.y, inner.width, 1),
        );
        for (row, &li) in shown.iter().enumerate() {
            let y = inner.y + 1 + row as u16;
            if y >= inner.bottom().saturating_sub(footer_rows) {
                break;
            }
            let mut spans = vec![Span::raw(format!("{:<label_width$} ", layers[li]))];
            for k in 0..slices {
                let points = slice(k);
                let values: Vec<f64> = points
                    .iter()
                    .filter_map(|p| p.layers.get(li))
                    .map(|l| log(l.grad_norm))
                    .collect();
                let v = values.iter().sum::<f64>() / values.len().max(1) as f64;
                let (symbol, color) = shade((v - lo) / (hi - lo).max(1e-9));
                spans.push(Span::styled(symbol, Style::default().fg(color)));
            }
            spans.push(Span::raw(" ".repeat(columns - slices + 2)));
            let latest = &last.layers[li];
            spans.push(Span::raw(format!(
                "{:>10} {:>10}",
                sci(latest.grad_norm),
                sci(latest.update_ratio)
            )));
            frame.render_widget(
                Paragraph::new(Line::from(spans)),
                Rect::new(inner.x, y, inner.width, 1),
            );
        }
        // The verdict: how the first layer's gradient compares with the last's.
        let (first, end) = (&last.layers[0], &last.layers[last.layers.len() - 1]);
        let ratio = first.grad_norm / end.grad_norm.max(1e-30);
        let verdict = if ratio < 1e-3 {
            " (vanishing)"
        } else if ratio > 1e3 {
            " (exploding)"
        } else {
            ""
        };
        // The shade scale is logarithmic, from the run's smallest norm to its largest.
        let text = Style::default().fg(Color::Yellow);
        let verdict = Span::styled(
            format!("first/last layer |grad|: {}{verdict}   ", sci(ratio)),
            text,
        );
        let scale = legend(
            &sci(10f64.powf(lo)),
            &format!("{} (log scale)", sci(10f64.powf(hi))),
            text,
        );
        let lines = match footer_rows {
            1 => vec![Line::from([vec![verdict], scale].concat())],
            _ => vec![Line::from(verdict), Line::from(scale)],
        };
        frame.render_widget(
            Paragraph::new(lines),
            Rect::new(
                inner.x,
                inner.bottom().saturating_sub(footer_rows),
                inner.width,
                footer_rows,
            ),
        );
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        Some(hint_line([
            ("↑↓", "scroll"),
            ("J/K", "run"),
            ("Esc", "back"),
        ]))
    }

    fn full_screen(&self) -> bool {
        true
    }
}

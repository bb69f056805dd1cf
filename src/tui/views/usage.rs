//! The edge-usage view (`u`): Huang et al.'s DenseNet heat map of the selected run, a row per
//! source layer and a column per reading layer, each cell the L1 norm per input feature of
//! the weights through which the target reads the source. The arrows pick a cell; its value
//! and blocks show below the map.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::analysis::{draw_pending, Pending};
use super::{Effect, Reply, Request, View};
use crate::analysis::usage::{EdgeUsage, Reading};
use crate::topology::Topology;
use crate::tui::context::Context;
use crate::tui::keys::Action;
use crate::tui::widgets::{fit, hint_line};

/// Shades from light to heavy use (the flow view's).
const SHADES: [(&str, Color); 5] = [
    ("░", Color::Blue),
    ("▒", Color::Cyan),
    ("▓", Color::Green),
    ("█", Color::Yellow),
    ("█", Color::Red),
];

#[derive(Clone, Debug, PartialEq)]
pub struct UsageView {
    pub ticket: u64,
    pub run: String,
    pub state: Pending<(Topology, EdgeUsage)>,
    /// The selected cell: (source, target) layer numbers.
    pub cell: Option<(usize, usize)>,
}

impl UsageView {
    pub fn new(ticket: u64, run: String) -> Self {
        Self {
            ticket,
            run,
            state: Pending::Working { done: 0, total: 0 },
            cell: None,
        }
    }

    /// Moves the selection to the nearest cell with weights in a direction: `(0, ±1)` another
    /// target, `(±1, 0)` another source.
    fn step(&mut self, by: (isize, isize)) {
        let Pending::Ready(ready) = &self.state else {
            return;
        };
        let map = ready.1.map();
        let cells: Vec<(usize, usize)> = map.keys().copied().collect();
        let Some(&(s, t)) = self.cell.as_ref().or(cells.first()) else {
            return;
        };
        let next = match by {
            (0, d) => cells
                .iter()
                .filter(|c| c.0 == s && (c.1 as isize - t as isize).signum() == d.signum())
                .min_by_key(|c| c.1.abs_diff(t)),
            (d, _) => cells
                .iter()
                .filter(|c| (c.0 as isize - s as isize).signum() == d.signum())
                .min_by_key(|c| (c.0.abs_diff(s), c.1.abs_diff(t))),
        };
        if let Some(&c) = next {
            self.cell = Some(c);
        }
    }
}

impl View for UsageView {
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        match (key.code, cx.keys.action(key.code)) {
            (KeyCode::Right, _) => self.step((0, 1)),
            (KeyCode::Left, _) => self.step((0, -1)),
            (KeyCode::Down, _) => self.step((1, 0)),
            (KeyCode::Up, _) => self.step((-1, 0)),
            (_, Some(Action::Quit)) if key.code != KeyCode::Esc => {
                return Reply::Then(Request::Quit)
            }
            _ => return Reply::Then(Request::Effects(vec![Effect::CancelAnalysis])),
        }
        Reply::Stay
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let [body, hints] =
            Layout::vertical([Constraint::Min(5), Constraint::Length(1)]).areas(area);
        frame.render_widget(Paragraph::new(self.hints(cx).unwrap_or_default()), hints);
        let Pending::Ready(ready) = &self.state else {
            let title = format!(" Edge usage: {} ", self.run);
            draw_pending(frame, body, &title, "edge usage", &self.state);
            return;
        };
        let (topology, usage) = ready.as_ref();
        let title = format!(
            " Edge usage: {} · {} · Σ|w| per input feature each layer reads from each source ",
            self.run,
            topology.summary()
        );
        let block = Block::default()
            .borders(Borders::ALL)
            .title(fit(&title, area.width as usize - 2));
        let inner = block.inner(body);
        frame.render_widget(block, body);
        let map = usage.map();
        let Some(&first) = map.keys().next() else {
            frame.render_widget(Paragraph::new("This network has no weight blocks."), inner);
            return;
        };
        let cell = *self.cell.get_or_insert(first);
        let distinct = |pick: fn(&(usize, usize)) -> usize| {
            let mut v: Vec<usize> = map.keys().map(pick).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (sources, targets) = (distinct(|c| c.0), distinct(|c| c.1));
        // Each column on its own scale, from its smallest cell to its largest: which sources
        // a layer reads most. (Usage sums over the reading layer's own units, so layers of
        // different widths differ in scale.)
        let column_range = |t: usize| {
            map.iter()
                .filter(|((_, target), _)| *target == t)
                .map(|(_, &v)| v)
                .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        let label_width = 8usize;
        // Cells as wide as the screen allows, up to the width of a layer's name.
        let room = (inner.width as usize).saturating_sub(label_width + 1);
        let cell_width = (room / targets.len().max(1)).clamp(1, 7);
        let footer = 3u16;
        let rows = (inner.height.saturating_sub(1 + footer)) as usize;
        // Sources in view: a window around the selected one.
        let at = sources.iter().position(|&s| s == cell.0).unwrap_or(0);
        let start = at
            .saturating_sub(rows.saturating_sub(1))
            .min(sources.len().saturating_sub(rows));
        let name = |l: usize| usage.layers.get(l).cloned().unwrap_or_default();
        let mut header = format!("{:<label_width$}", "from\\to");
        for &t in &targets {
            let text: String = name(t)
                .chars()
                .take(cell_width.saturating_sub(1).max(1))
                .collect();
            header.push_str(&format!("{text:<cell_width$}"));
        }
        let mut lines = vec![Line::from(header).bold()];
        for &s in sources.iter().skip(start).take(rows) {
            let mut spans = vec![Span::raw(format!("{:<label_width$}", name(s)))];
            for &t in &targets {
                let width = cell_width.saturating_sub(1).max(1);
                let gap = " ".repeat(cell_width - width);
                match map.get(&(s, t)) {
                    Some(&v) => {
                        let (lo, hi) = column_range(t);
                        let share = if hi > lo { (v - lo) / (hi - lo) } else { 1.0 };
                        let level = (share * (SHADES.len() - 1) as f64).round() as usize;
                        let (shade, colour) = SHADES[level.min(SHADES.len() - 1)];
                        let mut style = Style::default().fg(colour);
                        if (s, t) == cell {
                            style = style.bg(Color::White);
                        }
                        spans.push(Span::styled(shade.repeat(width), style));
                    }
                    None => spans.push(Span::styled(
                        format!("{:<width$}", "·"),
                        Style::default().fg(Color::DarkGray),
                    )),
                }
                spans.push(Span::raw(gap));
            }
            lines.push(Line::from(spans));
        }
        frame.render_widget(Paragraph::new(lines), inner);
        // The selected cell, its blocks, and the scale.
        let blocks: Vec<String> = usage
            .blocks
            .iter()
            .filter(|b| (b.source, b.target) == cell)
            .map(|b| {
                let reading = match b.reading {
                    Reading::Main => "main",
                    Reading::Skip => "skip",
                    Reading::Projection => "projection",
                    Reading::Identity => "identity",
                };
                format!("{} ({reading}, {} features)", b.block, b.features)
            })
            .collect();
        let text = Style::default().fg(Color::Yellow);
        let selected = format!(
            "{} → {}: {:.4} per feature · {}",
            name(cell.0),
            name(cell.1),
            map.get(&cell).copied().unwrap_or(0.0),
            blocks.join(", ")
        );
        let identities = usage
            .blocks
            .iter()
            .filter(|b| b.reading == Reading::Identity)
            .count();
        let scale = vec![
            Span::styled(SHADES[0].0, Style::default().fg(SHADES[0].1)),
            Span::styled(" a column's smallest .. ", text),
            Span::styled(SHADES[4].0, Style::default().fg(SHADES[4].1)),
            Span::styled(" its largest (linear)", text),
            Span::raw(match identities {
                0 => String::new(),
                n => format!("  · {n} identity shortcut(s): no weights"),
            }),
        ];
        let footer_area = Rect::new(
            inner.x,
            inner.bottom().saturating_sub(footer),
            inner.width,
            footer,
        );
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(""),
                Line::styled(fit(&selected, inner.width as usize), text),
                Line::from(scale),
            ]),
            footer_area,
        );
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        Some(hint_line([("←→↑↓", "pick a cell"), ("Esc", "back")]))
    }

    fn full_screen(&self) -> bool {
        true
    }
}

//! The edge-usage view (`u`): Huang et al.'s DenseNet heat map of the selected run, a row per
//! source layer and a column per reading layer, each cell the L1 norm per input feature of
//! the weights through which the target reads the source. The arrows pick a cell; its value
//! and blocks show below the map.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::analysis::{draw_pending, Analysing, AnalysisRequest, AnalysisUpdate, Pending};
use super::{leave_analysis, Reply, View};
use crate::analysis::usage::{EdgeUsage, Reading};
use crate::topology::Topology;
use crate::tui::context::Context;
use crate::tui::widgets::heat_map::{legend, HeatMap};
use crate::tui::widgets::{fit, hint_line, with_hints};

#[derive(Clone, Debug, PartialEq)]
pub struct UsageView {
    pub ticket: u64,
    pub run: String,
    pub state: Pending<(Topology, EdgeUsage)>,
    /// The selected cell: (source, target) layer numbers.
    pub cell: Option<(usize, usize)>,
}

impl UsageView {
    pub fn new(request: &AnalysisRequest) -> Self {
        Self {
            ticket: request.ticket,
            run: request.title(),
            state: Pending::default(),
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

impl Analysing for UsageView {
    fn ticket(&self) -> u64 {
        self.ticket
    }

    fn take(&mut self, update: AnalysisUpdate) {
        if let AnalysisUpdate::Usage { result, .. } = update {
            self.state = Pending::settled(result);
        } else {
            self.state.progress(&update);
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
            _ => return leave_analysis(key, cx),
        }
        Reply::Stay
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let body = with_hints(frame, area, self.hints(cx));
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
        let footer = 3u16;
        let name = |l: usize| usage.layers.get(l).cloned().unwrap_or_default();
        let heat_map = HeatMap {
            corner: "from\\to".into(),
            rows: sources.iter().map(|&s| name(s)).collect(),
            columns: targets.iter().map(|&t| name(t)).collect(),
            shares: sources
                .iter()
                .map(|&s| {
                    targets
                        .iter()
                        .map(|&t| {
                            let v = *map.get(&(s, t))?;
                            let (lo, hi) = column_range(t);
                            Some(if hi > lo { (v - lo) / (hi - lo) } else { 1.0 })
                        })
                        .collect()
                })
                .collect(),
            selected: (
                sources.iter().position(|&s| s == cell.0).unwrap_or(0),
                targets.iter().position(|&t| t == cell.1).unwrap_or(0),
            ),
        };
        let lines = heat_map.lines(
            inner.width as usize,
            inner.height.saturating_sub(footer) as usize,
        );
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
        let mut scale = legend("a column's smallest", "its largest (linear)", text);
        scale.push(Span::raw(match identities {
            0 => String::new(),
            n => format!("  · {n} identity shortcut(s): no weights"),
        }));
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

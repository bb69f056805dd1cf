//! The similarity view (`C`): linear CKA (Kornblith et al. 2019) between every two hidden
//! layers of the selected run (or, with two runs marked, between the first's layers and the
//! second's), on test examples: a layer × layer heat map on CKA's own scale
//! (0 to 1). A very deep plain net shows a block of near-identical late layers, a ResNet a
//! grid. The arrows pick a cell; its value shows below.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::analysis::{draw_pending, Pending};
use super::{Effect, Reply, Request, View};
use crate::analysis::cka::LayerCka;
use crate::tui::context::Context;
use crate::tui::keys::Action;
use crate::tui::widgets::{fit, hint_line};

/// Shades for CKA from 0 to 1 in fifths.
const SHADES: [(&str, Color); 5] = [
    ("░", Color::Blue),
    ("▒", Color::Cyan),
    ("▓", Color::Green),
    ("█", Color::Yellow),
    ("█", Color::Red),
];

#[derive(Clone, Debug, PartialEq)]
pub struct SimilarityView {
    pub ticket: u64,
    pub run: String,
    pub state: Pending<LayerCka>,
    /// The selected cell: (row, column).
    pub cell: (usize, usize),
}

impl SimilarityView {
    pub fn new(ticket: u64, run: String) -> Self {
        Self {
            ticket,
            run,
            state: Pending::Working { done: 0, total: 0 },
            cell: (0, 0),
        }
    }
}

impl View for SimilarityView {
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        let (rows, cols) = match &self.state {
            Pending::Ready(c) => (c.rows.len(), c.columns.len()),
            _ => (0, 0),
        };
        let (r, c) = self.cell;
        match (key.code, cx.keys.action(key.code)) {
            (KeyCode::Right, _) => self.cell.1 = (c + 1).min(cols.saturating_sub(1)),
            (KeyCode::Left, _) => self.cell.1 = c.saturating_sub(1),
            (KeyCode::Down, _) => self.cell.0 = (r + 1).min(rows.saturating_sub(1)),
            (KeyCode::Up, _) => self.cell.0 = r.saturating_sub(1),
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
        let Pending::Ready(cka) = &self.state else {
            let title = format!(" Similarity (CKA): {} ", self.run);
            draw_pending(frame, body, &title, "CKA", &self.state);
            return;
        };
        let title = format!(
            " Similarity: {} · linear CKA between layers on {} test examples (0 unlike .. 1 alike) ",
            self.run, cka.samples
        );
        let block = Block::default()
            .borders(Borders::ALL)
            .title(fit(&title, area.width as usize - 2));
        let inner = block.inner(body);
        frame.render_widget(block, body);
        let label = 8usize;
        let cols = cka.columns.len().max(1);
        let width = ((inner.width as usize).saturating_sub(label) / cols).clamp(1, 7);
        let footer = 3u16;
        let shown = inner.height.saturating_sub(1 + footer) as usize;
        let (row, _) = self.cell;
        let first = row.saturating_sub(shown.saturating_sub(1));
        let mut header = format!("{:<label$}", "");
        for name in &cka.columns {
            let text: String = name.chars().take(width.saturating_sub(1).max(1)).collect();
            header.push_str(&format!("{text:<width$}"));
        }
        let mut lines = vec![Line::from(header).bold()];
        for (i, values) in cka.cka.iter().enumerate().skip(first).take(shown) {
            let mut spans = vec![Span::raw(format!("{:<label$}", cka.rows[i]))];
            for (j, v) in values.iter().enumerate() {
                let level = (v.clamp(0.0, 1.0) * (SHADES.len() - 1) as f64).round() as usize;
                let (shade, colour) = SHADES[level];
                let mut style = Style::default().fg(colour);
                if (i, j) == self.cell {
                    style = style.bg(Color::White);
                }
                let fill = width.saturating_sub(1).max(1);
                spans.push(Span::styled(shade.repeat(fill), style));
                spans.push(Span::raw(" ".repeat(width - fill)));
            }
            lines.push(Line::from(spans));
        }
        frame.render_widget(Paragraph::new(lines), inner);
        let (r, c) = self.cell;
        let text = Style::default().fg(Color::Yellow);
        let value = cka.cka.get(r).and_then(|row| row.get(c)).copied();
        let selected = format!(
            "{} against {}: CKA {}",
            cka.rows.get(r).cloned().unwrap_or_default(),
            cka.columns.get(c).cloned().unwrap_or_default(),
            value.map_or("-".into(), |v| format!("{v:.3}")),
        );
        let scale = Line::from(vec![
            Span::styled(SHADES[0].0, Style::default().fg(SHADES[0].1)),
            Span::styled(" 0 .. ", text),
            Span::styled(SHADES[4].0, Style::default().fg(SHADES[4].1)),
            Span::styled(
                format!(" 1 · minibatch CKA, batches of {}", cka.batch),
                text,
            ),
        ]);
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(""),
                Line::styled(fit(&selected, inner.width as usize), text),
                scale,
            ]),
            Rect::new(
                inner.x,
                inner.bottom().saturating_sub(footer),
                inner.width,
                footer,
            ),
        );
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        Some(hint_line([("←→↑↓", "pick a cell"), ("Esc", "back")]))
    }

    fn full_screen(&self) -> bool {
        true
    }
}

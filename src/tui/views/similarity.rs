//! The similarity view (`C`): linear CKA (Kornblith et al. 2019) between every two hidden
//! layers of the selected run (or, with two runs marked, between the first's layers and the
//! second's), on test examples: a layer × layer heat map on CKA's own scale
//! (0 to 1). A very deep plain net shows a block of near-identical late layers, a ResNet a
//! grid. The arrows pick a cell; its value shows below. For two runs, each one's
//! seed-to-seed ceiling stands beside the map: the CKA of each layer with the same layer of
//! another seed of the same configuration, which is as alike as two runs can be expected to
//! be (Kornblith et al.'s comparison of architectures).

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::analysis::{
    draw_pending, Analysing, AnalysisRequest, AnalysisUpdate, Pending, Similarity,
};
use super::{leave_analysis, Reply, View};
use crate::tui::context::Context;
use crate::tui::widgets::heat_map::{legend, HeatMap};
use crate::tui::widgets::{fit, hint_line, with_hints};

#[derive(Clone, Debug, PartialEq)]
pub struct SimilarityView {
    pub ticket: u64,
    pub run: String,
    /// The runs compared, by name (one: a run with itself).
    pub names: Vec<String>,
    pub state: Pending<Similarity>,
    /// The selected cell: (row, column).
    pub cell: (usize, usize),
}

impl SimilarityView {
    pub fn new(request: &AnalysisRequest) -> Self {
        Self {
            ticket: request.ticket,
            run: request.title(),
            names: request.runs.iter().map(|r| r.name.clone()).collect(),
            state: Pending::default(),
            cell: (0, 0),
        }
    }

    /// Two runs: a line per layer, the two runs' CKA at that layer beside each one's
    /// seed-to-seed ceiling (how alike two seeds of it are there).
    fn ceiling_rows(&self, similarity: &Similarity, width: usize) -> Vec<Line<'static>> {
        let map = &similarity.map;
        let n = map.rows.len().min(map.columns.len());
        let short = |name: &str| -> String { name.chars().take(9).collect() };
        let mut header = format!("{:<8}{:>9}", "layer", "between");
        for name in &self.names {
            header.push_str(&format!(" {:>9}", short(name)));
        }
        let mut lines = vec![
            Line::from("CKA at each layer").bold(),
            Line::from(header).bold(),
        ];
        for i in 0..n {
            let mut text = format!("{:<8}{:>9.3}", short(&map.rows[i]), map.cka[i][i]);
            for ceiling in &similarity.ceilings {
                match ceiling.as_ref().and_then(|(_, d)| d.get(i)) {
                    Some(v) => text.push_str(&format!(" {v:>9.3}")),
                    None => text.push_str(&format!(" {:>9}", "-")),
                }
            }
            let mut line = Line::from(fit(&text, width));
            if i == self.cell.0 {
                line = line.style(Style::default().fg(Color::Yellow));
            }
            lines.push(line);
        }
        lines.push(Line::from(""));
        let note = Style::default().fg(Color::DarkGray);
        lines.push(Line::styled(
            fit("between: the two runs; then each run", width),
            note,
        ));
        lines.push(Line::styled(
            fit("against another seed of itself (ceiling)", width),
            note,
        ));
        for (name, ceiling) in self.names.iter().zip(&similarity.ceilings) {
            let text = match ceiling {
                Some((twin, _)) => format!("{name}: against {twin}"),
                None => format!("{name}: no other seed saved"),
            };
            lines.push(Line::styled(fit(&text, width), note));
        }
        lines
    }
}

impl Analysing for SimilarityView {
    fn ticket(&self) -> u64 {
        self.ticket
    }

    fn take(&mut self, update: AnalysisUpdate) {
        if let AnalysisUpdate::Similarity { result, .. } = update {
            self.state = Pending::settled(result);
        } else {
            self.state.progress(&update);
        }
    }
}

impl View for SimilarityView {
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        let (rows, cols) = match &self.state {
            Pending::Ready(s) => (s.map.rows.len(), s.map.columns.len()),
            _ => (0, 0),
        };
        let (r, c) = self.cell;
        match (key.code, cx.keys.action(key.code)) {
            (KeyCode::Right, _) => self.cell.1 = (c + 1).min(cols.saturating_sub(1)),
            (KeyCode::Left, _) => self.cell.1 = c.saturating_sub(1),
            (KeyCode::Down, _) => self.cell.0 = (r + 1).min(rows.saturating_sub(1)),
            (KeyCode::Up, _) => self.cell.0 = r.saturating_sub(1),
            _ => return leave_analysis(key, cx),
        }
        Reply::Stay
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let body = with_hints(frame, area, self.hints(cx));
        let Pending::Ready(similarity) = &self.state else {
            let title = format!(" Similarity (CKA): {} ", self.run);
            draw_pending(frame, body, &title, "CKA", &self.state);
            return;
        };
        let cka = &similarity.map;
        let title = format!(
            " Similarity: {} · linear CKA between layers on {} test examples (0 unlike .. 1 alike) ",
            self.run, cka.samples
        );
        let block = Block::default()
            .borders(Borders::ALL)
            .title(fit(&title, area.width as usize - 2));
        let inner = block.inner(body);
        frame.render_widget(block, body);
        let footer = 3u16;
        // Two runs: the ceilings beside the map where there is room, else under it.
        let side = 20 + 10 * self.names.len() as u16;
        let (map_area, table_area) = match similarity.ceilings.is_empty() {
            true => (inner, None),
            false if inner.width >= 2 * side => {
                let [map, _, table] = Layout::horizontal([
                    Constraint::Min(20),
                    Constraint::Length(2),
                    Constraint::Length(side),
                ])
                .areas(inner);
                (map, Some(table))
            }
            false => (inner, None),
        };
        let heat_map = HeatMap {
            corner: String::new(),
            rows: cka.rows.clone(),
            columns: cka.columns.clone(),
            shares: cka
                .cka
                .iter()
                .map(|row| row.iter().map(|&v| Some(v)).collect())
                .collect(),
            selected: self.cell,
        };
        let lines = heat_map.lines(
            map_area.width as usize,
            map_area.height.saturating_sub(footer) as usize,
        );
        frame.render_widget(Paragraph::new(lines), map_area);
        if let Some(table) = table_area {
            let lines = self.ceiling_rows(similarity, table.width as usize);
            frame.render_widget(Paragraph::new(lines), table);
        }
        let (r, c) = self.cell;
        let text = Style::default().fg(Color::Yellow);
        let value = cka.cka.get(r).and_then(|row| row.get(c)).copied();
        let mut selected = format!(
            "{} against {}: CKA {}",
            cka.rows.get(r).cloned().unwrap_or_default(),
            cka.columns.get(c).cloned().unwrap_or_default(),
            value.map_or("-".into(), |v| format!("{v:.3}")),
        );
        // Under the map where the table has no room: the selected row's ceilings.
        if table_area.is_none() {
            for (name, ceiling) in self.names.iter().zip(&similarity.ceilings) {
                if let Some(v) = ceiling.as_ref().and_then(|(_, d)| d.get(r)) {
                    selected.push_str(&format!(" · {name} seed to seed {v:.3}"));
                }
            }
        }
        let mut scale = legend("0", "1", text);
        scale.push(Span::styled(
            format!(" · minibatch CKA, batches of {}", cka.batch),
            text,
        ));
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(""),
                Line::styled(fit(&selected, map_area.width as usize), text),
                Line::from(scale),
            ]),
            Rect::new(
                map_area.x,
                map_area.bottom().saturating_sub(footer),
                map_area.width,
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

//! The lesion view (`V`, for Veit et al.): the selected run's network with every layer and edge coloured by
//! the accuracy lost when it alone is deleted (no retraining), the numbers in the boxes and
//! on the arcs, the deletions as a table, and the k-deletion curve beside it. The study runs
//! off the screen's thread; Esc cancels it.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::analysis::{draw_pending, Analysing, AnalysisRequest, AnalysisUpdate, Pending};
use super::topology::diagram::{self, ArcStyle, BOX_ROWS};
use super::{leave_analysis, Reply, View};
use crate::analysis::lesion::{Deletion, Lesion};
use crate::topology::{SkipEdge, Topology};
use crate::tui::context::Context;
use crate::tui::widgets::{fit, hint_line, with_hints};

/// Colours by accuracy lost, in percentage points: up to each bound, that colour.
const SCALE: [(f64, Color, &str); 4] = [
    (1.0, Color::Green, "<1"),
    (5.0, Color::Yellow, "<5"),
    (20.0, Color::Magenta, "<20"),
    (f64::INFINITY, Color::Red, "≥20"),
];

/// The colour of a drop of `pp` percentage points.
pub fn drop_colour(pp: f64) -> Color {
    SCALE
        .iter()
        .find(|(bound, ..)| pp < *bound)
        .map_or(Color::Red, |(_, colour, _)| *colour)
}

#[derive(Clone, Debug, PartialEq)]
pub struct LesionView {
    /// The request whose answers this view takes.
    pub ticket: u64,
    /// The run's name in the table.
    pub run: String,
    pub state: Pending<(Topology, Lesion)>,
    /// The first row of the table shown.
    pub scroll: usize,
}

impl LesionView {
    pub fn new(request: &AnalysisRequest) -> Self {
        Self {
            ticket: request.ticket,
            run: request.title(),
            state: Pending::default(),
            scroll: 0,
        }
    }

    /// The table's rows: every hidden layer, then every edge.
    fn rows(topology: &Topology, study: &Lesion) -> Vec<Line<'static>> {
        let base = study.baseline.accuracy;
        let mut rows = Vec::new();
        let cell = |name: String, how: &str, accuracy: Option<f64>| {
            let mut spans = vec![Span::raw(format!("{name:<8} {how:<9}"))];
            match accuracy {
                Some(a) => {
                    let drop = 100.0 * (base - a);
                    spans.push(Span::raw(format!("{:>7.1}% ", 100.0 * a)));
                    spans.push(Span::styled(
                        format!("{:>6.1}", -drop),
                        Style::default().fg(drop_colour(drop)),
                    ));
                }
                None => spans.push(Span::styled(
                    "      -       -".to_string(),
                    Style::default().fg(Color::DarkGray),
                )),
            }
            Line::from(spans)
        };
        for d in &study.deletions {
            let how = d.deletion.map_or("cannot", |h| h.name());
            rows.push(cell(d.name.clone(), how, d.score.map(|s| s.accuracy)));
        }
        for e in &study.edges {
            let kind = match topology.edge_kind(e.edge) {
                Some(crate::topology::EdgeKind::Residual) => "residual",
                _ => "concat",
            };
            rows.push(cell(format!("{}", e.edge), kind, Some(e.score.accuracy)));
        }
        rows
    }
}

/// Recolours the cells of `rect` in `buf` (a box or an arc's row) with `colour`.
fn tint(buf: &mut Buffer, rect: Rect, colour: Color) {
    let area = buf.area;
    for y in rect.top()..rect.bottom().min(area.bottom()) {
        for x in rect.left()..rect.right().min(area.right()) {
            if buf[(x, y)].symbol() != " " {
                buf[(x, y)].set_fg(colour);
            }
        }
    }
}

impl Analysing for LesionView {
    fn ticket(&self) -> u64 {
        self.ticket
    }

    fn take(&mut self, update: AnalysisUpdate) {
        if let AnalysisUpdate::Lesion { result, .. } = update {
            self.state = Pending::settled(result);
        } else {
            self.state.progress(&update);
        }
    }
}

impl View for LesionView {
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        let scroll = |by: isize| (self.scroll as isize + by).max(0) as usize;
        match (key.code, cx.keys.action(key.code)) {
            (KeyCode::Down, _) => self.scroll = scroll(1),
            (KeyCode::Up, _) => self.scroll = scroll(-1),
            (KeyCode::PageDown, _) => self.scroll = scroll(10),
            (KeyCode::PageUp, _) => self.scroll = scroll(-10),
            // Closing cancels a study still running.
            _ => return leave_analysis(key, cx),
        }
        Reply::Stay
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let body = with_hints(frame, area, self.hints(cx));
        let Pending::Ready(ready) = &self.state else {
            let title = format!(" Lesion: {} ", self.run);
            draw_pending(frame, body, &title, "lesion study", &self.state);
            return;
        };
        let (topology, study) = ready.as_ref();
        let base = study.baseline.accuracy;
        let title = format!(
            " Lesion: {} · {} · accuracy {:.1}% on {} validation samples; each part deleted alone, no retraining ",
            self.run,
            topology.summary(),
            100.0 * base,
            study.samples
        );
        let block = Block::default()
            .borders(Borders::ALL)
            .title(fit(&title, area.width as usize - 2));
        let inner = block.inner(body);
        frame.render_widget(block, body);

        // The diagram: boxes show the drop in points; enabled arcs are labelled with theirs.
        let lanes = (inner.height / 3).clamp(1, 6);
        let mut plan = diagram::plan(
            topology,
            inner.width.saturating_sub(2),
            lanes,
            None,
            0,
            true,
        );
        let drops: Vec<(usize, Option<f64>)> = study
            .deletions
            .iter()
            .map(|d| (d.layer, d.score.map(|s| 100.0 * (base - s.accuracy))))
            .collect();
        for b in &mut plan.boxes {
            if let Some((_, drop)) = drops.iter().find(|(l, _)| *l == b.layer) {
                b.detail = drop.map_or("×".into(), |d| format!("{:.0}", -d));
                b.size = None;
            }
        }
        let edge_drops: Vec<(SkipEdge, f64)> = study
            .edges
            .iter()
            .map(|e| (e.edge, 100.0 * (base - e.score.accuracy)))
            .collect();
        let labels: Vec<(SkipEdge, String)> = edge_drops
            .iter()
            .map(|(e, d)| (*e, format!("{:.1}", -d)))
            .collect();
        let diagram_area = Rect::new(
            inner.x + 1,
            inner.y,
            inner.width.saturating_sub(1),
            (plan.lanes + BOX_ROWS).min(inner.height),
        );
        let plain = Style::default().fg(Color::DarkGray);
        let style = ArcStyle {
            on: plain,
            residual: plain,
            off: plain,
            selected: plain,
        };
        let (edge_hits, layer_hits) = diagram::render(
            &plan,
            topology,
            diagram_area,
            frame.buffer_mut(),
            None,
            None,
            &labels,
            style,
        );
        let candidates = topology.candidate_edges();
        for (rect, index) in edge_hits {
            let edge = candidates[index];
            if let Some((_, d)) = edge_drops.iter().find(|(e, _)| *e == edge) {
                tint(frame.buffer_mut(), rect, drop_colour(*d));
            }
        }
        for (rect, layer) in layer_hits {
            match drops.iter().find(|(l, _)| *l == layer) {
                Some((_, Some(d))) => tint(frame.buffer_mut(), rect, drop_colour(*d)),
                Some((_, None)) => tint(frame.buffer_mut(), rect, Color::DarkGray),
                None => {}
            }
        }
        let mut legend = vec![Span::raw("points lost: ")];
        for (_, colour, label) in SCALE {
            legend.push(Span::styled("■", Style::default().fg(colour)));
            legend.push(Span::raw(format!(" {label}  ")));
        }
        legend.push(Span::styled("× cannot be deleted", plain));
        let below = inner.y + diagram_area.height;
        if below >= inner.bottom() {
            return;
        }
        frame.render_widget(
            Paragraph::new(Line::from(legend)),
            Rect::new(inner.x + 1, below, inner.width.saturating_sub(1), 1),
        );
        let rest = Rect::new(
            inner.x + 1,
            below + 1,
            inner.width.saturating_sub(1),
            inner.bottom().saturating_sub(below + 1),
        );
        if rest.height < 2 {
            return;
        }
        let [table_area, curve_area] =
            Layout::horizontal([Constraint::Length(42), Constraint::Min(20)]).areas(rest);
        // The table of deletions and removals, scrolled.
        let rows = Self::rows(topology, study);
        let shown = table_area.height.saturating_sub(1) as usize;
        self.scroll = self.scroll.min(rows.len().saturating_sub(shown));
        let mut lines = vec![Line::from(format!(
            "{:<8} {:<9}{:>9} {:>6}",
            "removed", "how", "accuracy", "pp"
        ))
        .bold()];
        lines.extend(rows.into_iter().skip(self.scroll).take(shown));
        frame.render_widget(Paragraph::new(lines), table_area);
        // The k-deletion curve: accuracy (mean ± sd over the draws) as bars.
        let branches = study
            .deletions
            .iter()
            .any(|d| study.pool.contains(&d.layer) && d.deletion == Some(Deletion::Branch));
        let mut curve = vec![Line::from(format!(
            "k of {} {} deleted at random",
            study.pool.len(),
            if branches { "blocks" } else { "layers" }
        ))
        .bold()];
        if study.curve.is_empty() {
            curve.push(Line::styled("no block can be deleted", plain));
        }
        let bar_width = curve_area.width.saturating_sub(18).max(1) as f64;
        for p in &study.curve {
            let Some(acc) = p.accuracy() else { continue };
            let sd = acc
                .sd
                .map_or(String::new(), |sd| format!("±{:.1}", 100.0 * sd));
            let filled = ((acc.mean / base.max(1e-9)).clamp(0.0, 1.0) * bar_width).round() as usize;
            curve.push(Line::from(vec![
                Span::raw(format!("{:>2} {:>5.1}%{:<6} ", p.k, 100.0 * acc.mean, sd)),
                Span::styled(
                    "█".repeat(filled),
                    Style::default().fg(drop_colour(100.0 * (base - acc.mean))),
                ),
            ]));
        }
        frame.render_widget(
            Paragraph::new(curve).style(Style::default().remove_modifier(Modifier::BOLD)),
            curve_area,
        );
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        Some(hint_line([("↑↓", "scroll the table"), ("Esc", "back")]))
    }

    fn full_screen(&self) -> bool {
        true
    }
}

//! The landscape view (`Z`): the loss of the selected run, or of every marked run, along a
//! random filter-normalised direction (Li et al. 2018), θ + αδ for α from -1 to 1, over
//! training examples, as curves on one chart with each run's sharpness (the mean rise above
//! the loss at its trained weights). `Z` again maps the picked run's loss over a plane,
//! θ + αδ + βη, as filled contour bands: a round bowl is a smooth minimum; nested rings
//! pinched into ridges and plateaus, a chaotic one.

use crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use super::analysis::{
    draw_pending, Analysing, AnalysisKind, AnalysisRequest, AnalysisUpdate, Pending,
};
use super::compare::RUN_COLORS;
use super::{leave_analysis, Effect, Reply, View};
use crate::analysis::landscape::Landscape;
use crate::tui::context::Context;
use crate::tui::keys::Action;
use crate::tui::widgets::contour::{levels, ContourMap, BANDS};
use crate::tui::widgets::{fit, hint_line, with_hints};

/// The most curves on one chart: one per colour.
pub const MAX_CURVES: usize = RUN_COLORS.len();

#[derive(Clone, Debug, PartialEq)]
pub struct LandscapeView {
    /// The request whose answers the view takes now (the curves', then a map's).
    pub ticket: u64,
    /// The curves' request: its runs and folders (a map asks for one of them).
    pub request: AnalysisRequest,
    pub curves: Pending<Vec<Landscape>>,
    /// The run whose curve is picked (and whose map `Z` shows).
    pub picked: usize,
    /// The picked run's map, once asked for: the run's index and the map.
    pub map: Option<(usize, Pending<Landscape>)>,
    /// Whether the map is shown (else the curves).
    pub showing_map: bool,
}

impl LandscapeView {
    pub fn new(request: &AnalysisRequest) -> Self {
        Self {
            ticket: request.ticket,
            request: request.clone(),
            curves: Pending::default(),
            picked: 0,
            map: None,
            showing_map: false,
        }
    }

    fn name(&self, i: usize) -> &str {
        self.request.runs.get(i).map_or("", |r| r.name.as_str())
    }

    /// `Z`: the picked run's map, asked for the first time it is wanted; `Z` again: back.
    fn toggle_map(&mut self, cx: &mut Context) -> Reply {
        if self.showing_map {
            self.showing_map = false;
            return Reply::Stay;
        }
        if matches!(self.curves, Pending::Working { .. }) {
            cx.say("the curves are being computed: the map can be asked for once they are done");
            return Reply::Stay;
        }
        self.showing_map = true;
        if matches!(&self.map, Some((run, state)) if *run == self.picked && !matches!(state, Pending::Failed(_)))
        {
            return Reply::Stay;
        }
        let Some(run) = self.request.runs.get(self.picked).cloned() else {
            return Reply::Stay;
        };
        self.ticket = cx.next_ticket();
        self.map = Some((self.picked, Pending::default()));
        Reply::Effects(vec![Effect::Analyse(AnalysisRequest {
            ticket: self.ticket,
            kind: AnalysisKind::LandscapeMap,
            runs: vec![run],
            folders: self.request.folders.clone(),
        })])
    }

    fn draw_curves(&self, frame: &mut Frame, area: Rect, curves: &[Landscape]) {
        let legend_rows = curves.len() as u16 + 1;
        let [chart_area, legend_area] =
            Layout::vertical([Constraint::Min(5), Constraint::Length(legend_rows)]).areas(area);
        let (lo, hi) = curves
            .iter()
            .flat_map(|c| &c.loss)
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        // A loss that grows by orders of magnitude is drawn on a log scale (labels in loss).
        let log = lo > 0.0 && hi / lo > 20.0;
        let y = |v: f64| if log { v.log10() } else { v };
        let (bottom, top) = (y(lo), if hi > lo { y(hi) } else { y(lo) + 1.0 });
        let points: Vec<Vec<(f64, f64)>> = curves
            .iter()
            .map(|c| {
                c.axis
                    .iter()
                    .zip(&c.loss)
                    .map(|(&a, &l)| (a, y(l)))
                    .collect()
            })
            .collect();
        let centre = [(0.0, bottom), (0.0, top)];
        let mut datasets = vec![Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(ratatui::style::Color::DarkGray))
            .data(&centre)];
        // The picked run's curve last, over the others.
        let order = (0..curves.len())
            .filter(|&i| i != self.picked)
            .chain(std::iter::once(self.picked).filter(|&i| i < curves.len()));
        for i in order {
            datasets.push(
                Dataset::default()
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::default().fg(RUN_COLORS[i % RUN_COLORS.len()]))
                    .data(&points[i]),
            );
        }
        let range = curves
            .first()
            .and_then(|c| c.axis.last().copied())
            .unwrap_or(1.0);
        let label = |v: f64| {
            let loss = if log { 10f64.powf(v) } else { v };
            format!("{loss:.3}")
        };
        let first = &curves[0];
        let title = format!(
            " Loss landscape: {} · loss on {} training examples along a filter-normalised direction (seed {}) ",
            self.request.title(),
            first.samples,
            first.seed,
        );
        let chart = Chart::new(datasets)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(fit(&title, area.width as usize - 2)),
            )
            .x_axis(Axis::default().title("α").bounds([-range, range]).labels([
                format!("{:.1}", -range),
                "0".into(),
                format!("{range:.1}"),
            ]))
            .y_axis(
                Axis::default()
                    .title(if log { "loss (log scale)" } else { "loss" })
                    .bounds([bottom, top])
                    .labels([label(bottom), label((bottom + top) / 2.0), label(top)]),
            );
        frame.render_widget(chart, chart_area);
        let mut lines = Vec::new();
        for (i, c) in curves.iter().enumerate() {
            let colour = RUN_COLORS[i % RUN_COLORS.len()];
            let marker = if i == self.picked { "▸ " } else { "  " };
            let text = format!(
                "{:<10} sharpness {:>9.3} · loss at the weights {:.3} · accuracy there {:.1}%",
                self.name(i),
                c.sharpness,
                c.centre_loss,
                100.0 * c.accuracy.get(c.axis.len() / 2).copied().unwrap_or(0.0),
            );
            let mut line = Line::from(vec![
                Span::raw(marker),
                Span::styled("■ ", Style::default().fg(colour)),
                Span::raw(fit(&text, (area.width as usize).saturating_sub(4))),
            ]);
            if i == self.picked {
                line = line.bold();
            }
            lines.push(line);
        }
        lines.push(Line::styled(
            "sharpness: the mean rise of the loss over the curve above its value at the weights",
            Style::default().fg(ratatui::style::Color::DarkGray),
        ));
        frame.render_widget(Paragraph::new(lines), legend_area);
    }

    fn draw_map(&self, frame: &mut Frame, area: Rect, map: &Landscape) {
        let title = format!(
            " {} · loss over a plane of two filter-normalised directions (seeds {} and {}), {} training examples ",
            self.name(self.picked),
            map.seed,
            map.seed + 1,
            map.samples
        );
        let block = Block::default()
            .borders(Borders::ALL)
            .title(fit(&title, area.width as usize - 2));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let legend_width = 34u16.min(inner.width / 2);
        let [map_area, _, legend_area] = Layout::horizontal([
            Constraint::Min(10),
            Constraint::Length(1),
            Constraint::Length(legend_width),
        ])
        .areas(inner);
        let (lo, hi) = map
            .loss
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let levels = levels(lo, if hi > lo { hi } else { lo + 1.0 });
        let points = map.axis.len();
        frame.render_widget(
            ContourMap {
                values: &map.loss,
                points,
                levels: &levels,
                centre: "●",
            },
            map_area,
        );
        let range = map.axis.last().copied().unwrap_or(1.0);
        let mut lines = vec![
            Line::from(format!("α up, β right, ±{range:.1}; ● the weights")),
            Line::from(format!("{points} × {points} points")),
            Line::from(format!("sharpness {:.3} over the plane", map.sharpness)),
            Line::from(format!("loss at the weights {:.3}", map.centre_loss)),
            Line::from(""),
            Line::from("loss in each band:").bold(),
        ];
        let bounds: Vec<f64> = std::iter::once(lo).chain(levels.iter().copied()).collect();
        for (k, (glyph, colour)) in BANDS.iter().enumerate().rev() {
            let text = match bounds.get(k + 1) {
                Some(up) => format!(" {:.3} - {up:.3}", bounds[k]),
                None => format!(" {:.3} - {hi:.3}", bounds[k]),
            };
            lines.push(Line::from(vec![
                Span::styled(glyph.repeat(3), Style::default().fg(*colour)),
                Span::raw(text),
            ]));
        }
        frame.render_widget(Paragraph::new(lines), legend_area);
    }
}

impl Analysing for LandscapeView {
    fn ticket(&self) -> u64 {
        self.ticket
    }

    fn take(&mut self, update: AnalysisUpdate) {
        match update {
            AnalysisUpdate::Landscape { result, .. } => {
                self.curves = Pending::settled(result.map(Box::new))
            }
            AnalysisUpdate::LandscapeMap { result, .. } => {
                if let Some((_, map)) = &mut self.map {
                    *map = Pending::settled(result);
                }
            }
            progress => match &mut self.map {
                Some((_, map)) if self.showing_map => {
                    map.progress(&progress);
                }
                _ => {
                    self.curves.progress(&progress);
                }
            },
        }
    }
}

impl View for LandscapeView {
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        let runs = self.request.runs.len();
        match (key.code, cx.keys.action(key.code)) {
            (_, Some(Action::Landscape)) => return self.toggle_map(cx),
            (_, Some(Action::Down)) if !self.showing_map => {
                self.picked = (self.picked + 1).min(runs.saturating_sub(1))
            }
            (_, Some(Action::Up)) if !self.showing_map => {
                self.picked = self.picked.saturating_sub(1)
            }
            _ => return leave_analysis(key, cx),
        }
        Reply::Stay
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let body = with_hints(frame, area, self.hints(cx));
        if self.showing_map {
            match &self.map {
                Some((_, Pending::Ready(map))) => self.draw_map(frame, body, map),
                Some((run, state)) => {
                    let title = format!(" Loss landscape map: {} ", self.name(*run));
                    draw_pending(frame, body, &title, "loss landscape map", state);
                }
                None => {}
            }
            return;
        }
        match &self.curves {
            Pending::Ready(curves) if !curves.is_empty() => self.draw_curves(frame, body, curves),
            Pending::Ready(_) => {}
            state => {
                let title = format!(" Loss landscape: {} ", self.request.title());
                draw_pending(frame, body, &title, "loss landscape", state);
            }
        }
    }

    fn hints(&self, cx: &Context) -> Option<Line<'static>> {
        let z = crate::tui::keys::key_label(cx.keys.keys(Action::Landscape)[0], false);
        Some(match self.showing_map {
            true => hint_line([(z.as_str(), "back to the curves"), ("Esc", "close")]),
            false => hint_line([
                ("↑↓", "pick a run"),
                (z.as_str(), "its 2-D map"),
                ("Esc", "back"),
            ]),
        })
    }

    fn full_screen(&self) -> bool {
        true
    }
}

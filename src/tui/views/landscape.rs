//! The landscape view (`Z`): the selected run's loss along a random filter-normalised
//! direction (Li et al. 2018), θ + αδ for α from -1 to 1, over training examples, as a
//! curve, with its sharpness (the mean rise above the loss at the trained weights).

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use super::analysis::{draw_pending, Pending};
use super::{Effect, Reply, Request, View};
use crate::analysis::landscape::Landscape;
use crate::tui::context::Context;
use crate::tui::keys::Action;
use crate::tui::widgets::{fit, hint_line};

#[derive(Clone, Debug, PartialEq)]
pub struct LandscapeView {
    pub ticket: u64,
    pub run: String,
    pub state: Pending<Landscape>,
}

impl LandscapeView {
    pub fn new(ticket: u64, run: String) -> Self {
        Self {
            ticket,
            run,
            state: Pending::Working { done: 0, total: 0 },
        }
    }
}

impl View for LandscapeView {
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        match (key.code, cx.keys.action(key.code)) {
            (_, Some(Action::Quit)) if key.code != KeyCode::Esc => Reply::Then(Request::Quit),
            _ => Reply::Then(Request::Effects(vec![Effect::CancelAnalysis])),
        }
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let [body, hints] =
            Layout::vertical([Constraint::Min(5), Constraint::Length(1)]).areas(area);
        frame.render_widget(Paragraph::new(self.hints(cx).unwrap_or_default()), hints);
        let Pending::Ready(l) = &self.state else {
            let title = format!(" Loss landscape: {} ", self.run);
            draw_pending(frame, body, &title, "loss landscape", &self.state);
            return;
        };
        let title = format!(
            " Loss landscape: {} · sharpness {:.3} · loss on {} training examples along a filter-normalised direction (seed {}) ",
            self.run, l.sharpness, l.samples, l.seed
        );
        let points: Vec<(f64, f64)> = l.axis.iter().copied().zip(l.loss.iter().copied()).collect();
        let (lo, hi) = l
            .loss
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let range = l.axis.last().copied().unwrap_or(1.0);
        let centre = [(0.0, lo), (0.0, hi)];
        let datasets = vec![
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(Color::Cyan))
                .data(&points),
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(Color::DarkGray))
                .data(&centre),
        ];
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
                    .title("loss")
                    .bounds([lo, hi])
                    .labels([format!("{lo:.3}"), format!("{hi:.3}")]),
            );
        frame.render_widget(chart, body);
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        Some(hint_line([("Esc", "back")]))
    }

    fn full_screen(&self) -> bool {
        true
    }
}

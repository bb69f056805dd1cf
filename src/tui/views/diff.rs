//! The configuration diff (`D`): the selected run against another, only what differs: each
//! hyperparameter, the network, the skip edges edge by edge; then both runs' results. J/K
//! choose the other run.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::{Reply, Request, View};
use crate::compare;
use crate::tui::context::Context;
use crate::tui::keys::Action;
use crate::tui::run_list::{Run, RunList};
use crate::tui::widgets::{fit, hint_line, pct};

/// The view's state: the run compared against (an index into the runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffView {
    pub other: Option<usize>,
}

impl DiffView {
    /// Against the first marked run that is not the selected one, else the run before it in
    /// the table (or after, for the first).
    pub fn new(runs: &RunList) -> Self {
        let selected = runs.selected;
        let marked = (0..runs.all.len()).find(|&i| runs.all[i].marked && Some(i) != selected);
        let other = marked.or_else(|| {
            let order: Vec<usize> = runs.rows().iter().map(|r| r.members[0]).collect();
            let at = order.iter().position(|&i| Some(i) == selected)?;
            match at {
                0 => order.get(1).copied(),
                k => order.get(k - 1).copied(),
            }
        });
        Self { other }
    }

    /// The next (or previous) run in the table's order that is not the selected one.
    fn step(&mut self, runs: &RunList, delta: isize) {
        let order: Vec<usize> = runs
            .rows()
            .iter()
            .flat_map(|r| r.members.clone())
            .filter(|&i| Some(i) != runs.selected)
            .collect();
        if order.is_empty() {
            return;
        }
        let at = self.other.and_then(|o| order.iter().position(|&i| i == o));
        let n = order.len() as isize;
        let next = match at {
            Some(k) => (k as isize + delta).rem_euclid(n),
            None => 0,
        };
        self.other = Some(order[next as usize]);
    }
}

/// A run's results in a line: best validation, test at the best epoch, seconds per epoch.
fn results(run: &Run) -> String {
    if run.epochs.is_empty() {
        return format!("{}, no epoch finished yet", run.state.label());
    }
    let best = run.best_val().map_or("-".into(), pct);
    let test = run.test_accuracy.map_or("-".into(), pct);
    let seconds = run
        .mean_epoch_seconds()
        .map_or("-".into(), |s| format!("{s:.2}"));
    format!("best val {best} · test@best {test} · {seconds} s/epoch")
}

impl View for DiffView {
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        match (key.code, cx.keys.action(key.code)) {
            (KeyCode::Esc, _) => Reply::Close,
            (_, Some(Action::Quit)) => Reply::Then(Request::Quit),
            (_, Some(Action::NextRun | Action::Down)) => {
                self.step(&cx.runs, 1);
                Reply::Stay
            }
            (_, Some(Action::PrevRun | Action::Up)) => {
                self.step(&cx.runs, -1);
                Reply::Stay
            }
            _ => Reply::Close,
        }
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let [body, hints] =
            Layout::vertical([Constraint::Min(5), Constraint::Length(1)]).areas(area);
        frame.render_widget(Paragraph::new(self.hints(cx).unwrap_or_default()), hints);
        let runs = &cx.runs;
        let pair = runs
            .selected()
            .zip(self.other.and_then(|i| runs.all.get(i)));
        let Some((a, b)) = pair else {
            frame.render_widget(
                Paragraph::new("Two runs are needed: train or load another (L), then D again.")
                    .block(Block::default().borders(Borders::ALL).title(" Diff ")),
                body,
            );
            return;
        };
        let title = format!(" Diff: {} against {} ", a.name, b.name);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(fit(&title, body.width.saturating_sub(2) as usize));
        let inner = block.inner(body);
        frame.render_widget(block, body);
        let width = inner.width as usize;
        let name_width = 22;
        let column = width.saturating_sub(name_width + 2) / 2;
        let row = |name: &str, x: &str, y: &str| {
            format!(
                " {:<name_width$}{:<column$} {}",
                fit(name, name_width - 1),
                fit(x, column.saturating_sub(1)),
                fit(y, column.saturating_sub(1))
            )
        };
        let id = |r: &Run| r.saved_id.clone().unwrap_or_else(|| r.name.clone());
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let mut lines = vec![Line::styled(row("", &id(a), &id(b)), bold)];
        let differences = compare::differences(&a.experiment, &b.experiment);
        // A resume belongs to the configuration too.
        let resumed = |r: &Run| match r.resumed_after.is_empty() {
            true => String::new(),
            false => format!("after epoch {:?}", r.resumed_after),
        };
        let resume =
            (a.resumed_after != b.resumed_after).then(|| ("resumed", resumed(a), resumed(b)));
        if differences.is_empty() && resume.is_none() {
            lines.push(Line::from(
                " The same configuration: these runs differ in nothing but chance.",
            ));
        }
        // What a run lacks (no edge of its own, a CNN's activation) reads as `-`.
        let or_dash = |v: &str| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.to_string()
            }
        };
        for d in &differences {
            lines.push(Line::from(row(d.facet, &or_dash(&d.a), &or_dash(&d.b))));
        }
        if let Some((name, x, y)) = resume {
            lines.push(Line::from(row(name, &x, &y)));
        }
        lines.push(Line::from(""));
        lines.push(Line::styled(" results", bold));
        for run in [a, b] {
            let text = format!(" {:<8} {}", run.name, results(run));
            lines.push(Line::styled(text, Style::default().fg(Color::Gray)));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }

    fn hints(&self, cx: &Context) -> Option<Line<'static>> {
        Some({
            let runs = cx.keys.hint_label(&[Action::PrevRun, Action::NextRun], "/");
            hint_line([(runs.as_str(), "other run"), ("Esc", "back")])
        })
    }

    fn full_screen(&self) -> bool {
        true
    }
}

//! The small views: the help, the questions before quitting and removing a run, the preset
//! name being typed, and the runs filter being typed.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::{Effect, Reply, Request, View};
use crate::tui::context::Context;
use crate::tui::keys;
use crate::tui::widgets::{centered, draw_dialog, hint_line};

/// The help: every key from the key table, and how to read the screen. Any key closes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Help;

/// What the help says beyond the keys (from the key table).
const LEGEND: [(&str, &str); 5] = [
    ("mouse click", "select an edge, a layer or a run"),
    (
        "Diagram",
        "bright arcs are on, dim ones off, yellow is selected;",
    ),
    (
        "",
        "MLP layer 0 is the input; CNN convs and pools count from 1",
    ),
    ("Runs", "train | val sparklines, each on its own scale;"),
    ("", "yellow bar: the best epoch, ↑ its accuracy"),
];

impl View for Help {
    fn key(&mut self, _key: KeyEvent, _cx: &mut Context) -> Reply {
        Reply::Close
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let rows: Vec<(String, &str)> = keys::HELP
            .iter()
            .map(|(actions, what)| (cx.keys.help_label(actions), *what))
            .chain(LEGEND.iter().map(|(k, v)| (k.to_string(), *v)))
            .collect();
        // The key column is as wide as the longest label (bindings change them), plus a space.
        let keys_width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0)
            + 1;
        let text_width = rows
            .iter()
            .map(|(_, v)| v.chars().count())
            .max()
            .unwrap_or(0);
        let popup = centered(
            area,
            (keys_width + text_width + 3) as u16,
            rows.len() as u16 + 2,
        );
        frame.render_widget(Clear, popup);
        let lines: Vec<Line> = rows
            .into_iter()
            .map(|(k, v)| {
                Line::from(vec![
                    Span::styled(
                        format!(" {k:<keys_width$}"),
                        Style::default().fg(Color::Yellow),
                    ),
                    Span::raw(v),
                ])
            })
            .collect();
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" Help: any key closes "),
            ),
            popup,
        );
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        None
    }
}

/// "Quit?" while runs train: quitting stops them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfirmQuit;

impl View for ConfirmQuit {
    fn key(&mut self, key: KeyEvent, _cx: &mut Context) -> Reply {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                Reply::Then(Request::QuitNow)
            }
            _ => Reply::Close,
        }
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let active = cx
            .runs
            .all
            .iter()
            .filter(|r| r.live.is_some() && r.state.is_active())
            .count();
        draw_dialog(
            frame,
            area,
            " Quit? ",
            &[
                format!("{active} run(s) still active: quitting stops them."),
                "y = quit, any key = stay".to_string(),
            ],
        );
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        None
    }
}

/// "Remove this run from the table?" (an index into the runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfirmDelete(pub usize);

impl View for ConfirmDelete {
    fn key(&mut self, key: KeyEvent, _cx: &mut Context) -> Reply {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Reply::Then(Request::RemoveRun(self.0)),
            _ => Reply::Close,
        }
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let Some(run) = cx.runs.all.get(self.0) else {
            return;
        };
        let mut lines = vec![format!("Remove {} from the runs table?", run.name)];
        if run.state.is_active() {
            lines.push(match run.live {
                Some(_) => "It is still training: removing it stops it.".into(),
                None => {
                    "Another process trains it: it goes on (the table stops following it).".into()
                }
            });
        }
        let note = run.files_note();
        let mut note = note.chars();
        let first = note.next().map(|c| c.to_uppercase().collect::<String>());
        lines.push(format!("{}{}.", first.unwrap_or_default(), note.as_str()));
        lines.push("y = remove, any key = keep".into());
        draw_dialog(frame, area, " Remove run? ", &lines);
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        None
    }
}

/// "Save as preset": the name typed so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaveAs(pub String);

impl View for SaveAs {
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        let name = &mut self.0;
        match key.code {
            KeyCode::Esc => return Reply::Close,
            KeyCode::Backspace => {
                name.pop();
            }
            KeyCode::Char(c) if name.len() < 80 => name.push(c),
            KeyCode::Enter => {
                if crate::experiment::valid_preset_name(name) {
                    let effect = Effect::SavePreset(name.clone());
                    return Reply::Then(Request::Effects(vec![effect]));
                }
                cx.say(format!(
                    "`{name}` is not a usable name: letters, digits, - _ and . only"
                ));
            }
            _ => {}
        }
        Reply::Stay
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, _cx: &Context) {
        let name = &self.0;
        let popup = centered(area, 60, 6);
        frame.render_widget(Clear, popup);
        let lines = vec![
            Line::from(" Save the topology and the run form as presets/NAME.ron"),
            Line::from(vec![
                Span::raw(" name: "),
                Span::styled(format!("{name}▏"), Style::default().fg(Color::Yellow)),
            ]),
            Line::styled(
                " Enter saves · Esc cancels · letters, digits, - _ .",
                Style::default().fg(Color::Gray),
            ),
        ];
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" Save as preset "),
            ),
            popup,
        );
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        Some(hint_line([("Enter", "save"), ("Esc", "cancel")]))
    }
}

/// The runs filter being typed: the table narrows as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter(pub String);

impl View for Filter {
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        let text = &mut self.0;
        let reply = match key.code {
            KeyCode::Esc => {
                cx.runs.filter.clear();
                Reply::Close
            }
            KeyCode::Enter => Reply::Close,
            KeyCode::Backspace => {
                text.pop();
                cx.runs.filter = text.clone();
                Reply::Stay
            }
            KeyCode::Char(c) if text.len() < 60 => {
                text.push(c);
                cx.runs.filter = text.clone();
                Reply::Stay
            }
            _ => Reply::Stay,
        };
        cx.runs.keep_selection_shown();
        reply
    }

    /// The runs panel shows the filtered table; the filter itself is in the hint bar.
    fn draw(&mut self, _frame: &mut Frame, _area: Rect, _cx: &Context) {}

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        Some({
            Line::from(vec![
                Span::styled(" filter: ", Style::default().fg(Color::Yellow)),
                Span::raw(format!("{}▏", self.0)),
                Span::styled("  Enter", Style::default().fg(Color::Yellow)),
                Span::raw(" keep"),
                Span::styled("  Esc", Style::default().fg(Color::Yellow)),
                Span::raw(" clear"),
            ])
        })
    }
}

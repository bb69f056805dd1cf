//! A list popup: items one per line (those that cannot be used in red), up/down to select,
//! Enter to choose, Esc to close. The preset picker is one; any other list of named things
//! to pick from is another, with its own lines and what choosing does.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::{Reply, Request, View};
use crate::experiment::Experiment;
use crate::tui::context::Context;
use crate::tui::widgets::{centered, hint_line};

/// What a list shows of its items and what choosing one does.
pub trait ListItem: Clone {
    /// The item's line, and its style (red where it cannot be used).
    fn line(&self) -> (String, Style);
    /// What choosing it does (it may say why it cannot be chosen in the message instead).
    fn choose(self, cx: &mut Context) -> Reply;
}

/// The popup's state.
#[derive(Clone, Debug, PartialEq)]
pub struct ListPopup<T> {
    pub items: Vec<T>,
    pub selected: usize,
    pub title: String,
    /// What it says when there are no items.
    pub empty: String,
}

impl<T> ListPopup<T> {
    pub fn new(items: Vec<T>, title: impl Into<String>, empty: impl Into<String>) -> Self {
        Self {
            items,
            selected: 0,
            title: title.into(),
            empty: empty.into(),
        }
    }
}

impl<T: ListItem> View for ListPopup<T> {
    /// Up/down move the selection, Enter chooses, Esc and q close.
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        let len = self.items.len();
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => Reply::Close,
            KeyCode::Enter => match self.items.get(self.selected).cloned() {
                Some(item) => item.choose(cx),
                None => Reply::Close,
            },
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab if len > 0 => {
                self.selected = (self.selected + 1) % len;
                Reply::Stay
            }
            KeyCode::Up | KeyCode::Char('k') | KeyCode::BackTab if len > 0 => {
                self.selected = (self.selected + len - 1) % len;
                Reply::Stay
            }
            _ => Reply::Stay,
        }
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, _cx: &Context) {
        let lines: Vec<(String, Style)> = self.items.iter().map(ListItem::line).collect();
        let (title, empty, selected) = (self.title.as_str(), self.empty.as_str(), self.selected);

        let popup = centered(
            area,
            area.width.saturating_sub(6).min(110),
            area.height.saturating_sub(4),
        );
        frame.render_widget(Clear, popup);
        let rows = popup.height.saturating_sub(2) as usize;
        // Scroll so the selected line stays in view.
        let first = selected.saturating_sub(rows.saturating_sub(1));
        let mut text: Vec<Line> = lines
            .into_iter()
            .enumerate()
            .skip(first)
            .take(rows)
            .map(|(i, (line, style))| {
                if i == selected {
                    Line::styled(format!("▸ {line}"), style.add_modifier(Modifier::REVERSED))
                } else {
                    Line::styled(format!("  {line}"), style)
                }
            })
            .collect();
        if text.is_empty() {
            text.push(Line::from(format!("  {empty}")));
        }
        frame.render_widget(
            Paragraph::new(text).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title.to_string()),
            ),
            popup,
        );
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        Some(hint_line([
            ("↑↓", "select"),
            ("Enter", "load"),
            ("Esc", "close"),
        ]))
    }
}

/// A preset file as the picker shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PresetItem {
    pub name: String,
    /// The experiment, or why the file cannot be used.
    pub experiment: Result<Experiment, String>,
}

impl ListItem for PresetItem {
    fn line(&self) -> (String, Style) {
        match &self.experiment {
            Ok(e) => (
                format!("{:<24} {}", self.name, e.description),
                Style::default(),
            ),
            Err(why) => (
                format!("{:<24} {why}", self.name),
                Style::default().fg(Color::Red),
            ),
        }
    }

    fn choose(self, cx: &mut Context) -> Reply {
        match self.experiment {
            Ok(e) => Reply::Then(Request::LoadPreset(self.name, Box::new(e))),
            Err(why) => {
                cx.say(format!("preset {} cannot be used: {why}", self.name));
                Reply::Close
            }
        }
    }
}

/// The preset picker over `items`.
pub fn presets(items: Vec<PresetItem>) -> ListPopup<PresetItem> {
    ListPopup::new(
        items,
        " Presets (presets/): Enter loads · Esc closes ",
        "no presets in presets/",
    )
}

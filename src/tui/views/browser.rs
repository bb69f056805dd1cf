//! The run browser (`L`): every saved run in one list, filtered by text (its id, which a
//! sweep's name starts, its data set, network, configuration and status), several chosen and
//! loaded into the runs table at once. It owns its state, its keys and its drawing.

use std::collections::BTreeSet;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::{Reply, Request, View};
use crate::compare::{self, Facet};
use crate::tui::context::Context;
use crate::tui::run_list::Run;
use crate::tui::widgets::{fit, hint_line};

/// A saved run as the browser lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct BrowserItem {
    /// The run's id (its folder's name), or the folder of an unreadable one.
    pub id: String,
    pub best_val: Option<f64>,
    /// One word: finished, stopped, diverged, failed, running, unreadable.
    pub status: String,
    /// The data set and network, for the filter.
    pub detail: String,
    /// What the run is, facet by facet (none for an unreadable one).
    pub facets: Vec<Facet>,
    /// The run to add to the table, or why it cannot be.
    pub run: Result<Run, String>,
}

/// What a key did in the browser.
#[derive(Clone, Debug, PartialEq)]
pub enum BrowserOutcome {
    Stay,
    Close,
    /// Add these runs to the table (and close).
    Load(Vec<Run>),
}

/// The browser's state.
#[derive(Clone, Debug, PartialEq)]
pub struct RunBrowser {
    pub items: Vec<BrowserItem>,
    /// Each item's description against the others (what sets it apart).
    pub descriptions: Vec<String>,
    /// What every run shares.
    pub common: String,
    /// Each item's text the filter searches, lower case.
    haystacks: Vec<String>,
    pub filter: String,
    /// Keys go to the filter (after `/`) until Enter or Esc.
    pub typing: bool,
    /// The item under the cursor (an index into `items`): it stays on its run as the filter
    /// changes, while that run is shown.
    pub cursor: Option<usize>,
    /// The items chosen with Space (indices into `items`).
    pub chosen: BTreeSet<usize>,
    /// Ids of the runs the table has already (marked, and not loaded twice).
    pub loaded: BTreeSet<String>,
    /// The first row drawn (kept so the list does not jump as the cursor moves).
    pub scroll: usize,
    /// The folders the runs were read from, for the title.
    pub folders: String,
}

impl RunBrowser {
    pub fn new(items: Vec<BrowserItem>, loaded: BTreeSet<String>) -> Self {
        let described = compare::describe(
            &items
                .iter()
                .filter(|i| i.run.is_ok())
                .map(|i| i.facets.clone())
                .collect::<Vec<_>>(),
        );
        let mut each = described.each.into_iter();
        let descriptions: Vec<String> = items
            .iter()
            .map(|i| match &i.run {
                Ok(_) => each.next().unwrap_or_default(),
                Err(why) => why.clone(),
            })
            .collect();
        let haystacks = items
            .iter()
            .zip(&descriptions)
            .map(|(i, d)| format!("{} {} {} {d}", i.id, i.status, i.detail).to_lowercase())
            .collect();
        let cursor = (!items.is_empty()).then_some(0);
        RunBrowser {
            items,
            descriptions,
            common: described.common,
            haystacks,
            filter: String::new(),
            typing: false,
            cursor,
            chosen: BTreeSet::new(),
            loaded,
            scroll: 0,
            folders: String::new(),
        }
    }

    /// The items the filter lets through (every word must match), in order.
    pub fn shown(&self) -> Vec<usize> {
        let words: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        (0..self.items.len())
            .filter(|&i| words.iter().all(|w| self.haystacks[i].contains(w.as_str())))
            .collect()
    }

    /// The cursor's row among `shown`, moving it to the first shown item where its run is
    /// filtered out.
    fn cursor_row(&mut self, shown: &[usize]) -> Option<usize> {
        let row = self
            .cursor
            .and_then(|c| shown.iter().position(|&i| i == c))
            .or((!shown.is_empty()).then_some(0));
        self.cursor = row.map(|r| shown[r]);
        row
    }

    pub fn outcome(&mut self, key: KeyEvent) -> BrowserOutcome {
        if self.typing {
            match key.code {
                KeyCode::Enter | KeyCode::Esc => self.typing = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            let shown = self.shown();
            self.cursor_row(&shown);
            return BrowserOutcome::Stay;
        }
        let shown = self.shown();
        let row = self.cursor_row(&shown);
        let go = |row: Option<usize>, by: isize| -> Option<usize> {
            let last = shown.len().checked_sub(1)?;
            Some((row.unwrap_or(0) as isize + by).clamp(0, last as isize) as usize)
        };
        let moved = match key.code {
            KeyCode::Esc | KeyCode::Char('q') => return BrowserOutcome::Close,
            KeyCode::Down | KeyCode::Char('j') => go(row, 1),
            KeyCode::Up | KeyCode::Char('k') => go(row, -1),
            KeyCode::PageDown => go(row, 10),
            KeyCode::PageUp => go(row, -10),
            KeyCode::Home | KeyCode::Char('g') => go(Some(0), 0),
            KeyCode::End | KeyCode::Char('G') => go(Some(shown.len()), 0),
            KeyCode::Char('/') => {
                self.typing = true;
                row
            }
            KeyCode::Char(' ') => {
                if let Some(i) = self.cursor {
                    if !self.chosen.remove(&i) {
                        self.chosen.insert(i);
                    }
                }
                go(row, 1)
            }
            // Every run shown, or none when all are chosen already.
            KeyCode::Char('a') => {
                if shown.iter().all(|i| self.chosen.contains(i)) {
                    shown.iter().for_each(|i| {
                        self.chosen.remove(i);
                    });
                } else {
                    self.chosen.extend(shown.iter().copied());
                }
                row
            }
            KeyCode::Enter => {
                // The chosen runs, or the one under the cursor.
                let picked: Vec<usize> = match self.chosen.is_empty() {
                    true => self.cursor.into_iter().collect(),
                    false => self.chosen.iter().copied().collect(),
                };
                let runs = picked
                    .into_iter()
                    .filter_map(|i| self.items[i].run.clone().ok())
                    .collect();
                return BrowserOutcome::Load(runs);
            }
            _ => row,
        };
        self.cursor = moved.map(|r| shown[r]);
        BrowserOutcome::Stay
    }

    /// Draws the browser on `area` (the whole screen): a line per run (chosen mark, id, best val, status, what
    /// sets it apart), the filter, and its keys.
    pub fn draw_on(&mut self, frame: &mut Frame, area: Rect) {
        let popup = area;
        frame.render_widget(Clear, popup);
        let shown = self.shown();
        let row = self.cursor_row(&shown);
        let inner_width = popup.width.saturating_sub(2) as usize;
        // Header, list, a blank line, the filter and the keys.
        let list_rows = popup.height.saturating_sub(5) as usize;
        let at = row.unwrap_or(0);
        if at < self.scroll {
            self.scroll = at;
        } else if at >= self.scroll + list_rows.max(1) {
            self.scroll = at + 1 - list_rows.max(1);
        }
        let id_width = shown
            .iter()
            .map(|&i| self.items[i].id.chars().count())
            .max()
            .unwrap_or(2)
            .clamp(2, inner_width.saturating_sub(30).max(12));
        let mut lines = vec![Line::styled(
            format!(
                "   {:<id_width$} {:>7} {:<9} what sets it apart",
                "run", "best", "status"
            ),
            Style::default().add_modifier(Modifier::BOLD),
        )];
        for (r, &i) in shown.iter().enumerate().skip(self.scroll).take(list_rows) {
            let item = &self.items[i];
            let here = Some(r) == row;
            let mark = match (self.loaded.contains(&item.id), self.chosen.contains(&i)) {
                (true, _) => "✓",
                (false, true) => "●",
                (false, false) => " ",
            };
            let best = item
                .best_val
                .map_or("-".into(), |v| format!("{:.2}%", 100.0 * v));
            let text = format!(
                "{}{mark} {:<id_width$} {best:>7} {:<9} {}",
                if here { "▸" } else { " " },
                fit(&item.id, id_width),
                item.status,
                self.descriptions[i],
            );
            let mut style = match item.run {
                Ok(_) => Style::default(),
                Err(_) => Style::default().fg(Color::Red),
            };
            if here {
                style = style.add_modifier(Modifier::REVERSED);
            }
            lines.push(Line::styled(fit(&text, inner_width), style));
        }
        if shown.is_empty() {
            lines.push(Line::from(match self.items.is_empty() {
                true => "  no saved runs here".to_string(),
                false => format!("  no run matches \"{}\"", self.filter),
            }));
        }
        while lines.len() < list_rows + 1 {
            lines.push(Line::from(""));
        }
        let filter = match (self.typing, self.filter.is_empty()) {
            (true, _) => format!(" filter: {}▏", self.filter),
            (false, true) => " / filter".to_string(),
            (false, false) => format!(" filter: \"{}\" (/ to change)", self.filter),
        };
        lines.push(Line::styled(
            fit(
                &format!(
                    "{filter} · {} of {} shown · {} chosen",
                    shown.len(),
                    self.items.len(),
                    self.chosen.len()
                ),
                inner_width,
            ),
            Style::default().fg(Color::Yellow),
        ));
        lines.push(Line::styled(
            fit(
                " ␣ choose · a all shown · Enter load · ✓ loaded · Esc back",
                inner_width,
            ),
            Style::default().fg(Color::Gray),
        ));
        let title = match self.common.is_empty() {
            true => format!(" Saved runs ({}) ", self.folders),
            false => format!(" Saved runs ({}) · all: {} ", self.folders, self.common),
        };
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(fit(&title, inner_width)),
            ),
            popup,
        );
    }
}

impl View for RunBrowser {
    fn key(&mut self, key: KeyEvent, _cx: &mut Context) -> Reply {
        match self.outcome(key) {
            BrowserOutcome::Stay => Reply::Stay,
            BrowserOutcome::Close => Reply::Close,
            BrowserOutcome::Load(runs) => Reply::Then(Request::LoadRuns(runs)),
        }
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, _cx: &Context) {
        self.draw_on(frame, area);
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        Some(hint_line([
            ("↑↓", "select"),
            ("Enter", "load"),
            ("Esc", "close"),
        ]))
    }

    fn full_screen(&self) -> bool {
        true
    }
}

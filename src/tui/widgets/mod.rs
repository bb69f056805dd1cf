//! Drawing pieces every view uses: cutting text to a width, popups centred on the screen,
//! dialogs, the hint bar, and the passes over the finished screen that recolour it for a
//! light background or none, and replace Unicode for terminals without it; the heat map
//! the matrix views share and the contour map of a landscape.

pub mod contour;
pub mod heat_map;

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::context::Colours;
use super::keys::{Hint, KeyTable};

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// A share as a percentage with one decimal: `84.3%`.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Cuts `text` to `width` characters, marking the cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A view's hint bar from its rows of the key table, each labelled with the keys in effect.
pub fn key_hints(keys: &KeyTable, hints: &[Hint]) -> Line<'static> {
    hint_line(
        hints
            .iter()
            .map(|(actions, joiner, what)| (keys.hint_label(actions, joiner), *what)),
    )
}

/// A hint bar: each key in yellow, then what it does.
pub fn hint_line<K: AsRef<str>, W: AsRef<str>>(
    entries: impl IntoIterator<Item = (K, W)>,
) -> Line<'static> {
    let mut spans = Vec::new();
    for (key, what) in entries {
        spans.push(Span::styled(
            format!(" {}", key.as_ref()),
            Style::default().fg(Color::Yellow),
        ));
        spans.push(Span::raw(format!(" {}", what.as_ref())));
    }
    Line::from(spans)
}

pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// A centred box with `lines` (wrapped where the screen is narrower than they are).
pub fn draw_dialog(frame: &mut Frame, area: Rect, title: &str, lines: &[String]) {
    let longest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let width = (longest as u16 + 4).min(area.width);
    let inner = width.saturating_sub(2).max(1) as usize;
    let rows: u16 = lines
        .iter()
        .map(|l| l.chars().count().div_ceil(inner).max(1) as u16)
        .sum();
    let popup = centered(area, width, rows + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(
            lines
                .iter()
                .map(|l| Line::from(l.clone()))
                .collect::<Vec<_>>(),
        )
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true })
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(title.to_string()),
        ),
        popup,
    );
}

pub fn draw_too_small(frame: &mut Frame, area: Rect) {
    let text = vec![
        Line::from("Terminal too small".bold()),
        Line::from(format!(
            "{}x{} here; skiplab needs at least {MIN_WIDTH}x{MIN_HEIGHT}.",
            area.width, area.height
        )),
        Line::from("Enlarge the window, or press q to quit."),
    ];
    let height = (text.len() as u16).min(area.height);
    let y = area.y + area.height.saturating_sub(height) / 2;
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        Rect::new(area.x, y, area.width, height),
    );
}

/// The screen for a light background, or without colour: the widgets draw for a dark one,
/// and one pass over the cells keeps the themes from spreading through every widget.
pub fn recolour(buf: &mut Buffer, colours: Colours) {
    let light = |c: Color| match c {
        Color::Yellow => Color::Blue,
        Color::LightYellow => Color::LightBlue,
        Color::White => Color::Black,
        Color::Gray => Color::DarkGray,
        Color::DarkGray => Color::Gray,
        Color::Cyan => Color::Magenta,
        Color::Green => Color::Rgb(0, 110, 0),
        other => other,
    };
    if colours == Colours::Dark {
        return;
    }
    let area = buf.area;
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let cell = &mut buf[(x, y)];
            match colours {
                Colours::None => {
                    // A highlighted cell (yellow, the selection) stays visible as bold.
                    if cell.fg == Color::Yellow {
                        cell.modifier.insert(Modifier::BOLD);
                    }
                    // A coloured background (a highlighted row) becomes reverse video.
                    if cell.bg != Color::Reset {
                        cell.modifier.insert(Modifier::REVERSED);
                    }
                    cell.fg = Color::Reset;
                    cell.bg = Color::Reset;
                }
                Colours::Light => {
                    cell.fg = light(cell.fg);
                    cell.bg = light(cell.bg);
                }
                Colours::Dark => {}
            }
        }
    }
}

/// Replaces every non-ASCII symbol with an ASCII stand-in, for terminals without Unicode.
pub fn asciify(buf: &mut Buffer) {
    let area = buf.area;
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let cell = &mut buf[(x, y)];
            let symbol = cell.symbol();
            if symbol.is_ascii() {
                continue;
            }
            let replacement = match symbol {
                "─" | "━" | "═" => "-",
                "│" | "┃" | "║" => "|",
                "┌" | "┐" | "└" | "┘" | "╭" | "╮" | "╯" | "╰" | "┼" | "┴" | "┬" | "├" | "┤" => {
                    "+"
                }
                "▁" => ".",
                "▂" => "_",
                "▃" => "-",
                "▄" => "=",
                "▅" => "+",
                "▆" => "*",
                "▇" => "#",
                "█" => "@",
                "•" => "*",
                "▸" => ">",
                "·" => ".",
                "←" => "<",
                "→" => ">",
                "↑" => "^",
                "↓" => "v",
                "␣" => "_",
                "‹" => "<",
                "›" => ">",
                "●" => "o",
                "◆" => "o",
                "░" => ".",
                "▒" => ":",
                "▓" => "%",
                "×" => "x",
                "■" => "#",
                "≥" => ">",
                "±" => "~",
                "…" => "~",
                "−" => "-",
                "⌫" => "<",
                "✓" => "+",
                "▏" => "|",
                s if s.chars().all(|c| ('\u{2800}'..='\u{28ff}').contains(&c)) => {
                    if s == "\u{2800}" {
                        " "
                    } else {
                        "*"
                    }
                }
                _ => "?",
            };
            cell.set_symbol(replacement);
        }
    }
}

/// Draws the view's hint bar on the last line of `area`; returns the rest, its body.
pub fn with_hints(frame: &mut Frame, area: Rect, hints: Option<Line<'static>>) -> Rect {
    let [body, bar] = Layout::vertical([Constraint::Min(5), Constraint::Length(1)]).areas(area);
    frame.render_widget(Paragraph::new(hints.unwrap_or_default()), bar);
    body
}

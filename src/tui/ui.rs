//! Drawing the lab: the main screen (header, topology panel, runs panel, hint bar) with the
//! view in front drawn over it, or a full-screen view alone; then the passes for colours and
//! ASCII. Each view draws itself; this only lays the screen out.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::app::App;
use super::views::topology::diagram::BOX_ROWS;
use super::views::View;
use super::widgets::{asciify, draw_too_small, recolour, MIN_HEIGHT, MIN_WIDTH};

pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        draw_too_small(frame, area);
    } else {
        match app.front() {
            (Some(view), cx) if view.full_screen() => view.draw(frame, area, cx),
            _ => {
                draw_main(frame, area, app);
                if let (Some(view), cx) = app.front() {
                    view.draw(frame, area, cx);
                }
            }
        }
    }
    recolour(frame.buffer_mut(), app.cx.colours);
    if app.cx.ascii {
        asciify(frame.buffer_mut());
    }
}

/// The main screen: the header with the message, the topology panel as tall as its diagram
/// needs, the runs panel, and the hint bar of the view that has the keys.
fn draw_main(frame: &mut Frame, area: Rect, app: &mut App) {
    let run_rows = (app.cx.runs.all.len().max(1) as u16) * 2 + 3;
    // The diagram takes what it needs, leaving the runs panel at least 7 rows.
    let max_topology = area
        .height
        .saturating_sub(2 + run_rows.clamp(7, 9))
        .max(BOX_ROWS + 4);
    let max_lanes = max_topology.saturating_sub(BOX_ROWS + 4).max(1);
    let topology_height = app.editor.layout(area.width, max_lanes);
    // A message longer than the header's line wraps onto more (up to three), never cut.
    let cx = &app.cx;
    let place = format!(" data: {} · {}  ", cx.data_name, cx.device);
    let header_chars =
        9 + place.chars().count() + cx.message.as_ref().map_or(0, |m| m.chars().count());
    let header_rows = (header_chars.div_ceil(area.width.max(1) as usize)).clamp(1, 3) as u16;
    let [title, top, runs, hints] = Layout::vertical([
        Constraint::Length(header_rows),
        Constraint::Length(topology_height),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(area);
    let header = Line::from(vec![
        " skiplab ".bold().reversed(),
        Span::raw(place),
        Span::styled(
            cx.message.clone().unwrap_or_default(),
            Style::default().fg(Color::Yellow),
        ),
    ]);
    frame.render_widget(Paragraph::new(header).wrap(Wrap { trim: false }), title);
    app.editor.draw(frame, top, &app.cx);
    app.table.draw(frame, runs, &app.cx);
    let front = match app.front() {
        (Some(view), cx) => view.hints(cx),
        (None, _) => None,
    };
    let line = front.unwrap_or_else(|| {
        let ([panel, _], cx) = app.panels();
        panel.hints(cx).unwrap_or_default()
    });
    frame.render_widget(
        Paragraph::new(line).style(Style::default().fg(Color::Gray)),
        hints,
    );
}

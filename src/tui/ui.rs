//! Drawing the lab. Everything here reads [`App`]; the only thing it writes is the map of
//! clickable regions.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Clear, Dataset, GraphType, Paragraph, Sparkline, SparklineBar,
    Wrap,
};
use ratatui::Frame;

use super::app::{App, Colours, Focus, HitMap, Mode, RowView, Run, RunState, Selection, SortKey};
use super::diagram::{self, ArcStyle, BOX_ROWS};
use super::keys;
use super::table;
use crate::topology::{grouped, Topology};
use crate::train::EpochMetrics;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Colours that cycle over runs in the compare chart (256-colour safe).
const RUN_COLORS: [Color; 6] = [
    Color::Cyan,
    Color::Magenta,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Red,
];

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    app.hits = HitMap::default();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        draw_too_small(frame, area);
    } else if app.mode == Mode::Compare {
        draw_compare(frame, area, app);
    } else if app.mode == Mode::Flow {
        draw_flow(frame, area, app);
    } else if let Mode::Browser(browser) = &mut app.mode {
        browser.draw(frame, area);
    } else {
        draw_lab(frame, area, app);
        match &app.mode {
            Mode::Help => draw_help(frame, area, app),
            Mode::Form(_) => draw_form(frame, area, app),
            Mode::ConfirmQuit => draw_confirm(frame, area, app),
            &Mode::ConfirmDelete(i) => draw_confirm_delete(frame, area, app, i),
            Mode::Presets { items, selected } => {
                let lines = items
                    .iter()
                    .map(|item| match &item.experiment {
                        Ok(e) => (
                            format!("{:<24} {}", item.name, e.description),
                            Style::default(),
                        ),
                        Err(why) => (
                            format!("{:<24} {why}", item.name),
                            Style::default().fg(Color::Red),
                        ),
                    })
                    .collect();
                draw_list(
                    frame,
                    area,
                    " Presets (presets/): Enter loads · Esc closes ",
                    "no presets in presets/",
                    lines,
                    *selected,
                );
            }
            Mode::SaveAs(name) => draw_save_as(frame, area, name),
            Mode::Normal | Mode::Compare | Mode::Flow | Mode::Filter(_) | Mode::Browser(_) => {}
        }
    }
    recolour(frame.buffer_mut(), app.colours);
    if app.ascii {
        asciify(frame.buffer_mut());
    }
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

fn draw_too_small(frame: &mut Frame, area: Rect) {
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

fn draw_lab(frame: &mut Frame, area: Rect, app: &mut App) {
    let run_rows = (app.runs.len().max(1) as u16) * 2 + 3;
    // The diagram takes what it needs, leaving the runs panel at least 7 rows.
    let max_topology = area
        .height
        .saturating_sub(2 + run_rows.clamp(7, 9))
        .max(BOX_ROWS + 4);
    let max_lanes = max_topology.saturating_sub(BOX_ROWS + 4).max(1);
    let inner_width = area.width.saturating_sub(4);
    let selected_edge = match app.selection {
        Selection::Edge(i) => Some(i),
        Selection::Layer(_) => None,
    };
    // A network too deep to fit scrolls with the selection.
    let focus = match app.selection {
        Selection::Layer(l) => l,
        Selection::Edge(_) => app.selected_edge().map_or(0, |e| (e.from + e.to) / 2),
    };
    let plan = diagram::plan(&app.topology, inner_width, max_lanes, selected_edge, focus);
    let topology_height = plan.lanes + BOX_ROWS + 4;
    // A message longer than the header's line wraps onto more (up to three), never cut.
    let place = format!(" data: {} · {}  ", app.data_name, app.device);
    let header_chars =
        9 + place.chars().count() + app.message.as_ref().map_or(0, |m| m.chars().count());
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
            app.message.clone().unwrap_or_default(),
            Style::default().fg(Color::Yellow),
        ),
    ]);
    frame.render_widget(Paragraph::new(header).wrap(Wrap { trim: false }), title);

    // Topology panel.
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" Topology: {} ", app.topology.summary()));
    if app.focus == Focus::Topology && !app.runs.is_empty() {
        block = block.border_style(Style::default().fg(Color::Yellow));
    }
    let inner = block.inner(top);
    frame.render_widget(block, top);
    let diagram_area = Rect::new(
        inner.x + 1,
        inner.y,
        inner.width.saturating_sub(1),
        plan.lanes + BOX_ROWS,
    );
    let selected_layer = match app.selection {
        Selection::Layer(l) => Some(l),
        Selection::Edge(_) => None,
    };
    let weights = app
        .selected_run()
        .map(|r| r.skip_weights().to_vec())
        .unwrap_or_default();
    let (edge_hits, layer_hits) = diagram::render(
        &plan,
        &app.topology,
        diagram_area,
        frame.buffer_mut(),
        selected_edge,
        selected_layer,
        &weights,
        ArcStyle::default(),
    );
    app.hits.edges = edge_hits;
    app.hits.layers = layer_hits;
    let info_area = Rect::new(
        inner.x + 1,
        inner.y + plan.lanes + BOX_ROWS,
        inner.width.saturating_sub(1),
        2,
    );
    frame.render_widget(Paragraph::new(topology_info(app, &plan)), info_area);

    draw_runs(frame, runs, app);
    frame.render_widget(
        Paragraph::new(hint_line(app)).style(Style::default().fg(Color::Gray)),
        hints,
    );
}

fn topology_info(app: &App, plan: &diagram::Diagram) -> Vec<Line<'static>> {
    let t = &app.topology;
    let skips = format!("{}/{} skips on", t.skips().len(), t.candidate_edges().len());
    let stats = match plan.window {
        // A deep network: which layers show comes first (MACs make room for it).
        Some((first, shown, total)) => format!(
            "layers {first}-{} of {total} (↑↓)  ·  params {}  ·  {skips}",
            first + shown - 1,
            grouped(t.param_count()),
        ),
        None => format!(
            "params {}  ·  MACs/sample {}  ·  {skips}",
            grouped(t.param_count()),
            grouped(t.macs_per_sample()),
        ),
    };
    let hidden = plan.hidden;
    let selected = match app.selection {
        Selection::Edge(_) => match app.selected_edge() {
            Some(e) => {
                let kind = match t.edge_kind(e) {
                    None => "off".to_string(),
                    Some(crate::topology::EdgeKind::Concat) => "ON".to_string(),
                    Some(crate::topology::EdgeKind::Residual) => match t {
                        Topology::Mlp(m) if m.width(e.from) == m.width(e.to) => {
                            "ON, residual (identity)".to_string()
                        }
                        _ => "ON, residual (projection)".to_string(),
                    },
                };
                let mut s = format!("edge {e} is {kind}");
                if let Some((_, w)) = app
                    .selected_run()
                    .and_then(|r| r.skip_weights().iter().find(|(x, _)| *x == e).copied())
                {
                    s.push_str(&format!(", mean |w| {w:.4} in the selected run"));
                }
                s
            }
            None => "no candidate skip edges".into(),
        },
        Selection::Layer(l) => layer_info(t, l),
    };
    let mut second = vec![Span::styled(selected, Style::default().fg(Color::Yellow))];
    if hidden > 0 {
        second.push(Span::styled(
            format!("  (+{hidden} edges not drawn; ←/→ reach them)"),
            Style::default().fg(Color::DarkGray),
        ));
    }
    vec![Line::from(stats), Line::from(second)]
}

fn layer_info(t: &Topology, layer: usize) -> String {
    let rows = t.layer_summaries();
    let row = match t {
        Topology::Mlp(_) => rows.get(layer),
        Topology::Cnn(c) => {
            if layer > c.last_layer() {
                rows.last()
            } else {
                rows.get(layer)
            }
        }
    };
    match row {
        Some(r) => format!(
            "{}: out {}, fan-in {}, {} params, {} MACs",
            r.name,
            r.shape,
            r.fan_in,
            grouped(r.params),
            grouped(r.macs)
        ),
        None => format!("layer {layer}"),
    }
}

/// The range of `values` with a little room, for one column of sparklines.
fn value_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        (0.0, 1.0)
    } else {
        let pad = ((hi - lo) * 0.05).max(0.002);
        ((lo - pad).max(0.0), (hi + pad).min(1.0))
    }
}

/// A row's curve of `pick` per epoch: its run's, or its group's mean epoch by epoch.
fn row_curve(app: &App, row: &RowView, pick: fn(&EpochMetrics) -> f64) -> Vec<f64> {
    let runs: Vec<&Run> = row.members.iter().map(|&i| &app.runs[i]).collect();
    let len = runs.iter().map(|r| r.epochs.len()).min().unwrap_or(0);
    (0..len)
        .map(|e| runs.iter().map(|r| pick(&r.epochs[e])).sum::<f64>() / runs.len() as f64)
        .collect()
}

fn spark_data(values: &[f64], range: (f64, f64)) -> Vec<u64> {
    let (lo, hi) = range;
    values
        .iter()
        // The lowest value still draws its lowest bar (1/8 of the height).
        .map(|v| (12.5 + 87.5 * ((v - lo) / (hi - lo).max(1e-9)).clamp(0.0, 1.0)) as u64)
        .collect()
}

/// Room for a saved run's id, `20261202-121924-mlp3-skipstar-s10`.
const SAVED_ID_WIDTH: usize = 34;

/// Cuts `text` to `width` characters, marking the cut.
pub(crate) fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn draw_runs(frame: &mut Frame, area: Rect, app: &mut App) {
    let inner_width = area.width.saturating_sub(2) as usize;
    // Fixed columns: marker, chart mark, run, status, epoch, best val, s/epoch.
    let fixed = 2 + 2 + 6 + 1 + 1 + 9 + 1 + 6 + 1 + 9 + 1 + 7;
    let params_column = inner_width >= fixed + 10 + 30;
    let id_column = inner_width >= fixed + 10 + 2 + SAVED_ID_WIDTH + 30;
    let described = inner_width
        - fixed.min(inner_width)
        - if params_column { 10 } else { 0 }
        - if id_column { 2 + SAVED_ID_WIDTH } else { 0 };
    let rows = app.rows();
    let mut title = String::from(" Runs");
    let (key, reversed) = app.sort;
    if key != SortKey::Run || reversed {
        let arrow = if reversed { "↑" } else { "↓" };
        title.push_str(&format!(" · by {} {arrow}", key.name()));
    }
    if !app.filter.is_empty() {
        let shown: usize = rows.iter().map(|r| r.members.len()).sum();
        let all = app.runs.len();
        title.push_str(&format!(" · filter \"{}\" {shown}/{all}", app.filter));
    }
    if app.grouped {
        title.push_str(" · seeds grouped");
    }
    // What every run shares, last: the line may be cut.
    let common = table::common(app);
    if !common.is_empty() && app.runs.len() > 1 {
        title.push_str(&format!(" · {common}"));
    }
    title.push(' ');
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(fit(&title, inner_width));
    if app.focus == Focus::Runs {
        block = block.border_style(Style::default().fg(Color::Yellow));
    }
    // The selected run's saved id (the id `runs`, `compare` and `export` take), where there
    // is no column for it.
    if let Some(run) = app.selected_run() {
        if let (Some(id), false) = (&run.saved_id, id_column) {
            if *id != run.name {
                block = block.title_bottom(format!(" {} is saves/{id} ", run.name));
            }
        }
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.runs.is_empty() {
        frame.render_widget(
            Paragraph::new(vec![
                Line::from("No runs yet."),
                Line::from("Press t (or Enter) to train the topology above."),
            ])
            .style(Style::default().fg(Color::DarkGray)),
            inner,
        );
        return;
    }
    let mut header = format!(
        "    {:<6} {:<described$} {:<9} {:>6} {:>9} {:>7}",
        "run", "description", "status", "epoch", "best val", "s/epoch"
    );
    if params_column {
        header.push_str(&format!(" {:>9}", "params"));
    }
    if id_column {
        header.push_str("  saved as");
    }
    frame.render_widget(
        Paragraph::new(Line::from(header).add_modifier(Modifier::BOLD)),
        Rect::new(inner.x, inner.y, inner.width, 1),
    );
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new(format!(
                "No run matches \"{}\" (/ to change, Esc clears).",
                app.filter
            ))
            .style(Style::default().fg(Color::DarkGray)),
            Rect::new(inner.x, inner.y + 1, inner.width, 1),
        );
        return;
    }
    // Each sparkline column on its own scale, over the rows shown.
    let train_range = value_range(
        rows.iter()
            .flat_map(|r| row_curve(app, r, |m| m.train_accuracy)),
    );
    let val_range = value_range(
        rows.iter()
            .flat_map(|r| row_curve(app, r, |m| m.val_accuracy)),
    );
    let rows_fit = (inner.height.saturating_sub(1) / 2) as usize;
    let selected = app
        .selected_run
        .and_then(|i| rows.iter().position(|r| r.members.contains(&i)));
    // Keep the selected row visible.
    let first = selected
        .unwrap_or(0)
        .saturating_sub(rows_fit.saturating_sub(1));
    for (slot, row) in rows.iter().enumerate().skip(first).take(rows_fit) {
        let y = inner.y + 1 + (slot - first) as u16 * 2;
        let lead = &app.runs[row.members[0]];
        let is_selected = selected == Some(slot);
        let marker = if is_selected { "▸ " } else { "  " };
        let marked = if row.members.iter().any(|&i| app.runs[i].marked) {
            "● "
        } else {
            "  "
        };
        // A group counts its samples (seeds); runs repeating a seed add `+N`.
        let name = match (row.is_group(), row.repeats()) {
            (false, _) => lead.name.clone(),
            (true, 0) => format!("×{}", row.samples.len()),
            (true, r) => format!("×{}+{r}", row.samples.len()),
        };
        let epoch = match (lead.progress, row.is_group()) {
            (Some((e, step, steps)), false) => format!("{e}:{}%", step * 100 / steps.max(1)),
            _ => {
                let done = row.members.iter().map(|&i| app.runs[i].epochs.len()).min();
                format!("{}/{}", done.unwrap_or(0), lead.config.epochs)
            }
        };
        let bests = table::best_vals(app, row);
        let best = match (bests.len(), row.is_group()) {
            (0, _) => "-".to_string(),
            (_, false) => pct(bests[0]),
            (_, true) => match crate::compare::Spread::of(&bests) {
                Some(s @ crate::compare::Spread { sd: Some(sd), .. }) => {
                    format!("{:.1}±{:.1}", 100.0 * s.mean, 100.0 * sd)
                }
                // One sample: no spread to give.
                Some(s) => format!("{:.1} n=1", 100.0 * s.mean),
                None => "-".to_string(),
            },
        };
        let seconds: Vec<f64> = row
            .members
            .iter()
            .filter_map(|&i| app.runs[i].mean_epoch_seconds())
            .collect();
        let seconds = match seconds.is_empty() {
            true => "-".to_string(),
            false => format!("{:.2}", crate::compare::mean_sd(&seconds).0),
        };
        let mut line = format!(
            "{marker}{marked}{:<6} {:<described$} {:<9} {:>6} {:>9} {:>7}",
            fit(&name, 6),
            fit(&row.description, described),
            fit(&table::status_label(app, row), 9),
            epoch,
            best,
            seconds,
        );
        if params_column {
            line.push_str(&format!(" {:>9}", grouped(lead.topology.param_count())));
        }
        if id_column && !row.is_group() {
            line.push_str(&format!("  {}", lead.saved_id.as_deref().unwrap_or("-")));
        }
        let failed = row.members.iter().any(|&i| {
            matches!(
                app.runs[i].state,
                RunState::Ended(
                    crate::train::RunStatus::Diverged { .. } | crate::train::RunStatus::Failed(_)
                )
            )
        });
        let style = match (failed, is_selected) {
            (_, true) => Style::default().add_modifier(Modifier::BOLD),
            (true, _) => Style::default().fg(Color::Red),
            _ => Style::default(),
        };
        let row_area = Rect::new(inner.x, y, inner.width, 1);
        frame.render_widget(Paragraph::new(Line::from(line)).style(style), row_area);
        app.hits
            .runs
            .push((Rect::new(inner.x, y, inner.width, 2), row.members[0]));
        let curves = [
            (
                "train",
                row_curve(app, row, |m| m.train_accuracy),
                train_range,
                Color::Green,
            ),
            (
                "val",
                row_curve(app, row, |m| m.val_accuracy),
                val_range,
                Color::Cyan,
            ),
        ];
        draw_sparklines(
            frame,
            Rect::new(inner.x + 4, y + 1, inner.width.saturating_sub(4), 1),
            &curves,
        );
    }
}

/// Train and validation sparklines of one row, side by side, each on its column's scale:
/// the latest value after it, the best epoch's bar highlighted and (validation) its value.
/// One sparkline column: its label, values, the scale they share with the column, colour.
type SparkColumn<'a> = (&'a str, Vec<f64>, (f64, f64), Color);

fn draw_sparklines(frame: &mut Frame, area: Rect, curves: &[SparkColumn]) {
    let half = area.width / 2;
    for (k, (label, values, range, color)) in curves.iter().enumerate() {
        let x = area.x + k as u16 * half;
        let latest = values
            .last()
            .map_or("  -   ".to_string(), |v| format!("{:>6}", pct(*v)));
        let best_at = values
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        let best = match (best_at, *label == "val") {
            (Some(i), true) => format!(" ↑{:.1}", 100.0 * values[i]),
            _ => String::new(),
        };
        let label_text = format!("{label:<5} ");
        let text_width = (latest.len() + best.chars().count()) as u16;
        let spark_width = half.saturating_sub(label_text.len() as u16 + text_width + 2);
        frame.render_widget(
            Paragraph::new(Span::styled(
                label_text.clone(),
                Style::default().fg(Color::Gray),
            )),
            Rect::new(x, area.y, label_text.len() as u16, 1),
        );
        let data = spark_data(values, *range);
        let skip = data.len().saturating_sub(spark_width as usize);
        let bars: Vec<SparklineBar> = data
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, &v)| {
                let bar = SparklineBar::from(v);
                match best_at == Some(i) {
                    true => bar.style(Style::default().fg(Color::Yellow)),
                    false => bar,
                }
            })
            .collect();
        let spark_x = x + label_text.len() as u16;
        frame.render_widget(
            Sparkline::default()
                .data(bars)
                .max(100)
                .style(Style::default().fg(*color)),
            Rect::new(spark_x, area.y, spark_width, 1),
        );
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(latest.clone(), Style::default().fg(*color).bold()),
                Span::styled(best.clone(), Style::default().fg(Color::Yellow)),
            ])),
            Rect::new(spark_x + spark_width + 1, area.y, text_width, 1),
        );
    }
}

fn hint_line(app: &App) -> Line<'static> {
    if let Mode::Filter(text) = &app.mode {
        return Line::from(vec![
            Span::styled(" filter: ", Style::default().fg(Color::Yellow)),
            Span::raw(format!("{text}▏")),
            Span::styled("  Enter", Style::default().fg(Color::Yellow)),
            Span::raw(" keep"),
            Span::styled("  Esc", Style::default().fg(Color::Yellow)),
            Span::raw(" clear"),
        ]);
    }
    let fixed: &[(&str, &str)] = match &app.mode {
        Mode::Form(form) if form.typing.is_some() => &[
            ("Enter", "set"),
            ("⌫", "erase"),
            ("Esc", "undo entry"),
            ("↑↓", "set and move"),
        ],
        Mode::Form(_) => &[
            ("↑↓", "field"),
            ("0-9", "type"),
            ("←→", "change"),
            ("Enter", "start"),
            ("Esc", "cancel"),
        ],
        Mode::SaveAs(_) => &[("Enter", "save"), ("Esc", "cancel")],
        Mode::Presets { .. } | Mode::Browser(_) => {
            &[("↑↓", "select"), ("Enter", "load"), ("Esc", "close")]
        }
        _ => &[],
    };
    let mut entries: Vec<(String, &str)> = fixed.iter().map(|(k, w)| (k.to_string(), *w)).collect();
    if entries.is_empty() {
        let table = match app.focus {
            Focus::Runs => keys::RUNS_HINTS,
            Focus::Topology => keys::TOPOLOGY_HINTS,
        };
        entries = table
            .iter()
            .map(|(actions, joiner, what)| (app.keys.hint_label(actions, joiner), *what))
            .collect();
    }
    let mut spans = Vec::new();
    for (key, what) in entries {
        spans.push(Span::styled(
            format!(" {key}"),
            Style::default().fg(Color::Yellow),
        ));
        spans.push(Span::raw(format!(" {what}")));
    }
    Line::from(spans)
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

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

fn draw_help(frame: &mut Frame, area: Rect, app: &App) {
    let rows: Vec<(String, &str)> = keys::HELP
        .iter()
        .map(|(actions, what)| (app.keys.help_label(actions), *what))
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

/// A list popup: one line per item (broken ones in red), the selected one marked.
fn draw_list(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    empty: &str,
    lines: Vec<(String, Style)>,
    selected: usize,
) {
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

fn draw_save_as(frame: &mut Frame, area: Rect, name: &str) {
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

fn draw_form(frame: &mut Frame, area: Rect, app: &App) {
    let Mode::Form(form) = &app.mode else { return };
    let fields = form.fields();
    let error_rows = u16::from(form.error.is_some()) * 2;
    let popup = centered(area, 50, fields.len() as u16 + 6 + error_rows);
    frame.render_widget(Clear, popup);
    let mut lines = vec![
        Line::from(format!(" data: {}", app.data_name)),
        Line::from(""),
    ];
    for &field in &fields {
        let selected = field == form.field;
        let style = if selected {
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        let arrow = if selected { "▸" } else { " " };
        let value = match (&form.typing, selected) {
            (Some(text), true) => format!("{text}▏"),
            _ => format!("‹ {} ›", form.value(field)),
        };
        lines.push(Line::styled(
            format!(" {arrow} {:<13} {value}", field.name()),
            style,
        ));
    }
    if let Some(error) = &form.error {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            format!(" {error}"),
            Style::default().fg(Color::Red),
        ));
    }
    lines.push(Line::from(""));
    let hint = match form.typing {
        Some(_) => " Enter sets · Esc undoes the entry",
        None => " type a value or ←/→ · Enter starts · Esc",
    };
    lines.push(Line::styled(hint, Style::default().fg(Color::Gray)));
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Train this topology "),
        ),
        popup,
    );
}

fn draw_confirm(frame: &mut Frame, area: Rect, app: &App) {
    let active = app.runs.iter().filter(|r| r.state.is_active()).count();
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

fn draw_confirm_delete(frame: &mut Frame, area: Rect, app: &App, i: usize) {
    let Some(run) = app.runs.get(i) else { return };
    let mut lines = vec![format!("Remove {} from the runs table?", run.name)];
    if run.state.is_active() {
        lines.push("It is still training: removing it stops it.".into());
    }
    let note = crate::tui::app::files_note(run);
    let mut note = note.chars();
    let first = note.next().map(|c| c.to_uppercase().collect::<String>());
    lines.push(format!("{}{}.", first.unwrap_or_default(), note.as_str()));
    lines.push("y = remove, any key = keep".into());
    draw_dialog(frame, area, " Remove run? ", &lines);
}

/// A centred box with `lines` (wrapped where the screen is narrower than they are).
fn draw_dialog(frame: &mut Frame, area: Rect, title: &str, lines: &[String]) {
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

/// The most curves the compare chart's legend lists (one row each).
const MAX_LEGEND_ROWS: usize = 6;

/// `v` as a tick label: no decimals for large steps, a few for small ones.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    format!("{v:.decimals$}")
}

/// Axis bounds on round ticks, and the ticks' labels.
fn axis(lo: f64, hi: f64, count: usize) -> ([f64; 2], Vec<(f64, String)>) {
    let ticks = crate::compare::ticks(lo, hi, count);
    let step = if ticks.len() > 1 {
        ticks[1] - ticks[0]
    } else {
        1.0
    };
    let bounds = [ticks[0], *ticks.last().unwrap_or(&hi)];
    let labels = ticks.iter().map(|&t| (t, tick_label(t, step))).collect();
    (bounds, labels)
}

/// The x axis's lower bound: the data's, or one unit below a single point; never below zero
/// (epochs, steps and seconds are not negative) and for seconds zero (time since the start).
fn x_low(x: crate::compare::XAxis, lo: f64, hi: f64) -> f64 {
    match x {
        crate::compare::XAxis::Seconds => 0.0,
        _ => lo.min(hi - 1.0).max(0.0),
    }
}

/// The columns of the graph a [`Chart`] draws inside `inner` (its block's inner area): its
/// first column and its width. Mirrors ratatui 0.29's layout: the widest y label (or the first
/// x label, less one, when wider), at most a third of the width, then the y axis line.
fn graph_columns(inner: Rect, y_label_width: u16, first_x_label_width: u16) -> (u16, u16) {
    let left = y_label_width
        .max(first_x_label_width.saturating_sub(1))
        .min(inner.width / 3);
    let x = inner.left() + left + 1;
    (x, inner.right().saturating_sub(x))
}

/// Draws the x tick labels between the first and the last at their values: ratatui spreads
/// middle labels evenly by their count, which puts a tick's value up to half a tick away from
/// where its curve point is drawn. Labels that would touch a neighbour are left out.
fn draw_x_ticks(
    buf: &mut Buffer,
    inner: Rect,
    graph: (u16, u16),
    bounds: [f64; 2],
    ticks: &[(f64, String)],
) {
    let (left, width) = graph;
    if ticks.len() < 3 || width < 2 || inner.height == 0 {
        return;
    }
    let row = inner.bottom() - 1;
    let span = bounds[1] - bounds[0];
    let first_end = left + ticks[0].1.len() as u16;
    let last_start = (left + width).saturating_sub(ticks[ticks.len() - 1].1.len() as u16);
    let mut free_from = first_end + 1;
    for (value, label) in &ticks[1..ticks.len() - 1] {
        let column = left as f64 + (value - bounds[0]) / span * (width - 1) as f64;
        let start = (column.round() as u16).saturating_sub(label.len() as u16 / 2);
        let end = start + label.len() as u16;
        if start < free_from || end + 1 > last_start {
            continue;
        }
        buf.set_string(start, row, label, Style::default());
        free_from = end + 1;
    }
}

fn draw_compare(frame: &mut Frame, area: Rect, app: &App) {
    let view = app.chart;
    let curves = table::curves(app);
    let test = table::two_group_test(app, &curves);
    // The legend and the test line go below the plot, never over its data.
    // The test line wraps rather than lose the groups' names or its figures.
    let test_rows = test.as_ref().map_or(0, |t| {
        (t.chars().count() + 1).div_ceil(area.width.max(1) as usize) as u16
    });
    let legend_rows = curves.len().min(MAX_LEGEND_ROWS) as u16 + test_rows;
    let [chart_area, legend_area, hints] = Layout::vertical([
        Constraint::Min(5),
        Constraint::Length(legend_rows),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut datasets = Vec::new();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (i, curve) in curves.iter().enumerate() {
        let color = RUN_COLORS[i % RUN_COLORS.len()];
        datasets.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(color))
                .data(&curve.points),
        );
        xs.extend(curve.points.iter().map(|p| p.0));
        ys.extend(curve.points.iter().map(|p| p.1));
        if let Some((low, high)) = &curve.band {
            // The seed group's mean ± 1 sd, as dim dots around its line.
            for edge in [low, high] {
                datasets.push(
                    Dataset::default()
                        .marker(Marker::Dot)
                        .graph_type(GraphType::Scatter)
                        .style(Style::default().fg(color).add_modifier(Modifier::DIM))
                        .data(edge),
                );
                ys.extend(edge.iter().map(|p| p.1));
            }
        }
    }
    let fold = |v: &[f64]| {
        v.iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
    };
    let (x_lo, x_hi) = fold(&xs);
    let (y_lo, y_hi) = fold(&ys);
    let (x_bounds, x_ticks) = axis(x_low(view.x, x_lo, x_hi), x_hi, 5);
    let (y_bounds, y_ticks) = axis(y_lo, y_hi.max(y_lo + 1e-3), 4);
    let unit = if view.metric.is_accuracy() { " %" } else { "" };
    let smoothing = match view.smoothing {
        0.0 => String::new(),
        w => format!(" · smoothed {w}"),
    };
    let grouping = if app.grouped {
        " · seed groups: mean ± sd"
    } else {
        ""
    };
    let title = format!(
        " Compare: {}{unit} by {}{smoothing}{grouping} ",
        view.metric.name(),
        view.x.name()
    );
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(chart_area);
    // ratatui gets the first and last x labels; the others are drawn at their values below.
    let x_labels: Vec<Span> = x_ticks
        .iter()
        .enumerate()
        .map(|(i, (_, l))| match i == 0 || i + 1 == x_ticks.len() {
            true => Span::raw(l.clone()),
            false => Span::raw(""),
        })
        .collect();
    let y_label_width = y_ticks.iter().map(|(_, l)| l.len()).max().unwrap_or(0) as u16;
    let first_x_width = x_ticks.first().map_or(0, |(_, l)| l.len()) as u16;
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .title(view.x.name())
                .bounds(x_bounds)
                .labels(x_labels),
        )
        .y_axis(
            Axis::default()
                .title(format!("{}{unit}", view.metric.name()))
                .bounds(y_bounds)
                .labels(y_ticks.iter().map(|(_, l)| Span::raw(l.clone()))),
        )
        .legend_position(None);
    if xs.is_empty() {
        frame.render_widget(
            Paragraph::new("Nothing to compare yet: no run in the table has a finished epoch.")
                .alignment(Alignment::Center)
                .block(Block::default().borders(Borders::ALL).title(" Compare ")),
            chart_area,
        );
    } else {
        frame.render_widget(chart, chart_area);
        let graph = graph_columns(inner, y_label_width, first_x_width);
        draw_x_ticks(frame.buffer_mut(), inner, graph, x_bounds, &x_ticks);
    }
    let mut legend: Vec<Line> = curves
        .iter()
        .take(MAX_LEGEND_ROWS)
        .enumerate()
        .map(|(i, curve)| {
            let color = RUN_COLORS[i % RUN_COLORS.len()];
            let more = curves.len() - MAX_LEGEND_ROWS.min(curves.len());
            let text = match (i + 1 == MAX_LEGEND_ROWS, more) {
                (true, m) if m > 0 => format!("{} (+{m} more curves)", curve.label),
                _ => curve.label.clone(),
            };
            Line::from(vec![
                Span::styled(" ── ", Style::default().fg(color)),
                Span::raw(fit(&text, area.width.saturating_sub(5) as usize)),
            ])
        })
        .collect();
    if let Some(test) = test {
        legend.push(Line::from(format!(" {test}")));
    }
    frame.render_widget(
        Paragraph::new(legend).wrap(Wrap { trim: false }),
        legend_area,
    );
    let label = |actions: &[keys::Action], joiner| app.keys.hint_label(actions, joiner);
    let keys: [(String, String); 6] = [
        (
            label(&[keys::Action::ChartX], ""),
            format!("axis: {}", view.x.name()),
        ),
        (
            label(&[keys::Action::ChartMetric], ""),
            view.metric.name().to_string(),
        ),
        (
            label(&[keys::Action::Rougher, keys::Action::Smoother], " "),
            "smoothing".into(),
        ),
        (label(&[keys::Action::Group], ""), "seed groups".into()),
        (label(&[keys::Action::ExportCsv], ""), "export CSV".into()),
        ("Esc".into(), "back".into()),
    ];
    // A message (the export's file name) takes the hint line whole until the next key.
    let line = match &app.message {
        Some(message) => Line::styled(format!(" {message}"), Style::default().fg(Color::Yellow)),
        None => {
            let mut spans = Vec::new();
            for (key, what) in keys {
                spans.push(Span::styled(
                    format!(" {key}"),
                    Style::default().fg(Color::Yellow),
                ));
                spans.push(Span::raw(format!(" {what}")));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), hints);
}

/// Shades from small to large gradients (with colours from blue to red).
const FLOW_SHADES: [(&str, Color); 5] = [
    ("░", Color::Blue),
    ("▒", Color::Cyan),
    ("▓", Color::Green),
    ("█", Color::Yellow),
    ("█", Color::Red),
];

/// A gradient norm in three significant digits: `3.21e-5`.
fn sci(v: f64) -> String {
    // An update f32 rounded away entirely is exactly 0: say so plainly.
    if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.2e}")
    }
}

/// The selected run's gradient flow: one row per layer (first at the top), one column per
/// time slice, each cell the layer's gradient norm on a log scale over the whole run; the
/// latest norm and update ratio at the right. A vanishing gradient is a dark (blue) top.
fn draw_flow(frame: &mut Frame, area: Rect, app: &mut App) {
    let [body, hints] = Layout::vertical([Constraint::Min(5), Constraint::Length(1)]).areas(area);
    let Some(run) = app.selected_run() else {
        frame.render_widget(
            Paragraph::new("No run selected (J/K select one; t trains one).").block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" Gradient flow "),
            ),
            body,
        );
        return;
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            " ↑↓".fg(Color::Yellow),
            " scroll".into(),
            " J/K".fg(Color::Yellow),
            " run".into(),
            " Esc".fg(Color::Yellow),
            " back".into(),
        ])),
        hints,
    );
    // The verdict and the shade scale take two lines where one is too narrow for them.
    let footer_rows: u16 = if area.width >= 100 { 1 } else { 2 };
    let inner = Block::default().borders(Borders::ALL).inner(body);
    let rows = inner.height.saturating_sub(1 + footer_rows).max(1) as usize;
    let n = run.flows.last().map_or(0, |p| p.layers.len());
    // Consecutive layers from the scroll position, every one of them reachable.
    let first = app.flow_scroll.min(n.saturating_sub(rows));
    app.flow_scroll = first;
    let Some(run) = app.selected_run() else {
        return;
    };
    let window = match n > rows {
        true => format!(" · layers {}-{} of {n}", first + 1, first + rows),
        false => String::new(),
    };
    let title = format!(
        " Gradient flow: {} · {}{window} · gradient norm per layer, log scale ",
        run.name,
        run.topology.summary()
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(fit(&title, area.width as usize - 2));
    frame.render_widget(block, body);
    let Some(last) = run.flows.last() else {
        frame.render_widget(
            Paragraph::new(
                "No gradient flow yet: it is measured with the step points (about 20 an epoch).",
            )
            .style(Style::default().fg(Color::DarkGray)),
            inner,
        );
        return;
    };
    let layers: Vec<&str> = last.layers.iter().map(|l| l.layer.as_str()).collect();
    let shown: Vec<usize> = (first..(first + rows).min(n)).collect();
    let label_width = 7usize;
    let values_width = 22usize;
    let columns = (inner.width as usize)
        .saturating_sub(label_width + values_width + 2)
        .max(1);
    // Columns: the run's points in time slices, each the mean of its log norms.
    let log = |v: f64| v.max(1e-30).log10();
    let all: Vec<f64> = run
        .flows
        .iter()
        .flat_map(|p| p.layers.iter().map(|l| log(l.grad_norm)))
        .collect();
    let (lo, hi) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let slices = run.flows.len().min(columns);
    let slice = |k: usize| {
        let n = run.flows.len();
        &run.flows[k * n / slices..((k + 1) * n / slices).max(k * n / slices + 1)]
    };
    let header = format!(
        "{:<label_width$} {:<columns$}  {:>10} {:>10}",
        "layer",
        format!("steps {}..{}", run.flows[0].step, last.step),
        "|grad|",
        "upd/w"
    );
    frame.render_widget(
        Paragraph::new(Line::from(header).bold()),
        Rect::new(inner.x, inner.y, inner.width, 1),
    );
    for (row, &li) in shown.iter().enumerate() {
        let y = inner.y + 1 + row as u16;
        if y >= inner.bottom().saturating_sub(footer_rows) {
            break;
        }
        let mut spans = vec![Span::raw(format!("{:<label_width$} ", layers[li]))];
        for k in 0..slices {
            let points = slice(k);
            let values: Vec<f64> = points
                .iter()
                .filter_map(|p| p.layers.get(li))
                .map(|l| log(l.grad_norm))
                .collect();
            let v = values.iter().sum::<f64>() / values.len().max(1) as f64;
            let level = (((v - lo) / (hi - lo).max(1e-9)) * (FLOW_SHADES.len() - 1) as f64)
                .round()
                .clamp(0.0, (FLOW_SHADES.len() - 1) as f64) as usize;
            let (shade, color) = FLOW_SHADES[level];
            spans.push(Span::styled(shade, Style::default().fg(color)));
        }
        spans.push(Span::raw(" ".repeat(columns - slices + 2)));
        let latest = &last.layers[li];
        spans.push(Span::raw(format!(
            "{:>10} {:>10}",
            sci(latest.grad_norm),
            sci(latest.update_ratio)
        )));
        frame.render_widget(
            Paragraph::new(Line::from(spans)),
            Rect::new(inner.x, y, inner.width, 1),
        );
    }
    // The verdict: how the first layer's gradient compares with the last's.
    let (first, end) = (&last.layers[0], &last.layers[last.layers.len() - 1]);
    let ratio = first.grad_norm / end.grad_norm.max(1e-30);
    let verdict = if ratio < 1e-3 {
        " (vanishing)"
    } else if ratio > 1e3 {
        " (exploding)"
    } else {
        ""
    };
    // The shade scale is logarithmic, from the run's smallest norm to its largest.
    let text = Style::default().fg(Color::Yellow);
    let (lightest, darkest) = (FLOW_SHADES[0], FLOW_SHADES[FLOW_SHADES.len() - 1]);
    let verdict = Span::styled(
        format!("first/last layer |grad|: {}{verdict}   ", sci(ratio)),
        text,
    );
    let scale = vec![
        Span::styled(lightest.0, Style::default().fg(lightest.1)),
        Span::styled(format!(" {} .. ", sci(10f64.powf(lo))), text),
        Span::styled(darkest.0, Style::default().fg(darkest.1)),
        Span::styled(format!(" {} (log scale)", sci(10f64.powf(hi))), text),
    ];
    let lines = match footer_rows {
        1 => vec![Line::from([vec![verdict], scale].concat())],
        _ => vec![Line::from(verdict), Line::from(scale)],
    };
    frame.render_widget(
        Paragraph::new(lines),
        Rect::new(
            inner.x,
            inner.bottom().saturating_sub(footer_rows),
            inner.width,
            footer_rows,
        ),
    );
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
                "░" => ".",
                "▒" => ":",
                "▓" => "%",
                "×" => "x",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::XAxis;

    #[test]
    fn x_axes_start_at_zero_or_above_and_ticks_sit_at_their_values() {
        // A run under a second: the seconds axis starts at 0, never below.
        assert_eq!(x_low(XAxis::Seconds, 0.3, 0.9), 0.0);
        assert_eq!(x_low(XAxis::Epoch, 1.0, 1.0), 0.0);
        assert_eq!(x_low(XAxis::Epoch, 1.0, 6.0), 1.0);
        let (bounds, _) = axis(0.0, 0.9, 5);
        assert!(bounds[0] >= 0.0, "{bounds:?}");
        // Ticks 0, 2, 4, 6 over a graph 61 columns wide: the middle ones at 20 and 40.
        let inner = Rect::new(0, 0, 64, 10);
        let graph = (3, 61);
        let mut buf = Buffer::empty(inner);
        let ticks: Vec<(f64, String)> = [0.0, 2.0, 4.0, 6.0].map(|t| (t, format!("{t}"))).to_vec();
        draw_x_ticks(&mut buf, inner, graph, [0.0, 6.0], &ticks);
        let row: String = (0..64).map(|x| buf[(x, 9)].symbol().to_string()).collect();
        assert_eq!(row.find('2'), Some(3 + 20), "{row:?}");
        assert_eq!(row.find('4'), Some(3 + 40), "{row:?}");
    }
}

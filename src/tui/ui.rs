//! Drawing the lab. Everything here reads [`App`]; the only thing it writes is the map of
//! clickable regions.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Clear, Dataset, GraphType, Paragraph, Sparkline, Wrap,
};
use ratatui::Frame;

use super::app::{App, HitMap, Mode, Run, RunState, Selection, FORM_FIELDS};
use super::diagram::{self, ArcStyle, BOX_ROWS};
use crate::topology::{grouped, Topology};

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
    } else {
        draw_lab(frame, area, app);
        match &app.mode {
            Mode::Help => draw_help(frame, area),
            Mode::Form(_) => draw_form(frame, area, app),
            Mode::ConfirmQuit => draw_confirm(frame, area, app),
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
            Mode::SavedRuns { items, selected } => {
                let lines = items
                    .iter()
                    .map(|item| {
                        let style = if item.run.is_ok() {
                            Style::default()
                        } else {
                            Style::default().fg(Color::Red)
                        };
                        (item.label.clone(), style)
                    })
                    .collect();
                draw_list(
                    frame,
                    area,
                    " Saved runs (saves/): Enter adds to the runs · Esc closes ",
                    "no saved runs in saves/",
                    lines,
                    *selected,
                );
            }
            Mode::SaveAs(name) => draw_save_as(frame, area, name),
            Mode::Normal | Mode::Compare => {}
        }
    }
    if app.ascii {
        asciify(frame.buffer_mut());
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
    let plan = diagram::plan(&app.topology, inner_width, max_lanes, selected_edge);
    let topology_height = plan.lanes + BOX_ROWS + 4;
    let [title, top, runs, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(topology_height),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(area);

    let header = Line::from(vec![
        " skiplab ".bold().reversed(),
        Span::raw(format!(" data: {} · {}  ", app.data_name, app.device)),
        Span::styled(
            app.message.clone().unwrap_or_default(),
            Style::default().fg(Color::Yellow),
        ),
    ]);
    frame.render_widget(Paragraph::new(header), title);

    // Topology panel.
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" Topology: {} ", app.topology.summary()));
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
    frame.render_widget(Paragraph::new(topology_info(app, plan.hidden)), info_area);

    draw_runs(frame, runs, app);
    frame.render_widget(
        Paragraph::new(hint_line(app)).style(Style::default().fg(Color::Gray)),
        hints,
    );
}

fn topology_info(app: &App, hidden: usize) -> Vec<Line<'static>> {
    let t = &app.topology;
    let stats = format!(
        "params {}  ·  MACs/sample {}  ·  {}/{} skips on",
        grouped(t.param_count()),
        grouped(t.macs_per_sample()),
        t.skips().len(),
        t.candidate_edges().len()
    );
    let selected = match app.selection {
        Selection::Edge(_) => match app.selected_edge() {
            Some(e) => {
                let on = t.skips().contains(&e);
                let mut s = format!("edge {e} is {}", if on { "ON" } else { "off" });
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
            format!("  (+{hidden} disabled edges not drawn; ←/→ still reach them)"),
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

/// Shared accuracy scale for all sparklines, so runs compare at a glance.
fn accuracy_range(runs: &[Run]) -> (f64, f64) {
    let all = runs.iter().flat_map(|r| {
        r.epochs
            .iter()
            .flat_map(|m| [m.train_accuracy, m.val_accuracy])
    });
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        (0.0, 1.0)
    } else {
        ((lo - 0.02).max(0.0), (hi + 0.005).min(1.0))
    }
}

fn spark_data(values: impl Iterator<Item = f64>, range: (f64, f64)) -> Vec<u64> {
    let (lo, hi) = range;
    values
        .map(|v| (1.0 + 99.0 * ((v - lo) / (hi - lo).max(1e-9)).clamp(0.0, 1.0)) as u64)
        .collect()
}

/// Room for a saved run's id, `20261202-121924-mlp3-skipstar-s10`.
const SAVED_ID_WIDTH: usize = 34;

fn draw_runs(frame: &mut Frame, area: Rect, app: &mut App) {
    let mut header = format!(
        "  {:<7} {:<22} {:<10} {:>6} {:>9} {:>8} {:>7}",
        "run", "topology", "status", "epoch", "best val", "params", "s/epoch"
    );
    // Where runs are saved (the ids `runs`, `compare` and `export` take): a column of its
    // own when it fits, else the selected run's in the title.
    let id_column =
        area.width.saturating_sub(2) as usize >= header.chars().count() + 2 + SAVED_ID_WIDTH;
    let title = match app.selected_run() {
        Some(run) if !id_column && run.saved_id.as_ref().is_some_and(|id| *id != run.name) => {
            let id = run.saved_id.as_deref().unwrap_or_default();
            format!(" Runs · {} is saves/{id} ", run.name)
        }
        _ => " Runs ".to_string(),
    };
    let block = Block::default().borders(Borders::ALL).title(title);
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
    if id_column {
        header.push_str("  saved as");
    }
    frame.render_widget(
        Paragraph::new(Line::from(header).add_modifier(Modifier::BOLD)),
        Rect::new(inner.x, inner.y, inner.width, 1),
    );
    let range = accuracy_range(&app.runs);
    let rows_fit = (inner.height.saturating_sub(1) / 2) as usize;
    let selected = app.selected_run.unwrap_or(0);
    // Keep the selected run visible.
    let first = selected.saturating_sub(rows_fit.saturating_sub(1));
    for (slot, (i, run)) in app
        .runs
        .iter()
        .enumerate()
        .skip(first)
        .take(rows_fit)
        .enumerate()
    {
        let y = inner.y + 1 + slot as u16 * 2;
        let is_selected = app.selected_run == Some(i);
        let marker = if is_selected { "▸ " } else { "  " };
        let epoch = match run.progress {
            Some((e, step, steps)) => format!("{e}:{}%", step * 100 / steps.max(1)),
            None => format!("{}/{}", run.epochs.len(), run.config.epochs),
        };
        let summary: String = run.topology.summary().chars().take(22).collect();
        let line = format!(
            "{marker}{:<7} {:<22} {:<10} {:>6} {:>9} {:>8} {:>7}",
            run.name,
            summary,
            run.state.label(),
            epoch,
            run.best_val().map_or("-".into(), pct),
            grouped(run.topology.param_count()),
            run.mean_epoch_seconds()
                .map_or("-".into(), |s| format!("{s:.2}")),
        );
        let line = match (&run.saved_id, id_column) {
            (Some(id), true) => format!("{line}  {id}"),
            _ => line,
        };
        let style = match (&run.state, is_selected) {
            (_, true) => Style::default().add_modifier(Modifier::BOLD),
            (
                RunState::Ended(
                    crate::train::RunStatus::Diverged { .. } | crate::train::RunStatus::Failed(_),
                ),
                _,
            ) => Style::default().fg(Color::Red),
            _ => Style::default(),
        };
        let row_area = Rect::new(inner.x, y, inner.width, 1);
        frame.render_widget(Paragraph::new(Line::from(line)).style(style), row_area);
        app.hits
            .runs
            .push((Rect::new(inner.x, y, inner.width, 2), i));
        draw_sparklines(
            frame,
            Rect::new(inner.x + 4, y + 1, inner.width.saturating_sub(4), 1),
            run,
            range,
        );
    }
}

/// Train and validation sparklines of one run, side by side, with their latest values.
fn draw_sparklines(frame: &mut Frame, area: Rect, run: &Run, range: (f64, f64)) {
    let half = area.width / 2;
    let parts = [
        (
            "train",
            run.epochs
                .iter()
                .map(|m| m.train_accuracy)
                .collect::<Vec<_>>(),
            Color::Green,
        ),
        (
            "val",
            run.epochs
                .iter()
                .map(|m| m.val_accuracy)
                .collect::<Vec<_>>(),
            Color::Cyan,
        ),
    ];
    for (k, (label, values, color)) in parts.into_iter().enumerate() {
        let x = area.x + k as u16 * half;
        let latest = values
            .last()
            .map_or("  -   ".to_string(), |v| format!("{:>6}", pct(*v)));
        let label_text = format!("{label:<5} ");
        let spark_width = half.saturating_sub(label_text.len() as u16 + latest.len() as u16 + 2);
        frame.render_widget(
            Paragraph::new(Span::styled(
                label_text.clone(),
                Style::default().fg(Color::Gray),
            )),
            Rect::new(x, area.y, label_text.len() as u16, 1),
        );
        let data = spark_data(values.iter().copied(), range);
        let shown: Vec<u64> = data
            .iter()
            .rev()
            .take(spark_width as usize)
            .rev()
            .copied()
            .collect();
        let spark_x = x + label_text.len() as u16;
        frame.render_widget(
            Sparkline::default()
                .data(&shown)
                .max(100)
                .style(Style::default().fg(color)),
            Rect::new(spark_x, area.y, spark_width, 1),
        );
        frame.render_widget(
            Paragraph::new(Span::styled(
                latest.clone(),
                Style::default().fg(color).bold(),
            )),
            Rect::new(spark_x + spark_width + 1, area.y, latest.len() as u16, 1),
        );
    }
}

fn hint_line(app: &App) -> Line<'static> {
    let hints: &[(&str, &str)] = match app.mode {
        Mode::Form(_) => &[
            ("↑↓", "field"),
            ("←→", "change"),
            ("Enter", "start"),
            ("Esc", "cancel"),
        ],
        Mode::SaveAs(_) => &[("Enter", "save"), ("Esc", "cancel")],
        Mode::Presets { .. } | Mode::SavedRuns { .. } => {
            &[("↑↓", "select"), ("Enter", "load"), ("Esc", "close")]
        }
        // Most used first: a narrow terminal cuts the end of the line.
        _ => &[
            ("←→", "edge"),
            ("␣", "toggle"),
            ("t", "train"),
            ("c", "compare"),
            ("?", "help"),
            ("q", "quit"),
            ("a/n", "all/none"),
            ("↑↓", "layer"),
            ("+-", "width"),
            ("o/S", "preset"),
            ("L", "saved"),
            ("J/K", "run"),
            ("p", "pause"),
            ("x", "stop"),
        ],
    };
    let mut spans = Vec::new();
    for (key, what) in hints {
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

pub const HELP: [(&str, &str); 25] = [
    ("← → h l Tab", "select the previous / next skip edge"),
    ("Space", "toggle the selected edge"),
    ("a / n", "all edges on / off"),
    ("↑ ↓ j k", "select a layer"),
    ("+ / -", "widen / narrow the selected layer"),
    ("i", "insert a layer after the selected one"),
    ("r", "remove the selected layer"),
    ("m", "switch between MLP and CNN"),
    (
        "R",
        "reinforce: the vanilla network as wide (CNN) or as big (MLP) as this one",
    ),
    ("t / Enter", "train this topology (opens the run form)"),
    ("J K PgDn PgUp", "select a run"),
    ("p", "pause / resume the selected run"),
    ("x", "stop the selected run"),
    ("d", "delete the selected run"),
    ("c", "compare runs on one chart"),
    ("o", "open a preset (topology and run form)"),
    ("S", "save the topology and run form as a preset"),
    ("L", "load a saved run into the runs (and the chart)"),
    ("mouse click", "select an edge, a layer or a run"),
    ("?", "this help"),
    ("q Esc Ctrl-C", "quit (asks while runs are active)"),
    (
        "Diagram",
        "bright arcs are on, dim ones off, yellow is selected",
    ),
    ("", "MLP layers: 0 = input; CNN: convs and pools numbered"),
    ("", "from 1 as in the paper; boxes show widened channels"),
    ("Runs", "train | val sparklines share one accuracy scale"),
];

fn draw_help(frame: &mut Frame, area: Rect) {
    let popup = centered(area, 70, HELP.len() as u16 + 4);
    frame.render_widget(Clear, popup);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!(" {k:<15}"), Style::default().fg(Color::Yellow)),
                Span::raw(*v),
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
    let popup = centered(area, 46, FORM_FIELDS.len() as u16 + 6);
    frame.render_widget(Clear, popup);
    let mut lines = vec![
        Line::from(format!(" data: {}", app.data_name)),
        Line::from(""),
    ];
    for (i, name) in FORM_FIELDS.iter().enumerate() {
        let selected = i == form.field;
        let style = if selected {
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        let arrow = if selected { "▸" } else { " " };
        lines.push(Line::styled(
            format!(" {arrow} {name:<13} ‹ {} ›", form.value(i)),
            style,
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        " Enter starts · Esc cancels",
        Style::default().fg(Color::Gray),
    ));
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Train this topology "),
        ),
        popup,
    );
}

fn draw_confirm(frame: &mut Frame, area: Rect, app: &App) {
    let active = app.runs.iter().filter(|r| r.state.is_active()).count();
    let popup = centered(area, 44, 5);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(format!("{active} run(s) still active.")),
            Line::from("Quit and stop them?  y = quit, any key = stay"),
        ])
        .alignment(Alignment::Center)
        .block(Block::default().borders(Borders::ALL).title(" Quit? ")),
        popup,
    );
}

fn draw_compare(frame: &mut Frame, area: Rect, app: &App) {
    let [chart_area, hints] =
        Layout::vertical([Constraint::Min(5), Constraint::Length(1)]).areas(area);
    type Points = Vec<(f64, f64)>;
    let series: Vec<(String, Points, Points)> = app
        .runs
        .iter()
        .map(|r| {
            let val = r
                .epochs
                .iter()
                .map(|m| (m.epoch as f64, 100.0 * m.val_accuracy))
                .collect();
            let train = r
                .epochs
                .iter()
                .map(|m| (m.epoch as f64, 100.0 * m.train_accuracy))
                .collect();
            (r.name.clone(), val, train)
        })
        .collect();
    let max_epoch = app
        .runs
        .iter()
        .map(|r| r.epochs.len())
        .max()
        .unwrap_or(0)
        .max(2) as f64;
    let (lo, hi) = accuracy_range(&app.runs);
    let (lo, hi) = (
        (lo * 100.0).floor(),
        (hi * 100.0).ceil().max(lo * 100.0 + 1.0),
    );
    let mut datasets = Vec::new();
    for (i, (name, val, train)) in series.iter().enumerate() {
        let color = RUN_COLORS[i % RUN_COLORS.len()];
        datasets.push(
            Dataset::default()
                .name(format!("{name} val"))
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(color))
                .data(val),
        );
        datasets.push(
            Dataset::default()
                .name(format!("{name} train"))
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(Style::default().fg(color))
                .data(train),
        );
    }
    let chart = Chart::new(datasets)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Compare: accuracy per epoch (line = val, dots = train) "),
        )
        .x_axis(
            Axis::default()
                .title("epoch")
                .bounds([1.0, max_epoch])
                .labels(vec![
                    Span::raw("1"),
                    Span::raw(format!("{}", max_epoch as usize)),
                ]),
        )
        .y_axis(Axis::default().title("acc %").bounds([lo, hi]).labels(vec![
            Span::raw(format!("{lo:.0}")),
            Span::raw(format!("{hi:.0}")),
        ]))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)));
    if app.runs.iter().all(|r| r.epochs.is_empty()) {
        frame.render_widget(
            Paragraph::new("No finished epochs to compare yet.")
                .alignment(Alignment::Center)
                .block(Block::default().borders(Borders::ALL).title(" Compare ")),
            chart_area,
        );
    } else {
        frame.render_widget(chart, chart_area);
    }
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            " any key".fg(Color::Yellow),
            " back to the lab".into(),
        ])),
        hints,
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

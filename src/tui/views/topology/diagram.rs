//! The network diagram: layers as boxes left to right, every candidate skip edge as an arc
//! above them. Arcs are packed into lanes (an arc takes the lowest lane where it overlaps no
//! other), so the picture stays as flat as the topology allows.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use crate::topology::{CnnLayerKind, SkipEdge, Topology};

/// Rows a box takes: top border, name, width, bottom border.
pub const BOX_ROWS: u16 = 4;

#[derive(Clone, Debug, PartialEq)]
pub struct LayerBox {
    pub layer: usize,
    pub x: u16,
    pub width: u16,
    pub name: String,
    pub detail: String,
    /// Spatial size shown on the bottom border (CNN layers): `(height, width)`.
    pub size: Option<(usize, usize)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ArcPlan {
    /// Index into the topology's candidate edges.
    pub index: usize,
    pub edge: SkipEdge,
    pub from_x: u16,
    pub to_x: u16,
    /// 0 is the lane right above the boxes.
    pub lane: u16,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagram {
    pub boxes: Vec<LayerBox>,
    pub arcs: Vec<ArcPlan>,
    pub lanes: u16,
    /// Candidate edges left out for lack of room (disabled, unselected ones first).
    pub hidden: usize,
    /// Where a network with more layers than fit is shown: (first box, boxes shown, all
    /// boxes). Edges reaching outside the window are not drawn.
    pub window: Option<(usize, usize, usize)>,
}

/// The narrowest a box's slot gets (the paper's CNN fits 80 columns); deeper networks
/// scroll.
const MIN_SLOT: u16 = 6;

/// A box's contents: layer number, name, detail (width or channels), spatial size.
type Node = (usize, String, String, Option<(usize, usize)>);

/// The contents of every box, in order.
fn nodes(topology: &Topology) -> Vec<Node> {
    match topology {
        Topology::Mlp(m) => (0..m.num_layers())
            .map(|l| {
                let name = if l == 0 {
                    "in".to_string()
                } else if l == m.output_layer() {
                    "out".to_string()
                } else {
                    format!("fc{l}")
                };
                (l, name, m.width(l).to_string(), None)
            })
            .collect(),
        Topology::Cnn(c) => {
            let input = Some((c.input.height, c.input.width));
            let mut v = vec![(0, "in".to_string(), c.input.channels.to_string(), input)];
            for layer in c.layers() {
                let name = match layer.kind {
                    CnnLayerKind::Conv { .. } => format!("c{}", layer.number),
                    CnnLayerKind::Pool => format!("p{}", layer.number),
                };
                let size = Some((layer.height, layer.width));
                v.push((
                    layer.number,
                    name,
                    c.channels(layer.number).to_string(),
                    size,
                ));
            }
            v.push((
                c.last_layer() + 1,
                "out".to_string(),
                c.classes.to_string(),
                None,
            ));
            v
        }
    }
}

/// Lays out the diagram in `width` columns with at most `max_lanes` rows of arcs: every
/// candidate edge, or only the enabled ones (`enabled_only`, where the picture is about the
/// trained network). A network with more layers than fit shows a window of them around layer
/// `focus`.
pub fn plan(
    topology: &Topology,
    width: u16,
    max_lanes: u16,
    selected: Option<usize>,
    focus: usize,
    enabled_only: bool,
) -> Diagram {
    let mut nodes = nodes(topology);
    let fit = (width / MIN_SLOT).max(2) as usize;
    let total = nodes.len();
    let window = (total > fit).then(|| {
        let at = nodes.iter().position(|n| n.0 >= focus).unwrap_or(0);
        let first = at.saturating_sub(fit / 2).min(total - fit);
        nodes = nodes[first..first + fit].to_vec();
        (first, fit, total)
    });
    let n = nodes.len().max(1) as u16;
    let slot = (width / n).max(3);
    let gap = if slot >= 9 { 2 } else { 1 };
    let box_width = slot.saturating_sub(gap).max(3);
    let boxes: Vec<LayerBox> = nodes
        .into_iter()
        .enumerate()
        .map(|(i, (layer, name, detail, size))| LayerBox {
            layer,
            x: i as u16 * slot,
            width: box_width,
            name,
            detail,
            size,
        })
        .collect();
    let candidates = topology.candidate_edges();
    let enabled = topology.skips();
    let shown = |layer: usize| boxes.iter().any(|b| b.layer == layer);
    // What to draw, most important first when room runs out.
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&i| shown(candidates[i].from) && shown(candidates[i].to))
        .filter(|&i| !enabled_only || enabled.contains(&candidates[i]))
        .collect();
    let in_view: Vec<SkipEdge> = order.iter().map(|&i| candidates[i]).collect();
    let attach: std::collections::HashMap<usize, (u16, u16)> = order
        .iter()
        .copied()
        .zip(attach_points(&boxes, &in_view))
        .collect();
    // Lanes by a fixed order (short arcs low, so they nest under long ones) whenever every
    // arc fits: an arc then keeps its lane as edges are toggled and selected. When room runs
    // out the order follows importance: the selected edge, then those that are on; a network
    // too deep to fit (it scrolls) draws only those (it has hundreds of candidates, and a
    // thicket of them would hide the few that are on).
    let span = |i: &usize| attach[i].1 - attach[i].0;
    let mut stable = order.clone();
    stable.sort_by_key(|i| (span(i), *i));
    let mut packed = pack(&stable, &attach, &candidates, max_lanes);
    if packed.2 > 0 {
        let in_view = order.len();
        let rank = |i: usize| match (Some(i) == selected, enabled.contains(&candidates[i])) {
            (true, _) => 0,
            (false, true) => 1,
            (false, false) => 2,
        };
        if window.is_some() {
            order.retain(|&i| rank(i) < 2);
        }
        order.sort_by_key(|&i| (rank(i), i));
        packed = pack(&order, &attach, &candidates, max_lanes);
        packed.2 = in_view - packed.1.len();
    }
    let (lanes, mut arcs, hidden) = packed;
    arcs.sort_by_key(|a| a.index);
    Diagram {
        boxes,
        arcs,
        lanes,
        hidden,
        window,
    }
}

/// Packs arcs into lanes in `order`: each takes the lowest lane where it overlaps no other
/// arc, a new lane while there are fewer than `max_lanes`, or is hidden. Returns the lanes
/// used, the arcs and how many are hidden.
fn pack(
    order: &[usize],
    attach: &std::collections::HashMap<usize, (u16, u16)>,
    candidates: &[SkipEdge],
    max_lanes: u16,
) -> (u16, Vec<ArcPlan>, usize) {
    let mut lanes: Vec<Vec<(u16, u16)>> = Vec::new();
    let mut arcs = Vec::new();
    let mut hidden = 0;
    for &i in order {
        let (from_x, to_x) = attach[&i];
        let free = lanes
            .iter()
            .position(|taken| taken.iter().all(|&(a, b)| to_x + 1 < a || from_x > b + 1));
        let lane = match free {
            Some(l) => l,
            None if (lanes.len() as u16) < max_lanes => {
                lanes.push(Vec::new());
                lanes.len() - 1
            }
            None => {
                hidden += 1;
                continue;
            }
        };
        lanes[lane].push((from_x, to_x));
        arcs.push(ArcPlan {
            index: i,
            edge: candidates[i],
            from_x,
            to_x,
            lane: lane as u16,
        });
    }
    (lanes.len() as u16, arcs, hidden)
}

/// Columns where each candidate edge leaves its source box and enters its target box; arcs
/// sharing a box get distinct columns, ordered so that fewer cross.
fn attach_points(boxes: &[LayerBox], edges: &[SkipEdge]) -> Vec<(u16, u16)> {
    let position = |layer: usize| boxes.iter().position(|b| b.layer == layer).unwrap_or(0);
    let mut points = vec![(0u16, 0u16); edges.len()];
    for (bi, b) in boxes.iter().enumerate() {
        // (other box, is source, edge index); sorted so that arcs to far boxes sit outside.
        let mut ends: Vec<(isize, bool, usize)> = Vec::new();
        for (i, e) in edges.iter().enumerate() {
            if position(e.from) == bi {
                ends.push((position(e.to) as isize, true, i));
            }
            if position(e.to) == bi {
                ends.push((position(e.from) as isize, false, i));
            }
        }
        // Left-going ends first (far ones leftmost), then right-going (near ones first).
        ends.sort_by_key(|&(other, _, _)| {
            if other < bi as isize {
                (0, other)
            } else {
                (1, -other)
            }
        });
        let inner = b.width.saturating_sub(2).max(1);
        let count = ends.len() as u16;
        for (k, &(_, is_source, i)) in ends.iter().enumerate() {
            let offset = if count <= 1 {
                inner / 2
            } else {
                (k as u16 * (inner - 1)) / (count - 1).max(1)
            };
            let x = b.x + 1 + offset.min(inner - 1);
            if is_source {
                points[i].0 = x;
            } else {
                points[i].1 = x;
            }
        }
    }
    points
}

/// How an arc looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArcStyle {
    pub on: Style,
    /// An enabled residual edge (labelled `r0-2`).
    pub residual: Style,
    pub off: Style,
    pub selected: Style,
}

impl Default for ArcStyle {
    fn default() -> Self {
        Self {
            on: Style::default().fg(Color::Cyan),
            residual: Style::default().fg(Color::Magenta),
            off: Style::default().fg(Color::DarkGray),
            selected: Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        }
    }
}

/// What the renderer records for mouse hits: (area, edge index) and (area, layer).
pub type Hits = (Vec<(Rect, usize)>, Vec<(Rect, usize)>);

/// Draws `diagram` with its top-left corner at `area`'s, each edge in `labels` labelled with
/// its text after its name where the arc has room; returns the clickable regions.
#[allow(clippy::too_many_arguments)]
pub fn render(
    diagram: &Diagram,
    topology: &Topology,
    area: Rect,
    buf: &mut Buffer,
    selected_edge: Option<usize>,
    selected_layer: Option<usize>,
    labels: &[(SkipEdge, String)],
    style: ArcStyle,
) -> Hits {
    let enabled = topology.skips();
    let top = area.y;
    let box_top = top + diagram.lanes;
    let mut edge_hits = Vec::new();
    let mut layer_hits = Vec::new();
    let put = |buf: &mut Buffer, x: u16, y: u16, s: &str, st: Style| {
        if x < area.right() && y < area.bottom() {
            buf[(x, y)].set_symbol(s).set_style(st);
        }
    };
    let residual = |e: SkipEdge| topology.edge_kind(e) == Some(crate::topology::EdgeKind::Residual);
    let arc_style = |a: &ArcPlan| {
        if Some(a.index) == selected_edge {
            style.selected
        } else if residual(a.edge) {
            style.residual
        } else if enabled.contains(&a.edge) {
            style.on
        } else {
            style.off
        }
    };
    // Verticals first, so horizontals crossing them become junctions.
    for a in &diagram.arcs {
        let row = box_top - 1 - a.lane;
        let st = arc_style(a);
        for y in row + 1..box_top {
            put(buf, area.x + a.from_x, y, "│", st);
            put(buf, area.x + a.to_x, y, "│", st);
        }
    }
    // Unselected first, so the selected arc is drawn on top.
    let mut order: Vec<&ArcPlan> = diagram.arcs.iter().collect();
    order.sort_by_key(|a| Some(a.index) == selected_edge);
    for a in order {
        let row = box_top - 1 - a.lane;
        let st = arc_style(a);
        for x in a.from_x + 1..a.to_x {
            let cell = area.x + x;
            let crossing =
                cell < area.right() && row < area.bottom() && buf[(cell, row)].symbol() == "│";
            put(buf, cell, row, if crossing { "┼" } else { "─" }, st);
        }
        put(buf, area.x + a.from_x, row, "╭", st);
        put(buf, area.x + a.to_x, row, "╮", st);
        // Redraw this arc's legs over earlier horizontals, as crossings.
        for y in row + 1..box_top {
            for x in [area.x + a.from_x, area.x + a.to_x] {
                if x < area.right() && y < area.bottom() {
                    // Another arc's corner on a shared column stays a corner, as a junction.
                    let symbol = match buf[(x, y)].symbol() {
                        "─" | "┼" => "┼",
                        "╭" | "├" => "├",
                        "╮" | "┤" => "┤",
                        _ => "│",
                    };
                    put(buf, x, y, symbol, st);
                }
            }
        }
        let extra = labels.iter().find(|(e, _)| *e == a.edge).map(|(_, l)| l);
        let name = match residual(a.edge) {
            true => format!("r{}", a.edge),
            false => a.edge.to_string(),
        };
        let label = match extra {
            Some(extra) => format!("{name} {extra}"),
            None => name.clone(),
        };
        let span = a.to_x.saturating_sub(a.from_x + 1);
        let label = if label.len() as u16 + 2 <= span {
            label
        } else {
            name
        };
        // Centre the label on a stretch of plain line, never over a crossing.
        let len = label.chars().count() as u16;
        if len + 2 <= span && row < area.bottom() {
            let plain = |x: u16| {
                let cell = area.x + x;
                cell < area.right() && buf[(cell, row)].symbol() == "─"
            };
            let centre = a.from_x + 1 + (span - len) / 2;
            let lo = a.from_x + 1;
            let hi = a.to_x.saturating_sub(len);
            let start = (0..span)
                .flat_map(|d| [centre.saturating_sub(d), centre + d])
                .filter(|&s| s >= lo && s <= hi)
                .find(|&s| (s..s + len).all(plain));
            if let Some(start) = start {
                for (k, ch) in label.chars().enumerate() {
                    put(buf, area.x + start + k as u16, row, &ch.to_string(), st);
                }
            }
        }
        let left = area.x + a.from_x;
        let width = (a.to_x - a.from_x + 1).min(area.right().saturating_sub(left));
        edge_hits.push((Rect::new(left, row, width, 1), a.index));
    }
    // Boxes.
    for b in &diagram.boxes {
        let selected = selected_layer == Some(b.layer);
        let st = if selected {
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        let (x0, x1) = (area.x + b.x, area.x + b.x + b.width - 1);
        for x in x0..=x1 {
            let horizontal = if x == x0 || x == x1 { "" } else { "─" };
            if !horizontal.is_empty() {
                let joint = diagram
                    .arcs
                    .iter()
                    .find(|a| area.x + a.from_x == x || area.x + a.to_x == x);
                match joint {
                    Some(a) => put(buf, x, box_top, "┴", arc_style(a)),
                    None => put(buf, x, box_top, "─", st),
                }
                put(buf, x, box_top + 3, "─", st);
            }
        }
        put(buf, x0, box_top, "┌", st);
        put(buf, x1, box_top, "┐", st);
        put(buf, x0, box_top + 3, "└", st);
        put(buf, x1, box_top + 3, "┘", st);
        for y in [box_top + 1, box_top + 2] {
            put(buf, x0, y, "│", st);
            put(buf, x1, y, "│", st);
        }
        let inner = b.width.saturating_sub(2) as usize;
        // A narrow box shows an MLP layer by its number alone (`30` for `fc30`).
        let name = match b.name.strip_prefix("fc") {
            Some(number) if b.name.len() > inner => number.to_string(),
            _ => b.name.clone(),
        };
        for (row, text) in [(box_top + 1, &name), (box_top + 2, &b.detail)] {
            let text: String = text.chars().take(inner).collect();
            let start = x0 + 1 + ((inner - text.len()) / 2) as u16;
            for (k, ch) in text.chars().enumerate() {
                put(buf, start + k as u16, row, &ch.to_string(), st);
            }
        }
        if let Some((h, w)) = b.size {
            // `16x16` where it fits, else just the height (`16`), on the bottom border.
            let full = format!("{h}x{w}");
            let text = if full.len() <= inner {
                full
            } else {
                h.to_string()
            };
            if text.len() <= inner {
                let start = x0 + 1 + ((inner - text.len()) / 2) as u16;
                for (k, ch) in text.chars().enumerate() {
                    put(buf, start + k as u16, box_top + 3, &ch.to_string(), st);
                }
            }
        }
        let width = b.width.min(area.right().saturating_sub(x0));
        layer_hits.push((Rect::new(x0, box_top, width, BOX_ROWS), b.layer));
    }
    (edge_hits, layer_hits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{CnnSpec, ImageShape, MlpSpec, SkipSelection};

    #[test]
    fn lanes_pack_without_overlap_and_hide_only_when_out_of_room() {
        let mut t = Topology::Mlp(MlpSpec::new(784, vec![128, 256, 256], 26));
        t.apply_skips(&SkipSelection::All).unwrap();
        let d = plan(&t, 76, 10, Some(0), 0, false);
        assert_eq!(d.arcs.len(), 6);
        assert_eq!(d.hidden, 0);
        for a in &d.arcs {
            for b in &d.arcs {
                if a.index != b.index && a.lane == b.lane {
                    assert!(
                        a.to_x < b.from_x || b.to_x < a.from_x,
                        "{a:?} overlaps {b:?}"
                    );
                }
            }
        }
        // Toggling or selecting an edge moves no arc to another lane while all fit.
        let lanes = |d: &Diagram| d.arcs.iter().map(|a| (a.index, a.lane)).collect::<Vec<_>>();
        let mut toggled = t.clone();
        toggled
            .set_skip(toggled.candidate_edges()[2], false)
            .unwrap();
        assert_eq!(lanes(&plan(&toggled, 76, 10, Some(4), 0, false)), lanes(&d));
        let tight = plan(&t, 76, 2, Some(5), 0, false);
        assert!(tight.hidden > 0);
        assert!(
            tight.arcs.iter().any(|a| a.index == 5),
            "the selected edge is always drawn"
        );
    }

    #[test]
    fn cnn_boxes_show_widened_channels() {
        let mut t = Topology::Cnn(CnnSpec::paper(ImageShape::new(3, 32, 32), 10));
        t.apply_skips(&SkipSelection::Paper).unwrap();
        let d = plan(&t, 78, 12, None, 0, false);
        let c8 = d.boxes.iter().find(|b| b.name == "c8").unwrap();
        assert_eq!(c8.detail, "224");
        assert_eq!(d.boxes.len(), 11);
    }
}

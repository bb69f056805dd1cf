//! The topology editor: the network as a diagram of layer boxes and skip arcs, the selected
//! edge or layer described below it. Its keys switch edges, change their kind, resize,
//! insert and remove layers, and swap MLP and CNN (see [`edit`]).

pub mod diagram;
mod edit;

use crossterm::event::KeyEvent;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::{Reply, View};
use crate::experiment::Experiment;
use crate::topology::{grouped, ImageShape, SkipEdge, SkipSelection, Topology};
use crate::tui::context::{Context, Focus};
use crate::tui::keys::{Action, Hint};
use crate::tui::widgets::key_hints;
use diagram::{ArcStyle, BOX_ROWS};

/// The panel's hint bar: most used first (a narrow terminal cuts the end).
const HINTS: &[Hint] = &[
    (&[Action::PrevEdge, Action::NextEdge], "", "edge"),
    (&[Action::Toggle], "", "toggle"),
    (&[Action::Train], "", "train"),
    (&[Action::Compare], "", "compare"),
    (&[Action::SwitchPanel], "", "runs"),
    (&[Action::Help], "", "help"),
    (&[Action::Quit], "", "quit"),
    (&[Action::AllOn, Action::AllOff], "/", "all/none"),
    (&[Action::Up, Action::Down], "", "layer"),
    (&[Action::Widen, Action::Narrow], "", "width"),
    (&[Action::OpenPreset, Action::SavePreset], "/", "preset"),
    (&[Action::LoadSaved], "", "saved"),
    (&[Action::Pause], "", "pause"),
    (&[Action::Stop], "", "stop"),
];

/// Which part of the topology the cursor is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Index into `topology.candidate_edges()`.
    Edge(usize),
    /// A layer (MLP: 0..layers; CNN: paper numbering, 0 = input).
    Layer(usize),
}

/// The editor's state.
#[derive(Clone, Debug)]
pub struct TopologyView {
    pub topology: Topology,
    /// The other family's topology, as `m` left it (MLP → CNN → MLP returns the MLP).
    pub other_family: Option<Topology>,
    pub selection: Selection,
    /// The last skip pattern `P` applied.
    pub pattern: usize,
    /// The diagram as last laid out (by [`TopologyView::layout`]).
    plan: Option<diagram::Diagram>,
    /// Where edges and layers were drawn, for clicks.
    edge_hits: Vec<(Rect, usize)>,
    layer_hits: Vec<(Rect, usize)>,
}

impl TopologyView {
    /// The default MLP for data of this shape.
    pub fn new(input: ImageShape, classes: usize) -> Self {
        Self {
            topology: Topology::default_mlp(input, classes),
            other_family: None,
            selection: Selection::Edge(0),
            pattern: 0,
            plan: None,
            edge_hits: Vec::new(),
            layer_hits: Vec::new(),
        }
    }

    pub fn selected_edge(&self) -> Option<SkipEdge> {
        match self.selection {
            Selection::Edge(i) => self.topology.candidate_edges().get(i).copied(),
            Selection::Layer(_) => None,
        }
    }

    fn layer_count(&self) -> usize {
        match &self.topology {
            Topology::Mlp(m) => m.num_layers(),
            Topology::Cnn(c) => c.last_layer() + 1,
        }
    }

    /// Puts a preset's topology in the editor; `Err` says why it cannot be.
    pub fn load(&mut self, e: &Experiment) -> Result<(), String> {
        self.topology = e.topology().map_err(|err| err.to_string())?;
        self.selection = Selection::Edge(0);
        Ok(())
    }

    /// Lays the diagram out for a panel `width` wide with at most `max_lanes` rows of arcs;
    /// the panel's height comes back.
    pub fn layout(&mut self, width: u16, max_lanes: u16) -> u16 {
        let selected_edge = match self.selection {
            Selection::Edge(i) => Some(i),
            Selection::Layer(_) => None,
        };
        // A network too deep to fit scrolls with the selection.
        let focus = match self.selection {
            Selection::Layer(l) => l,
            Selection::Edge(_) => self.selected_edge().map_or(0, |e| (e.from + e.to) / 2),
        };
        let plan = diagram::plan(
            &self.topology,
            width.saturating_sub(4),
            max_lanes,
            selected_edge,
            focus,
            false,
        );
        let height = plan.lanes + BOX_ROWS + 4;
        self.plan = Some(plan);
        height
    }
}

impl View for TopologyView {
    /// The editing keys; Up, Down and Space only while the panel has the focus (the router
    /// asks the focused panel first).
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply {
        let Some(action) = cx.keys.action(key.code) else {
            return Reply::Ignored;
        };
        let edges = self.topology.candidate_edges().len();
        match action {
            Action::NextEdge => self.step_edge(cx, 1, edges),
            Action::PrevEdge => self.step_edge(cx, -1, edges),
            Action::Down => self.step_layer(1),
            Action::Up => self.step_layer(-1),
            Action::Toggle => self.toggle_selected(cx),
            Action::EdgeKind => self.cycle_edge_kind(cx),
            Action::Patterns => self.next_pattern(cx),
            Action::Activation => self.next_activation(cx),
            Action::Init => self.next_init(cx),
            Action::Norm => self.next_norm(cx),
            Action::Shortcut => self.next_shortcut(cx),
            Action::AllOn => self.select_all(cx, SkipSelection::All),
            Action::AllOff => self.select_all(cx, SkipSelection::None),
            Action::Widen => self.resize_layer(cx, true),
            Action::Narrow => self.resize_layer(cx, false),
            Action::InsertLayer => self.insert_layer(cx),
            Action::RemoveLayer => self.remove_layer(cx),
            Action::SwitchModel => self.switch_model(cx),
            Action::Reinforce => self.reinforce(cx),
            _ => return Reply::Ignored,
        }
        Reply::Stay
    }

    fn draw(&mut self, frame: &mut Frame, top: Rect, cx: &Context) {
        if self.plan.is_none() {
            self.layout(top.width, top.height.saturating_sub(BOX_ROWS + 4).max(1));
        }
        let Some(plan) = self.plan.take() else { return };
        // Topology panel.
        let mut block = Block::default()
            .borders(Borders::ALL)
            .title(format!(" Topology: {} ", self.topology.summary()));
        if cx.focus == Focus::Topology && !cx.runs.all.is_empty() {
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
        let selected_edge = match self.selection {
            Selection::Edge(i) => Some(i),
            Selection::Layer(_) => None,
        };
        let selected_layer = match self.selection {
            Selection::Layer(l) => Some(l),
            Selection::Edge(_) => None,
        };
        let weights: Vec<(SkipEdge, String)> = cx
            .runs
            .selected()
            .map(|r| r.skip_weights().to_vec())
            .unwrap_or_default()
            .into_iter()
            .map(|(e, w)| (e, format!("|w|{w:.3}")))
            .collect();
        let (edge_hits, layer_hits) = diagram::render(
            &plan,
            &self.topology,
            diagram_area,
            frame.buffer_mut(),
            selected_edge,
            selected_layer,
            &weights,
            ArcStyle::default(),
        );
        self.edge_hits = edge_hits;
        self.layer_hits = layer_hits;
        let info_area = Rect::new(
            inner.x + 1,
            inner.y + plan.lanes + BOX_ROWS,
            inner.width.saturating_sub(1),
            2,
        );
        frame.render_widget(Paragraph::new(self.info(cx, &plan)), info_area);
    }

    fn hints(&self, cx: &Context) -> Option<Line<'static>> {
        Some(key_hints(&cx.keys, HINTS))
    }

    fn click(&mut self, at: Position, _cx: &mut Context) -> bool {
        if let Some(&(_, i)) = self.edge_hits.iter().find(|(r, _)| r.contains(at)) {
            self.selection = Selection::Edge(i);
        } else if let Some(&(_, l)) = self.layer_hits.iter().find(|(r, _)| r.contains(at)) {
            self.selection = Selection::Layer(l);
        } else {
            return false;
        }
        true
    }
}

impl TopologyView {
    /// The two lines under the diagram: the network's size, and the selected edge or layer.
    fn info(&self, cx: &Context, plan: &diagram::Diagram) -> Vec<Line<'static>> {
        let t = &self.topology;
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
        let selected = match self.selection {
            Selection::Edge(_) => match self.selected_edge() {
                Some(e) => {
                    let kind = match t.edge_kind(e) {
                        None => "off".to_string(),
                        Some(crate::topology::EdgeKind::Concat) => "ON".to_string(),
                        Some(crate::topology::EdgeKind::Residual) => format!(
                            "ON, residual ({})",
                            t.residual_join(e).unwrap_or("projection")
                        ),
                    };
                    let mut s = format!("edge {e} is {kind}");
                    if let Some((_, w)) = cx
                        .runs
                        .selected()
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
}

/// The selected layer: its output shape, fan-in, parameters and MACs.
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

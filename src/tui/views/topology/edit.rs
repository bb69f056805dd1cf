//! Editing the topology: edges on and off and their kind, skip patterns, the activation and
//! initialisation, layers widened, inserted and removed (edges kept where they still fit),
//! MLP and CNN swapped, and the paper's reinforced vanilla network.

use crate::topology::{
    Activation, CnnSpec, EdgeKind, InitScheme, Norm, Shortcut, SkipEdge, SkipSelection, Topology,
};
use crate::tui::context::{Context, Focus};

use super::{Selection, TopologyView};

/// The choice after `current` in `all`, round to the first.
fn next_of<T: Copy + PartialEq>(all: &[T], current: T) -> T {
    let at = all.iter().position(|&c| c == current).unwrap_or(0);
    all[(at + 1) % all.len()]
}

impl TopologyView {
    /// Replaces the topology with its "reinforced" vanilla network (the paper's fair
    /// comparison: the skip network's widths, or its parameter count, without skips).
    pub(super) fn reinforce(&mut self, cx: &mut Context) {
        if self.topology.skips().is_empty() {
            cx.say("no skips on: the network is already vanilla");
            return;
        }
        let before = self.topology.param_count();
        self.topology = self.topology.reinforced();
        self.selection = Selection::Edge(0);
        cx.say(format!(
            "reinforced vanilla: {} params (the skip network had {before})",
            self.topology.param_count()
        ));
    }

    pub(super) fn toggle_selected(&mut self, cx: &mut Context) {
        let Some(edge) = self.selected_edge() else {
            cx.say("select an edge first (left/right or Tab)");
            return;
        };
        let on = !self.topology.skips().contains(&edge);
        match self.topology.set_skip(edge, on) {
            Ok(()) => cx.say(format!("skip {edge} {}", if on { "on" } else { "off" })),
            Err(e) => cx.say(e.to_string()),
        }
    }

    /// `e`: the selected edge becomes residual, or concatenating again (an edge that was off
    /// is switched on as residual).
    pub(super) fn cycle_edge_kind(&mut self, cx: &mut Context) {
        let Some(edge) = self.selected_edge() else {
            cx.say("select an edge first (left/right)");
            return;
        };
        let kind = match self.topology.edge_kind(edge) {
            Some(EdgeKind::Residual) => EdgeKind::Concat,
            _ => EdgeKind::Residual,
        };
        if let Err(e) = self.topology.set_edge_kind(edge, kind) {
            cx.say(e.to_string());
            return;
        }
        cx.say(match (kind, self.topology.residual_join(edge), &self.topology) {
            (EdgeKind::Concat, ..) => {
                format!("skip {edge} concatenates (its block starts at zero)")
            }
            (_, Some("identity"), _) => {
                format!("skip {edge} is residual: identity (no weights; switching it on changes the function)")
            }
            (_, Some("pad"), _) => {
                format!("skip {edge} is residual: every other pixel, zero channels after (option A)")
            }
            (_, _, Topology::Cnn(_)) => {
                format!("skip {edge} is residual through a 1x1 projection")
            }
            (_, _, Topology::Mlp(_)) => {
                format!("skip {edge} is residual through a projection (starts at zero)")
            }
        });
    }

    /// `P`: the skips through a few patterns that stay readable at 50 layers (a CNN's:
    /// ResNet's blocks, the paper's edges).
    pub(super) fn next_pattern(&mut self, cx: &mut Context) {
        const MLP: [&str; 5] = ["none", "res:chain:2", "next:1", "every:2", "all"];
        const CNN: [&str; 4] = ["none", "res:blocks:2", "paper", "blocks:2"];
        let patterns: &[&str] = match self.topology {
            Topology::Mlp(_) => &MLP,
            Topology::Cnn(_) => &CNN,
        };
        self.pattern = (self.pattern + 1) % patterns.len();
        let pattern = patterns[self.pattern];
        match self
            .topology
            .apply_skips(&pattern.parse().expect("valid patterns"))
        {
            Ok(()) => cx.say(format!(
                "skips: {pattern} ({} edges)",
                self.topology.skips().len()
            )),
            Err(e) => cx.say(e.to_string()),
        }
    }

    pub(super) fn next_activation(&mut self, cx: &mut Context) {
        let Topology::Mlp(m) = &mut self.topology else {
            cx.say("a CNN's activation is ReLU");
            return;
        };
        m.activation = next_of(&Activation::ALL, m.activation);
        cx.say(format!("activation {}", m.activation.name()));
    }

    pub(super) fn next_init(&mut self, cx: &mut Context) {
        let Topology::Mlp(m) = &mut self.topology else {
            cx.say("a CNN starts He-uniform");
            return;
        };
        m.init = next_of(&InitScheme::ALL, m.init);
        cx.say(format!("initialisation {}", m.init.name()));
    }

    /// `N`: the normalisation, none → batch → layer for an MLP, none ↔ batch for a CNN.
    pub(super) fn next_norm(&mut self, cx: &mut Context) {
        let norm = match &mut self.topology {
            Topology::Mlp(m) => {
                m.norm = next_of(&Norm::ALL, m.norm);
                m.norm
            }
            Topology::Cnn(c) => {
                c.norm = next_of(&[Norm::None, Norm::Batch], c.norm);
                c.norm
            }
        };
        let layers = match self.topology {
            Topology::Mlp(_) => "hidden layer",
            Topology::Cnn(_) => "convolution",
        };
        cx.say(match norm {
            Norm::None => "no normalisation".to_string(),
            n => format!(
                "{} on every {layers} (a scale and shift in place of its bias)",
                n.label()
            ),
        });
    }

    /// `O`: how a CNN's residual edges reach a later stage, projection ↔ pad (option A).
    pub(super) fn next_shortcut(&mut self, cx: &mut Context) {
        let Topology::Cnn(c) = &self.topology else {
            cx.say("an MLP's residual edges project where widths differ");
            return;
        };
        let mut next = c.clone();
        next.shortcut = next_of(Shortcut::ALL, c.shortcut);
        match next.validate_edges() {
            Ok(()) => {
                cx.say(match next.shortcut {
                    Shortcut::Projection => "shortcuts across stages: 1x1 projection".to_string(),
                    Shortcut::Pad => {
                        "shortcuts across stages: every other pixel, zero channels after (option A)"
                            .to_string()
                    }
                });
                self.topology = Topology::Cnn(next);
            }
            Err(e) => cx.say(e.to_string()),
        }
    }

    pub(super) fn select_all(&mut self, cx: &mut Context, selection: SkipSelection) {
        if let Err(e) = self.topology.apply_skips(&selection) {
            cx.say(e.to_string());
        }
    }

    /// Applies an edited topology if it is valid, remapping the kept edges.
    /// Replaces the topology with `next`, its edges those of the current one renumbered by
    /// `remap` (kinds kept; edges that map to none, or no longer fit, dropped). `false`, with
    /// a message, when `next` is invalid.
    fn try_replace(
        &mut self,
        cx: &mut Context,
        mut next: Topology,
        remap: impl Fn(SkipEdge) -> Option<SkipEdge>,
    ) -> bool {
        let edges: Vec<(SkipEdge, bool)> = self
            .topology
            .skips()
            .iter()
            .filter_map(|&e| {
                let residual = self.topology.edge_kind(e) == Some(EdgeKind::Residual);
                remap(e).map(|to| (to, residual))
            })
            .collect();
        // Check the new structure on its own: the old numbering's edges may not fit it.
        next.apply_skips(&SkipSelection::None)
            .expect("an empty edge set always fits");
        let keep: Vec<crate::topology::SkipTerm> = edges
            .into_iter()
            .filter(|&(e, _)| next.check_edge(e).is_ok())
            .map(|(e, residual)| crate::topology::SkipTerm {
                residual,
                pattern: crate::topology::Pattern::Edge(e),
            })
            .collect();
        if let Err(e) = next.validate() {
            cx.say(e.to_string());
            return false;
        }
        next.apply_skips(&SkipSelection::Terms(keep))
            .expect("edges were checked");
        // The kept edges add parameters: the size limit applies to the whole network.
        if let Err(e) = next.validate() {
            cx.say(e.to_string());
            return false;
        }
        self.topology = next;
        let edges = self.topology.candidate_edges().len();
        if let Selection::Edge(i) = self.selection {
            self.selection = Selection::Edge(i.min(edges.saturating_sub(1)));
        }
        if let Selection::Layer(l) = self.selection {
            self.selection = Selection::Layer(l.min(self.layer_count() - 1));
        }
        true
    }

    pub(super) fn resize_layer(&mut self, cx: &mut Context, up: bool) {
        let Selection::Layer(layer) = self.selection else {
            cx.say("select a layer first (up/down)");
            return;
        };
        let resize = |w: usize, step: usize| {
            if up {
                w + step
            } else {
                w.saturating_sub(step).max(1)
            }
        };
        let mut next = self.topology.clone();
        match &mut next {
            Topology::Mlp(m) if (1..=m.hidden.len()).contains(&layer) => {
                m.hidden[layer - 1] = resize(m.hidden[layer - 1], 16);
            }
            Topology::Cnn(c) => {
                let Some((stage, index)) = cnn_position(c, layer) else {
                    cx.say("only hidden layers and convolutions have a width");
                    return;
                };
                c.stages[stage][index] = resize(c.stages[stage][index], 8);
            }
            _ => {
                cx.say("only hidden layers and convolutions have a width");
                return;
            }
        }
        self.try_replace(cx, next, Some);
    }

    pub(super) fn insert_layer(&mut self, cx: &mut Context) {
        let layer = match self.selection {
            Selection::Layer(l) => l,
            Selection::Edge(_) => 0,
        };
        let mut next = self.topology.clone();
        match &mut next {
            Topology::Mlp(m) => {
                // A new hidden layer after `layer` (or before the output).
                let at = layer.min(m.hidden.len());
                let width = m.hidden.get(at.saturating_sub(1)).copied().unwrap_or(128);
                m.hidden.insert(at, width);
                let inserted = self.try_replace(cx, next, |e| {
                    let shift = |n: usize| if n > at { n + 1 } else { n };
                    Some(SkipEdge::new(shift(e.from), shift(e.to)))
                });
                // The new layer is selected, so `r` takes it out again, edges and all.
                if inserted {
                    self.selection = Selection::Layer(at + 1);
                }
            }
            Topology::Cnn(c) => {
                let Some((stage, index)) = cnn_position(c, layer) else {
                    cx.say("select a convolution to insert after it");
                    return;
                };
                let width = c.stages[stage][index];
                c.stages[stage].insert(index + 1, width);
                let inserted = self.try_replace(cx, next, |e| {
                    let shift = |n: usize| if n > layer { n + 1 } else { n };
                    Some(SkipEdge::new(shift(e.from), shift(e.to)))
                });
                if inserted {
                    self.selection = Selection::Layer(layer + 1);
                }
            }
        }
    }

    pub(super) fn remove_layer(&mut self, cx: &mut Context) {
        let Selection::Layer(layer) = self.selection else {
            cx.say("select a layer first (up/down)");
            return;
        };
        let mut next = self.topology.clone();
        match &mut next {
            Topology::Mlp(m) if (1..=m.hidden.len()).contains(&layer) => {
                m.hidden.remove(layer - 1);
            }
            Topology::Cnn(c) => match cnn_position(c, layer) {
                Some((stage, index)) if c.stages[stage].len() > 1 => {
                    c.stages[stage].remove(index);
                }
                _ => {
                    cx.say("a stage keeps at least one convolution");
                    return;
                }
            },
            _ => {
                cx.say("only hidden layers can be removed");
                return;
            }
        }
        self.try_replace(cx, next, |e| {
            if e.from == layer || e.to == layer {
                return None;
            }
            let shift = |n: usize| if n > layer { n - 1 } else { n };
            Some(SkipEdge::new(shift(e.from), shift(e.to)))
        });
    }

    /// MLP ↔ CNN: the other family's topology as it was left (its default the first time).
    pub(super) fn switch_model(&mut self, cx: &mut Context) {
        let other = self
            .other_family
            .take()
            .unwrap_or_else(|| match self.topology {
                Topology::Mlp(_) => Topology::default_cnn(cx.input, cx.classes),
                Topology::Cnn(_) => Topology::default_mlp(cx.input, cx.classes),
            });
        self.other_family = Some(std::mem::replace(&mut self.topology, other));
        self.selection = Selection::Edge(0);
    }

    pub(super) fn step_edge(&mut self, cx: &mut Context, delta: isize, edges: usize) {
        cx.focus = Focus::Topology;
        if edges == 0 {
            cx.say("this topology has no candidate skip edges");
            return;
        }
        self.selection = Selection::Edge(match self.selection {
            Selection::Edge(i) => (i as isize + delta).rem_euclid(edges as isize) as usize,
            Selection::Layer(_) => 0,
        });
    }

    pub(super) fn step_layer(&mut self, delta: isize) {
        let n = self.layer_count() as isize;
        self.selection = Selection::Layer(match self.selection {
            Selection::Layer(l) => (l as isize + delta).rem_euclid(n) as usize,
            Selection::Edge(_) => {
                if delta > 0 {
                    0
                } else {
                    (n - 1) as usize
                }
            }
        });
    }
}

/// (stage, index in stage) of conv layer `number`.
fn cnn_position(cnn: &CnnSpec, number: usize) -> Option<(usize, usize)> {
    let mut n = 0;
    for (s, stage) in cnn.stages.iter().enumerate() {
        for i in 0..stage.len() {
            n += 1;
            if n == number {
                return Some((s, i));
            }
        }
        n += 1;
    }
    None
}

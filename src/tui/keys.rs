//! The lab's keys: one table maps keys to actions, and the same table labels the hint bar
//! and the help overlay, so a binding changed in the config file shows everywhere.
//! (Text fields, the run form and the pickers keep their own few keys: arrows, Enter, Esc.)

use std::collections::BTreeMap;

use crossterm::event::KeyCode;

/// What a key does in the lab's main view (and, for the chart's, in the compare chart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Quit,
    Help,
    Compare,
    SwitchPanel,
    PrevEdge,
    NextEdge,
    /// Next layer, or in the runs panel the next run.
    Down,
    Up,
    /// Toggle the edge, or in the runs panel mark the run.
    Toggle,
    AllOn,
    AllOff,
    Widen,
    Narrow,
    InsertLayer,
    RemoveLayer,
    SwitchModel,
    Reinforce,
    EdgeKind,
    Patterns,
    Activation,
    Init,
    /// The MLP's normalisation: none, batch, layer.
    Norm,
    /// A CNN's shortcut across stages: projection or pad.
    Shortcut,
    Flow,
    /// The selected run's configuration against another run's.
    Diff,
    /// The selected run's lesion study.
    Lesion,
    /// The selected run's edge usage.
    Usage,
    /// The selected run's layer similarity (CKA).
    Similarity,
    /// The selected run's loss landscape.
    Landscape,
    Train,
    NextRun,
    PrevRun,
    Pause,
    Stop,
    Delete,
    Filter,
    Sort,
    Reverse,
    Group,
    OpenPreset,
    SavePreset,
    LoadSaved,
    ChartX,
    ChartMetric,
    Smoother,
    Rougher,
    ExportCsv,
}

use Action::*;

/// Every action: its name in the config file and its default keys (the first is the one the
/// hint bar shows).
const DEFAULTS: &[(Action, &str, &[KeyCode])] = &[
    (Quit, "quit", &[KeyCode::Char('q'), KeyCode::Esc]),
    (Help, "help", &[KeyCode::Char('?')]),
    (Compare, "compare", &[KeyCode::Char('c')]),
    (
        SwitchPanel,
        "switch_panel",
        &[KeyCode::Tab, KeyCode::BackTab],
    ),
    (
        PrevEdge,
        "previous_edge",
        &[KeyCode::Left, KeyCode::Char('h')],
    ),
    (NextEdge, "next_edge", &[KeyCode::Right, KeyCode::Char('l')]),
    (Down, "down", &[KeyCode::Down, KeyCode::Char('j')]),
    (Up, "up", &[KeyCode::Up, KeyCode::Char('k')]),
    (Toggle, "toggle", &[KeyCode::Char(' ')]),
    (AllOn, "all_edges_on", &[KeyCode::Char('a')]),
    (AllOff, "all_edges_off", &[KeyCode::Char('n')]),
    (Widen, "widen", &[KeyCode::Char('+'), KeyCode::Char('=')]),
    (Narrow, "narrow", &[KeyCode::Char('-')]),
    (InsertLayer, "insert_layer", &[KeyCode::Char('i')]),
    (RemoveLayer, "remove_layer", &[KeyCode::Char('r')]),
    (SwitchModel, "switch_model", &[KeyCode::Char('m')]),
    (Reinforce, "reinforce", &[KeyCode::Char('R')]),
    (EdgeKind, "edge_kind", &[KeyCode::Char('e')]),
    (Patterns, "skip_patterns", &[KeyCode::Char('P')]),
    (Activation, "activation", &[KeyCode::Char('A')]),
    (Init, "initialisation", &[KeyCode::Char('I')]),
    (Norm, "normalisation", &[KeyCode::Char('N')]),
    (Shortcut, "shortcut", &[KeyCode::Char('O')]),
    (Flow, "gradient_flow", &[KeyCode::Char('f')]),
    (Diff, "diff_runs", &[KeyCode::Char('D')]),
    (Lesion, "lesion_study", &[KeyCode::Char('V')]),
    (Usage, "edge_usage", &[KeyCode::Char('u')]),
    (Similarity, "similarity", &[KeyCode::Char('C')]),
    (Landscape, "loss_landscape", &[KeyCode::Char('Z')]),
    (Train, "train", &[KeyCode::Char('t'), KeyCode::Enter]),
    (
        NextRun,
        "next_run",
        &[KeyCode::Char('J'), KeyCode::PageDown],
    ),
    (
        PrevRun,
        "previous_run",
        &[KeyCode::Char('K'), KeyCode::PageUp],
    ),
    (Pause, "pause", &[KeyCode::Char('p')]),
    (Stop, "stop", &[KeyCode::Char('x')]),
    (Delete, "delete", &[KeyCode::Char('d')]),
    (Filter, "filter", &[KeyCode::Char('/')]),
    (Sort, "sort", &[KeyCode::Char('s')]),
    (Reverse, "reverse", &[KeyCode::Char('v')]),
    (Group, "group_seeds", &[KeyCode::Char('g')]),
    (OpenPreset, "open_preset", &[KeyCode::Char('o')]),
    (SavePreset, "save_preset", &[KeyCode::Char('S')]),
    (LoadSaved, "load_saved_runs", &[KeyCode::Char('L')]),
    (ChartX, "chart_x_axis", &[KeyCode::Char('x')]),
    (ChartMetric, "chart_metric", &[KeyCode::Char('y')]),
    (Smoother, "chart_smoother", &[KeyCode::Char(']')]),
    (Rougher, "chart_rougher", &[KeyCode::Char('[')]),
    (ExportCsv, "chart_export_csv", &[KeyCode::Char('E')]),
];

/// Actions of the compare chart only, where the main view's keys (`x` stops a run) do not
/// apply; the chart also takes Group and Quit.
const CHART_ONLY: &[Action] = &[ChartX, ChartMetric, Smoother, Rougher, ExportCsv];
const CHART: &[Action] = &[
    ChartX,
    ChartMetric,
    Smoother,
    Rougher,
    ExportCsv,
    Group,
    Quit,
];

/// The help overlay: rows of actions (their keys, `/` between actions) and what they do.
pub const HELP: &[(&[Action], &str)] = &[
    (
        &[PrevEdge, NextEdge],
        "select the previous / next skip edge",
    ),
    (
        &[Toggle],
        "toggle the selected edge (runs panel: mark the run)",
    ),
    (&[AllOn, AllOff], "all edges on / off"),
    (&[Up, Down], "select a layer (runs panel: a run)"),
    (&[Widen, Narrow], "widen / narrow the selected layer"),
    (
        &[InsertLayer, RemoveLayer],
        "insert a layer after the selected one / remove it",
    ),
    (
        &[SwitchModel, Reinforce],
        "MLP or CNN / reinforce: the vanilla net as big",
    ),
    (
        &[Train],
        "train this topology (the form: several seeds too)",
    ),
    (
        &[SwitchPanel],
        "switch between the topology and the runs panel",
    ),
    (&[NextRun, PrevRun], "select a run"),
    (
        &[Pause, Stop, Delete],
        "pause or resume / stop / remove the run (asks; files kept)",
    ),
    (
        &[Filter],
        "filter the runs (name, id, description); Esc clears",
    ),
    (
        &[Sort, Reverse],
        "sort the runs by the next column / reverse",
    ),
    (
        &[Group],
        "group runs that differ only in their seed (mean ± sd)",
    ),
    (
        &[Compare],
        "compare the marked runs (or all) on one chart; in it:",
    ),
    (
        &[ChartX, ChartMetric, Rougher, Smoother, ExportCsv],
        "x axis / metric / smoothing - + / write CSV",
    ),
    (
        &[EdgeKind, Patterns, Shortcut],
        "residual or concat edge / skip patterns / CNN shortcut",
    ),
    (
        &[Activation, Init, Norm, Flow, Diff],
        "activation / init / norm / gradient flow / diff of 2 runs",
    ),
    (
        &[Lesion, Usage, Similarity, Landscape],
        "the run's lesion / edge usage / CKA / loss landscape",
    ),
    (
        &[OpenPreset, SavePreset],
        "open a preset / save the topology and form as one",
    ),
    (
        &[LoadSaved],
        "browse saved runs: / filter, ␣ choose, a all, Enter load",
    ),
    (
        &[Quit, Help],
        "quit (asks while runs are active; Ctrl-C too) / this help",
    ),
];

/// Hint bar entries: actions, the text between their keys, and a word. Each view lists its
/// own, most used first: a narrow terminal cuts the end of the line.
pub type Hint = (&'static [Action], &'static str, &'static str);

/// The keys in effect: the defaults with the config file's bindings applied.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyTable {
    keys: BTreeMap<Action, Vec<KeyCode>>,
}

impl Default for KeyTable {
    fn default() -> Self {
        Self {
            keys: DEFAULTS
                .iter()
                .map(|(a, _, keys)| (*a, keys.to_vec()))
                .collect(),
        }
    }
}

/// A key as a person writes it: `t`, `T`, `Enter`, `Esc`, `Tab`, `Space`, `Left`, `PgDn`, `F5`.
pub fn parse_key(text: &str) -> Option<KeyCode> {
    let mut chars = text.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return Some(KeyCode::Char(c));
    }
    Some(match text.to_ascii_lowercase().as_str() {
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" | "s-tab" => KeyCode::BackTab,
        "space" => KeyCode::Char(' '),
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "pgup" | "pageup" => KeyCode::PageUp,
        "pgdn" | "pagedown" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "backspace" => KeyCode::Backspace,
        "delete" | "del" => KeyCode::Delete,
        f if f.starts_with('f') => {
            KeyCode::F(f[1..].parse().ok().filter(|n| (1..=24).contains(n))?)
        }
        _ => return None,
    })
}

/// How the help and the hint bar write a key.
pub fn key_label(key: KeyCode, compact: bool) -> String {
    match key {
        KeyCode::Char(' ') if compact => "␣".into(),
        KeyCode::Char(' ') => "Space".into(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::BackTab => "S-Tab".into(),
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    }
}

impl KeyTable {
    /// The defaults with `bindings` (config `keys`: action name -> keys, comma-separated)
    /// replacing an action's keys. Unknown actions or keys, and two actions of one view on
    /// one key, are errors naming them.
    pub fn with_bindings(bindings: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut table = Self::default();
        for (name, keys) in bindings {
            let Some((action, _, _)) = DEFAULTS.iter().find(|(_, n, _)| n == name) else {
                let names: Vec<&str> = DEFAULTS.iter().map(|(_, n, _)| *n).collect();
                return Err(format!(
                    "keys: `{name}` is not an action (one of: {})",
                    names.join(", ")
                ));
            };
            let parsed = keys
                .split(',')
                .map(|k| k.trim())
                .filter(|k| !k.is_empty())
                .map(|k| {
                    parse_key(k).ok_or_else(|| format!("keys: `{k}` (for {name}) is not a key"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if parsed.is_empty() {
                return Err(format!("keys: {name} needs at least one key"));
            }
            table.keys.insert(*action, parsed);
        }
        table.check()?;
        Ok(table)
    }

    /// No key may mean two things in one view.
    fn check(&self) -> Result<(), String> {
        let main = self
            .keys
            .keys()
            .copied()
            .filter(|a| !CHART_ONLY.contains(a));
        let views: [Vec<Action>; 2] = [main.collect(), CHART.to_vec()];
        for view in views {
            for (i, a) in view.iter().enumerate() {
                for b in &view[i + 1..] {
                    if let Some(k) = self.keys[a].iter().find(|k| self.keys[b].contains(k)) {
                        return Err(format!(
                            "keys: `{}` is bound to both {} and {}",
                            key_label(*k, false),
                            self.name(*a),
                            self.name(*b)
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn name(&self, action: Action) -> &'static str {
        DEFAULTS
            .iter()
            .find(|(a, _, _)| *a == action)
            .map_or("?", |(_, n, _)| n)
    }

    /// The main view's action for `key`.
    pub fn action(&self, key: KeyCode) -> Option<Action> {
        self.keys
            .iter()
            .find(|(a, keys)| !CHART_ONLY.contains(a) && keys.contains(&key))
            .map(|(a, _)| *a)
    }

    /// The compare chart's action for `key`.
    pub fn chart_action(&self, key: KeyCode) -> Option<Action> {
        CHART.iter().copied().find(|a| self.keys[a].contains(&key))
    }

    pub fn keys(&self, action: Action) -> &[KeyCode] {
        &self.keys[&action]
    }

    /// A help row's keys: each action's keys, ` / ` between actions.
    pub fn help_label(&self, actions: &[Action]) -> String {
        actions
            .iter()
            .map(|a| {
                self.keys[a]
                    .iter()
                    .map(|k| key_label(*k, false))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" / ")
    }

    /// A hint's keys: each action's first key, `joiner` between them.
    pub fn hint_label(&self, actions: &[Action], joiner: &str) -> String {
        actions
            .iter()
            .map(|a| key_label(self.keys[a][0], true))
            .collect::<Vec<_>>()
            .join(joiner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_unambiguous_and_every_action_is_documented() {
        let table = KeyTable::default();
        table.check().unwrap();
        for (action, _, _) in DEFAULTS {
            assert!(
                HELP.iter().any(|(actions, _)| actions.contains(action)),
                "{action:?} is not in the help"
            );
        }
        assert_eq!(table.action(KeyCode::Char('x')), Some(Stop));
        assert_eq!(table.chart_action(KeyCode::Char('x')), Some(ChartX));
        assert_eq!(table.action(KeyCode::Enter), Some(Train));
        assert_eq!(table.help_label(&[PrevEdge, NextEdge]), "← h / → l");
        assert_eq!(table.hint_label(&[PrevEdge, NextEdge], ""), "←→");
    }

    #[test]
    fn bindings_replace_keys_and_bad_ones_are_named() {
        let bind = |pairs: &[(&str, &str)]| {
            let map: BTreeMap<String, String> = pairs
                .iter()
                .map(|(a, k)| (a.to_string(), k.to_string()))
                .collect();
            KeyTable::with_bindings(&map)
        };
        let table = bind(&[("train", "T, F5"), ("stop", "X")]).unwrap();
        assert_eq!(table.action(KeyCode::Char('T')), Some(Train));
        assert_eq!(table.action(KeyCode::F(5)), Some(Train));
        assert_eq!(table.action(KeyCode::Char('t')), None, "t is free now");
        assert_eq!(table.hint_label(&[Train], ""), "T");
        let e = bind(&[("train", "p")]).unwrap_err();
        assert!(
            e.contains("`p` is bound to both") && e.contains("train"),
            "{e}"
        );
        let e = bind(&[("fly", "z")]).unwrap_err();
        assert!(e.contains("`fly` is not an action"), "{e}");
        let e = bind(&[("train", "Ctrl-Alt-Q")]).unwrap_err();
        assert!(e.contains("is not a key"), "{e}");
        // The chart's x and the runs' stop share a key: different views.
        bind(&[("chart_x_axis", "x")]).unwrap();
    }
}

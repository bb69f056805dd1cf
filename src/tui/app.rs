//! The lab's state and what keys and training events do to it. No terminal here: keys go
//! in, [`Effect`]s come out, so every behaviour is testable without a screen.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use crate::data::DatasetName;
use crate::experiment::{Experiment, Optimizer};
use crate::net::optim::OptimizerConfig;
pub use crate::session::RunState;
use crate::session::{RunId, SessionEvent, Update};
use crate::topology::{
    Activation, CnnSpec, EdgeKind, ImageShape, InitScheme, MlpSpec, SkipEdge, SkipSelection,
    Topology,
};
use crate::train::{
    Command, EpochMetrics, FlowPoint, RunStatus, StepMetrics, TrainConfig, TrainEvent,
};
use crate::tui::browser::{BrowserItem, BrowserOutcome, RunBrowser};
use crate::tui::keys::Action;
pub use crate::tui::table::{ChartView, Focus, RowView, SortKey};

/// The choice after `current` in `all`, round to the first.
fn next_of<T: Copy + PartialEq>(all: &[T], current: T) -> T {
    let at = all.iter().position(|&c| c == current).unwrap_or(0);
    all[(at + 1) % all.len()]
}

/// How the screen is coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Colours {
    /// As drawn: for a dark background.
    #[default]
    Dark,
    /// Yellow, white and grey swapped for colours that read on a light background.
    Light,
    /// No colour at all (`NO_COLOR`); bold, reverse and underline still mark selections.
    None,
}

impl Colours {
    /// The config file's theme, unless `NO_COLOR` is set (to anything but empty).
    pub fn from_env(theme: crate::folders::Theme) -> Self {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return Colours::None;
        }
        match theme {
            crate::folders::Theme::Dark => Colours::Dark,
            crate::folders::Theme::Light => Colours::Light,
        }
    }
}

/// What the event loop must do after the state changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Hand this experiment to the session (it answers with [`App::on_session`] updates, or
    /// an error for [`App::submit_failed`]).
    Submit(Box<Experiment>),
    /// A command for the session's run.
    Send(RunId, Command),
    /// List the presets folder (answered with [`App::show_presets`]).
    ListPresets,
    /// Write the current topology and form as a preset of this name ([`App::preset_saved`]).
    SavePreset(String),
    /// List saved runs ([`App::show_saved_runs`]).
    ListSavedRuns,
    /// Write the compare chart's runs as long-format CSV (answered in [`App::message`]).
    ExportCsv(String),
    Quit,
}

/// What a key does in a list popup.
enum Pick<T> {
    Close,
    Chosen(T),
    /// Moved (or ignored): the popup stays.
    Stay,
}

/// Up/down move the selection, Enter chooses, Esc and q close.
fn pick<T: Clone>(items: &[T], selected: &mut usize, key: KeyCode) -> Pick<T> {
    let len = items.len();
    match key {
        KeyCode::Esc | KeyCode::Char('q') => Pick::Close,
        KeyCode::Enter => items
            .get(*selected)
            .cloned()
            .map_or(Pick::Close, Pick::Chosen),
        KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab if len > 0 => {
            *selected = (*selected + 1) % len;
            Pick::Stay
        }
        KeyCode::Up | KeyCode::Char('k') | KeyCode::BackTab if len > 0 => {
            *selected = (*selected + len - 1) % len;
            Pick::Stay
        }
        _ => Pick::Stay,
    }
}

/// A preset file as the picker shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PresetItem {
    pub name: String,
    /// The experiment, or why the file cannot be used.
    pub experiment: Result<Experiment, String>,
}

/// Which part of the topology the cursor is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Index into `topology.candidate_edges()`.
    Edge(usize),
    /// A layer (MLP: 0..layers; CNN: paper numbering, 0 = input).
    Layer(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Normal,
    Help,
    Form(TrainForm),
    ConfirmQuit,
    /// "Remove this run from the table?" (an index into `runs`).
    ConfirmDelete(usize),
    Compare,
    /// The preset picker.
    Presets {
        items: Vec<PresetItem>,
        selected: usize,
    },
    /// "Save as preset": the name typed so far.
    SaveAs(String),
    /// The runs filter being typed.
    Filter(String),
    /// The selected run's gradient flow: layers by time.
    Flow,
    /// The run browser: saved runs to load into the runs table.
    Browser(Box<RunBrowser>),
}

/// One training run as the lab shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// The row's own number (`run-3`).
    pub id: usize,
    /// The session's run this row follows; `None` for a saved run loaded from disk.
    pub live: Option<RunId>,
    /// Its folder's name in saves/, once it has one.
    pub saved_id: Option<String>,
    pub name: String,
    /// What it trains, whole: its configuration (loaded saved runs may train on another
    /// data set than the lab's).
    pub experiment: Experiment,
    /// The epochs after which a saved run was resumed (part of its configuration).
    pub resumed_after: Vec<usize>,
    /// Shown in the compare chart (none marked: every run in the table is).
    pub marked: bool,
    pub topology: Topology,
    pub config: TrainConfig,
    pub state: RunState,
    pub epochs: Vec<EpochMetrics>,
    /// Training loss and accuracy every few steps.
    pub steps: Vec<StepMetrics>,
    /// Each layer's gradient norm and update ratio at the same steps.
    pub flows: Vec<FlowPoint>,
    /// (epoch, step, steps per epoch) of the latest progress report.
    pub progress: Option<(usize, usize, usize)>,
    pub test_accuracy: Option<f64>,
    /// skip*: the epoch after which the skips were enabled.
    pub skips_enabled_after: Option<usize>,
}

impl Run {
    pub fn best_val(&self) -> Option<f64> {
        self.epochs.iter().map(|m| m.val_accuracy).reduce(f64::max)
    }
    pub fn mean_epoch_seconds(&self) -> Option<f64> {
        (!self.epochs.is_empty())
            .then(|| self.epochs.iter().map(|m| m.seconds).sum::<f64>() / self.epochs.len() as f64)
    }
    /// Mean |w| per skip edge from the latest epoch.
    pub fn skip_weights(&self) -> &[(SkipEdge, f64)] {
        self.epochs.last().map_or(&[], |m| &m.skip_weights[..])
    }
}

/// The "train" form: hyperparameters of the next run. Values are typed (digits start an
/// entry, Enter or a move sets it, checked by the experiment's own rules) or stepped with
/// ←/→; fields that do not apply (momentum under Adam) are hidden.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainForm {
    pub field: FormField,
    pub adam: bool,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch: usize,
    pub epochs: usize,
    pub seed: u64,
    /// Runs to start, with seeds `seed`, `seed + 1`, ... (a seed group).
    pub seeds: usize,
    /// The text being typed into `field`, until it is set.
    pub typing: Option<String>,
    /// Why the typed text cannot be set.
    pub error: Option<String>,
}

/// One field of the train form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormField {
    Optimizer,
    Lr,
    Momentum,
    WeightDecay,
    Batch,
    Epochs,
    Seed,
    Seeds,
}

impl FormField {
    pub const ALL: [FormField; 8] = [
        FormField::Optimizer,
        FormField::Lr,
        FormField::Momentum,
        FormField::WeightDecay,
        FormField::Batch,
        FormField::Epochs,
        FormField::Seed,
        FormField::Seeds,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FormField::Optimizer => "optimizer",
            FormField::Lr => "lr",
            FormField::Momentum => "momentum",
            FormField::WeightDecay => "weight decay",
            FormField::Batch => "batch",
            FormField::Epochs => "epochs",
            FormField::Seed => "seed",
            FormField::Seeds => "seeds",
        }
    }
}

/// The most seeds one submission of the form starts.
pub const MAX_FORM_SEEDS: usize = 20;

impl Default for TrainForm {
    fn default() -> Self {
        Self {
            field: FormField::Optimizer,
            adam: true,
            lr: 1e-3,
            momentum: 0.9,
            weight_decay: 0.0,
            batch: 64,
            epochs: 5,
            seed: 1,
            seeds: 1,
            typing: None,
            error: None,
        }
    }
}

impl TrainForm {
    /// The fields that apply, in order: momentum only for SGD.
    pub fn fields(&self) -> Vec<FormField> {
        FormField::ALL
            .into_iter()
            .filter(|&f| f != FormField::Momentum || !self.adam)
            .collect()
    }

    pub fn value(&self, field: FormField) -> String {
        match field {
            FormField::Optimizer => if self.adam { "adam" } else { "sgd" }.into(),
            FormField::Lr => format!("{}", self.lr),
            FormField::Momentum => format!("{}", self.momentum),
            FormField::WeightDecay => format!("{}", self.weight_decay),
            FormField::Batch => self.batch.to_string(),
            FormField::Epochs => self.epochs.to_string(),
            FormField::Seed => self.seed.to_string(),
            FormField::Seeds => self.seeds.to_string(),
        }
    }

    /// Moves to the next (or previous) field that applies; a typed value is set first, and
    /// the form stays where it is if it cannot be.
    fn step_field(&mut self, forward: bool) {
        if !self.commit() {
            return;
        }
        let fields = self.fields();
        let at = fields.iter().position(|&f| f == self.field).unwrap_or(0);
        let n = fields.len();
        self.field = fields[if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        }];
    }

    /// Sets the typed text, if any: `false` (with the reason in `error`) when it is not a
    /// value the field takes.
    fn commit(&mut self) -> bool {
        let Some(text) = self.typing.clone() else {
            return true;
        };
        match self.set(self.field, text.trim()) {
            Ok(()) => {
                self.typing = None;
                self.error = None;
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// Parses and checks `text` for `field` with the experiment's rules.
    fn set(&mut self, field: FormField, text: &str) -> Result<(), String> {
        use crate::experiment::rules;
        let name = field.name();
        let real = || -> Result<f64, String> {
            text.parse::<f64>()
                .map_err(|_| format!("{name}: `{text}` is not a number"))
        };
        let whole = || -> Result<u64, String> {
            text.parse::<u64>()
                .map_err(|_| format!("{name}: `{text}` is not a whole number"))
        };
        let checked = |r: Result<(), &str>| r.map_err(|e| format!("{name} {text} {e}"));
        match field {
            FormField::Optimizer => return Err("optimizer: ←/→ choose sgd or adam".into()),
            FormField::Lr => {
                let v = real()?;
                checked(rules::lr(v))?;
                self.lr = v;
            }
            FormField::Momentum => {
                let v = real()?;
                checked(rules::momentum(v))?;
                self.momentum = v;
            }
            FormField::WeightDecay => {
                let v = real()?;
                checked(rules::weight_decay(v))?;
                self.weight_decay = v;
            }
            FormField::Batch => {
                let v = whole()? as usize;
                checked(rules::at_least_one(v))?;
                self.batch = v;
            }
            FormField::Epochs => {
                let v = whole()? as usize;
                checked(rules::at_least_one(v))?;
                self.epochs = v;
            }
            FormField::Seed => self.seed = whole()?,
            FormField::Seeds => {
                let v = whole()? as usize;
                if !(1..=MAX_FORM_SEEDS).contains(&v) {
                    return Err(format!("seeds {v} must be 1 to {MAX_FORM_SEEDS}"));
                }
                self.seeds = v;
            }
        }
        Ok(())
    }

    /// A key typed into the form's value: digits and a point start an entry; after that,
    /// exponents and signs too (`1e-4`).
    fn type_char(&mut self, c: char) -> bool {
        let starts = c.is_ascii_digit() || c == '.';
        let continues = self.typing.is_some() && "eE-+".contains(c);
        if self.field == FormField::Optimizer || !(starts || continues) {
            return false;
        }
        self.typing.get_or_insert_with(String::new).push(c);
        self.error = None;
        true
    }

    /// Left/right on a field: halve/double rates, step counts.
    fn adjust(&mut self, up: bool) {
        let scale = |v: f64| if up { v * 2.0 } else { v / 2.0 };
        match self.field {
            FormField::Optimizer => {
                self.adam = !self.adam;
                self.lr = if self.adam { 1e-3 } else { 1e-2 };
            }
            FormField::Lr => self.lr = scale(self.lr).clamp(1e-6, 10.0),
            FormField::Momentum => {
                self.momentum = ((self.momentum + if up { 0.05 } else { -0.05 }) * 100.0)
                    .round()
                    .clamp(0.0, 99.0)
                    / 100.0
            }
            FormField::WeightDecay => {
                self.weight_decay = match (self.weight_decay == 0.0, up) {
                    (true, true) => 1e-5,
                    (true, false) => 0.0,
                    (false, _) => scale(self.weight_decay),
                };
                if self.weight_decay < 1e-6 {
                    self.weight_decay = 0.0;
                }
            }
            FormField::Batch => {
                self.batch = if up {
                    (self.batch * 2).min(4096)
                } else {
                    (self.batch / 2).max(1)
                }
            }
            FormField::Epochs => {
                self.epochs = if up {
                    self.epochs + 1
                } else {
                    self.epochs.saturating_sub(1).max(1)
                }
            }
            FormField::Seed => {
                self.seed = if up {
                    self.seed.saturating_add(1)
                } else {
                    self.seed.saturating_sub(1)
                }
            }
            FormField::Seeds => {
                self.seeds = if up {
                    (self.seeds + 1).min(MAX_FORM_SEEDS)
                } else {
                    self.seeds.saturating_sub(1).max(1)
                }
            }
        }
    }

    pub fn config(&self) -> TrainConfig {
        TrainConfig {
            optimizer: if self.adam {
                OptimizerConfig::adam(self.lr, self.weight_decay)
            } else {
                OptimizerConfig::sgd(self.lr, self.momentum, self.weight_decay)
            },
            batch_size: self.batch,
            epochs: self.epochs,
            seed: self.seed,
            schedule: None,
        }
    }
}

/// Screen regions that react to mouse clicks, recorded while drawing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HitMap {
    pub edges: Vec<(Rect, usize)>,
    pub layers: Vec<(Rect, usize)>,
    pub runs: Vec<(Rect, usize)>,
}

/// The whole lab.
#[derive(Clone, Debug)]
pub struct App {
    pub topology: Topology,
    /// The other family's topology, as `m` left it (MLP → CNN → MLP returns the MLP).
    pub other_family: Option<Topology>,
    /// The first layer the gradient-flow view shows.
    pub flow_scroll: usize,
    pub input: ImageShape,
    pub classes: usize,
    pub data_name: String,
    /// The data set the lab trains on (what saved presets name).
    pub dataset: DatasetName,
    pub selection: Selection,
    pub mode: Mode,
    pub form: TrainForm,
    pub runs: Vec<Run>,
    pub selected_run: Option<usize>,
    pub next_run_id: usize,
    pub ascii: bool,
    /// Colours for the terminal's background, or none (`NO_COLOR`).
    pub colours: Colours,
    /// Where runs train.
    pub device: crate::device::Device,
    pub message: Option<String>,
    pub hits: HitMap,
    /// Where presets are listed and saved.
    pub presets_dir: std::path::PathBuf,
    /// Where runs are saved (`None`: not saved).
    pub saves_dir: Option<std::path::PathBuf>,
    /// Where `L` reads saved runs (see [`crate::tui::LabOptions::read_saves`]).
    pub read_saves: Vec<std::path::PathBuf>,
    /// The signal (SIGTERM, SIGHUP, ...) that closed the lab, if one did.
    pub ended_by_signal: Option<i32>,
    /// Which panel the arrows and Space act on.
    pub focus: Focus,
    /// The runs table's order (and whether it is reversed), filter and seed grouping.
    pub sort: (SortKey, bool),
    pub filter: String,
    pub grouped: bool,
    /// What the compare chart shows.
    pub chart: ChartView,
    /// The last skip pattern `P` applied.
    pub pattern: usize,
    /// What each key does (the defaults, or the config file's bindings).
    pub keys: crate::tui::keys::KeyTable,
}

fn default_mlp(input: ImageShape, classes: usize) -> Topology {
    Topology::Mlp(MlpSpec::new(input.len(), vec![128, 256], classes))
}

/// The paper's CNN (three stages of two convs; pools round odd sizes up), with fewer stages
/// only where the input is too small to halve three times.
fn default_cnn(input: ImageShape, classes: usize) -> Topology {
    let mut stages = vec![vec![32, 32], vec![64, 64], vec![128, 128]];
    while stages.len() > 1 && input.height.min(input.width) < 1 << stages.len() {
        stages.pop();
    }
    Topology::Cnn(CnnSpec::new(input, stages, classes))
}

impl App {
    pub fn new(input: ImageShape, classes: usize, data_name: &str) -> Self {
        Self {
            topology: default_mlp(input, classes),
            other_family: None,
            flow_scroll: 0,
            input,
            classes,
            data_name: data_name.to_string(),
            dataset: data_name.parse().unwrap_or(DatasetName::Builtin),
            selection: Selection::Edge(0),
            mode: Mode::Normal,
            form: TrainForm::default(),
            runs: Vec::new(),
            selected_run: None,
            next_run_id: 1,
            ascii: false,
            device: crate::device::Device::Cpu,
            message: None,
            hits: HitMap::default(),
            presets_dir: "presets".into(),
            saves_dir: None,
            read_saves: Vec::new(),
            ended_by_signal: None,
            focus: Focus::Topology,
            sort: (SortKey::Run, false),
            filter: String::new(),
            grouped: false,
            chart: ChartView::default(),
            pattern: 0,
            keys: Default::default(),
            colours: Colours::Dark,
        }
    }

    pub fn candidate_edges(&self) -> Vec<SkipEdge> {
        self.topology.candidate_edges()
    }

    pub fn selected_edge(&self) -> Option<SkipEdge> {
        match self.selection {
            Selection::Edge(i) => self.candidate_edges().get(i).copied(),
            Selection::Layer(_) => None,
        }
    }

    pub fn has_active_runs(&self) -> bool {
        self.runs.iter().any(|r| r.state.is_active())
    }

    pub fn selected_run(&self) -> Option<&Run> {
        self.selected_run.and_then(|i| self.runs.get(i))
    }

    fn layer_count(&self) -> usize {
        match &self.topology {
            Topology::Mlp(m) => m.num_layers(),
            Topology::Cnn(c) => c.last_layer() + 1,
        }
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return self.request_quit();
        }
        // A terminal sends Esc as a lone ESC byte, so an Esc followed closely by a key (a
        // quick typist, or both in one SSH packet) arrives as Alt+key. The lab binds nothing
        // to Alt: it is the two presses it was. In the main view Esc would ask to quit, so
        // there only the key counts.
        if key.modifiers.contains(KeyModifiers::ALT) && matches!(key.code, KeyCode::Char(_)) {
            let plain = KeyEvent::new(key.code, key.modifiers - KeyModifiers::ALT);
            let mut effects = Vec::new();
            if !matches!(self.mode, Mode::Normal) {
                effects = self.handle_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
            }
            effects.extend(self.handle_key(plain));
            return effects;
        }
        match &self.mode {
            Mode::Help => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            Mode::Compare => self.compare_key(key),
            Mode::Filter(_) => self.filter_key(key),
            Mode::Flow => {
                let scroll = |by: isize| (self.flow_scroll as isize + by).max(0) as usize;
                match (key.code, self.keys.action(key.code)) {
                    // Arrows scroll the layers (the drawing keeps the window on them).
                    (KeyCode::Down, _) => self.flow_scroll = scroll(1),
                    (KeyCode::Up, _) => self.flow_scroll = scroll(-1),
                    (KeyCode::PageDown, _) => self.flow_scroll = scroll(10),
                    (KeyCode::PageUp, _) => self.flow_scroll = scroll(-10),
                    (KeyCode::Esc, _) => self.mode = Mode::Normal,
                    (_, Some(Action::Quit)) => return self.request_quit(),
                    (_, Some(Action::NextRun)) => {
                        self.step_run(1);
                        self.flow_scroll = 0;
                    }
                    (_, Some(Action::PrevRun)) => {
                        self.step_run(-1);
                        self.flow_scroll = 0;
                    }
                    _ => self.mode = Mode::Normal,
                }
                Vec::new()
            }
            Mode::ConfirmQuit => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => self.quit_now(),
                _ => {
                    self.mode = Mode::Normal;
                    Vec::new()
                }
            },
            Mode::ConfirmDelete(_) => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.mode = Mode::Normal;
                    self.delete_selected()
                }
                _ => {
                    self.mode = Mode::Normal;
                    Vec::new()
                }
            },
            Mode::Form(_) => self.form_key(key),
            Mode::Presets { .. } => self.presets_key(key),
            Mode::SaveAs(_) => self.save_as_key(key),
            Mode::Browser(_) => self.browser_key(key),
            Mode::Normal => self.normal_key(key),
        }
    }

    pub fn show_presets(&mut self, items: Vec<PresetItem>) {
        self.mode = Mode::Presets { items, selected: 0 };
    }

    fn presets_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Mode::Presets { items, selected } = &mut self.mode else {
            return Vec::new();
        };
        match pick(items, selected, key.code) {
            Pick::Close => self.mode = Mode::Normal,
            Pick::Chosen(PresetItem { name, experiment }) => {
                self.mode = Mode::Normal;
                match experiment {
                    Ok(e) => self.load_experiment(&name, &e),
                    Err(why) => self.message = Some(format!("preset {name} cannot be used: {why}")),
                }
            }
            Pick::Stay => {}
        }
        Vec::new()
    }

    /// Puts a preset's topology into the panel and its hyperparameters into the form, when
    /// it fits the data the lab has.
    pub fn load_experiment(&mut self, name: &str, e: &Experiment) {
        let (shape, classes) = (e.dataset.input_shape(), e.dataset.classes());
        if shape != self.input || classes != self.classes {
            self.message = Some(format!(
                "preset {name} is for {} ({shape}, {classes} classes); this lab has {} ({}, {} classes): start it with --dataset {}",
                e.dataset, self.data_name, self.input, self.classes, e.dataset
            ));
            return;
        }
        match e.topology() {
            Ok(topology) => {
                self.topology = topology;
                self.selection = Selection::Edge(0);
            }
            Err(err) => {
                self.message = Some(format!("preset {name}: {err}"));
                return;
            }
        }
        let form = &mut self.form;
        match e.optimizer {
            Optimizer::Sgd { lr, momentum } => {
                form.adam = false;
                form.lr = lr;
                form.momentum = momentum;
            }
            Optimizer::Adam { lr } => {
                form.adam = true;
                form.lr = lr;
            }
        }
        form.weight_decay = e.weight_decay;
        form.batch = e.batch;
        form.epochs = e.epochs;
        form.seed = e.seed;
        self.message = Some(format!(
            "loaded preset {name}{}",
            if e.schedule.is_some() {
                " (its skip* schedule runs with `skiplab train --preset`; the lab trains the topology as shown)"
            } else {
                ""
            }
        ));
    }

    /// The experiment the lab would save: current topology, data set and form.
    pub fn experiment(&self) -> Experiment {
        Experiment::from_parts(
            &self.topology,
            self.dataset,
            &self.form.config(),
            crate::tui::VAL_FRACTION,
        )
    }

    fn save_as_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Mode::SaveAs(name) = &mut self.mode else {
            return Vec::new();
        };
        match key.code {
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Backspace => {
                name.pop();
            }
            KeyCode::Char(c) if name.len() < 80 => name.push(c),
            KeyCode::Enter => {
                let name = name.clone();
                if crate::experiment::valid_preset_name(&name) {
                    self.mode = Mode::Normal;
                    return vec![Effect::SavePreset(name)];
                }
                self.message = Some(format!(
                    "`{name}` is not a usable name: letters, digits, - _ and . only"
                ));
            }
            _ => {}
        }
        Vec::new()
    }

    pub fn preset_saved(&mut self, result: Result<std::path::PathBuf, String>) {
        self.message = Some(match result {
            Ok(path) => format!("saved preset {}", path.display()),
            Err(e) => format!("preset not saved: {e}"),
        });
    }

    /// The folders `L` reads saved runs from: `--saves` as given, else where runs are saved.
    pub fn saved_run_folders(&self) -> Vec<std::path::PathBuf> {
        match (&self.saves_dir, self.read_saves.is_empty()) {
            (_, false) => self.read_saves.clone(),
            (Some(saves), true) => vec![saves.clone()],
            (None, true) => vec!["saves".into()],
        }
    }

    /// Opens the run browser on `items` (the runs already in the table marked).
    pub fn show_saved_runs(&mut self, items: Vec<BrowserItem>) {
        let loaded = self
            .runs
            .iter()
            .filter_map(|r| r.saved_id.clone())
            .collect();
        let mut browser = RunBrowser::new(items, loaded);
        let folders: Vec<String> = self
            .saved_run_folders()
            .iter()
            .map(|f| format!("{}/", f.display()).replace("//", "/"))
            .collect();
        browser.folders = folders.join(", ");
        self.mode = Mode::Browser(Box::new(browser));
        self.message = None;
    }

    fn browser_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Mode::Browser(browser) = &mut self.mode else {
            return Vec::new();
        };
        match browser.key(key) {
            BrowserOutcome::Stay => {}
            BrowserOutcome::Close => self.mode = Mode::Normal,
            BrowserOutcome::Load(runs) => {
                self.mode = Mode::Normal;
                let (total, before) = (runs.len(), self.runs.len());
                for run in runs {
                    self.add_saved_run(run);
                }
                // One run: `add_saved_run` said what became of it.
                let added = self.runs.len() - before;
                if total > 1 {
                    self.message = Some(match total - added {
                        0 => format!("loaded {added} runs"),
                        n => format!("loaded {added} runs ({n} loaded already)"),
                    });
                } else if total == 0 {
                    self.message = Some("nothing loaded: that run cannot be read".into());
                }
            }
        }
        Vec::new()
    }

    /// Replaces the topology with its "reinforced" vanilla network (the paper's fair
    /// comparison: the skip network's widths, or its parameter count, without skips).
    fn reinforce(&mut self) {
        if self.topology.skips().is_empty() {
            self.message = Some("no skips on: the network is already vanilla".into());
            return;
        }
        let before = self.topology.param_count();
        self.topology = self.topology.reinforced();
        self.selection = Selection::Edge(0);
        self.message = Some(format!(
            "reinforced vanilla: {} params (the skip network had {before})",
            self.topology.param_count()
        ));
    }

    /// Adds a finished run read from disk to the runs table (and so to the compare chart).
    /// A run already in the table (loaded, or trained here) is selected, not added again: a
    /// run is one sample however often it is loaded.
    pub fn add_saved_run(&mut self, mut run: Run) {
        let here = self
            .runs
            .iter()
            .position(|r| r.saved_id.is_some() && r.saved_id == run.saved_id);
        if let Some(i) = here {
            self.message = Some(format!(
                "{} is loaded already (as {})",
                run.name, self.runs[i].name
            ));
            self.selected_run = Some(i);
            return;
        }
        run.id = self.next_run_id;
        run.live = None;
        self.next_run_id += 1;
        // A short name for the table's narrow column; the id shows when it is selected.
        run.name = format!("run-{}", run.id);
        self.message = Some(format!(
            "loaded {} as {}",
            run.saved_id.as_deref().unwrap_or("a saved run"),
            run.name
        ));
        self.runs.push(run);
        self.selected_run = Some(self.runs.len() - 1);
    }

    fn request_quit(&mut self) -> Vec<Effect> {
        if self.has_active_runs() {
            self.mode = Mode::ConfirmQuit;
            Vec::new()
        } else {
            vec![Effect::Quit]
        }
    }

    /// Quitting stops every run (the session records them as stopped).
    fn quit_now(&mut self) -> Vec<Effect> {
        vec![Effect::Quit]
    }

    fn normal_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let edges = self.candidate_edges().len();
        self.message = None;
        let Some(action) = self.keys.action(key.code) else {
            return Vec::new();
        };
        let runs = self.focus == Focus::Runs;
        match action {
            Action::Quit => return self.request_quit(),
            Action::Help => self.mode = Mode::Help,
            Action::Compare => self.mode = Mode::Compare,
            Action::SwitchPanel => {
                self.focus = match self.focus {
                    Focus::Topology => Focus::Runs,
                    Focus::Runs => Focus::Topology,
                };
                if self.focus == Focus::Runs && self.selected_run.is_none() {
                    self.step_run(0);
                }
            }
            Action::NextEdge => self.step_edge(1, edges),
            Action::PrevEdge => self.step_edge(-1, edges),
            Action::Down if runs => self.step_run(1),
            Action::Up if runs => self.step_run(-1),
            Action::Toggle if runs => self.mark_selected(),
            Action::Down => self.step_layer(1),
            Action::Up => self.step_layer(-1),
            Action::Toggle => self.toggle_selected(),
            Action::Filter => self.mode = Mode::Filter(self.filter.clone()),
            Action::Sort => self.sort = (self.sort.0.next(), false),
            Action::Reverse => self.sort.1 = !self.sort.1,
            Action::Group => self.grouped = !self.grouped,
            Action::EdgeKind => self.cycle_edge_kind(),
            Action::Patterns => self.next_pattern(),
            Action::Activation => self.next_activation(),
            Action::Init => self.next_init(),
            Action::Flow => self.mode = Mode::Flow,
            Action::AllOn => self.select_all(SkipSelection::All),
            Action::AllOff => self.select_all(SkipSelection::None),
            Action::Widen => self.resize_layer(true),
            Action::Narrow => self.resize_layer(false),
            Action::InsertLayer => self.insert_layer(),
            Action::RemoveLayer => self.remove_layer(),
            Action::SwitchModel => self.switch_model(),
            Action::Train => self.mode = Mode::Form(self.form.clone()),
            Action::NextRun => self.step_run(1),
            Action::PrevRun => self.step_run(-1),
            Action::Pause => return self.pause_selected(),
            Action::Stop => return self.stop_selected(),
            Action::Delete => {
                if let Some(i) = self.selected_run {
                    self.mode = Mode::ConfirmDelete(i);
                }
            }
            Action::OpenPreset => return vec![Effect::ListPresets],
            Action::SavePreset => self.mode = Mode::SaveAs(String::new()),
            Action::LoadSaved => return vec![Effect::ListSavedRuns],
            Action::Reinforce => self.reinforce(),
            // The chart's own keys mean nothing here.
            Action::ChartX
            | Action::ChartMetric
            | Action::Smoother
            | Action::Rougher
            | Action::ExportCsv => {}
        }
        Vec::new()
    }

    fn step_edge(&mut self, delta: isize, edges: usize) {
        self.focus = Focus::Topology;
        if edges == 0 {
            self.message = Some("this topology has no candidate skip edges".into());
            return;
        }
        self.selection = Selection::Edge(match self.selection {
            Selection::Edge(i) => (i as isize + delta).rem_euclid(edges as isize) as usize,
            Selection::Layer(_) => 0,
        });
    }

    fn step_layer(&mut self, delta: isize) {
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

    /// Moves the selection to the next (or previous) row of the runs table as shown.
    fn step_run(&mut self, delta: isize) {
        let rows = self.rows();
        if rows.is_empty() {
            return;
        }
        let at = self
            .selected_run
            .and_then(|i| rows.iter().position(|r| r.members.contains(&i)));
        let next = match at {
            Some(k) => (k as isize + delta).clamp(0, rows.len() as isize - 1) as usize,
            None => 0,
        };
        self.selected_run = Some(rows[next].members[0]);
    }

    /// The runs table's rows: filtered, grouped by configuration when asked, sorted.
    pub fn rows(&self) -> Vec<RowView> {
        crate::tui::table::rows(self)
    }

    /// Space in the runs panel: the selected row (every run of a group) in or out of the
    /// chart.
    fn mark_selected(&mut self) {
        let Some(i) = self.selected_run else {
            return;
        };
        let members = self
            .rows()
            .into_iter()
            .find(|r| r.members.contains(&i))
            .map_or(vec![i], |r| r.members);
        let on = !self.runs[i].marked;
        for m in members {
            self.runs[m].marked = on;
        }
        let marked = self.runs.iter().filter(|r| r.marked).count();
        self.message = Some(match marked {
            0 => "no run marked: the chart shows every run in the table".into(),
            n => format!("{n} run(s) marked for the chart (c)"),
        });
    }

    fn filter_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Mode::Filter(text) = &mut self.mode else {
            return Vec::new();
        };
        match key.code {
            KeyCode::Esc => {
                self.filter.clear();
                self.mode = Mode::Normal;
            }
            KeyCode::Enter => self.mode = Mode::Normal,
            KeyCode::Backspace => {
                text.pop();
                self.filter = text.clone();
            }
            KeyCode::Char(c) if text.len() < 60 => {
                text.push(c);
                self.filter = text.clone();
            }
            _ => {}
        }
        // The selection follows the filter: a hidden run is not the one keys act on.
        let rows = self.rows();
        let visible = |i: usize| rows.iter().any(|r| r.members.contains(&i));
        if self.selected_run.is_some_and(|i| !visible(i)) {
            self.selected_run = rows.first().map(|r| r.members[0]);
        }
        Vec::new()
    }

    fn compare_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        self.message = None;
        if key.code == KeyCode::Esc || self.keys.keys(Action::Compare).contains(&key.code) {
            self.mode = Mode::Normal;
            return Vec::new();
        }
        let chart = &mut self.chart;
        match self.keys.chart_action(key.code) {
            Some(Action::Quit) => return self.request_quit(),
            Some(Action::ChartX) => chart.x = chart.x.next(),
            Some(Action::ChartMetric) => chart.metric = chart.metric.next(),
            Some(Action::Smoother) => chart.smoother(true),
            Some(Action::Rougher) => chart.smoother(false),
            Some(Action::Group) => self.grouped = !self.grouped,
            Some(Action::ExportCsv) => {
                return vec![Effect::ExportCsv(crate::tui::table::chart_csv(self))];
            }
            _ => {}
        }
        Vec::new()
    }

    pub fn toggle_selected(&mut self) {
        let Some(edge) = self.selected_edge() else {
            self.message = Some("select an edge first (left/right or Tab)".into());
            return;
        };
        let on = !self.topology.skips().contains(&edge);
        match self.topology.set_skip(edge, on) {
            Ok(()) => self.message = Some(format!("skip {edge} {}", if on { "on" } else { "off" })),
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    /// `e`: the selected edge becomes residual, or concatenating again (an edge that was off
    /// is switched on as residual).
    fn cycle_edge_kind(&mut self) {
        let Some(edge) = self.selected_edge() else {
            self.message = Some("select an edge first (left/right)".into());
            return;
        };
        let kind = match self.topology.edge_kind(edge) {
            Some(EdgeKind::Residual) => EdgeKind::Concat,
            _ => EdgeKind::Residual,
        };
        if let Err(e) = self.topology.set_edge_kind(edge, kind) {
            self.message = Some(e.to_string());
            return;
        }
        self.message = Some(match (kind, &self.topology) {
            (EdgeKind::Concat, _) => format!("skip {edge} concatenates (its block starts at zero)"),
            (EdgeKind::Residual, Topology::Mlp(m)) if m.width(edge.from) == m.width(edge.to) => {
                format!("skip {edge} is residual: identity (no weights; switching it on changes the function)")
            }
            (EdgeKind::Residual, _) => {
                format!("skip {edge} is residual through a projection (starts at zero)")
            }
        });
    }

    /// `P`: the MLP's skips through a few patterns that stay readable at 50 layers.
    fn next_pattern(&mut self) {
        const PATTERNS: [&str; 5] = ["none", "res:chain:2", "next:1", "every:2", "all"];
        if matches!(self.topology, Topology::Cnn(_)) {
            self.message = Some("patterns are for MLPs (a/n: all/none)".into());
            return;
        }
        self.pattern = (self.pattern + 1) % PATTERNS.len();
        let pattern = PATTERNS[self.pattern];
        match self
            .topology
            .apply_skips(&pattern.parse().expect("valid patterns"))
        {
            Ok(()) => {
                self.message = Some(format!(
                    "skips: {pattern} ({} edges)",
                    self.topology.skips().len()
                ))
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    fn next_activation(&mut self) {
        let Topology::Mlp(m) = &mut self.topology else {
            self.message = Some("a CNN's activation is ReLU".into());
            return;
        };
        m.activation = next_of(&Activation::ALL, m.activation);
        self.message = Some(format!("activation {}", m.activation.name()));
    }

    fn next_init(&mut self) {
        let Topology::Mlp(m) = &mut self.topology else {
            self.message = Some("a CNN starts He-uniform".into());
            return;
        };
        m.init = next_of(&InitScheme::ALL, m.init);
        self.message = Some(format!("initialisation {}", m.init.name()));
    }

    fn select_all(&mut self, selection: SkipSelection) {
        if let Err(e) = self.topology.apply_skips(&selection) {
            self.message = Some(e.to_string());
        }
    }

    /// Applies an edited topology if it is valid, remapping the kept edges.
    /// Replaces the topology with `next`, its edges those of the current one renumbered by
    /// `remap` (kinds kept; edges that map to none, or no longer fit, dropped). `false`, with
    /// a message, when `next` is invalid.
    fn try_replace(
        &mut self,
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
            self.message = Some(e.to_string());
            return false;
        }
        next.apply_skips(&SkipSelection::Terms(keep))
            .expect("edges were checked");
        // The kept edges add parameters: the size limit applies to the whole network.
        if let Err(e) = next.validate() {
            self.message = Some(e.to_string());
            return false;
        }
        self.topology = next;
        let edges = self.candidate_edges().len();
        if let Selection::Edge(i) = self.selection {
            self.selection = Selection::Edge(i.min(edges.saturating_sub(1)));
        }
        if let Selection::Layer(l) = self.selection {
            self.selection = Selection::Layer(l.min(self.layer_count() - 1));
        }
        true
    }

    fn resize_layer(&mut self, up: bool) {
        let Selection::Layer(layer) = self.selection else {
            self.message = Some("select a layer first (up/down)".into());
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
                    self.message = Some("only hidden layers and convolutions have a width".into());
                    return;
                };
                c.stages[stage][index] = resize(c.stages[stage][index], 8);
            }
            _ => {
                self.message = Some("only hidden layers and convolutions have a width".into());
                return;
            }
        }
        self.try_replace(next, Some);
    }

    fn insert_layer(&mut self) {
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
                let inserted = self.try_replace(next, |e| {
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
                    self.message = Some("select a convolution to insert after it".into());
                    return;
                };
                let width = c.stages[stage][index];
                c.stages[stage].insert(index + 1, width);
                let inserted = self.try_replace(next, |e| {
                    let shift = |n: usize| if n > layer { n + 1 } else { n };
                    Some(SkipEdge::new(shift(e.from), shift(e.to)))
                });
                if inserted {
                    self.selection = Selection::Layer(layer + 1);
                }
            }
        }
    }

    fn remove_layer(&mut self) {
        let Selection::Layer(layer) = self.selection else {
            self.message = Some("select a layer first (up/down)".into());
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
                    self.message = Some("a stage keeps at least one convolution".into());
                    return;
                }
            },
            _ => {
                self.message = Some("only hidden layers can be removed".into());
                return;
            }
        }
        self.try_replace(next, |e| {
            if e.from == layer || e.to == layer {
                return None;
            }
            let shift = |n: usize| if n > layer { n - 1 } else { n };
            Some(SkipEdge::new(shift(e.from), shift(e.to)))
        });
    }

    /// MLP ↔ CNN: the other family's topology as it was left (its default the first time).
    fn switch_model(&mut self) {
        let other = self
            .other_family
            .take()
            .unwrap_or_else(|| match self.topology {
                Topology::Mlp(_) => default_cnn(self.input, self.classes),
                Topology::Cnn(_) => default_mlp(self.input, self.classes),
            });
        self.other_family = Some(std::mem::replace(&mut self.topology, other));
        self.selection = Selection::Edge(0);
    }

    fn form_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Mode::Form(form) = &mut self.mode else {
            return Vec::new();
        };
        let typing = form.typing.is_some();
        match key.code {
            KeyCode::Char(c) if form.type_char(c) => {}
            KeyCode::Backspace if typing => {
                let text = form.typing.get_or_insert_with(String::new);
                text.pop();
                if text.is_empty() {
                    form.typing = None;
                }
                form.error = None;
            }
            // Esc leaves an entry first, then the form.
            KeyCode::Esc if typing => {
                form.typing = None;
                form.error = None;
            }
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Enter if typing => {
                form.commit();
            }
            KeyCode::Up | KeyCode::Char('k') | KeyCode::BackTab => form.step_field(false),
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => form.step_field(true),
            _ if typing => {}
            KeyCode::Left | KeyCode::Char('h') | KeyCode::Char('-') => form.adjust(false),
            KeyCode::Right | KeyCode::Char('l') | KeyCode::Char('+') | KeyCode::Char(' ') => {
                form.adjust(true)
            }
            KeyCode::Enter | KeyCode::Char('t') => {
                let form = form.clone();
                self.form = TrainForm {
                    error: None,
                    ..form.clone()
                };
                self.mode = Mode::Normal;
                return self.queue_run(form.config(), form.seeds);
            }
            _ => {}
        }
        Vec::new()
    }

    /// Asks the session to train the current topology with `config`, once per seed of
    /// `seed, seed + 1, ...` (`seeds` runs).
    pub fn queue_run(&mut self, config: TrainConfig, seeds: usize) -> Vec<Effect> {
        (0..seeds.max(1) as u64)
            .map_while(|k| config.seed.checked_add(k))
            .map(|seed| {
                let config = TrainConfig {
                    seed,
                    ..config.clone()
                };
                let experiment = Experiment::from_parts(
                    &self.topology,
                    self.dataset,
                    &config,
                    crate::tui::VAL_FRACTION,
                );
                Effect::Submit(Box::new(experiment))
            })
            .collect()
    }

    /// The session refused a run (too large, bad settings): say why.
    pub fn submit_failed(&mut self, message: String) {
        self.message = Some(format!("not started: {message}"));
    }

    fn row(&mut self, live: RunId) -> Option<&mut Run> {
        self.runs.iter_mut().find(|r| r.live == Some(live))
    }

    fn selected_live(&self) -> Option<(RunId, &RunState)> {
        let run = self.selected_run()?;
        Some((run.live?, &run.state))
    }

    fn pause_selected(&mut self) -> Vec<Effect> {
        match self.selected_live() {
            Some((id, RunState::Running)) => vec![Effect::Send(id, Command::Pause)],
            Some((id, RunState::Paused)) => vec![Effect::Send(id, Command::Resume)],
            _ => Vec::new(),
        }
    }

    fn stop_selected(&mut self) -> Vec<Effect> {
        match self.selected_live() {
            Some((id, state)) if state.is_active() => vec![Effect::Send(id, Command::Stop)],
            _ => Vec::new(),
        }
    }

    fn delete_selected(&mut self) -> Vec<Effect> {
        let effects = self.stop_selected();
        let Some(i) = self.selected_run else {
            return effects;
        };
        let run = self.runs.remove(i);
        self.selected_run = if self.runs.is_empty() {
            None
        } else {
            Some(i.min(self.runs.len() - 1))
        };
        self.message = Some(format!(
            "removed {} from the table; {}",
            run.name,
            files_note(&run)
        ));
        effects
    }

    /// Applies what the session reports about its runs.
    pub fn on_session(&mut self, event: SessionEvent) {
        if let Update::Queued(info) = event.update {
            let id = self.next_run_id;
            self.next_run_id += 1;
            self.runs.push(Run {
                id,
                live: Some(event.run),
                saved_id: None,
                name: format!("run-{id}"),
                experiment: info.experiment.clone(),
                resumed_after: Vec::new(),
                marked: false,
                topology: info.topology,
                config: info.config,
                state: RunState::Queued,
                epochs: Vec::new(),
                steps: Vec::new(),
                flows: Vec::new(),
                progress: None,
                test_accuracy: None,
                skips_enabled_after: None,
            });
            self.selected_run = Some(self.runs.len() - 1);
            return;
        }
        let Some(run) = self.row(event.run) else {
            return; // a deleted run's last words
        };
        match event.update {
            Update::Queued(_) => {}
            Update::Starting { saved } => {
                run.saved_id = saved.map(|s| s.id);
                if run.state == RunState::Queued {
                    run.state = RunState::Preparing;
                }
            }
            Update::Train(event) => {
                // The end arrives as `Update::Ended`, with the summary.
                match RunState::after(&event) {
                    Some(RunState::Ended(_)) | None => {}
                    Some(state) => run.state = state,
                }
                match event {
                    TrainEvent::Progress {
                        epoch,
                        step,
                        steps_per_epoch,
                        ..
                    } => run.progress = Some((epoch, step, steps_per_epoch)),
                    TrainEvent::Epoch(m) => {
                        run.progress = None;
                        run.epochs.push(m);
                    }
                    TrainEvent::Step(m) => run.steps.push(m),
                    TrainEvent::Flow(f) => run.flows.push(f),
                    TrainEvent::SkipsEnabled { after_epoch, .. } => {
                        run.skips_enabled_after = Some(after_epoch)
                    }
                    _ => {}
                }
            }
            Update::Ended { status, summary } => {
                run.progress = None;
                run.test_accuracy = summary.test_accuracy;
                let name = run.name.clone();
                run.state = RunState::Ended(status.clone());
                match status {
                    RunStatus::Diverged { step, loss, .. } => {
                        self.message = Some(format!("{name} diverged: loss {loss} at step {step}"))
                    }
                    RunStatus::Failed(m) => self.message = Some(format!("{name} failed: {m}")),
                    _ => {}
                }
            }
        }
    }

    pub fn handle_mouse(&mut self, mouse: MouseEvent) {
        if mouse.kind != MouseEventKind::Down(MouseButton::Left) || self.mode != Mode::Normal {
            return;
        }
        let at = Position::new(mouse.column, mouse.row);
        if let Some(&(_, i)) = self.hits.edges.iter().find(|(r, _)| r.contains(at)) {
            self.selection = Selection::Edge(i);
        } else if let Some(&(_, l)) = self.hits.layers.iter().find(|(r, _)| r.contains(at)) {
            self.selection = Selection::Layer(l);
        } else if let Some(&(_, i)) = self.hits.runs.iter().find(|(r, _)| r.contains(at)) {
            self.selected_run = Some(i);
            self.focus = Focus::Runs;
        }
    }
}

/// Where a run's files are, for the messages that remove it from the table (they never go).
pub fn files_note(run: &Run) -> String {
    match &run.saved_id {
        Some(id) => format!("its saved files ({id}) are kept"),
        None => "it was not saved".to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn app() -> App {
        App::new(ImageShape::new(1, 28, 28), 10, "builtin")
    }

    #[test]
    fn arrows_select_edges_and_space_toggles_them() {
        let mut app = app();
        assert_eq!(app.selected_edge(), Some(SkipEdge::new(0, 2)));
        app.handle_key(key(KeyCode::Right));
        assert_eq!(app.selected_edge(), Some(SkipEdge::new(0, 3)));
        app.handle_key(key(KeyCode::Char(' ')));
        assert!(app.topology.skips().contains(&SkipEdge::new(0, 3)));
        app.handle_key(key(KeyCode::Char(' ')));
        assert!(app.topology.skips().is_empty());
        // Wraps around.
        app.handle_key(key(KeyCode::Right));
        app.handle_key(key(KeyCode::Right));
        assert_eq!(app.selected_edge(), Some(SkipEdge::new(0, 2)));
        app.handle_key(key(KeyCode::Char('a')));
        assert_eq!(app.topology.skips().len(), 3);
        app.handle_key(key(KeyCode::Char('n')));
        assert!(app.topology.skips().is_empty());
    }

    #[test]
    fn an_esc_and_a_key_arriving_together_as_alt_key_are_both_pressed() {
        let mut app = app();
        app.handle_key(key(KeyCode::Char('?')));
        assert!(matches!(app.mode, Mode::Help));
        // Esc closes the help, then `?` opens it again.
        app.handle_key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::ALT));
        assert!(matches!(app.mode, Mode::Help));
        app.handle_key(key(KeyCode::Esc));
        // In the main view only the key counts (Esc there would ask to quit).
        app.handle_key(KeyEvent::new(KeyCode::Char(' '), KeyModifiers::ALT));
        assert!(matches!(app.mode, Mode::Normal));
        assert!(app.topology.skips().contains(&SkipEdge::new(0, 2)));
    }

    #[test]
    fn layers_can_be_resized_inserted_and_removed_keeping_edges() {
        let mut app = app();
        app.handle_key(key(KeyCode::Char('a')));
        app.handle_key(key(KeyCode::Down)); // input
        app.handle_key(key(KeyCode::Down)); // fc1
        app.handle_key(key(KeyCode::Char('+')));
        let Topology::Mlp(m) = &app.topology else {
            panic!()
        };
        assert_eq!(m.hidden, vec![144, 256]);
        app.handle_key(key(KeyCode::Char('i')));
        let Topology::Mlp(m) = &app.topology else {
            panic!()
        };
        assert_eq!(m.hidden, vec![144, 144, 256]);
        // Edges after the insertion point moved along: 0-2 -> 0-3 etc.
        let skips: Vec<String> = app.topology.skips().iter().map(|e| e.to_string()).collect();
        assert_eq!(skips, ["0-3", "0-4", "1-4"]);
        app.handle_key(key(KeyCode::Char('r')));
        let Topology::Mlp(m) = &app.topology else {
            panic!()
        };
        assert_eq!(m.hidden, vec![144, 256]);
        // `i` selected the new layer, so `r` took it out and the edges are as they were.
        let skips: Vec<String> = app.topology.skips().iter().map(|e| e.to_string()).collect();
        assert_eq!(skips, ["0-2", "0-3", "1-3"]);
        // Removing a layer that edges touch drops those edges.
        app.selection = Selection::Layer(1);
        app.handle_key(key(KeyCode::Char('r')));
        assert_eq!(
            app.topology.skips().len(),
            1,
            "edges touching the removed layer go"
        );
    }

    #[test]
    fn the_form_takes_typed_values_checks_them_and_hides_what_does_not_apply() {
        let mut app = app();
        let typed = |app: &mut App, text: &str| {
            for c in text.chars() {
                app.handle_key(key(KeyCode::Char(c)));
            }
        };
        let form = |app: &App| match &app.mode {
            Mode::Form(f) => f.clone(),
            other => panic!("{other:?}"),
        };
        app.handle_key(key(KeyCode::Char('t')));
        // Adam: no momentum field.
        assert!(!form(&app).fields().contains(&FormField::Momentum));
        app.handle_key(key(KeyCode::Down)); // lr
        typed(&mut app, "0.05");
        assert_eq!(form(&app).typing.as_deref(), Some("0.05"));
        app.handle_key(key(KeyCode::Enter));
        assert_eq!(form(&app).lr, 0.05);
        app.handle_key(key(KeyCode::Down));
        assert_eq!(
            form(&app).field,
            FormField::WeightDecay,
            "momentum is skipped"
        );
        typed(&mut app, "1e-4");
        app.handle_key(key(KeyCode::Down)); // a move sets it too
        assert_eq!(form(&app).weight_decay, 1e-4);
        assert_eq!(form(&app).field, FormField::Batch);
        // A value the rules refuse is named, and the form stays on the field.
        typed(&mut app, "0");
        app.handle_key(key(KeyCode::Down));
        let f = form(&app);
        assert_eq!(f.field, FormField::Batch);
        assert_eq!(f.error.as_deref(), Some("batch 0 must be at least 1"));
        assert_eq!(f.batch, 64);
        // Esc leaves the entry, not the form.
        app.handle_key(key(KeyCode::Esc));
        assert!(form(&app).typing.is_none() && form(&app).error.is_none());
        // SGD shows momentum, and checks it.
        app.handle_key(key(KeyCode::Up));
        app.handle_key(key(KeyCode::Up));
        app.handle_key(key(KeyCode::Up));
        assert_eq!(form(&app).field, FormField::Optimizer);
        app.handle_key(key(KeyCode::Right));
        assert!(form(&app).fields().contains(&FormField::Momentum));
        app.handle_key(key(KeyCode::Down));
        app.handle_key(key(KeyCode::Down));
        assert_eq!(form(&app).field, FormField::Momentum);
        typed(&mut app, "1.5");
        app.handle_key(key(KeyCode::Enter));
        assert_eq!(
            form(&app).error.as_deref(),
            Some("momentum 1.5 must be in [0, 1)")
        );
        for _ in 0..3 {
            app.handle_key(key(KeyCode::Backspace));
        }
        assert!(form(&app).typing.is_none(), "an emptied entry ends");
        typed(&mut app, "0.5");
        app.handle_key(key(KeyCode::Enter));
        assert_eq!(form(&app).momentum, 0.5);
        let effects = app.handle_key(key(KeyCode::Enter));
        let [Effect::Submit(experiment)] = &effects[..] else {
            panic!("{effects:?}")
        };
        assert_eq!(
            experiment.optimizer,
            Optimizer::Sgd {
                lr: 0.01,
                momentum: 0.5
            }
        );
        assert_eq!(experiment.weight_decay, 1e-4);
    }

    #[test]
    fn form_submits_runs_and_session_updates_drive_their_rows() {
        use crate::session::{RunInfo, SavedAt};
        let mut app = app();
        assert_eq!(app.handle_key(key(KeyCode::Char('t'))), vec![]);
        assert!(matches!(app.mode, Mode::Form(_)));
        app.handle_key(key(KeyCode::Down)); // lr
        app.handle_key(key(KeyCode::Right)); // doubled
        let effects = app.handle_key(key(KeyCode::Enter));
        let [Effect::Submit(experiment)] = &effects[..] else {
            panic!("{effects:?}")
        };
        assert_eq!(experiment.train_config().optimizer.lr(), 2e-3);
        assert_eq!(experiment.topology().unwrap(), app.topology);
        assert!(app.runs.is_empty(), "rows come from the session");
        // The session queues it as its run 7, then starts it: the row follows.
        let info = RunInfo {
            experiment: (**experiment).clone(),
            topology: app.topology.clone(),
            config: experiment.train_config(),
        };
        let update = |update| SessionEvent { run: 7, update };
        app.on_session(update(Update::Queued(Box::new(info))));
        assert_eq!(
            (app.runs[0].name.as_str(), &app.runs[0].state),
            ("run-1", &RunState::Queued)
        );
        let saved = SavedAt {
            id: "20261202-120000-mlp3-vanilla-s1".into(),
            dir: "saves/20261202-120000-mlp3-vanilla-s1".into(),
        };
        app.on_session(update(Update::Starting { saved: Some(saved) }));
        assert_eq!(
            app.runs[0].saved_id.as_deref(),
            Some("20261202-120000-mlp3-vanilla-s1")
        );
        app.on_session(update(Update::Train(TrainEvent::Started {
            params: 1,
            steps_per_epoch: 1,
            train_samples: 1,
            val_samples: 1,
            test_samples: 1,
        })));
        assert_eq!(app.runs[0].state, RunState::Running);
        // Quitting with active runs asks first.
        app.handle_key(key(KeyCode::Char('q')));
        assert_eq!(app.mode, Mode::ConfirmQuit);
        app.handle_key(key(KeyCode::Char('n')));
        assert_eq!(app.mode, Mode::Normal);
        // Pause, resume and stop go to the session's run.
        app.on_session(update(Update::Train(TrainEvent::Paused)));
        assert_eq!(
            app.handle_key(key(KeyCode::Char('p'))),
            vec![Effect::Send(7, Command::Resume)]
        );
        assert_eq!(
            app.handle_key(key(KeyCode::Char('x'))),
            vec![Effect::Send(7, Command::Stop)]
        );
        // `d` asks first, saying the files are kept; any key but y keeps the run.
        assert_eq!(app.handle_key(key(KeyCode::Char('d'))), vec![]);
        assert_eq!(app.mode, Mode::ConfirmDelete(0));
        app.handle_key(key(KeyCode::Char('n')));
        assert_eq!((app.mode.clone(), app.runs.len()), (Mode::Normal, 1));
        app.handle_key(key(KeyCode::Char('d')));
        let effects = app.handle_key(key(KeyCode::Char('y')));
        assert_eq!(effects, vec![Effect::Send(7, Command::Stop)]);
        assert!(app.runs.is_empty());
        assert_eq!(
            app.message.as_deref(),
            Some("removed run-1 from the table; its saved files (20261202-120000-mlp3-vanilla-s1) are kept")
        );
        // A deleted run's last words change nothing.
        let summary = crate::runs::Summary::new(
            &app.topology,
            "cpu",
            crate::provenance::Provenance::here("test"),
        );
        app.on_session(update(Update::Ended {
            status: RunStatus::Stopped,
            summary: Box::new(summary),
        }));
        assert!(app.runs.is_empty());
        assert_eq!(app.handle_key(key(KeyCode::Char('q'))), vec![Effect::Quit]);
    }

    #[test]
    fn model_switch_picks_a_cnn_the_input_allows() {
        let mut app = app();
        app.handle_key(key(KeyCode::Char('m')));
        let Topology::Cnn(c) = &app.topology else {
            panic!()
        };
        assert_eq!(c.stages.len(), 3, "the paper's CNN: 28 -> 14 -> 7 -> 4");
        assert!(app.topology.validate().is_ok());
        app.topology
            .apply_skips(&SkipSelection::Edges(vec![SkipEdge::new(1, 4)]))
            .unwrap();
        // Remove conv 2: conv 4 becomes conv 3 and the skip follows it.
        app.selection = Selection::Layer(2);
        app.handle_key(key(KeyCode::Char('r')));
        let Topology::Cnn(c) = &app.topology else {
            panic!()
        };
        assert_eq!(
            c.stages,
            vec![vec![32], vec![64, 64], vec![128, 128]],
            "{:?}",
            app.message
        );
        let skips: Vec<String> = app.topology.skips().iter().map(|e| e.to_string()).collect();
        assert_eq!(skips, ["1-3"]);
        // Insert after conv 1 again: the skip moves back to 1-4.
        app.selection = Selection::Layer(1);
        app.handle_key(key(KeyCode::Char('i')));
        let skips: Vec<String> = app.topology.skips().iter().map(|e| e.to_string()).collect();
        assert_eq!(skips, ["1-4"]);
        // Back to the MLP and to this CNN again: each family as it was left.
        let cnn = app.topology.clone();
        app.handle_key(key(KeyCode::Char('m')));
        assert_eq!(app.topology, default_mlp(app.input, app.classes));
        app.handle_key(key(KeyCode::Char('+')));
        let mlp = app.topology.clone();
        app.handle_key(key(KeyCode::Char('m')));
        assert_eq!(app.topology, cnn);
        app.handle_key(key(KeyCode::Char('m')));
        assert_eq!(app.topology, mlp);
    }

    #[test]
    fn inserting_then_removing_a_layer_restores_every_edge_and_its_kind() {
        let mut app = app();
        let mut t = Topology::Mlp(MlpSpec::new(784, vec![64; 4], 10));
        t.apply_skips(&"res:chain:2,0-3,1-4".parse().unwrap())
            .unwrap();
        app.topology = t.clone();
        for layer in 0..=4 {
            app.selection = Selection::Layer(layer);
            app.handle_key(key(KeyCode::Char('i')));
            assert_ne!(app.topology, t);
            app.handle_key(key(KeyCode::Char('r')));
            assert_eq!(app.topology, t, "after layer {layer}: {:?}", app.message);
        }
    }
}

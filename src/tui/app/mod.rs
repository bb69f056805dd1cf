//! The lab's router: which view has the keys and the screen. The main screen is two panels,
//! the topology editor and the runs table (Tab moves the focus between them); every other
//! view opens in front of it and closes back to it. The router keeps the views that live
//! across visits (the editor, the chart's settings, the flow's scroll, the form) and does
//! what needs more than one of them: start the form's runs on the editor's topology, load a
//! preset into both, quit. No terminal here: keys go in, [`Effect`]s come out.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use crate::experiment::Experiment;
use crate::session::SessionEvent;
use crate::topology::{ImageShape, SkipEdge};
use crate::train::Command;
use crate::tui::keys::Action;
use crate::tui::views::analysis::{
    Analysing, AnalysisKind, AnalysisRequest, AnalysisUpdate, StudiedRun,
};
use crate::tui::views::browser::{BrowserItem, RunBrowser};
use crate::tui::views::compare::CompareView;
use crate::tui::views::dialogs::{ConfirmDelete, ConfirmQuit, Filter, Help, SaveAs};
use crate::tui::views::diff::DiffView;
use crate::tui::views::flow::FlowView;
use crate::tui::views::landscape::LandscapeView;
use crate::tui::views::landscape::MAX_CURVES;
use crate::tui::views::lesion::LesionView;
use crate::tui::views::list::{self, ListPopup};
use crate::tui::views::similarity::SimilarityView;
use crate::tui::views::topology::TopologyView;
use crate::tui::views::usage::UsageView;
use crate::tui::views::{runs::RunsView, Opening, Reply, Request, View};

pub use crate::tui::context::{Colours, Context, Focus};
pub use crate::tui::run_list::{RowView, Run, RunList, RunState, SortKey};
pub use crate::tui::views::compare::ChartView;
pub use crate::tui::views::form::{FormField, TrainForm, MAX_FORM_SEEDS};
pub use crate::tui::views::list::PresetItem;
pub use crate::tui::views::topology::Selection;
pub use crate::tui::views::Effect;

/// Which view is in front of the main screen (the topology and runs panels).
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Normal,
    Help(Help),
    Form(TrainForm),
    ConfirmQuit(ConfirmQuit),
    /// "Remove this run from the table?"
    ConfirmDelete(ConfirmDelete),
    /// The compare chart (its settings stay with the router between visits).
    Compare,
    /// The preset picker.
    Presets(ListPopup<PresetItem>),
    /// "Save as preset": the name typed so far.
    SaveAs(SaveAs),
    /// The runs filter being typed.
    Filter(Filter),
    /// The selected run's gradient flow: layers by time (its scroll stays with the router).
    Flow,
    /// The run browser: saved runs to load into the runs table.
    Browser(Box<RunBrowser>),
    /// The selected run's configuration against another run's.
    Diff(DiffView),
    /// The selected run's lesion study.
    Lesion(LesionView),
    /// The selected run's edge usage.
    Usage(UsageView),
    /// The selected run's layer similarity (CKA).
    Similarity(SimilarityView),
    /// The selected run's loss landscape.
    Landscape(LandscapeView),
}

/// The whole lab.
#[derive(Clone, Debug)]
pub struct App {
    /// What every view shares (the runs among it).
    pub cx: Context,
    /// The topology editor (the main screen's upper panel).
    pub editor: TopologyView,
    /// The runs table (the main screen's lower panel).
    pub table: RunsView,
    pub compare: CompareView,
    pub flow: FlowView,
    /// The train form as last submitted (the next `t` opens it so).
    pub form: TrainForm,
    /// The view in front of the main screen.
    pub mode: Mode,
    /// The signal (SIGTERM, SIGHUP, ...) that closed the lab, if one did.
    pub ended_by_signal: Option<i32>,
}

impl App {
    pub fn new(input: ImageShape, classes: usize, data_name: &str) -> Self {
        Self {
            cx: Context::new(input, classes, data_name),
            editor: TopologyView::new(input, classes),
            table: RunsView::default(),
            compare: CompareView::default(),
            flow: FlowView::default(),
            form: TrainForm::default(),
            mode: Mode::Normal,
            ended_by_signal: None,
        }
    }

    pub fn selected_edge(&self) -> Option<SkipEdge> {
        self.editor.selected_edge()
    }

    /// The runs table's rows: filtered, grouped by configuration when asked, sorted.
    pub fn rows(&self) -> Vec<RowView> {
        self.cx.runs.rows()
    }

    /// The view in front of the main screen (if any) and the context it works on.
    pub fn front(&mut self) -> (Option<&mut dyn View>, &mut Context) {
        let view: &mut dyn View = match &mut self.mode {
            Mode::Normal => return (None, &mut self.cx),
            Mode::Help(v) => v,
            Mode::Form(v) => v,
            Mode::ConfirmQuit(v) => v,
            Mode::ConfirmDelete(v) => v,
            Mode::Compare => &mut self.compare,
            Mode::Presets(v) => v,
            Mode::SaveAs(v) => v,
            Mode::Filter(v) => v,
            Mode::Flow => &mut self.flow,
            Mode::Browser(v) => v.as_mut(),
            Mode::Diff(v) => v,
            Mode::Lesion(v) => v,
            Mode::Usage(v) => v,
            Mode::Similarity(v) => v,
            Mode::Landscape(v) => v,
        };
        (Some(view), &mut self.cx)
    }

    /// The main screen's panels, the focused one first, and the context.
    pub fn panels(&mut self) -> ([&mut dyn View; 2], &mut Context) {
        let panels: [&mut dyn View; 2] = match self.cx.focus {
            Focus::Topology => [&mut self.editor, &mut self.table],
            Focus::Runs => [&mut self.table, &mut self.editor],
        };
        (panels, &mut self.cx)
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return self.request(Request::Quit);
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
        let reply = match self.front() {
            (Some(view), cx) => view.key(key, cx),
            (None, _) => return self.main_key(key),
        };
        self.reply(reply)
    }

    /// A key on the main screen: the focused panel's, else the other panel's, else the lab's.
    fn main_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        self.cx.message = None;
        let Some(action) = self.cx.keys.action(key.code) else {
            return Vec::new();
        };
        let ([first, second], cx) = self.panels();
        let mut reply = first.key(key, cx);
        // Up, Down and Space belong to the focused panel alone.
        let panel_only = matches!(action, Action::Up | Action::Down | Action::Toggle);
        if matches!(reply, Reply::Ignored) && !panel_only {
            reply = second.key(key, cx);
        }
        if !matches!(reply, Reply::Ignored) {
            return self.reply(reply);
        }
        match action {
            Action::Quit => return self.request(Request::Quit),
            Action::Help => self.mode = Mode::Help(Help),
            Action::Compare => self.mode = Mode::Compare,
            Action::Flow => self.mode = Mode::Flow,
            Action::Diff => self.mode = Mode::Diff(DiffView::new(&self.cx.runs)),
            Action::Lesion => return self.open_analysis(AnalysisKind::Lesion),
            Action::Usage => return self.open_analysis(AnalysisKind::Usage),
            Action::Similarity => return self.open_analysis(AnalysisKind::Similarity),
            Action::Landscape => return self.open_analysis(AnalysisKind::Landscape),
            Action::SwitchPanel => {
                self.cx.focus = match self.cx.focus {
                    Focus::Topology => Focus::Runs,
                    Focus::Runs => Focus::Topology,
                };
                if self.cx.focus == Focus::Runs && self.cx.runs.selected.is_none() {
                    self.cx.runs.step(0);
                }
            }
            Action::Train => self.mode = Mode::Form(self.form.clone()),
            Action::OpenPreset => return vec![Effect::ListPresets],
            Action::SavePreset => self.mode = Mode::SaveAs(SaveAs::default()),
            Action::LoadSaved => return vec![Effect::ListSavedRuns],
            // The chart's own keys mean nothing here.
            _ => {}
        }
        Vec::new()
    }

    /// Does what a view replied.
    fn reply(&mut self, reply: Reply) -> Vec<Effect> {
        match reply {
            Reply::Ignored | Reply::Stay => Vec::new(),
            Reply::Effects(effects) => effects,
            Reply::Close => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            Reply::Open(Opening::Filter) => {
                self.mode = Mode::Filter(Filter(self.cx.runs.filter.clone()));
                Vec::new()
            }
            Reply::Open(Opening::ConfirmDelete(i)) => {
                self.mode = Mode::ConfirmDelete(ConfirmDelete(i));
                Vec::new()
            }
            Reply::Then(request) => {
                // The train form is kept as it was submitted, for the next `t`.
                if let Mode::Form(form) = std::mem::replace(&mut self.mode, Mode::Normal) {
                    if matches!(request, Request::Train { .. }) {
                        self.form = TrainForm {
                            error: None,
                            ..form
                        };
                    }
                }
                self.request(request)
            }
        }
    }

    /// What only the router can do.
    fn request(&mut self, request: Request) -> Vec<Effect> {
        match request {
            Request::Quit if self.cx.runs.has_active() => {
                self.mode = Mode::ConfirmQuit(ConfirmQuit);
                Vec::new()
            }
            // Quitting stops every run (the session records them as stopped).
            Request::Quit | Request::QuitNow => vec![Effect::Quit],
            Request::Train { config, seeds } => self.queue_run(config, seeds),
            Request::LoadPreset(name, experiment) => {
                self.load_experiment(&name, &experiment);
                Vec::new()
            }
            Request::LoadRuns(runs) => {
                self.load_runs(runs);
                Vec::new()
            }
            Request::RemoveRun(i) => self.remove_run(i),
            Request::Effects(effects) => effects,
        }
    }

    pub fn show_presets(&mut self, items: Vec<PresetItem>) {
        self.mode = Mode::Presets(list::presets(items));
    }

    /// Puts a preset's topology into the editor and its hyperparameters into the form, when
    /// it fits the data the lab has.
    pub fn load_experiment(&mut self, name: &str, e: &Experiment) {
        let cx = &mut self.cx;
        let (shape, classes) = (e.dataset.input_shape(), e.dataset.classes());
        if shape != cx.input || classes != cx.classes {
            cx.say(format!(
                "preset {name} is for {} ({shape}, {classes} classes); this lab has {} ({}, {} classes): start it with --dataset {}",
                e.dataset, cx.data_name, cx.input, cx.classes, e.dataset
            ));
            return;
        }
        if let Err(err) = self.editor.load(e) {
            cx.say(format!("preset {name}: {err}"));
            return;
        }
        self.form.load(e);
        cx.say(format!(
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
            &self.editor.topology,
            self.cx.dataset,
            &self.form.config(),
            crate::tui::context::VAL_FRACTION,
        )
    }

    pub fn preset_saved(&mut self, result: Result<std::path::PathBuf, String>) {
        self.cx.say(match result {
            Ok(path) => format!("saved preset {}", path.display()),
            Err(e) => format!("preset not saved: {e}"),
        });
    }

    /// Opens the run browser on `items` (the runs already in the table marked).
    pub fn show_saved_runs(&mut self, items: Vec<BrowserItem>) {
        let loaded = self
            .cx
            .runs
            .all
            .iter()
            .filter_map(|r| r.saved_id.clone())
            .collect();
        let mut browser = RunBrowser::new(items, loaded);
        let folders: Vec<String> = self
            .cx
            .saved_run_folders()
            .iter()
            .map(|f| format!("{}/", f.display()).replace("//", "/"))
            .collect();
        browser.folders = folders.join(", ");
        self.mode = Mode::Browser(Box::new(browser));
        self.cx.message = None;
    }

    /// Adds the browser's chosen runs to the table (those there already are selected).
    fn load_runs(&mut self, runs: Vec<Run>) {
        let (total, before) = (runs.len(), self.cx.runs.all.len());
        for run in runs {
            let message = self.cx.runs.add_saved(run);
            self.cx.say(message);
        }
        // One run: `add_saved` said what became of it.
        let added = self.cx.runs.all.len() - before;
        if total > 1 {
            self.cx.say(match total - added {
                0 => format!("loaded {added} runs"),
                n => format!("loaded {added} runs ({n} loaded already)"),
            });
        } else if total == 0 {
            self.cx.say("nothing loaded: that run cannot be read");
        }
    }

    /// Asks the session to train the current topology with `config`, once per seed of
    /// `seed, seed + 1, ...` (`seeds` runs).
    pub fn queue_run(
        &mut self,
        config: crate::hyperparams::TrainConfig,
        seeds: usize,
    ) -> Vec<Effect> {
        (0..seeds.max(1) as u64)
            .map_while(|k| config.seed.checked_add(k))
            .map(|seed| {
                let config = crate::hyperparams::TrainConfig {
                    seed,
                    ..config.clone()
                };
                let experiment = Experiment::from_parts(
                    &self.editor.topology,
                    self.cx.dataset,
                    &config,
                    crate::tui::context::VAL_FRACTION,
                );
                Effect::Submit(Box::new(experiment))
            })
            .collect()
    }

    /// The session refused a run (too large, bad settings): say why.
    pub fn submit_failed(&mut self, message: String) {
        self.cx.say(format!("not started: {message}"));
    }

    /// Takes run `i` out of the table, stopping it first if it trains.
    fn remove_run(&mut self, i: usize) -> Vec<Effect> {
        let Some(run) = self.cx.runs.all.get(i) else {
            return Vec::new();
        };
        let effects = match (run.live, run.state.is_active()) {
            (Some(id), true) => vec![Effect::Send(id, Command::Stop)],
            _ => Vec::new(),
        };
        let run = self.cx.runs.remove(i);
        self.cx.say(format!(
            "removed {} from the table; {}",
            run.name,
            run.files_note()
        ));
        effects
    }

    /// Applies what the session reports about its runs.
    pub fn on_session(&mut self, event: SessionEvent) {
        if let Some(message) = self.cx.runs.on_session(event) {
            self.cx.say(message);
        }
    }

    /// Applies what changed in the watched folders; the latest news goes in the header.
    pub fn on_watch(&mut self, events: Vec<crate::watch::WatchEvent>) {
        for event in events {
            if let Some(message) = self.cx.runs.on_watch(event) {
                self.cx.say(message);
            }
        }
    }

    /// Opens an analysis view of the selected run and asks the event loop for the study.
    fn open_analysis(&mut self, kind: AnalysisKind) -> Vec<Effect> {
        let runs = &self.cx.runs;
        let marked: Vec<usize> = (0..runs.all.len())
            .filter(|&i| runs.all[i].marked)
            .collect();
        // CKA of two runs: the two marked ones, when exactly two are; the landscape draws
        // every marked run's curve; otherwise the selected run.
        let chosen: Vec<usize> = match kind {
            AnalysisKind::Similarity if marked.len() == 2 => marked,
            AnalysisKind::Landscape if !marked.is_empty() => {
                marked.into_iter().take(MAX_CURVES).collect()
            }
            _ => runs.selected.into_iter().collect(),
        };
        if chosen.is_empty() {
            self.cx
                .say("select a run first (J/K): the analyses study a trained run");
            return Vec::new();
        }
        let mut studied = Vec::with_capacity(chosen.len());
        for &i in &chosen {
            let run = &runs.all[i];
            let Some(id) = run.saved_id.clone() else {
                let message = format!(
                    "{} has no saved weights to analyse (the lab saves runs unless --no-save; a run saves after its first epoch)",
                    run.name
                );
                self.cx.say(message);
                return Vec::new();
            };
            // Two runs compared: each against another seed of itself, as the ceiling.
            let twin = (kind == AnalysisKind::Similarity && chosen.len() == 2)
                .then(|| runs.seed_twin(i))
                .flatten()
                .and_then(|j| {
                    Some(Box::new(StudiedRun {
                        id: runs.all[j].saved_id.clone()?,
                        name: runs.all[j].name.clone(),
                        twin: None,
                    }))
                });
            studied.push(StudiedRun {
                id,
                name: run.name.clone(),
                twin,
            });
        }
        let request = AnalysisRequest {
            ticket: self.cx.next_ticket(),
            kind,
            runs: studied,
            folders: self.cx.analysis_folders(),
        };
        self.mode = match kind {
            AnalysisKind::Lesion => Mode::Lesion(LesionView::new(&request)),
            AnalysisKind::Usage => Mode::Usage(UsageView::new(&request)),
            AnalysisKind::Similarity => Mode::Similarity(SimilarityView::new(&request)),
            AnalysisKind::Landscape | AnalysisKind::LandscapeMap => {
                Mode::Landscape(LandscapeView::new(&request))
            }
        };
        vec![Effect::Analyse(request)]
    }

    /// Hands an analysis's progress or result to its view, if the view still waits for it.
    pub fn on_analysis(&mut self, update: AnalysisUpdate) {
        let view: &mut dyn Analysing = match &mut self.mode {
            Mode::Lesion(v) => v,
            Mode::Usage(v) => v,
            Mode::Similarity(v) => v,
            Mode::Landscape(v) => v,
            _ => return,
        };
        // Not a closed view's, nor an earlier request's.
        if view.ticket() == update.ticket() {
            view.take(update);
        }
    }

    pub fn handle_mouse(&mut self, mouse: MouseEvent) {
        if mouse.kind != MouseEventKind::Down(MouseButton::Left) || self.mode != Mode::Normal {
            return;
        }
        let at = Position::new(mouse.column, mouse.row);
        let cx = &mut self.cx;
        if !self.editor.click(at, cx) {
            self.table.click(at, cx);
        }
    }
}

#[cfg(test)]
mod tests;

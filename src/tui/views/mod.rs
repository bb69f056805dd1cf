//! The lab's views. Each owns its state, what its keys do (from the one key table) and its
//! drawing, and contributes its own hint bar; the router (`tui::app`) only decides which view
//! has the keys and the screen, and no view names it. A new view is a file here, a variant of
//! the router's `Mode` (and its line in `App::front`) and its rows in the key table.
//!
//! Views talk to the router in [`Reply`]s and to the event loop in [`Effect`]s; what they
//! share (the runs, the message, the key table) is the [`Context`].

pub mod analysis;
pub mod browser;
pub mod compare;
pub mod dialogs;
pub mod diff;
pub mod flow;
pub mod form;
pub mod landscape;
pub mod lesion;
pub mod list;
pub mod runs;
pub mod similarity;
pub mod topology;
pub mod usage;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Position, Rect};
use ratatui::text::Line;
use ratatui::Frame;

use crate::experiment::Experiment;
use crate::hyperparams::TrainConfig;
use crate::session::RunId;
use crate::train::Command;
use crate::tui::context::Context;
use crate::tui::keys::Action;
use crate::tui::run_list::Run;

/// What a view does: keys in, a reply out; a drawing; the hint bar while it has the keys.
pub trait View {
    /// What `key` does here.
    fn key(&mut self, key: KeyEvent, cx: &mut Context) -> Reply;
    /// Draws the view into `area` (the whole screen, or the main screen it covers).
    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context);
    /// The hint bar while this view has the keys (`None`: the main screen's stays, under a
    /// question or the help).
    fn hints(&self, cx: &Context) -> Option<Line<'static>>;
    /// Whether the view takes the whole screen; otherwise it is drawn over the main one.
    fn full_screen(&self) -> bool {
        false
    }
    /// A left click at `at`: `true` when it landed on something of this view's.
    fn click(&mut self, _at: Position, _cx: &mut Context) -> bool {
        false
    }
}

/// What a key an analysis view does not take does: the quit key quits (asking while runs
/// train), any other closes the view and cancels its analysis.
pub fn leave_analysis(key: KeyEvent, cx: &Context) -> Reply {
    match cx.keys.action(key.code) {
        Some(Action::Quit) if key.code != KeyCode::Esc => Reply::Then(Request::Quit),
        _ => Reply::Then(Request::Effects(vec![Effect::CancelAnalysis])),
    }
}

/// What a view asks of the router after a key.
#[derive(Debug)]
pub enum Reply {
    /// Not a key this view takes (the main screen tries its other panel, then its own keys).
    Ignored,
    /// Taken; the view stays.
    Stay,
    /// Taken; the view stays and the event loop does these.
    Effects(Vec<Effect>),
    /// The view closes: back to the main screen.
    Close,
    /// Open a view in front (what a main-screen panel opens).
    Open(Opening),
    /// The view closes and the lab does this.
    Then(Request),
}

/// What only the router can do for a view: it needs what no single view holds.
#[derive(Debug)]
pub enum Request {
    /// Quit, asking first while runs train.
    Quit,
    /// Quit now (the user said yes).
    QuitNow,
    /// Start these runs on the topology being edited: one per seed from `config.seed` on.
    Train { config: TrainConfig, seeds: usize },
    /// Put a preset's topology in the editor and its hyperparameters in the form.
    LoadPreset(String, Box<Experiment>),
    /// Add saved runs to the table.
    LoadRuns(Vec<Run>),
    /// Take run `i` out of the table, stopping it if it trains.
    RemoveRun(usize),
    /// Hand these to the event loop.
    Effects(Vec<Effect>),
}

/// What the event loop must do after the state changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Hand this experiment to the session (it answers with `App::on_session` updates, or an
    /// error for `App::submit_failed`).
    Submit(Box<Experiment>),
    /// A command for the session's run.
    Send(RunId, Command),
    /// List the presets folder (answered with `App::show_presets`).
    ListPresets,
    /// Write the current topology and form as a preset of this name
    /// (`App::preset_saved`).
    SavePreset(String),
    /// List saved runs (`App::show_saved_runs`).
    ListSavedRuns,
    /// Write the compare chart's runs as long-format CSV (answered in the message).
    ExportCsv(String),
    /// Compute an analysis of a saved run off the screen's thread (answered with
    /// `App::on_analysis`, progress first).
    Analyse(analysis::AnalysisRequest),
    /// Stop the analysis being computed, if any (its view closed).
    CancelAnalysis,
    Quit,
}

/// A view a panel of the main screen opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opening {
    /// The runs filter, starting from the filter in effect.
    Filter,
    /// "Remove this run from the table?" (an index into the runs).
    ConfirmDelete(usize),
}

//! The lab's runs: the session's runs it follows and the saved runs loaded from disk, the
//! one selected, and the table's order, filter and seed grouping that every view showing
//! runs (the runs panel, the compare chart, gradient flow, the diff) reads. No terminal here.

use crate::compare::{self, Facet};
use crate::experiment::Experiment;
use crate::hyperparams::TrainConfig;
use crate::runs::SavedRun;
pub use crate::session::RunState;
use crate::session::{RunId, SessionEvent, Update};
use crate::topology::{SkipEdge, Topology};
use crate::train::{EpochMetrics, FlowPoint, RunStatus, StepMetrics, TrainEvent};
use crate::watch::{Change, WatchEvent};
use std::time::Duration;

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
    /// Trained by another process and followed from its folder (`--watch`).
    pub watched: bool,
    /// Watched, it says it trains but its files have not changed for a while.
    pub stalled: bool,
}

impl Run {
    /// A saved run as the lab shows it: its record as it stands (`Err`: its topology is
    /// invalid).
    pub fn from_saved(saved: &SavedRun) -> Result<Run, String> {
        let topology = saved.experiment.topology().map_err(|e| e.to_string())?;
        Ok(Run {
            id: 0,
            live: None,
            saved_id: Some(saved.id.clone()),
            name: saved.id.clone(),
            experiment: saved.experiment.clone(),
            resumed_after: saved.summary.resumed_after.clone(),
            marked: false,
            topology,
            config: saved.experiment.train_config(),
            state: saved.summary.status.clone(),
            epochs: saved.epochs.iter().map(|r| r.to_metrics()).collect(),
            steps: saved.steps.clone(),
            flows: saved.flows.clone(),
            progress: None,
            test_accuracy: saved.summary.test_accuracy,
            skips_enabled_after: saved.summary.skips_enabled_after,
            watched: false,
            stalled: false,
        })
    }

    /// The word the status column shows: the state's, `stalled`, or `interrupted`.
    pub fn status_label(&self) -> String {
        match &self.state {
            RunState::Ended(RunStatus::Failed(why)) if why == crate::runs::INTERRUPTED => {
                "interrupted".into()
            }
            state if state.is_active() && self.stalled => "stalled".into(),
            state => state.label(),
        }
    }

    /// What a trainer (this lab's, or another process's through its folder) reported, but
    /// its end (which comes with the summary).
    fn apply(&mut self, event: TrainEvent) {
        match RunState::after(&event) {
            Some(RunState::Ended(_)) | None => {}
            Some(state) => self.state = state,
        }
        match event {
            TrainEvent::Progress {
                epoch,
                step,
                steps_per_epoch,
                ..
            } => self.progress = Some((epoch, step, steps_per_epoch)),
            TrainEvent::Epoch(m) => {
                self.progress = None;
                self.epochs.push(m);
            }
            TrainEvent::Step(m) => self.steps.push(m),
            TrainEvent::Flow(f) => self.flows.push(f),
            TrainEvent::SkipsEnabled { after_epoch, .. } => {
                self.skips_enabled_after = Some(after_epoch)
            }
            _ => {}
        }
    }

    /// The run ended so: what the user should hear of it (it diverged or failed).
    fn end(&mut self, status: RunStatus, test_accuracy: Option<f64>) -> Option<String> {
        self.progress = None;
        self.stalled = false;
        self.test_accuracy = test_accuracy;
        self.state = RunState::Ended(status.clone());
        let name = &self.name;
        match status {
            RunStatus::Diverged { step, loss, .. } => {
                Some(format!("{name} diverged: loss {loss} at step {step}"))
            }
            RunStatus::Failed(m) => Some(format!("{name} failed: {m}")),
            _ => None,
        }
    }

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
    pub fn facets(&self) -> Vec<Facet> {
        compare::facets(&self.experiment, &self.resumed_after)
    }
    /// Where its files are, for the messages that remove it from the table (they never go).
    pub fn files_note(&self) -> String {
        match &self.saved_id {
            Some(id) => format!("its saved files ({id}) are kept"),
            None => "it was not saved".to_string(),
        }
    }
}

/// What the runs table is sorted by (`s` steps through them, `v` reverses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortKey {
    /// The order runs were started in.
    #[default]
    Run,
    /// Best validation accuracy, best first.
    BestVal,
    SecondsPerEpoch,
    Description,
    Status,
    Params,
}

impl SortKey {
    pub fn next(self) -> Self {
        match self {
            SortKey::Run => SortKey::BestVal,
            SortKey::BestVal => SortKey::SecondsPerEpoch,
            SortKey::SecondsPerEpoch => SortKey::Description,
            SortKey::Description => SortKey::Status,
            SortKey::Status => SortKey::Params,
            SortKey::Params => SortKey::Run,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Run => "run",
            SortKey::BestVal => "best val",
            SortKey::SecondsPerEpoch => "s/epoch",
            SortKey::Description => "description",
            SortKey::Status => "status",
            SortKey::Params => "params",
        }
    }
}

/// One row of the runs table: a run, or a seed group (runs that differ only in their seed).
#[derive(Clone, Debug, PartialEq)]
pub struct RowView {
    /// Indices into [`RunList::all`], in run order.
    pub members: Vec<usize>,
    /// The members by seed: runs that repeat a seed are one sample (a single run: itself).
    pub samples: Vec<Vec<usize>>,
    /// What sets it apart from the other runs (a group: without the seed).
    pub description: String,
}

impl RowView {
    fn single(i: usize, description: String) -> Self {
        RowView {
            members: vec![i],
            samples: vec![vec![i]],
            description,
        }
    }

    pub fn is_group(&self) -> bool {
        self.members.len() > 1
    }

    /// Runs beyond the first of their seed.
    pub fn repeats(&self) -> usize {
        self.members.len() - self.samples.len()
    }
}

/// The runs, the selected one, and how the table shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct RunList {
    pub all: Vec<Run>,
    /// An index into `all`.
    pub selected: Option<usize>,
    /// The next row's number.
    pub next_id: usize,
    /// The table's order, and whether it is reversed.
    pub sort: (SortKey, bool),
    pub filter: String,
    /// Runs that differ only in their seed as one row.
    pub grouped: bool,
}

impl Default for RunList {
    fn default() -> Self {
        Self {
            all: Vec::new(),
            selected: None,
            next_id: 1,
            sort: (SortKey::Run, false),
            filter: String::new(),
            grouped: false,
        }
    }
}

fn mean_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let values: Vec<f64> = values.flatten().collect();
    (!values.is_empty()).then(|| compare::mean_sd(&values).0)
}

impl RunList {
    pub fn selected(&self) -> Option<&Run> {
        self.selected.and_then(|i| self.all.get(i))
    }

    /// Whether a run this lab trains is active (watched runs are other processes').
    pub fn has_active(&self) -> bool {
        self.all
            .iter()
            .any(|r| r.live.is_some() && r.state.is_active())
    }

    /// What every run in the lab shares (the runs panel's title).
    pub fn common(&self) -> String {
        let facets: Vec<Vec<Facet>> = self.all.iter().map(Run::facets).collect();
        compare::describe(&facets).common
    }

    /// Another run of run `i`'s configuration trained from another seed, with saved
    /// weights: how alike two runs of one configuration are is the similarity's ceiling.
    pub fn seed_twin(&self, i: usize) -> Option<usize> {
        let facets: Vec<Vec<Facet>> = self.all.iter().map(Run::facets).collect();
        let configuration = compare::configurations(&facets)
            .into_iter()
            .find(|c| c.members.contains(&i))?;
        configuration
            .samples
            .iter()
            .filter(|sample| !sample.contains(&i))
            .flatten()
            .copied()
            .find(|&j| self.all[j].saved_id.is_some())
    }

    /// A row's best validation accuracies, one per sample (seed) that has an epoch.
    pub fn best_vals(&self, row: &RowView) -> Vec<f64> {
        compare::sample_means(&row.samples, |i| self.all[i].best_val())
    }

    /// The table's rows: runs matching the filter (any part of their name, saved id,
    /// description or network), grouped by configuration if asked, in the chosen order.
    /// Descriptions compare every run in the lab, so they do not change as the filter does.
    pub fn rows(&self) -> Vec<RowView> {
        let facets: Vec<Vec<Facet>> = self.all.iter().map(Run::facets).collect();
        let each = compare::describe(&facets).each;
        // Groups are described without their seeds.
        let group_each = compare::describe_configurations(&facets).each;
        let needle = self.filter.to_lowercase();
        let visible: Vec<usize> = (0..self.all.len())
            .filter(|&i| {
                let run = &self.all[i];
                needle.is_empty()
                    || [
                        run.name.as_str(),
                        run.saved_id.as_deref().unwrap_or_default(),
                        &each[i],
                        &run.topology.summary(),
                    ]
                    .iter()
                    .any(|text| text.to_lowercase().contains(&needle))
            })
            .collect();
        let mut rows: Vec<RowView> = if self.grouped {
            let shown: Vec<Vec<Facet>> = visible.iter().map(|&i| facets[i].clone()).collect();
            compare::configurations(&shown)
                .into_iter()
                .map(|c| {
                    let to_run = |k: &usize| visible[*k];
                    let members: Vec<usize> = c.members.iter().map(to_run).collect();
                    let samples = c
                        .samples
                        .iter()
                        .map(|s| s.iter().map(to_run).collect())
                        .collect();
                    let description = if members.len() > 1 {
                        group_each[members[0]].clone()
                    } else {
                        each[members[0]].clone()
                    };
                    RowView {
                        members,
                        samples,
                        description,
                    }
                })
                .collect()
        } else {
            visible
                .into_iter()
                .map(|i| RowView::single(i, each[i].clone()))
                .collect()
        };
        let (key, reversed) = self.sort;
        let number = |row: &RowView| -> f64 {
            let runs = row.members.iter().map(|&i| &self.all[i]);
            let value = match key {
                SortKey::BestVal => mean_of(runs.map(Run::best_val)).map(|v| -v),
                SortKey::SecondsPerEpoch => mean_of(runs.map(Run::mean_epoch_seconds)),
                SortKey::Params => mean_of(runs.map(|r| Some(r.topology.param_count() as f64))),
                _ => Some(row.members[0] as f64),
            };
            // Rows without a value go last.
            value.unwrap_or(f64::INFINITY)
        };
        match key {
            SortKey::Description => rows.sort_by(|a, b| a.description.cmp(&b.description)),
            SortKey::Status => rows.sort_by_key(|r| self.status_label(r)),
            _ => rows.sort_by(|a, b| number(a).total_cmp(&number(b))),
        }
        if reversed {
            rows.reverse();
        }
        rows
    }

    /// A row's status: its run's, or for a group how many are at which state (`3 done`,
    /// `1 running 2 done`).
    pub fn status_label(&self, row: &RowView) -> String {
        if !row.is_group() {
            return self.all[row.members[0]].status_label();
        }
        let mut counts: Vec<(String, usize)> = Vec::new();
        for &i in &row.members {
            let label = self.all[i].status_label();
            match counts.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += 1,
                None => counts.push((label, 1)),
            }
        }
        counts
            .iter()
            .map(|(l, n)| format!("{n} {l}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A row's curve of `pick` per epoch: its run's, or its group's mean epoch by epoch.
    pub fn row_curve(&self, row: &RowView, pick: fn(&EpochMetrics) -> f64) -> Vec<f64> {
        let runs: Vec<&Run> = row.members.iter().map(|&i| &self.all[i]).collect();
        let len = runs.iter().map(|r| r.epochs.len()).min().unwrap_or(0);
        (0..len)
            .map(|e| runs.iter().map(|r| pick(&r.epochs[e])).sum::<f64>() / runs.len() as f64)
            .collect()
    }

    /// Moves the selection to the next (or previous) row of the table as shown.
    pub fn step(&mut self, delta: isize) {
        let rows = self.rows();
        if rows.is_empty() {
            return;
        }
        let at = self
            .selected
            .and_then(|i| rows.iter().position(|r| r.members.contains(&i)));
        let next = match at {
            Some(k) => (k as isize + delta).clamp(0, rows.len() as isize - 1) as usize,
            None => 0,
        };
        self.selected = Some(rows[next].members[0]);
    }

    /// The selection follows the filter: a hidden run is not the one keys act on.
    pub fn keep_selection_shown(&mut self) {
        let rows = self.rows();
        let visible = |i: usize| rows.iter().any(|r| r.members.contains(&i));
        if self.selected.is_some_and(|i| !visible(i)) {
            self.selected = rows.first().map(|r| r.members[0]);
        }
    }

    /// Space in the runs panel: the selected row (every run of a group) in or out of the
    /// chart. Says how many are marked.
    pub fn mark_selected(&mut self) -> Option<String> {
        let i = self.selected?;
        let members = self
            .rows()
            .into_iter()
            .find(|r| r.members.contains(&i))
            .map_or(vec![i], |r| r.members);
        let on = !self.all[i].marked;
        for m in members {
            self.all[m].marked = on;
        }
        Some(match self.all.iter().filter(|r| r.marked).count() {
            0 => "no run marked: the chart shows every run in the table".into(),
            n => format!("{n} run(s) marked for the chart (c)"),
        })
    }

    /// Takes run `i` out of the table (its files stay), keeping a selection.
    pub fn remove(&mut self, i: usize) -> Run {
        let run = self.all.remove(i);
        self.selected = match self.all.is_empty() {
            true => None,
            false => Some(i.min(self.all.len() - 1)),
        };
        run
    }

    /// Adds a finished run read from disk, selected. A run already in the table (loaded, or
    /// trained here) is selected, not added again: a run is one sample however often it is
    /// loaded. Says what became of it.
    pub fn add_saved(&mut self, mut run: Run) -> String {
        let here = self
            .all
            .iter()
            .position(|r| r.saved_id.is_some() && r.saved_id == run.saved_id);
        if let Some(i) = here {
            self.selected = Some(i);
            return format!("{} is loaded already (as {})", run.name, self.all[i].name);
        }
        run.id = self.next_id;
        run.live = None;
        self.next_id += 1;
        // A short name for the table's narrow column; the id shows when it is selected.
        run.name = format!("run-{}", run.id);
        let message = format!(
            "loaded {} as {}",
            run.saved_id.as_deref().unwrap_or("a saved run"),
            run.name
        );
        self.all.push(run);
        self.selected = Some(self.all.len() - 1);
        message
    }

    /// Applies what the session reports about its runs; what the user should hear of it
    /// (a run diverged or failed) comes back.
    pub fn on_session(&mut self, event: SessionEvent) -> Option<String> {
        if let Update::Queued(info) = event.update {
            let id = self.next_id;
            self.next_id += 1;
            self.all.push(Run {
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
                watched: false,
                stalled: false,
            });
            self.selected = Some(self.all.len() - 1);
            return None;
        }
        // None: a deleted run's last words.
        let run = self.all.iter_mut().find(|r| r.live == Some(event.run))?;
        match event.update {
            Update::Queued(_) => {}
            Update::Starting { saved } => {
                run.saved_id = saved.map(|s| s.id);
                if run.state == RunState::Queued {
                    run.state = RunState::Preparing;
                }
            }
            // The end arrives as `Update::Ended`, with the summary.
            Update::Train(event) => run.apply(event),
            Update::Ended { status, summary } => return run.end(status, summary.test_accuracy),
        }
        None
    }

    /// Applies what the watcher saw in a saves folder another process writes: a run found
    /// joins the table (or, found anew, is replaced), its epochs and end arrive as a live
    /// run's do. Runs this lab trains itself are the session's to tell. What the user should
    /// hear of it comes back.
    pub fn on_watch(&mut self, event: WatchEvent) -> Option<String> {
        let at = self
            .all
            .iter()
            .position(|r| r.saved_id.as_deref() == Some(event.id.as_str()));
        if at.is_some_and(|i| self.all[i].live.is_some()) {
            return None;
        }
        match (event.change, at) {
            (Change::Found(saved), at) => {
                let mut run = match Run::from_saved(&saved) {
                    Ok(run) => run,
                    Err(e) => return Some(format!("{}: {e}", event.id)),
                };
                run.watched = true;
                match at {
                    Some(i) => {
                        let old = &self.all[i];
                        (run.id, run.name, run.marked) = (old.id, old.name.clone(), old.marked);
                        self.all[i] = run;
                        None
                    }
                    None => {
                        run.id = self.next_id;
                        self.next_id += 1;
                        run.name = format!("run-{}", run.id);
                        let message = format!("{} appeared ({})", run.name, event.id);
                        self.all.push(run);
                        if self.selected.is_none() {
                            self.selected = Some(self.all.len() - 1);
                        }
                        Some(message)
                    }
                }
            }
            (
                Change::Train(TrainEvent::Ended {
                    status,
                    test_accuracy,
                    ..
                }),
                Some(i),
            ) => self.all[i].end(status, test_accuracy),
            (Change::Train(train), Some(i)) => {
                self.all[i].apply(train);
                None
            }
            (Change::Stalled { quiet }, Some(i)) => {
                let run = &mut self.all[i];
                run.stalled = true;
                Some(format!(
                    "{} stalled: no change for {}",
                    run.name,
                    humantime::format_duration(Duration::from_secs(quiet.as_secs()))
                ))
            }
            (Change::Active, Some(i)) => {
                self.all[i].stalled = false;
                None
            }
            (Change::Unreadable(e), _) => Some(format!("not a readable run: {e}")),
            (_, None) => None,
        }
    }
}

//! `skiplab reproduce`: the experiments behind the paper's tables, over seeds and an L2
//! grid, printed beside the published numbers and written as a Markdown report.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use crate::cli::{self, Place, Stdout};
use crate::outln;
use skiplab::analysis::cka::network_cka_on;
use skiplab::analysis::landscape::{landscape_on, LandscapeOptions};
use skiplab::analysis::lesion::{lesion_on, LesionOptions};
use skiplab::data::store::write_atomically;
use skiplab::data::DatasetName;
use skiplab::experiment::Experiment;
use skiplab::reproduce::depth::{self, DepthConfig, DepthOutcome, Family};
use skiplab::reproduce::gradient::{self, DeepConfig, DeepOutcome};
use skiplab::reproduce::landscape;
use skiplab::reproduce::lesion::{self, LesionOutcome};
use skiplab::reproduce::similarity;
use skiplab::reproduce::{self as rep, Config, Outcome, Table};
use skiplab::runs::{self, Summary};
use skiplab::session::{Observer, RunId, RunRequest, Session, SessionEvent, Update};
use skiplab::sweep::{ListedRun, Progress, RunLock, Sweep};
use skiplab::train::{EpochMetrics, FlowPoint, RunStatus};

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Which tables: table1..table5, comma-separated, or all; or `gradient`, the deep-MLP
    /// study of skips as a gradient shortcut (--depths, --width); or `depth`, plain against
    /// residual as networks deepen (--depths, --families); or `lesion`, Veit et al.'s lesion
    /// study of the depth study's networks (--depths, --families; runs `depth` trained are
    /// reused); or `landscape`, Li et al.'s loss landscapes of the same networks (likewise);
    /// or `similarity`, linear CKA between the skip CNN and the reinforced CNN
    /// against each one's seed-to-seed ceiling (runs of table 5 are reused). The studies use
    /// the built-in data unless --dataset (`similarity`: Fashion-MNIST).
    #[arg(default_value = "all")]
    tables: String,
    /// `gradient`: the hidden-layer counts to study [default: 20,50]. `depth`: layers with
    /// weights, 6n + 2 for the CNN [default: 8,20]. `lesion`: likewise [default: 20];
    /// `landscape` [default: 8,20].
    #[arg(long, value_delimiter = ',')]
    depths: Vec<usize>,
    /// `depth`, `lesion`: which networks to deepen: cnn (He et al.'s CIFAR ResNet layout, batch norm),
    /// mlp (batch norm, width 64), or both.
    #[arg(long, default_value = "cnn,mlp", value_delimiter = ',')]
    families: Vec<String>,
    /// `gradient`: the width of every hidden layer.
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Run every table on this data set instead of the paper's (EMNIST letters, CIFAR-10);
    /// the report marks it as a substitute.
    #[arg(long)]
    dataset: Option<DatasetName>,
    /// Seeds per configuration and L2 value.
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// Epochs per run.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// The L2 grid; each configuration reports the value with the best validation accuracy.
    #[arg(long, default_value = "0,0.0001", value_delimiter = ',')]
    l2: Vec<f64>,
    #[command(flatten)]
    place: Place,
    /// Train every run again and save none (saved runs are not looked at either).
    #[arg(long)]
    no_save: bool,
    /// Write the runs as a sweep file (for `skiplab sweep emit --slurm` or `--parallel`)
    /// instead of training them; run this command again afterwards for the report.
    #[arg(long, conflicts_with = "no_save")]
    emit_sweep: Option<PathBuf>,
    /// The Markdown report.
    #[arg(long, default_value = "reproduce.md")]
    report: PathBuf,
}

/// One ended run (or one already saved): what a study makes an outcome of.
struct Ended<'a> {
    epochs: &'a [EpochMetrics],
    flows: &'a [FlowPoint],
    summary: &'a Summary,
    status: RunStatus,
    /// Found finished in the saves folder rather than trained now.
    saved: bool,
}

impl Ended<'_> {
    /// Why the run did not finish, if it did not.
    fn problem(&self) -> Option<String> {
        (self.status != RunStatus::Finished).then(|| self.summary.status.to_string())
    }

    /// What a progress line adds after the figures: the run's problem and whether it was
    /// found saved.
    fn suffix(&self, problem: Option<&str>) -> String {
        let problem = problem.map_or(String::new(), |p| format!(" ({p})"));
        let saved = if self.saved { " (saved earlier)" } else { "" };
        format!("{problem}{saved}")
    }
}

/// A reproduction's report: it takes every run's result as it comes, prints its line and
/// rewrites the Markdown file, so an interrupted reproduction keeps what it has.
trait Study {
    /// What a run of the plan stands for.
    type Entry: Copy;
    fn add(
        &mut self,
        entry: Self::Entry,
        run: Ended<'_>,
        done: usize,
        total: usize,
    ) -> io::Result<()>;
    fn text(&self) -> &str;
}

/// Passes every ended run of the session to its study.
struct Driver<'s, S: Study> {
    study: &'s mut S,
    plan: HashMap<RunId, S::Entry>,
    done: usize,
    total: usize,
    /// Runs done of all, with an ETA, on stderr when it is a terminal.
    bar: Option<indicatif::ProgressBar>,
}

impl<S: Study> Observer for Driver<'_, S> {
    fn update(&mut self, session: &Session, event: &SessionEvent) -> io::Result<()> {
        let (Update::Ended { status, summary }, Some(run)) =
            (&event.update, session.run(event.run))
        else {
            return Ok(());
        };
        self.done += 1;
        let ended = Ended {
            epochs: &run.epochs,
            flows: &run.flows,
            summary,
            status: status.clone(),
            saved: false,
        };
        let entry = self.plan[&event.run];
        let (study, done, total) = (&mut *self.study, self.done, self.total);
        match &self.bar {
            Some(bar) => {
                bar.suspend(|| study.add(entry, ended, done, total))?;
                bar.set_position(done as u64);
                Ok(())
            }
            None => study.add(entry, ended, done, total),
        }
    }
}

/// A run id part: `mlp3 skipstar` -> `mlp3-skipstar`.
fn id_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Runs the plan as a sweep: with saving on, each run has a stable id in the saves folder,
/// runs found finished there are reported, not trained again, and the rest train (an
/// unfinished attempt from the start); `--emit-sweep` writes the plan as a sweep file instead
/// (for `skiplab sweep emit --slurm` or `--parallel`), after which this command reports.
fn execute<S: Study>(
    args: &ReproduceArgs,
    name: &str,
    plan: Vec<(S::Entry, String, String, Experiment)>,
    study: &mut S,
) -> Result<ExitCode> {
    let total = plan.len();
    let listed = plan
        .iter()
        .map(|(_, id, group, experiment)| ListedRun {
            id: id.clone(),
            group: Some(group.clone()),
            experiment: experiment.clone(),
        })
        .collect();
    let sweep = Sweep::from_runs(name.to_string(), Path::new(name), listed)?;
    if let Some(path) = &args.emit_sweep {
        write_atomically(path, sweep.to_listed_ron().as_bytes())?;
        let shown = path.display();
        outln!("wrote {shown} ({total} runs)");
        outln!(
            "train them with `skiplab sweep run {shown}` or `skiplab sweep emit {shown} --slurm` (or --parallel), then run this command again for the report"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let saves = &args.place.saves;
    let progress = if args.no_save {
        vec![Progress::Missing; total]
    } else {
        sweep.progress(saves)
    };
    let (mut requests, mut entries, mut locks) = (Vec::new(), Vec::new(), Vec::new());
    let mut done = 0;
    for ((entry, id, _, experiment), progress) in plan.into_iter().zip(progress) {
        match progress {
            Progress::Conflict(why) => bail!("{why}"),
            Progress::Done(_) => {
                let saved = runs::load_run(&saves.join(&id))?;
                let epochs: Vec<EpochMetrics> =
                    saved.epochs.iter().map(|r| r.to_metrics()).collect();
                done += 1;
                let ended = Ended {
                    epochs: &epochs,
                    flows: &saved.flows,
                    summary: &saved.summary,
                    status: saved.summary.status.ended().unwrap_or(RunStatus::Finished),
                    saved: true,
                };
                study.add(entry, ended, done, total)?;
            }
            Progress::Missing | Progress::Unfinished { .. } if args.no_save => {
                requests.push(RunRequest::new(experiment));
                entries.push(entry);
            }
            Progress::Missing | Progress::Unfinished { .. } => {
                match RunLock::try_take(saves, &id)? {
                    Some(lock) => locks.push(lock),
                    None => {
                        outln!("{id}: another process is training it; left to it");
                        continue;
                    }
                }
                requests.push(RunRequest::new(experiment).in_folder(id));
                entries.push(entry);
            }
        }
    }
    let mut signal = None;
    if !requests.is_empty() {
        let (mut session, inbox) = cli::headless(&args.place, !args.no_save)?;
        let first = session.submit_all(requests)?;
        let ids = first.iter().filter_map(|e| match e.update {
            Update::Queued(_) => Some(e.run),
            _ => None,
        });
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let style = indicatif::ProgressStyle::with_template(
                "  runs [{bar:30}] {pos}/{len} · {elapsed} · ETA {eta}",
            )
            .expect("a valid template")
            .progress_chars("#>-");
            let bar = indicatif::ProgressBar::new(total as u64).with_style(style);
            bar.set_position(done as u64);
            bar.reset_eta();
            bar
        });
        let mut driver = Driver {
            plan: ids.zip(entries).collect(),
            study: &mut *study,
            done,
            total,
            bar,
        };
        signal = cli::follow(&mut session, &inbox, first, &mut driver)?;
        if let Some(bar) = driver.bar.take() {
            bar.finish_and_clear();
        }
    }
    drop(locks);
    outln!("\n{}", study.text());
    outln!("report written to {}", args.report.display());
    // Runs that diverged or failed are in the report, not a failure of the command.
    Ok(signal.map_or(ExitCode::SUCCESS, cli::signal_exit))
}

/// The paper's tables: each run's best epoch, summarised per configuration and L2.
struct Report<'a> {
    args: &'a ReproduceArgs,
    tables: Vec<Table>,
    outcomes: Vec<Outcome>,
    text: String,
}

impl Report<'_> {
    fn dataset_for(&self, table: Table) -> DatasetName {
        self.args.dataset.unwrap_or(table.paper_dataset())
    }
}

impl Study for Report<'_> {
    type Entry = (Config, DatasetName, f64, u64);

    fn add(
        &mut self,
        (config, dataset, l2, seed): Self::Entry,
        run: Ended<'_>,
        done: usize,
        total: usize,
    ) -> io::Result<()> {
        let summary = run.summary;
        let best = run
            .epochs
            .iter()
            .max_by(|a, b| a.val_accuracy.total_cmp(&b.val_accuracy));
        let problem = match run.status {
            RunStatus::Finished if best.is_none() => Some("no epoch finished".to_string()),
            _ => run.problem(),
        };
        let outcome = Outcome {
            config,
            seed,
            l2,
            val: best.map_or(f64::NAN, |b| b.val_accuracy),
            train: best.map_or(f64::NAN, |b| b.train_accuracy),
            seconds_per_epoch: summary.mean_epoch_seconds.unwrap_or(0.0),
            params: summary.params,
            macs: summary.macs_per_sample,
            problem,
        };
        writeln!(
            Stdout,
            "[{done}/{total}] {:<16} {dataset} l2 {l2} seed {seed}: val {:.2}% train {:.2}%, {:.2} s/epoch{}",
            config.label(),
            100.0 * outcome.val,
            100.0 * outcome.train,
            outcome.seconds_per_epoch,
            run.suffix(outcome.problem.as_deref()),
        )?;
        self.outcomes.push(outcome);
        self.text = rep::report(
            &self.tables,
            &self.outcomes,
            &|t| self.dataset_for(t),
            self.args.epochs,
            self.args.seeds,
            &self.args.l2,
        );
        write_atomically(&self.args.report, self.text.as_bytes()).map_err(io::Error::other)
    }

    fn text(&self) -> &str {
        &self.text
    }
}

/// The gradient study's table.
struct DeepReport<'a> {
    args: &'a ReproduceArgs,
    dataset: DatasetName,
    outcomes: Vec<DeepOutcome>,
    text: String,
}

impl Study for DeepReport<'_> {
    type Entry = DeepConfig;

    fn add(
        &mut self,
        config: DeepConfig,
        run: Ended<'_>,
        done: usize,
        total: usize,
    ) -> io::Result<()> {
        let problem = run.problem();
        let outcome = DeepOutcome::new(
            config,
            run.epochs,
            run.flows,
            run.summary.mean_epoch_seconds,
            problem,
        );
        writeln!(
            Stdout,
            "[{done}/{total}] {}: final val {}, layer-1 |grad| {}{}",
            config.label(),
            outcome
                .final_val
                .map_or("-".into(), |v| format!("{:.2}%", 100.0 * v)),
            gradient::norm_text(outcome.first_layer_gradient),
            run.suffix(outcome.problem.as_deref()),
        )?;
        self.outcomes.push(outcome);
        self.text = gradient::report(
            &self.outcomes,
            self.dataset,
            self.args.width,
            self.args.epochs,
        );
        write_atomically(&self.args.report, self.text.as_bytes()).map_err(io::Error::other)
    }

    fn text(&self) -> &str {
        &self.text
    }
}

fn reproduce_gradient(args: &ReproduceArgs) -> Result<ExitCode> {
    if args.depths.contains(&0) || args.width == 0 {
        bail!("--depths takes hidden-layer counts like 20,50 and --width a positive width");
    }
    let dataset = args.dataset.unwrap_or(DatasetName::Builtin);
    let depths = match args.depths.as_slice() {
        [] => vec![20, 50],
        given => given.to_vec(),
    };
    let grid = DeepConfig::grid(&depths);
    let mut plan = Vec::new();
    for &c in &grid {
        for seed in 1..=args.seeds as u64 {
            let group = format!(
                "gradient-{dataset}-w{}-e{}-{}",
                args.width,
                args.epochs,
                id_part(&c.label())
            );
            let id = format!("{group}-s{seed}");
            let experiment = c.experiment(dataset, args.width, args.epochs, seed);
            plan.push((c, id, group, experiment));
        }
    }
    outln!(
        "gradient study: {} configurations x {} seeds = {} runs of {} epochs on {dataset}",
        grid.len(),
        args.seeds,
        plan.len(),
        args.epochs,
    );
    let mut report = DeepReport {
        args,
        dataset,
        outcomes: Vec::new(),
        text: String::new(),
    };
    execute(args, "reproduce-gradient", plan, &mut report)
}

/// The depth study's table.
struct DepthReport<'a> {
    args: &'a ReproduceArgs,
    dataset: DatasetName,
    outcomes: Vec<DepthOutcome>,
    text: String,
}

impl Study for DepthReport<'_> {
    type Entry = (DepthConfig, u64);

    fn add(
        &mut self,
        (config, seed): (DepthConfig, u64),
        run: Ended<'_>,
        done: usize,
        total: usize,
    ) -> io::Result<()> {
        let problem = run.problem();
        let outcome = DepthOutcome::new(
            config,
            seed,
            run.epochs,
            run.summary.mean_epoch_seconds,
            problem,
        );
        writeln!(
            Stdout,
            "[{done}/{total}] {} seed {seed}: train loss {}, val {}{}",
            config.label(),
            outcome.train_loss.map_or("-".into(), |v| format!("{v:.3}")),
            outcome
                .val_accuracy
                .map_or("-".into(), |v| format!("{:.2}%", 100.0 * v)),
            run.suffix(outcome.problem.as_deref()),
        )?;
        self.outcomes.push(outcome);
        self.text = depth::report(&self.outcomes, self.dataset, self.args.epochs);
        write_atomically(&self.args.report, self.text.as_bytes()).map_err(io::Error::other)
    }

    fn text(&self) -> &str {
        &self.text
    }
}

/// The depth study's plan (shared by the lesion study, which reuses its runs): every
/// configuration of the families and depths asked for (`default_depths` where none), each
/// seed a run with a stable id.
type DepthPlan = Vec<((DepthConfig, u64), String, String, Experiment)>;

fn depth_plan(
    args: &ReproduceArgs,
    dataset: DatasetName,
    default_depths: &[usize],
) -> Result<(Vec<DepthConfig>, DepthPlan)> {
    let mut families = Vec::new();
    for name in &args.families {
        families.push(match name.trim() {
            "cnn" => Family::Cnn,
            "mlp" => Family::Mlp,
            other => bail!("--families: `{other}` is not cnn or mlp"),
        });
    }
    let depths = match args.depths.as_slice() {
        [] => default_depths.to_vec(),
        given => given.to_vec(),
    };
    let grid =
        DepthConfig::grid(&families, &depths).map_err(|e| anyhow::anyhow!("--depths: {e}"))?;
    let mut plan = Vec::new();
    for &c in &grid {
        for seed in 1..=args.seeds as u64 {
            let group = format!("depth-{dataset}-e{}-{}", args.epochs, id_part(&c.label()));
            let id = format!("{group}-s{seed}");
            plan.push((
                (c, seed),
                id,
                group,
                c.experiment(dataset, args.epochs, seed),
            ));
        }
    }
    Ok((grid, plan))
}

fn reproduce_depth(args: &ReproduceArgs) -> Result<ExitCode> {
    let dataset = args.dataset.unwrap_or(DatasetName::Builtin);
    let (grid, plan) = depth_plan(args, dataset, &[8, 20])?;
    outln!(
        "depth study: {} configurations x {} seeds = {} runs of {} epochs on {dataset}",
        grid.len(),
        args.seeds,
        plan.len(),
        args.epochs,
    );
    let mut report = DepthReport {
        args,
        dataset,
        outcomes: Vec::new(),
        text: String::new(),
    };
    execute(args, "reproduce-depth", plan, &mut report)
}

/// The depth study's saved runs as the lesion and landscape studies read them back: each
/// run's weights and its own split of the data set (loaded once).
struct SavedDepthRuns<'a> {
    args: &'a ReproduceArgs,
    dataset: DatasetName,
    data: Option<skiplab::data::Dataset>,
}

impl SavedDepthRuns<'_> {
    fn read(
        &mut self,
        config: DepthConfig,
        seed: u64,
    ) -> Result<(runs::Weights, skiplab::data::PreparedData), String> {
        let id = format!(
            "depth-{}-e{}-{}-s{seed}",
            self.dataset,
            self.args.epochs,
            id_part(&config.label())
        );
        let saved = runs::load_run(&self.args.place.saves.join(&id)).map_err(|e| e.to_string())?;
        let weights = saved.weights_to_resume().map_err(|e| e.to_string())?;
        if self.data.is_none() {
            let data = skiplab::data::load(self.dataset, &self.args.place.data_dir)
                .map_err(|e| e.to_string())?;
            self.data = Some(data);
        }
        let data = self.data.as_ref().expect("loaded above");
        let e = &saved.experiment;
        let split = skiplab::data::PreparedData::prepare(data, e.val_fraction, e.seed);
        Ok((weights, split))
    }
}

/// What the lesion and landscape studies start with: the depth study's plan over the
/// `depths` asked for (default `default_depths`) and the device, said on stdout.
fn saved_depth_study<'a>(
    args: &'a ReproduceArgs,
    what: &str,
    default_depths: &[usize],
    each: &str,
) -> Result<(SavedDepthRuns<'a>, DepthPlan, skiplab::device::Device)> {
    if args.no_save {
        bail!("--no-save: the {what} study reads the runs' saved weights; drop --no-save");
    }
    let dataset = args.dataset.unwrap_or(DatasetName::Builtin);
    let (grid, plan) = depth_plan(args, dataset, default_depths)?;
    let (device, note) = skiplab::device::resolve(args.place.device.into())?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    outln!(
        "{what} study: {} configurations x {} seeds = {} runs of {} epochs on {dataset}, {each}",
        grid.len(),
        args.seeds,
        plan.len(),
        args.epochs,
    );
    let runs = SavedDepthRuns {
        args,
        dataset,
        data: None,
    };
    Ok((runs, plan, device))
}

/// The lesion study's table: each run of the depth study's plan, once trained (or found
/// saved), lesioned on its validation split.
struct LesionReport<'a> {
    runs: SavedDepthRuns<'a>,
    device: skiplab::device::Device,
    outcomes: Vec<LesionOutcome>,
    text: String,
}

impl LesionReport<'_> {
    fn study(&mut self, config: DepthConfig, seed: u64) -> Result<LesionOutcome, String> {
        let (weights, split) = self.runs.read(config, seed)?;
        let options = LesionOptions {
            max_k: Some(lesion::CURVE_COLUMNS),
            draws: 10,
            seed: 0,
        };
        let study = lesion_on(
            self.device,
            &weights.topology,
            &weights.params,
            &split.val,
            &options,
            &mut |_| true,
        )
        .map_err(|e| e.to_string())?;
        Ok(LesionOutcome::new(config, seed, &study))
    }
}

impl Study for LesionReport<'_> {
    type Entry = (DepthConfig, u64);

    fn add(
        &mut self,
        (config, seed): (DepthConfig, u64),
        run: Ended<'_>,
        done: usize,
        total: usize,
    ) -> io::Result<()> {
        let outcome = match run.problem() {
            Some(problem) => LesionOutcome::failed(config, seed, problem),
            None => self
                .study(config, seed)
                .unwrap_or_else(|e| LesionOutcome::failed(config, seed, e)),
        };
        let percent = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}", 100.0 * v));
        writeln!(
            Stdout,
            "[{done}/{total}] {} seed {seed}: val {}%, one deletion costs {} pp on average, {} at worst{}",
            config.label(),
            percent(outcome.baseline),
            percent(outcome.mean_drop()),
            percent(outcome.worst_drop()),
            run.suffix(outcome.problem.as_deref()),
        )?;
        self.outcomes.push(outcome);
        self.text = lesion::report(&self.outcomes, self.runs.dataset, self.runs.args.epochs);
        write_atomically(&self.runs.args.report, self.text.as_bytes()).map_err(io::Error::other)
    }

    fn text(&self) -> &str {
        &self.text
    }
}

fn reproduce_lesion(args: &ReproduceArgs) -> Result<ExitCode> {
    let (runs, plan, device) = saved_depth_study(
        args,
        "lesion",
        &[20],
        "each lesioned on its validation split",
    )?;
    let mut report = LesionReport {
        runs,
        device,
        outcomes: Vec::new(),
        text: String::new(),
    };
    execute(args, "reproduce-lesion", plan, &mut report)
}

/// The landscape study: each run of the depth study's plan, once trained (or found saved),
/// measured along the same direction's seed.
struct LandscapeReport<'a> {
    runs: SavedDepthRuns<'a>,
    device: skiplab::device::Device,
    outcomes: Vec<landscape::LandscapeOutcome>,
    text: String,
}

impl LandscapeReport<'_> {
    fn measure(&mut self, config: DepthConfig, seed: u64) -> Result<landscape::LandscapeOutcome> {
        let (weights, split) = self.runs.read(config, seed).map_err(anyhow::Error::msg)?;
        let mut train = split.train;
        train.truncate(landscape::EXAMPLES);
        let options = LandscapeOptions {
            dims: 1,
            points: landscape::POINTS,
            range: 1.0,
            seed: 0,
        };
        let l = landscape_on(
            self.device,
            &weights.topology,
            &weights.params,
            &train,
            &options,
            &mut |_| true,
        )?;
        Ok(landscape::LandscapeOutcome {
            config,
            seed,
            sharpness: Some(l.sharpness),
            centre_loss: Some(l.centre_loss),
            edge_loss: Some(l.loss[0].max(l.loss[l.loss.len() - 1])),
            problem: None,
        })
    }
}

impl Study for LandscapeReport<'_> {
    type Entry = (DepthConfig, u64);

    fn add(
        &mut self,
        (config, seed): (DepthConfig, u64),
        run: Ended<'_>,
        done: usize,
        total: usize,
    ) -> io::Result<()> {
        let failed = |problem| landscape::LandscapeOutcome {
            config,
            seed,
            sharpness: None,
            centre_loss: None,
            edge_loss: None,
            problem: Some(problem),
        };
        let outcome = match run.problem() {
            Some(problem) => failed(problem),
            None => self
                .measure(config, seed)
                .unwrap_or_else(|e| failed(format!("{e:#}"))),
        };
        writeln!(
            Stdout,
            "[{done}/{total}] {} seed {seed}: sharpness {}{}",
            config.label(),
            outcome.sharpness.map_or("-".into(), |s| format!("{s:.3}")),
            run.suffix(outcome.problem.as_deref()),
        )?;
        self.outcomes.push(outcome);
        self.text = landscape::report(&self.outcomes, self.runs.dataset, self.runs.args.epochs);
        write_atomically(&self.runs.args.report, self.text.as_bytes()).map_err(io::Error::other)
    }

    fn text(&self) -> &str {
        &self.text
    }
}

fn reproduce_landscape(args: &ReproduceArgs) -> Result<ExitCode> {
    let (runs, plan, device) = saved_depth_study(
        args,
        "landscape",
        &[8, 20],
        "each measured along one filter-normalised direction",
    )?;
    let mut report = LandscapeReport {
        runs,
        device,
        outcomes: Vec::new(),
        text: String::new(),
    };
    execute(args, "reproduce-landscape", plan, &mut report)
}

/// The similarity study: the skip and reinforced CNNs over seeds, then CKA between them and
/// within each, once every run is in.
struct SimilarityReport<'a> {
    args: &'a ReproduceArgs,
    dataset: DatasetName,
    l2: f64,
    device: skiplab::device::Device,
    /// The runs ended so far: (variant, seed, finished).
    ended: Vec<(rep::CnnVariant, u64, bool)>,
    text: String,
}

/// Test examples CKA is computed on, and its minibatch.
const SIMILARITY_EXAMPLES: usize = 2000;
const SIMILARITY_BATCH: usize = 250;

impl SimilarityReport<'_> {
    fn run_id(&self, variant: rep::CnnVariant, seed: u64) -> String {
        paper_run_id(
            self.dataset,
            Config::Cnn(variant),
            self.args.epochs,
            self.l2,
            seed,
        )
    }

    /// Every pair: skip against reinforced at each seed, and every two seeds of each.
    fn pairs(&self) -> Result<Vec<similarity::Pair>> {
        use rep::CnnVariant::{Reinforced, Skip};
        let seeds: Vec<u64> = (1..=self.args.seeds as u64)
            .filter(|&s| {
                [Skip, Reinforced]
                    .iter()
                    .all(|&v| self.ended.contains(&(v, s, true)))
            })
            .collect();
        let weights = |v, s| -> Result<(Experiment, runs::Weights)> {
            let saved = runs::load_run(&self.args.place.saves.join(self.run_id(v, s)))?;
            let weights = saved.weights_to_resume()?;
            Ok((saved.experiment, weights))
        };
        let Some(&first) = seeds.first() else {
            return Ok(Vec::new());
        };
        let (experiment, _) = weights(Skip, first)?;
        let data = skiplab::data::load(self.dataset, &self.args.place.data_dir)?;
        let mut test =
            skiplab::data::PreparedData::prepare(&data, experiment.val_fraction, experiment.seed)
                .test;
        test.truncate(SIMILARITY_EXAMPLES);
        // (name, variant, seed) of each side.
        type Side = (&'static str, rep::CnnVariant, u64);
        let mut plan: Vec<(Side, Side)> = Vec::new();
        // Across architectures only between different seeds: two runs of one seed start
        // from the same random stream (conv 1, which no skip changes, starts identical).
        for &a in &seeds {
            for &b in seeds.iter().filter(|&&b| b != a) {
                plan.push((("skip", Skip, a), ("reinforced", Reinforced, b)));
            }
        }
        for (name, v) in [("skip", Skip), ("reinforced", Reinforced)] {
            for (i, &a) in seeds.iter().enumerate() {
                for &b in &seeds[i + 1..] {
                    plan.push(((name, v, a), (name, v, b)));
                }
            }
        }
        let mut pairs = Vec::new();
        for ((na, va, sa), (nb, vb, sb)) in plan {
            let (_, a) = weights(va, sa)?;
            let (_, b) = weights(vb, sb)?;
            let cka = network_cka_on(
                self.device,
                (&a.topology, &a.params),
                Some((&b.topology, &b.params)),
                &test,
                SIMILARITY_BATCH,
                &mut |_| true,
            )?;
            writeln!(Stdout, "  CKA {na} seed {sa} against {nb} seed {sb}: done")?;
            pairs.push(similarity::Pair {
                first: (na, sa),
                second: (nb, sb),
                layers: cka.rows.clone(),
                cka: cka.cka,
            });
        }
        Ok(pairs)
    }
}

impl Study for SimilarityReport<'_> {
    type Entry = (rep::CnnVariant, u64);

    fn add(
        &mut self,
        (variant, seed): (rep::CnnVariant, u64),
        run: Ended<'_>,
        done: usize,
        total: usize,
    ) -> io::Result<()> {
        let problem = run.problem();
        let val = run.epochs.last().map(|m| m.val_accuracy);
        writeln!(
            Stdout,
            "[{done}/{total}] cnn {variant:?} seed {seed}: val {}{}",
            val.map_or("-".into(), |v| format!("{:.2}%", 100.0 * v)),
            run.suffix(problem.as_deref()),
        )?;
        self.ended.push((variant, seed, problem.is_none()));
        if done < total {
            return Ok(());
        }
        let pairs = self
            .pairs()
            .map_err(|e| io::Error::other(format!("{e:#}")))?;
        self.text = similarity::report(&pairs, self.dataset, self.args.epochs, SIMILARITY_EXAMPLES);
        write_atomically(&self.args.report, self.text.as_bytes()).map_err(io::Error::other)
    }

    fn text(&self) -> &str {
        &self.text
    }
}

fn reproduce_similarity(args: &ReproduceArgs) -> Result<ExitCode> {
    if args.no_save {
        bail!("--no-save: the similarity study reads the runs' saved weights; drop --no-save");
    }
    if args.seeds < 2 {
        bail!("--seeds: the ceilings compare seeds, so at least 2");
    }
    let dataset = args.dataset.unwrap_or(DatasetName::FashionMnist);
    let l2 = args.l2.first().copied().unwrap_or(0.0);
    let (device, note) = skiplab::device::resolve(args.place.device.into())?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    let mut plan = Vec::new();
    for variant in [rep::CnnVariant::Skip, rep::CnnVariant::Reinforced] {
        for seed in 1..=args.seeds as u64 {
            let config = Config::Cnn(variant);
            let id = paper_run_id(dataset, config, args.epochs, l2, seed);
            let group = id.trim_end_matches(&format!("-s{seed}")).to_string();
            plan.push((
                (variant, seed),
                id,
                group,
                config.experiment(dataset, args.epochs, seed, l2),
            ));
        }
    }
    outln!(
        "similarity study: the skip and reinforced CNNs x {} seeds = {} runs of {} epochs on {dataset} (L2 {l2}), then linear CKA on {SIMILARITY_EXAMPLES} test examples",
        args.seeds,
        plan.len(),
        args.epochs,
    );
    let mut report = SimilarityReport {
        args,
        dataset,
        l2,
        device,
        ended: Vec::new(),
        text: String::new(),
    };
    execute(args, "reproduce-similarity", plan, &mut report)
}

/// The id the paper tables give a run (so the other studies reuse it).
fn paper_run_id(dataset: DatasetName, config: Config, epochs: usize, l2: f64, seed: u64) -> String {
    format!(
        "paper-{dataset}-{}-e{epochs}-wd{l2}-s{seed}",
        id_part(&config.label())
    )
}

pub fn reproduce(args: ReproduceArgs) -> Result<ExitCode> {
    if args.tables.trim() == "landscape" {
        if args.epochs == 0 || args.seeds == 0 {
            bail!("--seeds and --epochs must be at least 1");
        }
        return reproduce_landscape(&args);
    }
    if args.tables.trim() == "similarity" {
        if args.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        return reproduce_similarity(&args);
    }
    if args.tables.trim() == "lesion" {
        if args.epochs == 0 || args.seeds == 0 {
            bail!("--seeds and --epochs must be at least 1");
        }
        return reproduce_lesion(&args);
    }
    if args.tables.trim() == "depth" {
        if args.epochs == 0 || args.seeds == 0 {
            bail!("--seeds and --epochs must be at least 1");
        }
        return reproduce_depth(&args);
    }
    if args.tables.trim() == "gradient" {
        if args.epochs == 0 || args.seeds == 0 {
            bail!("--seeds and --epochs must be at least 1");
        }
        return reproduce_gradient(&args);
    }
    let tables = Table::parse_list(&args.tables).map_err(anyhow::Error::msg)?;
    if args.seeds == 0 || args.epochs < 2 {
        bail!("--seeds must be at least 1 and --epochs at least 2");
    }
    if args.l2.is_empty() || args.l2.iter().any(|v| !(*v >= 0.0 && v.is_finite())) {
        bail!("--l2 takes zero or positive values, e.g. 0,0.0001");
    }
    let dataset_for = |t: Table| args.dataset.unwrap_or(t.paper_dataset());
    // Every configuration the tables and their comparisons need, once.
    let mut jobs: Vec<(Config, DatasetName)> = Vec::new();
    for &t in &tables {
        let mut configs: Vec<Config> = t.rows().into_iter().flat_map(|(_, c)| c).collect();
        if t == Table::T2 {
            configs.extend(Table::T1.rows().into_iter().flat_map(|(_, c)| c));
        }
        if t == Table::T5 {
            configs.push(Config::Cnn(rep::CnnVariant::Skip));
        }
        for c in configs {
            if !jobs.contains(&(c, dataset_for(t))) {
                jobs.push((c, dataset_for(t)));
            }
        }
    }
    let mut plan = Vec::new();
    for &(config, dataset) in &jobs {
        for &l2 in &args.l2 {
            for seed in 1..=args.seeds as u64 {
                plan.push((config, dataset, l2, seed));
            }
        }
    }
    outln!(
        "reproducing {}: {} configurations x {} L2 values x {} seeds = {} runs of {} epochs",
        args.tables,
        jobs.len(),
        args.l2.len(),
        args.seeds,
        plan.len(),
        args.epochs,
    );
    let plan = plan
        .into_iter()
        .map(|(config, dataset, l2, seed)| {
            let id = paper_run_id(dataset, config, args.epochs, l2, seed);
            let group = id.trim_end_matches(&format!("-s{seed}")).to_string();
            let experiment = config.experiment(dataset, args.epochs, seed, l2);
            ((config, dataset, l2, seed), id, group, experiment)
        })
        .collect();
    let mut report = Report {
        args: &args,
        tables,
        outcomes: Vec::new(),
        text: String::new(),
    };
    execute(&args, "reproduce", plan, &mut report)
}

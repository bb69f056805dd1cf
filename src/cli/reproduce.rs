//! `skiplab reproduce`: the experiments behind the paper's tables, over seeds and an L2
//! grid, printed beside the published numbers and written as a Markdown report.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use crate::cli::{self, Place, Stdout};
use crate::outln;
use skiplab::data::store::write_atomically;
use skiplab::data::DatasetName;
use skiplab::reproduce::gradient::{self, DeepConfig, DeepOutcome};
use skiplab::reproduce::{self as rep, Config, Outcome, Table};
use skiplab::session::{Observer, RunId, RunRequest, Session, SessionEvent, Update};
use skiplab::train::RunStatus;

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Which tables: table1..table5, comma-separated, or all; or `gradient`, the deep-MLP
    /// study of skips as a gradient shortcut (--depths, --width; the built-in data unless
    /// --dataset).
    #[arg(default_value = "all")]
    tables: String,
    /// `gradient`: the hidden-layer counts to study.
    #[arg(long, default_value = "20,50", value_delimiter = ',')]
    depths: Vec<usize>,
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
    #[arg(long)]
    no_save: bool,
    /// The Markdown report.
    #[arg(long, default_value = "reproduce.md")]
    report: PathBuf,
}

/// Turns each ended run into an outcome, prints its line and rewrites the report: an
/// interrupted reproduction keeps what it has.
struct Report<'a> {
    args: &'a ReproduceArgs,
    tables: Vec<Table>,
    /// What each run stands for.
    plan: HashMap<RunId, (Config, DatasetName, f64, u64)>,
    outcomes: Vec<Outcome>,
    text: String,
}

impl Report<'_> {
    fn dataset_for(&self, table: Table) -> DatasetName {
        self.args.dataset.unwrap_or(table.paper_dataset())
    }
}

impl Observer for Report<'_> {
    fn update(&mut self, session: &Session, event: &SessionEvent) -> io::Result<()> {
        let (Update::Ended { status, summary }, Some(run)) =
            (&event.update, session.run(event.run))
        else {
            return Ok(());
        };
        let (config, dataset, l2, seed) = self.plan[&event.run];
        let best = run
            .epochs
            .iter()
            .max_by(|a, b| a.val_accuracy.total_cmp(&b.val_accuracy));
        let problem = match status {
            RunStatus::Finished if best.is_none() => Some("no epoch finished".to_string()),
            RunStatus::Finished => None,
            _ => Some(summary.status.to_string()),
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
            "[{}/{}] {:<16} {dataset} l2 {l2} seed {seed}: val {:.2}% train {:.2}%, {:.2} s/epoch{}",
            self.outcomes.len() + 1,
            self.plan.len(),
            config.label(),
            100.0 * outcome.val,
            100.0 * outcome.train,
            outcome.seconds_per_epoch,
            outcome.problem.as_deref().map_or(String::new(), |p| format!(" ({p})"))
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
}

/// Turns each ended run of the gradient study into an outcome and rewrites the report.
struct DeepReport<'a> {
    args: &'a ReproduceArgs,
    dataset: DatasetName,
    plan: HashMap<RunId, DeepConfig>,
    outcomes: Vec<DeepOutcome>,
    text: String,
}

impl Observer for DeepReport<'_> {
    fn update(&mut self, session: &Session, event: &SessionEvent) -> io::Result<()> {
        let (Update::Ended { status, summary }, Some(run)) =
            (&event.update, session.run(event.run))
        else {
            return Ok(());
        };
        let config = self.plan[&event.run];
        let problem = (*status != RunStatus::Finished).then(|| summary.status.to_string());
        let outcome = DeepOutcome::new(
            config,
            &run.epochs,
            &run.flows,
            summary.mean_epoch_seconds,
            problem,
        );
        writeln!(
            Stdout,
            "[{}/{}] {}: final val {}, layer-1 |grad| {}{}",
            self.outcomes.len() + 1,
            self.plan.len(),
            config.label(),
            outcome
                .final_val
                .map_or("-".into(), |v| format!("{:.2}%", 100.0 * v)),
            gradient::norm_text(outcome.first_layer_gradient),
            outcome
                .problem
                .as_deref()
                .map_or(String::new(), |p| format!(" ({p})"))
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
}

fn reproduce_gradient(args: &ReproduceArgs) -> Result<ExitCode> {
    if args.depths.is_empty() || args.depths.contains(&0) || args.width == 0 {
        bail!("--depths takes hidden-layer counts like 20,50 and --width a positive width");
    }
    let dataset = args.dataset.unwrap_or(DatasetName::Builtin);
    let grid = DeepConfig::grid(&args.depths);
    let (mut session, inbox) = cli::headless(&args.place, !args.no_save)?;
    let seeds = 1..=args.seeds as u64;
    let plan: Vec<(DeepConfig, u64)> = grid
        .iter()
        .flat_map(|&c| seeds.clone().map(move |s| (c, s)))
        .collect();
    outln!(
        "gradient study: {} configurations x {} seeds = {} runs of {} epochs on {dataset}, {}",
        grid.len(),
        args.seeds,
        plan.len(),
        args.epochs,
        session.settings().device
    );
    let requests = plan
        .iter()
        .map(|&(c, seed)| RunRequest::new(c.experiment(dataset, args.width, args.epochs, seed)))
        .collect();
    let first = session.submit_all(requests)?;
    let ids = first.iter().filter_map(|e| match e.update {
        Update::Queued(_) => Some(e.run),
        _ => None,
    });
    let mut report = DeepReport {
        args,
        dataset,
        plan: ids.zip(plan.iter().map(|p| p.0)).collect(),
        outcomes: Vec::new(),
        text: String::new(),
    };
    let signal = cli::follow(&mut session, &inbox, first, &mut report)?;
    outln!("\n{}", report.text);
    outln!("report written to {}", args.report.display());
    Ok(signal.map_or(ExitCode::SUCCESS, cli::signal_exit))
}

pub fn reproduce(args: ReproduceArgs) -> Result<ExitCode> {
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
    let (mut session, inbox) = cli::headless(&args.place, !args.no_save)?;
    outln!(
        "reproducing {}: {} configurations x {} L2 values x {} seeds = {} runs of {} epochs on {}",
        args.tables,
        jobs.len(),
        args.l2.len(),
        args.seeds,
        plan.len(),
        args.epochs,
        session.settings().device
    );
    let requests = plan
        .iter()
        .map(|&(config, dataset, l2, seed)| {
            RunRequest::new(config.experiment(dataset, args.epochs, seed, l2))
        })
        .collect();
    let first = session.submit_all(requests)?;
    let ids = first.iter().filter_map(|e| match e.update {
        Update::Queued(_) => Some(e.run),
        _ => None,
    });
    let mut report = Report {
        args: &args,
        tables,
        plan: ids.zip(plan).collect(),
        outcomes: Vec::new(),
        text: String::new(),
    };
    let signal = cli::follow(&mut session, &inbox, first, &mut report)?;
    outln!("\n{}", report.text);
    outln!("report written to {}", args.report.display());
    // Runs that diverged or failed are in the report, not a failure of the command.
    Ok(signal.map_or(ExitCode::SUCCESS, cli::signal_exit))
}

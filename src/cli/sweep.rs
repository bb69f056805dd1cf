//! `skiplab sweep`: a grid of runs from a sweep file, planned with stable ids, trained here
//! (`run`) or handed to the engines clusters run (`emit --slurm`, `emit --parallel`), one
//! `task` per run, and tabulated from whatever folders the runs landed in (`report`).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::cli::{self, exit, Place, Saves, Stdout};
use crate::outln;
use skiplab::data::store::write_atomically;
use skiplab::runs;
use skiplab::session::{Observer, RunId, RunRequest, RunState, Session, SessionEvent, Update};
use skiplab::sweep::{self, PlannedRun, Progress, RunLock, Sweep};
use skiplab::train::RunStatus;

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(subcommand)]
    command: SweepCommand,
}

#[derive(Subcommand, Debug)]
enum SweepCommand {
    /// List the sweep's runs: index, id, and where each stands in the saves folder.
    Plan {
        /// The sweep file (RON: a base preset and axes; see the README).
        file: PathBuf,
        /// The folder the sweep's runs are saved in.
        #[arg(long, env = "SKIPLAB_SAVES_DIR", default_value_os_t = skiplab::folders::default_saves())]
        saves: PathBuf,
    },
    /// Train every run not finished yet, N at a time, then print the report.
    Run {
        /// The sweep file.
        file: PathBuf,
        /// Runs that train at once on this machine.
        #[arg(long, default_value_t = 1)]
        parallel: usize,
        /// Also write the report (Markdown) here.
        #[arg(long)]
        report: Option<PathBuf>,
        #[command(flatten)]
        place: Place,
    },
    /// Train run INDEX of the plan (what one Slurm array task or one GNU parallel job runs);
    /// a finished run is left as it is, an unfinished one trains again from the start.
    Task {
        /// The sweep file.
        file: PathBuf,
        /// The run's index in `sweep plan` (Slurm: $SLURM_ARRAY_TASK_ID).
        #[arg(long)]
        index: usize,
        /// One JSON object per line instead of the per-epoch table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Write a Slurm job-array script (--slurm) or a GNU parallel job list (--parallel) for
    /// the runs not finished yet; each job is one `sweep task`.
    Emit(EmitArgs),
    /// Follow the sweep as its tasks train (here, on Slurm nodes, in GNU parallel jobs): each
    /// planned run pending, training, stalled, done or failed, the task holding it, and the
    /// report so far with the best configuration; until every run is done or Ctrl-C.
    Watch {
        /// The sweep file.
        file: PathBuf,
        /// The folder the sweep's runs are saved in.
        #[arg(long, env = "SKIPLAB_SAVES_DIR", default_value_os_t = skiplab::folders::default_saves())]
        saves: PathBuf,
        #[command(flatten)]
        follow: cli::Follow,
        /// One JSON object per change (with the run's index in the plan), for scripts.
        #[arg(long)]
        json: bool,
    },
    /// The results: every configuration's mean ± sd over its seeds, Welch's t-test against
    /// the base, the best value per axis, what is missing.
    Report {
        /// The sweep file.
        file: PathBuf,
        #[command(flatten)]
        saves: Saves,
        /// Also write the report (Markdown) here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct EmitArgs {
    /// The sweep file.
    file: PathBuf,
    /// An `sbatch` script: one array task per unfinished run.
    #[arg(
        long,
        conflicts_with = "parallel",
        required_unless_present = "parallel"
    )]
    slurm: bool,
    /// A GNU parallel job list: one `sweep task` command per line.
    #[arg(long)]
    parallel: bool,
    /// Where to write it [default: <sweep name>.sbatch or <sweep name>.jobs].
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Slurm: at most this many array tasks at once (`--array=...%K`).
    #[arg(long)]
    max_parallel: Option<usize>,
    /// Slurm: the partition to submit to.
    #[arg(long)]
    partition: Option<String>,
    /// Slurm: the account to charge.
    #[arg(long)]
    account: Option<String>,
    /// Slurm: wall-clock limit per task.
    #[arg(long, default_value = "02:00:00")]
    time: String,
    /// Slurm: CPU cores per task.
    #[arg(long, default_value_t = 2)]
    cpus: usize,
    /// Slurm: memory per task.
    #[arg(long, default_value = "4G")]
    mem: String,
    /// Slurm: GPUs per task (`--gres=gpu:N`; add `--device cuda`).
    #[arg(long)]
    gpus: Option<usize>,
    #[command(flatten)]
    place: Place,
}

pub fn sweep(args: SweepArgs) -> Result<ExitCode> {
    match args.command {
        SweepCommand::Plan { file, saves } => plan(&file, &saves),
        SweepCommand::Run {
            file,
            parallel,
            report,
            place,
        } => run(&file, parallel, report.as_deref(), &place),
        SweepCommand::Task {
            file,
            index,
            json,
            place,
        } => task(&file, index, json, &place),
        SweepCommand::Emit(args) => emit(&args),
        SweepCommand::Watch {
            file,
            saves,
            follow,
            json,
        } => cli::watch::sweep(&file, &saves, &follow, json),
        SweepCommand::Report {
            file,
            saves,
            report,
        } => report_command(&file, &saves, report.as_deref()),
    }
}

fn plan(file: &Path, saves: &Path) -> Result<ExitCode> {
    let sweep = Sweep::load(file)?;
    let progress = sweep.progress(saves);
    outln!(
        "sweep {}: {} runs from {} ({} epochs), saved in {}",
        sweep.name,
        sweep.runs.len(),
        sweep.base_path.display(),
        sweep.base.epochs,
        saves.display()
    );
    let width = sweep.runs.iter().map(|r| r.id.len()).max().unwrap_or(2);
    outln!("{:>5}  {:<width$}  status", "index", "id");
    for (run, p) in sweep.runs.iter().zip(&progress) {
        outln!("{:>5}  {:<width$}  {}", run.index, run.id, p.describe());
    }
    let done = progress.iter().filter(|p| p.is_done()).count();
    outln!("{done} done, {} to train", sweep.runs.len() - done);
    Ok(ExitCode::SUCCESS)
}

/// The runs that must train, or an error naming every conflicting folder.
fn unfinished<'a>(sweep: &'a Sweep, saves: &Path) -> Result<Vec<&'a PlannedRun>> {
    let progress = sweep.progress(saves);
    let conflicts: Vec<String> = progress
        .iter()
        .filter_map(|p| match p {
            Progress::Conflict(why) => Some(why.clone()),
            _ => None,
        })
        .collect();
    if !conflicts.is_empty() {
        bail!("{}", conflicts.join("\n"));
    }
    Ok(sweep
        .runs
        .iter()
        .zip(&progress)
        .filter(|(_, p)| !p.is_done())
        .map(|(r, _)| r)
        .collect())
}

/// Prints a line as each run ends: `[3/8] id: finished, best val 83.10%, test 82.95%`.
struct Lines {
    ids: HashMap<RunId, String>,
    ended: usize,
}

impl Observer for Lines {
    fn update(&mut self, _: &Session, event: &SessionEvent) -> io::Result<()> {
        if let Update::Ended { status, summary } = &event.update {
            self.ended += 1;
            let id = self.ids.get(&event.run).map_or("?", String::as_str);
            let what = match status {
                RunStatus::Finished => format!(
                    "finished, best val {}, test {}",
                    super::runs::pct(summary.best_val_accuracy),
                    super::runs::pct(summary.test_accuracy)
                ),
                RunStatus::Diverged { epoch, step, loss } => {
                    format!("diverged (loss {loss} at epoch {epoch}, step {step})")
                }
                RunStatus::Stopped => "stopped".into(),
                RunStatus::Failed(why) => format!("failed: {why}"),
            };
            writeln!(Stdout, "[{}/{}] {id}: {what}", self.ended, self.ids.len())?;
        }
        Ok(())
    }
}

fn run(file: &Path, parallel: usize, report: Option<&Path>, place: &Place) -> Result<ExitCode> {
    if parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    let sweep = Sweep::load(file)?;
    let todo = unfinished(&sweep, &place.saves)?;
    let mut locks = Vec::new();
    let mut requests = Vec::new();
    let mut ids = Vec::new();
    for run in &todo {
        match RunLock::try_take(&place.saves, &run.id)
            .with_context(|| format!("cannot lock {}", place.saves.display()))?
        {
            Some(lock) => {
                locks.push(lock);
                ids.push(run.id.clone());
                requests.push(RunRequest::new(run.experiment.clone()).in_folder(&run.id));
            }
            None => outln!("{}: another process is training it; left to it", run.id),
        }
    }
    outln!(
        "sweep {}: {} runs, {} done, {} to train here ({} at a time)",
        sweep.name,
        sweep.runs.len(),
        sweep.runs.len() - todo.len(),
        requests.len(),
        parallel
    );
    let mut signal = None;
    let mut failed = false;
    if !requests.is_empty() {
        let (mut session, inbox) = cli::headless_with_slots(place, true, parallel)?;
        let first = session.submit_all(requests)?;
        let mut lines = Lines {
            ids: session.runs().iter().map(|r| r.id).zip(ids).collect(),
            ended: 0,
        };
        signal = cli::follow(&mut session, &inbox, first, &mut lines)?;
        failed = session.runs().iter().any(|r| {
            !matches!(
                r.state,
                RunState::Ended(RunStatus::Finished | RunStatus::Diverged { .. })
            )
        });
    }
    drop(locks);
    let text = report_text(&sweep, std::slice::from_ref(&place.saves))?;
    outln!("\n{text}");
    if let Some(path) = report {
        write_atomically(path, text.as_bytes())?;
        outln!("report written to {}", path.display());
    }
    Ok(match signal {
        Some(signal) => cli::signal_exit(signal),
        None if failed => ExitCode::from(exit::STOPPED_OR_FAILED),
        None => ExitCode::SUCCESS,
    })
}

fn task(file: &Path, index: usize, json: bool, place: &Place) -> Result<ExitCode> {
    let sweep = Sweep::load(file)?;
    let Some(run) = sweep.runs.get(index) else {
        bail!(
            "--index {index}: the sweep has {} runs (0 to {})",
            sweep.runs.len(),
            sweep.runs.len().saturating_sub(1)
        );
    };
    match sweep.progress_of(run, &place.saves) {
        Progress::Done(status) => {
            outln!("{}: already {}; nothing to do", run.id, status.word());
            return Ok(ExitCode::SUCCESS);
        }
        Progress::Conflict(why) => bail!("{why}"),
        Progress::Missing | Progress::Unfinished { .. } => {}
    }
    let Some(lock) = RunLock::try_take(&place.saves, &run.id)
        .with_context(|| format!("cannot lock {}", place.saves.display()))?
    else {
        outln!("{}: another process is training it; left to it", run.id);
        return Ok(ExitCode::SUCCESS);
    };
    let (mut session, inbox) = cli::headless(place, true)?;
    let mut printer = cli::printer(json, false);
    let first = session.submit_all(vec![
        RunRequest::new(run.experiment.clone()).in_folder(&run.id)
    ])?;
    let signal = cli::follow(&mut session, &inbox, first, &mut printer)?;
    drop(lock);
    // A diverged run is a result of the sweep (its learning rate is too high), not a failure.
    let diverged = session
        .runs()
        .iter()
        .all(|r| matches!(r.state, RunState::Ended(RunStatus::Diverged { .. })));
    Ok(if signal.is_none() && diverged {
        ExitCode::SUCCESS
    } else {
        cli::exit_code(&session, signal)
    })
}

/// A path as the job will see it: absolute, so the job may start in any folder.
fn absolute(path: &Path) -> Result<String> {
    let path = std::path::absolute(path)
        .with_context(|| format!("cannot make {} absolute", path.display()))?;
    Ok(path.to_string_lossy().into_owned())
}

fn quote(text: &str) -> Result<String> {
    Ok(shlex::try_quote(text)
        .with_context(|| format!("cannot quote {text:?} for a shell"))?
        .into_owned())
}

/// `skiplab sweep task FILE --saves ... --index ` (the index follows).
fn task_command(args: &EmitArgs) -> Result<String> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let place = &args.place;
    let device = match place.device {
        cli::DeviceKind::Auto => "auto",
        cli::DeviceKind::Cpu => "cpu",
        cli::DeviceKind::Cuda => "cuda",
    };
    Ok(format!(
        "{} sweep task {} --saves {} --data-dir {} --device {device} --index",
        quote(&absolute(&exe)?)?,
        quote(&absolute(&args.file)?)?,
        quote(&absolute(&place.saves)?)?,
        quote(&absolute(&place.data_dir)?)?,
    ))
}

fn emit(args: &EmitArgs) -> Result<ExitCode> {
    let sweep = Sweep::load(&args.file)?;
    let todo = unfinished(&sweep, &args.place.saves)?;
    if todo.is_empty() {
        outln!(
            "sweep {}: all {} runs are done; nothing to emit",
            sweep.name,
            sweep.runs.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let indices: Vec<usize> = todo.iter().map(|r| r.index).collect();
    let command = task_command(args)?;
    let (text, default_name) = if args.slurm {
        if args.max_parallel == Some(0) {
            bail!("--max-parallel must be at least 1");
        }
        let logs = args.place.saves.join("slurm-logs");
        std::fs::create_dir_all(&logs)
            .with_context(|| format!("cannot create {}", logs.display()))?;
        (
            slurm_script(&sweep, args, &indices, &command, &absolute(&logs)?),
            format!("{}.sbatch", sweep.name),
        )
    } else {
        let mut jobs = String::new();
        for i in &indices {
            jobs.push_str(&format!("{command} {i}\n"));
        }
        (jobs, format!("{}.jobs", sweep.name))
    };
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_name));
    write_atomically(&path, text.as_bytes())?;
    let shown = quote(&path.to_string_lossy())?;
    outln!(
        "wrote {} ({} of {} runs to train)",
        path.display(),
        indices.len(),
        sweep.runs.len()
    );
    if args.slurm {
        outln!("submit with: sbatch {shown}");
    } else {
        outln!("run with: parallel --jobs 2 --joblog {shown}.log < {shown}");
    }
    outln!(
        "rerunning skips finished runs; `skiplab sweep report {}` tabulates them",
        quote(&args.file.to_string_lossy())?
    );
    Ok(ExitCode::SUCCESS)
}

fn slurm_script(
    sweep: &Sweep,
    args: &EmitArgs,
    indices: &[usize],
    command: &str,
    logs: &str,
) -> String {
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!(
            "# skiplab sweep {}: {} of its {} runs, one array task each (written by `skiplab sweep emit --slurm`).",
            sweep.name,
            indices.len(),
            sweep.runs.len()
        ),
        "# A task whose run is finished exits at once; an unfinished one trains it again.".into(),
        format!("#SBATCH --job-name=skiplab-{}", sweep.name),
        format!(
            "#SBATCH --array={}{}",
            sweep::array_ranges(indices),
            args.max_parallel.map_or(String::new(), |k| format!("%{k}"))
        ),
        format!("#SBATCH --cpus-per-task={}", args.cpus),
        format!("#SBATCH --mem={}", args.mem),
        format!("#SBATCH --time={}", args.time),
        format!("#SBATCH --output={logs}/%x-%A_%a.out"),
    ];
    if let Some(p) = &args.partition {
        lines.push(format!("#SBATCH --partition={p}"));
    }
    if let Some(a) = &args.account {
        lines.push(format!("#SBATCH --account={a}"));
    }
    if let Some(g) = args.gpus {
        lines.push(format!("#SBATCH --gres=gpu:{g}"));
    }
    lines.push("set -euo pipefail".into());
    lines.push(format!("exec {command} \"$SLURM_ARRAY_TASK_ID\""));
    lines.join("\n") + "\n"
}

fn report_text(sweep: &Sweep, folders: &[PathBuf]) -> Result<String> {
    let (found, _) = runs::list_runs_in(folders);
    let saved: Vec<_> = found.into_iter().flatten().collect();
    Ok(sweep::report(sweep, &saved))
}

fn report_command(file: &Path, saves: &Saves, report: Option<&Path>) -> Result<ExitCode> {
    let sweep = Sweep::load(file)?;
    let folders = saves.folders()?;
    let (_, shadowed) = runs::list_runs_in(&folders);
    for dir in shadowed {
        eprintln!(
            "note: {} is also in an earlier --saves folder; that one is used",
            dir.display()
        );
    }
    let text = report_text(&sweep, &folders)?;
    write!(Stdout, "{text}")?;
    if let Some(path) = report {
        write_atomically(path, text.as_bytes())?;
        eprintln!("report written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

//! `skiplab runs`, `skiplab compare` and `skiplab export`: saved runs from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use plotters::prelude::*;

use skiplab::data::store::write_atomically;
use skiplab::experiment::{Model, Optimizer};
use skiplab::runs::{self, SavedRun};

#[derive(Args, Debug)]
pub struct RunsArgs {
    /// Where runs are saved.
    #[arg(long, env = "SKIPLAB_SAVES_DIR", default_value = "saves")]
    saves: PathBuf,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Run ids (or unique prefixes, or paths to run folders).
    #[arg(required = true, num_args = 1..)]
    runs: Vec<String>,
    #[arg(long, env = "SKIPLAB_SAVES_DIR", default_value = "saves")]
    saves: PathBuf,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Run ids (or unique prefixes, or paths); `--svg` draws them all on one chart.
    #[arg(required = true, num_args = 1..)]
    runs: Vec<String>,
    /// The per-epoch metrics as CSV (one run).
    #[arg(long, conflicts_with = "svg", required_unless_present = "svg")]
    csv: bool,
    /// An SVG chart of train and validation accuracy per epoch.
    #[arg(long)]
    svg: bool,
    /// Write here instead of to stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
    #[arg(long, env = "SKIPLAB_SAVES_DIR", default_value = "saves")]
    saves: PathBuf,
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.2}%", 100.0 * v))
}

fn load(saves: &Path, key: &str) -> Result<SavedRun> {
    Ok(runs::load_run(&runs::find_run(saves, key)?)?)
}

fn model_text(run: &SavedRun) -> String {
    run.experiment
        .topology()
        .map(|t| t.summary())
        .unwrap_or_else(|e| format!("invalid: {e}"))
}

pub fn list(args: RunsArgs) -> Result<ExitCode> {
    let all = runs::list_runs(&args.saves);
    if all.is_empty() {
        println!("no saved runs in {}", args.saves.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<40} {:<15} {:>6} {:>9} {:>9} {:>8}  {:<10} model",
        "run", "data", "epochs", "best val", "test", "s/epoch", "status"
    );
    for run in all {
        match run {
            Ok(r) => println!(
                "{:<40} {:<15} {:>6} {:>9} {:>9} {:>8}  {:<10} {}",
                r.id,
                r.experiment.dataset.as_str(),
                r.summary.epochs_done,
                pct(r.summary.best_val_accuracy),
                pct(r.summary.test_accuracy),
                r.summary
                    .mean_epoch_seconds
                    .map_or("-".into(), |s| format!("{s:.2}")),
                r.summary.status.split(':').next().unwrap_or(""),
                model_text(&r)
            ),
            Err(e) => println!("unreadable: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of `compare`: how to show a field of a run.
type Field = Box<dyn Fn(&SavedRun) -> String>;

pub fn compare(args: CompareArgs) -> Result<ExitCode> {
    let runs: Vec<SavedRun> = args
        .runs
        .iter()
        .map(|k| load(&args.saves, k))
        .collect::<Result<_>>()?;
    let rows: Vec<(&str, Field)> = vec![
        ("data set", Box::new(|r| r.experiment.dataset.to_string())),
        ("model", Box::new(model_text)),
        (
            "skips",
            Box::new(|r| match &r.experiment.model {
                Model::Mlp { skips, .. } | Model::Cnn { skips, .. } => skips.to_string(),
            }),
        ),
        ("params", Box::new(|r| r.summary.params.to_string())),
        (
            "MACs/sample",
            Box::new(|r| r.summary.macs_per_sample.to_string()),
        ),
        (
            "optimizer",
            Box::new(|r| match r.experiment.optimizer {
                Optimizer::Sgd { lr, momentum } => format!("sgd lr {lr} m {momentum}"),
                Optimizer::Adam { lr } => format!("adam lr {lr}"),
            }),
        ),
        (
            "weight decay",
            Box::new(|r| r.experiment.weight_decay.to_string()),
        ),
        ("batch", Box::new(|r| r.experiment.batch.to_string())),
        ("seed", Box::new(|r| r.experiment.seed.to_string())),
        (
            "schedule",
            Box::new(|r| match r.summary.skips_enabled_after {
                Some(e) => format!("skip*, skips on after epoch {e}"),
                None if r.experiment.schedule.is_some() => "skip* (not switched)".into(),
                None => "-".into(),
            }),
        ),
        ("epochs", Box::new(|r| r.summary.epochs_done.to_string())),
        (
            "best val",
            Box::new(|r| {
                format!(
                    "{} (epoch {})",
                    pct(r.summary.best_val_accuracy),
                    r.summary.best_epoch.map_or("-".into(), |e| e.to_string())
                )
            }),
        ),
        ("test", Box::new(|r| pct(r.summary.test_accuracy))),
        (
            "s/epoch",
            Box::new(|r| {
                r.summary
                    .mean_epoch_seconds
                    .map_or("-".into(), |s| format!("{s:.2}"))
            }),
        ),
        ("device", Box::new(|r| r.summary.device.clone())),
        ("status", Box::new(|r| r.summary.status.clone())),
    ];
    let width = runs
        .iter()
        .map(|r| r.id.len())
        .chain(runs.iter().map(|r| model_text(r).len()))
        .max()
        .unwrap_or(10)
        .max(12);
    print!("{:<14}", "");
    for r in &runs {
        print!(" {:<width$}", r.id);
    }
    println!();
    for (name, value) in &rows {
        print!("{name:<14}");
        for r in &runs {
            print!(" {:<width$}", value(r));
        }
        println!();
    }
    let epochs = runs.iter().map(|r| r.epochs.len()).max().unwrap_or(0);
    println!("validation accuracy by epoch:");
    for e in 0..epochs {
        print!("{:<14}", format!("  epoch {}", e + 1));
        for r in &runs {
            print!(
                " {:<width$}",
                pct(r.epochs.get(e).map(|row| row.val_accuracy))
            );
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// The accuracy curves of `runs` as an SVG document: validation solid, train dashed.
pub fn svg_chart(runs: &[SavedRun]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        root.fill(&WHITE)?;
        let epochs = runs
            .iter()
            .map(|r| r.epochs.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let values = runs
            .iter()
            .flat_map(|r| r.epochs.iter())
            .flat_map(|e| [e.val_accuracy, e.train_accuracy]);
        let low = values.clone().fold(1.0f64, f64::min);
        let high = values.fold(0.0f64, f64::max);
        let (low, high) = if low <= high {
            ((low - 0.02).max(0.0), (high + 0.02).min(1.0))
        } else {
            (0.0, 1.0)
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "accuracy per epoch (validation solid, train dashed)",
                ("sans-serif", 20),
            )
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1f64..epochs.max(2) as f64, low * 100.0..high * 100.0)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("accuracy %")
            .draw()?;
        for (i, run) in runs.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let val: Vec<(f64, f64)> = run
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, 100.0 * e.val_accuracy))
                .collect();
            chart
                .draw_series(LineSeries::new(val, color.stroke_width(2)))?
                .label(format!("{} ({})", run.id, model_text(run)))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            let train: Vec<(f64, f64)> = run
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, 100.0 * e.train_accuracy))
                .collect();
            chart.draw_series(DashedLineSeries::new(train, 6, 4, color.stroke_width(1)))?;
            if let Some(after) = run.summary.skips_enabled_after {
                let x = after as f64 + 0.5;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x, low * 100.0), (x, high * 100.0)],
                    color.stroke_width(1),
                )))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

pub fn export(args: ExportArgs) -> Result<ExitCode> {
    let runs: Vec<SavedRun> = args
        .runs
        .iter()
        .map(|k| load(&args.saves, k))
        .collect::<Result<_>>()?;
    let bytes = if args.csv {
        if runs.len() != 1 {
            bail!("--csv exports one run; give one id");
        }
        let path = runs[0].dir.join(runs::METRICS);
        std::fs::read(&path).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?
    } else {
        svg_chart(&runs)?.into_bytes()
    };
    match &args.out {
        Some(out) => {
            write_atomically(out, &bytes)?;
            eprintln!("wrote {}", out.display());
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

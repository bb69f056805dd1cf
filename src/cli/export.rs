//! `skiplab export`: saved runs' metrics as one long-format CSV, or their accuracy curves as
//! an SVG chart.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use plotters::prelude::*;

use super::runs::{facets, load_all, model_text};
use skiplab::compare;
use skiplab::data::store::write_atomically;
use skiplab::runs::SavedRun;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Run ids (or unique prefixes, or paths); `--svg` draws them all on one chart.
    #[arg(required = true, num_args = 1..)]
    runs: Vec<String>,
    /// The runs' metrics as one long-format CSV: run, group, epoch, step, seconds, metric,
    /// value (validation and per-epoch training figures, and training every few steps).
    #[arg(long, conflicts_with = "svg", required_unless_present_any = ["svg", "onnx", "pytorch"])]
    csv: bool,
    /// An SVG chart of train and validation accuracy per epoch.
    #[arg(long)]
    svg: bool,
    /// The run's network with its trained weights as an ONNX model in FILE (opset 20, input
    /// `input` [batch, features], output `logits`, layers named as the lab names them):
    /// Netron draws it, ONNX Runtime runs it. Every topology the lab builds.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["csv", "svg"])]
    onnx: Option<PathBuf>,
    /// The run's network as a self-contained PyTorch module in DIR: `model.py` (an
    /// `nn.Module` with the skip edges spelled out, and `load`) beside the run's
    /// `weights.safetensors`. Every topology the lab builds.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["csv", "svg", "onnx"])]
    pytorch: Option<PathBuf>,
    /// With --onnx or --pytorch: the weights of the best-validation epoch (those the test
    /// accuracy measured) instead of the last epoch's.
    #[arg(long)]
    best: bool,
    /// Write here instead of to stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
    #[command(flatten)]
    saves: super::Saves,
}

/// The accuracy curves of `runs` as an SVG document: validation solid, train dashed; the
/// legend under the plot, a row a run, never over the curves.
pub fn svg_chart(runs: &[SavedRun]) -> Result<String> {
    const PLOT_HEIGHT: u32 = 480;
    const LEGEND_ROW: u32 = 22;
    let mut svg = String::new();
    {
        let height = PLOT_HEIGHT + 16 + LEGEND_ROW * runs.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, legend) = root.split_vertically(PLOT_HEIGHT);
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
        let mut chart = ChartBuilder::on(&plot)
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
            chart.draw_series(LineSeries::new(val, color.stroke_width(2)))?;
            let y = 8 + LEGEND_ROW as i32 * i as i32 + LEGEND_ROW as i32 / 2;
            legend.draw(&PathElement::new(
                vec![(60, y), (90, y)],
                color.stroke_width(2),
            ))?;
            legend.draw(&Text::new(
                format!("{} ({})", run.id, model_text(run)),
                (100, y - 7),
                ("sans-serif", 14),
            ))?;
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
        root.present()?;
    }
    Ok(svg)
}

/// Every run's epochs and step points in one long table: `run,group,epoch,step,seconds,
/// metric,value`, the group being what its configuration is against the others (seeds of
/// one configuration share it).
fn long_csv(runs: &[SavedRun]) -> String {
    let groups =
        compare::describe_configurations(&runs.iter().map(facets).collect::<Vec<_>>()).each;
    let rows: Vec<compare::LongRow> = runs
        .iter()
        .zip(groups)
        .flat_map(|(r, group)| {
            let group = if group.is_empty() {
                "all".into()
            } else {
                group
            };
            let epochs: Vec<_> = r.epochs.iter().map(|e| e.to_metrics()).collect();
            compare::long_rows(&r.id, &group, &epochs, &r.steps)
        })
        .collect();
    compare::long_csv(&rows)
}

pub fn export(args: ExportArgs) -> Result<ExitCode> {
    let runs = load_all(&args.saves, &args.runs)?;
    if args.best && args.onnx.is_none() && args.pytorch.is_none() {
        anyhow::bail!("--best chooses the weights --onnx or --pytorch export");
    }
    if let Some(dir) = &args.pytorch {
        let [run] = runs.as_slice() else {
            anyhow::bail!("--pytorch exports one run; {} were named", runs.len());
        };
        let weights = super::analyze::weights_of(run, args.best)?;
        let title = format!("{}: {}", run.id, weights.topology.summary());
        let module = skiplab::pytorch::module(&weights.topology, &title);
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", dir.display()))?;
        let source = run.dir.join(match args.best {
            true => skiplab::runs::BEST,
            false => skiplab::runs::WEIGHTS,
        });
        let bytes = std::fs::read(&source)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", source.display()))?;
        write_atomically(&dir.join(skiplab::runs::WEIGHTS), &bytes)?;
        write_atomically(&dir.join("model.py"), module.as_bytes())?;
        eprintln!(
            "wrote {0}/model.py and {0}/weights.safetensors: {1} (the weights of epoch {2})",
            dir.display(),
            weights.topology.summary(),
            weights.epoch.map_or("?".into(), |e| e.to_string()),
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = &args.onnx {
        let [run] = runs.as_slice() else {
            anyhow::bail!("--onnx exports one run; {} were named", runs.len());
        };
        let weights = super::analyze::weights_of(run, args.best)?;
        let model = skiplab::onnx::model(&weights.topology, &weights.params, &run.id)
            .map_err(|e| anyhow::anyhow!("{}: cannot export: {e}", run.id))?;
        let nodes = model.graph.as_ref().map_or(0, |g| g.node.len());
        write_atomically(path, &prost::Message::encode_to_vec(&model))?;
        eprintln!(
            "wrote {}: {} as ONNX (opset {}, {nodes} nodes), the weights of epoch {}",
            path.display(),
            weights.topology.summary(),
            skiplab::onnx::OPSET,
            weights.epoch.map_or("?".into(), |e| e.to_string()),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let bytes = if args.csv {
        long_csv(&runs).into_bytes()
    } else {
        svg_chart(&runs)?.into_bytes()
    };
    match &args.out {
        Some(out) => {
            write_atomically(out, &bytes)?;
            eprintln!("wrote {}", out.display());
        }
        None => crate::cli::Stdout.write_all(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}

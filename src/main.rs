use std::process::ExitCode;

// glibc returns large freed blocks to the OS (munmap) and faults them back in on the next
// training step: page faults and TLB shootdowns took over 10% of a CNN step. mimalloc keeps
// them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use skiplab::experiment::Experiment;
use skiplab::tui::{self, LabOptions};

mod cli;
mod cli_data;
mod cli_runs;

/// A terminal lab for studying skip connections in neural networks.
///
/// With no command it opens the lab on the built-in data.
#[derive(Parser)]
#[command(name = "skiplab", version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Draw with ASCII only, for terminals without Unicode.
    #[arg(long)]
    ascii: bool,
    /// Runs the lab trains at the same time (later ones queue).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Where the lab's runs train.
    #[arg(long, value_enum, default_value_t = cli::DeviceKind::Auto)]
    device: cli::DeviceKind,
    /// What the lab's runs train on: builtin, mnist, fashion-mnist, emnist-letters, cifar10.
    #[arg(long, default_value = "builtin")]
    dataset: skiplab::data::DatasetName,
    /// Folder holding one folder per data set (see `skiplab data`).
    #[arg(long, env = "SKIPLAB_DATA_DIR", default_value = "data")]
    data_dir: std::path::PathBuf,
    /// Open with this preset [default: presets/quick.ron when the lab's data fits it].
    #[arg(long)]
    preset: Option<std::path::PathBuf>,
    /// Where presets are listed and saved.
    #[arg(long, default_value = "presets")]
    presets_dir: std::path::PathBuf,
    /// Where every run is saved.
    #[arg(long, env = "SKIPLAB_SAVES_DIR", default_value = "saves")]
    saves: std::path::PathBuf,
    /// Do not save runs.
    #[arg(long)]
    no_save: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Train one topology headless and print a per-epoch table.
    Train(cli::TrainArgs),
    /// Measure training throughput and memory of the paper's MLP and CNN.
    Bench(cli::BenchArgs),
    /// Check that CUDA computes what the CPU computes (needs `--features cuda` and a GPU).
    Parity,
    /// The data directory: list, fetch, import and verify data sets.
    Data(cli_data::DataArgs),
    /// Run the experiments behind the paper's tables and print them beside its numbers.
    Reproduce(cli::ReproduceArgs),
    /// Train a saved run for more epochs, from its saved weights.
    Resume(cli::ResumeArgs),
    /// List saved runs.
    Runs(cli_runs::RunsArgs),
    /// Saved runs side by side.
    Compare(cli_runs::CompareArgs),
    /// A saved run's metrics as CSV, or runs' accuracy curves as an SVG chart.
    Export(cli_runs::ExportArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Some(Command::Train(a)) => cli::train(a),
        Some(Command::Bench(a)) => cli::bench(a),
        Some(Command::Parity) => cli::parity(),
        Some(Command::Data(a)) => cli_data::data(a),
        Some(Command::Resume(a)) => cli::resume(a),
        Some(Command::Reproduce(a)) => cli::reproduce(a),
        Some(Command::Runs(a)) => cli_runs::list(a),
        Some(Command::Compare(a)) => cli_runs::compare(a),
        Some(Command::Export(a)) => cli_runs::export(a),
        None => skiplab::device::resolve(args.device.into())
            .map_err(anyhow::Error::from)
            .and_then(|(device, note)| {
                // An explicit preset must load; the default one only where it exists and fits.
                let preset = match &args.preset {
                    Some(path) => Some(Experiment::load(path)?),
                    None => Experiment::load(&args.presets_dir.join("quick.ron"))
                        .ok()
                        .filter(|e| e.dataset == args.dataset),
                };
                let name = args.preset.as_deref().map_or("quick".into(), |p| {
                    p.file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                });
                // A preset names its data set; without --dataset the lab follows it.
                let dataset_name = match (&args.preset, &preset) {
                    (Some(_), Some(e)) if args.dataset == skiplab::data::DatasetName::Builtin => {
                        e.dataset
                    }
                    _ => args.dataset,
                };
                let dataset = skiplab::data::load(dataset_name, &args.data_dir)?;
                tui::run(
                    dataset,
                    LabOptions {
                        presets_dir: args.presets_dir.clone(),
                        saves_dir: (!args.no_save).then(|| args.saves.clone()),
                        preset: preset.map(|e| (name, e)),
                        ascii: args.ascii,
                        parallel: args.parallel,
                        device,
                        note,
                    },
                )
            })
            .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

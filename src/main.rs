use std::process::ExitCode;

// glibc returns large freed blocks to the OS (munmap) and faults them back in on the next
// training step: page faults and TLB shootdowns took over 10% of a CNN step. mimalloc keeps
// them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

mod cli;

/// A terminal lab for studying skip connections in neural networks.
///
/// With no command it opens the lab on the built-in data.
#[derive(Parser)]
#[command(name = "skiplab", version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    lab: cli::lab::LabArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Train one topology headless and print a per-epoch table.
    Train(cli::train::TrainArgs),
    /// Measure training throughput and memory of the paper's MLP and CNN.
    Bench(cli::bench::BenchArgs),
    /// Check that CUDA computes what the CPU computes (needs `--features cuda` and a GPU).
    Parity,
    /// The data directory: list, fetch, import and verify data sets.
    Data(cli::data::DataArgs),
    /// Run the experiments behind the paper's tables and print them beside its numbers.
    Reproduce(cli::reproduce::ReproduceArgs),
    /// Train a saved run for more epochs, from its saved weights.
    Resume(cli::resume::ResumeArgs),
    /// List saved runs (sorted, filtered, or as JSON lines).
    Runs(cli::runs::RunsArgs),
    /// Saved runs side by side.
    Compare(cli::compare::CompareArgs),
    /// Saved runs' metrics as one long-format CSV, or their accuracy curves as an SVG chart.
    Export(cli::export::ExportArgs),
    /// Grids of runs from a sweep file: plan, run here, emit for Slurm or GNU parallel, report.
    Sweep(cli::sweep::SweepArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Some(Command::Train(a)) => cli::train::train(a),
        Some(Command::Bench(a)) => cli::bench::bench(a),
        Some(Command::Parity) => cli::parity::parity(),
        Some(Command::Data(a)) => cli::data::data(a),
        Some(Command::Resume(a)) => cli::resume::resume(a),
        Some(Command::Reproduce(a)) => cli::reproduce::reproduce(a),
        Some(Command::Runs(a)) => cli::runs::list(a),
        Some(Command::Compare(a)) => cli::compare::compare(a),
        Some(Command::Export(a)) => cli::export::export(a),
        Some(Command::Sweep(a)) => cli::sweep::sweep(a),
        None => cli::lab::lab(args.lab),
    };
    result.unwrap_or_else(|e| {
        let (code, message) = cli::report_error(&e);
        if let Some(message) = message {
            eprintln!("{message}");
        }
        code
    })
}

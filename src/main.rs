use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// A terminal lab for studying skip connections in neural networks.
#[derive(Parser)]
#[command(name = "skiplab", version, about, arg_required_else_help = true)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train one topology headless and print a per-epoch table.
    Train(cli::TrainArgs),
    /// Measure training throughput and memory of the paper's MLP and CNN.
    Bench(cli::BenchArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Train(a) => cli::train(a),
        Command::Bench(a) => cli::bench(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

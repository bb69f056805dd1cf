use std::process::ExitCode;

// glibc returns large freed blocks to the OS (munmap) and faults them back in on the next
// training step: page faults and TLB shootdowns took over 10% of a CNN step. mimalloc keeps
// them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use std::io::Write as _;

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
    /// Analyses of saved runs' trained networks: lesion studies, edge usage, layer similarity (CKA) and loss landscapes.
    Analyze(cli::analyze::AnalyzeArgs),
    /// Grids of runs from a sweep file: plan, run here, emit for Slurm or GNU parallel, report.
    Sweep(cli::sweep::SweepArgs),
    /// The settings file (`config init` writes one) and the folders in effect.
    Config(cli::config::ConfigArgs),
    /// Print a shell completion script: `skiplab completions bash > ~/.local/share/bash-completion/completions/skiplab`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a folder.
    Man {
        /// Write skiplab.1, skiplab-train.1, ... here instead of printing skiplab.1.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

/// `skiplab completions SHELL`: the script, generated from the clap definitions.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Args::command(), "skiplab", &mut out);
    std::io::Write::write_all(&mut cli::Stdout, &out)?;
    Ok(ExitCode::SUCCESS)
}

/// `skiplab man [--dir DIR]`: roff pages from the clap definitions.
fn man(dir: Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    use clap::CommandFactory;
    let command = Args::command();
    let Some(dir) = dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(command).render(&mut out)?;
        std::io::Write::write_all(&mut cli::Stdout, &out)?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fn pages(command: &clap::Command, name: &str, dir: &std::path::Path) -> anyhow::Result<()> {
        let page = command.clone().name(name.to_string());
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out)?;
        let path = dir.join(format!("{name}.1"));
        skiplab::data::store::write_atomically(&path, &out)?;
        for sub in command.get_subcommands() {
            pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
        }
        Ok(())
    }
    pages(&command, "skiplab", &dir)?;
    writeln!(cli::Stdout, "man pages written to {}", dir.display())?;
    Ok(ExitCode::SUCCESS)
}

/// What clap's own exits do, by the rule every command follows: help and the version go to
/// stdout and a write that fails there is an error (141 for a closed pipe), never exit 0.
fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    use std::io::IsTerminal;
    if !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
    }
    let text = match std::io::stdout().is_terminal() {
        true => e.render().ansi().to_string(),
        false => e.render().to_string(),
    };
    let written = write!(cli::Stdout, "{text}").and_then(|()| cli::Stdout.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(io) => {
            let (code, message) = cli::report_error(&anyhow::Error::from(io));
            if let Some(message) = message {
                eprintln!("{message}");
            }
            code
        }
    }
}

/// The arguments, where a negative number is read as a value of the option before it, so
/// `--epochs -1` is refused as a value of `--epochs` rather than as an unknown `-1`.
fn parse() -> Result<Args, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    fn negatives_are_values(command: clap::Command) -> clap::Command {
        command
            .mut_args(|a| match a.get_action().takes_values() {
                true => a.allow_negative_numbers(true),
                false => a,
            })
            .mut_subcommands(negatives_are_values)
    }
    let matches = negatives_are_values(Args::command()).try_get_matches()?;
    Args::from_arg_matches(&matches)
}

/// The variables that stand for flags: set but empty means unset, as for XDG's (an empty
/// `SKIPLAB_SAVES_DIR=` would otherwise be blamed on `--saves`).
const FLAG_VARIABLES: [&str; 7] = [
    "SKIPLAB_DATA_DIR",
    "SKIPLAB_SAVES_DIR",
    "SKIPLAB_DATA_MIRROR",
    "SKIPLAB_FETCH_DEADLINE",
    "SKIPLAB_MIN_RATE",
    "SKIPLAB_PYTHON",
    "SKIPLAB_CONFIG_DIR",
];

fn main() -> ExitCode {
    for var in FLAG_VARIABLES {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            // Before any thread starts: nothing else reads the environment yet.
            std::env::remove_var(var);
        }
    }
    let args = match parse() {
        Ok(args) => args,
        Err(e) => return clap_exit(e),
    };
    // A broken config file is named before anything else runs (`config` itself still runs,
    // so `config init --force` can replace it).
    if let (Some(e), false) = (
        cli::config_problem(),
        matches!(args.command, Some(Command::Config(_))),
    ) {
        eprintln!("error: {e}");
        return ExitCode::from(cli::exit::BAD_ARGUMENTS);
    }
    let result = match args.command {
        Some(Command::Config(a)) => cli::config::config(a),
        Some(Command::Train(a)) => cli::train::train(a),
        Some(Command::Bench(a)) => cli::bench::bench(a),
        Some(Command::Parity) => cli::parity::parity(),
        Some(Command::Data(a)) => cli::data::data(a),
        Some(Command::Resume(a)) => cli::resume::resume(a),
        Some(Command::Reproduce(a)) => cli::reproduce::reproduce(a),
        Some(Command::Runs(a)) if a.watch => cli::watch::runs(&a),
        Some(Command::Runs(a)) => cli::runs::list(a),
        Some(Command::Compare(a)) => cli::compare::compare(a),
        Some(Command::Export(a)) => cli::export::export(a),
        Some(Command::Analyze(a)) => cli::analyze::analyze(a),
        Some(Command::Sweep(a)) => cli::sweep::sweep(a),
        Some(Command::Completions { shell }) => completions(shell),
        Some(Command::Man { dir }) => man(dir),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it is.
    #[test]
    fn every_argument_has_a_help_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                match arg.get_help().map(|h| h.to_string()) {
                    None => missing.push(format!("{path} {id}: no help")),
                    Some(h) if h.trim().is_empty() => missing.push(format!("{path} {id}: empty")),
                    Some(h) if h.contains("Data set. Data set") => {
                        missing.push(format!("{path} {id}: repeats itself"))
                    }
                    Some(_) => {}
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}: no about", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let command = Args::command();
        command.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&command, "skiplab", &mut missing);
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }
}

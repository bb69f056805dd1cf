//! `skiplab resume`: a saved run trains on from its weights, in its own folder.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use crate::cli::{self, Place};
use crate::outln;
use skiplab::runs;
use skiplab::session::RunRequest;

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The saved run (id, unique prefix of it, or path).
    run: String,
    /// Further epochs to train.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    #[command(flatten)]
    place: Place,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// `skiplab resume`: trains a saved run for more epochs from its saved weights, in its own
/// folder (rows are appended; the optimiser's momentum starts afresh).
pub fn resume(args: ResumeArgs) -> Result<ExitCode> {
    if args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    let saved = runs::load_run(&runs::find_run(&args.place.saves, &args.run)?)?;
    let (id, done) = (saved.id.clone(), saved.epochs.len());
    // Refuses weights that are not this run's before anything starts.
    let request = RunRequest::resume(saved, args.epochs)?;
    let (mut session, inbox) = cli::headless(&args.place, true)?;
    if !args.json {
        outln!(
            "resuming {id} after epoch {done} for {} more on {}",
            args.epochs,
            session.settings().device
        );
    }
    let first = session.submit_all(vec![request])?;
    let signal = cli::follow(
        &mut session,
        &inbox,
        first,
        &mut cli::printer(args.json, false),
    )?;
    Ok(cli::exit_code(&session, signal))
}

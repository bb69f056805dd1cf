//! `skiplab config`: the settings file and the folders in effect.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use crate::outln;
use skiplab::data::store::write_atomically;
use skiplab::folders;

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Write a commented config file with every setting (refuses to replace one).
    Init {
        /// Replace an existing config file.
        #[arg(long)]
        force: bool,
    },
    /// Where the config file is, and the folders, device and theme in effect here.
    Show,
}

pub fn config(args: ConfigArgs) -> Result<ExitCode> {
    let path = folders::config_path();
    match args.command {
        ConfigCommand::Init { force } => {
            if path.exists() && !force {
                bail!(
                    "{} exists; edit it, or `skiplab config init --force` to start again",
                    path.display()
                );
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            write_atomically(&path, folders::config_template().as_bytes())?;
            outln!("wrote {}", path.display());
        }
        ConfigCommand::Show => {
            let state = match super::config_problem() {
                Some(e) => format!("BROKEN: {e}"),
                None if path.exists() => "read".to_string(),
                None => "none: `skiplab config init` writes one".to_string(),
            };
            outln!("config file  {} ({state})", path.display());
            let env = |var: &str| std::env::var_os(var).map(std::path::PathBuf::from);
            let shown = |var: &str, default: std::path::PathBuf| match env(var) {
                Some(p) => format!("{} (from {var})", p.display()),
                None => default.display().to_string(),
            };
            outln!(
                "data         {}",
                shown("SKIPLAB_DATA_DIR", folders::default_data_dir())
            );
            outln!(
                "saves        {}",
                shown("SKIPLAB_SAVES_DIR", folders::default_saves())
            );
            outln!("presets      {}", folders::default_presets_dir().display());
            outln!(
                "lab log      {}",
                folders::log_dir().join("skiplab.log").display()
            );
            outln!("device       {}", folders::default_device());
            let theme = folders::config()
                .as_ref()
                .map(|c| c.theme)
                .unwrap_or_default();
            outln!(
                "theme        {theme:?}{}",
                if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
                    " (NO_COLOR is set: no colour)"
                } else {
                    ""
                }
            );
            // A broken file is a bad request, as for every other command.
            if super::config_problem().is_some() {
                return Ok(ExitCode::from(super::exit::BAD_ARGUMENTS));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

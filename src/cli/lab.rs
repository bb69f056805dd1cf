//! `skiplab` with no command: the lab on this terminal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::cli::DeviceKind;
use skiplab::data::{self, DatasetName};
use skiplab::tui::{self, LabOptions};

#[derive(Args, Debug)]
pub struct LabArgs {
    /// Draw with ASCII only, for terminals without Unicode.
    #[arg(long)]
    ascii: bool,
    /// Runs the lab trains at the same time (later ones queue).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Where the lab's runs train.
    #[arg(long, value_enum, default_value_t = DeviceKind::configured())]
    device: DeviceKind,
    /// What the lab's runs train on: builtin, mnist, fashion-mnist, emnist-letters, cifar10.
    #[arg(long, default_value = "builtin")]
    dataset: DatasetName,
    /// Folder holding one folder per data set (see `skiplab data`): ./data when the current
    /// folder has one, else the config file's data_dir, else the platform's.
    #[arg(long, env = "SKIPLAB_DATA_DIR", default_value_os_t = skiplab::folders::default_data_dir())]
    data_dir: PathBuf,
    /// Open with this preset: a file, or a name in the presets folder or built in
    /// [default: quick, when the lab's data set is the built-in one].
    #[arg(long)]
    preset: Option<PathBuf>,
    /// Where presets are listed and saved: ./presets when the current folder has one, else
    /// the config file's presets_dir, else the platform's (the built-in presets are listed
    /// after these).
    #[arg(long, default_value_os_t = skiplab::folders::default_presets_dir())]
    presets_dir: PathBuf,
    /// Where every run is saved: ./saves when the current folder has one, else the config
    /// file's saves_dir, else the platform's; repeated (or a glob), the further folders are
    /// read too when `L` loads saved runs.
    #[arg(long, env = "SKIPLAB_SAVES_DIR", default_values_os_t = vec![skiplab::folders::default_saves()])]
    saves: Vec<PathBuf>,
    /// Do not save runs.
    #[arg(long)]
    no_save: bool,
    /// Follow the --saves folders as other processes write them (sweep tasks on Slurm
    /// nodes, GNU parallel jobs, a `train` in another terminal): their runs join the table
    /// and train live there, beside the lab's own.
    #[arg(long)]
    watch: bool,
    /// With --watch: a run that says it trains but whose files have not changed for this
    /// long shows as stalled (`90s`, `10m`).
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration, default_value = "10m")]
    stall_after: std::time::Duration,
    /// With --watch: poll only, without file notification.
    #[arg(long)]
    poll: bool,
}

pub fn lab(args: LabArgs) -> Result<ExitCode> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the lab needs a terminal on stdin and stdout (here one is a pipe or a file); \
             for scripts, `skiplab train`, `skiplab sweep` and `skiplab runs` work without one"
        );
    }
    let (device, note) = skiplab::device::resolve(args.device.into())?;
    // An explicit preset must load; the default one only where it exists and fits.
    // Names resolve in the presets folder, then among the compiled-in presets.
    let (name, preset) = match &args.preset {
        Some(path) => {
            let (name, e) = skiplab::folders::resolve_preset(path, &args.presets_dir)?;
            (name, Some(e))
        }
        None => {
            let quick = skiplab::folders::resolve_preset(Path::new("quick"), &args.presets_dir);
            let fits = quick.ok().filter(|(_, e)| e.dataset == args.dataset);
            ("quick".to_string(), fits.map(|(_, e)| e))
        }
    };
    // A preset names its data set; without --dataset the lab follows it.
    let dataset = match (&args.preset, &preset) {
        (Some(_), Some(e)) if args.dataset == DatasetName::Builtin => e.dataset,
        _ => args.dataset,
    };
    // Only whether it is there: runs load it on their own threads, the screen stays live.
    if let Some(missing) = data::missing(dataset, &args.data_dir) {
        return Err(missing.into());
    }
    let read_saves = crate::cli::Saves {
        saves: args.saves.clone(),
    }
    .folders()?;
    // The config file was checked at start-up; its key bindings are checked here.
    let config = skiplab::folders::config().clone().unwrap_or_default();
    let keys = tui::keys::KeyTable::with_bindings(&config.keys)
        .map_err(|e| anyhow::anyhow!("{}: {e}", skiplab::folders::config_path().display()))?;
    let signal = tui::run(LabOptions {
        log_dir: skiplab::folders::log_dir(),
        colours: tui::app::Colours::from_env(config.theme),
        keys,
        presets_dir: args.presets_dir.clone(),
        saves_dir: (!args.no_save).then(|| read_saves[0].clone()),
        read_saves,
        preset: preset.map(|e| (name, e)),
        ascii: args.ascii,
        parallel: args.parallel,
        device,
        note,
        dataset,
        data_dir: args.data_dir.clone(),
        watch: args.watch.then_some(skiplab::watch::WatchOptions {
            stall_after: args.stall_after,
            notify: !args.poll,
        }),
    })?;
    Ok(signal.map_or(ExitCode::SUCCESS, crate::cli::signal_exit))
}

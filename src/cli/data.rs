//! `skiplab data list | fetch | import | verify`: the data directory from the command line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::outln;
use skiplab::data::store::{self, FetchEvent, State};
use skiplab::data::DatasetName;

#[derive(Args, Debug)]
pub struct DataArgs {
    /// Folder holding one folder per data set.
    #[arg(long, env = "SKIPLAB_DATA_DIR", default_value_os_t = skiplab::folders::default_data_dir(), global = true)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// What the data directory holds: size, and whether each data set is installed whole.
    List,
    /// Download a data set from its publisher, check its checksums, and install it.
    Fetch {
        /// mnist, fashion-mnist, emnist-letters or cifar10.
        name: DatasetName,
        /// Fetch from this base URL instead (a mirror holding the same file names).
        #[arg(long, env = "SKIPLAB_DATA_MIRROR")]
        mirror: Option<String>,
        /// Give up on a mirror that sends fewer bytes a second than this over a whole
        /// minute (what came is kept; the next fetch resumes).
        #[arg(
            long,
            env = "SKIPLAB_MIN_RATE",
            default_value_t = 1024,
            value_name = "BYTES_PER_S"
        )]
        min_rate: u64,
        /// Give up on a file not downloaded within this long (`30m`, `2h`); none by default.
        #[arg(long, env = "SKIPLAB_FETCH_DEADLINE", value_parser = humantime::parse_duration)]
        deadline: Option<std::time::Duration>,
    },
    /// Install a data set from files you already have: the distributed archive (EMNIST's
    /// gzip.zip, CIFAR-10's cifar-10-binary.tar.gz) or a folder of its files.
    Import {
        /// mnist, fashion-mnist, emnist-letters or cifar10.
        name: DatasetName,
        /// The archive, or the folder holding the data set's files.
        path: PathBuf,
    },
    /// Re-check installed data sets: checksums against the manifest and the published ones,
    /// and a full load.
    Verify {
        /// One data set to check [default: every installed one].
        name: Option<DatasetName>,
    },
}

fn size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

fn installed(
    dir: &std::path::Path,
    name: DatasetName,
    manifest: &store::Manifest,
) -> Result<ExitCode> {
    outln!(
        "{name}: installed in {} ({} training + {} test images)",
        dir.join(name.as_str()).display(),
        manifest.train,
        manifest.test
    );
    Ok(ExitCode::SUCCESS)
}

fn catalog_names() -> impl Iterator<Item = DatasetName> {
    DatasetName::ALL.into_iter().filter(|n| n.entry().is_some())
}

pub fn data(args: DataArgs) -> Result<ExitCode> {
    let dir = &args.data_dir;
    match args.command {
        DataCommand::List => {
            outln!("data directory: {}", dir.display());
            outln!("{:<16} {:>10}  status", "data set", "size");
            // Compiled in: always there, whatever the folder holds.
            let bytes = skiplab::data::BUILTIN_BYTES;
            outln!(
                "{:<16} {:>10}  built in: 10,000 + 2,000 Fashion-MNIST images (the default)",
                "builtin",
                size(bytes as u64)
            );
            for name in catalog_names() {
                let status = store::status(dir, name);
                let state = match &status.state {
                    State::Absent => format!("absent: `skiplab data fetch {name}`"),
                    State::Installed(m) => format!(
                        "installed, {} + {} images, {} files as recorded ({})",
                        m.train,
                        m.test,
                        m.files.len(),
                        m.source
                    ),
                    State::Unmanaged => {
                        format!("files without a manifest: `skiplab data verify {name}`")
                    }
                    State::Damaged(why) => format!("DAMAGED: {why}"),
                };
                let shown = if status.state == State::Absent {
                    "-".to_string()
                } else {
                    size(status.bytes)
                };
                outln!("{:<16} {:>10}  {state}", name.as_str(), shown);
                if status.partial_bytes > 0 {
                    outln!(
                        "{:<16} {:>10}  partial download; `skiplab data fetch {name}` resumes it",
                        "",
                        size(status.partial_bytes)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Fetch {
            name,
            mirror,
            min_rate,
            deadline,
        } => {
            let pace = skiplab::data::fetch::Pace {
                min_rate,
                deadline,
                ..Default::default()
            };
            let mut bar: Option<(String, ProgressBar)> = None;
            let interactive = std::io::stderr().is_terminal();
            let mut on_event = |event: FetchEvent| match event {
                FetchEvent::Progress { file, done, total } => {
                    if !interactive {
                        return;
                    }
                    if bar.as_ref().is_none_or(|(f, _)| f != file) {
                        let b = ProgressBar::new(total.unwrap_or(0));
                        b.set_style(
                            ProgressStyle::with_template(
                                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                            )
                            .expect("a valid template")
                            .progress_chars("=> "),
                        );
                        b.set_message(file.to_string());
                        bar = Some((file.to_string(), b));
                    }
                    let (_, b) = bar.as_ref().expect("just set");
                    if let Some(total) = total {
                        b.set_length(total);
                    }
                    b.set_position(done);
                }
                FetchEvent::Verified { file, bytes } => {
                    if let Some((_, b)) = bar.take() {
                        b.finish_and_clear();
                    }
                    eprintln!("{file}: {} downloaded, checksum ok", size(bytes));
                }
                FetchEvent::Retrying { url, error } => {
                    eprintln!("{error}; trying the next mirror after {url}")
                }
            };
            let manifest = store::fetch(dir, name, mirror.as_deref(), &pace, &mut on_event)?;
            installed(dir, name, &manifest)
        }
        DataCommand::Import { name, path } => {
            let manifest = store::import(dir, name, &path)?;
            installed(dir, name, &manifest)
        }
        DataCommand::Verify { name } => {
            let names: Vec<DatasetName> = match name {
                Some(name) => vec![name],
                None => catalog_names()
                    .filter(|&n| store::status(dir, n).state != State::Absent)
                    .collect(),
            };
            if names.is_empty() {
                bail!("{} holds no data sets to verify", dir.display());
            }
            let mut failed = 0;
            for name in names {
                match store::verify(dir, name) {
                    Ok(lines) => {
                        outln!("{name}: OK");
                        for line in lines {
                            outln!("  {line}");
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        outln!("{name}: FAILED: {e}");
                    }
                }
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

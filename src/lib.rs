//! skiplab: a terminal lab for studying skip connections in neural networks.
//!
//! Layers, each depending only on those above it in this list:
//! - [`topology`]: pure description of MLPs and CNNs and their skip edges.
//! - [`data`]: loaders, the built-in data set, the data directory and its downloader,
//!   normalisation and splits.
//! - [`hyperparams`]: what a run trains with (optimiser, batch, epochs, seed, schedule), as
//!   plain data.
//! - [`net`]: run-time-shaped dfdx networks built from a topology, and their optimisers.
//! - [`train`]: the background trainer that streams events over a channel.
//! - [`experiment`]: presets (RON): a model, data set, optimiser and schedule.
//! - [`provenance`]: what made a run (build, machine, command), recorded with it.
//! - [`runs`]: saved runs on disk (`saves/<run-id>/`), written as training goes.
//! - [`analysis`]: what skip edges do in a trained network (edge usage), as plain results.
//! - [`compare`]: what differs between runs, seed groups, curves, smoothing, Welch's t-test.
//! - [`session`]: the one owner of every run's life (queue, data, saving, summaries), which
//!   the lab and the headless commands share.
//! - [`tui`]: the lab screen (ratatui + crossterm), which renders state and sends commands.

pub mod analysis;
pub mod cnn_plan;
pub mod compare;
pub mod data;
pub mod device;
pub mod experiment;
pub mod folders;
pub mod hyperparams;
pub mod net;
pub mod onnx;
pub mod parity;
pub mod provenance;
pub mod pytorch;
pub mod reproduce;
pub mod runs;
pub mod session;
pub mod sweep;
pub mod topology;
pub mod train;
pub mod tui;
pub mod watch;

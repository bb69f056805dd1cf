//! skiplab: a terminal lab for studying skip connections in neural networks.
//!
//! Layers, each depending only on those above it in this list:
//! - [`topology`]: pure description of MLPs and CNNs and their skip edges.
//! - [`data`]: IDX reading, the built-in data set, normalisation and splits.
//! - [`net`]: run-time-shaped dfdx networks built from a topology, and their optimisers.
//! - [`train`]: the background trainer that streams events over a channel.
//! - [`tui`]: the lab screen (ratatui + crossterm), which renders state and sends commands.

pub mod data;
pub mod device;
pub mod net;
pub mod parity;
pub mod topology;
pub mod train;
pub mod tui;

//! Analyses of what skip edges do in a trained network: a topology and its weights (later a
//! data set too) in, plain results out. No terminal, no files: the lab and the headless
//! commands render them.
//!
//! - [`usage`]: edge usage (Huang et al. 2017, DenseNet, Fig. 5): how strongly each layer
//!   reads each earlier layer's features, from the weights alone.

pub mod usage;

//! Analyses of what skip edges do in a trained network: a topology and its weights (later a
//! data set too) in, plain results out. No terminal, no files: the lab and the headless
//! commands render them.
//!
//! - [`usage`]: edge usage (Huang et al. 2017, DenseNet, Fig. 5): how strongly each layer
//!   reads each earlier layer's features, from the weights alone.
//! - [`cka`]: linear CKA (Kornblith et al. 2019), full and minibatch: how alike two layers'
//!   representations of the same examples are.
//! - [`landscape`]: loss landscapes (Li et al. 2018) along filter-normalised random
//!   directions, 1-D and 2-D, with a sharpness summary.
//! - [`lesion`]: lesion studies (Veit et al. 2016): what a trained network loses, without
//!   retraining, when a layer is deleted, an edge removed, or k blocks deleted at random.

pub mod cka;
pub mod landscape;
pub mod lesion;
pub mod usage;

use crate::topology::{CnnLayerKind, Topology};

/// Every layer's name by number, as the analyses and the lab name them: `input`, then an
/// MLP's `fc1`, `fc2`, ... or a CNN's `conv1`, `pool3`, ..., and `out` for the classifier.
pub fn layer_names(topology: &Topology) -> Vec<String> {
    let mut names = vec!["input".to_string()];
    match topology {
        Topology::Mlp(mlp) => names.extend((1..=mlp.hidden.len()).map(|n| format!("fc{n}"))),
        Topology::Cnn(cnn) => names.extend(cnn.layers().iter().map(|l| match l.kind {
            CnnLayerKind::Conv { .. } => format!("conv{}", l.number),
            CnnLayerKind::Pool => format!("pool{}", l.number),
        })),
    }
    names.push("out".into());
    names
}

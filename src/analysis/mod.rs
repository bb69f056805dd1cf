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

/// Evaluates `$body` with `$dev` the device `$device` names, in a function returning
/// `Result<_, E>` where `$err(String)` makes an `E`: the CPU, with a worker pool of its own
/// as a run trains, or a CUDA GPU where this skiplab was built with CUDA. The CPU runs
/// without the training device's buffer cache: a study often runs beside a training run (in
/// the lab, in the reproductions), and the cache would keep a whole evaluation batch's
/// activations (measured: ResNet-20's lesion study peaked at 913 MB with it, 499 MB without,
/// and took 15% longer without).
macro_rules! on_device {
    ($device:expr, $seed:expr, $err:path, |$dev:ident| $body:expr) => {{
        #[allow(unused_imports)]
        use dfdx::prelude::*;
        match $device {
            $crate::device::Device::Cpu => {
                let _pool = $crate::train::cpu_worker_pool_here();
                let $dev = Cpu::seed_from_u64($seed);
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::device::Device::Cuda { ordinal } => {
                let $dev = Cuda::try_build(ordinal, $seed)
                    .map_err(|e| $err(format!("cannot start CUDA device {ordinal}: {e}")))?;
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::device::Device::Cuda { .. } => {
                Err($err("this skiplab was built without CUDA support".into()))
            }
        }
    }};
}

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

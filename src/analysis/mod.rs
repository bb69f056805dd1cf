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

use crate::data::Samples;
use crate::net::ops::NetDevice;
use crate::net::{HostParam, Network};
use crate::topology::{CnnLayerKind, Topology};

/// What stopped a study of a trained network.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StudyError {
    #[error("the weights do not fit the topology: {0}")]
    Weights(String),
    #[error("the samples have {found} values each; the network reads {expected}")]
    Samples { expected: usize, found: usize },
    #[error("there are no samples to evaluate on")]
    NoSamples,
    #[error("a landscape has 1 or 2 dimensions, at least 1 point per axis and a positive range")]
    Grid,
    #[error("CKA needs at least 4 samples in a batch; there are {0}")]
    TooFew(usize),
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Device(String),
}

/// The network of `topology` with the trained `params` on `dev`, once `samples` are known
/// to fit it: what every study evaluates.
pub fn trained<D: NetDevice<f32>>(
    dev: &D,
    topology: &Topology,
    params: &[HostParam],
    samples: &Samples,
) -> Result<Network<f32, D>, StudyError> {
    if samples.is_empty() {
        return Err(StudyError::NoSamples);
    }
    if samples.dim() != topology.input_len() {
        return Err(StudyError::Samples {
            expected: topology.input_len(),
            found: samples.dim(),
        });
    }
    let mut net = Network::<f32, D>::new(topology.clone(), dev, 0)
        .map_err(|e| StudyError::Weights(e.to_string()))?;
    net.import(params).map_err(StudyError::Weights)?;
    Ok(net)
}

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

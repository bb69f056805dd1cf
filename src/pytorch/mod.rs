//! A topology as a readable, self-contained PyTorch module (`model.py`): its layers in
//! `__init__`, the skip edges spelled out in `forward` in the order [`crate::net::Network`]
//! computes them, and `load(path)`, which reads a run's `weights.safetensors` (skiplab's
//! tensor names and layouts) into it. [`mlp`] and [`cnn`] say how each family's layers are
//! written.

use std::fmt::Write as _;

use crate::net::{norm_names, NORM_EPS, NORM_MOMENTUM};
use crate::topology::{Norm, SkipEdge, Topology};

mod cnn;
mod mlp;

/// What a family's writer gives: the lines of `__init__`, `forward` and the state dict
/// `load` builds, helpers the state dict uses, and how a caller shapes its input.
#[derive(Default)]
struct Parts {
    init: String,
    forward: String,
    state: String,
    helpers: String,
    usage: String,
}

/// `model.py` for `topology`; `title` heads its docstring (the run's id and what it is).
pub fn module(topology: &Topology, title: &str) -> String {
    let (parts, residual) = match topology {
        Topology::Mlp(spec) => (mlp::parts(spec), &spec.residual),
        Topology::Cnn(spec) => (cnn::parts(spec), &spec.residual),
    };
    let edges: Vec<String> = topology
        .skips()
        .iter()
        .map(|e: &SkipEdge| {
            let kind = match residual.contains(e) {
                true => "residual",
                false => "concat",
            };
            format!("{}-{} {kind}", e.from, e.to)
        })
        .collect();
    let Parts {
        init,
        forward,
        state,
        helpers,
        usage,
    } = parts;
    format!(
        r#""""{title}

Exported by skiplab {version}: the network as a PyTorch module, its skip edges spelled out
({edges}). Load a run's weights and go on:

    from model import load
    net = load("weights.safetensors")      # in evaluation mode; net.train() to train on
    logits = net({usage})
"""
import torch
from torch import nn
import torch.nn.functional as F
{helpers}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
{init}
    def forward(self, x):
{forward}

def load(path):
    """The network with the weights of a skiplab `weights.safetensors` (or `best.safetensors`)."""
    from safetensors.torch import load_file

    w = load_file(path)
    net = Net()
    net.load_state_dict({{
{state}    }})
    return net.eval()
"#,
        version = env!("CARGO_PKG_VERSION"),
        edges = match edges.is_empty() {
            true => "none".to_string(),
            false => edges.join(", "),
        },
    )
}

/// `w["name"]`, or the concatenation of several such tensors.
fn tensors(names: &[String]) -> String {
    let read: Vec<String> = names.iter().map(|n| format!("w[\"{n}\"]")).collect();
    match read.as_slice() {
        [only] => only.clone(),
        _ => format!("torch.cat([{}])", read.join(", ")),
    }
}

/// The constructor of a normalisation module over `units` channels or features.
fn norm_module(norm: Norm, units: usize, images: bool) -> String {
    match (norm, images) {
        (Norm::Layer, _) => format!("nn.LayerNorm({units}, eps={NORM_EPS})"),
        (_, true) => format!("nn.BatchNorm2d({units}, eps={NORM_EPS}, momentum={NORM_MOMENTUM})"),
        (_, false) => format!("nn.BatchNorm1d({units}, eps={NORM_EPS}, momentum={NORM_MOMENTUM})"),
    }
}

/// The state of normalisation module `module` from skiplab's normalisations `layers` (their
/// channels concatenated in order): scale and shift, and batch norm's running estimates.
fn norm_state(state: &mut String, module: &str, norm: Norm, layers: &[String]) {
    let part =
        |k: usize| -> Vec<String> { layers.iter().map(|l| norm_names(l)[k].clone()).collect() };
    let _ = writeln!(state, "        \"{module}.weight\": {},", tensors(&part(0)));
    let _ = writeln!(state, "        \"{module}.bias\": {},", tensors(&part(1)));
    if norm == Norm::Batch {
        let _ = writeln!(
            state,
            "        \"{module}.running_mean\": {},",
            tensors(&part(2))
        );
        let _ = writeln!(
            state,
            "        \"{module}.running_var\": {},",
            tensors(&part(3))
        );
        let _ = writeln!(
            state,
            "        \"{module}.num_batches_tracked\": torch.tensor(0),"
        );
    }
}

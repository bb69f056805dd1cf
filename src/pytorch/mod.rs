//! A topology as a readable, self-contained PyTorch module (`model.py`): its layers in
//! `__init__`, the skip edges spelled out in `forward` in the order [`crate::net::Network`]
//! computes them, and `load(path)`, which reads a run's `weights.safetensors` (skiplab's
//! tensor names and layouts) into it. [`mlp`] and [`cnn`] say how each family's layers are
//! written.

use crate::topology::{SkipEdge, Topology};
use parts::Parts;

mod cnn;
mod mlp;
mod parts;

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

//! A topology as a readable, self-contained PyTorch module (`model.py`): one `nn.Linear` per
//! layer (over the concatenation of its sources where skips concatenate), the residual edges
//! and their projections, the normalisation and the activation, spelled out in `forward` in
//! the order [`crate::net::Network`] computes them; and `load(path)`, which reads a run's
//! `weights.safetensors` (skiplab's tensor names, `[in, out]` blocks) into it. CNNs do not
//! export yet and say so.

use std::fmt::Write as _;

use crate::net::{mlp_residual_name, mlp_weight_name, NORM_EPS, NORM_MOMENTUM};
use crate::topology::{Activation, MlpSpec, Norm, Topology};

/// Why a topology does not export.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PytorchError {
    #[error("a CNN does not export to PyTorch yet: only MLPs do (every edge kind, normalisation and activation)")]
    Cnn,
}

/// `h3` for layer 3's output, `x` for the input.
fn value(layer: usize) -> String {
    match layer {
        0 => "x".into(),
        n => format!("h{n}"),
    }
}

/// The module's name for layer `to`: `fc3`, or `out` for the classifier.
fn layer_name(mlp: &MlpSpec, to: usize) -> String {
    match to == mlp.output_layer() {
        true => "out".into(),
        false => format!("fc{to}"),
    }
}

/// `model.py` for `topology`; `title` heads its docstring (the run's id and what it is).
pub fn module(topology: &Topology, title: &str) -> Result<String, PytorchError> {
    let Topology::Mlp(mlp) = topology else {
        return Err(PytorchError::Cnn);
    };
    let mut init = String::new();
    let mut forward = String::new();
    let mut state = String::new();
    let activation = |z: &str| match mlp.activation {
        Activation::Relu => format!("F.relu({z})"),
        Activation::Tanh => format!("torch.tanh({z})"),
        Activation::Sigmoid => format!("torch.sigmoid({z})"),
        Activation::Gelu => format!("F.gelu({z}, approximate=\"tanh\")"),
        Activation::Linear => z.to_string(),
    };
    for to in 1..mlp.num_layers() {
        let name = layer_name(mlp, to);
        let hidden = to != mlp.output_layer();
        let normed = hidden && mlp.norm != Norm::None;
        let sources = mlp.sources(to);
        let fan_in: Vec<String> = sources.iter().map(|&f| mlp.width(f).to_string()).collect();
        let read: Vec<String> = sources.iter().map(|&f| value(f)).collect();
        let reads = match read.as_slice() {
            [only] => only.clone(),
            [main, skips @ ..] => format!("{main} and, concatenated, {}", skips.join(", ")),
            [] => String::new(),
        };
        let _ = writeln!(
            init,
            "        # {name} reads {reads}\n        self.{name} = nn.Linear({}, {}, bias={})",
            fan_in.join(" + "),
            mlp.width(to),
            if normed { "False" } else { "True" }
        );
        let input = match read.as_slice() {
            [only] => only.clone(),
            _ => format!("torch.cat([{}], dim=1)", read.join(", ")),
        };
        let blocks: Vec<String> = sources
            .iter()
            .map(|&f| format!("w[\"{}\"]", mlp_weight_name(f, to)))
            .collect();
        let weight = match blocks.as_slice() {
            [only] => format!("{only}.T"),
            _ => format!("torch.cat([{}], dim=0).T", blocks.join(", ")),
        };
        let _ = writeln!(state, "        \"{name}.weight\": {weight},");
        if !normed {
            let _ = writeln!(state, "        \"{name}.bias\": w[\"fc{to}.b\"],");
        }
        let mut z = format!("self.{name}({input})");
        let residuals = mlp.residuals_into(to);
        for &(from, identity) in &residuals {
            if !identity {
                let r = format!("{name}_r{from}");
                let _ = writeln!(
                    init,
                    "        # the residual edge {from}-{to}, projected (widths {} and {})\n        self.{r} = nn.Linear({}, {}, bias=False)",
                    mlp.width(from),
                    mlp.width(to),
                    mlp.width(from),
                    mlp.width(to)
                );
                let _ = writeln!(
                    state,
                    "        \"{r}.weight\": w[\"{}\"].T,",
                    mlp_residual_name(from, to)
                );
                z = format!("{z} + self.{r}({})", value(from));
            }
        }
        if normed {
            let norm = format!("{name}_norm");
            let module = match mlp.norm {
                Norm::Batch => format!(
                    "nn.BatchNorm1d({}, eps={NORM_EPS}, momentum={NORM_MOMENTUM})",
                    mlp.width(to)
                ),
                _ => format!("nn.LayerNorm({}, eps={NORM_EPS})", mlp.width(to)),
            };
            let _ = writeln!(init, "        self.{norm} = {module}");
            let _ = writeln!(state, "        \"{norm}.weight\": w[\"fc{to}.gamma\"],");
            let _ = writeln!(state, "        \"{norm}.bias\": w[\"fc{to}.beta\"],");
            if mlp.norm == Norm::Batch {
                let _ = writeln!(
                    state,
                    "        \"{norm}.running_mean\": w[\"fc{to}.running_mean\"],"
                );
                let _ = writeln!(
                    state,
                    "        \"{norm}.running_var\": w[\"fc{to}.running_var\"],"
                );
                let _ = writeln!(
                    state,
                    "        \"{norm}.num_batches_tracked\": torch.tensor(0),"
                );
            }
            z = format!("self.{norm}({z})");
        }
        for &(from, identity) in &residuals {
            if identity {
                z = format!("{z} + {}", value(from));
            }
        }
        let _ = match hidden {
            true => writeln!(forward, "        {} = {}", value(to), activation(&z)),
            false => writeln!(forward, "        return {z}"),
        };
    }
    let edges: Vec<String> = mlp
        .skips
        .iter()
        .map(|e| {
            let kind = if mlp.residual.contains(e) {
                "residual"
            } else {
                "concat"
            };
            format!("{}-{} {kind}", e.from, e.to)
        })
        .collect();
    Ok(format!(
        r#""""{title}

Exported by skiplab {version}: the network as a PyTorch module, its skip edges spelled out
({edges}). Load a run's weights and go on:

    from model import load
    net = load("weights.safetensors")      # in evaluation mode; net.train() to train on
    logits = net(images.reshape(-1, {inputs}))
"""
import torch
from torch import nn
import torch.nn.functional as F


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
        edges = if edges.is_empty() {
            "none".to_string()
        } else {
            edges.join(", ")
        },
        inputs = mlp.input,
    ))
}

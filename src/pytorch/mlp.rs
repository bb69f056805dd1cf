//! An MLP as PyTorch: one `nn.Linear` per layer (over the concatenation of its sources where
//! skips concatenate, its weight blocks stacked in the same order), the residual edges and
//! their projections, the normalisation and the activation.

use std::fmt::Write as _;

use super::parts::Parts;
use crate::net::{mlp_residual_name, mlp_weight_name};
use crate::topology::{Activation, MlpSpec, Norm};

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

pub(super) fn parts(mlp: &MlpSpec) -> Parts {
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
            let module = super::parts::norm_module(mlp.norm, mlp.width(to), false);
            let _ = writeln!(init, "        self.{norm} = {module}");
            super::parts::norm_state(&mut state, &norm, mlp.norm, &[format!("fc{to}")]);
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
    Parts {
        init,
        forward,
        state,
        helpers: String::new(),
        usage: format!("images.reshape(-1, {})", mlp.input),
    }
}

//! An MLP as ONNX nodes: a layer's concatenating skips a `Concat` of their sources into one
//! `MatMul` (its weight blocks stacked in the same order), a residual edge an `Add` (through a
//! `MatMul` projection where the widths differ, added before the normalisation, as the network
//! adds it), batch norm `BatchNormalization` with the running estimates, layer norm
//! `LayerNormalization`, and the activation.

use super::graph::{float_attribute, int_attribute, string_attribute, ExportError, Graph, OUTPUT};
use crate::net::{mlp_residual_name, mlp_weight_name, norm_names, HostParam, NORM_EPS};
use crate::topology::{Activation, MlpSpec, Norm};

pub(super) fn mlp_graph(mlp: &MlpSpec, params: &[HostParam]) -> Result<Graph, ExportError> {
    let find = |name: &str| super::graph::find(params, name);
    let mut g = Graph::default();
    // Each layer's output by number: the input, then what each layer computed.
    let mut outputs: Vec<String> = vec![super::graph::INPUT.to_string()];
    for to in 1..mlp.num_layers() {
        let layer = if to == mlp.output_layer() {
            "out".to_string()
        } else {
            format!("fc{to}")
        };
        // Concatenating sources: one product of their concatenation and the stacked blocks.
        let sources = mlp.sources(to);
        let mut stacked = Vec::new();
        for &from in &sources {
            stacked.extend_from_slice(&find(&mlp_weight_name(from, to))?.values);
        }
        let fan_in: usize = sources.iter().map(|&f| mlp.width(f)).sum();
        let x = match sources.as_slice() {
            [only] => outputs[*only].clone(),
            _ => {
                let inputs: Vec<&str> = sources.iter().map(|&f| outputs[f].as_str()).collect();
                g.node(
                    &format!("{layer}.concat"),
                    "Concat",
                    &inputs,
                    vec![int_attribute("axis", 1)],
                )
            }
        };
        let w = g.constant(&format!("{layer}.w"), &[fan_in, mlp.width(to)], stacked);
        let mut z = g.node(&format!("{layer}.matmul"), "MatMul", &[&x, &w], Vec::new());
        // Projected residuals add before the normalisation, identities after it.
        let residuals = mlp.residuals_into(to);
        for &(from, identity) in &residuals {
            if identity {
                continue;
            }
            let name = mlp_residual_name(from, to);
            let r = find(&name)?;
            let r = g.constant(&name, &[mlp.width(from), mlp.width(to)], r.values.clone());
            let projected = g.node(
                &format!("{layer}.r{from}.matmul"),
                "MatMul",
                &[&outputs[from], &r],
                Vec::new(),
            );
            z = g.node(
                &format!("{layer}.add_r{from}"),
                "Add",
                &[&z, &projected],
                Vec::new(),
            );
        }
        let hidden = to != mlp.output_layer();
        let width = mlp.width(to);
        match (hidden, mlp.norm) {
            (true, Norm::Batch) => {
                let [gamma, beta, mean, var] = norm_names(&layer);
                let inputs: Vec<String> = [gamma, beta, mean, var]
                    .iter()
                    .map(|n| Ok(g.constant(n, &[width], find(n)?.values.clone())))
                    .collect::<Result<_, ExportError>>()?;
                let refs: Vec<&str> = std::iter::once(z.as_str())
                    .chain(inputs.iter().map(String::as_str))
                    .collect();
                z = g.node(
                    &format!("{layer}.batch_norm"),
                    "BatchNormalization",
                    &refs,
                    vec![float_attribute("epsilon", NORM_EPS as f32)],
                );
            }
            (true, Norm::Layer) => {
                let [gamma, beta, ..] = norm_names(&layer);
                let gamma = g.constant(&gamma, &[width], find(&gamma)?.values.clone());
                let beta = g.constant(&beta, &[width], find(&beta)?.values.clone());
                z = g.node(
                    &format!("{layer}.layer_norm"),
                    "LayerNormalization",
                    &[&z, &gamma, &beta],
                    vec![
                        int_attribute("axis", -1),
                        float_attribute("epsilon", NORM_EPS as f32),
                    ],
                );
            }
            _ => {
                let bias = format!("fc{to}.b");
                let b = g.constant(&bias, &[width], find(&bias)?.values.clone());
                z = g.node(&format!("{layer}.bias"), "Add", &[&z, &b], Vec::new());
            }
        }
        for &(from, identity) in &residuals {
            if identity {
                z = g.node(
                    &format!("{layer}.add_{from}"),
                    "Add",
                    &[&z, &outputs[from]],
                    Vec::new(),
                );
            }
        }
        let out = match (hidden, mlp.activation) {
            (false, _) => g.node(OUTPUT, "Identity", &[&z], Vec::new()),
            (true, Activation::Relu) => g.node(&layer, "Relu", &[&z], Vec::new()),
            (true, Activation::Tanh) => g.node(&layer, "Tanh", &[&z], Vec::new()),
            (true, Activation::Sigmoid) => g.node(&layer, "Sigmoid", &[&z], Vec::new()),
            (true, Activation::Gelu) => g.node(
                &layer,
                "Gelu",
                &[&z],
                vec![string_attribute("approximate", "tanh")],
            ),
            (true, Activation::Linear) => g.node(&layer, "Identity", &[&z], Vec::new()),
        };
        outputs.push(out);
    }
    Ok(g)
}

//! A trained network as a standard ONNX model, so tools no one here wrote (Netron, ONNX
//! Runtime) draw and run it. The protobuf types are generated at build time from ONNX's own
//! `onnx.proto3` (vendored in `proto/`) by prost with protox, a pure-Rust protobuf compiler:
//! nothing here encodes protobuf by hand.
//!
//! The graph computes what [`crate::net::Network::forward`] computes in evaluation mode, op by
//! op, named as the lab names the layers: an MLP layer's concatenating skips are a `Concat`
//! of their sources into one `MatMul` (its weight blocks stacked in the same order), a
//! residual edge an `Add` (through a `MatMul` projection where the widths differ, added
//! before the normalisation, as the network adds it), batch norm `BatchNormalization` with
//! the running estimates, layer norm `LayerNormalization`, and the activation. CNNs do not
//! export yet and say so.

use prost::Message;

use crate::net::{mlp_residual_name, mlp_weight_name, norm_names, HostParam, NORM_EPS};
use crate::topology::{Activation, MlpSpec, Norm, Topology};

/// The generated ONNX types.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

use proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The opset the models use: 20 has `Gelu` with the tanh approximation the network uses.
pub const OPSET: i64 = 20;
/// ONNX IR version 9 (what opset 20 comes with).
pub const IR_VERSION: i64 = 9;
/// The graph's input and output names.
pub const INPUT: &str = "input";
pub const OUTPUT: &str = "logits";

/// Why a network does not export.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExportError {
    #[error("a CNN does not export to ONNX yet: only MLPs do (every edge kind, normalisation and activation)")]
    Cnn,
    #[error("the weights lack `{0}`, which the topology needs")]
    Missing(String),
}

/// The graph under construction.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Graph {
    /// Adds a node named `name` computing `output` by `op` from `inputs`.
    fn node(
        &mut self,
        name: &str,
        op: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            name: name.to_string(),
            op_type: op.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.to_string()],
            attribute: attributes,
            ..Default::default()
        });
        name.to_string()
    }

    /// A float tensor of the model's weights.
    fn constant(&mut self, name: &str, dims: &[usize], values: Vec<f32>) -> String {
        self.initializers.push(TensorProto {
            name: name.to_string(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            float_data: values,
            ..Default::default()
        });
        name.to_string()
    }
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn float_attribute(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Float as i32,
        f: value,
        ..Default::default()
    }
}

fn string_attribute(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::String as i32,
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// `[batch, features]` float, the batch named `batch`.
fn matrix_info(name: &str, features: usize) -> ValueInfoProto {
    let dim = |value| proto::tensor_shape_proto::Dimension {
        value: Some(value),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim(dimension::Value::DimParam("batch".into())),
                        dim(dimension::Value::DimValue(features as i64)),
                    ],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The network of `topology` with its trained `params` as an ONNX model; `name` names the
/// graph (the run's id).
pub fn model(
    topology: &Topology,
    params: &[HostParam],
    name: &str,
) -> Result<ModelProto, ExportError> {
    let (graph, inputs, outputs) = match topology {
        Topology::Mlp(mlp) => (mlp_graph(mlp, params)?, mlp.input, mlp.classes),
        Topology::Cnn(_) => return Err(ExportError::Cnn),
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: "skiplab".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("{}: {}", name, topology.summary()),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        graph: Some(GraphProto {
            name: name.to_string(),
            node: graph.nodes,
            initializer: graph.initializers,
            input: vec![matrix_info(INPUT, inputs)],
            output: vec![matrix_info(OUTPUT, outputs)],
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// [`model`] as the bytes of a `.onnx` file.
pub fn model_bytes(
    topology: &Topology,
    params: &[HostParam],
    name: &str,
) -> Result<Vec<u8>, ExportError> {
    Ok(model(topology, params, name)?.encode_to_vec())
}

fn mlp_graph(mlp: &MlpSpec, params: &[HostParam]) -> Result<Graph, ExportError> {
    let find = |name: &str| {
        params
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ExportError::Missing(name.to_string()))
    };
    let mut g = Graph::default();
    // Each layer's output by number: the input, then what each layer computed.
    let mut outputs: Vec<String> = vec![INPUT.to_string()];
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

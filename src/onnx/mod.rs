//! A trained network as a standard ONNX model, so tools no one here wrote (Netron, ONNX
//! Runtime) draw and run it. The protobuf types are generated at build time from ONNX's own
//! `onnx.proto3` (vendored in `proto/`) by prost with protox, a pure-Rust protobuf compiler:
//! nothing here encodes protobuf by hand.
//!
//! The graph computes what [`crate::net::Network::forward`] computes in evaluation mode, op by
//! op, named as the lab names the layers (`fc3`, `conv4`, `pool3`, `out`); [`mlp`] and
//! [`cnn`] say how each family's layers become nodes. The input is what skiplab's data holds,
//! `[batch, features]` (a CNN's images as rows of channels-last pixels, which its graph
//! reshapes to NCHW first), the output the logits.

use prost::Message;

use crate::net::HostParam;
use crate::topology::Topology;

mod cnn;
mod mlp;

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
    #[error("the weights lack `{0}`, which the topology needs")]
    Missing(String),
}

/// The values of the parameter `name`.
fn find<'a>(params: &'a [HostParam], name: &str) -> Result<&'a HostParam, ExportError> {
    params
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ExportError::Missing(name.to_string()))
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

    /// Renames the node added last, and its output (which nothing reads yet), to `name`.
    fn rename_last(&mut self, name: &str) -> String {
        let node = self.nodes.last_mut().expect("a node was added");
        node.name = name.to_string();
        node.output = vec![name.to_string()];
        name.to_string()
    }

    /// An int64 tensor (shapes, pads, slice bounds).
    fn int64s(&mut self, name: &str, values: &[i64]) -> String {
        self.initializers.push(TensorProto {
            name: name.to_string(),
            dims: vec![values.len() as i64],
            data_type: DataType::Int64 as i32,
            int64_data: values.to_vec(),
            ..Default::default()
        });
        name.to_string()
    }
}

fn ints_attribute(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
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
        Topology::Mlp(spec) => (mlp::mlp_graph(spec, params)?, spec.input, spec.classes),
        Topology::Cnn(spec) => (
            cnn::cnn_graph(spec, params)?,
            topology.input_len(),
            spec.classes,
        ),
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

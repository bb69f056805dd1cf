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
mod graph;
mod mlp;

/// The generated ONNX types.
pub mod proto;

use graph::matrix_info;
pub use graph::{ExportError, INPUT, OUTPUT};
use proto::{GraphProto, ModelProto, OperatorSetIdProto};

/// The opset the models use: 20 has `Gelu` with the tanh approximation the network uses.
pub const OPSET: i64 = 20;
/// ONNX IR version 9 (what opset 20 comes with).
pub const IR_VERSION: i64 = 9;

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

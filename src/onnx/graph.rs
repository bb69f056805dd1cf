//! The pieces every family's graph is built from: the graph under construction, attributes,
//! tensors and the model's input and output names.

use super::proto::{
    self, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    type_proto, AttributeProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use crate::net::HostParam;

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
pub(super) fn find<'a>(params: &'a [HostParam], name: &str) -> Result<&'a HostParam, ExportError> {
    params
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ExportError::Missing(name.to_string()))
}

/// The graph under construction.
#[derive(Default)]
pub(super) struct Graph {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
}

impl Graph {
    /// Adds a node named `name` computing `output` by `op` from `inputs`.
    pub(super) fn node(
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
    pub(super) fn constant(&mut self, name: &str, dims: &[usize], values: Vec<f32>) -> String {
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
    pub(super) fn rename_last(&mut self, name: &str) -> String {
        let node = self.nodes.last_mut().expect("a node was added");
        node.name = name.to_string();
        node.output = vec![name.to_string()];
        name.to_string()
    }

    /// An int64 tensor (shapes, pads, slice bounds).
    pub(super) fn int64s(&mut self, name: &str, values: &[i64]) -> String {
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

pub(super) fn ints_attribute(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

pub(super) fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

pub(super) fn float_attribute(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Float as i32,
        f: value,
        ..Default::default()
    }
}

pub(super) fn string_attribute(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::String as i32,
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// `[batch, features]` float, the batch named `batch`.
pub(super) fn matrix_info(name: &str, features: usize) -> ValueInfoProto {
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

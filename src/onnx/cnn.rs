//! A CNN as ONNX nodes, following its [`crate::cnn_plan`]: the input rows reshaped to
//! `[batch, height, width, channels]` and transposed to NCHW (`image`); each layer's output one
//! NCHW tensor named as the lab names the layer (`conv4`, `pool3`), its concatenating skips a
//! `Concat` of the convolution's output and the sources, each brought to the layer's size by
//! `MaxPool` (or a stride-2 `Slice` beside strided convolutions); a convolution over several
//! channel groups one `Conv` over their concatenation; residual edges an `Add` of the source
//! as it is, through a 1x1 `Conv` projection (with its `BatchNormalization`), or padded with
//! zero channels by `Pad` (option A); batch norm `BatchNormalization` with the running
//! estimates; the head `Flatten` (or `GlobalAveragePool`) into a `MatMul`.

use std::collections::BTreeMap;

use super::graph::{ints_attribute, ExportError, Graph, INPUT, OUTPUT};
use super::proto::AttributeProto;
use crate::cnn_plan::{
    conv_weight, flatten_weight, plan, projection_weight, Carry, ConvStep, Source, Step,
};
use crate::net::{norm_names, HostParam, NORM_EPS};
use crate::topology::{BlockOrder, ChannelGroup, CnnSpec, Downsample, Head, Norm};

/// Builds the graph of one CNN.
struct CnnGraph<'a> {
    g: Graph,
    cnn: &'a CnnSpec,
    params: &'a [HostParam],
    /// Each layer's output by number (0: the image).
    outputs: BTreeMap<usize, String>,
}

impl CnnGraph<'_> {
    fn find(&self, name: &str) -> Result<&[f32], ExportError> {
        super::graph::find(self.params, name).map(|p| p.values.as_slice())
    }

    /// The blocks `{layer}.w[key]` of `groups`, in order.
    fn blocks(&self, layer: &str, groups: &[ChannelGroup]) -> Result<Vec<&[f32]>, ExportError> {
        groups
            .iter()
            .map(|g| self.find(&format!("{layer}.w[{}]", g.key())))
            .collect()
    }

    /// `x` through batch norm with the running estimates of `layers` (one per channel group,
    /// their channels concatenated), as node `name`.
    fn batch_norm(
        &mut self,
        name: &str,
        x: &str,
        layers: &[String],
    ) -> Result<String, ExportError> {
        let mut inputs = vec![x.to_string()];
        for (k, part) in ["gamma", "beta", "running_mean", "running_var"]
            .into_iter()
            .enumerate()
        {
            let mut values = Vec::new();
            for layer in layers {
                values.extend_from_slice(self.find(&norm_names(layer)[k])?);
            }
            let len = values.len();
            inputs.push(self.g.constant(&format!("{name}.{part}"), &[len], values));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let epsilon = super::graph::float_attribute("epsilon", NORM_EPS as f32);
        Ok(self
            .g
            .node(name, "BatchNormalization", &refs, vec![epsilon]))
    }

    /// Normalises (where the network does) and rectifies `x`, the groups' per-channel
    /// normalisations `{layer}.pre[key]` concatenated: a pre-activation layer's input.
    fn pre_activate(
        &mut self,
        layer: &str,
        x: &str,
        groups: &[ChannelGroup],
    ) -> Result<String, ExportError> {
        let x = match self.cnn.norm {
            Norm::None => x.to_string(),
            _ => {
                let names: Vec<String> = groups
                    .iter()
                    .map(|g| format!("{layer}.pre[{}]", g.key()))
                    .collect();
                self.batch_norm(&format!("{layer}.pre_norm"), x, &names)?
            }
        };
        Ok(self
            .g
            .node(&format!("{layer}.pre_relu"), "Relu", &[&x], Vec::new()))
    }

    /// The tensor a skip edge reads, brought to its target's size; nodes named `{prefix}.…`.
    fn source(&mut self, source: Source, prefix: &str) -> String {
        let mut x = self.outputs[&source.layer].clone();
        for k in 1..=source.halvings {
            let name = match source.halvings {
                1 => prefix.to_string(),
                _ => format!("{prefix}{k}"),
            };
            x = match self.cnn.downsample {
                Downsample::Pool => self.g.node(
                    &format!("{name}.maxpool"),
                    "MaxPool",
                    &[&x],
                    pool_attributes(),
                ),
                Downsample::Stride => {
                    let starts = self.g.int64s(&format!("{name}.starts"), &[0, 0]);
                    let ends = self
                        .g
                        .int64s(&format!("{name}.ends"), &[i64::MAX, i64::MAX]);
                    let axes = self.g.int64s(&format!("{name}.axes"), &[2, 3]);
                    let steps = self.g.int64s(&format!("{name}.steps"), &[2, 2]);
                    self.g.node(
                        &format!("{name}.subsample"),
                        "Slice",
                        &[&x, &starts, &ends, &axes, &steps],
                        Vec::new(),
                    )
                }
            };
        }
        x
    }

    /// What residual edges add to conv `step`'s output, one tensor per edge.
    fn shortcuts(&mut self, step: &ConvStep) -> Result<Vec<(usize, String)>, ExportError> {
        let layer = format!("conv{}", step.number);
        let mut shortcuts = Vec::new();
        for residual in &step.residuals {
            let prefix = format!("{layer}.r{}", residual.from);
            let x = self.source(residual.source, &prefix);
            let carried = match &residual.carry {
                Carry::Identity => x,
                Carry::Projection { groups, normalised } => {
                    let channels: Vec<usize> = groups.iter().map(|g| g.channels).collect();
                    let total: usize = channels.iter().sum();
                    let blocks: Vec<&[f32]> = groups
                        .iter()
                        .map(|g| self.find(&format!("{prefix}[{}]", g.key())))
                        .collect::<Result<_, _>>()?;
                    let w = projection_weight(&blocks, &channels, step.filters);
                    let w =
                        self.g
                            .constant(&format!("{prefix}.w"), &[step.filters, total, 1, 1], w);
                    let projected = self.g.node(
                        &format!("{prefix}.conv"),
                        "Conv",
                        &[&x, &w],
                        vec![ints_attribute("kernel_shape", &[1, 1])],
                    );
                    match normalised {
                        true => self.batch_norm(
                            &format!("{prefix}.batch_norm"),
                            &projected,
                            std::slice::from_ref(&prefix),
                        )?,
                        false => projected,
                    }
                }
                Carry::Pad { channels, filters } if channels < filters => {
                    let extra = (filters - channels) as i64;
                    let pads = self
                        .g
                        .int64s(&format!("{prefix}.pads"), &[0, 0, 0, 0, 0, extra, 0, 0]);
                    self.g
                        .node(&format!("{prefix}.pad"), "Pad", &[&x, &pads], Vec::new())
                }
                Carry::Pad { .. } => x,
            };
            shortcuts.push((residual.from, carried));
        }
        Ok(shortcuts)
    }

    fn conv(&mut self, step: &ConvStep) -> Result<String, ExportError> {
        let layer = format!("conv{}", step.number);
        let mut x = self.outputs[&(step.number - 1)].clone();
        if step.pre_activation {
            x = self.pre_activate(&layer, &x, &step.groups)?;
        }
        let channels: Vec<usize> = step.groups.iter().map(|g| g.channels).collect();
        let total: usize = channels.iter().sum();
        let blocks = self.blocks(&layer, &step.groups)?;
        let w = conv_weight(&blocks, &channels, step.filters);
        let w = self
            .g
            .constant(&format!("{layer}.w"), &[step.filters, total, 3, 3], w);
        let mut inputs = vec![x, w];
        // Normalised layers have no bias: the normalisation shifts.
        if self.cnn.norm == Norm::None {
            let bias = self.find(&format!("{layer}.b"))?.to_vec();
            inputs.push(
                self.g
                    .constant(&format!("{layer}.b"), &[step.filters], bias),
            );
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let stride = step.stride as i64;
        let mut z = self.g.node(
            &format!("{layer}.conv"),
            "Conv",
            &refs,
            vec![
                ints_attribute("kernel_shape", &[3, 3]),
                ints_attribute("pads", &[1, 1, 1, 1]),
                ints_attribute("strides", &[stride, stride]),
            ],
        );
        let shortcuts = self.shortcuts(step)?;
        let post = self.cnn.order == BlockOrder::Post;
        if post && self.cnn.norm == Norm::Batch {
            z = self.batch_norm(
                &format!("{layer}.batch_norm"),
                &z,
                std::slice::from_ref(&layer),
            )?;
        }
        for (from, shortcut) in shortcuts {
            let name = format!("{layer}.add_{from}");
            z = self.g.node(&name, "Add", &[&z, &shortcut], Vec::new());
        }
        let own = match step.concatenated.is_empty() {
            true => layer.clone(),
            false => format!("{layer}.own"),
        };
        // Pre-activation leaves the sum as it is: its last node is the layer's output.
        let own = match post {
            true => self.g.node(&own, "Relu", &[&z], Vec::new()),
            false => self.g.rename_last(&own),
        };
        if step.concatenated.is_empty() {
            return Ok(own);
        }
        let mut parts = vec![own];
        for &(from, source) in &step.concatenated {
            parts.push(self.source(source, &format!("{layer}.skip{from}")));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        Ok(self.g.node(
            &layer,
            "Concat",
            &refs,
            vec![super::graph::int_attribute("axis", 1)],
        ))
    }
}

fn pool_attributes() -> Vec<AttributeProto> {
    vec![
        ints_attribute("kernel_shape", &[2, 2]),
        ints_attribute("strides", &[2, 2]),
        super::graph::int_attribute("ceil_mode", 1),
    ]
}

pub(super) fn cnn_graph(cnn: &CnnSpec, params: &[HostParam]) -> Result<Graph, ExportError> {
    let plan = plan(cnn);
    let mut b = CnnGraph {
        g: Graph::default(),
        cnn,
        params,
        outputs: BTreeMap::new(),
    };
    let input = cnn.input;
    let shape = [input.height, input.width, input.channels].map(|d| d as i64);
    let shape =
        b.g.int64s("image.shape", &[-1, shape[0], shape[1], shape[2]]);
    let rows =
        b.g.node("image.nhwc", "Reshape", &[INPUT, &shape], Vec::new());
    let image = b.g.node(
        "image",
        "Transpose",
        &[&rows],
        vec![ints_attribute("perm", &[0, 3, 1, 2])],
    );
    b.outputs.insert(0, image);
    for step in &plan.steps {
        let (number, out) = match step {
            Step::Pool { number } => {
                let x = b.outputs[&(number - 1)].clone();
                let name = format!("pool{number}");
                (
                    *number,
                    b.g.node(&name, "MaxPool", &[&x], pool_attributes()),
                )
            }
            Step::Conv(conv) => (conv.number, b.conv(conv)?),
        };
        b.outputs.insert(number, out);
    }
    let head = &plan.head;
    let mut x = b.outputs[&head.input].clone();
    if head.pre_activation {
        x = b.pre_activate("out", &x, &head.groups)?;
    }
    let channels: Vec<usize> = head.groups.iter().map(|g| g.channels).collect();
    let blocks = b.blocks("out", &head.groups)?;
    let classes = cnn.classes;
    let (features, w) = match head.head {
        Head::Flatten => {
            let pixels = head.height * head.width;
            let w = flatten_weight(&blocks, &channels, pixels, classes);
            (w.len() / classes.max(1), w)
        }
        Head::Average => {
            let w: Vec<f32> = blocks.concat();
            x =
                b.g.node("out.average", "GlobalAveragePool", &[&x], Vec::new());
            (w.len() / classes.max(1), w)
        }
    };
    let flat = b.g.node(
        "out.flatten",
        "Flatten",
        &[&x],
        vec![super::graph::int_attribute("axis", 1)],
    );
    let w = b.g.constant("out.w", &[features, classes], w);
    let z = b.g.node("out.matmul", "MatMul", &[&flat, &w], Vec::new());
    let bias = b.find("out.b")?.to_vec();
    let bias = b.g.constant("out.b", &[classes], bias);
    let z = b.g.node("out.bias", "Add", &[&z, &bias], Vec::new());
    b.g.node(OUTPUT, "Identity", &[&z], Vec::new());
    Ok(b.g)
}

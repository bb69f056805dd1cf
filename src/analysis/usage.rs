//! Edge usage after Huang et al. 2017 (DenseNet, Fig. 5): for every weight block through
//! which a layer reads an earlier layer's features, the L1 norm of the block divided by the
//! number of input features it reads (an MLP layer's units; a CNN's channels, each read
//! through its 3x3 window or, by a flattening head, at every pixel). A source × target map of
//! these shows which early features later layers really use, and which the classifier uses.
//!
//! What counts as a block: an MLP layer's main input and every concatenating edge into it,
//! and a residual edge's projection where widths differ (an identity residual has no weights
//! and is listed without a value); a CNN convolution's weights per channel group of its input
//! (a group's source is the layer whose output it carries, so conv 1's features reaching conv
//! 5 through the skip 1-4 count as read by conv 5 from conv 1), and a residual edge's 1x1
//! projections. Batch norm's scale is not folded in: usage reads the weights as they are.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::net::{
    cnn_projection_name, cnn_weight_name, mlp_residual_name, mlp_weight_name, HostParam,
};
use crate::topology::{CnnLayerKind, Shortcut, Topology};

/// How a target reads a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// From the layer right before it (a CNN: its own output, past any pool).
    Main,
    /// Through concatenating skip edges.
    Skip,
    /// Through a residual edge's projection (widths differ, or a 1x1 shortcut).
    Projection,
    /// Through an identity residual edge: no weights to measure.
    Identity,
}

/// One weight block's usage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockUsage {
    /// The layer whose features are read: 0 is the input, then the network's layers in the
    /// lab's numbering (an MLP's hidden layers; a CNN's convolutions and pools).
    pub source: usize,
    /// The reading layer, numbered as `source` (the classifier last).
    pub target: usize,
    pub reading: Reading,
    /// The parameter's name (empty for an identity).
    pub block: String,
    /// Input features the block reads (units or channels).
    pub features: usize,
    /// Σ|w| over the block divided by `features`; `None` for an identity.
    pub usage: Option<f64>,
}

/// The usage of every block of a network, and each layer's name by number.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EdgeUsage {
    /// `layers[n]` names layer `n` (`input`, `fc1`, ..., `out`; `input`, `conv1`, ..., `out`).
    pub layers: Vec<String>,
    pub blocks: Vec<BlockUsage>,
}

impl EdgeUsage {
    /// The heat map: for each (source, target) pair with weights, the blocks' L1 norms summed
    /// over the features they read (two groups carrying one source into one target, as a CNN
    /// can have, make one cell).
    pub fn map(&self) -> BTreeMap<(usize, usize), f64> {
        let mut sums: BTreeMap<(usize, usize), (f64, usize)> = BTreeMap::new();
        for b in &self.blocks {
            if let Some(u) = b.usage {
                let cell = sums.entry((b.source, b.target)).or_default();
                cell.0 += u * b.features as f64;
                cell.1 += b.features;
            }
        }
        sums.into_iter()
            .map(|(key, (l1, features))| (key, l1 / features.max(1) as f64))
            .collect()
    }
}

/// A weight the topology names is missing or has the wrong size.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UsageError {
    #[error("the weights have no parameter `{0}`, which the topology needs")]
    Missing(String),
    #[error("parameter `{name}` holds {found} values, the topology needs {expected}")]
    WrongSize {
        name: String,
        expected: usize,
        found: usize,
    },
}

/// Edge usage of `topology` with weights `params` (as saved: `runs::read_weights`).
pub fn edge_usage(topology: &Topology, params: &[HostParam]) -> Result<EdgeUsage, UsageError> {
    let by_name: BTreeMap<&str, &HostParam> = params.iter().map(|p| (p.name.as_str(), p)).collect();
    // Σ|w| / features, the block's size checked against what the topology says.
    let measure = |name: &str, rows: usize, cols: usize, features: usize| {
        let p = by_name
            .get(name)
            .ok_or_else(|| UsageError::Missing(name.to_string()))?;
        if p.values.len() != rows * cols {
            return Err(UsageError::WrongSize {
                name: name.to_string(),
                expected: rows * cols,
                found: p.values.len(),
            });
        }
        let l1: f64 = p.values.iter().map(|v| f64::from(v.abs())).sum();
        Ok(Some(l1 / features.max(1) as f64))
    };
    let mut blocks = Vec::new();
    let layers = match topology {
        Topology::Mlp(mlp) => {
            for to in 1..mlp.num_layers() {
                let n = mlp.width(to);
                for (i, from) in mlp.sources(to).into_iter().enumerate() {
                    let k = mlp.width(from);
                    let block = mlp_weight_name(from, to);
                    blocks.push(BlockUsage {
                        source: from,
                        target: to,
                        reading: if i == 0 { Reading::Main } else { Reading::Skip },
                        usage: measure(&block, k, n, k)?,
                        block,
                        features: k,
                    });
                }
                for (from, identity) in mlp.residuals_into(to) {
                    let k = mlp.width(from);
                    let (reading, block, usage) = match identity {
                        true => (Reading::Identity, String::new(), None),
                        false => {
                            let block = mlp_residual_name(from, to);
                            let usage = measure(&block, k, n, k)?;
                            (Reading::Projection, block, usage)
                        }
                    };
                    blocks.push(BlockUsage {
                        source: from,
                        target: to,
                        reading,
                        block,
                        features: k,
                        usage,
                    });
                }
            }
            super::layer_names(topology)
        }
        Topology::Cnn(cnn) => {
            let layers = cnn.layers();
            let last = layers.last().map_or(0, |l| l.number);
            for layer in &layers {
                let CnnLayerKind::Conv { filters } = layer.kind else {
                    continue;
                };
                let name = format!("conv{}", layer.number);
                for group in cnn.groups(layer.number - 1) {
                    let c = group.channels;
                    let block = cnn_weight_name(&name, &group);
                    blocks.push(BlockUsage {
                        source: group.path[0],
                        target: layer.number,
                        reading: if group.path.len() == 1 {
                            Reading::Main
                        } else {
                            Reading::Skip
                        },
                        usage: measure(&block, 9 * c, filters, c)?,
                        block,
                        features: c,
                    });
                }
                for (from, identity) in cnn.residuals_into(layer.number) {
                    let projected = !identity && cnn.shortcut == Shortcut::Projection;
                    for group in cnn.groups(from) {
                        let c = group.channels;
                        let (reading, block, usage) = match projected {
                            true => {
                                let block = cnn_projection_name(from, layer.number, &group);
                                let usage = measure(&block, c, filters, c)?;
                                (Reading::Projection, block, usage)
                            }
                            // Identity, or option A's subsample and zero channels: no weights.
                            false => (Reading::Identity, String::new(), None),
                        };
                        blocks.push(BlockUsage {
                            source: group.path[0],
                            target: layer.number,
                            reading,
                            block,
                            features: c,
                            usage,
                        });
                    }
                }
            }
            let out = last + 1;
            let (height, width) = layers.last().map_or((1, 1), |l| (l.height, l.width));
            let pixels = match cnn.head {
                crate::topology::Head::Flatten => height * width,
                crate::topology::Head::Average => 1,
            };
            for group in cnn.groups(last) {
                let c = group.channels;
                let block = cnn_weight_name("out", &group);
                blocks.push(BlockUsage {
                    source: group.path[0],
                    target: out,
                    reading: if group.path.len() == 1 {
                        Reading::Main
                    } else {
                        Reading::Skip
                    },
                    usage: measure(&block, pixels * c, cnn.classes, c)?,
                    block,
                    features: c,
                });
            }
            super::layer_names(topology)
        }
    };
    Ok(EdgeUsage { layers, blocks })
}

//! A CNN's evaluation-mode forward pass as steps over whole layer outputs, each naming what
//! it reads: what the exporters ([`crate::onnx`], [`crate::pytorch`]) render, so both follow
//! [`crate::net::Network`]'s CNN (`forward_cnn`) in one place.
//!
//! The network keeps a layer's output as channel groups (its own filters, then what skips
//! concatenated onto it); a plan treats the groups of a layer as one tensor, channels in
//! group order. Every per-channel operation (batch norm, ReLU, pooling) gives the same on the
//! concatenation as on the groups, and a convolution over several groups is one convolution
//! over their concatenation with the groups' weight blocks stacked along its input channels.

use crate::topology::{BlockOrder, ChannelGroup, CnnLayerKind, CnnSpec, Head, Norm, Shortcut};

/// A layer's output as a skip edge reads it: the output of layer `layer` (the pool right after
/// the edge's source where there is one, as the network reuses it), halved `halvings` more
/// times by the network's downsampling (a 2x2 max-pool, or every other pixel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub layer: usize,
    pub halvings: usize,
}

/// How a residual edge's source reaches the target's channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Carry {
    /// As it is: same size and channels.
    Identity,
    /// A 1x1 convolution per source channel group (`conv{to}.r{from}[key]`, `[channels,
    /// filters]`), batch-normalised (`conv{to}.r{from}`) where `normalised`.
    Projection {
        groups: Vec<ChannelGroup>,
        normalised: bool,
    },
    /// Zeros appended after its `channels` channels up to the target's `filters` (option A).
    Pad { channels: usize, filters: usize },
}

/// A residual edge into a convolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResidualStep {
    pub from: usize,
    pub source: Source,
    pub carry: Carry,
}

/// A 3x3 convolution (padding 1) and what surrounds it.
///
/// Post-activation (ResNet v1): `relu(norm(conv(x)) + shortcuts)`, the convolution's bias
/// only where the network has no normalisation. Pre-activation (v2): `conv(relu(norm(x))) +
/// shortcuts`, the input's normalisation per group (`conv{n}.pre[key]`), none before conv 1.
/// Then the concatenated skips' sources are appended after the result's channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvStep {
    pub number: usize,
    /// The groups of the layer it reads (`number - 1`; the image for conv 1): its weight
    /// blocks are `conv{n}.w[key]`, `[9 * channels, filters]`, taps row-major then channels.
    pub groups: Vec<ChannelGroup>,
    pub filters: usize,
    pub stride: usize,
    /// Normalise (where the network does) and rectify the input first.
    pub pre_activation: bool,
    pub residuals: Vec<ResidualStep>,
    pub concatenated: Vec<(usize, Source)>,
}

/// One layer of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A 2x2 max-pool, stride 2, rounding odd sizes up (windows at the edge hold fewer pixels).
    Pool {
        number: usize,
    },
    Conv(ConvStep),
}

/// The classifier: the last layer's output (pre-activated per group where the network is
/// pre-activation, `out.pre[key]`), flattened or averaged over its pixels, times the groups'
/// weight blocks `out.w[key]` plus `out.b`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadStep {
    pub input: usize,
    pub groups: Vec<ChannelGroup>,
    pub pre_activation: bool,
    pub head: Head,
    pub height: usize,
    pub width: usize,
}

/// The whole network: its steps in order, then the head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub head: HeadStep,
}

/// How layer `from`'s output reaches a layer of height `height`.
fn source(cnn: &CnnSpec, from: usize, height: usize) -> Source {
    let pooled_next = cnn
        .layer(from + 1)
        .is_some_and(|l| l.kind == CnnLayerKind::Pool);
    let layer = if pooled_next { from + 1 } else { from };
    let mut size = match cnn.layer(layer) {
        Some(l) => l.height,
        None => cnn.input.height,
    };
    let mut halvings = 0;
    while size > height {
        size = size.div_ceil(2);
        halvings += 1;
    }
    Source { layer, halvings }
}

/// The plan of `cnn`.
pub fn plan(cnn: &CnnSpec) -> Plan {
    let pre = cnn.order == BlockOrder::Pre;
    let mut steps = Vec::new();
    for layer in cnn.layers() {
        let number = layer.number;
        let CnnLayerKind::Conv { filters } = layer.kind else {
            steps.push(Step::Pool { number });
            continue;
        };
        let residuals = cnn
            .residuals_into(number)
            .into_iter()
            .map(|(from, identity)| {
                let carry = match (identity, cnn.shortcut) {
                    (true, _) => Carry::Identity,
                    (false, Shortcut::Projection) => Carry::Projection {
                        groups: cnn.groups(from),
                        normalised: cnn.norm != Norm::None && !pre,
                    },
                    (false, Shortcut::Pad) => Carry::Pad {
                        channels: cnn.channels(from),
                        filters,
                    },
                };
                ResidualStep {
                    from,
                    source: source(cnn, from, layer.height),
                    carry,
                }
            })
            .collect();
        let concatenated = cnn
            .skips
            .iter()
            .filter(|e| e.to == number && !cnn.residual.contains(e))
            .map(|e| (e.from, source(cnn, e.from, layer.height)))
            .collect();
        steps.push(Step::Conv(ConvStep {
            number,
            groups: cnn.groups(number - 1),
            filters,
            stride: layer.stride,
            pre_activation: pre && number > 1,
            residuals,
            concatenated,
        }));
    }
    let last = cnn.layers().last().copied();
    let (input, height, width) = last.map_or((0, cnn.input.height, cnn.input.width), |l| {
        (l.number, l.height, l.width)
    });
    Plan {
        steps,
        head: HeadStep {
            input,
            groups: cnn.groups(input),
            pre_activation: pre,
            head: cnn.head,
            height,
            width,
        },
    }
}

/// Kernel weight blocks `[taps * channels, filters]` (rows: taps row-major, then channels), one
/// per input channel group, as one kernel `[filters, channels, taps]`, the groups stacked
/// along the input channels in order: ONNX's and PyTorch's layout.
fn kernel_weight(blocks: &[&[f32]], channels: &[usize], filters: usize, taps: usize) -> Vec<f32> {
    let total: usize = channels.iter().sum();
    let mut out = vec![0.0; filters * total * taps];
    let mut offset = 0;
    for (block, &c) in blocks.iter().zip(channels) {
        for tap in 0..taps {
            for ch in 0..c {
                for f in 0..filters {
                    out[(f * total + offset + ch) * taps + tap] =
                        block[(tap * c + ch) * filters + f];
                }
            }
        }
        offset += c;
    }
    out
}

/// 3x3 convolution blocks `[9 * channels, filters]` as `[filters, channels, 3, 3]`.
pub fn conv_weight(blocks: &[&[f32]], channels: &[usize], filters: usize) -> Vec<f32> {
    kernel_weight(blocks, channels, filters, 9)
}

/// 1x1 projection blocks `[channels, filters]` as `[filters, channels, 1, 1]`.
pub fn projection_weight(blocks: &[&[f32]], channels: &[usize], filters: usize) -> Vec<f32> {
    kernel_weight(blocks, channels, filters, 1)
}

/// The classifier's weight blocks (`[height * width * channels, classes]` for each group,
/// pixels row-major then channels: skiplab flattens each group channels-last) as one
/// `[channels * height * width, classes]` matrix for the channels-first flattening of the
/// groups' concatenation (ONNX's `Flatten` and `torch.flatten` of an NCHW tensor).
pub fn flatten_weight(
    blocks: &[&[f32]],
    channels: &[usize],
    pixels: usize,
    classes: usize,
) -> Vec<f32> {
    let total: usize = channels.iter().sum();
    let mut out = vec![0.0; total * pixels * classes];
    let mut offset = 0;
    for (block, &c) in blocks.iter().zip(channels) {
        for p in 0..pixels {
            for ch in 0..c {
                let from = (p * c + ch) * classes;
                let to = ((offset + ch) * pixels + p) * classes;
                out[to..to + classes].copy_from_slice(&block[from..from + classes]);
            }
        }
        offset += c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{ImageShape, SkipEdge};

    fn paper_cnn(skips: &[(usize, usize)]) -> CnnSpec {
        let mut cnn = CnnSpec::paper(ImageShape::new(3, 32, 32), 10);
        cnn.skips = skips.iter().map(|&(a, b)| SkipEdge::new(a, b)).collect();
        cnn
    }

    #[test]
    fn a_skip_from_the_layer_before_a_pool_reads_the_pool() {
        let cnn = paper_cnn(&[(1, 4), (2, 5), (4, 7), (5, 8)]);
        let plan = plan(&cnn);
        let convs: Vec<&ConvStep> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Conv(c) => Some(c),
                Step::Pool { .. } => None,
            })
            .collect();
        let into = |n: usize| convs.iter().find(|c| c.number == n).unwrap();
        assert_eq!(
            into(4).concatenated,
            vec![(
                1,
                Source {
                    layer: 1,
                    halvings: 1
                }
            )]
        );
        assert_eq!(
            into(5).concatenated,
            vec![(
                2,
                Source {
                    layer: 3,
                    halvings: 0
                }
            )]
        );
        assert_eq!(into(5).groups.len(), 2, "conv 5 reads conv 4 and 1>4");
    }

    #[test]
    fn weights_move_to_channels_first_layouts() {
        // Two groups of 1 and 2 channels, 2 filters: entry = tap*100 + channel*10 + filter.
        let block = |c: usize, base: usize| -> Vec<f32> {
            (0..9 * c * 2)
                .map(|i| {
                    let (tap, ch, f) = (i / (c * 2), (i / 2) % c, i % 2);
                    (tap * 100 + (base + ch) * 10 + f) as f32
                })
                .collect()
        };
        let (a, b) = (block(1, 0), block(2, 1));
        let w = conv_weight(&[&a, &b], &[1, 2], 2);
        for f in 0..2 {
            for ch in 0..3 {
                for tap in 0..9 {
                    let want = (tap * 100 + ch * 10 + f) as f32;
                    assert_eq!(w[(f * 3 + ch) * 9 + tap], want);
                }
            }
        }
        // Flatten: 2 pixels, groups of 1 and 2 channels, 1 class: entry = pixel*10 + channel.
        let a: Vec<f32> = vec![0.0, 10.0];
        let b: Vec<f32> = vec![1.0, 2.0, 11.0, 12.0];
        let w = flatten_weight(&[&a, &b], &[1, 2], 2, 1);
        assert_eq!(w, vec![0.0, 10.0, 1.0, 11.0, 2.0, 12.0]);
    }
}

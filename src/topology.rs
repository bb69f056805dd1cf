//! The pure topology model: which layers a network has and which skip edges are on.
//!
//! Nothing here knows about dfdx or the terminal. A [`Topology`] says what to build;
//! `net` builds it, the lab draws it, presets store it.
//!
//! Numbering follows the paper:
//! - MLP: layer 0 is the input, layers `1..=hidden.len()` the hidden layers, the last one the
//!   output. A skip edge `i-j` (with `j >= i + 2`) feeds layer `i`'s activation into layer `j`
//!   through its own fully-connected block, exactly as concatenating `i` onto `j`'s input.
//! - CNN: layers are numbered from 1 in order, counting convolutions *and* pools, so the
//!   paper's CNN reads conv 1, conv 2, pool 3, conv 4, conv 5, pool 6, conv 7, conv 8, pool 9.
//!   A skip edge `i-j` between two non-adjacent convolutions max-pools `i`'s output down to
//!   `j`'s resolution and concatenates it onto `j`'s output channels; the widened tensor feeds
//!   the next layer and any later skip that starts at `j`. A residual edge adds the source
//!   onto `j`'s own filters instead (through a [`Shortcut`] where the shapes differ). With
//!   [`Downsample::Stride`] there are no pools: the first convolution of every later stage
//!   halves the resolution.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One skip edge, from an earlier layer to a later, non-adjacent one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SkipEdge {
    pub from: usize,
    pub to: usize,
}

impl SkipEdge {
    pub fn new(from: usize, to: usize) -> Self {
        Self { from, to }
    }
}

impl fmt::Display for SkipEdge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.from, self.to)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("the input size must be positive")]
    EmptyInput,
    #[error("there must be at least one class")]
    NoClasses,
    #[error("layer {layer} has width 0; every layer needs at least one unit")]
    ZeroWidth { layer: usize },
    #[error("a CNN needs at least one stage of convolutions")]
    NoStages,
    #[error("CNN stage {stage} has no convolutions")]
    EmptyStage { stage: usize },
    #[error("skip edge {edge} is not a candidate: {reason}")]
    InvalidEdge { edge: SkipEdge, reason: String },
    #[error(
        "cannot parse skip list {input:?}: {reason} (use `all`, `none` or pairs like `0-2,1-3`)"
    )]
    BadSkipList { input: String, reason: String },
    #[error("{what} is {size}; skiplab allows at most {}", grouped(*limit))]
    TooWide {
        what: String,
        size: usize,
        limit: usize,
    },
    #[error(
        "the network has {layers} layers; skiplab allows at most {}",
        MAX_LAYERS
    )]
    TooDeep { layers: usize },
    #[error(
        "the network has {} parameters; skiplab trains at most {} (about 2 GB of training state)",
        grouped(*params),
        grouped(MAX_PARAMS)
    )]
    TooLarge { params: usize },
    #[error("a CNN normalises with batch norm (per channel); layer norm is for MLPs")]
    CnnLayerNorm,
}

/// The largest network skiplab trains: 100 million parameters, about 2 GB of training state
/// (weights, gradients, optimiser moments and a host copy, 4 bytes each). Checked before
/// anything is allocated, so an absurd width is a message instead of an aborted process.
pub const MAX_PARAMS: usize = 100_000_000;
/// The widest layer (units or filters) and the largest input dimension, refused before any
/// size is computed so that the arithmetic below cannot overflow.
pub const MAX_WIDTH: usize = 1 << 20;
/// The most layers (hidden layers, or convolutions) a network may have.
pub const MAX_LAYERS: usize = 1024;

/// Thousands separators: 345898 -> 345,898.
pub fn grouped(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `size` of `what`, refused above `limit`.
fn check_width(
    what: impl FnOnce() -> String,
    size: usize,
    limit: usize,
) -> Result<(), TopologyError> {
    if size > limit {
        return Err(TopologyError::TooWide {
            what: what(),
            size,
            limit,
        });
    }
    Ok(())
}

/// What a skip edge does with its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum EdgeKind {
    /// The source joins the target's inputs through a weight block of its own (concatenated
    /// onto them); a new block starts at zero, so enabling it keeps the function.
    #[default]
    Concat,
    /// MLP only: the source's output is added to the target's pre-activation, as it is
    /// where the widths match (identity: no weights, and enabling it changes the function),
    /// else through a learned projection that starts at zero.
    Residual,
}

/// The nonlinearity after each hidden layer of an MLP (the output stays linear).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Sigmoid,
    /// None: the network is linear.
    Linear,
    /// GELU in its tanh form (PyTorch's `approximate="tanh"`): dfdx 0.13's exact one has a
    /// wrong gradient.
    Gelu,
}

impl Activation {
    pub const ALL: [Activation; 5] = [
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Linear,
        Activation::Gelu,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Linear => "linear",
            Activation::Gelu => "gelu",
        }
    }
}

/// What normalises each hidden layer of an MLP: its weighted sum, before a residual edge adds
/// onto it and before the activation (ResNet's post-activation order). Batch and layer
/// normalisation learn a scale and a shift per unit (which take the place of the bias) and use
/// eps 1e-5, as PyTorch does; batch normalisation normalises by the batch's statistics while it
/// trains and by running estimates (momentum 0.1) when it evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    #[default]
    None,
    Batch,
    Layer,
}

impl Norm {
    pub const ALL: [Norm; 3] = [Norm::None, Norm::Batch, Norm::Layer];
    pub fn name(self) -> &'static str {
        match self {
            Norm::None => "none",
            Norm::Batch => "batch",
            Norm::Layer => "layer",
        }
    }
    /// What a description says: `batch norm`, `layer norm`, nothing for none.
    pub fn label(self) -> &'static str {
        match self {
            Norm::None => "",
            Norm::Batch => "batch norm",
            Norm::Layer => "layer norm",
        }
    }
}

impl std::str::FromStr for Norm {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Norm::ALL
            .into_iter()
            .find(|n| n.name() == text)
            .ok_or_else(|| format!("`{text}` is not a normalisation: none, batch or layer"))
    }
}

/// How a CNN's residual edge reaches a target whose shape differs from its source's (a later
/// stage: fewer pixels, more channels). Where the shapes match the edge is an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shortcut {
    /// A learned 1x1 convolution (He et al.'s option B; batch-normalised where the network
    /// is, as torchvision's `downsample`).
    #[default]
    Projection,
    /// PyTorch-ResNet's option A: the source's pixels subsampled and its channels padded with
    /// zeros up to the target's; no weights.
    Pad,
}

/// How a CNN halves its resolution between stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Downsample {
    /// A 2x2 max-pool after every stage (the paper's CNN; pools are numbered layers).
    #[default]
    Pool,
    /// The first convolution of every later stage has stride 2 (ResNet's); no pools.
    Stride,
}

/// What a CNN's classifier reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    /// Every pixel of the last layer, flattened (the paper's).
    #[default]
    Flatten,
    /// The mean of every channel over the pixels (ResNet's global average pool).
    Average,
}

/// Where a CNN's normalisation and ReLU sit around each convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockOrder {
    /// conv, batch norm, (+ residual), ReLU: ResNet v1 (He et al. 2015).
    #[default]
    Post,
    /// batch norm, ReLU, conv (+ residual): ResNet v2's full pre-activation (He et al. 2016).
    /// A layer's output is its raw sum; the next layer (or the head) normalises and rectifies
    /// it, per channel group; the first convolution reads the image as it is.
    Pre,
}

macro_rules! named_choice {
    ($ty:ty, $what:literal, [$($variant:ident => $name:literal),+]) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];
            pub fn name(self) -> &'static str {
                match self {
                    $(<$ty>::$variant => $name),+
                }
            }
        }
        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                let names: Vec<&str> = <$ty>::ALL.iter().map(|v| v.name()).collect();
                <$ty>::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name() == text)
                    .ok_or_else(|| format!("`{text}` is not {}: {}", $what, names.join(", ")))
            }
        }
    };
}

named_choice!(Shortcut, "a shortcut", [Projection => "projection", Pad => "pad"]);
named_choice!(Downsample, "a way to downsample", [Pool => "pool", Stride => "stride"]);
named_choice!(Head, "a classifier head", [Flatten => "flatten", Average => "average"]);
named_choice!(BlockOrder, "a block order", [Post => "post", Pre => "pre"]);

/// How an MLP's weights start (uniform distributions; `fan_in` counts every source).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitScheme {
    /// He-uniform `U(±sqrt(6/fan_in))` for hidden layers, LeCun for the output; zero biases.
    #[default]
    He,
    /// LeCun-uniform `U(±sqrt(3/fan_in))` everywhere; zero biases.
    Lecun,
    /// Glorot (Xavier) uniform `U(±sqrt(6/(fan_in + fan_out)))`; zero biases.
    Xavier,
    /// PyTorch's `nn.Linear` default: weights and biases `U(±1/sqrt(fan_in))`.
    Torch,
}

impl InitScheme {
    pub const ALL: [InitScheme; 4] = [
        InitScheme::He,
        InitScheme::Lecun,
        InitScheme::Xavier,
        InitScheme::Torch,
    ];
    pub fn name(self) -> &'static str {
        match self {
            InitScheme::He => "he",
            InitScheme::Lecun => "lecun",
            InitScheme::Xavier => "xavier",
            InitScheme::Torch => "torch",
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A multi-layer perceptron: input, hidden layers, output; an activation (ReLU unless said)
/// after every hidden layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpSpec {
    pub input: usize,
    pub hidden: Vec<usize>,
    pub classes: usize,
    /// Every enabled edge, of either kind.
    #[serde(default)]
    pub skips: BTreeSet<SkipEdge>,
    /// The enabled edges that are residual (a subset of `skips`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub residual: BTreeSet<SkipEdge>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub activation: Activation,
    #[serde(default, skip_serializing_if = "is_default")]
    pub init: InitScheme,
    #[serde(default, skip_serializing_if = "is_default")]
    pub norm: Norm,
}

/// Channels, height and width of an image input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for ImageShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// A CNN: stages of 3x3 "same" convolutions + ReLU, each stage followed by a 2x2 max-pool,
/// then a linear classifier on the flattened result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CnnSpec {
    pub input: ImageShape,
    pub stages: Vec<Vec<usize>>,
    pub classes: usize,
    #[serde(default)]
    pub skips: BTreeSet<SkipEdge>,
    /// Batch normalisation of every convolution (per channel, over the batch and the pixels:
    /// PyTorch's `BatchNorm2d`); layer normalisation is for MLPs.
    #[serde(default, skip_serializing_if = "is_default")]
    pub norm: Norm,
    /// The enabled edges that are residual (a subset of `skips`): the source is added to the
    /// target's normalised sum before its ReLU (ResNet's post-activation block) instead of
    /// being concatenated.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub residual: BTreeSet<SkipEdge>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub shortcut: Shortcut,
    #[serde(default, skip_serializing_if = "is_default")]
    pub downsample: Downsample,
    #[serde(default, skip_serializing_if = "is_default")]
    pub head: Head,
    #[serde(default, skip_serializing_if = "is_default")]
    pub order: BlockOrder,
}

/// What a numbered CNN layer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CnnLayerKind {
    /// A 3x3 convolution with this many filters of its own (before skip concatenation).
    Conv {
        filters: usize,
    },
    Pool,
}

/// A CNN layer in paper numbering, with the spatial size of its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CnnLayer {
    pub number: usize,
    pub kind: CnnLayerKind,
    pub height: usize,
    pub width: usize,
    /// 2 for a convolution that halves the resolution ([`Downsample::Stride`]), else 1.
    pub stride: usize,
}

/// A block of channels flowing through the CNN, labelled by where it came from.
///
/// `path` lists the conv layers the block passed through by skip edges, origin first:
/// `[4]` is conv 4's own output, `[1, 4]` is conv 1's output concatenated onto conv 4,
/// `[1, 4, 7]` the same block carried on by the skip 4-7. Weight blocks are keyed by it, so
/// toggling one edge touches only the blocks whose path uses that edge.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelGroup {
    pub path: Vec<usize>,
    pub channels: usize,
}

impl ChannelGroup {
    /// A stable text key, e.g. `1>4>7`.
    pub fn key(&self) -> String {
        self.path
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(">")
    }
}

/// One row of derived figures for a layer, as shown in the lab and the CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSummary {
    pub name: String,
    /// Output shape, widened by incoming skips (e.g. `16x16x96`, or `256` for an MLP layer).
    pub shape: String,
    /// Number of inputs each unit of the layer sees (0 for inputs and pools).
    pub fan_in: usize,
    pub params: usize,
    pub macs: usize,
}

/// A network to build: an MLP or a CNN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Topology {
    Mlp(MlpSpec),
    Cnn(CnnSpec),
}

impl MlpSpec {
    pub fn new(input: usize, hidden: Vec<usize>, classes: usize) -> Self {
        Self {
            input,
            hidden,
            classes,
            skips: BTreeSet::new(),
            residual: BTreeSet::new(),
            activation: Activation::default(),
            init: InitScheme::default(),
            norm: Norm::default(),
        }
    }

    /// Residual edges into `layer` with their sources: identity where the widths match.
    pub fn residuals_into(&self, layer: usize) -> Vec<(usize, bool)> {
        self.residual
            .iter()
            .filter(|e| e.to == layer)
            .map(|e| (e.from, self.width(e.from) == self.width(layer)))
            .collect()
    }

    /// Number of layers including the input and the output.
    pub fn num_layers(&self) -> usize {
        self.hidden.len() + 2
    }

    pub fn output_layer(&self) -> usize {
        self.hidden.len() + 1
    }

    pub fn width(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input
        } else if layer <= self.hidden.len() {
            self.hidden[layer - 1]
        } else {
            self.classes
        }
    }

    pub fn candidate_edges(&self) -> Vec<SkipEdge> {
        let n = self.num_layers();
        let mut edges = Vec::new();
        for from in 0..n {
            for to in from + 2..n {
                edges.push(SkipEdge::new(from, to));
            }
        }
        edges
    }

    /// The layers whose weight blocks feed `layer` (what `fan_in` counts): its predecessor
    /// first, then concatenating skip sources in order. Residual edges add to it apart.
    pub fn sources(&self, layer: usize) -> Vec<usize> {
        let mut sources = vec![layer - 1];
        sources.extend(
            self.skips
                .iter()
                .filter(|e| e.to == layer && !self.residual.contains(e))
                .map(|e| e.from),
        );
        sources
    }

    pub fn check_edge(&self, edge: SkipEdge) -> Result<(), TopologyError> {
        let n = self.num_layers();
        let reason = if edge.to >= n {
            Some(format!("the MLP has layers 0..={}", n - 1))
        } else if edge.to < edge.from + 2 {
            Some("a skip must jump over at least one layer (to >= from + 2)".to_string())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(TopologyError::InvalidEdge { edge, reason }),
            None => Ok(()),
        }
    }

    pub fn validate(&self) -> Result<(), TopologyError> {
        if self.hidden.len() > MAX_LAYERS {
            return Err(TopologyError::TooDeep {
                layers: self.hidden.len(),
            });
        }
        check_width(|| "the input size".into(), self.input, MAX_WIDTH * 16)?;
        check_width(|| "the number of classes".into(), self.classes, MAX_WIDTH)?;
        for (i, &w) in self.hidden.iter().enumerate() {
            check_width(|| format!("layer {}'s width", i + 1), w, MAX_WIDTH)?;
        }
        if self.input == 0 {
            return Err(TopologyError::EmptyInput);
        }
        if self.classes == 0 {
            return Err(TopologyError::NoClasses);
        }
        if let Some(i) = self.hidden.iter().position(|&w| w == 0) {
            return Err(TopologyError::ZeroWidth { layer: i + 1 });
        }
        if let Some(e) = self.residual.iter().find(|e| !self.skips.contains(e)) {
            return Err(TopologyError::InvalidEdge {
                edge: *e,
                reason: "a residual edge must also be enabled".into(),
            });
        }
        self.skips.iter().try_for_each(|&e| self.check_edge(e))
    }

    pub fn fan_in(&self, layer: usize) -> usize {
        self.sources(layer)
            .iter()
            .fold(0, |n, &s| n.saturating_add(self.width(s)))
    }

    pub fn layer_summaries(&self) -> Vec<LayerSummary> {
        let mut rows = vec![LayerSummary {
            name: "input".into(),
            shape: self.input.to_string(),
            fan_in: 0,
            params: 0,
            macs: 0,
        }];
        for layer in 1..self.num_layers() {
            let fan_in = self.fan_in(layer);
            let width = self.width(layer);
            let name = if layer == self.output_layer() {
                "output".to_string()
            } else {
                format!("fc{layer}")
            };
            // Residual projections are blocks too; identity residuals cost nothing.
            let projected = self
                .residuals_into(layer)
                .iter()
                .filter(|(_, identity)| !identity)
                .fold(0usize, |n, (from, _)| n.saturating_add(self.width(*from)));
            let weights = fan_in.saturating_add(projected).saturating_mul(width);
            // A normalised hidden layer has a scale and a shift in place of the bias.
            let per_unit = match (self.norm, layer == self.output_layer()) {
                (Norm::None, _) | (_, true) => 1,
                (Norm::Batch | Norm::Layer, false) => 2,
            };
            rows.push(LayerSummary {
                name,
                shape: width.to_string(),
                fan_in,
                params: weights.saturating_add(width.saturating_mul(per_unit)),
                macs: weights,
            });
        }
        rows
    }
}

impl CnnSpec {
    pub fn new(input: ImageShape, stages: Vec<Vec<usize>>, classes: usize) -> Self {
        Self {
            input,
            stages,
            classes,
            skips: BTreeSet::new(),
            norm: Norm::None,
            residual: BTreeSet::new(),
            shortcut: Shortcut::default(),
            downsample: Downsample::default(),
            head: Head::default(),
            order: BlockOrder::default(),
        }
    }

    /// The paper's CIFAR-10 CNN (without skips): conv 32,32 | pool | 64,64 | pool | 128,128 | pool.
    pub fn paper(input: ImageShape, classes: usize) -> Self {
        Self::new(
            input,
            vec![vec![32, 32], vec![64, 64], vec![128, 128]],
            classes,
        )
    }

    /// He et al.'s CIFAR ResNet layout without its edges (`res:blocks:2` adds them): a
    /// 16-filter stem, then three stages of `n` two-convolution blocks at 16, 32 and 64
    /// filters, stride-2 downsampling, batch norm, option-A shortcuts, an average-pool head:
    /// `6n + 2` layers with weights (ResNet-20 for n = 3).
    pub fn he_cifar(input: ImageShape, n: usize, classes: usize) -> Self {
        let stages = vec![vec![16; 2 * n + 1], vec![32; 2 * n], vec![64; 2 * n]];
        Self {
            norm: Norm::Batch,
            shortcut: Shortcut::Pad,
            downsample: Downsample::Stride,
            head: Head::Average,
            ..Self::new(input, stages, classes)
        }
    }

    /// The paper's skips 1-4, 2-5, 4-7, 5-8 (valid for any 3-stage, 2-conv-per-stage CNN).
    pub fn paper_skips() -> BTreeSet<SkipEdge> {
        [(1, 4), (2, 5), (4, 7), (5, 8)]
            .into_iter()
            .map(|(a, b)| SkipEdge::new(a, b))
            .collect()
    }

    /// Every layer in paper numbering, with the size of its output. Assumes a poolable input
    /// (see [`CnnSpec::validate`]); sizes are floored otherwise. Pools and strided
    /// convolutions round up: an odd row or column forms its own, smaller windows (a 3x3
    /// convolution with stride 2 and padding 1 gives `ceil(h / 2)` rows, as in PyTorch).
    pub fn layers(&self) -> Vec<CnnLayer> {
        let mut layers = Vec::new();
        let (mut h, mut w) = (self.input.height, self.input.width);
        let mut number = 0;
        for (s, stage) in self.stages.iter().enumerate() {
            for (i, &filters) in stage.iter().enumerate() {
                number += 1;
                let stride = match self.downsample {
                    Downsample::Stride if s > 0 && i == 0 => 2,
                    _ => 1,
                };
                if stride == 2 {
                    (h, w) = (h.div_ceil(2), w.div_ceil(2));
                }
                layers.push(CnnLayer {
                    number,
                    kind: CnnLayerKind::Conv { filters },
                    height: h,
                    width: w,
                    stride,
                });
            }
            if self.downsample == Downsample::Pool {
                number += 1;
                (h, w) = (h.div_ceil(2), w.div_ceil(2));
                layers.push(CnnLayer {
                    number,
                    kind: CnnLayerKind::Pool,
                    height: h,
                    width: w,
                    stride: 2,
                });
            }
        }
        layers
    }

    /// The size of the image layer `number` reads (the previous layer's output; the input
    /// for layer 1).
    pub fn input_size(&self, number: usize) -> (usize, usize) {
        match number.checked_sub(1).and_then(|n| self.layer(n)) {
            Some(l) => (l.height, l.width),
            None => (self.input.height, self.input.width),
        }
    }

    /// A conv layer's own filter count (`None` for pools and unknown numbers).
    pub fn filters(&self, number: usize) -> Option<usize> {
        match self.layer(number)?.kind {
            CnnLayerKind::Conv { filters } => Some(filters),
            CnnLayerKind::Pool => None,
        }
    }

    /// Residual edges into conv `layer` with their sources: identity where the source's
    /// output has the target's size and channel count, else a [`Shortcut`].
    pub fn residuals_into(&self, layer: usize) -> Vec<(usize, bool)> {
        let target = self.layer(layer);
        self.residual
            .iter()
            .filter(|e| e.to == layer)
            .map(|e| {
                let identity = match (self.layer(e.from), target) {
                    (Some(from), Some(to)) => {
                        (from.height, from.width) == (to.height, to.width)
                            && Some(self.channels(e.from)) == self.filters(layer)
                    }
                    _ => false,
                };
                (e.from, identity)
            })
            .collect()
    }

    /// Whether a residual edge can join its source to its target: a valid edge whose
    /// source's shape matches the target's, or reaches it by the network's [`Shortcut`]
    /// (option A cannot drop channels).
    pub fn check_residual(&self, edge: SkipEdge) -> Result<(), TopologyError> {
        self.check_edge(edge)?;
        let (from, filters) = (self.channels(edge.from), self.filters(edge.to).unwrap_or(0));
        if self.shortcut == Shortcut::Pad && from > filters {
            return Err(TopologyError::InvalidEdge {
                edge,
                reason: format!(
                    "the pad shortcut cannot fit layer {}'s {from} channels into conv {}'s \
                     {filters} filters (use the projection shortcut)",
                    edge.from, edge.to
                ),
            });
        }
        Ok(())
    }

    pub fn layer(&self, number: usize) -> Option<CnnLayer> {
        self.layers().into_iter().find(|l| l.number == number)
    }

    pub fn candidate_edges(&self) -> Vec<SkipEdge> {
        let convs: Vec<usize> = self
            .layers()
            .iter()
            .filter(|l| matches!(l.kind, CnnLayerKind::Conv { .. }))
            .map(|l| l.number)
            .collect();
        let mut edges = Vec::new();
        for (a, &from) in convs.iter().enumerate() {
            for &to in &convs[a + 1..] {
                if to >= from + 2 {
                    edges.push(SkipEdge::new(from, to));
                }
            }
        }
        edges
    }

    pub fn check_edge(&self, edge: SkipEdge) -> Result<(), TopologyError> {
        let fail = |reason: String| Err(TopologyError::InvalidEdge { edge, reason });
        let (Some(from), Some(to)) = (self.layer(edge.from), self.layer(edge.to)) else {
            let last = self.layers().last().map_or(0, |l| l.number);
            return fail(format!("the CNN has layers 1..={last}"));
        };
        if !matches!(from.kind, CnnLayerKind::Conv { .. })
            || !matches!(to.kind, CnnLayerKind::Conv { .. })
        {
            return fail("skips connect two convolution layers".into());
        }
        if edge.to < edge.from + 2 {
            return fail("a skip must jump over at least one layer (to >= from + 2)".into());
        }
        // The skip downsamples its source as often as the main path does between the two
        // layers.
        let (mut h, mut w) = (from.height, from.width);
        while h > to.height {
            (h, w) = (h.div_ceil(2), w.div_ceil(2));
        }
        if (h, w) != (to.height, to.width) {
            return fail(format!(
                "{}x{} does not pool down to {}x{}",
                from.height, from.width, to.height, to.width
            ));
        }
        Ok(())
    }

    pub fn num_pools(&self) -> usize {
        self.stages.len()
    }

    pub fn validate(&self) -> Result<(), TopologyError> {
        if self.norm == Norm::Layer {
            return Err(TopologyError::CnnLayerNorm);
        }
        let convs: usize = self.stages.iter().map(Vec::len).sum();
        if convs > MAX_LAYERS || self.stages.len() > MAX_LAYERS {
            return Err(TopologyError::TooDeep { layers: convs });
        }
        check_width(
            || "the input's channel count".into(),
            self.input.channels,
            4096,
        )?;
        check_width(|| "the input's height".into(), self.input.height, 4096)?;
        check_width(|| "the input's width".into(), self.input.width, 4096)?;
        check_width(|| "the number of classes".into(), self.classes, MAX_WIDTH)?;
        for (s, stage) in self.stages.iter().enumerate() {
            for (i, &w) in stage.iter().enumerate() {
                check_width(
                    || format!("the width of stage {} conv {}", s + 1, i + 1),
                    w,
                    MAX_WIDTH,
                )?;
            }
        }
        if self.input.is_empty() {
            return Err(TopologyError::EmptyInput);
        }
        if self.classes == 0 {
            return Err(TopologyError::NoClasses);
        }
        if self.stages.is_empty() {
            return Err(TopologyError::NoStages);
        }
        if let Some(stage) = self.stages.iter().position(|s| s.is_empty()) {
            return Err(TopologyError::EmptyStage { stage: stage + 1 });
        }
        for layer in self.layers() {
            if layer.kind == (CnnLayerKind::Conv { filters: 0 }) {
                return Err(TopologyError::ZeroWidth {
                    layer: layer.number,
                });
            }
        }
        self.validate_edges()
    }

    /// The edge rules alone (what a toggle must keep true).
    pub fn validate_edges(&self) -> Result<(), TopologyError> {
        if let Some(e) = self.residual.iter().find(|e| !self.skips.contains(e)) {
            return Err(TopologyError::InvalidEdge {
                edge: *e,
                reason: "a residual edge must also be enabled".into(),
            });
        }
        self.skips.iter().try_for_each(|&e| self.check_edge(e))?;
        self.residual
            .iter()
            .try_for_each(|&e| self.check_residual(e))
    }

    /// The channel groups of layer `number`'s output (a conv's own filters first, then the
    /// blocks its incoming concatenating skips add; a pool passes its input's groups through;
    /// residual edges add onto the conv's own filters).
    /// Layer 0 is the input image.
    pub fn groups(&self, number: usize) -> Vec<ChannelGroup> {
        if number == 0 {
            return vec![ChannelGroup {
                path: vec![0],
                channels: self.input.channels,
            }];
        }
        match self.layer(number).map(|l| l.kind) {
            Some(CnnLayerKind::Conv { filters }) => {
                let mut groups = vec![ChannelGroup {
                    path: vec![number],
                    channels: filters,
                }];
                let concatenating = self
                    .skips
                    .iter()
                    .filter(|e| e.to == number && !self.residual.contains(e));
                for edge in concatenating {
                    for mut g in self.groups(edge.from) {
                        g.path.push(number);
                        groups.push(g);
                    }
                }
                groups
            }
            Some(CnnLayerKind::Pool) => self.groups(number - 1),
            None => Vec::new(),
        }
    }

    /// Channels of layer `number`'s output after skip concatenation.
    pub fn channels(&self, number: usize) -> usize {
        self.groups(number)
            .iter()
            .fold(0, |n, g| n.saturating_add(g.channels))
    }

    /// The number of the last layer (the final pool), whose output the classifier reads.
    pub fn last_layer(&self) -> usize {
        self.layers().last().map_or(0, |l| l.number)
    }

    /// Features per sample the classifier reads: every pixel of every channel, or one mean
    /// per channel ([`Head::Average`]).
    pub fn classifier_inputs(&self) -> usize {
        let last = self.layers().last().copied();
        last.map_or(0, |l| {
            let pixels = match self.head {
                Head::Flatten => l.height * l.width,
                Head::Average => 1,
            };
            pixels.saturating_mul(self.channels(l.number))
        })
    }

    pub fn layer_summaries(&self) -> Vec<LayerSummary> {
        let mut rows = vec![LayerSummary {
            name: "input".into(),
            shape: format!(
                "{}x{}x{}",
                self.input.height, self.input.width, self.input.channels
            ),
            fan_in: 0,
            params: 0,
            macs: 0,
        }];
        for layer in self.layers() {
            let shape = format!(
                "{}x{}x{}",
                layer.height,
                layer.width,
                self.channels(layer.number)
            );
            match layer.kind {
                CnnLayerKind::Conv { filters } => {
                    let fan_in = self.channels(layer.number - 1).saturating_mul(9);
                    // Post-activation: a bias, or batch norm's scale and shift per filter.
                    // Pre-activation: a bias without normalisation; with it, a scale and a
                    // shift per input channel (none before the first convolution).
                    let (per_filter, per_input) = match (self.norm, self.order) {
                        (Norm::None, _) => (1, 0),
                        (_, BlockOrder::Post) => (2, 0),
                        (_, BlockOrder::Pre) if layer.number == 1 => (0, 0),
                        (_, BlockOrder::Pre) => (0, 2),
                    };
                    let pixels = layer.height * layer.width;
                    // Projection shortcuts are 1x1 convolutions (normalised as the network
                    // is); identities and padding cost nothing.
                    let projected = match self.shortcut {
                        Shortcut::Pad => 0,
                        Shortcut::Projection => self
                            .residuals_into(layer.number)
                            .iter()
                            .filter(|(_, identity)| !identity)
                            .fold(0usize, |n, (from, _)| {
                                n.saturating_add(self.channels(*from))
                            }),
                    };
                    let projection_norm = match (projected, self.norm, self.order) {
                        (0, ..) | (_, Norm::None, _) | (.., BlockOrder::Pre) => 0,
                        _ => 2 * filters,
                    };
                    let weights = fan_in.saturating_add(projected).saturating_mul(filters);
                    rows.push(LayerSummary {
                        name: format!("conv{}", layer.number),
                        shape,
                        fan_in,
                        // Batch norm's scale and shift take the place of the bias.
                        params: weights
                            .saturating_add(filters.saturating_mul(per_filter))
                            .saturating_add(fan_in / 9 * per_input)
                            .saturating_add(projection_norm),
                        macs: pixels.saturating_mul(weights),
                    });
                }
                CnnLayerKind::Pool => rows.push(LayerSummary {
                    name: format!("pool{}", layer.number),
                    shape,
                    fan_in: 0,
                    params: 0,
                    macs: 0,
                }),
            }
        }
        let fan_in = self.classifier_inputs();
        // Pre-activation normalises the last layer's channels before the head.
        let head_norm = match (self.norm, self.order) {
            (Norm::None, _) | (_, BlockOrder::Post) => 0,
            _ => 2 * self.channels(self.last_layer()),
        };
        rows.push(LayerSummary {
            name: "output".into(),
            shape: self.classes.to_string(),
            fan_in,
            params: fan_in
                .saturating_mul(self.classes)
                .saturating_add(self.classes)
                .saturating_add(head_norm),
            macs: fan_in.saturating_mul(self.classes),
        });
        rows
    }
}

impl Topology {
    /// The lab's first MLP for data of this shape: two hidden layers, 128 and 256 wide.
    pub fn default_mlp(input: ImageShape, classes: usize) -> Self {
        Topology::Mlp(MlpSpec::new(input.len(), vec![128, 256], classes))
    }

    /// The paper's CNN (three stages of two convs; pools round odd sizes up), with fewer
    /// stages only where the input is too small to halve three times.
    pub fn default_cnn(input: ImageShape, classes: usize) -> Self {
        let mut stages = vec![vec![32, 32], vec![64, 64], vec![128, 128]];
        while stages.len() > 1 && input.height.min(input.width) < 1 << stages.len() {
            stages.pop();
        }
        Topology::Cnn(CnnSpec::new(input, stages, classes))
    }

    /// Structure, edges and size: a topology that passes can be built without aborting.
    pub fn validate(&self) -> Result<(), TopologyError> {
        match self {
            Topology::Mlp(m) => m.validate()?,
            Topology::Cnn(c) => c.validate()?,
        }
        let params = self.param_count();
        if params > MAX_PARAMS {
            return Err(TopologyError::TooLarge { params });
        }
        Ok(())
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Topology::Mlp(_) => "mlp",
            Topology::Cnn(_) => "cnn",
        }
    }

    pub fn classes(&self) -> usize {
        match self {
            Topology::Mlp(m) => m.classes,
            Topology::Cnn(c) => c.classes,
        }
    }

    /// Number of input features per sample.
    pub fn input_len(&self) -> usize {
        match self {
            Topology::Mlp(m) => m.input,
            Topology::Cnn(c) => c.input.len(),
        }
    }

    pub fn skips(&self) -> &BTreeSet<SkipEdge> {
        match self {
            Topology::Mlp(m) => &m.skips,
            Topology::Cnn(c) => &c.skips,
        }
    }

    pub fn candidate_edges(&self) -> Vec<SkipEdge> {
        match self {
            Topology::Mlp(m) => m.candidate_edges(),
            Topology::Cnn(c) => c.candidate_edges(),
        }
    }

    pub fn check_edge(&self, edge: SkipEdge) -> Result<(), TopologyError> {
        match self {
            Topology::Mlp(m) => m.check_edge(edge),
            Topology::Cnn(c) => c.check_edge(edge),
        }
    }

    /// Turns one edge on or off (an edge turned on keeps its kind; a new one concatenates).
    /// Invalid edges are an error and leave the topology as it was.
    pub fn set_skip(&mut self, edge: SkipEdge, on: bool) -> Result<(), TopologyError> {
        self.check_edge(edge)?;
        let before = self.clone();
        let (skips, residual) = match self {
            Topology::Mlp(m) => (&mut m.skips, &mut m.residual),
            Topology::Cnn(c) => (&mut c.skips, &mut c.residual),
        };
        if on {
            skips.insert(edge);
        } else {
            skips.remove(&edge);
            residual.remove(&edge);
        }
        // A CNN's new concatenation widens its target, which a pad shortcut from it may no
        // longer fit.
        if let Topology::Cnn(c) = self {
            if let Err(e) = c.validate_edges() {
                *self = before;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The kind of an enabled edge (`None` when it is off).
    pub fn edge_kind(&self, edge: SkipEdge) -> Option<EdgeKind> {
        if !self.skips().contains(&edge) {
            return None;
        }
        Some(match self.residual_edges().contains(&edge) {
            true => EdgeKind::Residual,
            false => EdgeKind::Concat,
        })
    }

    /// How an enabled residual edge joins its target: `identity` where the shapes match,
    /// else `projection` (an MLP's, or a CNN's 1x1 convolution) or `pad` (a CNN's option A).
    /// `None` for an edge that is off or concatenates.
    pub fn residual_join(&self, edge: SkipEdge) -> Option<&'static str> {
        let into = match self {
            Topology::Mlp(m) => m.residuals_into(edge.to),
            Topology::Cnn(c) => c.residuals_into(edge.to),
        };
        let (_, identity) = into.into_iter().find(|(from, _)| *from == edge.from)?;
        Some(match (identity, self) {
            (true, _) => "identity",
            (false, Topology::Cnn(c)) => c.shortcut.name(),
            (false, Topology::Mlp(_)) => "projection",
        })
    }

    /// The enabled edges that are residual.
    pub fn residual_edges(&self) -> &BTreeSet<SkipEdge> {
        match self {
            Topology::Mlp(m) => &m.residual,
            Topology::Cnn(c) => &c.residual,
        }
    }

    /// Enables `edge` as `kind`; an edge the network cannot take that way is an error and
    /// leaves the topology as it was.
    pub fn set_edge_kind(&mut self, edge: SkipEdge, kind: EdgeKind) -> Result<(), TopologyError> {
        self.check_edge(edge)?;
        let before = self.clone();
        let (skips, residual) = match self {
            Topology::Mlp(m) => (&mut m.skips, &mut m.residual),
            Topology::Cnn(c) => (&mut c.skips, &mut c.residual),
        };
        skips.insert(edge);
        if kind == EdgeKind::Residual {
            residual.insert(edge);
        } else {
            residual.remove(&edge);
        }
        if let Topology::Cnn(c) = self {
            if let Err(e) = c.validate_edges() {
                *self = before;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The edges a pattern stands for here.
    fn pattern_edges(&self, pattern: &Pattern) -> BTreeSet<SkipEdge> {
        let candidates = self.candidate_edges();
        let pick =
            |keep: &dyn Fn(&SkipEdge) -> bool| candidates.iter().copied().filter(keep).collect();
        match *pattern {
            Pattern::All => pick(&|_| true),
            Pattern::Paper => match self {
                Topology::Cnn(_) => CnnSpec::paper_skips(),
                Topology::Mlp(_) => pick(&|_| true),
            },
            Pattern::Edge(e) => [e].into_iter().collect(),
            Pattern::Every(k) => pick(&|e| e.from % k == 0 && e.to % k == 0),
            Pattern::Next(k) => pick(&|e| e.to - e.from <= k + 1),
            Pattern::Chain(k) => pick(&|e| e.to - e.from == k && e.from % k == 0),
            Pattern::Blocks(k) => {
                // Blocks start at the first layer an edge can leave: the MLP's input, the
                // CNN's first convolution.
                let first = candidates.iter().map(|e| e.from).min().unwrap_or(0);
                pick(&|e| e.to - e.from == k && (e.from - first) % k == 0)
            }
        }
    }

    /// Replaces the enabled edges with a selection; every edge is checked first.
    pub fn apply_skips(&mut self, selection: &SkipSelection) -> Result<(), TopologyError> {
        let terms = selection.terms();
        let (mut edges, mut residual) = (BTreeSet::new(), BTreeSet::new());
        for term in &terms {
            let found = self.pattern_edges(&term.pattern);
            if term.residual {
                residual.extend(found.iter().copied());
            }
            edges.extend(found);
        }
        edges.iter().try_for_each(|&e| self.check_edge(e))?;
        match self {
            Topology::Mlp(m) => {
                m.skips = edges;
                m.residual = residual;
            }
            Topology::Cnn(c) => {
                let mut next = c.clone();
                next.skips = edges;
                next.residual = residual;
                next.validate_edges()?;
                *c = next;
            }
        }
        Ok(())
    }

    /// The enabled edges as a selection that rebuilds them, kinds included.
    pub fn selection(&self) -> SkipSelection {
        let residual = self.residual_edges();
        if residual.is_empty() {
            return SkipSelection::Edges(self.skips().iter().copied().collect());
        }
        SkipSelection::Terms(
            self.skips()
                .iter()
                .map(|&e| SkipTerm {
                    residual: residual.contains(&e),
                    pattern: Pattern::Edge(e),
                })
                .collect(),
        )
    }

    pub fn layer_summaries(&self) -> Vec<LayerSummary> {
        match self {
            Topology::Mlp(m) => m.layer_summaries(),
            Topology::Cnn(c) => c.layer_summaries(),
        }
    }

    /// Sizes saturate instead of overflowing, so an absurd network counts as huge.
    pub fn param_count(&self) -> usize {
        self.layer_summaries()
            .iter()
            .fold(0, |n, l| n.saturating_add(l.params))
    }

    /// The paper's "reinforced" vanilla network for this (skip) network, without skips:
    /// - CNN: every convolution as wide as the concatenation it outputs here (the paper's
    ///   skips 1-4, 2-5, 4-7, 5-8 give 32, 32, 96, 96, 224, 224);
    /// - MLP: the hidden widths scaled by one factor so the parameter count comes as close
    ///   as it can to this network's.
    pub fn reinforced(&self) -> Topology {
        match self {
            Topology::Cnn(c) => {
                let mut widths = c
                    .layers()
                    .into_iter()
                    .filter(|l| matches!(l.kind, CnnLayerKind::Conv { .. }))
                    .map(|l| c.channels(l.number));
                let stages = c
                    .stages
                    .iter()
                    .map(|stage| stage.iter().filter_map(|_| widths.next()).collect())
                    .collect();
                // The same kind of network, only without skips.
                Topology::Cnn(CnnSpec {
                    norm: c.norm,
                    shortcut: c.shortcut,
                    downsample: c.downsample,
                    head: c.head,
                    order: c.order,
                    ..CnnSpec::new(c.input, stages, c.classes)
                })
            }
            Topology::Mlp(m) => {
                let target = self.param_count() as f64;
                let vanilla = |scale: f64| {
                    let hidden = m
                        .hidden
                        .iter()
                        .map(|&h| ((h as f64 * scale).round() as usize).max(1))
                        .collect();
                    // The same kind of network, only without skips.
                    Topology::Mlp(MlpSpec {
                        activation: m.activation,
                        init: m.init,
                        norm: m.norm,
                        ..MlpSpec::new(m.input, hidden, m.classes)
                    })
                };
                // Parameters grow with the scale: bisect for the closest count.
                let (mut low, mut high) = (0.0f64, 1.0f64);
                while (vanilla(high).param_count() as f64) < target && high < 1e6 {
                    high *= 2.0;
                }
                for _ in 0..60 {
                    let mid = (low + high) / 2.0;
                    if (vanilla(mid).param_count() as f64) < target {
                        low = mid;
                    } else {
                        high = mid;
                    }
                }
                let gap = |t: &Topology| (t.param_count() as f64 - target).abs();
                let (a, b) = (vanilla(low), vanilla(high));
                if gap(&a) <= gap(&b) {
                    a
                } else {
                    b
                }
            }
        }
    }

    /// Multiply-adds for one sample's forward pass.
    pub fn macs_per_sample(&self) -> usize {
        self.layer_summaries()
            .iter()
            .fold(0, |n, l| n.saturating_add(l.macs))
    }

    /// An estimate of the memory training takes at `batch`, in bytes: five f32 copies of the
    /// parameters (weights, gradients, two optimiser moments, a host copy) and, per sample,
    /// two of every activation (values and gradients), a convolution's 3x3 windows counted
    /// nine times. For the paper's skip CNN at batch 32 it gives 0.33 GB where the process
    /// measured 0.27 GB resident.
    pub fn training_bytes(&self, batch: usize) -> u64 {
        let activations: usize = match self {
            Topology::Mlp(m) => {
                let units = (0..m.num_layers()).fold(0usize, |n, l| n.saturating_add(m.width(l)));
                // Normalising keeps two more copies of each hidden layer (centred, scaled).
                let normalised = match m.norm {
                    Norm::None => 0,
                    Norm::Batch | Norm::Layer => m.hidden.iter().sum::<usize>().saturating_mul(2),
                };
                units.saturating_add(normalised)
            }
            Topology::Cnn(c) => c.layers().iter().fold(c.input.len(), |n, l| {
                n.saturating_add(
                    (l.height * l.width)
                        .saturating_mul(c.channels(l.number))
                        .saturating_mul(9),
                )
            }),
        };
        let per_copy = (self.param_count() as u64).saturating_mul(5);
        let per_batch = (activations as u64)
            .saturating_mul(batch as u64)
            .saturating_mul(2);
        per_copy.saturating_add(per_batch).saturating_mul(4)
    }

    /// A one-line description, e.g. `mlp 784-128-256-10, 3/3 skips`.
    pub fn summary(&self) -> String {
        let total = self.candidate_edges().len();
        let on = self.skips().len();
        let net = self.shape_text();
        match self {
            Topology::Mlp(m) => {
                let mut net = net;
                match (m.activation, m.init) {
                    (Activation::Relu, InitScheme::He) => {}
                    (a, InitScheme::He) => net.push_str(&format!(" {}", a.name())),
                    (a, i) => net.push_str(&format!(" {}/{}", a.name(), i.name())),
                }
                if m.norm != Norm::None {
                    net.push_str(&format!(" {}", m.norm.label()));
                }
                let residual = match m.residual.len() {
                    0 => String::new(),
                    n => format!(" ({n} residual)"),
                };
                format!("{net}, {on}/{total} skips{residual}")
            }
            Topology::Cnn(c) => {
                let mut net = net;
                if c.norm != Norm::None {
                    net.push_str(&format!(" {}", c.norm.label()));
                }
                if c.downsample == Downsample::Stride {
                    net.push_str(" strided");
                }
                if c.head == Head::Average {
                    net.push_str(" avg-pool head");
                }
                if c.order == BlockOrder::Pre {
                    net.push_str(" pre-activation");
                }
                let shortcuts = (1..=c.last_layer())
                    .flat_map(|l| c.residuals_into(l))
                    .any(|(_, identity)| !identity);
                let residual = match (c.residual.len(), shortcuts) {
                    (0, _) => String::new(),
                    (n, false) => format!(" ({n} residual)"),
                    (n, true) => format!(" ({n} residual, {} shortcuts)", c.shortcut.name()),
                };
                format!("{net}, {on}/{total} skips{residual}")
            }
        }
    }

    /// The layers' sizes alone, e.g. `mlp 784-64x20-10` or `cnn 1x28x28 [32,32 | 64,64] -> 10`.
    pub fn shape_text(&self) -> String {
        match self {
            Topology::Mlp(m) => {
                let all: Vec<usize> = (0..m.num_layers()).map(|l| m.width(l)).collect();
                format!("mlp {}", runs_text(&all, "-"))
            }
            Topology::Cnn(c) => {
                let stages: Vec<String> = c.stages.iter().map(|s| runs_text(s, ",")).collect();
                format!("cnn {} [{}] -> {}", c.input, stages.join(" | "), c.classes)
            }
        }
    }
}

/// Widths joined by `sep`, runs of three or more equal ones as `64x20`.
fn runs_text(all: &[usize], sep: &str) -> String {
    let mut widths: Vec<String> = Vec::new();
    let mut i = 0;
    while i < all.len() {
        let run = all[i..].iter().take_while(|&&w| w == all[i]).count();
        if run >= 3 {
            widths.push(format!("{}x{run}", all[i]));
        } else {
            widths.extend(all[i..i + run].iter().map(|w| w.to_string()));
        }
        i += run;
    }
    widths.join(sep)
}

/// Which skip edges to enable, as users write it: `all`, `none`, `paper`, `0-2,1-3`, or
/// terms joined by commas, each a pattern optionally marked residual (`res:`):
/// `i-j`, `all`, `paper`, `every:k` (edges between layers numbered by multiples of k),
/// `next:k` (each layer to the k layers after its neighbour), `chain:k` (i to i+k for
/// i = 0, k, 2k, ...: `res:chain:2` is ResNet's two-layer blocks on an MLP), `blocks:k` (the
/// same from the first layer an edge can leave: `res:blocks:2` on a CNN too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipSelection {
    All,
    None,
    /// The paper's choice: all edges for an MLP, 1-4, 2-5, 4-7, 5-8 for the CNN.
    Paper,
    Edges(Vec<SkipEdge>),
    Terms(Vec<SkipTerm>),
}

/// Edges a term stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    All,
    Paper,
    Edge(SkipEdge),
    Every(usize),
    Next(usize),
    Chain(usize),
    /// `blocks:k`: i to i+k for i = f, f+k, f+2k, ... from the first layer f an edge can
    /// leave (an MLP's input, a CNN's first convolution): `res:blocks:2` is ResNet's two-layer
    /// blocks on either.
    Blocks(usize),
}

/// A pattern, and whether its edges are residual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkipTerm {
    pub residual: bool,
    pub pattern: Pattern,
}

impl SkipSelection {
    /// The selection as terms.
    pub fn terms(&self) -> Vec<SkipTerm> {
        let concat = |pattern| SkipTerm {
            residual: false,
            pattern,
        };
        match self {
            SkipSelection::All => vec![concat(Pattern::All)],
            SkipSelection::None => Vec::new(),
            SkipSelection::Paper => vec![concat(Pattern::Paper)],
            SkipSelection::Edges(edges) => {
                edges.iter().map(|&e| concat(Pattern::Edge(e))).collect()
            }
            SkipSelection::Terms(terms) => terms.clone(),
        }
    }
}

impl fmt::Display for SkipTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.residual {
            f.write_str("res:")?;
        }
        match self.pattern {
            Pattern::All => f.write_str("all"),
            Pattern::Paper => f.write_str("paper"),
            Pattern::Edge(e) => write!(f, "{e}"),
            Pattern::Every(k) => write!(f, "every:{k}"),
            Pattern::Next(k) => write!(f, "next:{k}"),
            Pattern::Chain(k) => write!(f, "chain:{k}"),
            Pattern::Blocks(k) => write!(f, "blocks:{k}"),
        }
    }
}

impl std::str::FromStr for SkipSelection {
    type Err = TopologyError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| TopologyError::BadSkipList {
            input: input.to_string(),
            reason,
        };
        match input.trim() {
            "all" => return Ok(SkipSelection::All),
            "none" | "" => return Ok(SkipSelection::None),
            "paper" => return Ok(SkipSelection::Paper),
            _ => {}
        }
        let mut terms = Vec::new();
        for item in input.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (residual, rest) = match item.strip_prefix("res:") {
                Some(rest) => (true, rest.trim()),
                None => (false, item),
            };
            let count = |k: &str| match k.trim().parse::<usize>() {
                Ok(k) if k >= 1 => Ok(k),
                _ => Err(bad(format!(
                    "`{k}` in `{item}` is not a count of 1 or more"
                ))),
            };
            let pattern = if rest == "all" {
                Pattern::All
            } else if rest == "paper" {
                Pattern::Paper
            } else if let Some(k) = rest.strip_prefix("every:") {
                Pattern::Every(count(k)?)
            } else if let Some(k) = rest.strip_prefix("next:") {
                Pattern::Next(count(k)?)
            } else if let Some(k) = rest.strip_prefix("chain:") {
                match count(k)? {
                    1 => {
                        return Err(bad(format!(
                            "`{item}`: a chain skips at least one layer (chain:2 or more)"
                        )))
                    }
                    k => Pattern::Chain(k),
                }
            } else if let Some(k) = rest.strip_prefix("blocks:") {
                match count(k)? {
                    1 => {
                        return Err(bad(format!(
                            "`{item}`: a block skips at least one layer (blocks:2 or more)"
                        )))
                    }
                    k => Pattern::Blocks(k),
                }
            } else {
                let (a, b) = rest.split_once(['-', '>']).ok_or_else(|| {
                    bad(format!(
                        "`{item}` is not a pair like 0-2 or a pattern (every:k, next:k, chain:k)"
                    ))
                })?;
                let parse = |s: &str| {
                    s.trim()
                        .parse::<usize>()
                        .map_err(|_| bad(format!("`{s}` in `{item}` is not a layer number")))
                };
                Pattern::Edge(SkipEdge::new(parse(a)?, parse(b)?))
            };
            terms.push(SkipTerm { residual, pattern });
        }
        // Plain pairs stay the simple form (and print as they did).
        if terms
            .iter()
            .all(|t| !t.residual && matches!(t.pattern, Pattern::Edge(_)))
        {
            let edges = terms.iter().map(|t| match t.pattern {
                Pattern::Edge(e) => e,
                _ => unreachable!("checked"),
            });
            return Ok(SkipSelection::Edges(edges.collect()));
        }
        Ok(SkipSelection::Terms(terms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper_cnn() -> CnnSpec {
        let mut cnn = CnnSpec::paper(ImageShape::new(3, 32, 32), 10);
        cnn.skips = CnnSpec::paper_skips();
        cnn
    }

    #[test]
    fn mlp_candidates_are_all_non_adjacent_pairs() {
        let mlp = MlpSpec::new(784, vec![128, 256], 26);
        let edges: Vec<String> = mlp
            .candidate_edges()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(edges, ["0-2", "0-3", "1-3"]);
        let mlp4 = MlpSpec::new(784, vec![128, 256, 256], 26);
        assert_eq!(mlp4.candidate_edges().len(), 6);
    }

    #[test]
    fn mlp_fan_in_and_params_follow_enabled_edges() {
        let mut topo = Topology::Mlp(MlpSpec::new(784, vec![128, 256], 10));
        let vanilla = topo.param_count();
        assert_eq!(vanilla, 784 * 128 + 128 + 128 * 256 + 256 + 256 * 10 + 10);
        topo.set_skip(SkipEdge::new(0, 2), true).unwrap();
        assert_eq!(topo.param_count(), vanilla + 784 * 256);
        assert_eq!(topo.macs_per_sample(), vanilla - 128 - 256 - 10 + 784 * 256);
        let Topology::Mlp(m) = &topo else { panic!() };
        assert_eq!(m.fan_in(2), 128 + 784);
        assert_eq!(m.sources(2), vec![1, 0]);
    }

    #[test]
    fn paper_cnn_numbering_and_widened_channels() {
        let cnn = paper_cnn();
        cnn.validate().unwrap();
        let kinds: Vec<String> = cnn
            .layers()
            .iter()
            .map(|l| match l.kind {
                CnnLayerKind::Conv { filters } => format!("c{filters}"),
                CnnLayerKind::Pool => "p".into(),
            })
            .collect();
        assert_eq!(
            kinds,
            ["c32", "c32", "p", "c64", "c64", "p", "c128", "c128", "p"]
        );
        // The paper: 1-4 and 2-5 give 96 channels, 4-7 and 5-8 give 224.
        assert_eq!(cnn.channels(4), 96);
        assert_eq!(cnn.channels(5), 96);
        assert_eq!(cnn.channels(7), 224);
        assert_eq!(cnn.channels(8), 224);
        assert_eq!(cnn.classifier_inputs(), 4 * 4 * 224);
        let keys: Vec<String> = cnn.groups(8).iter().map(|g| g.key()).collect();
        assert_eq!(keys, ["8", "5>8", "2>5>8"]);
    }

    #[test]
    fn cnn_candidates_skip_adjacent_layers_and_pools() {
        let cnn = paper_cnn();
        let edges = cnn.candidate_edges();
        assert!(edges.contains(&SkipEdge::new(1, 4)));
        assert!(!edges.contains(&SkipEdge::new(1, 2)));
        assert!(!edges.contains(&SkipEdge::new(4, 5)));
        assert!(edges.iter().all(|e| ![3, 6, 9].contains(&e.from)));
        assert!(matches!(
            cnn.check_edge(SkipEdge::new(3, 5)),
            Err(TopologyError::InvalidEdge { .. })
        ));
    }

    #[test]
    fn invalid_edges_and_shapes_are_errors() {
        let mut topo = Topology::Mlp(MlpSpec::new(784, vec![128], 10));
        let err = topo.set_skip(SkipEdge::new(1, 2), true).unwrap_err();
        assert!(err.to_string().contains("1-2"), "{err}");
        assert!(topo.set_skip(SkipEdge::new(0, 9), true).is_err());
        assert!(topo.skips().is_empty());

        let empty = CnnSpec::paper(ImageShape::new(3, 0, 30), 10);
        assert_eq!(empty.validate(), Err(TopologyError::EmptyInput));
        // Odd sizes pool with a smaller last window: 30 -> 15 -> 8 -> 4.
        let odd = CnnSpec::paper(ImageShape::new(3, 30, 30), 10);
        assert_eq!(odd.validate(), Ok(()));
        let sizes: Vec<usize> = odd.layers().iter().map(|l| l.height).collect();
        assert_eq!(sizes, vec![30, 30, 15, 15, 15, 8, 8, 8, 4]);
        let zero = MlpSpec::new(784, vec![128, 0], 10);
        assert_eq!(zero.validate(), Err(TopologyError::ZeroWidth { layer: 2 }));
    }

    #[test]
    fn sizes_are_bounded_before_they_are_computed() {
        let mlp = |hidden: Vec<usize>| Topology::Mlp(MlpSpec::new(784, hidden, 10));
        let e = mlp(vec![usize::MAX]).validate().unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "layer 1's width is {}; skiplab allows at most 1,048,576",
                usize::MAX
            )
        );
        // Under every width limit, over the parameter limit (and counted without overflow).
        let e = mlp(vec![1 << 20, 1 << 20]).validate().unwrap_err();
        assert_eq!(
            e,
            TopologyError::TooLarge {
                params: 784 * (1 << 20) + (1 << 20) + (1 << 40) + (1 << 20) + 10 * (1 << 20) + 10
            }
        );
        assert!(mlp(vec![0; MAX_LAYERS + 1]).validate().is_err());
        // The memory estimate for the paper's skip CNN at batch 32 (measured: 0.27 GB RSS).
        let mut cnn = Topology::Cnn(paper_cnn());
        cnn.apply_skips(&SkipSelection::Paper).unwrap();
        let gb = cnn.training_bytes(32) as f64 / 1e9;
        assert!((0.25..0.45).contains(&gb), "{gb} GB");
    }

    #[test]
    fn reinforced_networks_match_the_skip_networks_capacity() {
        let mut cnn = Topology::Cnn(CnnSpec::paper(ImageShape::new(3, 32, 32), 10));
        cnn.apply_skips(&SkipSelection::Paper).unwrap();
        let Topology::Cnn(r) = cnn.reinforced() else {
            unreachable!()
        };
        assert_eq!(r.stages, vec![vec![32, 32], vec![96, 96], vec![224, 224]]);
        assert!(r.skips.is_empty());
        let mut mlp = Topology::Mlp(MlpSpec::new(784, vec![128, 256, 256], 26));
        mlp.apply_skips(&SkipSelection::All).unwrap();
        let r = mlp.reinforced();
        assert!(r.skips().is_empty());
        let (a, b) = (mlp.param_count() as f64, r.param_count() as f64);
        assert!((a - b).abs() / a < 0.01, "{a} vs {b}");
        // Without skips the network is its own reinforcement.
        let plain = Topology::Mlp(MlpSpec::new(784, vec![128, 256], 10));
        assert_eq!(plain.reinforced(), plain);
    }

    #[test]
    fn skip_lists_parse() {
        assert_eq!("all".parse::<SkipSelection>().unwrap(), SkipSelection::All);
        assert_eq!(
            "0-2, 1-3".parse::<SkipSelection>().unwrap(),
            SkipSelection::Edges(vec![SkipEdge::new(0, 2), SkipEdge::new(1, 3)])
        );
        let err = "0-2,x".parse::<SkipSelection>().unwrap_err();
        assert!(err.to_string().contains("`x`"), "{err}");
        // The paper's CNN on 1x28x28 (the MNIST family): 28 -> 14 -> 7 -> 4.
        let mut topo = Topology::Cnn(CnnSpec::paper(ImageShape::new(1, 28, 28), 10));
        topo.apply_skips(&SkipSelection::Paper).unwrap();
        assert_eq!(topo.validate(), Ok(()));
        topo = Topology::Cnn(CnnSpec::paper(ImageShape::new(3, 32, 32), 10));
        topo.apply_skips(&SkipSelection::Paper).unwrap();
        assert_eq!(topo.skips(), &CnnSpec::paper_skips());
    }
}

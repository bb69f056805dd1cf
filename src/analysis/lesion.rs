//! Lesion studies after Veit, Wilber and Belongie 2016 ("Residual Networks Behave Like
//! Ensembles of Relatively Shallow Networks"): delete parts of a trained network at test
//! time, without retraining, and measure what is lost.
//!
//! - **A layer** is deleted in one of two ways. A layer that receives residual edges loses its
//!   branch (every weight block into it, its bias or its normalisation's scale and shift set
//!   to zero), so only its shortcuts remain: with ReLU after the sum, as in ResNet's
//!   post-activation block, its output becomes exactly what the shortcuts carry. A layer
//!   without residual edges whose input is as wide as its output is passed through as
//!   identity (its main weights the identity, every other block zero, its batch norm made the
//!   identity from its running estimates), which ReLU keeps exact because its input is
//!   another layer's rectified output. Any other layer cannot be deleted, and says why.
//! - **An edge** is removed as the lab's toggle removes it: the topology without it, every
//!   other weight kept (a concatenating edge's weight blocks dropped, a residual add gone).
//! - **k deletions**: k layers drawn at random (without repeats) from the network's blocks
//!   (the layers deleted by dropping their branch, where the network has residual edges;
//!   else every layer that can pass its input through), `draws` draws per k, from a seed.
//!
//! Everything is evaluated in evaluation mode (batch norm's running estimates) on the device
//! given, over the samples given. No terminal, no files.

use super::StudyError;
use std::collections::BTreeSet;

use rand::seq::index::sample;
use rand::SeedableRng;
use serde::Serialize;

use crate::compare::Spread;
use crate::data::Samples;
use crate::net::ops::NetDevice;
use crate::net::{
    cnn_weight_name, mlp_weight_name, norm_names, stored_names, HostParam, Network, NORM_EPS,
};
use crate::topology::{Activation, BlockOrder, CnnLayerKind, EdgeKind, Norm, SkipEdge, Topology};
use crate::train::Evaluator;

/// How a layer is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Deletion {
    /// Its residual branch dropped: only its shortcuts remain.
    Branch,
    /// Passed through: its output is its input.
    Identity,
}

impl Deletion {
    pub fn name(self) -> &'static str {
        match self {
            Deletion::Branch => "branch",
            Deletion::Identity => "identity",
        }
    }
}

/// Accuracy and mean cross-entropy over the samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Score {
    pub accuracy: f64,
    pub loss: f64,
}

/// One layer's deletion: how, and what it gave; or why it cannot be deleted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerLesion {
    /// The layer's number (an MLP's hidden layer; a CNN's convolution or pool).
    pub layer: usize,
    pub name: String,
    pub deletion: Option<Deletion>,
    pub score: Option<Score>,
    /// Why it cannot be deleted (when `deletion` is `None`).
    pub why_not: Option<String>,
}

/// One skip edge's removal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EdgeLesion {
    pub edge: SkipEdge,
    pub kind: EdgeKind,
    pub score: Score,
}

/// k blocks deleted at once, over several random draws.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    pub k: usize,
    /// One score per draw, with the layers each draw deleted.
    pub draws: Vec<(Vec<usize>, Score)>,
}

impl CurvePoint {
    /// The accuracy over the draws: mean and sample standard deviation.
    pub fn accuracy(&self) -> Option<Spread> {
        let values: Vec<f64> = self.draws.iter().map(|(_, s)| s.accuracy).collect();
        Spread::of(&values)
    }
}

/// A whole lesion study of one network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Lesion {
    /// Layer names by number (`input`, then the network's layers, `out` last).
    pub layers: Vec<String>,
    /// The network as trained.
    pub baseline: Score,
    pub samples: usize,
    /// Every hidden layer, in order.
    pub deletions: Vec<LayerLesion>,
    /// Every enabled skip edge.
    pub edges: Vec<EdgeLesion>,
    /// The layers the k-deletion curve draws from.
    pub pool: Vec<usize>,
    pub curve: Vec<CurvePoint>,
}

/// What the k-deletion curve does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LesionOptions {
    /// The largest k (at most the pool's size; `None`: all of it).
    pub max_k: Option<usize>,
    /// Random draws per k (fewer where there are fewer distinct sets).
    pub draws: usize,
    pub seed: u64,
}

impl Default for LesionOptions {
    fn default() -> Self {
        Self {
            max_k: None,
            draws: 10,
            seed: 0,
        }
    }
}

/// The hidden layers a lesion study lists: an MLP's hidden layers, a CNN's convolutions and
/// pools, by number.
pub fn hidden_layers(topology: &Topology) -> Vec<usize> {
    match topology {
        Topology::Mlp(m) => (1..m.output_layer()).collect(),
        Topology::Cnn(c) => c.layers().iter().map(|l| l.number).collect(),
    }
}

/// How layer `layer` can be deleted, or why it cannot.
pub fn deletion(topology: &Topology, layer: usize) -> Result<Deletion, String> {
    match topology {
        Topology::Mlp(m) => {
            if layer == 0 || layer >= m.output_layer() {
                return Err("only hidden layers are deleted".into());
            }
            let residuals = m.residuals_into(layer);
            // An MLP's projection joins the layer's sum before its normalisation: with the
            // branch gone, what is left would be normalised by statistics of a sum that no
            // longer exists.
            if m.norm != Norm::None && residuals.iter().any(|(_, identity)| !identity) {
                return Err(format!(
                    "its shortcut is a projection, normalised together with its branch by {}",
                    m.norm.name()
                ));
            }
            if !residuals.is_empty() {
                return Ok(Deletion::Branch);
            }
            let (input, output) = (m.width(layer - 1), m.width(layer));
            if input != output {
                return Err(format!(
                    "no residual edge, and its input has {input} units where it has {output}"
                ));
            }
            if layer == 1 {
                return Err(
                    "no residual edge, and its input is the image, which ReLU would clip".into(),
                );
            }
            if m.activation != Activation::Relu && m.activation != Activation::Linear {
                return Err(format!(
                    "no residual edge, and {} does not pass its input through",
                    m.activation.name()
                ));
            }
            if m.norm == Norm::Layer {
                return Err("no residual edge, and layer norm rescales every sample".into());
            }
            Ok(Deletion::Identity)
        }
        Topology::Cnn(c) => {
            let Some(l) = c.layer(layer) else {
                return Err(format!("the network has no layer {layer}"));
            };
            let CnnLayerKind::Conv { filters } = l.kind else {
                return Err("a pool has no weights; it halves the resolution".into());
            };
            if !c.residuals_into(layer).is_empty() {
                return Ok(Deletion::Branch);
            }
            let input = c.channels(layer - 1);
            if l.stride != 1 {
                return Err("no residual edge, and it halves the resolution".into());
            }
            if input != filters {
                return Err(format!(
                    "no residual edge, and its input has {input} channels where it has {filters} filters"
                ));
            }
            if layer == 1 {
                return Err(
                    "no residual edge, and its input is the image, which ReLU would clip".into(),
                );
            }
            if c.order == BlockOrder::Pre {
                return Err("no residual edge, and its pre-activation rescales its input".into());
            }
            Ok(Deletion::Identity)
        }
    }
}

/// A weight block into a layer being deleted.
struct InputBlock {
    name: String,
    /// Input units or channels it reads.
    features: usize,
    /// Whether it reads the layer's main input (every channel group of a CNN's).
    main: bool,
    /// A 3x3 window (a convolution's rows: tap-major, the centre tap fifth).
    window: bool,
}

/// The weights with layer `layer` deleted as [`deletion`] says (the topology is unchanged).
pub fn delete_layer(
    topology: &Topology,
    params: &mut [HostParam],
    layer: usize,
) -> Result<Deletion, String> {
    let how = deletion(topology, layer)?;
    let find = |params: &mut [HostParam], name: &str| -> Result<usize, String> {
        params
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| format!("the weights have no `{name}`"))
    };
    let set = |params: &mut [HostParam], name: &str, value: &dyn Fn(usize) -> f32| {
        let i = find(params, name)?;
        for (j, v) in params[i].values.iter_mut().enumerate() {
            *v = value(j);
        }
        Ok::<_, String>(())
    };
    let zero = |_: usize| 0.0;
    // The blocks into the layer, and the layer's normalisation (or bias) and width.
    let (blocks, layer_name, units, norm) = match topology {
        Topology::Mlp(m) => {
            let blocks = m
                .sources(layer)
                .into_iter()
                .enumerate()
                .map(|(i, from)| InputBlock {
                    name: mlp_weight_name(from, layer),
                    features: m.width(from),
                    main: i == 0,
                    window: false,
                })
                .collect();
            (blocks, format!("fc{layer}"), m.width(layer), m.norm)
        }
        Topology::Cnn(c) => {
            let name = format!("conv{layer}");
            let blocks: Vec<InputBlock> = c
                .groups(layer - 1)
                .iter()
                .map(|g| InputBlock {
                    name: cnn_weight_name(&name, g),
                    features: g.channels,
                    main: true,
                    window: true,
                })
                .collect();
            // A pre-activation layer has no normalisation of its own output.
            let norm = match c.order {
                BlockOrder::Pre => Norm::None,
                BlockOrder::Post => c.norm,
            };
            (blocks, name, c.filters(layer).unwrap_or(0), norm)
        }
    };
    let pre_activation_bias =
        matches!(topology, Topology::Cnn(c) if c.order == BlockOrder::Pre && c.norm != Norm::None);
    match how {
        Deletion::Branch => {
            for block in &blocks {
                set(params, &block.name, &zero)?;
            }
            match norm {
                Norm::None if !pre_activation_bias => {
                    set(params, &format!("{layer_name}.b"), &zero)?
                }
                Norm::None => {}
                _ => {
                    let [gamma, beta, ..] = norm_names(&layer_name);
                    set(params, &gamma, &zero)?;
                    set(params, &beta, &zero)?;
                }
            }
        }
        Deletion::Identity => {
            // Every input channel (groups in order) maps to the same-numbered output unit; a
            // convolution reads it at the centre of its 3x3 window (rows are tap-major).
            let mut offset = 0;
            for block in &blocks {
                let features = block.features;
                if !block.main {
                    set(params, &block.name, &zero)?;
                    continue;
                }
                // A CNN's groups take consecutive channels; an MLP's identity reads the main
                // input alone.
                let start = if block.window { offset } else { 0 };
                offset += features;
                let centre = if block.window { 4 * features } else { 0 };
                set(params, &block.name, &|j| {
                    let (row, col) = (j / units, j % units);
                    let on =
                        (centre..centre + features).contains(&row) && col == start + row - centre;
                    f32::from(u8::from(on))
                })?;
            }
            match norm {
                Norm::None => set(params, &format!("{layer_name}.b"), &zero)?,
                Norm::Batch => {
                    let [gamma, beta, mean, var] = norm_names(&layer_name);
                    let running = |params: &mut [HostParam], name: &str| {
                        find(params, name).map(|i| params[i].values.clone())
                    };
                    let (mean, var) = (running(params, &mean)?, running(params, &var)?);
                    set(params, &gamma, &|j| {
                        (f64::from(var[j]) + NORM_EPS).sqrt() as f32
                    })?;
                    set(params, &beta, &|j| mean[j])?;
                }
                Norm::Layer => return Err("layer norm rescales every sample".into()),
            }
        }
    }
    Ok(how)
}

/// `topology` without skip edge `edge` and the weights that remain (every other parameter as
/// it was), as the lab's toggle removes an edge.
pub fn remove_edge(
    topology: &Topology,
    params: &[HostParam],
    edge: SkipEdge,
) -> Result<(Topology, Vec<HostParam>), String> {
    let mut without = topology.clone();
    without.set_skip(edge, false).map_err(|e| e.to_string())?;
    let names = stored_names(&without);
    let kept = params
        .iter()
        .filter(|p| names.contains(&p.name))
        .cloned()
        .collect();
    Ok((without, kept))
}

/// The layers the k-deletion curve draws from: those deleted by dropping their branch where
/// there are any, else every layer that can pass its input through.
pub fn pool(topology: &Topology) -> Vec<usize> {
    let deletable: Vec<(usize, Deletion)> = hidden_layers(topology)
        .into_iter()
        .filter_map(|l| deletion(topology, l).ok().map(|d| (l, d)))
        .collect();
    let blocks: Vec<usize> = deletable
        .iter()
        .filter(|(_, d)| *d == Deletion::Branch)
        .map(|(l, _)| *l)
        .collect();
    if blocks.is_empty() {
        deletable.into_iter().map(|(l, _)| l).collect()
    } else {
        blocks
    }
}

/// How far a study has got: evaluations done of those planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// The lesion study of `topology` with `params` over `samples`, on `dev`. `progress` is told
/// after every evaluation and stops the study by returning `false`.
pub fn lesion<D: NetDevice<f32>>(
    dev: &D,
    topology: &Topology,
    params: &[HostParam],
    samples: &Samples,
    options: &LesionOptions,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Lesion, StudyError> {
    let mut net = super::trained(dev, topology, params, samples)?;
    let mut evaluator = Evaluator::default();

    let layers = hidden_layers(topology);
    let edges: Vec<SkipEdge> = topology.skips().iter().copied().collect();
    let pool = pool(topology);
    let max_k = options.max_k.unwrap_or(pool.len()).min(pool.len());
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let draws: Vec<Vec<Vec<usize>>> = (1..=max_k)
        .map(|k| draw_sets(&pool, k, options.draws, &mut rng))
        .collect();
    let total = 1
        + layers
            .iter()
            .filter(|&&l| deletion(topology, l).is_ok())
            .count()
        + edges.len()
        + draws.iter().map(Vec::len).sum::<usize>();
    let mut done = 0;
    let mut tick = |done: &mut usize| {
        *done += 1;
        match progress(Progress { done: *done, total }) {
            true => Ok(()),
            false => Err(StudyError::Cancelled),
        }
    };
    let mut score_of = |net: &mut Network<f32, D>, params: &[HostParam]| {
        net.import(params).map_err(StudyError::Weights)?;
        let (loss, accuracy) = evaluator.evaluate(net, samples);
        Ok::<_, StudyError>(Score { accuracy, loss })
    };

    let baseline = score_of(&mut net, params)?;
    tick(&mut done)?;
    let names = super::layer_names(topology);
    let mut deletions = Vec::new();
    for &layer in &layers {
        let mut lesioned = params.to_vec();
        let (deletion, score, why_not) = match delete_layer(topology, &mut lesioned, layer) {
            Ok(how) => {
                let score = score_of(&mut net, &lesioned)?;
                tick(&mut done)?;
                (Some(how), Some(score), None)
            }
            Err(why) => (None, None, Some(why)),
        };
        deletions.push(LayerLesion {
            layer,
            name: names[layer].clone(),
            deletion,
            score,
            why_not,
        });
    }
    let mut edge_lesions = Vec::new();
    for &edge in &edges {
        let kind = topology.edge_kind(edge).unwrap_or_default();
        let (without, kept) = remove_edge(topology, params, edge).map_err(StudyError::Weights)?;
        let mut other =
            Network::new(without, dev, 0).map_err(|e| StudyError::Weights(e.to_string()))?;
        let score = score_of(&mut other, &kept)?;
        tick(&mut done)?;
        edge_lesions.push(EdgeLesion { edge, kind, score });
    }
    let mut curve = Vec::new();
    for (k, sets) in (1..=max_k).zip(draws) {
        let mut point = CurvePoint {
            k,
            draws: Vec::new(),
        };
        for set in sets {
            let mut lesioned = params.to_vec();
            for &layer in &set {
                delete_layer(topology, &mut lesioned, layer).map_err(StudyError::Weights)?;
            }
            let score = score_of(&mut net, &lesioned)?;
            tick(&mut done)?;
            point.draws.push((set, score));
        }
        curve.push(point);
    }
    Ok(Lesion {
        layers: names,
        baseline,
        samples: samples.len(),
        deletions,
        edges: edge_lesions,
        pool,
        curve,
    })
}

/// [`lesion`] on `device` (see `on_device!`).
pub fn lesion_on(
    device: crate::device::Device,
    topology: &Topology,
    params: &[HostParam],
    samples: &Samples,
    options: &LesionOptions,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Lesion, StudyError> {
    on_device!(device, options.seed, StudyError::Device, |dev| lesion(
        &dev, topology, params, samples, options, progress
    ))
}

/// Up to `draws` distinct sets of `k` layers from `pool` (all of them where there are fewer),
/// each sorted.
fn draw_sets(pool: &[usize], k: usize, draws: usize, rng: &mut impl rand::Rng) -> Vec<Vec<usize>> {
    let possible = binomial(pool.len(), k);
    let wanted = (draws as u128).min(possible) as usize;
    let mut sets: BTreeSet<Vec<usize>> = BTreeSet::new();
    let mut order = Vec::new();
    // Distinct sets by rejection; when most of the sets are wanted this still ends quickly,
    // since `wanted` never exceeds how many there are.
    while sets.len() < wanted {
        let mut set: Vec<usize> = sample(rng, pool.len(), k)
            .into_iter()
            .map(|i| pool[i])
            .collect();
        set.sort_unstable();
        if sets.insert(set.clone()) {
            order.push(set);
        }
    }
    order
}

fn binomial(n: usize, k: usize) -> u128 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    (0..k).fold(1u128, |acc, i| acc * (n - i) as u128 / (i + 1) as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomials_and_draws_are_distinct_and_bounded() {
        assert_eq!(binomial(5, 2), 10);
        assert_eq!(binomial(5, 5), 1);
        assert_eq!(binomial(5, 0), 1);
        assert_eq!(binomial(18, 9), 48620);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let pool = [2, 4, 6, 8];
        let sets = draw_sets(&pool, 2, 100, &mut rng);
        assert_eq!(sets.len(), 6, "only 6 pairs exist");
        let distinct: BTreeSet<_> = sets.iter().collect();
        assert_eq!(distinct.len(), 6);
        assert_eq!(draw_sets(&pool, 4, 10, &mut rng), vec![vec![2, 4, 6, 8]]);
        assert_eq!(draw_sets(&pool, 3, 2, &mut rng).len(), 2);
    }
}

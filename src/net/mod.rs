//! Networks with run-time shapes on dfdx 0.13, built from a [`Topology`].
//!
//! Every skip edge owns its weight block: a layer computes `sum_i x_i W_ij + b_j` over its
//! sources, which equals multiplying the concatenation of the sources by one stacked weight.
//! For the CNN the same holds per channel group of the consuming layer's input (see
//! [`ChannelGroup`]). So enabling an edge adds zero blocks (the function is unchanged at the
//! switch, as skip* needs) and disabling it drops its blocks; no other weight moves.
//!
//! Initialisation (seeded, `StdRng`): He-uniform `U(±sqrt(6 / fan_in))` for weights that feed
//! a ReLU, LeCun-uniform `U(±sqrt(3 / fan_in))` for the output layer, biases zero; `fan_in`
//! counts every enabled source of the layer.

pub mod cpu_ops;
pub mod ops;
pub mod optim;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use dfdx::prelude::*;
use rand::{Rng, SeedableRng};

use crate::topology::{
    Activation, BlockOrder, ChannelGroup, CnnLayer, CnnLayerKind, CnnSpec, Downsample, Head,
    InitScheme, MlpSpec, Norm, Shortcut, Topology, TopologyError,
};
use ops::{DenseInput, HostMirror, Images};

/// MLP activations by layer.
type Activations<E, D, T> = BTreeMap<usize, Tensor<(usize, usize), E, D, T>>;

/// Row indices for a gather, `[batch, rows]`.
pub type GatherIndex<D> = Tensor<(usize, usize), usize, D>;

/// A gather index's kind, batch, height and width.
type IndexKey = (IndexKind, usize, usize, usize);

/// Which gather a [`GatherIndex`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum IndexKind {
    /// The 3x3 windows of a convolution of this stride, padding 1
    /// ([`ops::im2col_index_strided`]).
    Im2col { stride: usize },
    /// Every other pixel of every other row ([`ops::subsample_index`]).
    Subsample,
}

/// A parameter tensor: a bias vector or a weight matrix.
#[derive(Clone, Debug)]
pub enum Param<E: Dtype, D: Device<E>> {
    Vector(Tensor<(usize,), E, D>),
    Matrix(Tensor<(usize, usize), E, D>),
}

impl<E: Dtype, D: Device<E>> Param<E, D> {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Param::Vector(t) => vec![t.shape().0],
            Param::Matrix(t) => vec![t.shape().0, t.shape().1],
        }
    }
    pub fn len(&self) -> usize {
        self.dims().iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn to_vec(&self) -> Vec<E> {
        match self {
            Param::Vector(t) => t.as_vec(),
            Param::Matrix(t) => t.as_vec(),
        }
    }
    pub fn copy_from(&mut self, values: &[E]) {
        match self {
            Param::Vector(t) => t.copy_from(values),
            Param::Matrix(t) => t.copy_from(values),
        }
    }
}

/// How a new parameter is filled.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Init {
    /// Uniform in ±bound.
    Uniform(f64),
    Zero,
    /// A normalisation's scale starts at one.
    One,
}

/// Which statistics batch normalisation uses: the batch's while training, the running
/// estimates while evaluating (PyTorch's `model.eval()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormMode {
    Train,
    Eval,
}

/// PyTorch's defaults for batch and layer normalisation.
pub const NORM_EPS: f64 = 1e-5;
pub const NORM_MOMENTUM: f64 = 0.1;

/// Names of a normalised layer's scale and shift, and of batch norm's running estimates:
/// `fc1.gamma`, `conv4.running_var`.
pub fn norm_names(layer: &str) -> [String; 4] {
    [
        format!("{layer}.gamma"),
        format!("{layer}.beta"),
        format!("{layer}.running_mean"),
        format!("{layer}.running_var"),
    ]
}

/// A normalised layer's scale (starting at one) and shift, in place of its bias.
fn norm_specs(layer: &str, units: usize) -> [ParamSpec; 2] {
    let [gamma, beta, ..] = norm_names(layer);
    [
        ParamSpec {
            name: gamma,
            dims: vec![units],
            init: Init::One,
        },
        ParamSpec {
            name: beta,
            dims: vec![units],
            init: Init::Zero,
        },
    ]
}

/// A parameter the topology needs.
#[derive(Clone, Debug, PartialEq)]
struct ParamSpec {
    name: String,
    dims: Vec<usize>,
    init: Init,
}

fn he(fan_in: usize) -> Init {
    Init::Uniform((6.0 / fan_in.max(1) as f64).sqrt())
}

fn lecun(fan_in: usize) -> Init {
    Init::Uniform((3.0 / fan_in.max(1) as f64).sqrt())
}

/// Name of the weight block feeding MLP layer `to` from layer `from`.
pub fn mlp_weight_name(from: usize, to: usize) -> String {
    format!("fc{to}.w{from}")
}

/// Name of the projection of a residual edge `from -> to` whose widths differ.
pub fn mlp_residual_name(from: usize, to: usize) -> String {
    format!("fc{to}.r{from}")
}

/// Name of the weight block of CNN layer `layer` (a conv number, or `out` for the classifier)
/// reading channel group `group`.
pub fn cnn_weight_name(layer: &str, group: &ChannelGroup) -> String {
    format!("{layer}.w[{}]", group.key())
}

/// Name of the 1x1 projection that carries channel group `group` of layer `from` along a
/// residual edge into conv `to` ([`crate::topology::Shortcut::Projection`]); its batch norm,
/// where the network has one, is named after the edge alone (`conv9.r7.gamma`).
pub fn cnn_projection_name(from: usize, to: usize, group: &ChannelGroup) -> String {
    format!("{}[{}]", cnn_projection_layer(from, to), group.key())
}

fn cnn_projection_layer(from: usize, to: usize) -> String {
    format!("conv{to}.r{from}")
}

/// Name of the normalisation a pre-activation layer (`conv{n}`, or `out` for the head) applies
/// to one channel group of its input: `conv3.pre[1>3]` (`conv3.pre[1>3].gamma`, ...).
fn cnn_pre_norm_name(layer: &str, group: &ChannelGroup) -> String {
    format!("{layer}.pre[{}]", group.key())
}

/// The pre-activation normalisations a CNN has, with their channel counts: before every
/// convolution but the first and before the head, per channel group.
fn cnn_pre_norms(cnn: &CnnSpec) -> Vec<(String, usize)> {
    if cnn.order != BlockOrder::Pre || cnn.norm == Norm::None {
        return Vec::new();
    }
    let mut norms = Vec::new();
    for layer in cnn.layers() {
        if matches!(layer.kind, CnnLayerKind::Conv { .. }) && layer.number > 1 {
            let name = format!("conv{}", layer.number);
            for g in cnn.groups(layer.number - 1) {
                norms.push((cnn_pre_norm_name(&name, &g), g.channels));
            }
        }
    }
    for g in cnn.groups(cnn.last_layer()) {
        norms.push((cnn_pre_norm_name("out", &g), g.channels));
    }
    norms
}

fn mlp_specs(mlp: &MlpSpec) -> Vec<ParamSpec> {
    let mut specs = Vec::new();
    let out = mlp.output_layer();
    for to in 1..mlp.num_layers() {
        let fan_in = mlp.fan_in(to);
        let fan_out = mlp.width(to);
        let (init, bias) = match mlp.init {
            InitScheme::He if to == out => (lecun(fan_in), Init::Zero),
            InitScheme::He => (he(fan_in), Init::Zero),
            InitScheme::Lecun => (lecun(fan_in), Init::Zero),
            InitScheme::Xavier => (
                Init::Uniform((6.0 / (fan_in + fan_out).max(1) as f64).sqrt()),
                Init::Zero,
            ),
            InitScheme::Torch => {
                let bound = Init::Uniform(1.0 / (fan_in.max(1) as f64).sqrt());
                (bound, bound)
            }
        };
        for from in mlp.sources(to) {
            specs.push(ParamSpec {
                name: mlp_weight_name(from, to),
                dims: vec![mlp.width(from), mlp.width(to)],
                init,
            });
        }
        // A residual's projection starts at zero: the edge adds nothing until it learns to.
        for (from, identity) in mlp.residuals_into(to) {
            if !identity {
                specs.push(ParamSpec {
                    name: mlp_residual_name(from, to),
                    dims: vec![mlp.width(from), mlp.width(to)],
                    init: Init::Zero,
                });
            }
        }
        // A normalised layer's shift takes the place of its bias.
        if mlp.norm != Norm::None && to != out {
            specs.extend(norm_specs(&format!("fc{to}"), mlp.width(to)));
            continue;
        }
        specs.push(ParamSpec {
            name: format!("fc{to}.b"),
            dims: vec![mlp.width(to)],
            init: bias,
        });
    }
    specs
}

/// Batch norm's running estimates a topology needs, with their starting values (mean 0,
/// variance 1), by name, in the network's element type (so saved weights reload exactly).
fn running_stats<E: Dtype>(topology: &Topology) -> BTreeMap<String, Vec<E>> {
    let mut stats = BTreeMap::new();
    let mut add = |layer: String, units: usize| {
        let [.., mean, var] = norm_names(&layer);
        stats.insert(mean, vec![E::default(); units]);
        stats.insert(var, vec![E::ONE; units]);
    };
    match topology {
        Topology::Mlp(m) if m.norm == Norm::Batch => {
            for layer in 1..m.output_layer() {
                add(format!("fc{layer}"), m.width(layer));
            }
        }
        Topology::Cnn(c) if c.norm == Norm::Batch && c.order == BlockOrder::Pre => {
            for (name, channels) in cnn_pre_norms(c) {
                add(name, channels);
            }
        }
        Topology::Cnn(c) if c.norm == Norm::Batch => {
            for layer in c.layers() {
                if let CnnLayerKind::Conv { filters } = layer.kind {
                    add(format!("conv{}", layer.number), filters);
                    for from in cnn_projections_into(c, layer.number) {
                        add(cnn_projection_layer(from, layer.number), filters);
                    }
                }
            }
        }
        _ => {}
    }
    stats
}

/// The sources of the residual edges into conv `to` that go through a learned projection.
fn cnn_projections_into(cnn: &CnnSpec, to: usize) -> Vec<usize> {
    match cnn.shortcut {
        Shortcut::Pad => Vec::new(),
        Shortcut::Projection => cnn
            .residuals_into(to)
            .into_iter()
            .filter(|(_, identity)| !identity)
            .map(|(from, _)| from)
            .collect(),
    }
}

fn cnn_specs(cnn: &CnnSpec) -> Vec<ParamSpec> {
    let mut specs = Vec::new();
    for layer in cnn.layers() {
        let CnnLayerKind::Conv { filters } = layer.kind else {
            continue;
        };
        let fan_in = 9 * cnn.channels(layer.number - 1);
        let name = format!("conv{}", layer.number);
        for group in cnn.groups(layer.number - 1) {
            specs.push(ParamSpec {
                name: cnn_weight_name(&name, &group),
                dims: vec![9 * group.channels, filters],
                init: he(fan_in),
            });
        }
        for from in cnn_projections_into(cnn, layer.number) {
            for group in cnn.groups(from) {
                specs.push(ParamSpec {
                    name: cnn_projection_name(from, layer.number, &group),
                    dims: vec![group.channels, filters],
                    init: he(cnn.channels(from)),
                });
            }
            if cnn.norm == Norm::Batch && cnn.order == BlockOrder::Post {
                specs.extend(norm_specs(
                    &cnn_projection_layer(from, layer.number),
                    filters,
                ));
            }
        }
        // Pre-activation: the next layer normalises this one's output (no bias needed).
        if cnn.norm == Norm::Batch && cnn.order == BlockOrder::Pre {
            continue;
        }
        if cnn.norm == Norm::Batch {
            specs.extend(norm_specs(&name, filters));
            continue;
        }
        specs.push(ParamSpec {
            name: format!("{name}.b"),
            dims: vec![filters],
            init: Init::Zero,
        });
    }
    let last = cnn
        .layers()
        .last()
        .copied()
        .expect("validated CNN has layers");
    let pixels = match cnn.head {
        Head::Flatten => last.height * last.width,
        Head::Average => 1,
    };
    let fan_in = cnn.classifier_inputs();
    for group in cnn.groups(last.number) {
        specs.push(ParamSpec {
            name: cnn_weight_name("out", &group),
            dims: vec![pixels * group.channels, cnn.classes],
            init: lecun(fan_in),
        });
    }
    specs.push(ParamSpec {
        name: "out.b".into(),
        dims: vec![cnn.classes],
        init: Init::Zero,
    });
    for (name, channels) in cnn_pre_norms(cnn) {
        specs.extend(norm_specs(&name, channels));
    }
    specs
}

/// The names of everything a network of `topology` stores: its parameters and batch norm's
/// running estimates (what [`Network::import`] takes).
pub fn stored_names(topology: &Topology) -> std::collections::BTreeSet<String> {
    let mut names: std::collections::BTreeSet<String> =
        param_specs(topology).into_iter().map(|s| s.name).collect();
    names.extend(running_stats::<f32>(topology).into_keys());
    names
}

fn param_specs(topology: &Topology) -> Vec<ParamSpec> {
    match topology {
        Topology::Mlp(m) => mlp_specs(m),
        Topology::Cnn(c) => cnn_specs(c),
    }
}

/// A network with run-time shapes: the topology, its parameters by name, and the device.
pub struct Network<E: Dtype, D: Device<E>> {
    topology: Topology,
    params: BTreeMap<String, Param<E, D>>,
    dev: D,
    /// Gather indices (im2col windows, stride-2 subsampling) by kind, batch, height and
    /// width: built once, reused every step.
    gather_indices: RefCell<HashMap<IndexKey, GatherIndex<D>>>,
    /// Host copies of parameters, by name, on devices that keep them
    /// ([`ops::NetDevice::host_mirrors`]): each equals its parameter. Made on first use;
    /// dropped by anything that may change a parameter other than the optimiser, which
    /// updates them in step.
    host_mirrors: RefCell<HashMap<String, HostMirror<E>>>,
    /// Batch norm's running estimates, by name (not parameters: no gradient, no optimiser;
    /// saved and loaded with them). Updated by every training-mode forward pass.
    running: RefCell<BTreeMap<String, Vec<E>>>,
    /// Batch norm's statistics when set; otherwise a pass with a tape trains and one
    /// without evaluates.
    mode: std::cell::Cell<Option<NormMode>>,
    /// While [`Network::activations`] records: every hidden layer's output on the host, as
    /// (layer, features per example, values by example).
    recorded: RefCell<Option<Vec<LayerActivations<E>>>>,
}

/// One layer's output for a batch: its number, features per example, and the values, one
/// example after another (a CNN layer's channel groups side by side within an example).
pub type LayerActivations<E> = (usize, usize, Vec<E>);

/// How a topology change treated the parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopologyChange {
    pub kept: usize,
    pub added_zero: Vec<String>,
    pub reinitialised: Vec<String>,
    pub removed: Vec<String>,
}

impl<E: Dtype, D: Device<E>> Network<E, D> {
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn device(&self) -> &D {
        &self.dev
    }

    pub fn params(&self) -> &BTreeMap<String, Param<E, D>> {
        &self.params
    }

    /// Mutable access to every parameter (drops the host mirrors, which may no longer match).
    pub fn params_mut(&mut self) -> &mut BTreeMap<String, Param<E, D>> {
        self.host_mirrors.get_mut().clear();
        &mut self.params
    }

    /// Hands the host mirrors to the optimiser, which gives back those it kept equal to
    /// their parameters with [`Network::restore_host_mirrors`].
    pub(crate) fn take_host_mirrors(&mut self) -> HashMap<String, HostMirror<E>> {
        std::mem::take(self.host_mirrors.get_mut())
    }

    pub(crate) fn restore_host_mirrors(&mut self, mirrors: HashMap<String, HostMirror<E>>) {
        *self.host_mirrors.get_mut() = mirrors;
    }

    pub fn param_count(&self) -> usize {
        self.params.values().map(|p| p.len()).sum()
    }

    /// Batch norm's running estimates, by name (`fc1.running_mean`, `fc1.running_var`).
    pub fn running_estimates(&self) -> BTreeMap<String, Vec<f64>> {
        let running = self.running.borrow();
        running
            .iter()
            .map(|(name, v)| {
                let values = v.iter().map(|x| x.to_f64().unwrap_or(f64::NAN));
                (name.clone(), values.collect())
            })
            .collect()
    }
}

/// A parameter's values copied to the host, for saving and loading.
#[derive(Clone, Debug, PartialEq)]
pub struct HostParam {
    pub name: String,
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
}

impl<D: Device<f32>> Network<f32, D> {
    /// Every parameter, by name, and batch norm's running estimates (saved with them).
    pub fn export(&self) -> Vec<HostParam> {
        let params = self.params.iter().map(|(name, p)| HostParam {
            name: name.clone(),
            dims: p.dims(),
            values: p.to_vec(),
        });
        let running = self.running.borrow();
        let stats = running.iter().map(|(name, v)| HostParam {
            name: name.clone(),
            dims: vec![v.len()],
            values: v.clone(),
        });
        let mut all: Vec<HostParam> = params.chain(stats).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Sets every parameter from `params`, which must match this topology exactly: the
    /// same names with the same shapes, none missing and none extra.
    pub fn import(&mut self, params: &[HostParam]) -> Result<(), String> {
        let running = self.running.get_mut();
        let (stats, params): (Vec<&HostParam>, Vec<&HostParam>) =
            params.iter().partition(|p| running.contains_key(&p.name));
        for p in &stats {
            if p.values.len() != running[&p.name].len() {
                return Err(format!(
                    "`{}` holds {} values; the topology needs {}",
                    p.name,
                    p.values.len(),
                    running[&p.name].len()
                ));
            }
        }
        if let Some(missing) = running
            .keys()
            .find(|name| !stats.iter().any(|p| &&p.name == name))
        {
            return Err(format!("running estimate `{missing}` is missing"));
        }
        for p in &params {
            let Some(target) = self.params.get(&p.name) else {
                return Err(format!(
                    "parameter `{}` is not part of the topology",
                    p.name
                ));
            };
            if target.dims() != p.dims || p.values.len() != p.dims.iter().product::<usize>() {
                return Err(format!(
                    "parameter `{}` has shape {:?}; the topology needs {:?}",
                    p.name,
                    p.dims,
                    target.dims()
                ));
            }
        }
        if let Some(missing) = self
            .params
            .keys()
            .find(|name| !params.iter().any(|p| &&p.name == name))
        {
            return Err(format!("parameter `{missing}` is missing"));
        }
        // Everything checked: nothing is set unless all of it can be.
        let running = self.running.get_mut();
        for p in stats {
            let target = running.get_mut(&p.name).expect("checked above");
            target.clone_from(&p.values);
        }
        for p in params {
            self.params_mut()
                .get_mut(&p.name)
                .expect("checked above")
                .copy_from(&p.values);
        }
        Ok(())
    }
}

impl<E: Dtype, D: ops::NetDevice<E>> Network<E, D> {
    /// Builds `topology` with freshly initialised parameters (see the module docs).
    pub fn new(topology: Topology, dev: &D, seed: u64) -> Result<Self, TopologyError> {
        topology.validate()?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let params = param_specs(&topology)
            .into_iter()
            .map(|spec| {
                let p = Self::alloc(dev, &spec, spec.init, &mut rng);
                (spec.name, p)
            })
            .collect();
        Ok(Self {
            running: RefCell::new(running_stats(&topology)),
            topology,
            params,
            dev: dev.clone(),
            gather_indices: RefCell::new(HashMap::new()),
            host_mirrors: RefCell::new(HashMap::new()),
            mode: std::cell::Cell::new(None),
            recorded: RefCell::new(None),
        })
    }

    fn alloc(dev: &D, spec: &ParamSpec, init: Init, rng: &mut impl Rng) -> Param<E, D> {
        let len: usize = spec.dims.iter().product();
        let values: Vec<E> = match init {
            Init::Zero => vec![E::from_f64(0.0).unwrap(); len],
            Init::One => vec![E::ONE; len],
            Init::Uniform(bound) => (0..len)
                .map(|_| E::from_f64(rng.gen_range(-bound..bound)).unwrap())
                .collect(),
        };
        match spec.dims[..] {
            [n] => Param::Vector(dev.tensor_from_vec(values, (n,))),
            [r, c] => Param::Matrix(dev.tensor_from_vec(values, (r, c))),
            _ => unreachable!("parameters are vectors or matrices"),
        }
    }

    /// Switches to another topology (typically one edge toggled). Parameters with the same
    /// name and shape are kept as they are; new blocks start at zero, so the network computes
    /// exactly the same function right after the switch; blocks no longer used are dropped.
    /// A block whose shape changed (a width was edited) is re-initialised from `seed`.
    pub fn set_topology(
        &mut self,
        topology: Topology,
        seed: u64,
    ) -> Result<TopologyChange, TopologyError> {
        topology.validate()?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut change = TopologyChange::default();
        self.host_mirrors.get_mut().clear();
        let mut old = std::mem::take(&mut self.params);
        for spec in param_specs(&topology) {
            let param = match old.remove(&spec.name) {
                Some(p) if p.dims() == spec.dims => {
                    change.kept += 1;
                    p
                }
                Some(_) => {
                    change.reinitialised.push(spec.name.clone());
                    Self::alloc(&self.dev, &spec, spec.init, &mut rng)
                }
                // A new block starts at zero (the function is unchanged); a new scale at one.
                None => {
                    change.added_zero.push(spec.name.clone());
                    let init = match spec.init {
                        Init::One => Init::One,
                        _ => Init::Zero,
                    };
                    Self::alloc(&self.dev, &spec, init, &mut rng)
                }
            };
            self.params.insert(spec.name, param);
        }
        change.removed = old.into_keys().collect();
        // Running estimates of kept layers stay; new ones start afresh.
        let mut running = running_stats(&topology);
        for (name, values) in running.iter_mut() {
            if let Some(old) = self.running.get_mut().remove(name) {
                if old.len() == values.len() {
                    *values = old;
                }
            }
        }
        *self.running.get_mut() = running;
        self.topology = topology;
        Ok(change)
    }

    fn matrix<T: Tape<E, D>>(&self, name: &str) -> Tensor<(usize, usize), E, D, T> {
        match self.params.get(name) {
            Some(Param::Matrix(t)) => t.retaped::<T>(),
            other => panic!("parameter {name} should be a matrix, found {other:?}"),
        }
    }

    /// The host mirror of matrix `name`, made now if missing, on devices that keep them.
    fn host_weight(&self, name: &str) -> Option<HostMirror<E>> {
        if !D::host_mirrors() {
            return None;
        }
        let mut mirrors = self.host_mirrors.borrow_mut();
        if let Some(mirror) = mirrors.get(name) {
            return Some(mirror.clone());
        }
        let values = self.params.get(name)?.to_vec();
        let mirror = HostMirror::new(values);
        mirrors.insert(name.to_string(), mirror.clone());
        Some(mirror)
    }

    fn vector<T: Tape<E, D>>(&self, name: &str) -> Tensor<(usize,), E, D, T> {
        match self.params.get(name) {
            Some(Param::Vector(t)) => t.retaped::<T>(),
            other => panic!("parameter {name} should be a vector, found {other:?}"),
        }
    }

    /// Logits for a batch `[batch, input_len]` (images flattened channels-last).
    ///
    /// With `T = OwnedTape` the result records every parameter's use; `loss.backward()`
    /// then holds a gradient for each one, keyed by the stored tensors. The input gets no
    /// gradient.
    pub fn forward<T>(&self, x: Tensor<(usize, usize), E, D>) -> Tensor<(usize, usize), E, D, T>
    where
        T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
    {
        match &self.topology {
            Topology::Mlp(m) => self.forward_mlp(m, x),
            Topology::Cnn(c) => self.forward_cnn(c, x),
        }
    }

    fn forward_mlp<T>(
        &self,
        mlp: &MlpSpec,
        x: Tensor<(usize, usize), E, D>,
    ) -> Tensor<(usize, usize), E, D, T>
    where
        T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
    {
        // Activations that later skips read; the tape travels with the main path, these
        // copies share the tensors' ids so their gradients add up in the same place. The
        // input (layer 0) has no tape and needs no gradient.
        let mut kept: Activations<E, D, T> = BTreeMap::new();
        let skip_sources: Vec<usize> = mlp.skips.iter().map(|e| e.from).collect();
        let mut prev: Option<Tensor<(usize, usize), E, D, T>> = None;
        for to in 1..mlp.num_layers() {
            let from = to - 1;
            let w = |from: usize| self.matrix::<T>(&mlp_weight_name(from, to));
            let host = |from: usize| self.host_weight(&mlp_weight_name(from, to));
            let mut inputs = vec![match prev.take() {
                None => DenseInput::network_input(x.clone(), w(0)).with_host_weight(host(0)),
                Some(p) => {
                    if skip_sources.contains(&from) {
                        kept.insert(from, p.with_empty_tape());
                    }
                    DenseInput::new(p, w(from)).with_host_weight(host(from))
                }
            }];
            let source = |from: usize, w: Tensor<(usize, usize), E, D, T>| {
                if from == 0 {
                    DenseInput::network_input(x.clone(), w)
                } else {
                    DenseInput::new(kept[&from].with_empty_tape(), w)
                }
            };
            for from in mlp.sources(to).into_iter().skip(1) {
                inputs.push(source(from, w(from)).with_host_weight(host(from)));
            }
            let residuals = mlp.residuals_into(to);
            for &(from, identity) in &residuals {
                if !identity {
                    let name = mlp_residual_name(from, to);
                    let input = source(from, self.matrix::<T>(&name));
                    inputs.push(input.with_host_weight(self.host_weight(&name)));
                }
            }
            let hidden = to != mlp.output_layer();
            let normed = hidden && mlp.norm != Norm::None;
            let identities: Vec<usize> = residuals
                .iter()
                .filter(|(_, identity)| *identity)
                .map(|(from, _)| *from)
                .collect();
            // ReLU without identity residuals or a normalisation stays fused into the
            // layer's kernel.
            if !normed && identities.is_empty() && (!hidden || mlp.activation == Activation::Relu) {
                let bias = self.vector::<T>(&format!("fc{to}.b"));
                let out = D::dense(inputs, Some(bias), hidden);
                if hidden {
                    self.record(to, std::slice::from_ref(&out));
                }
                prev = Some(out);
                continue;
            }
            let mut z = match normed {
                true => self.dense_normalised(inputs, &format!("fc{to}"), mlp.norm, false, None),
                false => D::dense(inputs, Some(self.vector::<T>(&format!("fc{to}.b"))), false),
            };
            for from in identities {
                z = if from == 0 {
                    z + x.clone()
                } else {
                    z + kept[&from].with_empty_tape()
                };
            }
            prev = Some(if hidden {
                let out = activate(z, mlp.activation);
                self.record(to, std::slice::from_ref(&out));
                out
            } else {
                z
            });
        }
        prev.expect("an MLP has an output layer")
    }

    /// Every hidden layer's output for a batch `[batch, input_len]`, in evaluation mode
    /// (batch norm's running estimates), on the host: an MLP's hidden layers, a CNN's
    /// convolutions (with the channel groups their skips carry) and pools, in order.
    pub fn activations(&self, x: Tensor<(usize, usize), E, D>) -> Vec<LayerActivations<E>> {
        *self.recorded.borrow_mut() = Some(Vec::new());
        let mode = self.mode.replace(Some(NormMode::Eval));
        let _ = self.forward::<NoneTape>(x);
        self.mode.set(mode);
        self.recorded.borrow_mut().take().unwrap_or_default()
    }

    /// Keeps rows `[batch, features]` as layer `layer`'s output, when recording.
    fn record<T: Tape<E, D>>(&self, layer: usize, rows: &[Tensor<(usize, usize), E, D, T>]) {
        if let Some(list) = self.recorded.borrow_mut().as_mut() {
            let (_, features) = *rows[0].shape();
            list.push((layer, features, rows[0].as_vec()));
        }
    }

    /// Keeps a CNN layer's channel groups as its output, each example's groups side by side,
    /// when recording.
    fn record_images<T: Tape<E, D>>(&self, layer: usize, groups: &[Images<E, D, T>]) {
        let mut recorded = self.recorded.borrow_mut();
        let Some(list) = recorded.as_mut() else {
            return;
        };
        let batch = groups.first().map_or(0, |g| g.shape().0).max(1);
        let parts: Vec<Vec<E>> = groups.iter().map(|g| g.as_vec()).collect();
        let per: Vec<usize> = parts.iter().map(|p| p.len() / batch).collect();
        let features: usize = per.iter().sum();
        let mut values = Vec::with_capacity(batch * features);
        for i in 0..batch {
            for (part, &n) in parts.iter().zip(&per) {
                values.extend_from_slice(&part[i * n..(i + 1) * n]);
            }
        }
        list.push((layer, features, values));
    }

    /// Sets which statistics batch normalisation uses (`None`: by the pass, as
    /// [`Network::forward`] says).
    pub fn set_norm_mode(&self, mode: Option<NormMode>) {
        self.mode.set(mode);
    }

    /// Batch or layer normalisation of layer `layer`'s sum `z` (`[rows, units]`: a batch of
    /// an MLP layer, or every pixel of a batch of a convolution, so per channel over the batch
    /// and the pixels), with its learned scale and shift. Batch norm in training mode
    /// normalises by the rows' mean and (biased) variance and moves the running estimates
    /// towards them (the unbiased variance, momentum 0.1), as PyTorch's `BatchNorm1d/2d` do;
    /// in evaluation mode it uses the running estimates. `residual` (a residual block's
    /// shortcut) is added before the ReLU, in the same kernel where the device has one.
    fn normalise<T>(
        &self,
        z: Tensor<(usize, usize), E, D, T>,
        layer: &str,
        norm: Norm,
        relu: bool,
        residual: Option<Tensor<(usize, usize), E, D, T>>,
    ) -> Tensor<(usize, usize), E, D, T>
    where
        T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
    {
        let shape = *z.shape();
        let [gamma, beta, mean_name, var_name] = norm_names(layer);
        let xhat = match (norm, self.training::<T>()) {
            (Norm::Batch, true) => {
                let (gamma, beta) = (self.vector::<T>(&gamma), self.vector::<T>(&beta));
                let (y, mean, var) = D::batch_norm(z, gamma, beta, NORM_EPS, relu, residual);
                self.update_running(layer, shape.0, mean, var);
                return y;
            }
            (Norm::Batch, false) => {
                let running = self.running.borrow();
                let units = shape.1;
                let host = |name: &str, f: &dyn Fn(f64) -> f64| -> Vec<E> {
                    running.get(name).map_or(vec![E::default(); units], |v| {
                        v.iter()
                            .map(|&x| E::from_f64(f(x.to_f64().unwrap_or(f64::NAN))))
                            .map(Option::unwrap_or_default)
                            .collect()
                    })
                };
                let mean = self.dev.tensor_from_vec(host(&mean_name, &|m| m), (units,));
                let std = self
                    .dev
                    .tensor_from_vec(host(&var_name, &|v| (v + NORM_EPS).sqrt()), (units,));
                (z - mean.broadcast_like::<_, Axis<0>>(&shape))
                    / std.broadcast_like::<_, Axis<0>>(&shape)
            }
            (Norm::Layer, _) => {
                let mean = z.with_empty_tape().mean::<(usize,), Axis<1>>();
                let std = z.with_empty_tape().stddev::<(usize,), Axis<1>>(NORM_EPS);
                (z - mean.broadcast_like::<_, Axis<1>>(&shape))
                    / std.broadcast_like::<_, Axis<1>>(&shape)
            }
            (Norm::None, _) => {
                let y = match residual {
                    Some(r) => z + r,
                    None => z,
                };
                return if relu { y.relu() } else { y };
            }
        };
        let gamma = self
            .vector::<T>(&gamma)
            .broadcast_like::<_, Axis<0>>(&shape);
        let beta = self.vector::<T>(&beta).broadcast_like::<_, Axis<0>>(&shape);
        let mut y = xhat * gamma + beta;
        if let Some(r) = residual {
            y = y + r;
        }
        if relu {
            y.relu()
        } else {
            y
        }
    }

    /// The dense layer `inputs` (no bias: the normalisation shifts) followed by
    /// [`Network::normalise`]; batch norm in training mode runs as one op
    /// ([`NetDevice::dense_batch_norm`]).
    fn dense_normalised<T>(
        &self,
        inputs: Vec<DenseInput<E, D, T>>,
        layer: &str,
        norm: Norm,
        relu: bool,
        residual: Option<Tensor<(usize, usize), E, D, T>>,
    ) -> Tensor<(usize, usize), E, D, T>
    where
        T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
    {
        if norm == Norm::Batch && self.training::<T>() {
            let [gamma, beta, ..] = norm_names(layer);
            let (gamma, beta) = (self.vector::<T>(&gamma), self.vector::<T>(&beta));
            let (y, mean, var) = D::dense_batch_norm(inputs, gamma, beta, NORM_EPS, relu, residual);
            self.update_running(layer, y.shape().0, mean, var);
            return y;
        }
        let z = D::dense(inputs, None, false);
        self.normalise(z, layer, norm, relu, residual)
    }

    /// Whether batch norm takes the batch's statistics (training) or the running estimates.
    fn training<T: Tape<E, D>>(&self) -> bool {
        match self.mode.get() {
            Some(mode) => mode == NormMode::Train,
            None => T::OWNS_TAPE,
        }
    }

    /// Moves layer `layer`'s running estimates towards a batch's mean and biased variance
    /// over `rows` rows (momentum 0.1; the running variance is the unbiased one, PyTorch's).
    fn update_running(&self, layer: &str, rows: usize, mean: Vec<f64>, var: Vec<f64>) {
        let [_, _, mean_name, var_name] = norm_names(layer);
        let batch = rows as f64;
        let unbias = batch / (batch - 1.0).max(1.0);
        let mut running = self.running.borrow_mut();
        let mut update = |name: &str, batch_values: Vec<f64>| {
            if let Some(r) = running.get_mut(name) {
                for (r, v) in r.iter_mut().zip(batch_values) {
                    let old = r.to_f64().unwrap_or(f64::NAN);
                    let new = (1.0 - NORM_MOMENTUM) * old + NORM_MOMENTUM * v;
                    *r = E::from_f64(new).unwrap_or_default();
                }
            }
        };
        update(&mean_name, mean);
        update(&var_name, var.into_iter().map(|v| v * unbias).collect());
    }

    fn gather_index(
        &self,
        kind: IndexKind,
        batch: usize,
        height: usize,
        width: usize,
    ) -> Tensor<(usize, usize), usize, D> {
        let build = || match kind {
            IndexKind::Im2col { stride } => {
                ops::im2col_index_strided(&self.dev, batch, height, width, stride)
            }
            IndexKind::Subsample => ops::subsample_index(&self.dev, batch, height, width),
        };
        self.gather_indices
            .borrow_mut()
            .entry((kind, batch, height, width))
            .or_insert_with(build)
            .clone()
    }

    /// Halves an image batch the way the network's main path does between stages: a 2x2
    /// max-pool, or every other pixel (beside a strided convolution).
    fn downsample<T: Tape<E, D>>(&self, cnn: &CnnSpec, x: Images<E, D, T>) -> Images<E, D, T> {
        match cnn.downsample {
            Downsample::Pool => ops::maxpool2(x),
            Downsample::Stride => {
                let (b, h, w, _) = *x.shape();
                ops::subsample2(x, &self.gather_index(IndexKind::Subsample, b, h, w))
            }
        }
    }

    /// What a residual edge from layer `from` (its channel groups, `sources`) adds to conv
    /// `to`'s rows (`[batch * pixels, filters]`): the source downsampled to `to`'s size, then
    /// as it is (identity), through a 1x1 projection (normalised where the network is), or
    /// placed in the first channels with zeros after them (pad).
    fn shortcut<T>(
        &self,
        cnn: &CnnSpec,
        (from, identity): (usize, bool),
        to: &CnnLayer,
        sources: &[Images<E, D, T>],
    ) -> Tensor<(usize, usize), E, D, T>
    where
        T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
    {
        let filters = cnn.filters(to.number).unwrap_or(0);
        let rows: Vec<Tensor<(usize, usize), E, D, T>> = sources
            .iter()
            .map(|source| {
                let mut t = source.with_empty_tape();
                while t.shape().1 > to.height {
                    t = self.downsample(cnn, t);
                }
                let (b, h, w, c) = *t.shape();
                t.reshape_like(&(b * h * w, c))
            })
            .collect();
        if identity && rows.len() == 1 {
            return rows.into_iter().next().expect("one group");
        }
        if !identity && cnn.shortcut == Shortcut::Projection {
            let inputs = cnn
                .groups(from)
                .iter()
                .zip(rows)
                .map(|(group, x)| {
                    let name = cnn_projection_name(from, to.number, group);
                    DenseInput::new(x, self.matrix::<T>(&name))
                        .with_host_weight(self.host_weight(&name))
                })
                .collect();
            // Pre-activation projects the raw source and does not normalise the projection
            // (He et al.'s v2 code projects the pre-activated input instead).
            return match (cnn.norm, cnn.order) {
                (Norm::None, _) | (_, BlockOrder::Pre) => D::dense(inputs, None, false),
                (norm, BlockOrder::Post) => {
                    let layer = cnn_projection_layer(from, to.number);
                    self.dense_normalised(inputs, &layer, norm, false, None)
                }
            };
        }
        // Identity over several groups, or option A: each group lands in its own channels.
        let mut offset = 0;
        let mut sum: Option<Tensor<(usize, usize), E, D, T>> = None;
        for x in rows {
            let channels = x.shape().1;
            let mut place = vec![E::default(); channels * filters];
            for c in 0..channels {
                place[c * filters + offset + c] = E::ONE;
            }
            offset += channels;
            let placed = x.matmul(self.dev.tensor_from_vec(place, (channels, filters)));
            sum = Some(match sum {
                None => placed,
                Some(s) => s + placed,
            });
        }
        sum.expect("a residual source has channels")
    }

    /// Pre-activation of one channel group: batch norm (where the network has it) and ReLU,
    /// per channel over the batch and the pixels.
    fn pre_activate<T>(&self, cnn: &CnnSpec, x: Images<E, D, T>, name: &str) -> Images<E, D, T>
    where
        T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
    {
        let shape = *x.shape();
        let (b, h, w, c) = shape;
        let rows = x.reshape_like(&(b * h * w, c));
        let rows = match cnn.norm {
            Norm::None => rows.relu(),
            norm => self.normalise(rows, name, norm, true, None),
        };
        rows.reshape_like(&shape)
    }

    fn forward_cnn<T>(
        &self,
        cnn: &CnnSpec,
        x: Tensor<(usize, usize), E, D>,
    ) -> Tensor<(usize, usize), E, D, T>
    where
        T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
    {
        let batch = x.shape().0;
        let input = cnn.input;
        // The input image has no tape; only conv 1 reads it (skips start at convolutions).
        let mut image = Some(x.reshape_like(&(batch, input.height, input.width, input.channels)));
        // The groups of the previous layer's output, in `cnn.groups` order.
        let mut prev: Vec<Images<E, D, T>> = Vec::new();
        // Outputs that later skips read (copies sharing ids, see forward_mlp).
        let mut kept: BTreeMap<usize, Vec<Images<E, D, T>>> = BTreeMap::new();
        let skip_sources: Vec<usize> = cnn.skips.iter().map(|e| e.from).collect();
        for layer in cnn.layers() {
            let previous = layer.number - 1;
            if skip_sources.contains(&previous) {
                kept.insert(previous, prev.iter().map(|t| t.with_empty_tape()).collect());
            }
            match layer.kind {
                CnnLayerKind::Pool => {
                    prev = prev.into_iter().map(ops::maxpool2).collect();
                    self.record_images(layer.number, &prev);
                    // A skip from the layer before the pool reads it pooled at least once:
                    // keep the pooled copies (same ids, so its gradient flows through this
                    // pool) instead of pooling the source again for the skip.
                    if let Some(source) = kept.get_mut(&previous) {
                        *source = prev.iter().map(|t| t.with_empty_tape()).collect();
                    }
                }
                CnnLayerKind::Conv { filters } => {
                    let name = format!("conv{}", layer.number);
                    let (height, width) = cnn.input_size(layer.number);
                    let stride = layer.stride;
                    let kind = IndexKind::Im2col { stride };
                    let index = self.gather_index(kind, batch, height, width);
                    let groups = cnn.groups(previous);
                    let w = |group| self.matrix::<T>(&cnn_weight_name(&name, group));
                    let host = |group| self.host_weight(&cnn_weight_name(&name, group));
                    let mut inputs = Vec::with_capacity(groups.len());
                    if let Some(image) = image.take() {
                        let input = DenseInput::conv3x3_network_input(image, w(&groups[0]), &index);
                        let input = input.strided(stride, &index);
                        inputs.push(input.with_host_weight(host(&groups[0])));
                    }
                    let pre = cnn.order == BlockOrder::Pre;
                    for (group, tensor) in groups.iter().zip(prev) {
                        let tensor = match pre {
                            true => {
                                self.pre_activate(cnn, tensor, &cnn_pre_norm_name(&name, group))
                            }
                            false => tensor,
                        };
                        let input = DenseInput::conv3x3(tensor, w(group), &index);
                        let input = input.strided(stride, &index);
                        inputs.push(input.with_host_weight(host(group)));
                    }
                    let residuals = cnn.residuals_into(layer.number);
                    // The shortcuts' sum: post-activation (ResNet v1) is relu(bn(conv(x)) +
                    // shortcut), normalised, added and rectified in one kernel with the
                    // convolution; pre-activation (v2) is conv(relu(bn(x))) + shortcut,
                    // rectified by the next layer.
                    let shortcut = residuals
                        .iter()
                        .map(|&r| self.shortcut(cnn, r, &layer, &kept[&r.0]))
                        .reduce(|a, b| a + b);
                    // Normalised layers have no bias: the normalisation shifts.
                    let bias =
                        (cnn.norm == Norm::None).then(|| self.vector::<T>(&format!("{name}.b")));
                    let rows = match (pre, cnn.norm, shortcut) {
                        (true, _, shortcut) => {
                            let rows = D::dense(inputs, bias, false);
                            match shortcut {
                                Some(shortcut) => rows + shortcut,
                                None => rows,
                            }
                        }
                        // ReLU stays fused into the layer's kernel where nothing comes between.
                        (false, Norm::None, None) => D::dense(inputs, bias, true),
                        (false, Norm::None, shortcut) => {
                            let rows = D::dense(inputs, bias, false);
                            self.normalise(rows, &name, Norm::None, true, shortcut)
                        }
                        (false, norm, shortcut) => {
                            self.dense_normalised(inputs, &name, norm, true, shortcut)
                        }
                    };
                    let own = rows.reshape_like(&(batch, layer.height, layer.width, filters));
                    let mut out = vec![own];
                    let concatenating = cnn
                        .skips
                        .iter()
                        .filter(|e| e.to == layer.number && !cnn.residual.contains(e));
                    for edge in concatenating {
                        for source in &kept[&edge.from] {
                            let mut t = source.with_empty_tape();
                            while t.shape().1 > layer.height {
                                t = self.downsample(cnn, t);
                            }
                            out.push(t);
                        }
                    }
                    self.record_images(layer.number, &out);
                    prev = out;
                }
            }
        }
        let last = cnn
            .layers()
            .last()
            .copied()
            .expect("validated CNN has layers");
        let groups = cnn.groups(last.number);
        let inputs = groups
            .iter()
            .zip(prev)
            .map(|(group, tensor)| {
                let tensor = match cnn.order {
                    BlockOrder::Pre => {
                        self.pre_activate(cnn, tensor, &cnn_pre_norm_name("out", group))
                    }
                    BlockOrder::Post => tensor,
                };
                let features = match cnn.head {
                    Head::Flatten => {
                        let flat_len = last.height * last.width * group.channels;
                        tensor.reshape_like(&(batch, flat_len))
                    }
                    Head::Average => tensor
                        .reshape_like(&(batch, last.height * last.width, group.channels))
                        .mean::<(usize, usize), Axis<1>>(),
                };
                let name = cnn_weight_name("out", group);
                DenseInput::new(features, self.matrix::<T>(&name))
                    .with_host_weight(self.host_weight(&name))
            })
            .collect();
        D::dense(inputs, Some(self.vector::<T>("out.b")), false)
    }

    /// The weights of each layer, in layer order: `fc1`, `fc2`, ... (an MLP's last is its
    /// output), or `conv1`, ..., `out` (a CNN): its weight matrices (biases left out), and
    /// after a normalised layer its normalisation as a layer of its own (`fc1.bn`: the scale
    /// and the shift), so gradient flow shows what passes through it.
    pub fn layer_weights(&self) -> Vec<(String, Vec<String>)> {
        let mut layers: Vec<(String, Vec<String>)> = Vec::new();
        for (name, param) in &self.params {
            let prefix = name.split('.').next().unwrap_or(name).to_string();
            let layer = match param {
                Param::Matrix(_) => prefix,
                Param::Vector(_) if name.ends_with(".gamma") || name.ends_with(".beta") => {
                    format!("{prefix}.bn")
                }
                Param::Vector(_) => continue,
            };
            match layers.iter_mut().find(|(l, _)| *l == layer) {
                Some((_, names)) => names.push(name.clone()),
                None => layers.push((layer, vec![name.clone()])),
            }
        }
        // By number, a layer's normalisation after it, `out` last (names sort as text: fc10
        // before fc2).
        let order = |layer: &str| {
            let digits: String = layer.chars().filter(char::is_ascii_digit).collect();
            let number = digits.parse::<usize>().unwrap_or(usize::MAX);
            (number, layer.ends_with(".bn"))
        };
        layers.sort_by_key(|(layer, _)| order(layer));
        layers
    }

    /// Mean |w| of each skip edge's weight blocks, in edge order (the paper checks that skip
    /// weights are not negligible). Identity residuals have no weights and are left out.
    pub fn skip_weight_magnitudes(&self) -> Vec<(crate::topology::SkipEdge, f64)> {
        let mean_abs = |names: &[String]| {
            let (mut sum, mut n) = (0.0f64, 0usize);
            for name in names {
                if let Some(p) = self.params.get(name) {
                    let v = p.to_vec();
                    n += v.len();
                    sum += v
                        .iter()
                        .map(|x| x.to_f64().unwrap_or(0.0).abs())
                        .sum::<f64>();
                }
            }
            if n == 0 {
                0.0
            } else {
                sum / n as f64
            }
        };
        // Identities (and option A's padding) have no weights.
        let identity = |edge: &crate::topology::SkipEdge| match &self.topology {
            Topology::Mlp(m) => m.residual.contains(edge) && m.width(edge.from) == m.width(edge.to),
            Topology::Cnn(c) => {
                c.residual.contains(edge) && !cnn_projections_into(c, edge.to).contains(&edge.from)
            }
        };
        self.topology
            .skips()
            .iter()
            .filter(|e| !identity(e))
            .map(|&edge| {
                let names: Vec<String> = match &self.topology {
                    Topology::Mlp(m) if m.residual.contains(&edge) => {
                        vec![mlp_residual_name(edge.from, edge.to)]
                    }
                    Topology::Mlp(_) => vec![mlp_weight_name(edge.from, edge.to)],
                    Topology::Cnn(c) if c.residual.contains(&edge) => {
                        let prefix = format!("{}[", cnn_projection_layer(edge.from, edge.to));
                        let names = self.params.keys().filter(|n| n.starts_with(&prefix));
                        names.cloned().collect()
                    }
                    // The blocks that read what this edge concatenated: groups whose path
                    // ends with the hop `from>to` (longer paths belong to later edges).
                    Topology::Cnn(_) => {
                        let hop = format!("{}>{}", edge.from, edge.to);
                        self.params
                            .keys()
                            .filter(|name| {
                                name.split_once(".w[")
                                    .map(|(_, g)| g.trim_end_matches(']'))
                                    .is_some_and(|g| g == hop || g.ends_with(&format!(">{hop}")))
                            })
                            .cloned()
                            .collect()
                    }
                };
                (edge, mean_abs(&names))
            })
            .collect()
    }
}

impl<D: ops::NetDevice<f32>> Network<f32, D> {
    /// The MLP as a [`cpu_ops::DenseStack`] for forward-only passes on the host, where the
    /// device keeps host copies of the weights (the CPU's kernels) and a pass without a tape
    /// evaluates (batch norm on its running estimates) and records nothing. `None` otherwise
    /// (a CNN, CUDA, the composed ops, a training-mode pass): [`Network::forward`] then.
    pub fn dense_stack(&self) -> Option<cpu_ops::DenseStack> {
        let Topology::Mlp(mlp) = &self.topology else {
            return None;
        };
        if !D::host_mirrors() || self.training::<NoneTape>() || self.recorded.borrow().is_some() {
            return None;
        }
        let matrix = |name: &str| self.host_weight(name);
        let vector = |name: &str| self.params.get(name).map(Param::to_vec);
        let running = self.running.borrow();
        let widths = (0..mlp.num_layers()).map(|l| mlp.width(l)).collect();
        let mut stack = cpu_ops::StackBuilder::new(widths);
        for to in 1..mlp.num_layers() {
            for from in mlp.sources(to) {
                stack.weight(from, to, &matrix(&mlp_weight_name(from, to))?);
            }
            let residuals = mlp.residuals_into(to);
            for &(from, identity) in &residuals {
                if !identity {
                    stack.weight(from, to, &matrix(&mlp_residual_name(from, to))?);
                }
            }
            let hidden = to != mlp.output_layer();
            let [gamma, beta, mean, var] = norm_names(&format!("fc{to}"));
            let ending = match (hidden, mlp.norm) {
                (true, Norm::Batch) => {
                    let estimate = |name: &str| running.get(name).cloned();
                    let std = estimate(&var)?
                        .into_iter()
                        .map(|v| (v as f64 + NORM_EPS).sqrt() as f32)
                        .collect();
                    cpu_ops::Ending::Running {
                        mean: estimate(&mean)?,
                        std,
                        gamma: vector(&gamma)?,
                        beta: vector(&beta)?,
                    }
                }
                (true, Norm::Layer) => cpu_ops::Ending::Layer {
                    eps: NORM_EPS as f32,
                    gamma: vector(&gamma)?,
                    beta: vector(&beta)?,
                },
                _ => cpu_ops::Ending::Bias(vector(&format!("fc{to}.b"))?),
            };
            let identities = residuals.iter().filter(|r| r.1).map(|r| r.0).collect();
            let activation = match hidden {
                true => mlp.activation,
                false => Activation::Linear,
            };
            let finish = cpu_ops::Finish {
                ending,
                identities,
                activation,
            };
            stack.finish(to, finish);
        }
        stack.build()
    }
}

/// `z` through `activation`, on any device (dfdx's own ops, so CUDA runs them too).
fn activate<E, D, T>(
    z: Tensor<(usize, usize), E, D, T>,
    activation: Activation,
) -> Tensor<(usize, usize), E, D, T>
where
    E: Dtype,
    D: ops::NetDevice<E>,
    T: Tape<E, D>,
{
    match activation {
        Activation::Relu => z.relu(),
        Activation::Tanh => z.tanh(),
        Activation::Sigmoid => z.sigmoid(),
        // dfdx 0.13's exact GELU has a wrong gradient (tests/gradients.rs shows it).
        Activation::Gelu => z.fast_gelu(),
        Activation::Linear => z,
    }
}

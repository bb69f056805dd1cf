//! The trainer: epochs of seeded mini-batches on a worker thread, metrics streamed as
//! [`TrainEvent`]s, controlled by [`Command`]s.
//!
//! Train accuracy and loss are running figures over the epoch's batches (the model changes
//! while they are measured, as in most training logs); validation figures come from a full
//! pass over the held-out split after each epoch; the test set is evaluated once, at the end.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dfdx::prelude::*;
use dfdx::tensor::Cache;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::data::{PreparedData, Samples};
use crate::net::ops::NetDevice;
use crate::net::optim::Optimizer;
use crate::net::{HostParam, Network};
use crate::topology::{SkipEdge, Topology, TopologyError};

pub use crate::hyperparams::{Schedule, TrainConfig};
pub use status::{RunState, RunStatus};

mod status;

/// Control messages for a running trainer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Pause,
    Resume,
    Stop,
}

/// Figures for one finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Training samples per second (training steps only, evaluation excluded).
    pub samples_per_sec: f64,
    /// Seconds the epoch spent training and validating (pauses and queueing excluded).
    pub seconds: f64,
    /// Mean |weight| of each enabled skip edge's blocks.
    pub skip_weights: Vec<(SkipEdge, f64)>,
    /// The global step (counted over the whole run) that ended the epoch.
    #[serde(default)]
    pub step: usize,
}

/// Training loss and accuracy over the last few steps: about [`STEP_POINTS_PER_EPOCH`] an
/// epoch, so curves show their shape within epochs and around a skip* switch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// The global step (counted over the whole run) that ended the window.
    pub step: usize,
    pub epoch: usize,
    /// Training seconds of the run so far (pauses excluded): earlier epochs' times, then
    /// this one's.
    pub seconds: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
}

/// One layer's gradient flow at a step: how large its weights' gradient is, and how much the
/// step changed them relative to their size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerFlow {
    /// `fc1`, ... (an MLP's last is its output), or `conv1`, ..., `out`.
    pub layer: String,
    /// L2 norm of the gradient of the layer's weights.
    pub grad_norm: f64,
    /// ||weights after the step - before|| / ||weights before||.
    pub update_ratio: f64,
}

/// Every layer's gradient flow at one step (taken with the step points).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowPoint {
    pub step: usize,
    pub epoch: usize,
    pub layers: Vec<LayerFlow>,
}

/// How many step points an epoch reports (fewer when it has fewer steps).
pub const STEP_POINTS_PER_EPOCH: usize = 20;

/// What the trainer reports.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainEvent {
    /// The run's thread is loading or splitting its data (the first event of a spawned run).
    Preparing,
    Started {
        params: usize,
        steps_per_epoch: usize,
        train_samples: usize,
        val_samples: usize,
        test_samples: usize,
    },
    /// Within an epoch; sent at most every [`PROGRESS_INTERVAL`].
    Progress {
        epoch: usize,
        step: usize,
        steps_per_epoch: usize,
        loss: f64,
    },
    /// Every few steps (see [`StepMetrics`]).
    Step(StepMetrics),
    /// With every step point: per-layer gradient norms and update ratios.
    Flow(FlowPoint),
    Epoch(EpochMetrics),
    Paused,
    Resumed,
    /// skip*: the skips were enabled after this epoch (phase 2 starts with the next one).
    SkipsEnabled {
        after_epoch: usize,
        edges: usize,
    },
    /// The last event of every run.
    Ended {
        status: RunStatus,
        epochs_done: usize,
        /// Accuracy on the test set of the weights of the epoch with the best validation
        /// accuracy (absent when the run diverged or failed).
        test_accuracy: Option<f64>,
        /// The epoch whose weights `test_accuracy` measured: the best-validation epoch, or
        /// the last where a resumed run's earlier best weights were not kept.
        test_epoch: Option<usize>,
    },
}

impl RunState {
    /// Where a trainer's event takes a run (`None`: no change of state).
    pub fn after(event: &TrainEvent) -> Option<RunState> {
        Some(match event {
            TrainEvent::Preparing => RunState::Preparing,
            TrainEvent::Started { .. } | TrainEvent::Resumed => RunState::Running,
            TrainEvent::Paused => RunState::Paused,
            TrainEvent::Ended { status, .. } => RunState::Ended(status.clone()),
            TrainEvent::Progress { .. }
            | TrainEvent::Step(_)
            | TrainEvent::Flow(_)
            | TrainEvent::Epoch(_)
            | TrainEvent::SkipsEnabled { .. } => return None,
        })
    }
}

/// Name of every trainer thread (its panics are caught and reported as failed runs).
pub const TRAINER_THREAD: &str = "skiplab-trainer";

/// Often enough for a live progress bar, rare enough to cost the UI nothing measurable.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Where events go. Returning `false` means nobody listens any more; the run then stops.
pub trait EventSink: Send + 'static {
    fn emit(&mut self, event: TrainEvent) -> bool;

    /// Whether [`EventSink::checkpoint`] wants the weights after every epoch (copying them
    /// to the host costs a little, so only sinks that save do).
    fn wants_checkpoints(&self) -> bool {
        false
    }

    /// The network after epoch `epoch` (after a skip* switch, with its new topology). An
    /// error (the run could not be saved) ends the run as failed with that message.
    fn checkpoint(
        &mut self,
        _epoch: usize,
        _topology: &Topology,
        _params: Vec<HostParam>,
    ) -> Result<(), String> {
        Ok(())
    }
}

impl EventSink for Box<dyn EventSink> {
    fn emit(&mut self, event: TrainEvent) -> bool {
        (**self).emit(event)
    }
    fn wants_checkpoints(&self) -> bool {
        (**self).wants_checkpoints()
    }
    fn checkpoint(
        &mut self,
        epoch: usize,
        topology: &Topology,
        params: Vec<HostParam>,
    ) -> Result<(), String> {
        (**self).checkpoint(epoch, topology, params)
    }
}

impl EventSink for Sender<TrainEvent> {
    fn emit(&mut self, event: TrainEvent) -> bool {
        self.send(event).is_ok()
    }
}

impl<F: FnMut(TrainEvent) -> bool + Send + 'static> EventSink for F {
    fn emit(&mut self, event: TrainEvent) -> bool {
        self(event)
    }
}

/// Host and device buffers for one batch size, reused every step: dfdx never recycles
/// buffers adopted from `tensor_from_vec`, so uploading fresh tensors would grow memory by a
/// batch per step.
struct BatchBuffers<D: Device<f32>> {
    x: Tensor<(usize, usize), f32, D>,
    y: Tensor<(usize, usize), f32, D>,
    host_x: Vec<f32>,
    host_y: Vec<f32>,
}

impl<D: Device<f32>> BatchBuffers<D> {
    fn new(dev: &D, batch: usize, dim: usize, classes: usize) -> Self {
        Self {
            x: dev.zeros_like(&(batch, dim)),
            y: dev.zeros_like(&(batch, classes)),
            host_x: vec![0.0; batch * dim],
            host_y: vec![0.0; batch * classes],
        }
    }

    fn load(&mut self, samples: &Samples, indices: &[usize], classes: usize) {
        let dim = samples.dim();
        self.host_y.fill(0.0);
        for (row, &i) in indices.iter().enumerate() {
            self.host_x[row * dim..(row + 1) * dim]
                .copy_from_slice(&samples.images[i * dim..(i + 1) * dim]);
            self.host_y[row * classes + samples.labels[i] as usize] = 1.0;
        }
        self.x.copy_from(&self.host_x);
        self.y.copy_from(&self.host_y);
    }
}

/// The summed cross-entropy of rows of logits against their labels (`logsumexp - logit of
/// the label` per row, in f64).
fn cross_entropy_sum(logits: &[f32], labels: &[u8], classes: usize) -> f64 {
    logits
        .chunks(classes)
        .zip(labels)
        .map(|(row, &label)| {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
            let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
            max + sum.ln() - row[label as usize] as f64
        })
        .sum()
}

/// Count of rows whose largest logit is the labelled class.
fn correct(logits: &[f32], labels: impl Iterator<Item = u8>, classes: usize) -> usize {
    logits
        .chunks(classes)
        .zip(labels)
        .filter(|(row, label)| {
            let best = row
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
                );
            best.0 == *label as usize
        })
        .count()
}

/// Mean loss and accuracy of `net` over a whole split, in evaluation mode, in batches of
/// [`eval_batch`] examples, uploading through `buffers` (kept by batch size).
fn evaluate_with<D: NetDevice<f32>>(
    net: &Network<f32, D>,
    buffers: &mut HashMap<usize, BatchBuffers<D>>,
    samples: &Samples,
) -> (f64, f64) {
    let classes = net.topology().classes();
    let n = samples.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    // An MLP on the CPU runs on host buffers, reading the split where it lies.
    let stack = net.dense_stack();
    let (mut loss_sum, mut hits) = (0.0f64, 0usize);
    let dim = samples.dim();
    let chunk = match &stack {
        // Its only buffer is the layers' sums side by side (a few MiB at the bound).
        Some(stack) => (EVAL_LAYER_FLOATS / stack.row_len()).clamp(32, 4096),
        None => eval_batch(net.topology()),
    };
    for start in (0..n).step_by(chunk) {
        let rows = start..(start + chunk).min(n);
        let labels = &samples.labels[rows.clone()];
        let logits = match &stack {
            Some(stack) => stack.forward(
                &samples.images[rows.start * dim..rows.end * dim],
                rows.len(),
            ),
            None => {
                let buffers = buffers
                    .entry(rows.len())
                    .or_insert_with(|| BatchBuffers::new(net.device(), rows.len(), dim, classes));
                let indices: Vec<usize> = rows.clone().collect();
                buffers.load(samples, &indices, classes);
                net.forward::<NoneTape>(buffers.x.clone()).as_vec()
            }
        };
        hits += correct(&logits, labels.iter().copied(), classes);
        loss_sum += cross_entropy_sum(&logits, labels, classes);
    }
    (loss_sum / n as f64, hits as f64 / n as f64)
}

/// Evaluates networks on one device again and again (an analysis's many variants of one
/// network) through upload buffers it keeps.
pub struct Evaluator<D: NetDevice<f32>> {
    buffers: HashMap<usize, BatchBuffers<D>>,
}

impl<D: NetDevice<f32>> Default for Evaluator<D> {
    fn default() -> Self {
        Self {
            buffers: HashMap::new(),
        }
    }
}

impl<D: NetDevice<f32>> Evaluator<D> {
    /// Mean loss and accuracy of `net` over `samples` (evaluation mode: batch norm's running
    /// estimates), as [`Trainer::evaluate`] measures a run's validation split.
    pub fn evaluate(&mut self, net: &Network<f32, D>, samples: &Samples) -> (f64, f64) {
        evaluate_with(net, &mut self.buffers, samples)
    }
}

/// What one step gave: loss, correct predictions, and (when asked) each layer's flow.
pub type StepOutcome = (f64, usize, Option<Vec<LayerFlow>>);

/// Trains one network on one data set; drive it with [`Trainer::run`].
pub struct Trainer<D: NetDevice<f32>> {
    net: Network<f32, D>,
    optimizer: Optimizer<f32, D>,
    data: Arc<PreparedData>,
    config: TrainConfig,
    buffers: HashMap<usize, BatchBuffers<D>>,
    shuffle_rng: rand::rngs::StdRng,
    epochs_done: usize,
    global_step: usize,
    /// Wall-clock seconds of the epochs done (a resumed run's included).
    seconds_done: f64,
    skip_star: Option<SkipStarState>,
    /// The epoch with the best validation accuracy so far, and its weights.
    best: Option<BestWeights>,
}

/// The weights of the epoch with the best validation accuracy: the test set is measured on
/// them, as model selection on the validation split means.
#[derive(Clone, Debug)]
pub struct BestWeights {
    pub epoch: usize,
    pub val_accuracy: f64,
    pub topology: Topology,
    /// `None` where they were not kept (a run saved before they were, then resumed).
    pub params: Option<Vec<HostParam>>,
}

/// skip* phase 1: the topology to switch to and the validation accuracy watched so far.
struct SkipStarState {
    target: Topology,
    best_val: f64,
    epochs_since_best: usize,
}

/// Mixed into the seed for batch shuffling, so it is independent of initialisation.
const SHUFFLE_STREAM: u64 = 0x5eed_0b47_c400_0002;

/// The most examples evaluated at once: 500, or fewer where a network's largest layer output
/// would pass [`EVAL_LAYER_FLOATS`] at that many. The kernels keep their buffers for reuse
/// (dfdx's cache, the per-thread pools), so the largest chunk sets a run's memory from its
/// first evaluation on: at 500 the paper's CNN on Fashion-MNIST held 430 MiB more than it
/// trains in (Winograd's transformed tiles of 500 images), at 128 about a quarter of that,
/// with no loss of speed (a chunk of 128 images is still seconds of work per core).
pub fn eval_batch(topology: &Topology) -> usize {
    const MOST: usize = 500;
    let largest = match topology {
        Topology::Mlp(m) => m.hidden.iter().copied().max().unwrap_or(0),
        Topology::Cnn(c) => c
            .layers()
            .iter()
            .map(|l| {
                let channels = c.channels(l.number).max(c.filters(l.number).unwrap_or(0));
                l.height * l.width * channels
            })
            .max()
            .unwrap_or(0),
    };
    (EVAL_LAYER_FLOATS / largest.max(1)).clamp(32, MOST)
}

/// See [`eval_batch`]: 2 Mi floats (8 MiB) for the largest layer output of one chunk.
const EVAL_LAYER_FLOATS: usize = 2 << 20;

enum Control {
    Continue,
    Stop,
}

/// Checks that a topology and a configuration fit the data, before any device is touched.
pub fn check_setup(
    topology: &Topology,
    data: &PreparedData,
    config: &TrainConfig,
) -> Result<(), TrainError> {
    topology.validate()?;
    if topology.input_len() != data.shape.len() {
        return Err(TrainError::InputMismatch {
            topology: topology.input_len(),
            data: data.shape.len(),
            name: data.name.clone(),
        });
    }
    if topology.classes() != data.classes() {
        return Err(TrainError::ClassMismatch {
            topology: topology.classes(),
            data: data.classes(),
            name: data.name.clone(),
        });
    }
    if config.batch_size == 0 || config.batch_size > data.train.len() {
        return Err(TrainError::BadBatch {
            batch: config.batch_size,
            train: data.train.len(),
        });
    }
    Ok(())
}

impl<D: NetDevice<f32>> Trainer<D> {
    pub fn new(
        topology: Topology,
        data: Arc<PreparedData>,
        config: TrainConfig,
        dev: &D,
    ) -> Result<Self, TrainError> {
        check_setup(&topology, &data, &config)?;
        let Some(Schedule::SkipStar { .. }) = config.schedule else {
            let net = Network::new(topology, dev, config.seed)?;
            return Ok(Self::from_network(net, data, config));
        };
        let mut vanilla = topology.clone();
        vanilla.apply_skips(&crate::topology::SkipSelection::None)?;
        let net = Network::new(vanilla, dev, config.seed)?;
        let mut trainer = Self::from_network(net, data, config);
        trainer.skip_star = Some(SkipStarState {
            target: topology,
            best_val: f64::NEG_INFINITY,
            epochs_since_best: 0,
        });
        Ok(trainer)
    }

    /// Continues training an existing network (skip*: its weights are kept).
    pub fn from_network(
        net: Network<f32, D>,
        data: Arc<PreparedData>,
        config: TrainConfig,
    ) -> Self {
        Self {
            optimizer: Optimizer::new(config.optimizer),
            shuffle_rng: rand::rngs::StdRng::seed_from_u64(config.seed ^ SHUFFLE_STREAM),
            net,
            data,
            config,
            buffers: HashMap::new(),
            epochs_done: 0,
            global_step: 0,
            seconds_done: 0.0,
            skip_star: None,
            best: None,
        }
    }

    /// Continues a saved network after `resume.epochs_done` epochs (batch order drawn afresh
    /// for the new epochs, momentum from zero; steps and seconds counted on).
    pub fn resumed(
        net: Network<f32, D>,
        data: Arc<PreparedData>,
        config: TrainConfig,
        resume: &Resume,
    ) -> Self {
        let seed = config.seed;
        let epochs_done = resume.epochs_done;
        let mut trainer = Self::from_network(net, data, config);
        trainer.epochs_done = epochs_done;
        trainer.global_step = epochs_done * trainer.steps_per_epoch();
        trainer.seconds_done = resume.seconds_done;
        trainer.best = resume.best.clone();
        trainer.shuffle_rng =
            rand::rngs::StdRng::seed_from_u64(seed ^ SHUFFLE_STREAM ^ epochs_done as u64);
        trainer
    }

    pub fn network(&self) -> &Network<f32, D> {
        &self.net
    }

    pub fn into_network(self) -> Network<f32, D> {
        self.net
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.data.train.len() / self.config.batch_size
    }

    fn buffers(&mut self, batch: usize) -> &mut BatchBuffers<D> {
        let (dim, classes) = (self.data.shape.len(), self.data.classes());
        let dev = self.net.device().clone();
        self.buffers
            .entry(batch)
            .or_insert_with(|| BatchBuffers::new(&dev, batch, dim, classes))
    }

    /// One optimiser step on the samples at `indices`; returns (loss, correct predictions).
    pub fn train_step(&mut self, indices: &[usize]) -> Result<(f64, usize), D::Err> {
        self.step(indices, false)
            .map(|(loss, hits, _)| (loss, hits))
    }

    /// [`Trainer::train_step`], measuring every layer's gradient flow when `flow` is set.
    pub fn step(&mut self, indices: &[usize], flow: bool) -> Result<StepOutcome, D::Err> {
        let classes = self.data.classes();
        let data = Arc::clone(&self.data);
        let buffers = self.buffers(indices.len());
        buffers.load(&data.train, indices, classes);
        let (x, y) = (buffers.x.clone(), buffers.y.clone());
        let logits = self.net.forward::<OwnedTape<f32, D>>(x);
        let hits = correct(
            &logits.as_vec(),
            indices.iter().map(|&i| data.train.labels[i]),
            classes,
        );
        let loss = cross_entropy_with_logits_loss(logits, y);
        let loss_value = loss.as_vec()[0] as f64;
        if !loss_value.is_finite() {
            return Ok((loss_value, hits, None));
        }
        let mut grads = loss.backward();
        let norm = |v: &[f32]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        // Before the step: each layer's gradient norm and weights.
        let before: Vec<(String, f64, Vec<Vec<f32>>)> = if flow {
            self.net
                .layer_weights()
                .into_iter()
                .map(|(layer, names)| {
                    let (mut grad, mut weights) = (0.0, Vec::new());
                    for name in &names {
                        let (grad_of, values) = match self.net.params().get(name) {
                            Some(crate::net::Param::Matrix(t)) => {
                                (grads.get(t).as_vec(), t.as_vec())
                            }
                            Some(crate::net::Param::Vector(t)) => {
                                (grads.get(t).as_vec(), t.as_vec())
                            }
                            None => continue,
                        };
                        grad += norm(&grad_of).powi(2);
                        weights.push(values);
                    }
                    (layer, grad.sqrt(), weights)
                })
                .collect()
        } else {
            Vec::new()
        };
        self.optimizer.step(&mut self.net, &mut grads)?;
        if !flow {
            return Ok((loss_value, hits, None));
        }
        let layers = self.net.layer_weights();
        let flows = before
            .into_iter()
            .zip(layers)
            .map(|((layer, grad_norm, old), (_, names))| {
                let (mut change, mut size) = (0.0, 0.0);
                for (name, old) in names.iter().zip(&old) {
                    if let Some(param) = self.net.params().get(name) {
                        let new = param.to_vec();
                        change += new
                            .iter()
                            .zip(old)
                            .map(|(a, b)| ((a - b) as f64).powi(2))
                            .sum::<f64>();
                        size += norm(old).powi(2);
                    }
                }
                let update_ratio = if size > 0.0 {
                    (change / size).sqrt()
                } else {
                    0.0
                };
                LayerFlow {
                    layer,
                    grad_norm,
                    update_ratio,
                }
            })
            .collect();
        Ok((loss_value, hits, Some(flows)))
    }

    /// Mean loss and accuracy over a whole split, in batches, without a tape.
    pub fn evaluate(&mut self, samples: &Samples) -> (f64, f64) {
        evaluate_with(&self.net, &mut self.buffers, samples)
    }

    /// Obeys the commands that arrived; a pause waits here for Resume or Stop, and its length
    /// is added to `paused` (time paused is not training time).
    fn poll(
        commands: &Receiver<Command>,
        events: &mut impl EventSink,
        paused: &mut Duration,
    ) -> Control {
        match commands.try_recv() {
            Ok(Command::Stop) => Control::Stop,
            Ok(Command::Pause) => {
                let since = Instant::now();
                if !events.emit(TrainEvent::Paused) {
                    return Control::Stop;
                }
                loop {
                    match commands.recv() {
                        Ok(Command::Resume) => {
                            *paused += since.elapsed();
                            return if events.emit(TrainEvent::Resumed) {
                                Control::Continue
                            } else {
                                Control::Stop
                            };
                        }
                        Ok(Command::Stop) | Err(_) => return Control::Stop,
                        Ok(Command::Pause) => {}
                    }
                }
            }
            Ok(Command::Resume) | Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {
                Control::Continue
            }
        }
    }

    /// Trains for the configured epochs, streaming events; the last event is always
    /// [`TrainEvent::Ended`]. Returns the final status.
    pub fn run(&mut self, events: &mut impl EventSink, commands: &Receiver<Command>) -> RunStatus {
        let steps = self.steps_per_epoch();
        let started = TrainEvent::Started {
            params: self.net.param_count(),
            steps_per_epoch: steps,
            train_samples: self.data.train.len(),
            val_samples: self.data.val.len(),
            test_samples: self.data.test.len(),
        };
        let status = if events.emit(started) {
            self.run_epochs(events, commands)
        } else {
            RunStatus::Stopped
        };
        let (test_accuracy, test_epoch) = match status {
            RunStatus::Finished | RunStatus::Stopped if self.epochs_done > 0 => {
                match self.test_at_best() {
                    Ok((accuracy, epoch)) => (Some(accuracy), Some(epoch)),
                    Err(e) => {
                        tracing::warn!("the test set could not be measured: {e}");
                        (None, None)
                    }
                }
            }
            _ => (None, None),
        };
        events.emit(TrainEvent::Ended {
            status: status.clone(),
            epochs_done: self.epochs_done,
            test_accuracy,
            test_epoch,
        });
        status
    }

    /// Test accuracy of the best-validation epoch's weights, and that epoch (the last one's
    /// weights where the best ones were not kept).
    fn test_at_best(&mut self) -> Result<(f64, usize), String> {
        let data = Arc::clone(&self.data);
        let best = self
            .best
            .as_ref()
            .filter(|b| b.epoch != self.epochs_done)
            .and_then(|b| Some((b.epoch, b.topology.clone(), b.params.clone()?)));
        let Some((epoch, topology, params)) = best else {
            return Ok((self.evaluate(&data.test).1, self.epochs_done));
        };
        let mut net = Network::new(topology, self.net.device(), self.config.seed)
            .map_err(|e| e.to_string())?;
        net.import(&params)?;
        let last = std::mem::replace(&mut self.net, net);
        let accuracy = self.evaluate(&data.test).1;
        self.net = last;
        Ok((accuracy, epoch))
    }

    /// The best-validation epoch so far, with its weights.
    pub fn best(&self) -> Option<&BestWeights> {
        self.best.as_ref()
    }

    fn run_epochs(
        &mut self,
        events: &mut impl EventSink,
        commands: &Receiver<Command>,
    ) -> RunStatus {
        let batch = self.config.batch_size;
        let steps = self.steps_per_epoch();
        let mut order: Vec<usize> = (0..self.data.train.len()).collect();
        for epoch in self.epochs_done + 1..=self.epochs_done + self.config.epochs {
            // An epoch's seconds are those spent training and validating: pauses excluded.
            let epoch_start = Instant::now();
            let mut paused = Duration::ZERO;
            let active = |paused: Duration| epoch_start.elapsed().saturating_sub(paused);
            let mut train_time = Duration::ZERO;
            order.shuffle(&mut self.shuffle_rng);
            let (mut loss_sum, mut hits) = (0.0f64, 0usize);
            let log_every = steps.div_ceil(STEP_POINTS_PER_EPOCH).max(1);
            let (mut window_loss, mut window_hits, mut window_steps) = (0.0f64, 0usize, 0usize);
            let mut last_progress = Instant::now();
            for step in 0..steps {
                if let Control::Stop = Self::poll(commands, events, &mut paused) {
                    return RunStatus::Stopped;
                }
                let t0 = Instant::now();
                // The step that ends a step point also measures the gradient flow.
                let logged = window_steps + 1 == log_every || step + 1 == steps;
                let (loss, step_hits, flow) =
                    match self.step(&order[step * batch..(step + 1) * batch], logged) {
                        Ok(r) => r,
                        Err(e) => return RunStatus::Failed(format!("device error: {e:?}")),
                    };
                train_time += t0.elapsed();
                self.global_step += 1;
                if !loss.is_finite() {
                    return RunStatus::Diverged {
                        epoch,
                        step: self.global_step,
                        loss,
                    };
                }
                loss_sum += loss;
                hits += step_hits;
                (window_loss, window_hits, window_steps) = (
                    window_loss + loss,
                    window_hits + step_hits,
                    window_steps + 1,
                );
                if window_steps == log_every || step + 1 == steps {
                    let point = StepMetrics {
                        step: self.global_step,
                        epoch,
                        seconds: self.seconds_done + active(paused).as_secs_f64(),
                        train_loss: window_loss / window_steps as f64,
                        train_accuracy: window_hits as f64 / (window_steps * batch) as f64,
                    };
                    if !events.emit(TrainEvent::Step(point)) {
                        return RunStatus::Stopped;
                    }
                    if let Some(layers) = flow {
                        let point = FlowPoint {
                            step: self.global_step,
                            epoch,
                            layers,
                        };
                        if !events.emit(TrainEvent::Flow(point)) {
                            return RunStatus::Stopped;
                        }
                    }
                    (window_loss, window_hits, window_steps) = (0.0, 0, 0);
                }
                if last_progress.elapsed() >= PROGRESS_INTERVAL {
                    last_progress = Instant::now();
                    let progress = TrainEvent::Progress {
                        epoch,
                        step: step + 1,
                        steps_per_epoch: steps,
                        loss,
                    };
                    if !events.emit(progress) {
                        return RunStatus::Stopped;
                    }
                }
            }
            let data = Arc::clone(&self.data);
            let (val_loss, val_accuracy) = self.evaluate(&data.val);
            self.epochs_done = epoch;
            let metrics = EpochMetrics {
                epoch,
                train_loss: loss_sum / steps as f64,
                train_accuracy: hits as f64 / (steps * batch) as f64,
                val_loss,
                val_accuracy,
                samples_per_sec: (steps * batch) as f64 / train_time.as_secs_f64().max(1e-9),
                seconds: active(paused).as_secs_f64(),
                skip_weights: self.net.skip_weight_magnitudes(),
                step: self.global_step,
            };
            self.seconds_done += metrics.seconds;
            // The first of equal bests, as the summary keeps it.
            if self
                .best
                .as_ref()
                .is_none_or(|b| val_accuracy > b.val_accuracy)
            {
                self.best = Some(BestWeights {
                    epoch,
                    val_accuracy,
                    topology: self.net.topology().clone(),
                    params: Some(self.net.export()),
                });
            }
            if !events.emit(TrainEvent::Epoch(metrics)) {
                return RunStatus::Stopped;
            }
            if let Some(after_epoch) = self.skip_star_switch(epoch, val_accuracy) {
                let edges = self.net.topology().skips().len();
                if !events.emit(TrainEvent::SkipsEnabled { after_epoch, edges }) {
                    return RunStatus::Stopped;
                }
            }
            if events.wants_checkpoints() {
                if let Err(message) =
                    events.checkpoint(epoch, self.net.topology(), self.net.export())
                {
                    return RunStatus::Failed(message);
                }
            }
        }
        RunStatus::Finished
    }
}

impl<D: NetDevice<f32>> Trainer<D> {
    /// skip* bookkeeping after an epoch: switches to the skip topology when phase 1 is over
    /// and returns the epoch it ended with.
    fn skip_star_switch(&mut self, epoch: usize, val_accuracy: f64) -> Option<usize> {
        let Some(Schedule::SkipStar {
            max_vanilla_epochs,
            patience,
        }) = self.config.schedule
        else {
            return None;
        };
        let state = self.skip_star.as_mut()?;
        if val_accuracy > state.best_val {
            state.best_val = val_accuracy;
            state.epochs_since_best = 0;
        } else {
            state.epochs_since_best += 1;
        }
        if epoch < max_vanilla_epochs && state.epochs_since_best < patience.max(1) {
            return None;
        }
        let state = self.skip_star.take()?;
        self.net
            .set_topology(state.target, self.config.seed)
            .expect("the skip topology was validated with the run");
        Some(epoch)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(
        "the network takes {topology} inputs but data set `{name}` has {data} values per image"
    )]
    InputMismatch {
        topology: usize,
        data: usize,
        name: String,
    },
    #[error("the network has {topology} outputs but data set `{name}` has {data} classes")]
    ClassMismatch {
        topology: usize,
        data: usize,
        name: String,
    },
    #[error("batch size {batch} must be between 1 and the {train} training samples")]
    BadBatch { batch: usize, train: usize },
}

/// A training run on its own thread.
pub struct RunHandle {
    commands: Sender<Command>,
    thread: Option<JoinHandle<RunStatus>>,
}

impl RunHandle {
    /// Runs `body` on a new trainer thread; it receives the run's commands.
    pub fn spawn(body: impl FnOnce(Receiver<Command>) -> RunStatus + Send + 'static) -> Self {
        let (commands, command_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(TRAINER_THREAD.into())
            .spawn(move || body(command_rx))
            .expect("spawning a thread");
        RunHandle {
            commands,
            thread: Some(thread),
        }
    }
    pub fn send(&self, command: Command) {
        // A finished run has dropped its receiver; commands to it have nothing to do.
        let _ = self.commands.send(command);
    }
    pub fn pause(&self) {
        self.send(Command::Pause)
    }
    pub fn resume(&self) {
        self.send(Command::Resume)
    }
    pub fn stop(&self) {
        self.send(Command::Stop)
    }
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
    /// Waits for the run to end and returns its status.
    pub fn join(mut self) -> RunStatus {
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(status)) => status,
            Some(Err(_)) => RunStatus::Failed("the training thread panicked".into()),
            None => RunStatus::Stopped,
        }
    }
}

/// Where a resumed run continues from: its saved weights, the epochs it has done and the
/// wall-clock seconds they took.
#[derive(Clone, Debug)]
pub struct Resume {
    pub params: Vec<HostParam>,
    pub epochs_done: usize,
    pub seconds_done: f64,
    /// The best-validation epoch of the saved epochs (its weights where they were kept).
    pub best: Option<BestWeights>,
}

/// Produces a run's data on the run's own thread (loading and splitting can take seconds).
pub type DataSource = Box<dyn FnOnce() -> Result<Arc<PreparedData>, String> + Send>;

/// Everything a trainer thread needs.
pub struct TrainJob {
    pub topology: Topology,
    pub config: TrainConfig,
    pub device: crate::device::Device,
    /// Continue from saved weights (epochs are numbered on from the saved ones; the
    /// optimiser's momentum starts afresh).
    pub resume: Option<Resume>,
    pub data: DataSource,
}

impl TrainJob {
    /// A fresh run on the CPU with data at hand.
    pub fn new(topology: Topology, data: Arc<PreparedData>, config: TrainConfig) -> Self {
        Self {
            topology,
            config,
            device: crate::device::Device::Cpu,
            resume: None,
            data: Box::new(move || Ok(data)),
        }
    }
}

/// Trains `job` on a new thread. Everything, a setup problem included, arrives as events;
/// the last is always [`TrainEvent::Ended`]. A panic in training is caught and reported as a
/// failed run.
pub fn spawn(job: TrainJob, mut events: impl EventSink) -> RunHandle {
    RunHandle::spawn(move |commands| {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_job(job, &mut events, &commands)
        }));
        let status = outcome.unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(RunStatus::Failed(format!("training crashed: {message}")))
        });
        match status {
            Ok(status) => status,
            Err(status) => {
                // Ended before (or outside) training: no epochs of this run's own.
                events.emit(TrainEvent::Ended {
                    status: status.clone(),
                    epochs_done: 0,
                    test_accuracy: None,
                    test_epoch: None,
                });
                status
            }
        }
    })
}

/// Data, setup checks, then training. `Err` carries a status whose `Ended` event has not
/// been sent yet.
fn run_job(
    job: TrainJob,
    events: &mut impl EventSink,
    commands: &Receiver<Command>,
) -> Result<RunStatus, RunStatus> {
    if !events.emit(TrainEvent::Preparing) {
        return Err(RunStatus::Stopped);
    }
    let data = (job.data)().map_err(RunStatus::Failed)?;
    check_setup(&job.topology, &data, &job.config).map_err(|e| RunStatus::Failed(e.to_string()))?;
    if data.val.is_empty() {
        return Err(RunStatus::Failed(format!(
            "the validation split of `{}` is empty: hold out a larger share of its {} training samples",
            data.name,
            data.train.len()
        )));
    }
    run_on_device(
        job.device,
        job.topology,
        data,
        job.config,
        job.resume,
        events,
        commands,
    )
}

/// Makes this thread the first worker of a new rayon pool (as many threads as rayon would
/// use), for a CPU run's parallel kernels. Without it, each parallel loop in a training step
/// hands its work to rayon's global pool and puts this thread to sleep until it is done:
/// dozens of sleeps and wake-ups per step (measured: about 10% of an MLP step). With it, this
/// thread runs one part itself while the pool's other threads take the rest. Keep the pool
/// for the run; `None` (the global pool is used) if this thread is a rayon worker already.
///
/// (rayon leaks a few kilobytes of bookkeeping per such pool; one per run.)
pub fn cpu_worker_pool_here() -> Option<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build()
        .ok()
}

/// Frees a device's cached buffers when dropped. dfdx 0.13's tensor cache has no `Drop` of
/// its own: a device dropped with buffers in its cache leaks them, and a CNN run's are 100 to
/// 250 MiB, so a reproduction or sweep training run after run in one process grew by that
/// much per run (3.7 GiB over the 9 runs of `reproduce table4,table5`).
struct FreesCache<D: Cache>(D);

impl<D: Cache> Drop for FreesCache<D> {
    fn drop(&mut self) {
        // Nothing to do about a device that cannot free: the run is over either way.
        let _ = self.0.try_empty_cache();
    }
}

/// Builds the device and the trainer on this thread and runs it. `Err` carries a status whose
/// `Ended` event has not been sent yet.
fn run_on_device(
    device: crate::device::Device,
    topology: Topology,
    data: Arc<PreparedData>,
    config: TrainConfig,
    resume: Option<Resume>,
    events: &mut impl EventSink,
    commands: &Receiver<Command>,
) -> Result<RunStatus, RunStatus> {
    fn go<D: NetDevice<f32> + Cache>(
        dev: D,
        topology: Topology,
        data: Arc<PreparedData>,
        config: TrainConfig,
        resume: Option<Resume>,
        events: &mut impl EventSink,
        commands: &Receiver<Command>,
    ) -> Result<RunStatus, RunStatus> {
        // Declared before the trainer, so dropped after it: its buffers go back to the cache
        // first, then the cache is freed.
        let _frees = FreesCache(dev.clone());
        let failed = |e: String| RunStatus::Failed(e);
        let mut trainer = match resume {
            None => {
                Trainer::new(topology, data, config, &dev).map_err(|e| failed(e.to_string()))?
            }
            Some(resume) => {
                let mut net =
                    Network::new(topology, &dev, config.seed).map_err(|e| failed(e.to_string()))?;
                net.import(&resume.params)
                    .map_err(|e| failed(format!("the saved weights do not fit: {e}")))?;
                Trainer::resumed(net, data, config, &resume)
            }
        };
        Ok(trainer.run(events, commands))
    }
    let seed = config.seed;
    match device {
        crate::device::Device::Cpu => {
            let _pool = cpu_worker_pool_here();
            go(
                crate::net::cpu_ops::training_device(seed),
                topology,
                data,
                config,
                resume,
                events,
                commands,
            )
        }
        #[cfg(feature = "cuda")]
        crate::device::Device::Cuda { ordinal } => {
            let dev = Cuda::try_build(ordinal, seed).map_err(|e| {
                RunStatus::Failed(format!("cannot start CUDA device {ordinal}: {e}"))
            })?;
            go(dev, topology, data, config, resume, events, commands)
        }
        #[cfg(not(feature = "cuda"))]
        crate::device::Device::Cuda { .. } => Err(RunStatus::Failed(
            "this skiplab was built without CUDA support".into(),
        )),
    }
}

//! SGD (with momentum) and Adam on the run-time parameter store, using dfdx's per-tensor
//! update kernels. Optimiser state lives by parameter name, so a topology change keeps the
//! state of every kept parameter and starts new blocks from zero state.

use std::collections::BTreeMap;

use dfdx::optim::{Momentum, WeightDecay};
use dfdx::prelude::*;
use dfdx::tensor_ops::{AdamConfig, SgdConfig};

use std::collections::HashMap;

use super::ops::{HostMirror, NetDevice};
use super::{Network, Param};

pub use crate::hyperparams::OptimizerConfig;

/// L2 weight decay as dfdx's kernels take it (none at zero).
fn decay(weight_decay: f64) -> Option<WeightDecay> {
    (weight_decay > 0.0).then_some(WeightDecay::L2(weight_decay))
}

enum Slot<V> {
    Sgd { velocity: V },
    Adam { moment1: V, moment2: V },
}

/// Optimiser state for one network.
pub struct Optimizer<E: Dtype, D: Device<E>> {
    config: OptimizerConfig,
    slots: BTreeMap<String, Slot<<D as Storage<E>>::Vec>>,
    steps: i32,
}

impl<E: Dtype, D: NetDevice<E>> Optimizer<E, D> {
    pub fn new(config: OptimizerConfig) -> Self {
        Self {
            config,
            slots: BTreeMap::new(),
            steps: 0,
        }
    }

    pub fn config(&self) -> OptimizerConfig {
        self.config
    }

    /// Applies one update to every parameter of `net` from `grads` (as returned by
    /// `loss.backward()`); a parameter without a gradient is treated as having zero gradient.
    pub fn step(
        &mut self,
        net: &mut Network<E, D>,
        grads: &mut Gradients<E, D>,
    ) -> Result<(), D::Err> {
        self.steps += 1;
        let dev = net.device().clone();
        self.slots.retain(|name, _| net.params().contains_key(name));
        // The host mirrors go through the update with their parameters and come back equal
        // to them (the device's step keeps them in step, or drops them).
        let mut mirrors = net.take_host_mirrors();
        let mut updated = HashMap::new();
        for (name, param) in net.params_mut().iter_mut() {
            let len = param.len();
            let slot = match self.slots.entry(name.clone()) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(match self.config {
                    OptimizerConfig::Sgd { .. } => Slot::Sgd {
                        velocity: Storage::<E>::try_alloc_len(&dev, len)?,
                    },
                    OptimizerConfig::Adam { .. } => Slot::Adam {
                        moment1: Storage::<E>::try_alloc_len(&dev, len)?,
                        moment2: Storage::<E>::try_alloc_len(&dev, len)?,
                    },
                }),
            };
            let mut mirror = mirrors.remove(name);
            match param {
                Param::Vector(t) => {
                    update_one(self.config, self.steps, t, grads, slot, &mut mirror)?
                }
                Param::Matrix(t) => {
                    update_one(self.config, self.steps, t, grads, slot, &mut mirror)?
                }
            }
            if let Some(mirror) = mirror {
                updated.insert(name.clone(), mirror);
            }
        }
        net.restore_host_mirrors(updated);
        debug_assert_eq!(net.params().len(), self.slots.len());
        Ok(())
    }
}

fn update_one<E: Dtype, D: NetDevice<E>, S: Shape>(
    config: OptimizerConfig,
    steps: i32,
    tensor: &mut Tensor<S, E, D>,
    grads: &mut Gradients<E, D>,
    slot: &mut Slot<<D as Storage<E>>::Vec>,
    mirror: &mut Option<HostMirror<E>>,
) -> Result<(), D::Err> {
    let grad = grads.get_or_alloc_mut(tensor)?;
    match (config, slot) {
        (
            OptimizerConfig::Sgd {
                lr,
                momentum,
                weight_decay,
            },
            Slot::Sgd { velocity },
        ) => D::sgd_update(
            &SgdConfig {
                lr,
                momentum: (momentum > 0.0).then_some(Momentum::Classic(momentum)),
                weight_decay: decay(weight_decay),
            },
            tensor,
            velocity,
            grad,
            mirror,
        ),
        (
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            },
            Slot::Adam { moment1, moment2 },
        ) => {
            *mirror = None;
            AdamConfig {
                lr,
                betas: [beta1, beta2],
                eps,
                weight_decay: decay(weight_decay),
            }
            .try_update(steps, tensor, moment1, moment2, grad)
        }
        _ => unreachable!("slots are created for the configured optimiser"),
    }
}

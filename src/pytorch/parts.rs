//! What each family's writer gives the module's template, and the pieces of state both use.

use std::fmt::Write as _;

use crate::net::{norm_names, NORM_EPS, NORM_MOMENTUM};
use crate::topology::Norm;

/// What a family's writer gives: the lines of `__init__`, `forward` and the state dict
/// `load` builds, helpers the state dict uses, and how a caller shapes its input.
#[derive(Default)]
pub(super) struct Parts {
    pub init: String,
    pub forward: String,
    pub state: String,
    pub helpers: String,
    pub usage: String,
}

/// `w["name"]`, or the concatenation of several such tensors.
pub(super) fn tensors(names: &[String]) -> String {
    let read: Vec<String> = names.iter().map(|n| format!("w[\"{n}\"]")).collect();
    match read.as_slice() {
        [only] => only.clone(),
        _ => format!("torch.cat([{}])", read.join(", ")),
    }
}

/// The constructor of a normalisation module over `units` channels or features.
pub(super) fn norm_module(norm: Norm, units: usize, images: bool) -> String {
    match (norm, images) {
        (Norm::Layer, _) => format!("nn.LayerNorm({units}, eps={NORM_EPS})"),
        (_, true) => format!("nn.BatchNorm2d({units}, eps={NORM_EPS}, momentum={NORM_MOMENTUM})"),
        (_, false) => format!("nn.BatchNorm1d({units}, eps={NORM_EPS}, momentum={NORM_MOMENTUM})"),
    }
}

/// The state of normalisation module `module` from skiplab's normalisations `layers` (their
/// channels concatenated in order): scale and shift, and batch norm's running estimates.
pub(super) fn norm_state(state: &mut String, module: &str, norm: Norm, layers: &[String]) {
    let part =
        |k: usize| -> Vec<String> { layers.iter().map(|l| norm_names(l)[k].clone()).collect() };
    let _ = writeln!(state, "        \"{module}.weight\": {},", tensors(&part(0)));
    let _ = writeln!(state, "        \"{module}.bias\": {},", tensors(&part(1)));
    if norm == Norm::Batch {
        let _ = writeln!(
            state,
            "        \"{module}.running_mean\": {},",
            tensors(&part(2))
        );
        let _ = writeln!(
            state,
            "        \"{module}.running_var\": {},",
            tensors(&part(3))
        );
        let _ = writeln!(
            state,
            "        \"{module}.num_batches_tracked\": torch.tensor(0),"
        );
    }
}

//! Loss landscapes after Li, Xu, Taylor, Studer and Goldstein 2018 ("Visualizing the Loss
//! Landscape of Neural Nets"): the loss over a fixed training subset, in evaluation mode, at
//! θ + αδ (a 1-D curve) or θ + αδ + βη (a 2-D map), along random Gaussian directions
//! normalised filter by filter to the trained weights.
//!
//! Filter normalisation: a unit's (a neuron's or a convolution filter's) direction is scaled
//! to the norm of that unit's trained weights. A unit's weights are its column in every
//! weight block of its layer (a layer with concatenating edges reads several blocks, as one
//! PyTorch weight would hold them); a residual projection is a unit of its own, as PyTorch's
//! `downsample` is. Biases and normalisation parameters get no direction (Li et al.'s
//! `ignore='biasbn'`), and batch norm's running estimates stay as trained.
//!
//! Directions come from a seed, parameter by parameter in name order: the same seed gives the
//! same directions to networks of the same shapes (before normalisation, which follows each
//! network's own weights).

use super::StudyError;
use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::lesion::Progress;
use crate::data::Samples;
use crate::net::ops::NetDevice;
use crate::net::HostParam;
use crate::topology::Topology;
use crate::train::Evaluator;

/// A random direction in weight space: one tensor per parameter, by name (zeros for biases
/// and normalisation parameters).
pub type Direction = BTreeMap<String, Vec<f32>>;

/// The layer a weight block belongs to for filter normalisation: `fc3` for `fc3.w0` and
/// `fc3.w2`, `conv5` for `conv5.w[4]` and `conv5.w[1>4]`, `out` for the head; a residual
/// projection (`fc4.r2`, `conv9.r7[7]`) is its own.
fn unit_group(name: &str) -> &str {
    match name.find(".w") {
        Some(i) => &name[..i],
        None => name,
    }
}

/// Whether a parameter gets a direction: weight matrices do; biases, scales and shifts (and
/// running estimates) do not.
fn has_direction(p: &HostParam) -> bool {
    p.dims.len() == 2
}

/// A filter-normalised random Gaussian direction for `params` from `seed`.
pub fn direction(params: &[HostParam], seed: u64) -> Direction {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut sorted: Vec<&HostParam> = params.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut raw: Direction = BTreeMap::new();
    for p in &sorted {
        let values = match has_direction(p) {
            true => (0..p.values.len()).map(|_| gaussian(&mut rng)).collect(),
            false => vec![0.0; p.values.len()],
        };
        raw.insert(p.name.clone(), values);
    }
    // Per group and column: the weights' norm and the direction's, over every block.
    let mut norms: BTreeMap<(&str, usize), (f64, f64)> = BTreeMap::new();
    for p in sorted.iter().filter(|p| has_direction(p)) {
        let cols = p.dims[1];
        let d = &raw[&p.name];
        for (i, (w, r)) in p.values.iter().zip(d).enumerate() {
            let entry = norms.entry((unit_group(&p.name), i % cols)).or_default();
            entry.0 += f64::from(*w).powi(2);
            entry.1 += f64::from(*r).powi(2);
        }
    }
    for p in sorted.iter().filter(|p| has_direction(p)) {
        let cols = p.dims[1];
        let d = raw.get_mut(&p.name).expect("made above");
        for (i, r) in d.iter_mut().enumerate() {
            let (w, n) = norms[&(unit_group(&p.name), i % cols)];
            let scale = if n > 0.0 { (w / n).sqrt() } else { 0.0 };
            *r = (f64::from(*r) * scale) as f32;
        }
    }
    raw
}

/// A standard normal sample (Box-Muller).
fn gaussian(rng: &mut impl Rng) -> f32 {
    let (u, v): (f64, f64) = (rng.gen_range(f64::MIN_POSITIVE..1.0), rng.gen());
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// `params` moved by `alpha` along `d1` and `beta` along `d2`.
pub fn moved(
    params: &[HostParam],
    d1: &Direction,
    alpha: f64,
    d2: Option<(&Direction, f64)>,
) -> Vec<HostParam> {
    params
        .iter()
        .map(|p| {
            let mut q = p.clone();
            if let Some(d) = d1.get(&p.name) {
                for (v, r) in q.values.iter_mut().zip(d) {
                    *v += (alpha * f64::from(*r)) as f32;
                }
            }
            if let Some((d, beta)) = d2 {
                if let Some(d) = d.get(&p.name) {
                    for (v, r) in q.values.iter_mut().zip(d) {
                        *v += (beta * f64::from(*r)) as f32;
                    }
                }
            }
            q
        })
        .collect()
}

/// What a landscape is computed over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LandscapeOptions {
    /// 1 (a curve along one direction) or 2 (a map over two).
    pub dims: usize,
    /// Grid points per axis, from `-range` to `range` (odd counts include 0).
    pub points: usize,
    pub range: f64,
    /// The first direction's seed; the second's is `seed + 1`.
    pub seed: u64,
}

impl Default for LandscapeOptions {
    fn default() -> Self {
        Self {
            dims: 1,
            points: 51,
            range: 1.0,
            seed: 0,
        }
    }
}

/// A computed landscape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Landscape {
    /// The grid's coordinates on each axis.
    pub axis: Vec<f64>,
    /// `loss[i]` (1-D) or `loss[i][j]` at (axis[i], axis[j]) (2-D, α by rows), flattened
    /// row by row; likewise `accuracy`.
    pub loss: Vec<f64>,
    pub accuracy: Vec<f64>,
    pub dims: usize,
    /// The loss at the trained weights.
    pub centre_loss: f64,
    pub samples: usize,
    pub seed: u64,
    /// The mean rise of the loss over the grid above the trained weights' loss.
    pub sharpness: f64,
}

/// The grid's coordinates: `points` values from `-range` to `range`.
pub fn axis(points: usize, range: f64) -> Vec<f64> {
    match points {
        0 => Vec::new(),
        1 => vec![0.0],
        n => (0..n)
            .map(|i| -range + 2.0 * range * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

/// The landscape of `topology` with `params` over `samples` (a fixed training subset), on
/// `dev`. `progress` hears of every grid point and stops the study by returning `false`.
pub fn landscape<D: NetDevice<f32>>(
    dev: &D,
    topology: &Topology,
    params: &[HostParam],
    samples: &Samples,
    options: &LandscapeOptions,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Landscape, StudyError> {
    if !(1..=2).contains(&options.dims)
        || options.points == 0
        || options.range.is_nan()
        || options.range <= 0.0
    {
        return Err(StudyError::Grid);
    }
    let mut net = super::trained(dev, topology, params, samples)?;
    let mut evaluator = Evaluator::default();
    let centre_loss = evaluator.evaluate(&net, samples).0;
    let d1 = direction(params, options.seed);
    let d2 = (options.dims == 2).then(|| direction(params, options.seed.wrapping_add(1)));
    let axis = axis(options.points, options.range);
    let grid: Vec<(f64, Option<f64>)> = match options.dims {
        1 => axis.iter().map(|&a| (a, None)).collect(),
        _ => axis
            .iter()
            .flat_map(|&a| axis.iter().map(move |&b| (a, Some(b))))
            .collect(),
    };
    let total = grid.len();
    let (mut loss, mut accuracy) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for (k, (alpha, beta)) in grid.into_iter().enumerate() {
        let second = d2.as_ref().zip(beta);
        let point = moved(params, &d1, alpha, second);
        net.import(&point).map_err(StudyError::Weights)?;
        let (l, a) = evaluator.evaluate(&net, samples);
        loss.push(l);
        accuracy.push(a);
        if !progress(Progress { done: k + 1, total }) {
            return Err(StudyError::Cancelled);
        }
    }
    let sharpness = loss.iter().map(|l| l - centre_loss).sum::<f64>() / loss.len() as f64;
    Ok(Landscape {
        axis,
        loss,
        accuracy,
        dims: options.dims,
        centre_loss,
        samples: samples.len(),
        seed: options.seed,
        sharpness,
    })
}

/// [`landscape`] on `device` (see `on_device!`).
pub fn landscape_on(
    device: crate::device::Device,
    topology: &Topology,
    params: &[HostParam],
    samples: &Samples,
    options: &LandscapeOptions,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Landscape, StudyError> {
    on_device!(device, 0, StudyError::Device, |dev| landscape(
        &dev, topology, params, samples, options, progress
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_runs_from_minus_range_to_range_through_zero() {
        assert_eq!(axis(5, 1.0), [-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(axis(1, 1.0), [0.0]);
        assert_eq!(unit_group("fc3.w0"), "fc3");
        assert_eq!(unit_group("conv5.w[1>4]"), "conv5");
        assert_eq!(unit_group("fc4.r2"), "fc4.r2");
        assert_eq!(unit_group("out.w[9]"), "out");
    }
}

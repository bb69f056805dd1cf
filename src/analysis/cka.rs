//! Linear centred kernel alignment (Kornblith, Norouzi, Lee, Hinton 2019, "Similarity of
//! Neural Network Representations Revisited"): how alike two layers' representations of the
//! same examples are, invariant to orthogonal transforms and isotropic scaling.
//!
//! With `X` (n × p) and `Y` (n × q) centred, CKA(X, Y) = ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F), which
//! equals the same expression on the linear Gram matrices `K = XXᵀ` and `L = YYᵀ` centred
//! (what is computed here: an n × n matrix per layer, whatever the layer's width). For many
//! examples, the minibatch form of Nguyen, Raghu and Kornblith 2021 accumulates the unbiased
//! HSIC estimator (Song et al. 2012) over batches of the same examples and normalises at the
//! end. The functions follow google-research's CKA demo line by line
//! (`bench/cka_reference.py` is that code, and the tests compare against it).

use super::StudyError;
use serde::Serialize;

use super::lesion::Progress;
use crate::data::Samples;
use crate::net::ops::NetDevice;
use crate::net::HostParam;
use crate::topology::Topology;

/// One layer's activations of n examples, row-major: `rows` examples × `cols` features.
#[derive(Clone, Debug, PartialEq)]
pub struct Activations {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f64>,
}

impl Activations {
    pub fn new(rows: usize, cols: usize, values: Vec<f64>) -> Self {
        assert_eq!(values.len(), rows * cols, "activations must be rows × cols");
        Self { rows, cols, values }
    }

    /// Rows `start..end`.
    pub fn rows_between(&self, start: usize, end: usize) -> Activations {
        Activations::new(
            end - start,
            self.cols,
            self.values[start * self.cols..end * self.cols].to_vec(),
        )
    }
}

/// The linear Gram matrix `XXᵀ` (n × n, row-major).
pub fn gram_linear(x: &Activations) -> Vec<f64> {
    crate::net::cpu_ops::gram(&x.values, x.rows, x.cols)
}

/// Centres a Gram matrix: as `HKH` (biased), or for the unbiased HSIC estimator (its
/// diagonal zeroed; needs n > 3).
pub fn center_gram(gram: &[f64], n: usize, unbiased: bool) -> Vec<f64> {
    let mut g = gram.to_vec();
    let mut means = vec![0.0; n];
    if unbiased {
        for i in 0..n {
            g[i * n + i] = 0.0;
        }
        for (j, m) in means.iter_mut().enumerate() {
            *m = (0..n).map(|i| g[i * n + j]).sum::<f64>() / (n as f64 - 2.0);
        }
        let shift = means.iter().sum::<f64>() / (2.0 * (n as f64 - 1.0));
        means.iter_mut().for_each(|m| *m -= shift);
    } else {
        for (j, m) in means.iter_mut().enumerate() {
            *m = (0..n).map(|i| g[i * n + j]).sum::<f64>() / n as f64;
        }
        let shift = means.iter().sum::<f64>() / n as f64 / 2.0;
        means.iter_mut().for_each(|m| *m -= shift);
    }
    for i in 0..n {
        for j in 0..n {
            g[i * n + j] -= means[i] + means[j];
        }
    }
    if unbiased {
        for i in 0..n {
            g[i * n + i] = 0.0;
        }
    }
    g
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Linear CKA of two layers over the same examples, from all of them at once; `debiased`
/// uses the unbiased HSIC estimator.
pub fn linear_cka(x: &Activations, y: &Activations, debiased: bool) -> f64 {
    assert_eq!(
        x.rows, y.rows,
        "CKA compares representations of the same examples"
    );
    let n = x.rows;
    let kx = center_gram(&gram_linear(x), n, debiased);
    let ky = center_gram(&gram_linear(y), n, debiased);
    dot(&kx, &ky) / (dot(&kx, &kx).sqrt() * dot(&ky, &ky).sqrt())
}

/// Minibatch linear CKA between every layer of one set and every layer of another (the same
/// examples, in the same order): per batch, each layer's unbiased centred Gram once, the
/// unbiased HSIC of every pair accumulated; CKA from the sums. A last batch of fewer than 4
/// examples is left out (the estimator needs n > 3).
pub struct MinibatchCka {
    /// Σ HSIC(aᵢ, bⱼ), row-major over (a layer, b layer).
    cross: Vec<f64>,
    /// Σ HSIC(aᵢ, aᵢ) and Σ HSIC(bⱼ, bⱼ).
    self_a: Vec<f64>,
    self_b: Vec<f64>,
    batches: usize,
}

impl MinibatchCka {
    pub fn new(layers_a: usize, layers_b: usize) -> Self {
        Self {
            cross: vec![0.0; layers_a * layers_b],
            self_a: vec![0.0; layers_a],
            self_b: vec![0.0; layers_b],
            batches: 0,
        }
    }

    /// Adds one batch: every layer's activations of the same examples.
    pub fn add(&mut self, a: &[Activations], b: &[Activations]) {
        let n = a.first().map_or(0, |x| x.rows);
        if n < 4 {
            return;
        }
        let scale = 1.0 / (n as f64 * (n as f64 - 3.0));
        let centred = |layers: &[Activations]| -> Vec<Vec<f64>> {
            layers
                .iter()
                .map(|x| {
                    assert_eq!(x.rows, n, "every layer holds the batch's examples");
                    center_gram(&gram_linear(x), n, true)
                })
                .collect()
        };
        let (ka, kb) = (centred(a), centred(b));
        for (i, x) in ka.iter().enumerate() {
            self.self_a[i] += scale * dot(x, x);
            for (j, y) in kb.iter().enumerate() {
                self.cross[i * kb.len() + j] += scale * dot(x, y);
            }
        }
        for (j, y) in kb.iter().enumerate() {
            self.self_b[j] += scale * dot(y, y);
        }
        self.batches += 1;
    }

    /// CKA of every (a layer, b layer) pair, row-major; NaN before a batch is added.
    pub fn cka(&self) -> Vec<Vec<f64>> {
        (0..self.self_a.len())
            .map(|i| {
                (0..self.self_b.len())
                    .map(|j| {
                        self.cross[i * self.self_b.len() + j]
                            / (self.self_a[i] * self.self_b[j]).sqrt()
                    })
                    .collect()
            })
            .collect()
    }

    pub fn batches(&self) -> usize {
        self.batches
    }
}

/// Minibatch CKA of two sets of layers over all their examples, in batches of `batch`.
pub fn minibatch_cka(a: &[Activations], b: &[Activations], batch: usize) -> Vec<Vec<f64>> {
    let n = a.first().map_or(0, |x| x.rows);
    let mut acc = MinibatchCka::new(a.len(), b.len());
    let mut start = 0;
    while start < n {
        let end = (start + batch.max(1)).min(n);
        let slice = |layers: &[Activations]| -> Vec<Activations> {
            layers.iter().map(|x| x.rows_between(start, end)).collect()
        };
        acc.add(&slice(a), &slice(b));
        start = end;
    }
    acc.cka()
}

/// CKA between the hidden layers of two networks (or of one network with itself) over the
/// same samples.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerCka {
    /// The rows' layers (the first network's) and the columns' (the second's), by name.
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// `cka[i][j]`: row layer i against column layer j.
    pub cka: Vec<Vec<f64>>,
    pub samples: usize,
    pub batch: usize,
}

/// A network to compare: its topology and weights (as saved).
pub type Trained<'a> = (&'a Topology, &'a [HostParam]);

/// Minibatch linear CKA (Nguyen et al. 2021) between every hidden layer of `a` and every
/// hidden layer of `b` (of `a` itself where `b` is `None`), on `samples` in batches of
/// `batch`, evaluation mode, on `dev`. `progress` hears of every batch and stops the study
/// by returning `false`.
pub fn network_cka<D: NetDevice<f32>>(
    dev: &D,
    a: Trained<'_>,
    b: Option<Trained<'_>>,
    samples: &Samples,
    batch: usize,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<LayerCka, StudyError> {
    let build = |(topology, params): Trained<'_>| super::trained(dev, topology, params, samples);
    let net_a = build(a)?;
    let net_b = b.map(build).transpose()?;
    let batch = batch.min(samples.len());
    if batch < 4 {
        return Err(StudyError::TooFew(batch));
    }
    let names = |t: &Topology| super::layer_names(t);
    let (names_a, names_b) = (names(a.0), names(b.unwrap_or(a).0));
    let dim = samples.dim();
    let total = samples.len() / batch;
    let as_f64 = |layers: Vec<crate::net::LayerActivations<f32>>, rows: usize| {
        layers
            .into_iter()
            .map(|(layer, features, values)| {
                let values = values.into_iter().map(f64::from).collect();
                (layer, Activations::new(rows, features, values))
            })
            .collect::<Vec<_>>()
    };
    let mut acc: Option<MinibatchCka> = None;
    let (mut rows, mut columns) = (Vec::new(), Vec::new());
    // Whole batches only: every batch the same size, so each weighs the same.
    for k in 0..total {
        let x = dev.tensor_from_vec(
            samples.images[k * batch * dim..(k + 1) * batch * dim].to_vec(),
            (batch, dim),
        );
        let layers_a = as_f64(net_a.activations(x.clone()), batch);
        let layers_b = match &net_b {
            Some(net) => as_f64(net.activations(x), batch),
            None => layers_a.clone(),
        };
        if acc.is_none() {
            rows = layers_a.iter().map(|(l, _)| names_a[*l].clone()).collect();
            columns = layers_b.iter().map(|(l, _)| names_b[*l].clone()).collect();
        }
        let acc = acc.get_or_insert_with(|| MinibatchCka::new(layers_a.len(), layers_b.len()));
        let (xa, xb): (Vec<Activations>, Vec<Activations>) = (
            layers_a.into_iter().map(|(_, x)| x).collect(),
            layers_b.into_iter().map(|(_, x)| x).collect(),
        );
        acc.add(&xa, &xb);
        if !progress(Progress { done: k + 1, total }) {
            return Err(StudyError::Cancelled);
        }
    }
    Ok(LayerCka {
        rows,
        columns,
        cka: acc.map_or_else(Vec::new, |acc| acc.cka()),
        samples: total * batch,
        batch,
    })
}

/// [`network_cka`] on `device` (see `on_device!`).
pub fn network_cka_on(
    device: crate::device::Device,
    a: Trained<'_>,
    b: Option<Trained<'_>>,
    samples: &Samples,
    batch: usize,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<LayerCka, StudyError> {
    on_device!(device, 0, StudyError::Device, |dev| network_cka(
        &dev, a, b, samples, batch, progress
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(rows: usize, cols: usize, seed: u64) -> Activations {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let values = (0..rows * cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
        Activations::new(rows, cols, values)
    }

    /// `x` times a `cols × out` matrix.
    fn times(x: &Activations, m: &[f64], out: usize) -> Activations {
        let mut values = vec![0.0; x.rows * out];
        for i in 0..x.rows {
            for k in 0..x.cols {
                for j in 0..out {
                    values[i * out + j] += x.values[i * x.cols + k] * m[k * out + j];
                }
            }
        }
        Activations::new(x.rows, out, values)
    }

    #[test]
    fn cka_of_a_representation_with_itself_is_one() {
        let x = random(30, 7, 1);
        assert!((linear_cka(&x, &x, false) - 1.0).abs() < 1e-12);
        assert!((linear_cka(&x, &x, true) - 1.0).abs() < 1e-12);
        let m = minibatch_cka(std::slice::from_ref(&x), std::slice::from_ref(&x), 8);
        assert!((m[0][0] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn cka_is_invariant_to_rotation_and_scale_but_not_to_any_invertible_map() {
        let x = random(40, 3, 2);
        let y = random(40, 4, 3);
        let base = linear_cka(&x, &y, false);
        // A rotation by 0.7 in the plane of the first two features, and a scale of 5.
        let (c, s) = (0.7f64.cos(), 0.7f64.sin());
        let rotation = [c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0];
        let rotated = times(&x, &rotation, 3);
        assert!((linear_cka(&rotated, &y, false) - base).abs() < 1e-12);
        let scaled = times(&x, &[5.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 5.0], 3);
        assert!((linear_cka(&scaled, &y, false) - base).abs() < 1e-12);
        // Stretching one feature is invertible, and changes CKA.
        let stretched = times(&x, &[20.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], 3);
        assert!((linear_cka(&stretched, &y, false) - base).abs() > 1e-3);
    }
}

//! A stack of dense layers with skips, forward only, on host buffers: what an MLP's
//! evaluation runs on the CPU (an analysis evaluates thousands of times).
//!
//! Every layer's sum lives in one row-major buffer, the layers' columns side by side. Once a
//! layer is finished (bias or normalisation, identity residuals, activation, in place), its
//! products with *all* the layers it feeds are one gemm over their weight blocks stacked side
//! by side, written straight into those layers' columns; later products read the finished
//! columns where they lie. Against the training path's layer-by-layer products (one per
//! input, each input copied out of its tensor and each output into one) this packs every
//! input once for all its consumers, keeps gemm's panels wide (the paper MLP's input feeds
//! 666 columns, not 26 at a time) and copies nothing. The rows are split between threads,
//! each running the whole pass on its block.

use rayon::prelude::*;

use super::gemm::{gemm_columns, gemm_strided, View};
use super::memory::Pooled;
use crate::topology::Activation;

/// How a layer ends its sum before the activation.
#[derive(Clone, Debug)]
pub enum Ending {
    /// `z + bias`.
    Bias(Vec<f32>),
    /// `(z - mean) / std * gamma + beta` per unit: batch norm in evaluation mode.
    Running {
        mean: Vec<f32>,
        std: Vec<f32>,
        gamma: Vec<f32>,
        beta: Vec<f32>,
    },
    /// Each row normalised by its own mean and `sqrt(var + eps)` (biased), then
    /// `* gamma + beta`.
    Layer {
        eps: f32,
        gamma: Vec<f32>,
        beta: Vec<f32>,
    },
}

/// One layer's work after its products: [`Ending`], identity residuals added, activation.
#[derive(Clone, Debug)]
pub struct Finish {
    pub ending: Ending,
    /// Layers (0: the input) added as they are, after the ending.
    pub identities: Vec<usize>,
    pub activation: Activation,
}

/// One gemm: a source layer's output times its blocks for the layers `first..first + count`
/// stacked side by side (`[k, their widths summed]`).
struct Product {
    source: usize,
    first: usize,
    weights: Vec<f32>,
    /// Whether the layers' sums already hold an earlier source's products.
    accumulate: bool,
}

/// Builds a [`DenseStack`]: the widths, each weight block, each layer's [`Finish`].
pub struct StackBuilder {
    widths: Vec<usize>,
    blocks: std::collections::BTreeMap<(usize, usize), Vec<f32>>,
    finishes: Vec<Option<Finish>>,
}

impl StackBuilder {
    /// Layers `0` (the input) to the output layer, by width.
    pub fn new(widths: Vec<usize>) -> Self {
        let finishes = vec![None; widths.len()];
        Self {
            widths,
            blocks: Default::default(),
            finishes,
        }
    }

    /// Adds `w` (`[width(from), width(to)]`, row-major) to the block from layer `from` into
    /// layer `to`: a concatenating skip's block and a projection on the same pair add up.
    pub fn weight(&mut self, from: usize, to: usize, w: &[f32]) {
        assert!(from < to && to < self.widths.len(), "block {from}->{to}");
        assert_eq!(
            w.len(),
            self.widths[from] * self.widths[to],
            "block {from}->{to}"
        );
        let block = self
            .blocks
            .entry((from, to))
            .or_insert_with(|| vec![0.0; w.len()]);
        block.iter_mut().zip(w).for_each(|(b, w)| *b += w);
    }

    pub fn finish(&mut self, layer: usize, finish: Finish) {
        self.finishes[layer] = Some(finish);
    }

    /// The stack, or `None` when a layer has no block from the layer before it or no
    /// [`Finish`] (which [`DenseStack::forward`] relies on).
    pub fn build(self) -> Option<DenseStack> {
        let layers = self.widths.len();
        let finishes: Vec<Finish> = self.finishes.into_iter().skip(1).collect::<Option<_>>()?;
        if layers < 2 || (1..layers).any(|to| !self.blocks.contains_key(&(to - 1, to))) {
            return None;
        }
        let mut offsets = vec![0; layers];
        for layer in 2..layers {
            offsets[layer] = offsets[layer - 1] + self.widths[layer - 1];
        }
        let first_source = |to: usize| (0..to).find(|&from| self.blocks.contains_key(&(from, to)));
        let mut products = Vec::new();
        for source in 0..layers - 1 {
            let targets: Vec<usize> = (source + 1..layers)
                .filter(|&to| self.blocks.contains_key(&(source, to)))
                .collect();
            // Runs of adjacent layers that all start or all continue their sums here.
            let mut runs: Vec<Vec<usize>> = Vec::new();
            for &to in &targets {
                let starts = first_source(to) == Some(source);
                match runs.last_mut() {
                    Some(run)
                        if *run.last().expect("runs are not empty") + 1 == to
                            && (first_source(run[0]) == Some(source)) == starts =>
                    {
                        run.push(to)
                    }
                    _ => runs.push(vec![to]),
                }
            }
            for run in runs {
                let k = self.widths[source];
                let width: usize = run.iter().map(|&to| self.widths[to]).sum();
                let mut weights = Vec::with_capacity(k * width);
                for row in 0..k {
                    for &to in &run {
                        let n = self.widths[to];
                        weights.extend_from_slice(&self.blocks[&(source, to)][row * n..][..n]);
                    }
                }
                products.push(Product {
                    source,
                    first: run[0],
                    accumulate: first_source(run[0]) != Some(source),
                    weights,
                });
            }
        }
        let total = offsets[layers - 1] + self.widths[layers - 1];
        Some(DenseStack {
            widths: self.widths,
            offsets,
            total,
            products,
            finishes,
        })
    }
}

/// A stack of dense layers ready to run forward ([`StackBuilder`]).
pub struct DenseStack {
    /// Layer 0 (the input) to the output layer.
    widths: Vec<usize>,
    /// Each layer's first column in the sums' buffer (layer 0 is not in it).
    offsets: Vec<usize>,
    /// The buffer's row length: every layer's width but the input's.
    total: usize,
    /// In source order.
    products: Vec<Product>,
    /// Layers 1 to the output layer.
    finishes: Vec<Finish>,
}

impl DenseStack {
    /// Floats a row of input takes in the pass's buffer: every layer's sum but the input's.
    pub fn row_len(&self) -> usize {
        self.total
    }

    /// The output layer's values for `rows` rows of input `x` (row-major), row-major.
    pub fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let (input, classes) = (self.widths[0], *self.widths.last().expect("two layers"));
        assert_eq!(x.len(), rows * input, "{rows} rows of {input} inputs");
        let mut out = vec![0.0; rows * classes];
        if rows == 0 {
            return out;
        }
        let block = rows.div_ceil(rayon::current_num_threads().max(1));
        out.par_chunks_mut(block * classes)
            .zip(x.par_chunks(block * input))
            .for_each(|(out, x)| self.forward_block(x, out));
        out
    }

    /// The whole pass over one block of rows, on this thread.
    fn forward_block(&self, x: &[f32], out: &mut [f32]) {
        let (input, total) = (self.widths[0], self.total);
        let rows = x.len() / input;
        let mut sums = Pooled::<f32>::new(rows * total);
        let output = self.widths.len() - 1;
        let mut products = self.products.iter().peekable();
        for source in 0..output {
            if source > 0 {
                self.finish_layer(source, x, &mut sums, rows);
            }
            while let Some(product) = products.next_if(|p| p.source == source) {
                let k = self.widths[source];
                let width = product.weights.len() / k;
                let weights = View::new(&product.weights, k, width);
                let to = self.offsets[product.first];
                if source == 0 {
                    let a = View::new(x, rows, input);
                    gemm_strided(&mut sums[to..], total, a, weights, product.accumulate);
                } else {
                    let from = self.offsets[source]..self.offsets[source] + k;
                    gemm_columns(
                        &mut sums,
                        rows,
                        total,
                        from,
                        to,
                        weights,
                        product.accumulate,
                    );
                }
            }
        }
        self.finish_layer(output, x, &mut sums, rows);
        let (start, classes) = (self.offsets[output], self.widths[output]);
        for (row, out) in sums.chunks_exact(total).zip(out.chunks_exact_mut(classes)) {
            out.copy_from_slice(&row[start..start + classes]);
        }
    }

    /// Ends layer `layer`'s sums in place, row by row: [`Finish`].
    fn finish_layer(&self, layer: usize, x: &[f32], sums: &mut [f32], rows: usize) {
        let finish = &self.finishes[layer - 1];
        let (start, width, input) = (self.offsets[layer], self.widths[layer], self.widths[0]);
        for row in 0..rows {
            let (before, rest) = sums[row * self.total..(row + 1) * self.total].split_at_mut(start);
            let z = &mut rest[..width];
            match &finish.ending {
                Ending::Bias(bias) => z.iter_mut().zip(bias).for_each(|(z, b)| *z += b),
                Ending::Running {
                    mean,
                    std,
                    gamma,
                    beta,
                } => {
                    for (i, z) in z.iter_mut().enumerate() {
                        *z = (*z - mean[i]) / std[i] * gamma[i] + beta[i];
                    }
                }
                Ending::Layer { eps, gamma, beta } => {
                    let n = width as f32;
                    let mean = z.iter().sum::<f32>() / n;
                    let var = z.iter().map(|v| (mean - v) * (mean - v)).sum::<f32>() / n;
                    let std = (var + eps).sqrt();
                    for (i, z) in z.iter_mut().enumerate() {
                        *z = (*z - mean) / std * gamma[i] + beta[i];
                    }
                }
            }
            for &from in &finish.identities {
                let source = match from {
                    0 => &x[row * input..(row + 1) * input],
                    _ => &before[self.offsets[from]..self.offsets[from] + width],
                };
                z.iter_mut().zip(source).for_each(|(z, s)| *z += s);
            }
            activate(z, finish.activation);
        }
    }
}

/// The activation in place, as dfdx computes it (GELU: its tanh approximation, `fast_gelu`).
fn activate(z: &mut [f32], activation: Activation) {
    match activation {
        // A select, so it vectorises; NaN becomes 0, as in dfdx's ReLU.
        Activation::Relu => z
            .iter_mut()
            .for_each(|z| *z = if *z > 0.0 { *z } else { 0.0 }),
        Activation::Tanh => z.iter_mut().for_each(|z| *z = z.tanh()),
        Activation::Sigmoid => z.iter_mut().for_each(|z| *z = 1.0 / (1.0 + (-*z).exp())),
        Activation::Gelu => z.iter_mut().for_each(|z| {
            let x = *z;
            let inner = std::f32::consts::FRAC_2_PI.sqrt() * (x + 0.044715 * x.powi(3));
            *z = 0.5 * x * (1.0 + inner.tanh());
        }),
        Activation::Linear => {}
    }
}

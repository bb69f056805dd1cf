//! The harness's forward-only rows: evaluating 1,000 examples a call (logits, loss and
//! accuracy), as the analyses do thousands of times (a 51 × 51 landscape is 2,601 such
//! evaluations), through the analyses' own path ([`skiplab::train::Evaluator`]: no tape, batch
//! norm's running estimates), against the PyTorch twin in evaluation mode under
//! `torch.inference_mode()`, measured in the same run.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;

use super::common::{
    bench_model, measure_skiplab, measure_torch, median, synthetic, torch_columns, BenchDevice,
    Job, Measurement,
};
use crate::outln;
use skiplab::net::ops::NetDevice;
use skiplab::net::Network;
use skiplab::topology::Topology;
use skiplab::train::Evaluator;

/// Examples per evaluation call.
pub(super) const EXAMPLES: usize = 1000;

/// Calls timed after two of warm-up.
fn calls(model: &str) -> usize {
    match model.starts_with("mlp") {
        true => 60,
        false => 8,
    }
}

/// The child: `steps` evaluations of `batch` synthetic examples on `dev`, in examples a second.
pub(super) fn measure_here<D: NetDevice<f32>>(
    dev: &D,
    topology: Topology,
    batch: usize,
    steps: usize,
) -> Result<Measurement> {
    let data = synthetic(&topology, batch);
    let net = Network::<f32, D>::new(topology, dev, 1)?;
    let mut evaluator = Evaluator::default();
    let warmup = 2;
    for _ in 0..warmup {
        std::hint::black_box(evaluator.evaluate(&net, &data.train));
    }
    let start = Instant::now();
    for _ in 0..steps {
        std::hint::black_box(evaluator.evaluate(&net, &data.train));
    }
    Ok(Measurement {
        samples_per_sec: (steps * batch) as f64 / start.elapsed().as_secs_f64(),
        rss_at_100: None,
        rss_at_end: None,
        peak_rss_mib: super::common::memory_mib("VmHWM:"),
    })
}

/// The rows: each model's median examples a second over `rounds`, skiplab and PyTorch
/// interleaved (a CNN's twin NCHW and channels-last, the ratio against the faster).
pub(super) fn rows(
    models: &[&str],
    rounds: usize,
    device: BenchDevice,
    python: Option<&str>,
    threads: usize,
) -> Result<()> {
    outln!(
        "\nforward only: {EXAMPLES} examples a call (logits, loss, accuracy), skiplab's evaluator against torch.inference_mode()"
    );
    outln!(
        "{:<44} {:>5} {:>10} {:>16} {:>7}",
        "model",
        "call",
        "skiplab/s",
        "torch/s",
        "ratio"
    );
    for &model in models {
        let (_, _, label) = bench_model(model)?;
        let job = Job {
            model,
            batch: EXAMPLES,
            steps: calls(model),
            device,
            eval: true,
        };
        let settings: &[bool] = match model.starts_with("cnn") {
            true => &[false, true],
            false => &[false],
        };
        let mut ours = Vec::new();
        let mut theirs: Vec<Vec<Option<f64>>> = vec![Vec::new(); settings.len()];
        for _ in 0..rounds {
            ours.push(measure_skiplab(job, false, None)?.samples_per_sec);
            let Some(python) = python else { continue };
            for (k, &channels_last) in settings.iter().enumerate() {
                let rate = measure_torch(python, job, threads, channels_last)
                    .inspect_err(|e| eprintln!("PyTorch twin failed on {model} (evaluation): {e}"));
                theirs[k].push(rate.ok().map(|t| t.samples_per_sec));
            }
        }
        let rate = median(&ours);
        let (torch_text, ratio) = torch_columns(model, &ours, &theirs, settings);
        outln!("{label:<44} {EXAMPLES:>5} {rate:>10.0} {torch_text:>16} {ratio:>7}",);
    }
    Ok(())
}

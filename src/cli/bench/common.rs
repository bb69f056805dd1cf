//! What the training harness, the evaluation rows and their child processes share: the
//! models, synthetic data, one measurement, and running this binary or the PyTorch twin.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use rand::{Rng, SeedableRng};

use skiplab::data::{Dataset, PreparedData, Samples};
use skiplab::topology::{CnnSpec, ImageShape, MlpSpec, Norm, SkipSelection, Topology};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchDevice {
    Cpu,
    Cuda,
}

/// Resident memory of this process in MiB (Linux): `VmRSS` now or `VmHWM` (the peak).
pub(super) fn memory_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// `n` random examples of what `topology` reads, with random labels of its classes.
pub(super) fn synthetic(topology: &Topology, n: usize) -> Arc<PreparedData> {
    let (shape, classes) = match topology {
        Topology::Mlp(m) => (ImageShape::new(1, 1, m.input), m.classes),
        Topology::Cnn(c) => (c.input, c.classes),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let samples = Samples {
        images: (0..n * shape.len()).map(|_| rng.gen::<f32>()).collect(),
        labels: (0..n).map(|_| rng.gen_range(0..classes as u8)).collect(),
    };
    let dataset = Dataset {
        name: "synthetic".into(),
        shape,
        class_names: (0..classes).map(|c| c.to_string()).collect(),
        train: samples.clone(),
        test: Samples {
            images: samples.images[..shape.len()].to_vec(),
            labels: samples.labels[..1].to_vec(),
        },
    };
    Arc::new(PreparedData::prepare(&dataset, 0.0, 1))
}

/// One measurement, as the `--single` child prints it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Measurement {
    pub samples_per_sec: f64,
    pub rss_at_100: Option<f64>,
    pub rss_at_end: Option<f64>,
    pub peak_rss_mib: Option<f64>,
}

/// The benchmark's models: name, topology, batch size, description.
pub(super) fn bench_model(name: &str) -> Result<(Topology, usize, &'static str)> {
    let mlp = |input: usize, hidden: Vec<usize>, classes: usize| -> Result<Topology> {
        let mut t = Topology::Mlp(MlpSpec::new(input, hidden, classes));
        t.apply_skips(&SkipSelection::All)?;
        Ok(t)
    };
    let cnn = |stages: Vec<Vec<usize>>, skips: SkipSelection| -> Result<Topology> {
        let mut t = Topology::Cnn(CnnSpec::new(ImageShape::new(3, 32, 32), stages, 10));
        t.apply_skips(&skips)?;
        Ok(t)
    };
    let paper = || vec![vec![32, 32], vec![64, 64], vec![128, 128]];
    Ok(match name {
        "mlp-paper" => (
            mlp(784, vec![128, 256, 256], 26)?,
            64,
            "mlp 784-128-256-256-26, all skips",
        ),
        "mlp-cifar" => (
            mlp(3072, vec![512, 256, 256], 10)?,
            64,
            "mlp 3072-512-256-256-10, all skips",
        ),
        "cnn-vanilla" => (
            cnn(paper(), SkipSelection::None)?,
            32,
            "cnn 3x32x32 paper, vanilla",
        ),
        "cnn-vanilla-bn" => {
            let mut t = cnn(paper(), SkipSelection::None)?;
            if let Topology::Cnn(c) = &mut t {
                c.norm = Norm::Batch;
            }
            (t, 32, "cnn 3x32x32 paper, vanilla, batch norm")
        }
        "cnn-skip" => (
            cnn(paper(), SkipSelection::Paper)?,
            32,
            "cnn 3x32x32 paper, skips 1-4,2-5,4-7,5-8",
        ),
        "cnn-reinforced" => (
            cnn(
                vec![vec![32, 32], vec![96, 96], vec![224, 224]],
                SkipSelection::None,
            )?,
            32,
            "cnn 3x32x32 reinforced vanilla (96/224)",
        ),
        "resnet20" | "plain20" => {
            let mut t = Topology::Cnn(CnnSpec::he_cifar(ImageShape::new(3, 32, 32), 3, 10));
            let residual = name == "resnet20";
            let skips = if residual { "res:blocks:2" } else { "none" };
            t.apply_skips(&skips.parse()?)?;
            let label = if residual {
                "resnet20 3x32x32, batch norm, option A"
            } else {
                "plain20 3x32x32, batch norm (no shortcuts)"
            };
            (t, 128, label)
        }
        other => bail!("unknown benchmark model `{other}`"),
    })
}

/// The CPU's model name and the SIMD width its kernels use, for the header: ratios between
/// machines differ with both.
pub(super) fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let name = info.lines().find_map(|l| {
        l.strip_prefix("model name")?
            .split_once(':')
            .map(|(_, v)| v.trim())
    })?;
    let avx512 = info
        .lines()
        .any(|l| l.starts_with("flags") && l.contains(" avx512f"));
    Some(format!("{name}{}", if avx512 { ", AVX-512" } else { "" }))
}

/// Each round's rates and ratio, in round order (`-` where the twin failed that round): the
/// machine's speed can drift during a run (a shared VM's did by 1.8x within an hour), so the
/// spread of these ratios shows how far the row's ratio can be trusted.
pub(super) fn per_round_line(name: &str, ours: &[f64], theirs: &[Option<f64>]) -> String {
    let rate = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.0}"));
    let join = |v: Vec<String>| v.join(" ");
    let ratios = ours
        .iter()
        .zip(theirs)
        .map(|(o, t)| t.map_or("-".to_string(), |t| format!("{:.2}x", o / t)))
        .collect();
    format!(
        "  {name} per round: skiplab {}/s, torch {}/s, ratio {}",
        join(ours.iter().map(|&r| rate(Some(r))).collect()),
        join(theirs.iter().map(|&r| rate(r)).collect()),
        join(ratios)
    )
}

/// The ratio a row reports: the median of the rounds' own ratios (skiplab's rate over the
/// twin's in the same round), `None` if the twin never ran. The two of a round ran back to
/// back, on one state of the machine; a ratio of the two medians could set a fast moment of
/// one against a slow moment of the other.
pub(super) fn paired_ratio(ours: &[f64], theirs: &[Option<f64>]) -> Option<f64> {
    let ratios: Vec<f64> = ours
        .iter()
        .zip(theirs)
        .filter_map(|(o, t)| t.map(|t| o / t))
        .collect();
    (!ratios.is_empty()).then(|| median(&ratios))
}

/// The twin's columns of a row: the faster setting's median rate (named where the twin ran
/// in two layouts, `settings` saying which ran channels-last) and the row's ratio
/// ([`paired_ratio`]), `-` where the twin never ran; with more than one round, each round's
/// figures on stderr.
pub(super) fn torch_columns(
    name: &str,
    ours: &[f64],
    theirs: &[Vec<Option<f64>>],
    settings: &[bool],
) -> (String, String) {
    let best = theirs
        .iter()
        .enumerate()
        .filter_map(|(k, t)| Some((k, median_of_measured(t)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let Some((k, rate)) = best else {
        return ("-".to_string(), "-".to_string());
    };
    if ours.len() > 1 {
        eprintln!("{}", per_round_line(name, ours, &theirs[k]));
    }
    let setting = match (settings.len(), settings[k]) {
        (1, _) => "",
        (_, true) => " (NHWC)",
        (_, false) => " (NCHW)",
    };
    let ratio = paired_ratio(ours, &theirs[k]).expect("a measured round");
    (format!("{rate:.0}{setting}"), format!("{ratio:.2}x"))
}

/// The median of the rates that were measured, `None` if none was.
pub(super) fn median_of_measured(v: &[Option<f64>]) -> Option<f64> {
    let measured: Vec<f64> = v.iter().flatten().copied().collect();
    (!measured.is_empty()).then(|| median(&measured))
}

/// The median (of an even count, the mean of the middle two).
pub(super) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() % 2 {
        1 => v[v.len() / 2],
        _ => (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0,
    }
}

/// What one measurement times: training steps of `batch` examples, or (`eval`) evaluations of
/// `batch` examples each, `steps` of them.
#[derive(Clone, Copy, Debug)]
pub(super) struct Job<'a> {
    pub model: &'a str,
    pub batch: usize,
    pub steps: usize,
    pub device: BenchDevice,
    pub eval: bool,
}

/// Runs one measurement of this binary in a child process (clean memory figures per model).
pub(super) fn measure_skiplab(job: Job, composed: bool, conv: Option<&str>) -> Result<Measurement> {
    let model = job.model;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    if let Some(conv) = conv {
        cmd.env("SKIPLAB_CPU_CONV", conv);
    }
    cmd.args([
        "bench",
        "--single",
        model,
        "--batch",
        &job.batch.to_string(),
        "--steps",
        &job.steps.to_string(),
    ]);
    if job.device == BenchDevice::Cuda {
        cmd.args(["--device", "cuda"]);
    }
    if composed {
        cmd.arg("--composed");
    }
    if job.eval {
        cmd.arg("--eval");
    }
    let out = cmd.output()?;
    if !out.status.success() {
        bail!(
            "measuring {model}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim())
        .with_context(|| format!("reading the measurement of {model}: {line}"))
}

/// Runs the PyTorch twin; `None` when it could not run.
pub(super) fn measure_torch(
    python: &str,
    job: Job,
    threads: usize,
    channels_last: bool,
) -> Result<Measurement> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/torch_twin.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .args([
            "--model",
            job.model,
            "--batch",
            &job.batch.to_string(),
            "--steps",
            &job.steps.to_string(),
        ])
        .args(["--threads", &threads.to_string()])
        .args(channels_last.then_some("--channels-last"))
        .args(job.eval.then_some("--eval"))
        .args([
            "--device",
            if job.device == BenchDevice::Cuda {
                "cuda"
            } else {
                "cpu"
            },
        ])
        .output()?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(Measurement {
        samples_per_sec: v["samples_per_sec"].as_f64().context("twin output")?,
        rss_at_100: None,
        rss_at_end: None,
        peak_rss_mib: v["peak_rss_mib"].as_f64(),
    })
}

pub(super) fn torch_available(python: &str) -> Option<String> {
    let out = std::process::Command::new(python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_round_ratios_pair_each_round_with_its_own() {
        let (ours, theirs) = ([665.0, 1033.4, 1010.0], [Some(492.0), None, Some(500.0)]);
        assert_eq!(
            per_round_line("cnn-vanilla", &ours, &theirs),
            "  cnn-vanilla per round: skiplab 665 1033 1010/s, torch 492 - 500/s, ratio 1.35x - 2.02x"
        );
    }

    /// A row's ratio pairs each round with its own: here the ratio of the medians (1010 / 500
    /// = 2.02x) would set the fast second round of skiplab against the slow first of PyTorch.
    #[test]
    fn the_ratio_is_the_median_of_the_rounds_ratios() {
        let (ours, theirs) = ([665.0, 1033.4, 1010.0], [492.0, 595.0, 500.0].map(Some));
        let ratio = paired_ratio(&ours, &theirs).unwrap();
        assert!((ratio - 1033.4 / 595.0).abs() < 1e-12, "{ratio}");
        assert_eq!(paired_ratio(&ours, &[None, None, None]), None);
        assert_eq!(median_of_measured(&[None, Some(3.0), Some(1.0)]), Some(2.0));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5);
    }
}

//! `skiplab bench --data`: load times against the I/O floor measured in the same run.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};

use crate::outln;
use skiplab::data::{self, DatasetName};

/// Median wall time of `rounds` runs of `f`, in seconds.
fn median_seconds<T>(rounds: usize, mut f: impl FnMut() -> Result<T>) -> Result<f64> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        std::hint::black_box(f()?);
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// `skiplab bench --data`: load times against the I/O floor measured in the same run.
pub(super) fn bench_data(data_dir: &std::path::Path, rounds: usize) -> Result<ExitCode> {
    use skiplab::data::{cifar, idx};
    let fashion = data_dir.join("fashion-mnist");
    if !fashion.is_dir() {
        bail!(
            "{}: missing; --data times Fashion-MNIST from the data directory (e.g. --data-dir ../shared/data)",
            fashion.display()
        );
    }
    outln!("skiplab bench --data: median of {rounds} rounds; reference = reading (and gunzipping) the same bytes");
    outln!(
        "{:<44} {:>8} {:>10} {:>12} {:>7}  target",
        "load",
        "records",
        "load s",
        "reference s",
        "ratio"
    );
    let mut missed = 0;
    let mut row = |what: &str, records: usize, load: f64, reference: f64| -> Result<()> {
        let ok = load < 1.0;
        missed += usize::from(!ok);
        outln!(
            "{what:<44} {records:>8} {load:>10.3} {reference:>12.3} {:>6.2}x  {} (< 1 s)",
            load / reference,
            if ok { "met" } else { "MISSED" }
        );
        Ok(())
    };
    let files: Vec<PathBuf> = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    .iter()
    .map(|f| idx::find(&fashion, f))
    .collect::<Result<_, _>>()?;
    let reference = median_seconds(rounds, || {
        files
            .iter()
            .map(|f| Ok(idx::maybe_gunzip(&std::fs::read(f)?, f)?.len()))
            .sum::<Result<usize>>()
    })?;
    let mut records = 0;
    let load = median_seconds(rounds, || {
        let d = data::load(DatasetName::FashionMnist, data_dir)?;
        records = d.train.len() + d.test.len();
        Ok(d)
    })?;
    row("Fashion-MNIST, 4 gzip IDX files", records, load, reference)?;

    let tmp = tempfile::tempdir()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut batch = vec![0u8; 10_000 * cifar::RECORD];
    for name in cifar::TRAIN_BATCHES.iter().chain([&cifar::TEST_BATCH]) {
        rng.fill(&mut batch[..]);
        for record in batch.chunks_mut(cifar::RECORD) {
            record[0] %= 10;
        }
        std::fs::write(tmp.path().join(name), &batch)?;
    }
    let reference = median_seconds(rounds, || {
        cifar::TRAIN_BATCHES
            .iter()
            .chain([&cifar::TEST_BATCH])
            .map(|n| Ok(std::fs::read(tmp.path().join(n))?.len()))
            .sum::<Result<usize>>()
    })?;
    let load = median_seconds(rounds, || {
        let d = cifar::load_dir(tmp.path())?;
        records = d.train.len() + d.test.len();
        Ok(d)
    })?;
    row(
        "CIFAR-10 format, 6 generated batch files",
        records,
        load,
        reference,
    )?;
    Ok(if missed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

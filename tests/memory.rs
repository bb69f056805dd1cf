//! Memory that must not grow with the number of runs one process trains.

use std::process::Command;

/// Peak resident memory of `skiplab args` in KiB (GNU time's `%M`), or `None` without
/// `/usr/bin/time`.
fn peak_kib(args: &[&str]) -> Option<u64> {
    let time = std::path::Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let out = Command::new(time)
        .args(["-f", "peak %M"])
        .arg(env!("CARGO_BIN_EXE_skiplab"))
        .args(args)
        .env_remove("SKIPLAB_SAVES_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().rev().find(|l| l.starts_with("peak "))?;
    line["peak ".len()..].trim().parse().ok()
}

/// dfdx 0.13's tensor cache has no `Drop`: a run's device dropped with buffers in its cache
/// leaked them, about 130 MiB a run for this small CNN (four seeds in one process peaked at
/// 930 MiB against 410 MiB for one), and the paper's CNNs more: a reproduction grew run by
/// run. Each run now frees its device's cache when it ends.
#[test]
fn training_run_after_run_in_one_process_does_not_grow() {
    let train = |seeds: &str| {
        let args = [
            "train",
            "--model",
            "cnn",
            "--widths",
            "8,8/16,16",
            "--epochs",
            "1",
            "--seeds",
            seeds,
            "--no-save",
        ];
        peak_kib(&args)
    };
    let (Some(one), Some(four)) = (train("1"), train("4")) else {
        eprintln!("SKIPPED: no /usr/bin/time to read the peak resident memory with");
        return;
    };
    let grown_mib = (four as f64 - one as f64) / 1024.0;
    assert!(
        grown_mib < 100.0,
        "four runs peaked {grown_mib:.0} MiB above one ({one} KiB, {four} KiB)"
    );
}

/// Evaluation runs in chunks whose largest layer output stays near 8 MiB: 500 examples of an
/// MLP, 64 of the paper's CIFAR-10 CNN (32 x 32 x 32 floats a layer), never fewer than 32.
#[test]
fn evaluation_chunks_bound_a_cnns_activations() {
    use skiplab::topology::{CnnSpec, ImageShape, MlpSpec, Topology};
    use skiplab::train::eval_batch;
    let mlp = Topology::Mlp(MlpSpec::new(784, vec![128, 256, 256], 26));
    assert_eq!(eval_batch(&mlp), 500);
    let cifar = Topology::Cnn(CnnSpec::paper(ImageShape::new(3, 32, 32), 10));
    assert_eq!(eval_batch(&cifar), 64);
    let huge = Topology::Cnn(CnnSpec::new(
        ImageShape::new(3, 256, 256),
        vec![vec![64]],
        10,
    ));
    assert_eq!(eval_batch(&huge), 32);
}

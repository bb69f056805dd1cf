//! The real `skiplab` binary: arguments, output and exit codes.

mod common;

/// Runs save by default; keep them out of the source tree.
fn skiplab(args: &[&str]) -> (i32, String, String) {
    let saves = std::env::temp_dir().join("skiplab-cli-test-saves");
    common::skiplab(args, &[("SKIPLAB_SAVES_DIR", &saves)])
}

#[test]
fn train_prints_a_table_and_a_summary() {
    let (code, out, err) = skiplab(&[
        "train", "--widths", "32", "--skips", "0-2", "--epochs", "2", "--batch", "128", "--lr",
        "0.05",
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("mlp 784-32-10, 1/1 skips on builtin"), "{out}");
    assert!(out.contains("epoch  train loss"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with(['1', '2']))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    let summary = out.lines().last().unwrap();
    assert!(
        summary.starts_with("finished: 2 epochs, best val "),
        "{summary}"
    );
    assert!(summary.contains("test "), "{summary}");
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["train", "--skips", "1-2"],
            "skip edge 1-2 is not a candidate",
        ),
        (
            &["train", "--skips", "0-x"],
            "`x` in `0-x` is not a layer number",
        ),
        (&["train", "--widths", "128,abc"], "`abc` is not a width"),
        (
            &["train", "--model", "cnn", "--skips", "1-3"],
            "skips connect two convolution layers",
        ),
        (&["train", "--lr", "-1"], "--lr must be a positive number"),
    ];
    for (args, message) in cases {
        let (code, out, err) = skiplab(args);
        assert_ne!(code, 0, "{args:?} should fail");
        assert!(
            err.contains(message),
            "{args:?}: expected {message:?} in stderr:\n{err}\nstdout:\n{out}"
        );
    }
    let (code, _, err) = skiplab(&["train", "--dataset", "mnist", "--data-dir", "/nonexistent"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("/nonexistent/mnist: missing: `skiplab data fetch mnist`"),
        "{err}"
    );
}

#[test]
fn bench_harness_measures_and_checks_memory() {
    let (code, out, err) = skiplab(&["bench", "--single", "mlp-paper", "--steps", "20"]);
    assert_eq!(code, 0, "{err}");
    let m: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(m["samples_per_sec"].as_f64().unwrap() > 0.0, "{out}");
    let (code, out, err) = skiplab(&[
        "bench",
        "--models",
        "mlp",
        "--no-torch",
        "--rounds",
        "1",
        "--steps",
        "110",
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("mlp 784-128-256-256-26, all skips"), "{out}");
    assert!(out.contains("PyTorch twin: not run"), "{out}");
    assert!(
        out.lines().last().unwrap().starts_with("memory: steady"),
        "{out}"
    );
}

#[test]
fn cuda_commands_explain_themselves_in_a_cpu_build() {
    if cfg!(feature = "cuda") {
        return;
    }
    let (code, _, err) = skiplab(&["parity"]);
    assert_ne!(code, 0);
    assert!(err.contains("built without the `cuda` feature"), "{err}");
    let (code, _, err) = skiplab(&["train", "--device", "cuda"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--device cuda: this skiplab was built without CUDA support"),
        "{err}"
    );
}

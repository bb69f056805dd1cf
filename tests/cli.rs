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
        (
            &["train", "--lr", "-1"],
            "--lr -1 must be a positive number",
        ),
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
    // Both batch sizes train, then the forward-only rows: 1,000 examples a call.
    let rows = |label: &str| out.lines().filter(|l| l.starts_with(label)).count();
    assert_eq!(rows("mlp 784-128-256-256-26, all skips"), 3, "{out}");
    assert!(
        out.contains("\nforward only: 1000 examples a call"),
        "{out}"
    );
    let eval = out
        .lines()
        .skip_while(|l| !l.starts_with("forward only"))
        .find(|l| l.starts_with("mlp 3072-512-256-256-10"))
        .unwrap_or_else(|| panic!("no forward-only row:\n{out}"));
    let fields: Vec<&str> = eval.split_whitespace().collect();
    assert_eq!(fields[4], "1000", "{eval}");
    let rate: f64 = fields[5].parse().unwrap();
    assert!(rate > 0.0, "{eval}");
    assert!(
        out.lines().last().unwrap().starts_with("memory: steady"),
        "{out}"
    );
}

/// The CNN harness names the convolution kernel and, with `--im2col-too`, times each CNN on
/// im2col as well (through `SKIPLAB_CPU_CONV` in its child processes).
#[test]
fn bench_harness_compares_the_convolution_kernels() {
    let (code, out, err) = skiplab(&[
        "bench",
        "--models",
        "cnn",
        "--no-torch",
        "--rounds",
        "1",
        "--cnn-steps",
        "12",
        "--im2col-too",
        "--default-batches-only",
        "--no-eval",
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("CPU 3x3 convolutions: Winograd F(4x4, 3x3) from 16 input channels"),
        "{out}"
    );
    for model in ["cnn-vanilla", "cnn-skip", "cnn-reinforced"] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("skiplab {model}: im2col ")))
            .unwrap_or_else(|| panic!("no kernel comparison for {model}:\n{err}"));
        assert!(
            line.contains("configured kernel") && line.ends_with('x'),
            "{line}"
        );
    }
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

#[test]
fn absurd_sizes_and_empty_ranges_are_refused_before_anything_is_allocated() {
    let tmp = tempfile::tempdir().unwrap();
    let preset = tmp.path().join("huge.ron");
    std::fs::write(
        &preset,
        r#"(dataset: "builtin", model: Mlp(widths: [100000000], skips: "none"), optimizer: Sgd(lr: 0.1), batch: 8, epochs: 1)"#,
    )
    .unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["train", "--preset", preset.to_str().unwrap()],
            "huge.ron: model: layer 1's width is 100000000; skiplab allows at most 1,048,576",
        ),
        (
            &["train", "--widths", "4294967296"],
            "layer 1's width is 4294967296; skiplab allows at most 1,048,576",
        ),
        (
            &["train", "--widths", "200000"],
            "the network has 159,000,010 parameters; skiplab trains at most 100,000,000",
        ),
        (
            &["train", "--seed", "18446744073709551615", "--seeds", "2"],
            "--seed 18446744073709551615 with --seeds 2: the seeds would run past the largest",
        ),
        (
            &["train", "--val-fraction", "0"],
            "--val-fraction 0 must be above 0",
        ),
        (&["train", "--seeds", "0"], "--seeds must be at least 1"),
    ];
    for (args, message) in cases {
        let (code, out, err) = skiplab(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// 2 for a wrong request, 4 for what is not there, 5 for a write that fails; the lab wants
/// a terminal.
#[test]
fn exit_codes_tell_bad_arguments_from_missing_files_and_failed_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = skiplab(&["train", "--lr", "-1"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = skiplab(&[
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 4, "missing data set: {err}");
    assert!(err.contains("skiplab data fetch mnist"), "{err}");
    let (code, _, err) = skiplab(&["train", "--preset", "/nonexistent/x.ron"]);
    assert_eq!(code, 4, "missing preset: {err}");
    let (code, _, err) = skiplab(&["export", "no-such-run", "--csv"]);
    assert_eq!(code, 4, "missing run: {err}");
    // A saves folder that cannot be created: a file stands where it should be.
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let (code, _, err) = common::skiplab(
        &["train", "--epochs", "1", "--widths", "8"],
        &[("SKIPLAB_SAVES_DIR", &blocker.join("saves"))],
    );
    assert_eq!(code, 5, "failed write: {err}");
    // The lab, from a pipe.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skiplab"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the lab needs a terminal"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `reproduce depth` plans He et al.'s layouts, refuses a depth that is not 6n + 2 for the
/// CNN, and the CNN-only flags are refused on an MLP.
#[test]
fn the_depth_study_plans_resnets_and_names_bad_depths() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = skiplab(&["reproduce", "depth", "--depths", "10", "--families", "cnn"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--depths") && err.contains("6n + 2"), "{err}");
    let (code, _, err) = skiplab(&["train", "--shortcut", "pad"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("for CNNs"), "{err}");
    let sweep = tmp.path().join("depth.ron");
    let (code, out, err) = skiplab(&[
        "reproduce",
        "depth",
        "--depths",
        "8,20",
        "--families",
        "cnn",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--emit-sweep",
        sweep.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("4 configurations x 2 seeds = 8 runs"), "{out}");
    let text = std::fs::read_to_string(&sweep).unwrap();
    assert_eq!(text.matches("res:blocks:2").count(), 4, "{text}");
    assert_eq!(text.matches("downsample: stride").count(), 8, "{text}");
    assert!(text.contains("depth-builtin-e1-cnn-20-plain-s2"), "{text}");
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, script, err) = skiplab(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        script.contains("sweep") && script.contains("--weight-decay"),
        "{script}"
    );
    let path = tmp.path().join("skiplab.bash");
    std::fs::write(&path, &script).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .unwrap();
    assert!(check.success(), "bash -n on the completion script");
    for shell in ["zsh", "fish"] {
        let (code, script, _) = skiplab(&["completions", shell]);
        assert_eq!(code, 0);
        assert!(script.contains("skiplab"), "{shell}");
    }
    let (code, page, _) = skiplab(&["man"]);
    assert_eq!(code, 0);
    assert!(
        page.contains(".TH skiplab 1") && page.contains("sweep"),
        "{page}"
    );
    let dir = tmp.path().join("man");
    let (code, _, err) = skiplab(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let emit = std::fs::read_to_string(dir.join("skiplab-sweep-emit.1")).unwrap();
    assert!(emit.contains("\\-\\-max\\-parallel"), "{emit}");
    // Rendered by man itself where it is installed.
    if let Ok(out) = std::process::Command::new("man")
        .arg("-l")
        .arg(dir.join("skiplab-train.1"))
        .env("MANWIDTH", "80")
        .output()
    {
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("--weight-decay"), "{text}");
        }
    }
}

#[test]
fn help_and_version_fail_on_a_closed_pipe_or_a_full_disk_like_every_command() {
    for args in [
        &["--help"][..],
        &["--version"],
        &["help", "train"],
        &["train", "--help"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_skiplab"))
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(141), "{args:?}");
        if std::path::Path::new("/dev/full").exists() {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_skiplab"))
                .args(args)
                .stdout(std::fs::File::create("/dev/full").unwrap())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains("cannot write to stdout"), "{stderr}");
        }
        let (code, out, _) = skiplab(args);
        assert_eq!(code, 0, "{args:?}");
        assert!(out.contains("skiplab") || out.contains("Usage"), "{out}");
    }
    // A wrong flag is still a usage error on stderr.
    let (code, _, err) = skiplab(&["train", "--no-such-flag"]);
    assert_eq!(code, 2);
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn the_config_file_is_checked_whole_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| common::skiplab(args, &[("SKIPLAB_CONFIG_DIR", dir.path())]);
    for (config, says) in [
        (
            "(device: \"tpu\")",
            "device \"tpu\" is not one of auto, cpu, cuda",
        ),
        ("(keys: {\"no-such-action\": \"T\"})", "keys: "),
    ] {
        std::fs::write(dir.path().join("config.ron"), config).unwrap();
        let (code, out, _) = run(&["config", "show"]);
        assert_eq!(code, 2, "{config}: {out}");
        assert!(
            out.contains("BROKEN") && out.contains(says),
            "{config}: {out}"
        );
        let (code, _, err) = run(&["runs"]);
        assert_eq!(code, 2, "{config}: {err}");
        assert!(
            err.contains("config.ron") && err.contains(says),
            "{config}: {err}"
        );
    }
}

#[test]
fn misleading_inputs_get_messages_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    // A file where a saves folder is meant.
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let (code, out, err) = skiplab(&["runs", "--saves", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains("is a file, not a folder of saved runs"),
        "{err}"
    );
    // A negative number names the option, not "unexpected argument".
    let (code, _, err) = skiplab(&["train", "--epochs", "-1"]);
    assert_eq!(code, 2);
    assert!(err.contains("'-1'") && err.contains("--epochs"), "{err}");
    assert!(!err.contains("unexpected argument"), "{err}");
    // On every command.
    for args in [
        &["resume", "x", "--epochs", "-3"][..],
        &["reproduce", "--seeds", "-1"],
        &["sweep", "task", "f.ron", "--index", "-2"],
    ] {
        let (code, _, err) = skiplab(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains("invalid value '-"), "{args:?}: {err}");
    }
    // A preset saved with a UTF-8 byte-order mark reads like any other.
    let quick = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/quick.ron"),
    )
    .unwrap();
    let bom = dir.path().join("bom.ron");
    std::fs::write(&bom, format!("\u{feff}{quick}")).unwrap();
    let (code, out, err) = skiplab(&[
        "train",
        "--preset",
        bom.to_str().unwrap(),
        "--epochs",
        "1",
        "--no-save",
    ]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn bad_values_are_refused_before_training_with_the_value_named() {
    let (code, _, err) = skiplab(&["train", "--val-fraction", "1e-50", "--epochs", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("val_fraction 1e-50 holds out none"), "{err}");
    let (code, _, err) = skiplab(&["train", "--batch", "9001", "--epochs", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("batch 9001 is larger than the 9000 images"),
        "{err}"
    );
    // A saves folder that cannot be written: a write failure, before anything trains.
    let unwritable = std::path::Path::new("/sys/skiplab-saves-test");
    if std::fs::create_dir(unwritable).is_err() {
        let (code, _, err) = skiplab(&[
            "train",
            "--epochs",
            "1",
            "--saves",
            unwritable.to_str().unwrap(),
        ]);
        assert_eq!(code, 5, "{err}");
        assert!(
            err.contains("the saves folder /sys/skiplab-saves-test"),
            "{err}"
        );
    }
}

#[test]
fn a_preset_path_that_is_no_file_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = skiplab(&["train", "--preset", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is a folder; a preset is a .ron file"),
        "{err}"
    );
}

#[test]
fn an_empty_variable_is_an_unset_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skiplab"))
        .args(["runs"])
        .current_dir(dir.path())
        .env("SKIPLAB_SAVES_DIR", "")
        .env("HOME", dir.path())
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("no saved runs in"), "{stdout}");
}

#[test]
fn a_data_set_without_images_is_refused_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let mnist = data.path().join("mnist");
    std::fs::create_dir(&mnist).unwrap();
    // Well-formed IDX files that hold no image.
    let images = |n: u32| {
        [
            &[0u8, 0, 8, 3][..],
            &n.to_be_bytes(),
            &28u32.to_be_bytes(),
            &28u32.to_be_bytes(),
        ]
        .concat()
    };
    let labels = |n: u32| [&[0u8, 0, 8, 1][..], &n.to_be_bytes()].concat();
    for split in ["train", "t10k"] {
        std::fs::write(mnist.join(format!("{split}-images-idx3-ubyte")), images(0)).unwrap();
        std::fs::write(mnist.join(format!("{split}-labels-idx1-ubyte")), labels(0)).unwrap();
    }
    let dir = data.path().to_str().unwrap();
    let (code, out, err) = skiplab(&[
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        dir,
        "--epochs",
        "1",
        "--no-save",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("data set `mnist`") && err.contains("has 0 training and 0 test images"),
        "{err}"
    );
}

#[test]
fn a_diverged_run_exits_3() {
    let (code, out, err) = skiplab(&[
        "train",
        "--widths",
        "8",
        "--epochs",
        "1",
        "--optimizer",
        "sgd",
        "--lr",
        "1000000",
        "--no-save",
    ]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("diverged: loss became"), "{out}");
}

/// `reproduce similarity` plans the skip and reinforced CNNs over seeds under the paper
/// tables' run ids (so `reproduce table5` runs are reused) and needs two seeds for its
/// ceilings.
#[test]
fn the_similarity_study_plans_the_paper_cnns_and_needs_two_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = skiplab(&["reproduce", "similarity", "--seeds", "1"]);
    assert_ne!(code, 0);
    assert!(err.contains("at least 2"), "{err}");
    let sweep = tmp.path().join("similarity.ron");
    let (code, out, err) = skiplab(&[
        "reproduce",
        "similarity",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--emit-sweep",
        sweep.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("x 2 seeds = 4 runs"), "{out}");
    let text = std::fs::read_to_string(&sweep).unwrap();
    for id in [
        "paper-fashion-mnist-cnn-skip-e1-wd0-s1",
        "paper-fashion-mnist-cnn-reinforced-e1-wd0-s2",
    ] {
        assert!(text.contains(id), "{id} in {text}");
    }
}

//! Property-based fuzzing of the data parsers: arbitrary and mutated inputs give an error
//! naming the file, never a panic. Kept to a few hundred cases each so CI stays quick.

use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use skiplab::data::{cifar, idx, samples_from_idx};

fn valid_images(n: u32, h: u32, w: u32) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        v.extend(d.to_be_bytes());
    }
    v.extend((0..n * h * w).map(|i| i as u8));
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn idx_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), rank in 1usize..4) {
        let p = Path::new("fuzz.idx");
        match idx::parse(&bytes, rank, p) {
            Ok(a) => prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>()),
            Err(e) => prop_assert!(e.to_string().starts_with("fuzz.idx: "), "{}", e),
        }
    }

    #[test]
    fn mutated_idx_files_are_errors_or_consistent(
        cut in 0usize..100,
        flips in proptest::collection::vec((0usize..16, any::<u8>()), 0..4),
    ) {
        let mut bytes = valid_images(3, 4, 5);
        for (at, value) in flips {
            bytes[at] = value;
        }
        bytes.truncate(bytes.len().saturating_sub(cut));
        let p = Path::new("m.idx");
        if let Ok(a) = idx::parse(&bytes, 3, p) {
            prop_assert_eq!(a.data.len() + 16, bytes.len());
        }
        // The same through gzip, whole and cut short.
        let gz = gzip(&bytes);
        let _ = idx::maybe_gunzip(&gz, p).and_then(|raw| idx::parse(&raw, 3, p));
        let _ = idx::maybe_gunzip(&gz[..gz.len() / 2], p);
    }

    #[test]
    fn images_and_labels_pairs_never_panic(
        labels in proptest::collection::vec(any::<u8>(), 0..12),
        declared in 0u32..12,
        classes in 1usize..30,
    ) {
        let mut lab = vec![0, 0, 8, 1];
        lab.extend(declared.to_be_bytes());
        lab.extend(&labels);
        let img = valid_images(declared, 2, 2);
        let r = samples_from_idx(&img, &lab, Path::new("i"), Path::new("l"), classes);
        if let Ok((_, s)) = r {
            prop_assert!(s.labels.iter().all(|&l| (l as usize) < classes));
            prop_assert_eq!(s.labels.len(), declared as usize);
        }
    }

    #[test]
    fn cifar_batches_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..7000)) {
        match cifar::parse_batch(&bytes, Path::new("b.bin")) {
            Ok(s) => {
                prop_assert_eq!(bytes.len() % cifar::RECORD, 0);
                prop_assert_eq!(s.images.len(), s.labels.len() * 3072);
            }
            Err(e) => prop_assert!(e.to_string().starts_with("b.bin: "), "{}", e),
        }
    }

    #[test]
    fn corrupt_tarballs_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..600), raw in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.tar.gz");
        std::fs::write(&path, if raw { bytes.clone() } else { gzip(&bytes) }).unwrap();
        let e = cifar::load_tar_gz(&path).unwrap_err().to_string();
        prop_assert!(e.contains("c.tar.gz"), "{}", e);
    }
}

/// A valid preset, to mutate.
const PRESET: &str = r#"(
    description: "fuzz",
    dataset: "builtin",
    model: Mlp(widths: [8, 4], skips: "res:chain:2,0-3"),
    optimizer: Sgd(lr: 0.01, momentum: 0.9),
    weight_decay: 0.0001,
    batch: 16,
    epochs: 2,
    seed: 3,
)"#;

/// `bytes` with some replaced and the end cut off.
fn mutate(bytes: &[u8], flips: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for &(at, value) in flips {
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] = value;
        }
    }
    bytes.truncate(bytes.len().saturating_sub(cut));
    bytes
}

/// A run folder whose every file skiplab reads back is valid, made once by training.
fn template_run() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let saves = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_skiplab"))
            .args(["train", "--widths", "4", "--epochs", "1", "--skips", "none"])
            .env("SKIPLAB_SAVES_DIR", saves.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        saves
    })
    .path()
}

fn the_run(saves: &Path) -> std::path::PathBuf {
    std::fs::read_dir(saves)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join(skiplab::runs::EXPERIMENT).exists())
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Presets, sweeps, the config and summaries: any text, or a valid one mutated, is read
    /// or refused with a message naming the file; nothing panics.
    #[test]
    fn text_readers_never_panic(
        noise in proptest::collection::vec(any::<u8>(), 0..300),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in 0usize..200,
    ) {
        let p = Path::new("fuzz.ron");
        let mutated = String::from_utf8_lossy(&mutate(PRESET.as_bytes(), &flips, cut)).into_owned();
        let noise = String::from_utf8_lossy(&noise).into_owned();
        for text in [&mutated, &noise] {
            if let Err(e) = skiplab::experiment::Experiment::from_ron(text, p) {
                prop_assert!(e.to_string().starts_with("fuzz.ron"), "{}", e);
            }
            if let Err(e) = skiplab::sweep::Sweep::from_ron(text, p) {
                prop_assert!(e.to_string().starts_with("fuzz.ron"), "{}", e);
            }
            if let Err(e) = skiplab::runs::Summary::from_ron(text, p) {
                prop_assert!(e.to_string().starts_with("fuzz.ron"), "{}", e);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.ron");
        std::fs::write(&config, mutated.as_bytes()).unwrap();
        if let Err(e) = skiplab::folders::load_config(&config) {
            prop_assert!(e.contains("config.ron"), "{}", e);
        }
    }

    /// A run folder with one of its files replaced by a mutated or random one: `load_run`
    /// and the weights reader give the run or a message naming the file, never a panic.
    #[test]
    fn run_folder_readers_never_panic(
        which in 0usize..6,
        noise in proptest::collection::vec(any::<u8>(), 0..400),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in 0usize..300,
        use_noise in any::<bool>(),
    ) {
        use skiplab::runs;
        let original = the_run(template_run());
        let dir = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(&original).unwrap() {
            let e = e.unwrap();
            if e.path().is_file() {
                std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
            }
        }
        let name = [
            runs::EXPERIMENT, runs::SUMMARY, runs::METRICS, runs::STEPS, runs::FLOW, runs::WEIGHTS,
        ][which];
        let path = dir.path().join(name);
        let bytes = match use_noise {
            true => noise,
            false => mutate(&std::fs::read(&path).unwrap(), &flips, cut),
        };
        std::fs::write(&path, &bytes).unwrap();
        match runs::load_run(dir.path()) {
            Ok(run) => {
                let _ = run.weights_to_resume();
            }
            Err(e) => prop_assert!(e.path.starts_with(dir.path()), "{}", e),
        }
        if let Err(e) = runs::read_weights(&dir.path().join(runs::WEIGHTS)) {
            prop_assert!(e.to_string().contains(runs::WEIGHTS), "{}", e);
        }
    }
}

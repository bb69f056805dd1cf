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

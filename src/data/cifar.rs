//! CIFAR-10's binary format: records of one label byte and 3,072 pixel bytes (1,024 red,
//! 1,024 green, 1,024 blue, each row-major 32x32), five training batches and one test batch,
//! read from an extracted folder or straight from the distributed `cifar-10-binary.tar.gz`.

use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::dataset::{DataError, Dataset, Samples};
use crate::topology::ImageShape;

pub const SIDE: usize = 32;
pub const PIXELS: usize = SIDE * SIDE;
pub const RECORD: usize = 1 + 3 * PIXELS;
pub const TRAIN_BATCHES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const TEST_BATCH: &str = "test_batch.bin";
/// The folder the tarball keeps its batches in.
pub const ARCHIVE_FOLDER: &str = "cifar-10-batches-bin";
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Checks one batch file's bytes: whole records, labels in range. Returns the record count.
fn check_batch(bytes: &[u8], origin: &Path) -> Result<usize, DataError> {
    if bytes.is_empty() {
        return Err(DataError::new(
            origin,
            "is empty; expected CIFAR-10 records",
        ));
    }
    if !bytes.len().is_multiple_of(RECORD) {
        let whole = bytes.len() / RECORD;
        return Err(DataError::new(
            origin,
            format!(
                "truncated: {} bytes is not a whole number of {RECORD}-byte records (record {whole} is cut off at offset {})",
                bytes.len(),
                whole * RECORD
            ),
        ));
    }
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] >= CLASSES.len() as u8 {
            return Err(DataError::new(
                origin,
                format!(
                    "label {} of record {i} (offset {}) is out of range 0..10",
                    record[0],
                    i * RECORD
                ),
            ));
        }
    }
    Ok(bytes.len() / RECORD)
}

/// Decodes checked batches into one set of channels-last samples scaled to [0, 1], writing
/// each image once straight into its place (no per-batch vectors to concatenate).
fn decode(batches: &[&[u8]]) -> Samples {
    let records: usize = batches.iter().map(|b| b.len() / RECORD).sum();
    let mut images = vec![0f32; records * 3 * PIXELS];
    let all = batches.iter().flat_map(|b| b.chunks_exact(RECORD));
    let labels = all.clone().map(|r| r[0]).collect();
    let mut out: Vec<&mut [f32]> = images.chunks_mut(3 * PIXELS).collect();
    let sources: Vec<&[u8]> = all.collect();
    // Planar RGB to interleaved (h, w, c), in parallel: this is most of the load time.
    out.par_iter_mut()
        .zip(sources.par_iter())
        .for_each(|(image, record)| {
            let planes = &record[1..];
            for p in 0..PIXELS {
                for c in 0..3 {
                    image[p * 3 + c] = planes[c * PIXELS + p] as f32 / 255.0;
                }
            }
        });
    Samples { images, labels }
}

/// Decodes one batch file's bytes into channels-last samples scaled to [0, 1].
pub fn parse_batch(bytes: &[u8], origin: &Path) -> Result<Samples, DataError> {
    check_batch(bytes, origin)?;
    Ok(decode(&[bytes]))
}

/// Checks and decodes the five training batches and the test batch, given by name.
fn decode_all(named: &[(PathBuf, Vec<u8>)]) -> Result<(Samples, Samples), DataError> {
    for (path, bytes) in named {
        check_batch(bytes, path)?;
    }
    let find = |want: &str| {
        named
            .iter()
            .find(|(p, _)| p.file_name().is_some_and(|n| n == want))
            .map(|(_, b)| b.as_slice())
            .expect("callers pass every batch")
    };
    let train: Vec<&[u8]> = TRAIN_BATCHES.iter().map(|n| find(n)).collect();
    Ok((decode(&train), decode(&[find(TEST_BATCH)])))
}

fn dataset(train: Samples, test: Samples) -> Dataset {
    Dataset {
        name: "cifar10".into(),
        shape: ImageShape::new(3, SIDE, SIDE),
        class_names: CLASSES.iter().map(|s| s.to_string()).collect(),
        train,
        test,
    }
}

/// Where the batch files of an extracted CIFAR-10 are: `dir` itself or its
/// `cifar-10-batches-bin/`.
pub fn batch_folder(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join(ARCHIVE_FOLDER)]
        .into_iter()
        .find(|d| d.join(TEST_BATCH).is_file())
}

/// Loads CIFAR-10 from a folder holding the six batch files (directly or in
/// `cifar-10-batches-bin/`), or holding only `cifar-10-binary.tar.gz`.
pub fn load_dir(dir: &Path) -> Result<Dataset, DataError> {
    if let Some(folder) = batch_folder(dir) {
        let named = TRAIN_BATCHES
            .iter()
            .chain([&TEST_BATCH])
            .map(|name| {
                let path = folder.join(name);
                super::files::read_data_file(&path).map(|bytes| (path.clone(), bytes))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (train, test) = decode_all(&named)?;
        return Ok(dataset(train, test));
    }
    let archive = dir.join(ARCHIVE);
    if archive.is_file() {
        return load_tar_gz(&archive);
    }
    Err(DataError::new(
        dir,
        format!(
            "no CIFAR-10 here: looked for {TEST_BATCH} (also in {ARCHIVE_FOLDER}/) and {ARCHIVE}"
        ),
    ))
}

/// The batch files inside a CIFAR-10 tarball, by file name (members are matched by their
/// last path component, so the archive's folder name does not matter).
pub fn read_tar_gz_members(archive: &Path) -> Result<Vec<(String, Vec<u8>)>, DataError> {
    let file = std::fs::File::open(archive)
        .map_err(|e| DataError::new(archive, format!("cannot open: {e}")))?;
    let corrupt =
        |e: std::io::Error| DataError::new(archive, format!("not a readable tar.gz: {e}"));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let mut members = Vec::new();
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let path = entry.path().map_err(corrupt)?.into_owned();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if name == TEST_BATCH || TRAIN_BATCHES.contains(&name.as_str()) {
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(|e| {
                DataError::new(
                    archive,
                    format!("member {} is truncated: {e}", path.display()),
                )
            })?;
            members.push((name, bytes));
        }
    }
    let missing: Vec<&str> = TRAIN_BATCHES
        .iter()
        .chain([&TEST_BATCH])
        .filter(|want| !members.iter().any(|(name, _)| name == *want))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(DataError::new(
            archive,
            format!(
                "the archive lacks the expected member(s) {}; is this cifar-10-binary.tar.gz?",
                missing.join(", ")
            ),
        ));
    }
    Ok(members)
}

/// Loads CIFAR-10 straight from the distributed tarball.
pub fn load_tar_gz(archive: &Path) -> Result<Dataset, DataError> {
    let named: Vec<(PathBuf, Vec<u8>)> = read_tar_gz_members(archive)?
        .into_iter()
        .map(|(name, bytes)| (archive.join(name), bytes))
        .collect();
    let (train, test) = decode_all(&named)?;
    Ok(dataset(train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend((0..3 * PIXELS).map(|i| fill.wrapping_add((i / PIXELS) as u8)));
        r
    }

    #[test]
    fn records_decode_to_channels_last() {
        let mut bytes = record(3, 10);
        bytes.extend(record(9, 100));
        let s = parse_batch(&bytes, Path::new("b.bin")).unwrap();
        assert_eq!(s.labels, vec![3, 9]);
        assert_eq!(s.images.len(), 2 * 3 * PIXELS);
        // Pixel 0 of image 0: R 10, G 11, B 12.
        assert_eq!(&s.images[..3], &[10.0 / 255.0, 11.0 / 255.0, 12.0 / 255.0]);
    }

    #[test]
    fn bad_batches_name_the_file_and_offset() {
        let p = Path::new("data_batch_1.bin");
        let mut bytes = record(1, 0);
        bytes.extend(record(12, 0));
        let e = parse_batch(&bytes, p).unwrap_err().to_string();
        assert!(
            e.contains("data_batch_1.bin") && e.contains("label 12 of record 1 (offset 3073)"),
            "{e}"
        );
        let e = parse_batch(&bytes[..RECORD + 100], p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated") && e.contains("offset 3073"), "{e}");
        assert!(parse_batch(&[], p).is_err());
    }
}

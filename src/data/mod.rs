//! Data sets: loading, the built-in subset, normalisation and the train/validation split.
//!
//! Images are kept as f32 in channels-last order (height, width, channels): the order the
//! networks consume, and the flattening an MLP sees.

pub mod catalog;
pub mod cifar;
pub mod fetch;
pub mod idx;
pub mod store;

pub use catalog::DatasetName;

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::topology::ImageShape;

/// A problem with a data file, naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct DataError {
    pub path: PathBuf,
    pub message: String,
}

impl DataError {
    pub fn new(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Labelled images, pixel values scaled to [0, 1], channels-last.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
}

impl Samples {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn dim(&self) -> usize {
        self.images
            .len()
            .checked_div(self.labels.len())
            .unwrap_or(0)
    }
    fn subset(&self, indices: &[usize]) -> Samples {
        let dim = self.dim();
        let mut images = Vec::with_capacity(indices.len() * dim);
        for &i in indices {
            images.extend_from_slice(&self.images[i * dim..(i + 1) * dim]);
        }
        Samples {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

/// A data set as distributed: a training and a test set.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub shape: ImageShape,
    pub class_names: Vec<String>,
    pub train: Samples,
    pub test: Samples,
}

pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

const BUILTIN_TRAIN_IMAGES: &[u8] = include_bytes!("../../data/builtin/train-images-idx3-ubyte.gz");
const BUILTIN_TRAIN_LABELS: &[u8] = include_bytes!("../../data/builtin/train-labels-idx1-ubyte.gz");
const BUILTIN_TEST_IMAGES: &[u8] = include_bytes!("../../data/builtin/t10k-images-idx3-ubyte.gz");
const BUILTIN_TEST_LABELS: &[u8] = include_bytes!("../../data/builtin/t10k-labels-idx1-ubyte.gz");
/// Compressed size of the compiled-in data set.
pub const BUILTIN_BYTES: usize = BUILTIN_TRAIN_IMAGES.len()
    + BUILTIN_TRAIN_LABELS.len()
    + BUILTIN_TEST_IMAGES.len()
    + BUILTIN_TEST_LABELS.len();

/// Decodes an images file and a labels file into [`Samples`], checking they agree.
pub fn samples_from_idx(
    images: &[u8],
    labels: &[u8],
    images_origin: &Path,
    labels_origin: &Path,
    classes: usize,
) -> Result<(ImageShape, Samples), DataError> {
    let img = idx::parse(&idx::maybe_gunzip(images, images_origin)?, 3, images_origin)?;
    let lab = idx::parse(&idx::maybe_gunzip(labels, labels_origin)?, 1, labels_origin)?;
    if img.dims[0] != lab.dims[0] {
        return Err(DataError::new(
            labels_origin,
            format!(
                "has {} labels but {} has {} images",
                lab.dims[0],
                images_origin.display(),
                img.dims[0]
            ),
        ));
    }
    if let Some(pos) = lab.data.iter().position(|&l| l as usize >= classes) {
        return Err(DataError::new(
            labels_origin,
            format!(
                "label {} at record {pos} (offset {}) is out of range 0..{classes}",
                lab.data[pos],
                8 + pos
            ),
        ));
    }
    let shape = ImageShape::new(1, img.dims[1], img.dims[2]);
    let samples = Samples {
        images: img.data.iter().map(|&b| b as f32 / 255.0).collect(),
        labels: lab.data,
    };
    Ok((shape, samples))
}

/// The built-in data set: 10,000 training and 2,000 test images of Fashion-MNIST,
/// compiled into the binary (MIT, © Zalando SE; see data/builtin/COPYRIGHT).
pub fn builtin() -> Dataset {
    let load = |images, labels, name: &str| {
        let origin = PathBuf::from(format!("<built-in {name}>"));
        samples_from_idx(images, labels, &origin, &origin, 10)
            .expect("the built-in data set is compiled in and verified by tests")
    };
    let (shape, train) = load(BUILTIN_TRAIN_IMAGES, BUILTIN_TRAIN_LABELS, "train");
    let (_, test) = load(BUILTIN_TEST_IMAGES, BUILTIN_TEST_LABELS, "test");
    Dataset {
        name: "builtin".into(),
        shape,
        class_names: FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        train,
        test,
    }
}

/// What is at `path` when it is not a regular file: `a folder`, `a link that loops or
/// points nowhere`, `a FIFO, device or socket`; `None` for a file or nothing at all.
pub fn not_a_file(path: &Path) -> Option<&'static str> {
    let link = std::fs::symlink_metadata(path).ok()?;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some("a folder"),
        Ok(_) => Some("a FIFO, device or socket"),
        Err(_) if link.file_type().is_symlink() => Some("a link that loops or points nowhere"),
        Err(_) => None,
    }
}

/// A data file's bytes; what is there instead of a file is named, never read (a FIFO or
/// `/dev/zero` would block or fill memory).
pub fn read_data_file(path: &Path) -> Result<Vec<u8>, DataError> {
    if let Some(what) = not_a_file(path) {
        return Err(DataError::new(path, format!("is {what}, not a data file")));
    }
    std::fs::read(path).map_err(|e| DataError::new(path, format!("cannot read: {e}")))
}

/// Loads an MNIST-layout folder (`train-images-idx3-ubyte[.gz]` and friends): MNIST or
/// Fashion-MNIST.
pub fn load_mnist_dir(
    dir: &Path,
    name: &str,
    class_names: Vec<String>,
) -> Result<Dataset, DataError> {
    let read = |file: &str| -> Result<(PathBuf, Vec<u8>), DataError> {
        let path = idx::find(dir, file)?;
        let bytes = read_data_file(&path)?;
        Ok((path, bytes))
    };
    let classes = class_names.len();
    let split = |images: &str, labels: &str| -> Result<(ImageShape, Samples), DataError> {
        let (ip, ib) = read(images)?;
        let (lp, lb) = read(labels)?;
        samples_from_idx(&ib, &lb, &ip, &lp, classes)
    };
    let (shape, train) = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
    let (test_shape, test) = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    if test_shape != shape {
        return Err(DataError::new(
            dir,
            format!("training images are {shape} but test images are {test_shape}"),
        ));
    }
    Ok(Dataset {
        name: name.to_string(),
        shape,
        class_names,
        train,
        test,
    })
}

pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// EMNIST letters as distributed: `emnist-letters-{train,test}-{images-idx3,labels-idx1}-ubyte`
/// (`.gz` or raw). Labels 1..26 become 0..25 (a..z); images are stored transposed (column
/// after column) and are turned upright here.
pub fn load_emnist_letters(dir: &Path) -> Result<Dataset, DataError> {
    let split = |part: &str| -> Result<(ImageShape, Samples), DataError> {
        let images = idx::find(dir, &format!("emnist-letters-{part}-images-idx3-ubyte"))?;
        let labels = idx::find(dir, &format!("emnist-letters-{part}-labels-idx1-ubyte"))?;
        let img = idx::read_file(&images, 3)?;
        let lab = idx::read_file(&labels, 1)?;
        if img.dims[0] != lab.dims[0] {
            return Err(DataError::new(
                &labels,
                format!(
                    "has {} labels but {} has {} images",
                    lab.dims[0],
                    images.display(),
                    img.dims[0]
                ),
            ));
        }
        if let Some(pos) = lab.data.iter().position(|&l| !(1..=26).contains(&l)) {
            return Err(DataError::new(
                &labels,
                format!(
                    "label {} at record {pos} (offset {}) is out of range 1..=26",
                    lab.data[pos],
                    8 + pos
                ),
            ));
        }
        let (h, w) = (img.dims[1], img.dims[2]);
        let mut upright = vec![0f32; img.data.len()];
        for (out, stored) in upright.chunks_mut(h * w).zip(img.data.chunks(h * w)) {
            for y in 0..h {
                for x in 0..w {
                    out[y * w + x] = stored[x * h + y] as f32 / 255.0;
                }
            }
        }
        let samples = Samples {
            images: upright,
            labels: lab.data.iter().map(|&l| l - 1).collect(),
        };
        Ok((ImageShape::new(1, h, w), samples))
    };
    let (shape, train) = split("train")?;
    let (_, test) = split("test")?;
    Ok(Dataset {
        name: DatasetName::EmnistLetters.to_string(),
        shape,
        class_names: (b'a'..=b'z').map(|c| (c as char).to_string()).collect(),
        train,
        test,
    })
}

/// Why `name` cannot be loaded from `data_dir` before reading a byte: its folder is absent.
pub fn missing(name: DatasetName, data_dir: &Path) -> Option<DataError> {
    let dir = data_dir.join(name.as_str());
    (name != DatasetName::Builtin && !dir.is_dir()).then(|| {
        DataError::new(
            &dir,
            format!(
                "missing: `skiplab data fetch {name}` downloads it, `skiplab data import {name} PATH` takes files you have (or set --data-dir / SKIPLAB_DATA_DIR)"
            ),
        )
    })
}

/// Loads a data set: the built-in one, or `data_dir/<name>/`.
pub fn load(name: DatasetName, data_dir: &Path) -> Result<Dataset, DataError> {
    if let Some(missing) = missing(name, data_dir) {
        return Err(missing);
    }
    store::load_from(name, &data_dir.join(name.as_str()))
}

/// Per-channel mean and standard deviation, computed on the training split only.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    pub fn fit(samples: &Samples, channels: usize) -> Self {
        let mut sum = vec![0f64; channels];
        let mut sq = vec![0f64; channels];
        for (i, &v) in samples.images.iter().enumerate() {
            let c = i % channels;
            sum[c] += v as f64;
            sq[c] += (v as f64) * (v as f64);
        }
        let per_channel = (samples.images.len() / channels.max(1)).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / per_channel).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| ((s / per_channel - m * m).max(0.0).sqrt()).max(1e-6) as f32)
            .collect();
        Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    pub fn apply(&self, samples: &mut Samples) {
        let channels = self.mean.len();
        for (i, v) in samples.images.iter_mut().enumerate() {
            let c = i % channels;
            *v = (*v - self.mean[c]) / self.std[c];
        }
    }
}

/// What a run trains on: training and validation splits of the training set (seeded), the
/// untouched test set, all normalised with statistics of the training split.
#[derive(Clone, Debug)]
pub struct PreparedData {
    pub name: String,
    pub shape: ImageShape,
    pub class_names: Vec<String>,
    pub train: Samples,
    pub val: Samples,
    pub test: Samples,
    pub normalization: Normalization,
}

impl PreparedData {
    /// Holds out `val_fraction` of the training set (a seeded shuffle picks which), then
    /// normalises every split with the statistics of what is left for training.
    /// How many of `n` training images a split with this validation share trains and
    /// validates on.
    pub fn split_sizes(n: usize, val_fraction: f64) -> (usize, usize) {
        let n_val = ((n as f64) * val_fraction.clamp(0.0, 0.9)).round() as usize;
        (n - n_val.min(n), n_val.min(n))
    }

    pub fn prepare(dataset: &Dataset, val_fraction: f64, seed: u64) -> Self {
        let n = dataset.train.len();
        let n_val = Self::split_sizes(n, val_fraction).1;
        let mut order: Vec<usize> = (0..n).collect();
        // A different stream from the one that shuffles batches.
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ SPLIT_STREAM);
        order.shuffle(&mut rng);
        let (val_idx, train_idx) = order.split_at(n_val);
        let mut train = dataset.train.subset(train_idx);
        let mut val = dataset.train.subset(val_idx);
        let mut test = dataset.test.clone();
        let normalization = Normalization::fit(&train, dataset.shape.channels);
        for split in [&mut train, &mut val, &mut test] {
            normalization.apply(split);
        }
        Self {
            name: dataset.name.clone(),
            shape: dataset.shape,
            class_names: dataset.class_names.clone(),
            train,
            val,
            test,
            normalization,
        }
    }

    pub fn classes(&self) -> usize {
        self.class_names.len()
    }
}

/// Mixed into the seed for the validation split, so it is independent of batch shuffling.
const SPLIT_STREAM: u64 = 0x5eed_5011_7000_0001;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_loads_with_expected_counts() {
        let data = builtin();
        assert_eq!(data.train.len(), 10_000);
        assert_eq!(data.test.len(), 2_000);
        assert_eq!(data.shape, ImageShape::new(1, 28, 28));
        assert_eq!(data.train.dim(), 784);
        // First labels of Fashion-MNIST's training set: ankle boot, T-shirt, T-shirt, dress.
        assert_eq!(&data.train.labels[..4], &[9, 0, 0, 3]);
        let per_class = (0..10)
            .map(|c| data.train.labels.iter().filter(|&&l| l == c).count())
            .min()
            .unwrap();
        assert!(per_class > 900, "classes roughly balanced, min {per_class}");
    }

    #[test]
    fn split_is_seeded_disjoint_and_normalised_on_train() {
        let data = builtin();
        let a = PreparedData::prepare(&data, 0.1, 7);
        let b = PreparedData::prepare(&data, 0.1, 7);
        let c = PreparedData::prepare(&data, 0.1, 8);
        assert_eq!(a.val.len(), 1_000);
        assert_eq!(a.train.len(), 9_000);
        assert_eq!(a.val.labels, b.val.labels);
        assert_ne!(a.val.images, c.val.images);
        let mean: f64 =
            a.train.images.iter().map(|&v| v as f64).sum::<f64>() / a.train.images.len() as f64;
        assert!(mean.abs() < 1e-4, "train mean {mean}");
        assert_eq!(a.test.len(), 2_000);
    }

    #[test]
    fn mismatched_counts_and_labels_name_the_file() {
        let img = {
            let mut v = vec![0, 0, 8, 3];
            for d in [2u32, 2, 2] {
                v.extend(d.to_be_bytes());
            }
            v.extend([0u8; 8]);
            v
        };
        let lab = |n: u32, body: &[u8]| {
            let mut v = vec![0, 0, 8, 1];
            v.extend(n.to_be_bytes());
            v.extend(body);
            v
        };
        let (ip, lp) = (Path::new("imgs"), Path::new("labs"));
        let e = samples_from_idx(&img, &lab(3, &[0, 1, 2]), ip, lp, 10).unwrap_err();
        assert!(e.to_string().starts_with("labs: has 3 labels"), "{e}");
        let e = samples_from_idx(&img, &lab(2, &[0, 12]), ip, lp, 10).unwrap_err();
        assert!(e.to_string().contains("label 12 at record 1"), "{e}");
        assert!(samples_from_idx(&img, &lab(2, &[0, 9]), ip, lp, 10).is_ok());
    }
}

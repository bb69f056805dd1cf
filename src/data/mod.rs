//! Data sets: loading, the built-in subset, normalisation and the train/validation split.
//!
//! Images are kept as f32 in channels-last order (height, width, channels): the order the
//! networks consume, and the flattening an MLP sees.

pub mod catalog;
pub mod cifar;
mod dataset;
pub mod fetch;
mod files;
pub mod idx;
mod mnist;
pub mod store;

pub use catalog::DatasetName;
pub use dataset::{DataError, Dataset, Samples};
pub use files::{not_a_file, read_data_file};
pub use mnist::{
    builtin, load_emnist_letters, load_mnist_dir, samples_from_idx, BUILTIN_BYTES,
    FASHION_MNIST_CLASSES, MNIST_CLASSES,
};

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::topology::ImageShape;

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

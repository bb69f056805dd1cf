//! What a data set is once loaded: labelled images in two sets, and the error that names
//! the file a problem is in.

use std::path::{Path, PathBuf};

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
    /// Keeps the first `n` samples (all of them where there are fewer): the fixed subset an
    /// analysis evaluates on.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.images.truncate(n * self.dim());
            self.labels.truncate(n);
        }
    }
    pub(super) fn subset(&self, indices: &[usize]) -> Samples {
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

//! The IDX-format data sets: the built-in Fashion-MNIST subset compiled into the binary,
//! MNIST and Fashion-MNIST folders, and EMNIST letters.

use std::path::{Path, PathBuf};

use super::catalog::DatasetName;
use super::dataset::{DataError, Dataset, Samples};
use super::files::read_data_file;
use super::idx;
use crate::topology::ImageShape;

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

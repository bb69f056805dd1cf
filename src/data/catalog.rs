//! The data sets skiplab knows: their names, where they come from, the checksums their
//! publishers give, and the files a complete data set folder holds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::cifar;
use crate::topology::ImageShape;

/// A data set by name, as presets, the CLI and the data directory spell it.
/// Serialised as its name string (`"fashion-mnist"`), as users type it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatasetName {
    /// 10,000 + 2,000 Fashion-MNIST images compiled into the binary.
    Builtin,
    Mnist,
    FashionMnist,
    /// EMNIST "letters": 26 classes a..z, 124,800 + 20,800 images.
    EmnistLetters,
    Cifar10,
}

impl DatasetName {
    pub const ALL: [DatasetName; 5] = [
        DatasetName::Builtin,
        DatasetName::Mnist,
        DatasetName::FashionMnist,
        DatasetName::EmnistLetters,
        DatasetName::Cifar10,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Builtin => "builtin",
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::EmnistLetters => "emnist-letters",
            DatasetName::Cifar10 => "cifar10",
        }
    }

    /// Its entry in the catalog (every name but the built-in one lives in the data directory).
    pub fn entry(self) -> Option<&'static Entry> {
        CATALOG.iter().find(|e| e.name == self)
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DatasetName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DatasetName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for DatasetName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatasetName::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = DatasetName::ALL.iter().map(|d| d.as_str()).collect();
                format!("unknown data set `{s}` (known: {})", names.join(", "))
            })
    }
}

/// Shape and class count of each data set, known without loading it.
impl DatasetName {
    pub fn input_shape(self) -> ImageShape {
        match self {
            DatasetName::Cifar10 => ImageShape::new(3, 32, 32),
            _ => ImageShape::new(1, 28, 28),
        }
    }

    pub fn classes(self) -> usize {
        match self {
            DatasetName::EmnistLetters => 26,
            _ => 10,
        }
    }
}

/// A file as its publisher distributes it.
#[derive(Clone, Copy, Debug)]
pub struct Download {
    pub file: &'static str,
    /// Where to get it, tried in order.
    pub urls: &'static [&'static str],
    /// The MD5 the publisher (or torchvision, for MNIST and Fashion-MNIST) gives.
    pub md5: &'static str,
    /// Its size in bytes where known, to show progress before the server says.
    pub bytes: Option<u64>,
}

impl Download {
    /// The most a download of this file may take: its known size and a margin, or, where
    /// the size is not pinned, a ceiling of 1 GiB. A server offering more is refused before
    /// a byte is written.
    pub fn max_bytes(&self) -> u64 {
        match self.bytes {
            Some(b) => b + b / 20 + (1 << 20),
            None => 1 << 30,
        }
    }
}

/// A file of the finished data set folder.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    /// Its name in the folder (a `.gz` IDX file may also be kept uncompressed, without `.gz`).
    pub file: &'static str,
    /// SHA-256 of its decompressed content where it is pinned (MNIST and Fashion-MNIST,
    /// measured on the published files): a re-compressed copy still verifies.
    pub content_sha256: Option<&'static str>,
    /// Where it comes from in a downloaded archive (the member path), or `None` when the
    /// download is the file itself.
    pub in_archive: Option<&'static str>,
}

#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub name: DatasetName,
    pub title: &'static str,
    pub license: &'static str,
    pub downloads: &'static [Download],
    pub members: &'static [Member],
    /// Training and test images in the published data set.
    pub counts: (usize, usize),
}

const MNIST_URLS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];
const FASHION_URLS: [&str; 1] =
    ["https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"];

const fn idx(file: &'static str, sha: &'static str) -> Member {
    Member {
        file,
        content_sha256: Some(sha),
        in_archive: None,
    }
}

const fn from_archive(file: &'static str, path: &'static str) -> Member {
    Member {
        file,
        content_sha256: None,
        in_archive: Some(path),
    }
}

/// URLs ending in `/` are bases: the file name is appended.
pub const CATALOG: [Entry; 4] = [
    Entry {
        name: DatasetName::Mnist,
        title: "MNIST handwritten digits",
        license: "no explicit license from its authors (Y. LeCun, C. Cortes, C. Burges)",
        downloads: &[
            Download {
                file: "train-images-idx3-ubyte.gz",
                urls: &MNIST_URLS,
                md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                bytes: Some(9_912_422),
            },
            Download {
                file: "train-labels-idx1-ubyte.gz",
                urls: &MNIST_URLS,
                md5: "d53e105ee54ea40749a09fcbcd1e9432",
                bytes: Some(28_881),
            },
            Download {
                file: "t10k-images-idx3-ubyte.gz",
                urls: &MNIST_URLS,
                md5: "9fb629c4189551a2d022fa330f9573f3",
                bytes: Some(1_648_877),
            },
            Download {
                file: "t10k-labels-idx1-ubyte.gz",
                urls: &MNIST_URLS,
                md5: "ec29112dd5afa0611ce80d1b7f02629c",
                bytes: Some(4_542),
            },
        ],
        members: &[
            idx(
                "train-images-idx3-ubyte.gz",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            idx(
                "train-labels-idx1-ubyte.gz",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            idx(
                "t10k-images-idx3-ubyte.gz",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            idx(
                "t10k-labels-idx1-ubyte.gz",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ],
        counts: (60_000, 10_000),
    },
    Entry {
        name: DatasetName::FashionMnist,
        title: "Fashion-MNIST (Zalando)",
        license: "MIT, (c) Zalando SE",
        downloads: &[
            Download {
                file: "train-images-idx3-ubyte.gz",
                urls: &FASHION_URLS,
                md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                bytes: Some(26_421_880),
            },
            Download {
                file: "train-labels-idx1-ubyte.gz",
                urls: &FASHION_URLS,
                md5: "25c81989df183df01b3e8a0aad5dffbe",
                bytes: Some(29_515),
            },
            Download {
                file: "t10k-images-idx3-ubyte.gz",
                urls: &FASHION_URLS,
                md5: "bef4ecab320f06d8554ea6380940ec79",
                bytes: Some(4_422_102),
            },
            Download {
                file: "t10k-labels-idx1-ubyte.gz",
                urls: &FASHION_URLS,
                md5: "bb300cfdad3c16e7a12a480ee83cd310",
                bytes: Some(5_148),
            },
        ],
        members: &[
            idx(
                "train-images-idx3-ubyte.gz",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ),
            idx(
                "train-labels-idx1-ubyte.gz",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
            idx(
                "t10k-images-idx3-ubyte.gz",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ),
            idx(
                "t10k-labels-idx1-ubyte.gz",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
        ],
        counts: (60_000, 10_000),
    },
    Entry {
        name: DatasetName::EmnistLetters,
        title: "EMNIST letters (NIST), 26 classes",
        license: "as NIST Special Database 19",
        downloads: &[Download {
            file: "gzip.zip",
            urls: &["https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"],
            md5: "58c8d27c78d21e728a6bc7b3cc06412e",
            bytes: Some(561_753_746),
        }],
        members: &[
            from_archive(
                "emnist-letters-train-images-idx3-ubyte.gz",
                "gzip/emnist-letters-train-images-idx3-ubyte.gz",
            ),
            from_archive(
                "emnist-letters-train-labels-idx1-ubyte.gz",
                "gzip/emnist-letters-train-labels-idx1-ubyte.gz",
            ),
            from_archive(
                "emnist-letters-test-images-idx3-ubyte.gz",
                "gzip/emnist-letters-test-images-idx3-ubyte.gz",
            ),
            from_archive(
                "emnist-letters-test-labels-idx1-ubyte.gz",
                "gzip/emnist-letters-test-labels-idx1-ubyte.gz",
            ),
        ],
        counts: (124_800, 20_800),
    },
    Entry {
        name: DatasetName::Cifar10,
        title: "CIFAR-10 (A. Krizhevsky), binary version",
        license: "as CIFAR-10 (free for research, cite the tech report)",
        downloads: &[Download {
            file: cifar::ARCHIVE,
            urls: &["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"],
            md5: "c32a1d4ab5d03f1284b67883e8d87530",
            bytes: Some(170_052_171),
        }],
        members: &[
            from_archive("data_batch_1.bin", "cifar-10-batches-bin/data_batch_1.bin"),
            from_archive("data_batch_2.bin", "cifar-10-batches-bin/data_batch_2.bin"),
            from_archive("data_batch_3.bin", "cifar-10-batches-bin/data_batch_3.bin"),
            from_archive("data_batch_4.bin", "cifar-10-batches-bin/data_batch_4.bin"),
            from_archive("data_batch_5.bin", "cifar-10-batches-bin/data_batch_5.bin"),
            from_archive("test_batch.bin", "cifar-10-batches-bin/test_batch.bin"),
        ],
        counts: (50_000, 10_000),
    },
];

impl Download {
    /// The URLs to try, with `base` (a mirror given by the user) first when set.
    pub fn candidate_urls(&self, base: Option<&str>) -> Vec<String> {
        let full = |u: &str| {
            if u.ends_with('/') {
                format!("{u}{}", self.file)
            } else {
                u.to_string()
            }
        };
        match base {
            Some(base) => vec![format!("{}/{}", base.trim_end_matches('/'), self.file)],
            None => self.urls.iter().map(|u| full(u)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for name in DatasetName::ALL {
            assert_eq!(name.as_str().parse::<DatasetName>(), Ok(name));
            let ron = ron::to_string(&name).unwrap();
            assert_eq!(ron, format!("\"{name}\""));
            assert_eq!(ron::from_str::<DatasetName>(&ron).unwrap(), name);
        }
        let e = "emnist".parse::<DatasetName>().unwrap_err();
        assert!(e.contains("emnist-letters") && e.contains("cifar10"), "{e}");
        assert!(DatasetName::Builtin.entry().is_none());
        assert_eq!(DatasetName::Cifar10.entry().unwrap().members.len(), 6);
    }

    #[test]
    fn urls_expand_bases_and_a_mirror_replaces_them() {
        let d = DatasetName::Mnist.entry().unwrap().downloads[0];
        assert_eq!(
            d.candidate_urls(None)[0],
            "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
        );
        assert_eq!(d.candidate_urls(None).len(), 2);
        assert_eq!(
            d.candidate_urls(Some("http://127.0.0.1:9/m/")),
            vec!["http://127.0.0.1:9/m/train-images-idx3-ubyte.gz"]
        );
        let c = DatasetName::Cifar10.entry().unwrap().downloads[0];
        assert_eq!(
            c.candidate_urls(None),
            vec!["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]
        );
    }
}

//! Data sets on real files, the data directory, and the downloader against a real HTTP
//! server on 127.0.0.1 that can fail in the ways networks do.
//!
//! Everything runs on the small real slices in `tests/fixtures/` (a user's clone has them).
//! The `#[ignore]`d tests check the full data sets where they are present:
//! `cargo test --test data -- --ignored` with `SKIPLAB_FULL_DATA` (or `../shared/data`)
//! holding `mnist/` and `fashion-mnist/` as published.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use skiplab::data::catalog::{Download, Entry, Member};
use skiplab::data::store::{self, FetchEvent, State};
use skiplab::data::{self, cifar, DatasetName};

/// The small real slices shipped with the tests (see tests/fixtures/README.md).
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

const FULL: &str = "needs the full MNIST and Fashion-MNIST: SKIPLAB_FULL_DATA or ../shared/data";

/// The full published data sets, for the ignored tests.
fn full() -> PathBuf {
    let dir = std::env::var_os("SKIPLAB_FULL_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
        PathBuf::from,
    );
    assert!(
        dir.join("mnist").is_dir() && dir.join("fashion-mnist").is_dir(),
        "{FULL}; {} has no mnist/ and fashion-mnist/",
        dir.display()
    );
    dir
}

const CIFAR_SAMPLE_LABELS: [u8; 20] = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6];

fn cifar_sample() -> Vec<u8> {
    std::fs::read(fixtures().join("cifar10-sample/test_batch_first20.bin")).unwrap()
}

/// MNIST and Fashion-MNIST in `dir` load with `counts` and the published first labels.
fn check_mnist_pair(dir: &Path, counts: (usize, usize)) {
    let mnist = data::load(DatasetName::Mnist, dir).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), counts);
    assert_eq!(&mnist.train.labels[..4], &[5, 0, 4, 1]);
    assert_eq!(&mnist.test.labels[..4], &[7, 2, 1, 0]);
    assert_eq!(mnist.train.dim(), 784);
    let fashion = data::load(DatasetName::FashionMnist, dir).unwrap();
    assert_eq!((fashion.train.len(), fashion.test.len()), counts);
    assert_eq!(&fashion.train.labels[..4], &[9, 0, 0, 3]);
    assert_eq!(&fashion.test.labels[..4], &[9, 2, 1, 1]);
    assert_eq!(fashion.class_names[9], "Ankle boot");
}

#[test]
fn mnist_and_fashion_mnist_slices_load_with_their_counts_and_first_labels() {
    check_mnist_pair(&fixtures(), (300, 100));
}

#[test]
#[ignore = "needs the full MNIST and Fashion-MNIST: SKIPLAB_FULL_DATA or ../shared/data"]
fn full_mnist_and_fashion_mnist_load_with_their_counts_and_first_labels() {
    check_mnist_pair(&full(), (60_000, 10_000));
}

/// A CIFAR-10 folder whose six batches are all the 20 real test records.
fn cifar_folder(at: &Path) {
    std::fs::create_dir_all(at).unwrap();
    let sample = cifar_sample();
    for name in cifar::TRAIN_BATCHES.iter().chain([&cifar::TEST_BATCH]) {
        std::fs::write(at.join(name), &sample).unwrap();
    }
}

fn tar_gz(path: &Path, members: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, Default::default()));
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn cifar_sample_loads_from_a_folder_and_from_a_tar_gz() {
    let tmp = tempfile::tempdir().unwrap();
    cifar_folder(&tmp.path().join("folder"));
    let from_folder = cifar::load_dir(&tmp.path().join("folder")).unwrap();
    assert_eq!(from_folder.test.labels, CIFAR_SAMPLE_LABELS);
    assert_eq!(from_folder.train.len(), 100);
    assert_eq!(from_folder.shape.to_string(), "3x32x32");
    // The first test image is a cat; its first pixel's red byte is record byte 1.
    let sample = cifar_sample();
    assert_eq!(from_folder.test.images[0], sample[1] as f32 / 255.0);
    assert_eq!(from_folder.test.images[1], sample[1 + 1024] as f32 / 255.0);

    let archive = tmp.path().join("cifar-10-binary.tar.gz");
    let members: Vec<(String, Vec<u8>)> = cifar::TRAIN_BATCHES
        .iter()
        .chain([&cifar::TEST_BATCH])
        .map(|n| (format!("cifar-10-batches-bin/{n}"), sample.clone()))
        .collect();
    let refs: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    tar_gz(&archive, &refs);
    let from_tar = cifar::load_tar_gz(&archive).unwrap();
    assert_eq!(from_tar, from_folder);

    // A tar without the test batch names what is missing.
    let partial = tmp.path().join("partial.tar.gz");
    tar_gz(&partial, &refs[..5]);
    let e = cifar::load_tar_gz(&partial).unwrap_err().to_string();
    assert!(
        e.contains("partial.tar.gz") && e.contains("test_batch.bin"),
        "{e}"
    );
    // A truncated batch names the file and the record cut off.
    std::fs::write(tmp.path().join("folder/data_batch_3.bin"), &sample[..5000]).unwrap();
    let e = cifar::load_dir(&tmp.path().join("folder"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("data_batch_3.bin") && e.contains("record 1 is cut off"),
        "{e}"
    );
}

/// EMNIST letters files made from real MNIST digits: labels shifted to 1..10 and images
/// stored transposed, as EMNIST stores them. Loading must undo both.
fn emnist_from_mnist(dir: &Path, count: usize) -> data::Dataset {
    let mnist = data::load(DatasetName::Mnist, &fixtures()).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for (part, samples) in [("train", &mnist.train), ("test", &mnist.test)] {
        let mut images = vec![0, 0, 8, 3];
        for d in [count as u32, 28, 28] {
            images.extend(d.to_be_bytes());
        }
        for image in samples.images.chunks(784).take(count) {
            for x in 0..28 {
                for y in 0..28 {
                    images.push((image[y * 28 + x] * 255.0).round() as u8);
                }
            }
        }
        let mut labels = vec![0, 0, 8, 1];
        labels.extend((count as u32).to_be_bytes());
        labels.extend(samples.labels.iter().take(count).map(|l| l + 1));
        let gz = |bytes: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
            e.write_all(bytes).unwrap();
            e.finish().unwrap()
        };
        std::fs::write(
            dir.join(format!("emnist-letters-{part}-images-idx3-ubyte.gz")),
            gz(&images),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("emnist-letters-{part}-labels-idx1-ubyte")),
            &labels,
        )
        .unwrap();
    }
    mnist
}

#[test]
fn emnist_letters_are_turned_upright_and_relabelled_from_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("emnist-letters");
    let mnist = emnist_from_mnist(&dir, 50);
    let letters = data::load(DatasetName::EmnistLetters, tmp.path()).unwrap();
    assert_eq!(letters.class_names.len(), 26);
    assert_eq!(letters.class_names[0], "a");
    assert_eq!(&letters.train.labels[..], &mnist.train.labels[..50]);
    assert_eq!(&letters.train.images[..], &mnist.train.images[..50 * 784]);
    assert_eq!(&letters.test.labels[..], &mnist.test.labels[..50]);
    // A label of 0 (not a letter) is an error naming the file and record.
    let path = dir.join("emnist-letters-test-labels-idx1-ubyte");
    let mut labels = std::fs::read(&path).unwrap();
    labels[8 + 7] = 0;
    std::fs::write(&path, labels).unwrap();
    let e = data::load(DatasetName::EmnistLetters, tmp.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("emnist-letters-test-labels") && e.contains("label 0 at record 7"),
        "{e}"
    );
}

#[test]
fn a_missing_data_set_says_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    let e = data::load(DatasetName::Cifar10, tmp.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cifar10: missing") && e.contains("skiplab data fetch cifar10"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// A small HTTP/1.1 server that can also fail: a real socket, real headers, range requests.

#[derive(Clone)]
enum Reply {
    File(Vec<u8>),
    NotFound,
    /// Announces the whole file, sends this many bytes, then closes cleanly.
    Truncated(Vec<u8>, usize),
    /// Sends this many bytes, then resets the connection.
    Dropped(Vec<u8>, usize),
    /// Announces this many bytes (an absurd size), sends a little, then closes.
    Claims(usize),
}

/// Each request the server saw: its path and its Range header.
type RequestLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct Server {
    base: String,
    log: RequestLog,
}

fn serve(routes: HashMap<String, Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let requests = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let routes = routes.clone();
            let requests = requests.clone();
            std::thread::spawn(move || answer(stream, &routes, &requests));
        }
    });
    Server { base, log }
}

fn answer(mut stream: TcpStream, routes: &HashMap<String, Reply>, log: &RequestLog) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
        }
    }
    log.lock().unwrap().push((path.clone(), range.clone()));
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
    let send = |stream: &mut TcpStream, status: &str, len: usize, extra: &str| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n{extra}\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
    };
    match routes.get(&path) {
        None | Some(Reply::NotFound) => {
            let body = b"not here";
            send(&mut stream, "404 Not Found", body.len(), "");
            stream.write_all(body).ok();
        }
        Some(Reply::File(bytes)) => match start {
            Some(from) if from < bytes.len() => {
                let extra = format!(
                    "Content-Range: bytes {from}-{}/{}\r\n",
                    bytes.len() - 1,
                    bytes.len()
                );
                send(
                    &mut stream,
                    "206 Partial Content",
                    bytes.len() - from,
                    &extra,
                );
                stream.write_all(&bytes[from..]).ok();
            }
            _ => {
                send(&mut stream, "200 OK", bytes.len(), "");
                stream.write_all(bytes).ok();
            }
        },
        Some(Reply::Truncated(bytes, sent)) => {
            send(&mut stream, "200 OK", bytes.len(), "");
            stream.write_all(&bytes[..*sent]).ok();
            stream.flush().ok();
        }
        Some(Reply::Dropped(bytes, sent)) => {
            send(&mut stream, "200 OK", bytes.len(), "");
            stream.write_all(&bytes[..*sent]).ok();
            stream.flush().ok();
            // Linger 0: closing sends a reset instead of an orderly end.
            socket2::SockRef::from(&stream)
                .set_linger(Some(std::time::Duration::ZERO))
                .ok();
        }
        Some(Reply::Claims(len)) => {
            send(&mut stream, "200 OK", *len, "");
            stream.write_all(&[0u8; 1024]).ok();
        }
    }
}

/// The four MNIST files of `dir` as served by a mirror.
fn mnist_routes(dir: &Path) -> HashMap<String, Reply> {
    std::fs::read_dir(dir.join("mnist"))
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                format!("/mirror/{}", e.file_name().to_string_lossy()),
                Reply::File(std::fs::read(e.path()).unwrap()),
            )
        })
        .collect()
}

/// A catalog entry for the MNIST slice in tests/fixtures: the real downloader, checks and
/// installer run on it as on the published files, under the slice's own checksums.
fn fixture_entry() -> &'static Entry {
    let dir = fixtures().join("mnist");
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let files = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ];
    let downloads: Vec<Download> = files
        .iter()
        .map(|&file| Download {
            file,
            urls: &[],
            md5: leak(store::md5_file(&dir.join(file)).unwrap()),
            bytes: Some(std::fs::metadata(dir.join(file)).unwrap().len()),
        })
        .collect();
    let members: Vec<Member> = files
        .iter()
        .map(|&file| Member {
            file,
            content_sha256: Some(leak(store::content_sha256(&dir.join(file)).unwrap())),
            in_archive: None,
        })
        .collect();
    Box::leak(Box::new(Entry {
        name: DatasetName::Mnist,
        title: "MNIST, the first 300 + 100 records",
        license: "as MNIST",
        downloads: Box::leak(downloads.into_boxed_slice()),
        members: Box::leak(members.into_boxed_slice()),
        counts: (300, 100),
    }))
}

fn fetch_with(
    data_dir: &Path,
    server: &Server,
    entry: &Entry,
) -> Result<store::Manifest, data::DataError> {
    let mirror = format!("{}/mirror/", server.base);
    store::fetch_entry(
        data_dir,
        entry,
        Some(&mirror),
        &skiplab::data::fetch::Pace::default(),
        &mut |_: FetchEvent| {},
    )
}

/// The fixture slice through the downloader.
fn fetch(data_dir: &Path, server: &Server) -> Result<store::Manifest, data::DataError> {
    fetch_with(data_dir, server, fixture_entry())
}

/// Files anywhere under `dir`, relative.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Fetches MNIST as `entry` describes it from files in `source` and checks the install; a
/// file changed afterwards is caught.
fn fetch_installs_a_whole_folder(source: &Path, entry: &Entry, counts: (usize, usize)) {
    let server = serve(mnist_routes(source));
    let tmp = tempfile::tempdir().unwrap();
    let manifest = fetch_with(tmp.path(), &server, entry).unwrap();
    assert_eq!((manifest.train, manifest.test), counts);
    assert_eq!(manifest.files.len(), 4);
    assert!(
        manifest.source.starts_with(&server.base),
        "{}",
        manifest.source
    );
    assert_eq!(
        files_under(tmp.path()),
        [
            "mnist/manifest.ron",
            "mnist/t10k-images-idx3-ubyte.gz",
            "mnist/t10k-labels-idx1-ubyte.gz",
            "mnist/train-images-idx3-ubyte.gz",
            "mnist/train-labels-idx1-ubyte.gz"
        ],
        "no partial or staging files remain"
    );
    assert!(matches!(
        store::status(tmp.path(), DatasetName::Mnist).state,
        State::Installed(_)
    ));
    assert_eq!(
        data::load(DatasetName::Mnist, tmp.path())
            .unwrap()
            .train
            .labels[0],
        5
    );
    // A file changed afterwards is caught (its size changed).
    let path = tmp.path().join("mnist/t10k-labels-idx1-ubyte.gz");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.push(0);
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(
        store::status(tmp.path(), DatasetName::Mnist).state,
        State::Damaged(_)
    ));
}

#[test]
fn fetch_downloads_verifies_and_installs_a_whole_folder() {
    fetch_installs_a_whole_folder(&fixtures(), fixture_entry(), (300, 100));
}

#[test]
#[ignore = "needs the full MNIST and Fashion-MNIST: SKIPLAB_FULL_DATA or ../shared/data"]
fn the_published_mnist_fetches_and_verifies_against_its_published_checksums() {
    let source = full();
    let entry = DatasetName::Mnist.entry().unwrap();
    fetch_installs_a_whole_folder(&source, entry, (60_000, 10_000));
    // verify: the manifest and the published content checksums.
    let tmp = tempfile::tempdir().unwrap();
    fetch_with(tmp.path(), &serve(mnist_routes(&source)), entry).unwrap();
    let lines = store::verify(tmp.path(), DatasetName::Mnist).unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("4 files match the manifest")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("published content checksums")),
        "{lines:?}"
    );
    let path = tmp.path().join("mnist/t10k-labels-idx1-ubyte.gz");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.push(0);
    std::fs::write(&path, bytes).unwrap();
    let e = store::verify(tmp.path(), DatasetName::Mnist)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t10k-labels-idx1-ubyte.gz") && e.contains("differs from the manifest"),
        "{e}"
    );
}

#[test]
fn http_errors_and_wrong_checksums_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let mut routes = mnist_routes(&fixtures());
    routes.insert("/mirror/train-labels-idx1-ubyte.gz".into(), Reply::NotFound);
    let e = fetch(tmp.path(), &serve(routes)).unwrap_err().to_string();
    assert!(
        e.contains("train-labels-idx1-ubyte.gz") && e.contains("HTTP 404"),
        "{e}"
    );
    assert!(!tmp.path().join("mnist").exists());
    assert!(
        files_under(tmp.path())
            .iter()
            .all(|f| !f.ends_with(".part")),
        "{:?}",
        files_under(tmp.path())
    );

    // Files that did verify are kept in .partial/ for the next attempt, never installed.
    let kept = files_under(tmp.path());
    assert!(
        kept.iter().all(|f| f.starts_with(".partial/mnist/")),
        "{kept:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let mut routes = mnist_routes(&fixtures());
    let Reply::File(mut bytes) = routes["/mirror/train-images-idx3-ubyte.gz"].clone() else {
        unreachable!()
    };
    let last = bytes.len() - 1;
    bytes[last / 2] ^= 0x55;
    routes.insert(
        "/mirror/train-images-idx3-ubyte.gz".into(),
        Reply::File(bytes),
    );
    let e = fetch(tmp.path(), &serve(routes)).unwrap_err().to_string();
    assert!(
        e.contains("train-images-idx3-ubyte.gz") && e.contains("checksum mismatch"),
        "{e}"
    );
    assert!(e.contains("deleted it"), "{e}");
    assert!(!tmp.path().join("mnist").exists());
    assert!(
        !files_under(tmp.path())
            .iter()
            .any(|f| f.contains("train-images")),
        "{:?}",
        files_under(tmp.path())
    );
}

#[test]
fn a_server_claiming_an_absurd_size_is_refused_before_a_byte_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let mut routes = mnist_routes(&fixtures());
    routes.insert(
        "/mirror/train-images-idx3-ubyte.gz".into(),
        Reply::Claims(1 << 62),
    );
    let started = std::time::Instant::now();
    let e = fetch(tmp.path(), &serve(routes)).unwrap_err().to_string();
    assert!(
        e.contains("train-images-idx3-ubyte.gz")
            && e.contains("offers 4611686018427387904 bytes")
            && e.contains("refused"),
        "{e}"
    );
    assert!(started.elapsed().as_secs() < 10, "refused at once");
    assert!(
        !files_under(tmp.path())
            .iter()
            .any(|f| f.contains("train-images")),
        "nothing of it kept: {:?}",
        files_under(tmp.path())
    );
    // The published sizes bound every catalog download (EMNIST's unpinned one by 1 GiB).
    for name in DatasetName::ALL {
        for download in name.entry().map_or(&[][..], |e| e.downloads) {
            let limit = download.max_bytes();
            assert!(
                limit >= download.bytes.unwrap_or(0) && limit <= 1 << 30,
                "{limit}"
            );
        }
    }
}

#[test]
fn a_truncated_body_or_dropped_connection_resumes_on_the_next_fetch() {
    for (kind, cut) in [("truncated", 0usize), ("dropped", 1)] {
        let tmp = tempfile::tempdir().unwrap();
        let mut routes = mnist_routes(&fixtures());
        let Reply::File(bytes) = routes["/mirror/train-images-idx3-ubyte.gz"].clone() else {
            unreachable!()
        };
        let half = bytes.len() / 2;
        let failing = if cut == 0 {
            Reply::Truncated(bytes.clone(), half)
        } else {
            Reply::Dropped(bytes.clone(), half)
        };
        routes.insert("/mirror/train-images-idx3-ubyte.gz".into(), failing);
        let e = fetch(tmp.path(), &serve(routes)).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte.gz"), "{kind}: {e}");
        assert!(
            e.contains("run the same command again to resume"),
            "{kind}: {e}"
        );
        assert!(
            !tmp.path().join("mnist").exists(),
            "{kind}: no data set folder"
        );
        let status = store::status(tmp.path(), DatasetName::Mnist);
        assert_eq!(status.state, State::Absent);
        assert!(
            status.partial_bytes > 0,
            "{kind}: the partial download is kept for resuming"
        );

        let good = serve(mnist_routes(&fixtures()));
        fetch(tmp.path(), &good).unwrap();
        let log = good.log.lock().unwrap().clone();
        let resumed = log
            .iter()
            .find(|(p, _)| p.ends_with("train-images-idx3-ubyte.gz"))
            .and_then(|(_, range)| range.clone());
        let resumed_at: usize = resumed
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse().ok())
            .unwrap_or_else(|| panic!("{kind}: no range request in {log:?}"));
        assert!(
            resumed_at > 0 && resumed_at <= half,
            "{kind}: resumed at {resumed_at}"
        );
        assert_eq!(
            store::status(tmp.path(), DatasetName::Mnist).partial_bytes,
            0
        );
        assert!(matches!(
            store::status(tmp.path(), DatasetName::Mnist).state,
            State::Installed(_)
        ));
    }
}

#[test]
fn import_takes_a_folder_or_the_published_archive_and_checks_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    // A slice is not the published data: the content checksums catch it, nothing installs.
    let e = store::import(
        &data_dir,
        DatasetName::FashionMnist,
        &fixtures().join("fashion-mnist"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("content checksum mismatch"), "{e}");
    assert_eq!(
        store::status(&data_dir, DatasetName::FashionMnist).state,
        State::Absent
    );
    // A CIFAR-10 folder (no published per-file checksums: loaded to prove it parses).
    let folder = tmp.path().join("cifar-10-batches-bin");
    cifar_folder(&folder);
    store::import(&data_dir, DatasetName::Cifar10, &folder).unwrap();
    let lines = store::verify(&data_dir, DatasetName::Cifar10).unwrap();
    assert!(
        lines.iter().any(|l| l.contains("this is a subset")),
        "{lines:?}"
    );
    // A tar.gz that is not the published archive is refused.
    let archive = tmp.path().join("cifar-10-binary.tar.gz");
    tar_gz(
        &archive,
        &[("cifar-10-batches-bin/test_batch.bin", &cifar_sample())],
    );
    let e = store::import(&data_dir, DatasetName::Cifar10, &archive)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("checksum mismatch") && e.contains("c32a1d4ab5d03f1284b67883e8d87530"),
        "{e}"
    );
    // EMNIST letters from a folder of its files.
    let letters = tmp.path().join("letters");
    emnist_from_mnist(&letters, 30);
    store::import(&data_dir, DatasetName::EmnistLetters, &letters).unwrap();
    assert_eq!(
        data::load(DatasetName::EmnistLetters, &data_dir)
            .unwrap()
            .train
            .len(),
        30
    );
    let leftovers: Vec<String> = files_under(&data_dir)
        .into_iter()
        .filter(|f| f.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
#[ignore = "needs the full MNIST and Fashion-MNIST: SKIPLAB_FULL_DATA or ../shared/data"]
fn the_published_fashion_mnist_imports_and_mnist_posing_as_it_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    // Real Fashion-MNIST (re-compressed copies: their content checksums match).
    store::import(
        &data_dir,
        DatasetName::FashionMnist,
        &full().join("fashion-mnist"),
    )
    .unwrap();
    assert!(matches!(
        store::status(&data_dir, DatasetName::FashionMnist).state,
        State::Installed(_)
    ));
    // MNIST files offered as Fashion-MNIST: the content checksums catch it.
    let e = store::import(&data_dir, DatasetName::FashionMnist, &full().join("mnist"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("content checksum mismatch"), "{e}");
    assert!(
        store::verify(&data_dir, DatasetName::FashionMnist).is_ok(),
        "the installed copy is untouched"
    );
}

mod common;

fn skiplab(args: &[&str]) -> (i32, String, String) {
    common::skiplab(args, &[])
}

#[test]
fn the_data_command_imports_lists_verifies_and_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let dir = dir.to_str().unwrap();
    let folder = tmp.path().join("cifar-10-batches-bin");
    cifar_folder(&folder);
    let (code, out, err) = skiplab(&[
        "data",
        "--data-dir",
        dir,
        "import",
        "cifar10",
        folder.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("cifar10: installed") && out.contains("100 training"),
        "{out}"
    );
    let (code, out, _) = skiplab(&["data", "--data-dir", dir, "list"]);
    assert_eq!(code, 0);
    let cifar = out.lines().find(|l| l.starts_with("cifar10")).unwrap();
    assert!(cifar.contains("installed, 100 + 20 images"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("mnist") && l.contains("absent")),
        "{out}"
    );
    let (code, out, _) = skiplab(&["data", "--data-dir", dir, "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cifar10: OK"), "{out}");
    let (code, out, err) = skiplab(&[
        "train",
        "--dataset",
        "cifar10",
        "--data-dir",
        dir,
        "--epochs",
        "1",
        "--widths",
        "8",
        "--batch",
        "16",
        "--no-save",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("on cifar10 (90 train / 10 val / 20 test)"),
        "{out}"
    );
    // Installed files that no longer load (cut short): data that does not load, exit 4,
    // before any run starts, naming the file.
    let installed = Path::new(dir).join("cifar10");
    let copy = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&installed).unwrap() {
        let path = e.unwrap().path();
        std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
        if path.extension().is_some_and(|x| x == "bin") {
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() / 2 + 7]).unwrap();
        }
    }
    let (code, out, err) = skiplab(&[
        "train",
        "--dataset",
        "cifar10",
        "--data-dir",
        dir,
        "--epochs",
        "1",
        "--no-save",
    ]);
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("cifar10"), "{err}");
    for e in std::fs::read_dir(copy.path()).unwrap() {
        let path = e.unwrap().path();
        std::fs::copy(&path, installed.join(path.file_name().unwrap())).unwrap();
    }
    // Errors: an unknown data set, a 404 (exit code 2, message names the URL).
    let (code, _, err) = skiplab(&["data", "fetch", "emnist"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown data set `emnist`"), "{err}");
    let server = serve(HashMap::new());
    let nowhere = format!("{}/nowhere", server.base);
    let (code, _, err) = skiplab(&[
        "data",
        "--data-dir",
        dir,
        "fetch",
        "fashion-mnist",
        "--mirror",
        &nowhere,
    ]);
    assert_eq!(code, 4, "a download that is not there is missing data");
    assert!(
        err.contains("HTTP 404") && err.contains(&server.base),
        "{err}"
    );
}

#[test]
#[ignore = "needs the full MNIST and Fashion-MNIST: SKIPLAB_FULL_DATA or ../shared/data"]
fn the_data_command_fetches_the_published_mnist_and_trains_on_it() {
    let server = serve(mnist_routes(&full()));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let mirror = format!("{}/mirror", server.base);
    let (code, out, err) = skiplab(&[
        "data",
        "--data-dir",
        dir,
        "fetch",
        "mnist",
        "--mirror",
        &mirror,
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("mnist: installed") && out.contains("60000 training"),
        "{out}"
    );
    assert!(
        err.contains("train-images-idx3-ubyte.gz") && err.contains("checksum ok"),
        "{err}"
    );
    let (code, out, _) = skiplab(&["data", "--data-dir", dir, "list"]);
    assert_eq!(code, 0);
    let mnist = out.lines().find(|l| l.starts_with("mnist")).unwrap();
    assert!(
        mnist.contains("installed, 60000 + 10000 images") && mnist.contains("MiB"),
        "{out}"
    );
    let (code, out, _) = skiplab(&["data", "--data-dir", dir, "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("mnist: OK"), "{out}");
    let (code, out, err) = skiplab(&[
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        dir,
        "--epochs",
        "1",
        "--widths",
        "32",
        "--no-save",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("on mnist (54000 train / 6000 val / 10000 test)"),
        "{out}"
    );
}

#[test]
fn a_mirror_that_trickles_is_given_up_on_and_its_bytes_kept() {
    use skiplab::data::fetch::{self, FetchError, Pace};
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    // Announces 1000 bytes, then sends one every 100 ms: no read ever times out.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            for _ in 0..40 {
                if stream
                    .write_all(b"x")
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("file.part");
    let url = format!("http://{addr}/file");
    let slow = Pace {
        min_rate: 100,
        window: Duration::from_secs(1),
        deadline: None,
    };
    // How a download at `pace` fails, and how long it took to.
    let fails = |pace: &Pace| {
        let start = Instant::now();
        let e = fetch::download(
            &fetch::agent(pace),
            &url,
            &part,
            10_000,
            pace,
            &mut |_, _| {},
        )
        .unwrap_err();
        (e, start.elapsed())
    };
    let (e, took) = fails(&slow);
    assert!(matches!(e, FetchError::TooSlow { .. }), "{e}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        e.to_string()
            .contains("under the minimum of 100 bytes/s (--min-rate)")
            && e.resumable(),
        "{e}"
    );
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(
        (5..=20).contains(&kept),
        "the bytes so far are kept: {kept}"
    );
    // An overall deadline ends it too, whatever the rate.
    std::fs::remove_file(&part).unwrap();
    let bounded = Pace {
        min_rate: 0,
        window: Duration::from_secs(60),
        deadline: Some(Duration::from_millis(1500)),
    };
    let (e, took) = fails(&bounded);
    assert!(matches!(e, FetchError::Deadline { .. }), "{e}");
    assert!(
        e.to_string().contains("deadline of 1s 500ms (--deadline)"),
        "{e}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    server.join().unwrap();
}

#[test]
fn what_stands_where_a_data_file_should_be_is_named_and_never_read() {
    use skiplab::data::idx;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("folder-idx3")).unwrap();
    std::os::unix::fs::symlink(d.join("loop-b"), d.join("loop-a")).unwrap();
    std::os::unix::fs::symlink(d.join("loop-a"), d.join("loop-b")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", d.join("zero-idx3")).unwrap();
    let fifo_made = std::process::Command::new("mkfifo")
        .arg(d.join("fifo-idx3"))
        .status()
        .is_ok_and(|s| s.success());
    let mut cases = vec![
        ("folder-idx3", "is a folder, not a data file"),
        (
            "loop-a",
            "is a link that loops or points nowhere, not a data file",
        ),
        ("zero-idx3", "is a FIFO, device or socket, not a data file"),
    ];
    if fifo_made {
        cases.push(("fifo-idx3", "is a FIFO, device or socket, not a data file"));
    }
    for (name, says) in cases {
        let e = idx::find(d, name).unwrap_err().to_string();
        assert!(e.ends_with(says), "{name}: {e}");
        let e = data::read_data_file(&d.join(name)).unwrap_err().to_string();
        assert!(e.ends_with(says), "{name}: {e}");
    }
    let e = idx::find(d, "nothing-here").unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
}

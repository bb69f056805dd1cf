//! The data directory: one folder per data set, each with a `manifest.ron` naming its files,
//! their sizes and SHA-256, and where they came from.
//!
//! A folder is only ever created whole: files are fetched or copied into a staging folder,
//! checked against the publisher's checksums, loaded once to prove they parse, given a
//! manifest, and then renamed into place. Downloads in progress live in `.partial/`, never
//! in a data set folder, so nothing half-written is taken for data.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::catalog::{DatasetName, Download, Entry};
use super::dataset::{DataError, Dataset};
use super::{cifar, fetch, mnist};

pub const MANIFEST: &str = "manifest.ron";
/// Downloads in progress and verified downloads awaiting extraction.
pub const PARTIAL: &str = ".partial";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub dataset: DatasetName,
    /// The URL(s) or the local path the files came from.
    pub source: String,
    pub files: Vec<ManifestFile>,
    /// Training and test images, as loaded when the folder was installed.
    pub train: usize,
    pub test: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

fn err(path: &Path, message: impl Into<String>) -> DataError {
    DataError::new(path, message)
}

fn hash_reader<H: Digest>(mut reader: impl Read, path: &Path) -> Result<String, DataError> {
    let mut hasher = H::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buffer)
            .map_err(|e| err(path, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn open(path: &Path) -> Result<std::io::BufReader<std::fs::File>, DataError> {
    std::fs::File::open(path)
        .map(std::io::BufReader::new)
        .map_err(|e| err(path, format!("cannot open: {e}")))
}

pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    hash_reader::<Sha256>(open(path)?, path)
}

/// SHA-256 of bytes in memory, as hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hash_reader::<Sha256>(bytes, Path::new("")).expect("reading memory cannot fail")
}

pub fn md5_file(path: &Path) -> Result<String, DataError> {
    hash_reader::<Md5>(open(path)?, path)
}

fn is_gzip(path: &Path) -> Result<bool, DataError> {
    let mut magic = [0u8; 2];
    let n = open(path)?
        .read(&mut magic)
        .map_err(|e| err(path, format!("cannot read: {e}")))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

/// SHA-256 of a file's content, decompressed first when it is gzip.
pub fn content_sha256(path: &Path) -> Result<String, DataError> {
    if is_gzip(path)? {
        hash_reader::<Sha256>(flate2::read::MultiGzDecoder::new(open(path)?), path)
            .map_err(|e| err(path, format!("gzip stream is corrupt: {}", e.message)))
    } else {
        sha256_file(path)
    }
}

/// The publisher's MD5 of the file as distributed, or (for a file kept whole in the folder)
/// the pinned SHA-256 of its content: a re-compressed copy of the right data verifies.
pub fn check_download(entry: &Entry, download: &Download, path: &Path) -> Result<(), DataError> {
    let md5 = md5_file(path)?;
    if md5 == download.md5 {
        return Ok(());
    }
    let member = entry
        .members
        .iter()
        .find(|m| m.in_archive.is_none() && m.file == download.file);
    let mut why = String::new();
    if let Some(pin) = member.and_then(|m| m.content_sha256) {
        match content_sha256(path) {
            Ok(content) if content == pin => return Ok(()),
            Ok(_) => {}
            Err(e) => why = format!(" ({})", e.message),
        }
    }
    Err(err(
        path,
        format!(
            "checksum mismatch: md5 {md5}, but the published {} has md5 {}; the file is corrupt or not the right one{why}",
            download.file, download.md5
        ),
    ))
}

/// Checks a file of the finished folder against its content pin, when it has one.
fn check_member_content(entry: &Entry, file: &str, path: &Path) -> Result<(), DataError> {
    let base = file.trim_end_matches(".gz");
    let member = entry
        .members
        .iter()
        .find(|m| m.file.trim_end_matches(".gz") == base);
    if let Some(pin) = member.and_then(|m| m.content_sha256) {
        let got = content_sha256(path)?;
        if got != pin {
            return Err(err(
                path,
                format!("content checksum mismatch: sha256 {got}, the published data has {pin}"),
            ));
        }
    }
    Ok(())
}

/// Loads a data set from the folder `dir` (as [`super::load`] does under the data directory).
pub fn load_from(name: DatasetName, dir: &Path) -> Result<Dataset, DataError> {
    let strings = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    match name {
        DatasetName::Builtin => Ok(mnist::builtin()),
        DatasetName::Mnist => mnist::load_mnist_dir(dir, "mnist", strings(&mnist::MNIST_CLASSES)),
        DatasetName::FashionMnist => {
            mnist::load_mnist_dir(dir, "fashion-mnist", strings(&mnist::FASHION_MNIST_CLASSES))
        }
        DatasetName::EmnistLetters => mnist::load_emnist_letters(dir),
        DatasetName::Cifar10 => cifar::load_dir(dir),
    }
}

fn entry_for(name: DatasetName) -> Result<&'static Entry, DataError> {
    name.entry().ok_or_else(|| {
        err(
            Path::new(name.as_str()),
            "is compiled into skiplab; there is nothing to fetch, import or verify",
        )
    })
}

pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>, DataError> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(&path, format!("cannot read: {e}"))),
    };
    ron::from_str(&text).map(Some).map_err(|e| {
        err(
            &path,
            format!(
                "line {}, column {}: {}",
                e.span.start.line, e.span.start.col, e.code
            ),
        )
    })
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// crash leaves the old file or the new one, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    persist(stage(path, bytes)?, path)
}

/// The first half of an atomic write: `bytes` in a synced temporary file beside `path`
/// (`.tmpXXXXXX`, removed again if it is dropped unpersisted). Staging several files before
/// renaming any keeps a group of files consistent when one of the writes fails.
pub fn stage(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile, DataError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| err(dir, format!("cannot write here: {e}")))?;
    #[cfg(unix)]
    {
        // Readable like any file the user writes (a temporary file starts private).
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| err(path, format!("cannot write: {e}")))?;
    }
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| err(path, format!("cannot write: {e}")))?;
    Ok(tmp)
}

/// The second half: the staged file takes `path`'s place.
pub fn persist(staged: tempfile::NamedTempFile, path: &Path) -> Result<(), DataError> {
    staged
        .persist(path)
        .map_err(|e| err(path, format!("cannot write: {}", e.error)))?;
    Ok(())
}

fn fresh_dir(path: &Path) -> Result<(), DataError> {
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|e| err(path, format!("cannot clear: {e}")))?;
    }
    std::fs::create_dir_all(path).map_err(|e| err(path, format!("cannot create: {e}")))
}

fn staging_dir(data_dir: &Path, name: DatasetName) -> PathBuf {
    data_dir.join(format!(".staging-{name}"))
}

/// Proves the staged files load, writes their manifest and moves the folder into place,
/// replacing an older copy only once the new one is complete.
pub fn install(
    data_dir: &Path,
    name: DatasetName,
    staging: &Path,
    source: &str,
) -> Result<Manifest, DataError> {
    let dataset = load_from(name, staging)?;
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(staging)
        .map_err(|e| err(staging, format!("cannot list: {e}")))?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        files.push(ManifestFile {
            name: e.file_name().to_string_lossy().into_owned(),
            bytes: e.metadata().map(|m| m.len()).unwrap_or(0),
            sha256: sha256_file(&path)?,
        });
    }
    let manifest = Manifest {
        dataset: name,
        source: source.to_string(),
        files,
        train: dataset.train.len(),
        test: dataset.test.len(),
    };
    let text = ron::ser::to_string_pretty(&manifest, ron::ser::PrettyConfig::default())
        .map_err(|e| err(staging, format!("cannot write the manifest: {e}")))?;
    write_atomically(&staging.join(MANIFEST), text.as_bytes())?;
    let target = data_dir.join(name.as_str());
    let replaced = data_dir.join(format!(".replaced-{name}"));
    if target.exists() {
        if replaced.exists() {
            std::fs::remove_dir_all(&replaced)
                .map_err(|e| err(&replaced, format!("cannot clear: {e}")))?;
        }
        std::fs::rename(&target, &replaced)
            .map_err(|e| err(&target, format!("cannot move the old copy aside: {e}")))?;
    }
    std::fs::rename(staging, &target).map_err(|e| err(&target, format!("cannot create: {e}")))?;
    if replaced.exists() {
        std::fs::remove_dir_all(&replaced).ok();
    }
    Ok(manifest)
}

/// Extracts the entry's archive members from a downloaded or given archive into `into`.
fn extract(entry: &Entry, archive: &Path, into: &Path) -> Result<(), DataError> {
    let wanted: Vec<(&str, &str)> = entry
        .members
        .iter()
        .filter_map(|m| m.in_archive.map(|inside| (inside, m.file)))
        .collect();
    let file_name = |inside: &str| inside.rsplit('/').next().unwrap_or(inside).to_string();
    let mut found = Vec::new();
    if is_gzip(archive)? {
        // A tar.gz (CIFAR-10).
        for (name, bytes) in cifar::read_tar_gz_members(archive)? {
            if let Some((_, file)) = wanted.iter().find(|(inside, _)| file_name(inside) == name) {
                write_atomically(&into.join(file), &bytes)?;
                found.push(*file);
            }
        }
    } else {
        let file =
            std::fs::File::open(archive).map_err(|e| err(archive, format!("cannot open: {e}")))?;
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
            .map_err(|e| err(archive, format!("not a readable zip or tar.gz: {e}")))?;
        for (inside, file) in &wanted {
            let mut member = match zip.by_name(inside) {
                Ok(member) => member,
                Err(zip::result::ZipError::FileNotFound) => continue,
                Err(e) => return Err(err(archive, format!("member {inside}: {e}"))),
            };
            let target = into.join(file);
            let mut out = std::fs::File::create(&target)
                .map_err(|e| err(&target, format!("cannot write: {e}")))?;
            std::io::copy(&mut member, &mut out)
                .map_err(|e| err(archive, format!("member {inside} is corrupt: {e}")))?;
            found.push(*file);
        }
    }
    let missing: Vec<&str> = wanted
        .iter()
        .map(|(inside, _)| *inside)
        .filter(|inside| !found.iter().any(|f| file_name(inside) == *f))
        .collect();
    if !missing.is_empty() {
        return Err(err(
            archive,
            format!(
                "the archive lacks the expected member(s) {}",
                missing.join(", ")
            ),
        ));
    }
    Ok(())
}

/// What a fetch reports as it goes.
pub enum FetchEvent<'a> {
    /// Bytes of `file` so far, and its size when known.
    Progress {
        file: &'a str,
        done: u64,
        total: Option<u64>,
    },
    /// A download finished and matched its checksum.
    Verified { file: &'a str, bytes: u64 },
    /// A URL failed and the next one is tried.
    Retrying { url: &'a str, error: String },
}

/// Downloads a data set (from `mirror`, a base URL, when given), checks every file against
/// the publisher's checksum and installs the folder. A download cut off midway is kept in
/// `.partial/` and resumed by the next fetch; a file with the wrong checksum is deleted.
pub fn fetch(
    data_dir: &Path,
    name: DatasetName,
    mirror: Option<&str>,
    pace: &fetch::Pace,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<Manifest, DataError> {
    fetch_entry(data_dir, entry_for(name)?, mirror, pace, on_event)
}

/// [`fetch`] for a catalog entry given whole (tests serve small real files under their own
/// checksums and sizes).
pub fn fetch_entry(
    data_dir: &Path,
    entry: &Entry,
    mirror: Option<&str>,
    pace: &fetch::Pace,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<Manifest, DataError> {
    let name = entry.name;
    let partial = data_dir.join(PARTIAL).join(name.as_str());
    std::fs::create_dir_all(&partial).map_err(|e| err(&partial, format!("cannot create: {e}")))?;
    let agent = fetch::agent(pace);
    let mut sources = Vec::new();
    for download in entry.downloads {
        let done = partial.join(download.file);
        let part = partial.join(format!("{}.part", download.file));
        let urls = download.candidate_urls(mirror);
        sources.push(urls[0].clone());
        if done.is_file() && check_download(entry, download, &done).is_ok() {
            continue;
        }
        let mut last_error = None;
        for url in &urls {
            let mut report = |d: u64, t: Option<u64>| {
                on_event(FetchEvent::Progress {
                    file: download.file,
                    done: d,
                    total: t.or(download.bytes),
                })
            };
            match fetch::download(&agent, url, &part, download.max_bytes(), pace, &mut report) {
                Ok(_) => {
                    last_error = None;
                    break;
                }
                Err(e) => {
                    // A cut-off transfer keeps its bytes for a resume; anything else
                    // (404, refused connection) leaves nothing to resume from this URL.
                    if !e.resumable() {
                        std::fs::remove_file(&part).ok();
                    }
                    if url != urls.last().expect("at least one URL") {
                        on_event(FetchEvent::Retrying {
                            url,
                            error: e.to_string(),
                        });
                    }
                    last_error = Some(e);
                }
            }
        }
        if let Some(e) = last_error {
            return Err(err(&part, e.to_string()));
        }
        if let Err(e) = check_download(entry, download, &part) {
            std::fs::remove_file(&part).ok();
            return Err(err(
                &part,
                format!("{} (from {}); deleted it", e.message, urls[0]),
            ));
        }
        std::fs::rename(&part, &done).map_err(|e| err(&done, format!("cannot rename: {e}")))?;
        let bytes = std::fs::metadata(&done).map(|m| m.len()).unwrap_or(0);
        on_event(FetchEvent::Verified {
            file: download.file,
            bytes,
        });
    }
    let staging = staging_dir(data_dir, name);
    fresh_dir(&staging)?;
    let result = stage_downloads(entry, &partial, &staging)
        .and_then(|()| install(data_dir, name, &staging, &sources.join(" ")));
    match result {
        Ok(manifest) => {
            std::fs::remove_dir_all(&partial).ok();
            remove_if_empty(&data_dir.join(PARTIAL));
            Ok(manifest)
        }
        Err(e) => {
            std::fs::remove_dir_all(&staging).ok();
            Err(e)
        }
    }
}

fn remove_if_empty(dir: &Path) {
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none()) {
        std::fs::remove_dir(dir).ok();
    }
}

/// Puts the verified downloads' files into the staging folder: extracted from an archive,
/// or the download itself.
fn stage_downloads(entry: &Entry, partial: &Path, staging: &Path) -> Result<(), DataError> {
    for download in entry.downloads {
        let path = partial.join(download.file);
        if entry.members.iter().any(|m| m.in_archive.is_some()) {
            extract(entry, &path, staging)?;
        } else {
            let target = staging.join(download.file);
            std::fs::copy(&path, &target)
                .map_err(|e| err(&target, format!("cannot write: {e}")))?;
        }
    }
    Ok(())
}

/// Installs a data set from files the user already has: the distributed archive (checked
/// against the publisher's MD5), or a folder holding the data set's files (checked against
/// the content checksums where they are pinned, and by loading them).
pub fn import(data_dir: &Path, name: DatasetName, source: &Path) -> Result<Manifest, DataError> {
    let entry = entry_for(name)?;
    let staging = staging_dir(data_dir, name);
    std::fs::create_dir_all(data_dir).map_err(|e| err(data_dir, format!("cannot create: {e}")))?;
    fresh_dir(&staging)?;
    let result = stage_import(entry, source, &staging).and_then(|()| {
        let source = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
        install(
            data_dir,
            name,
            &staging,
            &format!("imported from {}", source.display()),
        )
    });
    if result.is_err() {
        std::fs::remove_dir_all(&staging).ok();
    }
    result
}

fn stage_import(entry: &Entry, source: &Path, staging: &Path) -> Result<(), DataError> {
    let archive_download = entry
        .downloads
        .iter()
        .find(|_| entry.members.iter().any(|m| m.in_archive.is_some()));
    if source.is_file() {
        let Some(download) = archive_download else {
            return Err(err(
                source,
                format!(
                    "is a file; {} is imported from a folder holding {}",
                    entry.name,
                    entry
                        .members
                        .iter()
                        .map(|m| m.file)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        check_download(entry, download, source)?;
        return extract(entry, source, staging);
    }
    if !source.is_dir() {
        return Err(err(source, "does not exist"));
    }
    if let Some(download) = archive_download {
        let archive = source.join(download.file);
        if archive.is_file() {
            check_download(entry, download, &archive)?;
            return extract(entry, &archive, staging);
        }
    }
    // The files themselves, possibly in the archive's folder layout, gzip or raw.
    for member in entry.members {
        let base = member.file.trim_end_matches(".gz");
        let inner = member
            .in_archive
            .and_then(|p| p.rsplit_once('/').map(|(dir, _)| dir));
        let candidates: Vec<PathBuf> = [Some(source.to_path_buf()), inner.map(|d| source.join(d))]
            .into_iter()
            .flatten()
            .flat_map(|dir| [dir.join(member.file), dir.join(base)])
            .collect();
        let Some(found) = candidates.iter().find(|p| p.is_file()) else {
            return Err(err(
                &source.join(member.file),
                format!("missing (looked for {} and {base})", member.file),
            ));
        };
        let file = found
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        check_member_content(entry, &file, found)?;
        std::fs::copy(found, staging.join(&file))
            .map_err(|e| err(&staging.join(&file), format!("cannot write: {e}")))?;
    }
    Ok(())
}

/// A data set folder's state, cheaply: sizes against the manifest, no hashing.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    Absent,
    /// Installed by fetch or import, and every file still has its recorded size.
    Installed(Manifest),
    /// Files without a manifest (placed by hand).
    Unmanaged,
    /// The manifest and the files disagree, or the manifest is unreadable.
    Damaged(String),
}

#[derive(Clone, Debug)]
pub struct Status {
    pub name: DatasetName,
    pub dir: PathBuf,
    pub state: State,
    pub bytes: u64,
    /// Bytes of downloads in progress (resumable) in `.partial/`.
    pub partial_bytes: u64,
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

pub fn status(data_dir: &Path, name: DatasetName) -> Status {
    let dir = data_dir.join(name.as_str());
    let partial_bytes = folder_bytes(&data_dir.join(PARTIAL).join(name.as_str()));
    let state = if !dir.is_dir() {
        State::Absent
    } else {
        match read_manifest(&dir) {
            Err(e) => State::Damaged(e.to_string()),
            Ok(None) => State::Unmanaged,
            Ok(Some(manifest)) => {
                let bad = manifest.files.iter().find_map(|f| {
                    match std::fs::metadata(dir.join(&f.name)).map(|m| m.len()) {
                        Ok(n) if n == f.bytes => None,
                        Ok(n) => Some(format!(
                            "{} is {n} bytes, the manifest says {}",
                            f.name, f.bytes
                        )),
                        Err(_) => Some(format!("{} is missing", f.name)),
                    }
                });
                match bad {
                    Some(problem) => State::Damaged(problem),
                    None => State::Installed(manifest),
                }
            }
        }
    };
    Status {
        name,
        bytes: folder_bytes(&dir),
        dir,
        state,
        partial_bytes,
    }
}

/// Re-hashes every file against the manifest and the published content checksums, then
/// loads the data set. Returns lines for the user; any mismatch is an error naming the file.
pub fn verify(data_dir: &Path, name: DatasetName) -> Result<Vec<String>, DataError> {
    let entry = entry_for(name)?;
    let dir = data_dir.join(name.as_str());
    if !dir.is_dir() {
        return Err(err(
            &dir,
            format!("missing: `skiplab data fetch {name}` downloads it"),
        ));
    }
    let mut lines = Vec::new();
    match read_manifest(&dir)? {
        Some(manifest) => {
            for f in &manifest.files {
                let path = dir.join(&f.name);
                let got = sha256_file(&path)?;
                if got != f.sha256 {
                    return Err(err(
                        &path,
                        format!("sha256 {got} differs from the manifest's {}; the file changed since it was installed", f.sha256),
                    ));
                }
            }
            lines.push(format!(
                "{} files match the manifest ({})",
                manifest.files.len(),
                manifest.source
            ));
        }
        None => lines.push("no manifest (files placed by hand)".to_string()),
    }
    let mut pinned = 0;
    for member in entry.members.iter().filter(|m| m.content_sha256.is_some()) {
        let path = super::idx::find(&dir, member.file.trim_end_matches(".gz"))?;
        let file = path
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        check_member_content(entry, &file, &path)?;
        pinned += 1;
    }
    if pinned > 0 {
        lines.push(format!(
            "{pinned} files match the published content checksums"
        ));
    }
    let dataset = load_from(name, &dir)?;
    let (train, test) = (dataset.train.len(), dataset.test.len());
    let mut loaded = format!(
        "loads: {train} training and {test} test images of {}, {} classes",
        dataset.shape,
        dataset.class_names.len()
    );
    if (train, test) != entry.counts {
        loaded.push_str(&format!(
            " (the published data set has {} and {}: this is a subset)",
            entry.counts.0, entry.counts.1
        ));
    }
    lines.push(loaded);
    Ok(lines)
}

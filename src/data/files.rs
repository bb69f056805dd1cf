//! Reading data files, and naming what is there when it is not a file.

use std::path::Path;

use super::dataset::DataError;

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

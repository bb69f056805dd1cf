//! The IDX container used by MNIST, Fashion-MNIST and EMNIST, raw or gzip-compressed.
//!
//! Big-endian header: two zero bytes, a type byte (0x08 = u8), the number of dimensions, then
//! one u32 per dimension, then the data. Every structural problem is an error that names the
//! file and the offending field or offset.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::dataset::DataError;

/// A decoded IDX file of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Decompresses `bytes` when they start with the gzip magic, else returns them as they are.
pub fn maybe_gunzip(bytes: &[u8], origin: &Path) -> Result<Vec<u8>, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| DataError::new(origin, format!("gzip stream is corrupt: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// Parses an IDX array of u8 with `expected_rank` dimensions.
pub fn parse(bytes: &[u8], expected_rank: usize, origin: &Path) -> Result<IdxArray, DataError> {
    let err = |msg: String| DataError::new(origin, msg);
    if bytes.len() < 4 {
        return Err(err(format!(
            "file is {} bytes long, too short for an IDX header",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(err(format!(
            "bad magic number {:02x}{:02x}{:02x}{:02x} at offset 0 (expected 0000 08 0{expected_rank}); not an IDX file",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(err(format!(
            "element type 0x{:02x} at offset 2 is not supported (expected 0x08, unsigned bytes)",
            bytes[2]
        )));
    }
    let rank = bytes[3] as usize;
    if rank != expected_rank {
        return Err(err(format!(
            "has {rank} dimensions at offset 3, expected {expected_rank} ({})",
            if expected_rank == 1 {
                "labels"
            } else {
                "images"
            }
        )));
    }
    let header_len = 4 + 4 * rank;
    if bytes.len() < header_len {
        return Err(err(format!(
            "truncated header: {} bytes, need {header_len}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let body_len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| err(format!("dimensions {dims:?} overflow")))?;
    let available = bytes.len() - header_len;
    if available < body_len {
        return Err(err(format!(
            "truncated body: header says {dims:?} = {body_len} bytes, file has {available} after the header (ends at offset {})",
            bytes.len()
        )));
    }
    if available > body_len {
        return Err(err(format!(
            "header says {dims:?} = {body_len} bytes but {available} follow the header; the counts disagree with the file size"
        )));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header_len..].to_vec(),
    })
}

/// Reads and parses an IDX file from disk (gzip detected by content, not by name).
pub fn read_file(path: &Path, expected_rank: usize) -> Result<IdxArray, DataError> {
    let bytes = super::files::read_data_file(path)?;
    parse(&maybe_gunzip(&bytes, path)?, expected_rank, path)
}

/// Finds `name` or `name.gz` in `dir`.
pub fn find(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        Ok(gz)
    } else if plain.is_file() {
        Ok(plain)
    } else if let Some((path, what)) = [&gz, &plain]
        .into_iter()
        .find_map(|p| super::files::not_a_file(p).map(|what| (p, what)))
    {
        // Something is there, only not a file: say what, rather than "missing".
        Err(DataError::new(path, format!("is {what}, not a data file")))
    } else {
        Err(DataError::new(
            &plain,
            format!("missing (looked for {name} and {name}.gz)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: u32, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, 1];
        v.extend(n.to_be_bytes());
        v.extend(body);
        v
    }

    #[test]
    fn parses_labels_and_rejects_bad_headers() {
        let p = Path::new("x.idx");
        let ok = parse(&labels(3, &[1, 2, 3]), 1, p).unwrap();
        assert_eq!(ok.dims, vec![3]);
        assert_eq!(ok.data, vec![1, 2, 3]);

        let short = parse(&labels(4, &[1, 2, 3]), 1, p).unwrap_err().to_string();
        assert!(
            short.contains("x.idx") && short.contains("truncated body"),
            "{short}"
        );
        let long = parse(&labels(2, &[1, 2, 3]), 1, p).unwrap_err().to_string();
        assert!(long.contains("disagree"), "{long}");
        let mut bad = labels(3, &[1, 2, 3]);
        bad[0] = 0x1f;
        assert!(parse(&bad, 1, p).unwrap_err().to_string().contains("magic"));
        assert!(parse(&labels(3, &[1, 2, 3]), 3, p)
            .unwrap_err()
            .to_string()
            .contains("dimensions"));
        assert!(parse(&[0, 0], 1, p).is_err());
    }
}

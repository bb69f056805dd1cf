//! Downloading one file over HTTP(S) into a `.part` file, resuming where an earlier attempt
//! stopped (HTTP range requests) or restarting when the server cannot resume.
//!
//! Nothing here decides whether the bytes are right: the caller checks the finished `.part`
//! against the publisher's checksum before anything is renamed into a data set folder.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Why a download did not finish.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: HTTP {status}")]
    Http { url: String, status: u16 },
    #[error("{url}: {message}")]
    Connection { url: String, message: String },
    /// The connection ended early; the bytes so far are kept for the next attempt.
    #[error("{url}: connection lost after {got} of {} bytes ({message}); run the same command again to resume", expected.map_or("?".to_string(), |e| e.to_string()))]
    Interrupted {
        url: String,
        got: u64,
        expected: Option<u64>,
        message: String,
    },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// The transfer went slower than the minimum rate over a whole window; the bytes so far
    /// are kept for the next attempt.
    #[error("{url}: {got_in_window} bytes in the last {} s, under the minimum of {min_rate} bytes/s (--min-rate); the bytes so far ({got}) are kept: run the same command again to resume, or try another --mirror", window.as_secs())]
    TooSlow {
        url: String,
        got: u64,
        got_in_window: u64,
        window: Duration,
        min_rate: u64,
    },
    /// The whole download took longer than its deadline; the bytes so far are kept.
    #[error("{url}: not finished within the deadline of {} (--deadline) after {got} bytes; they are kept: run the same command again to resume", humantime::format_duration(*deadline))]
    Deadline {
        url: String,
        got: u64,
        deadline: Duration,
    },
    /// The server offers (or sent) more than the file can be; nothing is kept.
    #[error(
        "{url}: the server offers {bytes} bytes, more than the {limit} this file can be; refused"
    )]
    TooLarge { url: String, bytes: u64, limit: u64 },
}

impl FetchError {
    fn io(path: &Path, e: std::io::Error) -> Self {
        FetchError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

impl FetchError {
    /// Whether the bytes received so far are worth keeping for a resume.
    pub fn resumable(&self) -> bool {
        matches!(
            self,
            FetchError::Interrupted { .. }
                | FetchError::TooSlow { .. }
                | FetchError::Deadline { .. }
        )
    }
}

/// Progress of one file: bytes so far and the total when known.
pub type OnProgress<'a> = &'a mut dyn FnMut(u64, Option<u64>);

/// How slow a download may be: a mirror that trickles (a byte every 20 s passes any per-read
/// timeout) is given up on once a whole `window` brings fewer than `min_rate` bytes a second,
/// and a download of one file ends at `deadline` if it has one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Bytes per second, averaged over `window`.
    pub min_rate: u64,
    pub window: Duration,
    pub deadline: Option<Duration>,
}

impl Default for Pace {
    /// 1 KiB/s over a minute, no deadline.
    fn default() -> Self {
        Pace {
            min_rate: 1024,
            window: Duration::from_secs(60),
            deadline: None,
        }
    }
}

pub fn agent(pace: &Pace) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A stalled transfer fails (and can resume) instead of hanging forever.
        .timeout_per_read(Some(pace.window.min(Duration::from_secs(60))))
        .timeout_global(pace.deadline)
        .user_agent(concat!("skiplab/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Downloads `url` into `part`, appending to what `part` already holds when the server
/// honours a range request, and refusing to hold more than `max_bytes`. Returns the final
/// size.
pub fn download(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    max_bytes: u64,
    pace: &Pace,
    on_progress: OnProgress,
) -> Result<u64, FetchError> {
    let started = Instant::now();
    let past_deadline = |got: u64| {
        pace.deadline
            .filter(|&d| started.elapsed() >= d)
            .map(|deadline| FetchError::Deadline {
                url: url.to_string(),
                got,
                deadline,
            })
    };
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request.call().map_err(|e| {
        past_deadline(have).unwrap_or(FetchError::Connection {
            url: url.to_string(),
            message: e.to_string(),
        })
    })?;
    let status = response.status().as_u16();
    let content_length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (mut file, start) = match status {
        206 if have > 0 => (
            OpenOptions::new()
                .append(true)
                .open(part)
                .map_err(|e| FetchError::io(part, e))?,
            have,
        ),
        // The part is already whole: the server has nothing past its end.
        416 if have > 0 => return Ok(have),
        200 => (File::create(part).map_err(|e| FetchError::io(part, e))?, 0),
        _ => {
            return Err(FetchError::Http {
                url: url.to_string(),
                status,
            })
        }
    };
    let expected = content_length.map(|n| n.saturating_add(start));
    let too_large = |bytes: u64| FetchError::TooLarge {
        url: url.to_string(),
        bytes,
        limit: max_bytes,
    };
    if let Some(claimed) = expected.filter(|&n| n > max_bytes) {
        return Err(too_large(claimed));
    }
    let mut body = response.into_body().into_reader();
    let mut done = start;
    let mut buffer = vec![0u8; 256 * 1024];
    let (mut window_start, mut window_bytes) = (Instant::now(), 0u64);
    on_progress(done, expected);
    loop {
        let n = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                file.flush().map_err(|e| FetchError::io(part, e))?;
                return Err(past_deadline(done).unwrap_or(FetchError::Interrupted {
                    url: url.to_string(),
                    got: done,
                    expected,
                    message: e.to_string(),
                }));
            }
        };
        done += n as u64;
        if done > max_bytes {
            // A server that sends more than it announced (or announced nothing).
            return Err(too_large(done));
        }
        file.write_all(&buffer[..n])
            .map_err(|e| FetchError::io(part, e))?;
        on_progress(done, expected);
        window_bytes += n as u64;
        if let Some(e) = past_deadline(done) {
            file.flush().map_err(|e| FetchError::io(part, e))?;
            return Err(e);
        }
        if window_start.elapsed() >= pace.window {
            let needed = pace.min_rate.saturating_mul(pace.window.as_secs().max(1));
            if window_bytes < needed {
                file.flush().map_err(|e| FetchError::io(part, e))?;
                return Err(FetchError::TooSlow {
                    url: url.to_string(),
                    got: done,
                    got_in_window: window_bytes,
                    window: pace.window,
                    min_rate: pace.min_rate,
                });
            }
            (window_start, window_bytes) = (Instant::now(), 0);
        }
    }
    file.sync_all().map_err(|e| FetchError::io(part, e))?;
    if let Some(expected) = expected {
        if done < expected {
            return Err(FetchError::Interrupted {
                url: url.to_string(),
                got: done,
                expected: Some(expected),
                message: "the server closed the connection early".into(),
            });
        }
    }
    Ok(done)
}

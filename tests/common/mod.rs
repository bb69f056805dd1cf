//! Running the real binary from tests.

use std::path::Path;
use std::process::Command;

/// Runs `skiplab` with `args`, the user's SKIPLAB_* settings cleared and `env` set; returns
/// the exit code, stdout and stderr.
pub fn skiplab(args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skiplab"));
    command.args(args);
    for var in [
        "SKIPLAB_DATA_DIR",
        "SKIPLAB_DATA_MIRROR",
        "SKIPLAB_SAVES_DIR",
    ] {
        command.env_remove(var);
    }
    for (var, value) in env {
        command.env(var, value);
    }
    let out = command.output().expect("run skiplab");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

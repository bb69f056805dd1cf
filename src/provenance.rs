//! What made a run: the program (version, commit), the machine (CPU model and features,
//! threads) and the request (the exact command, or the lab action), recorded in each run's
//! `summary.ron` so a result can be reported with its methods, and so `compare` can warn when
//! the runs it tests come from different builds or devices.

use serde::{Deserialize, Serialize};

/// The build and machine a run trained on, and what asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// skiplab's version.
    pub version: String,
    /// `git describe` of the checkout it was built from (`-modified` when it had changes);
    /// absent for a build outside a checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The CPU's model name.
    pub cpu: String,
    /// The SIMD features the kernels can use here (`avx2 fma avx512f`).
    pub cpu_features: String,
    /// Threads of the CPU kernels' pool.
    pub threads: usize,
    /// The command line that started the run, or the lab action.
    pub command: String,
    /// When the run ended, RFC 3339 UTC (absent while it runs, or if it was killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
}

impl Provenance {
    /// This build on this machine, for a run that `command` started.
    pub fn here(command: impl Into<String>) -> Self {
        Provenance {
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: build_commit(),
            cpu: cpu_model(),
            cpu_features: cpu_features().join(" "),
            threads: rayon::current_num_threads(),
            command: command.into(),
            ended: None,
        }
    }

    /// The build as one word: `0.1.0 (2be9d21)`.
    pub fn build(&self) -> String {
        match &self.commit {
            Some(c) => format!("{} ({c})", self.version),
            None => self.version.clone(),
        }
    }
}

/// The commit this binary was built from, when it was built in a git checkout.
pub fn build_commit() -> Option<String> {
    let described: &str =
        git_version::git_version!(args = ["--always", "--dirty=-modified"], fallback = "");
    (!described.is_empty()).then(|| described.to_string())
}

/// The process's command line, quoted so it can be run again.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| args.join(" "))
}

/// The CPU's model name (`/proc/cpuinfo` on Linux; the architecture elsewhere).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The SIMD features skiplab's kernels (and gemm's) choose between, those this CPU has.
pub fn cpu_features() -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut found = Vec::new();
        macro_rules! probe {
            ($($f:tt),*) => {$(
                if std::arch::is_x86_feature_detected!($f) {
                    found.push($f);
                }
            )*};
        }
        probe!("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl");
        found
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_names_this_build_and_machine_and_round_trips() {
        let p = Provenance::here("skiplab train --epochs 1");
        assert_eq!(p.version, env!("CARGO_PKG_VERSION"));
        assert!(!p.cpu.is_empty() && p.threads >= 1);
        let text = ron::to_string(&p).unwrap();
        assert_eq!(ron::from_str::<Provenance>(&text).unwrap(), p);
        assert!(p.build().starts_with(&p.version));
    }
}

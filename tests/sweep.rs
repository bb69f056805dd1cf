//! Sweeps end to end through the real binary: planned, trained here, killed and resumed,
//! emitted for GNU parallel and Slurm (and run through them where installed: those tests are
//! `#[ignore]`d, `.ci/run` installs both and runs them), merged from several folders.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skiplab::runs;
use skiplab::train::{RunState, RunStatus};

/// A 2 x 2 x 2 sweep (lr x skips x seeds) of a tiny MLP on the built-in data.
fn write_sweep(dir: &Path, epochs: usize) -> PathBuf {
    std::fs::write(
        dir.join("base.ron"),
        r#"(
    description: "a tiny MLP",
    dataset: "builtin",
    model: Mlp(widths: [16, 16], skips: "none"),
    optimizer: Sgd(lr: 0.01, momentum: 0.9),
    batch: 64,
    epochs: 1,
)"#,
    )
    .unwrap();
    let path = dir.join("tiny.ron");
    std::fs::write(
        &path,
        format!(
            r#"(base: "base.ron", epochs: Some({epochs}), lr: [0.01, 0.05], skips: ["none", "all"], seeds: [1, 2])"#
        ),
    )
    .unwrap();
    path
}

/// A temp folder holding the tiny sweep (`epochs` each), the sweep file's path, and the
/// folder its runs are saved in.
fn tiny_sweep(epochs: usize) -> (tempfile::TempDir, String, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_sweep(tmp.path(), epochs);
    let saves = tmp.path().join("saves");
    (tmp, file.to_str().unwrap().to_string(), saves)
}

fn skiplab(args: &[&str], saves: &Path) -> (i32, String, String) {
    common::skiplab(args, &[("SKIPLAB_SAVES_DIR", saves)])
}

/// `sweep emit FILE --parallel -o JOBS` for runs saved in `saves`.
fn emit_job_list(file: &str, jobs: &Path, saves: &Path) {
    let args = [
        "sweep",
        "emit",
        file,
        "--parallel",
        "-o",
        jobs.to_str().unwrap(),
    ];
    let (code, _, err) = skiplab(&args, saves);
    assert_eq!(code, 0, "{err}");
}

/// `skiplab ARGS` watching `saves` in the background (stdout piped).
fn watching(args: &[&str], saves: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_skiplab"))
        .args(args)
        .env("SKIPLAB_SAVES_DIR", saves)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a watching process to exit by itself (at most `limit`); its JSON lines.
fn watched(mut child: std::process::Child, limit: Duration) -> Vec<serde_json::Value> {
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().ok();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the watch did not end: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every run of the tiny sweep reached `finished` in the watch's lines, each found once.
fn saw_every_run_finish(lines: &[serde_json::Value]) {
    let mut finished: Vec<&str> = lines
        .iter()
        .filter(|l| l["status"] == "finished" && (l["event"] == "ended" || l["event"] == "found"))
        .map(|l| l["run"].as_str().unwrap())
        .collect();
    finished.sort();
    finished.dedup();
    assert_eq!(finished.len(), 8, "{lines:#?}");
    for id in finished {
        let found = lines
            .iter()
            .filter(|l| l["run"] == id && l["event"] == "found")
            .count();
        assert_eq!(found, 1, "{id}: {lines:#?}");
    }
}

fn finished(saves: &Path) -> Vec<String> {
    let mut ids: Vec<String> = runs::list_runs(saves)
        .into_iter()
        .flatten()
        .filter(|r| r.summary.status == RunState::Ended(RunStatus::Finished))
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn plan_lists_eight_runs_with_stable_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_sweep(tmp.path(), 1);
    let saves = tmp.path().join("saves");
    let (code, out, err) = skiplab(&["sweep", "plan", file.to_str().unwrap()], &saves);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sweep tiny: 8 runs"), "{out}");
    assert!(out.contains("    0  tiny-lr0.01-sknone-s1"), "{out}");
    assert!(out.contains("    7  tiny-lr0.05-skall-s2"), "{out}");
    assert!(out.contains("0 done, 8 to train"), "{out}");
    let broken = tmp.path().join("broken.ron");
    std::fs::write(&broken, r#"(base: "base.ron", lr: [0.01, "x"])"#).unwrap();
    let (code, _, err) = skiplab(&["sweep", "plan", broken.to_str().unwrap()], &saves);
    assert_eq!(code, 2);
    assert!(err.contains("broken.ron:1:"), "{err}");
}

#[test]
fn a_killed_sweep_reruns_only_the_missing_runs_and_reports_all_eight() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_sweep(tmp.path(), 3);
    let saves = tmp.path().join("saves");
    let mut child = Command::new(env!("CARGO_BIN_EXE_skiplab"))
        .args(["sweep", "run", file.to_str().unwrap()])
        .env("SKIPLAB_SAVES_DIR", &saves)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while finished(&saves).len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "3 runs in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = finished(&saves);
    assert!((3..8).contains(&before.len()), "{before:?}");
    let stamp = |id: &str| {
        let path = saves.join(id).join(runs::SUMMARY);
        (
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            std::fs::read_to_string(&path).unwrap(),
        )
    };
    let stamps: Vec<_> = before.iter().map(|id| stamp(id)).collect();

    let (code, out, err) = skiplab(
        &["sweep", "run", file.to_str().unwrap(), "--parallel", "2"],
        &saves,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let trained = 8 - before.len();
    assert!(
        out.contains(&format!(
            "{} done, {trained} to train here (2 at a time)",
            before.len()
        )),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with('[')).count(),
        trained,
        "one line per trained run:\n{out}"
    );
    assert_eq!(finished(&saves).len(), 8);
    for (id, old) in before.iter().zip(stamps) {
        assert_eq!(stamp(id), old, "{id} was left alone");
    }
    assert!(out.contains("8 runs planned, 8 done."), "{out}");
    // The report: four configurations of two seeds, the base first.
    assert!(
        out.contains("| lr 0.01 · skips none | 2 |") && out.contains("(base) |"),
        "{out}"
    );
    assert!(out.contains("| lr 0.05 · skips all | 2 |"), "{out}");
    assert!(out.contains("- lr: **"), "best per axis:\n{out}");
    assert!(out.contains("- skips: **"), "{out}");

    // Nothing left: a third run trains nothing, emit writes nothing.
    let (code, out, _) = skiplab(&["sweep", "run", file.to_str().unwrap()], &saves);
    assert_eq!(code, 0);
    assert!(out.contains("8 done, 0 to train here"), "{out}");
    let (code, out, _) = skiplab(
        &["sweep", "emit", file.to_str().unwrap(), "--slurm"],
        &saves,
    );
    assert_eq!(code, 0);
    assert!(out.contains("all 8 runs are done"), "{out}");
}

#[test]
fn a_task_trains_one_run_and_leaves_a_finished_one_alone() {
    let (_tmp, file, saves) = tiny_sweep(1);
    let file = file.as_str();
    let (code, out, err) = skiplab(&["sweep", "task", file, "--index", "5"], &saves);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(finished(&saves), vec!["tiny-lr0.05-sknone-s2".to_string()]);
    let (code, out, _) = skiplab(&["sweep", "task", file, "--index", "5"], &saves);
    assert_eq!(code, 0);
    assert!(
        out.contains("tiny-lr0.05-sknone-s2: already finished"),
        "{out}"
    );
    let (code, _, err) = skiplab(&["sweep", "task", file, "--index", "8"], &saves);
    assert_eq!(code, 2);
    assert!(
        err.contains("--index 8: the sweep has 8 runs (0 to 7)"),
        "{err}"
    );
    // An unfinished attempt is trained again from the start.
    let summary = saves.join("tiny-lr0.05-sknone-s2").join(runs::SUMMARY);
    let text = std::fs::read_to_string(&summary).unwrap();
    std::fs::write(&summary, text.replace("Finished", "Running")).unwrap();
    let (code, out, err) = skiplab(&["sweep", "task", file, "--index", "5"], &saves);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(finished(&saves).len(), 1);
    // Another experiment under the same id (the base changed) is refused, not overwritten.
    let experiment = saves.join("tiny-lr0.05-sknone-s2").join(runs::EXPERIMENT);
    let text = std::fs::read_to_string(&experiment).unwrap();
    std::fs::write(&experiment, text.replace("batch: 64", "batch: 32")).unwrap();
    let (code, _, err) = skiplab(&["sweep", "task", file, "--index", "5"], &saves);
    assert_eq!(code, 2);
    assert!(err.contains("holds another experiment"), "{err}");
}

#[test]
fn emit_writes_a_slurm_array_of_the_unfinished_runs_and_a_parallel_job_list() {
    let (tmp, file, saves) = tiny_sweep(1);
    let file = file.as_str();
    for index in ["0", "1", "6"] {
        let (code, _, err) = skiplab(&["sweep", "task", file, "--index", index], &saves);
        assert_eq!(code, 0, "{err}");
    }
    let script = tmp.path().join("tiny.sbatch");
    let (code, out, err) = skiplab(
        &[
            "sweep",
            "emit",
            file,
            "--slurm",
            "--max-parallel",
            "2",
            "--partition",
            "short",
            "--gpus",
            "1",
            "-o",
            script.to_str().unwrap(),
        ],
        &saves,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("5 of 8 runs to train"), "{out}");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.starts_with("#!/bin/bash\n"), "{text}");
    for line in [
        "#SBATCH --array=2-5,7%2",
        "#SBATCH --partition=short",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --cpus-per-task=2",
        "--index \"$SLURM_ARRAY_TASK_ID\"",
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }
    assert!(text.contains(&format!(
        "sweep task {}",
        std::path::absolute(file).unwrap().display()
    )));
    assert!(
        saves.join("slurm-logs").is_dir(),
        "sbatch needs the log folder"
    );
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(syntax.success(), "bash -n {}", script.display());

    let jobs = tmp.path().join("tiny.jobs");
    emit_job_list(file, &jobs, &saves);
    let lines: Vec<String> = std::fs::read_to_string(&jobs)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 5);
    assert!(
        lines[0].ends_with("--index 2") && lines[4].ends_with("--index 7"),
        "{lines:?}"
    );
    // Each line is a command a shell runs as is: run the first one.
    let status = Command::new("bash")
        .arg("-c")
        .arg(&lines[0])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(finished(&saves).len(), 4);
}

#[test]
fn runs_from_several_folders_merge_for_runs_report_and_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_sweep(tmp.path(), 1);
    let file = file.to_str().unwrap();
    // Two "machines", four runs each.
    for (machine, indices) in [("m1", ["0", "2", "4", "6"]), ("m2", ["1", "3", "5", "7"])] {
        let saves = tmp.path().join(machine).join("saves");
        for index in indices {
            let (code, _, err) = skiplab(&["sweep", "task", file, "--index", index], &saves);
            assert_eq!(code, 0, "{err}");
        }
    }
    let pattern = tmp.path().join("m*").join("saves");
    let pattern = pattern.to_str().unwrap();
    let nowhere = tmp.path().join("nowhere");
    let (code, out, err) = common::skiplab(
        &["sweep", "report", file, "--saves", pattern],
        &[("SKIPLAB_SAVES_DIR", &nowhere)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("8 runs planned, 8 done."), "{out}");
    let m1 = tmp.path().join("m1/saves");
    let m2 = tmp.path().join("m2/saves");
    let (code, out, err) = common::skiplab(
        &[
            "runs",
            "--saves",
            m1.to_str().unwrap(),
            "--saves",
            m2.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 8, "{out}");
    // compare finds ids in either folder.
    let (code, out, err) = common::skiplab(
        &[
            "compare",
            "tiny-lr0.01-sknone-s1",
            "tiny-lr0.01-sknone-s2",
            "--saves",
            pattern,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("seed"), "{out}");
    // A run copied to both folders is listed once.
    let copy = m2.join("tiny-lr0.01-sknone-s1");
    std::fs::create_dir(&copy).unwrap();
    for f in [runs::EXPERIMENT, runs::SUMMARY, runs::METRICS] {
        std::fs::copy(m1.join("tiny-lr0.01-sknone-s1").join(f), copy.join(f)).unwrap();
    }
    let (_, out, err) = common::skiplab(&["runs", "--saves", pattern, "--json"], &[]);
    assert_eq!(out.lines().count(), 8, "{out}");
    assert!(err.contains("also in an earlier --saves folder"), "{err}");
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
#[ignore = "needs GNU parallel (Debian's `parallel`); .ci/run installs it"]
fn gnu_parallel_runs_the_sweep() {
    assert!(
        have("parallel"),
        "GNU parallel is not installed (apt-get install parallel)"
    );
    let (tmp, file, saves) = tiny_sweep(1);
    let jobs = tmp.path().join("tiny.jobs");
    let file = file.as_str();
    emit_job_list(file, &jobs, &saves);
    let watch = watching(&["runs", "--watch", "--json", "--until-ended", "8"], &saves);
    let out = Command::new("parallel")
        .args(["--will-cite", "--jobs", "2", "--halt", "now,fail=1"])
        .stdin(std::fs::File::open(&jobs).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "parallel: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(finished(&saves).len(), 8);
    saw_every_run_finish(&watched(watch, Duration::from_secs(30)));
    let (code, out, err) = skiplab(&["sweep", "report", file], &saves);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("8 runs planned, 8 done."), "{out}");
}

/// `sweep watch` and `runs --watch` beside a `sweep run` in another process: each sees every
/// planned run reach its end and exits by itself (the sweep's when all are done), with file
/// notification and with polling alone.
#[test]
fn sweep_watch_and_runs_watch_follow_a_sweep_trained_by_another_process() {
    for poll in [false, true] {
        let (_tmp, file, saves) = tiny_sweep(2);
        let file = file.as_str();
        let mut sweep_args = vec!["sweep", "watch", file, "--json"];
        let mut runs_args = vec!["runs", "--watch", "--json", "--until-ended", "8"];
        if poll {
            sweep_args.push("--poll");
            runs_args.push("--poll");
        }
        let sweep_watch = watching(&sweep_args, &saves);
        let runs_watch = watching(&runs_args, &saves);
        let (code, _, err) = skiplab(&["sweep", "run", file, "--parallel", "2"], &saves);
        assert_eq!(code, 0, "{err}");
        let lines = watched(sweep_watch, Duration::from_secs(30));
        let best = lines
            .iter()
            .rfind(|l| l["event"] == "best")
            .expect("a best line");
        assert_eq!(
            (best["seeds"].as_u64(), best["planned"].as_u64()),
            (Some(2), Some(2)),
            "{best}"
        );
        assert!(
            best["configuration"].as_str().unwrap().contains("lr"),
            "{best}"
        );
        let lines: Vec<serde_json::Value> =
            lines.into_iter().filter(|l| l["event"] != "best").collect();
        saw_every_run_finish(&lines);
        let mut indices: Vec<u64> = lines.iter().filter_map(|l| l["index"].as_u64()).collect();
        indices.sort();
        indices.dedup();
        assert_eq!(indices, (0..8).collect::<Vec<u64>>());
        // Epochs arrive in order for each run (those not already in its `found`).
        for id in lines.iter().filter_map(|l| l["run"].as_str()) {
            let epochs: Vec<u64> = lines
                .iter()
                .filter(|l| l["run"] == id && l["event"] == "epoch")
                .map(|l| l["epoch"].as_u64().unwrap())
                .collect();
            assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{id}: {epochs:?}");
        }
        saw_every_run_finish(&watched(runs_watch, Duration::from_secs(30)));
    }
}

/// A single-node Slurm cluster on localhost (munged, slurmctld, slurmd from a config written
/// here, ports 16817/16818), stopped when dropped.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    munged: std::process::Child,
}

impl Cluster {
    fn start(dir: &Path) -> Result<Self, String> {
        for program in ["munged", "slurmctld", "slurmd", "sbatch", "scontrol"] {
            if !have(program) {
                return Err(format!(
                    "{program} is not installed (apt-get install slurm-wlm munge)"
                ));
            }
        }
        let host = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        for sub in ["state", "spool", "log", "munge"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // munged with its own key and socket, so nothing of the machine's is touched.
        let key = dir.join("munge/munge.key");
        std::fs::write(
            &key,
            (0..1024).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>(),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.join("munge"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let socket = dir.join("munge/munge.socket");
        let munged = Command::new("munged")
            .arg("--foreground")
            .arg("--force")
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                dir.join("munge/munged.pid").display()
            ))
            .arg(format!(
                "--log-file={}",
                dir.join("munge/munged.log").display()
            ))
            .arg(format!(
                "--seed-file={}",
                dir.join("munge/munged.seed").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start munged: {e}"))?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let d = dir.display();
        let conf = dir.join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=skiplab-test\nSlurmctldHost={host}\nSlurmUser=root\nSlurmdUser=root\n\
                 AuthType=auth/munge\nAuthInfo=socket={}\nCredType=cred/munge\n\
                 StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
                 SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
                 SlurmctldLogFile={d}/log/slurmctld.log\nSlurmdLogFile={d}/log/slurmd.log\n\
                 SlurmctldPort=16817\nSlurmdPort=16818\nProctrackType=proctrack/linuxproc\n\
                 TaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n\
                 AccountingStorageType=accounting_storage/none\nSelectType=select/cons_tres\n\
                 SelectTypeParameters=CR_Core\nMpiDefault=none\nReturnToService=2\n\
                 NodeName={host} CPUs={cpus} RealMemory=2000 State=UNKNOWN\n\
                 PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
                socket.display()
            ),
        )
        .unwrap();
        let cluster = Cluster {
            dir: dir.to_path_buf(),
            conf,
            munged,
        };
        let start = Instant::now();
        while !socket.exists() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "munged did not start: {}",
                    cluster.log("munge/munged.log")
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for daemon in ["slurmctld", "slurmd"] {
            let status = Command::new(daemon)
                .env("SLURM_CONF", &cluster.conf)
                .status()
                .map_err(|e| format!("cannot start {daemon}: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "{daemon} exited with {status}: {}",
                    cluster.log(&format!("log/{daemon}.log"))
                ));
            }
        }
        // Ready when the node is idle.
        while !cluster
            .command("sinfo", &["-h", "-o", "%t"])
            .contains("idle")
        {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "the node did not come up: {}",
                    cluster.log("log/slurmctld.log")
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(cluster)
    }

    fn command(&self, program: &str, args: &[&str]) -> String {
        Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.command("scontrol", &["shutdown"]);
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.munged.kill();
        let _ = self.munged.wait();
    }
}

#[test]
#[ignore = "needs Slurm and munge (Debian's slurm-wlm, munge) and root; .ci/run installs them"]
fn a_single_node_slurm_runs_the_sweep_as_a_job_array() {
    let tmp = tempfile::tempdir().unwrap();
    // Slurm that cannot start here (not root, no packages) skips, saying exactly why; the
    // script itself is checked by emit_writes_a_slurm_array_of_the_unfinished_runs_....
    let cluster = match Cluster::start(&tmp.path().join("slurm")) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED: Slurm cannot start on this machine: {why}");
            return;
        }
    };
    let file = write_sweep(tmp.path(), 1);
    let saves = tmp.path().join("saves");
    let script = tmp.path().join("tiny.sbatch");
    let file = file.to_str().unwrap();
    let (code, _, err) = skiplab(
        &[
            "sweep",
            "emit",
            file,
            "--slurm",
            "--max-parallel",
            "2",
            "--cpus",
            "1",
            "--mem",
            "500M",
            "-o",
            script.to_str().unwrap(),
        ],
        &saves,
    );
    assert_eq!(code, 0, "{err}");
    let watch = watching(&["runs", "--watch", "--json", "--until-ended", "8"], &saves);
    let out = Command::new("sbatch")
        .arg("--wait")
        .arg(&script)
        .env("SLURM_CONF", &cluster.conf)
        .output()
        .unwrap();
    let logs: Vec<String> = std::fs::read_dir(saves.join("slurm-logs"))
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        out.status.success(),
        "sbatch: {}{}\ntask logs:\n{}\nslurmd: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        logs.join("\n---\n"),
        cluster.log("log/slurmd.log")
    );
    assert_eq!(logs.len(), 8, "one log per array task");
    assert_eq!(finished(&saves).len(), 8);
    saw_every_run_finish(&watched(watch, Duration::from_secs(30)));
    let (code, out, err) = skiplab(&["sweep", "report", file], &saves);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("8 runs planned, 8 done."), "{out}");
    drop(cluster);
}

#[test]
fn the_shipped_sweep_plans_its_24_runs() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/l2-lr.ron");
    let sweep = skiplab::sweep::Sweep::load(&file).unwrap();
    assert_eq!(sweep.runs.len(), 24);
    assert_eq!(sweep.runs[0].id, "l2-lr-lr0.01-wd0-sknone-s1");
    assert!(sweep.runs.iter().all(|r| r.experiment.epochs == 5));
}

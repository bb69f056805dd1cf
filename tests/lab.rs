//! The lab end to end: the event loop on a TestBackend, and the real binary under tmux.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use skiplab::device::Device;
use skiplab::session::{Session, Settings, Threads};
use skiplab::topology::ImageShape;
use skiplab::tui::app::{App, RunState};
use skiplab::tui::{self, AppEvent};

fn press(tx: &mpsc::Sender<AppEvent>, code: KeyCode) {
    tx.send(AppEvent::Input(Event::Key(KeyEvent::new(
        code,
        KeyModifiers::NONE,
    ))))
    .unwrap();
}

#[test]
fn event_loop_trains_a_run_in_the_background_and_quits() {
    let (tx, rx) = mpsc::channel();
    let app = App::new(ImageShape::new(1, 28, 28), 10, "builtin");
    let settings = Settings::new(Device::Cpu, "data".into(), None);
    let session = Session::new(settings, Box::new(Threads), tui::outlet(tx.clone())).unwrap();
    let loop_tx = tx.clone();
    let lab = std::thread::spawn(move || {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        tui::start(&mut terminal, app, session, loop_tx, rx).unwrap()
    });
    press(&tx, KeyCode::Char(' ')); // skip 0-2 on
    press(&tx, KeyCode::Char('t'));
    for _ in 0..4 {
        press(&tx, KeyCode::Down); // to "epochs" (Adam: the form hides momentum)
    }
    for _ in 0..4 {
        press(&tx, KeyCode::Left); // 5 -> 1
    }
    press(&tx, KeyCode::Enter);
    // The UI keeps answering while the run trains: a help overlay opens and closes.
    press(&tx, KeyCode::Char('?'));
    press(&tx, KeyCode::Esc);
    std::thread::sleep(Duration::from_secs(8));
    press(&tx, KeyCode::Char('q'));
    let _ = tx.send(AppEvent::Input(Event::Key(KeyEvent::new(
        KeyCode::Char('y'),
        KeyModifiers::NONE,
    ))));
    let app = lab.join().unwrap();
    assert_eq!(app.cx.runs.all.len(), 1);
    let run = &app.cx.runs.all[0];
    assert_eq!(run.topology.skips().len(), 1);
    assert_eq!(run.config.epochs, 1);
    assert_eq!(run.epochs.len(), 1, "one epoch trained: {:?}", run.state);
    assert_eq!(
        run.state,
        RunState::Ended(skiplab::train::RunStatus::Finished)
    );
    assert!(run.epochs[0].val_accuracy > 0.7);
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(session: &str, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        if check(&screen) {
            return screen;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}; screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts `command` (the lab) in a new 100x30 tmux session and waits for the quick preset.
fn open_lab_with_quick(session: &str, command: &str) {
    tmux(&["kill-session", "-t", session]);
    let status = Command::new("tmux")
        .args(["new-session", "-d", "-s", session, "-x", "100", "-y", "30"])
        .args(["sh", "-c", command])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(session, "the lab", Duration::from_secs(20), |s| {
        s.contains("Topology: mlp 784-128-256-10, 3/3 skips") && s.contains("loaded preset quick")
    });
}

/// `t`, the form's epochs 5 -> 2, Enter; returns the screen once the run is done.
fn train_two_epochs(session: &str) -> String {
    tmux(&["send-keys", "-t", session, "t"]);
    wait_for(session, "the form", Duration::from_secs(10), |s| {
        s.contains("Train this topology")
    });
    let keys = [
        "Down", "Down", "Down", "Down", "Down", "Left", "Left", "Left", "Enter",
    ];
    tmux(&[&["send-keys", "-t", session][..], &keys[..]].concat());
    wait_for(session, "a finished run", Duration::from_secs(120), |s| {
        s.contains(" done ")
    })
}

#[test]
fn real_binary_under_tmux_toggles_trains_and_quits_cleanly() {
    if Command::new("tmux").arg("-V").output().is_err() {
        // .ci/run installs tmux; a developer machine without it skips this test.
        eprintln!("tmux is not installed; skipping the end-to-end test");
        return;
    }
    let session = format!("skiplab-e2e-{}", std::process::id());
    let dir = std::env::temp_dir().join(&session);
    std::fs::create_dir_all(&dir).unwrap();
    let exit_file = dir.join("exit");
    // Presets and saves in the test's own folders; the lab opens with the quick preset.
    let presets = dir.join("presets");
    let saves = dir.join("saves");
    std::fs::create_dir_all(&presets).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/quick.ron"),
        presets.join("quick.ron"),
    )
    .unwrap();
    let command = format!(
        "SKIPLAB_SAVES_DIR={} {} --presets-dir {} ; echo $? > {}",
        saves.display(),
        env!("CARGO_BIN_EXE_skiplab"),
        presets.display(),
        exit_file.display()
    );
    open_lab_with_quick(&session, &command);
    // Select the next edge (0-3) and toggle it off.
    tmux(&["send-keys", "-t", &session, "Right", "Space"]);
    wait_for(&session, "the toggle", Duration::from_secs(10), |s| {
        s.contains("2/3 skips") && s.contains("edge 0-3 is off")
    });
    // Train for 2 epochs: t, down to "epochs", 5 -> 2, Enter.
    let screen = train_two_epochs(&session);
    assert!(screen.contains("run-1"), "{screen}");
    assert!(screen.contains("2/2"), "{screen}");
    let sparkline_row = screen
        .lines()
        .find(|l| l.contains("train ") && l.contains(" val "))
        .unwrap_or_else(|| panic!("no sparkline row:\n{screen}"));
    assert!(
        sparkline_row.chars().any(|c| ('▁'..='█').contains(&c)),
        "{sparkline_row}"
    );
    assert!(sparkline_row.matches('%').count() >= 2, "{sparkline_row}");
    // The run was saved as it trained.
    let runs = skiplab::runs::list_runs(&saves);
    assert_eq!(runs.len(), 1);
    let saved = runs.into_iter().next().unwrap().unwrap();
    assert_eq!(saved.epochs.len(), 2);
    assert_eq!(
        saved.summary.status,
        skiplab::train::RunState::Ended(skiplab::train::RunStatus::Finished)
    );
    // Save the topology as a preset, find it in the picker.
    tmux(&["send-keys", "-t", &session, "S"]);
    wait_for(&session, "the name prompt", Duration::from_secs(10), |s| {
        s.contains("Save as preset")
    });
    tmux(&["send-keys", "-t", &session, "-l", "two-skips"]);
    tmux(&["send-keys", "-t", &session, "Enter"]);
    wait_for(&session, "the saved preset", Duration::from_secs(10), |s| {
        s.contains("saved preset")
    });
    let e = skiplab::experiment::Experiment::load(&presets.join("two-skips.ron")).unwrap();
    assert_eq!(e.topology().unwrap().skips().len(), 2);
    tmux(&["send-keys", "-t", &session, "o"]);
    wait_for(&session, "the picker", Duration::from_secs(10), |s| {
        s.contains("Presets (presets/)") && s.contains("two-skips") && s.contains("quick")
    });
    tmux(&["send-keys", "-t", &session, "Escape"]);
    // Loading the run this lab trained adds no second row: a run is one sample.
    tmux(&["send-keys", "-t", &session, "L"]);
    wait_for(&session, "the saved runs", Duration::from_secs(10), |s| {
        s.contains("Saved runs (") && s.contains("saves/) ") && s.contains(&saved.id)
    });
    tmux(&["send-keys", "-t", &session, "Enter"]);
    wait_for(&session, "the loaded run", Duration::from_secs(10), |s| {
        s.contains(&format!("{} is loaded already (as run-1)", saved.id)) && !s.contains("run-2")
    });
    // The run's lesion study and edge usage, computed from its saved weights.
    tmux(&["send-keys", "-t", &session, "J", "V"]);
    let screen = wait_for(&session, "the lesion study", Duration::from_secs(60), |s| {
        s.contains("Lesion: run-1") && s.contains("deleted at random")
    });
    assert!(screen.contains("points lost"), "{screen}");
    tmux(&["send-keys", "-t", &session, "Escape", "u"]);
    let screen = wait_for(&session, "edge usage", Duration::from_secs(20), |s| {
        s.contains("Edge usage: run-1") && s.contains("per feature")
    });
    assert!(screen.contains("from\\to"), "{screen}");
    tmux(&["send-keys", "-t", &session, "Escape", "C"]);
    wait_for(&session, "CKA", Duration::from_secs(60), |s| {
        s.contains("Similarity: run-1") && s.contains("against")
    });
    tmux(&["send-keys", "-t", &session, "Escape", "Z"]);
    wait_for(&session, "the landscape", Duration::from_secs(60), |s| {
        s.contains("Loss landscape: run-1") && s.contains("sharpness")
    });
    // `Z` again: the run's 2-D map.
    tmux(&["send-keys", "-t", &session, "Z"]);
    wait_for(
        &session,
        "the landscape map",
        Duration::from_secs(120),
        |s| s.contains("loss over a plane") && s.contains("loss in each band"),
    );
    tmux(&["send-keys", "-t", &session, "Escape"]);
    tmux(&["send-keys", "-t", &session, "q"]);
    let start = Instant::now();
    while !exit_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "skiplab did not exit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = std::fs::read_to_string(&exit_file).unwrap();
    assert_eq!(code.trim(), "0", "exit status");
    tmux(&["kill-session", "-t", &session]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts the lab under tmux in `dir` (its presets/ holds quick.ron, its saves/ the runs);
/// returns the session name and the file its exit status lands in.
fn lab_in_tmux(dir: &Path, name: &str, size: (u16, u16)) -> (String, std::path::PathBuf) {
    lab_in_tmux_with(dir, name, size, "")
}

/// [`lab_in_tmux`] with further arguments for the lab.
fn lab_in_tmux_with(
    dir: &Path,
    name: &str,
    size: (u16, u16),
    args: &str,
) -> (String, std::path::PathBuf) {
    let session = format!("skiplab-{name}-{}", std::process::id());
    std::fs::create_dir_all(dir.join("presets")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/quick.ron"),
        dir.join("presets/quick.ron"),
    )
    .unwrap();
    let exit_file = dir.join("exit");
    let command = format!(
        "cd {} && SKIPLAB_SAVES_DIR=saves {} {args} ; echo $? > {}",
        dir.display(),
        env!("CARGO_BIN_EXE_skiplab"),
        exit_file.display()
    );
    tmux(&["kill-session", "-t", &session]);
    let (w, h) = (size.0.to_string(), size.1.to_string());
    let status = Command::new("tmux")
        .args(["new-session", "-d", "-s", &session, "-x", &w, "-y", &h])
        .args(["sh", "-c", &command])
        .status()
        .unwrap();
    assert!(status.success());
    (session, exit_file)
}

#[test]
fn real_binary_compares_two_topologies_over_two_seeds_and_exports_them() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed; skipping the end-to-end test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (session, exit_file) = lab_in_tmux(dir.path(), "compare", (100, 30));
    wait_for(&session, "the lab", Duration::from_secs(20), |s| {
        s.contains("loaded preset quick")
    });
    // All skips, 1 epoch, 2 seeds: t, down to epochs, 5 -> 1, down to seeds, 1 -> 2.
    let form = [
        "t", "Down", "Down", "Down", "Down", "Down", "Left", "Left", "Left", "Left", "Down",
        "Down", "Right", "Enter",
    ];
    tmux(&[&["send-keys", "-t", &session][..], &form[..]].concat());
    // The same without skips (the form keeps its values).
    tmux(&["send-keys", "-t", &session, "n", "t", "Enter"]);
    wait_for(
        &session,
        "four finished runs",
        Duration::from_secs(180),
        |s| s.matches(" done ").count() == 4,
    );
    tmux(&["send-keys", "-t", &session, "g"]);
    let grouped = wait_for(&session, "the seed groups", Duration::from_secs(10), |s| {
        s.matches("×2").count() == 2
    });
    assert!(
        grouped.contains("all 3 skips") && grouped.contains("vanilla") && grouped.contains("±"),
        "{grouped}"
    );
    // The chart against wall-clock time, then its CSV.
    tmux(&["send-keys", "-t", &session, "c", "x", "x"]);
    wait_for(
        &session,
        "the chart by seconds",
        Duration::from_secs(10),
        |s| s.contains("val acc % by seconds") && s.contains("2 seeds: all 3 skips"),
    );
    tmux(&["send-keys", "-t", &session, "E"]);
    let screen = wait_for(&session, "the export", Duration::from_secs(10), |s| {
        s.contains("wrote skiplab-compare-")
    });
    let csv_path = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".csv"))
        .unwrap_or_else(|| panic!("no CSV in {}:\n{screen}", dir.path().display()));
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(
        csv.starts_with("run,group,epoch,step,seconds,metric,value\n"),
        "{csv}"
    );
    let groups: std::collections::BTreeSet<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(
        groups.iter().any(|g| g.starts_with("all 3 skips")),
        "{groups:?}"
    );
    assert!(
        groups.iter().any(|g| g.starts_with("vanilla")),
        "{groups:?}"
    );
    let runs: std::collections::BTreeSet<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(runs.len(), 4, "{runs:?}");
    tmux(&["send-keys", "-t", &session, "Escape", "q"]);
    let start = Instant::now();
    while !exit_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "skiplab did not exit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(&exit_file).unwrap().trim(), "0");
    tmux(&["kill-session", "-t", &session]);
}

/// Installed outside the checkout: the binary copied into a prefix, started from an empty
/// folder with a fresh HOME and no SKIPLAB_* or XDG_* settings. It opens with the compiled-in
/// quick preset, trains, saves the run in the platform's saves folder and logs there too.
#[test]
fn an_installed_binary_works_from_an_empty_folder_with_a_fresh_home() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed; skipping the end-to-end test");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (prefix, home, empty) = (
        tmp.path().join("prefix"),
        tmp.path().join("home"),
        tmp.path().join("empty"),
    );
    for dir in [prefix.join("bin"), home.clone(), empty.clone()] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let installed = prefix.join("bin/skiplab");
    let status = Command::new("install")
        .args(["-m", "755", env!("CARGO_BIN_EXE_skiplab")])
        .arg(&installed)
        .status()
        .unwrap();
    assert!(status.success(), "install(1) into the prefix");
    let session = format!("skiplab-install-{}", std::process::id());
    let exit_file = tmp.path().join("exit");
    let command = format!(
        "cd {} && env -i HOME={} PATH={}:/usr/bin:/bin TERM=xterm-256color skiplab; echo $? > {}",
        empty.display(),
        home.display(),
        prefix.join("bin").display(),
        exit_file.display()
    );
    open_lab_with_quick(&session, &command);
    train_two_epochs(&session);
    tmux(&["send-keys", "-t", &session, "q"]);
    let start = Instant::now();
    while !exit_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the lab did not quit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux(&["kill-session", "-t", &session]);
    assert_eq!(std::fs::read_to_string(&exit_file).unwrap().trim(), "0");
    let saves = home.join(".local/share/skiplab/saves");
    let runs = skiplab::runs::list_runs(&saves);
    assert_eq!(runs.len(), 1, "the run is in the platform saves folder");
    let run = runs.into_iter().next().unwrap().unwrap();
    assert_eq!(
        run.summary.status,
        skiplab::train::RunState::Ended(skiplab::train::RunStatus::Finished)
    );
    assert_eq!(run.epochs.len(), 2);
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "nothing written where it started"
    );
    let log = std::fs::read_to_string(home.join(".local/state/skiplab/skiplab.log")).unwrap();
    assert!(
        log.contains("lab started") && log.contains("ended: Finished"),
        "{log}"
    );
}

/// Copies run folder `from` to `to`, its experiment's seed set to `seed`.
fn copy_run(from: &Path, to: &Path, seed: u64) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        if name == "experiment.ron" {
            let text = String::from_utf8(bytes).unwrap();
            bytes = text
                .replace("seed: 1,", &format!("seed: {seed},"))
                .into_bytes();
        }
        std::fs::write(to.join(name), bytes).unwrap();
    }
}

#[test]
fn real_binary_browses_200_saved_runs_filters_and_loads_a_configuration() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed; skipping the end-to-end test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let saves = dir.path().join("saves");
    // Two trained runs, then a hundred seeds of each as copies (the browser reads folders).
    let mut originals = Vec::new();
    for skips in ["none", "0-2"] {
        let out = Command::new(env!("CARGO_BIN_EXE_skiplab"))
            .args(["train", "--widths", "16", "--epochs", "1", "--skips", skips])
            .env("SKIPLAB_SAVES_DIR", &saves)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let ids: Vec<_> = std::fs::read_dir(&saves)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !originals.contains(p))
            .collect();
        originals.extend(ids);
    }
    for (k, original) in originals.iter().enumerate() {
        let kind = if k == 0 { "vanilla" } else { "skips" };
        for seed in 2..=100u64 {
            let id = format!("20261206-10{k}{seed:03}-mlp2-{kind}-s{seed}");
            copy_run(original, &saves.join(id), seed);
        }
    }
    assert_eq!(std::fs::read_dir(&saves).unwrap().count(), 200);
    let (session, exit_file) = lab_in_tmux(dir.path(), "browse", (80, 24));
    wait_for(&session, "the lab", Duration::from_secs(20), |s| {
        s.contains("loaded preset quick")
    });
    let start = Instant::now();
    tmux(&["send-keys", "-t", &session, "L"]);
    let all = wait_for(&session, "the browser", Duration::from_secs(30), |s| {
        s.contains("200 of 200 shown")
    });
    let opened = start.elapsed();
    assert!(
        all.contains("best status") && all.contains("finished"),
        "{all}"
    );
    // Filter to one configuration, choose all it shows, load them.
    tmux(&["send-keys", "-t", &session, "/", "vanilla", "Enter"]);
    wait_for(&session, "the filter", Duration::from_secs(10), |s| {
        s.contains("100 of 200 shown")
    });
    tmux(&["send-keys", "-t", &session, "G", "a"]);
    wait_for(&session, "the choice", Duration::from_secs(10), |s| {
        s.contains("100 chosen")
    });
    tmux(&["send-keys", "-t", &session, "Enter"]);
    wait_for(&session, "the loaded runs", Duration::from_secs(20), |s| {
        s.contains("loaded 100 runs")
    });
    // Grouped, they are one configuration of a hundred seeds.
    tmux(&["send-keys", "-t", &session, "g"]);
    wait_for(&session, "the group", Duration::from_secs(10), |s| {
        s.contains("×100")
    });
    // Loading everything adds only the other hundred.
    tmux(&["send-keys", "-t", &session, "L"]);
    wait_for(
        &session,
        "the browser again",
        Duration::from_secs(30),
        |s| s.contains("200 of 200 shown"),
    );
    tmux(&["send-keys", "-t", &session, "a", "Enter"]);
    wait_for(&session, "every run loaded", Duration::from_secs(20), |s| {
        s.contains("loaded 100 runs (100 loaded already)")
    });
    tmux(&["send-keys", "-t", &session, "q"]);
    let start_quit = Instant::now();
    while !exit_file.exists() {
        assert!(start_quit.elapsed() < Duration::from_secs(20), "no exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(&exit_file).unwrap().trim(), "0");
    tmux(&["kill-session", "-t", &session]);
    eprintln!("the browser opened on 200 runs in {opened:?}");
}

/// `skiplab --watch`: a sweep trained by another process (`sweep run`, two at a time) shows
/// in the lab run by run as it trains, beside a run the lab trains itself; quitting once all
/// are done asks nothing and exits 0.
#[test]
fn real_binary_watches_a_sweep_another_process_trains() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed; skipping the end-to-end test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("base.ron"),
        r#"(dataset: "builtin", model: Mlp(widths: [32, 32], skips: "none"), optimizer: Sgd(lr: 0.01, momentum: 0.9), batch: 64, epochs: 3)"#,
    )
    .unwrap();
    let sweep = dir.path().join("tiny.ron");
    std::fs::write(
        &sweep,
        r#"(base: "base.ron", lr: [0.01, 0.05], seeds: [1, 2])"#,
    )
    .unwrap();
    let (session, exit_file) = lab_in_tmux_with(dir.path(), "watch", (110, 32), "--watch --poll");
    wait_for(&session, "the lab", Duration::from_secs(20), |s| {
        s.contains("loaded preset quick")
    });
    // The lab trains one of its own meanwhile.
    tmux(&["send-keys", "-t", &session, "t", "Enter"]);
    let status = Command::new(env!("CARGO_BIN_EXE_skiplab"))
        .args(["sweep", "run", sweep.to_str().unwrap(), "--parallel", "2"])
        .env("SKIPLAB_SAVES_DIR", dir.path().join("saves"))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let screen = wait_for(
        &session,
        "five finished runs",
        Duration::from_secs(120),
        |s| s.matches(" done ").count() == 5,
    );
    assert!(screen.contains("run-5"), "{screen}");
    tmux(&["send-keys", "-t", &session, "q"]);
    let start = Instant::now();
    while !exit_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "skiplab did not exit: {}",
            tmux(&["capture-pane", "-p", "-t", &session])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(&exit_file).unwrap().trim(), "0");
    tmux(&["kill-session", "-t", &session]);
}

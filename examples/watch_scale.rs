//! How the watcher scales: N run folders (1,000 by default) generated in a temporary saves
//! folder, then the lab's first screen with all of them, a refresh when nothing changed, a
//! refresh that finds one new epoch, and the resident memory.
//!
//! ```sh
//! cargo run --release --example watch_scale -- [N]
//! ```
//!
//! The targets (issue 33): the first screen under 2 s, a refresh under 50 ms when nothing
//! changed. It prints what it measures; it asserts nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use skiplab::provenance::Provenance;
use skiplab::runs::{self, EpochRow, Summary};
use skiplab::train::{EpochMetrics, RunState, RunStatus, StepMetrics};
use skiplab::watch::{Board, WatchOptions, Watcher};

/// A finished run of `epochs` epochs (16 step points each) written as the recorder writes it.
fn write_run(dir: &Path, seed: u64, epochs: usize, status: RunState) {
    std::fs::create_dir_all(dir).unwrap();
    let (_, mut experiment) =
        skiplab::folders::resolve_preset(Path::new("quick"), Path::new("presets")).unwrap();
    experiment.seed = seed;
    std::fs::write(dir.join(runs::EXPERIMENT), experiment.to_ron()).unwrap();
    let topology = experiment.topology().unwrap();
    let mut summary = Summary::new(&topology, "cpu", Provenance::here("watch_scale"));
    let mut metrics = csv::Writer::from_writer(Vec::new());
    let mut steps = csv::Writer::from_writer(Vec::new());
    for e in 1..=epochs {
        let m = EpochMetrics {
            epoch: e,
            train_loss: 1.0 / e as f64,
            train_accuracy: 0.8,
            val_loss: 1.1 / e as f64,
            val_accuracy: 0.7 + 0.01 * e as f64 + 0.001 * seed as f64,
            samples_per_sec: 10_000.0,
            seconds: 1.5,
            skip_weights: Vec::new(),
            step: e * 100,
        };
        summary.observe(&skiplab::train::TrainEvent::Epoch(m.clone()));
        metrics.serialize(EpochRow::from_metrics(&m, true)).unwrap();
        for k in 0..16 {
            steps
                .serialize(StepMetrics {
                    step: (e - 1) * 100 + k * 6 + 6,
                    epoch: e,
                    seconds: 1.5 * e as f64,
                    train_loss: 0.5,
                    train_accuracy: 0.8,
                })
                .unwrap();
        }
    }
    summary.status = status;
    // Staged and renamed into place, as the recorder publishes them.
    let publish = |name: &str, bytes: &[u8]| {
        let tmp = dir.join(format!(".tmp-{name}"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    };
    publish(runs::METRICS, &metrics.into_inner().unwrap());
    publish(runs::STEPS, &steps.into_inner().unwrap());
    let text = ron::ser::to_string_pretty(&summary, Default::default()).unwrap();
    publish(runs::SUMMARY, text.as_bytes());
}

fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let tmp = tempfile::tempdir().unwrap();
    let saves = tmp.path().join("saves");
    for i in 0..n {
        write_run(
            &saves.join(format!("run-{i:05}")),
            i as u64,
            10,
            RunStatus::Finished.into(),
        );
    }
    // One still training, to be given another epoch.
    let live = saves.join("run-live");
    write_run(&live, 0, 3, RunState::Running);
    let (before, _) = rss_mib();
    println!("{n} finished run folders of 10 epochs (160 step points each) and 1 training");

    for notify in [true, false] {
        let start = Instant::now();
        let mut watcher = Watcher::new(
            vec![saves.clone()],
            WatchOptions {
                stall_after: Duration::from_secs(600),
                notify,
            },
        );
        let events = watcher.scan();
        let scanned = start.elapsed();
        let mut app = skiplab::tui::app::App::new(
            skiplab::topology::ImageShape::new(1, 28, 28),
            10,
            "builtin",
        );
        let mut board = Board::default();
        for e in &events {
            board.apply(e);
        }
        app.on_watch(events);
        let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
        terminal
            .draw(|f| skiplab::tui::ui::draw(f, &mut app))
            .unwrap();
        let first_screen = start.elapsed();
        // Nothing changed: refreshes (after the folders' times are 2 s old, as on a quiet
        // sweep, so a refresh looks at no file).
        std::thread::sleep(Duration::from_millis(2100));
        let mut quiet = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let events = watcher.scan();
            quiet.push(t.elapsed());
            assert!(events.is_empty());
        }
        quiet.sort();
        // One epoch more for the training run.
        write_run(&live, 0, 4, RunState::Running);
        let t = Instant::now();
        let events = watcher.scan();
        let one_change = t.elapsed();
        let redraw = Instant::now();
        app.on_watch(events.clone());
        terminal
            .draw(|f| skiplab::tui::ui::draw(f, &mut app))
            .unwrap();
        let redraw = redraw.elapsed();
        let (rss, peak) = rss_mib();
        println!(
            "{}: first scan {} ({} runs), lab's first screen {}; refresh with nothing changed: median {}, max {}; one new epoch: scan {} ({} events), redraw {}; resident {rss:.0} MiB (peak {peak:.0}, {before:.0} before watching)",
            if watcher.notifying() { "notified+polled" } else { "polled only" },
            ms(scanned),
            watcher.len(),
            ms(first_screen),
            ms(quiet[quiet.len() / 2]),
            ms(quiet[quiet.len() - 1]),
            ms(one_change),
            events.len(),
            ms(redraw),
        );
        write_run(&live, 0, 3, RunState::Running);
    }
}

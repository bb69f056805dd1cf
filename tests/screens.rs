//! Snapshots of every lab screen, drawn on ratatui's TestBackend.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use skiplab::runs::Summary;
use skiplab::session::{RunInfo, SavedAt, SessionEvent, Update};
use skiplab::topology::{ImageShape, SkipEdge, SkipSelection};
use skiplab::train::{EpochMetrics, RunStatus, TrainEvent};
use skiplab::tui::app::{App, Mode};
use skiplab::tui::ui;

fn render(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    terminal.backend().to_string()
}

fn key(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn lab() -> App {
    App::new(ImageShape::new(1, 28, 28), 10, "builtin")
}

/// What the session reports when run `run` of the lab's topology is queued.
fn queued(app: &App, run: usize) -> SessionEvent {
    let info = RunInfo {
        experiment: app.experiment(),
        topology: app.topology.clone(),
        config: app.form.config(),
    };
    SessionEvent {
        run,
        update: Update::Queued(Box::new(info)),
    }
}

fn train(run: usize, event: TrainEvent) -> SessionEvent {
    SessionEvent {
        run,
        update: Update::Train(event),
    }
}

fn epoch(epoch: usize, train: f64, val: f64, skips: &[(SkipEdge, f64)]) -> TrainEvent {
    TrainEvent::Epoch(EpochMetrics {
        epoch,
        train_loss: 1.0 - train,
        train_accuracy: train,
        val_loss: 1.0 - val,
        val_accuracy: val,
        samples_per_sec: 12_000.0,
        seconds: 0.75,
        skip_weights: skips.to_vec(),
    })
}

#[test]
fn mlp_diagram_with_mixed_edges() {
    let mut app = lab();
    // 4-layer MLP: insert a hidden layer after fc2, then turn on two of six edges.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('i'));
    for edge in [SkipEdge::new(0, 2), SkipEdge::new(1, 4)] {
        app.topology.set_skip(edge, true).unwrap();
    }
    key(&mut app, KeyCode::Right); // back to edge selection: 0-2
    key(&mut app, KeyCode::Right); // 0-3
    insta::assert_snapshot!(render(&mut app, 80, 24));
}

#[test]
fn cnn_diagram_with_the_papers_skips() {
    let mut app = App::new(ImageShape::new(3, 32, 32), 10, "cifar-10");
    key(&mut app, KeyCode::Char('m'));
    app.topology.apply_skips(&SkipSelection::Paper).unwrap();
    insta::assert_snapshot!("cnn_80x24", render(&mut app, 80, 24));
    insta::assert_snapshot!("cnn_120x40", render(&mut app, 120, 40));
}

#[test]
fn runs_with_sparklines_side_by_side() {
    let mut app = lab();
    app.topology.apply_skips(&SkipSelection::All).unwrap();
    for run in [1, 2] {
        app.on_session(queued(&app, run));
    }
    let w = [
        (SkipEdge::new(0, 2), 0.043),
        (SkipEdge::new(0, 3), 0.027),
        (SkipEdge::new(1, 3), 0.033),
    ];
    let curves = [
        [
            (0.76, 0.80),
            (0.84, 0.82),
            (0.86, 0.84),
            (0.88, 0.85),
            (0.89, 0.86),
        ],
        [
            (0.70, 0.74),
            (0.80, 0.79),
            (0.83, 0.81),
            (0.84, 0.83),
            (0.85, 0.83),
        ],
    ];
    for (run, curve) in [1, 2].into_iter().zip(curves) {
        let started = TrainEvent::Started {
            params: 1,
            steps_per_epoch: 140,
            train_samples: 9000,
            val_samples: 1000,
            test_samples: 2000,
        };
        app.on_session(train(run, started));
        for (e, (t, v)) in curve.into_iter().enumerate() {
            app.on_session(train(run, epoch(e + 1, t, v, &w)));
        }
        if run == 1 {
            let mut summary = Summary::new(&app.topology, "cpu");
            summary.test_accuracy = Some(0.85);
            app.on_session(SessionEvent {
                run,
                update: Update::Ended {
                    status: RunStatus::Finished,
                    summary: Box::new(summary),
                },
            });
        }
    }
    let progress = TrainEvent::Progress {
        epoch: 6,
        step: 70,
        steps_per_epoch: 140,
        loss: 0.4,
    };
    app.on_session(train(2, progress));
    app.selected_run = Some(0);
    insta::assert_snapshot!("runs", render(&mut app, 80, 24));
    app.mode = Mode::Compare;
    insta::assert_snapshot!("compare", render(&mut app, 80, 24));
    app.mode = Mode::Normal;
    app.ascii = true;
    let ascii = render(&mut app, 80, 24);
    assert!(ascii.is_ascii(), "--ascii draws ASCII only");
    insta::assert_snapshot!("runs_ascii", ascii);
    // Each run's saved id: the selected one's in the title at 80 columns, a column of its own
    // on a wide terminal.
    app.ascii = false;
    for (run, id) in [
        (1, "20261202-121924-mlp3-skips-s1"),
        (2, "20261202-122301-mlp3-skips-s2"),
    ] {
        let saved = Some(SavedAt {
            id: id.into(),
            dir: format!("saves/{id}").into(),
        });
        app.on_session(SessionEvent {
            run,
            update: Update::Starting { saved },
        });
    }
    let narrow = render(&mut app, 80, 24);
    assert!(
        narrow.contains("Runs · run-1 is saves/20261202-121924-mlp3-skips-s1"),
        "{narrow}"
    );
    insta::assert_snapshot!("runs_saved_ids_80x24", narrow);
    let wide = render(&mut app, 160, 48);
    assert!(
        wide.contains("saved as") && wide.contains("20261202-122301-mlp3-skips-s2"),
        "{wide}"
    );
    insta::assert_snapshot!("runs_saved_ids_160x48", wide);
}

#[test]
fn help_overlay_and_run_form() {
    let mut app = lab();
    key(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!("help", render(&mut app, 80, 30));
    key(&mut app, KeyCode::Char('x')); // any key closes
    key(&mut app, KeyCode::Char('t'));
    insta::assert_snapshot!("form", render(&mut app, 80, 24));
}

#[test]
fn too_small_terminal_says_so() {
    let mut app = lab();
    insta::assert_snapshot!(render(&mut app, 50, 12));
}

#[test]
fn preset_picker_lists_broken_files_with_their_error() {
    use skiplab::experiment::Experiment;
    use skiplab::tui::app::PresetItem;
    let mut app = lab();
    let quick = Experiment::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/quick.ron"),
    )
    .unwrap();
    let broken = Experiment::from_ron(
        "(dataset: \"builtin\", model: Mlp(widths: [8], skips: \"all\"), optimizer: Sgd(lr: 0.1), batch: 8, epochs: 1, dropout: 0.5)",
        std::path::Path::new("presets/broken.ron"),
    )
    .unwrap_err();
    app.show_presets(vec![
        PresetItem {
            name: "broken".into(),
            experiment: Err(broken.to_string()),
        },
        PresetItem {
            name: "quick".into(),
            experiment: Ok(quick),
        },
    ]);
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!(render(&mut app, 100, 24));
    // Enter loads the selected preset into the panel and the form.
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.topology.skips().len(), 3);
    assert_eq!(app.form.lr, 0.01);
    assert!(!app.form.adam);
}

#[test]
fn save_as_prompt() {
    let mut app = lab();
    key(&mut app, KeyCode::Char('S'));
    for c in "my-net".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    insta::assert_snapshot!(render(&mut app, 80, 24));
    key(&mut app, KeyCode::Char('/'));
    assert!(app
        .handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))
        .is_empty());
    assert!(app
        .message
        .as_deref()
        .unwrap_or("")
        .contains("not a usable name"));
    key(&mut app, KeyCode::Backspace);
    assert_eq!(
        app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        vec![skiplab::tui::app::Effect::SavePreset("my-net".into())]
    );
}

#[test]
fn reinforce_turns_a_skip_network_into_its_vanilla_match() {
    let mut app = App::new(ImageShape::new(3, 32, 32), 10, "cifar10");
    key(&mut app, KeyCode::Char('m'));
    app.topology.apply_skips(&SkipSelection::Paper).unwrap();
    key(&mut app, KeyCode::Char('R'));
    assert!(app.topology.skips().is_empty());
    assert!(
        app.topology.summary().contains("[32,32 | 96,96 | 224,224]"),
        "{}",
        app.topology.summary()
    );
    assert!(app
        .message
        .as_deref()
        .unwrap()
        .starts_with("reinforced vanilla"));
    key(&mut app, KeyCode::Char('R'));
    assert!(app.message.as_deref().unwrap().contains("already vanilla"));
}

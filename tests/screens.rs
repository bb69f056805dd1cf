//! Snapshots of every lab screen, drawn on ratatui's TestBackend.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use skiplab::provenance::Provenance;
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
        topology: app.editor.topology.clone(),
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
        step: epoch * 140,
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
        app.editor.topology.set_skip(edge, true).unwrap();
    }
    key(&mut app, KeyCode::Right); // back to edge selection: 0-2
    key(&mut app, KeyCode::Right); // 0-3
    insta::assert_snapshot!(render(&mut app, 80, 24));
}

#[test]
fn cnn_diagram_with_the_papers_skips() {
    let mut app = App::new(ImageShape::new(3, 32, 32), 10, "cifar-10");
    key(&mut app, KeyCode::Char('m'));
    app.editor
        .topology
        .apply_skips(&SkipSelection::Paper)
        .unwrap();
    insta::assert_snapshot!("cnn_80x24", render(&mut app, 80, 24));
    insta::assert_snapshot!("cnn_120x40", render(&mut app, 120, 40));
}

#[test]
fn runs_with_sparklines_side_by_side() {
    let mut app = lab();
    app.editor
        .topology
        .apply_skips(&SkipSelection::All)
        .unwrap();
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
            let mut summary = Summary::new(&app.editor.topology, "cpu", Provenance::here("test"));
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
    app.cx.runs.selected = Some(0);
    insta::assert_snapshot!("runs", render(&mut app, 80, 24));
    app.mode = Mode::Compare;
    insta::assert_snapshot!("compare", render(&mut app, 80, 24));
    app.mode = Mode::Normal;
    app.cx.ascii = true;
    let ascii = render(&mut app, 80, 24);
    assert!(ascii.is_ascii(), "--ascii draws ASCII only");
    insta::assert_snapshot!("runs_ascii", ascii);
    // Each run's saved id: the selected one's under the table at 80 columns, a column of its own
    // on a wide terminal.
    app.cx.ascii = false;
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
        narrow.contains("└ run-1 is saves/20261202-121924-mlp3-skips-s1 "),
        "{narrow}"
    );
    insta::assert_snapshot!("runs_saved_ids_80x24", narrow);
    let wide = render(&mut app, 160, 48);
    assert!(
        wide.contains("saved as") && wide.contains("20261202-122301-mlp3-skips-s2"),
        "{wide}"
    );
    insta::assert_snapshot!("runs_saved_ids_160x48", wide);
    // Every dialog and message says all it has to at 80x24.
    app.cx.runs.selected = Some(1);
    key(&mut app, KeyCode::Char('q'));
    let quit = render(&mut app, 80, 24);
    assert!(
        quit.contains("1 run(s) still active: quitting stops them.")
            && quit.contains("y = quit, any key = stay"),
        "{quit}"
    );
    insta::assert_snapshot!("dialog_quit_80x24", quit);
    key(&mut app, KeyCode::Char('n'));
    key(&mut app, KeyCode::Char('d'));
    let delete = render(&mut app, 80, 24);
    for text in [
        "Remove run-2 from the runs table?",
        "It is still training: removing it stops it.",
        "Its saved files (20261202-122301-mlp3-skips-s2) are kept.",
        "y = remove, any key = keep",
    ] {
        assert!(delete.contains(text), "{text}:\n{delete}");
    }
    insta::assert_snapshot!("dialog_delete_80x24", delete);
    key(&mut app, KeyCode::Char('n'));
    app.cx.message = Some(
        "run-2 diverged: loss NaN at step 1234; the learning rate 0.5 is too high for this network, try 0.05".into(),
    );
    let long = render(&mut app, 80, 24);
    assert!(long.contains("try 0.05"), "{long}");
    insta::assert_snapshot!("long_message_80x24", long);
    app.mode = Mode::Compare;
    app.cx.message = Some("wrote skiplab-compare-2026-12-06T120000.csv".into());
    let export = render(&mut app, 80, 24);
    assert!(
        export.contains("wrote skiplab-compare-2026-12-06T120000.csv"),
        "{export}"
    );
    insta::assert_snapshot!("compare_export_80x24", export);
}

#[test]
fn help_overlay_and_run_form() {
    let mut app = lab();
    key(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!("help", render(&mut app, 80, 30));
    key(&mut app, KeyCode::Char('x')); // any key closes
    key(&mut app, KeyCode::Char('t'));
    insta::assert_snapshot!("form", render(&mut app, 80, 24));
    // A typed value the rules refuse: the form names it and stays.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('0'));
    key(&mut app, KeyCode::Enter);
    let refused = render(&mut app, 80, 24);
    assert!(
        refused.contains("lr 0 must be a positive number"),
        "{refused}"
    );
    insta::assert_snapshot!("form_refused_80x24", refused);
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
    assert_eq!(app.editor.topology.skips().len(), 3);
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
        .cx
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
    app.editor
        .topology
        .apply_skips(&SkipSelection::Paper)
        .unwrap();
    key(&mut app, KeyCode::Char('R'));
    assert!(app.editor.topology.skips().is_empty());
    assert!(
        app.editor
            .topology
            .summary()
            .contains("[32,32 | 96,96 | 224,224]"),
        "{}",
        app.editor.topology.summary()
    );
    assert!(app
        .cx
        .message
        .as_deref()
        .unwrap()
        .starts_with("reinforced vanilla"));
    key(&mut app, KeyCode::Char('R'));
    assert!(app
        .cx
        .message
        .as_deref()
        .unwrap()
        .contains("already vanilla"));
}

/// A finished run of `topology` with `config` as the session reports it: saved id, step
/// points (four an epoch) and epochs whose accuracy rises by `gain` from `start`.
fn finished_run(
    app: &mut App,
    run: usize,
    topology: &skiplab::topology::Topology,
    config: skiplab::train::TrainConfig,
    start: f64,
    gain: f64,
) {
    let info = RunInfo {
        experiment: skiplab::experiment::Experiment::from_parts(
            topology,
            skiplab::data::DatasetName::Builtin,
            &config,
            0.1,
        ),
        topology: topology.clone(),
        config: config.clone(),
    };
    let id = format!("20261202-1300{run:02}-{}", info.experiment.run_label());
    app.on_session(SessionEvent {
        run,
        update: Update::Queued(Box::new(info)),
    });
    let saved = Some(SavedAt {
        id: id.clone(),
        dir: format!("saves/{id}").into(),
    });
    app.on_session(SessionEvent {
        run,
        update: Update::Starting { saved },
    });
    // Seeds move the curve a little.
    let wobble = 0.004 * (config.seed as f64 - 1.5);
    let seconds_per_epoch = 0.5 + 0.1 * topology.skips().len() as f64;
    for e in 1..=config.epochs {
        for k in 1..=4 {
            let step = (e - 1) * 140 + k * 35;
            let t = (e - 1) as f64 + k as f64 / 4.0;
            let acc = start + gain * (1.0 - (-t / 2.0).exp()) + wobble;
            app.on_session(train(
                run,
                TrainEvent::Step(skiplab::train::StepMetrics {
                    step,
                    epoch: e,
                    seconds: seconds_per_epoch * t,
                    train_loss: 1.2 - acc,
                    train_accuracy: acc,
                }),
            ));
        }
        let t = e as f64;
        let val = start - 0.01 + gain * (1.0 - (-t / 2.0).exp()) + wobble;
        let mut event = epoch(e, val + 0.02, val, &[]);
        if let TrainEvent::Epoch(m) = &mut event {
            m.seconds = seconds_per_epoch;
        }
        app.on_session(train(run, event));
    }
    let mut summary = Summary::new(topology, "cpu", Provenance::here("test"));
    summary.test_accuracy = Some(start + gain * 0.9);
    app.on_session(SessionEvent {
        run,
        update: Update::Ended {
            status: RunStatus::Finished,
            summary: Box::new(summary),
        },
    });
}

/// Two configurations of a 4-layer MLP (five skips; none) x two seeds, and a third at
/// another learning rate.
fn comparison_lab() -> App {
    let mut app = lab();
    let mut skips = skiplab::topology::Topology::Mlp(skiplab::topology::MlpSpec::new(
        784,
        vec![128, 256, 256],
        10,
    ));
    let vanilla = skips.clone();
    skips
        .apply_skips(&"0-2,0-3,0-4,1-3,1-4".parse().unwrap())
        .unwrap();
    let config = |seed, lr| skiplab::train::TrainConfig {
        optimizer: skiplab::hyperparams::OptimizerConfig::sgd(lr, 0.9, 0.0),
        batch_size: 64,
        epochs: 6,
        seed,
        schedule: None,
    };
    finished_run(&mut app, 1, &skips, config(1, 0.01), 0.74, 0.13);
    finished_run(&mut app, 2, &vanilla, config(1, 0.01), 0.72, 0.12);
    finished_run(&mut app, 3, &skips, config(2, 0.01), 0.74, 0.13);
    finished_run(&mut app, 4, &vanilla, config(2, 0.01), 0.72, 0.12);
    finished_run(&mut app, 5, &vanilla, config(1, 0.05), 0.70, 0.10);
    app.cx.runs.selected = Some(0);
    app
}

#[test]
fn runs_table_describes_what_differs_and_groups_seeds() {
    let mut app = comparison_lab();
    let plain = render(&mut app, 80, 24);
    // At 80 columns the skip edges, the thing compared, still show whole.
    assert!(plain.contains("skips 0-2,0-3,0-4,1-3,1-4"), "{plain}");
    let wide = render(&mut app, 160, 48);
    assert!(
        wide.contains("skips 0-2,0-3,0-4,1-3,1-4 · lr 0.01 · seed 1"),
        "{wide}"
    );
    insta::assert_snapshot!("table_runs_160x48", wide);
    insta::assert_snapshot!("table_runs_80x24", plain);
    key(&mut app, KeyCode::Char('g'));
    let grouped = render(&mut app, 80, 24);
    assert!(grouped.contains("×2") && grouped.contains("±"), "{grouped}");
    insta::assert_snapshot!("table_seed_groups_80x24", grouped);
    insta::assert_snapshot!("table_seed_groups_160x48", render(&mut app, 160, 48));
}

#[test]
fn runs_table_filtered_and_sorted() {
    let mut app = comparison_lab();
    // --ascii covers every new symbol (groups, marks, ±, cut descriptions).
    key(&mut app, KeyCode::Char('g'));
    app.cx.runs.all[0].marked = true;
    for mode in [
        skiplab::tui::app::Mode::Normal,
        skiplab::tui::app::Mode::Compare,
    ] {
        app.mode = mode;
        app.cx.ascii = false;
        let unicode = render(&mut app, 80, 24);
        app.cx.ascii = true;
        let ascii = render(&mut app, 80, 24);
        // No symbol falls back to `?`.
        assert!(ascii.is_ascii(), "{ascii}");
        assert_eq!(
            ascii.matches('?').count(),
            unicode.matches('?').count(),
            "{ascii}"
        );
    }
    app.mode = skiplab::tui::app::Mode::Normal;
    app.cx.ascii = false;
    app.cx.runs.all[0].marked = false;
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char('/'));
    for c in "vanilla".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('s')); // by best val, best first
    let rows = app.rows();
    assert_eq!(rows.len(), 3, "the three vanilla runs");
    let bests: Vec<f64> = rows
        .iter()
        .map(|r| app.cx.runs.all[r.members[0]].best_val().unwrap())
        .collect();
    assert!(bests.windows(2).all(|w| w[0] >= w[1]), "{bests:?}");
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("by best val ↓") && screen.contains("filter \"vanilla\" 3/5"),
        "{screen}"
    );
    insta::assert_snapshot!("table_filtered_sorted_80x24", screen);
    key(&mut app, KeyCode::Char('v'));
    insta::assert_snapshot!(
        "table_filtered_sorted_reversed_160x48",
        render(&mut app, 160, 48)
    );
    // Esc in the filter prompt clears it.
    key(&mut app, KeyCode::Char('/'));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.rows().len(), 5);
}

#[test]
fn compare_chart_on_each_axis_with_smoothing_and_seed_bands() {
    let mut app = comparison_lab();
    // Mark the four lr-0.01 runs (Tab to the runs panel; Space marks).
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Tab);
    app.cx.runs.selected = Some(0);
    key(&mut app, KeyCode::Char(' '));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char(' '));
    assert_eq!(app.cx.runs.all.iter().filter(|r| r.marked).count(), 4);
    key(&mut app, KeyCode::Char('c'));
    key(&mut app, KeyCode::Char(']'));
    key(&mut app, KeyCode::Char(']'));
    assert_eq!(app.compare.chart.smoothing, 0.8);
    for (x, name) in [(0, "epoch"), (1, "step"), (2, "seconds")] {
        let small = render(&mut app, 80, 24);
        assert!(
            small.contains(&format!("val acc % by {name} · smoothed 0.8")),
            "{small}"
        );
        assert!(small.contains("p = 0.009 (Welch, 2 vs 2 seeds)"), "{small}");
        assert!(
            small
                .contains("best val acc, skips 0-2,0-3,0-4,1-3,1-4 · lr 0.01 − vanilla · lr 0.01:"),
            "{small}"
        );
        insta::assert_snapshot!(format!("compare_{name}_80x24"), small);
        insta::assert_snapshot!(format!("compare_{name}_160x48"), render(&mut app, 160, 48));
        let _ = x;
        key(&mut app, KeyCode::Char('x'));
    }
    // Train loss per step, and the CSV of what the chart shows.
    key(&mut app, KeyCode::Char('x'));
    key(&mut app, KeyCode::Char('y'));
    key(&mut app, KeyCode::Char('y'));
    assert!(render(&mut app, 80, 24).contains("train loss by step"));
    let effects = app.handle_key(KeyEvent::new(KeyCode::Char('E'), KeyModifiers::NONE));
    let [skiplab::tui::app::Effect::ExportCsv(csv)] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert!(
        csv.starts_with("run,group,epoch,step,seconds,metric,value\n"),
        "{csv}"
    );
    for group in ["skips 0-2,0-3,0-4,1-3,1-4", "vanilla"] {
        assert!(csv.lines().any(|l| l.contains(group)), "{group}: {csv}");
    }
    assert!(
        !csv.contains("lr 0.05") && !csv.contains("-s1-2"),
        "only the marked runs"
    );
    // 4 runs x (6 epochs x 4 metrics + 24 step points x 2).
    assert_eq!(csv.lines().count(), 1 + 4 * (24 + 48));
}

#[test]
fn a_deep_mlp_scrolls_and_shows_residual_edges() {
    let mut app = lab();
    let mut mlp = skiplab::topology::MlpSpec::new(784, vec![64; 50], 10);
    mlp.activation = skiplab::topology::Activation::Sigmoid;
    app.editor.topology = skiplab::topology::Topology::Mlp(mlp);
    app.editor
        .topology
        .apply_skips(&"res:chain:2".parse().unwrap())
        .unwrap();
    assert!(app.editor.topology.candidate_edges().len() > 1200);
    let first = render(&mut app, 80, 24);
    assert!(first.contains("layers 0-11 of 52 (↑↓)"), "{first}");
    assert!(
        first.contains("r0-2") && first.contains("mlp 784-64x50-10 sigmoid"),
        "{first}"
    );
    insta::assert_snapshot!("deep_mlp_80x24", first);
    // Selecting a layer further in scrolls the window with it.
    app.editor.selection = skiplab::tui::app::Selection::Layer(30);
    let scrolled = render(&mut app, 80, 24);
    assert!(scrolled.contains("layers 24-35 of 52"), "{scrolled}");
    insta::assert_snapshot!("deep_mlp_scrolled_80x24", scrolled);
    // The edge kind key: an identity residual says it changes the function.
    app.editor.selection = skiplab::tui::app::Selection::Edge(0);
    assert_eq!(app.selected_edge(), Some(SkipEdge::new(0, 2)));
    key(&mut app, KeyCode::Char('e'));
    assert!(
        app.cx.message.as_deref().unwrap().contains("concatenates"),
        "{:?}",
        app.cx.message
    );
    key(&mut app, KeyCode::Right); // 0-3
    key(&mut app, KeyCode::Right); // 0-4
    key(&mut app, KeyCode::Char('e'));
    assert!(
        app.cx.message.as_deref().unwrap().contains("projection"),
        "{:?}",
        app.cx.message
    );
}

/// ResNet-20 in the lab: only the residual arcs are drawn (153 candidates would bury them),
/// strided stages show their halved size, `e` turns a cross-stage edge residual through the
/// network's shortcut and `O` switches that shortcut.
#[test]
fn a_resnet_draws_its_residual_blocks_and_switches_its_shortcut() {
    use skiplab::topology::{CnnSpec, ImageShape, Topology};
    let mut app = lab();
    let cnn = CnnSpec::he_cifar(ImageShape::new(1, 28, 28), 3, 10);
    app.editor.topology = Topology::Cnn(cnn);
    app.editor
        .topology
        .apply_skips(&"res:blocks:2".parse().unwrap())
        .unwrap();
    let screen = render(&mut app, 100, 24);
    assert!(
        screen.contains("cnn 1x28x28 [16x7 | 32x6 | 64x6] -> 10 batch norm strided"),
        "{screen}"
    );
    for arc in ["r1-3", "r7-9", "r11-13"] {
        assert!(screen.contains(arc), "{arc}: {screen}");
    }
    assert!(
        !screen.contains("1-4"),
        "disabled arcs stay hidden: {screen}"
    );
    insta::assert_snapshot!("resnet20_100x24", screen);
    // 7-9 crosses into the 32-channel stage: option A, then a projection after `O`.
    let index = app
        .editor
        .topology
        .candidate_edges()
        .iter()
        .position(|e| *e == SkipEdge::new(7, 9))
        .unwrap();
    app.editor.selection = skiplab::tui::app::Selection::Edge(index);
    let screen = render(&mut app, 100, 24);
    assert!(
        screen.contains("edge 7-9 is ON, residual (pad)"),
        "{screen}"
    );
    key(&mut app, KeyCode::Char('O'));
    let screen = render(&mut app, 100, 24);
    assert!(
        screen.contains("edge 7-9 is ON, residual (projection)"),
        "{screen}"
    );
    // `e` makes it concatenate, and again residual.
    key(&mut app, KeyCode::Char('e'));
    assert!(app.cx.message.as_deref().unwrap().contains("concatenates"));
    key(&mut app, KeyCode::Char('e'));
    assert!(
        app.cx
            .message
            .as_deref()
            .unwrap()
            .contains("1x1 projection"),
        "{:?}",
        app.cx.message
    );
}

#[test]
fn gradient_flow_view_shows_a_vanishing_gradient() {
    let mut app = lab();
    let mut mlp = skiplab::topology::MlpSpec::new(784, vec![64; 20], 10);
    mlp.activation = skiplab::topology::Activation::Sigmoid;
    app.editor.topology = skiplab::topology::Topology::Mlp(mlp);
    let config = app.form.config();
    let topology = app.editor.topology.clone();
    finished_run(&mut app, 1, &topology, config, 0.1, 0.0);
    // Twenty points: each layer's gradient a factor of 4 smaller than the next one's.
    for k in 1..=20 {
        let layers = (1..=21)
            .map(|l| skiplab::train::LayerFlow {
                layer: format!("fc{l}"),
                grad_norm: 0.25f64.powi(21 - l) * (1.0 + 0.01 * k as f64),
                update_ratio: 1e-3 * 0.25f64.powi(21 - l),
            })
            .collect();
        app.on_session(train(
            1,
            TrainEvent::Flow(skiplab::train::FlowPoint {
                step: k * 7,
                epoch: 1 + k / 10,
                layers,
            }),
        ));
    }
    app.cx.runs.selected = Some(0);
    key(&mut app, KeyCode::Char('f'));
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("Gradient flow: run-1"), "{screen}");
    assert!(screen.contains("(vanishing)"), "{screen}");
    insta::assert_snapshot!("gradient_flow_80x24", screen);
    insta::assert_snapshot!("gradient_flow_160x48", render(&mut app, 160, 48));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
}

/// A binding from the config file drives the handler, the hint bar and the help alike; a
/// light theme and NO_COLOR recolour the same screen.
#[test]
fn bindings_and_themes_reach_every_part_of_the_screen() {
    let mut app = lab();
    let bindings = [("train".to_string(), "T".to_string())]
        .into_iter()
        .collect();
    app.cx.keys = skiplab::tui::keys::KeyTable::with_bindings(&bindings).unwrap();
    let screen = render(&mut app, 80, 24);
    let hints = screen.lines().last().unwrap();
    assert!(hints.contains(" T train"), "{hints}");
    key(&mut app, KeyCode::Char('t'));
    assert_eq!(app.mode, Mode::Normal, "t is unbound now");
    key(&mut app, KeyCode::Char('T'));
    assert!(matches!(app.mode, Mode::Form(_)));
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('?'));
    let help = render(&mut app, 80, 30);
    assert!(
        help.contains("│ T                 train this topology"),
        "{help}"
    );
    key(&mut app, KeyCode::Esc);

    let colours = |app: &mut App| {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|f| ui::draw(f, app)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        buffer
            .content()
            .iter()
            .flat_map(|c| [c.fg, c.bg])
            .collect::<std::collections::HashSet<_>>()
    };
    use ratatui::style::Color;
    let dark = colours(&mut app);
    assert!(dark.contains(&Color::Yellow), "the selection is yellow");
    app.cx.colours = skiplab::tui::app::Colours::Light;
    let light = colours(&mut app);
    assert!(
        !light.contains(&Color::Yellow) && light.contains(&Color::Blue),
        "{light:?}"
    );
    app.cx.colours = skiplab::tui::app::Colours::None;
    let none = colours(&mut app);
    assert_eq!(
        none,
        [Color::Reset].into_iter().collect(),
        "no colour at all"
    );
}

#[test]
fn run_browser_filters_chooses_and_loads_each_run_once() {
    use skiplab::tui::views::browser::BrowserItem;
    // Twelve saved runs: every skip or none, lr 0.01 or 0.05, three seeds each.
    let mut scratch = lab();
    let mut k = 0;
    for skips in [SkipSelection::All, SkipSelection::None] {
        for lr in [0.01, 0.05] {
            for seed in 1..=3u64 {
                scratch.editor.topology.apply_skips(&skips).unwrap();
                scratch.form.lr = lr;
                scratch.form.seed = seed;
                k += 1;
                scratch.on_session(queued(&scratch, k));
                let val = 0.78 + 0.01 * k as f64;
                scratch.on_session(train(k, epoch(1, val + 0.02, val, &[])));
            }
        }
    }
    let items: Vec<BrowserItem> = scratch
        .cx
        .runs
        .all
        .iter()
        .map(|r| {
            let id = format!(
                "20261206-1200{:02}-{}-s{}",
                r.id,
                if r.topology.skips().is_empty() {
                    "mlp3-vanilla"
                } else {
                    "mlp3-skips"
                },
                r.experiment.seed
            );
            let mut run = r.clone();
            run.saved_id = Some(id.clone());
            run.name = id.clone();
            run.state = skiplab::tui::app::RunState::Ended(RunStatus::Finished);
            BrowserItem {
                id,
                best_val: run.best_val(),
                status: "finished".into(),
                detail: format!("builtin {}", run.topology.summary()),
                facets: skiplab::compare::facets(&run.experiment, &[]),
                run: Ok(run),
            }
        })
        .collect();
    let mut app = lab();
    app.show_saved_runs(items.clone());
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("12 of 12 shown"), "{screen}");
    insta::assert_snapshot!("browser_80x24", screen);
    // The cursor on the eleventh run; filter by words (every one must match): the cursor
    // stays on its run. Then choose all shown and load them.
    for _ in 0..10 {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Char('/'));
    for c in "vanilla 0.05".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let filtered = render(&mut app, 80, 24);
    assert!(filtered.contains("3 of 12 shown"), "{filtered}");
    assert!(
        filtered.contains("│▸  20261206-120011-mlp3-vanilla-s2"),
        "the cursor stays on its run:\n{filtered}"
    );
    insta::assert_snapshot!("browser_filtered_80x24", filtered);
    key(&mut app, KeyCode::Char('a'));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.cx.runs.all.len(), 3);
    assert_eq!(app.cx.message.as_deref(), Some("loaded 3 runs"));
    // Loaded runs get short names; the selected one's id is under the table at 80 columns.
    let table = render(&mut app, 80, 24);
    assert!(
        table.contains("run-3 is saves/20261206-120012-mlp3-vanilla-s3"),
        "{table}"
    );
    insta::assert_snapshot!("browser_loaded_80x24", table);
    // Open it again: the three are marked loaded; loading everything adds the other nine.
    app.show_saved_runs(items);
    let again = render(&mut app, 80, 24);
    assert_eq!(again.matches("│ ✓ 2026").count(), 3, "{again}");
    key(&mut app, KeyCode::Char('a'));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.cx.runs.all.len(), 12, "no run twice");
    assert_eq!(
        app.cx.message.as_deref(),
        Some("loaded 9 runs (3 loaded already)")
    );
    // Grouped, each configuration is three seeds.
    key(&mut app, KeyCode::Char('g'));
    let grouped = render(&mut app, 80, 24);
    assert_eq!(grouped.matches("×3").count(), 4, "{grouped}");
}

#[test]
fn diff_view_shows_only_what_sets_two_runs_apart() {
    let mut app = comparison_lab();
    // Run 1 (skips, lr 0.01, seed 1) against run 5, marked (vanilla, lr 0.05, seed 1).
    app.cx.runs.all[4].marked = true;
    key(&mut app, KeyCode::Char('D'));
    let screen = render(&mut app, 100, 24);
    assert!(screen.contains("Diff: run-1 against run-5"), "{screen}");
    let lines: Vec<&str> = screen.lines().collect();
    let row = |name: &str| lines.iter().find(|l| l.contains(name)).copied();
    assert!(
        row("lr 0.01").is_some_and(|l| l.contains("lr 0.05")),
        "{screen}"
    );
    assert!(row("edges on in one only").is_some_and(|l| l.contains("0-2,0-3,0-4,1-3,1-4")));
    // What they share is not listed: the seed, the data, the batch.
    assert!(
        row("seed 1").is_none() && row("batch 64").is_none(),
        "{screen}"
    );
    insta::assert_snapshot!("diff_100x24", screen);
    // K: the other run before it in the table (wrapping round), never the run itself.
    key(&mut app, KeyCode::Char('K'));
    let screen = render(&mut app, 100, 24);
    assert!(screen.contains("against run-4"), "{screen}");
    // Against the same configuration with another seed, only the seed differs.
    key(&mut app, KeyCode::Char('K'));
    let screen = render(&mut app, 100, 24);
    assert!(screen.contains("against run-3"), "{screen}");
    assert!(row_of(&screen, "seed").contains("seed 2"), "{screen}");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
    // With one run there is nothing to diff against, and the view says so.
    let mut single = lab();
    finished_lone_run(&mut single);
    key(&mut single, KeyCode::Char('D'));
    assert!(render(&mut single, 80, 24).contains("Two runs are needed"));
}

fn row_of(screen: &str, word: &str) -> String {
    screen
        .lines()
        .find(|l| l.contains(word))
        .unwrap_or_default()
        .to_string()
}

fn finished_lone_run(app: &mut App) {
    app.on_session(queued(app, 1));
    app.cx.runs.selected = Some(0);
}

/// A deep residual MLP (batch norm, residual edges every two layers) trained and saved.
fn residual_mlp_run(app: &mut App) -> skiplab::topology::Topology {
    let mut mlp = skiplab::topology::MlpSpec::new(784, vec![64; 7], 10);
    mlp.norm = skiplab::topology::Norm::Batch;
    let mut topology = skiplab::topology::Topology::Mlp(mlp);
    topology
        .apply_skips(&"res:chain:2".parse::<SkipSelection>().unwrap())
        .unwrap();
    app.editor.topology = topology.clone();
    let config = app.form.config();
    finished_run(app, 1, &topology, config, 0.7, 0.15);
    app.cx.runs.selected = Some(0);
    topology
}

/// The lesion view: asked of the event loop with the run's saved id, a progress bar while
/// it works, then the diagram coloured by the points each deletion costs, the table and the
/// k-deletion curve; an answer to an earlier request is ignored; Esc cancels.
#[test]
fn lesion_view_colours_the_diagram_by_what_each_deletion_costs() {
    use skiplab::analysis::lesion::{CurvePoint, Deletion, EdgeLesion, LayerLesion, Lesion, Score};
    use skiplab::tui::views::analysis::{AnalysisKind, AnalysisUpdate};
    use skiplab::tui::views::Effect;
    let mut app = lab();
    let topology = residual_mlp_run(&mut app);
    let effects = app.handle_key(KeyEvent::new(KeyCode::Char('V'), KeyModifiers::NONE));
    let [Effect::Analyse(request)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(request.kind, AnalysisKind::Lesion);
    assert!(
        request.runs[0].id.starts_with("20261202-130001-"),
        "{request:?}"
    );
    let ticket = request.ticket;
    app.on_analysis(AnalysisUpdate::Progress {
        ticket,
        done: 12,
        total: 40,
    });
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("12 of 40 evaluations"), "{screen}");

    let score = |accuracy| Score {
        accuracy,
        loss: 1.0 - accuracy,
    };
    let layer = |l: usize, how: Result<Deletion, &str>, accuracy: f64| LayerLesion {
        layer: l,
        name: format!("fc{l}"),
        deletion: how.ok(),
        score: how.ok().map(|_| score(accuracy)),
        why_not: how.err().map(str::to_string),
    };
    let edge = |from, to, accuracy| EdgeLesion {
        edge: SkipEdge::new(from, to),
        kind: skiplab::topology::EdgeKind::Residual,
        score: score(accuracy),
    };
    let study = Lesion {
        layers: skiplab::analysis::layer_names(&topology),
        baseline: score(0.83),
        samples: 1000,
        deletions: vec![
            layer(1, Err("no residual edge, and its input has 784 units"), 0.0),
            layer(2, Err("its shortcut is a projection"), 0.0),
            layer(3, Ok(Deletion::Identity), 0.55),
            layer(4, Ok(Deletion::Branch), 0.70),
            layer(5, Ok(Deletion::Identity), 0.60),
            layer(6, Ok(Deletion::Branch), 0.825),
            layer(7, Ok(Deletion::Identity), 0.30),
        ],
        edges: vec![
            edge(0, 2, 0.20),
            edge(2, 4, 0.65),
            edge(4, 6, 0.80),
            edge(6, 8, 0.78),
        ],
        pool: vec![4, 6],
        curve: vec![
            CurvePoint {
                k: 1,
                draws: vec![(vec![4], score(0.70)), (vec![6], score(0.825))],
            },
            CurvePoint {
                k: 2,
                draws: vec![(vec![4, 6], score(0.62))],
            },
        ],
    };
    // An earlier request's answer does not land.
    app.on_analysis(AnalysisUpdate::Lesion {
        ticket: ticket - 1,
        result: Err("stale".into()),
    });
    assert!(!render(&mut app, 80, 24).contains("stale"));
    app.on_analysis(AnalysisUpdate::Lesion {
        ticket,
        result: Ok(Box::new((topology, study))),
    });
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("Lesion: run-1"), "{screen}");
    assert!(
        screen.contains("k of 2 blocks deleted at random"),
        "{screen}"
    );
    insta::assert_snapshot!("lesion_80x24", screen);
    insta::assert_snapshot!("lesion_160x48", render(&mut app, 160, 48));
    // --ascii: every symbol has a stand-in.
    app.cx.ascii = true;
    let screen = render(&mut app, 80, 24);
    assert!(screen.is_ascii() && !screen.contains('?'), "{screen}");
    assert!(
        screen.contains("# <1") && screen.contains("# >20"),
        "{screen}"
    );
    app.cx.ascii = false;
    let effects = app.handle_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert_eq!(effects, [Effect::CancelAnalysis]);
    assert_eq!(app.mode, Mode::Normal);
}

/// The edge-usage view: the source × target heat map of hand-set weights, the arrows moving
/// the selected cell, whose blocks and value show below.
#[test]
fn edge_usage_view_maps_what_each_layer_reads() {
    use skiplab::tui::views::analysis::{AnalysisKind, AnalysisUpdate};
    use skiplab::tui::views::Effect;
    let mut app = lab();
    let mut mlp = skiplab::topology::MlpSpec::new(784, vec![32, 32, 32], 10);
    mlp.norm = skiplab::topology::Norm::None;
    let mut topology = skiplab::topology::Topology::Mlp(mlp);
    topology
        .apply_skips(&"0-2,0-3,res:1-3".parse::<SkipSelection>().unwrap())
        .unwrap();
    app.editor.topology = topology.clone();
    let config = app.form.config();
    finished_run(&mut app, 1, &topology, config, 0.7, 0.15);
    app.cx.runs.selected = Some(0);
    let effects = app.handle_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::NONE));
    let [Effect::Analyse(request)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(request.kind, AnalysisKind::Usage);
    // Every block's weights are its target's number over 10: later layers read harder.
    let dev = dfdx::prelude::Cpu::default();
    let net =
        skiplab::net::Network::<f32, dfdx::prelude::Cpu>::new(topology.clone(), &dev, 0).unwrap();
    let params: Vec<skiplab::net::HostParam> = net
        .export()
        .into_iter()
        .map(|mut p| {
            let target: f32 = p.name[2..3].parse().unwrap();
            p.values.fill(target / 10.0);
            p
        })
        .collect();
    let usage = skiplab::analysis::usage::edge_usage(&topology, &params).unwrap();
    app.on_analysis(AnalysisUpdate::Usage {
        ticket: request.ticket,
        result: Ok(Box::new((topology, usage))),
    });
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("Edge usage: run-1"), "{screen}");
    assert!(screen.contains("input → fc1"), "{screen}");
    insta::assert_snapshot!("edge_usage_80x24", screen);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    let screen = render(&mut app, 160, 48);
    assert!(screen.contains("fc1 → fc2"), "{screen}");
    assert!(screen.contains("1 identity shortcut(s)"), "{screen}");
    insta::assert_snapshot!("edge_usage_160x48", screen);
    let effects = app.handle_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert_eq!(effects, [Effect::CancelAnalysis]);
}

/// The similarity view (`C`): the run's layer × layer CKA on CKA's own 0-1 scale; and the
/// landscape view (`Z`): its loss along a filter-normalised direction, with the sharpness.
#[test]
fn similarity_and_landscape_views_show_the_runs_studies() {
    use skiplab::tui::views::analysis::{AnalysisKind, AnalysisUpdate, Similarity};
    use skiplab::tui::views::Effect;
    let mut app = lab();
    residual_mlp_run(&mut app);
    let effects = app.handle_key(KeyEvent::new(KeyCode::Char('C'), KeyModifiers::NONE));
    let [Effect::Analyse(request)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(request.kind, AnalysisKind::Similarity);
    // Neighbouring layers alike, far ones less so.
    app.on_analysis(AnalysisUpdate::Similarity {
        ticket: request.ticket,
        result: Ok(Box::new(Similarity {
            map: seven_layer_cka(|i, j| 1.0 - 0.12 * f64::from((i - j).abs())),
            ceilings: Vec::new(),
        })),
    });
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("fc1 against fc3: CKA 0.760"), "{screen}");
    insta::assert_snapshot!("similarity_80x24", screen);
    insta::assert_snapshot!("similarity_160x48", render(&mut app, 160, 48));
    key(&mut app, KeyCode::Esc);

    let effects = app.handle_key(KeyEvent::new(KeyCode::Char('Z'), KeyModifiers::NONE));
    let [Effect::Analyse(request)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(request.kind, AnalysisKind::Landscape);
    assert_eq!(request.runs.len(), 1);
    app.on_analysis(AnalysisUpdate::Landscape {
        ticket: request.ticket,
        result: Ok(vec![bowl(0.4, 1.5)]),
    });
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("Loss landscape: run-1") && screen.contains("sharpness     0.550"),
        "{screen}"
    );
    insta::assert_snapshot!("landscape_80x24", screen);
    insta::assert_snapshot!("landscape_160x48", render(&mut app, 160, 48));
    let effects = app.handle_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert_eq!(effects, [Effect::CancelAnalysis]);
}

/// CKA between the layers fc1..fc7 of two runs: `value(i, j)` for layers i + 1 and j + 1,
/// on 1,000 examples in batches of 250.
fn seven_layer_cka(value: impl Fn(i32, i32) -> f64) -> skiplab::analysis::cka::LayerCka {
    let names: Vec<String> = (1..=7).map(|l| format!("fc{l}")).collect();
    skiplab::analysis::cka::LayerCka {
        rows: names.clone(),
        columns: names,
        cka: (0..7)
            .map(|i| (0..7).map(|j| value(i, j)).collect())
            .collect(),
        samples: 1000,
        batch: 250,
    }
}

/// A 1-D landscape on 21 points over [-1, 1]: `centre + curvature α²`.
fn bowl(centre: f64, curvature: f64) -> skiplab::analysis::landscape::Landscape {
    let axis: Vec<f64> = (0..21).map(|i| -1.0 + 0.1 * f64::from(i)).collect();
    let loss: Vec<f64> = axis.iter().map(|a| centre + curvature * a * a).collect();
    skiplab::analysis::landscape::Landscape {
        sharpness: loss.iter().map(|l| l - centre).sum::<f64>() / 21.0,
        accuracy: vec![0.8; 21],
        axis,
        loss,
        dims: 1,
        centre_loss: centre,
        samples: 1000,
        seed: 0,
    }
}

/// With runs marked, `Z` draws each one's curve on one chart; ↓ picks a run and `Z` asks for
/// its 2-D map under a new ticket (the curves' answers are then ignored), drawn as contour
/// bands; `Z` goes back to the curves, and a second `Z` shows the map without asking again.
#[test]
fn landscape_view_draws_marked_runs_curves_and_a_picked_runs_map() {
    use skiplab::analysis::landscape::Landscape;
    use skiplab::tui::views::analysis::{AnalysisKind, AnalysisUpdate};
    use skiplab::tui::views::Effect;
    let mut app = lab();
    let topology = residual_mlp_run(&mut app);
    let config = app.form.config();
    finished_run(&mut app, 2, &topology, config, 0.6, 0.1);
    for run in app.cx.runs.all.iter_mut() {
        run.marked = true;
    }
    let effects = app.handle_key(KeyEvent::new(KeyCode::Char('Z'), KeyModifiers::NONE));
    let [Effect::Analyse(request)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(request.kind, AnalysisKind::Landscape);
    let names: Vec<&str> = request.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["run-1", "run-2"]);
    let curves_ticket = request.ticket;
    // The map cannot be asked for while the curves are computed.
    assert!(app
        .handle_key(KeyEvent::new(KeyCode::Char('Z'), KeyModifiers::NONE))
        .is_empty());
    app.on_analysis(AnalysisUpdate::Landscape {
        ticket: curves_ticket,
        result: Ok(vec![bowl(0.4, 1.5), bowl(0.5, 40.0)]),
    });
    key(&mut app, KeyCode::Down);
    let screen = render(&mut app, 100, 30);
    assert!(
        screen.contains("run-1, run-2") && screen.contains("log scale"),
        "{screen}"
    );
    insta::assert_snapshot!("landscape_two_runs_100x30", screen);

    let effects = app.handle_key(KeyEvent::new(KeyCode::Char('Z'), KeyModifiers::NONE));
    let [Effect::Analyse(map_request)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(map_request.kind, AnalysisKind::LandscapeMap);
    assert_eq!(map_request.runs[0].name, "run-2");
    assert!(map_request.ticket > curves_ticket);
    app.on_analysis(AnalysisUpdate::Progress {
        ticket: map_request.ticket,
        done: 100,
        total: 441,
    });
    // A late answer to the curves' request changes nothing.
    app.on_analysis(AnalysisUpdate::Landscape {
        ticket: curves_ticket,
        result: Err("late".into()),
    });
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("100 of 441"), "{screen}");
    // A bowl stretched along β.
    let axis: Vec<f64> = (0..21).map(|i| -1.0 + 0.1 * f64::from(i)).collect();
    let loss: Vec<f64> = axis
        .iter()
        .flat_map(|a| axis.iter().map(move |b| 0.5 + 8.0 * a * a + 2.0 * b * b))
        .collect();
    app.on_analysis(AnalysisUpdate::LandscapeMap {
        ticket: map_request.ticket,
        result: Ok(Box::new(Landscape {
            sharpness: loss.iter().map(|l| l - 0.5).sum::<f64>() / loss.len() as f64,
            accuracy: vec![0.8; loss.len()],
            axis,
            loss,
            dims: 2,
            centre_loss: 0.5,
            samples: 500,
            seed: 0,
        })),
    });
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("run-2 · loss over a plane"), "{screen}");
    assert!(
        screen.contains("sharpness 3.667 over the plane"),
        "{screen}"
    );
    insta::assert_snapshot!("landscape_map_100x30", screen);
    // Back to the curves, and to the map again without a new request.
    assert!(app
        .handle_key(KeyEvent::new(KeyCode::Char('Z'), KeyModifiers::NONE))
        .is_empty());
    assert!(render(&mut app, 100, 30).contains("run-1, run-2"));
    assert!(app
        .handle_key(KeyEvent::new(KeyCode::Char('Z'), KeyModifiers::NONE))
        .is_empty());
    assert!(render(&mut app, 100, 30).contains("loss over a plane"));
    let effects = app.handle_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert_eq!(effects, [Effect::CancelAnalysis]);
}

/// With two runs marked, `C` compares the first's layers with the second's, and each with
/// another seed of its own configuration where the lab has one (its ceiling): run-1's twin is
/// run-2 (the next seed), run-3 (a plain net) has none. The ceilings stand beside the map, or under
/// it for the selected layer where the screen is narrow.
#[test]
fn similarity_of_two_marked_runs_compares_them_against_their_ceilings() {
    use skiplab::tui::views::analysis::{AnalysisUpdate, Similarity};
    use skiplab::tui::views::Effect;
    let mut app = lab();
    let topology = residual_mlp_run(&mut app);
    let first = app.form.config();
    let mut config = first.clone();
    config.seed = first.seed + 1;
    finished_run(&mut app, 2, &topology, config.clone(), 0.7, 0.15);
    let mut plain = topology.clone();
    plain
        .apply_skips(&"none".parse::<SkipSelection>().unwrap())
        .unwrap();
    finished_run(&mut app, 3, &plain, first, 0.6, 0.1);
    app.cx.runs.all[0].marked = true;
    app.cx.runs.all[2].marked = true;
    let effects = app.handle_key(KeyEvent::new(KeyCode::Char('C'), KeyModifiers::NONE));
    let [Effect::Analyse(request)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let id = |i: usize| app.cx.runs.all[i].saved_id.clone().unwrap();
    assert_eq!(request.runs.len(), 2);
    assert_eq!(request.runs[0].id, id(0));
    assert_eq!(request.runs[1].id, id(2));
    let twin = request.runs[0]
        .twin
        .as_ref()
        .expect("run-2 is run-1's other seed");
    assert_eq!((twin.id.clone(), twin.name.as_str()), (id(1), "run-2"));
    assert_eq!(request.runs[1].twin, None);
    let screen = render(&mut app, 100, 24);
    assert!(screen.contains("run-1 against run-3"), "{screen}");

    app.on_analysis(AnalysisUpdate::Similarity {
        ticket: request.ticket,
        result: Ok(Box::new(Similarity {
            map: seven_layer_cka(|i, j| 0.9 - 0.1 * f64::from((i - j).abs()) - 0.02 * f64::from(i)),
            ceilings: vec![
                Some((
                    "run-2".into(),
                    vec![0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93],
                )),
                None,
            ],
        })),
    });
    key(&mut app, KeyCode::Down);
    let wide = render(&mut app, 120, 30);
    assert!(
        wide.contains("against another seed of itself (ceiling)"),
        "{wide}"
    );
    assert!(
        wide.contains("fc2         0.880     0.980         -"),
        "{wide}"
    );
    assert!(wide.contains("run-1: against run-2"), "{wide}");
    assert!(wide.contains("run-3: no other seed saved"), "{wide}");
    insta::assert_snapshot!("similarity_ceilings_120x30", wide);
    let narrow = render(&mut app, 80, 24);
    assert!(
        narrow.contains("fc2 against fc1: CKA 0.780 · run-1 seed to seed 0.980"),
        "{narrow}"
    );
}

/// A run another process trains, as the watcher tells it: found with two epochs (the
/// session's runs untouched), a third epoch, a stall, live again, its end. Watched runs do
/// not make quitting ask (they are not the lab's to stop).
#[test]
fn watched_runs_join_the_table_train_live_stall_and_end() {
    use skiplab::runs::{EpochRow, SavedRun};
    use skiplab::watch::{Change, WatchEvent};
    let mut app = lab();
    let topology = app.editor.topology.clone();
    let config = app.form.config();
    let experiment = skiplab::experiment::Experiment::from_parts(
        &topology,
        skiplab::data::DatasetName::Builtin,
        &config,
        0.1,
    );
    let metrics = |e: usize, val: f64| match epoch(e, val + 0.02, val, &[]) {
        TrainEvent::Epoch(m) => m,
        _ => unreachable!(),
    };
    let mut summary = Summary::new(&topology, "cpu", Provenance::here("test"));
    summary.status = skiplab::train::RunState::Running;
    for e in [1, 2] {
        summary.observe(&TrainEvent::Epoch(metrics(e, 0.6 + 0.05 * e as f64)));
    }
    let id = "20261207-150000-mlp-s1".to_string();
    let saved = SavedRun {
        id: id.clone(),
        dir: format!("elsewhere/{id}").into(),
        experiment,
        epochs: [1, 2]
            .iter()
            .map(|&e| EpochRow::from_metrics(&metrics(e, 0.6 + 0.05 * e as f64), true))
            .collect(),
        steps: Vec::new(),
        flows: Vec::new(),
        summary,
    };
    let event = |change| WatchEvent {
        id: id.clone(),
        dir: format!("elsewhere/{id}").into(),
        change,
    };
    app.on_watch(vec![event(Change::Found(Box::new(saved)))]);
    assert_eq!(app.cx.runs.all.len(), 1);
    assert!(app
        .cx
        .message
        .as_deref()
        .unwrap()
        .contains("run-1 appeared"));
    app.on_watch(vec![event(Change::Train(epoch(3, 0.8, 0.78, &[])))]);
    app.on_watch(vec![event(Change::Stalled {
        quiet: std::time::Duration::from_secs(630),
    })]);
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("stalled"), "{screen}");
    assert!(
        screen.contains("run-1 stalled: no change for 10m 30s"),
        "{screen}"
    );
    assert!(screen.contains("78.0%"), "{screen}");
    insta::assert_snapshot!("watched_run_stalled_100x30", screen);
    // Not the lab's: quitting does not ask.
    assert!(!app.cx.runs.has_active());
    app.on_watch(vec![event(Change::Active)]);
    assert!(render(&mut app, 100, 30).contains("running"));
    app.on_watch(vec![event(Change::Train(TrainEvent::Ended {
        status: RunStatus::Finished,
        epochs_done: 3,
        test_accuracy: Some(0.77),
        test_epoch: Some(3),
    }))]);
    let run = &app.cx.runs.all[0];
    assert_eq!(
        run.state,
        skiplab::train::RunState::Ended(RunStatus::Finished)
    );
    assert_eq!(run.epochs.len(), 3);
    assert_eq!(run.test_accuracy, Some(0.77));
    // Events of a run the lab trains itself are the session's to tell.
    let before = app.cx.runs.all.clone();
    app.on_session(queued(&app, 0));
    let own = app.cx.runs.all.len() - 1;
    app.cx.runs.all[own].saved_id = Some("own".into());
    let mut ours = event(Change::Train(epoch(1, 0.5, 0.5, &[])));
    ours.id = "own".into();
    app.on_watch(vec![ours]);
    assert!(app.cx.runs.all[own].epochs.is_empty());
    assert_eq!(app.cx.runs.all[..1], before[..]);
}

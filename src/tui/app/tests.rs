//! The router's behaviour, key by key, without a screen.

use super::*;
use crate::experiment::Optimizer;
use crate::session::Update;
use crate::topology::{MlpSpec, SkipEdge, SkipSelection, Topology};
use crate::train::{RunStatus, TrainEvent};
use crate::tui::views::dialogs::ConfirmDelete;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn app() -> App {
    App::new(ImageShape::new(1, 28, 28), 10, "builtin")
}

#[test]
fn arrows_select_edges_and_space_toggles_them() {
    let mut app = app();
    assert_eq!(app.selected_edge(), Some(SkipEdge::new(0, 2)));
    app.handle_key(key(KeyCode::Right));
    assert_eq!(app.selected_edge(), Some(SkipEdge::new(0, 3)));
    app.handle_key(key(KeyCode::Char(' ')));
    assert!(app.editor.topology.skips().contains(&SkipEdge::new(0, 3)));
    app.handle_key(key(KeyCode::Char(' ')));
    assert!(app.editor.topology.skips().is_empty());
    // Wraps around.
    app.handle_key(key(KeyCode::Right));
    app.handle_key(key(KeyCode::Right));
    assert_eq!(app.selected_edge(), Some(SkipEdge::new(0, 2)));
    app.handle_key(key(KeyCode::Char('a')));
    assert_eq!(app.editor.topology.skips().len(), 3);
    app.handle_key(key(KeyCode::Char('n')));
    assert!(app.editor.topology.skips().is_empty());
}

#[test]
fn an_esc_and_a_key_arriving_together_as_alt_key_are_both_pressed() {
    let mut app = app();
    app.handle_key(key(KeyCode::Char('?')));
    assert!(matches!(app.mode, Mode::Help(_)));
    // Esc closes the help, then `?` opens it again.
    app.handle_key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::ALT));
    assert!(matches!(app.mode, Mode::Help(_)));
    app.handle_key(key(KeyCode::Esc));
    // In the main view only the key counts (Esc there would ask to quit).
    app.handle_key(KeyEvent::new(KeyCode::Char(' '), KeyModifiers::ALT));
    assert!(matches!(app.mode, Mode::Normal));
    assert!(app.editor.topology.skips().contains(&SkipEdge::new(0, 2)));
}

#[test]
fn layers_can_be_resized_inserted_and_removed_keeping_edges() {
    let mut app = app();
    app.handle_key(key(KeyCode::Char('a')));
    app.handle_key(key(KeyCode::Down)); // input
    app.handle_key(key(KeyCode::Down)); // fc1
    app.handle_key(key(KeyCode::Char('+')));
    let Topology::Mlp(m) = &app.editor.topology else {
        panic!()
    };
    assert_eq!(m.hidden, vec![144, 256]);
    app.handle_key(key(KeyCode::Char('i')));
    let Topology::Mlp(m) = &app.editor.topology else {
        panic!()
    };
    assert_eq!(m.hidden, vec![144, 144, 256]);
    // Edges after the insertion point moved along: 0-2 -> 0-3 etc.
    let skips: Vec<String> = app
        .editor
        .topology
        .skips()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(skips, ["0-3", "0-4", "1-4"]);
    app.handle_key(key(KeyCode::Char('r')));
    let Topology::Mlp(m) = &app.editor.topology else {
        panic!()
    };
    assert_eq!(m.hidden, vec![144, 256]);
    // `i` selected the new layer, so `r` took it out and the edges are as they were.
    let skips: Vec<String> = app
        .editor
        .topology
        .skips()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(skips, ["0-2", "0-3", "1-3"]);
    // Removing a layer that edges touch drops those edges.
    app.editor.selection = Selection::Layer(1);
    app.handle_key(key(KeyCode::Char('r')));
    assert_eq!(
        app.editor.topology.skips().len(),
        1,
        "edges touching the removed layer go"
    );
}

#[test]
fn the_form_takes_typed_values_checks_them_and_hides_what_does_not_apply() {
    let mut app = app();
    let typed = |app: &mut App, text: &str| {
        for c in text.chars() {
            app.handle_key(key(KeyCode::Char(c)));
        }
    };
    let form = |app: &App| match &app.mode {
        Mode::Form(f) => f.clone(),
        other => panic!("{other:?}"),
    };
    app.handle_key(key(KeyCode::Char('t')));
    // Adam: no momentum field.
    assert!(!form(&app).fields().contains(&FormField::Momentum));
    app.handle_key(key(KeyCode::Down)); // lr
    typed(&mut app, "0.05");
    assert_eq!(form(&app).typing.as_deref(), Some("0.05"));
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(form(&app).lr, 0.05);
    app.handle_key(key(KeyCode::Down));
    assert_eq!(
        form(&app).field,
        FormField::WeightDecay,
        "momentum is skipped"
    );
    typed(&mut app, "1e-4");
    app.handle_key(key(KeyCode::Down)); // a move sets it too
    assert_eq!(form(&app).weight_decay, 1e-4);
    assert_eq!(form(&app).field, FormField::Batch);
    // A value the rules refuse is named, and the form stays on the field.
    typed(&mut app, "0");
    app.handle_key(key(KeyCode::Down));
    let f = form(&app);
    assert_eq!(f.field, FormField::Batch);
    assert_eq!(f.error.as_deref(), Some("batch 0 must be at least 1"));
    assert_eq!(f.batch, 64);
    // Esc leaves the entry, not the form.
    app.handle_key(key(KeyCode::Esc));
    assert!(form(&app).typing.is_none() && form(&app).error.is_none());
    // SGD shows momentum, and checks it.
    app.handle_key(key(KeyCode::Up));
    app.handle_key(key(KeyCode::Up));
    app.handle_key(key(KeyCode::Up));
    assert_eq!(form(&app).field, FormField::Optimizer);
    app.handle_key(key(KeyCode::Right));
    assert!(form(&app).fields().contains(&FormField::Momentum));
    app.handle_key(key(KeyCode::Down));
    app.handle_key(key(KeyCode::Down));
    assert_eq!(form(&app).field, FormField::Momentum);
    typed(&mut app, "1.5");
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(
        form(&app).error.as_deref(),
        Some("momentum 1.5 must be in [0, 1)")
    );
    for _ in 0..3 {
        app.handle_key(key(KeyCode::Backspace));
    }
    assert!(form(&app).typing.is_none(), "an emptied entry ends");
    typed(&mut app, "0.5");
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(form(&app).momentum, 0.5);
    let effects = app.handle_key(key(KeyCode::Enter));
    let [Effect::Submit(experiment)] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(
        experiment.optimizer,
        Optimizer::Sgd {
            lr: 0.01,
            momentum: 0.5
        }
    );
    assert_eq!(experiment.weight_decay, 1e-4);
}

#[test]
fn form_submits_runs_and_session_updates_drive_their_rows() {
    use crate::session::{RunInfo, SavedAt};
    let mut app = app();
    assert_eq!(app.handle_key(key(KeyCode::Char('t'))), vec![]);
    assert!(matches!(app.mode, Mode::Form(_)));
    app.handle_key(key(KeyCode::Down)); // lr
    app.handle_key(key(KeyCode::Right)); // doubled
    let effects = app.handle_key(key(KeyCode::Enter));
    let [Effect::Submit(experiment)] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(experiment.train_config().optimizer.lr(), 2e-3);
    assert_eq!(experiment.topology().unwrap(), app.editor.topology);
    assert!(app.cx.runs.all.is_empty(), "rows come from the session");
    // The session queues it as its run 7, then starts it: the row follows.
    let info = RunInfo {
        experiment: (**experiment).clone(),
        topology: app.editor.topology.clone(),
        config: experiment.train_config(),
    };
    let update = |update| SessionEvent { run: 7, update };
    app.on_session(update(Update::Queued(Box::new(info))));
    assert_eq!(
        (app.cx.runs.all[0].name.as_str(), &app.cx.runs.all[0].state),
        ("run-1", &RunState::Queued)
    );
    let saved = SavedAt {
        id: "20261202-120000-mlp3-vanilla-s1".into(),
        dir: "saves/20261202-120000-mlp3-vanilla-s1".into(),
    };
    app.on_session(update(Update::Starting { saved: Some(saved) }));
    assert_eq!(
        app.cx.runs.all[0].saved_id.as_deref(),
        Some("20261202-120000-mlp3-vanilla-s1")
    );
    app.on_session(update(Update::Train(TrainEvent::Started {
        params: 1,
        steps_per_epoch: 1,
        train_samples: 1,
        val_samples: 1,
        test_samples: 1,
    })));
    assert_eq!(app.cx.runs.all[0].state, RunState::Running);
    // Quitting with active runs asks first.
    app.handle_key(key(KeyCode::Char('q')));
    assert!(matches!(app.mode, Mode::ConfirmQuit(_)));
    app.handle_key(key(KeyCode::Char('n')));
    assert_eq!(app.mode, Mode::Normal);
    // Pause, resume and stop go to the session's run.
    app.on_session(update(Update::Train(TrainEvent::Paused)));
    assert_eq!(
        app.handle_key(key(KeyCode::Char('p'))),
        vec![Effect::Send(7, Command::Resume)]
    );
    assert_eq!(
        app.handle_key(key(KeyCode::Char('x'))),
        vec![Effect::Send(7, Command::Stop)]
    );
    // `d` asks first, saying the files are kept; any key but y keeps the run.
    assert_eq!(app.handle_key(key(KeyCode::Char('d'))), vec![]);
    assert!(matches!(app.mode, Mode::ConfirmDelete(ConfirmDelete(0))));
    app.handle_key(key(KeyCode::Char('n')));
    assert_eq!((app.mode.clone(), app.cx.runs.all.len()), (Mode::Normal, 1));
    app.handle_key(key(KeyCode::Char('d')));
    let effects = app.handle_key(key(KeyCode::Char('y')));
    assert_eq!(effects, vec![Effect::Send(7, Command::Stop)]);
    assert!(app.cx.runs.all.is_empty());
    assert_eq!(
            app.cx.message.as_deref(),
            Some("removed run-1 from the table; its saved files (20261202-120000-mlp3-vanilla-s1) are kept")
        );
    // A deleted run's last words change nothing.
    let summary = crate::runs::Summary::new(
        &app.editor.topology,
        "cpu",
        crate::provenance::Provenance::here("test"),
    );
    app.on_session(update(Update::Ended {
        status: RunStatus::Stopped,
        summary: Box::new(summary),
    }));
    assert!(app.cx.runs.all.is_empty());
    assert_eq!(app.handle_key(key(KeyCode::Char('q'))), vec![Effect::Quit]);
}

#[test]
fn model_switch_picks_a_cnn_the_input_allows() {
    let mut app = app();
    app.handle_key(key(KeyCode::Char('m')));
    let Topology::Cnn(c) = &app.editor.topology else {
        panic!()
    };
    assert_eq!(c.stages.len(), 3, "the paper's CNN: 28 -> 14 -> 7 -> 4");
    assert!(app.editor.topology.validate().is_ok());
    app.editor
        .topology
        .apply_skips(&SkipSelection::Edges(vec![SkipEdge::new(1, 4)]))
        .unwrap();
    // Remove conv 2: conv 4 becomes conv 3 and the skip follows it.
    app.editor.selection = Selection::Layer(2);
    app.handle_key(key(KeyCode::Char('r')));
    let Topology::Cnn(c) = &app.editor.topology else {
        panic!()
    };
    assert_eq!(
        c.stages,
        vec![vec![32], vec![64, 64], vec![128, 128]],
        "{:?}",
        app.cx.message
    );
    let skips: Vec<String> = app
        .editor
        .topology
        .skips()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(skips, ["1-3"]);
    // Insert after conv 1 again: the skip moves back to 1-4.
    app.editor.selection = Selection::Layer(1);
    app.handle_key(key(KeyCode::Char('i')));
    let skips: Vec<String> = app
        .editor
        .topology
        .skips()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(skips, ["1-4"]);
    // Back to the MLP and to this CNN again: each family as it was left.
    let cnn = app.editor.topology.clone();
    app.handle_key(key(KeyCode::Char('m')));
    assert_eq!(
        app.editor.topology,
        Topology::default_mlp(app.cx.input, app.cx.classes)
    );
    app.handle_key(key(KeyCode::Char('+')));
    let mlp = app.editor.topology.clone();
    app.handle_key(key(KeyCode::Char('m')));
    assert_eq!(app.editor.topology, cnn);
    app.handle_key(key(KeyCode::Char('m')));
    assert_eq!(app.editor.topology, mlp);
}

#[test]
fn inserting_then_removing_a_layer_restores_every_edge_and_its_kind() {
    let mut app = app();
    let mut t = Topology::Mlp(MlpSpec::new(784, vec![64; 4], 10));
    t.apply_skips(&"res:chain:2,0-3,1-4".parse().unwrap())
        .unwrap();
    app.editor.topology = t.clone();
    for layer in 0..=4 {
        app.editor.selection = Selection::Layer(layer);
        app.handle_key(key(KeyCode::Char('i')));
        assert_ne!(app.editor.topology, t);
        app.handle_key(key(KeyCode::Char('r')));
        assert_eq!(
            app.editor.topology, t,
            "after layer {layer}: {:?}",
            app.cx.message
        );
    }
}

#[test]
fn a_preset_with_its_own_adam_constants_trains_with_them_from_the_lab() {
    let mut app = app();
    let mut e = app.experiment();
    e.optimizer = Optimizer::Adam {
        lr: 0.002,
        beta1: 0.8,
        beta2: 0.99,
        eps: 1e-6,
    };
    app.load_experiment("tuned", &e);
    assert_eq!(app.experiment().optimizer, e.optimizer);
    // Through the form and out as the run the session is handed.
    app.handle_key(key(KeyCode::Char('t')));
    let effects = app.handle_key(key(KeyCode::Enter));
    let [Effect::Submit(submitted)] = &effects[..] else {
        panic!("{effects:?}");
    };
    assert_eq!(submitted.optimizer, e.optimizer);
    // The form says it trains with them.
    app.handle_key(key(KeyCode::Char('t')));
    let Mode::Form(form) = &app.mode else {
        panic!("{:?}", app.mode);
    };
    assert_eq!(form.adam_constants, (0.8, 0.99, 1e-6));
}

#[test]
fn n_cycles_the_normalisation_and_the_run_trains_with_it() {
    use crate::topology::Norm;
    let mut app = app();
    let norm = |app: &App| match &app.editor.topology {
        Topology::Mlp(m) => m.norm,
        Topology::Cnn(c) => c.norm,
    };
    let before = app.editor.topology.param_count();
    app.handle_key(key(KeyCode::Char('N')));
    assert_eq!(norm(&app), Norm::Batch);
    // A scale and a shift in place of each hidden bias: one more per hidden unit.
    assert_eq!(app.editor.topology.param_count(), before + 128 + 256);
    let effects = app.handle_key(key(KeyCode::Char('t')));
    assert!(effects.is_empty());
    let effects = app.handle_key(key(KeyCode::Enter));
    let [Effect::Submit(e)] = &effects[..] else {
        panic!("{effects:?}");
    };
    assert_eq!(e.topology().unwrap(), app.editor.topology);
    app.handle_key(key(KeyCode::Char('N')));
    assert_eq!(norm(&app), Norm::Layer);
    app.handle_key(key(KeyCode::Char('N')));
    assert_eq!(norm(&app), Norm::None);
    // A CNN has batch norm or none.
    app.handle_key(key(KeyCode::Char('m')));
    app.handle_key(key(KeyCode::Char('N')));
    assert_eq!(norm(&app), Norm::Batch);
    app.handle_key(key(KeyCode::Char('N')));
    assert_eq!(norm(&app), Norm::None);
}

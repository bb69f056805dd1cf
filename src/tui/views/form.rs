//! The train form: the next run's hyperparameters. Values are typed (digits start an entry,
//! Enter or a move sets it, checked by the experiment's own rules) or stepped with ←/→; what
//! does not apply (momentum under Adam) is hidden. Enter starts the runs, one per seed.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::{Reply, Request, View};
use crate::experiment::{Experiment, Optimizer};
use crate::hyperparams::{OptimizerConfig, TrainConfig};
use crate::tui::context::Context;
use crate::tui::widgets::{centered, hint_line};

/// Adam's usual betas and epsilon.
const USUAL_ADAM: (f64, f64, f64) = (0.9, 0.999, 1e-8);

/// The "train" form: hyperparameters of the next run. Values are typed (digits start an
/// entry, Enter or a move sets it, checked by the experiment's own rules) or stepped with
/// ←/→; fields that do not apply (momentum under Adam) are hidden.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainForm {
    pub field: FormField,
    pub adam: bool,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch: usize,
    pub epochs: usize,
    pub seed: u64,
    /// Adam's betas and epsilon: the usual ones, or a loaded preset's (shown then).
    pub adam_constants: (f64, f64, f64),
    /// Runs to start, with seeds `seed`, `seed + 1`, ... (a seed group).
    pub seeds: usize,
    /// The text being typed into `field`, until it is set.
    pub typing: Option<String>,
    /// Why the typed text cannot be set.
    pub error: Option<String>,
}

/// One field of the train form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormField {
    Optimizer,
    Lr,
    Momentum,
    WeightDecay,
    Batch,
    Epochs,
    Seed,
    Seeds,
}

impl FormField {
    pub const ALL: [FormField; 8] = [
        FormField::Optimizer,
        FormField::Lr,
        FormField::Momentum,
        FormField::WeightDecay,
        FormField::Batch,
        FormField::Epochs,
        FormField::Seed,
        FormField::Seeds,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FormField::Optimizer => "optimizer",
            FormField::Lr => "lr",
            FormField::Momentum => "momentum",
            FormField::WeightDecay => "weight decay",
            FormField::Batch => "batch",
            FormField::Epochs => "epochs",
            FormField::Seed => "seed",
            FormField::Seeds => "seeds",
        }
    }
}

/// The most seeds one submission of the form starts.
pub const MAX_FORM_SEEDS: usize = 20;

impl Default for TrainForm {
    fn default() -> Self {
        Self {
            field: FormField::Optimizer,
            adam: true,
            lr: 1e-3,
            momentum: 0.9,
            weight_decay: 0.0,
            batch: 64,
            epochs: 5,
            seed: 1,
            adam_constants: USUAL_ADAM,
            seeds: 1,
            typing: None,
            error: None,
        }
    }
}

impl TrainForm {
    /// The fields that apply, in order: momentum only for SGD.
    pub fn fields(&self) -> Vec<FormField> {
        FormField::ALL
            .into_iter()
            .filter(|&f| f != FormField::Momentum || !self.adam)
            .collect()
    }

    pub fn value(&self, field: FormField) -> String {
        match field {
            FormField::Optimizer => if self.adam { "adam" } else { "sgd" }.into(),
            FormField::Lr => format!("{}", self.lr),
            FormField::Momentum => format!("{}", self.momentum),
            FormField::WeightDecay => format!("{}", self.weight_decay),
            FormField::Batch => self.batch.to_string(),
            FormField::Epochs => self.epochs.to_string(),
            FormField::Seed => self.seed.to_string(),
            FormField::Seeds => self.seeds.to_string(),
        }
    }

    /// Moves to the next (or previous) field that applies; a typed value is set first, and
    /// the form stays where it is if it cannot be.
    pub fn step_field(&mut self, forward: bool) {
        if !self.commit() {
            return;
        }
        let fields = self.fields();
        let at = fields.iter().position(|&f| f == self.field).unwrap_or(0);
        let n = fields.len();
        self.field = fields[if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        }];
    }

    /// Sets the typed text, if any: `false` (with the reason in `error`) when it is not a
    /// value the field takes.
    pub fn commit(&mut self) -> bool {
        let Some(text) = self.typing.clone() else {
            return true;
        };
        match self.set(self.field, text.trim()) {
            Ok(()) => {
                self.typing = None;
                self.error = None;
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// Parses and checks `text` for `field` with the experiment's rules.
    fn set(&mut self, field: FormField, text: &str) -> Result<(), String> {
        use crate::experiment::rules;
        let name = field.name();
        let real = || -> Result<f64, String> {
            text.parse::<f64>()
                .map_err(|_| format!("{name}: `{text}` is not a number"))
        };
        let whole = || -> Result<u64, String> {
            text.parse::<u64>()
                .map_err(|_| format!("{name}: `{text}` is not a whole number"))
        };
        let checked = |r: Result<(), &str>| r.map_err(|e| format!("{name} {text} {e}"));
        match field {
            FormField::Optimizer => return Err("optimizer: ←/→ choose sgd or adam".into()),
            FormField::Lr => {
                let v = real()?;
                checked(rules::lr(v))?;
                self.lr = v;
            }
            FormField::Momentum => {
                let v = real()?;
                checked(rules::momentum(v))?;
                self.momentum = v;
            }
            FormField::WeightDecay => {
                let v = real()?;
                checked(rules::weight_decay(v))?;
                self.weight_decay = v;
            }
            FormField::Batch => {
                let v = whole()? as usize;
                checked(rules::at_least_one(v))?;
                self.batch = v;
            }
            FormField::Epochs => {
                let v = whole()? as usize;
                checked(rules::at_least_one(v))?;
                self.epochs = v;
            }
            FormField::Seed => self.seed = whole()?,
            FormField::Seeds => {
                let v = whole()? as usize;
                if !(1..=MAX_FORM_SEEDS).contains(&v) {
                    return Err(format!("seeds {v} must be 1 to {MAX_FORM_SEEDS}"));
                }
                self.seeds = v;
            }
        }
        Ok(())
    }

    /// A key typed into the form's value: digits and a point start an entry; after that,
    /// exponents and signs too (`1e-4`).
    pub fn type_char(&mut self, c: char) -> bool {
        let starts = c.is_ascii_digit() || c == '.';
        let continues = self.typing.is_some() && "eE-+".contains(c);
        if self.field == FormField::Optimizer || !(starts || continues) {
            return false;
        }
        self.typing.get_or_insert_with(String::new).push(c);
        self.error = None;
        true
    }

    /// Left/right on a field: halve/double rates, step counts.
    pub fn adjust(&mut self, up: bool) {
        let scale = |v: f64| if up { v * 2.0 } else { v / 2.0 };
        match self.field {
            FormField::Optimizer => {
                self.adam = !self.adam;
                self.lr = if self.adam { 1e-3 } else { 1e-2 };
            }
            FormField::Lr => self.lr = scale(self.lr).clamp(1e-6, 10.0),
            FormField::Momentum => {
                self.momentum = ((self.momentum + if up { 0.05 } else { -0.05 }) * 100.0)
                    .round()
                    .clamp(0.0, 99.0)
                    / 100.0
            }
            FormField::WeightDecay => {
                self.weight_decay = match (self.weight_decay == 0.0, up) {
                    (true, true) => 1e-5,
                    (true, false) => 0.0,
                    (false, _) => scale(self.weight_decay),
                };
                if self.weight_decay < 1e-6 {
                    self.weight_decay = 0.0;
                }
            }
            FormField::Batch => {
                self.batch = if up {
                    (self.batch * 2).min(4096)
                } else {
                    (self.batch / 2).max(1)
                }
            }
            FormField::Epochs => {
                self.epochs = if up {
                    self.epochs + 1
                } else {
                    self.epochs.saturating_sub(1).max(1)
                }
            }
            FormField::Seed => {
                self.seed = if up {
                    self.seed.saturating_add(1)
                } else {
                    self.seed.saturating_sub(1)
                }
            }
            FormField::Seeds => {
                self.seeds = if up {
                    (self.seeds + 1).min(MAX_FORM_SEEDS)
                } else {
                    self.seeds.saturating_sub(1).max(1)
                }
            }
        }
    }

    pub fn config(&self) -> TrainConfig {
        TrainConfig {
            optimizer: if self.adam {
                let (beta1, beta2, eps) = self.adam_constants;
                OptimizerConfig::Adam {
                    lr: self.lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay: self.weight_decay,
                }
            } else {
                OptimizerConfig::sgd(self.lr, self.momentum, self.weight_decay)
            },
            batch_size: self.batch,
            epochs: self.epochs,
            seed: self.seed,
            schedule: None,
        }
    }
}

impl TrainForm {
    /// The form with an experiment's hyperparameters (its Adam constants kept).
    pub fn load(&mut self, e: &Experiment) {
        match e.optimizer {
            Optimizer::Sgd { lr, momentum } => {
                self.adam = false;
                self.lr = lr;
                self.momentum = momentum;
            }
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                self.adam = true;
                self.lr = lr;
                self.adam_constants = (beta1, beta2, eps);
            }
        }
        self.weight_decay = e.weight_decay;
        self.batch = e.batch;
        self.epochs = e.epochs;
        self.seed = e.seed;
    }
}

impl View for TrainForm {
    fn key(&mut self, key: KeyEvent, _cx: &mut Context) -> Reply {
        let form = self;
        let typing = form.typing.is_some();
        match key.code {
            KeyCode::Char(c) if form.type_char(c) => {}
            KeyCode::Backspace if typing => {
                let text = form.typing.get_or_insert_with(String::new);
                text.pop();
                if text.is_empty() {
                    form.typing = None;
                }
                form.error = None;
            }
            // Esc leaves an entry first, then the form.
            KeyCode::Esc if typing => {
                form.typing = None;
                form.error = None;
            }
            KeyCode::Esc => return Reply::Close,
            KeyCode::Enter if typing => {
                form.commit();
            }
            KeyCode::Up | KeyCode::Char('k') | KeyCode::BackTab => form.step_field(false),
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => form.step_field(true),
            _ if typing => {}
            KeyCode::Left | KeyCode::Char('h') | KeyCode::Char('-') => form.adjust(false),
            KeyCode::Right | KeyCode::Char('l') | KeyCode::Char('+') | KeyCode::Char(' ') => {
                form.adjust(true)
            }
            KeyCode::Enter | KeyCode::Char('t') => {
                return Reply::Then(Request::Train {
                    config: form.config(),
                    seeds: form.seeds,
                });
            }
            _ => {}
        }
        Reply::Stay
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &Context) {
        let form = &*self;
        let fields = form.fields();
        let error_rows = u16::from(form.error.is_some()) * 2;
        let extra = u16::from(form.adam && form.adam_constants != USUAL_ADAM);
        let popup = centered(area, 50, fields.len() as u16 + 6 + error_rows + extra);
        frame.render_widget(Clear, popup);
        let mut lines = vec![
            Line::from(format!(" data: {}", cx.data_name)),
            Line::from(""),
        ];
        for &field in &fields {
            let selected = field == form.field;
            let style = if selected {
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            };
            let arrow = if selected { "▸" } else { " " };
            let value = match (&form.typing, selected) {
                (Some(text), true) => format!("{text}▏"),
                _ => format!("‹ {} ›", form.value(field)),
            };
            lines.push(Line::styled(
                format!(" {arrow} {:<13} {value}", field.name()),
                style,
            ));
        }
        if form.adam && form.adam_constants != USUAL_ADAM {
            let (b1, b2, eps) = form.adam_constants;
            lines.push(Line::styled(
                format!("   {:<13} β {b1}/{b2} ε {eps:e} (the preset's)", "adam"),
                Style::default().fg(Color::Gray),
            ));
        }
        if let Some(error) = &form.error {
            lines.push(Line::from(""));
            lines.push(Line::styled(
                format!(" {error}"),
                Style::default().fg(Color::Red),
            ));
        }
        lines.push(Line::from(""));
        let hint = match form.typing {
            Some(_) => " Enter sets · Esc undoes the entry",
            None => " type a value or ←/→ · Enter starts · Esc",
        };
        lines.push(Line::styled(hint, Style::default().fg(Color::Gray)));
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" Train this topology "),
            ),
            popup,
        );
    }

    fn hints(&self, _cx: &Context) -> Option<Line<'static>> {
        Some({
            match self.typing {
                Some(_) => hint_line([
                    ("Enter", "set"),
                    ("⌫", "erase"),
                    ("Esc", "undo entry"),
                    ("↑↓", "set and move"),
                ]),
                None => hint_line([
                    ("↑↓", "field"),
                    ("0-9", "type"),
                    ("←→", "change"),
                    ("Enter", "start"),
                    ("Esc", "cancel"),
                ]),
            }
        })
    }
}

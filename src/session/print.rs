//! The headless front end: a session's updates as a table per run (with a progress bar on a
//! terminal) or as JSON lines for scripts.

use std::io::{self, Write};

use crate::runs::Summary;
use crate::session::{Observer, Run, Session, SessionEvent, Update};
use crate::train::{RunStatus, Schedule, TrainEvent};

pub struct Printer<O: Write, E: Write> {
    out: O,
    /// Progress bars go here (stderr), so stdout stays a clean table.
    err: E,
    json: bool,
    /// Draw a progress bar (`err` is a terminal).
    progress: bool,
    /// The running run's bar (indicatif, on stderr): steps, rate, ETA.
    bar: Option<indicatif::ProgressBar>,
    /// The step the bar started at (a resumed run starts past 0).
    bar_start: u64,
    /// Head each run with its seed (several runs in a row).
    announce: bool,
}

/// An epoch as the JSON lines of `train --json` and `runs --watch` print it.
pub fn epoch_json(m: &crate::train::EpochMetrics) -> serde_json::Value {
    serde_json::json!({
        "event": "epoch",
        "epoch": m.epoch,
        "train_loss": m.train_loss,
        "train_accuracy": m.train_accuracy,
        "val_loss": m.val_loss,
        "val_accuracy": m.val_accuracy,
        "samples_per_sec": m.samples_per_sec,
        "seconds": m.seconds,
    })
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

impl<O: Write, E: Write> Printer<O, E> {
    pub fn new(out: O, err: E, json: bool, progress: bool, announce: bool) -> Self {
        Self {
            out,
            err,
            json,
            progress: progress && !json,
            bar: None,
            bar_start: 0,
            announce,
        }
    }

    /// The writers back (tests read what was printed).
    pub fn into_parts(self) -> (O, E) {
        (self.out, self.err)
    }

    fn json_line(&mut self, value: serde_json::Value) -> io::Result<()> {
        writeln!(self.out, "{value}")
    }

    /// The run's bar is done: off the screen (the next run gets its own).
    fn clear_progress(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.bar_start = 0;
    }

    /// Prints a line with the bar taken off the screen and drawn again after it.
    fn above_bar(&mut self, line: std::fmt::Arguments<'_>) -> io::Result<()> {
        let out = &mut self.out;
        match &self.bar {
            Some(bar) => bar.suspend(|| writeln!(out, "{line}")),
            None => writeln!(out, "{line}"),
        }
    }

    fn bar_for(&mut self, epochs: usize, steps_per_epoch: usize) -> &indicatif::ProgressBar {
        let total = (epochs * steps_per_epoch) as u64;
        self.bar.get_or_insert_with(|| {
            let style = indicatif::ProgressStyle::with_template(
                "  {msg} [{bar:30}] {pos}/{len} steps · ETA {eta}",
            )
            .expect("a valid template")
            .progress_chars("#>-");
            indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr(),
            )
            .with_style(style)
        })
    }

    fn describe(&mut self, run: &Run, train: usize, val: usize, test: usize) -> io::Result<()> {
        let (e, t, c) = (&run.info.experiment, &run.info.topology, &run.info.config);
        writeln!(
            self.out,
            "{} on {} ({train} train / {val} val / {test} test), {} params, {} MACs/sample",
            t.summary(),
            e.dataset,
            t.param_count(),
            t.macs_per_sample()
        )?;
        let schedule = match c.schedule {
            Some(Schedule::SkipStar {
                max_vanilla_epochs,
                patience,
            }) => format!(
                ", skip*: skips off for up to {max_vanilla_epochs} epochs (patience {patience})"
            ),
            None => String::new(),
        };
        writeln!(
            self.out,
            "{} lr {} batch {} epochs {} weight decay {} seed {} on {}{schedule}",
            c.optimizer.name(),
            c.optimizer.lr(),
            c.batch_size,
            c.epochs,
            c.optimizer.weight_decay(),
            c.seed,
            run.summary.device
        )?;
        writeln!(
            self.out,
            "{:>5}  {:>10}  {:>9}  {:>8}  {:>9}  {:>9}  {:>7}",
            "epoch", "train loss", "train acc", "val loss", "val acc", "samples/s", "time"
        )
    }

    fn ended(&mut self, run: &Run, status: &RunStatus, summary: &Summary) -> io::Result<()> {
        let saved = run.saved.as_ref().map(|s| s.id.clone());
        if self.json {
            return self.json_line(serde_json::json!({
                "event": "ended",
                "status": summary.status.to_string(),
                "epochs_done": summary.epochs_done,
                "best_val_accuracy": summary.best_val_accuracy,
                "test_accuracy": summary.test_accuracy,
                "test_epoch": summary.test_epoch,
                "run": saved,
            }));
        }
        self.clear_progress();
        // A failed run's folder holds what it saved before it failed, not a result.
        // (The files say which epochs: the one whose save failed is not among them.)
        match (&saved, status) {
            (Some(id), RunStatus::Failed(_)) if summary.epochs_done > 0 => {
                writeln!(self.out, "what it saved before it failed is in {id}")?
            }
            (Some(_), RunStatus::Failed(_)) | (None, _) => {}
            (Some(id), _) => writeln!(self.out, "saved as {id}")?,
        }
        let epochs = summary.epochs_done;
        let best = match (summary.best_val_accuracy, summary.best_epoch) {
            (Some(v), Some(e)) => format!("best val {} (epoch {e})", pct(v)),
            _ => "no epoch finished".into(),
        };
        let test = match (summary.test_accuracy, summary.test_epoch) {
            (Some(t), Some(e)) => format!(", test {} (weights of epoch {e})", pct(t)),
            (Some(t), None) => format!(", test {}", pct(t)),
            _ => String::new(),
        };
        match status {
            RunStatus::Finished => writeln!(
                self.out,
                "finished: {epochs} epochs, {best}{test}, {:.2} s/epoch",
                summary.mean_epoch_seconds.unwrap_or(0.0)
            ),
            RunStatus::Stopped => writeln!(self.out, "stopped after {epochs} epochs: {best}{test}"),
            RunStatus::Diverged { epoch, step, loss } => writeln!(
                self.out,
                "diverged: loss became {loss} at step {step} (epoch {epoch}); try a lower --lr. {best}"
            ),
            RunStatus::Failed(message) => writeln!(self.out, "failed: {message}"),
        }
    }

    fn train(&mut self, run: &Run, event: &TrainEvent) -> io::Result<()> {
        match event {
            TrainEvent::Started {
                train_samples,
                val_samples,
                test_samples,
                ..
            } if !self.json => self.describe(run, *train_samples, *val_samples, *test_samples),
            TrainEvent::Progress {
                epoch,
                step,
                steps_per_epoch,
                loss,
            } if self.progress => {
                let epochs = run.info.config.epochs;
                let bar = self.bar_for(epochs, *steps_per_epoch);
                let done = ((epoch - 1) * steps_per_epoch + step) as u64;
                if bar.position() == 0 && done > 1 {
                    // The first report: the rate counts from here (a resumed run starts past 0).
                    bar.reset_elapsed();
                    self.bar_start = done;
                }
                let bar = self.bar.as_ref().expect("made above");
                bar.set_position(done);
                let rate = done.saturating_sub(self.bar_start) as f64
                    / bar.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!(
                    "epoch {epoch}/{epochs} loss {loss:.4} · {rate:.1} steps/s"
                ));
                Ok(())
            }
            TrainEvent::Epoch(m) if self.json => self.json_line(epoch_json(m)),
            TrainEvent::Epoch(m) => {
                self.above_bar(format_args!(
                    "{:>5}  {:>10.4}  {:>9}  {:>8.4}  {:>9}  {:>9.0}  {:>6.1}s",
                    m.epoch,
                    m.train_loss,
                    pct(m.train_accuracy),
                    m.val_loss,
                    pct(m.val_accuracy),
                    m.samples_per_sec,
                    m.seconds
                ))
            }
            TrainEvent::SkipsEnabled { after_epoch, edges } if self.json => {
                self.json_line(serde_json::json!({
                    "event": "skips_enabled", "after_epoch": after_epoch, "edges": edges
                }))
            }
            TrainEvent::SkipsEnabled { after_epoch, edges } => self.above_bar(format_args!(
                "skip*: {edges} skips enabled after epoch {after_epoch} (weights kept, new skip weights zero)"
            )),
            _ => Ok(()),
        }
    }
}

impl<O: Write, E: Write> Observer for Printer<O, E> {
    fn update(&mut self, session: &Session, event: &SessionEvent) -> io::Result<()> {
        let Some(run) = session.run(event.run) else {
            return Ok(());
        };
        match &event.update {
            Update::Queued(_) => {}
            Update::Starting { saved } => {
                if self.announce && !self.json {
                    writeln!(self.out, "== seed {} ==", run.info.experiment.seed)?;
                }
                match (saved, self.json) {
                    (Some(at), true) => self.json_line(serde_json::json!({
                        "event": "saving", "run": at.id, "dir": at.dir
                    }))?,
                    (Some(at), false) => writeln!(self.out, "saving to {}", at.dir.display())?,
                    (None, _) => {}
                }
            }
            Update::Train(e) => self.train(run, e)?,
            Update::Ended { status, summary } => self.ended(run, status, summary)?,
        }
        self.out.flush()
    }
}

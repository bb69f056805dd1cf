//! Where a run stands, in one type for every layer: the session's queue, the lab's table, the
//! saved `summary.ron` (which keeps its own spelling, see `runs`) and the commands' output.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RunStatus {
    Finished,
    Stopped,
    Diverged {
        epoch: usize,
        step: usize,
        loss: f64,
    },
    Failed(String),
}

/// Where a run is in its life.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    Queued,
    /// Its thread is loading or splitting the data.
    Preparing,
    /// Training (a saved run left so by a killed process reads so too, until it is checked).
    Running,
    Paused,
    Ended(RunStatus),
}

impl RunState {
    pub fn is_active(&self) -> bool {
        !matches!(self, RunState::Ended(_))
    }

    /// How the run ended; `None` while it is active.
    pub fn ended(&self) -> Option<RunStatus> {
        match self {
            RunState::Ended(status) => Some(status.clone()),
            _ => None,
        }
    }

    /// Finished, or diverged: a result either way (that learning rate is too high).
    pub fn has_result(&self) -> bool {
        matches!(
            self,
            RunState::Ended(RunStatus::Finished | RunStatus::Diverged { .. })
        )
    }

    /// One short word for the lab's table.
    pub fn label(&self) -> String {
        match self {
            RunState::Queued => "queued".into(),
            RunState::Preparing => "loading".into(),
            RunState::Running => "running".into(),
            RunState::Paused => "paused".into(),
            RunState::Ended(RunStatus::Finished) => "done".into(),
            RunState::Ended(RunStatus::Stopped) => "stopped".into(),
            RunState::Ended(RunStatus::Diverged { step, .. }) => format!("diverged@{step}"),
            RunState::Ended(RunStatus::Failed(_)) => "failed".into(),
        }
    }

    /// One word for files and listings: running (queued, loading and paused runs too),
    /// finished, stopped, diverged or failed.
    pub fn word(&self) -> &'static str {
        match self {
            RunState::Queued | RunState::Preparing | RunState::Running | RunState::Paused => {
                "running"
            }
            RunState::Ended(RunStatus::Finished) => "finished",
            RunState::Ended(RunStatus::Stopped) => "stopped",
            RunState::Ended(RunStatus::Diverged { .. }) => "diverged",
            RunState::Ended(RunStatus::Failed(_)) => "failed",
        }
    }
}

impl From<RunStatus> for RunState {
    fn from(status: RunStatus) -> Self {
        RunState::Ended(status)
    }
}

/// `finished`, `diverged: loss NaN at epoch 1, step 3`, `failed: the disk is full`.
impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunState::Ended(RunStatus::Diverged { epoch, step, loss }) => {
                write!(f, "diverged: loss {loss} at epoch {epoch}, step {step}")
            }
            RunState::Ended(RunStatus::Failed(m)) => write!(f, "failed: {m}"),
            other => f.write_str(other.word()),
        }
    }
}

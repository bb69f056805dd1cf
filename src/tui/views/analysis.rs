//! What the analysis views share: a study asked of the event loop, which computes it off the
//! screen's thread, and the state of its answer as a view shows it.

use std::path::PathBuf;

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Wrap};
use ratatui::Frame;

use crate::analysis::cka::LayerCka;
use crate::analysis::landscape::Landscape;
use crate::analysis::lesion::Lesion;
use crate::analysis::usage::EdgeUsage;
use crate::topology::Topology;

/// Which analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnalysisKind {
    Lesion,
    Usage,
    Similarity,
    /// The loss along one direction, a curve per run.
    Landscape,
    /// The loss over a plane (two directions) around the first run's weights.
    LandscapeMap,
}

/// A saved run an analysis studies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StudiedRun {
    /// Its folder's name.
    pub id: String,
    /// Its name in the lab (`run-3`).
    pub name: String,
    /// Another seed of its configuration, for the similarity's seed-to-seed ceiling.
    pub twin: Option<Box<StudiedRun>>,
}

/// An analysis of saved runs, for the event loop to compute.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisRequest {
    /// Tells this request's answers from an earlier one's (and cancels it when it changes).
    pub ticket: u64,
    pub kind: AnalysisKind,
    /// The runs studied: lesion, usage and the landscape map study the first; similarity sets
    /// the first's layers against the second's (or its own); the landscape draws each.
    pub runs: Vec<StudiedRun>,
    /// The folders to look for the runs in.
    pub folders: Vec<PathBuf>,
}

impl AnalysisRequest {
    /// The runs as a view's title names them: `run-1`, `run-1 against run-2` (similarity),
    /// `run-1, run-2` (curves).
    pub fn title(&self) -> String {
        let names: Vec<&str> = self.runs.iter().map(|r| r.name.as_str()).collect();
        match self.kind {
            AnalysisKind::Similarity => names.join(" against "),
            _ => names.join(", "),
        }
    }
}

/// CKA between runs, as the similarity view shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Similarity {
    /// The first run's layers against the second's (or its own).
    pub map: LayerCka,
    /// Two runs: for each, its seed-to-seed ceiling, layer by layer (the CKA of each layer
    /// with the same layer of its twin), and the twin's name in the lab; `None` where it has
    /// no twin.
    pub ceilings: Vec<Option<(String, Vec<f64>)>>,
}

/// What the event loop hands back.
#[derive(Clone, Debug, PartialEq)]
pub enum AnalysisUpdate {
    Progress {
        ticket: u64,
        done: usize,
        total: usize,
    },
    Lesion {
        ticket: u64,
        result: Result<Box<(Topology, Lesion)>, String>,
    },
    Usage {
        ticket: u64,
        result: Result<Box<(Topology, EdgeUsage)>, String>,
    },
    Similarity {
        ticket: u64,
        result: Result<Box<Similarity>, String>,
    },
    /// A curve per run, in the request's order.
    Landscape {
        ticket: u64,
        result: Result<Vec<Landscape>, String>,
    },
    LandscapeMap {
        ticket: u64,
        result: Result<Box<Landscape>, String>,
    },
}

impl AnalysisUpdate {
    pub fn ticket(&self) -> u64 {
        match self {
            AnalysisUpdate::Progress { ticket, .. }
            | AnalysisUpdate::Lesion { ticket, .. }
            | AnalysisUpdate::Usage { ticket, .. }
            | AnalysisUpdate::Similarity { ticket, .. }
            | AnalysisUpdate::Landscape { ticket, .. }
            | AnalysisUpdate::LandscapeMap { ticket, .. } => *ticket,
        }
    }
}

/// A view that waits for an analysis: the router hands it the updates of its ticket.
pub trait Analysing {
    /// The ticket of the request it waits for.
    fn ticket(&self) -> u64;
    /// Takes progress or a result of its request.
    fn take(&mut self, update: AnalysisUpdate);
}

/// Waiting, nothing done yet.
impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending::Working { done: 0, total: 0 }
    }
}

impl<T> Pending<T> {
    /// Takes progress: `true` if `update` was progress.
    pub fn progress(&mut self, update: &AnalysisUpdate) -> bool {
        match *update {
            AnalysisUpdate::Progress { done, total, .. } => {
                *self = Pending::Working { done, total };
                true
            }
            _ => false,
        }
    }

    /// A result as the view holds it.
    pub fn settled(result: Result<Box<T>, String>) -> Self {
        match result {
            Ok(ready) => Pending::Ready(ready),
            Err(e) => Pending::Failed(e),
        }
    }
}

/// An analysis as a view holds it.
#[derive(Clone, Debug, PartialEq)]
pub enum Pending<T> {
    /// Being computed: evaluations done of those planned (0 of 0 until the first).
    Working {
        done: usize,
        total: usize,
    },
    Ready(Box<T>),
    Failed(String),
}

/// The body of a view whose analysis is not ready: a progress bar or the error.
pub fn draw_pending<T>(frame: &mut Frame, area: Rect, title: &str, what: &str, state: &Pending<T>) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title.to_string());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    match state {
        Pending::Working { done, total } => {
            let text = match total {
                0 => format!("{what}: reading the run's weights and data..."),
                _ => format!("{what}: {done} of {total} evaluations (Esc cancels)"),
            };
            frame.render_widget(Paragraph::new(text), Rect { height: 1, ..inner });
            if *total > 0 && inner.height > 2 {
                let ratio = (*done as f64 / *total as f64).clamp(0.0, 1.0);
                let bar = Rect {
                    y: inner.y + 2,
                    height: 1,
                    ..inner
                };
                frame.render_widget(
                    Gauge::default()
                        .ratio(ratio)
                        .gauge_style(Style::default().fg(Color::Cyan)),
                    bar,
                );
            }
        }
        Pending::Failed(message) => frame.render_widget(
            Paragraph::new(Line::styled(
                format!("{what} failed: {message}"),
                Style::default().fg(Color::Red),
            ))
            .wrap(Wrap { trim: true }),
            inner,
        ),
        Pending::Ready(_) => {}
    }
}

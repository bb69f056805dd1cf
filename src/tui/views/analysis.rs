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
    Landscape,
}

/// An analysis of a saved run, for the event loop to compute.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisRequest {
    /// Tells this request's answers from an earlier one's (and cancels it when it changes).
    pub ticket: u64,
    pub kind: AnalysisKind,
    /// The run's folder name and the folders to look for it in.
    pub run_id: String,
    pub folders: Vec<PathBuf>,
    /// CKA: the run whose layers are the columns, where two runs are marked.
    pub other_run_id: Option<String>,
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
        result: Result<Box<LayerCka>, String>,
    },
    Landscape {
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
            | AnalysisUpdate::Landscape { ticket, .. } => *ticket,
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

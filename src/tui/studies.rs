//! Computes the analysis views' studies off the screen's thread: reads the runs' weights and
//! data, runs the analysis layer's study and tells the lab its progress while the view still
//! waits for it (its ticket is current), stopping when it no longer does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::views::analysis::{AnalysisKind, AnalysisRequest, AnalysisUpdate, Similarity};
use crate::analysis::landscape::{Landscape, LandscapeOptions};
use crate::analysis::lesion::Progress;
use crate::data::{Dataset, DatasetName, PreparedData, Samples};
use crate::device::Device;
use crate::runs::{self, SavedRun, Weights};

/// Test examples CKA runs on: enough for stable values, few enough to answer in seconds.
const CKA_SAMPLES: usize = 1000;
const CKA_BATCH: usize = 250;
/// Training examples a landscape's loss is taken over.
const LANDSCAPE_SAMPLES: usize = 1000;
/// Points along a curve (odd, so the trained weights are one).
const CURVE_POINTS: usize = 41;
/// The map is coarser, over fewer examples: 21 × 21 points take a paper MLP seconds and the
/// paper CNN a few minutes on two cores.
const MAP_POINTS: usize = 21;
const MAP_SAMPLES: usize = 500;

/// One request being computed.
struct Study<'a> {
    request: &'a AnalysisRequest,
    data_dir: &'a Path,
    device: Device,
    current: &'a AtomicU64,
    tell: &'a dyn Fn(AnalysisUpdate),
    /// Data sets read so far (several runs usually share one).
    datasets: HashMap<DatasetName, Dataset>,
}

impl Study<'_> {
    /// Whether the view still waits for this request.
    fn wanted(&self) -> bool {
        self.current.load(Ordering::SeqCst) == self.request.ticket
    }

    /// A progress callback for part `part` of `parts` equal parts of the study.
    fn progress(&self, part: usize, parts: usize) -> impl FnMut(Progress) -> bool + '_ {
        move |p: Progress| {
            let going = self.wanted();
            if going {
                (self.tell)(AnalysisUpdate::Progress {
                    ticket: self.request.ticket,
                    done: part * p.total + p.done,
                    total: parts * p.total,
                });
            }
            going
        }
    }

    fn load(&self, id: &str) -> Result<(SavedRun, Weights), String> {
        let dir = runs::find_run_in(&self.request.folders, id).map_err(|e| e.to_string())?;
        let saved = runs::load_run(&dir).map_err(|e| e.to_string())?;
        let weights = saved.weights_to_resume().map_err(|e| e.to_string())?;
        Ok((saved, weights))
    }

    /// The run's own split of its data set (its seed and validation share).
    fn split(&mut self, saved: &SavedRun) -> Result<PreparedData, String> {
        let e = &saved.experiment;
        if !self.datasets.contains_key(&e.dataset) {
            let data = crate::data::load(e.dataset, self.data_dir).map_err(|e| e.to_string())?;
            self.datasets.insert(e.dataset, data);
        }
        Ok(PreparedData::prepare(
            &self.datasets[&e.dataset],
            e.val_fraction,
            e.seed,
        ))
    }

    fn first_run(&self) -> Result<&str, String> {
        self.request
            .runs
            .first()
            .map(|r| r.id.as_str())
            .ok_or_else(|| "no run to study".to_string())
    }

    fn lesion(
        &mut self,
    ) -> Result<Box<(crate::topology::Topology, crate::analysis::lesion::Lesion)>, String> {
        let (saved, w) = self.load(self.first_run()?)?;
        let split = self.split(&saved)?;
        let study = crate::analysis::lesion::lesion_on(
            self.device,
            &w.topology,
            &w.params,
            &split.val,
            &Default::default(),
            &mut self.progress(0, 1),
        )
        .map_err(|e| e.to_string())?;
        Ok(Box::new((w.topology, study)))
    }

    fn usage(
        &self,
    ) -> Result<Box<(crate::topology::Topology, crate::analysis::usage::EdgeUsage)>, String> {
        let (_, w) = self.load(self.first_run()?)?;
        let usage = crate::analysis::usage::edge_usage(&w.topology, &w.params)
            .map_err(|e| e.to_string())?;
        Ok(Box::new((w.topology, usage)))
    }

    /// The first run's layers against the second's (or its own); with two runs, each one's
    /// seed-to-seed ceiling where it has a twin.
    fn similarity(&mut self) -> Result<Box<Similarity>, String> {
        let runs = &self.request.runs;
        let (saved, a) = self.load(self.first_run()?)?;
        let b = runs.get(1).map(|r| self.load(&r.id)).transpose()?;
        let test = first(self.split(&saved)?.test, CKA_SAMPLES);
        let twins: Vec<Option<(String, Weights)>> = match &b {
            None => Vec::new(),
            Some(_) => runs
                .iter()
                .take(2)
                .map(|r| {
                    r.twin
                        .as_ref()
                        .map(|t| Ok::<_, String>((t.name.clone(), self.load(&t.id)?.1)))
                        .transpose()
                })
                .collect::<Result<_, _>>()?,
        };
        let parts = 1 + twins.iter().flatten().count();
        let cka = |x: &Weights, y: Option<&Weights>, part: usize| {
            crate::analysis::cka::network_cka_on(
                self.device,
                (&x.topology, &x.params),
                y.map(|y| (&y.topology, y.params.as_slice())),
                &test,
                CKA_BATCH,
                &mut self.progress(part, parts),
            )
            .map_err(|e| e.to_string())
        };
        let map = cka(&a, b.as_ref().map(|(_, w)| w), 0)?;
        let mut ceilings = Vec::new();
        let mut part = 1;
        for (run, twin) in [Some(&a), b.as_ref().map(|(_, w)| w)]
            .into_iter()
            .flatten()
            .zip(&twins)
        {
            ceilings.push(match twin {
                Some((name, twin)) => {
                    let own = cka(run, Some(twin), part)?;
                    part += 1;
                    let diagonal = (0..own.rows.len().min(own.columns.len()))
                        .map(|i| own.cka[i][i])
                        .collect();
                    Some((name.clone(), diagonal))
                }
                None => None,
            });
        }
        Ok(Box::new(Similarity { map, ceilings }))
    }

    /// The loss of each run along a direction of the same seed (the same directions for
    /// networks of the same shapes).
    fn curves(&mut self) -> Result<Vec<Landscape>, String> {
        let options = LandscapeOptions {
            points: CURVE_POINTS,
            ..Default::default()
        };
        let parts = self.request.runs.len();
        let mut curves = Vec::with_capacity(parts);
        for (part, run) in self.request.runs.iter().enumerate() {
            let (saved, w) = self.load(&run.id)?;
            let train = first(self.split(&saved)?.train, LANDSCAPE_SAMPLES);
            let curve = crate::analysis::landscape::landscape_on(
                self.device,
                &w.topology,
                &w.params,
                &train,
                &options,
                &mut self.progress(part, parts),
            )
            .map_err(|e| format!("{}: {e}", run.name))?;
            curves.push(curve);
        }
        Ok(curves)
    }

    fn map(&mut self) -> Result<Box<Landscape>, String> {
        let (saved, w) = self.load(self.first_run()?)?;
        let train = first(self.split(&saved)?.train, MAP_SAMPLES);
        let options = LandscapeOptions {
            dims: 2,
            points: MAP_POINTS,
            ..Default::default()
        };
        crate::analysis::landscape::landscape_on(
            self.device,
            &w.topology,
            &w.params,
            &train,
            &options,
            &mut self.progress(0, 1),
        )
        .map(Box::new)
        .map_err(|e| e.to_string())
    }
}

/// The first `n` of `samples`.
fn first(mut samples: Samples, n: usize) -> Samples {
    samples.truncate(n);
    samples
}

/// Computes `request` on this thread (not the lab's), telling `tell` its progress while
/// `current` holds its ticket and stopping when it no longer does.
pub fn answer(
    request: &AnalysisRequest,
    data_dir: &Path,
    device: Device,
    current: &AtomicU64,
    tell: &dyn Fn(AnalysisUpdate),
) -> AnalysisUpdate {
    let mut study = Study {
        request,
        data_dir,
        device,
        current,
        tell,
        datasets: HashMap::new(),
    };
    let ticket = request.ticket;
    match request.kind {
        AnalysisKind::Lesion => AnalysisUpdate::Lesion {
            ticket,
            result: study.lesion(),
        },
        AnalysisKind::Usage => AnalysisUpdate::Usage {
            ticket,
            result: study.usage(),
        },
        AnalysisKind::Similarity => AnalysisUpdate::Similarity {
            ticket,
            result: study.similarity(),
        },
        AnalysisKind::Landscape => AnalysisUpdate::Landscape {
            ticket,
            result: study.curves(),
        },
        AnalysisKind::LandscapeMap => AnalysisUpdate::LandscapeMap {
            ticket,
            result: study.map(),
        },
    }
}

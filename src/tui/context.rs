//! What every view of the lab shares: the data the lab trains on and where it keeps files,
//! the key table and colours, the header's message, which panel has the keys, and the runs.
//! Views read it to draw and change it through their keys; none of them names the router.

use std::path::PathBuf;

use crate::data::DatasetName;
use crate::topology::ImageShape;
use crate::tui::keys::KeyTable;
use crate::tui::run_list::RunList;

/// Share of the training set held out for validation in lab runs.
pub const VAL_FRACTION: f64 = 0.1;

/// How the screen is coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Colours {
    /// As drawn: for a dark background.
    #[default]
    Dark,
    /// Yellow, white and grey swapped for colours that read on a light background.
    Light,
    /// No colour at all (`NO_COLOR`); bold, reverse and underline still mark selections.
    None,
}

impl Colours {
    /// The config file's theme, unless `NO_COLOR` is set (to anything but empty).
    pub fn from_env(theme: crate::folders::Theme) -> Self {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return Colours::None;
        }
        match theme {
            crate::folders::Theme::Dark => Colours::Dark,
            crate::folders::Theme::Light => Colours::Light,
        }
    }
}

/// Which panel of the main screen the arrows and Space act on (Tab switches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Focus {
    #[default]
    Topology,
    Runs,
}

/// The lab's shared state.
#[derive(Clone, Debug)]
pub struct Context {
    /// The shape and classes of the data the lab trains on.
    pub input: ImageShape,
    pub classes: usize,
    pub data_name: String,
    /// The data set the lab trains on (what saved presets name).
    pub dataset: DatasetName,
    /// Where runs train.
    pub device: crate::device::Device,
    /// What each key does (the defaults, or the config file's bindings).
    pub keys: KeyTable,
    /// Colours for the terminal's background, or none (`NO_COLOR`).
    pub colours: Colours,
    pub ascii: bool,
    /// The header's message (the compare chart's hint line shows it too).
    pub message: Option<String>,
    pub focus: Focus,
    /// Where presets are listed and saved.
    pub presets_dir: PathBuf,
    /// Where data sets are read (the analyses evaluate on a run's own split).
    pub data_dir: PathBuf,
    /// Where runs are saved (`None`: not saved).
    pub saves_dir: Option<PathBuf>,
    /// Where `L` reads saved runs (see `LabOptions::read_saves`).
    pub read_saves: Vec<PathBuf>,
    pub runs: RunList,
    /// The latest analysis request's ticket (each request takes the next).
    pub analysis_ticket: u64,
}

impl Context {
    pub fn new(input: ImageShape, classes: usize, data_name: &str) -> Self {
        Self {
            input,
            classes,
            data_name: data_name.to_string(),
            dataset: data_name.parse().unwrap_or(DatasetName::Builtin),
            device: crate::device::Device::Cpu,
            keys: KeyTable::default(),
            colours: Colours::Dark,
            ascii: false,
            message: None,
            analysis_ticket: 0,
            focus: Focus::Topology,
            presets_dir: "presets".into(),
            data_dir: "data".into(),
            saves_dir: None,
            read_saves: Vec::new(),
            runs: RunList::default(),
        }
    }

    /// A new analysis request's ticket: answers to any earlier one are dropped.
    pub fn next_ticket(&mut self) -> u64 {
        self.analysis_ticket += 1;
        self.analysis_ticket
    }

    /// Where an analysis looks for saved runs: where the lab saves first, then the folders
    /// `L` reads.
    pub fn analysis_folders(&self) -> Vec<PathBuf> {
        let mut folders: Vec<PathBuf> = self.saves_dir.iter().cloned().collect();
        folders.extend(self.saved_run_folders());
        folders
    }

    /// Puts `message` in the header.
    pub fn say(&mut self, message: impl Into<String>) {
        self.message = Some(message.into());
    }

    /// The folders `L` reads saved runs from: `--saves` as given, else where runs are saved.
    pub fn saved_run_folders(&self) -> Vec<PathBuf> {
        match (&self.saves_dir, self.read_saves.is_empty()) {
            (_, false) => self.read_saves.clone(),
            (Some(saves), true) => vec![saves.clone()],
            (None, true) => vec!["saves".into()],
        }
    }
}

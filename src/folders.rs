//! Where skiplab keeps things, so an installed binary works from any directory.
//!
//! Each folder is, in order: the flag or its variable (`--saves`/`SKIPLAB_SAVES_DIR`, ...);
//! a project-local folder in the current directory when there is one (`./saves`, `./data`,
//! `./presets`: a checkout works as it always did); the config file's value; the platform's
//! folder (XDG on Linux: `~/.local/share/skiplab/{saves,data}`,
//! `~/.config/skiplab/presets`). The paper's presets are compiled in: a preset name
//! (`--preset quick`) is looked up in the presets folder first, then among them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::experiment::{Experiment, PresetEntry, PresetError};

/// The presets that ship, compiled into the binary.
static BUILTIN_PRESETS: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/presets");

/// Colours for a dark or a light terminal background.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    Dark,
    Light,
}

/// `config.ron` in the config folder (`skiplab config init` writes one). Every field is
/// optional; flags and variables override it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `auto`, `cpu` or `cuda`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saves_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presets_dir: Option<PathBuf>,
    pub theme: Theme,
    /// Key bindings: action name -> key (`"train": "T"`); see the lab's help for the names.
    pub keys: BTreeMap<String, String>,
}

fn project() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "skiplab")
}

/// The config folder: `$SKIPLAB_CONFIG_DIR`, else the platform's (`~/.config/skiplab`).
pub fn config_dir() -> PathBuf {
    match std::env::var_os("SKIPLAB_CONFIG_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => project().map_or_else(
            || PathBuf::from(".skiplab"),
            |p| p.config_dir().to_path_buf(),
        ),
    }
}

pub fn config_path() -> PathBuf {
    config_dir().join("config.ron")
}

/// The platform's data folder (`~/.local/share/skiplab`).
fn data_home() -> PathBuf {
    project().map_or_else(|| PathBuf::from(".skiplab"), |p| p.data_dir().to_path_buf())
}

/// Where the lab writes its log (`~/.local/state/skiplab`, else the data folder).
pub fn log_dir() -> PathBuf {
    project()
        .and_then(|p| p.state_dir().map(Path::to_path_buf))
        .unwrap_or_else(|| data_home().join("logs"))
}

/// The config file, read once; no file is the defaults, a broken one an error naming it.
pub fn config() -> &'static Result<Config, String> {
    static CONFIG: OnceLock<Result<Config, String>> = OnceLock::new();
    CONFIG.get_or_init(|| load_config(&config_path()))
}

pub fn load_config(path: &Path) -> Result<Config, String> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
        Ok(text) => {
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let config: Config = ron::Options::default()
                .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
                .from_str(text)
                .map_err(|e| {
                    format!(
                        "{}:{}:{}: {}",
                        path.display(),
                        e.span.start.line,
                        e.span.start.col,
                        e.code
                    )
                })?;
            // Every value is checked now, not when something first uses it.
            if let Some(device) = config
                .device
                .as_deref()
                .filter(|d| !DEVICES.contains(&d.to_ascii_lowercase().as_str()))
            {
                return Err(format!(
                    "{}: device \"{device}\" is not one of {}",
                    path.display(),
                    DEVICES.join(", ")
                ));
            }
            Ok(config)
        }
    }
}

/// What `device:` may say.
pub const DEVICES: [&str; 3] = ["auto", "cpu", "cuda"];

fn configured(pick: impl Fn(&Config) -> Option<PathBuf>) -> Option<PathBuf> {
    config().as_ref().ok().and_then(pick)
}

/// `./<name>` when the current directory has one (a checkout, a project folder).
fn local(name: &str) -> Option<PathBuf> {
    Path::new(name).is_dir().then(|| PathBuf::from(name))
}

/// The saves folder when no flag or variable names one.
pub fn default_saves() -> PathBuf {
    local("saves")
        .or_else(|| configured(|c| c.saves_dir.clone()))
        .unwrap_or_else(|| data_home().join("saves"))
}

/// The data folder when no flag or variable names one.
pub fn default_data_dir() -> PathBuf {
    local("data")
        .or_else(|| configured(|c| c.data_dir.clone()))
        .unwrap_or_else(|| data_home().join("data"))
}

/// The presets folder (listed and saved into by the lab) when no flag names one.
pub fn default_presets_dir() -> PathBuf {
    local("presets")
        .or_else(|| configured(|c| c.presets_dir.clone()))
        .unwrap_or_else(|| config_dir().join("presets"))
}

/// The configured device (`auto` when none).
pub fn default_device() -> String {
    config()
        .as_ref()
        .ok()
        .and_then(|c| c.device.clone())
        .unwrap_or_else(|| "auto".into())
}

/// The compiled-in presets: (name, text), by name.
pub fn builtin_presets() -> Vec<(String, &'static str)> {
    let mut presets: Vec<(String, &'static str)> = BUILTIN_PRESETS
        .files()
        .filter(|f| f.path().extension().is_some_and(|x| x == "ron"))
        .filter_map(|f| {
            let name = f.path().file_stem()?.to_string_lossy().into_owned();
            Some((name, f.contents_utf8()?))
        })
        .collect();
    presets.sort();
    presets
}

/// `arg` as a preset: a file path, else a name in `presets_dir`, else a compiled-in one.
/// Returns the name it goes by and the experiment.
pub fn resolve_preset(arg: &Path, presets_dir: &Path) -> Result<(String, Experiment), PresetError> {
    let name_of = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if arg.is_file() {
        return Experiment::load(arg).map(|e| (name_of(arg), e));
    }
    // Something is there, but not a preset file: say what it is (a FIFO would block a read).
    if let Ok(meta) = std::fs::metadata(arg) {
        let what = match meta.is_dir() {
            true => "a folder",
            false => "not a regular file (a FIFO, device or socket)",
        };
        return Err(PresetError {
            path: arg.to_path_buf(),
            at: None,
            message: format!("is {what}; a preset is a .ron file, or the name of one"),
        });
    }
    let text = arg.to_string_lossy();
    let name = text.strip_suffix(".ron").unwrap_or(&text);
    let plain = crate::experiment::valid_preset_name(name) && arg.components().count() == 1;
    if plain {
        let local = presets_dir.join(format!("{name}.ron"));
        if local.is_file() {
            return Experiment::load(&local).map(|e| (name.to_string(), e));
        }
        if let Some((_, text)) = builtin_presets().into_iter().find(|(n, _)| n == name) {
            let origin = PathBuf::from(format!("builtin:{name}"));
            return Experiment::from_ron(text, &origin).map(|e| (name.to_string(), e));
        }
    }
    let names: Vec<String> = builtin_presets().into_iter().map(|(n, _)| n).collect();
    Err(PresetError {
        path: arg.to_path_buf(),
        at: None,
        message: format!(
            "cannot read: no such file, and no preset of that name in {} or built in ({})",
            presets_dir.display(),
            names.join(", ")
        ),
    })
}

/// The presets the lab's picker lists: the folder's (yours first, by name), then the
/// compiled-in ones it does not override.
pub fn list_all_presets(presets_dir: &Path) -> Vec<PresetEntry> {
    let mut entries = crate::experiment::list_presets(presets_dir);
    let own = entries.len();
    for (name, text) in builtin_presets() {
        if entries.iter().any(|e| e.name == name) {
            continue;
        }
        let path = PathBuf::from(format!("builtin:{name}"));
        entries.push(PresetEntry {
            experiment: Experiment::from_ron(text, &path),
            name,
            path,
        });
    }
    entries[own..].sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// What `skiplab config init` writes: every field, commented.
pub fn config_template() -> String {
    format!(
        r#"// skiplab's settings. Flags and SKIPLAB_* variables override every one of them; a
// project-local ./saves, ./data or ./presets in the current folder wins over the folders.
(
    // device: "auto",                 // auto, cpu or cuda
    // data_dir: "{data}",
    // saves_dir: "{saves}",
    // presets_dir: "{presets}",
    theme: dark,                       // dark or light (NO_COLOR=1 turns colour off)
    keys: {{
        // "train": "T",               // an action (see the lab's ? help) and its key
    }},
)
"#,
        data = data_home().join("data").display(),
        saves = data_home().join("saves").display(),
        presets = config_dir().join("presets").display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_preset_is_built_in_and_parses() {
        let builtin = builtin_presets();
        let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/presets"))
            .unwrap()
            .count();
        assert_eq!(builtin.len(), on_disk);
        for (name, text) in &builtin {
            Experiment::from_ron(text, Path::new(name)).unwrap();
        }
        let empty = tempfile::tempdir().unwrap();
        let (name, e) = resolve_preset(Path::new("quick"), empty.path()).unwrap();
        assert_eq!(name, "quick");
        assert_eq!(e.dataset, crate::data::DatasetName::Builtin);
        // A file of the same name in the presets folder overrides it.
        let mine = e.clone();
        let mut mine = mine;
        mine.epochs = 7;
        std::fs::write(empty.path().join("quick.ron"), mine.to_ron()).unwrap();
        assert_eq!(
            resolve_preset(Path::new("quick"), empty.path())
                .unwrap()
                .1
                .epochs,
            7
        );
        let listed = list_all_presets(empty.path());
        assert_eq!(listed.len(), builtin.len(), "quick once");
        let err = resolve_preset(Path::new("nope"), empty.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no preset of that name") && err.contains("quick"),
            "{err}"
        );
    }

    #[test]
    fn the_config_template_parses_and_broken_configs_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.ron");
        std::fs::write(&path, config_template()).unwrap();
        assert_eq!(load_config(&path).unwrap(), Config::default());
        std::fs::write(
            &path,
            "(theme: light, device: \"cpu\", keys: {\"train\": \"T\"})",
        )
        .unwrap();
        let c = load_config(&path).unwrap();
        assert_eq!(c.theme, Theme::Light);
        assert_eq!(c.keys["train"], "T");
        std::fs::write(&path, "(device: \"tpu\")").unwrap();
        let e = load_config(&path).unwrap_err();
        assert!(
            e.ends_with("config.ron: device \"tpu\" is not one of auto, cpu, cuda"),
            "{e}"
        );
        std::fs::write(&path, "(colour: 1)").unwrap();
        let e = load_config(&path).unwrap_err();
        assert!(e.contains("config.ron:1:") && e.contains("colour"), "{e}");
        assert_eq!(
            load_config(&dir.path().join("none.ron")).unwrap(),
            Config::default()
        );
    }
}

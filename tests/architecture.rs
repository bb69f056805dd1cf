//! The code's shape, checked on the sources (read as Rust with `syn`, so comments and strings
//! do not count): which file refers to which, through `use` items and paths.
//!
//! - No file under `src/tui/` is over 600 lines.
//! - No view refers to the router (`tui::app`): views talk to it in replies.
//! - The lab, the preset format, `compare` and the plain configuration types do not refer to
//!   the network layer (`net`).
//! - No two files refer to each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Every source file under `src/` with its module path (`tui::views::runs`); `lib.rs` and
/// `main.rs` are the roots.
fn modules() -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut out = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap().with_extension("");
        let mut path: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if path.last().is_some_and(|l| l == "mod") {
            path.pop();
        }
        if path == ["lib"] || path == ["main"] {
            // Two crate roots; only the binary's has `cli`, so one namespace serves both.
            out.insert(vec![format!("<{}>", path[0])], file);
            continue;
        }
        out.insert(path, file);
    }
    out
}

/// The module paths a file refers to, made absolute.
struct References<'a> {
    /// The module the visitor is in (the file's, then any inline `mod` inside it).
    here: Vec<String>,
    known: &'a BTreeMap<Vec<String>, PathBuf>,
    found: BTreeSet<Vec<String>>,
}

impl References<'_> {
    /// `segments` as an absolute path, when it starts at the crate, a parent or a child.
    fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        match first.as_str() {
            "crate" | "skiplab" => Some(segments[1..].to_vec()),
            "self" => Some([self.here.clone(), segments[1..].to_vec()].concat()),
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let base = self.here[..self.here.len().checked_sub(ups)?].to_vec();
                Some([base, segments[ups..].to_vec()].concat())
            }
            _ => {
                // A child module named without `self::` (`use views::Mode`).
                let child = [self.here.clone(), vec![first.clone()]].concat();
                self.known
                    .contains_key(&child)
                    .then(|| [self.here.clone(), segments.to_vec()].concat())
            }
        }
    }

    fn add(&mut self, segments: &[String]) {
        if let Some(path) = self.absolute(segments) {
            self.found.insert(path);
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                let path = prefix.clone();
                self.add(&path);
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                let path = prefix.clone();
                self.add(&path);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => {
                let path = prefix.clone();
                self.add(&path);
            }
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for References<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        // `crate::a::b`, `super::x`, or `child::Item` (a lone name is a local, not a module).
        let anchored = matches!(
            segments.first().map(String::as_str),
            Some("crate" | "super" | "skiplab" | "self")
        );
        if anchored || segments.len() > 1 {
            self.add(&segments);
        }
        syn::visit::visit_path(self, path);
    }

    /// `pub(super)` says who may see an item, not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.content.is_some() {
            self.here.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.here.pop();
        }
    }
}

/// The file that holds `path`: the longest prefix of it that is a file's module.
fn file_of<'a>(known: &'a BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<&'a PathBuf> {
    (1..=path.len()).rev().find_map(|n| known.get(&path[..n]))
}

/// Which file refers to which (by paths relative to `src/`).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let known = modules();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let name = |p: &Path| p.strip_prefix(&root).unwrap().display().to_string();
    let mut edges = BTreeMap::new();
    for (module, file) in &known {
        let text = std::fs::read_to_string(file).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let here = match module[0].starts_with('<') {
            true => Vec::new(),
            false => module.clone(),
        };
        let mut refs = References {
            here,
            known: &known,
            found: BTreeSet::new(),
        };
        refs.visit_file(&ast);
        let targets: BTreeSet<String> = refs
            .found
            .iter()
            .filter_map(|path| file_of(&known, path))
            .filter(|target| *target != file)
            .map(|target| name(target))
            .collect();
        edges.insert(name(file), targets);
    }
    edges
}

#[test]
fn no_lab_file_is_over_600_lines() {
    let long: Vec<String> = modules()
        .values()
        .filter(|f| f.components().any(|c| c.as_os_str() == "tui"))
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).unwrap().lines().count();
            (lines > 600).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these: {long:?}");
}

#[test]
fn no_view_refers_to_the_router() {
    let graph = graph();
    let offenders: Vec<(&String, &String)> = graph
        .iter()
        .filter(|(file, _)| file.starts_with("tui/views/"))
        .flat_map(|(file, to)| to.iter().map(move |t| (file, t)))
        .filter(|(_, to)| to.starts_with("tui/app/"))
        .collect();
    assert!(offenders.is_empty(), "{offenders:?}");
    // The check sees references: the router refers to the views.
    assert!(graph["tui/app/mod.rs"].contains("tui/views/runs.rs"));
}

#[test]
fn the_lab_presets_and_comparisons_do_not_reach_into_the_network_layer() {
    let graph = graph();
    let plain = |file: &str| {
        file.starts_with("tui/")
            || ["experiment.rs", "compare.rs", "hyperparams.rs"].contains(&file)
    };
    let offenders: Vec<(&String, &String)> = graph
        .iter()
        .filter(|(file, _)| plain(file))
        .flat_map(|(file, to)| to.iter().map(move |t| (file, t)))
        .filter(|(_, to)| to.starts_with("net/"))
        .collect();
    assert!(offenders.is_empty(), "{offenders:?}");
    // The trainer does use it, and the check sees that.
    assert!(graph["train/mod.rs"].iter().any(|t| t.starts_with("net/")));
}

#[test]
fn no_two_files_refer_to_each_other() {
    let graph = graph();
    let mut circles = Vec::new();
    for (a, targets) in &graph {
        for b in targets {
            if a < b && graph.get(b).is_some_and(|back| back.contains(a)) {
                circles.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(circles.is_empty(), "{circles:#?}");
}

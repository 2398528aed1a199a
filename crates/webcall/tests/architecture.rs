//! The shape of the source tree, as `docs/architecture.md` promises it: no
//! import circle between the modules of any crate, and no source file over 500
//! lines unless its `//!` header says why (it mentions "500 lines").
//!
//! Modules are compared among siblings: `hub/join.rs` using `super::Hub` is a
//! child reaching its parent (how Rust modules work), but `hub/link.rs` and
//! `hub/registry.rs` importing each other is a circle, and so is `state.rs`
//! importing `ws` while `ws` imports `state`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path inside its crate: `["hub", "join"]`; the crate root is `[]`.
type ModPath = Vec<String>;

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: ModPath = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without its unit tests and comments.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
    text.lines()
        .map(|line| line.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths that follow `prefix` (`crate::` or `super::`), with `{a, b::c}` groups
/// spread out: `crate::{a, b::c}` gives `a` and `b::c`.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    found.push(path_words(item));
                }
            }
        } else {
            found.push(path_words(rest));
        }
    }
    found
}

fn path_words(text: &str) -> Vec<String> {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    text[..end]
        .split("::")
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The longest prefix of `path` that is a module.
fn module_in(path: &[String], modules: &BTreeSet<ModPath>) -> Option<ModPath> {
    (1..=path.len())
        .rev()
        .map(|k| path[..k].to_vec())
        .find(|m| modules.contains(m))
}

/// The circles among sibling modules of the crate whose sources are in `src`.
fn circles_in(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let texts: BTreeMap<ModPath, String> = files
        .iter()
        .map(|f| (module_of(src, f), std::fs::read_to_string(f).unwrap()))
        .collect();
    let modules: BTreeSet<ModPath> = texts.keys().cloned().collect();
    // Names a module file re-exports from a child: `pub use child::{A, B};`.
    let mut reexported: BTreeMap<ModPath, ModPath> = BTreeMap::new();
    for (module, text) in &texts {
        for line in code_of(text).lines() {
            let Some(used) = line.trim().strip_prefix("pub use ") else {
                continue;
            };
            let used = used.trim_start_matches("self::");
            let Some((child, names)) = used.split_once("::") else {
                continue;
            };
            let child_module = [module.clone(), vec![child.to_owned()]].concat();
            if !modules.contains(&child_module) {
                continue;
            }
            for name in names.trim_matches(|c| "{};".contains(c)).split(',') {
                let name = path_words(name.trim());
                if let Some(name) = name.last() {
                    let item = [module.clone(), vec![name.clone()]].concat();
                    reexported.insert(item, child_module.clone());
                }
            }
        }
    }
    let mut edges: BTreeSet<(ModPath, ModPath)> = BTreeSet::new();
    for (module, text) in &texts {
        let code = code_of(text);
        let mut targets = Vec::new();
        for path in paths_after(&code, "crate::") {
            let named = reexported.get(&path[..path.len().min(1)]).cloned();
            targets.extend(named.or_else(|| module_in(&path, &modules)));
        }
        let parent = module[..module.len().saturating_sub(1)].to_vec();
        for path in paths_after(&code, "super::") {
            let full = [parent.clone(), path].concat();
            let named = reexported.get(&full[..(parent.len() + 1).min(full.len())]);
            targets.extend(named.cloned().or_else(|| module_in(&full, &modules)));
        }
        for line in code.lines() {
            if let Some(used) = line.trim().strip_prefix("use ") {
                let child = [module.clone(), path_words(used)[..1].to_vec()].concat();
                if modules.contains(&child) {
                    targets.push(child);
                }
            }
        }
        for target in targets {
            // Each side's ancestor just below their common parent.
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common < module.len() && common < target.len() {
                edges.insert((module[..=common].to_vec(), target[..=common].to_vec()));
            }
        }
    }
    let mut circles = BTreeSet::new();
    for (from, to) in &edges {
        // A circle through this edge: a way back from `to` to `from`.
        let mut stack = vec![vec![to.clone()]];
        let mut seen = BTreeSet::new();
        while let Some(way) = stack.pop() {
            let last = way.last().unwrap();
            if last == from {
                let names: BTreeSet<String> = way.iter().map(|m| m.join("/")).collect();
                circles.insert(names.into_iter().collect::<Vec<_>>().join(" <-> "));
                break;
            }
            if seen.insert(last.clone()) {
                for (a, b) in &edges {
                    if a == last {
                        stack.push([way.clone(), vec![b.clone()]].concat());
                    }
                }
            }
        }
    }
    circles.into_iter().collect()
}

fn crate_sources() -> Vec<(String, PathBuf)> {
    let mut crates: Vec<(String, PathBuf)> = std::fs::read_dir(crates_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("src").is_dir())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    crates.sort();
    assert!(crates.len() >= 8, "found {crates:?}");
    crates
}

#[test]
fn no_crate_has_an_import_circle_between_its_modules() {
    let mut found = Vec::new();
    for (name, dir) in crate_sources() {
        for circle in circles_in(&dir.join("src")) {
            found.push(format!("{name}: {circle}"));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn the_circle_check_sees_a_circle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("hub")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "mod hub;\nmod state;\npub use state::AppState;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("state.rs"),
        "use crate::hub::Hub;\npub struct AppState;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("hub/mod.rs"),
        "mod link;\nmod registry;\nuse crate::AppState;\n",
    )
    .unwrap();
    std::fs::write(src.join("hub/link.rs"), "use super::registry::Peer;\n").unwrap();
    std::fs::write(
        src.join("hub/registry.rs"),
        "use super::{link::Link, Hub};\n",
    )
    .unwrap();
    assert_eq!(
        circles_in(src),
        ["hub <-> state", "hub/link <-> hub/registry"]
    );
}

#[test]
fn a_source_file_over_500_lines_says_why_at_its_top() {
    let mut long = Vec::new();
    for (_, dir) in crate_sources() {
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let lines = text.lines().count();
            let header: Vec<&str> = text
                .lines()
                .take_while(|l| l.starts_with("//!") || l.trim().is_empty())
                .map(|l| l.trim_start_matches("//!").trim())
                .collect();
            let header = header.join(" ");
            if lines > 500 && !header.contains("500 lines") {
                long.push(format!("{} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over 500 lines with no word on why:\n{}",
        long.join("\n")
    );
}

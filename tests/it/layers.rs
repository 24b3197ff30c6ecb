//! The direction of dependencies, read from the `use` lines: every top-level module
//! imports only modules of layers below its own (docs/architecture.md draws the same
//! picture), so no two import each other; and no two sibling submodules import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom. A module may import any module of a lower layer, none of its own.
const LAYERS: &[&[&str]] = &[
    &["server"],
    &["ingest", "delivery", "reload"],
    &["check"],
    &["dryrun"],
    &["engine"],
    &["rules"],
    &["actions", "config"],
    &["sources", "store", "template"],
    &["metrics", "event"],
    &["base"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| {
            panic!("module `{module}` is in no layer: add it to LAYERS and docs/architecture.md")
        })
}

/// `src/a/b.rs` → `a::b`; `src/a/mod.rs` → `a`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn sources() -> BTreeMap<String, String> {
    let src = crate::util::root().join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.insert(module_of(&src, &path), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// The modules of `known` that `text` names through `prefix` (`crate::`), longest match.
fn named(text: &str, prefix: &str, base: &[String], known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        let path: Vec<&str> = rest
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or("")
            .split("::")
            .filter(|s| !s.is_empty())
            .collect();
        let mut full: Vec<String> = base.to_vec();
        full.extend(path.iter().map(|s| (*s).to_owned()));
        for k in (1..=full.len()).rev() {
            let candidate = full[..k].join("::");
            if known.contains(&candidate) {
                out.insert(candidate);
                break;
            }
        }
    }
    out
}

#[test]
fn every_import_points_down() {
    let files = sources();
    let known: BTreeSet<String> = files.keys().cloned().collect();
    let mut wrong = Vec::new();
    for (module, text) in &files {
        let top = module.split("::").next().unwrap();
        if matches!(top, "main" | "lib" | "cli") {
            continue;
        }
        for target in named(text, "crate::", &[], &known) {
            let target_top = target.split("::").next().unwrap();
            if target_top != top && layer(target_top) <= layer(top) {
                wrong.push(format!(
                    "{module} imports {target} (layer {} → {})",
                    layer(top),
                    layer(target_top)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that do not point down:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn no_two_sibling_modules_import_each_other() {
    let files = sources();
    let known: BTreeSet<String> = files.keys().cloned().collect();
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &files {
        let parent: Vec<String> = module.split("::").map(str::to_owned).collect::<Vec<_>>();
        let parent = &parent[..parent.len().saturating_sub(1)];
        let mut found = named(text, "crate::", &[], &known);
        found.extend(named(text, "super::", parent, &known));
        // A module importing its own ancestor is how Rust modules work: not a cycle.
        found.retain(|t| t != module && !module.starts_with(&format!("{t}::")));
        imports.insert(module.clone(), found);
    }
    let mut cycles = Vec::new();
    for (a, targets) in &imports {
        for b in targets {
            if a < b && imports.get(b).is_some_and(|t| t.contains(a)) {
                cycles.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other:\n  {}",
        cycles.join("\n  ")
    );
}

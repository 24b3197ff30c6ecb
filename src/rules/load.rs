//! Walking a rules folder: which files count, their ids, duplicates.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::{Path, PathBuf};

use super::compile::compile_rule;
use super::file::{RawMany, RawRule};
use super::{Rule, RuleSet};
use crate::base::diag::{Cx, Diagnostic};
use crate::base::yaml::{self, Pos, Positions, join_index};
use crate::template::Templates;

/// What a reload remembers between runs: the last text of each file that loaded, and
/// the versions refused by a check made above this layer (inline tests that fail).
#[derive(Debug, Default, Clone)]
pub struct Memory {
    files: HashMap<String, Good>,
    templates: HashMap<String, String>,
    /// By file: the version (hash of its text) refused, and why.
    refused: HashMap<String, (String, Vec<Diagnostic>)>,
}

impl Memory {
    /// Refuses this version of `file`: the next load treats it as a file that fails to
    /// load (its last good version keeps serving), with `why` as its errors, until its
    /// text changes.
    pub fn refuse(&mut self, file: &str, version: &str, why: Vec<Diagnostic>) {
        self.refused.insert(file.to_owned(), (version.to_owned(), why));
    }
}

#[derive(Debug, Clone)]
struct Good {
    text: String,
    version: String,
    since: DateTime<Utc>,
}

/// How one rule file stands after a load.
#[derive(Debug, Clone, Serialize)]
pub struct FileStatus {
    pub file: String,
    /// Hash of the text now serving, if any version of the file loaded.
    pub version: Option<String>,
    /// When that version was first loaded.
    pub loaded_at: Option<String>,
    pub rules: usize,
    /// The current text's problems (the last good version may still be serving).
    pub errors: Vec<Diagnostic>,
}

/// Loads the folder. A file that fails keeps serving its last good version from
/// `memory`; a brand-new broken file adds nothing; a deleted file's rules go. Files that
/// did not change load first, so a changed file that takes an id already in use is the
/// one refused.
pub(super) fn load(
    rules_dir: &Path,
    templates_dir: &Path,
    memory: &mut Memory,
    context: &super::Context,
) -> RuleSet {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut templates = Templates::new();
    for (file, message) in templates.load_dir(templates_dir, &mut memory.templates) {
        errors.push(Diagnostic {
            file,
            line: 1,
            column: 1,
            rule: None,
            message,
        });
    }

    let mut walk = Walk::default();
    if let Err(e) = walk.root(rules_dir) {
        errors.push(Diagnostic {
            file: rules_dir.display().to_string(),
            line: 1,
            column: 1,
            rule: None,
            message: format!("cannot read the rules folder: {e}"),
        });
    }
    warnings.append(&mut walk.warnings);
    let sources: Vec<(String, String, Result<String, Diagnostic>)> = walk
        .files
        .into_iter()
        .map(|path| {
            let shown = path.display().to_string();
            let text = read_source(&path, &shown);
            let rel = path.strip_prefix(rules_dir).unwrap_or(&path);
            let default_id = rel.with_extension("").to_string_lossy().replace('\\', "/");
            (shown, default_id, text)
        })
        .collect();
    build(sources, templates, memory, context, errors, warnings)
}

/// Compiles stored rule files (a version of a rule set, to explain what it decided).
/// Templates come from `templates_dir`.
pub(super) fn from_texts(
    files: Vec<crate::store::RuleFile>,
    templates_dir: &Path,
    context: &super::Context,
) -> RuleSet {
    let mut memory = Memory::default();
    let mut templates = Templates::new();
    let errors: Vec<Diagnostic> = templates
        .load_dir(templates_dir, &mut memory.templates)
        .into_iter()
        .map(|(file, message)| Diagnostic {
            file,
            line: 1,
            column: 1,
            rule: None,
            message,
        })
        .collect();
    let sources = files.into_iter().map(|f| (f.path, f.id, Ok(f.text))).collect();
    build(sources, templates, &mut memory, context, errors, Vec::new())
}

/// Compiles `sources` (see [`load`] for which version of each file serves).
fn build(
    mut sources: Vec<(String, String, Result<String, Diagnostic>)>,
    mut templates: Templates,
    memory: &mut Memory,
    context: &super::Context,
    mut errors: Vec<Diagnostic>,
    mut warnings: Vec<Diagnostic>,
) -> RuleSet {
    let unchanged = |shown: &str, text: &Result<String, Diagnostic>| matches!((memory.files.get(shown), text), (Some(good), Ok(t)) if good.text == *t);
    sources.sort_by_cached_key(|(shown, _, text)| (!unchanged(shown, text), shown.clone()));

    let now = Utc::now();
    let mut rules: Vec<Rule> = Vec::new();
    let mut seen: HashMap<String, (String, usize)> = HashMap::new();
    let mut files = Vec::with_capacity(sources.len());
    let mut kept = HashMap::new();
    let mut serving_files = Vec::new();
    let mut still_refused = HashMap::new();
    for (shown, default_id, text) in sources {
        let mut compile = |text: &str| {
            let (file_rules, mut file_errors) =
                compile_source(text, &shown, &default_id, &mut templates, &mut warnings, context);
            file_errors.extend(duplicates(&file_rules, &seen, &shown));
            (file_rules, file_errors)
        };
        let (current, mut current_errors) = match &text {
            Ok(t) => compile(t),
            Err(d) => (Vec::new(), vec![d.clone()]),
        };
        if let (Ok(t), Some((refused, why))) = (&text, memory.refused.get(&shown))
            && *refused == version(t)
        {
            current_errors.extend(why.iter().cloned());
            still_refused.insert(shown.clone(), (refused.clone(), why.clone()));
        }
        let (serving, good) = match (current_errors.is_empty(), &text, memory.files.get(&shown)) {
            (true, Ok(t), Some(g)) if g.text == *t => (current, Some(g.clone())),
            (true, Ok(t), _) => (
                current,
                Some(Good {
                    text: t.clone(),
                    version: version(t),
                    since: now,
                }),
            ),
            (_, _, Some(g)) => match compile(&g.text) {
                (old, old_errors) if old_errors.is_empty() => (old, Some(g.clone())),
                _ => (Vec::new(), None),
            },
            _ => (Vec::new(), None),
        };
        for rule in &serving {
            seen.insert(rule.id.clone(), (shown.clone(), rule.line));
        }
        files.push(FileStatus {
            file: shown.clone(),
            version: good.as_ref().map(|g| g.version.clone()),
            loaded_at: good.as_ref().map(|g| g.since.to_rfc3339()),
            rules: serving.len(),
            errors: current_errors.clone(),
        });
        if let Some(g) = good {
            serving_files.push(crate::store::RuleFile {
                path: shown.clone(),
                id: default_id.clone(),
                hash: g.version.clone(),
                text: g.text.clone(),
            });
            kept.insert(shown, g);
        }
        errors.extend(current_errors);
        rules.extend(serving);
    }
    memory.files = kept;
    memory.refused = still_refused;
    files.sort_by(|a, b| a.file.cmp(&b.file));
    errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    let version = std::sync::Arc::new(crate::store::RuleSetVersion::of(serving_files));
    RuleSet::new(rules, templates, errors, warnings, files, version)
        .with_contact_paths(context.contact_paths.clone())
}

/// Errors for rules whose id another file already has.
fn duplicates(rules: &[Rule], seen: &HashMap<String, (String, usize)>, shown: &str) -> Vec<Diagnostic> {
    rules
        .iter()
        .filter_map(|rule| {
            let (other, line) = seen.get(&rule.id)?;
            Some(Diagnostic {
                file: shown.to_owned(),
                line: rule.line,
                column: 1,
                rule: Some(rule.id.clone()),
                message: format!(
                    "duplicate rule id `{}`: already defined in {other}:{line}; this file is not loaded",
                    rule.id
                ),
            })
        })
        .collect()
}

/// A short, stable hash of a file's text: the version shown in `/api/rules`.
fn version(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..6])
}

fn read_source(path: &Path, shown: &str) -> Result<String, Diagnostic> {
    let fail = |message: String| Diagnostic {
        file: shown.to_owned(),
        line: 1,
        column: 1,
        rule: None,
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "the file is not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Walking the rules folder: every `.yaml`/`.yml` at any depth; names starting with `.`
/// or `_` are skipped (files and folders), so editors' swap files and drafts stay out.
/// Symlinks are followed, but each real folder and file is read once, by device and
/// inode: a link back to an ancestor (a loop) or to a folder read elsewhere would
/// otherwise load the same rules again and again, and every event would fire them that
/// many times. Each such link is a warning at its path.
#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    /// Real folders and files read so far, and the path they were read at.
    seen: HashMap<(u64, u64), PathBuf>,
    /// The folders being walked, outermost first: a link to one of them is a loop.
    ancestors: Vec<(u64, u64)>,
    warnings: Vec<Diagnostic>,
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

impl Walk {
    fn root(&mut self, dir: &Path) -> std::io::Result<()> {
        let id = identity(&std::fs::metadata(dir)?);
        self.seen.insert(id, dir.to_owned());
        self.dir(dir, id)
    }

    fn dir(&mut self, dir: &Path, id: (u64, u64)) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        self.ancestors.push(id);
        for entry in entries {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            let path = entry.path();
            // `metadata` follows symlinks, so a linked folder or file counts as its target.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let is_rule = meta.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml"));
            if !meta.is_dir() && !is_rule {
                continue;
            }
            let id = identity(&meta);
            if let Some(first) = self.seen.get(&id) {
                let message = if self.ancestors.contains(&id) {
                    format!(
                        "symlink loop: this leads back to {}; not followed",
                        first.display()
                    )
                } else {
                    format!(
                        "this is the same {} as {}, which is read there only",
                        if meta.is_dir() { "folder" } else { "file" },
                        first.display()
                    )
                };
                self.warnings.push(Diagnostic {
                    file: path.display().to_string(),
                    line: 1,
                    column: 1,
                    rule: None,
                    message,
                });
                continue;
            }
            self.seen.insert(id, path.clone());
            if meta.is_dir() {
                self.dir(&path, id)?;
            } else {
                self.files.push(path);
            }
        }
        self.ancestors.pop();
        Ok(())
    }
}

/// Compiles one file's text: its rules, or its errors (a file with errors contributes no rules).
fn compile_source(
    text: &str,
    shown: &str,
    default_id: &str,
    templates: &mut Templates,
    warnings: &mut Vec<Diagnostic>,
    context: &super::Context,
) -> (Vec<Rule>, Vec<Diagnostic>) {
    let fail_for = |rule: Option<&str>, message: String, pos: Pos| {
        let rule = rule.map(str::to_owned);
        (
            Vec::new(),
            vec![Diagnostic {
                file: shown.to_owned(),
                line: pos.line,
                column: pos.column,
                rule,
                message,
            }],
        )
    };
    let fail = |message: String, pos: Pos| fail_for(None, message, pos);
    if text
        .trim()
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return fail(
            "the file has no rule: expected `on:` and `actions:` (or `rules:` with a list)".into(),
            Pos { line: 1, column: 1 },
        );
    }
    let positions = Positions::build(text);
    let mut cx = Cx::new(shown, &positions);
    cx.context = context.clone();
    let mut rules = Vec::new();
    let many = positions.key("rules").is_some();
    let raws: Vec<(String, String, RawRule)> = if many {
        match yaml::from_str::<RawMany>(text) {
            Ok(m) => m
                .rules
                .into_iter()
                .enumerate()
                .map(|(i, r)| (join_index("rules", i), format!("{default_id}#{}", i + 1), r))
                .collect(),
            Err(e) => return fail(e.message, e.pos),
        }
    } else {
        match yaml::from_str::<RawRule>(text) {
            Ok(r) => vec![(String::new(), default_id.to_owned(), r)],
            Err(e) => return fail_for(Some(default_id), e.message, e.pos),
        }
    };
    for (base, id, raw) in raws {
        if let Some(rule) = compile_rule(&mut cx, warnings, templates, &base, id, raw) {
            rules.push(rule);
        }
    }
    (rules, cx.errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(message: &str) -> String {
        format!("on: open\nactions: [ {{ log: {{ message: \"{message}\" }} }} ]\n")
    }

    fn ids(set: &RuleSet) -> Vec<String> {
        set.rules().iter().map(|r| r.id.clone()).collect()
    }

    /// Two loops and a second link to a folder: the walk ends, each rule loads once, and
    /// each link is named in a warning.
    #[test]
    fn each_real_folder_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir_all(rules.join("team/sub")).unwrap();
        std::fs::write(rules.join("team/a.yaml"), rule("a")).unwrap();
        std::fs::write(rules.join("team/sub/b.yaml"), rule("b")).unwrap();
        std::os::unix::fs::symlink(&rules, rules.join("team/loop")).unwrap();
        std::os::unix::fs::symlink("..", rules.join("team/sub/up")).unwrap();
        std::os::unix::fs::symlink("team", rules.join("z-again")).unwrap();
        std::os::unix::fs::symlink("team/a.yaml", rules.join("z-a.yaml")).unwrap();
        let set = RuleSet::reload(
            &rules,
            &dir.path().join("templates"),
            &mut Memory::default(),
            &Default::default(),
        );
        assert_eq!(ids(&set), ["team/a", "team/sub/b"], "{:?}", set.errors());
        let root = rules.to_str().unwrap();
        let warned: Vec<String> = set
            .warnings()
            .iter()
            .map(|w| format!("{}: {}", w.file, w.message).replace(root, "R"))
            .collect();
        assert_eq!(
            warned,
            [
                "R/team/loop: symlink loop: this leads back to R; not followed",
                "R/team/sub/up: symlink loop: this leads back to R/team; not followed",
                "R/z-a.yaml: this is the same file as R/team/a.yaml, which is read there only",
                "R/z-again: this is the same folder as R/team, which is read there only",
            ]
        );
    }

    #[test]
    fn last_good_version_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        let templates = dir.path().join("templates");
        let mut memory = Memory::default();
        std::fs::write(rules.join("a.yaml"), rule("one")).unwrap();
        std::fs::write(rules.join("b.yaml"), "id: shared\n".to_owned() + &rule("b")).unwrap();
        let set = RuleSet::reload(&rules, &templates, &mut memory, &Default::default());
        assert_eq!(ids(&set), ["a", "shared"]);
        let first_version = set.files()[0].version.clone().unwrap();

        // A broken edit keeps the old version serving, with the error visible.
        std::fs::write(rules.join("a.yaml"), "on: open\nactions: [ { lg: {} } ]\n").unwrap();
        // A brand-new broken file adds nothing; a new file taking a used id is refused.
        std::fs::write(rules.join("c.yaml"), "on: [oops\n").unwrap();
        std::fs::write(rules.join("0-dup.yaml"), "id: shared\n".to_owned() + &rule("dup")).unwrap();
        let set = RuleSet::reload(&rules, &templates, &mut memory, &Default::default());
        assert_eq!(ids(&set), ["a", "shared"]);
        let a = set.files().iter().find(|f| f.file.ends_with("a.yaml")).unwrap();
        assert_eq!(a.version.as_ref(), Some(&first_version));
        assert!(a.errors[0].message.contains("unknown key `lg`"), "{:?}", a.errors);
        let dup = set
            .files()
            .iter()
            .find(|f| f.file.ends_with("0-dup.yaml"))
            .unwrap();
        assert!(
            dup.errors[0].message.contains("duplicate rule id `shared`"),
            "{:?}",
            dup.errors
        );
        assert_eq!(dup.rules, 0);
        let shared = set.get("shared").unwrap();
        assert!(shared.file.ends_with("b.yaml"), "the unchanged file keeps its id");

        // A fixed edit replaces it; a deleted file's rules go.
        std::fs::write(rules.join("a.yaml"), rule("two")).unwrap();
        std::fs::remove_file(rules.join("b.yaml")).unwrap();
        let set = RuleSet::reload(&rules, &templates, &mut memory, &Default::default());
        assert_eq!(ids(&set), ["a", "shared"]);
        assert!(set.get("shared").unwrap().file.ends_with("0-dup.yaml"));
        let a = set.files().iter().find(|f| f.file.ends_with("a.yaml")).unwrap();
        assert!(a.errors.is_empty());
        assert_ne!(a.version.as_ref(), Some(&first_version));
    }
}

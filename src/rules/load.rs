//! Walking a rules folder: which files count, their ids, duplicates.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::compile::compile_rule;
use super::diag::{Cx, Diagnostic};
use super::file::{RawMany, RawRule};
use super::{Rule, RuleSet};
use crate::template::Templates;
use crate::yaml::{self, Pos, Positions, join_index};

pub(super) fn load(rules_dir: &Path, templates_dir: &Path) -> RuleSet {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut templates = Templates::new();
    for (file, message) in templates.load_dir(templates_dir) {
        errors.push(Diagnostic {
            file,
            line: 1,
            column: 1,
            rule: None,
            message,
        });
    }

    let mut files = Vec::new();
    if let Err(e) = collect(rules_dir, &mut files) {
        errors.push(Diagnostic {
            file: rules_dir.display().to_string(),
            line: 1,
            column: 1,
            rule: None,
            message: format!("cannot read the rules folder: {e}"),
        });
    }
    files.sort();

    let mut rules: Vec<Rule> = Vec::new();
    let mut seen: HashMap<String, (String, usize)> = HashMap::new();
    for path in files {
        let shown = path.display().to_string();
        let rel = path.strip_prefix(rules_dir).unwrap_or(&path);
        let default_id = rel.with_extension("").to_string_lossy().replace('\\', "/");
        let (file_rules, file_errors) = load_file(&path, &shown, &default_id, &mut templates, &mut warnings);
        if !file_errors.is_empty() {
            errors.extend(file_errors);
            continue;
        }
        for rule in file_rules {
            if let Some((other, line)) = seen.get(&rule.id) {
                errors.push(Diagnostic {
                    file: shown.clone(),
                    line: rule.line,
                    column: 1,
                    rule: Some(rule.id.clone()),
                    message: format!(
                        "duplicate rule id `{}`: already defined in {other}:{line}; this one is not loaded",
                        rule.id
                    ),
                });
                continue;
            }
            seen.insert(rule.id.clone(), (shown.clone(), rule.line));
            rules.push(rule);
        }
    }
    RuleSet::new(rules, templates, errors, warnings)
}

/// Every `.yaml`/`.yml` at any depth; names starting with `.` or `_` are skipped (files and
/// folders), so editors' swap files and drafts stay out.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
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
        if meta.is_dir() {
            collect(&path, out)?;
        } else if meta.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads one file: its rules, or its errors (a file with errors contributes no rules).
pub(crate) fn load_file(
    path: &Path,
    shown: &str,
    default_id: &str,
    templates: &mut Templates,
    warnings: &mut Vec<Diagnostic>,
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
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                return fail(
                    format!(
                        "the file is not UTF-8 text (byte {})",
                        e.utf8_error().valid_up_to()
                    ),
                    Pos { line: 1, column: 1 },
                );
            }
        },
        Err(e) => return fail(format!("cannot read: {e}"), Pos { line: 1, column: 1 }),
    };
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
    let positions = Positions::build(&text);
    let mut cx = Cx::new(shown, &positions);
    let mut rules = Vec::new();
    let many = positions.key("rules").is_some();
    let raws: Vec<(String, String, RawRule)> = if many {
        match yaml::from_str::<RawMany>(&text) {
            Ok(m) => m
                .rules
                .into_iter()
                .enumerate()
                .map(|(i, r)| (join_index("rules", i), format!("{default_id}#{}", i + 1), r))
                .collect(),
            Err(e) => return fail(e.message, e.pos),
        }
    } else {
        match yaml::from_str::<RawRule>(&text) {
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

//! Load errors located at `file:line:col`, and the context the compiler reports them through.

use std::fmt;

use serde::Serialize;

use crate::base::yaml::{Pos, Positions};

/// An error and its sources, `: `-separated: many libraries say only what failed ("db
/// error", "error sending request") and keep the reason in a source.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// What files are compiled for: facts about the server that decide whether a rule can
/// work there, so `check` and a reload refuse what would only fail when it fires.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The server has `http.signing_secret`: `sign: true` can sign.
    pub signing_secret: bool,
    /// Per configured source: its provider's name and the event types it sends, when
    /// that list is fixed (a rule for another type is likely a typo).
    pub event_types: std::collections::BTreeMap<String, Option<(String, Vec<String>)>>,
    /// Per source whose events name their contact elsewhere than `email`: where.
    pub contact_paths: std::collections::BTreeMap<String, super::path::FieldPath>,
    /// The configuration's `send_window` for email actions (already checked there), as
    /// written: each email action without its own compiles it.
    pub send_window: Option<serde_yaml::Value>,
    /// The configuration's frequency caps; `None` when no configuration is known (a
    /// `cap: NAME` is then not checked, and no cap applies).
    pub caps: Option<Vec<super::caps::Cap>>,
    /// The configuration's one-click unsubscribe key and public URL, if it has them.
    pub one_click: Option<super::one_click::OneClick>,
}

/// One problem in one rule file, phrased for the person who edits it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    /// The file, relative to the rules folder's parent as the user named it.
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The rule's id, when the error belongs to one rule.
    pub rule: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        if let Some(rule) = &self.rule {
            write!(f, " [rule {rule}]")?;
        }
        Ok(())
    }
}

/// What the compiler of one file carries: where things are, the server it compiles for,
/// and the errors so far. Every
/// check reports and carries on, so one run shows all problems of a file.
pub(crate) struct Cx<'a> {
    pub file: &'a str,
    pub positions: &'a Positions,
    pub rule: Option<String>,
    pub errors: Vec<Diagnostic>,
    /// The server the rules are compiled for.
    pub context: Context,
    /// Whether a template of the rule being compiled mentions `contact.` (the rule is
    /// then decided where the contact is known).
    pub reads_contact: bool,
}

impl<'a> Cx<'a> {
    pub fn new(file: &'a str, positions: &'a Positions) -> Self {
        Self {
            file,
            positions,
            rule: None,
            errors: Vec::new(),
            context: Context::default(),
            reads_contact: false,
        }
    }

    /// An error at the key naming `path` (unknown keys, misplaced entries).
    pub fn at_key(&mut self, path: &str, message: impl Into<String>) {
        let pos = self
            .positions
            .key(path)
            .unwrap_or_else(|| self.positions.nearest(path));
        self.push(pos, message.into());
    }

    /// An error at the value of `path` (bad regex, bad template, wrong type).
    pub fn at_value(&mut self, path: &str, message: impl Into<String>) {
        let pos = self
            .positions
            .value(path)
            .unwrap_or_else(|| self.positions.nearest(path));
        self.push(pos, message.into());
    }

    pub fn push(&mut self, pos: Pos, message: String) {
        self.errors.push(Diagnostic {
            file: self.file.to_owned(),
            line: pos.line,
            column: pos.column,
            rule: self.rule.clone(),
            message,
        });
    }

    /// `${env:NAME}` substitution, reporting an unset variable at `path`.
    pub fn env(&mut self, path: &str, text: &str) -> Option<String> {
        match crate::base::env::substitute(text) {
            Ok(s) => Some(s.into_owned()),
            Err(msg) => {
                self.at_value(path, msg);
                None
            }
        }
    }
}

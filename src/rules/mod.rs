//! Rules: loading a folder of YAML files into an immutable, indexed [`RuleSet`].
//!
//! Two stages, as users' input deserves: `file.rs` is the raw serde model (only what the
//! user wrote, unknown keys refused), `compile.rs` turns it into [`Rule`]s with regexes,
//! JSONPath and templates built once. Every error of every file is collected, located at
//! `file:line:col`; a file with errors contributes no rules, and never stops the others.

pub mod condition;
pub mod file;
pub mod stateful;

mod compile;
mod index;
mod load;

use std::path::Path;

use crate::actions::ActionSpec;
use crate::event::Event;
use crate::template::Templates;

pub use crate::base::diag::{Context, Diagnostic};
pub use condition::{Cond, Explain, NoState, Seen, Truth};
pub use file::Expect;
pub use load::{FileStatus, Memory};
pub use stateful::{Correlation, Once, Threshold, WindowCounts};

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub id: String,
    /// The file it came from, as shown in messages.
    pub file: String,
    /// Line of the rule in its file.
    pub line: usize,
    pub description: Option<String>,
    pub on: On,
    pub source: Option<String>,
    /// The `when:` conditions as one `all`.
    pub when: Cond,
    pub absent: Option<Correlation>,
    pub threshold: Option<Threshold>,
    pub once: Option<Once>,
    pub actions: Vec<ActionSpec>,
    /// Event types that cancel this rule's pending jobs and timers for their contact.
    pub exit_on: Vec<String>,
    /// Whether its conditions or templates read `contact.*`: it is decided in the commit,
    /// where the contact's lists, properties and counts are exact.
    pub reads_contact: bool,
    pub tests: Vec<TestCase>,
    pub enabled: bool,
}

/// Which event types a rule listens to.
#[derive(Debug, Clone, PartialEq)]
pub enum On {
    Any,
    Types(Vec<String>),
}

/// An inline `tests:` case, checked by `hookflow check`.
#[derive(Debug)]
pub struct TestCase {
    pub name: Option<String>,
    pub line: usize,
    pub event: serde_json::Value,
    pub history: Option<Vec<serde_json::Value>>,
    /// What is known of the event's contact.
    pub contact: Option<serde_json::Value>,
    pub expect: Expect,
    pub actions: Option<Vec<serde_json::Value>>,
}

impl Rule {
    pub fn listens_to(&self, kind: &str) -> bool {
        match &self.on {
            On::Any => true,
            On::Types(types) => types.iter().any(|t| t == kind),
        }
    }

    /// Whether firing depends on other events (and so on history or the store).
    pub fn is_stateful(&self) -> bool {
        self.when.is_stateful() || self.absent.is_some() || self.threshold.is_some() || self.once.is_some()
    }

    /// Whether this rule can see `ev` at all (type and source), before any condition.
    pub fn sees(&self, ev: &Event) -> bool {
        self.listens_to(&ev.kind) && self.source.as_deref().is_none_or(|s| s == ev.source)
    }
}

/// Every rule of a folder, compiled and indexed, plus what failed to load.
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Top-level field names the conditions read, resolved once per event.
    fields: crate::base::path::FieldTable,
    templates: Templates,
    index: index::Index,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    files: Vec<FileStatus>,
    /// See [`RuleSet::correlation_fields`]; computed once, read for every event.
    correlation_fields: Vec<(String, crate::base::path::FieldPath)>,
    /// Positions in `rules` of the rules with `absent`: every event asks which of their
    /// timers it cancels, and scanning all rules for that would cost O(rules) per event.
    absent: Vec<usize>,
    /// Positions of the enabled rules with `exit_on`, for the same reason.
    exit_on: Vec<usize>,
    /// The `contact.sent.KIND.PERIOD` counts any rule reads: a contact's view has them.
    contact_sent: Vec<(String, String, crate::base::duration::Duration)>,
    /// Per source, where its events name their contact (default: `email`).
    contact_paths: std::collections::BTreeMap<String, crate::base::path::FieldPath>,
    /// The files serving, by content hash: which version of the rules decided an event.
    version: std::sync::Arc<crate::store::RuleSetVersion>,
}

impl RuleSet {
    /// Loads every rule file under `rules_dir` and the templates in `templates_dir`
    /// (default: `templates/` beside the rules folder). Never fails: problems are in
    /// [`RuleSet::errors`], and the rules that loaded are usable.
    pub fn load(rules_dir: &Path, templates_dir: Option<&Path>) -> Self {
        let default_templates = rules_dir
            .parent()
            .map_or_else(|| Path::new("templates").to_path_buf(), |p| p.join("templates"));
        let templates_dir = templates_dir.unwrap_or(&default_templates);
        load::load(
            rules_dir,
            templates_dir,
            &mut Memory::default(),
            &Context::default(),
        )
    }

    /// [`RuleSet::load`] for a server described by `context`.
    pub fn load_in(rules_dir: &Path, templates_dir: &Path, context: &Context) -> Self {
        load::load(rules_dir, templates_dir, &mut Memory::default(), context)
    }

    /// Loads again, keeping each file's last good version from `memory` (hot reload).
    pub fn reload(rules_dir: &Path, templates_dir: &Path, memory: &mut Memory, context: &Context) -> Self {
        load::load(rules_dir, templates_dir, memory, context)
    }

    /// The (event type, field) pairs that `after` conditions look up: the facts the store
    /// records for events of those types.
    pub fn correlation_fields(&self) -> &[(String, crate::base::path::FieldPath)] {
        &self.correlation_fields
    }

    /// The same rules, their events' contacts read where `paths` say (per source).
    pub(crate) fn with_contact_paths(
        mut self,
        paths: std::collections::BTreeMap<String, crate::base::path::FieldPath>,
    ) -> Self {
        self.contact_paths = paths;
        self
    }

    /// The contact of an event: the address at its source's `contact:` path (default
    /// `email`), trimmed and lowercased. Jobs and timers carry it, so that a `cancel`, an
    /// `exit_on`, a cap or `contact.*` finds that person.
    pub fn contact_of(&self, ev: &crate::event::Event) -> Option<String> {
        let address = match self.contact_paths.get(&ev.source) {
            Some(path) => path.find_map(&ev.data, |v| v.as_str().map(str::to_owned))?,
            None => ev.data.get("email")?.as_str()?.to_owned(),
        };
        let address = address.trim();
        (!address.is_empty()).then(|| address.to_lowercase())
    }

    /// The `contact.sent.KIND.PERIOD` counts the rules read, as (kind, period as written,
    /// period).
    pub fn contact_sent(&self) -> &[(String, String, crate::base::duration::Duration)] {
        &self.contact_sent
    }

    /// The enabled rules that an event of type `kind` ends, for its contact (`exit_on`).
    pub fn exited_by<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Rule> {
        self.exit_on
            .iter()
            .filter_map(|&i| self.rules.get(i))
            .filter(move |r| r.exit_on.iter().any(|k| k == kind))
    }

    /// The rules with an `absent` part.
    pub fn with_absent(&self) -> impl Iterator<Item = &Rule> {
        self.absent.iter().filter_map(|&i| self.rules.get(i))
    }

    fn find_correlation_fields(rules: &[Rule]) -> Vec<(String, crate::base::path::FieldPath)> {
        let mut out: Vec<(String, crate::base::path::FieldPath)> = Vec::new();
        for rule in rules {
            let mut found = Vec::new();
            rule.when.correlations(&mut found);
            found.extend(rule.absent.as_ref());
            for c in found {
                if !out
                    .iter()
                    .any(|(k, p)| *k == c.event && p.as_str() == c.same.as_str())
                {
                    out.push((c.event.clone(), c.same.clone()));
                }
            }
        }
        out
    }

    /// The longest `after` window: how long correlation facts must be kept.
    pub fn longest_correlation(&self) -> Option<crate::base::duration::Duration> {
        self.rules
            .iter()
            .flat_map(|r| {
                let mut found = Vec::new();
                r.when.correlations(&mut found);
                found.extend(r.absent.as_ref());
                found.into_iter().map(|c| c.within).collect::<Vec<_>>()
            })
            .max()
    }

    /// Every rule file and how it stands.
    pub fn files(&self) -> &[FileStatus] {
        &self.files
    }

    fn new(
        mut rules: Vec<Rule>,
        templates: Templates,
        errors: Vec<Diagnostic>,
        warnings: Vec<Diagnostic>,
        files: Vec<FileStatus>,
        version: std::sync::Arc<crate::store::RuleSetVersion>,
    ) -> Self {
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        let mut fields = crate::base::path::FieldTable::default();
        for rule in &mut rules {
            rule.when.intern(&mut fields);
        }
        let index = index::Index::build(&rules);
        let correlation_fields = Self::find_correlation_fields(&rules);
        let absent = (0..rules.len()).filter(|&i| rules[i].absent.is_some()).collect();
        let exit_on = (0..rules.len())
            .filter(|&i| rules[i].enabled && !rules[i].exit_on.is_empty())
            .collect();
        let mut contact_sent = Vec::new();
        for rule in &rules {
            rule.when.sent_counts(&mut contact_sent);
        }
        Self {
            absent,
            exit_on,
            contact_sent,
            contact_paths: Default::default(),
            correlation_fields,
            rules,
            fields,
            templates,
            index,
            errors,
            warnings,
            files,
            version,
        }
    }

    /// The version of the rules serving: the hash and text of each file.
    pub fn version(&self) -> &std::sync::Arc<crate::store::RuleSetVersion> {
        &self.version
    }

    /// One file's text compiled with no configuration, for the library's unit tests; it
    /// must load without errors.
    #[cfg(test)]
    pub(crate) fn of_text(text: &str) -> Self {
        let file = crate::store::RuleFile {
            path: "t.yaml".into(),
            id: "t".into(),
            hash: "0".into(),
            text: text.into(),
        };
        let set = Self::from_texts(vec![file], Path::new("/nonexistent"), &Context::default());
        assert!(set.errors().is_empty(), "{:?}", set.errors());
        set
    }

    /// Compiles a stored version of a rule set (to explain an event it decided).
    pub fn from_texts(files: Vec<crate::store::RuleFile>, templates_dir: &Path, context: &Context) -> Self {
        load::from_texts(files, templates_dir, context)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules
            .binary_search_by(|r| r.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.rules[i])
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    pub fn errors(&self) -> &[Diagnostic] {
        &self.errors
    }

    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The rules that can see `ev` (type and source), in id order, straight from the index.
    pub fn candidates<'s, 'e>(&'s self, ev: &'e Event) -> impl Iterator<Item = &'s Rule> + use<'s, 'e> {
        self.index
            .entries(&ev.kind)
            .filter(|e| e.source.as_deref().is_none_or(|s| s == ev.source))
            .map(|e| &self.rules[e.rule as usize])
    }

    /// The rules whose conditions hold for `ev` (stateful parts are asked of `history`),
    /// in id order. This is the hot path: the event's fields are looked up once, and no
    /// predicate allocates.
    pub fn matching<'s, 'e>(
        &'s self,
        ev: &'e Event,
        history: &'e dyn Seen,
    ) -> impl Iterator<Item = &'s Rule> + use<'s, 'e> {
        let slots = crate::base::path::Slots::resolve(&self.fields, &ev.data);
        self.index
            .entries(&ev.kind)
            .filter(move |e| {
                e.enabled
                    && e.source.as_deref().is_none_or(|s| s == ev.source)
                    && e.when.eval_in(ev, Some(&slots), history) == Truth::True
            })
            .map(|e| &self.rules[e.rule as usize])
    }
}

//! `hookflow check`: load everything, then run every rule's inline `tests:`, rendering the
//! actions of each case that fires so template mistakes show up before deploy.

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use crate::event::Event;
use std::sync::Arc;

use crate::engine;
use crate::rules::{Diagnostic, Expect, Explain, Rule, RuleSet, TestCase, Truth};
use crate::sources::mailjet::Mailjet;
use crate::sources::{Source, Sources};

#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// Rules loaded.
    pub rules: usize,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    pub tests: TestSummary,
}

#[derive(Debug, Default, Serialize)]
pub struct TestSummary {
    pub passed: usize,
    pub failed: usize,
    pub failures: Vec<TestFailure>,
}

#[derive(Debug, Serialize)]
pub struct TestFailure {
    pub rule: String,
    pub file: String,
    /// Line of the test case in the file.
    pub line: usize,
    /// 1-based position in the rule's `tests:`.
    pub case: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub message: String,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.tests.failed == 0
    }
}

/// Runs every inline test of every loaded rule; test events are decoded by `sources`.
pub fn check(set: &Arc<RuleSet>, sources: &Sources) -> CheckReport {
    let mut tests = TestSummary::default();
    let mut warnings = set.warnings().to_vec();
    for rule in set.rules() {
        if rule.tests.is_empty() {
            warnings.push(Diagnostic {
                file: rule.file.clone(),
                line: rule.line,
                column: 1,
                rule: Some(rule.id.clone()),
                message: "this rule has no `tests:`; its templates are only checked when it first fires"
                    .into(),
            });
        }
        for (i, case) in rule.tests.iter().enumerate() {
            match run_case(set, sources, rule, case) {
                Ok(()) => tests.passed += 1,
                Err(message) => {
                    tests.failed += 1;
                    tests.failures.push(TestFailure {
                        rule: rule.id.clone(),
                        file: rule.file.clone(),
                        line: case.line,
                        case: i + 1,
                        name: case.name.clone(),
                        message,
                    });
                }
            }
        }
    }
    CheckReport {
        rules: set.rules().len(),
        errors: set.errors().to_vec(),
        warnings,
        tests,
    }
}

/// The event of an inline test, decoded as its rule's source would deliver it (by that
/// source's provider; Mailjet's when no source is configured for it), with the fields the
/// provider always sends filled in (Mailjet's `time`: templates using `{{time}}` render
/// as they will in production).
pub fn test_event(rule: &Rule, data: &Value, sources: &Sources) -> Result<Event, String> {
    let now = Utc::now();
    let fallback = Source::new(Mailjet, None);
    let (name, source) = sources
        .for_rule(rule.source.as_deref())
        .unwrap_or((rule.source.as_deref().unwrap_or("mailjet"), &fallback));
    let mut data = data.clone();
    source.provider.complete_test_event(&mut data, now);
    let mut events = source
        .decode(name, data, None, None, now)
        .map_err(|e| e.to_string())?;
    events.pop().ok_or_else(|| "no event".into())
}

/// Decides the case's event after its history, as the server would have, and compares.
fn run_case(set: &Arc<RuleSet>, sources: &Sources, rule: &Rule, case: &TestCase) -> Result<(), String> {
    let ev = test_event(rule, &case.event, sources)?;
    if !rule.sees(&ev) {
        return match case.expect {
            Expect::NoMatch => Ok(()),
            Expect::Match => Err(format!(
                "expected a match, but this rule does not listen to `{}` events from `{}`",
                ev.kind, ev.source
            )),
        };
    }
    let (sequence, at) = engine::history_around(&ev, case.history.as_deref().unwrap_or_default())?;
    // The case's contact is the event's: its `email`.
    let contacts = match (&case.contact, set.contact_of(&ev)) {
        (Some(known), Some(email)) => serde_json::json!({ email: known }),
        (Some(_), None) => return Err("`contact` needs an `email` in the event".into()),
        (None, _) => Value::Null,
    };
    let mut replayed = engine::replay_knowing(set, &sequence, &contacts)?;
    let mine = replayed.swap_remove(at);
    let fired = mine.fired.contains(&rule.id);
    match (case.expect, fired) {
        (Expect::NoMatch, true) => Err("expected no match, but the rule fired".into()),
        (Expect::NoMatch, false) => Ok(()),
        (Expect::Match, true) => {
            let jobs: Vec<_> = mine.jobs.iter().filter(|j| j.rule_id == rule.id).collect();
            if let Some(j) = jobs.iter().find(|j| j.error.is_some()) {
                return Err(format!(
                    "actions[{}].{}: {}",
                    j.action_index,
                    j.kind,
                    j.error.as_deref().unwrap_or_default()
                ));
            }
            match &case.actions {
                Some(expected) => {
                    let rendered: Vec<Value> = jobs.iter().map(|j| j.action.clone()).collect();
                    compare_actions(expected, &rendered)
                }
                None => Ok(()),
            }
        }
        (Expect::Match, false) => {
            let why = engine::explain_rule(rule, &ev, &mine.fired, &mine.decisions);
            let mut msg = format!(
                "expected a match, but {}",
                why.reason.unwrap_or_else(|| "the rule did not fire".into())
            );
            let mut failing = Vec::new();
            failing_leaves(&why.conditions, &mut failing);
            for line in failing {
                msg.push_str("\n  ");
                msg.push_str(&line);
            }
            Err(msg)
        }
    }
}

/// The conditions that did not hold, with what they saw.
pub fn failing_leaves(e: &Explain, out: &mut Vec<String>) {
    if e.children.is_empty() {
        if e.result != Truth::True {
            let saw = e.saw.as_ref().map(|s| format!(" (saw {s})")).unwrap_or_default();
            let verdict = if e.result == Truth::Unknown {
                "unknown"
            } else {
                "failed"
            };
            out.push(format!("{verdict}: {}{saw}", e.condition));
        }
    } else if e.result != Truth::True {
        for c in &e.children {
            failing_leaves(c, out);
        }
    }
}

/// Each expected action must be a subset of the rendered one at the same position.
fn compare_actions(expected: &[Value], rendered: &[Value]) -> Result<(), String> {
    if expected.len() > rendered.len() {
        return Err(format!(
            "expected {} actions, the rule rendered {}",
            expected.len(),
            rendered.len()
        ));
    }
    for (i, (want, got)) in expected.iter().zip(rendered).enumerate() {
        if let Some(diff) = subset_diff(want, got, "") {
            return Err(format!("actions[{i}]: {diff}"));
        }
    }
    Ok(())
}

fn subset_diff(want: &Value, got: &Value, path: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w.iter().find_map(|(k, wv)| {
            let here = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match g.get(k) {
                Some(gv) => subset_diff(wv, gv, &here),
                None => Some(format!("`{here}` expected {wv}, but the action has no `{here}`")),
            }
        }),
        _ if crate::base::value::Lit::new(want.clone()).equals(got) => None,
        _ => Some(format!("`{path}` expected {want}, rendered {got}")),
    }
}

//! `hookflow test`: which rules match an event and what their actions would be, fully
//! rendered, without executing anything. With history, the event and its history are
//! decided as the server would have ([`engine::replay`]); without, stateful rules say
//! what they would need.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::engine::{self, RuleExplain, StateUsed, explain_rule, not_firing};
use crate::event::Event;
use crate::rules::{NoState, Rule, RuleSet, Truth};

#[derive(Debug, Serialize)]
pub struct DryRun {
    pub events: Vec<EventResult>,
}

#[derive(Debug, Serialize)]
pub struct EventResult {
    #[serde(rename = "type")]
    pub kind: String,
    /// Rules that fire, in id order, with their rendered actions.
    pub matches: Vec<MatchResult>,
    /// Rules that would need history (earlier or later events) to decide.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs_history: Vec<NeedsHistory>,
    /// With `--explain`: every rule that could see the event, condition by condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Vec<RuleExplain>>,
}

#[derive(Debug, Serialize)]
pub struct MatchResult {
    pub rule: String,
    /// Each action as rendered (`kind`, and its fields).
    pub actions: Vec<Value>,
    /// Set when the rule fires but an action cannot be rendered (e.g. a missing field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct NeedsHistory {
    pub rule: String,
    pub reason: String,
}

/// Runs `events` through `set`. `history` entries (with `ago:`/`later:`) are placed around
/// each event; `None` means no history at all, and stateful rules report that they need it.
///
/// `contacts` (a map from address to `{lists, props, suppressed}`, or `null`) is what
/// `contact.*` reads; giving it decides the stateful rules as with an empty history.
pub fn dry_run(
    set: &Arc<RuleSet>,
    events: &[Event],
    history: Option<&[Value]>,
    contacts: &Value,
    explain: bool,
) -> Result<DryRun, String> {
    let mut out = Vec::with_capacity(events.len());
    let history = history.or_else(|| (!contacts.is_null()).then_some(&[][..]));
    for ev in events {
        out.push(match history {
            Some(entries) => with_history(set, ev, entries, contacts, explain)?,
            None => without_history(set, ev, explain),
        });
    }
    Ok(DryRun { events: out })
}

/// Stateless rules decide; stateful ones say what they would need.
fn without_history(set: &Arc<RuleSet>, ev: &Event, explain: bool) -> EventResult {
    let planned = engine::plan(set, ev.clone(), ev.time);
    let matches = group_jobs(&planned.matched, &planned.jobs);
    let mut needs_history = Vec::new();
    let mut explained = Vec::new();
    for rule in set.candidates(ev) {
        let when = if rule.enabled {
            rule.when.eval(ev, &NoState)
        } else {
            Truth::False
        };
        let need = (when != Truth::False && rule.is_stateful()).then(|| needs(rule));
        let fires = if need.is_some() {
            Truth::Unknown
        } else if planned.matched.contains(&rule.id) {
            Truth::True
        } else {
            Truth::False
        };
        if explain {
            explained.push(RuleExplain {
                rule: rule.id.clone(),
                fires,
                reason: need.clone().or_else(|| not_firing(rule, fires)),
                conditions: rule.when.explain(ev, &NoState),
                state: planned_state(set, rule, ev),
            });
        }
        if let Some(reason) = need {
            needs_history.push(NeedsHistory {
                rule: rule.id.clone(),
                reason,
            });
        }
    }
    EventResult {
        kind: ev.kind.clone(),
        matches,
        needs_history,
        explain: explain.then_some(explained),
    }
}

/// The event decided after its history, as the server would have.
fn with_history(
    set: &Arc<RuleSet>,
    ev: &Event,
    entries: &[Value],
    contacts: &Value,
    explain: bool,
) -> Result<EventResult, String> {
    let (sequence, at) = engine::history_around(ev, entries)?;
    let mut replayed = engine::replay_knowing(set, &sequence, contacts)?;
    let mine = replayed.swap_remove(at);
    let explain = explain.then(|| {
        set.candidates(ev)
            .map(|rule| explain_rule(rule, ev, &mine.fired, &mine.decisions))
            .collect()
    });
    Ok(EventResult {
        kind: ev.kind.clone(),
        matches: group_jobs(&mine.fired, &mine.jobs),
        needs_history: Vec::new(),
        explain,
    })
}

/// What can be said of a stateful rule's state from the event alone: an `absent` timer's
/// due time, the rendered `once` key.
fn planned_state(set: &RuleSet, rule: &Rule, ev: &Event) -> Option<StateUsed> {
    let mut state = StateUsed::default();
    if let Some(a) = rule.absent.as_ref().filter(|a| a.key(ev).is_some()) {
        state.absent_due_at = Some((ev.time + a.within.to_chrono()).to_rfc3339());
    }
    if let Some(once) = &rule.once {
        let ctx = crate::template::context(ev, &rule.id, None);
        state.once_key = set.templates().render(&once.per, &ctx).ok();
    }
    (!state.is_empty()).then_some(state)
}

/// What a stateful rule needs to decide, in a few words.
fn needs(rule: &Rule) -> String {
    if let Some(a) = &rule.absent {
        return format!(
            "needs history: fires {} later unless an event `{}` with the same {} arrives",
            a.within,
            a.event,
            a.same.as_str()
        );
    }
    if rule.when.is_stateful() {
        return "needs history: `after` asks about earlier events".into();
    }
    if let Some(th) = &rule.threshold {
        return format!("needs history: counts events over {}", th.window);
    }
    "needs history: `once` fires once per key and period".into()
}

/// The fired rules, in id order, each with its rendered actions (or the error that kept
/// one from rendering).
fn group_jobs(fired: &[String], jobs: &[crate::store::NewJob]) -> Vec<MatchResult> {
    let mut ids: Vec<&String> = fired.iter().collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .map(|rule| {
            let mine: Vec<_> = jobs.iter().filter(|j| &j.rule_id == rule).collect();
            let error = mine.iter().find_map(|j| {
                j.error
                    .as_ref()
                    .map(|e| format!("actions[{}].{}: {e}", j.action_index, j.kind))
            });
            MatchResult {
                rule: rule.clone(),
                actions: if error.is_some() {
                    Vec::new()
                } else {
                    mine.iter().map(|j| j.action.clone()).collect()
                },
                error,
            }
        })
        .collect()
}

//! Why a rule did or did not fire for an event: its conditions worked out again (with the
//! `after` answers the state gave at the time) and its stateful decisions as they were
//! made. `hookflow test --explain` prints it; `GET /api/events/{id}` shows it for every
//! stored event, with the version of the rules that decided.

use serde::Serialize;

use super::{Answers, Outcome, RuleDecision, StateUsed};
use crate::event::Event;
use crate::rules::{Explain, Rule, Truth};

/// One rule's part in an event, condition by condition.
#[derive(Debug, Serialize)]
pub struct RuleExplain {
    pub rule: String,
    pub fires: Truth,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub conditions: Explain,
    /// For stateful rules: the timer, window, once-key and `after` answers used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateUsed>,
}

/// A rule's part in an event's decision: whether it fired, why (not), and the state used.
pub fn explain_rule(rule: &Rule, ev: &Event, fired: &[String], decisions: &[RuleDecision]) -> RuleExplain {
    let mine: Vec<&RuleDecision> = decisions.iter().filter(|d| d.rule == rule.id).collect();
    let fires = Truth::from_bool(fired.contains(&rule.id));
    // The last word is the latest decision: a timer that fired or was cancelled.
    let last = mine.last();
    let state = mine.iter().map(|d| &d.state).find(|s| !s.is_empty()).cloned();
    let after = state.as_ref().map_or(&[][..], |s| s.after.as_slice());
    RuleExplain {
        rule: rule.id.clone(),
        fires,
        reason: last
            .and_then(|d| d.reason.clone())
            .filter(|_| last.is_some_and(|d| d.outcome != Outcome::Fires) || fires == Truth::True)
            .or_else(|| not_firing(rule, fires)),
        conditions: rule.when.explain(ev, &Answers(after)),
        state,
    }
}

pub(crate) fn not_firing(rule: &Rule, fires: Truth) -> Option<String> {
    match fires {
        Truth::True => None,
        _ if !rule.enabled => Some("the rule is disabled (`enabled: false`)".into()),
        _ => Some("a condition does not hold".into()),
    }
}

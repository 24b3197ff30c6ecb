//! `hookflow test`: which rules match an event and what their actions would be, fully
//! rendered, without executing anything.

use serde::Serialize;
use serde_json::Value;

use crate::actions::Rendered;
use crate::event::Event;
use crate::rules::{Explain, History, MemoryHistory, NoHistory, RuleSet, StateUsed, Truth};

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
    pub needs_history: Vec<Pending>,
    /// With `--explain`: every rule that could see the event, condition by condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Vec<RuleExplain>>,
}

#[derive(Debug, Serialize)]
pub struct MatchResult {
    pub rule: String,
    pub actions: Vec<Rendered>,
    /// Set when the rule fires but an action cannot be rendered (e.g. a missing field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Pending {
    pub rule: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct RuleExplain {
    pub rule: String,
    pub fires: Truth,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub conditions: Explain,
    /// For stateful rules: the timer, window or once-key the decision used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateUsed>,
}

/// Runs `events` through `set`. `history` entries (with `ago:`/`later:`) are placed around
/// each event; `None` means no history at all, and stateful rules report that they need it.
pub fn dry_run(
    set: &RuleSet,
    events: &[Event],
    history: Option<&[Value]>,
    explain: bool,
) -> Result<DryRun, String> {
    let mut out = Vec::with_capacity(events.len());
    for ev in events {
        let memory;
        let hist: &dyn History = match history {
            Some(entries) => {
                memory = MemoryHistory::around(ev, entries)?;
                &memory
            }
            None => &NoHistory,
        };
        let mut result = EventResult {
            kind: ev.kind.clone(),
            matches: Vec::new(),
            needs_history: Vec::new(),
            explain: None,
        };
        let mut explained = Vec::new();
        for decision in set.decide(ev, hist) {
            match decision.fires {
                Truth::True => {
                    let (actions, error) = match decision.render_actions(ev, set.templates()) {
                        Ok(a) => (a, None),
                        Err(e) => (Vec::new(), Some(e)),
                    };
                    result.matches.push(MatchResult {
                        rule: decision.rule.id.clone(),
                        actions,
                        error,
                    });
                }
                Truth::Unknown => result.needs_history.push(Pending {
                    rule: decision.rule.id.clone(),
                    reason: decision.reason.clone().unwrap_or_default(),
                }),
                Truth::False => {}
            }
            if explain {
                explained.push(RuleExplain {
                    rule: decision.rule.id.clone(),
                    fires: decision.fires,
                    reason: decision.reason.clone(),
                    conditions: decision.rule.when.explain(ev, hist),
                    state: decision.state(),
                });
            }
        }
        if explain {
            result.explain = Some(explained);
        }
        out.push(result);
    }
    Ok(DryRun { events: out })
}

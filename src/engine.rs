//! Ingest planning: which rules fire for an event, and the jobs their actions become.
//! Runs on the request path, so it only matches and renders: nothing slow, no I/O.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::delivery::endpoint_of;
use crate::event::Event;
use crate::rules::{NoHistory, Rule, RuleSet, Truth};
use crate::store::{NewEvent, NewJob};
use crate::template::context;

/// Plans `ev`: matched rule ids and one job per action of each rule that fires. An action
/// that cannot be rendered becomes a failed job carrying the error, visible in the audit
/// trail, instead of being dropped.
///
/// Rules that need history (`after`), memory (`once`), a timer (`absent`) or a window
/// (`threshold`) are only listed in `NewEvent::stateful`: the store decides them inside
/// the commit transaction, where the state they read and write is exact.
pub fn plan(rules: &RuleSet, ev: Event, received_at: DateTime<Utc>) -> NewEvent {
    let mut matched = Vec::new();
    let mut jobs = Vec::new();
    let mut stateful = Vec::new();
    for rule in rules.matching(&ev, &NoHistory) {
        if rule.once.is_some() || rule.absent.is_some() || rule.threshold.is_some() {
            stateful.push(rule.id.clone());
            continue;
        }
        matched.push(rule.id.clone());
        jobs.extend(jobs_for(rules, rule, &ev, None, received_at));
    }
    for rule in rules.candidates(&ev) {
        let decidable = rule.enabled && rule.when.is_stateful();
        if decidable && rule.when.eval(&ev, &NoHistory) == Truth::Unknown {
            stateful.push(rule.id.clone());
        }
    }
    NewEvent {
        event: ev,
        received_at,
        matched,
        jobs,
        stateful,
    }
}

/// The jobs of a rule that fires for `ev`: one per action, rendered now.
pub fn jobs_for(
    rules: &RuleSet,
    rule: &Rule,
    ev: &Event,
    vars: Option<&Map<String, Value>>,
    received_at: DateTime<Utc>,
) -> Vec<NewJob> {
    let ctx = context(ev, &rule.id, vars);
    rule.actions
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut job = NewJob {
                key: format!("{}/{}/{}", ev.id, rule.id, i),
                rule_id: rule.id.clone(),
                action_index: i as u32,
                kind: spec.kind_name().to_owned(),
                action: Value::Null,
                endpoint: None,
                due_at: received_at,
                error: None,
            };
            match spec.render(rules.templates(), &ctx) {
                Ok(rendered) => {
                    if let Some(delay) = rendered.delay {
                        job.due_at = received_at + delay.to_chrono();
                    }
                    if let crate::actions::RenderedKind::Http(http) = &rendered.action {
                        job.endpoint = endpoint_of(&http.url);
                    }
                    job.action = serde_json::to_value(&rendered).unwrap_or(Value::Null);
                }
                Err(e) => {
                    tracing::warn!(rule = %rule.id, event = %ev.id, "action {i} cannot be rendered: {e}");
                    job.error = Some(e);
                }
            }
            job
        })
        .collect()
}

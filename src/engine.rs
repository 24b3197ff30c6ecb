//! Ingest planning: which rules fire for an event, and the jobs their actions become.
//! Runs on the request path, so it only matches and renders: nothing slow, no I/O.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::delivery::endpoint_of;
use crate::event::Event;
use crate::rules::{NoHistory, RuleSet, Truth};
use crate::store::{NewEvent, NewJob};
use crate::template::context;

/// Plans `ev`: matched rule ids and one job per action of each rule that fires. An action
/// that cannot be rendered becomes a failed job carrying the error, visible in the audit
/// trail, instead of being dropped.
///
/// Rules whose firing depends on other events (`after`, `absent`, `threshold`, `once`)
/// need the store's history, which the engine does not consult yet: they do not fire.
pub fn plan(rules: &RuleSet, ev: Event, received_at: DateTime<Utc>) -> NewEvent {
    let mut matched = Vec::new();
    let mut jobs = Vec::new();
    for rule in rules.matching(&ev, &NoHistory) {
        let decision = rule.decide(&ev, &NoHistory, rules.templates());
        if decision.fires != Truth::True {
            continue;
        }
        matched.push(rule.id.clone());
        let ctx = context(&ev, &rule.id, decision.vars.as_ref());
        for (i, spec) in rule.actions.iter().enumerate() {
            let key = format!("{}/{}/{}", ev.id, rule.id, i);
            let mut job = NewJob {
                key,
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
            jobs.push(job);
        }
    }
    NewEvent {
        event: ev,
        received_at,
        matched,
        jobs,
    }
}

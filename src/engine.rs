//! Ingest planning: which rules fire for an event, and the jobs their actions become.
//! Runs on the request path, so it only matches and renders: nothing slow, no I/O.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::base::net::endpoint_of;
use crate::base::value::key_text;
use crate::event::Event;
use crate::rules::{NoHistory, Rule, RuleSet, Truth};
use crate::store::{NewEvent, NewJob, Pending};
use crate::template::context;

/// Plans `ev`: matched rule ids and one job per action of each rule that fires. An action
/// that cannot be rendered becomes a failed job carrying the error, visible in the audit
/// trail, instead of being dropped.
///
/// Rules that need history (`after`), memory (`once`), a timer (`absent`) or a window
/// (`threshold`) are only listed in `NewEvent::stateful`: the store decides them inside
/// the commit transaction, where the state they read and write is exact.
pub fn plan(rules: &Arc<RuleSet>, ev: Event, received_at: DateTime<Utc>) -> NewEvent {
    let mut matched = Vec::new();
    let mut jobs = Vec::new();
    let mut stateful = Vec::new();
    // One template context for every key of this event; only `rule.id` differs per rule.
    let mut ctx = None;
    for rule in rules.matching(&ev, &NoHistory) {
        if rule.once.is_some() || rule.absent.is_some() || rule.threshold.is_some() {
            stateful.push(pending(rules, rule, &ev, &mut ctx));
            continue;
        }
        matched.push(rule.id.clone());
        jobs.extend(jobs_for(rules, rule, &ev, None, received_at));
    }
    for rule in rules.candidates(&ev) {
        let decidable = rule.enabled && rule.when.is_stateful();
        if decidable && rule.when.eval(&ev, &NoHistory) == Truth::Unknown {
            stateful.push(pending(rules, rule, &ev, &mut ctx));
        }
    }
    let facts = rules
        .correlation_fields()
        .iter()
        .filter(|(kind, _)| *kind == ev.kind)
        .filter_map(|(_, field)| Some((field.as_str().to_owned(), key_text(field.first(&ev.data)?)?)))
        .collect();
    let cancels = rules
        .with_absent()
        .filter_map(|rule| {
            let absent = rule.absent.as_ref().filter(|a| a.event == ev.kind)?;
            Some((rule.id.clone(), absent.key(&ev)?))
        })
        .collect();
    NewEvent {
        cancels,
        facts,
        payload: ev.data.to_string(),
        event: ev,
        received_at,
        matched,
        jobs,
        stateful,
        rules: rules.clone(),
    }
}

/// A stateful rule with its `threshold.group_by` and `once.per` keys rendered for `ev`.
fn pending(rules: &RuleSet, rule: &Rule, ev: &Event, ctx: &mut Option<Value>) -> Pending {
    let mut render = |tpl: &crate::template::Tpl| {
        let ctx = ctx.get_or_insert_with(|| context(ev, &rule.id, None));
        if let Value::Object(map) = ctx {
            map.insert("rule".into(), serde_json::json!({ "id": rule.id }));
        }
        rules.templates().render(tpl, ctx).map_err(|e| e.to_string())
    };
    Pending {
        rule_id: rule.id.clone(),
        group: rule.threshold.as_ref().map(|th| match &th.group_by {
            Some(tpl) => render(tpl),
            None => Ok(String::new()),
        }),
        once: rule.once.as_ref().map(|once| render(&once.per)),
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
    (0..rule.actions.len())
        .map(|i| job_for(rules, rule, i, ev, &ctx, received_at))
        .collect()
}

/// A failed job's action rendered again from the rule in service and the stored event
/// (the rule may have been fixed since). The error says why it cannot be.
pub fn rerender(
    rules: &RuleSet,
    rule_id: &str,
    action_index: u32,
    ev: &Event,
    now: DateTime<Utc>,
) -> Result<crate::store::Rendered, String> {
    let rule = rules
        .get(rule_id)
        .ok_or_else(|| format!("rule `{rule_id}` is no longer loaded"))?;
    let i = action_index as usize;
    if i >= rule.actions.len() {
        return Err(format!("rule `{rule_id}` no longer has action #{i}"));
    }
    let job = job_for(rules, rule, i, ev, &context(ev, &rule.id, None), now);
    match job.error {
        Some(e) => Err(format!("it still cannot be rendered: {e}")),
        None => Ok(crate::store::Rendered {
            action: job.action,
            endpoint: job.endpoint,
        }),
    }
}

/// Action `i` of `rule` for `ev`, rendered against `ctx`.
fn job_for(
    rules: &RuleSet,
    rule: &Rule,
    i: usize,
    ev: &Event,
    ctx: &Value,
    received_at: DateTime<Utc>,
) -> NewJob {
    let spec = &rule.actions[i];
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
    match spec.render(rules.templates(), ctx) {
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
}

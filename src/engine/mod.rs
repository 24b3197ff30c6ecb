//! The engine: what an event does. [`plan`] matches it against the rules on the request
//! path (nothing slow, no I/O) and renders the jobs of the rules that fire outright; the
//! stateful rules are decided by `decide`, the one algorithm for `after`, `absent`,
//! `threshold` and `once`, over a [`State`] — the store's transaction in the server,
//! [`MemoryState`] offline ([`replay`]). Both sides therefore decide alike by construction.

mod decide;
mod memory;
mod replay;
mod why;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::base::net::endpoint_of;
use crate::base::value::key_text;
use crate::event::Event;
use crate::rules::{NoState, Rule, RuleSet, Truth};
use crate::store::state::{Decided, DueTimer, FireTimers, Retention, State, Stateful};
use crate::store::{NewEvent, NewJob, StoreError};
use crate::template::context;

pub use decide::{Answers, Asked, CancelledBy, Cause, Outcome, RuleDecision};
pub use memory::MemoryState;
pub use replay::{Replayed, history_around, replay, replay_knowing};
pub(crate) use why::not_firing;
pub use why::{AfterAnswer, Described, RuleExplain, StateUsed, WindowState, describe, explain_rule};

/// Plans `ev`: matched rule ids and one job per action of each rule that fires. An action
/// that cannot be rendered becomes a failed job carrying the error, visible in the audit
/// trail, instead of being dropped.
///
/// Rules that need history (`after`), memory (`once`), a timer (`absent`) or a window
/// (`threshold`) go into the event's [`Plan`], which the store has the engine decide
/// inside the commit transaction, where the state they read and write is exact.
pub fn plan(rules: &Arc<RuleSet>, ev: Event, received_at: DateTime<Utc>) -> NewEvent {
    let mut matched = Vec::new();
    let mut jobs = Vec::new();
    let mut candidates = Vec::new();
    // One template context for every key of this event; only `rule.id` differs per rule.
    let mut ctx = None;
    let mut settle = Vec::new();
    for rule in rules.matching(&ev, &NoState) {
        if rule.once.is_some() || rule.absent.is_some() || rule.threshold.is_some() || rule.reads_contact {
            candidates.push(candidate(rules, rule, &ev, &mut ctx));
            continue;
        }
        matched.push(rule.id.clone());
        for job in jobs_for(rules, rule, &ev, None, received_at) {
            // A cancel is carried out in the commit, where the jobs it cancels are exact;
            // so is a job a cap counts, where the counts are.
            let counted = capped(rule.actions.get(job.action_index as usize), &job);
            if job.error.is_none() && (job.kind == CANCEL || counted) {
                settle.push(job);
            } else {
                jobs.push(job);
            }
        }
    }
    for rule in rules.candidates(&ev) {
        let decidable = rule.enabled && rule.when.is_stateful();
        if decidable && rule.when.eval(&ev, &NoState) == Truth::Unknown {
            candidates.push(candidate(rules, rule, &ev, &mut ctx));
        }
    }
    let facts: Vec<(String, String)> = rules
        .correlation_fields()
        .iter()
        .filter(|(kind, _)| *kind == ev.kind)
        .filter_map(|(_, field)| Some((field.as_str().to_owned(), field.find_map(&ev.data, key_text)?)))
        .collect();
    let cancels: Vec<(String, String)> = rules
        .with_absent()
        .filter_map(|rule| {
            let absent = rule.absent.as_ref().filter(|a| a.event == ev.kind)?;
            Some((rule.id.clone(), absent.key(&ev)?))
        })
        .collect();
    let mut exits: Vec<String> = rules.exited_by(&ev.kind).map(|r| r.id.clone()).collect();
    if !exits.is_empty() && rules.contact_of(&ev).is_none() {
        exits.clear();
    }
    let busy = !candidates.is_empty() || !facts.is_empty() || !cancels.is_empty();
    // Counting a contact's jobs (`contact.sent`) must see those the batch planned before.
    let counts_jobs = !rules.contact_sent().is_empty()
        && candidates
            .iter()
            .any(|c| rules.get(&c.rule_id).is_some_and(|r| r.reads_contact));
    let changes_jobs = !settle.is_empty()
        || !exits.is_empty()
        || counts_jobs
        || candidates.iter().any(|c| {
            rules
                .get(&c.rule_id)
                .is_some_and(|r| r.actions.iter().any(|a| a.kind_name() == CANCEL))
        });
    let stateful = (busy || changes_jobs).then(|| {
        Box::new(Plan {
            changes_jobs,
            rules: rules.clone(),
            candidates,
            facts,
            cancels,
            settle,
            exits,
        }) as Box<dyn Stateful>
    });
    NewEvent {
        payload: ev.data.to_string(),
        event: ev,
        received_at,
        matched,
        jobs,
        stateful,
        rule_set: rules.version().clone(),
    }
}

/// What stateful rules decide for one event, planned with the rule set of its time.
pub struct Plan {
    rules: Arc<RuleSet>,
    candidates: Vec<Candidate>,
    /// `(field, value)` for each correlation field of the event's type: the facts `after`
    /// and `absent` may later ask about.
    facts: Vec<(String, String)>,
    /// `(rule id, key)` of the `absent` timers this event cancels if they cover its time.
    cancels: Vec<(String, String)>,
    /// Jobs of rules that fired outright which the commit settles: `cancel`s, and jobs a
    /// frequency cap counts.
    settle: Vec<NewJob>,
    /// Rules whose `exit_on` names this event's type: ended for its contact.
    exits: Vec<String>,
    /// Whether deciding cancels jobs (see [`Stateful::changes_jobs`]).
    changes_jobs: bool,
}

/// The kind of the `cancel` action.
const CANCEL: &str = "cancel";

/// A stateful rule of an event, with what its templates say for this event: rendered on
/// the request's thread, so that the store's single writer spends its time on state.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub rule_id: String,
    /// `threshold.group_by`, rendered (empty without `group_by`); the error if it failed.
    pub group: Option<Result<String, String>>,
    /// `once.per`, rendered; the error if it failed.
    pub once: Option<Result<String, String>>,
    /// The event's contact (an `absent` timer carries it).
    pub contact: Option<String>,
}

impl Stateful for Plan {
    fn changes_jobs(&self) -> bool {
        self.changes_jobs
    }

    fn decide(
        &self,
        ev: &Event,
        received_at: DateTime<Utc>,
        state: &mut dyn State,
    ) -> Result<Decided, StoreError> {
        let mut out = Decided::default();
        let t = ev.time.timestamp_millis();
        // The event a cancel is on behalf of (its type and id are copied only then).
        let by = (ev, t);
        if let Some(contact) = self.rules.contact_of(ev) {
            for rule in &self.exits {
                let (jobs, timers) = cancel_for(state, std::slice::from_ref(rule), &contact, by, rule)?;
                let mut d = RuleDecision::new(rule, Outcome::Cancelled, Cause::ExitOn);
                d.cancelled = Some([jobs as u64, timers as u64]);
                out.decisions.push(d.to_json());
            }
        }
        for job in &self.settle {
            out.jobs.push(carry_out(&self.rules, job.clone(), by, state)?);
        }
        // What is known of the contact, read once, when a rule asks.
        let mut view: Option<Value> = None;
        for c in &self.candidates {
            let Some(rule) = self.rules.get(&c.rule_id).filter(|r| r.enabled) else {
                continue;
            };
            if rule.reads_contact && view.is_none() {
                view = Some(self.contact_view(ev, received_at, state)?);
            }
            let seen = view.as_ref().filter(|_| rule.reads_contact);
            let d = decide::rule(rule, ev, c, state, seen)?;
            if d.outcome == Outcome::Fires {
                out.fired.push(rule.id.clone());
                let mut vars = d.vars.clone();
                if let Some(v) = seen {
                    vars.get_or_insert_with(Map::new)
                        .insert("contact".into(), v.clone());
                }
                for job in jobs_for(&self.rules, rule, ev, vars.as_ref(), received_at) {
                    out.jobs.push(carry_out(&self.rules, job, by, state)?);
                }
            }
            out.decisions.push(d.to_json());
        }
        for (field, key) in &self.facts {
            state.record(&ev.kind, field, key, t)?;
        }
        for (rule_id, key) in &self.cancels {
            let mut note = RuleDecision::new(rule_id, Outcome::Cancelled, Cause::CancelledBy);
            note.by = Some(CancelledBy {
                kind: ev.kind.clone(),
                id: ev.id.clone(),
                at: t,
            });
            state.cancel_timers(rule_id, key, t, &note.to_json())?;
        }
        Ok(out)
    }
}

impl Plan {
    /// The event's contact as `contact.*` reads it (an event without `email` has an
    /// empty one: on no list, no properties, never sent anything).
    fn contact_view(
        &self,
        ev: &Event,
        received_at: DateTime<Utc>,
        state: &mut dyn State,
    ) -> Result<Value, StoreError> {
        let now = received_at.timestamp_millis();
        let sent: Vec<(String, String, i64)> = self
            .rules
            .contact_sent()
            .iter()
            .map(|(kind, label, d)| (kind.clone(), label.clone(), now - d.as_secs() as i64 * 1000))
            .collect();
        match self.rules.contact_of(ev) {
            Some(c) => state.contact(&c, &sent),
            None => Ok(crate::store::contact_view(
                Vec::new(),
                false,
                &sent
                    .iter()
                    .map(|(k, l, _)| (k.clone(), l.clone(), 0))
                    .collect::<Vec<_>>(),
            )),
        }
    }
}

/// Whether a frequency cap counts `job` of action `spec`: the action has caps and the
/// job a contact.
fn capped(spec: Option<&crate::actions::ActionSpec>, job: &NewJob) -> bool {
    job.contact.is_some() && spec.is_some_and(|a| !a.caps.is_empty())
}

fn spec_of<'a>(rules: &'a RuleSet, job: &NewJob) -> Option<&'a crate::actions::ActionSpec> {
    rules.get(&job.rule_id)?.actions.get(job.action_index as usize)
}

/// A job as the commit leaves it: a `cancel` carried out (settled with what it did), a
/// job a cap counts counted (or skipped, or held, when over it), any other as planned.
fn carry_out(
    rules: &RuleSet,
    job: NewJob,
    by: (&Event, i64),
    state: &mut dyn State,
) -> Result<NewJob, StoreError> {
    if job.error.is_some() {
        return Ok(job);
    }
    if job.kind == CANCEL {
        return cancel(rules, job, by, state);
    }
    if capped(spec_of(rules, &job), &job) {
        return count_against_caps(rules, job, state);
    }
    Ok(job)
}

/// Counts `job` against each of its caps at its due time. Over one: skipped, or (with
/// `when_capped: hold`) due when every cap has room and its send window is open —
/// found by moving forward until both agree, as each move may cross the other.
fn count_against_caps(rules: &RuleSet, mut job: NewJob, state: &mut dyn State) -> Result<NewJob, StoreError> {
    let (Some(spec), Some(contact)) = (spec_of(rules, &job), job.contact.clone()) else {
        return Ok(job);
    };
    let window = job
        .action
        .get("send_window")
        .and_then(crate::base::local_time::Window::from_json);
    let planned = job.due_at.timestamp_millis();
    let mut due = planned;
    let mut held_by = None;
    for _ in 0..32 {
        let mut moved = false;
        for cap in &spec.caps {
            let per = cap.per.as_secs() as i64 * 1000;
            let mut counted = state.cap_times(&cap.name, &contact, due - per, due + per)?;
            counted.sort_unstable();
            if crate::base::caps::fits(&counted, due, per, cap.max as usize) {
                continue;
            }
            if spec.when_capped.unwrap_or(cap.when_capped) == crate::base::caps::WhenCapped::Skip {
                job.settled = Some(crate::store::Settled {
                    status: "skipped",
                    note: format!("skipped ({})", cap.reason()),
                });
                return Ok(job);
            }
            due = crate::base::caps::slot(&counted, due, per, cap.max as usize);
            held_by = Some(cap);
            moved = true;
        }
        if !moved {
            break;
        }
        if let Some(open) = window
            .as_ref()
            .and_then(|w| w.next_open(chrono::DateTime::from_timestamp_millis(due).unwrap_or_default()))
        {
            due = open.timestamp_millis();
        }
    }
    for cap in &spec.caps {
        state.cap_take(&cap.name, &contact, due, &job.key)?;
    }
    if let (Some(cap), true) = (held_by, due != planned) {
        let at = chrono::DateTime::from_timestamp_millis(due).unwrap_or_default();
        job.due_at = at;
        let tz = window.as_ref().map_or(chrono_tz::UTC, |w| w.tz);
        if let Value::Object(action) = &mut job.action {
            action.insert(
                "held".into(),
                Value::from(format!(
                    "until {} ({})",
                    at.with_timezone(&tz).to_rfc3339(),
                    cap.reason()
                )),
            );
        }
    }
    Ok(job)
}

/// Carries out a `cancel` job: settled with what it did.
fn cancel(
    rules: &RuleSet,
    mut job: NewJob,
    by: (&Event, i64),
    state: &mut dyn State,
) -> Result<NewJob, StoreError> {
    let cancel = match crate::actions::Rendered::from_value(job.action.clone()) {
        Ok(crate::actions::Rendered {
            action: crate::actions::RenderedKind::Cancel(c),
            ..
        }) => c,
        Ok(_) | Err(_) => {
            job.error = Some("a cancel whose rendered form cannot be read".into());
            return Ok(job);
        }
    };
    let named: Vec<String> = rules
        .rules()
        .iter()
        .filter(|r| cancel.names(&r.id))
        .map(|r| r.id.clone())
        .collect();
    let (jobs, timers) = cancel_for(state, &named, &cancel.contact, by, &job.rule_id)?;
    job.settled = Some(crate::store::Settled {
        status: "succeeded",
        note: format!(
            "cancelled {jobs} job{} and {timers} timer{} of {} (rules: {})",
            plural(jobs),
            plural(timers),
            cancel.contact,
            if named.is_empty() {
                "none loaded match".to_owned()
            } else {
                named.join(", ")
            }
        ),
    });
    Ok(job)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Cancels `contact`'s pending jobs and timers of `rules` on behalf of `by` (the event,
/// at a time in unix ms) and `rule` (the rule whose cancel or `exit_on` it is). Returns
/// (jobs, timers).
fn cancel_for(
    state: &mut dyn State,
    rules: &[String],
    contact: &str,
    (ev, at): (&Event, i64),
    rule: &str,
) -> Result<(usize, usize), StoreError> {
    if rules.is_empty() {
        return Ok((0, 0));
    }
    let note = format!("cancelled by {} event {} (rule {rule})", ev.kind, ev.id);
    let mut timer_note = RuleDecision::new(rule, Outcome::Cancelled, Cause::CancelledBy);
    let by = CancelledBy {
        kind: ev.kind.clone(),
        id: ev.id.clone(),
        at,
    };
    timer_note.by = Some(by);
    state.cancel_contact(rules, contact, at, &note, &timer_note.to_json())
}

/// Due `absent` timers, decided with the rules in service.
pub struct Timers(pub Arc<RuleSet>);

impl FireTimers for Timers {
    fn fire(
        &self,
        timer: &DueTimer,
        now: DateTime<Utc>,
        state: &mut dyn State,
    ) -> Result<Decided, StoreError> {
        let mut out = Decided::default();
        let d = decide::timer(&self.0, timer, state)?;
        if d.outcome == Outcome::Fires
            && let Some(rule) = self.0.get(&timer.rule)
        {
            out.fired.push(rule.id.clone());
            for job in jobs_for(&self.0, rule, &timer.event, None, now) {
                out.jobs
                    .push(carry_out(&self.0, job, (&timer.event, timer.due), state)?);
            }
        }
        out.decisions.push(d.to_json());
        Ok(out)
    }
}

/// How long the store keeps state for `rules`.
pub fn retention(rules: &RuleSet) -> Retention {
    let day = 86_400_000;
    let facts = rules
        .longest_correlation()
        .map_or(0, |d| d.as_secs() as i64 * 1000);
    let windows = rules
        .rules()
        .iter()
        .filter_map(|r| r.threshold.as_ref().map(|t| t.window.as_secs() as i64 * 1000))
        .max()
        .unwrap_or(0);
    let caps = rules
        .rules()
        .iter()
        .flat_map(|r| &r.actions)
        .flat_map(|a| &a.caps)
        .map(|c| c.per.as_secs() as i64 * 1000)
        .max()
        .unwrap_or(0);
    Retention {
        facts_ms: facts + day,
        windows_ms: windows + day,
        caps_ms: caps + day,
    }
}

/// A stateful rule with its `threshold.group_by` and `once.per` keys rendered for `ev`.
fn candidate(rules: &RuleSet, rule: &Rule, ev: &Event, ctx: &mut Option<Value>) -> Candidate {
    let mut render = |tpl: &crate::template::Tpl| {
        let ctx = ctx.get_or_insert_with(|| context(ev, &rule.id, None));
        if let Value::Object(map) = ctx {
            map.insert("rule".into(), serde_json::json!({ "id": rule.id }));
        }
        rules.templates().render(tpl, ctx).map_err(|e| e.to_string())
    };
    Candidate {
        rule_id: rule.id.clone(),
        group: rule.threshold.as_ref().map(|th| match &th.group_by {
            Some(tpl) => render(tpl),
            None => Ok(String::new()),
        }),
        once: rule.once.as_ref().map(|once| render(&once.per)),
        contact: rule.absent.as_ref().and_then(|_| rules.contact_of(ev)),
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
        contact: rules.contact_of(ev),
        settled: None,
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
            if let (Some(w), Value::Object(action)) = (rendered.window, &mut job.action) {
                // Held until the window next opens in the contact's zone: due then, durably.
                action.insert("send_window".into(), w.to_json());
                match w.next_open(job.due_at) {
                    Some(open) if open > job.due_at => {
                        job.due_at = open;
                        let local = open.with_timezone(&w.tz).to_rfc3339();
                        action.insert("held".into(), Value::from(format!("until {local} (send window)")));
                    }
                    Some(_) => {}
                    None => job.error = Some("its send window never opens".into()),
                }
            }
        }
        Err(e) => job.error = Some(e),
    }
    job
}

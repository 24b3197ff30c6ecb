//! Deciding a sequence of events offline, exactly as the server would have: each event is
//! planned and decided in turn over one [`MemoryState`], then every timer they started
//! fires when due. `hookflow test --history` and inline tests run this; so does the test
//! that compares offline decisions with the server's.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{MemoryState, RuleDecision, Timers, plan};
use crate::base::duration::Duration;
use crate::base::time::parse_time;
use crate::event::{Event, content_id};
use crate::rules::RuleSet;
use crate::store::state::{Decided, FireTimers};
use crate::store::{NewJob, Settled};

/// What one event of a replay came to.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Rules that fired for it: at once, by state, or later by a timer.
    pub fired: Vec<String>,
    /// Their jobs, in that order.
    pub jobs: Vec<NewJob>,
    /// The stateful rules' decisions, and what happened to its timers later.
    pub decisions: Vec<RuleDecision>,
}

impl Replayed {
    fn take(&mut self, d: Decided) {
        self.fired.extend(d.fired);
        self.jobs.extend(d.jobs);
        self.decisions
            .extend(d.decisions.iter().filter_map(|j| serde_json::from_str(j).ok()));
    }
}

/// Decides `events` in the order given, as if they arrived so, then fires every timer
/// they started, at its due time (as if they all arrived before the first fell due).
pub fn replay(rules: &Arc<RuleSet>, events: &[Event]) -> Result<Vec<Replayed>, String> {
    replay_knowing(rules, events, &Value::Null)
}

/// [`replay`], knowing `contacts` (see [`MemoryState::know_contacts`]; `null`: none).
pub fn replay_knowing(
    rules: &Arc<RuleSet>,
    events: &[Event],
    contacts: &Value,
) -> Result<Vec<Replayed>, String> {
    let mut state = MemoryState::default();
    if !contacts.is_null() {
        state.know_contacts(contacts)?;
    }
    let mut out: Vec<Replayed> = Vec::with_capacity(events.len());
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for ev in events {
        // Repeated entries are distinct events here (the server would drop a repeat).
        let mut ev = ev.clone();
        if by_id.contains_key(&ev.id) {
            ev.id = format!("{}#{}", ev.id, out.len());
        }
        by_id.insert(ev.id.clone(), out.len());
        let planned = plan(rules, ev.clone(), ev.time);
        let mut r = Replayed {
            fired: planned.matched,
            jobs: planned.jobs,
            decisions: Vec::new(),
        };
        if let Some(stateful) = planned.stateful {
            state.deciding(&ev);
            r.take(
                stateful
                    .decide(&ev, ev.time, &mut state)
                    .map_err(|e| e.to_string())?,
            );
        }
        state.planned(&ev.id, ev.time.timestamp_millis(), &r.jobs);
        out.push(r);
    }
    let timers = Timers(rules.clone());
    for timer in state.due(i64::MAX) {
        let at = chrono::DateTime::from_timestamp_millis(timer.due).unwrap_or_default();
        let d = timers.fire(&timer, at, &mut state).map_err(|e| e.to_string())?;
        if let Some(&i) = by_id.get(&timer.event.id) {
            out[i].take(d);
        }
    }
    for (id, &i) in &by_id {
        let notes = state.notes(id);
        out[i]
            .decisions
            .extend(notes.iter().filter_map(|j| serde_json::from_str(j).ok()));
    }
    for job in out.iter_mut().flat_map(|r| r.jobs.iter_mut()) {
        if let Some(note) = state.cancelled(&job.key) {
            job.settled = Some(Settled {
                status: "cancelled",
                note: note.to_owned(),
            });
        }
        // What the commit did with the job, shown (and checked by inline tests) with it.
        if let (Some(s), Value::Object(action)) = (&job.settled, &mut job.action) {
            action.insert(
                "settled".into(),
                serde_json::json!({ "status": s.status, "note": s.note }),
            );
        }
    }
    Ok(out)
}

/// The sequence of `base` and its history: entries are events plus `ago: 2h` (before
/// `base`) or `later: 3h` (after it); without either, the entry's own `time` field, else
/// the same time as `base`. `times: 12` repeats an entry (for thresholds). In time order,
/// history first among equal times; returns the sequence and where `base` is in it.
pub fn history_around(base: &Event, entries: &[Value]) -> Result<(Vec<Event>, usize), String> {
    let mut events = Vec::with_capacity(entries.len() + 1);
    for (i, entry) in entries.iter().enumerate() {
        let at = |e: String| format!("history entry #{}: {e}", i + 1);
        let Value::Object(map) = entry else {
            return Err(format!("history entry #{} must be an event object", i + 1));
        };
        let mut data = map.clone();
        let ago = take_duration(&mut data, "ago").map_err(at)?;
        let later = take_duration(&mut data, "later").map_err(at)?;
        let times = match data.remove("times") {
            None => 1,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|t| (1..=100_000).contains(&t)) => {
                n.as_u64().unwrap_or(1)
            }
            Some(other) => {
                return Err(at(format!(
                    "`times` must be a count from 1 to 100000, found {other}"
                )));
            }
        };
        let kind = match data.get("event") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(at("needs `event: TYPE`".into())),
        };
        let time = match (ago, later) {
            (Some(_), Some(_)) => return Err(at("give `ago` or `later`, not both".into())),
            (Some(d), None) => base.time - d.to_chrono(),
            (None, Some(d)) => base.time + d.to_chrono(),
            (None, None) => data.get("time").and_then(parse_time).unwrap_or(base.time),
        };
        let data = Value::Object(data);
        let event = Event {
            id: content_id(&base.source, &data),
            source: base.source.clone(),
            kind,
            time,
            data,
        };
        events.extend(std::iter::repeat_n(event, times as usize));
    }
    let mut order: Vec<(i64, usize, Event)> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| (e.time.timestamp_millis(), i, e))
        .collect();
    order.push((base.time.timestamp_millis(), usize::MAX, base.clone()));
    order.sort_by_key(|(t, i, _)| (*t, *i));
    let at = order.iter().position(|(_, i, _)| *i == usize::MAX).unwrap_or(0);
    Ok((order.into_iter().map(|(.., e)| e).collect(), at))
}

fn take_duration(map: &mut Map<String, Value>, key: &str) -> Result<Option<Duration>, String> {
    match map.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Duration::parse(&s).map(Some).map_err(|e| format!("`{key}`: {e}")),
        Some(other) => Err(format!("`{key}` must be a duration such as `2h`, found {other}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::replay;
    use crate::event::Event;
    use crate::rules::RuleSet;

    const RULES: &str = r#"
rules:
  - id: welcome/part-2
    on: open
    actions:
      - log: { message: "part two" }
        delay: 2d
  - id: welcome/reminder
    on: sent
    absent: { event: open, same: MessageID, within: 3d }
    exit_on: [spam]
    actions: [ { log: { message: "reminder" } } ]
  - id: stop
    on: unsub
    actions:
      - cancel: { rules: ["welcome/part-*"], contact: "{{email}}" }
"#;

    fn ev(id: &str, kind: &str, hours: i64, email: &str, msg: u64) -> Event {
        Event {
            id: id.into(),
            source: "mailjet".into(),
            kind: kind.into(),
            time: chrono::DateTime::from_timestamp(1_800_000_000 + hours * 3600, 0).unwrap_or_default(),
            data: json!({ "event": kind, "email": email, "MessageID": msg }),
        }
    }

    fn set() -> Arc<RuleSet> {
        Arc::new(RuleSet::of_text(RULES))
    }

    #[test]
    fn a_cancel_reaches_the_contacts_pending_jobs_offline_as_in_the_server() {
        let out = replay(
            &set(),
            &[
                ev("o1", "open", 0, "a@x.example", 1),
                ev("o2", "open", 0, "b@x.example", 2),
                ev("o3", "open", 50, "a@x.example", 3),
                // After o1's part two was due (48h): that one went out; o3's had not.
                ev("u1", "unsub", 60, "A@x.example", 9),
            ],
        )
        .unwrap();
        let settled = |i: usize| out[i].jobs[0].action.get("settled").cloned();
        assert_eq!(settled(0), None, "due before the unsubscribe: attempted already");
        assert_eq!(settled(1), None, "another contact");
        let cancelled = settled(2).unwrap();
        assert_eq!(cancelled["status"], "cancelled");
        assert_eq!(cancelled["note"], "cancelled by unsub event u1 (rule stop)");
        let done = settled(3).unwrap();
        assert_eq!(done["status"], "succeeded");
        assert_eq!(
            done["note"],
            "cancelled 1 job and 0 timers of a@x.example (rules: welcome/part-2)"
        );
    }

    #[test]
    fn exit_on_ends_the_rules_timer_for_that_contact_alone() {
        let out = replay(
            &set(),
            &[
                ev("s1", "sent", 0, "a@x.example", 1),
                ev("s2", "sent", 0, "b@x.example", 2),
                ev("x1", "spam", 1, "a@x.example", 1),
            ],
        )
        .unwrap();
        assert!(
            !out[0].fired.contains(&"welcome/reminder".to_owned()),
            "ended by spam"
        );
        assert!(
            out[1].fired.contains(&"welcome/reminder".to_owned()),
            "b's timer fired"
        );
        let exit = &out[2].decisions[0];
        assert_eq!(exit.rule, "welcome/reminder");
        assert_eq!(exit.cancelled, Some([0, 1]));
    }
}

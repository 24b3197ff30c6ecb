//! State in memory: what `hookflow test --history` and inline tests decide over. It keeps
//! what the server's store keeps — facts, timers, window buckets, quiet periods — in the
//! same shape, so the one algorithm reads the same answers from either.

use std::collections::{BTreeMap, HashMap};

use crate::event::Event;
use crate::store::state::{DueTimer, State, Timer};
use serde_json::Value;

use crate::store::{NewJob, StoreError};

/// One window's buckets: bucket start → events per type.
type Buckets = BTreeMap<i64, Vec<(String, u64)>>;

#[derive(Debug, Default)]
pub struct MemoryState {
    /// `(kind, field, key)` → the times such events happened.
    facts: HashMap<(String, String, String), Vec<i64>>,
    /// Pending timers, with the event that started each, and its contact.
    timers: Vec<(DueTimer, Option<String>)>,
    /// `(rule, group)` → bucket start → events per type.
    windows: HashMap<(String, String), Buckets>,
    /// `(rule, key)` → end of the quiet period.
    marks: HashMap<(String, String), i64>,
    /// The event being decided (the one a timer belongs to).
    current: Option<Event>,
    /// Decisions added later to an event (a timer cancelled), by event id.
    notes: HashMap<String, Vec<String>>,
    /// Jobs planned so far that a `cancel` may reach: not settled, with a contact.
    jobs: Vec<Planned>,
    /// Jobs cancelled, by key: the note.
    cancelled: HashMap<String, String>,
    /// `(cap, contact)` → the due times and keys of the jobs it counted.
    caps: HashMap<(String, String), Vec<(i64, String)>>,
    /// What is known of contacts, by lowercased address (`hookflow test --contacts`, an
    /// inline test's `contact:`): `{lists, props, suppressed}` each.
    contacts: HashMap<String, Value>,
}

/// A planned job, as a cancel looks for it.
#[derive(Debug)]
struct Planned {
    key: String,
    rule: String,
    kind: String,
    contact: String,
    due: i64,
    /// When it was planned (the event's time).
    at: i64,
    event: String,
}

impl MemoryState {
    /// Sets the event being decided, before deciding it.
    pub fn deciding(&mut self, ev: &Event) {
        self.current = Some(ev.clone());
    }

    /// Takes the timers due at `now` or before, earliest first.
    pub fn due(&mut self, now: i64) -> Vec<DueTimer> {
        let (due, pending): (Vec<_>, Vec<_>) = self.timers.drain(..).partition(|(t, _)| t.due <= now);
        self.timers = pending;
        let mut due: Vec<DueTimer> = due.into_iter().map(|(t, _)| t).collect();
        due.sort_by_key(|t| t.due);
        due
    }

    /// Records the jobs event `event` (at `at`, unix ms) planned, for later cancels and
    /// `contact.sent` counts to find.
    pub fn planned(&mut self, event: &str, at: i64, jobs: &[NewJob]) {
        for job in jobs.iter().filter(|j| j.status() == "pending") {
            if let Some(contact) = &job.contact {
                self.jobs.push(Planned {
                    key: job.key.clone(),
                    rule: job.rule_id.clone(),
                    kind: job.kind.clone(),
                    contact: contact.clone(),
                    due: job.due_at.timestamp_millis(),
                    at,
                    event: event.to_owned(),
                });
            }
        }
    }

    /// Sets what is known of contacts: a map from address to `{lists: [..], props: {..},
    /// suppressed: bool}` (each part optional). The error names a malformed entry.
    pub fn know_contacts(&mut self, contacts: &Value) -> Result<(), String> {
        let Value::Object(map) = contacts else {
            return Err("contacts are a map from address to `{ lists, props, suppressed }`".into());
        };
        for (address, known) in map {
            let Value::Object(fields) = known else {
                return Err(format!(
                    "contact `{address}`: a map with `lists`, `props`, `suppressed`"
                ));
            };
            if let Some(bad) = fields
                .keys()
                .find(|k| !["lists", "props", "suppressed"].contains(&k.as_str()))
            {
                return Err(format!(
                    "contact `{address}`: unknown key `{bad}` (give lists, props, suppressed)"
                ));
            }
            self.contacts
                .insert(crate::store::address_key(address), known.clone());
        }
        Ok(())
    }

    /// Why job `key` was cancelled, if it was.
    pub fn cancelled(&self, key: &str) -> Option<&str> {
        self.cancelled.get(key).map(String::as_str)
    }

    /// The decisions added to event `id` after it was decided.
    pub fn notes(&mut self, id: &str) -> Vec<String> {
        self.notes.remove(id).unwrap_or_default()
    }
}

impl State for MemoryState {
    fn seen(&mut self, kind: &str, field: &str, key: &str, from: i64, to: i64) -> Result<bool, StoreError> {
        let at = (kind.to_owned(), field.to_owned(), key.to_owned());
        Ok(self
            .facts
            .get(&at)
            .is_some_and(|times| times.iter().any(|t| (from..=to).contains(t))))
    }

    fn record(&mut self, kind: &str, field: &str, key: &str, at: i64) -> Result<(), StoreError> {
        let times = self
            .facts
            .entry((kind.to_owned(), field.to_owned(), key.to_owned()))
            .or_default();
        if !times.contains(&at) {
            times.push(at);
        }
        Ok(())
    }

    fn start_timer(
        &mut self,
        timer: &Timer,
        cancel_kind: &str,
        cancel_field: &str,
    ) -> Result<bool, StoreError> {
        if self.seen(cancel_kind, cancel_field, &timer.key, timer.start, timer.due)? {
            return Ok(false);
        }
        let event = self
            .current
            .clone()
            .ok_or_else(|| StoreError::Corrupt("a timer started outside an event".into()))?;
        self.timers.push((
            DueTimer {
                rule: timer.rule.clone(),
                key: timer.key.clone(),
                start: timer.start,
                due: timer.due,
                event,
            },
            timer.contact.clone(),
        ));
        Ok(true)
    }

    fn cancel_timers(&mut self, rule: &str, key: &str, at: i64, note: &str) -> Result<usize, StoreError> {
        let mut cancelled = 0;
        let notes = &mut self.notes;
        self.timers.retain(|(t, _)| {
            let hit = t.rule == rule && t.key == key && t.start <= at && at <= t.due;
            if hit {
                cancelled += 1;
                notes.entry(t.event.id.clone()).or_default().push(note.to_owned());
            }
            !hit
        });
        Ok(cancelled)
    }

    /// "Not yet attempted", offline, is "due after the cancelling event": the server
    /// would have attempted a job due before it (it asks the job's status instead).
    fn cancel_contact(
        &mut self,
        rules: &[String],
        contact: &str,
        at: i64,
        note: &str,
        decision: &str,
    ) -> Result<(usize, usize), StoreError> {
        let current = self.current.as_ref().map(|e| e.id.clone()).unwrap_or_default();
        let mut jobs = 0;
        for job in &self.jobs {
            let hit = job.contact == contact
                && job.due > at
                && job.event != current
                && rules.contains(&job.rule)
                && !self.cancelled.contains_key(&job.key);
            if hit {
                self.cancelled.insert(job.key.clone(), note.to_owned());
                jobs += 1;
            }
        }
        let cancelled = &self.cancelled;
        for counted in self.caps.values_mut() {
            counted.retain(|(_, key)| !cancelled.contains_key(key));
        }
        let mut timers = 0;
        let notes = &mut self.notes;
        self.timers.retain(|(t, who)| {
            let hit = t.due > at
                && t.event.id != current
                && rules.contains(&t.rule)
                && who.as_deref() == Some(contact);
            if hit {
                timers += 1;
                notes
                    .entry(t.event.id.clone())
                    .or_default()
                    .push(decision.to_owned());
            }
            !hit
        });
        Ok((jobs, timers))
    }

    fn count(
        &mut self,
        rule: &str,
        group: &str,
        kind: &str,
        bucket: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let buckets = self
            .windows
            .entry((rule.to_owned(), group.to_owned()))
            .or_default();
        let counts = buckets.entry(bucket).or_default();
        match counts.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind.to_owned(), 1)),
        }
        let mut sums: Vec<(String, u64)> = Vec::new();
        if from < to {
            for (kind, n) in buckets.range(from + 1..=to).flat_map(|(_, c)| c) {
                match sums.iter_mut().find(|(k, _)| k == kind) {
                    Some((_, total)) => *total += n,
                    None => sums.push((kind.clone(), *n)),
                }
            }
        }
        Ok(sums)
    }

    fn contact(&mut self, contact: &str, sent: &[(String, String, i64)]) -> Result<Value, StoreError> {
        let known = self.contacts.get(contact);
        let lists: Vec<(String, String, i64)> = known
            .and_then(|k| k.get("lists"))
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(|name| (name.to_owned(), "{}".to_owned(), 0))
                    .collect()
            })
            .unwrap_or_default();
        let suppressed = known
            .and_then(|k| k.get("suppressed"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let counts: Vec<(String, String, u64)> = sent
            .iter()
            .map(|(kind, period, since)| {
                let n = self
                    .jobs
                    .iter()
                    .filter(|j| j.contact == contact && &j.kind == kind && j.at > *since)
                    .filter(|j| !self.cancelled.contains_key(&j.key))
                    .count();
                (kind.clone(), period.clone(), n as u64)
            })
            .collect();
        let mut view = crate::store::contact_view(lists, suppressed, &counts);
        // Offline, properties are given as one map, not per list.
        if let (Some(props), Value::Object(v)) = (known.and_then(|k| k.get("props")), &mut view) {
            v.insert("props".into(), props.clone());
        }
        Ok(view)
    }

    fn cap_times(&mut self, cap: &str, contact: &str, from: i64, to: i64) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .caps
            .get(&(cap.to_owned(), contact.to_owned()))
            .map(|c| {
                c.iter()
                    .map(|(t, _)| *t)
                    .filter(|t| from < *t && *t < to)
                    .collect()
            })
            .unwrap_or_default())
    }

    fn cap_take(&mut self, cap: &str, contact: &str, at: i64, job_key: &str) -> Result<(), StoreError> {
        let counted = self.caps.entry((cap.to_owned(), contact.to_owned())).or_default();
        if !counted.iter().any(|(t, k)| *t == at && k == job_key) {
            counted.push((at, job_key.to_owned()));
        }
        Ok(())
    }

    fn mark(&mut self, rule: &str, key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.marks.get(&(rule.to_owned(), key.to_owned())).copied())
    }

    fn set_mark(&mut self, rule: &str, key: &str, until: i64) -> Result<(), StoreError> {
        self.marks.insert((rule.to_owned(), key.to_owned()), until);
        Ok(())
    }
}

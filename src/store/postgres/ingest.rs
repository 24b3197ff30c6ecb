//! The ingest write path on PostgreSQL: a batch of events in one multi-row insert that
//! dedupes on the unique id, each new event's stateful part decided (by the engine,
//! through [`State`](crate::store::state::State)) in the same transaction, their jobs in
//! one more insert; and due timers, taken with `SKIP LOCKED` and fired the same way.
//!
//! Unlike SQLite's single writer, the row goes in before its decision: the insert is what
//! tells this instance that no other has the event (a second instance inserting the same
//! id waits for the first's commit and then skips it), so only a new event may change
//! state. An event that stateful rules decided something for is updated once after.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::state::{PgState, add_decision, prune};
use super::{Shared, Tx};
use crate::event::Event;
use crate::store::state::{DueTimer, FireTimers, Retention};
use crate::store::{Committed, NewEvent, NewJob, RuleSetVersion, StoreError, millis, unwritten};

/// How often (in this server's commits) expired facts, marks and window buckets are
/// deleted: rarely enough to cost nothing per event. Several servers each prune.
const PRUNE_EVERY: u64 = 256;

/// Stores `batch` (new events only: an id seen before is skipped) with their jobs, and
/// has each new event's stateful part decide, in arrival order.
pub(super) fn commit(
    db: &mut Tx<'_, '_>,
    shared: &Shared,
    batch: &[NewEvent],
    retention: Retention,
) -> Result<Committed, StoreError> {
    let unknown: Vec<&RuleSetVersion> = {
        let known = shared
            .rule_sets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut seen = HashSet::new();
        batch
            .iter()
            .map(|i| &*i.rule_set)
            .filter(|v| !known.contains(&v.hash) && seen.insert(v.hash.as_str()))
            .collect()
    };
    for version in unknown {
        record_rule_set(db, version, batch[0].received_at)?;
    }

    // One insert for the batch; an id twice in it is new once.
    let mut this_batch = HashSet::with_capacity(batch.len());
    let mut cols = Columns::default();
    for item in batch {
        let ev = &item.event;
        if !this_batch.insert(ev.id.as_str()) {
            continue;
        }
        cols.id.push(ev.id.as_str());
        cols.source.push(ev.source.as_str());
        cols.kind.push(ev.kind.as_str());
        cols.time.push(millis(ev.time));
        cols.received.push(millis(item.received_at));
        cols.payload.push(item.payload.as_str());
        cols.matched.push(matched_json(item.matched.iter()));
        cols.rule_set.push(item.rule_set.hash.as_str());
    }
    let inserted: HashMap<String, i64> = db
        .rows(
            "INSERT INTO events (id, source, type, time, received_at, payload, matched, rule_set)
             SELECT u.id, u.source, u.type, u.time, u.received_at, u.payload, u.matched::jsonb, u.rule_set
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                         $8::text[])
                  WITH ORDINALITY AS u(id, source, type, time, received_at, payload, matched, rule_set, n)
             ORDER BY u.n
             ON CONFLICT (id) DO NOTHING
             RETURNING id, seq",
            &[
                &cols.id,
                &cols.source,
                &cols.kind,
                &cols.time,
                &cols.received,
                &cols.payload,
                &cols.matched,
                &cols.rule_set,
            ],
        )?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    let mut jobs: Vec<(&str, i64, &NewJob)> = Vec::new();
    let mut decided: Vec<(&str, i64, NewJob)> = Vec::new();
    let mut all_fired = Vec::with_capacity(batch.len());
    let mut first = HashSet::with_capacity(batch.len());
    let mut locks = HashSet::new();
    let mut written = (0, 0);
    for item in batch {
        let ev = &item.event;
        let seq = match inserted.get(&ev.id) {
            Some(seq) if first.insert(ev.id.as_str()) => *seq,
            _ => {
                all_fired.push(None);
                continue;
            }
        };
        let created = millis(item.received_at);
        let mut fired = item.matched.clone();
        if let Some(stateful) = &item.stateful {
            if stateful.changes_jobs() {
                // It may cancel jobs the batch's earlier events planned: write them first.
                let rows = unwritten(&jobs, &decided, written);
                insert_jobs(db, shared, &mut locks, &rows)?;
                written = (jobs.len(), decided.len());
            }
            let mut state = PgState {
                db: &mut *db,
                shared,
                locks: &mut locks,
                seq,
            };
            let d = stateful.decide(ev, item.received_at, &mut state)?;
            if !d.fired.is_empty() || !d.decisions.is_empty() {
                fired.extend(d.fired);
                let decisions = (!d.decisions.is_empty()).then(|| format!("[{}]", d.decisions.join(",")));
                db.exec(
                    "UPDATE events SET matched = $1::text::jsonb, decisions = $2::text::jsonb WHERE seq = $3",
                    &[&matched_json(fired.iter()), &decisions, &seq],
                )?;
            }
            decided.extend(d.jobs.into_iter().map(|j| (ev.id.as_str(), created, j)));
        }
        jobs.extend(item.jobs.iter().map(|j| (ev.id.as_str(), created, j)));
        all_fired.push(Some(fired));
    }
    insert_jobs(db, shared, &mut locks, &unwritten(&jobs, &decided, written))?;
    let nth = shared.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(now) = batch.iter().map(|i| i.received_at).max()
        && nth.is_multiple_of(PRUNE_EVERY)
    {
        prune(db, retention, now)?;
    }
    Ok(Committed {
        fired: all_fired,
        jobs: jobs.len() + decided.len(),
    })
}

/// The events' columns, as arrays for `unnest`.
#[derive(Default)]
struct Columns<'a> {
    id: Vec<&'a str>,
    source: Vec<&'a str>,
    kind: Vec<&'a str>,
    time: Vec<i64>,
    received: Vec<i64>,
    payload: Vec<&'a str>,
    matched: Vec<String>,
    rule_set: Vec<&'a str>,
}

/// Keeps a rule set version's files (each text once) and the version itself.
fn record_rule_set(
    db: &mut Tx<'_, '_>,
    version: &RuleSetVersion,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = millis(now);
    for f in &version.files {
        db.exec(
            "INSERT INTO rule_files (hash, text, first_seen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&f.hash, &f.text, &now],
        )?;
    }
    let files: Vec<[&str; 3]> = version
        .files
        .iter()
        .map(|f| [f.path.as_str(), f.id.as_str(), f.hash.as_str()])
        .collect();
    db.exec(
        "INSERT INTO rule_sets (hash, files, first_seen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[
            &version.hash,
            &serde_json::to_string(&files).unwrap_or_default(),
            &now,
        ],
    )?;
    Ok(())
}

/// Fires due `absent` timers that no other instance holds: each is deleted and decided
/// (job keys are the usual `event/rule/index`, so a timer fired again adds nothing); what
/// was decided is added to the event. Returns the rules that fired and the timers taken.
pub(super) fn fire_timers(
    db: &mut Tx<'_, '_>,
    shared: &Shared,
    decide: &dyn FireTimers,
    now: DateTime<Utc>,
) -> Result<(Vec<String>, usize), StoreError> {
    let due: Vec<(i64, DueTimer)> = db
        .rows(
            "SELECT t.rule_id, e.id, t.key, t.start, t.due_at, e.source, e.type, e.time, e.payload, t.event_seq
             FROM timers t JOIN events e ON e.seq = t.event_seq
             WHERE t.due_at <= $1 ORDER BY t.due_at LIMIT 200
             FOR UPDATE OF t SKIP LOCKED",
            &[&millis(now)],
        )?
        .into_iter()
        .map(|r| {
            let payload: String = r.get(8);
            Ok((
                r.get(9),
                DueTimer {
                    rule: r.get(0),
                    key: r.get(2),
                    start: r.get(3),
                    due: r.get(4),
                    event: Event {
                        id: r.get(1),
                        source: r.get(5),
                        kind: r.get(6),
                        time: crate::store::from_millis(r.get(7)),
                        data: super::json_text(&payload)?,
                    },
                },
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    let mut fired = Vec::new();
    let mut locks = HashSet::new();
    for (seq, timer) in &due {
        db.exec(
            "DELETE FROM timers WHERE due_at = $1 AND event_seq = $2 AND rule_id = $3",
            &[&timer.due, seq, &timer.rule],
        )?;
        let mut state = PgState {
            db: &mut *db,
            shared,
            locks: &mut locks,
            seq: *seq,
        };
        let d = decide.fire(timer, now, &mut state)?;
        let rows: Vec<(&str, i64, &NewJob)> = d
            .jobs
            .iter()
            .map(|j| (timer.event.id.as_str(), millis(now), j))
            .collect();
        insert_jobs(db, shared, &mut locks, &rows)?;
        for rule in &d.fired {
            db.exec(
                "UPDATE events SET matched = matched || jsonb_build_array($1::text) WHERE seq = $2",
                &[rule, seq],
            )?;
        }
        for decision in &d.decisions {
            add_decision(db, *seq, decision)?;
        }
        fired.extend(d.fired);
    }
    Ok((fired, due.len()))
}

/// The `matched` column: a JSON array of rule ids.
fn matched_json<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    serde_json::to_string(&ids.collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

/// Inserts jobs (and their endpoints) in two statements, and wakes idle dispatchers of
/// every instance (`NOTIFY`, sent at commit). Each job is `(event id, created at in unix
/// ms, job)`; a job whose key exists is left alone, so replays add nothing.
fn insert_jobs(
    db: &mut Tx<'_, '_>,
    shared: &Shared,
    locks: &mut HashSet<i64>,
    jobs: &[(&str, i64, &NewJob)],
) -> Result<(), StoreError> {
    if jobs.is_empty() {
        return Ok(());
    }
    // A cancel for one of these contacts on another instance must see these jobs, or
    // commit before them: the lock it takes, taken here too (in one statement, in order).
    let contacts: Vec<i64> = jobs
        .iter()
        .filter(|(_, _, j)| j.status() == "pending")
        .filter_map(|(_, _, j)| j.contact.as_deref())
        .map(|c| super::lock_id("c", &shared.salt, c))
        .filter(|id| !locks.contains(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !contacts.is_empty() {
        db.exec(
            "SELECT pg_advisory_xact_lock(id) FROM unnest($1::bigint[]) AS id ORDER BY id",
            &[&contacts],
        )?;
        locks.extend(contacts);
    }
    let endpoints: Vec<&str> = jobs
        .iter()
        .filter_map(|(_, _, j)| j.endpoint.as_deref())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !endpoints.is_empty() {
        db.exec(
            "INSERT INTO endpoints (url, status) SELECT unnest($1::text[]), 'active' ON CONFLICT (url) DO NOTHING",
            &[&endpoints],
        )?;
    }
    let key: Vec<&str> = jobs.iter().map(|(_, _, j)| j.key.as_str()).collect();
    let event: Vec<&str> = jobs.iter().map(|(e, _, _)| *e).collect();
    let rule: Vec<&str> = jobs.iter().map(|(_, _, j)| j.rule_id.as_str()).collect();
    let index: Vec<i64> = jobs.iter().map(|(_, _, j)| i64::from(j.action_index)).collect();
    let kind: Vec<&str> = jobs.iter().map(|(_, _, j)| j.kind.as_str()).collect();
    let action: Vec<String> = jobs.iter().map(|(_, _, j)| j.action.to_string()).collect();
    let endpoint: Vec<Option<&str>> = jobs.iter().map(|(_, _, j)| j.endpoint.as_deref()).collect();
    let status: Vec<&str> = jobs.iter().map(|(_, _, j)| j.status()).collect();
    let due: Vec<i64> = jobs.iter().map(|(_, _, j)| millis(j.due_at)).collect();
    let error: Vec<Option<&str>> = jobs.iter().map(|(_, _, j)| j.note()).collect();
    let contact: Vec<Option<&str>> = jobs.iter().map(|(_, _, j)| j.contact.as_deref()).collect();
    let created: Vec<i64> = jobs.iter().map(|(_, c, _)| *c).collect();
    db.exec(
        "INSERT INTO jobs (idempotency_key, event_id, rule_id, action_index, kind, action, endpoint, status,
                           next_attempt_at, last_error, created_at, updated_at, contact)
         SELECT u.k, u.e, u.r, u.i, u.kind, u.a, u.ep, u.s, u.due, u.err, u.c, u.c, u.who
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::bigint[], $10::text[], $11::bigint[], $12::text[])
              WITH ORDINALITY AS u(k, e, r, i, kind, a, ep, s, due, err, c, who, n)
         ORDER BY u.n
         ON CONFLICT (idempotency_key) DO NOTHING",
        &[
            &key, &event, &rule, &index, &kind, &action, &endpoint, &status, &due, &error, &created, &contact,
        ],
    )?;
    // Signed with this instance's name: its own listener ignores it (this instance's
    // dispatcher is woken in memory), so a commit wakes only the others.
    db.exec(
        "SELECT pg_notify($1, $2)",
        &[&shared.channel, &shared.config.instance],
    )?;
    Ok(())
}

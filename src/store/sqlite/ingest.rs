//! The ingest write path: new events and their jobs in one transaction, each event's
//! stateful part decided (by the engine, through [`State`]) inside it; and due timers,
//! fired the same way.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, params};

use super::state::{Hot, SqliteState, add_decision, delete_timer, due_timers, prune};
use super::windows::Windows;
use crate::store::state::{FireTimers, Retention};
use crate::store::{Committed, NewEvent, NewJob, RuleSetVersion, StoreError, millis, unwritten};

/// How often (in commits) expired correlation facts, once-marks and window buckets are
/// deleted: rarely enough to cost nothing per event, often enough to bound the tables.
pub(super) const PRUNE_EVERY: u64 = 256;

/// Stores `batch` (new events only: an id seen before is skipped) with their jobs, and
/// has each new event's stateful part decide, in arrival order, so each sees the state
/// the events before it (in this batch too) left.
pub(super) fn commit(
    tx: &Transaction<'_>,
    batch: &[NewEvent],
    retention: Retention,
    prune_now: bool,
    windows: &mut Windows,
    known_sets: &mut HashSet<String>,
) -> Result<Committed, StoreError> {
    for item in batch {
        if !known_sets.contains(&item.rule_set.hash) {
            record_rule_set(tx, &item.rule_set, item.received_at)?;
            known_sets.insert(item.rule_set.hash.clone());
        }
    }
    // Each new event is decided before its row is written, so the row goes in once,
    // complete (an UPDATE of every stateful event's row, to add its decisions, cost a
    // tenth of the stateful flows' throughput). Its `seq` is therefore assigned here:
    // this is the only writer, inside its transaction.
    let mut next_seq: i64 = tx
        .prepare_cached(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
                        COALESCE((SELECT MAX(seq) FROM events), 0)) + 1",
        )?
        .query_row([], |r| r.get(0))?;
    let mut this_batch: HashSet<&str> = HashSet::with_capacity(batch.len());
    let mut jobs: Vec<(&str, i64, &NewJob)> = Vec::new();
    let mut decided: Vec<(&str, i64, NewJob)> = Vec::new();
    let mut written = (0, 0);
    let mut hot = Hot::prepare(tx)?;
    let mut all_fired = Vec::with_capacity(batch.len());
    for item in batch {
        let ev = &item.event;
        // An id seen before, or twice in one batch, is new once.
        let known = !this_batch.insert(ev.id.as_str())
            || tx
                .prepare_cached("SELECT 1 FROM events WHERE id = ?")?
                .exists([&ev.id])?;
        if known {
            all_fired.push(None);
            continue;
        }
        let seq = next_seq;
        next_seq += 1;
        let created = millis(item.received_at);
        let mut fired = item.matched.clone();
        let mut decisions = None;
        if let Some(stateful) = &item.stateful {
            if stateful.changes_jobs() {
                // It may cancel jobs the batch's earlier events planned: write them first.
                let rows = unwritten(&jobs, &decided, written);
                insert_jobs(tx, &rows)?;
                written = (jobs.len(), decided.len());
            }
            let mut state = SqliteState {
                tx,
                hot: &mut hot,
                windows,
                seq,
            };
            let d = stateful.decide(ev, item.received_at, &mut state)?;
            fired.extend(d.fired);
            if !d.decisions.is_empty() {
                decisions = Some(format!("[{}]", d.decisions.join(",")));
            }
            decided.extend(d.jobs.into_iter().map(|j| (ev.id.as_str(), created, j)));
        }
        tx.prepare_cached(
            "INSERT INTO events (seq, id, source, type, time, received_at, payload, matched, rule_set, decisions)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            seq,
            ev.id,
            ev.source,
            ev.kind,
            millis(ev.time),
            created,
            item.payload,
            matched_json(fired.iter()),
            item.rule_set.hash,
            decisions,
        ])?;
        jobs.extend(item.jobs.iter().map(|j| (ev.id.as_str(), created, j)));
        all_fired.push(Some(fired));
    }
    drop(hot);
    insert_jobs(tx, &unwritten(&jobs, &decided, written))?;
    if let Some(now) = batch.iter().map(|i| i.received_at).max().filter(|_| prune_now) {
        prune(tx, retention, now)?;
    }
    Ok(Committed {
        fired: all_fired,
        jobs: jobs.len() + decided.len(),
    })
}

/// Keeps a rule set version's files (each text once) and the version itself.
fn record_rule_set(tx: &Connection, version: &RuleSetVersion, now: DateTime<Utc>) -> Result<(), StoreError> {
    let now = millis(now);
    let mut file =
        tx.prepare_cached("INSERT OR IGNORE INTO rule_files (hash, text, first_seen) VALUES (?, ?, ?)")?;
    for f in &version.files {
        file.execute(params![f.hash, f.text, now])?;
    }
    let files: Vec<[&str; 3]> = version
        .files
        .iter()
        .map(|f| [f.path.as_str(), f.id.as_str(), f.hash.as_str()])
        .collect();
    tx.prepare_cached("INSERT OR IGNORE INTO rule_sets (hash, files, first_seen) VALUES (?, ?, ?)")?
        .execute(params![
            version.hash,
            serde_json::to_string(&files).unwrap_or_default(),
            now
        ])?;
    Ok(())
}

/// Fires due `absent` timers: each is deleted and decided (job keys are the usual
/// `event/rule/index`, so a timer fired again after a crash adds nothing); what was
/// decided is added to the event's decisions. Returns the rules that fired and how many
/// timers were taken.
pub(super) fn fire_timers(
    tx: &Connection,
    decide: &dyn FireTimers,
    now: DateTime<Utc>,
    windows: &mut Windows,
) -> Result<(Vec<String>, usize), StoreError> {
    let due = due_timers(tx, now)?;
    let mut fired = Vec::new();
    let mut hot = Hot::prepare(tx)?;
    for timer in &due {
        delete_timer(tx, timer)?;
        let mut state = SqliteState {
            tx,
            hot: &mut hot,
            windows,
            seq: timer.seq,
        };
        let d = decide.fire(&timer.timer, now, &mut state)?;
        let ev = &timer.timer.event;
        let rows: Vec<(&str, i64, &NewJob)> =
            d.jobs.iter().map(|j| (ev.id.as_str(), millis(now), j)).collect();
        insert_jobs(tx, &rows)?;
        // Appended in place: two timers of one event may fire in the same round, and the
        // row as loaded would not have the first one's rule.
        for rule in &d.fired {
            tx.prepare_cached("UPDATE events SET matched = json_insert(matched, '$[#]', ?) WHERE seq = ?")?
                .execute(params![rule, timer.seq])?;
        }
        for decision in &d.decisions {
            add_decision(tx, timer.seq, decision)?;
        }
        fired.extend(d.fired);
    }
    Ok((fired, due.len()))
}

/// The `matched` column: a JSON array of rule ids.
pub(super) fn matched_json<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    serde_json::to_string(&ids.collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

/// Inserts jobs (and their endpoints). Each job is `(event id, created at in unix ms,
/// job)`; a job whose key exists is left alone, so replays add nothing.
pub(super) fn insert_jobs(tx: &Connection, jobs: &[(&str, i64, &NewJob)]) -> Result<(), StoreError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let endpoints: BTreeSet<&str> = jobs
        .iter()
        .filter_map(|(_, _, j)| j.endpoint.as_deref())
        .collect();
    let mut endpoint =
        tx.prepare_cached("INSERT OR IGNORE INTO endpoints (url, status) VALUES (?, 'active')")?;
    for url in endpoints {
        endpoint.execute([url])?;
    }
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO jobs (idempotency_key, event_id, rule_id, action_index, kind, action,
            endpoint, status, next_attempt_at, last_error, created_at, updated_at, contact)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    for (event_id, created, job) in jobs {
        insert.execute(params![
            job.key,
            event_id,
            job.rule_id,
            job.action_index,
            job.kind,
            job.action.to_string(),
            job.endpoint,
            job.status(),
            millis(job.due_at),
            job.note(),
            created,
            created,
            job.contact,
        ])?;
    }
    Ok(())
}

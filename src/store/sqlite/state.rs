//! [`State`] over the writer's transaction: facts, timers, window counts and marks are
//! read and written in the transaction that stores the event (or fires the timer), so a
//! decision and the state it changes commit together. The store decides nothing here: it
//! answers the engine's questions and writes its rows. Due timers are loaded here too.

use chrono::{DateTime, Utc};
use rusqlite::{CachedStatement, Connection, OptionalExtension, params};

use super::windows::Windows;
use crate::event::Event;
use crate::store::state::{DueTimer, Retention, State, Timer};
use crate::store::{StoreError, millis};

/// The statements run for nearly every stateful event, prepared once per transaction
/// instead of looked up in the connection's statement cache each time (hashing their SQL).
pub(super) struct Hot<'c> {
    seen: CachedStatement<'c>,
    insert_fact: CachedStatement<'c>,
    insert_timer: CachedStatement<'c>,
    count: CachedStatement<'c>,
    mark: CachedStatement<'c>,
    set_mark: CachedStatement<'c>,
}

impl<'c> Hot<'c> {
    pub(super) fn prepare(tx: &'c Connection) -> Result<Self, StoreError> {
        Ok(Self {
            seen: tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM facts WHERE kind = ? AND field = ? AND key = ? AND time BETWEEN ? AND ?)",
            )?,
            insert_fact: tx
                .prepare_cached("INSERT OR IGNORE INTO facts (kind, field, key, time) VALUES (?, ?, ?, ?)")?,
            // Did the cancelling event come first? The question `seen` asks, and the
            // insert, in one statement.
            insert_timer: tx.prepare_cached(
                "INSERT INTO timers (due_at, event_seq, rule_id, key, start, contact)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?8 WHERE NOT EXISTS (
                    SELECT 1 FROM facts WHERE kind = ?6 AND field = ?7 AND key = ?4 AND time BETWEEN ?5 AND ?1)",
            )?,
            count: tx.prepare_cached(
                "INSERT INTO window_counts (rule_id, grp, kind, bucket, n) VALUES (?, ?, ?, ?, 1)
                 ON CONFLICT (rule_id, grp, kind, bucket) DO UPDATE SET n = n + 1",
            )?,
            mark: tx.prepare_cached("SELECT until FROM marks WHERE rule_id = ? AND key = ?")?,
            set_mark: tx.prepare_cached(
                "INSERT INTO marks (rule_id, key, until) VALUES (?1, ?2, ?3) ON CONFLICT (rule_id, key) DO UPDATE SET until = ?3",
            )?,
        })
    }
}

/// The state of one transaction, deciding the event in row `seq`.
pub(super) struct SqliteState<'a, 'c> {
    pub tx: &'c Connection,
    pub hot: &'a mut Hot<'c>,
    pub windows: &'a mut Windows,
    pub seq: i64,
}

impl State for SqliteState<'_, '_> {
    fn seen(&mut self, kind: &str, field: &str, key: &str, from: i64, to: i64) -> Result<bool, StoreError> {
        Ok(self
            .hot
            .seen
            .query_row(params![kind, field, key, from, to], |r| r.get(0))?)
    }

    fn record(&mut self, kind: &str, field: &str, key: &str, at: i64) -> Result<(), StoreError> {
        self.hot.insert_fact.execute(params![kind, field, key, at])?;
        Ok(())
    }

    fn start_timer(
        &mut self,
        timer: &Timer,
        cancel_kind: &str,
        cancel_field: &str,
    ) -> Result<bool, StoreError> {
        let n = self.hot.insert_timer.execute(params![
            timer.due,
            self.seq,
            timer.rule,
            timer.key,
            timer.start,
            cancel_kind,
            cancel_field,
            timer.contact
        ])?;
        Ok(n == 1)
    }

    fn cancel_timers(&mut self, rule: &str, key: &str, at: i64, note: &str) -> Result<usize, StoreError> {
        let seqs: Vec<i64> = self
            .tx
            .prepare_cached(
                "DELETE FROM timers WHERE rule_id = ?1 AND key = ?2 AND start <= ?3 AND due_at >= ?3 RETURNING event_seq",
            )?
            .query_map(params![rule, key, at], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for seq in &seqs {
            add_decision(self.tx, *seq, note)?;
        }
        Ok(seqs.len())
    }

    fn cancel_contact(
        &mut self,
        rules: &[String],
        contact: &str,
        at: i64,
        note: &str,
        decision: &str,
    ) -> Result<(usize, usize), StoreError> {
        let rules = serde_json::to_string(rules).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let keys: Vec<String> = self
            .tx
            .prepare_cached(
                "UPDATE jobs SET status = 'cancelled', last_error = ?1, updated_at = ?2
                 WHERE contact = ?3 AND status = 'pending' AND attempts = 0
                   AND rule_id IN (SELECT value FROM json_each(?4))
                 RETURNING idempotency_key",
            )?
            .query_map(params![note, at, contact, rules], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut uncount = self
            .tx
            .prepare_cached("DELETE FROM cap_sends WHERE job_key = ?")?;
        for key in &keys {
            uncount.execute([key])?;
        }
        let seqs: Vec<i64> = self
            .tx
            .prepare_cached(
                "DELETE FROM timers WHERE contact = ?1 AND rule_id IN (SELECT value FROM json_each(?2))
                   AND event_seq <> ?3 AND due_at > ?4
                 RETURNING event_seq",
            )?
            .query_map(params![contact, rules, self.seq, at], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for seq in &seqs {
            add_decision(self.tx, *seq, decision)?;
        }
        Ok((keys.len(), seqs.len()))
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
        self.hot.count.execute(params![rule, group, kind, bucket])?;
        let window = to - from;
        let sums = self
            .windows
            .add_and_sum(self.tx, (rule, group), kind, bucket, (from, to), 2 * window)?;
        Ok(sums.into_iter().map(|(k, n)| (k, n.max(0) as u64)).collect())
    }

    fn contact(
        &mut self,
        contact: &str,
        sent: &[(String, String, i64)],
    ) -> Result<serde_json::Value, StoreError> {
        let lists: Vec<(String, String, i64)> = self
            .tx
            .prepare_cached("SELECT list, properties, updated_at FROM contacts WHERE email = ?")?
            .query_map([contact], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let suppressed = self
            .tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM suppressions WHERE email = ?)")?
            .query_row([contact], |r| r.get(0))?;
        let mut counts = Vec::with_capacity(sent.len());
        let mut count = self.tx.prepare_cached(
            "SELECT COUNT(*) FROM jobs WHERE contact = ? AND kind = ? AND created_at > ?
               AND status NOT IN ('cancelled', 'skipped', 'failed')",
        )?;
        for (kind, period, since) in sent {
            let n: i64 = count.query_row(params![contact, kind, since], |r| r.get(0))?;
            counts.push((kind.clone(), period.clone(), n.max(0) as u64));
        }
        Ok(crate::store::contact_view(lists, suppressed, &counts))
    }

    fn cap_times(&mut self, cap: &str, contact: &str, from: i64, to: i64) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT at FROM cap_sends WHERE cap = ? AND contact = ? AND at > ? AND at < ?")?
            .query_map(params![cap, contact, from, to], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn cap_take(&mut self, cap: &str, contact: &str, at: i64, job_key: &str) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO cap_sends (cap, contact, at, job_key) VALUES (?, ?, ?, ?)",
            )?
            .execute(params![cap, contact, at, job_key])?;
        Ok(())
    }

    fn mark(&mut self, rule: &str, key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .hot
            .mark
            .query_row(params![rule, key], |r| r.get(0))
            .optional()?)
    }

    fn set_mark(&mut self, rule: &str, key: &str, until: i64) -> Result<(), StoreError> {
        self.hot.set_mark.execute(params![rule, key, until])?;
        Ok(())
    }
}

/// Appends a decision (a JSON object) to event `seq`'s.
pub(super) fn add_decision(tx: &Connection, seq: i64, decision: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE events SET decisions = json_insert(COALESCE(decisions, '[]'), '$[#]', json(?)) WHERE seq = ?",
    )?
    .execute(params![decision, seq])?;
    Ok(())
}

/// Expiry, not growth: facts and window buckets older than `retention` (by the clock)
/// and once-marks past their period are deleted.
pub(super) fn prune(tx: &Connection, retention: Retention, now: DateTime<Utc>) -> Result<(), StoreError> {
    let now = millis(now);
    tx.prepare_cached("DELETE FROM facts WHERE time < ?")?
        .execute([now - retention.facts_ms])?;
    tx.prepare_cached("DELETE FROM marks WHERE until < ?")?
        .execute([now])?;
    tx.prepare_cached("DELETE FROM window_counts WHERE bucket < ?")?
        .execute([now - retention.windows_ms])?;
    tx.prepare_cached("DELETE FROM cap_sends WHERE at < ?")?
        .execute([now - retention.caps_ms])?;
    Ok(())
}

/// A due timer and the row of the event that started it.
pub(super) struct Due {
    pub seq: i64,
    pub timer: DueTimer,
}

/// Up to 200 timers due at `now`, earliest first.
pub(super) fn due_timers(tx: &Connection, now: DateTime<Utc>) -> Result<Vec<Due>, StoreError> {
    let due = tx
        .prepare_cached(
            "SELECT t.rule_id, e.id, t.key, t.start, t.due_at, e.source, e.type, e.time, e.payload, t.event_seq
             FROM timers t JOIN events e ON e.seq = t.event_seq WHERE t.due_at <= ? ORDER BY t.due_at LIMIT 200",
        )?
        .query_map([millis(now)], |r| {
            Ok(Due {
                seq: r.get(9)?,
                timer: DueTimer {
                    rule: r.get(0)?,
                    key: r.get(2)?,
                    start: r.get(3)?,
                    due: r.get(4)?,
                    event: Event {
                        id: r.get(1)?,
                        source: r.get(5)?,
                        kind: r.get(6)?,
                        time: crate::store::from_millis(r.get(7)?),
                        data: super::json_column(r, 8)?,
                    },
                },
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(due)
}

pub(super) fn delete_timer(tx: &Connection, due: &Due) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM timers WHERE due_at = ? AND event_seq = ? AND rule_id = ?")?
        .execute(params![due.timer.due, due.seq, due.timer.rule])?;
    Ok(())
}

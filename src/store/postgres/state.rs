//! [`State`] over a PostgreSQL transaction, exact with many instances.
//!
//! Under READ COMMITTED each statement sees what was committed when it began, so two
//! instances deciding for the same key at once could each miss the other's write: both
//! see no `once` mark and both fire, or a timer starts while the event that cancels it
//! commits beside it. So every question is preceded by a transaction-scoped advisory
//! lock on what it is about, taken in its own statement (the question after it then sees
//! whatever the lock's previous holder committed):
//! - `k` + correlation value: facts (`after`) and `absent` timers, started and cancelled;
//! - `w` + rule + group: a threshold window, counted and summed;
//! - `m` + rule + key: a `once` or threshold mark, read and set;
//! - `c` + contact: its pending jobs and timers, cancelled (writers of them lock it too);
//! - `cap` + cap + contact: a frequency cap's counts, read and added to.
//!
//! Each lock is taken once per transaction. No in-memory copy of the windows: with other
//! instances writing them, only the table is the truth.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use postgres::Transaction;

use super::{Db, Shared, lock_id};
use crate::store::state::{Retention, State, Timer};
use crate::store::{StoreError, millis};

/// The state of one transaction, deciding the event in row `seq`.
pub(super) struct PgState<'a, 'c, 't> {
    pub db: &'a mut Db<'c, Transaction<'t>>,
    pub shared: &'a Shared,
    /// Locks this transaction holds already.
    pub locks: &'a mut HashSet<i64>,
    pub seq: i64,
}

impl PgState<'_, '_, '_> {
    fn lock(&mut self, what: &str, key: &str) -> Result<(), StoreError> {
        let id = lock_id(what, &self.shared.salt, key);
        if self.locks.insert(id) {
            self.db.exec("SELECT pg_advisory_xact_lock($1)", &[&id])?;
        }
        Ok(())
    }
}

impl State for PgState<'_, '_, '_> {
    fn seen(&mut self, kind: &str, field: &str, key: &str, from: i64, to: i64) -> Result<bool, StoreError> {
        self.lock("k", key)?;
        Ok(self
            .db
            .one(
                "SELECT EXISTS (SELECT 1 FROM facts WHERE kind = $1 AND field = $2 AND key = $3
                                AND time BETWEEN $4 AND $5)",
                &[&kind, &field, &key, &from, &to],
            )?
            .get(0))
    }

    fn record(&mut self, kind: &str, field: &str, key: &str, at: i64) -> Result<(), StoreError> {
        self.lock("k", key)?;
        self.db.exec(
            "INSERT INTO facts (kind, field, key, time) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&kind, &field, &key, &at],
        )?;
        Ok(())
    }

    fn start_timer(
        &mut self,
        timer: &Timer,
        cancel_kind: &str,
        cancel_field: &str,
    ) -> Result<bool, StoreError> {
        self.lock("k", &timer.key)?;
        if let Some(contact) = &timer.contact {
            // A cancel for the contact on another instance must see this timer, or wait.
            self.lock("c", contact)?;
        }
        let n = self.db.exec(
            "INSERT INTO timers (due_at, event_seq, rule_id, key, start, contact)
             SELECT $1::bigint, $2::bigint, $3::text, $4::text, $5::bigint, $8::text WHERE NOT EXISTS (
                SELECT 1 FROM facts WHERE kind = $6 AND field = $7 AND key = $4 AND time BETWEEN $5 AND $1)
             ON CONFLICT DO NOTHING",
            &[
                &timer.due,
                &self.seq,
                &timer.rule,
                &timer.key,
                &timer.start,
                &cancel_kind,
                &cancel_field,
                &timer.contact,
            ],
        )?;
        Ok(n == 1)
    }

    fn cancel_timers(&mut self, rule: &str, key: &str, at: i64, note: &str) -> Result<usize, StoreError> {
        self.lock("k", key)?;
        let seqs: Vec<i64> = self
            .db
            .rows(
                "DELETE FROM timers WHERE rule_id = $1 AND key = $2 AND start <= $3 AND due_at >= $3
                 RETURNING event_seq",
                &[&rule, &key, &at],
            )?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        for seq in &seqs {
            add_decision(self.db, *seq, note)?;
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
        self.lock("c", contact)?;
        let keys: Vec<String> = self
            .db
            .rows(
                "UPDATE jobs SET status = 'cancelled', last_error = $1, updated_at = $2,
                                 lease_until = NULL, leased_by = NULL
                 WHERE contact = $3 AND status = 'pending' AND attempts = 0 AND rule_id = ANY($4)
                 RETURNING idempotency_key",
                &[&note, &at, &contact, &rules],
            )?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        if !keys.is_empty() {
            self.db
                .exec("DELETE FROM cap_sends WHERE job_key = ANY($1)", &[&keys])?;
        }
        let seqs: Vec<i64> = self
            .db
            .rows(
                "DELETE FROM timers WHERE contact = $1 AND rule_id = ANY($2) AND event_seq <> $3 AND due_at > $4
                 RETURNING event_seq",
                &[&contact, &rules, &self.seq, &at],
            )?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        for seq in &seqs {
            add_decision(self.db, *seq, decision)?;
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
        self.lock("w", &format!("{rule}\0{group}"))?;
        self.db.exec(
            "INSERT INTO window_counts (rule_id, grp, kind, bucket, n) VALUES ($1, $2, $3, $4, 1)
             ON CONFLICT (rule_id, grp, kind, bucket) DO UPDATE SET n = window_counts.n + 1",
            &[&rule, &group, &kind, &bucket],
        )?;
        let sums = self
            .db
            .rows(
                "SELECT kind, SUM(n)::bigint FROM window_counts
                 WHERE rule_id = $1 AND grp = $2 AND bucket > $3 AND bucket <= $4
                 GROUP BY kind ORDER BY kind",
                &[&rule, &group, &from, &to],
            )?
            .into_iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64))
            .collect();
        Ok(sums)
    }

    fn contact(
        &mut self,
        contact: &str,
        sent: &[(String, String, i64)],
    ) -> Result<serde_json::Value, StoreError> {
        // The contact's jobs are written under this lock (see `cancel_contact`): the
        // counts see another server's jobs for them, or wait for its commit.
        self.lock("c", contact)?;
        let lists: Vec<(String, String, i64)> = self
            .db
            .rows(
                "SELECT list, properties, updated_at FROM contacts WHERE email = $1",
                &[&contact],
            )?
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let suppressed: bool = self
            .db
            .one(
                "SELECT EXISTS (SELECT 1 FROM suppressions WHERE email = $1)",
                &[&contact],
            )?
            .get(0);
        let mut counts = Vec::with_capacity(sent.len());
        for (kind, period, since) in sent {
            let n: i64 = self
                .db
                .one(
                    "SELECT COUNT(*) FROM jobs WHERE contact = $1 AND kind = $2 AND created_at > $3
                       AND status NOT IN ('cancelled', 'skipped', 'failed')",
                    &[&contact, kind, since],
                )?
                .get(0);
            counts.push((kind.clone(), period.clone(), n.max(0) as u64));
        }
        Ok(crate::store::contact_view(lists, suppressed, &counts))
    }

    fn cap_times(&mut self, cap: &str, contact: &str, from: i64, to: i64) -> Result<Vec<i64>, StoreError> {
        // Held to the end of the transaction: a second instance counting for the contact
        // waits, then sees this one's job.
        self.lock("cap", &format!("{cap}\0{contact}"))?;
        Ok(self
            .db
            .rows(
                "SELECT at FROM cap_sends WHERE cap = $1 AND contact = $2 AND at > $3 AND at < $4",
                &[&cap, &contact, &from, &to],
            )?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn cap_take(&mut self, cap: &str, contact: &str, at: i64, job_key: &str) -> Result<(), StoreError> {
        self.lock("cap", &format!("{cap}\0{contact}"))?;
        self.db.exec(
            "INSERT INTO cap_sends (cap, contact, at, job_key) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&cap, &contact, &at, &job_key],
        )?;
        Ok(())
    }

    fn mark(&mut self, rule: &str, key: &str) -> Result<Option<i64>, StoreError> {
        self.lock("m", &format!("{rule}\0{key}"))?;
        Ok(self
            .db
            .opt(
                "SELECT until FROM marks WHERE rule_id = $1 AND key = $2",
                &[&rule, &key],
            )?
            .map(|r| r.get(0)))
    }

    fn set_mark(&mut self, rule: &str, key: &str, until: i64) -> Result<(), StoreError> {
        self.lock("m", &format!("{rule}\0{key}"))?;
        self.db.exec(
            "INSERT INTO marks (rule_id, key, until) VALUES ($1, $2, $3)
             ON CONFLICT (rule_id, key) DO UPDATE SET until = $3",
            &[&rule, &key, &until],
        )?;
        Ok(())
    }
}

/// Appends a decision (a JSON object) to event `seq`'s.
pub(super) fn add_decision(
    db: &mut Db<'_, Transaction<'_>>,
    seq: i64,
    decision: &str,
) -> Result<(), StoreError> {
    db.exec(
        "UPDATE events SET decisions = COALESCE(decisions, '[]'::jsonb) || jsonb_build_array($1::text::jsonb)
         WHERE seq = $2",
        &[&decision, &seq],
    )?;
    Ok(())
}

/// Expiry, not growth: facts and window buckets older than `retention` (by the clock)
/// and marks past their period are deleted.
pub(super) fn prune(
    db: &mut Db<'_, Transaction<'_>>,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = millis(now);
    db.exec(
        "DELETE FROM facts WHERE time < $1",
        &[&(now - retention.facts_ms)],
    )?;
    db.exec("DELETE FROM marks WHERE until < $1", &[&now])?;
    db.exec(
        "DELETE FROM window_counts WHERE bucket < $1",
        &[&(now - retention.windows_ms)],
    )?;
    db.exec(
        "DELETE FROM cap_sends WHERE at < $1",
        &[&(now - retention.caps_ms)],
    )?;
    Ok(())
}

//! The writer's copy of the threshold windows it has touched, so that summing a window
//! costs no query. `window_counts` stays the truth: every count is written there in the
//! same transaction, a group not held here (or not reaching back far enough for a late
//! event) is read from it, and the copy is dropped whenever a transaction fails. Only the
//! writer thread writes `window_counts`, so the copy cannot go stale otherwise.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, params};

use crate::store::StoreError;

/// Groups held; past this the copy starts over and refills from the table on demand.
const MAX_GROUPS: usize = 10_000;

#[derive(Default)]
pub(super) struct Windows {
    groups: HashMap<(String, String), Group>,
}

/// One rule's group: every bucket that starts at `from` or later.
struct Group {
    from: i64,
    /// Bucket start → events per type.
    buckets: BTreeMap<i64, Vec<(String, i64)>>,
}

impl Windows {
    /// Forgets everything (after a failed transaction).
    pub(super) fn clear(&mut self) {
        self.groups.clear();
    }

    /// Per event type, the events of `rule_id`'s `group` in buckets starting in
    /// `(lo, hi]`, after counting one event of `kind` into `bucket` here. The caller has
    /// already counted it in the table. `span`: how far behind its newest bucket a group
    /// is kept.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_and_sum(
        &mut self,
        tx: &Connection,
        (rule_id, group): (&str, &str),
        kind: &str,
        bucket: i64,
        (lo, hi): (i64, i64),
        span: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let key = (rule_id.to_owned(), group.to_owned());
        let g = match self.groups.get_mut(&key) {
            Some(g) if g.from <= lo + 1 => {
                g.add(kind, bucket);
                g
            }
            _ => {
                // Read after the table's write: it holds this event already.
                if self.groups.len() >= MAX_GROUPS {
                    self.groups.clear();
                }
                let loaded = load(tx, rule_id, group, lo + 1)?;
                self.groups.entry(key).insert_entry(loaded).into_mut()
            }
        };
        let sums = g.sum(lo, hi);
        g.trim(span);
        Ok(sums)
    }
}

impl Group {
    fn add(&mut self, kind: &str, bucket: i64) {
        let counts = self.buckets.entry(bucket).or_default();
        match counts.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind.to_owned(), 1)),
        }
    }

    fn sum(&self, lo: i64, hi: i64) -> Vec<(String, i64)> {
        let mut sums: Vec<(String, i64)> = Vec::new();
        if lo >= hi {
            return sums;
        }
        for (kind, n) in self.buckets.range(lo + 1..=hi).flat_map(|(_, c)| c) {
            match sums.iter_mut().find(|(k, _)| k == kind) {
                Some((_, total)) => *total += n,
                None => sums.push((kind.clone(), *n)),
            }
        }
        sums
    }

    /// Drops buckets more than `span` before the newest one.
    fn trim(&mut self, span: i64) {
        let Some(newest) = self.buckets.last_key_value().map(|(b, _)| *b) else {
            return;
        };
        if newest - span > self.from {
            self.from = newest - span;
            self.buckets = self.buckets.split_off(&self.from);
        }
    }
}

/// The buckets of a group starting at `from` or later, from the table.
fn load(tx: &Connection, rule_id: &str, group: &str, from: i64) -> Result<Group, StoreError> {
    let mut g = Group {
        from,
        buckets: BTreeMap::new(),
    };
    let mut stmt = tx.prepare_cached(
        "SELECT bucket, kind, n FROM window_counts WHERE rule_id = ? AND grp = ? AND bucket >= ?",
    )?;
    let rows = stmt.query_map(params![rule_id, group, from], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
    })?;
    for row in rows {
        let (bucket, kind, n) = row?;
        g.buckets.entry(bucket).or_default().push((kind, n));
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the table says, summed by SQL: the copy must always agree with it.
    fn sql_sum(conn: &Connection, group: &str, lo: i64, hi: i64) -> Vec<(String, i64)> {
        let mut stmt = conn
            .prepare(
                "SELECT kind, SUM(n) FROM window_counts WHERE rule_id = 'r' AND grp = ?
                 AND bucket > ? AND bucket <= ? GROUP BY kind ORDER BY kind",
            )
            .unwrap();
        stmt.query_map(params![group, lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn the_copy_agrees_with_the_table_in_order_late_and_after_a_reset() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../../migrations/0003_state.sql"))
            .unwrap();
        let mut w = Windows::default();
        let window = 60_000;
        for i in 0..400i64 {
            // In order, every seventh event 90 s late, two groups, a reset half way.
            let t = 1_000_000 + i * 1_000 - if i % 7 == 0 { 90_000 } else { 0 };
            let group = if i % 3 == 0 { "b" } else { "a" };
            let kind = if i % 2 == 0 { "sent" } else { "blocked" };
            if i == 200 {
                w.clear();
            }
            let bucket = t - t.rem_euclid(1_000);
            conn.execute(
                "INSERT INTO window_counts (rule_id, grp, kind, bucket, n) VALUES ('r', ?, ?, ?, 1)
                 ON CONFLICT (rule_id, grp, kind, bucket) DO UPDATE SET n = n + 1",
                params![group, kind, bucket],
            )
            .unwrap();
            let mut got = w
                .add_and_sum(&conn, ("r", group), kind, bucket, (t - window, t), 2 * window)
                .unwrap();
            got.sort();
            assert_eq!(got, sql_sum(&conn, group, t - window, t), "event {i} at {t}");
        }
    }
}

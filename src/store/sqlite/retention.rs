//! Retention on SQLite: the journal (events, their jobs and attempts) past `retention`
//! deleted in batches on the writer, between group commits.

use rusqlite::{Connection, params};

use crate::store::{Pruned, StoreError};

/// One batch: see [`Ingest::prune_journal`](crate::store::Ingest::prune_journal).
/// `before` is unix milliseconds.
pub(super) fn prune_journal(
    tx: &Connection,
    before: i64,
    after_seq: i64,
    limit: usize,
) -> Result<Pruned, StoreError> {
    let rows: Vec<(i64, String, i64)> = tx
        .prepare_cached("SELECT seq, id, received_at FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?
        .query_map(params![after_seq, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut pruned = Pruned {
        next: (rows.len() == limit).then(|| rows.last().map(|r| r.0)).flatten(),
        ..Pruned::default()
    };
    // An event's jobs are the range `id/` .. `id0` of their idempotency keys (`0` follows
    // `/`), and `event_id = id` keeps out another event whose id starts with this one's.
    const JOBS: &str =
        "FROM jobs WHERE idempotency_key >= ?1 || '/' AND idempotency_key < ?1 || '0' AND event_id = ?1";
    for (seq, id, received_at) in rows {
        if received_at >= before {
            pruned.next = None;
            break;
        }
        let waited_on: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM timers WHERE event_seq = ?1)")?
            .query_row([seq], |r| r.get(0))?;
        let unfinished: bool = tx
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 {JOBS} AND status IN ('pending', 'running'))"
            ))?
            .query_row([&id], |r| r.get(0))?;
        if waited_on || unfinished {
            continue;
        }
        pruned.attempts += tx
            .prepare_cached(&format!(
                "DELETE FROM attempts WHERE job_id IN (SELECT id {JOBS})"
            ))?
            .execute([&id])? as u64;
        pruned.jobs += tx.prepare_cached(&format!("DELETE {JOBS}"))?.execute([&id])? as u64;
        pruned.events += tx
            .prepare_cached("DELETE FROM events WHERE seq = ?1")?
            .execute([seq])? as u64;
    }
    Ok(pruned)
}

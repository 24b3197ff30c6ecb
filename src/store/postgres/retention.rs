//! Retention on PostgreSQL: the journal (events, their jobs and attempts) past
//! `retention` deleted in batches. Several servers may prune at once: each batch's events
//! are locked with `SKIP LOCKED`, so two never take the same rows.

use super::Tx;
use crate::store::{Pruned, StoreError};

/// One batch: see [`Ingest::prune_journal`](crate::store::Ingest::prune_journal).
/// `before` is unix milliseconds.
pub(super) fn prune_journal(
    db: &mut Tx<'_, '_>,
    before: i64,
    after_seq: i64,
    limit: usize,
) -> Result<Pruned, StoreError> {
    let rows = db.rows(
        "SELECT seq, id, received_at FROM events WHERE seq > $1 ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED",
        &[&after_seq, &(limit as i64)],
    )?;
    let mut pruned = Pruned {
        next: (rows.len() == limit)
            .then(|| rows.last().map(|r| r.get::<_, i64>(0)))
            .flatten(),
        ..Pruned::default()
    };
    let (mut seqs, mut ids) = (Vec::new(), Vec::new());
    for r in &rows {
        if r.get::<_, i64>(2) >= before {
            pruned.next = None;
            break;
        }
        seqs.push(r.get::<_, i64>(0));
        ids.push(r.get::<_, String>(1));
    }
    if seqs.is_empty() {
        return Ok(pruned);
    }
    // An event's jobs are the range `id/` .. `id0` of their idempotency keys (`0` follows
    // `/`), and `event_id = id` keeps out another event whose id starts with this one's.
    const JOBS: &str = "SELECT j.id FROM jobs j JOIN unnest($1::text[]) AS e(id)
        ON j.idempotency_key >= e.id || '/' AND j.idempotency_key < e.id || '0' AND j.event_id = e.id";
    let kept = db.rows(
        "SELECT e.seq FROM unnest($1::bigint[], $2::text[]) AS e(seq, id)
         WHERE EXISTS (SELECT 1 FROM timers t WHERE t.event_seq = e.seq)
            OR EXISTS (SELECT 1 FROM jobs j WHERE j.idempotency_key >= e.id || '/'
                       AND j.idempotency_key < e.id || '0' AND j.event_id = e.id
                       AND j.status IN ('pending', 'running'))",
        &[&seqs, &ids],
    )?;
    if !kept.is_empty() {
        let kept: std::collections::HashSet<i64> = kept.iter().map(|r| r.get(0)).collect();
        let (s, i): (Vec<i64>, Vec<String>) = seqs
            .into_iter()
            .zip(ids)
            .filter(|(seq, _)| !kept.contains(seq))
            .unzip();
        (seqs, ids) = (s, i);
    }
    pruned.attempts = db.exec(&format!("DELETE FROM attempts WHERE job_id IN ({JOBS})"), &[&ids])?;
    pruned.jobs = db.exec(&format!("DELETE FROM jobs WHERE id IN ({JOBS})"), &[&ids])?;
    pruned.events = db.exec("DELETE FROM events WHERE seq = ANY($1)", &[&seqs])?;
    Ok(pruned)
}

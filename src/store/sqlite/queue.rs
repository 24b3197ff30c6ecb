//! The job queue: leases and outcomes, retries and skips, endpoints. Every function here
//! runs inside a transaction on the writer thread, with cached statements.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{admin, json_column};
use crate::base::duration::Duration;
use crate::store::{DeadFilter, EndpointRow, Finished, Job, Next, Rendered, StoreError, from_millis, millis};

/// Takes up to `limit` due jobs of the kinds in `kinds` (an SQL list) whose endpoint is
/// not suspended, and jobs whose lease expired, oldest first.
pub(super) fn lease(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    real_now: DateTime<Utc>,
    lease: Duration,
    kinds: &str,
    limit: usize,
) -> Result<Vec<Job>, StoreError> {
    let now_ms = millis(now);
    let real_ms = millis(real_now);
    let sql = format!(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = ?1, updated_at = ?2,
                first_attempt_at = COALESCE(first_attempt_at, ?2)
         WHERE id IN (
            SELECT j.id FROM jobs j
            WHERE ((j.status = 'pending' AND j.next_attempt_at <= ?2)
                   OR (j.status = 'running' AND j.lease_until < ?4))
              AND j.kind IN ({kinds})
              AND NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.url = j.endpoint AND e.status = 'suspended')
            ORDER BY j.next_attempt_at, j.id
            LIMIT ?3)
         RETURNING id, idempotency_key, event_id, rule_id, action_index, kind, action, endpoint, attempts,
                   first_attempt_at"
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            real_ms + lease.as_secs() as i64 * 1000,
            now_ms,
            limit as i64,
            real_ms
        ],
        |r| {
            Ok(Job {
                id: r.get("id")?,
                key: r.get("idempotency_key")?,
                event_id: r.get("event_id")?,
                rule_id: r.get("rule_id")?,
                action_index: r.get("action_index")?,
                kind: r.get("kind")?,
                action: json_column(r, "action")?,
                endpoint: r.get("endpoint")?,
                attempts: r.get("attempts")?,
                first_attempt_at: from_millis(r.get("first_attempt_at")?),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records attempts and moves their jobs on.
pub(super) fn finish(tx: &Transaction<'_>, done: &[Finished], now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut attempt_row = tx.prepare_cached(
        "INSERT INTO attempts (job_id, number, started_at, duration_ms, status_code, error, response)
         VALUES (?1, (SELECT COUNT(*) + 1 FROM attempts WHERE job_id = ?1), ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut job_row = tx.prepare_cached(
        "UPDATE jobs SET status = ?, next_attempt_at = ?, lease_until = NULL, last_error = ?, updated_at = ?
         WHERE id = ?",
    )?;
    for f in done {
        let Finished { job, attempt, next } = f;
        attempt_row.execute(params![
            job.id,
            millis(attempt.started_at),
            attempt.duration_ms as i64,
            attempt.status_code,
            attempt.error,
            attempt.response,
        ])?;
        let (status, next_at, error) = f.outcome(now);
        job_row.execute(params![status, millis(next_at), error, millis(now), job.id])?;
        if let (Next::Succeeded, Some(url)) = (next, &job.endpoint) {
            tx.prepare_cached("UPDATE endpoints SET last_success_at = ?1 WHERE url = ?2")?
                .execute(params![millis(now), url])?;
        }
        if let Some((url, reason)) = f.suspension() {
            tx.prepare_cached(
                "INSERT INTO endpoints (url, status, suspended_at, reason) VALUES (?1, 'suspended', ?2, ?3)
                 ON CONFLICT (url) DO UPDATE SET status = 'suspended', suspended_at = ?2, reason = ?3",
            )?
            .execute(params![url, millis(now), reason])?;
        }
    }
    Ok(())
}

/// When the next pending job of the kinds in `kinds` (an SQL list) is due. (Expired leases
/// are a crash's leftovers, taken back at start or by the dispatcher's regular poll.)
pub(super) fn next_due(conn: &Connection, kinds: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let sql = format!(
        "SELECT MIN(next_attempt_at) FROM jobs j
         WHERE status = 'pending' AND kind IN ({kinds})
           AND NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.url = j.endpoint AND e.status = 'suspended')"
    );
    let ms: Option<i64> = conn.prepare_cached(&sql)?.query_row([], |r| r.get(0))?;
    Ok(ms.map(from_millis))
}

/// Puts a finished job back in line with a fresh schedule (and, rendered again, a new
/// action); whether there was one.
pub(super) fn retry_job(
    tx: &Transaction<'_>,
    id: i64,
    now: DateTime<Utc>,
    rendered: Option<&Rendered>,
) -> Result<bool, StoreError> {
    if let Some(r) = rendered {
        tx.execute(
            "UPDATE jobs SET action = ?1, endpoint = ?2 WHERE id = ?3 AND status IN ('dead', 'failed', 'succeeded', 'skipped', 'cancelled')",
            params![r.action.to_string(), r.endpoint, id],
        )?;
        if let Some(url) = &r.endpoint {
            tx.execute(
                "INSERT OR IGNORE INTO endpoints (url, status) VALUES (?, 'active')",
                [url],
            )?;
        }
    }
    let n = tx.execute(
        "UPDATE jobs SET status = 'pending', attempts = 0, next_attempt_at = ?1, lease_until = NULL,
                first_attempt_at = NULL, last_error = NULL, updated_at = ?1
         WHERE id = ?2 AND status IN ('dead', 'failed', 'succeeded', 'skipped', 'cancelled')",
        params![millis(now), id],
    )?;
    Ok(n == 1)
}

/// Skips a job that has not succeeded and is not running; whether there was one.
pub(super) fn skip_job(tx: &Transaction<'_>, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = tx.execute(
        "UPDATE jobs SET status = 'skipped', lease_until = NULL, updated_at = ?1,
                last_error = COALESCE(last_error || '; ', '') || 'skipped by hand'
         WHERE id = ?2 AND status IN ('pending', 'failed', 'dead')",
        params![millis(now), id],
    )?;
    Ok(n == 1)
}

/// Puts the dead jobs matching `filter` back in line; how many.
pub(super) fn retry_dead(
    tx: &Transaction<'_>,
    filter: &DeadFilter,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let n = tx.execute(
        "UPDATE jobs SET status = 'pending', attempts = 0, next_attempt_at = ?1, lease_until = NULL,
                first_attempt_at = NULL, updated_at = ?1
         WHERE status = 'dead' AND (?2 IS NULL OR endpoint = ?2) AND (?3 IS NULL OR rule_id = ?3)",
        params![millis(now), filter.endpoint, filter.rule],
    )?;
    Ok(n as u64)
}

/// Reactivates an endpoint and requeues the jobs that died on it while it was suspended.
pub(super) fn resume_endpoint(
    tx: &Transaction<'_>,
    id_or_url: &str,
    now: DateTime<Utc>,
) -> Result<Option<(EndpointRow, u64)>, StoreError> {
    let id: i64 = id_or_url.parse().unwrap_or(-1);
    let url = crate::base::net::endpoint_of(id_or_url).unwrap_or_else(|| id_or_url.to_owned());
    let Some(endpoint) = tx
        .query_row(
            &format!("{} WHERE id = ? OR url = ?", admin::ENDPOINT_SELECT),
            params![id, url],
            admin::endpoint_row,
        )
        .optional()?
    else {
        return Ok(None);
    };
    let since: Option<i64> = tx.query_row(
        "SELECT suspended_at FROM endpoints WHERE id = ?",
        [endpoint.id],
        |r| r.get(0),
    )?;
    let requeued = match since {
        Some(since) => tx.execute(
            "UPDATE jobs SET status = 'pending', attempts = 0, next_attempt_at = ?1, first_attempt_at = NULL,
                    updated_at = ?1
             WHERE endpoint = ?2 AND status = 'dead' AND updated_at >= ?3",
            params![millis(now), endpoint.url, since],
        )?,
        None => 0,
    };
    tx.execute(
        "UPDATE endpoints SET status = 'active', suspended_at = NULL, reason = NULL WHERE id = ?",
        [endpoint.id],
    )?;
    let resumed = EndpointRow {
        status: "active".into(),
        suspended_at: None,
        reason: None,
        ..endpoint
    };
    Ok(Some((resumed, requeued as u64)))
}

//! The job queue on PostgreSQL: leases taken with `FOR UPDATE SKIP LOCKED` (instances
//! never wait for each other's batch, and never take the same job), outcomes, retries
//! and skips, endpoints shared by every instance.

use chrono::{DateTime, Utc};
use postgres::{GenericClient, Row};

use super::{Db, Tx, admin, json_text};
use crate::base::duration::Duration;
use crate::store::{DeadFilter, EndpointRow, Finished, Job, Next, Rendered, StoreError, from_millis, millis};

/// Takes up to `limit` due jobs of `kinds` whose endpoint is not suspended, and jobs
/// whose lease expired (whichever instance held it), oldest first, for `instance`.
pub(super) fn lease(
    db: &mut Tx<'_, '_>,
    instance: &str,
    now: DateTime<Utc>,
    real_now: DateTime<Utc>,
    lease: Duration,
    kinds: &[String],
    limit: usize,
) -> Result<Vec<Job>, StoreError> {
    let real_ms = millis(real_now);
    let until = real_ms + lease.as_secs() as i64 * 1000;
    let rows = db.rows(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = $1, leased_by = $5,
                updated_at = $2, first_attempt_at = COALESCE(first_attempt_at, $2)
         WHERE id IN (
            SELECT j.id FROM jobs j
            WHERE j.status IN ('pending', 'running')
              AND ((j.status = 'pending' AND j.next_attempt_at <= $2)
                   OR (j.status = 'running' AND j.lease_until < $4))
              AND j.kind = ANY($6)
              AND NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.url = j.endpoint AND e.status = 'suspended')
            ORDER BY j.next_attempt_at, j.id
            LIMIT $3
            FOR UPDATE SKIP LOCKED)
         RETURNING id, idempotency_key, event_id, rule_id, action_index, kind, action, endpoint, attempts,
                   first_attempt_at",
        &[&until, &millis(now), &(limit as i64), &real_ms, &instance, &kinds],
    )?;
    let mut jobs = rows.iter().map(job).collect::<Result<Vec<_>, _>>()?;
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

fn job(r: &Row) -> Result<Job, StoreError> {
    Ok(Job {
        id: r.get("id"),
        key: r.get("idempotency_key"),
        event_id: r.get("event_id"),
        rule_id: r.get("rule_id"),
        action_index: r.get::<_, i64>("action_index") as u32,
        kind: r.get("kind"),
        action: json_text(r.get::<_, &str>("action"))?,
        endpoint: r.get("endpoint"),
        attempts: r.get::<_, i64>("attempts").max(0) as u32,
        first_attempt_at: from_millis(r.get::<_, Option<i64>>("first_attempt_at").unwrap_or_default()),
    })
}

/// Records attempts and moves their jobs on: one statement for all the attempts, one
/// for all the jobs, one for the endpoints that saw a success, whatever the group's size
/// (a statement per job made the finisher most of the database's round trips).
/// Suspensions, rare, are one statement each.
pub(super) fn finish(db: &mut Tx<'_, '_>, done: &[Finished], now: DateTime<Utc>) -> Result<(), StoreError> {
    let now_ms = millis(now);
    let n = done.len();
    let (mut ids, mut started, mut took, mut codes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut errors, mut responses, mut statuses, mut next_at, mut last_errors) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut succeeded: Vec<&str> = Vec::new();
    for f in done {
        let Finished { job, attempt, next } = f;
        ids.push(job.id);
        started.push(millis(attempt.started_at));
        took.push(attempt.duration_ms.min(i64::MAX as u64) as i64);
        codes.push(attempt.status_code.map(i32::from));
        errors.push(attempt.error.as_deref());
        responses.push(attempt.response.as_deref());
        let (status, at, error) = f.outcome(now);
        statuses.push(status);
        next_at.push(millis(at));
        last_errors.push(error);
        if let (Next::Succeeded, Some(url)) = (next, &job.endpoint)
            && !succeeded.contains(&url.as_str())
        {
            succeeded.push(url);
        }
    }
    // Numbered after the job's attempts so far; a job is in a group at most once (it is
    // leased again only after its outcome is recorded).
    db.exec(
        "INSERT INTO attempts (job_id, number, started_at, duration_ms, status_code, error, response)
         SELECT u.job_id, (SELECT COUNT(*) + 1 FROM attempts a WHERE a.job_id = u.job_id),
                u.started_at, u.duration_ms, u.status_code, u.error, u.response
         FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[], $5::text[], $6::text[])
              AS u(job_id, started_at, duration_ms, status_code, error, response)",
        &[&ids, &started, &took, &codes, &errors, &responses],
    )?;
    db.exec(
        "UPDATE jobs SET status = u.status, next_attempt_at = u.next_at, lease_until = NULL, leased_by = NULL,
                last_error = u.error, updated_at = $5
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[]) AS u(id, status, next_at, error)
         WHERE jobs.id = u.id",
        &[&ids, &statuses, &next_at, &last_errors, &now_ms],
    )?;
    if !succeeded.is_empty() {
        db.exec(
            "UPDATE endpoints SET last_success_at = $1 WHERE url = ANY($2)",
            &[&now_ms, &succeeded],
        )?;
    }
    for f in done {
        if let Some((url, reason)) = f.suspension() {
            db.exec(
                "INSERT INTO endpoints (url, status, suspended_at, reason) VALUES ($1, 'suspended', $2, $3)
                 ON CONFLICT (url) DO UPDATE SET status = 'suspended', suspended_at = $2, reason = $3",
                &[&url, &now_ms, &reason],
            )?;
        }
    }
    Ok(())
}

/// When the next pending job of `kinds` is due.
pub(super) fn next_due<C: GenericClient>(
    db: &mut Db<'_, C>,
    kinds: &[String],
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let ms: Option<i64> = db
        .one(
            "SELECT MIN(next_attempt_at) FROM jobs j
             WHERE status = 'pending' AND kind = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.url = j.endpoint AND e.status = 'suspended')",
            &[&kinds],
        )?
        .get(0);
    Ok(ms.map(from_millis))
}

/// Puts a finished job back in line with a fresh schedule (and, rendered again, a new
/// action); whether there was one.
pub(super) fn retry_job(
    db: &mut Tx<'_, '_>,
    id: i64,
    now: DateTime<Utc>,
    rendered: Option<&Rendered>,
) -> Result<bool, StoreError> {
    if let Some(r) = rendered {
        db.exec(
            "UPDATE jobs SET action = $1, endpoint = $2
             WHERE id = $3 AND status IN ('dead', 'failed', 'succeeded', 'skipped', 'cancelled')",
            &[&r.action.to_string(), &r.endpoint, &id],
        )?;
        if let Some(url) = &r.endpoint {
            db.exec(
                "INSERT INTO endpoints (url, status) VALUES ($1, 'active') ON CONFLICT (url) DO NOTHING",
                &[url],
            )?;
        }
    }
    let n = db.exec(
        "UPDATE jobs SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL,
                leased_by = NULL, first_attempt_at = NULL, last_error = NULL, updated_at = $1
         WHERE id = $2 AND status IN ('dead', 'failed', 'succeeded', 'skipped', 'cancelled')",
        &[&millis(now), &id],
    )?;
    Ok(n == 1)
}

/// Skips a job that has not succeeded and is not running; whether there was one.
pub(super) fn skip_job(db: &mut Tx<'_, '_>, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = db.exec(
        "UPDATE jobs SET status = 'skipped', lease_until = NULL, leased_by = NULL, updated_at = $1,
                last_error = COALESCE(last_error || '; ', '') || 'skipped by hand'
         WHERE id = $2 AND status IN ('pending', 'failed', 'dead')",
        &[&millis(now), &id],
    )?;
    Ok(n == 1)
}

/// Puts the dead jobs matching `filter` back in line; how many.
pub(super) fn retry_dead(
    db: &mut Tx<'_, '_>,
    filter: &DeadFilter,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    db.exec(
        "UPDATE jobs SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL,
                leased_by = NULL, first_attempt_at = NULL, updated_at = $1
         WHERE status = 'dead' AND ($2::text IS NULL OR endpoint = $2) AND ($3::text IS NULL OR rule_id = $3)",
        &[&millis(now), &filter.endpoint, &filter.rule],
    )
}

/// Reactivates an endpoint and requeues the jobs that died on it while it was suspended.
pub(super) fn resume_endpoint(
    db: &mut Tx<'_, '_>,
    id_or_url: &str,
    now: DateTime<Utc>,
) -> Result<Option<(EndpointRow, u64)>, StoreError> {
    let id: i64 = id_or_url.parse().unwrap_or(-1);
    let url = crate::base::net::endpoint_of(id_or_url).unwrap_or_else(|| id_or_url.to_owned());
    let Some(row) = db.opt(
        &format!("{} WHERE id = $1 OR url = $2 FOR UPDATE", admin::ENDPOINT_SELECT),
        &[&id, &url],
    )?
    else {
        return Ok(None);
    };
    let endpoint = admin::endpoint_row(&row);
    let since: Option<i64> = row.get("suspended_at");
    let requeued = match since {
        Some(since) => db.exec(
            "UPDATE jobs SET status = 'pending', attempts = 0, next_attempt_at = $1, first_attempt_at = NULL,
                    updated_at = $1
             WHERE endpoint = $2 AND status = 'dead' AND updated_at >= $3",
            &[&millis(now), &endpoint.url, &since],
        )?,
        None => 0,
    };
    db.exec(
        "UPDATE endpoints SET status = 'active', suspended_at = NULL, reason = NULL WHERE id = $1",
        &[&endpoint.id],
    )?;
    let resumed = EndpointRow {
        status: "active".into(),
        suspended_at: None,
        reason: None,
        ..endpoint
    };
    Ok(Some((resumed, requeued)))
}

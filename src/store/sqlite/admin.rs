//! Reads for the admin API and the CLI: events, jobs with their attempts, endpoints,
//! counts. They run on read-only connections.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::json_column;
use crate::store::{
    AttemptRow, EndpointRow, EventDetail, EventRow, JobDetail, JobRow, RuleFile, Stats, StoreError, rfc3339,
};

const JOB_COLUMNS: &str = "id, idempotency_key, event_id, rule_id, action_index, kind, status, attempts, next_attempt_at, endpoint, last_error, action";

pub(super) const ENDPOINT_SELECT: &str = "SELECT id, url, status, suspended_at, reason FROM endpoints";

fn job_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get("id")?,
        idempotency_key: r.get("idempotency_key")?,
        event_id: r.get("event_id")?,
        rule_id: r.get("rule_id")?,
        action_index: r.get("action_index")?,
        kind: r.get("kind")?,
        status: r.get("status")?,
        attempts: r.get("attempts")?,
        next_attempt_at: rfc3339(r.get("next_attempt_at")?),
        endpoint: r.get("endpoint")?,
        last_error: r.get("last_error")?,
        action: json_column(r, "action")?,
    })
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get("id")?,
        source: r.get("source")?,
        kind: r.get("type")?,
        time: rfc3339(r.get("time")?),
        received_at: rfc3339(r.get("received_at")?),
        matched: json_column(r, "matched")?,
    })
}

pub(super) fn endpoint_row(r: &Row<'_>) -> rusqlite::Result<EndpointRow> {
    Ok(EndpointRow {
        id: r.get("id")?,
        url: r.get("url")?,
        status: r.get("status")?,
        suspended_at: r.get::<_, Option<i64>>("suspended_at")?.map(rfc3339),
        reason: r.get("reason")?,
    })
}

pub(super) fn events(conn: &Connection, kind: Option<&str>, limit: u32) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, source, type, time, received_at, matched FROM events
         WHERE ?1 IS NULL OR type = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![kind, limit], event_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn event(conn: &Connection, id: &str) -> Result<Option<EventDetail>, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT id, source, type, time, received_at, matched, payload, decisions, rule_set FROM events WHERE id = ?",
        )?
        .query_row([id], |r| {
            let decisions: Option<String> = r.get("decisions")?;
            let decisions = match decisions {
                Some(text) => serde_json::from_str(&text).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        0,
                        rusqlite::types::Type::Text,
                        Box::new(StoreError::Corrupt(e.to_string())),
                    )
                })?,
                None => serde_json::Value::Null,
            };
            Ok((event_row(r)?, json_column(r, "payload")?, decisions, r.get("rule_set")?))
        })
        .optional()?;
    let Some((event, payload, decisions, rule_set)) = found else {
        return Ok(None);
    };
    // An event's jobs are keyed `event-id/…`: a range of the unique key ('0' follows '/').
    let mut jobs_of = conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs
         WHERE idempotency_key >= ?1 || '/' AND idempotency_key < ?1 || '0' AND event_id = ?1 ORDER BY id"
    ))?;
    let mut attempts_of = conn.prepare_cached(
        "SELECT number, started_at, duration_ms, status_code, error, response FROM attempts
         WHERE job_id = ? ORDER BY number",
    )?;
    let mut jobs = Vec::new();
    for job in jobs_of.query_map([id], job_row)? {
        let job = job?;
        let attempts_made = attempts_of
            .query_map([job.id], |a| {
                Ok(AttemptRow {
                    number: a.get("number")?,
                    started_at: rfc3339(a.get("started_at")?),
                    duration_ms: a.get::<_, i64>("duration_ms")?.max(0) as u64,
                    status_code: a.get("status_code")?,
                    error: a.get("error")?,
                    response: a.get("response")?,
                })
            })?
            .collect::<Result<_, _>>()?;
        jobs.push(JobDetail { job, attempts_made });
    }
    Ok(Some(EventDetail {
        event,
        payload,
        decisions,
        rule_set,
        jobs,
    }))
}

pub(super) fn rule_set(conn: &Connection, hash: &str) -> Result<Option<Vec<RuleFile>>, StoreError> {
    let files: Option<String> = conn
        .prepare_cached("SELECT files FROM rule_sets WHERE hash = ?")?
        .query_row([hash], |r| r.get(0))
        .optional()?;
    let Some(files) = files else {
        return Ok(None);
    };
    let files: Vec<[String; 3]> =
        serde_json::from_str(&files).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut text_of = conn.prepare_cached("SELECT text FROM rule_files WHERE hash = ?")?;
    let mut out = Vec::with_capacity(files.len());
    for [path, id, hash] in files {
        let text: String = text_of.query_row([&hash], |r| r.get(0))?;
        out.push(RuleFile { path, id, hash, text });
    }
    Ok(Some(out))
}

pub(super) fn jobs(conn: &Connection, status: Option<&str>, limit: u32) -> Result<Vec<JobRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE ?1 IS NULL OR status = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![status, limit], job_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn job(conn: &Connection, id: i64) -> Result<Option<JobRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))?
        .query_row([id], job_row)
        .optional()?)
}

pub(super) fn endpoints(conn: &Connection) -> Result<Vec<EndpointRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{ENDPOINT_SELECT} ORDER BY id"))?;
    let rows = stmt.query_map([], endpoint_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn stats(conn: &Connection) -> Result<Stats, StoreError> {
    let count = |sql: &str| -> Result<u64, StoreError> {
        let n: i64 = conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    };
    let mut jobs = BTreeMap::new();
    let mut stmt = conn.prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (status, n) = row?;
        jobs.insert(status, n.max(0) as u64);
    }
    let oldest: Option<i64> = conn
        .prepare_cached("SELECT MIN(next_attempt_at) FROM jobs WHERE status = 'pending'")?
        .query_row([], |r| r.get(0))?;
    Ok(Stats {
        events: count("SELECT COUNT(*) FROM events")?,
        jobs,
        endpoints_suspended: count("SELECT COUNT(*) FROM endpoints WHERE status = 'suspended'")?,
        timers_pending: count("SELECT COUNT(*) FROM timers")?,
        oldest_due: oldest.map(rfc3339),
        oldest_due_ms: oldest,
    })
}

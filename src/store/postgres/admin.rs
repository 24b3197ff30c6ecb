//! Reads for the admin API and the CLI on PostgreSQL: events, jobs with their attempts,
//! endpoints, counts. Outside transactions (each statement reads what is committed).

use std::collections::BTreeMap;

use postgres::{GenericClient, Row};

use super::{Db, json_text};
use crate::store::{
    AttemptRow, EndpointRow, EventDetail, EventRow, JobDetail, JobRow, RuleFile, Stats, StoreError, rfc3339,
};

const JOB_COLUMNS: &str = "id, idempotency_key, event_id, rule_id, action_index, kind, status, attempts, next_attempt_at, endpoint, last_error, action";

pub(super) const ENDPOINT_SELECT: &str = "SELECT id, url, status, suspended_at, reason FROM endpoints";

fn job_row(r: &Row) -> Result<JobRow, StoreError> {
    Ok(JobRow {
        id: r.get("id"),
        idempotency_key: r.get("idempotency_key"),
        event_id: r.get("event_id"),
        rule_id: r.get("rule_id"),
        action_index: r.get::<_, i64>("action_index") as u32,
        kind: r.get("kind"),
        status: r.get("status"),
        attempts: r.get::<_, i64>("attempts").max(0) as u32,
        next_attempt_at: rfc3339(r.get("next_attempt_at")),
        endpoint: r.get("endpoint"),
        last_error: r.get("last_error"),
        action: json_text(r.get::<_, &str>("action"))?,
    })
}

fn event_row(r: &Row) -> Result<EventRow, StoreError> {
    Ok(EventRow {
        id: r.get("id"),
        source: r.get("source"),
        kind: r.get("type"),
        time: rfc3339(r.get("time")),
        received_at: rfc3339(r.get("received_at")),
        matched: json_text(r.get::<_, &str>("matched"))?,
    })
}

pub(super) fn endpoint_row(r: &Row) -> EndpointRow {
    EndpointRow {
        id: r.get("id"),
        url: r.get("url"),
        status: r.get("status"),
        suspended_at: r.get::<_, Option<i64>>("suspended_at").map(rfc3339),
        reason: r.get("reason"),
    }
}

pub(super) fn events<C: GenericClient>(
    db: &mut Db<'_, C>,
    kind: Option<&str>,
    limit: u32,
) -> Result<Vec<EventRow>, StoreError> {
    db.rows(
        "SELECT id, source, type, time, received_at, matched::text AS matched FROM events
         WHERE $1::text IS NULL OR type = $1 ORDER BY seq DESC LIMIT $2",
        &[&kind, &i64::from(limit)],
    )?
    .iter()
    .map(event_row)
    .collect()
}

pub(super) fn event<C: GenericClient>(
    db: &mut Db<'_, C>,
    id: &str,
) -> Result<Option<EventDetail>, StoreError> {
    let Some(r) = db.opt(
        "SELECT id, source, type, time, received_at, matched::text AS matched, payload,
                decisions::text AS decisions, rule_set
         FROM events WHERE id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let event = event_row(&r)?;
    let payload = json_text(r.get::<_, &str>("payload"))?;
    let decisions = match r.get::<_, Option<&str>>("decisions") {
        Some(text) => json_text(text)?,
        None => serde_json::Value::Null,
    };
    let rule_set: Option<String> = r.get("rule_set");
    // An event's jobs are keyed `event-id/…`: a range of the unique key, in byte order
    // ('0' follows '/').
    let found = db.rows(
        &format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE idempotency_key >= $1 || '/' AND idempotency_key < $1 || '0' AND event_id = $1 ORDER BY id"
        ),
        &[&id],
    )?;
    let mut jobs = Vec::with_capacity(found.len());
    for row in &found {
        let job = job_row(row)?;
        let attempts_made = db
            .rows(
                "SELECT number, started_at, duration_ms, status_code, error, response FROM attempts
                 WHERE job_id = $1 ORDER BY number",
                &[&job.id],
            )?
            .iter()
            .map(|a| AttemptRow {
                number: a.get::<_, i64>("number").max(0) as u32,
                started_at: rfc3339(a.get("started_at")),
                duration_ms: a.get::<_, i64>("duration_ms").max(0) as u64,
                status_code: a
                    .get::<_, Option<i32>>("status_code")
                    .and_then(|c| u16::try_from(c).ok()),
                error: a.get("error"),
                response: a.get("response"),
            })
            .collect();
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

pub(super) fn rule_set<C: GenericClient>(
    db: &mut Db<'_, C>,
    hash: &str,
) -> Result<Option<Vec<RuleFile>>, StoreError> {
    let Some(r) = db.opt("SELECT files FROM rule_sets WHERE hash = $1", &[&hash])? else {
        return Ok(None);
    };
    let files: Vec<[String; 3]> =
        serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut out = Vec::with_capacity(files.len());
    for [path, id, hash] in files {
        let text: String = db
            .one("SELECT text FROM rule_files WHERE hash = $1", &[&hash])?
            .get(0);
        out.push(RuleFile { path, id, hash, text });
    }
    Ok(Some(out))
}

pub(super) fn jobs<C: GenericClient>(
    db: &mut Db<'_, C>,
    status: Option<&str>,
    limit: u32,
) -> Result<Vec<JobRow>, StoreError> {
    db.rows(
        &format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE $1::text IS NULL OR status = $1 ORDER BY id DESC LIMIT $2"
        ),
        &[&status, &i64::from(limit)],
    )?
    .iter()
    .map(job_row)
    .collect()
}

pub(super) fn job<C: GenericClient>(db: &mut Db<'_, C>, id: i64) -> Result<Option<JobRow>, StoreError> {
    db.opt(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"), &[&id])?
        .as_ref()
        .map(job_row)
        .transpose()
}

pub(super) fn endpoints<C: GenericClient>(db: &mut Db<'_, C>) -> Result<Vec<EndpointRow>, StoreError> {
    Ok(db
        .rows(&format!("{ENDPOINT_SELECT} ORDER BY id"), &[])?
        .iter()
        .map(endpoint_row)
        .collect())
}

pub(super) fn stats<C: GenericClient>(db: &mut Db<'_, C>) -> Result<Stats, StoreError> {
    let mut count = |sql: &str| -> Result<u64, StoreError> {
        let n: i64 = db.one(sql, &[])?.get(0);
        Ok(n.max(0) as u64)
    };
    let events = count("SELECT COUNT(*) FROM events")?;
    let endpoints_suspended = count("SELECT COUNT(*) FROM endpoints WHERE status = 'suspended'")?;
    let timers_pending = count("SELECT COUNT(*) FROM timers")?;
    let mut jobs = BTreeMap::new();
    for r in db.rows("SELECT status, COUNT(*) FROM jobs GROUP BY status", &[])? {
        jobs.insert(r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64);
    }
    let oldest: Option<i64> = db
        .one(
            "SELECT MIN(next_attempt_at) FROM jobs WHERE status = 'pending'",
            &[],
        )?
        .get(0);
    Ok(Stats {
        events,
        jobs,
        endpoints_suspended,
        timers_pending,
        oldest_due: oldest.map(rfc3339),
        oldest_due_ms: oldest,
    })
}

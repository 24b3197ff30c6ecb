//! The embedded store: one SQLite file in WAL mode.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::{
    AttemptRow, ContactChange, ContactRow, EndpointRow, EventDetail, EventRow, Finished, Job, JobDetail,
    JobRow, ListRow, NewEvent, Next, Stats, Store, StoreError, SuppressionRow, from_millis, millis, rfc3339,
};
use crate::config::Durability;
use crate::rules::RuleSet;
use crate::store::NewJob;

mod stateful;
use crate::duration::Duration;

/// Rows per multi-row INSERT (well under SQLite's 32766 bound variables).
const CHUNK: usize = 400;

/// `(?, ?, ?), (?, ?, ?)` for `rows` rows of `columns` values.
fn placeholders(columns: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// Schema migrations, in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_lists.sql"),
    include_str!("../../migrations/0003_state.sql"),
];

/// Two pools: SQLite has one writer at a time, and a writer that finds the lock taken
/// sleeps in growing steps (its busy handler). So every write goes through a single
/// connection (`write`), where writers queue without sleeping, and reads use their own.
#[derive(Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    /// Commits so far, to prune expired state every `PRUNE_EVERY` of them.
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// How often (in commits) expired correlation facts and once-marks are deleted.
const PRUNE_EVERY: u64 = 256;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = Self {
            write,
            read,
            commits: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                found: version,
                known,
            });
        }
        for sql in &MIGRATIONS[version as usize..] {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
        }
        sqlx::raw_sql(&format!("PRAGMA user_version = {known}"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn in_list(kinds: &[&str]) -> String {
    kinds
        .iter()
        .filter(|k| k.bytes().all(|b| b.is_ascii_lowercase()))
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(",")
}

fn json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn job_row(r: &SqliteRow) -> Result<JobRow, StoreError> {
    Ok(JobRow {
        id: r.try_get("id")?,
        idempotency_key: r.try_get("idempotency_key")?,
        event_id: r.try_get("event_id")?,
        rule_id: r.try_get("rule_id")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        next_attempt_at: rfc3339(r.try_get("next_attempt_at")?),
        endpoint: r.try_get("endpoint")?,
        last_error: r.try_get("last_error")?,
        action: json(&r.try_get::<String, _>("action")?)?,
    })
}

fn event_row(r: &SqliteRow) -> Result<EventRow, StoreError> {
    Ok(EventRow {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        kind: r.try_get("type")?,
        time: rfc3339(r.try_get("time")?),
        received_at: rfc3339(r.try_get("received_at")?),
        matched: json(&r.try_get::<String, _>("matched")?)?,
    })
}

fn endpoint_row(r: &SqliteRow) -> Result<EndpointRow, StoreError> {
    Ok(EndpointRow {
        id: r.try_get("id")?,
        url: r.try_get("url")?,
        status: r.try_get("status")?,
        suspended_at: r.try_get::<Option<i64>, _>("suspended_at")?.map(rfc3339),
        reason: r.try_get("reason")?,
    })
}

/// Inserts jobs (and their endpoints), many rows per statement. Each job is
/// `(event id, created at in unix ms, job)`; a job whose key exists is left alone.
async fn insert_jobs(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    jobs: &[(&str, i64, &NewJob)],
) -> Result<(), StoreError> {
    let endpoints: BTreeSet<&str> = jobs
        .iter()
        .filter_map(|(_, _, j)| j.endpoint.as_deref())
        .collect();
    let endpoints: Vec<&str> = endpoints.into_iter().collect();
    for chunk in endpoints.chunks(CHUNK) {
        let sql = format!(
            "INSERT OR IGNORE INTO endpoints (url, status) VALUES {}",
            placeholders(1, chunk.len()).replace("(?)", "(?, 'active')")
        );
        let mut q = sqlx::query(&sql);
        for url in chunk {
            q = q.bind(*url);
        }
        q.execute(&mut **tx).await?;
    }
    for chunk in jobs.chunks(CHUNK) {
        let sql = format!(
            "INSERT OR IGNORE INTO jobs (idempotency_key, event_id, rule_id, action_index, kind, action,
                endpoint, status, next_attempt_at, last_error, created_at, updated_at) VALUES {}",
            placeholders(12, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for (event_id, created, job) in chunk {
            q = q
                .bind(&job.key)
                .bind(*event_id)
                .bind(&job.rule_id)
                .bind(i64::from(job.action_index))
                .bind(&job.kind)
                .bind(job.action.to_string())
                .bind(&job.endpoint)
                .bind(if job.error.is_some() { "failed" } else { "pending" })
                .bind(millis(job.due_at))
                .bind(&job.error)
                .bind(*created)
                .bind(*created);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

fn suppression_row(r: &SqliteRow) -> Result<SuppressionRow, StoreError> {
    Ok(SuppressionRow {
        email: r.try_get("email")?,
        reason: r.try_get("reason")?,
        event_id: r.try_get("event_id")?,
        created_at: rfc3339(r.try_get("created_at")?),
    })
}

const JOB_COLUMNS: &str = "id, idempotency_key, event_id, rule_id, kind, status, attempts, next_attempt_at, endpoint, last_error, action";

impl Store for SqliteStore {
    async fn commit(&self, batch: &[NewEvent], rules: &RuleSet) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.write.begin().await?;
        // Multi-row statements: one round trip to SQLite per chunk, not per row.
        let mut inserted = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(CHUNK) {
            let sql = format!(
                "INSERT OR IGNORE INTO events (id, source, type, time, received_at, payload, matched) VALUES {} RETURNING id",
                placeholders(7, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for item in chunk {
                let ev = &item.event;
                q = q
                    .bind(&ev.id)
                    .bind(&ev.source)
                    .bind(&ev.kind)
                    .bind(millis(ev.time))
                    .bind(millis(item.received_at))
                    .bind(ev.data.to_string())
                    .bind(serde_json::to_string(&item.matched).unwrap_or_else(|_| "[]".into()));
            }
            let mut new_ids: HashSet<String> = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?;
            // An id twice in one batch is new once.
            inserted.extend(chunk.iter().map(|item| new_ids.remove(&item.event.id)));
        }
        let fresh = || {
            batch
                .iter()
                .zip(&inserted)
                .filter(|(_, new)| **new)
                .map(|(item, _)| item)
        };
        // Stateful rules, event by event in arrival order, so each sees the state the
        // events before it (in this group too) left.
        let mut decided: Vec<(&NewEvent, crate::store::NewJob)> = Vec::new();
        for (item, _) in batch.iter().zip(&inserted).filter(|(_, new)| **new) {
            let fired = stateful::decide(&mut tx, rules, item, &mut decided).await?;
            stateful::record_facts(&mut tx, rules, &item.event).await?;
            stateful::cancel_timers(&mut tx, rules, &item.event).await?;
            if !fired.is_empty() {
                let matched: Vec<&String> = item.matched.iter().chain(&fired).collect();
                sqlx::query("UPDATE events SET matched = ? WHERE id = ?")
                    .bind(serde_json::to_string(&matched).unwrap_or_else(|_| "[]".into()))
                    .bind(&item.event.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let jobs: Vec<(&str, i64, &NewJob)> = fresh()
            .flat_map(|i| i.jobs.iter().map(move |j| (i, j)))
            .chain(decided.iter().map(|(i, j)| (*i, j)))
            .map(|(item, job)| (item.event.id.as_str(), millis(item.received_at), job))
            .collect();
        insert_jobs(&mut tx, &jobs).await?;
        if self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % PRUNE_EVERY == 0 {
            stateful::prune(&mut tx, rules).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn lease(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        kinds: &[&str],
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let now_ms = millis(now);
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = ?1, updated_at = ?2
             WHERE id IN (
                SELECT j.id FROM jobs j
                WHERE ((j.status = 'pending' AND j.next_attempt_at <= ?2)
                       OR (j.status = 'running' AND j.lease_until < ?2))
                  AND j.kind IN ({})
                  AND NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.url = j.endpoint AND e.status = 'suspended')
                ORDER BY j.next_attempt_at, j.id
                LIMIT ?3)
             RETURNING id, idempotency_key, event_id, rule_id, action_index, kind, action, endpoint, attempts",
            in_list(kinds)
        );
        let rows = sqlx::query(&sql)
            .bind(now_ms + lease.as_secs() as i64 * 1000)
            .bind(now_ms)
            .bind(limit as i64)
            .fetch_all(&self.write)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Job {
                    id: r.try_get("id")?,
                    key: r.try_get("idempotency_key")?,
                    event_id: r.try_get("event_id")?,
                    rule_id: r.try_get("rule_id")?,
                    action_index: r.try_get::<i64, _>("action_index")? as u32,
                    kind: r.try_get("kind")?,
                    action: json(&r.try_get::<String, _>("action")?)?,
                    endpoint: r.try_get("endpoint")?,
                    attempts: r.try_get::<i64, _>("attempts")? as u32,
                })
            })
            .collect()
    }

    async fn finish(&self, done: &[Finished], now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        for Finished { job, attempt, next } in done {
            sqlx::query(
                "INSERT INTO attempts (job_id, number, started_at, duration_ms, status_code, error, response)
                 VALUES (?1, (SELECT COUNT(*) + 1 FROM attempts WHERE job_id = ?1), ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(job.id)
            .bind(millis(attempt.started_at))
            .bind(attempt.duration_ms as i64)
            .bind(attempt.status_code.map(i64::from))
            .bind(&attempt.error)
            .bind(&attempt.response)
            .execute(&mut *tx)
            .await?;
            let (status, next_at) = match next {
                Next::Succeeded => ("succeeded", now),
                Next::Skipped => ("skipped", now),
                Next::Retry(at) => ("pending", *at),
                Next::Dead { .. } => ("dead", now),
            };
            let error = if matches!(next, Next::Succeeded) {
                None
            } else {
                attempt.error.clone()
            };
            sqlx::query(
                "UPDATE jobs SET status = ?, next_attempt_at = ?, lease_until = NULL, last_error = ?, updated_at = ?
                 WHERE id = ?",
            )
            .bind(status)
            .bind(millis(next_at))
            .bind(error)
            .bind(millis(now))
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
            if let Next::Dead { suspend: Some(url) } = next {
                sqlx::query(
                    "INSERT INTO endpoints (url, status, suspended_at, reason) VALUES (?1, 'suspended', ?2, ?3)
                     ON CONFLICT (url) DO UPDATE SET status = 'suspended', suspended_at = ?2, reason = ?3",
                )
                .bind(url)
                .bind(millis(now))
                .bind(format!("job {} exhausted its retries: {}", job.key, attempt.error.as_deref().unwrap_or("failed")))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn next_due(&self, kinds: &[&str]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let sql = format!(
            "SELECT MIN(CASE WHEN status = 'running' THEN lease_until ELSE next_attempt_at END) FROM jobs j
             WHERE status IN ('pending', 'running') AND kind IN ({})
               AND NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.url = j.endpoint AND e.status = 'suspended')",
            in_list(kinds)
        );
        let ms: Option<i64> = sqlx::query_scalar(&sql).fetch_one(&self.read).await?;
        Ok(ms.map(from_millis))
    }

    async fn events(&self, kind: Option<&str>, limit: u32) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, source, type, time, received_at, matched FROM events
             WHERE ?1 IS NULL OR type = ?1 ORDER BY seq DESC LIMIT ?2",
        )
        .bind(kind)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(event_row).collect()
    }

    async fn event(&self, id: &str) -> Result<Option<EventDetail>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, source, type, time, received_at, matched, payload FROM events WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?
        else {
            return Ok(None);
        };
        let event = event_row(&row)?;
        let payload = json(&row.try_get::<String, _>("payload")?)?;
        let job_rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE event_id = ? ORDER BY id"
        ))
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        let mut jobs = Vec::with_capacity(job_rows.len());
        for r in &job_rows {
            let job = job_row(r)?;
            let attempts = sqlx::query(
                "SELECT number, started_at, duration_ms, status_code, error, response FROM attempts
                 WHERE job_id = ? ORDER BY number",
            )
            .bind(job.id)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|a| {
                Ok(AttemptRow {
                    number: a.try_get::<i64, _>("number")? as u32,
                    started_at: rfc3339(a.try_get("started_at")?),
                    duration_ms: a.try_get::<i64, _>("duration_ms")? as u64,
                    status_code: a.try_get::<Option<i64>, _>("status_code")?.map(|c| c as u16),
                    error: a.try_get("error")?,
                    response: a.try_get("response")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            jobs.push(JobDetail {
                job,
                attempts_made: attempts,
            });
        }
        Ok(Some(EventDetail { event, payload, jobs }))
    }

    async fn jobs(&self, status: Option<&str>, limit: u32) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE ?1 IS NULL OR status = ?1 ORDER BY id DESC LIMIT ?2"
        ))
        .bind(status)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(job_row).collect()
    }

    async fn retry_job(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'pending', attempts = 0, next_attempt_at = ?, lease_until = NULL, updated_at = ?
             WHERE id = ? AND status IN ('dead', 'failed', 'succeeded')",
        )
        .bind(millis(now))
        .bind(millis(now))
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn endpoints(&self) -> Result<Vec<EndpointRow>, StoreError> {
        let rows = sqlx::query("SELECT id, url, status, suspended_at, reason FROM endpoints ORDER BY id")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(endpoint_row).collect()
    }

    async fn resume_endpoint(
        &self,
        id_or_url: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(EndpointRow, u64)>, StoreError> {
        let mut tx = self.write.begin().await?;
        let id: i64 = id_or_url.parse().unwrap_or(-1);
        let url = crate::delivery::endpoint_of(id_or_url).unwrap_or_else(|| id_or_url.to_owned());
        let Some(row) = sqlx::query(
            "SELECT id, url, status, suspended_at, reason FROM endpoints WHERE id = ? OR url = ?",
        )
        .bind(id)
        .bind(&url)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let endpoint = endpoint_row(&row)?;
        let since: Option<i64> = row.try_get("suspended_at")?;
        let requeued = match since {
            Some(since) => sqlx::query(
                "UPDATE jobs SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ?
                 WHERE endpoint = ? AND status = 'dead' AND updated_at >= ?",
            )
            .bind(millis(now))
            .bind(millis(now))
            .bind(&endpoint.url)
            .bind(since)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            None => 0,
        };
        sqlx::query(
            "UPDATE endpoints SET status = 'active', suspended_at = NULL, reason = NULL WHERE id = ?",
        )
        .bind(endpoint.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let resumed = EndpointRow {
            status: "active".into(),
            suspended_at: None,
            reason: None,
            ..endpoint
        };
        Ok(Some((resumed, requeued)))
    }

    async fn fire_timers(&self, now: DateTime<Utc>, rules: &RuleSet) -> Result<usize, StoreError> {
        let mut tx = self.write.begin().await?;
        let fired = stateful::fire_timers(&mut tx, rules, now).await?;
        tx.commit().await?;
        Ok(fired)
    }

    async fn next_timer(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let ms: Option<i64> = sqlx::query_scalar("SELECT MIN(due_at) FROM timers")
            .fetch_one(&self.read)
            .await?;
        Ok(ms.map(from_millis))
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.read)
            .await?;
        let mut jobs = BTreeMap::new();
        for r in sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
            .fetch_all(&self.read)
            .await?
        {
            jobs.insert(
                r.try_get::<String, _>("status")?,
                r.try_get::<i64, _>("n")? as u64,
            );
        }
        let suspended: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM endpoints WHERE status = 'suspended'")
            .fetch_one(&self.read)
            .await?;
        Ok(Stats {
            events: events as u64,
            jobs,
            endpoints_suspended: suspended as u64,
        })
    }

    async fn change_contact(&self, change: &ContactChange, now: DateTime<Utc>) -> Result<String, StoreError> {
        let now = millis(now);
        let done = match change {
            ContactChange::Add { list, email, set } => {
                sqlx::query(
                    "INSERT INTO contacts (list, email, properties, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                     ON CONFLICT (list, email) DO UPDATE SET properties = json_patch(properties, ?3), updated_at = ?4",
                )
                .bind(list)
                .bind(super::address_key(email))
                .bind(Value::Object(set.clone()).to_string())
                .bind(now)
                .execute(&self.write)
                .await?;
                format!("{email} is on list {list}")
            }
            ContactChange::Remove { list, email } => {
                let n = sqlx::query("DELETE FROM contacts WHERE list = ? AND email = ?")
                    .bind(list)
                    .bind(super::address_key(email))
                    .execute(&self.write)
                    .await?
                    .rows_affected();
                if n == 1 {
                    format!("{email} removed from list {list}")
                } else {
                    format!("{email} was not on list {list}")
                }
            }
            ContactChange::Update { list, email, set } => {
                let n = sqlx::query("UPDATE contacts SET properties = json_patch(properties, ?), updated_at = ? WHERE list = ? AND email = ?")
                    .bind(Value::Object(set.clone()).to_string())
                    .bind(now)
                    .bind(list)
                    .bind(super::address_key(email))
                    .execute(&self.write)
                    .await?
                    .rows_affected();
                if n == 1 {
                    format!("{email} updated on list {list}")
                } else {
                    format!("{email} is not on list {list}: nothing to update")
                }
            }
        };
        Ok(done)
    }

    async fn lists(&self) -> Result<Vec<ListRow>, StoreError> {
        let rows = sqlx::query("SELECT list, COUNT(*) AS n FROM contacts GROUP BY list ORDER BY list")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ListRow {
                    list: r.try_get("list")?,
                    contacts: r.try_get::<i64, _>("n")? as u64,
                })
            })
            .collect()
    }

    async fn contacts(&self, list: &str) -> Result<Vec<ContactRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT email, properties, created_at, updated_at FROM contacts WHERE list = ? ORDER BY email",
        )
        .bind(list)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ContactRow {
                    email: r.try_get("email")?,
                    properties: json(&r.try_get::<String, _>("properties")?)?,
                    created_at: rfc3339(r.try_get("created_at")?),
                    updated_at: rfc3339(r.try_get("updated_at")?),
                })
            })
            .collect()
    }

    async fn suppress(
        &self,
        email: &str,
        reason: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT OR IGNORE INTO suppressions (email, reason, event_id, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(super::address_key(email))
        .bind(reason)
        .bind(event_id)
        .bind(millis(now))
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn unsuppress(&self, email: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM suppressions WHERE email = ?")
            .bind(super::address_key(email))
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn suppressed(&self, emails: &[String]) -> Result<Vec<SuppressionRow>, StoreError> {
        let mut out = Vec::new();
        for email in emails {
            if let Some(r) =
                sqlx::query("SELECT email, reason, event_id, created_at FROM suppressions WHERE email = ?")
                    .bind(super::address_key(email))
                    .fetch_optional(&self.read)
                    .await?
            {
                out.push(suppression_row(&r)?);
            }
        }
        Ok(out)
    }

    async fn suppressions(&self) -> Result<Vec<SuppressionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT email, reason, event_id, created_at FROM suppressions ORDER BY created_at, email",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(suppression_row).collect()
    }
}

//! Durable state behind traits, one backend chosen by [`open`]: `sqlite` (the embedded
//! default, one server per file) or `postgres` (any number of servers on one database).
//! Both pass the same contract suite (`tests/it/store_contract.rs`).
//!
//! What survives what: an event is acknowledged (HTTP 200) only after the transaction
//! holding it and its jobs has committed. With `durability: full` (default) SQLite syncs
//! the write-ahead log on every commit, so the event survives `kill -9` and power loss.
//! With `durability: normal` it survives a crash of hookflow (the log is in the OS's
//! hands), but the last commits before a power cut can be lost; it syncs less often.

pub mod postgres;
pub mod sqlite;
pub mod state;

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::base::duration::Duration;
use crate::event::Event;

/// Which store, and how durable: chosen once, in the config.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreConfig {
    /// The embedded default: one SQLite file.
    Sqlite {
        path: std::path::PathBuf,
        durability: Durability,
    },
    /// A PostgreSQL database, shared by any number of servers.
    Postgres(postgres::PgConfig),
}

/// `full` (default): an acknowledged event survives power loss. `normal`: it survives a
/// crash of hookflow, but the last moments before a power cut may be lost; faster.
#[derive(Debug, Clone, Copy, serde::Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    Full,
    Normal,
}

/// Store failures, whatever the backend. Shown to operators (logs, CLI), never to
/// webhook senders.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed (the backend's own error inside).
    #[error("database error: {}", crate::base::diag::error_chain(.0.as_ref()))]
    Db(Box<dyn std::error::Error + Send + Sync>),
    /// Another server holds the store: two would both deliver the same jobs.
    #[error(
        "another hookflow server is using the store {0}; stop it first (two servers on one store would both deliver the same jobs)"
    )]
    InUse(String),
    #[error("cannot lock the store: {0}")]
    Lock(std::io::Error),
    #[error("cannot start the store's threads: {0}")]
    Thread(std::io::Error),
    /// The store's writer thread is gone (it only stops when the store is dropped).
    #[error("the store is closed")]
    Closed,
    #[error("cannot create the store folder {path}: {source}")]
    Folder { path: String, source: std::io::Error },
    #[error("the store is at schema version {found}, newer than this hookflow ({known}); upgrade hookflow")]
    TooNew { found: i64, known: i64 },
    /// Migrations are run apart (`postgres: { migrate: false }`) and have not run yet.
    #[error(
        "the store is at schema version {found}, this hookflow needs {known}; run `hookflow migrate` first (postgres.migrate is false)"
    )]
    Behind { found: i64, known: i64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database cannot be reached now (refused, connection lost): try again later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The store's settings are wrong (a URL that does not parse).
    #[error("store settings: {0}")]
    Config(String),
}

/// Who opens the store: the server owns it (one at a time: it takes back the leases a
/// killed server left), CLI commands work beside a running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Owner,
    Beside,
}

/// What to do with the store a config names, whatever its backend: the one place a
/// backend is chosen ([`open`]) hands it over to this.
pub trait WithStore {
    type Output;
    fn with<S: Store>(self, store: S) -> impl Future<Output = Self::Output> + Send;
}

/// Opens the store `config` names and gives it to `then`.
pub async fn open<W: WithStore>(
    config: &StoreConfig,
    access: Access,
    then: W,
) -> Result<W::Output, StoreError> {
    match config {
        StoreConfig::Sqlite { path, durability } => {
            let store = sqlite::SqliteStore::open_as(path, *durability, access).await?;
            Ok(then.with(store).await)
        }
        StoreConfig::Postgres(pg) => {
            let store = postgres::PgStore::open(pg.clone()).await?;
            Ok(then.with(store).await)
        }
    }
}

/// Where a store's schema stood and stands: `hookflow migrate`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The schema version found.
    pub from: i64,
    /// The version it is at now (`from` when only checked).
    pub to: i64,
    /// The version this hookflow needs.
    pub known: i64,
}

impl Migration {
    /// A schema found at version `from` by a hookflow that knows `known` migrations,
    /// none run yet; refused when it is newer than this hookflow.
    fn found(from: i64, known: i64) -> Result<Self, StoreError> {
        if from > known {
            return Err(StoreError::TooNew { found: from, known });
        }
        Ok(Self {
            from,
            to: from,
            known,
        })
    }

    /// The same schema once the missing migrations ran.
    fn applied(self) -> Self {
        Self {
            to: self.known,
            ..self
        }
    }
}

/// Brings the store `config` names up to this hookflow's schema (`apply`), or only says
/// where it stands. Servers do the same at start unless `postgres.migrate` is false.
pub async fn migrate(config: &StoreConfig, apply: bool) -> Result<Migration, StoreError> {
    match config {
        StoreConfig::Sqlite { path, .. } => sqlite::migrate_file(path, apply).await,
        StoreConfig::Postgres(pg) => postgres::migrate_database(pg, apply).await,
    }
}

/// An accepted event with what the rules planned for it, written in one transaction.
pub struct NewEvent {
    pub event: Event,
    /// `event.data` as JSON text, serialised on the request's thread rather than by the
    /// store's single writer.
    pub payload: String,
    pub received_at: DateTime<Utc>,
    /// Rules that fired at planning, and their jobs.
    pub matched: Vec<String>,
    pub jobs: Vec<NewJob>,
    /// What stateful rules decide for this event, in the commit transaction, with the
    /// state it reads and writes (`None`: nothing stateful concerns it).
    pub stateful: Option<Box<dyn state::Stateful>>,
    /// The version of the rules that planned it.
    pub rule_set: Arc<RuleSetVersion>,
}

#[derive(Debug, Clone)]
pub struct NewJob {
    /// `event.id/rule.id/action-index`: replaying an event never duplicates a job.
    pub key: String,
    pub rule_id: String,
    pub action_index: u32,
    pub kind: String,
    pub action: Value,
    pub endpoint: Option<String>,
    pub due_at: DateTime<Utc>,
    /// Set when the action could not be rendered: the job is recorded as failed.
    pub error: Option<String>,
    /// Whose job it is: the lowercased address of the event's contact, which a `cancel`
    /// (or a rule's `exit_on`) names.
    pub contact: Option<String>,
    /// Set when the engine carried the job out (or ruled it out) in the commit already:
    /// it is recorded with that status and note, and never delivered.
    pub settled: Option<Settled>,
}

/// A job's end decided in the commit: a `cancel` carried out, an email over its cap.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// `succeeded`, `skipped` or `cancelled`.
    pub status: &'static str,
    /// What happened, kept as the job's last message.
    pub note: String,
}

impl NewJob {
    /// The status the job is stored with.
    pub fn status(&self) -> &'static str {
        match (&self.settled, &self.error) {
            (Some(s), _) => s.status,
            (None, Some(_)) => "failed",
            (None, None) => "pending",
        }
    }

    /// The message stored with it: the render error, or what settled it.
    pub fn note(&self) -> Option<&str> {
        match (&self.settled, &self.error) {
            (Some(s), _) => Some(&s.note),
            (None, e) => e.as_deref(),
        }
    }
}

/// A batch's jobs, planned at ingest and decided in the commit, past those `written`
/// already (how many of each): a store writes the earlier ones before a decision that
/// may cancel them.
pub(crate) fn unwritten<'a>(
    planned: &[(&'a str, i64, &'a NewJob)],
    decided: &'a [(&'a str, i64, NewJob)],
    written: (usize, usize),
) -> Vec<(&'a str, i64, &'a NewJob)> {
    let mut rows = planned[written.0..].to_vec();
    rows.extend(
        decided[written.1..]
            .iter()
            .map(|(id, created, job)| (*id, *created, job)),
    );
    rows
}

/// A contact's view (see [`state::State::contact`]) from what a store read: its lists
/// with their properties and update times, whether it is suppressed, the sent counts.
/// One place for how properties merge, so both backends agree.
pub(crate) fn contact_view(
    mut lists: Vec<(String, String, i64)>,
    suppressed: bool,
    sent: &[(String, String, u64)],
) -> Value {
    lists.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    let mut props = serde_json::Map::new();
    for (_, text, _) in &lists {
        if let Ok(Value::Object(p)) = serde_json::from_str::<Value>(text) {
            props.extend(p);
        }
    }
    let mut names: Vec<String> = lists.into_iter().map(|(l, ..)| l).collect();
    names.sort();
    let mut counts = serde_json::Map::new();
    for (kind, period, n) in sent {
        let entry = counts
            .entry(kind.clone())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(m) = entry {
            m.insert(period.clone(), Value::from(*n));
        }
    }
    serde_json::json!({ "lists": names, "props": props, "suppressed": suppressed, "sent": counts })
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// Per event of the batch: the rules that fired for it, planned or decided in the
    /// commit (`None`: a duplicate, skipped).
    pub fired: Vec<Option<Vec<String>>>,
    /// Jobs added, planned at ingest or by stateful rules: the delivery workers are woken
    /// only when there is something for them.
    pub jobs: usize,
}

/// One rule file as it served: the text a rule set version is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    /// The file as shown in messages.
    pub path: String,
    /// Its default rule id (its path under the rules folder, without extension).
    pub id: String,
    /// The hash of its text.
    pub hash: String,
    pub text: String,
}

/// A version of the rule set: its files, and a hash of their hashes. Events record the
/// version that planned them; the store keeps each version's files once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSetVersion {
    pub hash: String,
    pub files: Vec<RuleFile>,
}

impl RuleSetVersion {
    pub fn of(mut files: Vec<RuleFile>) -> Self {
        use sha2::{Digest, Sha256};
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut h = Sha256::new();
        for f in &files {
            h.update(f.path.as_bytes());
            h.update([0]);
            h.update(f.hash.as_bytes());
            h.update([b'\n']);
        }
        Self {
            hash: hex::encode(&h.finalize()[..8]),
            files,
        }
    }
}

/// A leased job, ready to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub key: String,
    pub event_id: String,
    pub rule_id: String,
    pub action_index: u32,
    pub kind: String,
    pub action: Value,
    pub endpoint: Option<String>,
    /// Attempts made so far, this one included.
    pub attempts: u32,
    /// When the job's first attempt began (this one, for a first attempt).
    pub first_attempt_at: DateTime<Utc>,
}

/// A job's action rendered again (retrying a job whose rendering had failed).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub action: Value,
    pub endpoint: Option<String>,
}

/// Which dead jobs a bulk retry takes: all of them, or those of one endpoint or rule.
#[derive(Debug, Clone, Default)]
pub struct DeadFilter {
    pub endpoint: Option<String>,
    pub rule: Option<String>,
}

/// What one attempt did.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response: Option<String>,
}

/// One attempt's result, waiting to be recorded.
#[derive(Debug, Clone)]
pub struct Finished {
    pub job: Job,
    pub attempt: Attempt,
    pub next: Next,
}

impl Finished {
    /// The job's status after this attempt, when it is next due, and the error to keep:
    /// the same in every backend.
    pub fn outcome(&self, now: DateTime<Utc>) -> (&'static str, DateTime<Utc>, Option<&str>) {
        let (status, at) = match &self.next {
            Next::Succeeded => ("succeeded", now),
            Next::Skipped => ("skipped", now),
            Next::Retry(at) => ("pending", *at),
            Next::Dead { .. } => ("dead", now),
        };
        let error = match self.next {
            Next::Succeeded => None,
            _ => self.attempt.error.as_deref(),
        };
        (status, at, error)
    }

    /// Why the endpoint is suspended, when this attempt suspends it.
    pub fn suspension(&self) -> Option<(&str, String)> {
        let Next::Dead { suspend: Some(url) } = &self.next else {
            return None;
        };
        let reason = format!(
            "job {} exhausted its retries: {}",
            self.job.key,
            self.attempt.error.as_deref().unwrap_or("failed")
        );
        Some((url.as_str(), reason))
    }
}

/// What happens to a job after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Succeeded,
    /// Nothing to do, on purpose (every recipient suppressed): recorded, not retried.
    Skipped,
    Retry(DateTime<Utc>),
    /// No more attempts. `suspend` names the endpoint to suspend (retries exhausted).
    Dead {
        suspend: Option<String>,
    },
}

#[derive(Debug, Serialize)]
pub struct EventRow {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub time: String,
    pub received_at: String,
    pub matched: Value,
}

#[derive(Debug, Serialize)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventRow,
    pub payload: Value,
    /// The stateful decisions made for it, as they were made.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub decisions: Value,
    /// The version of the rules that planned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_set: Option<String>,
    pub jobs: Vec<JobDetail>,
}

#[derive(Debug, Serialize)]
pub struct JobRow {
    pub id: i64,
    pub idempotency_key: String,
    pub event_id: String,
    pub rule_id: String,
    pub action_index: u32,
    pub kind: String,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: String,
    pub endpoint: Option<String>,
    pub last_error: Option<String>,
    pub action: Value,
}

#[derive(Debug, Serialize)]
pub struct JobDetail {
    #[serde(flatten)]
    pub job: JobRow,
    pub attempts_made: Vec<AttemptRow>,
}

#[derive(Debug, Serialize)]
pub struct AttemptRow {
    pub number: u32,
    pub started_at: String,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response: Option<String>,
}

#[derive(Debug, Serialize, Clone)]
pub struct EndpointRow {
    pub id: i64,
    pub url: String,
    pub status: String,
    pub suspended_at: Option<String>,
    pub reason: Option<String>,
}

/// A contact-list change, as an action renders it.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactChange {
    Add {
        list: String,
        email: String,
        set: serde_json::Map<String, Value>,
    },
    Remove {
        list: String,
        email: String,
    },
    Update {
        list: String,
        email: String,
        set: serde_json::Map<String, Value>,
    },
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct ContactRow {
    pub email: String,
    pub properties: Value,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct ListRow {
    pub list: String,
    pub contacts: u64,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct SuppressionRow {
    pub email: String,
    pub reason: String,
    pub event_id: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, Default)]
pub struct Stats {
    pub events: u64,
    pub jobs: std::collections::BTreeMap<String, u64>,
    pub endpoints_suspended: u64,
    /// `absent` timers waiting to fire.
    pub timers_pending: u64,
    /// When the pending job due first is (or was) due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_due: Option<String>,
    #[serde(skip)]
    pub oldest_due_ms: Option<i64>,
}

/// Ingest: events in, with their jobs and their stateful decisions, in one transaction.
pub trait Ingest: Send + Sync + 'static {
    /// Writes many events and their jobs in one transaction; per event, the rules that
    /// fired (`None`: a duplicate, not processed again), and how many jobs were added.
    /// Each new event's `stateful` part decides in the same transaction, over the state
    /// it reads and writes ([`state::State`]); its decisions are kept with the event.
    /// State older than `retention` is pruned now and then.
    fn commit(
        &self,
        batch: Vec<NewEvent>,
        retention: state::Retention,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send;

    /// One batch of retention, in one transaction: looks at up to `limit` events after
    /// `after_seq`, in `seq` order, and deletes the ones received before `before` with
    /// their jobs and attempts — except an event with a job still pending or running, or
    /// an `absent` timer waiting on it, which stays for a later pass. Events are received
    /// in `seq` order, so the pass stops at the first one received after `before`
    /// ([`Pruned::next`] is `None`). Call [`prune_journal`] rather than this.
    fn prune_journal(
        &self,
        before: DateTime<Utc>,
        after_seq: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Pruned, StoreError>> + Send;
}

/// What a retention batch deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub jobs: u64,
    pub attempts: u64,
    /// Where the next batch starts (`None`: this pass is done).
    pub next: Option<i64>,
}

/// Events per retention transaction: small enough that ingest, which shares the writer
/// (SQLite) or the locks (PostgreSQL), waits a few milliseconds at most between batches.
pub const PRUNE_BATCH: usize = 500;

/// Deletes the journal older than `before` (see [`Ingest::prune_journal`]), batch after
/// batch, each its own transaction, so ingest goes on between them.
pub async fn prune_journal<S: Ingest>(store: &S, before: DateTime<Utc>) -> Result<Pruned, StoreError> {
    let mut total = Pruned::default();
    let mut after = 0;
    loop {
        let p = store.prune_journal(before, after, PRUNE_BATCH).await?;
        total.events += p.events;
        total.jobs += p.jobs;
        total.attempts += p.attempts;
        match p.next {
            Some(seq) => after = seq,
            None => return Ok(total),
        }
        tokio::task::yield_now().await;
    }
}

/// The job queue: leases, outcomes, retries by hand, endpoints.
pub trait Queue: Send + Sync + 'static {
    /// Takes up to `limit` jobs of `kinds` due at `now` whose endpoint is not suspended
    /// (and jobs whose lease expired), oldest first, and holds them for `lease`. One
    /// transaction. Leases run on `real_now`, the wall clock: they bound a real attempt,
    /// and moving a manual clock must not hand an attempt in flight to a second worker.
    fn lease(
        &self,
        now: DateTime<Utc>,
        real_now: DateTime<Utc>,
        lease: Duration,
        kinds: &[&str],
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;

    /// Puts back in line, due now, the jobs a previous server left `running` (it was
    /// killed mid-attempt): a server owns its store, so no one else holds those leases.
    /// Returns how many. Called once, when the server starts.
    fn release_leases(&self, now: DateTime<Utc>) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Records attempts and moves their jobs on, all in one transaction.
    fn finish(
        &self,
        done: Arc<[Finished]>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// When the next job of `kinds` is due (to sleep exactly that long).
    fn next_due(
        &self,
        kinds: &[&str],
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;

    /// Puts a finished job (succeeded, dead, failed, skipped) back in line now, with a
    /// fresh retry schedule; `rendered` replaces its action (a failed job rendered again).
    /// Whether there was such a job.
    fn retry_job(
        &self,
        id: i64,
        now: DateTime<Utc>,
        rendered: Option<Rendered>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Gives up on a job that has not run or not succeeded (pending, failed, dead): it is
    /// `skipped`, recorded and never attempted. Whether there was such a job.
    fn skip_job(&self, id: i64, now: DateTime<Utc>) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Puts every dead job matching `filter` back in line; how many.
    fn retry_dead(
        &self,
        filter: &DeadFilter,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Whether an attempt to `endpoint` succeeded at `since` or later.
    fn succeeded_since(
        &self,
        endpoint: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Reactivates an endpoint (by id or URL) and requeues the jobs that died on it since
    /// it was suspended; returns the endpoint and how many jobs were requeued.
    fn resume_endpoint(
        &self,
        id_or_url: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<(EndpointRow, u64)>, StoreError>> + Send;
    /// Bumps `wake` whenever another server adds jobs to this store (PostgreSQL:
    /// `LISTEN/NOTIFY`), so idle dispatchers start them in milliseconds rather than at
    /// their next poll; until `wake` is dropped. Where only this server writes jobs
    /// (SQLite), its own commits wake it and there is nothing to do.
    fn listen(&self, wake: std::sync::Weak<tokio::sync::watch::Sender<u64>>);
}

/// `absent` timers that fall due.
pub trait Timers: Send + Sync + 'static {
    /// Fires the `absent` timers due at `now`, each decided by `decide` (their jobs
    /// stored, the timers deleted, in one transaction: none lost, none fired twice);
    /// returns the rule of each that fired and how many timers it took (fired or not).
    fn fire_timers(
        &self,
        now: DateTime<Utc>,
        decide: Arc<dyn state::FireTimers>,
    ) -> impl Future<Output = Result<(Vec<String>, usize), StoreError>> + Send;
    /// When the next timer is due.
    fn next_timer(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;
}

/// Contact lists and the suppression list.
pub trait Lists: Send + Sync + 'static {
    /// Applies a contact-list change; replaying it changes nothing more. Returns what
    /// happened, for the audit trail.
    fn change_contact(
        &self,
        change: &ContactChange,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn lists(&self) -> impl Future<Output = Result<Vec<ListRow>, StoreError>> + Send;
    fn contacts(&self, list: &str) -> impl Future<Output = Result<Vec<ContactRow>, StoreError>> + Send;

    /// Adds an address to the suppression list (the first reason stays); whether it was new.
    fn suppress(
        &self,
        email: &str,
        reason: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn unsuppress(&self, email: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The suppression reason of each of `emails` that is suppressed.
    fn suppressed(
        &self,
        emails: &[String],
    ) -> impl Future<Output = Result<Vec<SuppressionRow>, StoreError>> + Send;
    fn suppressions(&self) -> impl Future<Output = Result<Vec<SuppressionRow>, StoreError>> + Send;

    /// The store-kept key `name`, set to `fresh` by the first caller (on PostgreSQL, the
    /// first server): every server on the store then uses the same one.
    fn key(
        &self,
        name: &str,
        fresh: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
}

/// Read-only queries, for the admin API, the CLI and (later) a dashboard.
pub trait Reads: Send + Sync + 'static {
    /// Whether the store answers now (`/healthz`).
    fn health(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn events(
        &self,
        kind: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<EventRow>, StoreError>> + Send;
    fn event(&self, id: &str) -> impl Future<Output = Result<Option<EventDetail>, StoreError>> + Send;
    /// A stored rule set version's files.
    fn rule_set(&self, hash: &str) -> impl Future<Output = Result<Option<Vec<RuleFile>>, StoreError>> + Send;
    fn jobs(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<JobRow>, StoreError>> + Send;
    fn job(&self, id: i64) -> impl Future<Output = Result<Option<JobRow>, StoreError>> + Send;
    fn endpoints(&self) -> impl Future<Output = Result<Vec<EndpointRow>, StoreError>> + Send;
    fn stats(&self) -> impl Future<Output = Result<Stats, StoreError>> + Send;
}

/// Everything a backend offers. Futures are `Send` so workers and handlers can await them
/// on any runtime thread; parts of the server ask only for the part they use.
pub trait Store: Ingest + Queue + Timers + Lists + Reads {}

impl<S: Ingest + Queue + Timers + Lists + Reads> Store for S {}

/// The address part of `Name <a@b.com>`, lower-cased: how lists and suppressions key.
pub fn address_key(mailbox: &str) -> String {
    let s = mailbox.trim();
    let addr = match (s.rfind('<'), s.ends_with('>')) {
        (Some(open), true) => &s[open + 1..s.len() - 1],
        _ => s,
    };
    addr.trim().to_lowercase()
}

/// Unix milliseconds, the store's time unit.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Back from unix milliseconds.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Unix milliseconds as RFC 3339, for the admin API.
pub fn rfc3339(ms: i64) -> String {
    from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

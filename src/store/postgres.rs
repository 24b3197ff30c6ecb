//! The store on PostgreSQL: any number of hookflow instances on one database.
//!
//! The engine decides stateful rules inside the transaction that stores an event, through
//! the synchronous [`State`](super::state::State) trait, as it does on SQLite. So this
//! backend runs on the synchronous `postgres` client, one connection per thread of a small
//! pool of its own (`pool` threads, never tokio's): a task is a closure run on one of them,
//! and the async trait methods wait for its answer on a oneshot channel.
//!
//! What makes it exact across instances, where SQLite had one writer:
//! - dedupe by the events' unique id (`ON CONFLICT DO NOTHING`: a second instance with the
//!   same id waits for the first's commit, then skips it);
//! - state is guarded by transaction-scoped advisory locks, per correlation key (facts and
//!   timers), per window group and per mark, taken before the state is read: two
//!   instances deciding for the same key are serialised by the database, and each reads
//!   what the other committed (see `state.rs`);
//! - jobs and due timers are taken with `FOR UPDATE SKIP LOCKED`: an instance never waits
//!   for another's batch, and no row is taken twice;
//! - leases name their instance, so a restarted instance takes back only its own; another
//!   instance's expire and are re-leased by whoever is free.
//!
//! A transaction that the database aborts for a deadlock (two batches locking the same
//! keys in opposite orders) or a serialisation failure runs again, whole. A connection
//! that broke is opened again for the next task, so the store recovers by itself when the
//! database comes back; meanwhile every call fails with [`StoreError::Unavailable`].

mod admin;
mod ingest;
mod lists;
mod queue;
mod retention;
mod state;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{GenericClient, NoTls, Row, Statement};

use super::Durability;
use super::state::{FireTimers, Retention};
use super::{
    Committed, ContactChange, ContactRow, DeadFilter, EndpointRow, EventDetail, EventRow, Finished, Ingest,
    Job, JobRow, ListRow, Lists, NewEvent, Queue, Reads, Rendered, RuleFile, Stats, StoreError,
    SuppressionRow, Timers, from_millis,
};
use crate::base::duration::Duration;

/// Schema migrations for PostgreSQL, in order; `hookflow_schema` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_retention.sql"),
    include_str!("../../migrations/postgres/0003_contacts.sql"),
];

/// How many times a transaction the database aborted (deadlock, serialisation) runs again.
const RETRIES: usize = 8;

/// How to reach the database, and how to use it.
#[derive(Debug, Clone, PartialEq)]
pub struct PgConfig {
    /// `postgres://user[:password]@host[:port]/database`, as libpq reads it.
    pub url: String,
    /// The schema hookflow's tables live in (created if missing). Default `public`.
    pub schema: String,
    /// Connections, each on its own thread. Default 4.
    pub pool: usize,
    /// Longest a statement may run before the database cancels it. Default 30 s.
    pub statement_timeout: Duration,
    pub durability: Durability,
    /// This instance's name, written on the leases it takes: at start it takes back its
    /// own leases only. Default `hostname:port`.
    pub instance: String,
    /// Whether the server runs missing migrations at start (default), or only checks that
    /// an operator ran them (`hookflow migrate`), for databases where the server's role
    /// may not change the schema.
    pub migrate: bool,
    /// A hot standby of the same database (streaming replication): the admin API's
    /// listings and reports read there, off the primary. Reads that decide something
    /// (leases, due jobs and timers, suppressions, one job before a retry) stay on the
    /// primary. While the standby cannot answer, its reads go to the primary.
    pub replica: Option<String>,
}

impl PgConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "public".into(),
            pool: 4,
            statement_timeout: Duration::from_secs(30),
            durability: Durability::Full,
            instance: "hookflow".into(),
            migrate: true,
            replica: None,
        }
    }

    /// The URL with its password hidden, for messages.
    pub fn shown(&self) -> String {
        hide_password(&self.url)
    }
}

/// A database URL with its password hidden.
fn hide_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // Class 08: connection exceptions; 57P01-57P03: the server shutting down or
        // starting. Both pass when the database is back.
        let gone = e
            .code()
            .map(|c| c.code().starts_with("08") || ["57P01", "57P02", "57P03"].contains(&c.code()));
        if e.is_closed() || gone == Some(true) || gone.is_none() && is_io(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Db(Box::new(e))
        }
    }
}

/// Whether the error comes from the connection (refused, reset), not from a statement.
fn is_io(e: &postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Whether the database aborted the transaction and running it again may succeed.
fn retryable(e: &StoreError) -> bool {
    let StoreError::Db(inner) = e else {
        return false;
    };
    inner
        .downcast_ref::<postgres::Error>()
        .and_then(postgres::Error::code)
        .is_some_and(|c| *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

/// A runner inside a transaction.
pub(super) type Tx<'a, 't> = Db<'a, postgres::Transaction<'t>>;

/// Statements prepared on one connection, by their SQL.
#[derive(Default)]
pub(super) struct Stmts(HashMap<String, Statement>);

/// One statement runner over a connection or a transaction, with its connection's
/// prepared statements: each SQL text is prepared once per connection.
pub(super) struct Db<'a, C: GenericClient> {
    pub(super) c: &'a mut C,
    stmts: &'a mut Stmts,
}

impl<C: GenericClient> Db<'_, C> {
    fn prepared(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.stmts.0.get(sql) {
            return Ok(s.clone());
        }
        let s = self.c.prepare(sql)?;
        self.stmts.0.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    pub(super) fn exec(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let s = self.prepared(sql)?;
        Ok(self.c.execute(&s, params)?)
    }

    pub(super) fn rows(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let s = self.prepared(sql)?;
        Ok(self.c.query(&s, params)?)
    }

    pub(super) fn opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let s = self.prepared(sql)?;
        Ok(self.c.query_opt(&s, params)?)
    }

    pub(super) fn one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, StoreError> {
        let s = self.prepared(sql)?;
        Ok(self.c.query_one(&s, params)?)
    }
}

/// What every connection of a store shares.
pub(super) struct Shared {
    config: PgConfig,
    /// Rule set versions known to be stored (each is written once).
    rule_sets: Mutex<HashSet<String>>,
    /// Mixed into every advisory lock's key: stores in other schemas of the same
    /// database (tests, tenants) do not wait for each other.
    pub(super) salt: String,
    /// The channel `NOTIFY` wakes dispatchers on when jobs are added.
    pub(super) channel: String,
    /// Ingest commits so far (a retried one counts again), to prune now and then.
    pub(super) commits: std::sync::atomic::AtomicU64,
}

/// One pool thread's connection (`None` while the database cannot be reached).
struct Conn {
    client: Option<postgres::Client>,
    stmts: Stmts,
    /// Whether it is to the replica.
    replica: bool,
}

impl Conn {
    /// The connection (opened again if it broke, to the primary or the replica) and its
    /// prepared statements.
    fn open(&mut self, shared: &Shared) -> Result<(&mut postgres::Client, &mut Stmts), StoreError> {
        let client = client(&mut self.client, &mut self.stmts, shared, self.replica)?;
        Ok((client, &mut self.stmts))
    }
}

/// Threads reading from the replica: admin reads are few and small.
const REPLICA_THREADS: usize = 2;

type Task = Box<dyn FnOnce(&mut Conn, &Shared) + Send>;

#[derive(Clone)]
pub struct PgStore {
    tasks: mpsc::Sender<Task>,
    /// The replica's pool, when there is one.
    replica: Option<mpsc::Sender<Task>>,
    shared: Arc<Shared>,
}

/// Opens a connection to the primary with the store's settings.
fn connect(config: &PgConfig) -> Result<postgres::Client, StoreError> {
    connect_to(config, &config.url)
}

/// Opens a connection to `url` (the primary or the replica) with the store's settings.
fn connect_to(config: &PgConfig, url: &str) -> Result<postgres::Client, StoreError> {
    let mut parsed: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| StoreError::Config(format!("{}: {e}", hide_password(url))))?;
    if parsed.get_application_name().is_none() {
        // Names this server in `pg_stat_activity`.
        parsed.application_name(&format!("hookflow {}", config.instance));
    }
    if parsed.get_connect_timeout().is_none() {
        // A database that does not answer fails the request (503) instead of holding it.
        parsed.connect_timeout(std::time::Duration::from_secs(5));
    }
    let mut client = parsed.connect(NoTls)?;
    let sync = match config.durability {
        Durability::Full => "on",
        // The commit returns before the log reaches disk: a crash of the database's host
        // may lose the last commits (never corrupts), as SQLite's `normal`.
        Durability::Normal => "off",
    };
    client.batch_execute(&format!(
        "SET search_path TO {schema}; SET synchronous_commit TO {sync}; SET statement_timeout TO {ms}",
        schema = quote_ident(&config.schema),
        ms = config.statement_timeout.as_secs() * 1000,
    ))?;
    Ok(client)
}

/// `"name"`, quotes doubled: an identifier however it is spelled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the schema if needed and runs the migrations it lacks (`apply`), one instance
/// at a time; or only reads the version, changing nothing.
fn migrate(config: &PgConfig, salt: &str, apply: bool) -> Result<super::Migration, StoreError> {
    let mut client = connect(config)?;
    let mut tx = client.transaction()?;
    let known = MIGRATIONS.len() as i64;
    let read = |tx: &mut postgres::Transaction| -> Result<i64, StoreError> {
        Ok(tx
            .query_opt("SELECT version FROM hookflow_schema", &[])?
            .map_or(0, |r| r.get(0)))
    };
    if !apply {
        // `to_regclass` looks in the search path: the configured schema only.
        let exists: bool = tx
            .query_one("SELECT to_regclass('hookflow_schema') IS NOT NULL", &[])?
            .get(0);
        let from = if exists { read(&mut tx)? } else { 0 };
        return super::Migration::found(from, known);
    }
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&lock_id("migrate", salt, "")],
    )?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS hookflow_schema (version BIGINT NOT NULL);",
        schema = quote_ident(&config.schema)
    ))?;
    let found = super::Migration::found(read(&mut tx)?, known)?;
    for sql in &MIGRATIONS[found.from as usize..] {
        tx.batch_execute(sql)?;
    }
    tx.execute("DELETE FROM hookflow_schema", &[])?;
    tx.execute("INSERT INTO hookflow_schema (version) VALUES ($1)", &[&known])?;
    tx.commit()?;
    Ok(found.applied())
}

/// [`migrate`] on a thread of its own (the synchronous client runs its own runtime),
/// awaited without holding up one of tokio's.
pub(super) async fn migrate_database(config: &PgConfig, apply: bool) -> Result<super::Migration, StoreError> {
    let salt = salt(config);
    let config = config.clone();
    let (done, migrated) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("hookflow-pg-migrate".into())
        .spawn(move || {
            let _ = done.send(migrate(&config, &salt, apply));
        })
        .map_err(StoreError::Thread)?;
    migrated.await.map_err(|_| StoreError::Closed)?
}

/// What makes lock ids and the notification channel this database's and schema's own.
fn salt(config: &PgConfig) -> String {
    format!("{}\0{}", config.url, config.schema)
}

/// A stable 64-bit advisory lock id for `(what, salt, key)`: the same in every instance
/// and every build (a hash of the bytes, not Rust's randomised hasher).
pub(super) fn lock_id(what: &str, salt: &str, key: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [what, salt, key] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Runs tasks from the shared queue until every store handle is dropped.
fn run_pool_thread(tasks: Arc<Mutex<mpsc::Receiver<Task>>>, shared: Arc<Shared>, replica: bool) {
    let mut conn = Conn {
        client: None,
        stmts: Stmts::default(),
        replica,
    };
    loop {
        let task = {
            let rx = tasks.lock().unwrap_or_else(PoisonError::into_inner);
            rx.recv()
        };
        let Ok(task) = task else { return };
        if conn.client.as_ref().is_some_and(postgres::Client::is_closed) {
            conn.client = None;
        }
        let run = std::panic::AssertUnwindSafe(|| task(&mut conn, &shared));
        if std::panic::catch_unwind(run).is_err() {
            // Whatever the connection was doing is abandoned: start over with a new one.
            conn.client = None;
            tracing::error!("a store task panicked; its transaction was rolled back");
        }
    }
}

impl PgStore {
    /// Connects, brings the schema up to date and starts the pool's threads.
    pub async fn open(config: PgConfig) -> Result<Self, StoreError> {
        let salt = salt(&config);
        let channel = format!(
            "hookflow_jobs_{}",
            &hex::encode(lock_id("notify", &salt, "").to_be_bytes())[..8]
        );
        let shared = Arc::new(Shared {
            config,
            rule_sets: Mutex::new(HashSet::new()),
            salt,
            channel,
            commits: Default::default(),
        });
        let m = migrate_database(&shared.config, shared.config.migrate).await?;
        if m.to < m.known {
            return Err(StoreError::Behind {
                found: m.to,
                known: m.known,
            });
        }
        let tasks = pool(&shared, shared.config.pool.max(1), false)?;
        let replica = match shared.config.replica {
            Some(_) => Some(pool(&shared, REPLICA_THREADS, true)?),
            None => None,
        };
        Ok(Self {
            tasks,
            replica,
            shared,
        })
    }

    /// The channel a `LISTEN` hears when jobs are added.
    pub fn notify_channel(&self) -> &str {
        &self.shared.channel
    }

    /// Runs `f` on a pool connection to the primary, outside a transaction (reads).
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db<'_, postgres::Client>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.read_on(&self.tasks, f).await
    }

    /// Runs `f` on a connection of the pool `tasks` feeds, outside a transaction.
    async fn read_on<T: Send + 'static>(
        &self,
        tasks: &mpsc::Sender<Task>,
        f: impl FnOnce(&mut Db<'_, postgres::Client>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        run_on(tasks, move |conn, shared| {
            let out = conn.open(shared).and_then(|(c, stmts)| f(&mut Db { c, stmts }));
            if matches!(out, Err(StoreError::Unavailable(_))) {
                conn.client = None;
            }
            out
        })
        .await
    }

    /// Runs `f` on the replica if there is one, else (or when it cannot answer) on the
    /// primary: for the admin API's reads, which may lag the primary by the
    /// replication delay.
    async fn admin_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db<'_, postgres::Client>) -> Result<T, StoreError> + Clone + Send + 'static,
    ) -> Result<T, StoreError> {
        if let Some(replica) = &self.replica {
            // Unreachable, behind on the schema (just migrated), or a query cancelled by
            // a conflict with recovery: the primary answers instead. Reads repeat safely.
            match self.read_on(replica, f.clone()).await {
                Err(e) => tracing::warn!("the replica cannot answer ({e}); reading from the primary"),
                out => return out,
            }
        }
        self.read(f).await
    }

    /// Runs `f` in a transaction on a pool connection, committed when it returns `Ok` and
    /// rolled back otherwise; run again when the database aborted it for a deadlock.
    async fn transaction<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Db<'_, postgres::Transaction<'_>>, &Shared) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.run(move |conn, shared| {
            let mut tries = 0;
            loop {
                let out = (|| {
                    let (client, stmts) = conn.open(shared)?;
                    let mut tx = client.transaction()?;
                    let mut db = Db { c: &mut tx, stmts };
                    let out = f(&mut db, shared)?;
                    tx.commit()?;
                    Ok(out)
                })();
                match out {
                    Err(e) if retryable(&e) && tries < RETRIES => {
                        tries += 1;
                        tracing::debug!("transaction aborted by the database ({e}); running it again");
                    }
                    Err(e) => {
                        if matches!(e, StoreError::Unavailable(_)) {
                            // Opened again, its statements with it, by the next task.
                            conn.client = None;
                        }
                        return Err(e);
                    }
                    Ok(out) => return Ok(out),
                }
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn, &Shared) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        run_on(&self.tasks, f).await
    }
}

/// Starts `threads` pool threads (to the replica or the primary) and returns their queue.
fn pool(shared: &Arc<Shared>, threads: usize, replica: bool) -> Result<mpsc::Sender<Task>, StoreError> {
    let (tx, rx) = mpsc::channel::<Task>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..threads {
        let (rx, shared) = (rx.clone(), shared.clone());
        std::thread::Builder::new()
            .name(format!(
                "hookflow-pg{}-{i}",
                if replica { "-replica" } else { "" }
            ))
            .spawn(move || run_pool_thread(rx, shared, replica))
            .map_err(StoreError::Thread)?;
    }
    Ok(tx)
}

/// Runs `f` on a thread of the pool `tasks` feeds and waits for its answer.
async fn run_on<T: Send + 'static>(
    tasks: &mpsc::Sender<Task>,
    f: impl FnOnce(&mut Conn, &Shared) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tasks
        .send(Box::new(move |conn: &mut Conn, shared: &Shared| {
            let _ = tx.send(f(conn, shared));
        }))
        .map_err(|_| StoreError::Closed)?;
    rx.await.map_err(|_| StoreError::Closed)?
}

/// The connection, opened again if it broke (its prepared statements with it).
fn client<'c>(
    client: &'c mut Option<postgres::Client>,
    stmts: &mut Stmts,
    shared: &Shared,
    replica: bool,
) -> Result<&'c mut postgres::Client, StoreError> {
    if client.is_none() {
        stmts.0.clear();
    }
    let config = &shared.config;
    let url = match (&config.replica, replica) {
        (Some(url), true) => url,
        _ => &config.url,
    };
    match client {
        Some(c) => Ok(c),
        None => Ok(client.insert(connect_to(config, url)?)),
    }
}

/// A JSON column stored by hookflow as text, read back.
pub(super) fn json_text(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Ingest for PgStore {
    async fn commit(&self, batch: Vec<NewEvent>, retention: Retention) -> Result<Committed, StoreError> {
        let batch = Arc::new(batch);
        let b = batch.clone();
        let committed = self
            .transaction(move |db, shared| ingest::commit(db, shared, &b, retention))
            .await;
        if committed.is_ok() {
            let mut known = self
                .shared
                .rule_sets
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for item in batch.iter() {
                known.insert(item.rule_set.hash.clone());
            }
        }
        committed
    }

    async fn prune_journal(
        &self,
        before: DateTime<Utc>,
        after_seq: i64,
        limit: usize,
    ) -> Result<super::Pruned, StoreError> {
        let before = super::millis(before);
        self.transaction(move |db, _| retention::prune_journal(db, before, after_seq, limit))
            .await
    }
}

impl Queue for PgStore {
    async fn lease(
        &self,
        now: DateTime<Utc>,
        real_now: DateTime<Utc>,
        lease: Duration,
        kinds: &[&str],
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        self.transaction(move |db, shared| {
            queue::lease(db, &shared.config.instance, now, real_now, lease, &kinds, limit)
        })
        .await
    }

    async fn release_leases(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.transaction(move |db, shared| {
            db.exec(
                "UPDATE jobs SET status = 'pending', lease_until = NULL, leased_by = NULL, next_attempt_at = $1,
                        updated_at = $1
                 WHERE status = 'running' AND leased_by = $2",
                &[&super::millis(now), &shared.config.instance],
            )
        })
        .await
    }

    async fn finish(&self, done: Arc<[Finished]>, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.transaction(move |db, _| queue::finish(db, &done, now)).await
    }

    async fn next_due(&self, kinds: &[&str]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        self.read(move |db| queue::next_due(db, &kinds)).await
    }

    async fn retry_job(
        &self,
        id: i64,
        now: DateTime<Utc>,
        rendered: Option<Rendered>,
    ) -> Result<bool, StoreError> {
        self.transaction(move |db, _| queue::retry_job(db, id, now, rendered.as_ref()))
            .await
    }

    async fn skip_job(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.transaction(move |db, _| queue::skip_job(db, id, now)).await
    }

    async fn retry_dead(&self, filter: &DeadFilter, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let filter = filter.clone();
        self.transaction(move |db, _| queue::retry_dead(db, &filter, now))
            .await
    }

    async fn succeeded_since(&self, endpoint: &str, since: DateTime<Utc>) -> Result<bool, StoreError> {
        let endpoint = endpoint.to_owned();
        self.read(move |db| {
            let last: Option<i64> = db
                .opt(
                    "SELECT last_success_at FROM endpoints WHERE url = $1",
                    &[&endpoint],
                )?
                .and_then(|r| r.get(0));
            Ok(last.is_some_and(|t| t >= super::millis(since)))
        })
        .await
    }

    async fn resume_endpoint(
        &self,
        id_or_url: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(EndpointRow, u64)>, StoreError> {
        let id_or_url = id_or_url.to_owned();
        self.transaction(move |db, _| queue::resume_endpoint(db, &id_or_url, now))
            .await
    }

    fn listen(&self, wake: std::sync::Weak<tokio::sync::watch::Sender<u64>>) {
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("hookflow-pg-listen".into())
            .spawn(move || listen(&shared, &wake));
        if let Err(e) = spawned {
            tracing::warn!("cannot listen for other servers' jobs (they start at the next poll): {e}");
        }
    }
}

/// Bumps `wake` on every `NOTIFY` of the store's channel, reconnecting when the
/// connection breaks, until `wake` is dropped.
fn listen(shared: &Shared, wake: &std::sync::Weak<tokio::sync::watch::Sender<u64>>) {
    let mut failing = false;
    while wake.strong_count() > 0 {
        let listening = connect(&shared.config).and_then(|mut c| {
            c.batch_execute(&format!("LISTEN {}", quote_ident(&shared.channel)))?;
            Ok(c)
        });
        let mut client = match listen_listening_or(listening, &mut failing) {
            Some(c) => c,
            None => {
                std::thread::sleep(std::time::Duration::from_secs(1));
                continue;
            }
        };
        let mut notes = client.notifications();
        loop {
            // Wakes every second to see whether the server is still there.
            let mut broken = false;
            let mut notes_now = notes.timeout_iter(std::time::Duration::from_secs(1));
            loop {
                use fallible_iterator::FallibleIterator;
                match notes_now.next() {
                    // At once: a timeout iterator waits out its second after a note.
                    // This instance's own commits woke its dispatcher already.
                    Ok(Some(note)) if note.payload() == shared.config.instance => {}
                    Ok(Some(_)) => match wake.upgrade() {
                        Some(w) => w.send_modify(|g| *g += 1),
                        None => return,
                    },
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!("listening connection lost: {e}");
                        broken = true;
                        break;
                    }
                }
            }
            if wake.strong_count() == 0 {
                return;
            }
            if broken {
                break;
            }
        }
    }
}

/// The listening connection, or `None` (logged once per outage).
fn listen_listening_or(
    listening: Result<postgres::Client, StoreError>,
    failing: &mut bool,
) -> Option<postgres::Client> {
    match listening {
        Ok(c) => {
            if std::mem::take(failing) {
                tracing::info!("listening for other servers' jobs again");
            }
            Some(c)
        }
        Err(e) => {
            if !std::mem::replace(failing, true) {
                tracing::warn!("cannot listen for other servers' jobs (they start at the next poll): {e}");
            }
            None
        }
    }
}

impl Timers for PgStore {
    async fn fire_timers(
        &self,
        now: DateTime<Utc>,
        decide: Arc<dyn FireTimers>,
    ) -> Result<(Vec<String>, usize), StoreError> {
        self.transaction(move |db, shared| ingest::fire_timers(db, shared, &*decide, now))
            .await
    }

    async fn next_timer(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|db| {
            let ms: Option<i64> = db.one("SELECT MIN(due_at) FROM timers", &[])?.get(0);
            Ok(ms.map(from_millis))
        })
        .await
    }
}

impl Lists for PgStore {
    async fn change_contact(&self, change: &ContactChange, now: DateTime<Utc>) -> Result<String, StoreError> {
        let change = change.clone();
        self.transaction(move |db, _| lists::change_contact(db, &change, now))
            .await
    }

    async fn lists(&self) -> Result<Vec<ListRow>, StoreError> {
        self.admin_read(lists::lists).await
    }

    async fn contacts(&self, list: &str) -> Result<Vec<ContactRow>, StoreError> {
        let list = list.to_owned();
        self.admin_read(move |db| lists::contacts(db, &list)).await
    }

    async fn suppress(
        &self,
        email: &str,
        reason: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (email, reason, event_id) = (email.to_owned(), reason.to_owned(), event_id.map(str::to_owned));
        self.transaction(move |db, _| lists::suppress(db, &email, &reason, event_id.as_deref(), now))
            .await
    }

    async fn unsuppress(&self, email: &str) -> Result<bool, StoreError> {
        let email = email.to_owned();
        self.transaction(move |db, _| lists::unsuppress(db, &email)).await
    }

    async fn key(&self, name: &str, fresh: &str, now: DateTime<Utc>) -> Result<String, StoreError> {
        let (name, fresh) = (name.to_owned(), fresh.to_owned());
        self.transaction(move |db, _| lists::key(db, &name, &fresh, now))
            .await
    }

    async fn suppressed(&self, emails: &[String]) -> Result<Vec<SuppressionRow>, StoreError> {
        let emails = emails.to_vec();
        self.read(move |db| lists::suppressed(db, &emails)).await
    }

    async fn suppressions(&self) -> Result<Vec<SuppressionRow>, StoreError> {
        self.admin_read(lists::suppressions).await
    }
}

impl Reads for PgStore {
    async fn health(&self) -> Result<(), StoreError> {
        self.read(|db| {
            db.c.simple_query("SELECT 1")?;
            Ok(())
        })
        .await
    }

    async fn events(&self, kind: Option<&str>, limit: u32) -> Result<Vec<EventRow>, StoreError> {
        let kind = kind.map(str::to_owned);
        self.admin_read(move |db| admin::events(db, kind.as_deref(), limit))
            .await
    }

    async fn event(&self, id: &str) -> Result<Option<EventDetail>, StoreError> {
        let id = id.to_owned();
        self.admin_read(move |db| admin::event(db, &id)).await
    }

    async fn rule_set(&self, hash: &str) -> Result<Option<Vec<RuleFile>>, StoreError> {
        let hash = hash.to_owned();
        self.admin_read(move |db| admin::rule_set(db, &hash)).await
    }

    async fn jobs(&self, status: Option<&str>, limit: u32) -> Result<Vec<JobRow>, StoreError> {
        let status = status.map(str::to_owned);
        self.admin_read(move |db| admin::jobs(db, status.as_deref(), limit))
            .await
    }

    async fn job(&self, id: i64) -> Result<Option<JobRow>, StoreError> {
        self.read(move |db| admin::job(db, id)).await
    }

    async fn endpoints(&self) -> Result<Vec<EndpointRow>, StoreError> {
        self.admin_read(admin::endpoints).await
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        self.admin_read(admin::stats).await
    }
}

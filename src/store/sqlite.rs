//! The embedded store: one SQLite file in WAL mode.
//!
//! SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
//! growing steps (its busy handler). So every write of this process runs on one thread
//! that owns the only writing connection: writes queue on a channel instead of sleeping,
//! and that thread keeps its prepared statements across transactions. A group commit of
//! hundreds of events is then a few microseconds per statement, with no hand-off between
//! threads per statement. Reads (the admin API, `next_due`, suppression checks) run on a
//! few read-only connections on tokio's blocking threads; WAL lets them read while the
//! writer writes.

mod admin;
mod ingest;
mod lists;
mod queue;
mod retention;
mod state;
mod windows;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::Durability;
use super::state::{FireTimers, Retention};
use super::{
    Committed, ContactChange, ContactRow, DeadFilter, EndpointRow, EventDetail, EventRow, Finished, Ingest,
    Job, JobRow, ListRow, Lists, NewEvent, Queue, Reads, Rendered, RuleFile, Stats, StoreError,
    SuppressionRow, Timers, from_millis,
};
use crate::base::duration::Duration;

/// Schema migrations, in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_lists.sql"),
    include_str!("../../migrations/0003_state.sql"),
    include_str!("../../migrations/0004_timers.sql"),
    include_str!("../../migrations/0005_job_indexes.sql"),
    include_str!("../../migrations/0006_endpoint_health.sql"),
    include_str!("../../migrations/0007_decisions.sql"),
    include_str!("../../migrations/0008_retention.sql"),
    include_str!("../../migrations/0009_contacts.sql"),
];

/// How long a connection waits for another process's lock (a CLI command beside the
/// server) before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Idle read connections kept open.
const READERS: usize = 4;

/// Prepared statements each connection keeps (the writer uses about thirty).
const STATEMENT_CACHE: usize = 64;

/// Work for the writer thread.
type Task = Box<dyn FnOnce(&mut Writer) + Send>;

/// The writer thread's state.
pub(super) struct Writer {
    conn: Connection,
    /// Commits so far, to prune expired state every `PRUNE_EVERY` of them.
    commits: u64,
    /// Threshold windows, as committed.
    windows: windows::Windows,
    /// Rule set versions known to be stored (each is written once).
    rule_sets: std::collections::HashSet<String>,
}

/// Read-only connections, opened on demand and kept for reuse.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

#[derive(Clone)]
pub struct SqliteStore {
    writer: mpsc::Sender<Task>,
    readers: Arc<Readers>,
    /// `<store>.lock`, held by the server that owns the store.
    _lock: Option<Arc<std::fs::File>>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(Box::new(e))
    }
}

/// Takes `<store>.lock`: a server owns its store (it takes back the leases of jobs left in
/// flight when it starts), so a second one must not start on it. The operating system
/// drops the lock when the process ends, `kill -9` included.
fn lock(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(StoreError::Lock)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .map_err(StoreError::Lock)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse(path.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Lock(e)),
    }
}

/// The checkpoint thread starts copying the write-ahead log into the database once the
/// log holds this many pages (16 MiB). SQLite's default is 1,000; a longer log means a
/// page written by many commits (an index's last leaf, its parents) is copied once per
/// checkpoint instead of four times: measured, 10% more events per second under load.
const CHECKPOINT_PAGES: i64 = 4000;

/// The writer finishes the checkpoint itself past this many pages. A checkpoint running
/// beside a busy writer never catches up with the last commits, and the log only starts
/// over from its beginning once a checkpoint has copied all of it: without this the log
/// would grow for as long as the load lasts. By then the checkpoint thread has copied
/// nearly all of it, so the writer copies only the rest.
const RESTART_PAGES: i64 = 4 * CHECKPOINT_PAGES;

impl SqliteStore {
    /// [`SqliteStore::open`], as its owner (the server: holding `<store>.lock`) or beside one.
    pub async fn open_as(
        path: &Path,
        durability: Durability,
        access: super::Access,
    ) -> Result<Self, StoreError> {
        let lock = match access {
            super::Access::Owner => Some(Arc::new(lock(path)?)),
            super::Access::Beside => None,
        };
        let mut store = Self::open(path, durability).await?;
        store._lock = lock;
        Ok(store)
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        create_folder(path)?;
        let owned = path.to_owned();
        let (grown, checkpoints) = mpsc::sync_channel::<()>(1);
        let conn = tokio::task::spawn_blocking(move || open_writer(&owned, durability, grown))
            .await
            .map_err(|_| StoreError::Closed)??;
        let checkpointer = open_checkpointer(path)?;
        let (writer, tasks) = mpsc::channel::<Task>();
        let spawned = std::thread::Builder::new()
            .name("hookflow-store".into())
            .spawn(move || {
                run_writer(
                    Writer {
                        conn,
                        commits: 0,
                        windows: Default::default(),
                        rule_sets: Default::default(),
                    },
                    tasks,
                )
            })
            .and_then(|_| {
                std::thread::Builder::new()
                    .name("hookflow-checkpoint".into())
                    .spawn(move || run_checkpointer(checkpointer, checkpoints))
            });
        spawned.map_err(StoreError::Thread)?;
        Ok(Self {
            writer,
            readers: Arc::new(Readers {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
            _lock: None,
        })
    }

    /// Runs `f` on the writer thread and waits for its result.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(Box::new(move |w: &mut Writer| {
                let _ = tx.send(f(w));
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` in one immediate transaction on the writer thread, committed when it
    /// returns `Ok` and rolled back otherwise.
    async fn transaction<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write(move |w| {
            let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` on a read-only connection on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let idle = readers.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match idle {
                Some(c) => c,
                None => open_reader(&readers.path)?,
            };
            let out = f(&conn);
            let mut idle = readers.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < READERS {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

/// Runs tasks until every `SqliteStore` handle is dropped. A task that panics loses its
/// own answer (its caller sees `Closed`), not the thread: its transaction rolls back.
fn run_writer(mut writer: Writer, tasks: mpsc::Receiver<Task>) {
    while let Ok(task) = tasks.recv() {
        let run = std::panic::AssertUnwindSafe(|| task(&mut writer));
        if std::panic::catch_unwind(run).is_err() {
            // The copies may hold what the transaction that rolled back wrote.
            writer.windows.clear();
            writer.rule_sets.clear();
            tracing::error!("a store task panicked; its transaction was rolled back");
        }
    }
}

/// The writing connection. `grown` wakes the checkpoint thread.
fn open_writer(
    path: &Path,
    durability: Durability,
    grown: mpsc::SyncSender<()>,
) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    reuse_plans(&conn)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // `journal_mode` answers with the mode it set, so it is read as a query.
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Checkpoints (copying the log back into the database file, and its fsync) run on
    // their own thread and connection, so the writer only appends to the log.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.wal_hook(Some(
        move |wal: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            let pages = i64::from(pages);
            if pages >= RESTART_PAGES {
                // Busy when the checkpoint thread is at it: then the next commit tries again.
                // An error here would fail a statement whose commit already happened.
                if let Err(e) = wal.checkpoint() {
                    tracing::debug!("checkpoint by the writer deferred: {e}");
                }
            } else if pages >= CHECKPOINT_PAGES {
                // Full means a wake-up is already pending.
                let _ = grown.try_send(());
            }
            Ok(())
        },
    ))?;
    migrate(&mut conn, true)?;
    Ok(conn)
}

/// Turns on SQLite's query planner stability guarantee. Without it, SQLite peeks at the
/// values bound to some parameters (a `LIMIT ?`, an `x = ?` that may be 0 or 1) while
/// planning, and plans the statement again whenever such a value changes: measured, a
/// sixth of the writer's time under load went to re-preparing cached statements. Every
/// query here has one good plan through its index, whatever the values.
fn reuse_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

fn open_checkpointer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

/// Checkpoints whenever the writer says the log has grown past `CHECKPOINT_PAGES`.
/// PASSIVE: it never blocks the writer or readers, and does what it can; the writer
/// restarts the log from its beginning once a checkpoint has copied all of it.
fn run_checkpointer(conn: Connection, grown: mpsc::Receiver<()>) {
    while grown.recv().is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!("checkpoint failed (retried when the log grows again): {e}");
        }
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags =
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    reuse_plans(&conn)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Runs the migrations the database lacks (`apply`), or only reads its version.
fn migrate(conn: &mut Connection, apply: bool) -> Result<super::Migration, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let found = super::Migration::found(from, MIGRATIONS.len() as i64)?;
    if !apply {
        return Ok(found);
    }
    for sql in &MIGRATIONS[from as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", found.known)?;
    tx.commit()?;
    Ok(found.applied())
}

/// The folder the database file goes in.
fn create_folder(path: &Path) -> Result<(), StoreError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
            path: dir.display().to_string(),
            source,
        }),
        None => Ok(()),
    }
}

/// [`super::migrate`] on a SQLite file. Only checking never creates the file.
pub(super) async fn migrate_file(path: &Path, apply: bool) -> Result<super::Migration, StoreError> {
    if !apply && !path.exists() {
        return super::Migration::found(0, MIGRATIONS.len() as i64);
    }
    if apply {
        create_folder(path)?;
    }
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        migrate(&mut conn, apply)
    })
    .await
    .map_err(|_| StoreError::Closed)?
}

/// A JSON column stored by hookflow, read back inside a row mapper. Text that does not
/// parse is a conversion failure carrying `StoreError::Corrupt`.
fn json_column<I: rusqlite::RowIndex>(
    r: &rusqlite::Row<'_>,
    column: I,
) -> rusqlite::Result<serde_json::Value> {
    let text: String = r.get(column)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(StoreError::Corrupt(e.to_string())),
        )
    })
}

/// `'a','b'` for an SQL `IN (…)`; only lower-case ASCII names (job kinds) pass.
fn in_list(kinds: &[&str]) -> String {
    kinds
        .iter()
        .filter(|k| k.bytes().all(|b| b.is_ascii_lowercase()))
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Ingest for SqliteStore {
    async fn commit(&self, batch: Vec<NewEvent>, retention: Retention) -> Result<Committed, StoreError> {
        let (committed, batch) = self
            .write(move |w| {
                w.commits += 1;
                let prune = w.commits % ingest::PRUNE_EVERY == 1;
                let done = (|| {
                    let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let committed =
                        ingest::commit(&tx, &batch, retention, prune, &mut w.windows, &mut w.rule_sets)?;
                    tx.commit()?;
                    Ok::<_, StoreError>(committed)
                })();
                if done.is_err() {
                    // The windows' copy may hold counts, and the known rule sets versions,
                    // that were rolled back.
                    w.windows.clear();
                    w.rule_sets.clear();
                }
                // Freed by the caller: the writer's time is the store's throughput.
                Ok((done?, batch))
            })
            .await?;
        drop(batch);
        Ok(committed)
    }

    async fn prune_journal(
        &self,
        before: DateTime<Utc>,
        after_seq: i64,
        limit: usize,
    ) -> Result<super::Pruned, StoreError> {
        let before = super::millis(before);
        self.transaction(move |tx| retention::prune_journal(tx, before, after_seq, limit))
            .await
    }
}

impl Queue for SqliteStore {
    async fn lease(
        &self,
        now: DateTime<Utc>,
        real_now: DateTime<Utc>,
        lease: Duration,
        kinds: &[&str],
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let kinds = in_list(kinds);
        self.transaction(move |tx| queue::lease(tx, now, real_now, lease, &kinds, limit))
            .await
    }

    async fn release_leases(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.transaction(move |tx| {
            let n = tx.execute(
                "UPDATE jobs SET status = 'pending', lease_until = NULL, next_attempt_at = ?1, updated_at = ?1
                 WHERE status = 'running'",
                [super::millis(now)],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn finish(&self, done: Arc<[Finished]>, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.transaction(move |tx| queue::finish(tx, &done, now)).await
    }

    async fn next_due(&self, kinds: &[&str]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let kinds = in_list(kinds);
        self.read(move |conn| queue::next_due(conn, &kinds)).await
    }

    async fn retry_job(
        &self,
        id: i64,
        now: DateTime<Utc>,
        rendered: Option<Rendered>,
    ) -> Result<bool, StoreError> {
        self.transaction(move |tx| queue::retry_job(tx, id, now, rendered.as_ref()))
            .await
    }

    async fn skip_job(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.transaction(move |tx| queue::skip_job(tx, id, now)).await
    }

    async fn retry_dead(&self, filter: &DeadFilter, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let filter = filter.clone();
        self.transaction(move |tx| queue::retry_dead(tx, &filter, now))
            .await
    }

    async fn succeeded_since(&self, endpoint: &str, since: DateTime<Utc>) -> Result<bool, StoreError> {
        let endpoint = endpoint.to_owned();
        self.read(move |conn| {
            let last: Option<Option<i64>> = conn
                .prepare_cached("SELECT last_success_at FROM endpoints WHERE url = ?")?
                .query_row([endpoint], |r| r.get(0))
                .optional()?;
            Ok(last.flatten().is_some_and(|t| t >= super::millis(since)))
        })
        .await
    }

    async fn resume_endpoint(
        &self,
        id_or_url: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(EndpointRow, u64)>, StoreError> {
        let id_or_url = id_or_url.to_owned();
        self.transaction(move |tx| queue::resume_endpoint(tx, &id_or_url, now))
            .await
    }

    fn listen(&self, _: std::sync::Weak<tokio::sync::watch::Sender<u64>>) {}
}

impl Timers for SqliteStore {
    async fn fire_timers(
        &self,
        now: DateTime<Utc>,
        decide: Arc<dyn FireTimers>,
    ) -> Result<(Vec<String>, usize), StoreError> {
        self.write(move |w| {
            let done = (|| {
                let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let fired = ingest::fire_timers(&tx, &*decide, now, &mut w.windows)?;
                tx.commit()?;
                Ok::<_, StoreError>(fired)
            })();
            if done.is_err() {
                w.windows.clear();
            }
            done
        })
        .await
    }

    async fn next_timer(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|conn| {
            let ms: Option<i64> = conn
                .prepare_cached("SELECT MIN(due_at) FROM timers")?
                .query_row([], |r| r.get(0))
                .optional()?
                .flatten();
            Ok(ms.map(from_millis))
        })
        .await
    }
}

impl Lists for SqliteStore {
    async fn change_contact(&self, change: &ContactChange, now: DateTime<Utc>) -> Result<String, StoreError> {
        let change = change.clone();
        self.transaction(move |tx| lists::change_contact(tx, &change, now))
            .await
    }

    async fn lists(&self) -> Result<Vec<ListRow>, StoreError> {
        self.read(lists::lists).await
    }

    async fn contacts(&self, list: &str) -> Result<Vec<ContactRow>, StoreError> {
        let list = list.to_owned();
        self.read(move |conn| lists::contacts(conn, &list)).await
    }

    async fn suppress(
        &self,
        email: &str,
        reason: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (email, reason, event_id) = (email.to_owned(), reason.to_owned(), event_id.map(str::to_owned));
        self.transaction(move |tx| lists::suppress(tx, &email, &reason, event_id.as_deref(), now))
            .await
    }

    async fn unsuppress(&self, email: &str) -> Result<bool, StoreError> {
        let email = email.to_owned();
        self.transaction(move |tx| lists::unsuppress(tx, &email)).await
    }

    async fn suppressed(&self, emails: &[String]) -> Result<Vec<SuppressionRow>, StoreError> {
        let emails = emails.to_vec();
        self.read(move |conn| lists::suppressed(conn, &emails)).await
    }

    async fn suppressions(&self) -> Result<Vec<SuppressionRow>, StoreError> {
        self.read(lists::suppressions).await
    }

    async fn key(&self, name: &str, fresh: &str, now: DateTime<Utc>) -> Result<String, StoreError> {
        let (name, fresh) = (name.to_owned(), fresh.to_owned());
        self.transaction(move |tx| lists::key(tx, &name, &fresh, now))
            .await
    }
}

impl Reads for SqliteStore {
    async fn health(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn events(&self, kind: Option<&str>, limit: u32) -> Result<Vec<EventRow>, StoreError> {
        let kind = kind.map(str::to_owned);
        self.read(move |conn| admin::events(conn, kind.as_deref(), limit))
            .await
    }

    async fn event(&self, id: &str) -> Result<Option<EventDetail>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| admin::event(conn, &id)).await
    }

    async fn rule_set(&self, hash: &str) -> Result<Option<Vec<RuleFile>>, StoreError> {
        let hash = hash.to_owned();
        self.read(move |conn| admin::rule_set(conn, &hash)).await
    }

    async fn jobs(&self, status: Option<&str>, limit: u32) -> Result<Vec<JobRow>, StoreError> {
        let status = status.map(str::to_owned);
        self.read(move |conn| admin::jobs(conn, status.as_deref(), limit))
            .await
    }

    async fn job(&self, id: i64) -> Result<Option<JobRow>, StoreError> {
        self.read(move |conn| admin::job(conn, id)).await
    }

    async fn endpoints(&self) -> Result<Vec<EndpointRow>, StoreError> {
        self.read(admin::endpoints).await
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        self.read(admin::stats).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store left at schema version 3 (timers keyed by rule and event) keeps its pending
    /// timers through migration 4, and they stay due at the same time.
    #[tokio::test]
    async fn pending_timers_survive_migration_4() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..3] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute_batch(
                "INSERT INTO events (id, source, type, time, received_at, payload, matched)
                     VALUES ('e1', 'mailjet', 'sent', 1000, 1000, '{}', '[]'), ('e2', 'mailjet', 'sent', 1000, 1000, '{}', '[]');
                 INSERT INTO timers (rule_id, event_id, key, start, due_at)
                     VALUES ('r', 'e1', 'k1', 1000, 5000), ('r', 'e2', 'k2', 1000, 3000);",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path, Durability::Full).await.unwrap();
        assert_eq!(store.next_timer().await.unwrap(), Some(from_millis(3000)));
        let (version, rows): (i64, Vec<(String, i64)>) = store
            .read(|conn| {
                let v = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                let mut stmt = conn.prepare(
                    "SELECT e.id, t.due_at FROM timers t JOIN events e ON e.seq = t.event_seq ORDER BY t.due_at",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok((v, rows.collect::<Result<_, _>>()?))
            })
            .await
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        assert_eq!(rows, vec![("e2".to_owned(), 3000), ("e1".to_owned(), 5000)]);
    }

    fn new_event(id: &str) -> NewEvent {
        let now = chrono::Utc::now();
        NewEvent {
            event: crate::event::Event {
                id: id.into(),
                source: "json".into(),
                kind: "sent".into(),
                time: now,
                data: serde_json::json!({}),
            },
            payload: "{}".into(),
            received_at: now,
            matched: vec!["r".into()],
            jobs: vec![crate::store::NewJob {
                key: format!("{id}/r/0"),
                rule_id: "r".into(),
                action_index: 0,
                kind: "log".into(),
                action: serde_json::json!({ "message": id }),
                endpoint: None,
                due_at: now,
                error: None,
                contact: None,
                settled: None,
            }],
            stateful: None,
            rule_set: Default::default(),
        }
    }

    /// An event's jobs are found by their key prefix: an event whose id extends another's
    /// (`a` and `a/b`, possible with provider ids) does not show the other's jobs.
    #[tokio::test]
    async fn an_events_jobs_are_its_own_even_when_ids_share_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("h.db"), Durability::Full)
            .await
            .unwrap();
        let batch = vec![new_event("a"), new_event("a/b"), new_event("a0")];
        let committed = store.commit(batch, Retention::default()).await.unwrap();
        assert!(committed.fired.iter().all(Option::is_some), "{committed:?}");
        for id in ["a", "a/b", "a0"] {
            let detail = store.event(id).await.unwrap().unwrap();
            let keys: Vec<_> = detail
                .jobs
                .iter()
                .map(|j| j.job.idempotency_key.as_str())
                .collect();
            assert_eq!(keys, [format!("{id}/r/0")], "{id}");
        }
    }

    /// A store written by a newer hookflow is refused, not damaged.
    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = SqliteStore::open(&path, Durability::Full).await.err().unwrap();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }
}

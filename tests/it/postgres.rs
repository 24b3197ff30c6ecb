//! Several `hookflow serve` processes on one PostgreSQL database: a burst spread across
//! them, one killed with SIGKILL mid-burst. Every acknowledged event must be delivered,
//! and what must happen once (a `once` per contact, a threshold crossing per group, a
//! timer per event) must have happened exactly once, whichever instance decided it.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use crate::server::{Server, project};
use crate::sink::Sink;
use crate::store_contract::{PgSchema, pg_url};

/// A synchronous client, on a thread of its own (it runs its own runtime), for what the
/// test reads straight from the database.
fn sql(query: &str) -> Vec<postgres::Row> {
    let (url, query) = (pg_url(), query.to_owned());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("PostgreSQL");
        c.query(&query, &[]).expect(&query)
    })
    .join()
    .unwrap()
}

fn count(query: &str) -> i64 {
    sql(query)[0].get(0)
}

fn rules(sink: &Sink) -> Vec<(&'static str, String)> {
    let url = &sink.url;
    vec![
        (
            "forward.yaml",
            format!(
                "on: sent\nactions:\n  - http: {{ url: \"{url}/in\", json: {{ sent: \"{{{{MessageID}}}}\" }} }}\n"
            ),
        ),
        (
            "welcome.yaml",
            format!(
                "on: open\nonce: {{ per: \"{{{{email}}}}\", for: 1d }}\nactions:\n  - http: {{ url: \"{url}/once\", json: {{ email: \"{{{{email}}}}\" }} }}\n"
            ),
        ),
        (
            "bounces.yaml",
            format!(
                "on: bounce\nthreshold: {{ window: 1h, group_by: \"{{{{domain email}}}}\", count: bounce, above: 9, cooldown: 1d }}\nactions:\n  - http: {{ url: \"{url}/spike\", json: {{ group: \"{{{{group}}}}\" }} }}\n"
            ),
        ),
        (
            "unopened.yaml",
            format!(
                "on: sent\nabsent: {{ event: open, same: MessageID, within: 20s }}\nactions:\n  - http: {{ url: \"{url}/absent\", json: {{ message: \"{{{{MessageID}}}}\" }} }}\n"
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_one_killed_mid_burst_lose_nothing_and_do_once_things_once() {
    const SENT: u64 = 1200;
    const KILL_AFTER: usize = 400;
    let schema = PgSchema::new("e2e");
    let mut sink = Sink::start().await;
    let rules = rules(&sink);
    let rules: Vec<(&str, &str)> = rules.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let config = format!(
            "listen: 127.0.0.1:0\nstore: {}\npostgres: {{ schema: {}, instance: i{i}, pool: 3 }}\ndelivery: {{ timeout: 2s, workers: 8 }}\n",
            pg_url(),
            schema.0
        );
        project(dir.path(), &config, &rules);
        servers.push(Server::start(dir.path()));
    }
    let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.base.clone()).collect());

    // Every event at one provider time, so the timers' windows do not depend on how fast
    // the burst goes: an open cancels its message's timer whenever it arrives (if before
    // the 20 s are up).
    let t0 = chrono::Utc::now().timestamp();
    let mut events = Vec::new();
    for id in 1..=SENT {
        events.push(json!({"event": "sent", "time": t0, "MessageID": id, "email": format!("u{}@example.com", id % 10)}));
    }
    for id in 1..=100u64 {
        events.push(json!({"event": "open", "time": t0, "MessageID": id, "email": format!("u{}@example.com", id % 10)}));
    }
    for n in 0..60u64 {
        events.push(json!({"event": "bounce", "time": t0, "MessageID": 5000 + n, "email": format!("b{n}@d{}.example", n % 3), "hard_bounce": false}));
    }
    fastrand::seed(7);
    fastrand::shuffle(&mut events);
    let events = Arc::new(events);

    let acked = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let count_acked = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut burst = tokio::task::JoinSet::new();
    for worker in 0..12usize {
        let (bases, events, acked, count_acked, next, dead) = (
            bases.clone(),
            events.clone(),
            acked.clone(),
            count_acked.clone(),
            next.clone(),
            dead.clone(),
        );
        burst.spawn(async move {
            let client = reqwest::Client::new();
            let mut server = worker % 3;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(event) = events.get(i) else { return };
                // Like a load balancer: an instance that does not answer is passed over,
                // and the sender retries until an instance acknowledges.
                loop {
                    if server == 0 && dead.load(Ordering::SeqCst) {
                        server = 1;
                    }
                    let sent = client
                        .post(format!("{}/hooks/mailjet", bases[server]))
                        .header("content-type", "application/json")
                        .body(event.to_string())
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 200 => {
                            acked.lock().unwrap().insert(i);
                            count_acked.fetch_add(1, Ordering::SeqCst);
                            server = (server + 1) % 3;
                            break;
                        }
                        _ => server = (server + 1) % 3,
                    }
                }
            }
        });
    }
    while count_acked.load(Ordering::SeqCst) < KILL_AFTER {
        tokio::task::yield_now().await;
    }
    servers.remove(0).kill9();
    dead.store(true, Ordering::SeqCst);
    while burst.join_next().await.is_some() {}
    assert_eq!(
        acked.lock().unwrap().len(),
        events.len(),
        "every event acknowledged by some instance"
    );

    // Every acknowledged `sent` is delivered (jobs the killed instance held are leased
    // again when its leases expire: attempt timeout + 30 s).
    let want: HashSet<u64> = (1..=SENT).collect();
    let mut delivered: HashSet<u64> = HashSet::new();
    while !want.is_subset(&delivered) {
        if let Some(m) = sink.next(90).await.json()["sent"].as_u64() {
            delivered.insert(m);
        }
    }

    // Then everything settles: timers fired, no job pending or running.
    let s = &schema.0;
    for _ in 0..120 {
        let left = count(&format!(
            "SELECT (SELECT COUNT(*) FROM \"{s}\".timers) + (SELECT COUNT(*) FROM \"{s}\".jobs WHERE status IN ('pending', 'running'))"
        ));
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(
        count(&format!("SELECT COUNT(*) FROM \"{s}\".timers")),
        0,
        "timers left"
    );
    let stats = count(&format!("SELECT COUNT(*) FROM \"{s}\".events"));
    assert_eq!(stats, events.len() as i64, "each event stored once");

    // Exactly once: one welcome per contact, one spike per domain, one reminder per
    // message that was never opened.
    let per_rule = |rule: &str| -> Vec<serde_json::Value> {
        sql(&format!(
            "SELECT action FROM \"{s}\".jobs WHERE rule_id = '{rule}'"
        ))
        .iter()
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
        .collect()
    };
    let welcome = per_rule("welcome");
    let emails: HashSet<String> = welcome.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        (welcome.len(), emails.len()),
        (10, 10),
        "one welcome per contact: {welcome:?}"
    );
    let spikes = per_rule("bounces");
    assert_eq!(spikes.len(), 3, "one crossing per domain: {spikes:?}");
    let absent = per_rule("unopened");
    assert_eq!(
        absent.len(),
        (SENT - 100) as usize,
        "one reminder per unopened message"
    );
    // Each survivor names itself and serves the same rule set version.
    let mut seen = Vec::new();
    for server in &servers {
        let r = server.get("/api/rules").await;
        seen.push((r["instance"].clone(), r["rule_set"].clone()));
    }
    assert_eq!(seen[0].0, "i1");
    assert_eq!(seen[1].0, "i2");
    assert_eq!(seen[0].1, seen[1].1, "one rule set version: {seen:?}");
    let failed = count(&format!(
        "SELECT COUNT(*) FROM \"{s}\".jobs WHERE status <> 'succeeded'"
    ));
    assert_eq!(failed, 0, "every job delivered");
    drop(servers);
}

/// A PostgreSQL of the test's own (initdb in a temporary folder, its own port), so it can
/// be stopped and started without touching the database the other tests share. Run as
/// the `postgres` user when the tests run as root (PostgreSQL refuses root).
struct PrivatePg {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePg {
    fn start() -> Self {
        let bin = std::env::var_os("HOOKFLOW_TEST_PG_BIN")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
                    .ok()?
                    .filter_map(|e| Some(e.ok()?.path().join("bin")))
                    .filter(|p| p.join("initdb").exists())
                    .collect();
                found.sort();
                found.pop()
            })
            .expect("PostgreSQL's binaries (/usr/lib/postgresql/*/bin, or HOOKFLOW_TEST_PG_BIN)");
        let pg = Self::new(bin);
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        pg.up();
        pg
    }

    /// A hot standby of `primary`, streaming from it (`pg_basebackup -R`).
    fn replica_of(primary: &PrivatePg) -> Self {
        let pg = Self::new(primary.bin.clone());
        let (data, port) = (pg.data(), primary.port.to_string());
        pg.run(
            "pg_basebackup",
            &[
                "-D",
                &data,
                "-R",
                "-X",
                "stream",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
            ],
        );
        pg.up();
        pg
    }

    /// A folder of its own (the postgres user's, under root) and a free port.
    fn new(bin: std::path::PathBuf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if as_root() {
            let chown = std::process::Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success());
        }
        Self { dir, bin, port }
    }

    /// A query on this server, from a thread of its own.
    fn sql(&self, query: &str) -> Vec<postgres::Row> {
        let (url, query) = (self.url(), query.to_owned());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("PostgreSQL");
            c.query(&query, &[]).expect(&query)
        })
        .join()
        .unwrap()
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("pg.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"],
        );
    }

    /// `immediate`: like a crash, the server recovers from its log when started again.
    fn down(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let path = self.bin.join(tool);
        let mut cmd = if as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            std::process::Command::new(&path)
        };
        let out = cmd.args(args).output().expect(tool);
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.down()));
    }
}

fn as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Two servers on a PostgreSQL that dies (`pg_ctl stop -m immediate`, a crash) in the
/// middle of a burst and comes back: meanwhile ingest answers 503 with `Retry-After` and
/// `/healthz` 503; afterwards both servers serve again without a restart, and every
/// acknowledged event is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_no_acknowledged_event() {
    const EVENTS: u64 = 600;
    let pg = PrivatePg::start();
    let mut sink = Sink::start().await;
    let rule = format!(
        "on: sent\nactions:\n  - http: {{ url: \"{}/in\", json: {{ sent: \"{{{{MessageID}}}}\" }} }}\n",
        sink.url
    );
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let config = format!(
            "listen: 127.0.0.1:0\nstore: {}\npostgres: {{ instance: r{i}, pool: 2 }}\ndelivery: {{ timeout: 2s, workers: 4 }}\n",
            pg.url()
        );
        project(dir.path(), &config, &[("forward.yaml", &rule)]);
        servers.push(Server::start(dir.path()));
    }
    let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.base.clone()).collect());
    let acked = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(1));
    let mut burst = tokio::task::JoinSet::new();
    for worker in 0..8usize {
        let (bases, acked, refused, next) = (bases.clone(), acked.clone(), refused.clone(), next.clone());
        burst.spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let id = next.fetch_add(1, Ordering::SeqCst) as u64;
                if id > EVENTS {
                    return;
                }
                let body = json!({"event": "sent", "time": 1_767_225_600, "MessageID": id, "email": "r@example.org"}).to_string();
                // A sender that retries what was not acknowledged, a little later.
                let mut server = worker % 2;
                loop {
                    let r = client
                        .post(format!("{}/hooks/mailjet", bases[server]))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => break,
                        Ok(r) => {
                            assert_eq!(r.status(), 503, "only unavailable, never an error");
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => panic!("the server itself must answer: {e}"),
                    }
                    server = (server + 1) % 2;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                acked.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    while acked.load(Ordering::SeqCst) < 200 {
        tokio::task::yield_now().await;
    }
    pg.down();

    // Down: the servers say so, and ask the sender to come back.
    let r = servers[0]
        .post(
            "/hooks/mailjet",
            &json!({"event": "sent", "time": 1_767_225_600, "MessageID": 999_999, "email": "x@example.org"})
                .to_string(),
        )
        .await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let health = servers[1]
        .client
        .get(format!("{}/healthz", servers[1].base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);

    pg.up();
    while burst.join_next().await.is_some() {}
    assert_eq!(acked.load(Ordering::SeqCst) as u64, EVENTS);
    assert!(refused.load(Ordering::SeqCst) > 0, "the burst met the outage");
    for server in &servers {
        assert_eq!(
            server.get_text("/healthz").await,
            "ok",
            "recovered without a restart"
        );
    }
    let want: HashSet<u64> = (1..=EVENTS).collect();
    let mut delivered = HashSet::new();
    while !want.is_subset(&delivered) {
        let got = tokio::time::timeout(std::time::Duration::from_secs(60), sink.next(61)).await;
        let Ok(got) = got else {
            let missing: Vec<_> = want.difference(&delivered).take(10).collect();
            panic!(
                "not delivered: {missing:?}…\nstats: {}\nlog 0:\n{}\nlog 1:\n{}",
                servers[0].get("/api/stats").await,
                servers[0].log(),
                servers[1].log()
            );
        };
        if let Some(m) = got.json()["sent"].as_u64() {
            delivered.insert(m);
        }
    }
    let stats = servers[0]
        .wait_for("/api/stats", 60, |s| s["jobs"]["succeeded"] == EVENTS)
        .await;
    assert_eq!(
        stats["events"], EVENTS,
        "each acknowledged event stored once: {stats}"
    );
}

/// `postgres.replica`: the admin API reads from a hot standby (it holds the server's
/// connections there), sees what was committed on the primary once it has streamed over,
/// and falls back to the primary while the standby is down; ingest never touches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reads_go_to_the_replica_and_fall_back_to_the_primary() {
    let primary = PrivatePg::start();
    let replica = PrivatePg::replica_of(&primary);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "listen: 127.0.0.1:0\nstore: {}\npostgres: {{ instance: reader, pool: 2, replica: \"{}\" }}\n",
        primary.url(),
        replica.url()
    );
    project(
        dir.path(),
        &config,
        &[(
            "log.yaml",
            "on: open\nactions:\n  - log: { message: \"{{email}}\" }\n",
        )],
    );
    let server = Server::start(dir.path());
    for id in 1..=3 {
        let r = server
            .post(
                "/hooks/mailjet",
                &json!({"event": "open", "time": 1_767_225_600, "MessageID": id, "email": "r@example.org"})
                    .to_string(),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let events = server
        .wait_for("/api/events", 30, |e| e.as_array().is_some_and(|a| a.len() == 3))
        .await;
    let id = events[0]["id"].as_str().unwrap().to_owned();
    let trail = server.get(&format!("/api/events/{id}")).await;
    assert_eq!(trail["matched"], json!(["log"]), "{trail}");
    let on_replica: i64 = replica
        .sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hookflow reader'")[0]
        .get(0);
    assert!(on_replica > 0, "the server holds connections on the replica");
    // Each connection shows the last statement it ran: the listing's is on the replica.
    server.get("/api/endpoints").await;
    let last: Vec<String> = replica
        .sql("SELECT query FROM pg_stat_activity WHERE application_name = 'hookflow reader'")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        last.iter().any(|q| q.contains("FROM endpoints")),
        "the listing ran on the replica: {last:?}"
    );

    replica.down();
    let r = server
        .post(
            "/hooks/mailjet",
            &json!({"event": "open", "time": 1_767_225_600, "MessageID": 4, "email": "r@example.org"})
                .to_string(),
        )
        .await;
    assert_eq!(r.status(), 200, "ingest does not need the replica");
    let events = server.get("/api/events").await;
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(4),
        "read from the primary: {events}"
    );
    assert!(
        server.log().contains("the replica cannot answer"),
        "{}",
        server.log()
    );
}

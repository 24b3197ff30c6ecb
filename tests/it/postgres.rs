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

//! `hookflow serve` end to end: the real binary, a real HTTP sink, real SQLite files.

use serde_json::{Value, json};

use crate::server::Server;
use crate::sink::Sink;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/events");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

fn config(extra: &str) -> String {
    format!("listen: 127.0.0.1:0\nstore: sqlite://data/hookflow.db\n{extra}")
}

/// A rule sending every event of `on` to the sink.
fn forward(sink: &Sink, on: &str) -> String {
    format!(
        "on: {on}\nactions:\n  - http:\n      url: \"{}/in\"\n      json: {{ id: \"{{{{event.id}}}}\", type: \"{{{{event.type}}}}\", message: \"{{{{MessageID}}}}\", email: \"{{{{email}}}}\" }}\n",
        sink.url
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailjet_events_single_and_batched_reach_the_sink() {
    let mut sink = Sink::start().await;
    let (_dir, server) = Server::in_project(&config(""), &[("all.yaml", &forward(&sink, "\"*\""))]);

    let r = server.post("/hooks/mailjet", &fixture("open.json")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "OK");
    let got = sink.next(10).await;
    assert_eq!(got.json()["type"], "open");
    // MessageID above 2^53 arrives exactly.
    assert_eq!(got.json()["message"].as_u64(), Some(19421777396190490));
    assert!(got.header("webhook-id").ends_with("/all/0"), "{:?}", got.headers);
    assert_eq!(got.header("content-type"), "application/json");

    // The batch repeats that same `open`: a duplicate, acknowledged and not delivered again.
    assert_eq!(
        server
            .post("/hooks/mailjet", &fixture("batch-v2.json"))
            .await
            .status(),
        200
    );
    let mut types: Vec<String> = Vec::new();
    for _ in 0..6 {
        types.push(sink.next(10).await.json()["type"].as_str().unwrap().to_owned());
    }
    types.sort();
    assert_eq!(types, ["blocked", "bounce", "click", "sent", "spam", "unsub"]);
    assert_eq!(server.get("/api/stats").await["events"], 7);

    // The audit trail: the event, its matched rule, its job and the attempt.
    let events = server.get("/api/events?type=open&limit=1").await;
    let id = events[0]["id"].as_str().unwrap().to_owned();
    let detail = server
        .wait_for(&format!("/api/events/{id}"), 10, |d| {
            d["jobs"][0]["status"] == "succeeded"
        })
        .await;
    assert_eq!(detail["matched"], json!(["all"]));
    assert_eq!(detail["payload"]["email"], "api@mailjet.com");
    let attempt = &detail["jobs"][0]["attempts_made"][0];
    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["response"], "sink says 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_status_and_nothing_stored() {
    let cfg = config(
        "body_limit: 2048\nsources:\n  mailjet: { format: mailjet, auth: { basic: { username: mj, password: secret } } }\n  shop:\n    format: json\n    type_path: $.type\n    id_path: $.id\n    auth: { hmac: { header: X-Signature, secret: s3cr3t, encoding: hex } }\n",
    );
    let (_dir, server) = Server::in_project(&cfg, &[]);
    let url = |p: &str| format!("{}{p}", server.base);
    let c = &server.client;
    let post = |path: &str, body: &str| {
        c.post(url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    let open = fixture("open.json");

    assert_eq!(post("/hooks/mailjet", &open).send().await.unwrap().status(), 401);
    let wrong = post("/hooks/mailjet", &open)
        .basic_auth("mj", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.headers()["www-authenticate"], "Basic realm=\"hookflow\"");
    let auth = |b: reqwest::RequestBuilder| b.basic_auth("mj", Some("secret"));
    let r = auth(post("/hooks/mailjet", "{\"event\": ")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not valid JSON"));
    let r = auth(post("/hooks/mailjet", "[{\"email\": \"a@b.co\"}]"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("has no event type"));
    let big = format!("[{}]", [open.as_str(); 10].join(","));
    let r = auth(post("/hooks/mailjet", &big)).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.text().await.unwrap()).unwrap(),
        serde_json::json!({"error": "the body is larger than 2048 bytes"})
    );
    let plain = auth(
        c.post(url("/hooks/mailjet"))
            .header("content-type", "text/plain")
            .body(open.clone()),
    );
    assert_eq!(plain.send().await.unwrap().status(), 415);
    let r = post("/hooks/nope", &open).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let text = r.text().await.unwrap();
    assert_eq!(
        text, r#"{"error":"unknown source"}"#,
        "no list of sources for strangers"
    );
    // Posted to the URL of another type.
    let r = auth(post("/hooks/mailjet/click", &open)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("posted to the URL for `click`"));
    assert_eq!(
        server.get("/api/stats").await["events"],
        0,
        "refused requests store nothing"
    );
    // Every kind of refusal left a log line with its source, status and reason (the
    // second 401 and 400 within ten seconds only count towards the next line).
    let log = server.log();
    for (status, reason) in [
        ("401", "missing credentials"),
        ("400", "not valid JSON"),
        ("413", "larger than 2048 bytes"),
        ("415", "expected Content-Type"),
        ("404", "unknown source"),
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(&format!("status={status}")) && l.contains(reason)),
            "no warning for {status} {reason}:\n{log}"
        );
    }

    // HMAC over the raw body.
    let body = r#"{"type": "order.paid", "id": 42}"#;
    let sig = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cr3t").unwrap();
        mac.update(body.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    assert_eq!(
        post("/hooks/shop", body)
            .header("x-signature", "00")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post("/hooks/shop", body)
            .header("x-signature", &sig)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        auth(post("/hooks/mailjet/open", &open))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let stats = server.get("/api/stats").await;
    assert_eq!(stats["events"], 2);
    let shop = server.get("/api/events/shop:42").await;
    assert_eq!(shop["type"], "order.paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_acknowledged_and_not_processed_again() {
    let mut sink = Sink::start().await;
    let (_dir, server) = Server::in_project(&config(""), &[("open.yaml", &forward(&sink, "open"))]);
    for _ in 0..3 {
        assert_eq!(
            server
                .post("/hooks/mailjet", &fixture("open.json"))
                .await
                .status(),
            200
        );
    }
    sink.next(10).await;
    let stats = server
        .wait_for("/api/stats", 10, |s| s["jobs"]["succeeded"] == 1)
        .await;
    assert_eq!(stats["events"], 1);
    assert!(sink.drain().is_empty(), "a duplicate was delivered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_schedule_then_succeed() {
    let mut sink = Sink::start().await;
    sink.then(500, None);
    sink.then(503, Some("2"));
    let (_dir, server) = Server::in_project(
        &config("delivery:\n  schedule: [ { retries: 3, every: 1s } ]\n"),
        &[("open.yaml", &forward(&sink, "open"))],
    );
    assert_eq!(
        server
            .post("/hooks/mailjet", &fixture("open.json"))
            .await
            .status(),
        200
    );
    let first = sink.next(10).await;
    let second = sink.next(10).await;
    let third = sink.next(10).await;
    let gap1 = second.at - first.at;
    let gap2 = third.at - second.at;
    assert!(
        gap1.as_millis() >= 1000,
        "first retry after the schedule's 1s, was {gap1:?}"
    );
    assert!(gap2.as_millis() >= 2000, "Retry-After: 2 honoured, was {gap2:?}");
    // The dispatcher wakes when a retry is recorded: it does not wait for a poll.
    assert!(gap1.as_millis() < 3000, "the first retry came late: {gap1:?}");
    assert!(gap2.as_millis() < 4000, "the second retry came late: {gap2:?}");
    assert_eq!(
        first.header("webhook-id"),
        third.header("webhook-id"),
        "same idempotency key on every attempt"
    );
    let jobs = server
        .wait_for("/api/jobs", 10, |j| j[0]["status"] == "succeeded")
        .await;
    assert_eq!(jobs[0]["attempts"], 3);
    let id = jobs[0]["event_id"].as_str().unwrap();
    let detail = server.get(&format!("/api/events/{id}")).await;
    let codes: Vec<Value> = detail["jobs"][0]["attempts_made"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, [json!(500), json!(503), json!(200)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_fails_at_once() {
    let mut sink = Sink::start().await;
    sink.respond(410);
    let (_dir, server) = Server::in_project(
        &config("delivery:\n  schedule: [ { retries: 5, every: 1s } ]\n"),
        &[("open.yaml", &forward(&sink, "open"))],
    );
    server.post("/hooks/mailjet", &fixture("open.json")).await;
    sink.next(10).await;
    let jobs = server
        .wait_for("/api/jobs", 10, |j| j[0]["status"] == "dead")
        .await;
    assert_eq!(jobs[0]["attempts"], 1);
    assert_eq!(
        server.get("/api/stats").await["endpoints_suspended"],
        0,
        "410 is the receiver's answer, not an outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhaustion_suspends_the_endpoint_until_resumed() {
    let mut sink = Sink::start().await;
    sink.respond(500);
    let (_dir, server) = Server::in_project(
        &config("delivery:\n  schedule: [ { retries: 1, every: 1s } ]\n"),
        &[("fwd.yaml", &forward(&sink, "[open, click]"))],
    );
    server.post("/hooks/mailjet", &fixture("open.json")).await;
    sink.next(10).await;
    sink.next(10).await;
    let endpoints = server
        .wait_for("/api/endpoints", 10, |e| e[0]["status"] == "suspended")
        .await;
    assert!(
        endpoints[0]["reason"]
            .as_str()
            .unwrap()
            .contains("exhausted its retries")
    );
    let jobs = server.get("/api/jobs?status=dead").await;
    assert_eq!(jobs.as_array().unwrap().len(), 1);

    // While suspended, later jobs for the endpoint park: stored, not attempted.
    sink.respond(200);
    assert_eq!(
        server
            .post("/hooks/mailjet", &fixture("click.json"))
            .await
            .status(),
        200
    );
    let parked = server
        .wait_for("/api/jobs?status=pending", 10, |j| {
            j.as_array().unwrap().len() == 1
        })
        .await;
    assert_eq!(parked[0]["attempts"], 0);
    assert!(sink.drain().is_empty());

    let id = endpoints[0]["id"].as_i64().unwrap();
    let resumed = server.post_json(&format!("/api/endpoints/{id}/resume"), "").await;
    assert_eq!(resumed["requeued"], 1);
    let mut delivered: Vec<String> = vec![
        sink.next(10).await.json()["type"].as_str().unwrap().into(),
        sink.next(10).await.json()["type"].as_str().unwrap().into(),
    ];
    delivered.sort();
    assert_eq!(delivered, ["click", "open"]);
    server
        .wait_for("/api/stats", 10, |s| {
            s["jobs"]["succeeded"] == 2 && s["endpoints_suspended"] == 0
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_jobs_survive_a_restart_and_shutdown_is_clean() {
    let mut sink = Sink::start().await;
    sink.respond(500);
    let (dir, server) = Server::in_project(
        &config("delivery:\n  schedule: [ { retries: 5, every: 2s } ]\n"),
        &[("open.yaml", &forward(&sink, "open"))],
    );
    server.post("/hooks/mailjet", &fixture("open.json")).await;
    sink.next(10).await;
    assert_eq!(server.terminate(), 0, "SIGTERM exits 0");
    sink.respond(200);
    let server = Server::start(dir.path());
    let got = sink.next(15).await;
    assert_eq!(got.json()["type"], "open");
    server
        .wait_for("/api/stats", 10, |s| s["jobs"]["succeeded"] == 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_requires_the_token_when_configured() {
    let (_dir, server) = Server::in_project(&config("admin_token: \"${env:HF_IT_TOKEN:-t0ken}\"\n"), &[]);
    let url = format!("{}/api/stats", server.base);
    assert_eq!(server.client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        server
            .client
            .get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        server
            .client
            .get(&url)
            .bearer_auth("t0ken")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The scheme is case-insensitive (RFC 9110).
    for header in ["bearer t0ken", "BEARER t0ken"] {
        let r = server
            .client
            .get(&url)
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{header}");
    }
    assert_eq!(
        server
            .client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = server.get_text("/metrics").await;
    assert!(metrics.contains("hookflow_queue_depth"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_loses_no_acknowledged_event() {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const EVENTS: u64 = 2500;
    const KILL_AFTER: usize = 800;
    let mut sink = Sink::start().await;
    let (dir, server) = Server::in_project(&config(""), &[("sent.yaml", &forward(&sink, "sent"))]);

    let acked = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut burst = tokio::task::JoinSet::new();
    for worker in 0..16u64 {
        let (client, base, acked, count) = (
            server.client.clone(),
            server.base.clone(),
            acked.clone(),
            count.clone(),
        );
        burst.spawn(async move {
            for id in (worker..EVENTS).step_by(16) {
                let body = json!({"event": "sent", "time": 1433333949, "MessageID": 10_000_000 + id, "email": format!("u{id}@example.com")});
                let sent = client
                    .post(format!("{base}/hooks/mailjet"))
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => {
                        acked.lock().unwrap().insert(10_000_000 + id);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => return, // the server is gone
                }
            }
        });
    }
    while count.load(Ordering::SeqCst) < KILL_AFTER {
        tokio::task::yield_now().await;
    }
    server.kill9();
    while burst.join_next().await.is_some() {}
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= KILL_AFTER && acked.len() < EVENTS as usize,
        "killed mid-burst: {} acknowledged",
        acked.len()
    );

    let server = Server::start(dir.path());
    let mut delivered = HashSet::new();
    while !acked.is_subset(&delivered) {
        let got = sink.next(60).await;
        delivered.insert(got.json()["message"].as_u64().unwrap());
    }
    let stats = server.get("/api/stats").await;
    assert!(stats["events"].as_u64().unwrap() >= acked.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_action_runs_later_even_across_a_restart() {
    let mut sink = Sink::start().await;
    let rule = format!(
        "on: open\nactions:\n  - delay: 3s\n    http: {{ url: \"{}/later\", json: {{ email: \"{{{{email}}}}\" }} }}\n",
        sink.url
    );
    let (dir, server) = Server::in_project(&config(""), &[("later.yaml", &rule)]);
    let posted = std::time::Instant::now();
    server.post("/hooks/mailjet", &fixture("open.json")).await;
    let jobs = server.get("/api/jobs").await;
    assert_eq!(jobs[0]["status"], "pending");
    assert_eq!(jobs[0]["action"]["delay"], "3s");
    // Stop before it is due; the restarted server still runs it, on time.
    assert_eq!(server.terminate(), 0);
    let server = Server::start(dir.path());
    let got = sink.next(15).await;
    assert!(
        got.at.duration_since(posted).as_millis() >= 3000,
        "ran after {:?}",
        got.at.duration_since(posted)
    );
    assert_eq!(got.json()["email"], "api@mailjet.com");
    server
        .wait_for("/api/stats", 10, |s| s["jobs"]["succeeded"] == 1)
        .await;
}

/// A server killed in the middle of an attempt: on restart the job runs again at once,
/// not when its lease (attempt timeout + 30 s = 60 s here) would have run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_cut_short_by_kill_9_runs_again_on_restart() {
    let mut sink = Sink::start().await;
    sink.hang(true);
    let (dir, server) = Server::in_project(&config(""), &[("all.yaml", &forward(&sink, "sent"))]);
    let event = json!({"event": "sent", "time": 1433333949, "MessageID": 77, "email": "a@example.org"});
    assert_eq!(
        server.post("/hooks/mailjet", &event.to_string()).await.status(),
        200
    );
    let first = sink.next(10).await;
    server.kill9();

    sink.hang(false);
    let started = std::time::Instant::now();
    let server = Server::start(dir.path());
    let again = sink.next(20).await;
    assert_eq!(again.json()["message"], first.json()["message"]);
    assert!(started.elapsed().as_secs() < 20, "waited for the lease");
    server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array().unwrap().len() == 1
        })
        .await;
    assert!(server.log().contains("in flight when hookflow last stopped"));
}

/// A server owns its store: a second one on the same store refuses to start, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_store_refuses_to_start() {
    let (dir, server) = Server::in_project(&config(""), &[]);
    let second = crate::util::hookflow_in(dir.path(), &["serve", "--config", "hookflow.yaml"], &[]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("another hookflow server is using the store"),
        "{}",
        second.stderr
    );
    // The first one is unharmed; once it is gone, the store can be served again.
    assert_eq!(server.get("/api/stats").await["events"], 0);
    assert_eq!(server.terminate(), 0);
    let again = Server::start(dir.path());
    assert_eq!(again.terminate(), 0);
}

/// Reads until the server closes the connection (or `secs` pass); what it sent.
async fn until_closed(conn: &mut tokio::net::TcpStream, secs: u64) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(secs), async {
        let mut buf = [0u8; 1024];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| String::from_utf8_lossy(&got).into_owned())
}

async fn connect(server: &Server) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Slow and many clients: a half-sent header or body is cut off, a full server answers
/// 503 at once instead of hanging, and SIGTERM waits for a half-sent request only for the
/// grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_a_full_server_says_so() {
    use tokio::io::AsyncWriteExt;
    let cfg = config("header_timeout: 1s\nbody_timeout: 1s\nmax_connections: 3\nshutdown_grace: 1s\n");
    let (_dir, server) = Server::in_project(&cfg, &[]);

    let mut silent = connect(&server).await;
    let mut half_header = connect(&server).await;
    half_header
        .write_all(b"POST /hooks/mailjet HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // The limit is three: the third gets in, the fourth is told the server is full.
    let third = connect(&server).await;
    let mut fourth = connect(&server).await;
    let answer = until_closed(&mut fourth, 5).await.expect("closed at once");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too many open connections"), "{answer}");

    assert!(
        until_closed(&mut silent, 5).await.is_some(),
        "an idle connection is closed"
    );
    assert!(
        until_closed(&mut half_header, 5).await.is_some(),
        "a half-sent header is cut off"
    );
    drop(third);

    // A body that never completes: 408 with a JSON error.
    let mut half_body = connect(&server).await;
    half_body
        .write_all(b"POST /hooks/mailjet HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"event\":")
        .await
        .unwrap();
    let answer = until_closed(&mut half_body, 5).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#"{"error":"the body was not received within 1s"}"#),
        "{answer}"
    );
    assert_eq!(server.get("/api/stats").await["events"], 0);
    assert!(
        server.log().contains("connections open, the limit"),
        "{}",
        server.log()
    );

    // SIGTERM with a request half sent: the server exits after the grace period.
    let cfg = config("header_timeout: 60s\nbody_timeout: 60s\nshutdown_grace: 1s\n");
    let (_dir2, server) = Server::in_project(&cfg, &[]);
    let mut pending = connect(&server).await;
    pending
        .write_all(b"POST /hooks/mailjet HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n[")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let code = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

/// A newline in event data cannot start a log line of its own: not through a `log`
/// action, not through a render warning, not through a refused webhook's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_data_cannot_forge_log_lines() {
    let rules = [
        (
            "say.yaml",
            "on: open\nactions: [ { log: { message: \"opened by {{email}}\" } } ]\n",
        ),
        (
            "bad.yaml",
            "on: open\nactions: [ { log: { message: \"{{domain email}}\" } } ]\n",
        ),
    ];
    let (_dir, server) = Server::in_project(&config(""), &rules);
    let forged = "2026-01-01T00:00:00.000000Z  INFO hookflow::server: FORGED admin login";
    let open = json!({"event": "open", "time": 1433103519, "MessageID": 1, "email": format!("x\n{forged}")});
    assert_eq!(
        server.post("/hooks/mailjet", &open.to_string()).await.status(),
        200
    );
    let wrong_type = json!({"event": format!("open\r\n{forged}"), "time": 1});
    let r = server.post("/hooks/mailjet/click", &wrong_type.to_string()).await;
    assert_eq!(r.status(), 400);
    server
        .wait_for("/api/jobs", 10, |j| {
            j.as_array().unwrap().iter().any(|j| j["status"] == "succeeded")
        })
        .await;
    let log = server.log();
    assert!(log.contains("opened by x\\n2026-01-01"), "{log}");
    assert!(log.contains("is not an email address"), "{log}");
    assert!(log.contains("posted to the URL for `click`"), "{log}");
    for line in log.lines() {
        assert!(
            !line.starts_with("2026-01-01T00:00:00.000000Z"),
            "forged line: {line}"
        );
    }
}

/// Symlink loops in the rules folder: the server starts, loads each rule once, and one
/// event fires it once; the log names each loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_loops_load_each_rule_once() {
    let dir = tempfile::tempdir().unwrap();
    let say = "on: open\nactions: [ { log: { message: \"hi {{email}}\" } } ]\n";
    crate::server::project(dir.path(), &config(""), &[("say.yaml", say)]);
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("x")).unwrap();
    std::os::unix::fs::symlink(".", rules.join("loop")).unwrap();
    std::os::unix::fs::symlink("..", rules.join("x/up")).unwrap();
    let server = Server::start(dir.path());
    assert_eq!(
        server.get("/api/rules").await["rules"].as_array().unwrap().len(),
        1
    );
    let open = json!({"event": "open", "time": 1433103519, "MessageID": 1, "email": "a@b.co"});
    server.post("/hooks/mailjet", &open.to_string()).await;
    let jobs = server
        .wait_for("/api/jobs", 10, |j| j[0]["status"] == "succeeded")
        .await;
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(
        server.log().matches("symlink loop").count(),
        2,
        "{}",
        server.log()
    );
}

/// A receiver that refuses one payload (400) and accepts all others is healthy: the
/// poison job dies alone, the endpoint stays active, other jobs keep flowing; the dead job
/// can be retried and skipped by hand, in bulk too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_job_dies_alone() {
    let mut sink = Sink::start().await;
    sink.refuse_containing("poison@", 400);
    let (_dir, server) = Server::in_project(
        &config("delivery:\n  schedule: [ { retries: 3, every: 1s } ]\n"),
        &[("fwd.yaml", &forward(&sink, "open"))],
    );
    let open = |email: &str, id: u64| {
        json!({"event": "open", "time": 1433103519, "MessageID": id, "email": email}).to_string()
    };
    server
        .post("/hooks/mailjet", &open("poison@example.org", 1))
        .await;
    sink.next(10).await;
    // A healthy payload succeeds between the poison job's attempts.
    server.post("/hooks/mailjet", &open("fine@example.org", 2)).await;
    let dead = server
        .wait_for("/api/jobs?status=dead", 20, |j| j.as_array().unwrap().len() == 1)
        .await;
    assert_eq!(dead[0]["attempts"], 4, "{dead}");
    let endpoints = server.get("/api/endpoints").await;
    assert_eq!(endpoints[0]["status"], "active", "{endpoints}");
    server.post("/hooks/mailjet", &open("later@example.org", 3)).await;
    server
        .wait_for("/api/stats", 10, |s| s["jobs"]["succeeded"] == 2)
        .await;

    // By hand: retry it while the endpoint takes other jobs: it dies again, alone.
    let id = dead[0]["id"].as_i64().unwrap();
    let r = server.post_json(&format!("/api/jobs/{id}/retry"), "").await;
    assert_eq!(r["status"], "pending");
    server.post("/hooks/mailjet", &open("fine2@example.org", 4)).await;
    server
        .wait_for(&format!("/api/jobs/{id}"), 20, |j| j["status"] == "dead")
        .await;
    assert_eq!(server.get("/api/endpoints").await[0]["status"], "active");

    // In bulk, by rule or endpoint. Alone this time, nothing succeeds beside it: an
    // endpoint that answers only failures for a whole schedule is suspended.
    let none = server.post_json("/api/jobs/retry?rule=other", "").await;
    assert_eq!(none["requeued"], 0);
    let endpoint = endpoints[0]["url"].as_str().unwrap();
    let r = server
        .post_json(&format!("/api/jobs/retry?endpoint={endpoint}/any/path"), "")
        .await;
    assert_eq!(r["requeued"], 1);
    server
        .wait_for("/api/endpoints", 20, |e| e[0]["status"] == "suspended")
        .await;
    let job = server.get(&format!("/api/jobs/{id}")).await;
    assert_eq!(job["status"], "dead");

    // Skipped: recorded, never attempted again, not taken by a bulk retry.
    let r = server.post_json(&format!("/api/jobs/{id}/skip"), "").await;
    assert_eq!(r["status"], "skipped");
    let job = server.get(&format!("/api/jobs/{id}")).await;
    assert!(
        job["last_error"].as_str().unwrap().ends_with("skipped by hand"),
        "{job}"
    );
    let none = server.post_json("/api/jobs/retry", "").await;
    assert_eq!(none["requeued"], 0);
    let again = server.post(&format!("/api/jobs/{id}/skip"), "").await;
    assert_eq!(again.status(), 409);
}

/// The admin API's answers to mistakes: JSON bodies, the right statuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_mistakes_get_json_errors() {
    let rule = "on: open\nactions: [ { log: { message: \"{{domain email}}\" } } ]\n";
    let (_dir, server) = Server::in_project(&config(""), &[("r.yaml", rule)]);
    let check = |status: u16, body: String, contains: &str| {
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
        assert!(
            v["error"].as_str().unwrap().contains(contains),
            "{status}: {body}"
        );
    };
    for (method, path, status, contains) in [
        ("GET", "/api/jobs?status=nope", 400, "unknown status `nope`"),
        ("GET", "/api/jobs?limit=many", 400, "limit"),
        ("POST", "/api/jobs/999/retry", 404, "no job 999"),
        ("POST", "/api/jobs/abc/retry", 400, "abc"),
        ("POST", "/api/jobs/999/skip", 404, "no job 999"),
        ("GET", "/api/nothing-here", 404, "no route GET /api/nothing-here"),
        ("DELETE", "/api/jobs", 405, "Method Not Allowed"),
        ("POST", "/api/clock", 400, ""),
    ] {
        let r = server
            .client
            .request(method.parse().unwrap(), format!("{}{path}", server.base))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{method} {path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{method} {path}"
        );
        check(status, r.text().await.unwrap(), contains);
    }

    // A job that could not be rendered is retried by rendering it again; while the rule
    // still fails, 409 says why.
    let open = json!({"event": "open", "time": 1433103519, "MessageID": 1, "email": "not-an-address"});
    server.post("/hooks/mailjet", &open.to_string()).await;
    let failed = server.get("/api/jobs?status=failed").await;
    let id = failed[0]["id"].as_i64().unwrap();
    let r = server.post(&format!("/api/jobs/{id}/retry"), "").await;
    assert_eq!(r.status(), 409);
    check(409, r.text().await.unwrap(), "still cannot be rendered");
    std::fs::write(
        server.dir.join("rules/r.yaml"),
        "on: open\nactions: [ { log: { message: \"for {{email}}\" } } ]\n",
    )
    .unwrap();
    server.post_json("/api/rules/reload", "").await;
    let r = server.post_json(&format!("/api/jobs/{id}/retry"), "").await;
    assert_eq!(r["status"], "pending");
    let job = server
        .wait_for(&format!("/api/jobs/{id}"), 10, |j| j["status"] == "succeeded")
        .await;
    assert_eq!(job["action"]["message"], "for not-an-address", "{job}");
    let r = server.post(&format!("/api/jobs/{id}/retry"), "").await;
    assert_eq!(r.status(), 200, "a succeeded job can be run again on purpose");
}

/// Numbers are kept exactly as received: a 30-digit id is stored, shown, compared by a
/// rule literal and delivered without rounding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_numbers_stay_exact_from_ingest_to_delivery() {
    let mut sink = Sink::start().await;
    let rule = format!(
        "on: open\nwhen: {{ MessageID: 123456789012345678901234567890 }}\nactions: [ {{ http: {{ url: \"{}/in\", json: {{ id: \"{{{{MessageID}}}}\", ratio: \"{{{{ratio}}}}\" }} }} }} ]\n",
        sink.url
    );
    let (_dir, server) = Server::in_project(&config(""), &[("big.yaml", &rule)]);
    let body = r#"{"event":"open","time":1433103519,"MessageID":123456789012345678901234567890,"ratio":0.1000000000000000055511151231257827}"#;
    server.post("/hooks/mailjet", body).await;
    // A neighbour one apart does not match.
    server
        .post(
            "/hooks/mailjet",
            r#"{"event":"open","time":1433103519,"MessageID":123456789012345678901234567891}"#,
        )
        .await;
    let got = sink.next(10).await;
    assert_eq!(
        got.body,
        r#"{"id":123456789012345678901234567890,"ratio":0.1000000000000000055511151231257827}"#
    );
    let events = server.get_text("/api/events?limit=2").await;
    let first: Value = serde_json::from_str(&events).unwrap();
    let id = first[1]["id"].as_str().unwrap();
    let detail = server.get_text(&format!("/api/events/{id}")).await;
    assert!(
        detail.contains(r#""MessageID":123456789012345678901234567890"#),
        "{detail}"
    );
    assert!(sink.drain().is_empty(), "the neighbour matched");
}

/// Retention on the server's clock: when the manual clock moves past `retention`, the
/// events older than it go (with their jobs and attempts), younger ones stay, and
/// `/metrics` counts what went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_is_pruned_past_retention() {
    let dir = tempfile::tempdir().unwrap();
    crate::server::project(
        dir.path(),
        &config("retention: 30d\n"),
        &[(
            "log.yaml",
            "on: open\nactions: [ { log: { message: \"open {{email}}\" } } ]\n",
        )],
    );
    let server = Server::start_with(dir.path(), &["--manual-clock", "2026-01-01T00:00:00Z"]);
    let open = |id: u64| {
        json!({"event": "open", "time": 1_767_225_600, "MessageID": id, "email": "a@example.org"}).to_string()
    };
    server.post("/hooks/mailjet", &open(1)).await;
    server
        .wait_for("/api/stats", 10, |s| s["jobs"]["succeeded"] == 1)
        .await;
    server.post_json("/api/clock", r#"{"advance": "20d"}"#).await;
    server.post("/hooks/mailjet", &open(2)).await;
    server
        .wait_for("/api/stats", 10, |s| s["jobs"]["succeeded"] == 2)
        .await;
    let events = server.get("/api/events").await;
    let ids: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{events}");

    // Day 35: the first event is 35 days old, the second 15.
    server.post_json("/api/clock", r#"{"advance": "15d"}"#).await;
    let stats = server.wait_for("/api/stats", 10, |s| s["events"] == 1).await;
    assert_eq!(stats["jobs"]["succeeded"], 1, "{stats}");
    let left = server.get("/api/events").await;
    assert_eq!(left[0]["id"], ids[0].as_str(), "the newer one stays: {left}");
    let metrics = server.get_text("/metrics").await;
    for series in [
        "hookflow_journal_pruned_total{table=\"events\"} 1",
        "hookflow_journal_pruned_total{table=\"jobs\"} 1",
        "hookflow_journal_pruned_total{table=\"attempts\"} 1",
    ] {
        assert!(metrics.contains(series), "no `{series}` in\n{metrics}");
    }
}

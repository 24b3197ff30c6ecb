//! Stateful rules in the server: `after` and `once`, decided in the commit transaction.

use serde_json::{Value, json};

use crate::server::{Server, project};

const CONFIG: &str = "listen: 127.0.0.1:0\nstore: sqlite://data/hookflow.db\n";

const DISCOUNT: &str = r#"on: open
when:
  mj_campaign_id: 7173
  after: { event: sent, same: MessageID, within: 1h }
once: { per: "{{email}}", for: 1d }
actions: [ { log: { message: "discount for {{email}}" } } ]
"#;

fn ev(kind: &str, id: u64, email: &str, time: i64) -> Value {
    json!({"event": kind, "time": time, "MessageID": id, "email": email, "mj_campaign_id": 7173})
}

/// Posts `body` and returns the rules that fired for the newest event.
async fn post(server: &Server, body: Value) -> Value {
    assert_eq!(
        server.post("/hooks/mailjet", &body.to_string()).await.status(),
        200
    );
    server.get("/api/events?limit=1").await[0]["matched"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_and_once_are_decided_by_the_server_and_survive_a_restart() {
    let (dir, server) = Server::in_project(CONFIG, &[("discount.yaml", DISCOUNT)]);
    let t = 1_800_000_000;

    // Opened 10 minutes after its own send: fires.
    post(&server, ev("sent", 100, "a@example.org", t)).await;
    assert_eq!(
        post(&server, ev("open", 100, "a@example.org", t + 600)).await,
        json!(["discount"])
    );
    // No send seen for this message: nothing.
    assert_eq!(
        post(&server, ev("open", 101, "b@example.org", t + 600)).await,
        json!([])
    );
    // Opened two hours after the send: outside `within`.
    post(&server, ev("sent", 102, "c@example.org", t)).await;
    assert_eq!(
        post(&server, ev("open", 102, "c@example.org", t + 7200)).await,
        json!([])
    );
    // The same person again within a day: `once` holds it back.
    post(&server, ev("sent", 103, "a@example.org", t + 1000)).await;
    assert_eq!(
        post(&server, ev("open", 103, "a@example.org", t + 1100)).await,
        json!([])
    );
    // Send and open in one batch, in order: the open sees the send.
    let batch = json!([
        ev("sent", 104, "d@example.org", t),
        ev("open", 104, "d@example.org", t + 5)
    ]);
    assert_eq!(
        post(&server, batch).await,
        json!(["discount"]),
        "the batch's open is the newest event"
    );
    let fired_for: Vec<String> = server
        .get("/api/jobs?limit=50")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["action"]["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fired_for.len(), 2, "{fired_for:?}");
    assert!(fired_for.contains(&"discount for d@example.org".to_owned()));

    // After a restart, the send facts and the once-keys are still there.
    assert_eq!(server.terminate(), 0);
    let server = Server::start(dir.path());
    post(&server, ev("sent", 105, "a@example.org", t + 2000)).await;
    assert_eq!(
        post(&server, ev("open", 105, "a@example.org", t + 2100)).await,
        json!([]),
        "once survives a restart"
    );
    assert_eq!(
        post(&server, ev("open", 106, "e@example.org", t + 2100)).await,
        json!([])
    );
    post(&server, ev("sent", 107, "e@example.org", t)).await;
    assert_eq!(
        post(&server, ev("open", 107, "e@example.org", t + 60)).await,
        json!(["discount"])
    );
    // A day later the once-key has expired.
    post(&server, ev("sent", 108, "a@example.org", t + 90_000)).await;
    assert_eq!(
        post(&server, ev("open", 108, "a@example.org", t + 90_060)).await,
        json!(["discount"])
    );
}

const REMINDER: &str = r#"on: sent
absent: { event: open, same: MessageID, within: 2s }
actions: [ { log: { message: "reminder for {{email}}" } } ]
"#;

fn reminders(jobs: &Value) -> Vec<String> {
    let mut out: Vec<String> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["action"]["message"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

/// The types of listed events, newest first.
fn types(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

/// One request's events are decided in event-time order: an `open` listed before its own
/// `sent` (Mailjet batches mix types) still correlates; same-second events keep their order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_decided_in_event_time_order() {
    let (_dir, server) = Server::in_project(CONFIG, &[("discount.yaml", DISCOUNT)]);
    let t = 1_800_000_000;
    let batch = json!([
        ev("open", 7, "b@example.org", t + 60),
        ev("sent", 7, "b@example.org", t)
    ]);
    assert_eq!(post(&server, batch).await, json!(["discount"]));
    let kinds = types(&server.get("/api/events").await);
    assert_eq!(
        kinds,
        ["open", "sent"],
        "stored in the order they happened (newest first)"
    );

    let same = json!([
        ev("click", 8, "c@example.org", t),
        ev("bounce", 8, "c@example.org", t)
    ]);
    post(&server, same).await;
    let kinds = types(&server.get("/api/events?limit=2").await);
    assert_eq!(kinds, ["bounce", "click"], "same second: the batch's order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_timers_fire_unless_cancelled_and_survive_a_restart() {
    let (dir, server) = Server::in_project(CONFIG, &[("reminder.yaml", REMINDER)]);
    let now = chrono::Utc::now().timestamp();
    let started = std::time::Instant::now();
    post(&server, ev("sent", 200, "a@example.org", now)).await;
    post(&server, ev("sent", 201, "b@example.org", now)).await;
    post(&server, ev("open", 201, "b@example.org", now + 1)).await;
    // Out of order: the open (one second after the send, by event time) arrives first.
    post(&server, ev("open", 202, "c@example.org", now + 1)).await;
    post(&server, ev("sent", 202, "c@example.org", now)).await;
    let jobs = server
        .wait_for("/api/jobs", 10, |j| !j.as_array().unwrap().is_empty())
        .await;
    let elapsed = started.elapsed();
    assert!(elapsed.as_millis() >= 1000, "fired too early: {elapsed:?}");
    // Give any wrong timer the same chance to fire, then look.
    server
        .wait_for("/api/stats", 10, |s| {
            s["jobs"]["succeeded"].as_u64().unwrap_or(0) >= 1
        })
        .await;
    assert_eq!(
        reminders(&server.get("/api/jobs").await),
        ["reminder for a@example.org"],
        "{jobs}"
    );

    // A timer pending at shutdown fires once after the restart.
    let now = chrono::Utc::now().timestamp();
    post(&server, ev("sent", 203, "d@example.org", now)).await;
    assert_eq!(server.terminate(), 0);
    let server = Server::start(dir.path());
    let jobs = server
        .wait_for("/api/jobs", 10, |j| j.as_array().unwrap().len() == 2)
        .await;
    assert_eq!(
        reminders(&jobs),
        ["reminder for a@example.org", "reminder for d@example.org"]
    );
    assert!(started.elapsed().as_secs() < 20);
}

const SPIKE: &str = r#"on: [sent, blocked]
threshold:
  window: 10m
  group_by: "{{domain email}}"
  ratio: { count: blocked, of: [sent, blocked] }
  above: 0.5
  min_events: 4
  cooldown: 1h
actions: [ { log: { message: "{{group}}: {{percent ratio}} blocked ({{count}} of {{total}})" } } ]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_fires_when_crossed_then_cools_down_across_a_restart() {
    let (dir, server) = Server::in_project(CONFIG, &[("spike.yaml", SPIKE)]);
    let t = chrono::Utc::now().timestamp();
    let send = |kind: &'static str, id: u64, email: &'static str, at: i64| ev(kind, id, email, at);
    let mut fired = Vec::new();
    for (i, (kind, email)) in [
        ("sent", "a@gmail.com"),
        ("sent", "b@gmail.com"),
        ("blocked", "c@gmail.com"),
        ("blocked", "d@yahoo.com"), // another group
        ("blocked", "e@gmail.com"), // 2 of 4: not above 0.5
        ("blocked", "f@gmail.com"), // 3 of 5: crossed
        ("blocked", "g@gmail.com"), // cooling down
    ]
    .into_iter()
    .enumerate()
    {
        fired.push(post(&server, send(kind, 300 + i as u64, email, t + i as i64)).await);
    }
    let none = json!([]);
    assert_eq!(
        fired,
        [
            none.clone(),
            none.clone(),
            none.clone(),
            none.clone(),
            none.clone(),
            json!(["spike"]),
            none.clone()
        ]
    );
    let jobs = server.get("/api/jobs").await;
    assert_eq!(jobs[0]["action"]["message"], "gmail.com: 60% blocked (3 of 5)");

    // Events an hour old are outside the 10-minute window (event time, not arrival):
    // counted, 4 blocked of 5 would cross; without them, 1 of 2 is under min_events.
    for i in 0..3 {
        post(&server, send("blocked", 320 + i, "x@hotmail.com", t - 3600)).await;
    }
    assert_eq!(post(&server, send("sent", 324, "y@hotmail.com", t)).await, none);
    assert_eq!(
        post(&server, send("blocked", 325, "z@hotmail.com", t + 1)).await,
        none
    );

    // The cooldown survives a restart.
    assert_eq!(server.terminate(), 0);
    let server = Server::start(dir.path());
    assert_eq!(
        post(&server, send("blocked", 330, "h@gmail.com", t + 10)).await,
        none
    );
}

const SLOW: &str = r#"on: sent
absent: { event: open, same: MessageID, within: 48h }
actions: [ { log: { message: "48h reminder for {{email}}" } } ]
"#;

const LATER: &str = r#"on: click
actions: [ { log: { message: "follow-up for {{email}}" }, delay: 30m } ]
"#;

/// Moves the manual clock by `by`; how many timers that fired.
async fn advance(server: &Server, by: &str) -> u64 {
    let body = server
        .post_json("/api/clock", &json!({ "advance": by }).to_string())
        .await;
    body["timers_fired"].as_u64().unwrap()
}

/// Real durations on a clock the test moves: a 48-hour timer fires at 48 hours, not a
/// second before, and exactly once, with a restart while it is pending; a 30-minute
/// `delay` waits for the clock too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_manual_clock_timers_and_delays_fire_exactly_when_due() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), CONFIG, &[("slow.yaml", SLOW), ("later.yaml", LATER)]);
    let t0 = 1_800_000_000; // 2027-01-15T08:00:00Z
    let start = "2027-01-15T08:00:00Z";
    let server = Server::start_with(dir.path(), &["--manual-clock", start]);
    assert_eq!(server.get("/api/clock").await["manual"], true);

    post(&server, ev("sent", 500, "a@example.org", t0)).await;
    post(&server, ev("sent", 501, "b@example.org", t0)).await;
    post(&server, ev("open", 501, "b@example.org", t0 + 3600)).await; // cancels b's timer
    post(&server, ev("sent", 502, "c@example.org", t0 + 3600)).await; // due an hour later
    assert_eq!(server.get("/api/stats").await["timers_pending"], 2);

    assert_eq!(advance(&server, "47h59m59s").await, 0, "a second early");
    assert_eq!(advance(&server, "1s").await, 1, "a's timer, at 48h exactly");
    let jobs = server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array().unwrap().len() == 1
        })
        .await;
    assert_eq!(reminders(&jobs), ["48h reminder for a@example.org"]);

    // Stopped with c's timer pending; started again where the clock was.
    assert_eq!(server.terminate(), 0);
    let server = Server::start_with(dir.path(), &["--manual-clock", "2027-01-17T08:00:00Z"]);
    assert_eq!(server.get("/api/stats").await["timers_pending"], 1);
    assert_eq!(advance(&server, "59m59s").await, 0);
    assert_eq!(advance(&server, "1s").await, 1, "c's timer, once");
    assert_eq!(advance(&server, "72h").await, 0, "nothing fires twice");
    assert_eq!(server.get("/api/stats").await["timers_pending"], 0);

    // A delayed action is due 30 minutes after its event arrived, by this clock.
    post(
        &server,
        json!({"event": "click", "time": t0, "email": "d@example.org"}),
    )
    .await;
    let pending = server.get("/api/jobs?status=pending").await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    advance(&server, "29m").await;
    assert_eq!(
        server
            .get("/api/jobs?status=pending")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    advance(&server, "1m").await;
    let done = server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array().unwrap().len() == 3
        })
        .await;
    assert!(reminders(&done).contains(&"follow-up for d@example.org".to_owned()));

    // The clock never runs backwards, and a server on the system clock cannot be moved.
    let back = server
        .post("/api/clock", &json!({ "to": start }).to_string())
        .await;
    assert_eq!(back.status(), 409);
    assert_eq!(server.terminate(), 0);
    let server = Server::start(dir.path());
    let r = server
        .post("/api/clock", &json!({ "advance": "1h" }).to_string())
        .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("--manual-clock"));
}

/// Extreme event times neither panic nor fail the group commit they share with others:
/// a time past year 9999 counts as none (the arrival time stands in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_time_past_year_9999_is_not_a_time() {
    let (_dir, server) = Server::in_project(CONFIG, &[("reminder.yaml", REMINDER)]);
    // The first is the last second chrono can represent: plus 2 s it would overflow.
    for time in [
        json!(8_210_266_876_799_i64),
        json!("99999-01-01T00:00:00Z"),
        json!(-1e15),
    ] {
        let body = json!({"event": "sent", "time": time, "MessageID": 9, "email": "a@example.org"});
        assert_eq!(
            server.post("/hooks/mailjet", &body.to_string()).await.status(),
            200
        );
    }
    let events = server.get("/api/events").await;
    let years: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["time"].as_str().unwrap()[..2])
        .collect();
    assert_eq!(years, ["20", "20", "20"], "{events}");
    assert_eq!(server.get("/api/stats").await["timers_pending"], 3);
}

/// The id of the newest event.
async fn newest(server: &Server) -> String {
    server.get("/api/events?limit=1").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The server says why: `/api/events/{id}` shows, per rule that could see the event, the
/// decision and its reason — a rule held back by `once` (key, quiet until), an `absent`
/// timer started, then cancelled or fired — with the conditions worked out by the version
/// of the rules that decided, even after the file changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_says_why_with_the_rules_that_decided() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        CONFIG,
        &[("discount.yaml", DISCOUNT), ("slow.yaml", SLOW)],
    );
    let t0 = 1_800_000_000;
    let server = Server::start_with(dir.path(), &["--manual-clock", "2027-01-15T08:00:00Z"]);
    let why = |detail: &Value, rule: &str| -> Value {
        detail["why"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["rule"] == rule)
            .cloned()
            .unwrap_or_else(|| panic!("no `{rule}` in {detail}"))
    };

    post(&server, ev("sent", 1, "a@example.org", t0)).await;
    let sent = newest(&server).await;
    post(&server, ev("open", 1, "a@example.org", t0 + 60)).await;
    let first = newest(&server).await;
    post(&server, ev("sent", 2, "a@example.org", t0 + 120)).await;
    post(&server, ev("open", 2, "a@example.org", t0 + 180)).await;
    let held = newest(&server).await;

    let d = server.get(&format!("/api/events/{first}")).await;
    let w = why(&d, "discount");
    assert_eq!(w["fires"], "true", "{w}");
    assert_eq!(w["state"]["after"][0]["seen"], true, "{w}");

    let d = server.get(&format!("/api/events/{held}")).await;
    assert_eq!(d["matched"], json!([]));
    let w = why(&d, "discount");
    assert_eq!(w["fires"], "false", "{w}");
    assert!(
        w["reason"]
            .as_str()
            .unwrap()
            .starts_with("once: already fired for a@example.org, quiet until 2027-01-16T08:01:00"),
        "{w}"
    );
    assert_eq!(w["state"]["once_key"], "a@example.org");
    // Conditions, worked out again: the campaign matched, the send was seen.
    let conditions = w["conditions"].to_string();
    assert!(conditions.contains("mj_campaign_id eq 7173"), "{conditions}");
    assert!(conditions.contains("\"saw\":7173"), "{conditions}");

    // The sent event's timer: started, then cancelled by the open.
    let d = server.get(&format!("/api/events/{sent}")).await;
    let w = why(&d, "slow");
    assert_eq!(w["fires"], "false", "{w}");
    assert!(
        w["reason"].as_str().unwrap().contains("arrived at"),
        "cancelled: {w}"
    );
    let outcomes: Vec<&str> = d["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["rule"] == "slow")
        .map(|x| x["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["waits", "cancelled"], "{d}");

    // An unopened send's timer fires when the clock gets there.
    post(&server, ev("sent", 3, "b@example.org", t0)).await;
    let second_sent = newest(&server).await;
    assert_eq!(advance(&server, "48h").await, 1);
    let d = server.get(&format!("/api/events/{second_sent}")).await;
    let w = why(&d, "slow");
    assert_eq!(w["fires"], "true", "{w}");
    assert!(w["reason"].as_str().unwrap().starts_with("no `open`"), "{w}");

    // The rule changes: the old event is still explained by the version that decided.
    std::fs::write(
        dir.path().join("rules/discount.yaml"),
        DISCOUNT.replace("7173", "9999"),
    )
    .unwrap();
    server.post_json("/api/rules/reload", "").await;
    let d = server.get(&format!("/api/events/{held}")).await;
    assert!(d.get("why_note").is_none(), "{d}");
    let conditions = why(&d, "discount")["conditions"].to_string();
    assert!(conditions.contains("mj_campaign_id eq 7173"), "{conditions}");
}

/// Mailjet's `Payload` (a JSON string set at send time) read into by a condition, an
/// `after` key and a template, in the server and in the rule's inline tests alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_keys_and_templates_read_into_the_payload_string() {
    let rule = r#"on: open
when:
  Payload.plan: pro
  after: { event: sent, same: Payload.order, within: 1h }
actions: [ { log: { message: "{{Payload.tz}} {{Payload.order}}" } } ]
tests:
  - event: { event: open, email: a@b.co, Payload: "{\"plan\":\"pro\",\"tz\":\"Asia/Tokyo\",\"order\":9}" }
    history: [ { event: sent, email: a@b.co, Payload: "{\"order\":9}", ago: 5m } ]
    expect: match
    actions: [ { kind: log, message: "Asia/Tokyo 9" } ]
  - event: { event: open, email: a@b.co, Payload: "{\"plan\":\"free\",\"order\":9}" }
    history: [ { event: sent, email: a@b.co, Payload: "{\"order\":9}", ago: 5m } ]
    expect: no_match
"#;
    let (_dir, server) = Server::in_project(CONFIG, &[("pro.yaml", rule)]);
    let rules = server.get("/api/rules").await;
    assert_eq!(rules["rules"][0]["id"], "pro", "its inline tests pass: {rules}");
    let t = 1_800_000_000;
    let payload =
        |p: &str| json!({"event": "sent", "time": t, "MessageID": 1, "email": "a@b.co", "Payload": p});
    post(&server, payload("{\"order\": 9}")).await;
    let mut open = payload("{\"plan\": \"pro\", \"tz\": \"Europe/Paris\", \"order\": 9}");
    open["event"] = json!("open");
    open["time"] = json!(t + 60);
    assert_eq!(post(&server, open).await, json!(["pro"]));
    let jobs = server.get("/api/jobs").await;
    assert_eq!(jobs[0]["action"]["message"], "Europe/Paris 9", "{jobs}");
}

/// `local_time` in the contact's zone (read from the `Payload` string): the rule's inline
/// tests run at load, and the server's `why` shows where the moment fell, fallback noted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_time_is_judged_in_the_contacts_zone_and_explained() {
    let rule = r#"on: open
when:
  local_time: { tz: "{{Payload.tz}}", fallback: Europe/Paris, between: ["08:00", "21:00"], days: [mon, tue, wed, thu, fri] }
actions: [ { log: { message: "{{email}}" } } ]
tests:
  - name: Tokyo on a Friday morning
    event: { event: open, email: a@b.co, time: "2027-01-15T00:30:00Z", Payload: "{\"tz\":\"Asia/Tokyo\"}" }
    expect: match
  - name: Tokyo on Saturday
    event: { event: open, email: a@b.co, time: "2027-01-16T01:00:00Z", Payload: "{\"tz\":\"Asia/Tokyo\"}" }
    expect: no_match
"#;
    let (_dir, server) = Server::in_project(CONFIG, &[("office.yaml", rule)]);
    let rules = server.get("/api/rules").await;
    assert_eq!(rules["rules"][0]["id"], "office", "{rules}");
    // Friday 2027-01-15 02:00 UTC: 11:00 in Tokyo, 03:00 in Paris (the fallback).
    let body = json!({"event": "open", "time": "2027-01-15T02:00:00Z", "MessageID": 1, "email": "a@b.co", "Payload": "{\"tz\":\"Nowhere/Land\"}"});
    assert_eq!(post(&server, body).await, json!([]));
    let id = server.get("/api/events?limit=1").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trail = server.get(&format!("/api/events/{id}")).await;
    let why = &trail["why"][0];
    assert_eq!(why["fires"], "false", "{trail}");
    let saw = why["conditions"]["saw"]
        .as_str()
        .or(why["conditions"]["children"][0]["saw"].as_str());
    assert_eq!(
        saw,
        Some("Fri 03:00 Europe/Paris (the fallback: zone `Nowhere/Land` unknown)"),
        "{trail}"
    );
    let body = json!({"event": "open", "time": "2027-01-15T02:00:00Z", "MessageID": 2, "email": "a@b.co", "Payload": "{\"tz\":\"Asia/Tokyo\"}"});
    assert_eq!(post(&server, body).await, json!(["office"]));
}

/// A send window holds each contact's job until 09:00 in their own zone, durably and on
/// the manual clock; the audit trail says until when; `send_window: none` and contacts
/// already in their window go at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_windows_hold_jobs_until_the_contacts_morning() {
    let rule = r#"on: sent
actions:
  - log: { message: "reminder for {{email}}" }
    send_window: { between: ["09:00", "20:00"], tz: "{{Payload.tz}}", fallback: UTC }
  - log: { message: "receipt for {{email}}" }
    send_window: none
"#;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), CONFIG, &[("remind.yaml", rule)]);
    // Friday 2027-01-15 02:00 UTC: 11:00 in Tokyo, 03:00 in Paris, 21:00 (Thursday) in New York.
    let server = Server::start_with(dir.path(), &["--manual-clock", "2027-01-15T02:00:00Z"]);
    for (i, (email, tz)) in [
        ("t@x.jp", "Asia/Tokyo"),
        ("p@x.fr", "Europe/Paris"),
        ("n@x.us", "America/New_York"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"event": "sent", "time": 1_800_000_000i64 - 6 * 3600 + i as i64, "MessageID": 600 + i, "email": email,
                          "Payload": json!({"tz": tz}).to_string()});
        post(&server, body).await;
    }
    let done = |jobs: &Value| -> Vec<String> {
        let mut m: Vec<String> = jobs
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["action"]["message"].as_str().unwrap().to_owned())
            .collect();
        m.sort();
        m
    };
    let ok = server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array().unwrap().len() == 4
        })
        .await;
    assert_eq!(
        done(&ok),
        [
            "receipt for n@x.us",
            "receipt for p@x.fr",
            "receipt for t@x.jp",
            "reminder for t@x.jp"
        ]
    );
    let held = server.get("/api/jobs?status=pending").await;
    let mut held: Vec<(String, String, String)> = held
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["action"]["message"].as_str().unwrap().to_owned(),
                j["next_attempt_at"].as_str().unwrap().to_owned(),
                j["action"]["held"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    held.sort();
    assert_eq!(held[0].0, "reminder for n@x.us");
    assert_eq!(held[0].2, "until 2027-01-15T09:00:00-05:00 (send window)");
    assert!(held[0].1.starts_with("2027-01-15T14:00:00"), "{held:?}");
    assert_eq!(held[1].2, "until 2027-01-15T09:00:00+01:00 (send window)");
    assert!(held[1].1.starts_with("2027-01-15T08:00:00"), "{held:?}");

    // Restarted while held: still held, then sent when each window opens.
    assert_eq!(server.terminate(), 0);
    let server = Server::start_with(dir.path(), &["--manual-clock", "2027-01-15T02:00:00Z"]);
    advance(&server, "5h59m59s").await;
    let pending = server.get("/api/jobs?status=pending").await;
    assert_eq!(
        pending.as_array().unwrap().len(),
        2,
        "a second before 09:00 in Paris: {pending}"
    );
    advance(&server, "1s").await;
    server
        .wait_for("/api/jobs?status=pending", 10, |j| {
            j.as_array().unwrap().len() == 1
        })
        .await;
    advance(&server, "6h").await;
    let ok = server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array().unwrap().len() == 6
        })
        .await;
    assert!(done(&ok).contains(&"reminder for n@x.us".to_owned()));
}

/// `send_window:` in hookflow.yaml holds every email action without its own (and only
/// email); a bad zone in it is a located error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_send_window_holds_email_actions() {
    let config = format!("{CONFIG}send_window: {{ between: [\"09:00\", \"20:00\"], tz: UTC }}\n");
    let rule = r#"on: sent
actions:
  - email: { to: "{{email}}", subject: hi, text: hello }
  - log: { message: "sent to {{email}}" }
"#;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &config, &[("mail.yaml", rule)]);
    let server = Server::start_with(dir.path(), &["--manual-clock", "2027-01-15T02:00:00Z"]);
    post(&server, json!({"event": "sent", "time": 1_800_000_000i64 - 6 * 3600, "MessageID": 700, "email": "a@x.example"})).await;
    server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array().unwrap().len() == 1
        })
        .await;
    let pending = server.get("/api/jobs?status=pending").await;
    assert_eq!(pending[0]["kind"], "email", "{pending}");
    assert_eq!(
        pending[0]["action"]["held"],
        "until 2027-01-15T09:00:00+00:00 (send window)"
    );
    drop(server);

    project(
        dir.path(),
        &format!("{CONFIG}send_window: {{ between: [\"09:00\", \"20:00\"], tz: Europe/Pari }}\n"),
        &[],
    );
    let run = crate::util::hookflow_in(dir.path(), &["check", "--config", "hookflow.yaml"], &[]);
    assert!(
        run.stdout.contains("did you mean `Europe/Paris`")
            || run.stderr.contains("did you mean `Europe/Paris`"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

/// Frequency caps in the server: `caps:` in hookflow.yaml covers every email action; a
/// third marketing email to one person in a day is skipped, one that says
/// `when_capped: hold` waits (on the manual clock) until the cap has room and is then
/// delivered, a transactional one (`cap: none`) is never counted. A misspelt cap is a
/// located error with a did-you-mean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_skip_or_hold_the_third_email_of_a_day() {
    let config = format!("{CONFIG}caps:\n  - {{ name: marketing, kinds: [email], max: 2, per: 1d }}\n");
    let promo = r#"on: open
actions:
  - email: { to: "{{email}}", subject: "Offer {{MessageID}}", text: hello }
"#;
    let later = r#"on: click
actions:
  - email: { to: "{{email}}", subject: "Held {{MessageID}}", text: hello }
    when_capped: hold
"#;
    let receipt = r#"on: sent
actions:
  - email: { to: "{{email}}", subject: "Receipt {{MessageID}}", text: thanks }
    cap: none
"#;
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        &config,
        &[
            ("promo.yaml", promo),
            ("later.yaml", later),
            ("receipt.yaml", receipt),
        ],
    );
    let server = Server::start_with(dir.path(), &["--manual-clock", "2027-01-15T08:00:00Z"]);
    let t = 1_800_000_000i64;
    let mk = |kind: &str, id: u64, dt: i64| json!({"event": kind, "time": t + dt, "MessageID": id, "email": "Ann@X.example"});
    for (i, body) in [
        mk("open", 1, 0),
        mk("open", 2, 60),
        mk("sent", 3, 90),
        mk("open", 4, 120),
        mk("click", 5, 180),
    ]
    .into_iter()
    .enumerate()
    {
        let r = server.post("/hooks/mailjet", &body.to_string()).await;
        assert_eq!(r.status(), 200, "event {i}");
    }
    server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array().unwrap().len() == 3
        })
        .await;
    let skipped = server.get("/api/jobs?status=skipped").await;
    assert_eq!(skipped.as_array().unwrap().len(), 1, "{skipped}");
    assert_eq!(skipped[0]["last_error"], "skipped (capped: marketing, 2 in 1d)");
    assert_eq!(skipped[0]["action"]["subject"], "Offer 4");
    let pending = server.get("/api/jobs?status=pending").await;
    assert_eq!(pending[0]["action"]["subject"], "Held 5");
    assert_eq!(
        pending[0]["action"]["held"],
        "until 2027-01-16T08:00:00+00:00 (capped: marketing, 2 in 1d)"
    );
    let succeeded = server.get("/api/jobs?status=succeeded").await;
    let mut subjects: Vec<&str> = succeeded
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["action"]["subject"].as_str().unwrap())
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["Offer 1", "Offer 2", "Receipt 3"]);

    // A day later the first offer has left the period: the held one goes out.
    server
        .post_json("/api/clock", &json!({ "advance": "1d" }).to_string())
        .await;
    server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array().unwrap().len() == 4
        })
        .await;
    drop(server);

    project(
        dir.path(),
        &config,
        &[(
            "later.yaml",
            "on: click\nactions:\n  - log: { message: hi }\n    cap: marketting\n",
        )],
    );
    let run = crate::util::hookflow_in(dir.path(), &["check", "--config", "hookflow.yaml"], &[]);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains("later.yaml:4:10: no cap `marketting` in the configuration — did you mean `marketing`?"),
        "{out}"
    );
}

/// `contact.*` in conditions and templates, decided in the commit from the store: lists
/// and properties that `contacts` actions set, and `contact.sent` counts of what rules
/// planned for the person; the server's "why" shows the values the contact had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_lists_props_and_counts_decide_rules() {
    let join = r#"on: sent
when: { CustomID: join }
actions:
  - contacts: { list: vip, add: "{{email}}", set: { plan: "{{plan}}" } }
"#;
    let offer = r#"on: open
when:
  contact.lists: { contains: vip }
  contact.props.plan: pro
  contact.sent.log.1d: { lt: 2 }
actions:
  - log: { message: "offer for a {{contact.props.plan}} member, {{email}}" }
tests:
  - event: { event: open, email: ann@example.org }
    contact: { lists: [vip], props: { plan: pro } }
    expect: match
    actions: [ { message: "offer for a pro member, ann@example.org" } ]
  - event: { event: open, email: ann@example.org }
    contact: { lists: [vip], props: { plan: free } }
    expect: no_match
  - event: { event: open, email: ann@example.org }
    expect: no_match
"#;
    let (_dir, server) = Server::in_project(CONFIG, &[("join.yaml", join), ("offer.yaml", offer)]);
    let t = 1_800_000_000i64;
    for (email, plan) in [("Ann@example.org", "pro"), ("bob@example.org", "free")] {
        let body = json!({"event": "sent", "time": t, "MessageID": 1, "email": email, "CustomID": "join", "plan": plan});
        post(&server, body).await;
    }
    server
        .wait_for("/api/lists/vip/contacts", 10, |c| {
            c.as_array().unwrap().len() == 2
        })
        .await;
    let open =
        |email: &str, id: u64| json!({"event": "open", "time": t + 60, "MessageID": id, "email": email});
    assert_eq!(post(&server, open("ann@example.org", 2)).await, json!(["offer"]));
    assert_eq!(
        post(&server, open("bob@example.org", 3)).await,
        json!([]),
        "plan free"
    );
    assert_eq!(
        post(&server, open("carl@example.org", 4)).await,
        json!([]),
        "not on the list"
    );
    assert_eq!(
        post(&server, open("ANN@example.org", 5)).await,
        json!(["offer"]),
        "one sent so far"
    );
    assert_eq!(
        post(&server, open("ann@example.org", 6)).await,
        json!([]),
        "two in a day: enough"
    );
    let jobs = server.get("/api/jobs?status=succeeded").await;
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .any(|j| j["action"]["message"] == "offer for a pro member, ann@example.org"),
        "{jobs}"
    );
    let id = server.get("/api/events?limit=1").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trail = server.get(&format!("/api/events/{id}")).await;
    let why = &trail["why"][0];
    assert_eq!(why["rule"], "offer", "{trail}");
    let parts = why["conditions"]["children"].as_array().unwrap();
    let sent = parts
        .iter()
        .find(|c| c["condition"] == "contact.sent.log.1d lt 2")
        .unwrap();
    assert_eq!(
        (sent["result"].as_str(), sent["saw"].as_u64()),
        (Some("false"), Some(2)),
        "{trail}"
    );

    // A misspelt contact field is a located error with the fix.
    let bad = tempfile::tempdir().unwrap();
    project(
        bad.path(),
        CONFIG,
        &[(
            "bad.yaml",
            "on: open\nwhen: { contact.list: { contains: vip } }\nactions: [ { log: { message: x } } ]\n",
        )],
    );
    let run = crate::util::hookflow_in(bad.path(), &["check", "--config", "hookflow.yaml"], &[]);
    assert!(
        run.stdout.contains("bad.yaml:2:9: `contact.list` is not something hookflow knows of a contact — did you mean `contact.lists`?"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

/// A source whose events name their person elsewhere says where (`contact:`): the jobs
/// of its events carry that address, lowercased, and a `cancel` for it reaches them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sources_contact_path_names_whose_jobs_they_are() {
    let config =
        format!("{CONFIG}sources:\n  shop: {{ format: json, type_path: $.type, contact: customer.email }}\n");
    let welcome = "on: signup\nactions:\n  - log: { message: \"day two\" }\n    delay: 2d\n";
    let stop = "on: closed\nactions:\n  - cancel: { rules: [welcome], contact: \"{{customer.email}}\" }\n";
    let (_dir, server) = Server::in_project(&config, &[("welcome.yaml", welcome), ("stop.yaml", stop)]);
    for body in [
        json!({"type": "signup", "customer": {"email": "Zoe@X.example"}}),
        json!({"type": "signup", "customer": {"email": "yan@x.example"}}),
        json!({"type": "closed", "customer": {"email": "zoe@x.example"}}),
    ] {
        assert_eq!(server.post("/hooks/shop", &body.to_string()).await.status(), 200);
    }
    let cancelled = server.get("/api/jobs?status=cancelled").await;
    assert_eq!(cancelled.as_array().unwrap().len(), 1, "{cancelled}");
    assert_eq!(
        server
            .get("/api/jobs?status=pending")
            .await
            .as_array()
            .unwrap()
            .len(),
        1,
        "yan's"
    );
}

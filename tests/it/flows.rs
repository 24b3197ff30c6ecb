//! The eight flows of docs/flows.md, as shipped in examples/flows, rehearsed in a real
//! server on the manual clock: their inline tests pass (`check`), and posted events do
//! what each recipe says — emails to the outbox, signed calls to a real HTTP receiver,
//! lists and suppressions in the store.

use serde_json::{Value, json};

use crate::server::Server;
use crate::sink::Sink;

/// 2027-01-15T08:00:00Z: where the clock starts.
const T0: i64 = 1_800_000_000;

/// examples/flows in a scratch folder, on a free port, its CRM and alert calls sent to
/// `sink`, with a signing secret; the server on the manual clock at T0.
fn start(sink: &Sink) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let from = crate::util::root().join("examples/flows");
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    for entry in std::fs::read_dir(from.join("rules")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text
            .replace("https://crm.example.com", &sink.url)
            .replace("https://alerts.example.com", &sink.url);
        std::fs::write(dir.path().join("rules").join(path.file_name().unwrap()), text).unwrap();
    }
    let config = std::fs::read_to_string(from.join("hookflow.yaml"))
        .unwrap()
        .replace("listen: 127.0.0.1:8080", "listen: 127.0.0.1:0")
        .replace(
            "${env:WEBHOOK_SIGNING_SECRET}",
            &hookflow::base::net::sign::generate(),
        );
    std::fs::write(dir.path().join("hookflow.yaml"), config).unwrap();
    let server = Server::start_with(dir.path(), &["--manual-clock", "2027-01-15T08:00:00Z"]);
    (dir, server)
}

async fn post(server: &Server, body: Value) {
    let r = server.post("/hooks/mailjet", &body.to_string()).await;
    assert_eq!(r.status(), 200, "{body}");
}

async fn advance(server: &Server, by: &str) {
    server
        .post_json("/api/clock", &json!({ "advance": by }).to_string())
        .await;
}

/// The jobs of rule `rule`, oldest first.
async fn jobs_of(server: &Server, rule: &str) -> Vec<Value> {
    let all = server.get("/api/jobs?limit=1000").await;
    let mut mine: Vec<Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["rule_id"] == rule)
        .cloned()
        .collect();
    mine.reverse();
    mine
}

async fn statuses(server: &Server, rule: &str) -> Vec<String> {
    jobs_of(server, rule)
        .await
        .iter()
        .map(|j| j["status"].as_str().unwrap().to_owned())
        .collect()
}

fn ev(kind: &str, email: &str, dt: i64, extra: Value) -> Value {
    let mut v = json!({"event": kind, "email": email, "time": T0 + dt});
    if let (Value::Object(m), Value::Object(x)) = (&mut v, extra) {
        m.extend(x);
    }
    v
}

#[test]
fn the_flows_inline_tests_pass() {
    let dir = crate::util::root().join("examples/flows");
    let secret = hookflow::base::net::sign::generate();
    let run = crate::util::hookflow_in(
        &dir,
        &["check", "--config", "hookflow.yaml"],
        &[("WEBHOOK_SIGNING_SECRET", secret.as_str())],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("0 errors; tests: 22 passed, 0 failed"),
        "{}",
        run.stdout
    );
}

/// Flow 4: the welcome series, ended for one person by their unsubscribe; the other
/// person's reminder goes out when its three days are up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_series_is_cancelled_by_an_unsubscribe() {
    let sink = Sink::start().await;
    let (_dir, server) = start(&sink);
    let welcome = |id: u64| json!({"CustomID": "welcome", "MessageID": id});
    post(&server, ev("sent", "di@example.org", 0, welcome(1))).await;
    post(&server, ev("sent", "el@example.org", 0, welcome(2))).await;
    post(&server, ev("open", "di@example.org", 3600, welcome(1))).await;
    assert_eq!(statuses(&server, "welcome/part-2").await, ["pending"]);
    // di's first timer was cancelled by the open; start another by a second welcome send.
    post(&server, ev("sent", "di@example.org", 4000, welcome(3))).await;
    post(&server, ev("unsub", "Di@Example.org", 7200, json!({}))).await;
    let part2 = jobs_of(&server, "welcome/part-2").await;
    assert_eq!(part2[0]["status"], "cancelled");
    assert!(
        part2[0]["last_error"]
            .as_str()
            .unwrap()
            .starts_with("cancelled by unsub event"),
        "{part2:?}"
    );
    let stop = jobs_of(&server, "welcome/stop").await;
    assert_eq!(
        stop[0]["last_error"],
        "cancelled 1 job and 1 timer of di@example.org (rules: welcome/part-2, welcome/reminder, welcome/stop)"
    );
    advance(&server, "3d").await;
    let reminders = server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array()
                .unwrap()
                .iter()
                .any(|j| j["rule_id"] == "welcome/reminder")
        })
        .await;
    let to: Vec<&Value> = reminders
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["rule_id"] == "welcome/reminder")
        .map(|j| &j["action"]["to"])
        .collect();
    assert_eq!(to, [&json!("el@example.org")], "di left; el did not open");
}

/// Flow 7: the reminder is held to 09:00 in each contact's zone (three zones, and a
/// Paris date across the change to summer time), and goes out only when the clock
/// gets there. Flow 8: the third marketing email of a day is skipped; the receipt is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_in_three_zones_and_two_marketing_emails_a_day() {
    let sink = Sink::start().await;
    let (_dir, server) = start(&sink);
    let zone = |id: u64, tz: &str| json!({"mj_campaign_id": 3, "MessageID": id, "Payload": json!({"tz": tz}).to_string()});
    // Sent at 08:00 UTC: due at 08:00 UTC two days later.
    post(
        &server,
        ev("sent", "ny@example.org", 0, zone(1, "America/New_York")),
    )
    .await;
    post(&server, ev("sent", "tk@example.org", 0, zone(2, "Asia/Tokyo"))).await;
    post(
        &server,
        ev(
            "sent",
            "pa@example.org",
            0,
            json!({"mj_campaign_id": 3, "MessageID": 3}),
        ),
    )
    .await;
    advance(&server, "2d").await;
    let held: Vec<(String, String)> = jobs_of(&server, "7-quiet-hours")
        .await
        .iter()
        .map(|j| {
            (
                j["action"]["to"].as_str().unwrap().to_owned(),
                j["action"]["held"].as_str().unwrap_or("not held").to_owned(),
            )
        })
        .collect();
    assert!(
        held.contains(&(
            "ny@example.org".into(),
            "until 2027-01-17T09:00:00-05:00 (send window)".into()
        )),
        "{held:?}"
    );
    // 17:00 in Tokyo: within the window, sent at once.
    assert!(
        held.contains(&("tk@example.org".into(), "not held".into())),
        "{held:?}"
    );
    // 09:00 in Paris is 08:00 UTC: due exactly then, not held.
    assert!(
        held.contains(&("pa@example.org".into(), "not held".into())),
        "{held:?}"
    );
    advance(&server, "5h59m").await;
    assert_eq!(
        jobs_of(&server, "7-quiet-hours")
            .await
            .iter()
            .filter(|j| j["status"] == "pending")
            .count(),
        1,
        "New York is still asleep"
    );
    advance(&server, "1m").await;
    server
        .wait_for("/api/jobs?status=pending", 10, |j| {
            !j.as_array()
                .unwrap()
                .iter()
                .any(|j| j["rule_id"] == "7-quiet-hours")
        })
        .await;

    // Across the change to summer time in Paris (2027-03-28): due at 23:00 UTC on the
    // 28th, which is 01:00 on the 29th in Paris, held until 09:00 (+02:00).
    server
        .post_json("/api/clock", &json!({ "to": "2027-03-26T23:00:00Z" }).to_string())
        .await;
    let t = 1_806_102_000; // 2027-03-26T23:00:00Z
    post(
        &server,
        json!({"event": "sent", "email": "dst@example.org", "time": t, "mj_campaign_id": 3, "MessageID": 9}),
    )
    .await;
    advance(&server, "2d").await;
    let dst = jobs_of(&server, "7-quiet-hours").await;
    let last = dst
        .iter()
        .find(|j| j["action"]["to"] == "dst@example.org")
        .unwrap();
    assert_eq!(
        last["action"]["held"],
        "until 2027-03-29T09:00:00+02:00 (send window)"
    );

    // Flow 8: three campaigns to one person, none opened: their three reminders fall
    // due together (held to the same morning), and the third is skipped by the cap.
    // The receipt the same day is transactional: never capped.
    let now = t + 2 * 86_400;
    for id in [20u64, 21, 22] {
        post(&server, json!({"event": "sent", "email": "cap@example.org", "time": now, "MessageID": id, "mj_campaign_id": 5})).await;
    }
    post(&server, json!({"event": "sent", "email": "cap@example.org", "time": now, "MessageID": 23, "mj_campaign_id": 0, "CustomID": "order-1"})).await;
    advance(&server, "2d").await;
    let reminders: Vec<Value> = jobs_of(&server, "7-quiet-hours")
        .await
        .into_iter()
        .filter(|j| j["action"]["to"] == "cap@example.org")
        .collect();
    assert_eq!(reminders.len(), 3);
    let skipped: Vec<&Value> = reminders.iter().filter(|j| j["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 1, "{reminders:?}");
    assert_eq!(skipped[0]["last_error"], "skipped (capped: marketing, 2 in 1d)");
    let receipts = jobs_of(&server, "8-receipts").await;
    assert_eq!(receipts.len(), 1);
    assert_ne!(receipts[0]["status"], "skipped", "receipts are never capped");
}

/// Flows 1, 2, 3, 5 and 6 against the HTTP receiver and the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_calls_alerts_lists_and_suppression() {
    let mut sink = Sink::start().await;
    let (_dir, server) = start(&sink);
    // Flow 2: two pricing clicks in a week → one signed CRM call.
    let pricing = json!({"url": "https://shop.example.com/pricing", "mj_campaign_id": 7});
    post(&server, ev("click", "bo@example.org", 0, pricing.clone())).await;
    let call = sink.next(10).await;
    assert_eq!(call.json()["email"], "bo@example.org");
    assert!(
        call.header("webhook-signature").starts_with("v1,"),
        "{:?}",
        call.headers
    );
    post(&server, ev("click", "Bo@example.org", 86_400, pricing)).await;
    assert_eq!(
        jobs_of(&server, "2-crm-pricing-click").await.len(),
        1,
        "once a week"
    );

    // Flow 5: blocks from one domain → one alert in the hour.
    for (i, who) in ["a", "b", "c"].iter().enumerate() {
        let e = json!({"error_related_to": "recipient", "error": "user unknown"});
        post(
            &server,
            ev("blocked", &format!("{who}@bigmail.example"), 100 + i as i64, e),
        )
        .await;
    }
    let alert = sink.next(10).await;
    assert!(
        alert.json()["text"]
            .as_str()
            .unwrap()
            .starts_with("bigmail.example is blocking")
    );
    assert_eq!(jobs_of(&server, "5-blocked-domain-alert").await.len(), 1);

    // Flow 6: spam → suppressed, the CRM told (signed).
    post(
        &server,
        ev(
            "spam",
            "Gus@Example.org",
            200,
            json!({"source": "JMRPP", "mj_campaign_id": 9}),
        ),
    )
    .await;
    let told = sink.next(10).await;
    assert_eq!(told.json()["complaint"], "spam");
    assert!(!told.header("webhook-signature").is_empty());
    let sup = server
        .wait_for("/api/suppressions", 10, |s| s.as_array().unwrap().len() == 1)
        .await;
    assert_eq!(sup[0]["email"], "gus@example.org");

    // Flow 3: three soft bounces in a week → moved to retry-later.
    for day in [0, 2, 5] {
        post(
            &server,
            ev(
                "bounce",
                "cy@example.org",
                300 + day * 86_400,
                json!({"hard_bounce": false}),
            ),
        )
        .await;
    }
    let moved = server
        .wait_for("/api/lists/retry-later/contacts", 10, |c| {
            c.as_array().unwrap().len() == 1
        })
        .await;
    assert_eq!(moved[0]["email"], "cy@example.org");
}

//! `/metrics` read by the field's own tool, `promtool check metrics`, after a workload that
//! moves every metric: events, a duplicate, a refusal, a stateful firing, an `absent`
//! timer on the manual clock, a delivery that fails and retries, a skipped email.

use serde_json::json;

use crate::server::{Server, project};

/// promtool, from Debian's `prometheus` package (`.ci/run` installs it).
fn promtool() -> &'static str {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "promtool is missing: run .ci/run, or `apt-get install prometheus` (Debian's package has it)"
    );
    "promtool"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_metrics_and_every_series_is_there() {
    let mut sink = crate::sink::Sink::start().await;
    sink.then(500, None);
    let dir = tempfile::tempdir().unwrap();
    let rules = [
        (
            "fwd.yaml",
            format!("on: open\nactions: [ {{ http: {{ url: \"{}/in\", json: {{ e: \"{{{{email}}}}\" }} }} }} ]\n", sink.url),
        ),
        (
            "remind.yaml",
            "on: sent\nabsent: { event: open, same: MessageID, within: 1h }\nactions: [ { log: { message: \"remind {{email}}\" } } ]\n".to_owned(),
        ),
        (
            "once.yaml",
            "on: click\nonce: { per: \"{{email}}\", for: 1d }\nactions: [ { email: { to: \"{{email}}\", subject: hi, text: x } } ]\n".to_owned(),
        ),
    ];
    let rules: Vec<(&str, &str)> = rules.iter().map(|(a, b)| (*a, b.as_str())).collect();
    project(
        dir.path(),
        "listen: 127.0.0.1:0\nstore: sqlite://data/hookflow.db\ndelivery:\n  schedule: [ { retries: 2, every: 1s } ]\n",
        &rules,
    );
    let server = Server::start_with(dir.path(), &["--manual-clock", "2026-01-01T00:00:00Z"]);
    let t = 1_767_225_600; // the clock's start
    let ev = |kind: &str, id: u64| {
        json!({"event": kind, "time": t, "MessageID": id, "email": "m@example.org"}).to_string()
    };
    server.post("/hooks/mailjet", &ev("open", 1)).await;
    server.post("/hooks/mailjet", &ev("open", 1)).await; // a duplicate
    server.post("/hooks/mailjet", &ev("sent", 2)).await;
    server.post("/hooks/mailjet", "{").await; // refused
    // Suppressed: the email is skipped.
    crate::util::hookflow_in(dir.path(), &["suppressions", "add", "m@example.org"], &[]);
    server.post("/hooks/mailjet", &ev("click", 3)).await;
    let fired = server.post_json("/api/clock", r#"{"advance": "1h"}"#).await;
    assert_eq!(fired["timers_fired"], 1, "{fired}");
    sink.next(10).await;
    server
        .wait_for("/api/stats", 20, |s| {
            s["jobs"]["succeeded"] == 2 && s["jobs"]["skipped"] == 1
        })
        .await;

    let r = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    let mut child = std::process::Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for series in [
        "hookflow_build_info{version=",
        "hookflow_events_total{source=\"mailjet\",type=\"open\"} 1",
        "hookflow_duplicate_events_total 1",
        "hookflow_rejected_requests_total{code=\"400\"} 1",
        "hookflow_rule_matches_total{rule=\"remind\"} 1",
        "hookflow_rule_matches_total{rule=\"once\"} 1",
        "hookflow_rule_matches_total{rule=\"fwd\"} 1",
        "hookflow_timers_fired_total 1",
        "hookflow_timers_pending 0",
        "hookflow_attempts_total{kind=\"http\",result=\"failure\",status_class=\"5xx\"} 1",
        "hookflow_attempts_total{kind=\"http\",result=\"success\",status_class=\"2xx\"} 1",
        "hookflow_attempts_total{kind=\"email\",result=\"skipped\",status_class=\"none\"} 1\n",
        "hookflow_retries_total{kind=\"http\"} 1",
        "hookflow_endpoint_latency_seconds_count{endpoint=",
        "hookflow_jobs{status=\"skipped\"} 1",
        "hookflow_endpoints_suspended 0",
        "hookflow_oldest_due_job_age_seconds 0",
        "hookflow_ingest_request_duration_seconds_count",
        "hookflow_ingest_requests_in_flight 0",
        "hookflow_ingest_queue_depth 0",
        "hookflow_last_reload_success_timestamp_seconds",
        "hookflow_rule_set_info{hash=",
        "hookflow_rule_set_generation 1",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(text.contains(series), "no `{series}` in:\n{text}");
    }
}

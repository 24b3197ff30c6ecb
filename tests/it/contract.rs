//! The examples of the rule-language page (tests/fixtures/contract holds them verbatim).

use serde_json::{Value, json};

use crate::util::{hookflow, json};

fn dry(event: Value, history: Option<Value>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("event.json");
    std::fs::write(&ev, event.to_string()).unwrap();
    let ev = ev.display().to_string();
    let mut args = vec![
        "test",
        "--rules",
        "tests/fixtures/contract/rules",
        "--event",
        &ev,
        "--format",
        "json",
    ];
    let h = dir.path().join("history.json");
    let h_str = h.display().to_string();
    if let Some(history) = history {
        std::fs::write(&h, history.to_string()).unwrap();
        args.extend(["--history", &h_str]);
    }
    json(&args)
}

fn fired(out: &Value) -> Vec<String> {
    out["events"][0]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn contract_examples_load_and_their_tests_pass() {
    let run = hookflow(&["check", "tests/fixtures/contract/rules"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("4 rules loaded, 0 errors; tests: 2 passed, 0 failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn open_discount_needs_its_send_within_24h() {
    let open = json!({"event": "open", "email": "a@gmail.com", "mj_campaign_id": "7173", "geo": "CA", "MessageID": 1, "time": 1433103519});
    assert_eq!(
        fired(&dry(
            open.clone(),
            Some(json!([{"event": "sent", "MessageID": 1, "ago": "23h"}]))
        )),
        ["open-discount"]
    );
    assert_eq!(
        fired(&dry(
            open.clone(),
            Some(json!([{"event": "sent", "MessageID": 1, "ago": "25h"}]))
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        fired(&dry(
            open.clone(),
            Some(json!([{"event": "sent", "MessageID": 2, "ago": "1h"}]))
        )),
        Vec::<String>::new()
    );
    let pending = dry(open, None);
    assert_eq!(pending["events"][0]["needs_history"][0]["rule"], "open-discount");
    let mut fr = json!({"event": "open", "email": "a@gmail.com", "mj_campaign_id": 7173, "geo": "FR", "MessageID": 1, "time": 1433103519});
    assert_eq!(
        fired(&dry(
            fr.clone(),
            Some(json!([{"event": "sent", "MessageID": 1, "ago": "1h"}]))
        )),
        Vec::<String>::new()
    );
    fr["geo"] = json!("US");
    let out = dry(fr, Some(json!([{"event": "sent", "MessageID": 1, "ago": "1h"}])));
    let actions = &out["events"][0]["matches"][0]["actions"];
    assert_eq!(actions[0]["text"], "Your code: OPEN24 (a@gmail.com)\n");
    assert_eq!(
        actions[0]["html"],
        "<p>Your code: <b>OPEN24</b> (a@gmail.com)</p>\n"
    );
}

#[test]
fn absent_fires_only_without_the_open() {
    let sent = json!({"event": "sent", "email": "a@b.co", "MessageID": 9});
    assert_eq!(fired(&dry(sent.clone(), Some(json!([])))), ["reminder"]);
    assert_eq!(
        fired(&dry(
            sent.clone(),
            Some(json!([{"event": "open", "MessageID": 9, "later": "47h"}]))
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        fired(&dry(
            sent.clone(),
            Some(json!([{"event": "open", "MessageID": 9, "later": "49h"}]))
        )),
        ["reminder"]
    );
    let out = dry(sent, None);
    let pending = out["events"][0]["needs_history"].as_array().unwrap();
    let reminder = pending.iter().find(|p| p["rule"] == "reminder").unwrap();
    assert!(
        reminder["reason"]
            .as_str()
            .unwrap()
            .contains("fires 48h later unless an event `open`"),
        "{reminder}"
    );
}

#[test]
fn threshold_counts_per_group_in_the_window() {
    let blocked = json!({"event": "blocked", "email": "x@gmail.com"});
    // 12 blocked of 19 sent (`of: sent`, as written in the example) -> 0.63 with the event's own count.
    let history = json!([
        {"event": "sent", "email": "a@gmail.com", "ago": "10m", "times": 20},
        {"event": "blocked", "email": "b@gmail.com", "ago": "5m", "times": 12},
        {"event": "blocked", "email": "b@yahoo.com", "ago": "5m", "times": 40},
    ]);
    let out = dry(blocked.clone(), Some(history));
    assert_eq!(fired(&out), ["alerts/blocked-spike"]);
    assert_eq!(
        out["events"][0]["matches"][0]["actions"][0]["json"]["text"],
        "gmail.com: 65% of mail blocked in the last 15 minutes"
    );
    let quiet = json!([{"event": "sent", "email": "a@gmail.com", "ago": "10m", "times": 20},
                       {"event": "blocked", "email": "b@gmail.com", "ago": "16m", "times": 12}]);
    assert_eq!(fired(&dry(blocked, Some(quiet))), Vec::<String>::new());
}

#[test]
fn delay_is_carried_on_the_rendered_action() {
    let out = dry(json!({"event": "click", "email": "a@b.co"}), None);
    assert_eq!(
        out["events"][0]["matches"][0]["actions"][0],
        json!({"kind": "email", "to": "a@b.co", "subject": "How was it?", "template": "feedback",
               "text": "Tell us how it went, a@b.co.\n", "delay": "2h"})
    );
}

use serde_json::{Value, json};

use crate::util::{Project, hookflow, json};

#[test]
fn mailjet_batch_exact_output_for_the_stateless_flows() {
    let out = json(&[
        "test",
        "--rules",
        "rules",
        "--event",
        "examples/events/batch-v2.json",
        "--format",
        "json",
    ]);
    let events = out["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["blocked", "bounce", "click", "open", "sent", "spam", "unsub"]
    );
    assert_eq!(
        events[1],
        json!({"type": "bounce", "matches": [{"rule": "lists/hard-bounce", "actions": [
            {"kind": "contacts", "list": "newsletter", "remove": "bounce@mailjet.com"},
            {"kind": "suppress", "email": "bounce@mailjet.com", "reason": "hard bounce: user unknown"}
        ]}]})
    );
    assert_eq!(
        events[6],
        json!({"type": "unsub", "matches": [{"rule": "lists/unsubscribe", "actions": [
            {"kind": "contacts", "list": "newsletter", "remove": "api@mailjet.com"},
            {"kind": "log", "message": "api@mailjet.com unsubscribed from campaign 7276 (list 1)"}
        ]}]})
    );
    // Stateful rules say they need history rather than guessing.
    assert_eq!(events[3]["matches"], json!([]));
    assert_eq!(events[3]["needs_history"][0]["rule"], "marketing/open-discount");
    let sent_pending: Vec<&str> = events[4]["needs_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        sent_pending,
        ["alerts/blocked-spike", "marketing/not-opened-reminder"]
    );
}

#[test]
fn history_file_lets_correlations_decide() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.json");
    std::fs::write(
        &history,
        r#"[{"event": "sent", "MessageID": 19421777396190490, "ago": "3h"}]"#,
    )
    .unwrap();
    let h = history.display().to_string();
    let out = json(&[
        "test",
        "--rules",
        "rules",
        "--event",
        "examples/events/open.json",
        "--history",
        &h,
        "--format",
        "json",
    ]);
    let m = &out["events"][0]["matches"][0];
    assert_eq!(m["rule"], "marketing/open-discount");
    let email = &m["actions"][0];
    assert_eq!(email["kind"], "email");
    assert_eq!(email["to"], "api@mailjet.com");
    assert_eq!(email["subject"], "Your 24-hour discount");
    assert_eq!(email["template"], "discount");
    assert!(email["text"].as_str().unwrap().contains("use code OPEN24"));
    assert!(
        email["html"]
            .as_str()
            .unwrap()
            .contains("<strong>OPEN24</strong>")
    );
    assert_eq!(m["actions"][1]["set"]["last_open"], "2015-05-31T20:18:39+00:00");
}

#[test]
fn explain_shows_each_condition_and_what_it_saw() {
    let out = json(&[
        "test",
        "--rules",
        "rules",
        "--event",
        "examples/events/click.json",
        "--format",
        "json",
        "--explain",
    ]);
    let explain = out["events"][0]["explain"].as_array().unwrap();
    let vip = explain
        .iter()
        .find(|e| e["rule"] == "crm/vip-engagement")
        .unwrap();
    assert_eq!(vip["fires"], "false");
    assert_eq!(
        vip["conditions"]["children"][0],
        json!({"condition": "CustomID starts_with \"vip-\"", "result": "false", "saw": "helloworld"})
    );
    let text = hookflow(&[
        "test",
        "--rules",
        "rules",
        "--event",
        "examples/events/click.json",
        "--explain",
    ]);
    insta::assert_snapshot!("click_explained_text", text.stdout);
}

/// The text of a dry run, as a reviewer reads it: a Mailjet batch through the shipped
/// flows, then with history, explained.
#[test]
fn dry_run_text_reads_as_reviewed() {
    let run = hookflow(&[
        "test",
        "--rules",
        "rules",
        "--event",
        "examples/events/batch-v2.json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("batch_text", run.stdout);
    let p = Project::new(&[(
        "history.json",
        r#"[{"event": "sent", "email": "a@mailjet.com", "ago": "10m", "times": 8},
            {"event": "blocked", "email": "b@mailjet.com", "ago": "5m", "times": 12},
            {"event": "sent", "MessageID": 19421777396190490, "email": "api@mailjet.com", "mj_campaign_id": 7173, "ago": "2h"}]"#,
    )]);
    let history = p.path("history.json");
    for (event, name) in [
        ("examples/events/blocked.json", "blocked_with_history_text"),
        ("examples/events/open.json", "open_with_history_text"),
    ] {
        let run = hookflow(&[
            "test",
            "--rules",
            "rules",
            "--event",
            event,
            "--history",
            &history,
            "--explain",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        insta::assert_snapshot!(name, run.stdout);
    }
}

const ESCAPING: &str = r#"on: open
actions:
  - email:
      to: "{{email}}"
      subject: "Hello {{name}}"
      text: "Dear {{name}}"
      html: "<p>Dear {{name}}</p>"
      headers: { X-Campaign: "{{name}}" }
  - http:
      url: "https://crm.example.com/c?name={{urlencode name}}"
      headers: { X-Name: "{{name}}" }
      json: { name: "{{name}}", id: "{{MessageID}}", label: "id {{MessageID}}", nested: [ "{{geo.country}}", 3, true ] }
"#;

#[test]
fn only_html_is_escaped_and_json_bodies_cannot_break() {
    let p = Project::new(&[("rules/esc.yaml", ESCAPING)]);
    let name = r#"Ann & Co "<b>" {{x}} \ "#;
    let ev: Value = serde_json::from_str(&format!(
        r#"{{"event": "open", "email": "a@b.co", "name": {}, "MessageID": 19421777396190490, "geo": {{"country": "US"}}}}"#,
        serde_json::to_string(name).unwrap()
    ))
    .unwrap();
    let out = p.dry_run(&ev, &[]);
    let actions = &out["events"][0]["matches"][0]["actions"];
    assert_eq!(actions[0]["subject"], format!("Hello {name}"));
    assert_eq!(actions[0]["text"], format!("Dear {name}"));
    assert_eq!(actions[0]["headers"]["X-Campaign"], name);
    assert_eq!(
        actions[0]["html"],
        "<p>Dear Ann &amp; Co &quot;&lt;b&gt;&quot; {{x}} \\ </p>"
    );
    assert_eq!(
        actions[1]["url"],
        "https://crm.example.com/c?name=Ann%20%26%20Co%20%22%3Cb%3E%22%20%7B%7Bx%7D%7D%20%5C%20"
    );
    assert_eq!(actions[1]["headers"]["X-Name"], name);
    assert_eq!(
        actions[1]["json"],
        json!({"name": name, "id": 19421777396190490_u64, "label": "id 19421777396190490", "nested": ["US", 3, true]})
    );
    assert_eq!(actions[1]["method"], "POST");
}

#[test]
fn a_missing_variable_is_an_error_not_an_empty_string() {
    let p = Project::new(&[(
        "rules/hi.yaml",
        "on: open\nactions:\n  - email: { to: \"{{email}}\", subject: \"Hi {{first_name}}\", text: \"{{default nick \\\"friend\\\"}}\" }\n",
    )]);
    let out = p.dry_run(&json!({"event": "open", "email": "a@b.co"}), &[]);
    let m = &out["events"][0]["matches"][0];
    assert_eq!(m["actions"], json!([]));
    assert!(
        m["error"]
            .as_str()
            .unwrap()
            .contains("subject: the event has no field `first_name`"),
        "{m}"
    );
    let out = p.dry_run(
        &json!({"event": "open", "email": "a@b.co", "first_name": "Ann"}),
        &[],
    );
    assert_eq!(out["events"][0]["matches"][0]["actions"][0]["text"], "friend");
}

#[test]
fn matches_are_sorted_by_rule_id_and_filtered_by_source_type_and_enabled() {
    let log = "actions: [ { log: { message: \"{{email}}\" } } ]\n";
    let p = Project::new(&[
        ("rules/z.yaml", &format!("on: open\n{log}")),
        ("rules/a.yaml", &format!("on: \"*\"\n{log}")),
        ("rules/m/m.yaml", &format!("on: [click, open]\n{log}")),
        ("rules/shop.yaml", &format!("on: open\nsource: shop\n{log}")),
        ("rules/off.yaml", &format!("on: open\nenabled: false\n{log}")),
        ("rules/clicks.yaml", &format!("on: click\n{log}")),
        (
            "hookflow.yaml",
            "sources: { mailjet: { format: mailjet }, shop: { format: mailjet } }\n",
        ),
    ]);
    let ids = |out: &Value| -> Vec<String> {
        out["events"][0]["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["rule"].as_str().unwrap().to_owned())
            .collect()
    };
    let ev = json!({"event": "open", "email": "a@b.co"});
    assert_eq!(ids(&p.dry_run(&ev, &[])), ["a", "m/m", "z"]);
    assert_eq!(
        ids(&p.dry_run(&ev, &["--source", "shop"])),
        ["a", "m/m", "shop", "z"]
    );
}

#[test]
fn bad_event_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    for (content, expected) in [
        ("{\"event\": ", "not valid JSON"),
        ("[{\"email\": \"a@b.co\"}]", "event #0 has no event type"),
        ("42", "expected a JSON object or an array"),
    ] {
        std::fs::write(&bad, content).unwrap();
        let run = hookflow(&["test", "--rules", "rules", "--event", bad.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{content}");
        assert!(run.stderr.contains(expected), "{content}: {}", run.stderr);
    }
}

/// `--explain` shows the state behind stateful decisions: the window's counts, the
/// timer's due time, the once-key.
#[test]
fn explain_shows_the_state_a_decision_used() {
    let p = Project::new(&[
        (
            "rules/alerts/blocked-spike.yaml",
            include_str!("../../rules/alerts/blocked-spike.yaml"),
        ),
        (
            "rules/marketing/not-opened-reminder.yaml",
            include_str!("../../rules/marketing/not-opened-reminder.yaml"),
        ),
        (
            "templates/reminder.txt.hbs",
            include_str!("../../templates/reminder.txt.hbs"),
        ),
        (
            "history.json",
            r#"[{"event": "sent", "email": "a@gmail.com", "ago": "10m", "times": 8},
                {"event": "blocked", "email": "b@gmail.com", "ago": "5m", "times": 12}]"#,
        ),
    ]);
    let explained = |event: Value, extra: &[&str], rule: &str| -> Value {
        let mut args = vec!["--explain"];
        args.extend_from_slice(extra);
        let out = p.dry_run(&event, &args);
        let all = out["events"][0]["explain"].as_array().unwrap().clone();
        all.into_iter().find(|e| e["rule"] == rule).unwrap()
    };
    let history = p.path("history.json");
    let spike = explained(
        json!({"event": "blocked", "time": 1433333949, "email": "z@gmail.com", "MessageID": 7}),
        &["--history", &history],
        "alerts/blocked-spike",
    );
    let window = &spike["state"]["window"];
    assert_eq!(
        (
            &window["group"],
            &window["count"],
            &window["total"],
            &window["limit"]
        ),
        (&json!("gmail.com"), &json!(13), &json!(21), &json!("above 0.6")),
        "{spike}"
    );
    assert_eq!(window["from"], "2015-06-03T12:04:09+00:00");

    let reminder = explained(
        json!({"event": "sent", "time": 1433333949, "email": "z@gmail.com", "MessageID": 7, "mj_campaign_id": 5}),
        &[],
        "marketing/not-opened-reminder",
    );
    assert_eq!(
        reminder["state"]["absent_due_at"], "2015-06-05T12:19:09+00:00",
        "{reminder}"
    );
}

/// Any configured source can be dry-run, decoded by its own format: here a `json` source
/// whose event type sits at `$.type` and whose id is `$.id`.
#[test]
fn a_json_source_is_dry_run_with_its_own_format() {
    let p = Project::new(&[
        (
            "rules/paid.yaml",
            "on: order.paid\nsource: shop\nwhen: { total: { gt: 100 } }\nactions: [ { log: { message: \"big order {{event.id}}\" } } ]\n",
        ),
        (
            "shop.yaml",
            "sources:\n  shop: { format: json, type_path: $.type, id_path: $.id }\n",
        ),
    ]);
    let config = p.path("shop.yaml");
    let out = p.dry_run(
        &json!({"type": "order.paid", "id": 42, "total": 120}),
        &["--config", &config, "--source", "shop"],
    );
    let m = &out["events"][0]["matches"];
    assert_eq!(m[0]["rule"], "paid", "{out}");
    assert_eq!(m[0]["actions"][0]["message"], "big order shop:42", "{out}");
    // A source the config does not have is named as such.
    let event = p.path("event.json");
    let run = crate::util::hookflow_in(
        p.dir.path(),
        &["--config", &config, "test", "--event", &event, "--source", "nope"],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no source `nope`") && run.stderr.contains("configured: shop"),
        "{}",
        run.stderr
    );
}

/// `hookflow test … | head`: a reader that goes away ends the output quietly.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hookflow"))
        .args([
            "test",
            "--rules",
            "rules",
            "--event",
            "examples/events/batch-v2.json",
            "--explain",
        ])
        .current_dir(crate::util::root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

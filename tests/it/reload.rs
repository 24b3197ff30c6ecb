//! Hot reload against the running binary: the rules folder edited as people and tools
//! do, while events flow. Waits on the reload generation, never on sleeps.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::server::{Server, project};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

const CONFIG: &str = "listen: 127.0.0.1:0\nstore: sqlite://data/hookflow.db\n";

fn rule(geo: &str) -> String {
    format!("on: open\nwhen: {{ geo: {geo} }}\nactions: [ {{ log: {{ message: \"{{{{email}}}}\" }} }} ]\n")
}

/// Posts a new `open` event from `geo` and returns the rules that fired for it.
async fn fired(server: &Server, geo: &str) -> Vec<String> {
    let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
    let body = json!({"event": "open", "time": 1433103519, "MessageID": id, "email": "a@b.co", "geo": geo});
    assert_eq!(
        server.post("/hooks/mailjet", &body.to_string()).await.status(),
        200
    );
    let events = server.get("/api/events?limit=1").await;
    let mut ids: Vec<String> = events[0]["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn generation(server: &Server) -> u64 {
    server.get("/api/rules").await["generation"].as_u64().unwrap()
}

/// Waits for a reload after `since`, and returns `/api/rules`.
async fn reloaded(server: &Server, since: u64) -> Value {
    server
        .wait_for("/api/rules", 10, |r| r["generation"].as_u64().unwrap() > since)
        .await
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_renames_deletes_and_moves_take_effect() {
    let (dir, server) = Server::in_project(CONFIG, &[("us.yaml", &rule("US"))]);
    let rules = dir.path().join("rules");
    assert_eq!(fired(&server, "US").await, ["us"]);

    // An in-place edit: a new rule set version, in /api/rules and in /metrics (one
    // series, the version now serving).
    let before = server.get("/api/rules").await["rule_set"]
        .as_str()
        .unwrap()
        .to_owned();
    let g = generation(&server).await;
    std::fs::write(rules.join("us.yaml"), rule("FR")).unwrap();
    let r = reloaded(&server, g).await;
    assert_eq!(fired(&server, "FR").await, ["us"]);
    let after = r["rule_set"].as_str().unwrap();
    assert_ne!(after, before, "an edit makes a new version");
    assert!(r["instance"].as_str().is_some_and(|i| !i.is_empty()), "{r}");
    let metrics = server.get_text("/metrics").await;
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("hookflow_rule_set_info{"))
        .collect();
    assert_eq!(
        series,
        [format!("hookflow_rule_set_info{{hash=\"{after}\"}} 1")],
        "{metrics}"
    );
    let shown: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hookflow_rule_set_generation "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(shown > g, "generation {shown} after {g}: {metrics}");
    assert!(fired(&server, "US").await.is_empty());

    // An editor's atomic save: write a temporary file, rename it over the rule.
    let g = generation(&server).await;
    std::fs::write(rules.join(".us.yaml.tmp"), rule("DE")).unwrap();
    std::fs::rename(rules.join(".us.yaml.tmp"), rules.join("us.yaml")).unwrap();
    reloaded(&server, g).await;
    assert_eq!(fired(&server, "DE").await, ["us"]);

    // `mv` in from outside the folder, into a new subfolder.
    let g = generation(&server).await;
    std::fs::write(dir.path().join("ca.yaml"), rule("CA")).unwrap();
    std::fs::create_dir(rules.join("team")).unwrap();
    std::fs::rename(dir.path().join("ca.yaml"), rules.join("team/ca.yaml")).unwrap();
    let r = reloaded(&server, g).await;
    assert!(
        r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == "team/ca"),
        "{r}"
    );
    assert_eq!(fired(&server, "CA").await, ["team/ca"]);

    // A delete.
    let g = generation(&server).await;
    std::fs::remove_file(rules.join("us.yaml")).unwrap();
    reloaded(&server, g).await;
    assert!(fired(&server, "DE").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_edit_never_takes_a_working_rule_away() {
    let (dir, server) = Server::in_project(CONFIG, &[("us.yaml", &rule("US"))]);
    let rules = dir.path().join("rules");
    let before = server.get("/api/rules").await;
    let version = before["rules"][0]["version"].clone();

    let g = generation(&server).await;
    std::fs::write(
        rules.join("us.yaml"),
        "on: open\nwhen: { geo: { start_with: U } }\nactions: []\n",
    )
    .unwrap();
    std::fs::write(rules.join("new.yaml"), "on: [open\n").unwrap();
    let r = reloaded(&server, g).await;
    assert_eq!(
        fired(&server, "US").await,
        ["us"],
        "the last good version keeps serving"
    );
    assert_eq!(r["rules"][0]["version"], version);
    let files = r["files"].as_array().unwrap();
    let us = files
        .iter()
        .find(|f| f["file"].as_str().unwrap().ends_with("us.yaml"))
        .unwrap();
    assert!(
        us["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `starts_with`"),
        "{us}"
    );
    assert_eq!(us["rules"], 1);
    let new = files
        .iter()
        .find(|f| f["file"].as_str().unwrap().ends_with("new.yaml"))
        .unwrap();
    assert_eq!(new["rules"], 0, "a brand-new broken file adds nothing");
    let metrics = server.get_text("/metrics").await;
    assert!(metrics.contains("hookflow_rule_files_in_error 2"), "{metrics}");

    let g = generation(&server).await;
    std::fs::write(rules.join("us.yaml"), rule("FR")).unwrap();
    std::fs::remove_file(rules.join("new.yaml")).unwrap();
    let r = reloaded(&server, g).await;
    assert!(r["errors"].as_array().unwrap().is_empty(), "{r}");
    assert_ne!(r["rules"][0]["version"], version);
    assert_eq!(fired(&server, "FR").await, ["us"]);
}

/// A rule whose inline tests fail does not go live, at start or on reload: the server
/// agrees with `hookflow check`, and the last good version keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_whose_inline_tests_fail_does_not_go_live() {
    let tested = |geo: &str, expect_geo: &str| {
        format!(
            "on: open\nwhen: {{ geo: {geo} }}\nactions: [ {{ log: {{ message: \"{{{{email}}}}\" }} }} ]\ntests:\n  - name: from {expect_geo}\n    event: {{ event: open, email: a@b.co, geo: {expect_geo} }}\n    expect: match\n"
        )
    };
    let (dir, server) = Server::in_project(
        CONFIG,
        &[
            ("us.yaml", &tested("US", "US")),
            ("bad.yaml", &tested("DE", "FR")),
        ],
    );
    let rules = dir.path().join("rules");
    let start = server.get("/api/rules").await;
    let ids: Vec<&str> = start["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["us"],
        "a file failing its tests at start adds nothing: {start}"
    );
    let version = start["rules"][0]["version"].clone();

    // The author narrows the rule to CA and forgets the test, which still sends US.
    let g = generation(&server).await;
    std::fs::write(rules.join("us.yaml"), tested("CA", "US")).unwrap();
    let r = reloaded(&server, g).await;
    assert_eq!(
        r["rules"][0]["version"], version,
        "the last good version serves: {r}"
    );
    assert_eq!(fired(&server, "US").await, ["us"]);
    assert!(fired(&server, "CA").await.is_empty());
    let us = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"].as_str().unwrap().ends_with("us.yaml"))
        .unwrap();
    let message = us["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("inline test 1 (from US) fails: expected a match")
            && message.ends_with("does not go live until its tests pass"),
        "{us}"
    );
    assert_eq!(us["errors"][0]["line"], 5, "located at the test case: {us}");

    // Test fixed too: the new version goes live.
    let g = generation(&server).await;
    std::fs::write(rules.join("us.yaml"), tested("CA", "CA")).unwrap();
    let r = reloaded(&server, g).await;
    assert_ne!(r["rules"][0]["version"], version);
    assert_eq!(fired(&server, "CA").await, ["us"]);
    let files = r["files"].as_array().unwrap();
    let errors: Vec<&Value> = files
        .iter()
        .flat_map(|f| f["errors"].as_array().unwrap())
        .collect();
    assert_eq!(errors.len(), 1, "only bad.yaml is still refused: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_checkout_switches_the_whole_folder() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    project(
        dir.path(),
        CONFIG,
        &[("us.yaml", &rule("US")), ("ca.yaml", &rule("CA"))],
    );
    git(&rules, &["init", "-q", "-b", "main"]);
    git(&rules, &["add", "."]);
    git(&rules, &["commit", "-q", "-m", "v1"]);
    std::fs::remove_file(rules.join("ca.yaml")).unwrap();
    std::fs::write(rules.join("us.yaml"), rule("FR")).unwrap();
    for i in 0..20 {
        std::fs::write(rules.join(format!("extra{i:02}.yaml")), rule(&format!("X{i}"))).unwrap();
    }
    git(&rules, &["add", "-A"]);
    git(&rules, &["commit", "-q", "-m", "v2"]);
    let server = Server::start(dir.path());
    assert_eq!(
        server.get("/api/rules").await["rules"].as_array().unwrap().len(),
        21
    );

    let g = generation(&server).await;
    git(&rules, &["checkout", "-q", "HEAD~1"]);
    let r = server
        .wait_for("/api/rules", 10, |r| {
            r["generation"].as_u64().unwrap() > g && r["rules"].as_array().unwrap().len() == 2
        })
        .await;
    assert!(
        r["generation"].as_u64().unwrap() - g <= 3,
        "one burst, few reloads: {}",
        r["generation"]
    );
    assert_eq!(fired(&server, "CA").await, ["ca"]);
    assert_eq!(fired(&server, "US").await, ["us"]);

    let g = generation(&server).await;
    git(&rules, &["checkout", "-q", "main"]);
    server
        .wait_for("/api/rules", 10, |r| {
            r["generation"].as_u64().unwrap() > g && r["rules"].as_array().unwrap().len() == 21
        })
        .await;
    assert_eq!(fired(&server, "FR").await, ["us"]);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_rules_folder_swapped_to_a_new_target() {
    let dir = tempfile::tempdir().unwrap();
    let (blue, green) = (dir.path().join("blue"), dir.path().join("green"));
    std::fs::create_dir(&blue).unwrap();
    std::fs::create_dir(&green).unwrap();
    std::fs::write(blue.join("r.yaml"), rule("US")).unwrap();
    std::fs::write(green.join("r.yaml"), rule("FR")).unwrap();
    std::fs::write(dir.path().join("hookflow.yaml"), CONFIG).unwrap();
    std::os::unix::fs::symlink("blue", dir.path().join("rules")).unwrap();
    let server = Server::start(dir.path());
    assert_eq!(fired(&server, "US").await, ["r"]);

    // `ln -sfn green rules`, done atomically as deploy tools do: a new link renamed over.
    let g = generation(&server).await;
    std::os::unix::fs::symlink("green", dir.path().join("rules.new")).unwrap();
    std::fs::rename(dir.path().join("rules.new"), dir.path().join("rules")).unwrap();
    reloaded(&server, g).await;
    assert_eq!(fired(&server, "FR").await, ["r"]);

    // Edits in the new target are watched too.
    let g = generation(&server).await;
    std::fs::write(green.join("r.yaml"), rule("DE")).unwrap();
    reloaded(&server, g).await;
    assert_eq!(fired(&server, "DE").await, ["r"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_rapid_writes_end_with_the_last_one_in_few_reloads() {
    let (dir, server) = Server::in_project(CONFIG, &[("r.yaml", &rule("X0"))]);
    let rules = dir.path().join("rules");
    let g = generation(&server).await;
    for i in 1..=50 {
        std::fs::write(rules.join("r.yaml"), rule(&format!("X{i}"))).unwrap();
    }
    let last = server
        .wait_for("/api/rules", 10, |r| {
            r["generation"].as_u64().unwrap() > g && r["files"][0]["errors"].as_array().unwrap().is_empty()
        })
        .await;
    // Wait until the final content is live, then count reloads.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while fired(&server, "X50").await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the last write never took effect"
        );
    }
    let reloads = generation(&server).await - g;
    assert!(
        reloads <= 5,
        "{reloads} reloads for one burst of 50 writes ({last})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_and_no_watch_modes() {
    let (dir, server) = Server::in_project(
        &format!("{CONFIG}reload: {{ poll: 1s }}\n"),
        &[("r.yaml", &rule("US"))],
    );
    let rules = dir.path().join("rules");
    let g = generation(&server).await;
    std::fs::write(rules.join("r.yaml"), rule("FR")).unwrap();
    reloaded(&server, g).await;
    assert_eq!(fired(&server, "FR").await, ["r"]);
    drop(server);

    let (dir, server) = Server::in_project(
        &format!("{CONFIG}reload: {{ watch: false }}\n"),
        &[("r.yaml", &rule("US"))],
    );
    let rules = dir.path().join("rules");
    std::fs::write(rules.join("r.yaml"), rule("FR")).unwrap();
    let g = generation(&server).await;
    // Without watching, a change waits for an explicit reload.
    assert_eq!(fired(&server, "US").await, ["r"], "{}", server.log());
    let r = server.post_json("/api/rules/reload", "").await;
    assert_eq!(r["changed"], json!(["r"]));
    assert!(generation(&server).await > g);
    assert_eq!(fired(&server, "FR").await, ["r"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_templates_and_error_notifications() {
    let mut sink = crate::sink::Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{CONFIG}reload: {{ watch: false }}\non_reload_error: {{ url: \"{}/reload-errors\" }}\n",
        sink.url
    );
    let email = "on: open\nactions:\n  - email: { to: \"{{email}}\", subject: Hi, template: hello }\n";
    project(dir.path(), &config, &[("mail.yaml", email)]);
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(dir.path().join("templates/hello.txt.hbs"), "Hello v1").unwrap();
    let server = Server::start(dir.path());
    fired(&server, "US").await;
    let text = |jobs: &Value| jobs[0]["action"]["text"].as_str().unwrap_or_default().to_owned();
    assert_eq!(text(&server.get("/api/jobs?limit=1").await), "Hello v1");

    // A template edit, picked up by SIGHUP.
    std::fs::write(dir.path().join("templates/hello.txt.hbs"), "Hello v2").unwrap();
    let g = generation(&server).await;
    server.signal("HUP");
    reloaded(&server, g).await;
    fired(&server, "US").await;
    assert_eq!(text(&server.get("/api/jobs?limit=1").await), "Hello v2");

    // A broken template keeps its last good text, and the errors are posted.
    std::fs::write(dir.path().join("templates/hello.txt.hbs"), "Hello {{#if}}").unwrap();
    let g = generation(&server).await;
    server.signal("HUP");
    let r = reloaded(&server, g).await;
    assert!(
        r["errors"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("hello.txt.hbs"),
        "{r}"
    );
    fired(&server, "US").await;
    assert_eq!(text(&server.get("/api/jobs?limit=1").await), "Hello v2");
    let note = sink.next(10).await;
    assert_eq!(note.json()["generation"], r["generation"]);
    assert!(
        note.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("template does not parse")
    );
}

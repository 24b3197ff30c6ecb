use serde_json::Value;

use crate::util::{Project, hookflow, hookflow_in, json};

#[test]
fn shipped_rules_load_and_their_tests_pass() {
    let run = hookflow(&["check", "rules"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    insta::assert_snapshot!("shipped_rules_text", run.stdout);
    assert!(
        !run.stdout.contains("warning"),
        "shipped rules carry tests: {}",
        run.stdout
    );
}

#[test]
fn broken_files_are_reported_at_their_line_and_neighbours_still_load() {
    let run = hookflow(&["check", "tests/fixtures/rules/invalid"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("invalid_folder_text", run.stdout);
}

#[test]
fn json_report_has_the_documented_shape() {
    let report = json(&["check", "tests/fixtures/rules/invalid", "--format", "json"]);
    // failing-test, nested/valid and the first `welcome` load; everything else is refused.
    assert_eq!(report["rules"], 3);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 16);
    for e in errors {
        for key in ["file", "line", "column", "rule", "message"] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
    }
    let op = errors
        .iter()
        .find(|e| e["file"].as_str().unwrap().ends_with("unknown-operator.yaml"))
        .unwrap();
    assert_eq!((op["line"].as_u64(), op["column"].as_u64()), (Some(5), Some(5)));
    assert_eq!(op["rule"], "unknown-operator");
    assert!(
        op["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `starts_with`?")
    );
    assert_eq!(report["tests"]["passed"], 2);
    assert_eq!(report["tests"]["failed"], 2);
    let failures = report["tests"]["failures"].as_array().unwrap();
    assert_eq!(failures[0]["rule"], "failing-test");
    assert_eq!(failures[0]["line"], 8);
    assert!(
        failures[1]["message"]
            .as_str()
            .unwrap()
            .contains("no field `first_name`")
    );
}

#[test]
fn ignored_names_and_other_files_are_skipped() {
    let report = json(&["check", "tests/fixtures/rules/invalid", "--format", "json"]);
    let text = report.to_string();
    for ignored in ["_draft", ".hidden", "_wip", "notes.txt"] {
        assert!(!text.contains(ignored), "{ignored} should be skipped");
    }
}

#[test]
fn an_environment_variable_makes_the_rule_load() {
    let p = Project::new(&[(
        "rules/crm.yaml",
        "on: click\nactions:\n  - http: { url: \"https://crm.example.com/${env:HF_PATH}\", json: { e: \"{{email}}\" } }\n\
         tests:\n  - event: { event: click, email: a@b.co }\n    expect: match\n    actions: [ { url: \"https://crm.example.com/in\" } ]\n",
    )]);
    let unset = hookflow_in(p.dir.path(), &["check"], &[]);
    assert_eq!(unset.code, 1);
    assert!(
        unset
            .stdout
            .contains("rules/crm.yaml:3:18: environment variable `HF_PATH` is not set"),
        "{}",
        unset.stdout
    );
    let set = hookflow_in(p.dir.path(), &["check"], &[("HF_PATH", "in")]);
    assert_eq!(set.code, 0, "{}", set.stdout);
}

#[test]
fn default_folder_and_missing_folder() {
    let p = Project::new(&[(
        "rules/a.yaml",
        "on: open\nactions: [ { log: { message: hi } } ]\n",
    )]);
    let run = hookflow_in(p.dir.path(), &["check"], &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("1 rules loaded"));
    let missing = hookflow_in(p.dir.path(), &["check", "nope"], &[]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("rules folder `nope` does not exist"),
        "{}",
        missing.stderr
    );
}

#[test]
fn many_rules_in_one_file_and_ids() {
    let p = Project::new(&[
        (
            "rules/team/all.yaml",
            "rules:\n  - id: one\n    on: open\n    actions: [ { log: { message: a } } ]\n  - on: click\n    actions: [ { log: { message: b } } ]\n",
        ),
        (
            "rules/team/deep/x.yml",
            "on: sent\nactions: [ { log: { message: c } } ]\n",
        ),
    ]);
    let run = hookflow_in(p.dir.path(), &["check", "--format", "json"], &[]);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["rules"], 3, "{report}");
    let warnings = report["warnings"].to_string();
    for id in ["one", "team/all#2", "team/deep/x"] {
        assert!(
            warnings.contains(&format!("\"rule\":\"{id}\"")),
            "{id} in {warnings}"
        );
    }
}

#[test]
fn unknown_event_type_is_an_error_with_did_you_mean() {
    let p = Project::new(&[(
        "rules/a.yaml",
        "on: opne\nactions: [ { log: { message: hi } } ]\n",
    )]);
    let run = hookflow_in(p.dir.path(), &["check"], &[]);
    assert!(
        run.stdout
            .contains("rules/a.yaml:1:5: `opne` is not a Mailjet event type — did you mean `open`?"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("warning: rules/a.yaml:1:5"),
        "{}",
        run.stdout
    );
    assert_ne!(run.code, 0, "the rule would never see an event");
}

/// The example scripts run to the end, and leave no server behind.
#[test]
fn the_example_scripts_run_and_stop_their_server() {
    for script in ["examples/demo.sh", "examples/rehearse-reminder.sh"] {
        let out = std::process::Command::new("bash")
            .arg(crate::util::root().join(script))
            .env("HOOKFLOW_BIN", env!("CARGO_BIN_EXE_hookflow"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{script}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let base = stdout
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("{script} names its server: {stdout}"))
            .trim_end_matches(|c: char| !c.is_ascii_digit());
        let addr = base.trim_start_matches("http://");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{script} left its server running at {addr}"
        );
    }
}

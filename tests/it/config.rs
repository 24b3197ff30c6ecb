use crate::util::{hookflow, hookflow_in, root};

#[test]
fn config_schema_file_is_current() {
    let run = hookflow(&["schema", "config"]);
    let committed = std::fs::read_to_string(root().join("schemas/config.schema.json")).unwrap();
    assert!(
        run.stdout.trim() == committed.trim(),
        "schemas/config.schema.json is stale: run `cargo run -- schema config > schemas/config.schema.json`"
    );
}

#[test]
fn example_config_is_valid_once_its_secrets_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let missing = hookflow_in(
        dir.path(),
        &[
            "endpoints",
            "list",
            "--config",
            root().join("examples/hookflow.yaml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("environment variable `HOOKFLOW_ADMIN_TOKEN` is not set"),
        "{}",
        missing.stderr
    );
    // A copy pointing its store into a temp dir loads and opens.
    let text = std::fs::read_to_string(root().join("examples/hookflow.yaml")).unwrap();
    let copy = dir.path().join("hookflow.yaml");
    std::fs::write(&copy, text.replace("../data/hookflow.db", "data/h.db")).unwrap();
    let env = [
        ("HOOKFLOW_ADMIN_TOKEN", "t"),
        ("MJ_HOOK_PASSWORD", "p"),
        ("SHOP_SECRET", "s"),
    ];
    let ok = hookflow_in(dir.path(), &["endpoints", "list"], &env);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(dir.path().join("data/h.db").exists());
}

#[test]
fn config_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hookflow.yaml"),
        "listen: 127.0.0.1:0\ndelivery:\n  wokers: 4\n",
    )
    .unwrap();
    let run = hookflow_in(dir.path(), &["serve"], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("hookflow.yaml:3:3: unknown key `wokers` — did you mean `workers`?"),
        "{}",
        run.stderr
    );
}

#[test]
fn example_rules_load_with_their_environment() {
    let env = [
        ("MJ_APIKEY_PUBLIC", "demo-public"),
        ("MJ_APIKEY_PRIVATE", "secret"),
    ];
    let run = hookflow_in(&root(), &["check", "examples/rules"], &env);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("1 rules loaded, 0 errors; tests: 1 passed, 0 failed"),
        "{}",
        run.stdout
    );
    let missing = hookflow_in(&root(), &["check", "examples/rules"], &[]);
    assert!(
        missing
            .stdout
            .contains("environment variable `MJ_APIKEY_PUBLIC` is not set"),
        "{}",
        missing.stdout
    );
}

#[test]
fn cap_mistakes_are_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hookflow.yaml"),
        "listen: 127.0.0.1:0\ncaps:\n  - { name: a, max: 0, per: 1d }\n  - { name: b, kinds: [emial], max: 2, per: 1d }\n  - { name: c, max: 1, per: 1h }\n  - { name: c, max: 1, per: 2h }\n",
    )
    .unwrap();
    let run = hookflow_in(dir.path(), &["serve"], &[]);
    assert_eq!(run.code, 2);
    for expected in [
        "hookflow.yaml:3:21: `max` is at least 1",
        "hookflow.yaml:4:23: `emial` is not an action kind a cap can count",
        "hookflow.yaml:6:13: cap name `c` must be non-empty, not `none`, and not used by another cap",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
}

//! `hookflow migrate`: the schema brought up to date apart from the servers, or checked;
//! a server told not to migrate refuses a store that is behind, and starts once it is not.

use crate::server::{Server, project};
use crate::store_contract::{PgSchema, pg_url};
use crate::util::hookflow_in;

#[test]
fn sqlite_check_then_migrate_then_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "store: sqlite://data/hookflow.db\n", &[]);
    let check = hookflow_in(dir.path(), &["migrate", "--check", "--format", "json"], &[]);
    assert_eq!(check.code, 1, "behind: {}{}", check.stdout, check.stderr);
    let v: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(
        (v["from"].as_i64(), v["up_to_date"].as_bool()),
        (Some(0), Some(false)),
        "{v}"
    );
    assert!(
        !dir.path().join("data/hookflow.db").exists(),
        "a check creates nothing"
    );
    let known = v["known"].as_i64().unwrap();
    assert!(known >= 7, "{v}");

    let run = hookflow_in(dir.path(), &["migrate"], &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("migrated from schema version 0 to {known}")),
        "{}",
        run.stdout
    );
    let again = hookflow_in(dir.path(), &["migrate", "--check"], &[]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_that_may_not_migrate_waits_for_the_operator() {
    let guard = PgSchema::new("migrate");
    let schema = &guard.0;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "listen: 127.0.0.1:0\nstore: {}\npostgres: {{ schema: {schema}, migrate: false }}\n",
        pg_url()
    );
    project(
        dir.path(),
        &config,
        &[("r.yaml", "on: open\nactions: [ { log: { message: hi } } ]\n")],
    );
    let refused = hookflow_in(dir.path(), &["serve", "--config", "hookflow.yaml"], &[]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("run `hookflow migrate` first"),
        "{}",
        refused.stderr
    );
    let check = hookflow_in(dir.path(), &["migrate", "--check"], &[]);
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);

    let run = hookflow_in(dir.path(), &["migrate"], &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("migrated from schema version 0 to"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("(schema {schema})")),
        "{}",
        run.stdout
    );

    let server = Server::start(dir.path());
    assert_eq!(server.get_text("/healthz").await, "ok");
    drop(server);
    let again = hookflow_in(dir.path(), &["migrate", "--check"], &[]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
}

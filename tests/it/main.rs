//! End-to-end tests: the real `hookflow` binary against real files and real servers.

/// Email over real SMTP and the outbox, suppression, contact lists, outbound HTTP.
mod actions;
/// `hookflow check`: located errors, exit codes, the JSON report.
mod check;
/// hookflow.yaml: schema, the example, located errors.
mod config;
/// The rule-language page's examples load and behave as the page says.
mod contract;
/// Offline decisions equal the server's, over generated event sequences (proptest).
mod differential;
/// `hookflow test`: matches, rendered actions, explanations.
mod dry_run;
/// The eight marketing flows of docs/flows.md (examples/flows), rehearsed on the manual clock.
mod flows;
/// The public JSONPath compliance suite (RFC 9535), fetched from npm.
mod jsonpath;
/// The direction of dependencies, read from the `use` lines.
mod layers;
/// `hookflow mailjet register|status` against a stand-in for Mailjet's API.
mod mailjet_api;
/// `/metrics` checked by promtool, every series moved by a workload.
mod metrics;
/// `hookflow migrate`: apply, check, a server that may not migrate.
mod migrate;
/// Servers on one PostgreSQL: three with one killed mid-burst; two through a crash and
/// restart of the database.
mod postgres;
/// Every provider: signed requests, forgeries refused, one normalized rule for all.
mod providers;
/// Hot reload: edits, renames, git checkout, symlink swap, broken edits.
mod reload;
/// schemas/ is current; rules/ files point at it.
mod schema;
/// `hookflow serve`: ingest statuses, dedupe, delivery, retries, suspension, restart.
mod serve;
/// Starting the real server binary in a temporary project.
mod server;
/// A real HTTP receiver that fails on demand.
mod sink;
/// `after` and `once` decided by the server, across a restart.
mod stateful;
/// The store contract: what any backend must do, run on SQLite and PostgreSQL.
mod store_contract;
/// Running the binary, temporary rule folders.
mod util;

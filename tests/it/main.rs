//! End-to-end tests: the real `hookflow` binary against real files.

mod actions; // email over real SMTP and the outbox, suppression, contact lists
mod check; // `hookflow check`: located errors, exit codes, the JSON report
mod config; // hookflow.yaml: schema, the example, located errors
mod contract; // RULES.md's examples load and behave as the page says
mod dry_run; // `hookflow test`: matches, rendered actions, explanations
mod reload; // hot reload: edits, renames, git checkout, symlink swap, broken edits
mod schema; // schemas/ is current; rules/ files point at it
mod serve; // `hookflow serve`: ingest statuses, dedupe, delivery, retries, suspension, restart
mod server; // starting the real server binary in a temporary project
mod sink;
mod util; // running the binary, temporary rule folders // a real HTTP receiver that fails on demand

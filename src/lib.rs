//! hookflow: webhook events in, declarative rules, templated actions out.
//!
//! # Where an event goes
//!
//! An event is decoded by its source ([`sources`]), matched and planned ([`engine::plan`],
//! over the [`rules`]), its stateful rules decided by the one algorithm
//! (`engine::decide`, over the store's [`store::state::State`]) inside the group commit
//! ([`ingest`]) that stores it ([`store`]), and its jobs delivered ([`delivery`],
//! executing [`actions`]). `docs/architecture.md` draws the path and the layers.
//!
//! # Modules, top layer first
//!
//! Each may import the modules listed after its own line, never one before
//! (`tests/it/layers.rs` checks it).
//!
//! - [`server`]: axum routes — `/hooks` ingest, `/api` admin (with why an event did what
//!   it did), `/healthz`, `/metrics` — the listener and the lifecycle.
//! - [`ingest`]: group commit — one writer commits many requests' events in one
//!   transaction, deciding their stateful rules in it.
//! - [`delivery`]: lease due jobs, execute them, finish them by the retry schedule;
//!   endpoint health.
//! - [`reload`]: hot reload — watch the folders, rebuild off to the side, swap atomically.
//! - [`check`]: `hookflow check` — load and run every rule's inline tests.
//! - [`dryrun`]: `hookflow test` — which rules match an event, with rendered actions.
//! - [`engine`]: what an event does: plan (match and render), decide (`after`, `absent`,
//!   `threshold`, `once`), replay offline, explain.
//! - [`rules`]: rule files → compiled, indexed `RuleSet`; conditions and stateful parts.
//! - [`actions`]: the action kinds (email, http, contacts, suppress, log): compile,
//!   render, execute.
//! - [`config`]: `hookflow.yaml` (or the embedded defaults), validated with located errors.
//! - [`sources`]: the `Provider` trait, Mailjet and JSON formats, source auth.
//! - [`store`]: the store traits (ingest, queue, timers, lists, reads), the state the
//!   engine decides over, the SQLite backend and the PostgreSQL one.
//! - [`template`]: Handlebars, strict, with our helpers; HTML escaping only for HTML.
//! - [`metrics`]: the Prometheus registry.
//! - [`event`]: the `Event` every source decodes into, its content id.
//! - [`base`]: clock, diagnostics, durations, `${env:…}`, logging, outbound HTTP with
//!   the SSRF guard, signing, JSONPath, value coercion, YAML.

pub mod actions;
pub mod base;
pub mod check;
pub mod config;
pub mod delivery;
pub mod dryrun;
pub mod engine;
pub mod event;
pub mod ingest;
pub mod metrics;
pub mod reload;
pub mod rules;
pub mod server;
pub mod sources;
pub mod store;
pub mod template;

/// The JSON Schema of rule files (`schemas/rule.schema.json`).
pub fn rule_schema() -> serde_json::Value {
    rules::file::schema()
}

/// The JSON Schema of `hookflow.yaml` (`schemas/config.schema.json`).
pub fn config_schema() -> serde_json::Value {
    config::schema()
}

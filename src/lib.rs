//! hookflow: webhook events in, declarative rules, templated actions out.
//!
//! # Layout
//!
//! - [`event`]: the `Event` every source decodes into, its content id, time parsing.
//! - [`sources`]: provider formats (Mailjet) → events.
//! - [`rules`]: rule files → compiled, indexed `RuleSet`; conditions, stateful parts, decisions.
//! - [`actions`]: the action kinds (email, http, contacts, suppress, log), compiled and rendered.
//! - [`template`]: Handlebars, strict, with our helpers; HTML escaping only for HTML.
//! - [`config`]: `hookflow.yaml` (or the embedded defaults), validated with located errors.
//! - [`server`]: axum routes — `/hooks` ingest, `/api` admin, `/healthz`, `/metrics` — and the lifecycle.
//! - [`engine`]: plans an event: the rules that fire and their rendered jobs.
//! - [`ingest`]: group commit — one writer commits many requests' events in one transaction.
//! - [`store`]: the `Store` trait and its SQLite implementation (events, jobs, attempts,
//!   endpoints, and the state of stateful rules), written by one thread that owns the
//!   only writing connection.
//! - [`clock`]: where the server's "now" comes from: the system clock, or a manual one.
//! - [`delivery`]: workers that lease due jobs, execute them and follow the retry schedule.
//! - [`metrics`]: Prometheus counters and gauges.
//! - [`reload`]: hot reload — watch the folders, rebuild off to the side, swap atomically.
//! - [`check`]: `hookflow check` — load and run every rule's inline tests.
//! - [`dryrun`]: `hookflow test` — which rules match an event, with rendered actions.
//! - [`logging`]: log lines event data cannot forge (control characters escaped); the filter.
//! - [`net`]: outbound HTTP clients with the SSRF guard, special-purpose addresses, endpoints.
//! - [`duration`], [`env`], [`suggest`], [`yaml`]: durations, `${env:NAME}`, did-you-mean,
//!   and the one module that knows the YAML libraries.

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

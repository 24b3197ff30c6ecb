//! hookflow: webhook events in, declarative rules, templated actions out.
//!
//! # Layout
//!
//! - [`event`]: the `Event` every source decodes into, its content id, time parsing.
//! - [`sources`]: provider formats (Mailjet) → events.
//! - [`rules`]: rule files → compiled, indexed `RuleSet`; conditions, stateful parts, decisions.
//! - [`actions`]: the action kinds (email, http, contacts, suppress, log), compiled and rendered.
//! - [`template`]: Handlebars, strict, with our helpers; HTML escaping only for HTML.
//! - [`check`]: `hookflow check` — load and run every rule's inline tests.
//! - [`dryrun`]: `hookflow test` — which rules match an event, with rendered actions.
//! - [`duration`], [`env`], [`suggest`], [`yaml`]: durations, `${env:NAME}`, did-you-mean,
//!   and the one module that knows the YAML libraries.

pub mod actions;
pub mod check;
pub mod dryrun;
pub mod duration;
pub mod env;
pub mod event;
pub mod rules;
pub mod sources;
pub mod suggest;
pub mod template;
pub mod yaml;

/// The JSON Schema of rule files (`schemas/rule.schema.json`).
pub fn rule_schema() -> serde_json::Value {
    rules::file::schema()
}

//! The bottom layer: what every other module may use, importing nothing above it.
//!
//! - [`caps`]: frequency caps, and when one more job fits under one.
//! - [`clock`]: where the server's "now" comes from: the system clock or a manual one.
//! - [`diag`]: located problems (`file:line:col`) and the context files compile in.
//! - [`duration`]: `30s`, `24h`, `1h30m`, capped at a hundred years.
//! - [`env`](mod@env): `${env:NAME}` substitution.
//! - [`local_time`]: hours and days in a zone (the contact's): the `local_time` condition
//!   and send windows.
//! - [`logging`]: log lines event data cannot forge; the filter.
//! - [`net`]: outbound HTTP clients with the SSRF guard, special-purpose addresses,
//!   Standard Webhooks signatures, endpoint identity.
//! - [`one_click`]: signed one-click unsubscribe links (RFC 8058).
//! - [`path`]: where a condition looks in a payload: names, dotted paths, RFC 9535 JSONPath.
//! - [`value`]: how literals compare with payload values (the coercion rules).
//! - [`suggest`]: did-you-mean suggestions for error messages.
//! - [`time`]: times as providers write them.
//! - [`yaml`]: the one module that knows the YAML libraries.

pub mod caps;
pub mod clock;
pub mod diag;
pub mod duration;
pub mod env;
pub mod local_time;
pub mod logging;
pub mod net;
pub mod one_click;
pub mod path;
pub mod suggest;
pub mod time;
pub mod value;
pub mod yaml;

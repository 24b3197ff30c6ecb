//! `hookflow.yaml` as written: serde with unknown keys refused, and the JSON Schema
//! (`schemas/config.schema.json`) derived from the same types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::base::duration::Duration;

/// hookflow server configuration.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "hookflow configuration")]
pub struct RawConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// The rules folder, relative to this file. Default `rules`.
    pub rules: Option<String>,
    /// The email templates folder, relative to this file. Default `templates`.
    pub templates: Option<String>,
    /// Where state is kept: `sqlite://data/hookflow.db` (relative to this file; one server per
    /// file), or `postgres://USER@HOST/DATABASE` (any number of servers on one database; a
    /// password as `${env:NAME}`). Default `sqlite://data/hookflow.db`.
    pub store: Option<String>,
    /// Settings for a `postgres://` store.
    pub postgres: Option<RawPostgres>,
    /// `full` (default): an acknowledged event survives power loss. `normal`: it survives
    /// a crash of hookflow, but the last moments before a power cut may be lost; faster.
    pub durability: Option<crate::store::Durability>,
    /// Folder for emails when no SMTP server is configured. Default `data/outbox`.
    pub outbox: Option<String>,
    /// Bearer token required by `/api`; usually `${env:HOOKFLOW_ADMIN_TOKEN}`. Without it
    /// the admin API is open (bind to localhost).
    pub admin_token: Option<String>,
    /// Largest request body accepted, in bytes. Default 1048576 (1 MiB).
    pub body_limit: Option<u64>,
    /// Requests waiting for the store at once before answering 503. Default 1024.
    pub ingest_queue: Option<usize>,
    /// Open connections served at once; past it a new connection is answered 503 and
    /// closed. Keep it below the process's file limit (`ulimit -n`). Default 1024.
    pub max_connections: Option<usize>,
    /// A client must send a request's headers within this. Default 10s.
    pub header_timeout: Option<Duration>,
    /// A client must send a webhook's whole body within this (answered 408). Default 30s.
    pub body_timeout: Option<Duration>,
    /// On SIGTERM, requests in flight get this long to finish before hookflow exits.
    /// Default 10s.
    pub shutdown_grace: Option<Duration>,
    /// Where events come from; each is served at `/hooks/NAME`. Default: `mailjet`, no auth.
    pub sources: Option<BTreeMap<String, RawSource>>,
    /// SMTP server for `email` actions; without it emails are written to the outbox.
    pub smtp: Option<RawSmtp>,
    /// How actions are delivered and retried.
    pub delivery: Option<RawDelivery>,
    /// Outbound HTTP settings.
    pub http: Option<RawHttpSettings>,
    /// How rule and template changes are picked up. Default: file-system events.
    pub reload: Option<RawReload>,
    /// Where to POST the errors when a reload finds broken files.
    pub on_reload_error: Option<RawTarget>,
    /// How long the journal (events, their jobs and delivery attempts) is kept, e.g.
    /// `90d` (default), or `forever`. Older events are deleted in batches, except one a
    /// job is still pending for or an `absent` timer still waits on. Contacts,
    /// suppressions and the state of stateful rules are not part of the journal.
    pub retention: Option<String>,
    /// Email actions are held until these hours and days in the contact's zone, unless
    /// the action sets its own `send_window` (or `send_window: none`), e.g.
    /// `{ between: ["09:00", "20:00"], tz: "{{Payload.tz}}", fallback: UTC }`.
    pub send_window: Option<serde_json::Value>,
    /// Frequency caps across all rules, per contact, e.g. `[{ name: marketing, kinds:
    /// [email], max: 2, per: 1d }]`. Every action of a covered kind counts against them
    /// unless it says `cap: none` (or picks one with `cap: NAME`).
    pub caps: Option<Vec<RawCap>>,
    /// Where hookflow is reached from the internet, e.g. `https://hooks.example.com`:
    /// the base of one-click unsubscribe links.
    pub public_url: Option<String>,
    /// One-click unsubscribe (RFC 8058) for email actions with `unsubscribe: { list }`.
    pub unsubscribe: Option<RawUnsubscribe>,
}

/// `unsubscribe: { secret, suppress }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUnsubscribe {
    /// Signs the links (at least 16 bytes), e.g. `"${env:HOOKFLOW_UNSUBSCRIBE_SECRET}"`.
    /// Without it the server makes a key and keeps it in its store.
    pub secret: Option<String>,
    /// Also add the address to the suppression list (no email at all any more). Default
    /// `false`: it leaves the list only.
    #[serde(default)]
    pub suppress: bool,
}

/// One frequency cap.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCap {
    /// How actions name it (`cap: marketing`) and messages show it.
    pub name: String,
    /// The action kinds it covers. Default `[email]`.
    pub kinds: Option<Vec<String>>,
    /// At most this many per contact (at least 1) ...
    pub max: u32,
    /// ... in any period this long, e.g. `1d`.
    pub per: Duration,
    /// `skip` (default): a job over the cap is not sent; `hold`: it waits for room.
    pub when_capped: Option<crate::base::caps::WhenCapped>,
}

/// Settings for a PostgreSQL store.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    /// The schema for hookflow's tables, created if missing. Default `public`.
    pub schema: Option<String>,
    /// Connections this server keeps (each on a thread of its own). Default 4.
    pub pool: Option<usize>,
    /// The database cancels a statement running longer than this. Default 30s.
    pub statement_timeout: Option<Duration>,
    /// This server's name on the job leases it takes; at start it takes back its own
    /// leases only (another server's expire). Default `HOSTNAME:PORT`.
    pub instance: Option<String>,
    /// `true` (default): the server runs missing schema migrations at start. `false`: it
    /// only checks, and refuses to start until `hookflow migrate` has run.
    pub migrate: Option<bool>,
    /// `postgres://…` of a hot standby (streaming replica) of the same database: the
    /// admin API's listings, audit trails and stats read there, off the primary (they may
    /// lag it by the replication delay). Reads that decide something stay on the primary;
    /// when the standby cannot answer (down, behind on the schema), its reads go to the primary.
    pub replica: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReload {
    /// Scan for changes at this interval instead of using file-system events (for
    /// network file systems that send none), e.g. `2s`.
    pub poll: Option<Duration>,
    /// `false`: only SIGHUP reloads.
    pub watch: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub url: String,
}

/// One event source.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// The provider: `mailjet`, `sendgrid`, `mailgun`, `postmark`, `ses`, `resend`,
    /// `sparkpost`, `brevo`, or `json` for any JSON object or array.
    pub format: Format,
    /// Rewrite events into the common vocabulary (`delivered open click bounce blocked
    /// spam unsub`, fields `email message_id campaign url time hard provider_type`), so
    /// one rule serves every provider. Not for `json`.
    pub normalize: Option<bool>,
    /// For `json`: JSONPath of the event type, e.g. `$.type`.
    pub type_path: Option<String>,
    /// For `json`: JSONPath of a unique event id; without it, a hash of the payload.
    pub id_path: Option<String>,
    /// For `json`: JSONPath of the event time (unix seconds or RFC 3339); default: arrival.
    pub time_path: Option<String>,
    /// How senders prove who they are.
    pub auth: Option<RawAuth>,
    /// Where an event's contact (the person it is about) is: a field path to an address,
    /// lowercased when read. Default `email`. Jobs and timers carry it for `cancel`,
    /// `exit_on`, caps and `contact.*`.
    pub contact: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Mailjet,
    Sendgrid,
    Mailgun,
    Postmark,
    Ses,
    Resend,
    Sparkpost,
    Brevo,
    Json,
}

/// Exactly one scheme.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// HTTP basic auth (Mailjet, Postmark, SparkPost: `https://user:pass@host/hooks/…`).
    pub basic: Option<RawBasic>,
    /// A signature header: HMAC of the raw body.
    pub hmac: Option<RawHmac>,
    /// A fixed secret in a header (Brevo).
    pub token: Option<RawToken>,
    /// SendGrid's signed event webhook: its verification key.
    pub ecdsa: Option<RawEcdsa>,
    /// Mailgun's webhook signing key.
    pub mailgun: Option<RawMailgun>,
    /// Svix / Standard Webhooks signatures (Resend).
    pub svix: Option<RawSvix>,
    /// Amazon SNS message signatures (SES).
    pub sns: Option<RawSns>,
    /// How far a signed timestamp may be from now, either way. Default 5m; 1h for `sns`
    /// (SNS retries for a while with the first timestamp).
    pub tolerance: Option<Duration>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// The request header, e.g. `X-Brevo-Token`.
    pub header: String,
    pub value: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEcdsa {
    /// The public key as SendGrid shows it: base64 of its DER encoding.
    pub public_key: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMailgun {
    pub signing_key: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSvix {
    /// `whsec_…`, as Resend shows it.
    pub secret: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSns {
    /// The topic ARNs accepted; any other is refused.
    pub topics: Vec<String>,
    /// Confirm a subscription by fetching its `SubscribeURL` (after its signature
    /// checks). Default true; false logs the URL for an operator.
    pub confirm: Option<bool>,
    /// A regular expression for the hosts of `SigningCertURL` and `SubscribeURL`.
    /// Default: SNS's own, `^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`.
    pub cert_host: Option<String>,
    /// A PEM file of certificates trusted for those https fetches beside the built-in roots.
    pub ca_file: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBasic {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHmac {
    /// The request header carrying the signature, e.g. `X-Signature`.
    pub header: String,
    pub secret: String,
    /// Only `sha256`.
    pub algorithm: Option<String>,
    /// `hex` (default) or `base64`.
    pub encoding: Option<String>,
    /// A prefix before the signature in the header, e.g. `sha256=`.
    pub prefix: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    /// `smtp://host:port`, `smtps://…`, with credentials in the URL if needed.
    pub url: String,
    /// Default sender, e.g. `Shop <shop@example.com>`.
    pub from: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    /// Concurrent deliveries. Default 16.
    pub workers: Option<usize>,
    /// Timeout of one attempt. Default 30s.
    pub timeout: Option<Duration>,
    /// Retries after the first attempt: default 10 every 30s, then 10 every 30m.
    pub schedule: Option<Vec<RawStep>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub retries: u32,
    pub every: Duration,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttpSettings {
    /// Secret for `sign: true` actions (`whsec_` and base64, 24 to 64 bytes), usually
    /// `${env:NAME}`; a list signs with each (rotation: receivers accept any one).
    pub signing_secret: Option<crate::base::yaml::StringList>,
    /// Hosts (names or IPs) that `http` actions may reach even when the URL's host comes
    /// from event data and is private, loopback or link-local.
    pub allow_private_targets: Option<Vec<String>>,
}

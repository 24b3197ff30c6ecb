//! Running a rendered action: what every executor gets ([`Exec`]) and the one shape of
//! what it returns ([`Attempted`]). Each kind's executor lives in its file, beside its
//! compile and render.

use chrono::{DateTime, Utc};

pub use super::attempt::{Attempted, Outcome};
use super::email::mailer::Mailer;
use crate::base::duration::Duration;
use crate::base::net::Clients;
use crate::base::net::sign::Secret;

/// What executing a job needs besides its action.
pub struct Exec<'a, S> {
    pub store: &'a S,
    pub clients: &'a Clients,
    pub mailer: &'a Mailer,
    /// The sender of emails that name none.
    pub default_from: &'a str,
    /// The default attempt timeout (an `http` action may set its own).
    pub timeout: Duration,
    /// Signing secrets and basic-auth credentials, read from the rule in service (never
    /// stored with the job).
    pub signing_secrets: &'a [Secret],
    pub basic_auth: Option<(&'a str, &'a str)>,
    /// The job: its idempotency key (the `webhook-id` and the email's `Message-ID` come
    /// from it), its rule and event.
    pub key: &'a str,
    pub rule_id: &'a str,
    pub event_id: &'a str,
    /// The clock's "now", for what the store records.
    pub now: DateTime<Utc>,
}

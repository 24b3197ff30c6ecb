//! Running a rendered action: what every executor gets, and the one shape of what it
//! returns. Each kind's executor lives in its file, beside its compile and render.

use chrono::{DateTime, Utc};

use super::email::send::Mailer;
use crate::base::duration::Duration;
use crate::base::net::Clients;
use crate::base::net::sign::Secret;
use crate::store::StoreError;

/// How an attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success,
    /// Nothing to do, on purpose (every recipient suppressed): recorded, not retried.
    Skipped,
    /// Worth trying again; `retry_after` when the receiver asked for a pause (429/503).
    Retryable {
        retry_after: Option<Duration>,
    },
    /// Never worth repeating (410 Gone, an invalid request, a refused address).
    Permanent,
}

/// What one attempt did: the outcome, and what the audit trail keeps of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempted {
    pub outcome: Outcome,
    /// The HTTP status, when there was a response.
    pub status_code: Option<u16>,
    /// What the other side said (a response body, an SMTP reply, what changed).
    pub response: Option<String>,
    /// Why it failed, or was skipped.
    pub error: Option<String>,
}

impl Attempted {
    pub fn done(response: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Success,
            status_code: None,
            response: Some(response.into()),
            error: None,
        }
    }

    pub fn skipped(reason: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Skipped,
            status_code: None,
            response: None,
            error: Some(reason.into()),
        }
    }

    pub fn retry(error: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Retryable { retry_after: None },
            status_code: None,
            response: None,
            error: Some(error.into()),
        }
    }

    pub fn fail(error: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Permanent,
            status_code: None,
            response: None,
            error: Some(error.into()),
        }
    }

    /// A store failure is worth another try.
    pub fn store(e: StoreError) -> Self {
        Self::retry(e.to_string())
    }
}

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

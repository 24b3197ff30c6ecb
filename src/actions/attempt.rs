//! What one attempt did, in the one shape every executor returns.

use crate::base::duration::Duration;
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

//! What every signature scheme shares: why a request was refused, what checking it
//! learned, and the checks of secrets and timestamps. Below both `auth` (which
//! picks a scheme) and the providers whose scheme lives in their own file.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::base::duration::Duration;

/// How a signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

/// An SNS message that is not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A topic asks to deliver here: confirmed by fetching `url`.
    Confirm { topic: String, url: String },
    /// A subscription was ended.
    Unsubscribed { topic: String },
}

/// What checking a request learned beyond "it is genuine".
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The sender's id of this delivery (`svix-id`): a redelivery carries the same.
    pub delivery: Option<String>,
    /// An SNS message that is not an event (a subscription to confirm).
    pub control: Option<Control>,
}

/// Why a request was refused (HTTP 401). The message never echoes a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing credentials: this source requires HTTP basic auth")]
    MissingBasic,
    #[error("wrong username or password")]
    WrongBasic,
    #[error("missing signature header `{0}`")]
    MissingSignature(String),
    #[error("missing header `{0}`")]
    MissingHeader(String),
    #[error("the signature in `{0}` is not valid {1}")]
    BadEncoding(String, &'static str),
    #[error("the signature does not match the body")]
    WrongSignature,
    #[error("wrong token in `{0}`")]
    WrongToken(String),
    #[error("the timestamp `{0}` is not a unix time")]
    BadTimestamp(String),
    #[error("the request was signed {0}s away from now, beyond the tolerance of {1}")]
    Stale(i64, Duration),
    #[error("replayed: this signature was already used")]
    Replayed,
    #[error("the body does not carry a signature: {0}")]
    NoSignedBody(String),
    #[error("SNS topic `{0}` is not in this source's `topics`")]
    Topic(String),
    #[error("untrusted signing certificate URL `{0}`: {1}")]
    CertUrl(String, &'static str),
    #[error("the signing certificate could not be used: {0}")]
    Cert(String),
}

/// Hashes both sides so neither the content nor the length of a secret leaks through
/// timing.
pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    Sha256::digest(given).ct_eq(&Sha256::digest(expected)).into()
}

pub fn decode_signature(name: &str, raw: &str, encoding: Encoding) -> Result<Vec<u8>, AuthError> {
    match encoding {
        Encoding::Hex => hex::decode(raw).map_err(|_| AuthError::BadEncoding(name.to_owned(), "hex")),
        Encoding::Base64 => STANDARD
            .decode(raw)
            .map_err(|_| AuthError::BadEncoding(name.to_owned(), "base64")),
    }
}

/// A signed unix timestamp within `tolerance` of now, either way (clocks drift both ways).
pub fn fresh(timestamp: &str, now: DateTime<Utc>, tolerance: Duration) -> Result<i64, AuthError> {
    let t = timestamp.trim();
    let secs: i64 = t
        .parse()
        .or_else(|_| t.parse::<f64>().map(|f| f as i64))
        .map_err(|_| AuthError::BadTimestamp(t.chars().take(40).collect()))?;
    check_skew(secs, now, tolerance)?;
    Ok(secs)
}

pub fn check_skew(secs: i64, now: DateTime<Utc>, tolerance: Duration) -> Result<(), AuthError> {
    let skew = now.timestamp().saturating_sub(secs);
    if skew.unsigned_abs() > tolerance.to_std().as_secs() {
        return Err(AuthError::Stale(skew, tolerance));
    }
    Ok(())
}

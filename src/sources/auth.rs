//! Proving who posted. Schemes that sign headers and the raw body (basic auth, a
//! header token, HMAC, Standard Webhooks/Svix, SendGrid's ECDSA) are checked here before
//! the body is parsed; Mailgun and SNS put their signature inside the body, so their
//! providers' files check it. Every comparison is constant-time, so response timing
//! reveals nothing about a secret, and every refusal names its reason for the log (the
//! sender only sees `401`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use super::verify::{AuthError, Control, Encoding, Verified};
use super::verify::{decode_signature, fresh, same_secret};
use crate::base::duration::Duration;
use crate::base::net::sign::{self, Secret};

/// How a source's senders prove who they are.
#[derive(Debug, Clone)]
pub enum Auth {
    /// HTTP basic auth (what Mailjet supports: `https://user:pass@host/hooks/mailjet`).
    Basic { username: String, password: String },
    /// An HMAC-SHA256 of the raw body in a header.
    Hmac {
        header: String,
        secret: String,
        encoding: Encoding,
        prefix: String,
    },
    /// A fixed secret in a header (Brevo's `X-Brevo-Token`, or any).
    Token { header: String, value: String },
    /// Standard Webhooks / Svix headers (Resend): `svix-id`, `svix-timestamp`,
    /// `svix-signature` (or their `webhook-` names), HMAC of `id.timestamp.body`.
    Svix { secret: Secret, tolerance: Duration },
    /// SendGrid's signed event webhook: ECDSA P-256 over `timestamp ‖ body`.
    Ecdsa(super::sendgrid::PublicKey),
    /// Mailgun's `signature` object in the body.
    Mailgun(Arc<super::mailgun::SigningKey>),
    /// Amazon SNS message signatures (SES through SNS).
    Sns(Arc<super::ses::Sns>),
}

impl Auth {
    /// Whether the scheme needs no body: the sender is refused before it may send one.
    pub fn before_body(&self) -> bool {
        matches!(self, Auth::Basic { .. } | Auth::Token { .. })
    }
}

/// Checks a request against a source's auth. `header` looks up a request header by its
/// lowercase name; `now` judges signed timestamps.
pub async fn verify<'h>(
    auth: &Auth,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Verified, AuthError> {
    match auth {
        Auth::Sns(sns) => sns.verify(body, now).await,
        other => verify_now(other, header, body, now),
    }
}

/// [`verify`] for every scheme that needs no network.
pub fn verify_now<'h>(
    auth: &Auth,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Verified, AuthError> {
    match auth {
        Auth::Basic { username, password } => {
            let given = header("authorization")
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
                .map(|(_, b)| b)
                .and_then(|b| STANDARD.decode(b.trim()).ok())
                .ok_or(AuthError::MissingBasic)?;
            let expected = format!("{username}:{password}");
            if same_secret(&given, expected.as_bytes()) {
                Ok(Verified::default())
            } else {
                Err(AuthError::WrongBasic)
            }
        }
        Auth::Token { header: name, value } => {
            let given =
                header(&name.to_ascii_lowercase()).ok_or_else(|| AuthError::MissingHeader(name.clone()))?;
            if same_secret(given.trim().as_bytes(), value.as_bytes()) {
                Ok(Verified::default())
            } else {
                Err(AuthError::WrongToken(name.clone()))
            }
        }
        Auth::Hmac {
            header: name,
            secret,
            encoding,
            prefix,
        } => {
            let raw = header(&name.to_ascii_lowercase())
                .ok_or_else(|| AuthError::MissingSignature(name.clone()))?;
            let raw = raw.trim();
            let raw = raw.strip_prefix(prefix.as_str()).unwrap_or(raw);
            let signature = decode_signature(name, raw, *encoding)?;
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| AuthError::WrongSignature)?;
            mac.update(body);
            mac.verify_slice(&signature)
                .map_err(|_| AuthError::WrongSignature)?;
            Ok(Verified::default())
        }
        Auth::Svix { secret, tolerance } => {
            // Svix sends `svix-*`; Standard Webhooks senders the same headers as `webhook-*`.
            let pick = |suffix: &str| {
                header(&format!("svix-{suffix}"))
                    .map(|v| (v, format!("svix-{suffix}")))
                    .or_else(|| {
                        header(&format!("webhook-{suffix}")).map(|v| (v, format!("webhook-{suffix}")))
                    })
                    .ok_or_else(|| AuthError::MissingHeader(format!("svix-{suffix}")))
            };
            let (id, _) = pick("id")?;
            let (timestamp, _) = pick("timestamp")?;
            let (signature, name) = pick("signature")?;
            fresh(timestamp, now, *tolerance)?;
            if signature.split(' ').all(|p| !p.starts_with("v1,")) {
                return Err(AuthError::BadEncoding(name, "`v1,<base64>`"));
            }
            if sign::verify(secret, id, timestamp.trim(), body, signature) {
                Ok(Verified {
                    delivery: Some(id.to_owned()),
                    control: None,
                })
            } else {
                Err(AuthError::WrongSignature)
            }
        }
        Auth::Ecdsa(key) => key.verify(&header, body, now).map(|()| Verified::default()),
        Auth::Mailgun(key) => key.verify(body, now).map(|()| Verified::default()),
        // Reached only through `verify`, which fetches the certificate first.
        Auth::Sns(_) => Err(AuthError::Cert(
            "SNS signatures are checked asynchronously".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic() -> Auth {
        Auth::Basic {
            username: "mj".into(),
            password: "p@ss:word".into(),
        }
    }

    #[test]
    fn basic_auth() {
        let good = format!("Basic {}", STANDARD.encode("mj:p@ss:word"));
        assert_eq!(
            verify_now(&basic(), |_| Some(good.as_str()), b"", Utc::now()),
            Ok(Verified::default())
        );
        let bad = format!("Basic {}", STANDARD.encode("mj:nope"));
        assert_eq!(
            verify_now(&basic(), |_| Some(bad.as_str()), b"", Utc::now()),
            Err(AuthError::WrongBasic)
        );
        assert_eq!(
            verify_now(&basic(), |_| None, b"", Utc::now()),
            Err(AuthError::MissingBasic)
        );
        assert_eq!(
            verify_now(&basic(), |_| Some("Bearer x"), b"", Utc::now()),
            Err(AuthError::MissingBasic)
        );
    }

    #[test]
    fn hmac_over_the_raw_body() {
        let auth = Auth::Hmac {
            header: "X-Signature".into(),
            secret: "s3".into(),
            encoding: Encoding::Hex,
            prefix: "sha256=".into(),
        };
        let body = br#"{"type":"order.paid"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3").unwrap();
        mac.update(body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let lookup = |name: &str| (name == "x-signature").then_some(sig.as_str());
        assert_eq!(
            verify_now(&auth, lookup, body, Utc::now()),
            Ok(Verified::default())
        );
        assert_eq!(
            verify_now(&auth, lookup, b"{\"type\":\"order.refunded\"}", Utc::now()),
            Err(AuthError::WrongSignature)
        );
        assert_eq!(
            verify_now(&auth, |_| Some("zz"), body, Utc::now()),
            Err(AuthError::BadEncoding("X-Signature".into(), "hex"))
        );
        assert_eq!(
            verify_now(&auth, |_| None, body, Utc::now()),
            Err(AuthError::MissingSignature("X-Signature".into()))
        );
    }

    #[test]
    fn a_token_header() {
        let auth = Auth::Token {
            header: "X-Brevo-Token".into(),
            value: "t0k".into(),
        };
        let with = |v: &'static str| move |name: &str| (name == "x-brevo-token").then_some(v);
        assert_eq!(
            verify_now(&auth, with("t0k"), b"", Utc::now()),
            Ok(Verified::default())
        );
        assert_eq!(
            verify_now(&auth, with(" t0k "), b"", Utc::now()),
            Ok(Verified::default())
        );
        assert_eq!(
            verify_now(&auth, with("t0k2"), b"", Utc::now()),
            Err(AuthError::WrongToken("X-Brevo-Token".into()))
        );
        assert_eq!(
            verify_now(&auth, |_| None, b"", Utc::now()),
            Err(AuthError::MissingHeader("X-Brevo-Token".into()))
        );
        assert!(auth.before_body());
    }

    /// Svix's headers, or Standard Webhooks' names for the same; the id is the delivery's.
    #[test]
    fn svix_signatures_with_either_header_names() {
        let secret = Secret::parse(&sign::generate()).unwrap();
        let auth = Auth::Svix {
            secret: secret.clone(),
            tolerance: Duration::from_secs(300),
        };
        let now = Utc::now();
        let body = br#"{"type":"email.opened"}"#;
        let signature = sign::sign(std::slice::from_ref(&secret), "msg_1", now.timestamp(), body);
        let ts = now.timestamp().to_string();
        for prefix in ["svix", "webhook"] {
            let headers = [
                (format!("{prefix}-id"), "msg_1".to_owned()),
                (format!("{prefix}-timestamp"), ts.clone()),
                (format!("{prefix}-signature"), signature.clone()),
            ];
            let lookup = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            let ok = verify_now(&auth, lookup, body, now).unwrap();
            assert_eq!(ok.delivery.as_deref(), Some("msg_1"));
            assert_eq!(
                verify_now(&auth, lookup, b"{}", now),
                Err(AuthError::WrongSignature)
            );
            let later = now + chrono::TimeDelta::seconds(301);
            assert!(matches!(
                verify_now(&auth, lookup, body, later),
                Err(AuthError::Stale(301, _))
            ));
        }
        let none = verify_now(&auth, |_| None, body, now);
        assert_eq!(none, Err(AuthError::MissingHeader("svix-id".into())));
    }
}

//! Mailgun's webhooks: one JSON object per POST, `{"signature": {timestamp, token,
//! signature}, "event-data": {...}}`. The event is `event-data` (its `id` dedupes); the
//! signature is hex HMAC-SHA256 of `timestamp ‖ token` under the account's webhook
//! signing key. It lives in the body, so this is the one scheme (with SNS) checked after
//! parsing; each token is accepted once, so a captured request cannot be replayed.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::normalize::{first_text, text};
use super::verify::{self as auth, AuthError};
use super::{Common, DecodeError, Info, Provider, at};
use crate::base::duration::Duration;
use crate::event::Event;

/// The event types Mailgun sends.
pub const TYPES: &[&str] = &[
    "accepted",
    "rejected",
    "delivered",
    "failed",
    "opened",
    "clicked",
    "unsubscribed",
    "complained",
    "stored",
    "list_member_uploaded",
    "list_member_upload_error",
    "list_uploaded",
];

/// The provider's types and their common names.
pub const INFO: Info = Info {
    display: "Mailgun",
    types: Some(TYPES),
    renames: &[
        ("delivered", "delivered"),
        ("opened", "open"),
        ("clicked", "click"),
        ("failed", "bounce"),
        ("rejected", "blocked"),
        ("complained", "spam"),
        ("unsubscribed", "unsub"),
    ],
    type_field: None,
};

#[derive(Debug, Clone, Copy)]
pub struct Mailgun;

impl Provider for Mailgun {
    fn info(&self) -> &'static Info {
        &INFO
    }

    /// The body's `event-data`; a batch (an array of such bodies, as a test may give) is
    /// decoded item by item.
    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        super::each(body, |index, item| {
            let data = match item {
                Value::Object(mut map) => match map.remove("event-data") {
                    Some(inner @ Value::Object(_)) => inner,
                    Some(_) => {
                        return Err(DecodeError::Invalid {
                            index,
                            message: "`event-data` is not an object".into(),
                        });
                    }
                    // An inline test may give the event itself.
                    None if map.contains_key("event") => Value::Object(map),
                    None => {
                        return Err(DecodeError::Invalid {
                            index,
                            message: "expected Mailgun's `event-data` object".into(),
                        });
                    }
                },
                _ => return Err(DecodeError::NotObject { index }),
            };
            super::flat_event(source, index, data, "event", Some("id"), &["timestamp"], now)
        })
    }

    fn complete_test_event(&self, data: &mut Value, now: DateTime<Utc>) {
        if let Value::Object(map) = data {
            map.entry("timestamp")
                .or_insert_with(|| Value::from(now.timestamp()));
        }
    }

    fn normalize(&self, ev: &Event) -> Option<Common> {
        let d = &ev.data;
        let reason = d.get("reason").and_then(Value::as_str).unwrap_or_default();
        let kind = match ev.kind.as_str() {
            // Not sent at all: the address is on a suppression list.
            "failed" if reason.starts_with("suppress-") => Some("blocked"),
            other => INFO.rename(other),
        };
        Some(Common {
            kind,
            email: text(d.get("recipient")),
            message_id: text(at(d, &["message", "headers", "message-id"])),
            campaign: text(at(d, &["campaigns", "0", "id"])).or_else(|| first_text(d.get("tags"))),
            url: text(d.get("url")),
            hard: Some(d.get("severity").and_then(Value::as_str) == Some("permanent")),
        })
    }
}

/// A webhook signing key and the tokens it has accepted.
#[derive(Debug)]
pub struct SigningKey {
    key: String,
    tolerance: Duration,
    seen: Mutex<Seen>,
}

/// Tokens accepted within the tolerance, oldest first. Older ones need no memory: their
/// timestamp alone refuses them. Bounded, so a flood of valid requests cannot grow it.
#[derive(Debug, Default)]
struct Seen {
    order: VecDeque<(i64, String)>,
    tokens: HashSet<String>,
}

const MAX_SEEN: usize = 200_000;

#[derive(Deserialize)]
struct Body {
    signature: Signature,
}

#[derive(Deserialize)]
struct Signature {
    timestamp: Value,
    token: String,
    signature: String,
}

impl SigningKey {
    pub fn new(key: String, tolerance: Duration) -> Self {
        Self {
            key,
            tolerance,
            seen: Mutex::default(),
        }
    }

    /// Checks the body's signature, freshness and token.
    pub fn verify(&self, body: &[u8], now: DateTime<Utc>) -> Result<(), AuthError> {
        let Body { signature: sig } = serde_json::from_slice(body).map_err(|_| {
            AuthError::NoSignedBody("expected `signature: {timestamp, token, signature}`".into())
        })?;
        let timestamp =
            text(Some(&sig.timestamp)).ok_or_else(|| AuthError::BadTimestamp(sig.timestamp.to_string()))?;
        let given = auth::decode_signature("signature.signature", sig.signature.trim(), auth::Encoding::Hex)?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.key.as_bytes()).map_err(|_| AuthError::WrongSignature)?;
        mac.update(timestamp.as_bytes());
        mac.update(sig.token.as_bytes());
        mac.verify_slice(&given).map_err(|_| AuthError::WrongSignature)?;
        let secs = auth::fresh(&timestamp, now, self.tolerance)?;
        self.first_use(sig.token, secs, now)
    }

    fn first_use(&self, token: String, secs: i64, now: DateTime<Utc>) -> Result<(), AuthError> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = now
            .timestamp()
            .saturating_sub(self.tolerance.to_std().as_secs() as i64);
        while let Some((t, _)) = seen.order.front() {
            if *t >= oldest && seen.order.len() < MAX_SEEN {
                break;
            }
            if let Some((_, old)) = seen.order.pop_front() {
                seen.tokens.remove(&old);
            }
        }
        if !seen.tokens.insert(token.clone()) {
            return Err(AuthError::Replayed);
        }
        seen.order.push_back((secs, token));
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sign(key: &str, timestamp: &str, token: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn body(timestamp: &str, token: &str, signature: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {"event": "delivered", "id": "x", "timestamp": 1},
        }))
        .unwrap()
    }

    #[test]
    fn signed_fresh_and_once() {
        let key = SigningKey::new("key-abc".into(), Duration::from_secs(300));
        let now = Utc::now();
        let ts = now.timestamp().to_string();
        let good = body(&ts, "tok1", &sign("key-abc", &ts, "tok1"));
        assert_eq!(key.verify(&good, now), Ok(()));
        assert_eq!(key.verify(&good, now), Err(AuthError::Replayed));
        let wrong = body(&ts, "tok2", &sign("other", &ts, "tok2"));
        assert_eq!(key.verify(&wrong, now), Err(AuthError::WrongSignature));
        let old = (now.timestamp() - 400).to_string();
        let stale = body(&old, "tok3", &sign("key-abc", &old, "tok3"));
        assert!(matches!(key.verify(&stale, now), Err(AuthError::Stale(400, _))));
        assert!(matches!(key.verify(b"{}", now), Err(AuthError::NoSignedBody(_))));
        // A token seen long ago is forgotten, but its timestamp refuses it by then.
        let later = now + chrono::TimeDelta::seconds(301);
        assert!(matches!(key.verify(&good, later), Err(AuthError::Stale(301, _))));
    }

    #[test]
    fn the_documented_delivery_decodes_and_normalizes() {
        let evs = crate::sources::tests::normalized(
            Mailgun,
            "mg",
            include_str!("../../tests/fixtures/providers/mailgun.json"),
        );
        let kinds = crate::sources::tests::kinds(&evs);
        assert_eq!(
            kinds,
            ["delivered", "bounce", "blocked", "open", "click", "spam", "unsub"]
        );
        assert_eq!(evs[0].id, "mg:1529692199:hK7mQVt1QtqRiOfQXta4sw");
        assert_eq!(evs[0].data["email"], "john@example.com");
        assert_eq!(
            evs[0].data["message_id"],
            "20180622182958.1.48906CB188F1A454@exmple.org"
        );
        assert_eq!(evs[0].time.timestamp(), 1529692199);
        assert_eq!(evs[1].data["hard"], true);
        assert_eq!(evs[1].data["provider_type"], "failed");
    }
}

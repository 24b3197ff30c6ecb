//! SendGrid's event webhook: always a JSON array of flat events named by `event`,
//! duplicates common (dedupe on `sg_event_id`). Signed webhooks carry an ECDSA P-256
//! signature (base64 DER) of `timestamp ‖ raw body` in
//! `X-Twilio-Email-Event-Webhook-Signature`, the timestamp in `…-Timestamp`; the public
//! key is what SendGrid's settings page shows (base64 of its DER encoding).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::Value;
use x509_cert::der::Decode;
use x509_cert::spki;

use super::normalize::{first_text, text};
use super::verify::{self as auth, AuthError};
use super::{Common, DecodeError, Info, Provider};
use crate::base::duration::Duration;
use crate::event::Event;

/// The event types SendGrid sends.
pub const TYPES: &[&str] = &[
    "processed",
    "dropped",
    "delivered",
    "deferred",
    "bounce",
    "open",
    "click",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
];

pub const SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
pub const TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";

/// The provider's types and their common names.
pub const INFO: Info = Info {
    display: "SendGrid",
    types: Some(TYPES),
    renames: &[
        ("delivered", "delivered"),
        ("open", "open"),
        ("click", "click"),
        ("bounce", "bounce"),
        ("dropped", "blocked"),
        ("spamreport", "spam"),
        ("unsubscribe", "unsub"),
        ("group_unsubscribe", "unsub"),
    ],
    type_field: Some("event"),
};

#[derive(Debug, Clone, Copy)]
pub struct SendGrid;

impl Provider for SendGrid {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        super::each(body, |index, data| {
            super::flat_event(
                source,
                index,
                data,
                "event",
                Some("sg_event_id"),
                &["timestamp"],
                now,
            )
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
        // `type: blocked` is a receiver's temporary refusal; a 4.x.x status is soft too.
        let hard = d.get("type").and_then(Value::as_str) != Some("blocked")
            && !text(d.get("status")).is_some_and(|s| s.starts_with('4'));
        Some(Common {
            kind: INFO.rename(&ev.kind),
            email: text(d.get("email")),
            message_id: text(d.get("sg_message_id")),
            campaign: text(d.get("marketing_campaign_id"))
                .or_else(|| text(d.get("singlesend_id")))
                .or_else(|| first_text(d.get("category"))),
            url: text(d.get("url")),
            hard: Some(hard),
        })
    }
}

/// A P-256 public key, read from the base64 DER that SendGrid shows.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// The uncompressed point, as `ring` takes it.
    point: Vec<u8>,
    pub tolerance: Duration,
}

const EC_PUBLIC_KEY: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

impl PublicKey {
    /// Reads the key; the error says what is wrong with it.
    pub fn parse(base64_der: &str, tolerance: Duration) -> Result<Self, String> {
        let compact: String = base64_der.split_whitespace().collect();
        let der = STANDARD
            .decode(compact)
            .map_err(|_| "the public key is not base64 (paste it as SendGrid shows it)".to_owned())?;
        let info = spki::SubjectPublicKeyInfoRef::from_der(&der)
            .map_err(|e| format!("the public key is not a DER SubjectPublicKeyInfo: {e}"))?;
        let curve = info
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<spki::ObjectIdentifier>().ok());
        if info.algorithm.oid != EC_PUBLIC_KEY || curve != Some(P256) {
            return Err("the public key is not an ECDSA P-256 key".into());
        }
        let point = info
            .subject_public_key
            .as_bytes()
            .ok_or("the public key's bits are not whole bytes")?
            .to_vec();
        Ok(Self { point, tolerance })
    }

    /// Checks the signature headers against the raw body.
    pub fn verify<'h>(
        &self,
        header: &impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let signature = header(SIGNATURE).ok_or_else(|| AuthError::MissingSignature(SIGNATURE.into()))?;
        let timestamp = header(TIMESTAMP).ok_or_else(|| AuthError::MissingHeader(TIMESTAMP.into()))?;
        let signature = auth::decode_signature(SIGNATURE, signature.trim(), auth::Encoding::Base64)?;
        let timestamp = timestamp.trim();
        auth::fresh(timestamp, now, self.tolerance)?;
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(body);
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(&signed, &signature)
            .map_err(|_| AuthError::WrongSignature)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    /// A fresh key pair and its public key as SendGrid shows it (base64 DER SPKI).
    pub(crate) fn keys() -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        // SubjectPublicKeyInfo for P-256: the fixed algorithm header, then the point.
        let mut spki = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        spki.extend_from_slice(pair.public_key().as_ref());
        (pair, STANDARD.encode(spki))
    }

    pub(crate) fn sign(pair: &EcdsaKeyPair, timestamp: &str, body: &[u8]) -> String {
        let mut msg = timestamp.as_bytes().to_vec();
        msg.extend_from_slice(body);
        STANDARD.encode(pair.sign(&SystemRandom::new(), &msg).unwrap().as_ref())
    }

    /// Request headers for a test.
    pub(crate) fn with<'a>(pairs: &'a [(&'static str, String)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn signatures_over_timestamp_and_body() {
        let (pair, public) = keys();
        let key = PublicKey::parse(&public, Duration::from_secs(300)).unwrap();
        let now = Utc::now();
        let ts = now.timestamp().to_string();
        let body = br#"[{"event":"open","email":"a@b.c","sg_event_id":"e1","timestamp":1}]"#;
        let sig = sign(&pair, &ts, body);
        assert_eq!(
            key.verify(
                &with(&[(SIGNATURE, sig.clone()), (TIMESTAMP, ts.clone())]),
                body,
                now
            ),
            Ok(())
        );
        assert_eq!(
            key.verify(
                &with(&[(SIGNATURE, sig.clone()), (TIMESTAMP, ts.clone())]),
                b"[]",
                now
            ),
            Err(AuthError::WrongSignature)
        );
        let old = (now.timestamp() - 301).to_string();
        let stale = sign(&pair, &old, body);
        assert!(matches!(
            key.verify(&with(&[(SIGNATURE, stale), (TIMESTAMP, old)]), body, now),
            Err(AuthError::Stale(301, _))
        ));
        let (other, _) = keys();
        assert_eq!(
            key.verify(
                &with(&[(SIGNATURE, sign(&other, &ts, body)), (TIMESTAMP, ts.clone())]),
                body,
                now
            ),
            Err(AuthError::WrongSignature)
        );
        assert_eq!(
            key.verify(&|_: &str| None, body, now),
            Err(AuthError::MissingSignature(SIGNATURE.into()))
        );
    }

    #[test]
    fn keys_that_are_not_p256_are_refused() {
        assert!(
            PublicKey::parse("not base64!", Duration::from_secs(1))
                .unwrap_err()
                .contains("base64")
        );
        assert!(PublicKey::parse(&STANDARD.encode(b"junk"), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn normalizes_the_documented_batch() {
        let evs = crate::sources::tests::normalized(
            SendGrid,
            "sg",
            include_str!("../../tests/fixtures/providers/sendgrid.json"),
        );
        let kinds = crate::sources::tests::kinds(&evs);
        assert_eq!(
            kinds,
            [
                "bounce",
                "open",
                "processed",
                "spam",
                "blocked",
                "click",
                "bounce"
            ]
        );
        assert_eq!(evs[0].id, "sg:1513299569:6g4ZI7SA-xmRDv57GoPIPw==");
        assert_eq!(evs[0].data["hard"], Value::Bool(true));
        assert_eq!(evs[0].data["provider_type"], "bounce");
        assert_eq!(evs[0].data["campaign"], "cat facts");
        assert_eq!(evs[6].data["hard"], Value::Bool(false));
        assert_eq!(evs[5].data["url"], "https://sendgrid.com");
    }
}

//! Standard Webhooks signatures for outbound requests: `webhook-signature: v1,<base64>`,
//! the HMAC-SHA256 of `id.timestamp.body` under each secret, space-separated when several
//! secrets are in use at once (rotation: receivers accept any one they know).
//!
//! Secrets are written as the Standard Webhooks libraries write them: `whsec_` and the
//! key in base64 (padded or not), 24 to 64 bytes. A secret without the prefix is refused
//! rather than guessed at: the official libraries base64-decode whatever follows the
//! optional prefix, so raw bytes used as a key would sign what no receiver verifies.

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{DecodePaddingMode, general_purpose};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One signing key, decoded. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Accepts base64 with or without its `=` padding, as receivers' secrets are shown both ways.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const MIN: usize = 24;
const MAX: usize = 64;

impl Secret {
    /// Reads `whsec_<base64>`; the error says what is wrong, never the secret.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(b64) = text.trim().strip_prefix("whsec_") else {
            return Err(
                "a signing secret is `whsec_` followed by base64 (as the Standard Webhooks libraries write it)"
                    .into(),
            );
        };
        let key = LENIENT
            .decode(b64)
            .map_err(|_| "the signing secret after `whsec_` is not base64".to_owned())?;
        if !(MIN..=MAX).contains(&key.len()) {
            return Err(format!(
                "the signing secret is {} bytes; Standard Webhooks secrets are {MIN} to {MAX} bytes",
                key.len()
            ));
        }
        Ok(Self(key))
    }
}

/// The `webhook-signature` value: one `v1,…` per secret, space-separated.
pub fn sign(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    secrets
        .iter()
        .map(|secret| format!("v1,{}", STANDARD.encode(mac(secret, id, &timestamp, body))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The receiving side of [`sign`]: whether `header` (`v1,<base64> v1,<base64>`, as
/// Standard Webhooks and Svix send it) holds a signature of `id.timestamp.body` under
/// `secret`. `timestamp` is the header's text as sent. Every candidate is compared in
/// constant time; other versions (`v1a,…`) are skipped.
pub fn verify(secret: &Secret, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = mac(secret, id, timestamp, body);
    header
        .split(' ')
        .filter_map(|part| part.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .fold(false, |found, sig| {
            found | bool::from(sig.as_slice().ct_eq(&expected))
        })
}

fn mac(secret: &Secret, id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// A fresh secret of 32 random bytes, for documentation and tests.
pub fn generate() -> String {
    let bytes: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
    format!("whsec_{}", general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_test_vector() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &[secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_checked() {
        let padded = "whsec_c2VjcmV0LWtleS10aGF0LWlzLWxvbmctZW5vdWdoLQ==";
        let bare = padded.trim_end_matches('=');
        assert_eq!(Secret::parse(padded).unwrap(), Secret::parse(bare).unwrap());
        for (bad, why) in [
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "followed by base64"),
            ("whsec_not base64!", "not base64"),
            ("whsec_c2VydmVyLXNlY3JldA==", "13 bytes"),
            (&format!("whsec_{}", STANDARD.encode([7u8; 65])), "65 bytes"),
        ] {
            let err = Secret::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(Secret::parse(&generate()).is_ok());
    }

    #[test]
    fn verify_accepts_any_v1_signature_it_can_check() {
        let ours = Secret::parse(&generate()).unwrap();
        let other = Secret::parse(&generate()).unwrap();
        let header = sign(&[other.clone(), ours.clone()], "msg_1", 1614265330, b"{}");
        assert!(verify(&ours, "msg_1", "1614265330", b"{}", &header));
        assert!(!verify(&ours, "msg_1", "1614265331", b"{}", &header));
        assert!(!verify(&ours, "msg_2", "1614265330", b"{}", &header));
        assert!(!verify(&ours, "msg_1", "1614265330", b"{ }", &header));
        let only_other = sign(&[other], "msg_1", 1614265330, b"{}");
        assert!(!verify(&ours, "msg_1", "1614265330", b"{}", &only_other));
        assert!(!verify(&ours, "msg_1", "1614265330", b"{}", "v1,!!! v2,abc"));
    }

    #[test]
    fn several_secrets_sign_once_each() {
        let a = Secret::parse(&generate()).unwrap();
        let b = Secret::parse(&generate()).unwrap();
        let both = sign(&[a.clone(), b.clone()], "id", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts, [sign(&[a], "id", 1, b"{}"), sign(&[b], "id", 1, b"{}")]);
    }
}

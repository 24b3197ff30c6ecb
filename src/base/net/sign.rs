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
    secrets
        .iter()
        .map(|secret| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes any key length");
            mac.update(format!("{id}.{timestamp}.").as_bytes());
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
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
    fn several_secrets_sign_once_each() {
        let a = Secret::parse(&generate()).unwrap();
        let b = Secret::parse(&generate()).unwrap();
        let both = sign(&[a.clone(), b.clone()], "id", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts, [sign(&[a], "id", 1, b"{}"), sign(&[b], "id", 1, b"{}")]);
    }
}

//! Proving who posted: HTTP basic auth or an HMAC signature over the raw body. Every
//! comparison is constant-time, so response timing reveals nothing about the secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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
}

/// How a signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
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
    #[error("the signature in `{0}` is not valid {1}")]
    BadEncoding(String, &'static str),
    #[error("the signature does not match the body")]
    WrongSignature,
}

/// Checks a request against a source's auth. `header` looks up a request header.
pub fn verify<'h>(
    auth: &Auth,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
) -> Result<(), AuthError> {
    match auth {
        Auth::Basic { username, password } => {
            let given = header("authorization")
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
                .map(|(_, b)| b)
                .and_then(|b| STANDARD.decode(b.trim()).ok())
                .ok_or(AuthError::MissingBasic)?;
            let expected = format!("{username}:{password}");
            // Hash both sides so neither the content nor the length leaks through timing.
            let same: bool = Sha256::digest(&given)
                .ct_eq(&Sha256::digest(expected.as_bytes()))
                .into();
            if same { Ok(()) } else { Err(AuthError::WrongBasic) }
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
            let signature = match encoding {
                Encoding::Hex => hex::decode(raw).map_err(|_| AuthError::BadEncoding(name.clone(), "hex"))?,
                Encoding::Base64 => STANDARD
                    .decode(raw)
                    .map_err(|_| AuthError::BadEncoding(name.clone(), "base64"))?,
            };
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| AuthError::WrongSignature)?;
            mac.update(body);
            mac.verify_slice(&signature)
                .map_err(|_| AuthError::WrongSignature)
        }
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
        assert_eq!(verify(&basic(), |_| Some(good.as_str()), b""), Ok(()));
        let bad = format!("Basic {}", STANDARD.encode("mj:nope"));
        assert_eq!(
            verify(&basic(), |_| Some(bad.as_str()), b""),
            Err(AuthError::WrongBasic)
        );
        assert_eq!(verify(&basic(), |_| None, b""), Err(AuthError::MissingBasic));
        assert_eq!(
            verify(&basic(), |_| Some("Bearer x"), b""),
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
        assert_eq!(verify(&auth, lookup, body), Ok(()));
        assert_eq!(
            verify(&auth, lookup, b"{\"type\":\"order.refunded\"}"),
            Err(AuthError::WrongSignature)
        );
        assert_eq!(
            verify(&auth, |_| Some("zz"), body),
            Err(AuthError::BadEncoding("X-Signature".into(), "hex"))
        );
        assert_eq!(
            verify(&auth, |_| None, body),
            Err(AuthError::MissingSignature("X-Signature".into()))
        );
    }
}

//! One-click unsubscribe links (RFC 8058, which Gmail and Yahoo require of bulk senders):
//! `https://PUBLIC/u/TOKEN`, where the token carries the contact and the list and is
//! signed with the server's secret. Nothing in it is a guessable id: a link for one
//! address and list cannot be turned into one for another without the secret.
//!
//! Token: `base64url(contact "\n" list) "." base64url(first 16 bytes of
//! HMAC-SHA256(secret, "hookflow-unsubscribe\n" contact "\n" list))`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signed link's parts: where hookflow is reached, and the key. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct OneClick {
    /// `https://hooks.example.com`, without a trailing slash.
    pub public_url: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for OneClick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OneClick({}, key of {} bytes)",
            self.public_url,
            self.key.len()
        )
    }
}

/// The tag's length: 128 bits.
const TAG: usize = 16;

/// A secret shorter than this is refused: a token is only as strong as its key.
pub const MIN_SECRET: usize = 16;

impl OneClick {
    /// `public_url` must be `https://` (or `http://` for a test on 127.0.0.1); the secret
    /// at least [`MIN_SECRET`] bytes. The error says which, never the secret.
    pub fn new(public_url: &str, secret: &str) -> Result<Self, String> {
        let url = Self::public_url(public_url)?;
        if secret.len() < MIN_SECRET {
            return Err(format!(
                "unsubscribe.secret must be at least {MIN_SECRET} bytes (it has {})",
                secret.len()
            ));
        }
        Ok(Self {
            public_url: url,
            key: secret.as_bytes().to_vec(),
        })
    }

    /// `public_url` checked, without its trailing slash: `https://`, or `http://` for
    /// 127.0.0.1 or localhost (tests).
    pub fn public_url(public_url: &str) -> Result<String, String> {
        let url = public_url.trim().trim_end_matches('/');
        let parsed = url::Url::parse(url).map_err(|e| format!("public_url `{url}`: {e}"))?;
        let local = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if parsed.scheme() != "https" && !(parsed.scheme() == "http" && local) {
            return Err(format!(
                "public_url `{url}` must be https:// (mail clients refuse to post elsewhere)"
            ));
        }
        Ok(url.to_owned())
    }

    /// A key hookflow made itself (kept in the store) at `public_url` as given: the
    /// server warns when that URL is only its listen address.
    pub fn generated(public_url: &str, key: &str) -> Self {
        Self {
            public_url: public_url.trim().trim_end_matches('/').to_owned(),
            key: key.as_bytes().to_vec(),
        }
    }

    /// Links made offline (`hookflow test`, `check`): shaped like the server's, signed
    /// with a key no server has, so they unsubscribe no one.
    pub fn offline(public_url: Option<&str>) -> Self {
        Self::generated(
            public_url.unwrap_or("http://127.0.0.1:8080"),
            "made offline: not the server's key",
        )
    }

    /// A fresh random key (32 bytes from the operating system, in hex).
    pub fn fresh_key() -> Result<String, String> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness for a key: {e}"))?;
        Ok(hex::encode(bytes))
    }

    fn tag(&self, contact: &str, list: &str) -> Hmac<Sha256> {
        // Any key length is accepted by HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(b"hookflow-unsubscribe\n");
        mac.update(contact.as_bytes());
        mac.update(b"\n");
        mac.update(list.as_bytes());
        mac
    }

    /// The token for `contact` (lowercased here) and `list`.
    pub fn token(&self, contact: &str, list: &str) -> String {
        let contact = contact.trim().to_lowercase();
        let body = URL_SAFE_NO_PAD.encode(format!("{contact}\n{list}"));
        let tag = self.tag(&contact, list).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG]))
    }

    /// The link a `List-Unsubscribe` header carries.
    pub fn url(&self, contact: &str, list: &str) -> String {
        format!("{}/u/{}", self.public_url, self.token(contact, list))
    }

    /// The contact and list of a token this server signed; `None` for anything else
    /// (checked in constant time).
    pub fn verify(&self, token: &str) -> Option<(String, String)> {
        let (body, tag) = token.split_once('.')?;
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        let (contact, list) = text.split_once('\n')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != TAG {
            return None;
        }
        self.tag(contact, list).verify_truncated_left(&tag).ok()?;
        Some((contact.to_owned(), list.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::OneClick;

    fn key() -> OneClick {
        OneClick::new("https://hooks.example.com/", "0123456789abcdef-secret").unwrap()
    }

    #[test]
    fn a_token_carries_its_contact_and_list_and_nothing_else_verifies() {
        let k = key();
        let url = k.url("Ann@Example.org", "newsletter");
        assert!(url.starts_with("https://hooks.example.com/u/"), "{url}");
        let token = url.rsplit('/').next().unwrap();
        assert_eq!(
            k.verify(token),
            Some(("ann@example.org".into(), "newsletter".into()))
        );
        // Another list under the same tag, a flipped tag, another key: refused.
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!(
            "{}.{tag}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                "ann@example.org\nvip"
            )
        );
        assert_eq!(k.verify(&forged), None);
        let mut flipped = token.to_owned();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(k.verify(&flipped), None);
        let other = OneClick::new("https://hooks.example.com", "another-secret-of-16+").unwrap();
        assert_eq!(other.verify(token), None);
        for junk in ["", ".", "a.b", "%%%.%%%", "YQ.AAAA"] {
            assert_eq!(k.verify(junk), None, "{junk}");
        }
    }

    #[test]
    fn the_link_must_be_https_and_the_secret_long_enough() {
        assert!(OneClick::new("http://hooks.example.com", "0123456789abcdef").is_err());
        assert!(OneClick::new("http://127.0.0.1:8080", "0123456789abcdef").is_ok());
        let short = OneClick::new("https://h.example", "short").unwrap_err();
        assert!(short.contains("at least 16 bytes"), "{short}");
        assert!(!format!("{:?}", key()).contains("secret"));
    }
}

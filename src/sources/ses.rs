//! Amazon SES through SNS. SNS posts one envelope per request (as `text/plain`):
//! `SubscriptionConfirmation` when a topic first points at us, then `Notification`s whose
//! `Message` is the SES event as JSON text. Each envelope is signed with RSA (signature
//! version 1: SHA1, 2: SHA256) by the key of the certificate at `SigningCertURL`, which
//! is fetched only over https from a host matching `cert_host` (by default SNS's own,
//! `sns.<region>.amazonaws.com`), with TLS checked against the system's roots plus any
//! configured `ca_file`, and kept in memory. Only topics in `topics` are accepted, and a
//! subscription is confirmed (by fetching `SubscribeURL`, the same host rule applying)
//! only after its signature checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use x509_cert::der::DecodePem;

use super::normalize::{first_text, text};
use super::verify::{self as auth, AuthError, Control, Verified};
use super::{Common, DecodeError, Info, Provider, at};
use crate::base::duration::Duration;
use crate::event::Event;

/// The event types SES publishes (notifications and event publishing).
pub const TYPES: &[&str] = &[
    "Bounce",
    "Complaint",
    "Delivery",
    "Send",
    "Reject",
    "Open",
    "Click",
    "Rendering Failure",
    "DeliveryDelay",
    "Subscription",
];

/// SNS's own hosts: `sns.us-east-1.amazonaws.com`, and China's `….amazonaws.com.cn`.
pub const SNS_HOSTS: &str = r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$";

/// The provider's types and their common names.
pub const INFO: Info = Info {
    display: "Amazon SES",
    types: Some(TYPES),
    renames: &[
        ("Delivery", "delivered"),
        ("Open", "open"),
        ("Click", "click"),
        ("Bounce", "bounce"),
        ("Complaint", "spam"),
        ("Reject", "blocked"),
        ("Subscription", "unsub"),
    ],
    type_field: None,
};

#[derive(Debug, Clone, Copy)]
pub struct Ses;

impl Provider for Ses {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        let mut events = Vec::new();
        for (index, item) in super::items(body)?.into_iter().enumerate() {
            events.extend(decode_one(source, index, item, now)?);
        }
        Ok(events)
    }

    fn normalize(&self, ev: &Event) -> Option<Common> {
        let d = &ev.data;
        let email = match ev.kind.as_str() {
            "Bounce" => text(at(d, &["bounce", "bouncedRecipients", "0", "emailAddress"])),
            "Complaint" => text(at(d, &["complaint", "complainedRecipients", "0", "emailAddress"])),
            "Delivery" => text(at(d, &["delivery", "recipients", "0"])),
            _ => None,
        }
        .or_else(|| first_text(at(d, &["mail", "destination"])));
        Some(Common {
            kind: INFO.rename(&ev.kind),
            email,
            message_id: text(at(d, &["mail", "messageId"])),
            campaign: first_text(at(d, &["mail", "tags", "campaign"])),
            url: text(at(d, &["click", "link"])),
            hard: Some(text(at(d, &["bounce", "bounceType"])).as_deref() == Some("Permanent")),
        })
    }

    fn any_media_type(&self) -> bool {
        true
    }
}

/// One SNS envelope (or a bare SES message, as a test may give): its events, one per
/// affected recipient, so a bounce of two addresses reaches rules about each.
fn decode_one(
    source: &str,
    index: usize,
    item: Value,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DecodeError> {
    let invalid = |message: String| DecodeError::Invalid { index, message };
    let Value::Object(map) = &item else {
        return Err(DecodeError::NotObject { index });
    };
    let (message, sns_id) = match map.get("Type").and_then(Value::as_str) {
        Some("Notification") => {
            let text = map
                .get("Message")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("an SNS notification without `Message`".into()))?;
            let message: Value = serde_json::from_str(text)
                .map_err(|e| invalid(format!("the SNS `Message` is not SES's JSON: {e}")))?;
            (
                message,
                map.get("MessageId").and_then(Value::as_str).map(str::to_owned),
            )
        }
        Some(other) => return Err(invalid(format!("an SNS `{other}` carries no event"))),
        None => (item, None),
    };
    let kind = ["eventType", "notificationType"]
        .iter()
        .find_map(|f| message.get(*f).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .ok_or(DecodeError::NoType {
            index,
            field: "eventType",
        })?
        .to_owned();
    // The type's own object (`bounce`, `deliveryDelay`) holds its time; else the mail's.
    let own = {
        let mut k = kind.replace(' ', "");
        if let Some(first) = k.get_mut(..1) {
            first.make_ascii_lowercase();
        }
        if kind == "Rendering Failure" {
            "failure".to_owned()
        } else {
            k
        }
    };
    let own_time = at(&message, &[&own, "timestamp"])
        .or_else(|| at(&message, &["mail", "timestamp"]))
        .and_then(crate::event::parse_time);
    let time = own_time.unwrap_or(now);
    let id = |i: Option<usize>| {
        let base = crate::event::event_id(source, own_time, sns_id.as_deref(), &message);
        match i {
            Some(i) => format!("{base}:{i}"),
            None => base,
        }
    };
    let list = match kind.as_str() {
        "Bounce" => Some(["bounce", "bouncedRecipients"]),
        "Complaint" => Some(["complaint", "complainedRecipients"]),
        "Delivery" => Some(["delivery", "recipients"]),
        _ => None,
    };
    let recipients = list
        .and_then(|p| at(&message, &p))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let event = |id: String, data: Value| Event {
        id,
        source: source.to_owned(),
        kind: kind.clone(),
        time,
        data,
    };
    if recipients <= 1 {
        return Ok(vec![event(id(None), message)]);
    }
    let [outer, field] = list.unwrap_or_default();
    Ok((0..recipients)
        .map(|i| {
            let mut data = message.clone();
            if let Some(Value::Array(all)) = data.get_mut(outer).and_then(|o| o.get_mut(field)) {
                let one = all.swap_remove(i);
                *all = vec![one];
            }
            event(id(Some(i)), data)
        })
        .collect())
}

/// What an `sns` auth checks, and the signing keys it has fetched.
#[derive(Debug)]
pub struct Sns {
    topics: Vec<String>,
    cert_host: Regex,
    confirm: bool,
    tolerance: Duration,
    client: reqwest::Client,
    keys: Mutex<HashMap<String, Arc<SigningKey>>>,
}

/// An SNS certificate's RSA key, and until when the certificate is valid.
#[derive(Debug)]
struct SigningKey {
    rsa: Vec<u8>,
    not_after: i64,
}

/// Keys kept at most; SNS rotates its certificate rarely, so a full cache means
/// something is sending many URLs: it is emptied rather than grown.
const MAX_KEYS: usize = 32;
/// A certificate is a few KiB; nothing larger is read.
const MAX_CERT: usize = 64 * 1024;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "MessageId")]
    message_id: String,
    #[serde(rename = "TopicArn")]
    topic: String,
    #[serde(rename = "Subject")]
    subject: Option<String>,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "Timestamp")]
    timestamp: String,
    #[serde(rename = "SignatureVersion")]
    version: String,
    #[serde(rename = "Signature")]
    signature: String,
    #[serde(rename = "SigningCertURL")]
    cert_url: String,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    #[serde(rename = "Token")]
    token: Option<String>,
}

/// Options of an `sns` auth.
#[derive(Debug, Clone)]
pub struct SnsOptions {
    pub topics: Vec<String>,
    /// A regular expression for the hosts certificates and confirmations are fetched from.
    pub cert_host: Option<String>,
    /// PEM certificates trusted beside the built-in roots.
    pub roots: Vec<u8>,
    pub confirm: bool,
    pub tolerance: Duration,
}

impl Sns {
    pub fn new(options: SnsOptions) -> Result<Self, String> {
        let pattern = options.cert_host.as_deref().unwrap_or(SNS_HOSTS);
        let cert_host =
            Regex::new(pattern).map_err(|e| format!("`cert_host` is not a regular expression: {e}"))?;
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10));
        if !options.roots.is_empty() {
            let certs = reqwest::Certificate::from_pem_bundle(&options.roots)
                .map_err(|e| format!("`ca_file` holds no PEM certificates: {e}"))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| format!("no https client: {e}"))?;
        Ok(Self {
            topics: options.topics,
            cert_host,
            confirm: options.confirm,
            tolerance: options.tolerance,
            client,
            keys: Mutex::default(),
        })
    }

    pub fn confirms(&self) -> bool {
        self.confirm
    }

    /// Checks an envelope: its topic, its age, its certificate's URL, and its signature.
    pub async fn verify(&self, body: &[u8], now: DateTime<Utc>) -> Result<Verified, AuthError> {
        let env: Envelope = serde_json::from_slice(body)
            .map_err(|e| AuthError::NoSignedBody(format!("not an SNS message: {e}")))?;
        if !self.topics.contains(&env.topic) {
            return Err(AuthError::Topic(env.topic.chars().take(200).collect()));
        }
        let sha256 = match env.version.as_str() {
            "1" => false,
            "2" => true,
            _ => return Err(AuthError::BadEncoding("SignatureVersion".into(), "1 or 2")),
        };
        let signature = STANDARD
            .decode(env.signature.trim())
            .map_err(|_| AuthError::BadEncoding("Signature".into(), "base64"))?;
        let sent = crate::event::parse_time_str(&env.timestamp)
            .ok_or_else(|| AuthError::BadTimestamp(env.timestamp.chars().take(40).collect()))?;
        auth::check_skew(sent.timestamp(), now, self.tolerance)?;
        let key = self.key(&env.cert_url, now).await?;
        let algorithm: &dyn ring::signature::VerificationAlgorithm = if sha256 {
            &ring::signature::RSA_PKCS1_2048_8192_SHA256
        } else {
            &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
        };
        ring::signature::UnparsedPublicKey::new(algorithm, &key.rsa)
            .verify(canonical(&env)?.as_bytes(), &signature)
            .map_err(|_| AuthError::WrongSignature)?;
        let control = match env.kind.as_str() {
            "SubscriptionConfirmation" => Some(Control::Confirm {
                topic: env.topic,
                url: env.subscribe_url.unwrap_or_default(),
            }),
            "UnsubscribeConfirmation" => Some(Control::Unsubscribed { topic: env.topic }),
            _ => None,
        };
        Ok(Verified {
            delivery: None,
            control,
        })
    }

    /// Confirms a subscription by fetching its `SubscribeURL`, held to the same host rule
    /// as certificates (an https URL of SNS's own).
    pub async fn confirm(&self, url: &str) -> Result<(), String> {
        let url = self.trusted(url).map_err(|e| e.to_string())?;
        let response = self.client.get(url).send().await.map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("SNS answered {}", response.status()))
        }
    }

    fn trusted(&self, raw: &str) -> Result<url::Url, AuthError> {
        let shown = || raw.chars().take(200).collect::<String>();
        let url = url::Url::parse(raw).map_err(|_| AuthError::CertUrl(shown(), "not a URL"))?;
        if url.scheme() != "https" {
            return Err(AuthError::CertUrl(shown(), "not https"));
        }
        if !url.host_str().is_some_and(|h| self.cert_host.is_match(h)) {
            return Err(AuthError::CertUrl(shown(), "its host is not SNS's (`cert_host`)"));
        }
        Ok(url)
    }

    async fn key(&self, raw: &str, now: DateTime<Utc>) -> Result<Arc<SigningKey>, AuthError> {
        let url = self.trusted(raw)?;
        let cached = self
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(url.as_str())
            .cloned();
        let key = match cached {
            Some(key) => key,
            None => {
                let key = Arc::new(self.fetch(url.clone(), now).await?);
                let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
                if keys.len() >= MAX_KEYS {
                    keys.clear();
                }
                keys.insert(url.to_string(), key.clone());
                key
            }
        };
        if key.not_after < now.timestamp() {
            self.keys
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(url.as_str());
            return Err(AuthError::Cert("the signing certificate has expired".into()));
        }
        Ok(key)
    }

    async fn fetch(&self, url: url::Url, now: DateTime<Utc>) -> Result<SigningKey, AuthError> {
        let fail = |e: String| AuthError::Cert(e);
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("fetching it answered {}", response.status())));
        }
        let mut pem = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.to_string()))? {
            pem.extend_from_slice(&chunk);
            if pem.len() > MAX_CERT {
                return Err(fail(format!("larger than {MAX_CERT} bytes")));
            }
        }
        signing_key(&pem, now).map_err(fail)
    }
}

const RSA: x509_cert::spki::ObjectIdentifier =
    x509_cert::spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The RSA key of a PEM certificate valid now.
fn signing_key(pem: &[u8], now: DateTime<Utc>) -> Result<SigningKey, String> {
    let cert = x509_cert::Certificate::from_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let tbs = &cert.tbs_certificate;
    let not_before = tbs.validity.not_before.to_unix_duration().as_secs() as i64;
    let not_after = tbs.validity.not_after.to_unix_duration().as_secs() as i64;
    if now.timestamp() < not_before || now.timestamp() > not_after {
        return Err("the certificate is not valid now".into());
    }
    let spki = &tbs.subject_public_key_info;
    if spki.algorithm.oid != RSA {
        return Err("the certificate's key is not RSA".into());
    }
    let rsa = spki
        .subject_public_key
        .as_bytes()
        .ok_or("the certificate's key is not whole bytes")?
        .to_vec();
    Ok(SigningKey { rsa, not_after })
}

/// The text SNS signs: chosen fields as `name\nvalue\n`, in a fixed order per type.
fn canonical(env: &Envelope) -> Result<String, AuthError> {
    let mut out = String::with_capacity(env.message.len() + 512);
    let mut put = |name: &str, value: &str| {
        out.push_str(name);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
    };
    match env.kind.as_str() {
        "Notification" => {
            put("Message", &env.message);
            put("MessageId", &env.message_id);
            if let Some(subject) = &env.subject {
                put("Subject", subject);
            }
            put("Timestamp", &env.timestamp);
            put("TopicArn", &env.topic);
            put("Type", &env.kind);
        }
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            let missing = |f: &str| AuthError::NoSignedBody(format!("an SNS {} without `{f}`", env.kind));
            put("Message", &env.message);
            put("MessageId", &env.message_id);
            put(
                "SubscribeURL",
                env.subscribe_url
                    .as_deref()
                    .ok_or_else(|| missing("SubscribeURL"))?,
            );
            put("Timestamp", &env.timestamp);
            put("Token", env.token.as_deref().ok_or_else(|| missing("Token"))?);
            put("TopicArn", &env.topic);
            put("Type", &env.kind);
        }
        other => {
            return Err(AuthError::NoSignedBody(format!(
                "unknown SNS message type `{}`",
                other.chars().take(40).collect::<String>()
            )));
        }
    }
    Ok(out)
}

/// For tests elsewhere: the text SNS signs for an envelope given as JSON.
pub fn string_to_sign(envelope: &Value) -> Result<String, AuthError> {
    let env: Envelope =
        serde_json::from_value(envelope.clone()).map_err(|e| AuthError::NoSignedBody(e.to_string()))?;
    canonical(&env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notification(message: &Value) -> Value {
        json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Subject": "My First Message",
            "Message": message.to_string(),
            "Timestamp": "2012-05-02T00:54:06.655Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
            "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe"
        })
    }

    #[test]
    fn the_signed_text_follows_the_documented_order() {
        let env = notification(&json!({"x": 1}));
        assert_eq!(
            string_to_sign(&env).unwrap(),
            "Message\n{\"x\":1}\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nMy First Message\n\
             Timestamp\n2012-05-02T00:54:06.655Z\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
        );
    }

    #[test]
    fn certificate_urls_must_be_sns_over_https() {
        let sns = Sns::new(SnsOptions {
            topics: vec![],
            cert_host: None,
            roots: vec![],
            confirm: false,
            tolerance: Duration::from_secs(3600),
        })
        .unwrap();
        assert!(
            sns.trusted("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem")
                .is_ok()
        );
        assert!(
            sns.trusted("https://sns.cn-north-1.amazonaws.com.cn/x.pem")
                .is_ok()
        );
        for bad in [
            "http://sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
            "https://evil.example/sns.eu-west-1.amazonaws.com/x.pem",
            "https://127.0.0.1/x.pem",
            "not a url",
        ] {
            assert!(matches!(sns.trusted(bad), Err(AuthError::CertUrl(..))), "{bad}");
        }
    }

    #[test]
    fn notifications_decode_one_event_per_recipient() {
        let body: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/providers/ses.json")).unwrap();
        let src = super::super::Source::new(Ses, None).normalized(true);
        let envelopes: Vec<Value> = body.as_array().unwrap().iter().map(notification).collect();
        let evs = src
            .decode("ses", Value::Array(envelopes), None, None, Utc::now())
            .unwrap();
        let kinds: Vec<&str> = evs.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "bounce",
                "bounce",
                "spam",
                "delivered",
                "open",
                "click",
                "Send",
                "bounce"
            ]
        );
        assert_eq!(evs[0].id, "ses:1453240620:22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324:0");
        assert_eq!(evs[0].data["email"], "jane@example.com");
        assert_eq!(evs[1].data["email"], "richard@example.com");
        assert_eq!(evs[0].data["hard"], true);
        assert_eq!(evs[7].data["hard"], false);
        assert_eq!(
            evs[0].data["message_id"],
            "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"
        );
        assert_eq!(evs[0].time.timestamp(), 1_453_240_620);
        assert_eq!(
            evs[5].data["url"],
            "https://docs.aws.amazon.com/ses/latest/DeveloperGuide/"
        );
        assert_eq!(evs[5].data["campaign"], "spring");
        // A bare SES message (no SNS envelope), as an inline test gives it.
        let bare = body[2].clone();
        let evs = src.decode("ses", bare, None, None, Utc::now()).unwrap();
        assert_eq!(evs[0].kind, "delivered");
        let confirm = json!({"Type": "SubscriptionConfirmation", "Message": "x"});
        assert!(src.decode("ses", confirm, None, None, Utc::now()).is_err());
    }
}

//! The one event shape every source decodes into and every rule sees.

use chrono::{DateTime, Utc};

pub use crate::base::time::{parse_time, parse_time_str};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One provider event, normalised just enough to route it: the payload stays as sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Provider id where the format has one, else a content hash (see [`content_id`]).
    pub id: String,
    /// The configured source name (`mailjet`), not the provider's.
    pub source: String,
    /// The event type (`open`, `bounce`, ...), matched by a rule's `on:`.
    pub kind: String,
    /// When the provider says it happened; correlation windows use this, not arrival time.
    pub time: DateTime<Utc>,
    /// The payload exactly as received; conditions and templates read it.
    pub data: Value,
}

impl Event {
    /// An event as a provider decoded it: its id from its own time (if it has one), the
    /// provider's id (if any) or the content (see [`event_id`]); `now` stands in for a
    /// missing time.
    pub fn decoded(
        source: &str,
        kind: String,
        own_time: Option<DateTime<Utc>>,
        provider_id: Option<&str>,
        data: Value,
        now: DateTime<Utc>,
    ) -> Event {
        Event {
            id: event_id(source, own_time, provider_id, &data),
            source: source.to_owned(),
            kind,
            time: own_time.unwrap_or(now),
            data,
        }
    }
}

/// An event's id, which is also its dedupe key in the store: `SOURCE:SECS:ID` where the
/// event carries its own time, with the provider's id or else [`content_id`]. Time comes
/// first so that the ids of new events sort near each other: the store's unique index on
/// them then grows at one end instead of taking a random page per event (measured on the
/// durable baseline: a random 32-hex unique key costs 40% of its ingest throughput, a
/// time-ordered one nothing; docs/benchmarks.md). The time is the provider's, part of
/// the content, so a retry of the same event gets the same id. Without one (`now` stands
/// in), the id is `SOURCE:ID` or the bare content hash, as before.
pub fn event_id(
    source: &str,
    own_time: Option<DateTime<Utc>>,
    provider_id: Option<&str>,
    data: &Value,
) -> String {
    let rest = match provider_id {
        Some(id) => id.to_owned(),
        None => content_id(source, data),
    };
    match own_time {
        Some(t) => format!("{source}:{}:{rest}", t.timestamp()),
        None if provider_id.is_some() => format!("{source}:{rest}"),
        None => rest,
    }
}

/// A stable id for payloads that carry none: sha256 of the source name and the payload's
/// canonical JSON (object keys sorted), so a provider's retry of the same event dedupes.
pub fn content_id(source: &str, data: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(source.as_bytes());
    hasher.update([0]);
    hash_canonical(&mut hasher, data);
    hex::encode(&hasher.finalize()[..16])
}

/// Lets serde_json write straight into the hasher: no intermediate strings.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hash_canonical(hasher: &mut Sha256, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                let _ = serde_json::to_writer(HashWriter(hasher), key);
                hasher.update(b":");
                hash_canonical(hasher, &map[key]);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                hash_canonical(hasher, item);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        other => {
            let _ = serde_json::to_writer(HashWriter(hasher), other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Times a calendar cannot carry far (beyond year 9999) count as no time at all, so
    /// `time + within` can never overflow.
    #[test]
    fn times_outside_years_1_to_9999_are_not_times() {
        assert!(parse_time(&json!(253_402_300_799_i64)).is_some()); // 9999-12-31T23:59:59Z
        assert!(parse_time(&json!(253_402_300_800_i64)).is_none());
        assert!(parse_time(&json!(8_000_000_000_000_i64)).is_none());
        assert!(parse_time(&json!("8000000000000")).is_none());
        assert!(parse_time(&json!(-62_135_596_801_i64)).is_none()); // before year 1
    }

    /// Time first where the event has its own; the same event always gets the same id.
    #[test]
    fn event_ids_start_with_the_events_own_time() {
        let data = json!({"event": "open", "time": 1433103519});
        let t = parse_time(&json!(1433103519));
        let hash = content_id("mailjet", &data);
        assert_eq!(
            event_id("mailjet", t, None, &data),
            format!("mailjet:1433103519:{hash}")
        );
        assert_eq!(
            event_id("mailjet", t, None, &data),
            event_id("mailjet", t, None, &data)
        );
        assert_eq!(event_id("sg", t, Some("e1"), &data), "sg:1433103519:e1");
        assert_eq!(event_id("sg", None, Some("e1"), &data), "sg:e1");
        assert_eq!(event_id("mailjet", None, None, &data), hash);
    }

    #[test]
    fn content_id_ignores_key_order() {
        let a = json!({"event": "open", "email": "a@b.c", "n": [1, {"x": 1, "y": 2}]});
        let b = json!({"n": [1, {"y": 2, "x": 1}], "email": "a@b.c", "event": "open"});
        assert_eq!(content_id("mailjet", &a), content_id("mailjet", &b));
        assert_ne!(content_id("mailjet", &a), content_id("shop", &a));
    }

    #[test]
    fn times_from_numbers_strings_and_rfc3339() {
        let t = parse_time(&json!(1433103519)).unwrap();
        assert_eq!(t.timestamp(), 1433103519);
        assert_eq!(parse_time(&json!("1433103519")), Some(t));
        assert_eq!(parse_time(&json!("2015-05-31T20:18:39Z")), Some(t));
        assert_eq!(
            parse_time(&json!(1433103519.5))
                .unwrap()
                .timestamp_subsec_millis(),
            500
        );
        assert_eq!(parse_time(&json!("yesterday")), None);
        assert_eq!(parse_time(&json!(true)), None);
        assert_eq!(parse_time(&json!(1e300)), None);
    }
}

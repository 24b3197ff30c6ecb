//! Mailjet event callbacks: one object (callback version 1) or an array of mixed events
//! (version 2). Ids and numbers are kept exactly as sent: `MessageID` exceeds 2^53, and
//! serde_json keeps integers up to u64 exact.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{DecodeError, Provider};
use crate::event::{Event, content_id, parse_time};

/// The event types Mailjet sends.
pub const TYPES: &[&str] = &["sent", "open", "click", "bounce", "blocked", "spam", "unsub"];

/// Mailjet's format. It signs nothing: basic auth in the callback URL is all it offers.
#[derive(Debug, Clone, Copy)]
pub struct Mailjet;

impl Provider for Mailjet {
    fn display(&self) -> &'static str {
        "Mailjet"
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(TYPES)
    }

    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        decode(source, body, now)
    }

    fn type_field(&self) -> Option<&'static str> {
        Some("event")
    }

    /// Mailjet always sends `time`; a test event without one gets now, so that templates
    /// using `{{time}}` render as they will in production.
    fn complete_test_event(&self, data: &mut Value, now: DateTime<Utc>) {
        if let Value::Object(map) = data {
            map.entry("time").or_insert_with(|| Value::from(now.timestamp()));
        }
    }
}

/// Decodes a parsed body. `now` stands in for events without a usable `time`.
pub fn decode(source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
    super::items(body)?
        .into_iter()
        .enumerate()
        .map(|(index, data)| decode_one(source, index, data, now))
        .collect()
}

fn decode_one(source: &str, index: usize, data: Value, now: DateTime<Utc>) -> Result<Event, DecodeError> {
    let Value::Object(map) = &data else {
        return Err(DecodeError::NotObject { index });
    };
    let kind = match map.get("event") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(DecodeError::NoType {
                index,
                field: "event",
            });
        }
    };
    let time = map.get("time").and_then(parse_time).unwrap_or(now);
    Ok(Event {
        id: content_id(source, &data),
        source: source.to_owned(),
        kind,
        time,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_keeps_big_message_ids_exact() {
        let body: Value = serde_json::from_str(
            r#"[{"event":"open","time":1433103519,"MessageID":19421777396190490},
                {"event":"sent","time":1433333949,"MessageID":19421777835146490}]"#,
        )
        .unwrap();
        let events = decode("mailjet", body, Utc::now()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, "open");
        assert_eq!(events[0].data["MessageID"].as_u64(), Some(19421777396190490));
        assert_eq!(events[1].time.timestamp(), 1433333949);
    }

    #[test]
    fn rejects_what_is_not_an_event() {
        let now = Utc::now();
        assert_eq!(decode("mj", json!(3), now), Err(DecodeError::Shape("a number")));
        assert_eq!(decode("mj", json!([]), now), Err(DecodeError::Empty));
        assert_eq!(
            decode("mj", json!([{"event": "open"}, {"email": "x"}]), now),
            Err(DecodeError::NoType {
                index: 1,
                field: "event"
            })
        );
        assert_eq!(
            decode("mj", json!([1]), now),
            Err(DecodeError::NotObject { index: 0 })
        );
    }
}

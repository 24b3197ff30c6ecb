//! Mailjet event callbacks: one object (callback version 1) or an array of mixed events
//! (version 2). Ids and numbers are kept exactly as sent: `MessageID` exceeds 2^53, and
//! serde_json keeps integers up to u64 exact.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::normalize::text;
use super::{Common, DecodeError, Info, Provider};
use crate::event::Event;

/// The event types Mailjet sends.
pub const TYPES: &[&str] = &["sent", "open", "click", "bounce", "blocked", "spam", "unsub"];

/// Mailjet's format. It signs nothing: basic auth in the callback URL is all it offers.
/// The provider's types and their common names.
pub const INFO: Info = Info {
    display: "Mailjet",
    types: Some(TYPES),
    renames: &[
        ("sent", "delivered"),
        ("open", "open"),
        ("click", "click"),
        ("bounce", "bounce"),
        ("blocked", "blocked"),
        ("spam", "spam"),
        ("unsub", "unsub"),
    ],
    type_field: Some("event"),
};

#[derive(Debug, Clone, Copy)]
pub struct Mailjet;

impl Provider for Mailjet {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        decode(source, body, now)
    }

    /// Mailjet always sends `time`; a test event without one gets now, so that templates
    /// using `{{time}}` render as they will in production.
    fn complete_test_event(&self, data: &mut Value, now: DateTime<Utc>) {
        if let Value::Object(map) = data {
            map.entry("time").or_insert_with(|| Value::from(now.timestamp()));
        }
    }

    fn normalize(&self, ev: &Event) -> Option<Common> {
        Some(normalize(ev))
    }
}

/// Decodes a parsed body. `now` stands in for events without a usable `time`.
pub fn decode(source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
    super::each(body, |index, data| decode_one(source, index, data, now))
}

fn decode_one(source: &str, index: usize, data: Value, now: DateTime<Utc>) -> Result<Event, DecodeError> {
    super::flat_event(source, index, data, "event", None, &["time"], now)
}

/// Mailjet's events in the common vocabulary: `sent` (accepted by the recipient's
/// server) is `delivered`; the others have the same name.
fn normalize(ev: &Event) -> Common {
    let d = &ev.data;
    Common {
        kind: INFO.rename(&ev.kind),
        email: text(d.get("email")),
        message_id: text(d.get("MessageID")),
        // 0 is Mailjet's "no campaign".
        campaign: text(d.get("mj_campaign_id")).filter(|c| c != "0"),
        url: text(d.get("url")),
        hard: d.get("hard_bounce").and_then(Value::as_bool),
    }
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

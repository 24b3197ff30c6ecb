//! Postmark's webhooks: one object per POST, its kind in `RecordType`. Postmark signs
//! nothing; it offers basic auth in the webhook URL (or a custom header: `token`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::normalize::text;
use super::{Common, DecodeError, Info, Provider};
use crate::event::Event;

/// The record types Postmark sends.
pub const TYPES: &[&str] = &[
    "Delivery",
    "Bounce",
    "SpamComplaint",
    "Open",
    "Click",
    "SubscriptionChange",
];

/// Bounce `Type`s that say the address itself is bad.
const HARD: &[&str] = &["HardBounce", "BadEmailAddress", "ManuallyDeactivated"];

/// The provider's types and their common names.
pub const INFO: Info = Info {
    display: "Postmark",
    types: Some(TYPES),
    renames: &[
        ("Delivery", "delivered"),
        ("Bounce", "bounce"),
        ("SpamComplaint", "spam"),
        ("Open", "open"),
        ("Click", "click"),
    ],
    type_field: Some("RecordType"),
};

#[derive(Debug, Clone, Copy)]
pub struct Postmark;

impl Provider for Postmark {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        super::each(body, |index, data| {
            // Bounces and spam complaints have their own `ID` (one space of ids in
            // Postmark's API); other records are told apart by content.
            let record = data.get("RecordType").and_then(Value::as_str);
            let id = matches!(record, Some("Bounce" | "SpamComplaint")).then_some("ID");
            let times = ["DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt"];
            super::flat_event(source, index, data, "RecordType", id, &times, now)
        })
    }

    fn normalize(&self, ev: &Event) -> Option<Common> {
        let d = &ev.data;
        let bounce_type = d.get("Type").and_then(Value::as_str).unwrap_or_default();
        let suppresses = d.get("SuppressSending").and_then(Value::as_bool) == Some(true);
        let kind = match ev.kind.as_str() {
            "Bounce" if bounce_type == "Blocked" => Some("blocked"),
            "SubscriptionChange" if suppresses => Some("unsub"),
            other => INFO.rename(other),
        };
        Some(Common {
            kind,
            email: text(d.get("Email")).or_else(|| text(d.get("Recipient"))),
            message_id: text(d.get("MessageID")),
            campaign: text(d.get("Tag")),
            url: text(d.get("OriginalLink")),
            hard: Some(HARD.contains(&bounce_type)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_records_decode_and_normalize() {
        let evs = crate::sources::tests::normalized(
            Postmark,
            "pm",
            include_str!("../../tests/fixtures/providers/postmark.json"),
        );
        let kinds = crate::sources::tests::kinds(&evs);
        assert_eq!(
            kinds,
            ["bounce", "delivered", "open", "click", "spam", "unsub", "bounce"]
        );
        assert_eq!(evs[0].id, "pm:1406914090:42");
        assert_eq!(evs[0].data["hard"], true);
        assert_eq!(evs[0].data["email"], "john@example.com");
        assert_eq!(evs[0].time.timestamp(), 1406914090);
        assert_eq!(evs[1].data["email"], "john@example.com");
        assert_eq!(evs[3].data["url"], "https://example.com/offer");
        assert_eq!(evs[6].data["hard"], false);
    }
}

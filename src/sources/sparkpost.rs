//! SparkPost's webhooks: a JSON array of `{"msys": {"<class>_event": {...}}}` (`message_`,
//! `track_`, `unsubscribe_`, `relay_`, `gen_`, `ab_test_`, `ingest_`), the event's kind in
//! its `type`, its id in `event_id`. A new webhook is pinged with `[{"msys": {}}]`, which
//! is answered `200` and stores nothing. SparkPost signs nothing: basic auth (or a token).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::normalize::text;
use super::{Common, DecodeError, Info, Provider};
use crate::event::Event;

/// The event types SparkPost sends.
pub const TYPES: &[&str] = &[
    "injection",
    "delivery",
    "bounce",
    "delay",
    "policy_rejection",
    "out_of_band",
    "spam_complaint",
    "generation_failure",
    "generation_rejection",
    "open",
    "initial_open",
    "click",
    "amp_open",
    "amp_initial_open",
    "amp_click",
    "list_unsubscribe",
    "link_unsubscribe",
    "relay_injection",
    "relay_rejection",
    "relay_delivery",
    "relay_tempfail",
    "relay_permfail",
    "sms_status",
    "ingest_success",
    "ingest_error",
];

/// Bounce classes that say the address is bad (SparkPost's "Hard" category).
const HARD: &[&str] = &["10", "30", "90"];
/// Classes for messages SparkPost's own policies refused ("Admin").
const ADMIN: &[&str] = &["25", "26"];

/// The provider's types and their common names.
pub const INFO: Info = Info {
    display: "SparkPost",
    types: Some(TYPES),
    renames: &[
        ("delivery", "delivered"),
        ("open", "open"),
        ("initial_open", "open"),
        ("amp_open", "open"),
        ("amp_initial_open", "open"),
        ("click", "click"),
        ("amp_click", "click"),
        ("bounce", "bounce"),
        ("out_of_band", "bounce"),
        ("policy_rejection", "blocked"),
        ("generation_rejection", "blocked"),
        ("spam_complaint", "spam"),
        ("list_unsubscribe", "unsub"),
        ("link_unsubscribe", "unsub"),
    ],
    type_field: None,
};

#[derive(Debug, Clone, Copy)]
pub struct SparkPost;

impl Provider for SparkPost {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        let mut events = Vec::new();
        for (index, item) in super::items(body)?.into_iter().enumerate() {
            let Value::Object(mut item) = item else {
                return Err(DecodeError::NotObject { index });
            };
            let inner = match item.remove("msys") {
                Some(Value::Object(msys)) => match msys.into_iter().next() {
                    Some((_, inner)) => inner,
                    None => continue, // the ping of a new webhook
                },
                // An inline test may give the event itself.
                None if item.contains_key("type") => Value::Object(item),
                _ => {
                    return Err(DecodeError::Invalid {
                        index,
                        message: "expected `{\"msys\": {\"message_event\": {...}}}`".into(),
                    });
                }
            };
            events.push(super::flat_event(
                source,
                index,
                inner,
                "type",
                Some("event_id"),
                &["timestamp"],
                now,
            )?);
        }
        Ok(events)
    }

    fn normalize(&self, ev: &Event) -> Option<Common> {
        let d = &ev.data;
        let class = text(d.get("bounce_class")).unwrap_or_default();
        let kind = match ev.kind.as_str() {
            "bounce" | "out_of_band" if ADMIN.contains(&class.as_str()) => Some("blocked"),
            other => INFO.rename(other),
        };
        Some(Common {
            kind,
            email: text(d.get("rcpt_to")),
            message_id: text(d.get("message_id")),
            campaign: text(d.get("campaign_id")),
            url: text(d.get("target_link_url")),
            hard: Some(HARD.contains(&class.as_str())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_batch_decodes_and_normalizes() {
        let evs = crate::sources::tests::normalized(
            SparkPost,
            "sp",
            include_str!("../../tests/fixtures/providers/sparkpost.json"),
        );
        let kinds = crate::sources::tests::kinds(&evs);
        assert_eq!(
            kinds,
            [
                "bounce",
                "delivered",
                "open",
                "click",
                "spam",
                "unsub",
                "bounce",
                "blocked"
            ]
        );
        assert_eq!(evs[0].id, "sp:1460989507:92356927693813856");
        assert_eq!(evs[0].data["hard"], true);
        assert_eq!(evs[0].data["email"], "recipient@example.com");
        assert_eq!(evs[0].data["campaign"], "Example Campaign Name");
        assert_eq!(evs[0].time.timestamp(), 1_460_989_507);
        assert_eq!(evs[6].data["hard"], false);
        assert_eq!(evs[3].data["url"], "https://example.com/offer");
    }

    #[test]
    fn the_ping_of_a_new_webhook_is_no_event() {
        let evs = SparkPost.decode("sp", json!([{"msys": {}}]), Utc::now()).unwrap();
        assert!(evs.is_empty());
    }
}

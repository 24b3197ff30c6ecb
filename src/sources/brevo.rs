//! Brevo's (formerly Sendinblue) webhooks: a flat object per POST, its kind in `event`,
//! the message in `message-id`, the time in `ts_event` (unix seconds; `ts_epoch` is
//! milliseconds). Brevo signs nothing: a token header (`auth: { token: … }`) or basic auth.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use super::normalize::{first_text, text};
use super::{Common, DecodeError, Info, Provider};
use crate::event::Event;

/// The event types Brevo sends (transactional and marketing webhooks).
pub const TYPES: &[&str] = &[
    "request",
    "delivered",
    "hard_bounce",
    "soft_bounce",
    "blocked",
    "spam",
    "invalid_email",
    "deferred",
    "click",
    "opened",
    "unique_opened",
    "proxy_open",
    "unique_proxy_open",
    "unsubscribed",
    "error",
    "list_addition",
    "contact_updated",
    "contact_deleted",
];

/// The provider's types and their common names.
pub const INFO: Info = Info {
    display: "Brevo",
    types: Some(TYPES),
    renames: &[
        ("delivered", "delivered"),
        ("opened", "open"),
        ("unique_opened", "open"),
        ("proxy_open", "open"),
        ("unique_proxy_open", "open"),
        ("click", "click"),
        ("hard_bounce", "bounce"),
        ("soft_bounce", "bounce"),
        ("invalid_email", "bounce"),
        ("blocked", "blocked"),
        ("spam", "spam"),
        ("unsubscribed", "unsub"),
    ],
    type_field: Some("event"),
};

#[derive(Debug, Clone, Copy)]
pub struct Brevo;

impl Provider for Brevo {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        super::each(body, |index, data| {
            let millis = data
                .get("ts_epoch")
                .and_then(Value::as_i64)
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
            let mut ev = super::flat_event(source, index, data, "event", None, &["ts_event", "ts"], now)?;
            if let (Some(t), None) = (millis, ev.data.get("ts_event")) {
                ev.time = t;
            }
            Ok(ev)
        })
    }

    fn complete_test_event(&self, data: &mut Value, now: DateTime<Utc>) {
        if let Value::Object(map) = data {
            map.entry("ts_event")
                .or_insert_with(|| Value::from(now.timestamp()));
        }
    }

    fn normalize(&self, ev: &Event) -> Option<Common> {
        let d = &ev.data;
        Some(Common {
            kind: INFO.rename(&ev.kind),
            email: text(d.get("email")),
            message_id: text(d.get("message-id")),
            campaign: text(d.get("camp_id"))
                .or_else(|| first_text(d.get("tags")))
                .or_else(|| text(d.get("tag"))),
            url: text(d.get("link")).or_else(|| text(d.get("URL"))),
            hard: Some(matches!(ev.kind.as_str(), "hard_bounce" | "invalid_email")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_events_decode_and_normalize() {
        let evs = crate::sources::tests::normalized(
            Brevo,
            "br",
            include_str!("../../tests/fixtures/providers/brevo.json"),
        );
        let kinds = crate::sources::tests::kinds(&evs);
        assert_eq!(
            kinds,
            ["delivered", "bounce", "bounce", "open", "click", "unsub", "spam"]
        );
        assert_eq!(evs[0].time.timestamp(), 1_604_933_654);
        assert_eq!(evs[1].data["hard"], true);
        assert_eq!(evs[2].data["hard"], false);
        assert_eq!(
            evs[0].data["message_id"],
            "<201798300811.5787683@relay.domain.com>"
        );
        assert_eq!(evs[4].data["url"], "https://example.com/offer");
        assert_eq!(evs[0].data["campaign"], "myFirstTransactional");
    }
}

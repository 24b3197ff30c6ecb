//! Resend's webhooks: one object per POST, `{"type": "email.opened", "created_at": …,
//! "data": {...}}`, signed the Svix way (`auth: { svix: { secret: whsec_… } }`); the
//! `svix-id` of a delivery is the event's id, so a redelivery dedupes.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::normalize::{first_text, text};
use super::{Common, DecodeError, Info, Provider, at};
use crate::event::Event;

/// The event types Resend sends.
pub const TYPES: &[&str] = &[
    "email.sent",
    "email.delivered",
    "email.delivery_delayed",
    "email.complained",
    "email.bounced",
    "email.opened",
    "email.clicked",
    "email.failed",
    "email.scheduled",
    "email.suppressed",
    "email.received",
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "domain.created",
    "domain.updated",
    "domain.deleted",
];

/// The provider's types and their common names.
pub const INFO: Info = Info {
    display: "Resend",
    types: Some(TYPES),
    renames: &[
        ("email.delivered", "delivered"),
        ("email.opened", "open"),
        ("email.clicked", "click"),
        ("email.bounced", "bounce"),
        ("email.suppressed", "blocked"),
        ("email.complained", "spam"),
    ],
    type_field: Some("type"),
};

#[derive(Debug, Clone, Copy)]
pub struct Resend;

impl Provider for Resend {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        super::each(body, |index, data| {
            super::flat_event(source, index, data, "type", None, &["created_at"], now)
        })
    }

    fn normalize(&self, ev: &Event) -> Option<Common> {
        let d = &ev.data;
        let kind = match ev.kind.as_str() {
            "contact.updated" if at(d, &["data", "unsubscribed"]) == Some(&Value::Bool(true)) => {
                Some("unsub")
            }
            other => INFO.rename(other),
        };
        Some(Common {
            kind,
            email: first_text(at(d, &["data", "to"])).or_else(|| text(at(d, &["data", "email"]))),
            message_id: text(at(d, &["data", "email_id"])),
            campaign: text(at(d, &["data", "broadcast_id"]))
                .or_else(|| text(at(d, &["data", "tags", "campaign"]))),
            url: text(at(d, &["data", "click", "link"])),
            hard: Some(text(at(d, &["data", "bounce", "type"])).as_deref() == Some("Permanent")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_events_decode_and_normalize() {
        let evs = crate::sources::tests::normalized(
            Resend,
            "rs",
            include_str!("../../tests/fixtures/providers/resend.json"),
        );
        let kinds = crate::sources::tests::kinds(&evs);
        assert_eq!(
            kinds,
            ["delivered", "bounce", "click", "spam", "email.delivery_delayed"]
        );
        assert_eq!(evs[1].data["hard"], true);
        assert_eq!(evs[1].data["email"], "delivered@resend.dev");
        assert_eq!(evs[1].data["message_id"], "56761188-7520-42d8-8898-ff6fc54ce618");
        assert_eq!(evs[2].data["url"], "https://resend.com");
        assert_eq!(evs[0].time.timestamp(), 1_730_213_282);
        // One event posted with its `svix-id` takes it as its id.
        let one: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/providers/resend.json")).unwrap();
        let one = one[0].clone();
        let src = super::super::Source::new(Resend, None).normalized(true);
        let evs = src.decode("rs", one, None, Some("msg_2Yb"), Utc::now()).unwrap();
        assert_eq!(evs[0].id, "rs:1730213282:msg_2Yb");
    }
}

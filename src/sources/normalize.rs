//! One vocabulary for every provider (`normalize: true` on a source): each provider maps
//! its own event types onto [`VOCABULARY`] and names where its common fields are; this
//! file writes them into the event the same way for all. A provider type with no
//! counterpart (SendGrid `deferred`, SES `Send`) keeps its own name. The provider's
//! own type is always kept under `provider_type`, and the payload's own fields stay.

use serde_json::Value;

use crate::event::Event;

/// The normalized event types.
pub const VOCABULARY: &[&str] = &["delivered", "open", "click", "bounce", "blocked", "spam", "unsub"];

/// What a provider found in one of its events. Fields are read before the event is
/// changed, so they are owned.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Common {
    /// The normalized type; `None`: the provider's own type stays.
    pub kind: Option<&'static str>,
    pub email: Option<String>,
    pub message_id: Option<String>,
    pub campaign: Option<String>,
    pub url: Option<String>,
    /// For a `bounce`: whether the address is permanently bad.
    pub hard: Option<bool>,
}

/// A field as text: strings as they are, numbers and booleans written out; empty
/// strings, `null`, objects and arrays are no value.
pub fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first string of a field that may be one string or an array of them (SendGrid's
/// `category`, Mailgun's `tags`).
pub fn first_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Array(items) => items.iter().find_map(|v| text(Some(v))),
        other => text(Some(other)),
    }
}

/// Writes `common` into `ev`: the type, `provider_type`, `email`, `message_id`,
/// `campaign`, `url`, `hard` (on bounces) and `time` (unix seconds, from the event's time).
/// A common field the provider did not give is left as the payload has it.
pub fn apply(ev: &mut Event, common: Common) {
    let provider_type = match common.kind {
        Some(kind) => std::mem::replace(&mut ev.kind, kind.to_owned()),
        None => ev.kind.clone(),
    };
    let Value::Object(map) = &mut ev.data else {
        return;
    };
    map.insert("provider_type".into(), Value::String(provider_type));
    let fields = [
        ("email", common.email),
        ("message_id", common.message_id),
        ("campaign", common.campaign),
        ("url", common.url),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            map.insert(name.into(), Value::String(v));
        }
    }
    if ev.kind == "bounce" {
        map.insert("hard".into(), Value::Bool(common.hard.unwrap_or(false)));
    }
    map.insert("time".into(), Value::from(ev.time.timestamp()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_the_common_fields_and_keeps_the_payload() {
        let mut ev = Event {
            id: "x".into(),
            source: "sg".into(),
            kind: "spamreport".into(),
            time: chrono::DateTime::from_timestamp(1_513_299_569, 0).unwrap(),
            data: json!({"email": "A@b.c", "sg_message_id": "m1", "timestamp": 1_513_299_569}),
        };
        apply(
            &mut ev,
            Common {
                kind: Some("spam"),
                email: Some("A@b.c".into()),
                message_id: Some("m1".into()),
                ..Common::default()
            },
        );
        assert_eq!(ev.kind, "spam");
        assert_eq!(
            ev.data,
            json!({"email": "A@b.c", "sg_message_id": "m1", "timestamp": 1_513_299_569,
                   "provider_type": "spamreport", "message_id": "m1", "time": 1_513_299_569})
        );
    }

    #[test]
    fn a_bounce_always_says_whether_it_is_hard() {
        let mut ev = Event {
            id: "x".into(),
            source: "b".into(),
            kind: "soft_bounce".into(),
            time: chrono::Utc::now(),
            data: json!({}),
        };
        apply(
            &mut ev,
            Common {
                kind: Some("bounce"),
                ..Common::default()
            },
        );
        assert_eq!(ev.data["hard"], json!(false));
        assert_eq!(
            text(Some(&json!(19421777396190490_u64))).as_deref(),
            Some("19421777396190490")
        );
        assert_eq!(first_text(Some(&json!(["", "cats"]))).as_deref(), Some("cats"));
        assert_eq!(text(Some(&json!(" "))), None);
    }
}

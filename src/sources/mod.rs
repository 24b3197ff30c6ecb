//! Where events come from. Each provider format is one file implementing [`Provider`]:
//! how a request body becomes events, which event types the provider sends, where a type
//! given in the URL goes. A configured [`Source`] pairs a provider with its name and its
//! authentication; [`Sources`] is the registry the server serves at `/hooks/{name}`, and
//! that `hookflow test --source` and `check` decode events with.

pub mod auth;
pub mod brevo;
pub mod json;
pub mod mailgun;
pub mod mailjet;
pub mod mailjet_api;
pub mod normalize;
pub mod postmark;
pub mod resend;
pub mod sendgrid;
pub mod ses;
pub mod sparkpost;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use thiserror::Error;

pub use auth::{Auth, Encoding, Verified};
pub use normalize::Common;

use crate::event::Event;

/// What is known of a provider before any request: its name, its types, and how its
/// types map onto the common vocabulary. A table, so the docs and the typo check read
/// the same truth the decoder uses.
#[derive(Debug)]
pub struct Info {
    /// Its name in messages (`Mailjet`).
    pub display: &'static str,
    /// The event types it sends, when that list is fixed: a rule for another type is
    /// likely a typo. `None`: any type.
    pub types: Option<&'static [&'static str]>,
    /// Types renamed by `normalize: true`, always (`spamreport` → `spam`). A type not
    /// listed keeps its name unless the provider's [`Provider::normalize`] decides per
    /// event (Postmark's `SubscriptionChange` is `unsub` only when it suppresses).
    pub renames: &'static [(&'static str, &'static str)],
    /// The field that holds the event type, for a type given in the URL
    /// (`/hooks/{source}/{type}`) to fill in where events have none.
    pub type_field: Option<&'static str>,
}

impl Info {
    /// The common name of a provider's type, when it always has one.
    pub fn rename(&self, kind: &str) -> Option<&'static str> {
        self.renames
            .iter()
            .find(|(from, _)| *from == kind)
            .map(|(_, to)| *to)
    }

    /// The types a normalized source's rules may name: the vocabulary, then the
    /// provider's types that are not always renamed.
    pub fn normalized_types(&self) -> Option<Vec<&'static str>> {
        let mut out = normalize::VOCABULARY.to_vec();
        for t in self.types? {
            if self.rename(t).is_none() && !out.contains(t) {
                out.push(t);
            }
        }
        Some(out)
    }
}

/// A provider's webhook format.
pub trait Provider: Send + Sync + std::fmt::Debug {
    fn info(&self) -> &'static Info;

    /// Decodes a parsed body. `now` stands in for events without a usable time.
    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError>;

    /// An inline test's event as the provider would send it: fields it always sends and
    /// a test may leave out are filled in (Mailjet's `time`).
    fn complete_test_event(&self, _data: &mut Value, _now: DateTime<Utc>) {}

    /// For `normalize: true`: the event's type in the common vocabulary (most often
    /// [`Info::rename`]) and where its common fields are. `None`: no mapping (`json`).
    fn normalize(&self, _ev: &Event) -> Option<Common> {
        None
    }

    /// Whether bodies come with a media type other than JSON (SNS posts JSON as
    /// `text/plain`).
    fn any_media_type(&self) -> bool {
        false
    }
}

/// A configured source: a provider, named, with its authentication.
#[derive(Debug, Clone)]
pub struct Source {
    pub provider: Arc<dyn Provider>,
    pub auth: Option<Auth>,
    /// Where its events name their contact (`contact:`); `None`: `email`.
    pub contact: Option<crate::base::path::FieldPath>,
    /// `normalize: true`: events are rewritten into the common vocabulary.
    pub normalize: bool,
}

impl Source {
    pub fn new(provider: impl Provider + 'static, auth: Option<Auth>) -> Self {
        Self {
            provider: Arc::new(provider),
            auth,
            contact: None,
            normalize: false,
        }
    }

    /// The same, its events in the common vocabulary (`normalize: true`).
    pub fn normalized(mut self, on: bool) -> Self {
        self.normalize = on;
        self
    }

    /// The event types its rules may name, with the provider's name for messages.
    pub fn event_types(&self) -> Option<(&'static str, Vec<&'static str>)> {
        let info = self.provider.info();
        let types = if self.normalize {
            info.normalized_types()
        } else {
            info.types.map(<[_]>::to_vec)
        };
        Some((info.display, types?))
    }

    /// The same, its events' contact read at `path`.
    pub fn with_contact(mut self, path: Option<crate::base::path::FieldPath>) -> Self {
        self.contact = path;
        self
    }

    /// Decodes a parsed body posted to source `name`. `url_type` is the type named in
    /// the URL (`/hooks/mailjet/open`): events without a type get it, others must agree.
    /// `delivery` is the sender's id of this request where its signature carries one
    /// (`svix-id`): a single event takes it as its id, so a redelivery dedupes.
    pub fn decode(
        &self,
        name: &str,
        mut body: Value,
        url_type: Option<&str>,
        delivery: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Event>, DecodeError> {
        if let (Some(t), Some(field)) = (url_type, self.provider.info().type_field) {
            let items: Vec<&mut Value> = match &mut body {
                Value::Array(items) => items.iter_mut().collect(),
                one => vec![one],
            };
            for item in items {
                if let Value::Object(map) = item {
                    map.entry(field).or_insert_with(|| Value::from(t));
                }
            }
        }
        let mut events = self.provider.decode(name, body, now)?;
        if let Some(t) = url_type
            && let Some((index, ev)) = events.iter().enumerate().find(|(_, e)| e.kind != t)
        {
            return Err(DecodeError::WrongType {
                index,
                found: ev.kind.clone(),
                expected: t.to_owned(),
            });
        }
        if let (Some(id), [one]) = (delivery, events.as_mut_slice()) {
            one.id = with_delivery(&one.id, name, id);
        }
        if self.normalize {
            for ev in &mut events {
                if let Some(common) = self.provider.normalize(ev) {
                    normalize::apply(ev, common);
                }
            }
        }
        Ok(events)
    }
}

/// Every configured source by name.
#[derive(Debug, Clone, Default)]
pub struct Sources(pub BTreeMap<String, Source>);

impl Sources {
    pub fn get(&self, name: &str) -> Option<&Source> {
        self.0.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Source)> {
        self.0.iter()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The source a rule's events come from: its `source:`, else the only configured
    /// source, else `mailjet` when there is one.
    pub fn for_rule(&self, source: Option<&str>) -> Option<(&str, &Source)> {
        let name = match source {
            Some(s) => s,
            None if self.0.len() == 1 => self.0.keys().next()?.as_str(),
            None => "mailjet",
        };
        self.0.get_key_value(name).map(|(n, s)| (n.as_str(), s))
    }

    /// For rule files: the event types each source's provider sends, when fixed.
    /// The sources whose events name their contact elsewhere than `email`, and where.
    pub fn contact_paths(&self) -> BTreeMap<String, crate::base::path::FieldPath> {
        self.0
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), s.contact.clone()?)))
            .collect()
    }

    pub fn event_types(&self) -> BTreeMap<String, Option<(String, Vec<String>)>> {
        self.0
            .iter()
            .map(|(name, s)| {
                let types = s
                    .event_types()
                    .map(|(display, t)| (display.to_owned(), t.iter().map(|x| (*x).to_owned()).collect()));
                (name.clone(), types)
            })
            .collect()
    }
}

/// Why a payload could not become events. Shown to the sender (HTTP 400) and to the user
/// of `hookflow test`, so each says what was expected.
#[derive(Debug, Error, PartialEq)]
pub enum DecodeError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("expected a JSON object or an array of objects, found {0}")]
    Shape(&'static str),
    #[error("event #{index} has no event type: expected a string field `{field}`")]
    NoType { index: usize, field: &'static str },
    #[error("event #{index} is not a JSON object")]
    NotObject { index: usize },
    #[error("event #{index} has no event type at `{path}`")]
    NoTypeAt { index: usize, path: String },
    #[error("the batch is empty")]
    Empty,
    #[error("event #{index}: {message}")]
    Invalid { index: usize, message: String },
    #[error("event #{index} has type `{found}`, but was posted to the URL for `{expected}`")]
    WrongType {
        index: usize,
        found: String,
        expected: String,
    },
}

/// The events of a body: one object, or a non-empty array (a batch).
pub(crate) fn items(body: Value) -> Result<Vec<Value>, DecodeError> {
    let items = match body {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        other => return Err(DecodeError::Shape(json_kind(&other))),
    };
    if items.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(items)
}

/// The id of an event delivered with its own id (`svix-id`): that id in place of the
/// content's, keeping the time the event's id starts with.
fn with_delivery(decoded: &str, name: &str, delivery: &str) -> String {
    let secs = decoded
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|rest| rest.split_once(':'))
        .map(|(secs, _)| secs)
        .filter(|secs| !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
    match secs {
        Some(secs) => format!("{name}:{secs}:{delivery}"),
        None => format!("{name}:{delivery}"),
    }
}

/// Each item of a body (see [`items`]) decoded by `one`, given its index.
pub(crate) fn each(
    body: Value,
    one: impl FnMut(usize, Value) -> Result<Event, DecodeError>,
) -> Result<Vec<Event>, DecodeError> {
    let mut one = one;
    items(body)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| one(i, v))
        .collect()
}

/// One flat object of a provider that names its type in a string field: its id (see
/// [`crate::event::event_id`]) from `id_field` or else a hash of the content, its time
/// from the first of `time_fields` that holds one, else `now`.
pub(crate) fn flat_event(
    source: &str,
    index: usize,
    data: Value,
    type_field: &'static str,
    id_field: Option<&str>,
    time_fields: &[&str],
    now: DateTime<Utc>,
) -> Result<Event, DecodeError> {
    let Value::Object(map) = &data else {
        return Err(DecodeError::NotObject { index });
    };
    let kind = match map.get(type_field) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(DecodeError::NoType {
                index,
                field: type_field,
            });
        }
    };
    let own = time_fields
        .iter()
        .find_map(|f| map.get(*f).and_then(crate::event::parse_time));
    let provider_id = id_field.and_then(|f| normalize::text(map.get(f)));
    Ok(Event::decoded(
        source,
        kind,
        own,
        provider_id.as_deref(),
        data,
        now,
    ))
}

/// The value at a path of object keys and array indexes (`["bounce", "recipients", "0"]`).
pub(crate) fn at<'v>(data: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(data, |v, seg| match v {
        Value::Object(m) => m.get(*seg),
        Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixture of provider payloads decoded by a normalized source.
    pub(crate) fn normalized(provider: impl Provider + 'static, name: &str, json: &str) -> Vec<Event> {
        let body: Value = serde_json::from_str(json).unwrap();
        Source::new(provider, None)
            .normalized(true)
            .decode(name, body, None, None, Utc::now())
            .unwrap()
    }

    pub(crate) fn kinds(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn normalized_types_are_the_vocabulary_and_what_keeps_its_name() {
        let types = postmark::INFO.normalized_types().unwrap();
        assert_eq!(types[..7], *normalize::VOCABULARY);
        assert_eq!(types[7..], ["SubscriptionChange"]);
        assert_eq!(mailjet::INFO.normalized_types().unwrap(), normalize::VOCABULARY);
        assert!(json::INFO.normalized_types().is_none());
    }

    /// Every rename lands in the vocabulary, from a type the provider sends.
    #[test]
    fn renames_map_known_types_into_the_vocabulary() {
        for info in [
            &mailjet::INFO,
            &sendgrid::INFO,
            &mailgun::INFO,
            &postmark::INFO,
            &ses::INFO,
            &resend::INFO,
            &sparkpost::INFO,
            &brevo::INFO,
        ] {
            for (from, to) in info.renames {
                assert!(info.types.unwrap().contains(from), "{}: {from}", info.display);
                assert!(normalize::VOCABULARY.contains(to), "{}: {to}", info.display);
            }
        }
    }
}

//! Where events come from. Each provider format is one file implementing [`Provider`]:
//! how a request body becomes events, which event types the provider sends, where a type
//! given in the URL goes. A configured [`Source`] pairs a provider with its name and its
//! authentication; [`Sources`] is the registry the server serves at `/hooks/{name}`, and
//! that `hookflow test --source` and `check` decode events with.

pub mod auth;
pub mod json;
pub mod mailjet;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use thiserror::Error;

pub use auth::{Auth, Encoding};

use crate::event::Event;

/// A provider's webhook format.
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Its name in messages (`Mailjet`).
    fn display(&self) -> &'static str;

    /// The event types it sends, when that list is fixed: a rule for another type is
    /// likely a typo. `None`: any type.
    fn event_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Decodes a parsed body. `now` stands in for events without a usable time.
    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError>;

    /// The field that holds the event type, for a type given in the URL
    /// (`/hooks/{source}/{type}`) to fill in where events have none.
    fn type_field(&self) -> Option<&'static str> {
        None
    }

    /// An inline test's event as the provider would send it: fields it always sends and
    /// a test may leave out are filled in (Mailjet's `time`).
    fn complete_test_event(&self, _data: &mut Value, _now: DateTime<Utc>) {}
}

/// A configured source: a provider, named, with its authentication.
#[derive(Debug, Clone)]
pub struct Source {
    pub provider: Arc<dyn Provider>,
    pub auth: Option<Auth>,
    /// Where its events name their contact (`contact:`); `None`: `email`.
    pub contact: Option<crate::base::path::FieldPath>,
}

impl Source {
    pub fn new(provider: impl Provider + 'static, auth: Option<Auth>) -> Self {
        Self {
            provider: Arc::new(provider),
            auth,
            contact: None,
        }
    }

    /// The same, its events' contact read at `path`.
    pub fn with_contact(mut self, path: Option<crate::base::path::FieldPath>) -> Self {
        self.contact = path;
        self
    }

    /// Decodes a parsed body posted to source `name`. `url_type` is the type named in
    /// the URL (`/hooks/mailjet/open`): events without a type get it, others must agree.
    pub fn decode(
        &self,
        name: &str,
        mut body: Value,
        url_type: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Event>, DecodeError> {
        if let (Some(t), Some(field)) = (url_type, self.provider.type_field()) {
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
        let events = self.provider.decode(name, body, now)?;
        if let Some(t) = url_type
            && let Some((index, ev)) = events.iter().enumerate().find(|(_, e)| e.kind != t)
        {
            return Err(DecodeError::WrongType {
                index,
                found: ev.kind.clone(),
                expected: t.to_owned(),
            });
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
                let types = s.provider.event_types().map(|t| {
                    (
                        s.provider.display().to_owned(),
                        t.iter().map(|x| (*x).to_owned()).collect(),
                    )
                });
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

//! Provider formats: each turns a request body into events. Only the decoding lives here;
//! authentication and HTTP come with the server.

pub mod auth;
pub mod json;
pub mod mailjet;

use chrono::{DateTime, Utc};
use serde_json::Value;
use thiserror::Error;

use crate::base::path::FieldPath;
use crate::config::{Auth, Format, Source};
use crate::event::Event;

/// A configured source, ready to authenticate and decode requests.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub format: Decoder,
    pub auth: Option<Auth>,
}

#[derive(Debug, Clone)]
pub enum Decoder {
    Mailjet,
    Json(json::JsonFormat),
}

impl SourceSpec {
    /// Builds the decoder; the config has already validated the paths.
    pub fn from_config(source: &Source) -> Self {
        let path = |p: &Option<String>| p.as_deref().and_then(|p| FieldPath::parse(p).ok());
        let format = match source.format {
            Format::Mailjet => Decoder::Mailjet,
            Format::Json => Decoder::Json(json::JsonFormat {
                type_path: path(&source.type_path)
                    .unwrap_or_else(|| FieldPath::parse("type").expect("valid path")),
                id_path: path(&source.id_path),
                time_path: path(&source.time_path),
            }),
        };
        Self {
            format,
            auth: source.auth.clone(),
        }
    }

    /// Decodes a parsed body. `url_type` is the type named in the URL
    /// (`/hooks/mailjet/open`): events without a type get it, others must agree.
    pub fn decode(
        &self,
        name: &str,
        mut body: Value,
        url_type: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Event>, DecodeError> {
        if let (Some(t), Decoder::Mailjet) = (url_type, &self.format) {
            let items: Vec<&mut Value> = match &mut body {
                Value::Array(items) => items.iter_mut().collect(),
                one => vec![one],
            };
            for item in items {
                if let Value::Object(map) = item {
                    map.entry("event").or_insert_with(|| Value::from(t));
                }
            }
        }
        let events = match &self.format {
            Decoder::Mailjet => mailjet::decode(name, body, now)?,
            Decoder::Json(f) => f.decode(name, body, now)?,
        };
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

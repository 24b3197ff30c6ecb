//! Provider formats: each turns a request body into events. Only the decoding lives here;
//! authentication and HTTP come with the server.

pub mod mailjet;

use thiserror::Error;

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
    #[error("the batch is empty")]
    Empty,
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

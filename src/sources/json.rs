//! Generic JSON sources: one object or an array of objects, with the event type (and
//! optionally the id and time) found by JSONPath, as configured per source.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{DecodeError, Info, Provider};
use crate::base::path::FieldPath;
use crate::base::value::key_text;
use crate::event::{Event, parse_time};

/// Where the fields are, compiled from the source's config.
#[derive(Debug, Clone)]
pub struct JsonFormat {
    pub type_path: FieldPath,
    pub id_path: Option<FieldPath>,
    pub time_path: Option<FieldPath>,
}

/// Any type, none renamed.
pub const INFO: Info = Info {
    display: "JSON",
    types: None,
    renames: &[],
    type_field: None,
};

impl Provider for JsonFormat {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn decode(&self, source: &str, body: Value, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        super::each(body, |index, data| {
            if !data.is_object() {
                return Err(DecodeError::NotObject { index });
            }
            let kind = match self.type_path.first(&data) {
                Some(Value::String(s)) if !s.is_empty() => s,
                _ => {
                    return Err(DecodeError::NoTypeAt {
                        index,
                        path: self.type_path.as_str().to_owned(),
                    });
                }
            };
            let provider_id = self.id_path.as_ref().and_then(|p| p.find_map(&data, key_text));
            let own = self
                .time_path
                .as_ref()
                .and_then(|p| p.find_map(&data, parse_time));
            Ok(Event::decoded(
                source,
                kind,
                own,
                provider_id.as_deref(),
                data,
                now,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn format() -> JsonFormat {
        JsonFormat {
            type_path: FieldPath::parse("$.type").unwrap(),
            id_path: Some(FieldPath::parse("$.id").unwrap()),
            time_path: Some(FieldPath::parse("created").unwrap()),
        }
    }

    #[test]
    fn decodes_type_id_and_time() {
        let now = Utc::now();
        let evs = format()
            .decode(
                "shop",
                json!([{"type": "order.paid", "id": 17, "created": 1433103519}, {"type": "x"}]),
                now,
            )
            .unwrap();
        assert_eq!(evs[0].kind, "order.paid");
        assert_eq!(evs[0].id, "shop:1433103519:17");
        assert_eq!(evs[0].time.timestamp(), 1433103519);
        assert_eq!(evs[1].time, now);
        assert_eq!(evs[1].id.len(), 32);
        let err = format().decode("shop", json!({"kind": "x"}), now).unwrap_err();
        assert_eq!(err.to_string(), "event #0 has no event type at `$.type`");
    }
}

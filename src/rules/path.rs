//! Where a condition looks in the payload: a top-level name (`email`), a dotted path
//! (`geo.country`, `items.0.sku`) or JSONPath (`$.items[*].sku`).
//!
//! A path may yield several values (a dotted path through a list visits every element;
//! JSONPath wildcards and filters), and a condition holds when any of them satisfies it.
//! Dotted paths are walked without allocating; full JSONPath goes through jsonpath-rust
//! with the query parsed once at load.

use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct FieldPath {
    text: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Keys walked in order; `fan_out` visits each element when a key meets a list.
    Keys {
        segments: Vec<String>,
        fan_out: bool,
    },
    Query(Box<JpQuery>),
}

impl FieldPath {
    /// Parses a field reference as a rule author writes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty field name".into());
        }
        let kind = if let Some(rest) = text.strip_prefix('$') {
            match simple_jsonpath(rest) {
                Some(segments) => Kind::Keys {
                    segments,
                    fan_out: false,
                },
                None => {
                    let query = parse_json_path(text).map_err(|e| jsonpath_error(text, &e.to_string()))?;
                    Kind::Query(Box::new(query))
                }
            }
        } else {
            if text.split('.').any(str::is_empty) {
                return Err(format!("invalid field path `{text}`: empty segment"));
            }
            Kind::Keys {
                segments: text.split('.').map(str::to_owned).collect(),
                fan_out: true,
            }
        };
        Ok(Self {
            text: text.to_owned(),
            kind,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Calls `f` on each value the path yields until it returns `true`; returns whether it did.
    pub fn any<'v>(&self, data: &'v Value, f: &mut dyn FnMut(&'v Value) -> bool) -> bool {
        match &self.kind {
            Kind::Keys { segments, fan_out } => walk(data, segments, *fan_out, f),
            Kind::Query(q) => match js_path_process(q, data) {
                Ok(found) => found.into_iter().any(|r| f(r.val())),
                Err(_) => false,
            },
        }
    }

    /// The first value the path yields.
    pub fn first<'v>(&self, data: &'v Value) -> Option<&'v Value> {
        let mut out = None;
        self.any(data, &mut |v| {
            out = Some(v);
            true
        });
        out
    }

    /// Every value the path yields (for explanations; allocates).
    pub fn all<'v>(&self, data: &'v Value) -> Vec<&'v Value> {
        let mut out = Vec::new();
        self.any(data, &mut |v| {
            out.push(v);
            false
        });
        out
    }
}

/// jsonpath-rust reports pest's multi-line diagnostics; keep what was expected, and where.
fn jsonpath_error(text: &str, raw: &str) -> String {
    let expected = raw
        .lines()
        .find_map(|l| l.trim().strip_prefix("= "))
        .map(str::to_owned);
    let at = raw
        .lines()
        .find_map(|l| l.split_once("--> ").map(|(_, p)| p))
        .and_then(|p| p.rsplit(':').next())
        .and_then(|c| c.trim().parse::<usize>().ok());
    match (expected, at) {
        (Some(e), Some(at)) => format!("invalid JSONPath `{text}`: {e} at character {at}"),
        (Some(e), None) => format!("invalid JSONPath `{text}`: {e}"),
        _ => format!(
            "invalid JSONPath `{text}`: {}",
            raw.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    }
}

/// `$.a.b` and `$['a'].b` without wildcards or filters are walked directly.
fn simple_jsonpath(rest: &str) -> Option<Vec<String>> {
    let mut segments = Vec::new();
    let mut s = rest;
    while !s.is_empty() {
        if let Some(r) = s.strip_prefix("['") {
            let end = r.find("']")?;
            segments.push(r[..end].to_owned());
            s = &r[end + 2..];
        } else if let Some(r) = s.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
                return None;
            }
            segments.push(name.to_owned());
            s = &r[end..];
        } else {
            return None;
        }
    }
    (!segments.is_empty()).then_some(segments)
}

fn walk<'v>(
    value: &'v Value,
    segments: &[String],
    fan_out: bool,
    f: &mut dyn FnMut(&'v Value) -> bool,
) -> bool {
    let Some((head, rest)) = segments.split_first() else {
        return f(value);
    };
    match value {
        Value::Object(map) => map.get(head).is_some_and(|v| walk(v, rest, fan_out, f)),
        Value::Array(items) => {
            if let Ok(index) = head.parse::<usize>() {
                items.get(index).is_some_and(|v| walk(v, rest, fan_out, f))
            } else if fan_out {
                items.iter().any(|item| walk(item, segments, fan_out, f))
            } else {
                false
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(path: &str, data: &Value) -> Vec<Value> {
        FieldPath::parse(path)
            .unwrap()
            .all(data)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn names_dots_indexes_and_fan_out() {
        let data = json!({"email": "a@b.c", "geo": {"country": "US"},
                          "items": [{"sku": "A"}, {"sku": "B"}], "odd.key": 1});
        assert_eq!(values("email", &data), vec![json!("a@b.c")]);
        assert_eq!(values("geo.country", &data), vec![json!("US")]);
        assert_eq!(values("items.1.sku", &data), vec![json!("B")]);
        assert_eq!(values("items.sku", &data), vec![json!("A"), json!("B")]);
        assert!(values("missing", &data).is_empty());
        assert!(values("email.x", &data).is_empty());
        assert_eq!(values("$['odd.key']", &data), vec![json!(1)]);
    }

    #[test]
    fn jsonpath_queries() {
        let data = json!({"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 5}]});
        assert_eq!(values("$.items[*].sku", &data), vec![json!("A"), json!("B")]);
        assert_eq!(values("$.items[?@.qty > 2].sku", &data), vec![json!("B")]);
        // Simple JSONPath does not fan out, as JSONPath defines.
        assert!(values("$.items.sku", &data).is_empty());
    }

    #[test]
    fn bad_paths_are_errors() {
        assert!(
            FieldPath::parse("$.items[")
                .unwrap_err()
                .contains("invalid JSONPath")
        );
        assert!(FieldPath::parse("a..b").is_err());
        assert!(FieldPath::parse("").is_err());
    }
}

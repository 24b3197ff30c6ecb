//! Where a condition looks in the payload: a top-level name (`email`), a dotted path
//! (`geo.country`, `items.0.sku`) or JSONPath (`$.items[*].sku`).
//!
//! A path may yield several values (a dotted path through a list visits every element;
//! JSONPath wildcards and filters), and a condition holds when any of them satisfies it.
//! Dotted paths are walked without allocating; full JSONPath goes through jsonpath-rust
//! with the query parsed once at load.

use std::collections::HashMap;

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
        /// The first segment's slot in the rule set's [`FieldTable`], when interned.
        slot: Option<u16>,
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
                    slot: None,
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
                slot: None,
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
        self.any_in(data, None, f)
    }

    /// [`FieldPath::any`] with the event's top-level fields already looked up.
    pub fn any_in<'v>(
        &self,
        data: &'v Value,
        slots: Option<&Slots<'v>>,
        f: &mut dyn FnMut(&'v Value) -> bool,
    ) -> bool {
        match &self.kind {
            Kind::Keys {
                segments,
                fan_out,
                slot,
            } => match (slot, slots) {
                (Some(slot), Some(slots)) if slots.object => match slots.vals[usize::from(*slot)] {
                    Some(root) => walk(root, &segments[1..], *fan_out, f),
                    None => false,
                },
                _ => walk(data, segments, *fan_out, f),
            },
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

    /// Gives the path's first segment a slot in `table`, so matching reads it from
    /// [`Slots`] instead of hashing the name into the payload for every predicate.
    pub(crate) fn intern(&mut self, table: &mut FieldTable) {
        if let Kind::Keys { segments, slot, .. } = &mut self.kind {
            *slot = table.slot(&segments[0]);
        }
    }
}

/// The top-level field names a rule set's conditions read, numbered.
#[derive(Debug, Default)]
pub struct FieldTable {
    names: Vec<String>,
    by_name: HashMap<String, u16>,
}

/// How many names get a slot; conditions on further names look them up directly.
const MAX_SLOTS: usize = 64;

impl FieldTable {
    fn slot(&mut self, name: &str) -> Option<u16> {
        if let Some(&s) = self.by_name.get(name) {
            return Some(s);
        }
        if self.names.len() >= MAX_SLOTS {
            return None;
        }
        let s = self.names.len() as u16;
        self.names.push(name.to_owned());
        self.by_name.insert(name.to_owned(), s);
        Some(s)
    }
}

/// One event's values for the [`FieldTable`]'s names, looked up once per event. Lives on
/// the stack: matching allocates nothing.
pub struct Slots<'v> {
    vals: [Option<&'v Value>; MAX_SLOTS],
    /// Slots only describe object payloads; anything else is walked directly.
    object: bool,
}

impl<'v> Slots<'v> {
    pub fn resolve(table: &FieldTable, data: &'v Value) -> Self {
        let mut slots = Slots {
            vals: [None; MAX_SLOTS],
            object: false,
        };
        if let Value::Object(map) = data {
            slots.object = true;
            // Hash whichever side is smaller: the payload's keys or the table's names.
            if map.len() <= table.names.len() {
                for (key, value) in map {
                    if let Some(&s) = table.by_name.get(key.as_str()) {
                        slots.vals[usize::from(s)] = Some(value);
                    }
                }
            } else {
                for (i, name) in table.names.iter().enumerate() {
                    slots.vals[i] = map.get(name);
                }
            }
        }
        slots
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
    fn slots_agree_with_direct_lookup() {
        let mut table = FieldTable::default();
        let mut paths: Vec<FieldPath> = [
            "email",
            "geo.country",
            "items.sku",
            "missing",
            "$.items[*].sku",
            "$.geo.country",
        ]
        .iter()
        .map(|p| FieldPath::parse(p).unwrap())
        .collect();
        for p in &mut paths {
            p.intern(&mut table);
        }
        let small =
            json!({"email": "a@b.c", "geo": {"country": "US"}, "items": [{"sku": "A"}, {"sku": "B"}]});
        let many_keys: Value = (0..100)
            .map(|i| (format!("k{i}"), json!(i)))
            .chain([("email".to_owned(), json!("x"))])
            .collect::<serde_json::Map<_, _>>()
            .into();
        for data in [small, many_keys, json!([{"email": "in a list"}]), json!("text")] {
            let slots = Slots::resolve(&table, &data);
            for p in &paths {
                let mut direct = Vec::new();
                p.any(&data, &mut |v| {
                    direct.push(v.clone());
                    false
                });
                let mut slotted = Vec::new();
                p.any_in(&data, Some(&slots), &mut |v| {
                    slotted.push(v.clone());
                    false
                });
                assert_eq!(direct, slotted, "{} on {data}", p.as_str());
            }
        }
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

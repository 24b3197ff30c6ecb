//! The one place that knows about YAML libraries.
//!
//! serde_yaml (the user's choice) turns text into our typed raw model and reports the first
//! structural error with its location. Errors found later, while compiling (a bad regex, an
//! unknown operator, a template that does not parse), need a location too, but serde keeps
//! none for values; so [`Positions`] walks the same text once with yaml-rust2's marked
//! event parser and records where every key and value starts, addressed by a dotted path
//! (`rules[0].when.email.matches`). Paths are built the same way by the compiler.

use std::collections::HashMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::base::suggest::did_you_mean;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A structural error from parsing, already phrased for a rule author.
#[derive(Clone, Debug, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    /// Dotted path of the node the error is about, when serde reported one.
    pub path: Option<String>,
    pub message: String,
}

/// Deserializes `text` into `T`, turning serde_yaml's message into one a marketer can act on.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_yaml::from_str(text).map_err(|err| {
        let pos = err
            .location()
            .map(|l| Pos {
                line: l.line(),
                column: l.column(),
            })
            .unwrap_or(Pos { line: 1, column: 1 });
        let (path, mut message) = humanize(&err.to_string(), err.location().map(|_| pos));
        if let Some(hint) = unquoted_hint(text, pos) {
            message = format!("{message}; {hint}");
        }
        YamlError { pos, path, message }
    })
}

/// The fix when the error's line has a value YAML reads as syntax rather than text: a
/// template `{{email}}` (a map inside a map) or `> 5` (a folded block) left unquoted.
fn unquoted_hint(text: &str, pos: Pos) -> Option<String> {
    let line = text.lines().nth(pos.line.checked_sub(1)?)?;
    let values = line
        .match_indices(": ")
        .chain(line.match_indices("- "))
        .map(|(i, sep)| line[i + sep.len()..].trim_start());
    for value in values {
        // Inside a flow map (`{ message: {{email}} }`) the map's own `}` and `,` follow.
        let mut value = value.trim_end().trim_end_matches(',').trim_end();
        while value.ends_with('}') && value.matches('}').count() > value.matches('{').count() {
            value = value[..value.len() - 1]
                .trim_end()
                .trim_end_matches(',')
                .trim_end();
        }
        let quote = || format!("put quotes around it: `\"{}\"`", value.replace('"', "\\\""));
        if value.starts_with("{{") {
            return Some(format!(
                "a value starting with `{{{{` is read by YAML as a map, not a template; {}",
                quote()
            ));
        }
        if let Some(rest) = value.strip_prefix(['>', '|'])
            && rest.starts_with(' ')
            && !rest.trim().is_empty()
        {
            return Some(format!(
                "a value starting with `{}` is read by YAML as a block of text; {}",
                &value[..1],
                quote()
            ));
        }
    }
    None
}

/// Parses `text` into a plain value (used for event files and inline test events).
pub fn to_json(text: &str) -> Result<serde_json::Value, YamlError> {
    from_str(text)
}

/// [`from_value`], keeping apart the path of the node the error is about.
pub fn from_value_located<T: DeserializeOwned>(
    value: serde_yaml::Value,
) -> Result<T, (Option<String>, String)> {
    serde_yaml::from_value(value).map_err(|err| humanize(&err.to_string(), None))
}

/// Deserializes a value already parsed (a sub-tree the compiler interprets by hand).
pub fn from_value<T: DeserializeOwned>(value: serde_yaml::Value) -> Result<T, String> {
    serde_yaml::from_value(value).map_err(|err| {
        let (path, message) = humanize(&err.to_string(), None);
        match path {
            Some(p) => format!("{p}: {message}"),
            None => message,
        }
    })
}

/// The tag [`ExactValue`] gives an integer too large for 64 bits, its digits kept as text.
const BIG_INT: &str = "!hookflow-big-int";

/// A YAML value as JSON (payload literals, JSON bodies). Tags are refused: JSON has none.
/// Integers too large for 64 bits (kept by [`ExactValue`]) stay exact.
pub fn yaml_to_json(value: &serde_yaml::Value) -> Result<serde_json::Value, String> {
    use serde_yaml::Value as Y;
    Ok(match value {
        Y::Tagged(t) if t.tag == BIG_INT => match &t.value {
            Y::String(digits) => {
                serde_json::from_str(digits).map_err(|e| format!("cannot be used as JSON: {e}"))?
            }
            _ => return Err("cannot be used as JSON".into()),
        },
        Y::Tagged(t) => {
            return Err(format!(
                "cannot be used as JSON: YAML tags ({}) have no JSON form",
                t.tag
            ));
        }
        Y::Sequence(items) => {
            serde_json::Value::Array(items.iter().map(yaml_to_json).collect::<Result<_, _>>()?)
        }
        Y::Mapping(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    _ => return Err("cannot be used as JSON: a key must be text".into()),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            serde_json::Value::Object(out)
        }
        other => serde_json::to_value(other).map_err(|e| format!("cannot be used as JSON: {e}"))?,
    })
}

/// A YAML value that keeps integers beyond 64 bits exactly, which serde_yaml's own
/// `Value` refuses ("invalid type: integer as u128"): a 30-digit id in a condition must
/// load and compare as written.
pub struct ExactValue(pub serde_yaml::Value);

impl<'de> serde::Deserialize<'de> for ExactValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ExactVisitor).map(ExactValue)
    }
}

struct ExactVisitor;

impl ExactVisitor {
    fn big(digits: String) -> serde_yaml::Value {
        serde_yaml::Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: serde_yaml::value::Tag::new(BIG_INT),
            value: serde_yaml::Value::String(digits),
        }))
    }
}

impl<'de> serde::de::Visitor<'de> for ExactVisitor {
    type Value = serde_yaml::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i128<E>(self, v: i128) -> Result<Self::Value, E> {
        Ok(Self::big(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Self::Value, E> {
        Ok(Self::big(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_yaml::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_yaml::Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(ExactValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(serde_yaml::Value::Sequence(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_yaml::Mapping::new();
        while let Some((ExactValue(k), ExactValue(v))) = map.next_entry()? {
            out.insert(k, v);
        }
        Ok(serde_yaml::Value::Mapping(out))
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        use serde::de::VariantAccess;
        let (tag, variant): (String, _) = data.variant()?;
        let ExactValue(value) = variant.newtype_variant()?;
        Ok(serde_yaml::Value::Tagged(Box::new(
            serde_yaml::value::TaggedValue {
                tag: serde_yaml::value::Tag::new(tag),
                value,
            },
        )))
    }
}

/// Strips serde_yaml's trailing "at line X column Y" (we report positions ourselves) and
/// the path prefix, rewrites "unknown field" into a did-you-mean, and adds hints for the
/// YAML mistakes people make most.
fn humanize(raw: &str, pos: Option<Pos>) -> (Option<String>, String) {
    let mut text = raw.to_owned();
    if let Some(pos) = pos {
        let suffix = format!(" at line {} column {}", pos.line, pos.column);
        if text.ends_with(&suffix) {
            text.truncate(text.len() - suffix.len());
        }
    }
    let (path, msg) = split_path(&text);
    let mut msg = rewrite_unknown(&msg).replace("struct RawRule", "a rule (a map with `on:` and `actions:`)");
    // Other raw types are maps of settings; their Rust names mean nothing to a user.
    while let Some(at) = msg.find("struct Raw") {
        let end = msg[at + 7..]
            .find(|c: char| !c.is_alphanumeric())
            .map_or(msg.len(), |e| at + 7 + e);
        msg.replace_range(at..end, "a map of settings");
    }
    if msg.starts_with("mapping values are not allowed") {
        msg.push_str(" (a value containing `: ` must be quoted, e.g. `description: \"Note: ...\"`)");
    } else if msg.starts_with("found character that cannot start any token") {
        msg.push_str(" (indent with spaces, not tabs; quote values starting with `@`, `%` or a backtick)");
    }
    (path, msg)
}

/// serde_yaml prefixes messages with the path of the node: `when.email: unknown field ...`.
fn split_path(text: &str) -> (Option<String>, String) {
    if let Some((head, tail)) = text.split_once(": ") {
        let looks_like_path = !head.is_empty()
            && !head.contains(' ')
            && head.chars().all(|c| c.is_alphanumeric() || "._[]-$".contains(c));
        if looks_like_path && head != "." {
            return (Some(head.to_owned()), tail.to_owned());
        }
    }
    (None, text.to_owned())
}

fn rewrite_unknown(msg: &str) -> String {
    for (prefix, noun) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        let Some(rest) = msg.strip_prefix(prefix) else {
            continue;
        };
        let Some((word, after)) = rest.split_once('`') else {
            continue;
        };
        let expected: Vec<&str> = after
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|s| !s.is_empty())
            .collect();
        let mut out = format!("unknown {noun} `{word}`");
        if let Some(best) = did_you_mean(word, expected.iter().copied()) {
            let _ = write!(out, " — did you mean `{best}`?");
        }
        if !expected.is_empty() {
            let _ = write!(out, " (expected one of: {})", expected.join(", "));
        } else if after.contains("there are no") {
            out.push_str(" (this entry takes no keys)");
        }
        return out;
    }
    msg.to_owned()
}

/// Where each node of a YAML document starts, by dotted path.
#[derive(Debug, Default)]
pub struct Positions {
    keys: HashMap<String, Pos>,
    values: HashMap<String, Pos>,
}

impl Positions {
    /// Walks `text`; a syntax error simply leaves the index partial (serde reports it).
    pub fn build(text: &str) -> Self {
        let mut recorder = Recorder::default();
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut recorder, false);
        let mut positions = Positions::default();
        let mut cursor = 0;
        positions.walk(&recorder.events, &mut cursor, String::new());
        positions
    }

    /// The position of the key naming `path` (for "unknown key"), else of its value.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.keys.get(path).or_else(|| self.values.get(path)).copied()
    }

    /// The position of the value at `path`, else of its key.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.values.get(path).or_else(|| self.keys.get(path)).copied()
    }

    /// Where a key named `name` stands at or below `under` (the first, by line), for
    /// errors that name a key but not where it is.
    pub fn find_key(&self, under: &str, name: &str) -> Option<String> {
        self.keys
            .iter()
            .filter(|(path, _)| {
                let below = under.is_empty() || *path == under || path.starts_with(&format!("{under}."));
                below && (path.ends_with(&format!(".{name}")) || *path == name)
            })
            .min_by_key(|(_, pos)| (pos.line, pos.column))
            .map(|(path, _)| path.clone())
    }

    /// The position of `path` or of its nearest ancestor that has one.
    pub fn nearest(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.value(p) {
                return pos;
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => return self.value("").unwrap_or(Pos { line: 1, column: 1 }),
            }
        }
    }

    fn walk(&mut self, events: &[(Event, Pos)], cursor: &mut usize, path: String) {
        // Skip stream/document framing until the first node.
        while let Some((ev, _)) = events.get(*cursor) {
            match ev {
                Event::StreamStart | Event::DocumentStart | Event::Nothing => *cursor += 1,
                _ => break,
            }
        }
        let Some((ev, pos)) = events.get(*cursor) else {
            return;
        };
        // A block mapping is marked where its first `:` is; its first key reads better.
        let pos = match (ev, events.get(*cursor + 1)) {
            (Event::MappingStart(..), Some((Event::Scalar(..), key_pos))) if key_pos.line == pos.line => {
                *key_pos
            }
            _ => *pos,
        };
        self.values.entry(path.clone()).or_insert(pos);
        *cursor += 1;
        match ev {
            Event::MappingStart(..) => loop {
                match events.get(*cursor) {
                    None => return,
                    Some((Event::MappingEnd, _)) => {
                        *cursor += 1;
                        return;
                    }
                    Some((Event::Scalar(key, ..), key_pos)) => {
                        let child = join_key(&path, key);
                        self.keys.entry(child.clone()).or_insert(*key_pos);
                        *cursor += 1;
                        self.walk(events, cursor, child);
                    }
                    Some(_) => {
                        // A complex key: index it under a placeholder and skip its value too.
                        self.walk(events, cursor, format!("{path}.?"));
                        self.walk(events, cursor, format!("{path}.?"));
                    }
                }
            },
            Event::SequenceStart(..) => {
                let mut index = 0;
                loop {
                    match events.get(*cursor) {
                        None => return,
                        Some((Event::SequenceEnd, _)) => {
                            *cursor += 1;
                            return;
                        }
                        Some(_) => {
                            self.walk(events, cursor, format!("{path}[{index}]"));
                            index += 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Appends a key to a dotted path (the root path is empty).
pub fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends a list index to a dotted path.
pub fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

#[derive(Default)]
struct Recorder {
    events: Vec<(Event, Pos)>,
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        // yaml-rust2 counts lines from 1 and columns from 0.
        let pos = Pos {
            line: mark.line(),
            column: mark.col() + 1,
        };
        self.events.push((ev, pos));
    }
}

/// A string or a list of strings; remembers which, so dry runs echo the rule's own shape.
#[derive(Debug, Clone, PartialEq)]
pub struct StringList {
    pub items: Vec<String>,
    pub was_list: bool,
}

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList {
                    items: vec![v.to_owned()],
                    was_list: false,
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StringList, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StringList, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(StringList {
                    items,
                    was_list: true,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for StringList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StringOrList".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "on: open\nwhen:\n  email: { ends_with: \"@x.com\" }\n  geo:\n    in: [US, CA]\nactions:\n  - log: { message: hi }\n";

    #[test]
    fn positions_of_keys_and_values() {
        let p = Positions::build(DOC);
        assert_eq!(p.key("on"), Some(Pos { line: 1, column: 1 }));
        assert_eq!(p.value("on"), Some(Pos { line: 1, column: 5 }));
        assert_eq!(p.key("when.email.ends_with"), Some(Pos { line: 3, column: 12 }));
        assert_eq!(p.key("when.geo.in"), Some(Pos { line: 5, column: 5 }));
        assert_eq!(p.value("when.geo.in[1]"), Some(Pos { line: 5, column: 14 }));
        assert_eq!(p.key("actions[0].log.message"), Some(Pos { line: 7, column: 12 }));
        assert_eq!(p.nearest("when.geo.in[7].x"), Pos { line: 5, column: 9 });
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Small {
        when: Option<u8>,
        actions: Option<u8>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Texts {
        message: Option<String>,
        when: Option<std::collections::BTreeMap<String, String>>,
    }

    #[test]
    fn unquoted_templates_and_block_indicators_get_quotes_as_the_fix() {
        let err = from_str::<Texts>("message: {{email}}\n").unwrap_err();
        assert!(
            err.message.contains("put quotes around it: `\"{{email}}\"`"),
            "{}",
            err.message
        );
        let err = from_str::<Texts>("{ message: {{email}} }\n").unwrap_err();
        assert!(err.message.contains("`\"{{email}}\"`"), "{}", err.message);
        let err = from_str::<Texts>("when:\n  count: > 5\n").unwrap_err();
        assert!(
            err.message
                .contains("read by YAML as a block of text; put quotes around it: `\"> 5\"`"),
            "{}",
            err.message
        );
        // Quoted, both are text, and a real block is left alone.
        assert!(from_str::<Texts>("message: \"{{email}}\"\nwhen: { count: \"> 5\" }\n").is_ok());
        assert!(from_str::<Texts>("message: >\n  folded\n").is_ok());
    }

    #[test]
    fn unknown_key_gets_did_you_mean_and_location() {
        let err = from_str::<Small>("whn: 1\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, column: 1 });
        assert_eq!(
            err.message,
            "unknown key `whn` — did you mean `when`? (expected one of: when, actions)"
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = from_str::<Small>("when: [1,\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        assert!(!err.message.contains("at line"), "{}", err.message);
    }
}

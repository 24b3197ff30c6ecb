//! Where a condition looks in the payload: a top-level name (`email`), a dotted path
//! (`geo.country`, `items.0.sku`) or JSONPath (`$.items[*].sku`).
//!
//! A path may yield several values (a dotted path through a list visits every element;
//! JSONPath wildcards and filters), and a condition holds when any of them satisfies it.
//! Dotted paths are walked without allocating. JSONPath follows RFC 9535: the plainest
//! queries (`$.a.b`, `$['a b']`, `$.items[0]`) are walked directly, exactly as the RFC
//! defines them; every other query goes through jsonpath-rust, parsed once at load, after
//! a check of the RFC's typing rules that jsonpath-rust does not make (a query it would
//! answer wrongly is refused at load instead).
//!
//! **JSON inside strings.** Providers carry data set at send time as a JSON string
//! (Mailjet's `Payload`: `"{\"tz\":\"Europe/Paris\"}"`). A dotted path, or a directly
//! walked JSONPath, that has a step left when it meets a string holding a JSON object
//! or array reads into it: `Payload.tz`, `$.Payload.plan`. The string itself is still a
//! string (`Payload` compares as the text). A top-level field is parsed at most once per
//! event, when a condition first reads into it (the [`Slots`] keep it); deeper strings
//! are parsed where they are met. jsonpath-rust's queries (wildcards, filters) do not.

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
    /// Segments walked in order.
    Keys {
        segments: Vec<Seg>,
        /// The first segment's slot in the rule set's [`FieldTable`], when interned.
        slot: Option<u16>,
    },
    Query(Box<JpQuery>),
}

/// One step of a directly walked path.
#[derive(Clone, Debug)]
enum Seg {
    /// A dotted path's step: an object's member, or a list's element by a numeric step,
    /// or (any other step on a list) the same step taken in every element.
    Dotted(String),
    /// JSONPath's name selector: an object's member; nothing on anything else.
    Name(String),
    /// JSONPath's index selector: a list's element; nothing on anything else.
    Index(usize),
}

impl Seg {
    fn name(&self) -> Option<&str> {
        match self {
            Seg::Dotted(n) | Seg::Name(n) => Some(n),
            Seg::Index(_) => None,
        }
    }
}

impl FieldPath {
    /// Parses a field reference as a rule author writes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty field name".into());
        }
        let kind = if let Some(rest) = text.strip_prefix('$') {
            match simple_jsonpath(rest) {
                Some(segments) => Kind::Keys { segments, slot: None },
                None => {
                    let query = parse_json_path(text).map_err(|e| jsonpath_error(text, &e.to_string()))?;
                    well_typed::query(&query).map_err(|e| format!("invalid JSONPath `{text}`: {e}"))?;
                    Kind::Query(Box::new(query))
                }
            }
        } else {
            if text.split('.').any(str::is_empty) {
                return Err(format!("invalid field path `{text}`: empty segment"));
            }
            Kind::Keys {
                segments: text.split('.').map(|s| Seg::Dotted(s.to_owned())).collect(),
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

    /// Calls `f` on each value the path yields until it returns `true`; returns whether it
    /// did. A value may come from JSON inside a string, parsed for the call: `f` sees it
    /// only while it runs.
    pub fn any(&self, data: &Value, f: &mut dyn FnMut(&Value) -> bool) -> bool {
        self.any_in(data, None, f)
    }

    /// [`FieldPath::any`] with the event's top-level fields already looked up (and JSON
    /// strings among them parsed once for all the conditions of the event).
    pub fn any_in(&self, data: &Value, slots: Option<&Slots<'_>>, f: &mut dyn FnMut(&Value) -> bool) -> bool {
        match &self.kind {
            Kind::Keys { segments, slot } => match (slot, slots) {
                (Some(slot), Some(slots)) if slots.object => {
                    let slot = usize::from(*slot);
                    match slots.vals[slot] {
                        // Only text that may be JSON reaches the cache (which allocates):
                        // a plain string with a step left yields nothing, for free.
                        Some(Value::String(text)) if segments.len() > 1 => {
                            match may_be_json(text).then(|| slots.embedded(slot)).flatten() {
                                Some(inner) => walk(inner, &segments[1..], f),
                                None => false,
                            }
                        }
                        Some(root) => walk(root, &segments[1..], f),
                        None => false,
                    }
                }
                _ => walk(data, segments, f),
            },
            Kind::Query(q) => match js_path_process(q, data) {
                Ok(found) => found.into_iter().any(|r| f(r.val())),
                Err(_) => false,
            },
        }
    }

    /// `f` of the first value the path yields for which it gives something: reads a key
    /// or a time without copying the value.
    pub fn find_map<T>(&self, data: &Value, mut f: impl FnMut(&Value) -> Option<T>) -> Option<T> {
        let mut out = None;
        self.any(data, &mut |v| {
            out = f(v);
            out.is_some()
        });
        out
    }

    /// The first value the path yields (a copy: it may come from JSON inside a string).
    pub fn first(&self, data: &Value) -> Option<Value> {
        let mut out = None;
        self.any(data, &mut |v| {
            out = Some(v.clone());
            true
        });
        out
    }

    /// Every value the path yields (for explanations; copies).
    pub fn all(&self, data: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        self.any(data, &mut |v| {
            out.push(v.clone());
            false
        });
        out
    }

    /// Gives the path's first segment a slot in `table`, so matching reads it from
    /// [`Slots`] instead of hashing the name into the payload for every predicate.
    pub(crate) fn intern(&mut self, table: &mut FieldTable) {
        if let Kind::Keys { segments, slot } = &mut self.kind {
            *slot = segments.first().and_then(Seg::name).and_then(|n| table.slot(n));
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
    /// JSON read out of string fields, by slot: allocated when a condition first reads
    /// into one, each parsed at most once (`None`: not JSON).
    embedded: std::cell::OnceCell<Box<[std::cell::OnceCell<Option<Value>>]>>,
}

impl<'v> Slots<'v> {
    pub fn resolve(table: &FieldTable, data: &'v Value) -> Self {
        let mut slots = Slots {
            vals: [None; MAX_SLOTS],
            object: false,
            embedded: std::cell::OnceCell::new(),
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

impl Slots<'_> {
    /// The JSON object or array held by the string in `slot`, parsed on first use.
    fn embedded(&self, slot: usize) -> Option<&Value> {
        let cells = self
            .embedded
            .get_or_init(|| (0..MAX_SLOTS).map(|_| std::cell::OnceCell::new()).collect());
        cells[slot]
            .get_or_init(|| match self.vals[slot] {
                Some(Value::String(text)) => embedded_json(text),
                _ => None,
            })
            .as_ref()
    }
}

/// Whether a string starts as a JSON object or array would: only those are parsed.
fn may_be_json(text: &str) -> bool {
    text.trim_start().starts_with(['{', '['])
}

/// The object or array a string holds as JSON text, if it does.
pub(crate) fn embedded_json(text: &str) -> Option<Value> {
    if !may_be_json(text) {
        return None;
    }
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(|v| v.is_object() || v.is_array())
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

/// The queries walked directly, because walking gets them exactly right: after `$`,
/// only `.name` (RFC 9535's member-name shorthand: a letter, `_` or non-ASCII first, then
/// digits too), `['name']` / `["name"]` without escapes or whitespace, and `[N]` with a
/// non-negative index. Anything else (escapes, `['a','b']`, spaces, negative indexes,
/// wildcards, slices, filters) is jsonpath-rust's.
fn simple_jsonpath(rest: &str) -> Option<Vec<Seg>> {
    let mut segments = Vec::new();
    let mut s = rest;
    while !s.is_empty() {
        if let Some(r) = s.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            let mut chars = name.chars();
            let first_ok = chars.next().is_some_and(name_first);
            if !first_ok || !chars.all(|c| name_first(c) || c.is_ascii_digit()) {
                return None;
            }
            segments.push(Seg::Name(name.to_owned()));
            s = &r[end..];
        } else if let Some(r) = s.strip_prefix('[') {
            let (seg, after) = bracketed(r)?;
            segments.push(seg);
            s = after;
        } else {
            return None;
        }
    }
    (!segments.is_empty()).then_some(segments)
}

/// RFC 9535 `name-first`: ALPHA / "_" / %x80-D7FF / %xE000-10FFFF.
fn name_first(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (c as u32) >= 0x80
}

/// One `[...]` of the direct subset (after its `[`): the segment and what follows `]`.
fn bracketed(r: &str) -> Option<(Seg, &str)> {
    if let Some(quote) = r.chars().next().filter(|q| *q == '\'' || *q == '"') {
        let body = &r[1..];
        let end = body.find(quote)?;
        let name = &body[..end];
        if name.contains('\\') || name.chars().any(|c| (c as u32) < 0x20) {
            return None;
        }
        let after = body[end + 1..].strip_prefix(']')?;
        return Some((Seg::Name(name.to_owned()), after));
    }
    let end = r.find(']')?;
    let digits = &r[..end];
    let valid = digits == "0"
        || (!digits.starts_with('0') && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    let index: u64 = digits.parse().ok().filter(|_| valid)?;
    // RFC 9535 indexes are I-JSON integers: at most 2^53 - 1.
    if index > (1 << 53) - 1 {
        return None;
    }
    Some((Seg::Index(usize::try_from(index).ok()?), &r[end + 1..]))
}

fn walk(value: &Value, segments: &[Seg], f: &mut dyn FnMut(&Value) -> bool) -> bool {
    let Some((head, rest)) = segments.split_first() else {
        return f(value);
    };
    match (head, value) {
        (Seg::Dotted(key) | Seg::Name(key), Value::Object(map)) => {
            map.get(key).is_some_and(|v| walk(v, rest, f))
        }
        (Seg::Index(i), Value::Array(items)) => items.get(*i).is_some_and(|v| walk(v, rest, f)),
        (Seg::Dotted(step), Value::Array(items)) => match step.parse::<usize>() {
            Ok(i) => items.get(i).is_some_and(|v| walk(v, rest, f)),
            Err(_) => items.iter().any(|item| walk(item, segments, f)),
        },
        // A step left and a string in the way: read into the JSON it holds, if any.
        (_, Value::String(text)) => walk_embedded(text, segments, f),
        _ => false,
    }
}

/// [`walk`] into the JSON a string holds: out of line, so the common walk stays small.
#[cold]
#[inline(never)]
fn walk_embedded(text: &str, segments: &[Seg], f: &mut dyn FnMut(&Value) -> bool) -> bool {
    embedded_json(text).is_some_and(|inner| walk(&inner, segments, f))
}

/// RFC 9535's typing rules (section 2.4.3), which jsonpath-rust parses but does not
/// enforce: a function's result used where it does not fit, a query that is not singular
/// where one value is needed, an unknown function. jsonpath-rust would answer such a query
/// with something; the RFC says it is not a query at all.
mod well_typed {
    use jsonpath_rust::parser::model::{
        Comparable, Comparison, Filter, FilterAtom, FnArg, JpQuery, Literal, Segment, Selector, Test,
        TestFunction,
    };

    /// I-JSON's exact integers: indexes and slice bounds beyond are not valid.
    const MAX: i64 = (1 << 53) - 1;

    pub fn query(q: &JpQuery) -> Result<(), String> {
        segments(&q.segments)
    }

    fn segments(segments: &[Segment]) -> Result<(), String> {
        segments.iter().try_for_each(segment)
    }

    fn segment(s: &Segment) -> Result<(), String> {
        match s {
            Segment::Descendant(inner) => segment(inner),
            Segment::Selector(sel) => selector(sel),
            Segment::Selectors(sels) => sels.iter().try_for_each(selector),
        }
    }

    fn selector(s: &Selector) -> Result<(), String> {
        let in_range = |i: i64| (-MAX..=MAX).contains(&i);
        match s {
            Selector::Index(i) if !in_range(*i) => Err(format!("index {i} is beyond ±(2^53 - 1)")),
            Selector::Slice(a, b, c) if [a, b, c].iter().any(|x| x.is_some_and(|x| !in_range(x))) => {
                Err("a slice bound is beyond ±(2^53 - 1)".into())
            }
            Selector::Filter(f) => filter(f),
            _ => Ok(()),
        }
    }

    fn filter(f: &Filter) -> Result<(), String> {
        match f {
            Filter::Or(parts) | Filter::And(parts) => parts.iter().try_for_each(filter),
            Filter::Atom(FilterAtom::Filter { expr, .. }) => filter(expr),
            Filter::Atom(FilterAtom::Test { expr, .. }) => match &**expr {
                Test::Function(func) => match &**func {
                    TestFunction::Match(..) | TestFunction::Search(..) => function(func),
                    TestFunction::Custom(name, _) => Err(unknown(name)),
                    other => Err(format!(
                        "the result of `{}` must be compared (e.g. `{other} == 1`): alone it is not true or false",
                        name_of(other)
                    )),
                },
                test => self::test(test),
            },
            Filter::Atom(FilterAtom::Comparison(c)) => {
                let (a, b) = sides(c);
                comparable(a)?;
                comparable(b)
            }
        }
    }

    fn sides(c: &Comparison) -> (&Comparable, &Comparable) {
        match c {
            Comparison::Eq(a, b)
            | Comparison::Ne(a, b)
            | Comparison::Gt(a, b)
            | Comparison::Gte(a, b)
            | Comparison::Lt(a, b)
            | Comparison::Lte(a, b) => (a, b),
        }
    }

    fn comparable(c: &Comparable) -> Result<(), String> {
        match c {
            Comparable::Literal(l) => literal(l),
            Comparable::SingularQuery(_) => Ok(()),
            Comparable::Function(func) => match func {
                TestFunction::Length(_) | TestFunction::Count(_) | TestFunction::Value(_) => function(func),
                TestFunction::Custom(name, _) => Err(unknown(name)),
                other => Err(format!(
                    "`{}` is true or false, not a value: it cannot be compared",
                    name_of(other)
                )),
            },
        }
    }

    fn literal(l: &Literal) -> Result<(), String> {
        match l {
            Literal::Int(i) if !(-MAX..=MAX).contains(i) => {
                Err(format!("the integer {i} is beyond ±(2^53 - 1)"))
            }
            _ => Ok(()),
        }
    }

    fn test(t: &Test) -> Result<(), String> {
        match t {
            Test::RelQuery(segs) => relative(segs),
            Test::AbsQuery(q) => query(q),
            Test::Function(func) => function(func),
        }
    }

    /// A function's arguments: `length`, `match` and `search` take values (a literal, a
    /// singular query, a value-typed function); `count` and `value` take a query.
    fn function(func: &TestFunction) -> Result<(), String> {
        let name = name_of(func);
        match func {
            TestFunction::Length(a) => value_arg(name, a),
            TestFunction::Match(a, b) | TestFunction::Search(a, b) => {
                value_arg(name, a)?;
                value_arg(name, b)
            }
            TestFunction::Count(a) | TestFunction::Value(a) => match a {
                FnArg::Test(t) if matches!(**t, Test::RelQuery(_) | Test::AbsQuery(_)) => test(t),
                _ => Err(format!("`{name}` takes a query, such as `@.items[*]`")),
            },
            TestFunction::Custom(n, _) => Err(unknown(n)),
        }
    }

    fn value_arg(name: &str, a: &FnArg) -> Result<(), String> {
        match a {
            FnArg::Literal(l) => literal(l),
            FnArg::Filter(_) => Err(format!("`{name}` takes a value, not a condition")),
            FnArg::Test(t) => match &**t {
                Test::RelQuery(segs) => singular(name, segs),
                Test::AbsQuery(q) => singular(name, &q.segments),
                Test::Function(f) => match &**f {
                    TestFunction::Length(_) | TestFunction::Count(_) | TestFunction::Value(_) => function(f),
                    TestFunction::Custom(n, _) => Err(unknown(n)),
                    other => Err(format!(
                        "`{name}` takes a value; `{}` is true or false",
                        name_of(other)
                    )),
                },
            },
        }
    }

    /// A query that can only ever yield one value: names and indexes, nothing else.
    fn singular(name: &str, segs: &[Segment]) -> Result<(), String> {
        let one = segs
            .iter()
            .all(|s| matches!(s, Segment::Selector(Selector::Name(_) | Selector::Index(_))));
        if one {
            segments(segs)
        } else {
            Err(format!(
                "`{name}` takes one value, and this query can yield several (use names and indexes only)"
            ))
        }
    }

    /// A relative query (`@…`). jsonpath-rust answers one that starts with a filter
    /// (`@[?…]`) with nothing, whatever the data (RFC 9535 section 2.3.5.3 has the
    /// example `$[?@[?@.b]]`): refused, rather than answered wrongly.
    fn relative(segs: &[Segment]) -> Result<(), String> {
        let starts_with_filter = match segs.first() {
            Some(Segment::Selector(Selector::Filter(_))) => true,
            Some(Segment::Selectors(sels)) => sels.iter().any(|s| matches!(s, Selector::Filter(_))),
            _ => false,
        };
        if starts_with_filter {
            return Err(
                "a filter right after `@` (`@[?…]`) is not supported: the JSONPath library answers it wrongly".into(),
            );
        }
        segments(segs)
    }

    fn name_of(f: &TestFunction) -> &str {
        match f {
            TestFunction::Custom(n, _) => n,
            TestFunction::Length(_) => "length",
            TestFunction::Value(_) => "value",
            TestFunction::Count(_) => "count",
            TestFunction::Search(..) => "search",
            TestFunction::Match(..) => "match",
        }
    }

    fn unknown(name: &str) -> String {
        format!("unknown function `{name}` (RFC 9535 has length, count, value, match and search)")
    }
}

#[cfg(test)]
#[path = "path_rfc9535.rs"]
mod rfc9535;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(path: &str, data: &Value) -> Vec<Value> {
        FieldPath::parse(path).unwrap().all(data)
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
    fn paths_read_into_json_held_by_strings() {
        let data = json!({
            "Payload": "{\"tz\":\"Europe/Paris\",\"plan\":\"pro\",\"tags\":[\"a\",\"b\"],\"inner\":\"{\\\"x\\\":1}\"}",
            "list": "[{\"sku\":\"A\"},{\"sku\":\"B\"}]",
            "plain": "{not json",
            "number": "7",
        });
        assert_eq!(values("Payload.tz", &data), [json!("Europe/Paris")]);
        assert_eq!(values("$.Payload.plan", &data), [json!("pro")]);
        assert_eq!(values("Payload.tags.1", &data), [json!("b")]);
        assert_eq!(values("list.sku", &data), [json!("A"), json!("B")]);
        assert_eq!(
            values("Payload.inner.x", &data),
            [json!(1)],
            "a string inside, read into too"
        );
        assert!(values("plain.x", &data).is_empty());
        assert!(values("number.x", &data).is_empty());
        // The field itself is still the string.
        assert_eq!(
            values("Payload", &data)[0]
                .as_str()
                .map(|s| s.starts_with("{\"tz\"")),
            Some(true)
        );

        // Through the slots: the same answers, each field parsed once for the event.
        let mut table = FieldTable::default();
        let mut tz = FieldPath::parse("Payload.tz").unwrap();
        tz.intern(&mut table);
        let mut plan = FieldPath::parse("Payload.plan").unwrap();
        plan.intern(&mut table);
        let slots = Slots::resolve(&table, &data);
        let mut seen = Vec::new();
        for p in [&tz, &plan] {
            p.any_in(&data, Some(&slots), &mut |v| {
                seen.push(v.clone());
                false
            });
        }
        assert_eq!(seen, [json!("Europe/Paris"), json!("pro")]);
        assert!(slots.embedded.get().is_some(), "parsed into the slots' cache");
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

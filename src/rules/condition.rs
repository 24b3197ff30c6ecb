//! Compiled conditions (`when:`) and their evaluation.
//!
//! Evaluation is three-valued: a stateful condition (`after`) asked without history is
//! `Unknown`, and Kleene logic carries that up (`all` with a false part is false even if
//! another part is unknown). A rule whose conditions come out `Unknown` "needs history":
//! `hookflow test` says so instead of guessing.

use std::fmt::{self, Write as _};

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Serialize;
use serde_json::Value;
use serde_yaml::{Mapping, Value as Yaml};

use super::file::RawCorrelation;
use super::stateful::Correlation;
use crate::base::diag::Cx;
use crate::base::duration::Duration;
use crate::base::path::{FieldPath, FieldTable, Slots};
use crate::base::suggest::did_you_mean;
use crate::base::time::{parse_time, parse_time_str};
use crate::base::value::{Bound, Lit, is_empty, num_of, with_text};
use crate::base::yaml::{self, join_index, join_key};
use crate::event::Event;

/// Every operator, in the order the docs list them.
pub const OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "exists",
    "empty",
    "within",
];

/// Answers `after`'s question: whether an event of `c.event` with `key` in `c.same`
/// happened in `[from, to]`. The engine asks its state; without any, it is unknown.
pub trait Seen {
    fn seen(&self, c: &Correlation, key: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Truth;
}

/// No state at all: every `after` is unknown ("needs history").
pub struct NoState;

impl Seen for NoState {
    fn seen(&self, _: &Correlation, _: &str, _: DateTime<Utc>, _: DateTime<Utc>) -> Truth {
        Truth::Unknown
    }
}

/// Kleene truth: `Unknown` is "needs history".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    pub fn from_bool(b: bool) -> Self {
        if b { Truth::True } else { Truth::False }
    }

    pub fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::True, Truth::True) => Truth::True,
            _ => Truth::Unknown,
        }
    }

    pub fn or(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::True, _) | (_, Truth::True) => Truth::True,
            (Truth::False, Truth::False) => Truth::False,
            _ => Truth::Unknown,
        }
    }

    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    /// One operator on one field; a map of several operators compiles to several of these.
    Field {
        path: FieldPath,
        op: Op,
    },
    After(Correlation),
}

#[derive(Clone, Debug)]
pub enum Op {
    Eq(Lit),
    Ne(Lit),
    In(Vec<Lit>),
    NotIn(Vec<Lit>),
    Cmp(CmpOp, Bound, Value),
    Contains(Lit),
    StartsWith(String),
    EndsWith(String),
    Matches(Regex),
    Exists(bool),
    Empty(bool),
    Within(Duration),
}

#[derive(Clone, Copy, Debug)]
pub enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Op {
    /// Whether the operator holds for the values `path` yields in `ev`. Negative operators
    /// (`ne`, `not_in`, `exists: false`) are the negation of their positive twin, so they
    /// hold when the field is missing and fail when any value matches.
    pub fn holds(&self, path: &FieldPath, ev: &Event, slots: Option<&Slots<'_>>) -> bool {
        let data = &ev.data;
        match self {
            Op::Eq(lit) => path.any_in(data, slots, &mut |v| lit.equals(v)),
            Op::Ne(lit) => !path.any_in(data, slots, &mut |v| lit.equals(v)),
            Op::In(lits) => path.any_in(data, slots, &mut |v| lits.iter().any(|l| l.equals(v))),
            Op::NotIn(lits) => !path.any_in(data, slots, &mut |v| lits.iter().any(|l| l.equals(v))),
            Op::Cmp(op, bound, _) => path.any_in(data, slots, &mut |v| {
                bound.compare(v).is_some_and(|o| op.accepts(o))
            }),
            Op::Contains(lit) => path.any_in(data, slots, &mut |v| match v {
                Value::Array(items) => items.iter().any(|item| lit.equals(item)),
                other => with_text(other, |text| {
                    lit.with_text(|needle| text.contains(needle)).unwrap_or(false)
                })
                .unwrap_or(false),
            }),
            Op::StartsWith(s) => path.any_in(data, slots, &mut |v| {
                with_text(v, |t| t.starts_with(s.as_str())).unwrap_or(false)
            }),
            Op::EndsWith(s) => path.any_in(data, slots, &mut |v| {
                with_text(v, |t| t.ends_with(s.as_str())).unwrap_or(false)
            }),
            Op::Matches(re) => path.any_in(data, slots, &mut |v| {
                with_text(v, |t| re.is_match(t)).unwrap_or(false)
            }),
            Op::Exists(want) => path.any_in(data, slots, &mut |_| true) == *want,
            Op::Empty(want) => path.any_in(data, slots, &mut |v| is_empty(v) == *want),
            Op::Within(d) => {
                let oldest = ev.time - d.to_chrono();
                path.any_in(data, slots, &mut |v| parse_time(v).is_some_and(|t| t >= oldest))
            }
        }
    }
}

impl CmpOp {
    fn accepts(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Gt => o == Greater,
            CmpOp::Gte => o != Less,
            CmpOp::Lt => o == Less,
            CmpOp::Lte => o != Greater,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CmpOp::Gt => "gt",
            CmpOp::Gte => "gte",
            CmpOp::Lt => "lt",
            CmpOp::Lte => "lte",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |lits: &[Lit]| Value::Array(lits.iter().map(|l| l.value.clone()).collect());
        match self {
            Op::Eq(l) => write!(f, "eq {}", l.value),
            Op::Ne(l) => write!(f, "ne {}", l.value),
            Op::In(ls) => write!(f, "in {}", list(ls)),
            Op::NotIn(ls) => write!(f, "not_in {}", list(ls)),
            Op::Cmp(op, _, v) => write!(f, "{} {v}", op.name()),
            Op::Contains(l) => write!(f, "contains {}", l.value),
            Op::StartsWith(s) => write!(f, "starts_with {}", Value::from(s.as_str())),
            Op::EndsWith(s) => write!(f, "ends_with {}", Value::from(s.as_str())),
            Op::Matches(re) => write!(f, "matches {}", Value::from(re.as_str())),
            Op::Exists(b) => write!(f, "exists {b}"),
            Op::Empty(b) => write!(f, "empty {b}"),
            Op::Within(d) => write!(f, "within {d}"),
        }
    }
}

impl Cond {
    /// Evaluates against one event; `history` answers `after`.
    pub fn eval(&self, ev: &Event, history: &dyn Seen) -> Truth {
        self.eval_in(ev, None, history)
    }

    /// [`Cond::eval`] with the event's fields looked up once (see [`Slots`]).
    pub fn eval_in(&self, ev: &Event, slots: Option<&Slots<'_>>, history: &dyn Seen) -> Truth {
        match self {
            Cond::All(parts) => {
                let mut acc = Truth::True;
                for part in parts {
                    acc = acc.and(part.eval_in(ev, slots, history));
                    if acc == Truth::False {
                        break;
                    }
                }
                acc
            }
            Cond::Any(parts) => {
                let mut acc = Truth::False;
                for part in parts {
                    acc = acc.or(part.eval_in(ev, slots, history));
                    if acc == Truth::True {
                        break;
                    }
                }
                acc
            }
            Cond::Not(inner) => inner.eval_in(ev, slots, history).not(),
            Cond::Field { path, op } => Truth::from_bool(op.holds(path, ev, slots)),
            Cond::After(c) => match c.key(ev) {
                Some(key) => history.seen(c, &key, ev.time - c.within.to_chrono(), ev.time),
                None => Truth::False,
            },
        }
    }

    /// Gives every field path a slot in `table` (see [`FieldTable`]).
    pub(crate) fn intern(&mut self, table: &mut FieldTable) {
        match self {
            Cond::All(parts) | Cond::Any(parts) => parts.iter_mut().for_each(|p| p.intern(table)),
            Cond::Not(inner) => inner.intern(table),
            Cond::Field { path, .. } => path.intern(table),
            Cond::After(_) => {}
        }
    }

    /// Every `after` correlation in the tree.
    pub fn correlations<'a>(&'a self, out: &mut Vec<&'a Correlation>) {
        match self {
            Cond::All(parts) | Cond::Any(parts) => parts.iter().for_each(|p| p.correlations(out)),
            Cond::Not(inner) => inner.correlations(out),
            Cond::Field { .. } => {}
            Cond::After(c) => out.push(c),
        }
    }

    /// Whether evaluation may consult history.
    pub fn is_stateful(&self) -> bool {
        match self {
            Cond::All(p) | Cond::Any(p) => p.iter().any(Cond::is_stateful),
            Cond::Not(inner) => inner.is_stateful(),
            Cond::Field { .. } => false,
            Cond::After(_) => true,
        }
    }

    /// The evaluation spelled out, one node per condition, with the values seen.
    pub fn explain(&self, ev: &Event, history: &dyn Seen) -> Explain {
        match self {
            Cond::All(parts) | Cond::Any(parts) => {
                let name = if matches!(self, Cond::All(_)) {
                    "all"
                } else {
                    "any"
                };
                Explain {
                    condition: name.to_owned(),
                    result: self.eval(ev, history),
                    saw: None,
                    children: parts.iter().map(|p| p.explain(ev, history)).collect(),
                }
            }
            Cond::Not(inner) => Explain {
                condition: "not".to_owned(),
                result: self.eval(ev, history),
                saw: None,
                children: vec![inner.explain(ev, history)],
            },
            Cond::Field { path, op } => {
                let values = path.all(&ev.data);
                let saw = match values.as_slice() {
                    [] => Saw::Missing,
                    [one] => Saw::Value((*one).clone()),
                    many => Saw::Values(many.iter().map(|v| (*v).clone()).collect()),
                };
                Explain {
                    condition: format!("{} {op}", path.as_str()),
                    result: self.eval(ev, history),
                    saw: Some(saw),
                    children: Vec::new(),
                }
            }
            Cond::After(c) => {
                let key = c.same.first(&ev.data).cloned();
                Explain {
                    condition: format!(
                        "after {} with the same {} within {}",
                        c.event,
                        c.same.as_str(),
                        c.within
                    ),
                    result: self.eval(ev, history),
                    saw: Some(key.map_or(Saw::Missing, Saw::Value)),
                    children: Vec::new(),
                }
            }
        }
    }
}

/// One line of `--explain`.
#[derive(Debug, Serialize)]
pub struct Explain {
    pub condition: String,
    pub result: Truth,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saw: Option<Saw>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Explain>,
}

/// What a condition found in the payload.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Saw {
    #[serde(serialize_with = "missing")]
    Missing,
    Value(Value),
    Values(Vec<Value>),
}

fn missing<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("(missing)")
}

impl fmt::Display for Saw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Saw::Missing => f.write_str("(missing)"),
            Saw::Value(v) => write!(f, "{v}"),
            Saw::Values(vs) => write!(f, "{}", Value::Array(vs.clone())),
        }
    }
}

/// Keys of `when:` that are not field names.
const COMBINATORS: &[&str] = &["all", "any", "not", "after", "absent"];

/// Compiles a `when:` map (implicit `all`). `absent` is only allowed at the top and is
/// handed back through `absent`.
pub(crate) fn compile_when(
    cx: &mut Cx,
    path: &str,
    map: &Mapping,
    mut absent: Option<&mut Option<(String, RawCorrelation)>>,
) -> Vec<Cond> {
    let mut out = Vec::new();
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            cx.at_value(path, "condition keys must be field names (text)");
            continue;
        };
        let here = join_key(path, key);
        match key {
            "all" | "any" => {
                let Some(items) = value.as_sequence() else {
                    cx.at_value(&here, format!("`{key}` takes a list of conditions, e.g. `{key}: [{{ geo: US }}, {{ geo: CA }}]`"));
                    continue;
                };
                let parts = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| {
                        let item_path = join_index(&here, i);
                        match item.as_mapping() {
                            Some(m) => Some(all_of(compile_when(cx, &item_path, m, None))),
                            None => {
                                cx.at_value(&item_path, "each entry must be a map of conditions, e.g. `- { geo: US }`");
                                None
                            }
                        }
                    })
                    .collect();
                out.push(if key == "all" { Cond::All(parts) } else { Cond::Any(parts) });
            }
            "not" => match value.as_mapping() {
                Some(m) => out.push(Cond::Not(Box::new(all_of(compile_when(cx, &here, m, None))))),
                None => cx.at_value(&here, "`not` takes a map of conditions, e.g. `not: { geo: US }`"),
            },
            "after" => {
                if let Some(raw) = correlation(cx, &here, value)
                    && let Some(c) = Correlation::compile(cx, &here, &raw)
                {
                    out.push(Cond::After(c));
                }
            }
            "absent" => match absent.as_deref_mut() {
                Some(slot) => {
                    if let Some(raw) = correlation(cx, &here, value) {
                        *slot = Some((here, raw));
                    }
                }
                None => cx.at_key(&here, "`absent` must be at the top of `when` (or beside it): it decides when the rule fires, not whether a part holds"),
            },
            field => {
                let path = match FieldPath::parse(field) {
                    Ok(p) => p,
                    Err(msg) => {
                        cx.at_key(&here, msg);
                        continue;
                    }
                };
                if let Some(ops) = compile_ops(cx, &here, value) {
                    out.extend(ops.into_iter().map(|op| Cond::Field { path: path.clone(), op }));
                }
            }
        }
    }
    out
}

/// One condition stands for itself; `all` of one is one pointer hop too many.
fn all_of(mut parts: Vec<Cond>) -> Cond {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Cond::All(parts)
    }
}

fn correlation(cx: &mut Cx, path: &str, value: &Yaml) -> Option<RawCorrelation> {
    match yaml::from_value::<RawCorrelation>(value.clone()) {
        Ok(raw) => Some(raw),
        Err(msg) => {
            cx.at_value(
                path,
                format!("{msg}; expected e.g. `{{ event: sent, same: MessageID, within: 24h }}`"),
            );
            None
        }
    }
}

/// A literal (equality), a list (one of), or a map of operators.
fn compile_ops(cx: &mut Cx, path: &str, value: &Yaml) -> Option<Vec<Op>> {
    match value {
        Yaml::Mapping(map) => {
            if map.is_empty() {
                cx.at_value(
                    path,
                    format!("no operator given; use one of: {}", OPERATORS.join(", ")),
                );
                return None;
            }
            let mut ops = Vec::new();
            let mut ok = true;
            for (name, arg) in map {
                let name = name.as_str().unwrap_or_default();
                let here = join_key(path, name);
                match compile_op(cx, &here, name, arg) {
                    Some(op) => ops.push(op),
                    None => ok = false,
                }
            }
            ok.then_some(ops)
        }
        Yaml::Sequence(_) => compile_op(cx, path, "in", value).map(|op| vec![op]),
        other => literal(cx, path, other).map(|l| vec![Op::Eq(l)]),
    }
}

fn compile_op(cx: &mut Cx, path: &str, name: &str, arg: &Yaml) -> Option<Op> {
    let op = match name {
        "eq" => Op::Eq(literal(cx, path, arg)?),
        "ne" => Op::Ne(literal(cx, path, arg)?),
        "in" | "not_in" => {
            let items: Vec<&Yaml> = match arg {
                Yaml::Sequence(items) => items.iter().collect(),
                one => vec![one],
            };
            let mut lits = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                lits.push(literal(cx, &join_index(path, i), item)?);
            }
            if name == "in" {
                Op::In(lits)
            } else {
                Op::NotIn(lits)
            }
        }
        "gt" | "gte" | "lt" | "lte" => {
            let cmp = match name {
                "gt" => CmpOp::Gt,
                "gte" => CmpOp::Gte,
                "lt" => CmpOp::Lt,
                _ => CmpOp::Lte,
            };
            let lit = literal(cx, path, arg)?;
            let bound = match &lit.value {
                Value::String(s) if num_of(&lit.value).is_none() => match parse_time_str(s) {
                    Some(t) => Bound::Time(t),
                    None => {
                        cx.at_value(path, format!("`{name}` needs a number or an RFC 3339 time (e.g. `2026-01-31T00:00:00Z`), found `{s}`"));
                        return None;
                    }
                },
                v => match num_of(v) {
                    Some(n) => Bound::Num(n),
                    None => {
                        cx.at_value(
                            path,
                            format!("`{name}` needs a number or an RFC 3339 time, found {v}"),
                        );
                        return None;
                    }
                },
            };
            Op::Cmp(cmp, bound, lit.value)
        }
        "contains" => Op::Contains(literal(cx, path, arg)?),
        "starts_with" | "ends_with" | "matches" => {
            let text = scalar_text(cx, path, name, arg)?;
            match name {
                "starts_with" => Op::StartsWith(text),
                "ends_with" => Op::EndsWith(text),
                _ => match Regex::new(&text) {
                    Ok(re) => Op::Matches(re),
                    Err(e) => {
                        cx.at_value(
                            path,
                            format!("invalid regular expression: {}", one_line(&e.to_string())),
                        );
                        return None;
                    }
                },
            }
        }
        "exists" | "empty" => match arg {
            Yaml::Bool(b) => {
                if name == "exists" {
                    Op::Exists(*b)
                } else {
                    Op::Empty(*b)
                }
            }
            _ => {
                cx.at_value(path, format!("`{name}` takes `true` or `false`"));
                return None;
            }
        },
        "within" => {
            let text = scalar_text(cx, path, name, arg)?;
            match Duration::parse(&text) {
                Ok(d) => Op::Within(d),
                Err(msg) => {
                    cx.at_value(path, msg);
                    return None;
                }
            }
        }
        unknown => {
            let mut msg = format!("unknown operator `{unknown}`");
            if let Some(best) = did_you_mean(unknown, OPERATORS.iter().copied()) {
                let _ = write!(msg, " — did you mean `{best}`?");
            }
            if COMBINATORS.contains(&unknown) {
                let _ = write!(
                    msg,
                    " (`{unknown}` goes at the level of field names, not inside a field's operators)"
                );
            } else {
                let _ = write!(
                    msg,
                    " (operators: {}; to compare with a whole object use `eq: {{…}}`)",
                    OPERATORS.join(", ")
                );
            }
            cx.at_key(path, msg);
            return None;
        }
    };
    Some(op)
}

fn literal(cx: &mut Cx, path: &str, value: &Yaml) -> Option<Lit> {
    let json = match yaml::yaml_to_json(value) {
        Ok(j) => j,
        Err(msg) => {
            cx.at_value(path, msg);
            return None;
        }
    };
    Some(Lit::new(substitute_strings(cx, path, json)?))
}

/// `${env:…}` in every string of a literal.
pub(crate) fn substitute_strings(cx: &mut Cx, path: &str, value: Value) -> Option<Value> {
    Some(match value {
        Value::String(s) => Value::String(cx.env(path, &s)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| substitute_strings(cx, &join_index(path, i), v))
                .collect::<Option<_>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let here = join_key(path, &k);
                    substitute_strings(cx, &here, v).map(|v| (k, v))
                })
                .collect::<Option<_>>()?,
        ),
        other => other,
    })
}

fn scalar_text(cx: &mut Cx, path: &str, name: &str, arg: &Yaml) -> Option<String> {
    let text = match arg {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        _ => {
            cx.at_value(path, format!("`{name}` takes text"));
            return None;
        }
    };
    cx.env(path, &text)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[path = "condition_tests.rs"]
mod tests;

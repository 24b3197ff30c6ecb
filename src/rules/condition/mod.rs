//! Compiled conditions (`when:`) and their evaluation; `compile` builds them from YAML.
//!
//! Evaluation is three-valued: a stateful condition (`after`) asked without history is
//! `Unknown`, and Kleene logic carries that up (`all` with a false part is false even if
//! another part is unknown). A rule whose conditions come out `Unknown` "needs history":
//! `hookflow test` says so instead of guessing.

mod compile;

pub use crate::base::local_time::LocalTime;

use std::fmt;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Serialize;
use serde_json::Value;

pub(crate) use compile::compile_when;

use super::stateful::Correlation;
use crate::base::duration::Duration;
use crate::base::path::{FieldPath, FieldTable, Slots};
use crate::base::time::parse_time;
use crate::base::value::{Bound, Lit, is_empty, with_text};
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

    /// What hookflow knows of the event's contact (`lists`, `props`, `suppressed`,
    /// `sent`), for `contact.*` conditions; `None`: not known here ("needs state").
    fn contact(&self) -> Option<Value> {
        None
    }
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
    /// The event's time within hours and days in a zone (the contact's).
    LocalTime(Box<LocalTime>),
    /// One operator on what hookflow knows of the contact (`contact.lists`, …): `path`
    /// is read in the contact's view, not the event.
    Contact {
        path: FieldPath,
        op: Op,
    },
}

/// The paths a `contact.` condition may read, for messages.
pub const CONTACT_FIELDS: &[&str] = &["lists", "props.NAME", "suppressed", "sent.KIND.PERIOD"];

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
        self.holds_on(path, &ev.data, ev.time, slots)
    }

    /// [`Op::holds`] on any document (a contact's view), at time `now` (for `within`).
    pub fn holds_on(
        &self,
        path: &FieldPath,
        data: &Value,
        now: DateTime<Utc>,
        slots: Option<&Slots<'_>>,
    ) -> bool {
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
                let oldest = now - d.to_chrono();
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
            Cond::LocalTime(t) => Truth::from_bool(t.holds(ev.time, &ev.data)),
            Cond::Contact { path, op } => match history.contact() {
                Some(view) => Truth::from_bool(op.holds_on(path, &view, ev.time, None)),
                None => Truth::Unknown,
            },
        }
    }

    /// Gives every field path a slot in `table` (see [`FieldTable`]).
    pub(crate) fn intern(&mut self, table: &mut FieldTable) {
        match self {
            Cond::All(parts) | Cond::Any(parts) => parts.iter_mut().for_each(|p| p.intern(table)),
            Cond::Not(inner) => inner.intern(table),
            Cond::Field { path, .. } => path.intern(table),
            Cond::After(_) | Cond::LocalTime(_) | Cond::Contact { .. } => {}
        }
    }

    /// Every `after` correlation in the tree.
    pub fn correlations<'a>(&'a self, out: &mut Vec<&'a Correlation>) {
        match self {
            Cond::All(parts) | Cond::Any(parts) => parts.iter().for_each(|p| p.correlations(out)),
            Cond::Not(inner) => inner.correlations(out),
            Cond::Field { .. } | Cond::LocalTime(_) | Cond::Contact { .. } => {}
            Cond::After(c) => out.push(c),
        }
    }

    /// Whether evaluation may consult history.
    pub fn is_stateful(&self) -> bool {
        match self {
            Cond::All(p) | Cond::Any(p) => p.iter().any(Cond::is_stateful),
            Cond::Not(inner) => inner.is_stateful(),
            Cond::Field { .. } | Cond::LocalTime(_) => false,
            Cond::After(_) | Cond::Contact { .. } => true,
        }
    }

    /// Whether it reads the contact (`contact.*`).
    pub fn reads_contact(&self) -> bool {
        match self {
            Cond::All(p) | Cond::Any(p) => p.iter().any(Cond::reads_contact),
            Cond::Not(inner) => inner.reads_contact(),
            Cond::Contact { .. } => true,
            Cond::Field { .. } | Cond::LocalTime(_) | Cond::After(_) => false,
        }
    }

    /// The `contact.sent.KIND.PERIOD` counts it reads: (kind, period as written, period).
    pub fn sent_counts(&self, out: &mut Vec<(String, String, Duration)>) {
        match self {
            Cond::All(p) | Cond::Any(p) => p.iter().for_each(|c| c.sent_counts(out)),
            Cond::Not(inner) => inner.sent_counts(out),
            Cond::Contact { path, .. } => {
                let parts: Vec<&str> = path.as_str().split('.').collect();
                if let ["sent", kind, period] = parts.as_slice()
                    && let Ok(d) = Duration::parse(period)
                    && !out.iter().any(|(k, p, _)| k == kind && p == period)
                {
                    out.push(((*kind).to_owned(), (*period).to_owned(), d));
                }
            }
            Cond::Field { .. } | Cond::LocalTime(_) | Cond::After(_) => {}
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
                let saw = Saw::of(&path.all(&ev.data));
                Explain {
                    condition: format!("{} {op}", path.as_str()),
                    result: self.eval(ev, history),
                    saw: Some(saw),
                    children: Vec::new(),
                }
            }
            Cond::After(c) => {
                let key = c.same.first(&ev.data);
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
            Cond::Contact { path, op } => {
                let view = history.contact();
                let saw = match view.as_ref().map(|v| path.all(v)) {
                    None => Saw::Value(Value::from("(the contact is read when the event is stored)")),
                    Some(values) => Saw::of(&values),
                };
                Explain {
                    condition: format!("contact.{} {op}", path.as_str()),
                    result: self.eval(ev, history),
                    saw: Some(saw),
                    children: Vec::new(),
                }
            }
            Cond::LocalTime(t) => {
                let moment = t.seen(ev.time, &ev.data);
                Explain {
                    condition: t.to_string(),
                    result: Truth::from_bool(moment.holds),
                    saw: Some(Saw::Value(Value::String(moment.text))),
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

impl Saw {
    /// What a path yielded: nothing, one value, or several.
    fn of<V: std::borrow::Borrow<Value>>(values: &[V]) -> Self {
        match values {
            [] => Saw::Missing,
            [one] => Saw::Value(one.borrow().clone()),
            many => Saw::Values(many.iter().map(|v| v.borrow().clone()).collect()),
        }
    }
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

#[cfg(test)]
mod tests;

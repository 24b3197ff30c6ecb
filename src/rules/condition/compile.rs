//! Conditions as written in YAML, compiled: field names into paths, literals into
//! comparable values, operators checked and built (regexes compiled, durations parsed),
//! every problem reported at its place and compiling carried on.

use std::fmt::Write as _;

use regex::Regex;
use serde_json::Value;
use serde_yaml::{Mapping, Value as Yaml};

use super::{CmpOp, Cond, OPERATORS, Op};
use crate::base::diag::Cx;
use crate::base::duration::Duration;
use crate::base::path::FieldPath;
use crate::base::suggest::did_you_mean;
use crate::base::time::parse_time_str;
use crate::base::value::{Bound, Lit, num_of};
use crate::base::yaml::{self, join_index, join_key};
use crate::rules::file::RawCorrelation;
use crate::rules::stateful::Correlation;

/// Keys of `when:` that are not field names.
const COMBINATORS: &[&str] = &["all", "any", "not", "after", "absent", "local_time"];

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
            "local_time" => {
                if let Some(t) = super::LocalTime::compile(cx, &here, value, "local_time") {
                    out.push(Cond::LocalTime(Box::new(t)));
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
            field if field.starts_with("contact.") => {
                let rest = &field["contact.".len()..];
                let Some(path) = contact_path(cx, &here, rest) else {
                    continue;
                };
                if let Some(ops) = compile_ops(cx, &here, value) {
                    out.extend(ops.into_iter().map(|op| Cond::Contact { path: path.clone(), op }));
                }
            }
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

/// A path in the contact's view: `lists`, `props.NAME`, `suppressed`, `sent.KIND.PERIOD`.
fn contact_path(cx: &mut Cx, here: &str, rest: &str) -> Option<FieldPath> {
    let parts: Vec<&str> = rest.split('.').collect();
    let ok = match parts.as_slice() {
        ["lists"] | ["suppressed"] => true,
        ["props", name, ..] => !name.is_empty(),
        ["sent", kind, period] => {
            if !crate::base::caps::COUNTABLE.contains(kind) {
                cx.at_key(
                    here,
                    format!(
                        "`contact.sent.{kind}…`: `{kind}` is not an action kind (kinds: {})",
                        crate::base::caps::COUNTABLE.join(", ")
                    ),
                );
                return None;
            }
            if let Err(e) = Duration::parse(period) {
                cx.at_key(
                    here,
                    format!("`contact.sent.{kind}.{period}`: {e}; write e.g. `contact.sent.{kind}.1d`"),
                );
                return None;
            }
            true
        }
        _ => false,
    };
    if !ok {
        let mut msg = format!("`contact.{rest}` is not something hookflow knows of a contact");
        let first = parts.first().copied().unwrap_or_default();
        if let Some(best) = did_you_mean(first, ["lists", "props", "suppressed", "sent"]) {
            let _ = write!(msg, " — did you mean `contact.{best}`?");
        }
        let _ = write!(
            msg,
            " (it has: contact.{})",
            super::CONTACT_FIELDS.join(", contact.")
        );
        cx.at_key(here, msg);
        return None;
    }
    match FieldPath::parse(rest) {
        Ok(p) => Some(p),
        Err(msg) => {
            cx.at_key(here, msg);
            None
        }
    }
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

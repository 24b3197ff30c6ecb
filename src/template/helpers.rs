//! The helpers templates may call: ours (`domain`, `lower`, `default`, `date`, …) as plain
//! functions of their arguments, and the list of Handlebars' own, for did-you-mean.

use chrono::{DateTime, Utc};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason, ScopedJson,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::base::time::parse_time;

/// What `urlencode` escapes: everything but RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Helpers we add, for the docs and for "did you mean".
pub const HELPERS: &[&str] = &[
    "domain",
    "lower",
    "upper",
    "default",
    "json",
    "urlencode",
    "date",
    "percent",
];

/// Helpers handlebars itself provides.
pub(super) const BUILTIN_HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte", "and",
    "or", "not", "len",
];

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HelperError(String);

/// A helper as a plain function of its parameters (`None` = missing from the event).
type HelperFn = fn(&[Option<&Value>]) -> Result<Value, String>;

struct FnHelper {
    name: &'static str,
    func: HelperFn,
    /// Whether a missing parameter is allowed (only `default`).
    tolerates_missing: bool,
}

impl HelperDef for FnHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let mut args = Vec::with_capacity(h.params().len());
        for p in h.params() {
            if p.is_value_missing() {
                if !self.tolerates_missing {
                    return Err(RenderErrorReason::MissingVariable(p.relative_path().cloned()).into());
                }
                args.push(None);
            } else {
                args.push(Some(p.value()));
            }
        }
        (self.func)(&args).map(ScopedJson::Derived).map_err(|m| {
            RenderErrorReason::NestedError(Box::new(HelperError(format!("{}: {m}", self.name)))).into()
        })
    }
}

pub(super) fn register_helpers(reg: &mut Handlebars<'static>) {
    let table: [(&'static str, HelperFn, bool); 8] = [
        ("domain", helper_domain, false),
        (
            "lower",
            |a| text_arg(a, 0).map(|s| Value::String(s.to_lowercase())),
            false,
        ),
        (
            "upper",
            |a| text_arg(a, 0).map(|s| Value::String(s.to_uppercase())),
            false,
        ),
        ("default", helper_default, true),
        ("json", |a| Ok(Value::String(arg(a, 0)?.to_string())), false),
        (
            "urlencode",
            |a| text_arg(a, 0).map(|s| Value::String(utf8_percent_encode(&s, UNRESERVED).to_string())),
            false,
        ),
        ("date", helper_date, false),
        ("percent", helper_percent, false),
    ];
    for (name, func, tolerates_missing) in table {
        reg.register_helper(
            name,
            Box::new(FnHelper {
                name,
                func,
                tolerates_missing,
            }),
        );
    }
}

fn arg<'a>(args: &[Option<&'a Value>], i: usize) -> Result<&'a Value, String> {
    args.get(i)
        .copied()
        .flatten()
        .ok_or_else(|| format!("argument {} is required", i + 1))
}

fn text_arg(args: &[Option<&Value>], i: usize) -> Result<String, String> {
    match arg(args, i)? {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        v @ (Value::Number(_) | Value::Bool(_)) => Ok(v.to_string()),
        _ => Err("expects text, found a list or an object".into()),
    }
}

/// `{{domain email}}`: the part after the last `@`, lower-cased.
fn helper_domain(args: &[Option<&Value>]) -> Result<Value, String> {
    let s = text_arg(args, 0)?;
    let domain = s
        .rsplit_once('@')
        .map(|(_, d)| d)
        .ok_or_else(|| format!("`{s}` is not an email address"))?;
    Ok(Value::String(domain.trim().to_lowercase()))
}

/// `{{default name "there"}}`: the value unless missing, null or `""`.
fn helper_default(args: &[Option<&Value>]) -> Result<Value, String> {
    if args.len() != 2 {
        return Err("takes a value and a fallback, e.g. `{{default name \"there\"}}`".into());
    }
    match args[0] {
        Some(v) if !v.is_null() && v != &Value::String(String::new()) => Ok(v.clone()),
        _ => Ok(args[1].cloned().unwrap_or(Value::Null)),
    }
}

/// `{{date time}}` → `2015-05-31`; `{{date time "%d %b %Y %H:%M"}}` for another format.
/// Accepts unix seconds and RFC 3339; prints UTC.
fn helper_date(args: &[Option<&Value>]) -> Result<Value, String> {
    let value = arg(args, 0)?;
    let time: DateTime<Utc> = parse_time(value).ok_or_else(|| format!("{value} is not a time"))?;
    let format = match args.get(1).copied().flatten() {
        Some(Value::String(f)) => f.as_str(),
        Some(_) => return Err("the format must be text such as \"%Y-%m-%d\"".into()),
        None => "%Y-%m-%d",
    };
    let items: Vec<_> = chrono::format::StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, chrono::format::Item::Error)) {
        return Err(format!("invalid date format `{format}`"));
    }
    // The zone, if given, is where the time is written: `%H` is the hour there, `%Z` its
    // abbreviation (CET or CEST, by the date).
    let text = match args.get(2).copied().flatten() {
        Some(Value::String(name)) => {
            let tz = crate::base::time::zone(name)?;
            time.with_timezone(&tz)
                .format_with_items(items.into_iter())
                .to_string()
        }
        Some(other) => {
            return Err(format!(
                "the time zone must be a name such as \"Europe/Paris\", not {other}"
            ));
        }
        None => time.format_with_items(items.into_iter()).to_string(),
    };
    Ok(Value::String(text))
}

/// `{{percent ratio}}` → `62%`; `{{percent ratio 1}}` → `62.5%`.
fn helper_percent(args: &[Option<&Value>]) -> Result<Value, String> {
    let value = arg(args, 0)?;
    let ratio = crate::base::value::num_of(value)
        .map(|n| match n {
            crate::base::value::Num::Int(i) => i as f64,
            crate::base::value::Num::Float(f) => f,
        })
        .ok_or_else(|| format!("{value} is not a number"))?;
    let decimals = match args.get(1).copied().flatten() {
        Some(v) => v.as_u64().filter(|d| *d <= 6).ok_or("decimals must be 0 to 6")? as usize,
        None => 0,
    };
    Ok(Value::String(format!("{:.*}%", decimals, ratio * 100.0)))
}

//! How a condition's literal compares to a payload value. Providers are loose with types
//! (Mailjet has sent `mj_campaign_id` as `"7173"` and as `7173`), so comparison coerces
//! where a marketer would expect it and nowhere else:
//!
//! - numbers and numeric strings compare as numbers; integers compare exactly (i128), so
//!   `MessageID` values above 2^53 never collide;
//! - `true`/`false` equal the strings `"true"`/`"false"`;
//! - `null` equals only `null`;
//! - text operators (`contains`, `starts_with`, `ends_with`, `matches`) read numbers and
//!   booleans as their JSON text; they are case-sensitive;
//! - lists and objects compare structurally.
//!
//! Nothing here allocates: number text is formatted into a stack buffer.

use std::cmp::Ordering;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::base::time::parse_time;

/// A number as compared: exact integers, else a float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn cmp(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// The number a value stands for: a JSON number or a strictly numeric string.
pub fn num_of(value: &Value) -> Option<Num> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Num::Int(i.into()))
            } else if let Some(u) = n.as_u64() {
                Some(Num::Int(u.into()))
            } else if let Ok(i) = n.as_str().parse::<i128>() {
                // Numbers are kept as received (serde_json's `arbitrary_precision`): an id
                // beyond 64 bits still compares exactly.
                Some(Num::Int(i))
            } else {
                n.as_f64().map(Num::Float)
            }
        }
        Value::String(s) => num_of_str(s),
        _ => None,
    }
}

/// `"7173"`, `"-2"`, `"1.5"`, `"1e3"`; not `""`, `" 7"`, `"inf"`, `"0x10"`, `"+1"`.
pub fn num_of_str(s: &str) -> Option<Num> {
    let bytes = s.as_bytes();
    let digits_start = usize::from(bytes.first() == Some(&b'-'));
    if !bytes.get(digits_start).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    if let Ok(i) = s.parse::<i128>() {
        return Some(Num::Int(i));
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite()).map(Num::Float)
}

/// A literal from a rule, with its number and boolean readings worked out at load time.
#[derive(Clone, Debug)]
pub struct Lit {
    pub value: Value,
    num: Option<Num>,
    boolean: Option<bool>,
}

impl Lit {
    pub fn new(value: Value) -> Self {
        let num = num_of(&value);
        let boolean = match &value {
            Value::Bool(b) => Some(*b),
            Value::String(s) => bool_of_str(s),
            _ => None,
        };
        Self { value, num, boolean }
    }

    /// Whether a payload value equals this literal, under the coercions above.
    pub fn equals(&self, field: &Value) -> bool {
        match (&self.value, field) {
            (Value::Null, f) => f.is_null(),
            (_, Value::Null) => false,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Array(_) | Value::Object(_), f) => &self.value == f,
            (_, Value::Bool(b)) => self.boolean == Some(*b),
            (Value::Bool(b), Value::String(s)) => bool_of_str(s) == Some(*b),
            (_, Value::Number(_) | Value::String(_)) => match (self.num, num_of(field)) {
                (Some(a), Some(b)) => a.cmp(b) == Some(Ordering::Equal),
                _ => false,
            },
            _ => false,
        }
    }

    /// The literal's text for text operators.
    pub fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> Option<R> {
        with_text(&self.value, f)
    }
}

fn bool_of_str(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Calls `f` with the text of a string, number or boolean; `None` for other types.
pub fn with_text<R>(value: &Value, f: impl FnOnce(&str) -> R) -> Option<R> {
    match value {
        Value::String(s) => Some(f(s)),
        Value::Bool(true) => Some(f("true")),
        Value::Bool(false) => Some(f("false")),
        Value::Number(n) => {
            let mut buf = StackText::default();
            write!(buf, "{n}").ok()?;
            Some(f(buf.as_str()))
        }
        _ => None,
    }
}

/// The bound of `gt`/`gte`/`lt`/`lte`: a number, or a point in time.
#[derive(Clone, Debug)]
pub enum Bound {
    Num(Num),
    Time(DateTime<Utc>),
}

impl Bound {
    /// How the payload value orders against the bound; `None` when incomparable.
    pub fn compare(&self, field: &Value) -> Option<Ordering> {
        match self {
            Bound::Num(b) => num_of(field)?.cmp(*b),
            Bound::Time(b) => Some(parse_time(field)?.cmp(b)),
        }
    }
}

/// null, `""`, `[]` and `{}`.
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Correlation keys compare as text, so a `MessageID` sent as a number matches the same
/// id sent as a string.
pub fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::Null | Value::Array(_) | Value::Object(_) => None,
        other => with_text(other, str::to_owned),
    }
}

/// A small fixed buffer for formatting numbers without touching the heap. 64 bytes hold
/// any u64/i64 and any f64 in serde_json's shortest form.
struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        Self { buf: [0; 64], len: 0 }
    }
}

impl StackText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lit(v: Value) -> Lit {
        Lit::new(v)
    }

    #[test]
    fn numbers_and_numeric_strings_are_equal() {
        assert!(lit(json!(7173)).equals(&json!("7173")));
        assert!(lit(json!("7173")).equals(&json!(7173)));
        assert!(lit(json!(1.5)).equals(&json!("1.5")));
        assert!(lit(json!(2)).equals(&json!(2.0)));
        assert!(!lit(json!(7173)).equals(&json!("7173 ")));
        assert!(!lit(json!(7173)).equals(&json!("x7173")));
        assert!(!lit(json!("abc")).equals(&json!(0)));
    }

    #[test]
    fn huge_integers_compare_exactly() {
        let id: Value = serde_json::from_str("19421777396190490").unwrap();
        let next: Value = serde_json::from_str("19421777396190491").unwrap();
        assert!(lit(id.clone()).equals(&id));
        assert!(!lit(id.clone()).equals(&next));
        assert!(lit(json!("19421777396190490")).equals(&id));
        assert!(!lit(json!("19421777396190491")).equals(&id));
        // 2^53 + 1 and 2^53 are the same f64: exactness must not depend on floats.
        let a: Value = serde_json::from_str("9007199254740993").unwrap();
        assert_eq!(9007199254740993_u64 as f64, 9007199254740992_u64 as f64);
        assert!(!lit(json!(9007199254740992_u64)).equals(&a));
        assert!(!lit(json!("9007199254740992")).equals(&a));
        let u64max: Value = serde_json::from_str("18446744073709551615").unwrap();
        assert!(lit(json!("18446744073709551615")).equals(&u64max));
    }

    #[test]
    fn booleans_nulls_and_structures() {
        assert!(lit(json!(true)).equals(&json!(true)));
        assert!(lit(json!(true)).equals(&json!("true")));
        assert!(lit(json!("false")).equals(&json!(false)));
        assert!(!lit(json!(true)).equals(&json!(1)));
        assert!(lit(json!(null)).equals(&json!(null)));
        assert!(!lit(json!(null)).equals(&json!("")));
        assert!(!lit(json!("")).equals(&json!(null)));
        assert!(!lit(json!(0)).equals(&json!(null)));
        assert!(lit(json!([1, 2])).equals(&json!([1, 2])));
        assert!(!lit(json!({"a": 1})).equals(&json!({"a": 2})));
    }

    #[test]
    fn strict_numeric_strings() {
        for bad in ["", " 7", "inf", "NaN", "0x10", "+1", "1,5", "-", "1e999"] {
            assert_eq!(num_of_str(bad), None, "{bad:?}");
        }
        assert_eq!(num_of_str("-2"), Some(Num::Int(-2)));
        assert_eq!(num_of_str("1e3"), Some(Num::Float(1000.0)));
    }

    #[test]
    fn text_of_numbers_without_allocation() {
        let id: Value = serde_json::from_str("19421777396190490").unwrap();
        assert_eq!(with_text(&id, |s| s.starts_with("1942")), Some(true));
        assert_eq!(with_text(&json!(-1.25), str::to_owned), Some("-1.25".into()));
        assert_eq!(with_text(&json!(null), |_| ()), None);
        assert_eq!(key_text(&json!(12)), key_text(&json!("12")));
    }

    #[test]
    fn bounds_compare_numbers_and_times() {
        let n = Bound::Num(Num::Int(10));
        assert_eq!(n.compare(&json!(11)), Some(Ordering::Greater));
        assert_eq!(n.compare(&json!("9")), Some(Ordering::Less));
        assert_eq!(n.compare(&json!("ten")), None);
        let t = Bound::Time(parse_time(&json!("2015-05-31T00:00:00Z")).unwrap());
        assert_eq!(t.compare(&json!(1433103519)), Some(Ordering::Greater));
        assert_eq!(
            t.compare(&json!("2015-05-30T23:59:59+00:00")),
            Some(Ordering::Less)
        );
        assert_eq!(t.compare(&json!(true)), None);
    }
}

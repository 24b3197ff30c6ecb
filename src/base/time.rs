//! Times as providers write them: unix seconds (number or numeric string, fractions
//! allowed) or RFC 3339 text, within years 1 to 9999.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

/// Reads a timestamp the way providers send them: unix seconds (number or numeric string,
/// fractions allowed) or RFC 3339 text.
pub fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    let time = match value {
        Value::Number(n) => {
            if let Some(secs) = n.as_i64() {
                Utc.timestamp_opt(secs, 0).single()
            } else {
                let f = n.as_f64()?;
                from_fractional_secs(f)
            }
        }
        Value::String(s) => parse_time_str(s),
        _ => None,
    };
    time.filter(in_range)
}

/// Years 1 to 9999: what RFC 3339 can write. Beyond, adding a rule's `within` to the time
/// could leave the range of dates the clock library handles.
fn in_range(t: &DateTime<Utc>) -> bool {
    (1..=9999).contains(&chrono::Datelike::year(t))
}

/// The text form of [`parse_time`].
pub fn parse_time_str(s: &str) -> Option<DateTime<Utc>> {
    let time = if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        Some(t.with_timezone(&Utc))
    } else if let Ok(secs) = s.parse::<i64>() {
        Utc.timestamp_opt(secs, 0).single()
    } else if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        from_fractional_secs(s.parse().ok()?)
    } else {
        None
    };
    time.filter(in_range)
}

fn from_fractional_secs(f: f64) -> Option<DateTime<Utc>> {
    if !f.is_finite() || f.abs() > 1e12 {
        return None;
    }
    let secs = f.floor();
    let nanos = ((f - secs) * 1e9) as u32;
    Utc.timestamp_opt(secs as i64, nanos).single()
}

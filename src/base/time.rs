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

/// An IANA time zone by name (`Europe/Paris`, `America/New_York`, `UTC`), or why not,
/// with the closest name when it looks like a typo.
pub fn zone(name: &str) -> Result<chrono_tz::Tz, String> {
    let name = name.trim();
    name.parse::<chrono_tz::Tz>().or_else(|_| {
        // Names are case-sensitive in the database; an author's `europe/paris` means it.
        let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
        if let Some(z) = chrono_tz::TZ_VARIANTS
            .iter()
            .find(|z| z.name().eq_ignore_ascii_case(name))
        {
            return Ok(*z);
        }
        Err(match crate::base::suggest::did_you_mean(name, names) {
            Some(s) => format!("unknown time zone `{name}`; did you mean `{s}`?"),
            None => format!("unknown time zone `{name}`: use an IANA name such as `Europe/Paris`"),
        })
    })
}

#[cfg(test)]
mod zone_tests {
    use super::zone;

    #[test]
    fn zones_by_iana_name_with_a_did_you_mean() {
        assert_eq!(zone("Europe/Paris").unwrap().name(), "Europe/Paris");
        assert_eq!(zone("europe/paris").unwrap().name(), "Europe/Paris");
        assert_eq!(zone("UTC").unwrap().name(), "UTC");
        let e = zone("Europe/Pari").unwrap_err();
        assert!(e.contains("did you mean `Europe/Paris`"), "{e}");
        let e = zone("Mars/Olympus").unwrap_err();
        assert!(e.contains("unknown time zone `Mars/Olympus`"), "{e}");
    }
}

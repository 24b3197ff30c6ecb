//! Human durations as rule authors write them: `30s`, `15m`, `24h`, `7d`, or a sum such as
//! `1h30m`. Kept as our own type (not `humantime`) so the accepted syntax is exactly what
//! the docs and the JSON Schema promise, and errors can say what was expected.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative span of time with second precision.
/// The longest duration accepted: 5,200 weeks (100 years).
const MAX_SECS: u64 = 5200 * 604_800;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    secs: u64,
}

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self { secs }
    }

    pub const fn as_secs(self) -> u64 {
        self.secs
    }

    pub fn to_chrono(self) -> chrono::TimeDelta {
        i64::try_from(self.secs)
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .unwrap_or(chrono::TimeDelta::MAX)
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.secs)
    }

    /// Parses `30s`, `15m`, `24h`, `7d`, `2w` and sums of them (`1h30m`), up to 100 years:
    /// event times plus any duration then stay well inside the calendar's range.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(
                "empty duration; expected a number and a unit, e.g. `30s`, `15m`, `24h`, `7d`".into(),
            );
        }
        // `2 days`, `3days`, `1 hour`: the words people write, answered with the spelling.
        let number_len = text.bytes().take_while(u8::is_ascii_digit).count();
        if number_len > 0
            && let Some(letter) = unit_letter(text[number_len..].trim())
        {
            return Err(format!(
                "duration `{text}`: write `{}{letter}`",
                &text[..number_len]
            ));
        }
        let mut total: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!(
                    "invalid duration `{text}`; expected a number and a unit, e.g. `30s`, `15m`, `24h`, `7d`"
                ));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("duration `{text}` is too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let scale = match unit {
                "s" | "sec" | "secs" => 1,
                "m" | "min" | "mins" => 60,
                "h" => 3600,
                "d" => 86_400,
                "w" => 604_800,
                "" => {
                    return Err(format!(
                        "duration `{text}` needs a unit: s, m, h, d or w (e.g. `{number}s`)"
                    ));
                }
                other => {
                    return Err(format!(
                        "unknown unit `{other}` in duration `{text}`; use s, m, h, d or w"
                    ));
                }
            };
            total = number
                .checked_mul(scale)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(|| format!("duration `{text}` is too large"))?;
        }
        if total > MAX_SECS {
            return Err(format!(
                "duration `{text}` is too long; at most 100 years (`5200w`)"
            ));
        }
        Ok(Self { secs: total })
    }
}

impl fmt::Display for Duration {
    /// Prints the largest exact unit, except that up to 72 hours stay in hours (people
    /// write `24h` and `48h`, rarely `1d`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.secs;
        let units: &[(&str, u64)] = if s <= 72 * 3600 {
            &[("h", 3600), ("m", 60)]
        } else {
            &[("d", 86_400), ("h", 3600), ("m", 60)]
        };
        for &(unit, size) in units {
            if s != 0 && s.is_multiple_of(size) {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `30s`, `15m`, `24h` or `7d`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit; write e.g. `{v}s`, `{v}m`, `{v}h` or `{v}d`"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                self.visit_u64(v.unsigned_abs())
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+(s|m|h|d|w))+$",
            "description": "A duration: a number and a unit (s, m, h, d, w), e.g. `30s`, `15m`, `24h`, `7d`, `1h30m`.",
            "examples": ["30s", "15m", "24h", "7d"]
        })
    }
}

/// The unit letter for a unit written out (`days`, `hour`, `mins`), for the error.
fn unit_letter(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_lowercase().as_str() {
        "second" | "seconds" => "s",
        "minute" | "minutes" => "m",
        "hr" | "hrs" | "hour" | "hours" => "h",
        "day" | "days" => "d",
        "week" | "weeks" => "w",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(Duration::parse("30s").unwrap().as_secs(), 30);
        assert_eq!(Duration::parse("15m").unwrap().as_secs(), 900);
        assert_eq!(Duration::parse("24h").unwrap().as_secs(), 86_400);
        assert_eq!(Duration::parse("7d").unwrap().as_secs(), 604_800);
        assert_eq!(Duration::parse("1h30m").unwrap().as_secs(), 5400);
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert!(Duration::parse("24").unwrap_err().contains("needs a unit"));
        assert_eq!(
            Duration::parse("2 days").unwrap_err(),
            "duration `2 days`: write `2d`"
        );
        assert!(Duration::parse("3hours").unwrap_err().contains("write `3h`"));
        assert!(Duration::parse("1 Week").unwrap_err().contains("write `1w`"));
        assert!(Duration::parse("3y").unwrap_err().contains("unknown unit `y`"));
        assert!(Duration::parse("h").unwrap_err().contains("invalid duration"));
        assert!(Duration::parse("").is_err());
        assert!(Duration::parse("99999999999999999999d").is_err());
        assert!(
            Duration::parse("5201w")
                .unwrap_err()
                .contains("at most 100 years")
        );
        assert_eq!(Duration::parse("5200w").unwrap().as_secs(), MAX_SECS);
    }

    /// No duration, however built, panics on its way into date arithmetic.
    #[test]
    fn any_duration_converts_without_panicking() {
        for secs in [0, 1, MAX_SECS, u64::MAX / 1000, i64::MAX as u64, u64::MAX] {
            let _ = Duration::from_secs(secs).to_chrono();
        }
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        assert_eq!(Duration::from_secs(86_400).to_string(), "24h");
        assert_eq!(Duration::from_secs(172_800).to_string(), "48h");
        assert_eq!(Duration::from_secs(30 * 86_400).to_string(), "30d");
        assert_eq!(Duration::from_secs(5400).to_string(), "90m");
        assert_eq!(Duration::from_secs(0).to_string(), "0s");
        assert_eq!(Duration::from_secs(61).to_string(), "61s");
    }
}

//! Hours and days *in the contact's time zone* — a zone named in the rule, or read from
//! the event (`{{Payload.tz}}`), with a fallback for events whose zone is missing or
//! unknown. One definition for both of its uses: the `local_time` condition (was the
//! event's time within them?) and an action's `send_window` (when do they next open?).

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;
use serde_yaml::Value as Yaml;

use crate::base::diag::Cx;
use crate::base::path::FieldPath;
use crate::base::suggest::did_you_mean;
use crate::base::time::zone;
use crate::base::yaml::{self, join_index, join_key};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `local_time: { tz, fallback, between, days }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    tz: String,
    fallback: Option<String>,
    between: Option<Vec<String>>,
    days: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
enum Zone {
    Named(Tz),
    /// Read from the event: `tz: "{{Payload.tz}}"`.
    Field(FieldPath),
}

#[derive(Clone, Debug)]
pub struct LocalTime {
    zone: Zone,
    fallback: Option<Tz>,
    /// From (included) to (excluded); a start after the end spans midnight.
    between: Option<(NaiveTime, NaiveTime)>,
    /// Monday first.
    days: Option<[bool; 7]>,
}

/// Where the judged moment fell, for explanations.
pub struct Moment {
    pub holds: bool,
    /// `Fri 09:12 Europe/Paris`, and why the fallback was used, if it was.
    pub text: String,
}

impl LocalTime {
    /// Compiles `{ tz, fallback, between, days }` at `path`; `what` names it in errors
    /// (`local_time`, `send_window`).
    pub(crate) fn compile(cx: &mut Cx, path: &str, value: &Yaml, what: &str) -> Option<Self> {
        let raw: Raw = match yaml::from_value(value.clone()) {
            Ok(raw) => raw,
            Err(msg) => {
                cx.at_value(path, format!("{what}: {msg}"));
                return None;
            }
        };
        let literal_zone = |cx: &mut Cx, at: &str, name: &str| match zone(name) {
            Ok(tz) => Some(tz),
            Err(msg) => {
                cx.at_value(at, msg);
                None
            }
        };
        let tz_at = join_key(path, "tz");
        let zone = match raw
            .tz
            .trim()
            .strip_prefix("{{")
            .and_then(|r| r.strip_suffix("}}"))
        {
            Some(inner) => match FieldPath::parse(inner.trim()) {
                Ok(p) => Zone::Field(p),
                Err(msg) => {
                    cx.at_value(
                        &tz_at,
                        format!("`tz` is a zone name or one field, e.g. \"{{{{Payload.tz}}}}\": {msg}"),
                    );
                    return None;
                }
            },
            None if raw.tz.contains("{{") => {
                cx.at_value(
                    &tz_at,
                    "`tz` is a zone name or one field, e.g. \"{{Payload.tz}}\", with nothing around it",
                );
                return None;
            }
            None => Zone::Named(literal_zone(cx, &tz_at, &raw.tz)?),
        };
        let fallback = match &raw.fallback {
            Some(name) => Some(literal_zone(cx, &join_key(path, "fallback"), name)?),
            None if matches!(zone, Zone::Field(_)) => {
                cx.at_value(
                    &tz_at,
                    "an event's zone may be missing or unknown: give a `fallback:` zone too, e.g. `fallback: Europe/Paris`",
                );
                return None;
            }
            None => None,
        };
        let between = match &raw.between {
            None => None,
            Some(pair) => {
                let at = join_key(path, "between");
                let [from, to] = pair.as_slice() else {
                    cx.at_value(&at, "`between` takes two times, e.g. [\"08:00\", \"21:00\"]");
                    return None;
                };
                let time =
                    |cx: &mut Cx, i: usize, text: &str| match NaiveTime::parse_from_str(text.trim(), "%H:%M")
                    {
                        Ok(t) => Some(t),
                        Err(_) => {
                            cx.at_value(
                                &join_index(&at, i),
                                format!("`{text}` is not a time of day; write it as HH:MM, e.g. \"08:00\""),
                            );
                            None
                        }
                    };
                let (from, to) = (time(cx, 0, from), time(cx, 1, to));
                let (from, to) = (from?, to?);
                if from == to {
                    cx.at_value(
                        &at,
                        "`between` needs two different times (the start is included, the end is not)",
                    );
                    return None;
                }
                Some((from, to))
            }
        };
        let days = match &raw.days {
            None => None,
            Some(names) => {
                let mut days = [false; 7];
                let at = join_key(path, "days");
                let mut ok = true;
                for (i, name) in names.iter().enumerate() {
                    let lower = name.trim().to_ascii_lowercase();
                    match DAYS.iter().position(|d| lower == *d) {
                        Some(d) => days[d] = true,
                        None => {
                            let mut msg = format!("`{name}` is not a day");
                            if let Some(best) = did_you_mean(&lower, DAYS) {
                                msg.push_str(&format!("; did you mean `{best}`?"));
                            }
                            msg.push_str(" (days: mon tue wed thu fri sat sun)");
                            cx.at_value(&join_index(&at, i), msg);
                            ok = false;
                        }
                    }
                }
                if !ok {
                    return None;
                }
                if days.iter().all(|on| !on) {
                    cx.at_value(&at, "`days` names no day, so it would never hold; list some, e.g. [mon, tue, wed, thu, fri]");
                    return None;
                }
                Some(days)
            }
        };
        if between.is_none() && days.is_none() {
            cx.at_value(
                path,
                format!("{what} needs `between: [\"08:00\", \"21:00\"]`, `days: [mon, …]` or both"),
            );
            return None;
        }
        Some(Self {
            zone,
            fallback,
            between,
            days,
        })
    }

    /// Whether `time`, in the zone of `data` (an event's payload), is within the hours
    /// and on the days.
    pub fn holds(&self, time: DateTime<Utc>, data: &Value) -> bool {
        self.judge(time, data, false).holds
    }

    /// [`LocalTime::holds`], with where the moment fell, and why the fallback was used.
    pub fn seen(&self, time: DateTime<Utc>, data: &Value) -> Moment {
        self.judge(time, data, true)
    }

    /// These hours and days in the zone of `data`, resolved once (a job keeps them);
    /// `None` without a zone.
    pub fn resolve(&self, data: &Value) -> Option<Window> {
        Some(Window {
            tz: self.zone_of(data).0?,
            between: self.between,
            days: self.days,
        })
    }

    /// The zone for `data`, and why the fallback was taken, if it was.
    fn zone_of(&self, data: &Value) -> (Option<Tz>, Option<String>) {
        match &self.zone {
            Zone::Named(tz) => (Some(*tz), None),
            Zone::Field(path) => match path.first(data) {
                Some(Value::String(name)) => match zone(&name) {
                    Ok(tz) => (Some(tz), None),
                    Err(_) => (self.fallback, Some(format!("zone `{name}` unknown"))),
                },
                Some(other) => (
                    self.fallback,
                    Some(format!("{} is {other}, not a zone", path.as_str())),
                ),
                None => (self.fallback, Some(format!("no {}", path.as_str()))),
            },
        }
    }

    fn judge(&self, time: DateTime<Utc>, data: &Value, say: bool) -> Moment {
        let (tz, why) = self.zone_of(data);
        let Some(tz) = tz else {
            return Moment {
                holds: false,
                text: why.unwrap_or_default(),
            };
        };
        let window = Window {
            tz,
            between: self.between,
            days: self.days,
        };
        let text = if say {
            let local = time.with_timezone(&tz);
            let mut text = format!("{} {}", local.format("%a %H:%M"), tz.name());
            if let Some(why) = why {
                text.push_str(&format!(" (the fallback: {why})"));
            }
            text
        } else {
            String::new()
        };
        Moment {
            holds: window.contains(time),
            text,
        }
    }
}

/// Hours and days in one zone, resolved for one event: what a held job keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub tz: Tz,
    between: Option<(NaiveTime, NaiveTime)>,
    days: Option<[bool; 7]>,
}

impl Window {
    /// Whether `time` falls in the window: on one of its days and within its hours (for
    /// hours across midnight, the small hours belong to the day before).
    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        let local = time.with_timezone(&self.tz);
        let t = local.time().with_nanosecond(0).unwrap_or(local.time());
        let weekday = local.weekday().num_days_from_monday() as usize;
        let day_on = |d: usize| self.days.is_none_or(|days| days[d]);
        match self.between {
            None => day_on(weekday),
            Some((from, to)) if from < to => day_on(weekday) && from <= t && t < to,
            Some((from, to)) => (t >= from && day_on(weekday)) || (t < to && day_on((weekday + 6) % 7)),
        }
    }

    /// `time` if it falls in the window, else when the window next opens: its start on
    /// the next allowed day, as the zone's clocks say then (a start skipped by the change
    /// to summer time opens at the first moment after it). `None` if it never opens.
    pub fn next_open(&self, time: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.contains(time) {
            return Some(time);
        }
        let start = self.between.map_or(NaiveTime::MIN, |(from, _)| from);
        let today = time.with_timezone(&self.tz).date_naive();
        // Every weekday once, and today again a week on.
        (0..=8).find_map(|d| {
            let opens = first_moment_at_or_after(&self.tz, (today + Duration::days(d)).and_time(start))?;
            (opens > time && self.contains(opens)).then_some(opens)
        })
    }

    /// Reads [`Window::to_json`] back (from a stored job); `None` if it is not one.
    pub fn from_json(value: &Value) -> Option<Self> {
        let tz = zone(value.get("tz")?.as_str()?).ok()?;
        let between = match value.get("between") {
            Some(Value::Array(pair)) => match pair.as_slice() {
                [Value::String(from), Value::String(to)] => Some((
                    NaiveTime::parse_from_str(from, "%H:%M").ok()?,
                    NaiveTime::parse_from_str(to, "%H:%M").ok()?,
                )),
                _ => return None,
            },
            _ => None,
        };
        let days = match value.get("days") {
            Some(Value::Array(names)) => {
                let mut days = [false; 7];
                for name in names {
                    days[DAYS.iter().position(|d| Some(*d) == name.as_str())?] = true;
                }
                Some(days)
            }
            _ => None,
        };
        Some(Self { tz, between, days })
    }

    /// `{tz, between, days}`, as a held job keeps it and the audit trail shows it.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("tz".into(), Value::from(self.tz.name()));
        if let Some((from, to)) = self.between {
            let hhmm = |t: NaiveTime| t.format("%H:%M").to_string();
            m.insert("between".into(), serde_json::json!([hhmm(from), hhmm(to)]));
        }
        if let Some(days) = self.days {
            let on: Vec<&str> = DAYS
                .iter()
                .zip(days)
                .filter(|(_, on)| *on)
                .map(|(d, _)| *d)
                .collect();
            m.insert("days".into(), serde_json::json!(on));
        }
        Value::Object(m)
    }
}

/// The first instant whose local time in `tz` is `local`, or the first after it where the
/// clocks skip it (the hour lost to summer time); the earlier where they repeat it.
fn first_moment_at_or_after(tz: &Tz, local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    (0..=180).find_map(|minutes| {
        tz.from_local_datetime(&(local + Duration::minutes(minutes)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("local_time")?;
        if let Some((from, to)) = self.between {
            write!(f, " between {} and {}", from.format("%H:%M"), to.format("%H:%M"))?;
        }
        if let Some(days) = self.days {
            let on: Vec<&str> = DAYS
                .iter()
                .zip(days)
                .filter(|(_, on)| *on)
                .map(|(d, _)| *d)
                .collect();
            write!(f, " on {}", on.join(" "))?;
        }
        match &self.zone {
            Zone::Named(tz) => write!(f, " in {}", tz.name()),
            Zone::Field(p) => write!(
                f,
                " in {{{{{}}}}} (else {})",
                p.as_str(),
                self.fallback.map_or("none", |z| z.name())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::yaml::Positions;

    fn window(yaml: &str, data: Value) -> Window {
        let value: Yaml = serde_yaml::from_str(yaml).unwrap();
        let positions = Positions::build(yaml);
        let mut cx = Cx::new("t.yaml", &positions);
        let t = LocalTime::compile(&mut cx, "", &value, "send_window")
            .unwrap_or_else(|| panic!("{:?}", cx.errors));
        t.resolve(&data).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_window_next_opens_at_the_contacts_morning_in_three_zones() {
        let spec = r#"{ between: ["09:00", "20:00"], tz: "{{tz}}", fallback: UTC }"#;
        // Friday 2027-01-15 02:00 UTC.
        let now = at("2027-01-15T02:00:00Z");
        let tokyo = window(spec, serde_json::json!({"tz": "Asia/Tokyo"}));
        assert_eq!(tokyo.next_open(now), Some(now), "11:00 in Tokyo: open");
        let paris = window(spec, serde_json::json!({"tz": "Europe/Paris"}));
        assert_eq!(
            paris.next_open(now),
            Some(at("2027-01-15T08:00:00Z")),
            "03:00 → 09:00 CET"
        );
        let new_york = window(spec, serde_json::json!({"tz": "America/New_York"}));
        assert_eq!(
            new_york.next_open(now),
            Some(at("2027-01-15T14:00:00Z")),
            "21:00 the day before → 09:00 EST"
        );
        let unknown = window(spec, serde_json::json!({"tz": "Nowhere"}));
        assert_eq!(
            unknown.next_open(now),
            Some(at("2027-01-15T09:00:00Z")),
            "the fallback, UTC"
        );
        // After the window closes: the next morning.
        assert_eq!(
            paris.next_open(at("2027-01-15T19:00:00Z")),
            Some(at("2027-01-16T08:00:00Z"))
        );
    }

    #[test]
    fn summer_time_and_weekdays() {
        // Paris changes to summer time on Sunday 2027-03-28: 09:00 is 08:00 UTC on the
        // Saturday and 07:00 UTC on the Sunday.
        let paris = window(
            r#"{ tz: Europe/Paris, between: ["09:00", "20:00"] }"#,
            Value::Null,
        );
        assert_eq!(
            paris.next_open(at("2027-03-27T20:30:00Z")),
            Some(at("2027-03-28T07:00:00Z"))
        );
        // A start the change skips (02:30 does not exist that night) opens at 03:00 CEST.
        let small = window(
            r#"{ tz: Europe/Paris, between: ["02:30", "05:00"] }"#,
            Value::Null,
        );
        assert_eq!(
            small.next_open(at("2027-03-27T23:00:00Z")),
            Some(at("2027-03-28T01:00:00Z"))
        );
        // Weekdays only: Friday evening waits for Monday.
        let office = window(
            r#"{ tz: Europe/Paris, between: ["09:00", "18:00"], days: [mon, tue, wed, thu, fri] }"#,
            Value::Null,
        );
        assert_eq!(
            office.next_open(at("2027-01-15T18:30:00Z")),
            Some(at("2027-01-18T08:00:00Z"))
        );
        // Across midnight: Friday 23:00 is in a Friday-night window, Saturday 01:00 too.
        let nights = window(
            r#"{ tz: UTC, between: ["22:00", "02:00"], days: [fri] }"#,
            Value::Null,
        );
        assert!(nights.contains(at("2027-01-15T23:00:00Z")));
        assert!(nights.contains(at("2027-01-16T01:00:00Z")));
        assert!(!nights.contains(at("2027-01-16T23:00:00Z")));
        assert_eq!(
            nights.next_open(at("2027-01-16T03:00:00Z")),
            Some(at("2027-01-22T22:00:00Z"))
        );
        assert_eq!(Window::from_json(&nights.to_json()), Some(nights));
        assert_eq!(Window::from_json(&office.to_json()), Some(office));
    }
}

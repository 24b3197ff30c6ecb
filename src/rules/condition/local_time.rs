//! `local_time`: whether the event happened within hours and on days *in the contact's
//! time zone* — a zone named in the rule, or read from the event (`{{Payload.tz}}`),
//! with a fallback for events whose zone is missing or unknown.
//!
//! The event's own time is what is judged (as `within` and windows judge it), so the
//! offline test and the server agree, whenever the event is decided.

use chrono::{Datelike, NaiveTime, Timelike};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_yaml::Value as Yaml;

use crate::base::diag::Cx;
use crate::base::path::FieldPath;
use crate::base::suggest::did_you_mean;
use crate::base::time::zone;
use crate::base::yaml::{self, join_index, join_key};
use crate::event::Event;

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
    pub(crate) fn compile(cx: &mut Cx, path: &str, value: &Yaml) -> Option<Self> {
        let raw: Raw = match yaml::from_value(value.clone()) {
            Ok(raw) => raw,
            Err(msg) => {
                cx.at_value(path, format!("local_time: {msg}"));
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
                Some(days)
            }
        };
        if between.is_none() && days.is_none() {
            cx.at_value(
                path,
                "local_time needs `between: [\"08:00\", \"21:00\"]`, `days: [mon, …]` or both",
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

    /// Whether the event's time, in its zone, is within the hours and on the days.
    pub fn holds(&self, ev: &Event) -> bool {
        self.judge(ev, false).holds
    }

    /// [`LocalTime::holds`], with where the moment fell, and why the fallback was used.
    pub fn seen(&self, ev: &Event) -> Moment {
        self.judge(ev, true)
    }

    fn judge(&self, ev: &Event, say: bool) -> Moment {
        let (tz, why) = match &self.zone {
            Zone::Named(tz) => (Some(*tz), None),
            Zone::Field(path) => match path.first(&ev.data) {
                Some(serde_json::Value::String(name)) => match zone(&name) {
                    Ok(tz) => (Some(tz), None),
                    Err(_) => (self.fallback, Some(format!("zone `{name}` unknown"))),
                },
                Some(other) => (
                    self.fallback,
                    Some(format!("{} is {other}, not a zone", path.as_str())),
                ),
                None => (self.fallback, Some(format!("no {}", path.as_str()))),
            },
        };
        let Some(tz) = tz else {
            return Moment {
                holds: false,
                text: why.unwrap_or_default(),
            };
        };
        let local = ev.time.with_timezone(&tz);
        let day_ok = self
            .days
            .is_none_or(|days| days[local.weekday().num_days_from_monday() as usize]);
        let time = local.time().with_nanosecond(0).unwrap_or(local.time());
        let time_ok = self.between.is_none_or(|(from, to)| {
            if from < to {
                from <= time && time < to
            } else {
                time >= from || time < to
            }
        });
        let text = if say {
            let mut text = format!("{} {}", local.format("%a %H:%M"), tz.name());
            if let Some(why) = why {
                text.push_str(&format!(" (the fallback: {why})"));
            }
            text
        } else {
            String::new()
        };
        Moment {
            holds: day_ok && time_ok,
            text,
        }
    }
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

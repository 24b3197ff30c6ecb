//! Stateful rule parts: `after`/`absent` correlations, `threshold` windows and `once`.
//!
//! They are answered by a [`History`]. Offline (`hookflow test --history`, inline
//! `tests: history:`) that is a [`MemoryHistory`] of example events; the server answers
//! from its store. Without any history the answer is "unknown", and rules say they need it.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::Rule;
use super::condition::Truth;
use super::file::{RawCorrelation, RawOnce, RawThreshold};
use crate::base::diag::Cx;
use crate::base::duration::Duration;
use crate::base::path::FieldPath;
use crate::base::value::key_text;
use crate::base::yaml::join_key;
use crate::event::{Event, content_id, parse_time};
use crate::template::{Templates, Tpl};

/// What the engine remembers about earlier (and, for `absent`, later) events.
pub trait History {
    /// Whether an event of type `kind` whose `same` field has the value `key` was seen
    /// with a time in `[from, to]`.
    fn seen(&self, kind: &str, same: &FieldPath, key: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Truth;

    /// Counts of a threshold's events in group `group` with a time in `(from, to]`, not
    /// counting the event being evaluated. `None` (the default) when unknown.
    fn window(
        &self,
        _rule: &Rule,
        _threshold: &Threshold,
        _group: &str,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
        _group_of: &dyn Fn(&Event) -> Option<String>,
    ) -> Option<WindowCounts> {
        None
    }

    /// The quiet periods `rule` is in at `before`: `once` keys and threshold groups that
    /// fired earlier, with when they may fire again (the same keys the server stores:
    /// `once:KEY`, `threshold:GROUP`). `None` (the default) when unknown: then nothing
    /// holds the rule back.
    fn quiet(&self, _rule: &Rule, _t: &Templates, _before: DateTime<Utc>) -> Option<Quiet> {
        None
    }
}

/// Keys (`once:KEY`, `threshold:GROUP`) and the time until which each holds its rule back.
pub type Quiet = std::collections::HashMap<String, DateTime<Utc>>;

/// No memory at all: every stateful question is unknown.
pub struct NoHistory;

impl History for NoHistory {
    fn seen(&self, _: &str, _: &FieldPath, _: &str, _: DateTime<Utc>, _: DateTime<Utc>) -> Truth {
        Truth::Unknown
    }
}

/// Example events around the one being evaluated.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    events: Vec<Event>,
}

impl MemoryHistory {
    /// Builds history around `base` from entries written as events plus `ago: 2h` (before
    /// `base`) or `later: 3h` (after it); without either, the entry's own `time` field, else
    /// the same time as `base`. `times: 12` repeats an entry (for thresholds).
    pub fn around(base: &Event, entries: &[Value]) -> Result<Self, String> {
        let mut events = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let Value::Object(map) = entry else {
                return Err(format!("history entry #{} must be an event object", i + 1));
            };
            let mut data = map.clone();
            let ago =
                take_duration(&mut data, "ago").map_err(|e| format!("history entry #{}: {e}", i + 1))?;
            let later =
                take_duration(&mut data, "later").map_err(|e| format!("history entry #{}: {e}", i + 1))?;
            let times = match data.remove("times") {
                None => 1,
                Some(Value::Number(n)) if n.as_u64().is_some_and(|t| (1..=100_000).contains(&t)) => {
                    n.as_u64().unwrap_or(1)
                }
                Some(other) => {
                    return Err(format!(
                        "history entry #{}: `times` must be a count from 1 to 100000, found {other}",
                        i + 1
                    ));
                }
            };
            let kind = match data.get("event") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(format!("history entry #{} needs `event: TYPE`", i + 1)),
            };
            let time = match (ago, later) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "history entry #{}: give `ago` or `later`, not both",
                        i + 1
                    ));
                }
                (Some(d), None) => base.time - d.to_chrono(),
                (None, Some(d)) => base.time + d.to_chrono(),
                (None, None) => data.get("time").and_then(parse_time).unwrap_or(base.time),
            };
            let data = Value::Object(data);
            let event = Event {
                id: content_id(&base.source, &data),
                source: base.source.clone(),
                kind,
                time,
                data,
            };
            events.extend(std::iter::repeat_n(event, times as usize));
        }
        Ok(Self { events })
    }
}

fn take_duration(map: &mut Map<String, Value>, key: &str) -> Result<Option<Duration>, String> {
    match map.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Duration::parse(&s).map(Some).map_err(|e| format!("`{key}`: {e}")),
        Some(other) => Err(format!("`{key}` must be a duration such as `2h`, found {other}")),
    }
}

impl History for MemoryHistory {
    fn seen(&self, kind: &str, same: &FieldPath, key: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Truth {
        Truth::from_bool(self.events.iter().any(|e| {
            e.kind == kind
                && e.time >= from
                && e.time <= to
                && same.any(&e.data, &mut |v| key_text(v).as_deref() == Some(key))
        }))
    }

    fn window(
        &self,
        rule: &Rule,
        threshold: &Threshold,
        group: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group_of: &dyn Fn(&Event) -> Option<String>,
    ) -> Option<WindowCounts> {
        let mut counts = WindowCounts::default();
        for e in &self.events {
            if e.time > from
                && e.time <= to
                && rule.listens_to(&e.kind)
                && group_of(e).as_deref() == Some(group)
            {
                counts.add(threshold, &e.kind);
            }
        }
        Some(counts)
    }

    /// Replays the earlier events through `rule` in time order, as the server would have
    /// seen them, and keeps the quiet periods each firing started.
    fn quiet(&self, rule: &Rule, t: &Templates, before: DateTime<Utc>) -> Option<Quiet> {
        let mut quiet = Quiet::new();
        if rule.once.is_none() && rule.threshold.is_none() {
            return Some(quiet);
        }
        let mut earlier: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| e.time < before && rule.sees(e))
            .collect();
        earlier.sort_by_key(|e| e.time);
        for e in earlier {
            let d = rule.decide_replayed(e, self, t, &quiet);
            if let (true, Some(th), Some(w)) = (d.cooldown_starts, &rule.threshold, &d.window) {
                let cooldown = th.cooldown.unwrap_or(th.window);
                quiet.insert(format!("threshold:{}", w.group), e.time + cooldown.to_chrono());
            }
            if let (Truth::True, Some(once), Some(key)) = (d.fires, &rule.once, &d.once_key) {
                quiet.insert(format!("once:{key}"), e.time + once.period.to_chrono());
            }
        }
        Some(quiet)
    }
}

/// `after`/`absent`: another event type sharing a field value, within a period.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub event: String,
    pub same: FieldPath,
    pub within: Duration,
}

impl Correlation {
    pub(crate) fn compile(cx: &mut Cx, path: &str, raw: &RawCorrelation) -> Option<Self> {
        let same = match FieldPath::parse(&raw.same) {
            Ok(p) => p,
            Err(msg) => {
                cx.at_value(&join_key(path, "same"), msg);
                return None;
            }
        };
        if raw.within.as_secs() == 0 {
            cx.at_value(&join_key(path, "within"), "`within` must be longer than 0s");
            return None;
        }
        Some(Self {
            event: raw.event.clone(),
            same,
            within: raw.within,
        })
    }

    /// The correlation key of `ev`, when it has one.
    pub fn key(&self, ev: &Event) -> Option<String> {
        self.same.first(&ev.data).and_then(key_text)
    }

    /// `after`: a matching event was seen at most `within` before `ev`.
    pub fn after_holds(&self, ev: &Event, history: &dyn History) -> Truth {
        match self.key(ev) {
            Some(key) => history.seen(
                &self.event,
                &self.same,
                &key,
                ev.time - self.within.to_chrono(),
                ev.time,
            ),
            None => Truth::False,
        }
    }

    /// `absent`: no matching event arrives within `within` after `ev`.
    pub fn absent_holds(&self, ev: &Event, history: &dyn History) -> Truth {
        match self.key(ev) {
            Some(key) => history
                .seen(
                    &self.event,
                    &self.same,
                    &key,
                    ev.time,
                    ev.time + self.within.to_chrono(),
                )
                .not(),
            None => Truth::False,
        }
    }
}

#[derive(Debug)]
pub struct Threshold {
    pub window: Duration,
    pub group_by: Option<Tpl>,
    /// Numerator types; `None` = every type the rule listens to.
    pub count: Option<Vec<String>>,
    /// Denominator types for a ratio; `None` = a plain count.
    pub of: Option<Vec<String>>,
    pub limit: Limit,
    pub min_events: u64,
    pub cooldown: Option<Duration>,
}

#[derive(Clone, Copy, Debug)]
pub enum Limit {
    Above(f64),
    Below(f64),
}

/// Events in one group's window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Events of the counted types.
    pub count: u64,
    /// Events of the denominator types (a ratio), or all the rule's events (a count).
    pub total: u64,
}

impl WindowCounts {
    pub fn add(&mut self, threshold: &Threshold, kind: &str) {
        if threshold
            .count
            .as_ref()
            .is_none_or(|c| c.iter().any(|k| k == kind))
        {
            self.count += 1;
        }
        if threshold.of.as_ref().is_none_or(|o| o.iter().any(|k| k == kind)) {
            self.total += 1;
        }
    }
}

impl Threshold {
    pub(crate) fn compile(
        cx: &mut Cx,
        t: &mut Templates,
        path: &str,
        raw: &RawThreshold,
        on: Option<&[String]>,
    ) -> Option<Self> {
        let mut ok = true;
        if raw.window.as_secs() == 0 {
            cx.at_value(&join_key(path, "window"), "`window` must be longer than 0s");
            ok = false;
        }
        let group_by = match &raw.group_by {
            Some(g) => crate::actions::template(cx, t, &join_key(path, "group_by"), g, false).map(Some),
            None => Some(None),
        };
        let (count, of) = match (&raw.count, &raw.ratio) {
            (Some(_), Some(_)) => {
                cx.at_key(&join_key(path, "count"), "give `count` or `ratio`, not both");
                return None;
            }
            (Some(c), None) => (Some(c.items.clone()), None),
            (None, Some(r)) => (
                Some(r.count.items.clone()),
                r.of.as_ref().map(|o| o.items.clone()),
            ),
            (None, None) => (None, None),
        };
        let types_path = |which: &str| {
            if raw.ratio.is_some() {
                join_key(&join_key(path, "ratio"), which)
            } else {
                join_key(path, which)
            }
        };
        for (which, list) in [("count", &count), ("of", &of)] {
            for kind in list.iter().flatten() {
                if on.is_some_and(|on| !on.contains(kind)) {
                    cx.at_value(
                        &types_path(which),
                        format!("this rule never sees `{kind}` events: add `{kind}` to its `on:` list"),
                    );
                    ok = false;
                }
            }
        }
        let limit = match (raw.above, raw.below) {
            (Some(a), None) => Limit::Above(a),
            (None, Some(b)) => Limit::Below(b),
            _ => {
                cx.at_value(path, "give exactly one of `above` or `below`");
                return None;
            }
        };
        let bound = match limit {
            Limit::Above(v) | Limit::Below(v) => v,
        };
        if of.is_some() && !(0.0..=1.0).contains(&bound) {
            let key = if raw.above.is_some() { "above" } else { "below" };
            cx.at_value(
                &join_key(path, key),
                format!("a ratio is between 0 and 1: write {} for {bound}%", bound / 100.0),
            );
            ok = false;
        }
        Some(Self {
            window: raw.window,
            group_by: group_by?,
            count,
            of,
            limit,
            min_events: raw.min_events.unwrap_or(0),
            cooldown: raw.cooldown,
        })
        .filter(|_| ok)
    }

    /// The measured value: the ratio, or the count.
    pub fn value(&self, c: WindowCounts) -> f64 {
        if self.of.is_some() {
            if c.total == 0 {
                0.0
            } else {
                c.count as f64 / c.total as f64
            }
        } else {
            c.count as f64
        }
    }

    /// Whether the window is over (or under) the limit.
    pub fn crossed(&self, c: WindowCounts) -> bool {
        if c.total < self.min_events {
            return false;
        }
        let v = self.value(c);
        match self.limit {
            Limit::Above(l) => v > l,
            Limit::Below(l) => v < l,
        }
    }

    /// The template variables a firing threshold adds: `group count total ratio`.
    pub fn vars(&self, group: &str, c: WindowCounts) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("group".into(), Value::from(group));
        m.insert("count".into(), Value::from(c.count));
        m.insert("total".into(), Value::from(c.total));
        let ratio = if c.total == 0 {
            0.0
        } else {
            c.count as f64 / c.total as f64
        };
        m.insert("ratio".into(), Value::from(ratio));
        m
    }
}

/// `once: { per, for }`.
#[derive(Debug)]
pub struct Once {
    pub per: Tpl,
    pub period: Duration,
}

impl Once {
    pub(crate) fn compile(cx: &mut Cx, t: &mut Templates, path: &str, raw: &RawOnce) -> Option<Self> {
        let per = crate::actions::template(cx, t, &join_key(path, "per"), &raw.per, false)?;
        if raw.period.as_secs() == 0 {
            cx.at_value(&join_key(path, "for"), "`for` must be longer than 0s");
            return None;
        }
        Some(Self {
            per,
            period: raw.period,
        })
    }
}

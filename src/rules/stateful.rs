//! Stateful rule parts as compiled: `after`/`absent` correlations, `threshold` windows and
//! `once`. What they mean — how a window is counted, when a quiet period starts — is
//! decided in one place, `engine::decide`, for the server and offline alike.

use serde_json::{Map, Value};

use super::file::{RawCorrelation, RawOnce, RawThreshold};
use crate::base::diag::Cx;
use crate::base::duration::Duration;
use crate::base::path::FieldPath;
use crate::base::value::key_text;
use crate::base::yaml::join_key;
use crate::event::Event;
use crate::template::{Templates, Tpl};

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
        self.same.find_map(&ev.data, key_text)
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

    /// The length of a window bucket: a window is cut into 60 (each at least a second),
    /// so state grows with buckets, not with events. An event counts while its bucket
    /// starts within the window; offline and in the server alike.
    pub fn bucket_ms(&self) -> i64 {
        (self.window.as_secs() as i64 * 1000 / 60).max(1000)
    }

    /// The start of the bucket holding time `t` (unix ms).
    pub fn bucket_of(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.bucket_ms())
    }

    /// What the events per type in a window add up to.
    pub fn counts(&self, per_kind: &[(String, u64)]) -> WindowCounts {
        let mut counts = WindowCounts::default();
        for (kind, n) in per_kind {
            let mut one = WindowCounts::default();
            one.add(self, kind);
            counts.count += one.count * n;
            counts.total += one.total * n;
        }
        counts
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
        if !raw.per.contains("{{") {
            // `per: email` is the word "email", the same for every event: the rule would
            // fire once for everyone and then be quiet for `for`.
            cx.at_value(
                &join_key(path, "per"),
                format!(
                    "once.per `{per}` has no `{{{{ }}}}`, so every event shares the one key `{per}` and the rule fires once for everyone; write `per: \"{{{{{per}}}}}\"` for one key per value of the field",
                    per = raw.per
                ),
            );
            return None;
        }
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

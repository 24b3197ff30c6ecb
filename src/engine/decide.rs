//! The one algorithm for stateful rules. For an event the rule sees, in order: its `when`
//! (an `after` asks the state whether the correlated event was seen), then `absent`
//! (start a timer, unless the cancelling event already came), `threshold` (count the
//! event into its window, compare, respect the cooldown) and `once` (respect, then set,
//! the key's quiet period). Everything it reads or writes goes through [`State`]; the
//! server runs it inside the commit transaction, `hookflow test` over a `MemoryState`.

use std::cell::RefCell;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Candidate;
use crate::event::Event;
use crate::rules::stateful::{Correlation, Limit};
use crate::rules::{Rule, RuleSet, Seen, Truth};
use crate::store::StoreError;
use crate::store::state::{DueTimer, State, Timer};

/// How a rule came out for an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It fires now.
    Fires,
    /// It does not: a condition, a window, a cooldown or `once` holds it back.
    Holds,
    /// An `absent` timer started: it fires when due, unless cancelled.
    Waits,
    /// A timer was cancelled by a matching event.
    Cancelled,
    /// It could not be decided (a key that does not render).
    Error,
}

/// One rule's decision for one event, with the state it used: what `test --explain`
/// prints and what the server keeps with the event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RuleDecision {
    pub rule: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "StateUsed::is_empty")]
    pub state: StateUsed,
    /// Template variables a firing adds (a threshold's `group count total ratio`).
    #[serde(skip)]
    pub vars: Option<Map<String, Value>>,
}

/// The state behind a stateful decision.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct StateUsed {
    /// What each `after` asked, and the answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<AfterAnswer>,
    /// `absent`: when the rule fires unless a matching event arrives first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absent_due_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowState>,
    /// `once`: the rendered key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub once_key: Option<String>,
    /// Until when a cooldown or `once` keeps the rule quiet (set or found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_until: Option<String>,
}

impl StateUsed {
    pub fn is_empty(&self) -> bool {
        *self == StateUsed::default()
    }
}

/// An `after` question and its answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AfterAnswer {
    pub event: String,
    pub same: String,
    pub key: String,
    pub from: String,
    pub to: String,
    pub seen: bool,
}

/// A threshold's window, summed for one event (the event included).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WindowState {
    pub group: String,
    /// Events in buckets starting in `(from, to]` count.
    pub from: String,
    pub to: String,
    /// Events of the counted types.
    pub count: u64,
    /// Events of the denominator types (a ratio), or all the rule's events (a count).
    pub total: u64,
    /// `count / total` for a ratio, `count` for a count.
    pub value: f64,
    /// What the value is compared with, as written: `above 0.6`.
    pub limit: String,
    pub min_events: u64,
}

impl RuleDecision {
    fn new(rule: &str) -> Self {
        Self {
            rule: rule.to_owned(),
            outcome: Outcome::Holds,
            reason: None,
            state: StateUsed::default(),
            vars: None,
        }
    }

    fn holds(mut self, outcome: Outcome, reason: String) -> Self {
        self.outcome = outcome;
        self.reason = Some(reason);
        self
    }

    /// The decision as JSON text, as the store keeps it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339()
}

/// Answers `after` from the state, remembering every question and its answer (and the
/// first error: evaluation cannot fail, so it is carried out and raised after).
struct Asked<'s> {
    state: RefCell<&'s mut dyn State>,
    answers: RefCell<Vec<AfterAnswer>>,
    error: RefCell<Option<StoreError>>,
}

impl Seen for Asked<'_> {
    fn seen(&self, c: &Correlation, key: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Truth {
        let answer = self
            .state
            .borrow_mut()
            .seen(&c.event, c.same.as_str(), key, ms(from), ms(to));
        match answer {
            Ok(seen) => {
                self.answers.borrow_mut().push(AfterAnswer {
                    event: c.event.clone(),
                    same: c.same.as_str().to_owned(),
                    key: key.to_owned(),
                    from: from.to_rfc3339(),
                    to: to.to_rfc3339(),
                    seen,
                });
                Truth::from_bool(seen)
            }
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                Truth::Unknown
            }
        }
    }
}

/// Decides `rule` for `ev` (the rule sees it, and is a candidate: its stateless
/// conditions hold, or only `after` can say). `keys` are its rendered `once.per` and
/// `threshold.group_by`.
pub(super) fn rule(
    rule: &Rule,
    ev: &Event,
    keys: &Candidate,
    state: &mut dyn State,
) -> Result<RuleDecision, StoreError> {
    let mut d = RuleDecision::new(&rule.id);
    let t = ms(ev.time);
    if rule.when.is_stateful() {
        let asked = Asked {
            state: RefCell::new(&mut *state),
            answers: RefCell::new(Vec::new()),
            error: RefCell::new(None),
        };
        let holds = rule.when.eval(ev, &asked);
        if let Some(e) = asked.error.into_inner() {
            return Err(e);
        }
        d.state.after = asked.answers.into_inner();
        if holds != Truth::True {
            let missing = d.state.after.iter().find(|a| !a.seen).map(|a| {
                format!(
                    "no `{}` with the same {} ({}) in the period before",
                    a.event, a.same, a.key
                )
            });
            return Ok(d.holds(
                Outcome::Holds,
                missing.unwrap_or_else(|| "a condition does not hold".into()),
            ));
        }
    }
    if let Some(absent) = &rule.absent {
        let Some(key) = absent.key(ev) else {
            return Ok(d.holds(
                Outcome::Holds,
                format!("the event has no `{}`: no timer", absent.same.as_str()),
            ));
        };
        let due = t + absent.within.as_secs() as i64 * 1000;
        d.state.absent_due_at = Some(time(due));
        // Events come out of order: the cancelling one may be here already.
        if state.seen(&absent.event, absent.same.as_str(), &key, t, due)? {
            return Ok(d.holds(
                Outcome::Holds,
                format!(
                    "a matching `{}` arrived within {} already",
                    absent.event, absent.within
                ),
            ));
        }
        state.start_timer(&Timer {
            rule: rule.id.clone(),
            key,
            start: t,
            due,
        })?;
        return Ok(d.holds(
            Outcome::Waits,
            format!(
                "fires at {} unless a `{}` with the same {} arrives first",
                time(due),
                absent.event,
                absent.same.as_str()
            ),
        ));
    }
    if let Some(th) = &rule.threshold {
        let group = match &keys.group {
            Some(Ok(g)) => g.clone(),
            Some(Err(e)) => return Ok(d.holds(Outcome::Error, format!("threshold.group_by: {e}"))),
            None => String::new(),
        };
        let window = th.window.as_secs() as i64 * 1000;
        let per_kind = state.count(&rule.id, &group, &ev.kind, th.bucket_of(t), t - window, t)?;
        let counts = th.counts(&per_kind);
        d.state.window = Some(WindowState {
            group: group.clone(),
            from: time(t - window),
            to: time(t),
            count: counts.count,
            total: counts.total,
            value: th.value(counts),
            limit: match th.limit {
                Limit::Above(x) => format!("above {x}"),
                Limit::Below(x) => format!("below {x}"),
            },
            min_events: th.min_events,
        });
        if !th.crossed(counts) {
            return Ok(d.holds(
                Outcome::Holds,
                format!(
                    "threshold not crossed: {} of {} in the window (value {})",
                    counts.count,
                    counts.total,
                    th.value(counts)
                ),
            ));
        }
        let mark = format!("threshold:{group}");
        if let Some(until) = state.mark(&rule.id, &mark)?.filter(|u| *u > t) {
            d.state.quiet_until = Some(time(until));
            return Ok(d.holds(
                Outcome::Holds,
                format!(
                    "threshold crossed, but `{group}` is cooling down until {}",
                    time(until)
                ),
            ));
        }
        // The cooldown starts with the crossing, even if `once` then holds the rule back.
        let quiet = th.cooldown.unwrap_or(th.window).as_secs() as i64 * 1000;
        state.set_mark(&rule.id, &mark, t + quiet)?;
        d.state.quiet_until = Some(time(t + quiet));
        d.vars = Some(th.vars(&group, counts));
    }
    if let Some(once) = &rule.once {
        let key = match &keys.once {
            Some(Ok(k)) => k.clone(),
            Some(Err(e)) => return Ok(d.holds(Outcome::Error, format!("once.per: {e}"))),
            None => return Ok(d.holds(Outcome::Error, "once.per was not rendered".into())),
        };
        d.state.once_key = Some(key.clone());
        let mark = format!("once:{key}");
        if let Some(until) = state.mark(&rule.id, &mark)?.filter(|u| *u > t) {
            d.state.quiet_until = Some(time(until));
            return Ok(d.holds(
                Outcome::Holds,
                format!("once: already fired for {key}, quiet until {}", time(until)),
            ));
        }
        let until = t + once.period.as_secs() as i64 * 1000;
        state.set_mark(&rule.id, &mark, until)?;
        d.state.quiet_until = Some(time(until));
    }
    d.outcome = Outcome::Fires;
    Ok(d)
}

/// A due `absent` timer: the rule fires unless it was edited away, or the cancelling
/// event is recorded for the period after all.
pub(super) fn timer(
    rules: &RuleSet,
    timer: &DueTimer,
    state: &mut dyn State,
) -> Result<RuleDecision, StoreError> {
    let d = RuleDecision::new(&timer.rule);
    let Some(rule) = rules.get(&timer.rule).filter(|r| r.enabled) else {
        return Ok(d.holds(
            Outcome::Holds,
            "the timer fell due, but its rule is no longer loaded (or disabled)".into(),
        ));
    };
    let Some(absent) = &rule.absent else {
        return Ok(d.holds(
            Outcome::Holds,
            "the timer fell due, but its rule has no `absent` any more".into(),
        ));
    };
    if state.seen(
        &absent.event,
        absent.same.as_str(),
        &timer.key,
        timer.start,
        timer.due,
    )? {
        return Ok(d.holds(
            Outcome::Cancelled,
            format!("a matching `{}` arrived within {}", absent.event, absent.within),
        ));
    }
    let mut d = d;
    d.outcome = Outcome::Fires;
    d.reason = Some(format!(
        "no `{}` with the same {} arrived within {}: fired at {}",
        absent.event,
        absent.same.as_str(),
        absent.within,
        time(timer.due)
    ));
    Ok(d)
}

/// The `after` answers a decision recorded, as a [`Seen`]: explaining a decision later
/// works its conditions out again with the answers the state gave at the time.
pub struct Answers<'a>(pub &'a [AfterAnswer]);

impl Seen for Answers<'_> {
    fn seen(&self, c: &Correlation, key: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Truth {
        let (from, to) = (from.to_rfc3339(), to.to_rfc3339());
        self.0
            .iter()
            .find(|a| {
                a.event == c.event
                    && a.same == c.same.as_str()
                    && a.key == key
                    && a.from == from
                    && a.to == to
            })
            .map_or(Truth::Unknown, |a| Truth::from_bool(a.seen))
    }
}

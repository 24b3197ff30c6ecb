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
use crate::rules::stateful::Correlation;
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

/// What made the outcome, in a word; with the facts kept beside it and the rule, the
/// reason is worked out from it when shown (`engine::why`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The rule's conditions: they hold (it fires) or they do not (an `after` not seen).
    Conditions,
    /// `absent`: the event has no value to correlate on, so no timer.
    NoKey,
    /// `absent`: the cancelling event had arrived already (events come out of order).
    AlreadyArrived,
    /// `absent`: a timer started.
    TimerStarted,
    /// `threshold`: the window does not cross the limit.
    NotCrossed,
    /// `threshold`: crossed, but the group is cooling down.
    CoolingDown,
    /// `once`: already fired for the key in its period.
    Once,
    /// A key (`once.per`, `threshold.group_by`) did not render: see `error`.
    Render,
    /// A due timer whose rule is no longer loaded, or disabled.
    RuleGone,
    /// A due timer whose rule has no `absent` any more.
    NoAbsent,
    /// A due timer whose cancelling event was recorded for its period after all.
    ArrivedWithin,
    /// A timer cancelled by an event (`by`).
    CancelledBy,
    /// A due timer: nothing cancelled it, the rule fired.
    TimerFired,
    /// The event's type is in the rule's `exit_on`: its pending jobs and timers for the
    /// contact were cancelled (`cancelled`: how many of each).
    ExitOn,
}

/// One rule's decision for one event, as it is kept: the outcome, its cause, and only
/// the state that cannot be worked out again — the answers `after` got, a window's
/// counts, the quiet period found. Due times, window bounds, the limit and the reason's
/// words follow from the event and the rule, and are worked out when shown
/// (`engine::why::describe`): the store's single writer does not format them for every
/// event, and the rows stay small.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RuleDecision {
    pub rule: String,
    pub outcome: Outcome,
    pub cause: Cause,
    /// What each `after` asked, and the answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Asked>,
    /// `threshold`: the group (rendered `group_by`) and the window's counts, the event
    /// included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<[u64; 2]>,
    /// `once`: the rendered key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Until when a cooldown or `once` found the rule quiet (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// A due timer's due time (unix ms): the rule may have changed since it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<i64>,
    /// The event that cancelled a timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<CancelledBy>,
    /// `exit_on`: the jobs and timers cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<[u64; 2]>,
    /// What was known of the contact, for a rule that reads `contact.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Value>,
    /// Why a key did not render.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Template variables a firing adds (a threshold's `group count total ratio`).
    #[serde(skip)]
    pub vars: Option<Map<String, Value>>,
}

/// An `after` question and its answer; times in unix ms.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Asked {
    pub event: String,
    pub same: String,
    pub key: String,
    pub from: i64,
    pub to: i64,
    pub seen: bool,
}

/// The event that cancelled a timer: its type, id and time (unix ms).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CancelledBy {
    pub kind: String,
    pub id: String,
    pub at: i64,
}

impl RuleDecision {
    pub(crate) fn new(rule: &str, outcome: Outcome, cause: Cause) -> Self {
        Self {
            rule: rule.to_owned(),
            outcome,
            cause,
            after: Vec::new(),
            group: None,
            counts: None,
            key: None,
            until: None,
            due: None,
            by: None,
            cancelled: None,
            contact: None,
            error: None,
            vars: None,
        }
    }

    fn holds(mut self, outcome: Outcome, cause: Cause) -> Self {
        self.outcome = outcome;
        self.cause = cause;
        self
    }

    fn failed(mut self, error: String) -> Self {
        self.outcome = Outcome::Error;
        self.cause = Cause::Render;
        self.error = Some(error);
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

/// Answers `after` from the state, remembering every question and its answer (and the
/// first error: evaluation cannot fail, so it is carried out and raised after).
struct Asking<'s> {
    state: RefCell<&'s mut dyn State>,
    answers: RefCell<Vec<Asked>>,
    error: RefCell<Option<StoreError>>,
    /// The contact's view, read in the commit, for `contact.*`.
    contact: Option<&'s Value>,
}

impl Seen for Asking<'_> {
    fn contact(&self) -> Option<Value> {
        self.contact.cloned()
    }

    fn seen(&self, c: &Correlation, key: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Truth {
        let (from, to) = (ms(from), ms(to));
        let answer = self
            .state
            .borrow_mut()
            .seen(&c.event, c.same.as_str(), key, from, to);
        match answer {
            Ok(seen) => {
                self.answers.borrow_mut().push(Asked {
                    event: c.event.clone(),
                    same: c.same.as_str().to_owned(),
                    key: key.to_owned(),
                    from,
                    to,
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
    contact: Option<&Value>,
) -> Result<RuleDecision, StoreError> {
    let mut d = RuleDecision::new(&rule.id, Outcome::Holds, Cause::Conditions);
    if rule.reads_contact {
        d.contact = contact.cloned();
    }
    let t = ms(ev.time);
    if rule.when.is_stateful() {
        let asking = Asking {
            state: RefCell::new(&mut *state),
            answers: RefCell::new(Vec::new()),
            error: RefCell::new(None),
            contact,
        };
        let holds = rule.when.eval(ev, &asking);
        if let Some(e) = asking.error.into_inner() {
            return Err(e);
        }
        d.after = asking.answers.into_inner();
        if holds != Truth::True {
            return Ok(d);
        }
    }
    if let Some(absent) = &rule.absent {
        let Some(key) = absent.key(ev) else {
            return Ok(d.holds(Outcome::Holds, Cause::NoKey));
        };
        let timer = Timer {
            rule: rule.id.clone(),
            key,
            start: t,
            due: t + absent.within.as_secs() as i64 * 1000,
            contact: keys.contact.clone(),
        };
        // Events come out of order: the cancelling one may be here already.
        if !state.start_timer(&timer, &absent.event, absent.same.as_str())? {
            return Ok(d.holds(Outcome::Holds, Cause::AlreadyArrived));
        }
        return Ok(d.holds(Outcome::Waits, Cause::TimerStarted));
    }
    if let Some(th) = &rule.threshold {
        let group = match &keys.group {
            Some(Ok(g)) => g.clone(),
            Some(Err(e)) => return Ok(d.failed(format!("threshold.group_by: {e}"))),
            None => String::new(),
        };
        let window = th.window.as_secs() as i64 * 1000;
        let per_kind = state.count(&rule.id, &group, &ev.kind, th.bucket_of(t), t - window, t)?;
        let counts = th.counts(&per_kind);
        d.counts = Some([counts.count, counts.total]);
        let mark = format!("threshold:{group}");
        d.group = Some(group);
        if !th.crossed(counts) {
            return Ok(d.holds(Outcome::Holds, Cause::NotCrossed));
        }
        if let Some(until) = state.mark(&rule.id, &mark)?.filter(|u| *u > t) {
            d.until = Some(until);
            return Ok(d.holds(Outcome::Holds, Cause::CoolingDown));
        }
        // The cooldown starts with the crossing, even if `once` then holds the rule back.
        let quiet = th.cooldown.unwrap_or(th.window).as_secs() as i64 * 1000;
        state.set_mark(&rule.id, &mark, t + quiet)?;
        d.vars = Some(th.vars(d.group.as_deref().unwrap_or_default(), counts));
    }
    if let Some(once) = &rule.once {
        let key = match &keys.once {
            Some(Ok(k)) => k.clone(),
            Some(Err(e)) => return Ok(d.failed(format!("once.per: {e}"))),
            None => return Ok(d.failed("once.per was not rendered".into())),
        };
        let mark = format!("once:{key}");
        d.key = Some(key);
        if let Some(until) = state.mark(&rule.id, &mark)?.filter(|u| *u > t) {
            d.until = Some(until);
            return Ok(d.holds(Outcome::Holds, Cause::Once));
        }
        state.set_mark(&rule.id, &mark, t + once.period.as_secs() as i64 * 1000)?;
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
    let mut d = RuleDecision::new(&timer.rule, Outcome::Holds, Cause::RuleGone);
    d.due = Some(timer.due);
    let Some(rule) = rules.get(&timer.rule).filter(|r| r.enabled) else {
        return Ok(d);
    };
    let Some(absent) = &rule.absent else {
        return Ok(d.holds(Outcome::Holds, Cause::NoAbsent));
    };
    if state.seen(
        &absent.event,
        absent.same.as_str(),
        &timer.key,
        timer.start,
        timer.due,
    )? {
        return Ok(d.holds(Outcome::Cancelled, Cause::ArrivedWithin));
    }
    Ok(d.holds(Outcome::Fires, Cause::TimerFired))
}

/// The `after` answers a decision recorded (and the contact it read), as a [`Seen`]:
/// explaining a decision later works its conditions out again with the answers the state
/// gave at the time.
pub struct Answers<'a>(pub &'a [Asked], pub Option<&'a Value>);

impl Seen for Answers<'_> {
    fn contact(&self) -> Option<Value> {
        self.1.cloned()
    }

    fn seen(&self, c: &Correlation, key: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Truth {
        let (from, to) = (ms(from), ms(to));
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

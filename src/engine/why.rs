//! Why a rule did or did not fire for an event: its conditions worked out again (with the
//! `after` answers the state gave at the time) and its stateful decisions as they were
//! made, put in words. `hookflow test --explain` prints it; `GET /api/events/{id}` shows it
//! for every stored event, with the version of the rules that decided.
//!
//! A kept decision holds only what depended on the state at that moment; [`describe`]
//! adds what follows from the event and the rule (due times, window bounds, the limit)
//! and the reason's words — here, once, for every place that shows a decision.

use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::{Answers, Cause, Outcome, RuleDecision};
use crate::event::Event;
use crate::rules::stateful::{Limit, WindowCounts};
use crate::rules::{Explain, Rule, Truth};

/// One rule's part in an event, condition by condition.
#[derive(Debug, Serialize)]
pub struct RuleExplain {
    pub rule: String,
    pub fires: Truth,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub conditions: Explain,
    /// For stateful rules: the timer, window, once-key and `after` answers used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateUsed>,
}

/// A decision as it is shown: the outcome, the reason in words, the state behind it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Described {
    pub rule: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "StateUsed::is_empty")]
    pub state: StateUsed,
}

/// The state behind a stateful decision, as shown; times in RFC 3339.
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

fn time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339()
}

/// `d`, a decision for `ev` (the event it belongs to: for a timer, the one that started
/// it), put in words with `rule` — the version that decided, when known.
pub fn describe(d: &RuleDecision, rule: Option<&Rule>, ev: &Event) -> Described {
    let t = ev.time.timestamp_millis();
    let absent = rule.and_then(|r| r.absent.as_ref());
    let threshold = rule.and_then(|r| r.threshold.as_ref());
    let once = rule.and_then(|r| r.once.as_ref());
    let mut state = StateUsed {
        after: d
            .after
            .iter()
            .map(|a| AfterAnswer {
                event: a.event.clone(),
                same: a.same.clone(),
                key: a.key.clone(),
                from: time(a.from),
                to: time(a.to),
                seen: a.seen,
            })
            .collect(),
        once_key: d.key.clone(),
        ..StateUsed::default()
    };
    let counts = d.counts.map(|[count, total]| WindowCounts { count, total });
    if let (Some(th), Some(c)) = (threshold, counts) {
        let window = th.window.as_secs() as i64 * 1000;
        state.window = Some(WindowState {
            group: d.group.clone().unwrap_or_default(),
            from: time(t - window),
            to: time(t),
            count: c.count,
            total: c.total,
            value: th.value(c),
            limit: match th.limit {
                Limit::Above(x) => format!("above {x}"),
                Limit::Below(x) => format!("below {x}"),
            },
            min_events: th.min_events,
        });
    }
    let due = d
        .due
        .or_else(|| absent.map(|a| t + a.within.as_secs() as i64 * 1000));
    if matches!(d.cause, Cause::AlreadyArrived | Cause::TimerStarted) {
        state.absent_due_at = due.map(time);
    }
    // A quiet period found is kept; one set follows from the rule (`once` last, as its
    // period is the one the rule then keeps).
    state.quiet_until = match (d.until, d.outcome) {
        (Some(until), _) => Some(time(until)),
        (None, Outcome::Fires) if d.cause == Cause::Conditions => once
            .map(|o| o.period)
            .or_else(|| threshold.map(|th| th.cooldown.unwrap_or(th.window)))
            .map(|p| time(t + p.as_secs() as i64 * 1000)),
        _ => None,
    };
    let (event, same, within) = match absent {
        Some(a) => (a.event.as_str(), a.same.as_str(), a.within.to_string()),
        None => ("event", "key", "its period".to_owned()),
    };
    let reason = match d.cause {
        Cause::Conditions if d.outcome == Outcome::Fires => None,
        Cause::Conditions => Some(d.after.iter().find(|a| !a.seen).map_or_else(
            || "a condition does not hold".to_owned(),
            |a| {
                format!(
                    "no `{}` with the same {} ({}) in the period before",
                    a.event, a.same, a.key
                )
            },
        )),
        Cause::NoKey => Some(format!("the event has no `{same}`: no timer")),
        Cause::AlreadyArrived => Some(format!("a matching `{event}` arrived within {within} already")),
        Cause::TimerStarted => Some(format!(
            "fires at {} unless a `{event}` with the same {same} arrives first",
            due.map(time).unwrap_or_default()
        )),
        Cause::NotCrossed => {
            let c = counts.unwrap_or_default();
            let value = threshold.map_or(c.count as f64, |th| th.value(c));
            Some(format!(
                "threshold not crossed: {} of {} in the window (value {value})",
                c.count, c.total
            ))
        }
        Cause::CoolingDown => Some(format!(
            "threshold crossed, but `{}` is cooling down until {}",
            d.group.as_deref().unwrap_or_default(),
            d.until.map(time).unwrap_or_default()
        )),
        Cause::Once => Some(format!(
            "once: already fired for {}, quiet until {}",
            d.key.as_deref().unwrap_or_default(),
            d.until.map(time).unwrap_or_default()
        )),
        Cause::Render => d.error.clone(),
        Cause::RuleGone => Some("the timer fell due, but its rule is no longer loaded (or disabled)".into()),
        Cause::NoAbsent => Some("the timer fell due, but its rule has no `absent` any more".into()),
        Cause::ArrivedWithin => Some(format!("a matching `{event}` arrived within {within}")),
        Cause::CancelledBy => {
            d.by.as_ref()
                .map(|b| format!("`{}` {} arrived at {}", b.kind, b.id, time(b.at)))
        }
        Cause::ExitOn => {
            let [jobs, timers] = d.cancelled.unwrap_or_default();
            Some(format!(
                "exit_on: this event ends the rule for its contact; cancelled {jobs} pending job(s) and {timers} timer(s)"
            ))
        }
        Cause::TimerFired => Some(format!(
            "no `{event}` with the same {same} arrived within {within}: fired at {}",
            due.map(time).unwrap_or_default()
        )),
    };
    Described {
        rule: d.rule.clone(),
        outcome: d.outcome,
        reason,
        state,
    }
}

/// A rule's part in an event's decision: whether it fired, why (not), and the state used.
pub fn explain_rule(rule: &Rule, ev: &Event, fired: &[String], decisions: &[RuleDecision]) -> RuleExplain {
    let mine: Vec<&RuleDecision> = decisions.iter().filter(|d| d.rule == rule.id).collect();
    let fires = Truth::from_bool(fired.contains(&rule.id));
    // The last word is the latest decision: a timer that fired or was cancelled.
    let last = mine.last().map(|d| describe(d, Some(rule), ev));
    let state = mine
        .iter()
        .map(|d| describe(d, Some(rule), ev).state)
        .find(|s| !s.is_empty());
    let after = mine
        .iter()
        .map(|d| d.after.as_slice())
        .find(|a| !a.is_empty())
        .unwrap_or_default();
    RuleExplain {
        rule: rule.id.clone(),
        fires,
        reason: last
            .and_then(|d| {
                d.reason
                    .filter(|_| d.outcome != Outcome::Fires || fires == Truth::True)
            })
            .or_else(|| not_firing(rule, fires)),
        conditions: rule
            .when
            .explain(ev, &Answers(after, mine.iter().find_map(|d| d.contact.as_ref()))),
        state,
    }
}

pub(crate) fn not_firing(rule: &Rule, fires: Truth) -> Option<String> {
    match fires {
        Truth::True => None,
        _ if !rule.enabled => Some("the rule is disabled (`enabled: false`)".into()),
        _ => Some("a condition does not hold".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Asked, CancelledBy};
    use crate::rules::RuleSet;

    const RULES: &str = r#"
rules:
  - id: late
    on: sent
    absent: { event: open, same: MessageID, within: 48h }
    actions: [ { log: { message: "late" } } ]
  - id: spike
    on: [sent, blocked]
    threshold: { ratio: { count: blocked, of: [sent, blocked] }, above: 0.5, window: 15m, min_events: 2, group_by: "{{email}}", cooldown: 1h }
    once: { per: "{{email}}", for: 1d }
    actions: [ { log: { message: "spike" } } ]
"#;

    fn set() -> RuleSet {
        RuleSet::of_text(RULES)
    }

    fn event() -> Event {
        Event {
            id: "e1".into(),
            source: "mailjet".into(),
            kind: "sent".into(),
            time: DateTime::from_timestamp_millis(1_800_000_000_000).unwrap(),
            data: serde_json::json!({ "event": "sent", "MessageID": 7, "email": "a@b.c" }),
        }
    }

    fn decision(rule: &str, outcome: Outcome, cause: Cause) -> RuleDecision {
        RuleDecision::new(rule, outcome, cause)
    }

    /// What `describe` says, kept decision by kept decision: every cause, its words and
    /// the state worked out from the rule (after the round trip through the store's JSON).
    #[test]
    fn every_cause_is_put_in_words() {
        let set = set();
        let ev = event();
        let until = 1_800_003_600_000;
        let mut cooling = decision("spike", Outcome::Holds, Cause::CoolingDown);
        cooling.group = Some("a@b.c".into());
        cooling.counts = Some([3, 4]);
        cooling.until = Some(until);
        let mut not_crossed = decision("spike", Outcome::Holds, Cause::NotCrossed);
        not_crossed.group = Some("a@b.c".into());
        not_crossed.counts = Some([1, 4]);
        let mut once = decision("spike", Outcome::Holds, Cause::Once);
        once.key = Some("a@b.c".into());
        once.until = Some(until);
        once.counts = Some([3, 4]);
        let mut fires = decision("spike", Outcome::Fires, Cause::Conditions);
        fires.counts = Some([3, 4]);
        fires.key = Some("a@b.c".into());
        let mut render = decision("spike", Outcome::Error, Cause::Render);
        render.error = Some("once.per: no field `email`".into());
        let mut missing = decision("late", Outcome::Holds, Cause::Conditions);
        missing.after = vec![Asked {
            event: "sent".into(),
            same: "MessageID".into(),
            key: "7".into(),
            from: 0,
            to: 1,
            seen: false,
        }];
        let mut by = decision("late", Outcome::Cancelled, Cause::CancelledBy);
        by.by = Some(CancelledBy {
            kind: "open".into(),
            id: "e2".into(),
            at: 1_800_000_060_000,
        });
        let mut fired = decision("late", Outcome::Fires, Cause::TimerFired);
        fired.due = Some(1_800_172_800_000);
        let cases: Vec<(RuleDecision, &str)> = vec![
            (
                decision("late", Outcome::Holds, Cause::Conditions),
                "a condition does not hold",
            ),
            (
                missing,
                "no `sent` with the same MessageID (7) in the period before",
            ),
            (
                decision("late", Outcome::Holds, Cause::NoKey),
                "the event has no `MessageID`: no timer",
            ),
            (
                decision("late", Outcome::Holds, Cause::AlreadyArrived),
                "a matching `open` arrived within 48h already",
            ),
            (
                decision("late", Outcome::Waits, Cause::TimerStarted),
                "fires at 2027-01-17T08:00:00+00:00 unless a `open` with the same MessageID arrives first",
            ),
            (
                not_crossed,
                "threshold not crossed: 1 of 4 in the window (value 0.25)",
            ),
            (
                cooling,
                "threshold crossed, but `a@b.c` is cooling down until 2027-01-15T09:00:00+00:00",
            ),
            (
                once,
                "once: already fired for a@b.c, quiet until 2027-01-15T09:00:00+00:00",
            ),
            (render, "once.per: no field `email`"),
            (
                decision("late", Outcome::Holds, Cause::RuleGone),
                "the timer fell due, but its rule is no longer loaded (or disabled)",
            ),
            (
                decision("late", Outcome::Holds, Cause::NoAbsent),
                "the timer fell due, but its rule has no `absent` any more",
            ),
            (
                decision("late", Outcome::Cancelled, Cause::ArrivedWithin),
                "a matching `open` arrived within 48h",
            ),
            (by, "`open` e2 arrived at 2027-01-15T08:01:00+00:00"),
            (
                fired,
                "no `open` with the same MessageID arrived within 48h: fired at 2027-01-17T08:00:00+00:00",
            ),
            (fires, ""),
        ];
        for (d, words) in cases {
            let kept: RuleDecision = serde_json::from_str(&d.to_json()).unwrap();
            assert_eq!(kept, d, "the store's JSON keeps it whole");
            let shown = describe(&kept, set.get(&d.rule), &ev);
            assert_eq!(
                shown.reason.as_deref().unwrap_or_default(),
                words,
                "{:?}",
                d.cause
            );
            assert_eq!(shown.outcome, d.outcome);
        }
    }

    /// The state shown: window bounds and limit from the rule, the due time from the
    /// event's time, the quiet period set by a firing from `once` (the period it keeps).
    #[test]
    fn the_state_shown_follows_from_the_rule() {
        let set = set();
        let ev = event();
        let mut fires = decision("spike", Outcome::Fires, Cause::Conditions);
        fires.group = Some("a@b.c".into());
        fires.counts = Some([3, 4]);
        fires.key = Some("a@b.c".into());
        let shown = describe(&fires, set.get("spike"), &ev);
        let w = shown.state.window.unwrap();
        assert_eq!(
            (
                w.from.as_str(),
                w.to.as_str(),
                w.count,
                w.total,
                w.value,
                w.limit.as_str(),
                w.min_events
            ),
            (
                "2027-01-15T07:45:00+00:00",
                "2027-01-15T08:00:00+00:00",
                3,
                4,
                0.75,
                "above 0.5",
                2
            )
        );
        assert_eq!(shown.state.once_key.as_deref(), Some("a@b.c"));
        assert_eq!(
            shown.state.quiet_until.as_deref(),
            Some("2027-01-16T08:00:00+00:00")
        );
        let waits = describe(
            &decision("late", Outcome::Waits, Cause::TimerStarted),
            set.get("late"),
            &ev,
        );
        assert_eq!(
            waits.state.absent_due_at.as_deref(),
            Some("2027-01-17T08:00:00+00:00")
        );
        // Without the rule (its version not kept), the words that need it are generic.
        let gone = describe(
            &decision("late", Outcome::Cancelled, Cause::ArrivedWithin),
            None,
            &ev,
        );
        assert_eq!(
            gone.reason.as_deref(),
            Some("a matching `event` arrived within its period")
        );
    }
}

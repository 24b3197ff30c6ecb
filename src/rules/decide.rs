//! Whether one rule fires for one event, and with what: conditions, then `absent`,
//! `threshold` and `once`, then the rendered actions.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::Rule;
use super::condition::Truth;
use super::stateful::{History, Limit, Quiet};
use crate::actions::Rendered;
use crate::event::Event;
use crate::template::{Templates, context};

/// One rule's answer for one event.
#[derive(Debug)]
pub struct Decision<'r> {
    pub rule: &'r Rule,
    /// `True`: fires; `Unknown`: needs history to say.
    pub fires: Truth,
    /// Why not, in a few words, when it does not fire (or cannot say).
    pub reason: Option<String>,
    /// Extra template variables (a threshold's `group count total ratio`).
    pub vars: Option<Map<String, Value>>,
    /// The rendered `once` key.
    pub once_key: Option<String>,
    /// For `absent`: when the rule fires if nothing cancels it.
    pub due_at: Option<DateTime<Utc>>,
    /// For `threshold`: the window the decision summed.
    pub window: Option<WindowState>,
    /// The threshold was crossed outside a cooldown: a cooldown starts (as in the server,
    /// even when `once` then holds the rule back).
    pub cooldown_starts: bool,
}

/// The state a stateful decision used, as `--explain` shows it.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct StateUsed {
    /// `absent`: when the rule fires unless a matching event arrives first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absent_due_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowState>,
    /// `once`: the key whose earlier firings hold this one back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub once_key: Option<String>,
}

/// A threshold's window, summed for one event (the event included).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WindowState {
    pub group: String,
    /// Events with a time in `(from, to]` count.
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

impl Rule {
    /// Decides this rule for `ev` (the rule must see `ev`: see [`Rule::sees`]).
    pub fn decide<'r>(&'r self, ev: &Event, history: &dyn History, t: &Templates) -> Decision<'r> {
        let quiet = history.quiet(self, t, ev.time).unwrap_or_default();
        self.decide_with(ev, history, t, &quiet, false)
    }

    /// Decides this rule for `e`, an event of the history itself (a replay), with the
    /// quiet periods the events before it started.
    pub(super) fn decide_replayed<'r>(
        &'r self,
        e: &Event,
        history: &dyn History,
        t: &Templates,
        quiet: &Quiet,
    ) -> Decision<'r> {
        self.decide_with(e, history, t, quiet, true)
    }

    /// `in_history`: `ev` is one of the history's events, so its window already counts it.
    fn decide_with<'r>(
        &'r self,
        ev: &Event,
        history: &dyn History,
        t: &Templates,
        quiet: &Quiet,
        in_history: bool,
    ) -> Decision<'r> {
        let mut d = Decision {
            rule: self,
            fires: Truth::False,
            reason: None,
            vars: None,
            once_key: None,
            due_at: None,
            window: None,
            cooldown_starts: false,
        };
        if !self.enabled {
            d.reason = Some("the rule is disabled (`enabled: false`)".into());
            return d;
        }
        let when = self.when.eval(ev, history);
        if when != Truth::True {
            d.fires = when;
            d.reason = Some(match when {
                Truth::Unknown => "needs history: `after` asks about earlier events".into(),
                _ => "a condition does not hold".into(),
            });
            return d;
        }
        if let Some(absent) = &self.absent {
            d.due_at = Some(ev.time + absent.within.to_chrono());
            let holds = absent.absent_holds(ev, history);
            if holds != Truth::True {
                d.fires = holds;
                d.reason = Some(match holds {
                    Truth::Unknown => format!(
                        "needs history: fires {} later unless an event `{}` with the same {} arrives",
                        absent.within,
                        absent.event,
                        absent.same.as_str()
                    ),
                    _ => format!(
                        "a matching event `{}` arrived within {}",
                        absent.event, absent.within
                    ),
                });
                return d;
            }
        }
        if let Some(th) = &self.threshold {
            let ctx = context(ev, &self.id, None);
            let group = match &th.group_by {
                Some(tpl) => match t.render(tpl, &ctx) {
                    Ok(g) => g,
                    Err(e) => {
                        d.reason = Some(format!("threshold group_by: {e}"));
                        return d;
                    }
                },
                None => String::new(),
            };
            let group_of = |e: &Event| match &th.group_by {
                Some(tpl) => t.render(tpl, &context(e, &self.id, None)).ok(),
                None => Some(String::new()),
            };
            let from = ev.time - th.window.to_chrono();
            let Some(mut counts) = history.window(self, th, &group, from, ev.time, &group_of) else {
                d.fires = Truth::Unknown;
                d.reason = Some(format!("needs history: counts events over {}", th.window));
                return d;
            };
            if !in_history {
                counts.add(th, &ev.kind);
            }
            d.window = Some(WindowState {
                group: group.clone(),
                from: from.to_rfc3339(),
                to: ev.time.to_rfc3339(),
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
                d.reason = Some(format!(
                    "threshold not crossed: {} of {} in the window (value {})",
                    counts.count,
                    counts.total,
                    th.value(counts)
                ));
                return d;
            }
            d.vars = Some(th.vars(&group, counts));
            if let Some(until) = quiet.get(&format!("threshold:{group}")).filter(|u| **u > ev.time) {
                d.reason = Some(format!(
                    "threshold crossed, but {group} is cooling down until {}",
                    until.to_rfc3339()
                ));
                return d;
            }
            d.cooldown_starts = true;
        }
        if let Some(once) = &self.once {
            // The event's own fields only, as the server renders it when planning.
            let ctx = context(ev, &self.id, None);
            match t.render(&once.per, &ctx) {
                Ok(key) => d.once_key = Some(key),
                Err(e) => {
                    d.reason = Some(format!("once.per: {e}"));
                    return d;
                }
            }
            let key = d.once_key.as_deref().unwrap_or_default();
            if let Some(until) = quiet.get(&format!("once:{key}")).filter(|u| **u > ev.time) {
                d.reason = Some(format!(
                    "once: already fired for {key}, quiet until {}",
                    until.to_rfc3339()
                ));
                return d;
            }
        }
        d.fires = Truth::True;
        d
    }
}

impl Decision<'_> {
    /// What state the decision used; `None` for a stateless rule.
    pub fn state(&self) -> Option<StateUsed> {
        let state = StateUsed {
            absent_due_at: self.due_at.map(|t| t.to_rfc3339()),
            window: self.window.clone(),
            once_key: self.once_key.clone(),
        };
        (state != StateUsed::default()).then_some(state)
    }

    /// Renders every action of a firing rule; the first failure names the action.
    pub fn render_actions(&self, ev: &Event, t: &Templates) -> Result<Vec<Rendered>, String> {
        let ctx = context(ev, &self.rule.id, self.vars.as_ref());
        self.rule
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                a.render(t, &ctx)
                    .map_err(|e| format!("actions[{i}].{}: {e}", a.kind_name()))
            })
            .collect()
    }
}

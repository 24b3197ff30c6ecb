//! Stateful rules decided inside the commit transaction: `after` reads correlation facts,
//! `absent` starts a timer, `threshold` counts into its window, `once` reads and writes
//! its marks, and the event's own facts are recorded, all in the transaction that stores
//! the event. Nothing is decided twice or against stale state. Due timers fire here too.

use chrono::{DateTime, Utc};
use rusqlite::{CachedStatement, Connection, OptionalExtension, params};

use crate::base::path::FieldPath;
use crate::engine::jobs_for;
use crate::event::Event;
use crate::rules::stateful::{Correlation, History, Threshold, WindowCounts};
use crate::rules::{Rule, RuleSet, Truth};
use crate::store::{NewEvent, NewJob, StoreError, millis};

/// The answers to a rule's `after` questions, looked up before evaluating it.
struct Answers(Vec<(String, String, String, i64, i64, bool)>);

impl History for Answers {
    fn seen(&self, kind: &str, same: &FieldPath, key: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Truth {
        let (from, to) = (millis(from), millis(to));
        self.0
            .iter()
            .find(|(k, f, v, a, b, _)| k == kind && f == same.as_str() && v == key && *a == from && *b == to)
            .map_or(Truth::Unknown, |(.., seen)| Truth::from_bool(*seen))
    }
}

/// Whether an event of `c.event` with `key` in `c.same` happened between `from` and `to`
/// (unix ms, inclusive): the question `after` asks, and the one that cancels `absent`.
fn fact_seen(tx: &Connection, c: &Correlation, key: &str, from: i64, to: i64) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM facts WHERE kind = ? AND field = ? AND key = ? AND time BETWEEN ? AND ?)",
        )?
        .query_row(params![c.event, c.same.as_str(), key, from, to], |r| r.get(0))?)
}

/// Decides `item`'s stateful rules, with the rule set it was planned with; their jobs go
/// to `jobs`. Returns the rules that fired.
pub(super) fn decide<'a>(
    tx: &Connection,
    hot: &mut Hot<'_>,
    windows: &mut super::windows::Windows,
    item: &'a NewEvent,
    seq: i64,
    jobs: &mut Vec<(&'a NewEvent, NewJob)>,
) -> Result<Vec<String>, StoreError> {
    let (ev, rules) = (&item.event, &*item.rules);
    let mut fired = Vec::new();
    for pending in &item.stateful {
        let Some(rule) = rules.get(&pending.rule_id).filter(|r| r.enabled) else {
            continue;
        };
        let mut correlations = Vec::new();
        rule.when.correlations(&mut correlations);
        // Without `after`, planning (same rule set, same event) found `when` true already.
        if !correlations.is_empty() {
            let mut answers = Vec::with_capacity(correlations.len());
            for c in correlations {
                let Some(key) = c.key(ev) else { continue };
                let (from, to) = (millis(ev.time - c.within.to_chrono()), millis(ev.time));
                let seen = fact_seen(tx, c, &key, from, to)?;
                answers.push((c.event.clone(), c.same.as_str().to_owned(), key, from, to, seen));
            }
            if rule.when.eval(ev, &Answers(answers)) != Truth::True {
                continue;
            }
        }
        if let Some(absent) = &rule.absent {
            // A timer, unless the cancelling event already arrived (events come out of order).
            let Some(key) = absent.key(ev) else { continue };
            let (start, due) = (millis(ev.time), millis(ev.time + absent.within.to_chrono()));
            hot.insert_timer.execute(params![
                due,
                seq,
                rule.id,
                key,
                start,
                absent.event,
                absent.same.as_str()
            ])?;
            continue;
        }
        let mut vars = None;
        if let Some(th) = &rule.threshold {
            let group = match &pending.group {
                Some(Ok(group)) => group.as_str(),
                Some(Err(e)) => {
                    tracing::warn!(rule = %rule.id, event = %ev.id, "threshold group_by cannot be rendered: {e}");
                    continue;
                }
                None => "",
            };
            match window(tx, hot, windows, rule, th, group, ev)? {
                Some(v) => vars = Some(v),
                None => continue,
            }
        }
        if let Some(once) = &rule.once {
            let key = match &pending.once {
                Some(Ok(k)) => k,
                Some(Err(e)) => {
                    tracing::warn!(rule = %rule.id, event = %ev.id, "once.per cannot be rendered: {e}");
                    continue;
                }
                None => continue,
            };
            if mark_until(tx, &rule.id, key)?.is_some_and(|u| u > millis(ev.time)) {
                continue;
            }
            set_mark(tx, &rule.id, key, millis(ev.time + once.period.to_chrono()))?;
        }
        fired.push(rule.id.clone());
        jobs.extend(
            jobs_for(rules, rule, ev, vars.as_ref(), item.received_at)
                .into_iter()
                .map(|j| (item, j)),
        );
    }
    Ok(fired)
}

/// Counts `ev` into its rule's window and decides the threshold: the template variables
/// when it fires, `None` when not crossed or cooling down. The window is 60 buckets wide
/// (bucket = window / 60, at least 1 s), summed over the buckets that start after
/// `time - window`. After firing, a group stays quiet for `cooldown` (default: the window).
fn window(
    tx: &Connection,
    hot: &mut Hot<'_>,
    windows: &mut super::windows::Windows,
    rule: &Rule,
    th: &Threshold,
    group: &str,
    ev: &Event,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
    let window_ms = th.window.as_secs() as i64 * 1000;
    let size = (window_ms / 60).max(1000);
    let t = millis(ev.time);
    let bucket = t - t.rem_euclid(size);
    hot.count.execute(params![rule.id, group, ev.kind, bucket])?;
    let sums = windows.add_and_sum(
        tx,
        (&rule.id, group),
        &ev.kind,
        bucket,
        (t - window_ms, t),
        2 * window_ms,
    )?;
    let mut counts = WindowCounts::default();
    for (kind, n) in sums {
        // What one event of this type adds, times how many there were.
        let mut one = WindowCounts::default();
        one.add(th, &kind);
        counts.count += one.count * n.max(0) as u64;
        counts.total += one.total * n.max(0) as u64;
    }
    if !th.crossed(counts) {
        return Ok(None);
    }
    let key = format!("threshold:{group}");
    if mark_until(tx, &rule.id, &key)?.is_some_and(|u| u > t) {
        return Ok(None);
    }
    let quiet = th.cooldown.unwrap_or(th.window);
    set_mark(tx, &rule.id, &key, t + quiet.as_secs() as i64 * 1000)?;
    Ok(Some(th.vars(group, counts)))
}

/// Deletes the `absent` timers this event cancels (listed when it was planned): same
/// key, and the event's time within their period.
pub(super) fn cancel_timers(tx: &Connection, item: &NewEvent) -> Result<(), StoreError> {
    for (rule_id, key) in &item.cancels {
        tx.prepare_cached(
            "DELETE FROM timers WHERE rule_id = ?1 AND key = ?2 AND start <= ?3 AND due_at >= ?3",
        )?
        .execute(params![rule_id, key, millis(item.event.time)])?;
    }
    Ok(())
}

/// Records the facts `after` and `absent` may later ask about this event (found when it
/// was planned).
pub(super) fn record_facts(hot: &mut Hot<'_>, item: &NewEvent) -> Result<(), StoreError> {
    let ev = &item.event;
    for (field, key) in &item.facts {
        hot.insert_fact
            .execute(params![ev.kind, field, key, millis(ev.time)])?;
    }
    Ok(())
}

/// The statements run for nearly every event, prepared once per commit instead of looked
/// up in the connection's statement cache each time (hashing their SQL).
pub(super) struct Hot<'c> {
    insert_fact: CachedStatement<'c>,
    insert_timer: CachedStatement<'c>,
    count: CachedStatement<'c>,
}

impl<'c> Hot<'c> {
    pub(super) fn prepare(tx: &'c Connection) -> Result<Self, StoreError> {
        Ok(Self {
            insert_fact: tx
                .prepare_cached("INSERT OR IGNORE INTO facts (kind, field, key, time) VALUES (?, ?, ?, ?)")?,
            // The check that `fact_seen` makes (did the cancelling event come first?) and
            // the insert, in one statement.
            insert_timer: tx.prepare_cached(
                "INSERT INTO timers (due_at, event_seq, rule_id, key, start)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (
                    SELECT 1 FROM facts WHERE kind = ?6 AND field = ?7 AND key = ?4 AND time BETWEEN ?5 AND ?1)",
            )?,
            count: tx.prepare_cached(
                "INSERT INTO window_counts (rule_id, grp, kind, bucket, n) VALUES (?, ?, ?, ?, 1)
                 ON CONFLICT (rule_id, grp, kind, bucket) DO UPDATE SET n = n + 1",
            )?,
        })
    }
}

/// Expiry, not growth: facts older than the longest `after` window (plus a day for late
/// events) and once-marks past their period are deleted.
pub(super) fn prune(tx: &Connection, rules: &RuleSet, now: DateTime<Utc>) -> Result<(), StoreError> {
    let keep = rules
        .longest_correlation()
        .map_or(chrono::TimeDelta::zero(), |d| d.to_chrono())
        + chrono::TimeDelta::days(1);
    tx.prepare_cached("DELETE FROM facts WHERE time < ?")?
        .execute([millis(now - keep)])?;
    tx.prepare_cached("DELETE FROM marks WHERE until < ?")?
        .execute([millis(now)])?;
    let longest_window = rules
        .rules()
        .iter()
        .filter_map(|r| r.threshold.as_ref().map(|t| t.window))
        .max();
    let keep =
        longest_window.map_or(chrono::TimeDelta::zero(), |d| d.to_chrono()) + chrono::TimeDelta::days(1);
    tx.prepare_cached("DELETE FROM window_counts WHERE bucket < ?")?
        .execute([millis(now - keep)])?;
    Ok(())
}

/// The end of a rule's quiet period for `key` (a `once` key or a threshold group), if any.
fn mark_until(tx: &Connection, rule_id: &str, key: &str) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT until FROM marks WHERE rule_id = ? AND key = ?")?
        .query_row(params![rule_id, key], |r| r.get(0))
        .optional()?)
}

fn set_mark(tx: &Connection, rule_id: &str, key: &str, until: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO marks (rule_id, key, until) VALUES (?1, ?2, ?3) ON CONFLICT (rule_id, key) DO UPDATE SET until = ?3",
    )?
    .execute(params![rule_id, key, until])?;
    Ok(())
}

/// A timer that is due, with the event that started it.
struct DueTimer {
    seq: i64,
    rule_id: String,
    key: String,
    start: i64,
    due_at: i64,
    event: Event,
    matched: String,
}

/// Fires due `absent` timers: plans the rule's jobs for the event that started each timer
/// (job keys are the usual `event/rule/index`, so a timer fired again after a crash adds
/// nothing) and deletes the timer.
pub(super) fn fire_timers(
    tx: &Connection,
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> Result<(Vec<String>, usize), StoreError> {
    let due: Vec<DueTimer> = tx
        .prepare_cached(
            "SELECT t.rule_id, e.id, t.key, t.start, t.due_at, e.source, e.type, e.time, e.payload, e.matched, t.event_seq
             FROM timers t JOIN events e ON e.seq = t.event_seq WHERE t.due_at <= ? ORDER BY t.due_at LIMIT 200",
        )?
        .query_map([millis(now)], |r| {
            Ok(DueTimer {
                seq: r.get(10)?,
                rule_id: r.get(0)?,
                key: r.get(2)?,
                start: r.get(3)?,
                due_at: r.get(4)?,
                event: Event {
                    id: r.get(1)?,
                    source: r.get(5)?,
                    kind: r.get(6)?,
                    time: crate::store::from_millis(r.get(7)?),
                    data: super::json_column(r, 8)?,
                },
                matched: r.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut fired = Vec::new();
    let taken = due.len();
    for timer in due {
        let ev = &timer.event;
        tx.prepare_cached("DELETE FROM timers WHERE due_at = ? AND event_seq = ? AND rule_id = ?")?
            .execute(params![timer.due_at, timer.seq, timer.rule_id])?;
        // The rule may have been edited away since the timer started.
        let Some(rule) = rules.get(&timer.rule_id).filter(|r| r.enabled) else {
            continue;
        };
        let Some(absent) = &rule.absent else { continue };
        if fact_seen(tx, absent, &timer.key, timer.start, timer.due_at)? {
            continue;
        }
        let planned = jobs_for(rules, rule, ev, None, now);
        let rows: Vec<(&str, i64, &NewJob)> =
            planned.iter().map(|j| (ev.id.as_str(), millis(now), j)).collect();
        super::queue::insert_jobs(tx, &rows)?;
        let mut matched: Vec<String> = serde_json::from_str(&timer.matched).unwrap_or_default();
        matched.push(timer.rule_id.clone());
        tx.prepare_cached("UPDATE events SET matched = ? WHERE id = ?")?
            .execute(params![super::queue::matched_json(matched.iter()), ev.id])?;
        fired.push(timer.rule_id);
    }
    Ok((fired, taken))
}

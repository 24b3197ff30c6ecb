//! Stateful rules decided inside the commit transaction: `after` reads correlation facts,
//! `once` reads and writes its marks, and the event's own facts are recorded, all in the
//! transaction that stores the event. Nothing is decided twice or against stale state.

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, Transaction};

use crate::engine::jobs_for;
use crate::event::Event;
use crate::rules::path::FieldPath;
use crate::rules::stateful::{Correlation, History, Threshold, WindowCounts};
use crate::rules::value::key_text;
use crate::rules::{Rule, RuleSet, Truth};
use crate::store::{NewEvent, NewJob, StoreError, millis};
use crate::template::context;

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
async fn fact_seen(
    tx: &mut Transaction<'_, Sqlite>,
    c: &Correlation,
    key: &str,
    from: i64,
    to: i64,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM facts WHERE kind = ? AND field = ? AND key = ? AND time BETWEEN ? AND ?)",
    )
    .bind(&c.event)
    .bind(c.same.as_str())
    .bind(key)
    .bind(from)
    .bind(to)
    .fetch_one(&mut **tx)
    .await?)
}

/// Decides `item`'s stateful rules; their jobs go to `jobs`. Returns the rules that fired.
pub(super) async fn decide<'a>(
    tx: &mut Transaction<'_, Sqlite>,
    rules: &RuleSet,
    item: &'a NewEvent,
    jobs: &mut Vec<(&'a NewEvent, NewJob)>,
) -> Result<Vec<String>, StoreError> {
    let ev = &item.event;
    let mut fired = Vec::new();
    for rule_id in &item.stateful {
        // The rule may have changed or gone since the request was planned.
        let Some(rule) = rules.get(rule_id).filter(|r| r.enabled) else {
            continue;
        };
        let mut correlations = Vec::new();
        rule.when.correlations(&mut correlations);
        let mut answers = Vec::with_capacity(correlations.len());
        for c in correlations {
            let Some(key) = c.key(ev) else { continue };
            let (from, to) = (millis(ev.time - c.within.to_chrono()), millis(ev.time));
            let seen = fact_seen(tx, c, &key, from, to).await?;
            answers.push((c.event.clone(), c.same.as_str().to_owned(), key, from, to, seen));
        }
        if rule.when.eval(ev, &Answers(answers)) != Truth::True {
            continue;
        }
        if let Some(absent) = &rule.absent {
            // A timer, unless the cancelling event already arrived (events come out of order).
            let Some(key) = absent.key(ev) else { continue };
            let (start, due) = (millis(ev.time), millis(ev.time + absent.within.to_chrono()));
            let cancelled = fact_seen(tx, absent, &key, start, due).await?;
            if !cancelled {
                sqlx::query("INSERT OR IGNORE INTO timers (rule_id, event_id, key, start, due_at) VALUES (?, ?, ?, ?, ?)")
                    .bind(&rule.id)
                    .bind(&ev.id)
                    .bind(&key)
                    .bind(start)
                    .bind(due)
                    .execute(&mut **tx)
                    .await?;
            }
            continue;
        }
        let mut vars = None;
        if let Some(th) = &rule.threshold {
            match window(tx, rules, rule, th, ev).await? {
                Some(v) => vars = Some(v),
                None => continue,
            }
        }
        if let Some(once) = &rule.once {
            let key = match rules.templates().render(&once.per, &context(ev, &rule.id, None)) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(rule = %rule.id, event = %ev.id, "once.per cannot be rendered: {e}");
                    continue;
                }
            };
            let until: Option<i64> =
                sqlx::query_scalar("SELECT until FROM marks WHERE rule_id = ? AND key = ?")
                    .bind(&rule.id)
                    .bind(&key)
                    .fetch_optional(&mut **tx)
                    .await?;
            if until.is_some_and(|u| u > millis(ev.time)) {
                continue;
            }
            sqlx::query(
                "INSERT INTO marks (rule_id, key, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (rule_id, key) DO UPDATE SET until = ?3",
            )
            .bind(&rule.id)
            .bind(&key)
            .bind(millis(ev.time + once.period.to_chrono()))
            .execute(&mut **tx)
            .await?;
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
async fn window(
    tx: &mut Transaction<'_, Sqlite>,
    rules: &RuleSet,
    rule: &Rule,
    th: &Threshold,
    ev: &Event,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
    let group = match &th.group_by {
        Some(tpl) => match rules.templates().render(tpl, &context(ev, &rule.id, None)) {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(rule = %rule.id, event = %ev.id, "threshold group_by cannot be rendered: {e}");
                return Ok(None);
            }
        },
        None => String::new(),
    };
    let window_ms = th.window.as_secs() as i64 * 1000;
    let size = (window_ms / 60).max(1000);
    let t = millis(ev.time);
    sqlx::query(
        "INSERT INTO window_counts (rule_id, grp, kind, bucket, n) VALUES (?, ?, ?, ?, 1)
         ON CONFLICT (rule_id, grp, kind, bucket) DO UPDATE SET n = n + 1",
    )
    .bind(&rule.id)
    .bind(&group)
    .bind(&ev.kind)
    .bind(t - t.rem_euclid(size))
    .execute(&mut **tx)
    .await?;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, SUM(n) FROM window_counts WHERE rule_id = ? AND grp = ? AND bucket > ? AND bucket <= ? GROUP BY kind",
    )
    .bind(&rule.id)
    .bind(&group)
    .bind(t - window_ms)
    .bind(t)
    .fetch_all(&mut **tx)
    .await?;
    let mut counts = WindowCounts::default();
    for (kind, n) in rows {
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
    let until: Option<i64> = sqlx::query_scalar("SELECT until FROM marks WHERE rule_id = ? AND key = ?")
        .bind(&rule.id)
        .bind(&key)
        .fetch_optional(&mut **tx)
        .await?;
    if until.is_some_and(|u| u > t) {
        return Ok(None);
    }
    let quiet = th.cooldown.unwrap_or(th.window);
    sqlx::query(
        "INSERT INTO marks (rule_id, key, until) VALUES (?1, ?2, ?3) ON CONFLICT (rule_id, key) DO UPDATE SET until = ?3",
    )
    .bind(&rule.id)
    .bind(&key)
    .bind(t + quiet.as_secs() as i64 * 1000)
    .execute(&mut **tx)
    .await?;
    Ok(Some(th.vars(&group, counts)))
}

/// Deletes the `absent` timers this event cancels: same key, within their period.
pub(super) async fn cancel_timers(
    tx: &mut Transaction<'_, Sqlite>,
    rules: &RuleSet,
    ev: &Event,
) -> Result<(), StoreError> {
    for rule in rules.rules() {
        let Some(absent) = rule.absent.as_ref().filter(|a| a.event == ev.kind) else {
            continue;
        };
        let Some(key) = absent.key(ev) else { continue };
        sqlx::query("DELETE FROM timers WHERE rule_id = ?1 AND key = ?2 AND start <= ?3 AND due_at >= ?3")
            .bind(&rule.id)
            .bind(&key)
            .bind(millis(ev.time))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Records the facts `after` conditions may later ask about this event.
pub(super) async fn record_facts(
    tx: &mut Transaction<'_, Sqlite>,
    rules: &RuleSet,
    ev: &Event,
) -> Result<(), StoreError> {
    for (kind, field) in rules.correlation_fields() {
        if kind != ev.kind {
            continue;
        }
        let Some(key) = field.first(&ev.data).and_then(key_text) else {
            continue;
        };
        sqlx::query("INSERT OR IGNORE INTO facts (kind, field, key, time) VALUES (?, ?, ?, ?)")
            .bind(kind)
            .bind(field.as_str())
            .bind(key)
            .bind(millis(ev.time))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Expiry, not growth: facts older than the longest `after` window (plus a day for late
/// events) and once-marks past their period are deleted.
pub(super) async fn prune(tx: &mut Transaction<'_, Sqlite>, rules: &RuleSet) -> Result<(), StoreError> {
    let now = Utc::now();
    let keep = rules
        .longest_correlation()
        .map_or(chrono::TimeDelta::zero(), |d| d.to_chrono())
        + chrono::TimeDelta::days(1);
    sqlx::query("DELETE FROM facts WHERE time < ?")
        .bind(millis(now - keep))
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM marks WHERE until < ?")
        .bind(millis(now))
        .execute(&mut **tx)
        .await?;
    let longest_window = rules
        .rules()
        .iter()
        .filter_map(|r| r.threshold.as_ref().map(|t| t.window))
        .max();
    let keep =
        longest_window.map_or(chrono::TimeDelta::zero(), |d| d.to_chrono()) + chrono::TimeDelta::days(1);
    sqlx::query("DELETE FROM window_counts WHERE bucket < ?")
        .bind(millis(now - keep))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Fires due `absent` timers: plans the rule's jobs for the event that started each timer
/// (job keys are the usual `event/rule/index`, so a timer fired again after a crash adds
/// nothing) and deletes the timer.
pub(super) async fn fire_timers(
    tx: &mut Transaction<'_, Sqlite>,
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    use sqlx::Row;
    let due = sqlx::query(
        "SELECT t.rule_id, t.event_id, t.key, t.start, t.due_at, e.source, e.type, e.time, e.payload, e.matched
         FROM timers t JOIN events e ON e.id = t.event_id WHERE t.due_at <= ? ORDER BY t.due_at LIMIT 200",
    )
    .bind(millis(now))
    .fetch_all(&mut **tx)
    .await?;
    let mut fired = 0;
    for row in &due {
        let rule_id: String = row.try_get("rule_id")?;
        let event_id: String = row.try_get("event_id")?;
        sqlx::query("DELETE FROM timers WHERE rule_id = ? AND event_id = ?")
            .bind(&rule_id)
            .bind(&event_id)
            .execute(&mut **tx)
            .await?;
        // The rule may have been edited away since the timer started.
        let Some(rule) = rules.get(&rule_id).filter(|r| r.enabled) else {
            continue;
        };
        let Some(absent) = &rule.absent else { continue };
        let (key, start, due_at): (String, i64, i64) =
            (row.try_get("key")?, row.try_get("start")?, row.try_get("due_at")?);
        let cancelled = fact_seen(tx, absent, &key, start, due_at).await?;
        if cancelled {
            continue;
        }
        let data: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>("payload")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let ev = Event {
            id: event_id.clone(),
            source: row.try_get("source")?,
            kind: row.try_get("type")?,
            time: crate::store::from_millis(row.try_get("time")?),
            data,
        };
        let planned = jobs_for(rules, rule, &ev, None, now);
        let rows: Vec<(&str, i64, &NewJob)> =
            planned.iter().map(|j| (ev.id.as_str(), millis(now), j)).collect();
        super::insert_jobs(tx, &rows).await?;
        let mut matched: Vec<String> =
            serde_json::from_str(&row.try_get::<String, _>("matched")?).unwrap_or_default();
        matched.push(rule_id);
        sqlx::query("UPDATE events SET matched = ? WHERE id = ?")
            .bind(serde_json::to_string(&matched).unwrap_or_else(|_| "[]".into()))
            .bind(&ev.id)
            .execute(&mut **tx)
            .await?;
        fired += 1;
    }
    Ok(fired)
}

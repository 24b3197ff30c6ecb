//! Stateful rules decided inside the commit transaction: `after` reads correlation facts,
//! `once` reads and writes its marks, and the event's own facts are recorded, all in the
//! transaction that stores the event. Nothing is decided twice or against stale state.

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, Transaction};

use crate::engine::jobs_for;
use crate::event::Event;
use crate::rules::path::FieldPath;
use crate::rules::stateful::{History, Threshold, WindowCounts};
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

    fn window(
        &self,
        _: &Rule,
        _: &Threshold,
        _: &str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: &dyn Fn(&Event) -> Option<String>,
    ) -> Option<WindowCounts> {
        None
    }
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
        let Some(rule) = rules
            .get(rule_id)
            .filter(|r| r.enabled && r.absent.is_none() && r.threshold.is_none())
        else {
            continue;
        };
        let mut correlations = Vec::new();
        rule.when.correlations(&mut correlations);
        let mut answers = Vec::with_capacity(correlations.len());
        for c in correlations {
            let Some(key) = c.key(ev) else { continue };
            let (from, to) = (millis(ev.time - c.within.to_chrono()), millis(ev.time));
            let seen: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM facts WHERE kind = ? AND field = ? AND key = ? AND time BETWEEN ? AND ?)",
            )
            .bind(&c.event)
            .bind(c.same.as_str())
            .bind(&key)
            .bind(from)
            .bind(to)
            .fetch_one(&mut **tx)
            .await?;
            answers.push((c.event.clone(), c.same.as_str().to_owned(), key, from, to, seen));
        }
        if rule.when.eval(ev, &Answers(answers)) != Truth::True {
            continue;
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
            jobs_for(rules, rule, ev, None, item.received_at)
                .into_iter()
                .map(|j| (item, j)),
        );
    }
    Ok(fired)
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
    Ok(())
}

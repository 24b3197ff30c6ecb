//! Contact lists and the suppression list on PostgreSQL. A contact's properties are a
//! JSON object kept as text and merged by `set` as RFC 7396 says (SQLite's `json_patch`),
//! here in hookflow under the row's lock, so both backends merge alike.

use chrono::{DateTime, Utc};
use postgres::{GenericClient, Row, Transaction};
use serde_json::{Map, Value};

use super::{Db, json_text};
use crate::store::{
    ContactChange, ContactRow, ListRow, StoreError, SuppressionRow, address_key, millis, rfc3339,
};

/// RFC 7396 merge patch: `patch`'s members replace `target`'s, `null` removes one, and
/// objects merge member by member.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The properties of a contact on `list`, locked for this transaction.
fn locked_properties(
    db: &mut Db<'_, Transaction<'_>>,
    list: &str,
    email: &str,
) -> Result<Option<Value>, StoreError> {
    db.opt(
        "SELECT properties FROM contacts WHERE list = $1 AND email = $2 FOR UPDATE",
        &[&list, &email],
    )?
    .map(|r| json_text(r.get::<_, &str>(0)))
    .transpose()
}

fn write_properties(
    db: &mut Db<'_, Transaction<'_>>,
    list: &str,
    email: &str,
    properties: &Value,
    now: i64,
) -> Result<(), StoreError> {
    db.exec(
        "UPDATE contacts SET properties = $1, updated_at = $2 WHERE list = $3 AND email = $4",
        &[&properties.to_string(), &now, &list, &email],
    )?;
    Ok(())
}

/// Applies a contact-list change and says what happened, for the audit trail.
pub(super) fn change_contact(
    db: &mut Db<'_, Transaction<'_>>,
    change: &ContactChange,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let now = millis(now);
    let done = match change {
        ContactChange::Add { list, email, set } => {
            let key = address_key(email);
            let patch = Value::Object(set.clone());
            let mut fresh = Value::Object(Map::new());
            merge_patch(&mut fresh, &patch);
            let added = db.exec(
                "INSERT INTO contacts (list, email, properties, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (list, email) DO NOTHING",
                &[list, &key, &fresh.to_string(), &now],
            )?;
            // There already (or added by another instance meanwhile): merged under its lock.
            if added == 0
                && let Some(mut properties) = locked_properties(db, list, &key)?
            {
                merge_patch(&mut properties, &patch);
                write_properties(db, list, &key, &properties, now)?;
            }
            format!("{email} is on list {list}")
        }
        ContactChange::Remove { list, email } => {
            let n = db.exec(
                "DELETE FROM contacts WHERE list = $1 AND email = $2",
                &[list, &address_key(email)],
            )?;
            if n == 1 {
                format!("{email} removed from list {list}")
            } else {
                format!("{email} was not on list {list}")
            }
        }
        ContactChange::Update { list, email, set } => {
            let key = address_key(email);
            match locked_properties(db, list, &key)? {
                Some(mut properties) => {
                    merge_patch(&mut properties, &Value::Object(set.clone()));
                    write_properties(db, list, &key, &properties, now)?;
                    format!("{email} updated on list {list}")
                }
                None => format!("{email} is not on list {list}: nothing to update"),
            }
        }
    };
    Ok(done)
}

pub(super) fn lists<C: GenericClient>(db: &mut Db<'_, C>) -> Result<Vec<ListRow>, StoreError> {
    Ok(db
        .rows(
            "SELECT list, COUNT(*) FROM contacts GROUP BY list ORDER BY list",
            &[],
        )?
        .iter()
        .map(|r| ListRow {
            list: r.get(0),
            contacts: r.get::<_, i64>(1).max(0) as u64,
        })
        .collect())
}

pub(super) fn contacts<C: GenericClient>(
    db: &mut Db<'_, C>,
    list: &str,
) -> Result<Vec<ContactRow>, StoreError> {
    db.rows(
        "SELECT email, properties, created_at, updated_at FROM contacts WHERE list = $1 ORDER BY email",
        &[&list],
    )?
    .iter()
    .map(|r| {
        Ok(ContactRow {
            email: r.get(0),
            properties: json_text(r.get::<_, &str>(1))?,
            created_at: rfc3339(r.get(2)),
            updated_at: rfc3339(r.get(3)),
        })
    })
    .collect()
}

/// Adds an address (the first reason stays); whether it was new.
pub(super) fn suppress(
    db: &mut Db<'_, Transaction<'_>>,
    email: &str,
    reason: &str,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = db.exec(
        "INSERT INTO suppressions (email, reason, event_id, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
        &[&address_key(email), &reason, &event_id, &millis(now)],
    )?;
    Ok(n == 1)
}

pub(super) fn unsuppress(db: &mut Db<'_, Transaction<'_>>, email: &str) -> Result<bool, StoreError> {
    let n = db.exec(
        "DELETE FROM suppressions WHERE email = $1",
        &[&address_key(email)],
    )?;
    Ok(n == 1)
}

fn suppression_row(r: &Row) -> SuppressionRow {
    SuppressionRow {
        email: r.get(0),
        reason: r.get(1),
        event_id: r.get(2),
        created_at: rfc3339(r.get(3)),
    }
}

/// The suppression entry of each of `emails` that is suppressed, in one query.
pub(super) fn suppressed<C: GenericClient>(
    db: &mut Db<'_, C>,
    emails: &[String],
) -> Result<Vec<SuppressionRow>, StoreError> {
    let keys: Vec<String> = emails.iter().map(|e| address_key(e)).collect();
    let rows = db.rows(
        "SELECT email, reason, event_id, created_at FROM suppressions WHERE email = ANY($1)",
        &[&keys],
    )?;
    let found: Vec<SuppressionRow> = rows.iter().map(suppression_row).collect();
    // In the order asked, as SQLite answers.
    let mut out = Vec::with_capacity(found.len());
    for key in &keys {
        if let Some(row) = found.iter().find(|r| &r.email == key) {
            out.push(row.clone());
        }
    }
    Ok(out)
}

pub(super) fn suppressions<C: GenericClient>(db: &mut Db<'_, C>) -> Result<Vec<SuppressionRow>, StoreError> {
    Ok(db
        .rows(
            "SELECT email, reason, event_id, created_at FROM suppressions ORDER BY created_at, email",
            &[],
        )?
        .iter()
        .map(suppression_row)
        .collect())
}

/// The stored key `name`, `fresh` if there was none (a second server inserting at the
/// same moment waits for the first, then reads its key).
pub(super) fn key(
    db: &mut Db<'_, Transaction<'_>>,
    name: &str,
    fresh: &str,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    db.exec(
        "INSERT INTO keys (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[&name, &fresh, &millis(now)],
    )?;
    Ok(db.one("SELECT value FROM keys WHERE name = $1", &[&name])?.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7396's own examples (appendix A), the ones an object patch can express.
    #[test]
    fn merges_as_rfc_7396_says() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (mut target, patch, want) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want, "{patch}");
        }
    }
}

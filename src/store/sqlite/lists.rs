//! Contact lists and the suppression list.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde_json::Value;

use super::json_column;
use crate::store::{
    ContactChange, ContactRow, ListRow, StoreError, SuppressionRow, address_key, millis, rfc3339,
};

/// Applies a contact-list change and says what happened, for the audit trail.
pub(super) fn change_contact(
    tx: &Transaction<'_>,
    change: &ContactChange,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let now = millis(now);
    let done = match change {
        ContactChange::Add { list, email, set } => {
            tx.prepare_cached(
                "INSERT INTO contacts (list, email, properties, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (list, email) DO UPDATE SET properties = json_patch(properties, ?3), updated_at = ?4",
            )?
            .execute(params![list, address_key(email), Value::Object(set.clone()).to_string(), now])?;
            format!("{email} is on list {list}")
        }
        ContactChange::Remove { list, email } => {
            let n = tx
                .prepare_cached("DELETE FROM contacts WHERE list = ? AND email = ?")?
                .execute(params![list, address_key(email)])?;
            if n == 1 {
                format!("{email} removed from list {list}")
            } else {
                format!("{email} was not on list {list}")
            }
        }
        ContactChange::Update { list, email, set } => {
            let n = tx
                .prepare_cached(
                    "UPDATE contacts SET properties = json_patch(properties, ?), updated_at = ?
                     WHERE list = ? AND email = ?",
                )?
                .execute(params![
                    Value::Object(set.clone()).to_string(),
                    now,
                    list,
                    address_key(email)
                ])?;
            if n == 1 {
                format!("{email} updated on list {list}")
            } else {
                format!("{email} is not on list {list}: nothing to update")
            }
        }
    };
    Ok(done)
}

pub(super) fn lists(conn: &Connection) -> Result<Vec<ListRow>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT list, COUNT(*) FROM contacts GROUP BY list ORDER BY list")?;
    let rows = stmt.query_map([], |r| {
        Ok(ListRow {
            list: r.get(0)?,
            contacts: r.get::<_, i64>(1)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn contacts(conn: &Connection, list: &str) -> Result<Vec<ContactRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT email, properties, created_at, updated_at FROM contacts WHERE list = ? ORDER BY email",
    )?;
    let rows = stmt.query_map([list], |r| {
        Ok(ContactRow {
            email: r.get(0)?,
            properties: json_column(r, 1)?,
            created_at: rfc3339(r.get(2)?),
            updated_at: rfc3339(r.get(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Adds an address (the first reason stays); whether it was new.
pub(super) fn suppress(
    tx: &Transaction<'_>,
    email: &str,
    reason: &str,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO suppressions (email, reason, event_id, created_at) VALUES (?, ?, ?, ?)",
        )?
        .execute(params![address_key(email), reason, event_id, millis(now)])?;
    Ok(n == 1)
}

pub(super) fn unsuppress(tx: &Transaction<'_>, email: &str) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached("DELETE FROM suppressions WHERE email = ?")?
        .execute([address_key(email)])?;
    Ok(n == 1)
}

const SUPPRESSION_SELECT: &str = "SELECT email, reason, event_id, created_at FROM suppressions";

fn suppression_row(r: &Row<'_>) -> rusqlite::Result<SuppressionRow> {
    Ok(SuppressionRow {
        email: r.get(0)?,
        reason: r.get(1)?,
        event_id: r.get(2)?,
        created_at: rfc3339(r.get(3)?),
    })
}

/// The suppression entry of each of `emails` that is suppressed.
pub(super) fn suppressed(conn: &Connection, emails: &[String]) -> Result<Vec<SuppressionRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{SUPPRESSION_SELECT} WHERE email = ?"))?;
    let mut out = Vec::new();
    for email in emails {
        if let Some(row) = stmt.query_row([address_key(email)], suppression_row).optional()? {
            out.push(row);
        }
    }
    Ok(out)
}

pub(super) fn suppressions(conn: &Connection) -> Result<Vec<SuppressionRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{SUPPRESSION_SELECT} ORDER BY created_at, email"))?;
    let rows = stmt.query_map([], suppression_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The stored key `name`, `fresh` if there was none.
pub(super) fn key(
    tx: &Connection,
    name: &str,
    fresh: &str,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    tx.prepare_cached("INSERT OR IGNORE INTO keys (name, value, created_at) VALUES (?, ?, ?)")?
        .execute(rusqlite::params![name, fresh, millis(now)])?;
    Ok(tx
        .prepare_cached("SELECT value FROM keys WHERE name = ?")?
        .query_row([name], |r| r.get(0))?)
}

//! `cancel: { rules: ["welcome/*"], contact: "{{email}}" }` — for one contact, the jobs
//! of the named rules not yet attempted, and their pending `absent` timers, are
//! cancelled. It is not delivered like the other kinds: the engine carries it out in the
//! transaction that stores the event (`engine`), so nothing planned before it can slip
//! through, and records what it did as the job's outcome.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{field, template};
use crate::base::diag::Cx;
use crate::base::yaml::{join_index, join_key};
use crate::template::{Templates, Tpl};

/// `cancel: { rules, contact }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCancel {
    /// Rule ids; `*` stands for any run of characters (`welcome/*`).
    pub rules: Vec<String>,
    /// Whose jobs: an address, lowercased (`{{email}}`).
    pub contact: String,
}

#[derive(Debug)]
pub struct CancelSpec {
    rules: Vec<String>,
    contact: Tpl,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderedCancel {
    pub rules: Vec<String>,
    pub contact: String,
}

impl CancelSpec {
    pub(crate) fn compile(cx: &mut Cx, t: &mut Templates, path: &str, raw: RawCancel) -> Option<Self> {
        let contact = template(cx, t, &join_key(path, "contact"), &raw.contact, false);
        let at = join_key(path, "rules");
        if raw.rules.is_empty() {
            cx.at_value(
                &at,
                "name at least one rule (`*` matches any run of characters)".to_owned(),
            );
            return None;
        }
        for (i, pattern) in raw.rules.iter().enumerate() {
            if pattern.trim().is_empty() || pattern.contains("{{") {
                cx.at_value(
                    &join_index(&at, i),
                    "a rule id or pattern such as `welcome/*`; it is not a template".to_owned(),
                );
                return None;
            }
        }
        Some(Self {
            rules: raw.rules,
            contact: contact?,
        })
    }

    pub fn render(&self, t: &Templates, ctx: &Value) -> Result<RenderedCancel, String> {
        let contact = field("contact", t.render(&self.contact, ctx))?;
        let contact = contact.trim().to_lowercase();
        if contact.is_empty() {
            return Err("contact: renders empty".into());
        }
        Ok(RenderedCancel {
            rules: self.rules.clone(),
            contact,
        })
    }
}

impl RenderedCancel {
    /// Whether rule `id` is one this cancel names.
    pub fn names(&self, id: &str) -> bool {
        self.rules.iter().any(|p| glob(p, id))
    }

    /// Reached only by a cancel stored before it was carried out (a store written by
    /// another version): there is nothing left to do that would still be exact.
    pub async fn execute<S: crate::store::Lists>(
        &self,
        _cx: &super::run::Exec<'_, S>,
    ) -> super::run::Attempted {
        super::run::Attempted::skipped("a cancel is carried out when its event is stored, not delivered")
    }
}

/// `*` matches any run of characters (`/` included); everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return pattern == text;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn caps_count_every_kind_but_cancel() {
        let kinds: Vec<&str> = crate::actions::KINDS
            .iter()
            .copied()
            .filter(|k| *k != "cancel")
            .collect();
        assert_eq!(kinds, crate::base::caps::COUNTABLE);
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("welcome/*", "welcome/reminder"));
        assert!(glob("welcome/*", "welcome/"));
        assert!(!glob("welcome/*", "welcomes/x"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(glob("*", "anything/at/all"));
        assert!(glob("a*b*c", "a-x-b-y-c"));
        assert!(!glob("a*b*c", "a-x-c-y-b"));
        assert!(glob("*/part-2", "welcome/part-2"));
        assert!(!glob("ab*ba", "aba"));
    }
}

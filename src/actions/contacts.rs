//! `contacts: { list, add | remove | update: EMAIL, set?: { prop: value } }`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::email::check_address;
use super::{JsonTpl, field, template};
use crate::base::diag::Cx;
use crate::base::yaml::join_key;
use crate::template::{Templates, Tpl};

/// A contact-list change: exactly one of `add`, `remove`, `update`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawContacts {
    /// The list's name.
    pub list: String,
    /// Add this address (a template) to the list.
    pub add: Option<String>,
    /// Remove this address from the list.
    pub remove: Option<String>,
    /// Update this address's properties (only if it is on the list).
    pub update: Option<String>,
    /// Properties to merge into the contact; string values are templates.
    pub set: Option<BTreeMap<String, Value>>,
}

#[derive(Debug)]
pub struct ContactsSpec {
    list: Tpl,
    op: ContactOp,
    email: Tpl,
    set: Vec<(String, JsonTpl)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactOp {
    Add,
    Remove,
    Update,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderedContacts {
    pub list: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<Map<String, Value>>,
}

impl ContactsSpec {
    pub(crate) fn compile(cx: &mut Cx, t: &mut Templates, path: &str, raw: RawContacts) -> Option<Self> {
        let list = template(cx, t, &join_key(path, "list"), &raw.list, false);
        let ops: Vec<(ContactOp, &str, &String)> = [
            (ContactOp::Add, "add", &raw.add),
            (ContactOp::Remove, "remove", &raw.remove),
            (ContactOp::Update, "update", &raw.update),
        ]
        .into_iter()
        .filter_map(|(op, name, v)| v.as_ref().map(|v| (op, name, v)))
        .collect();
        let [(op, name, email)] = ops.as_slice() else {
            cx.at_value(
                path,
                "give exactly one of `add`, `remove` or `update` with the contact's address",
            );
            return None;
        };
        let email = template(cx, t, &join_key(path, name), email, false);
        if *op == ContactOp::Remove && raw.set.is_some() {
            cx.at_key(
                &join_key(path, "set"),
                "`set` has no effect when removing a contact",
            );
            return None;
        }
        let mut set = Vec::new();
        let mut ok = true;
        for (k, v) in raw.set.iter().flatten() {
            match JsonTpl::compile(cx, t, &join_key(&join_key(path, "set"), k), v) {
                Some(j) => set.push((k.clone(), j)),
                None => ok = false,
            }
        }
        Some(Self {
            list: list?,
            op: *op,
            email: email?,
            set: ok.then_some(set)?,
        })
    }

    pub fn op(&self) -> ContactOp {
        self.op
    }

    pub fn render(&self, t: &Templates, ctx: &Value) -> Result<RenderedContacts, String> {
        let list = field("list", t.render(&self.list, ctx))?;
        if list.trim().is_empty() {
            return Err("list: rendered to an empty name".into());
        }
        let email = field("email", t.render(&self.email, ctx).and_then(check_address))?;
        let set = (!self.set.is_empty())
            .then(|| {
                self.set
                    .iter()
                    .map(|(k, v)| field(&format!("set.{k}"), v.render(t, ctx)).map(|v| (k.clone(), v)))
                    .collect::<Result<Map<_, _>, _>>()
            })
            .transpose()?;
        let mut out = RenderedContacts {
            list,
            add: None,
            remove: None,
            update: None,
            set,
        };
        match self.op {
            ContactOp::Add => out.add = Some(email),
            ContactOp::Remove => out.remove = Some(email),
            ContactOp::Update => out.update = Some(email),
        }
        Ok(out)
    }
}

impl RenderedContacts {
    /// Applies the change to the list; replaying it changes nothing more.
    pub async fn execute<S: crate::store::Lists>(
        &self,
        cx: &super::run::Exec<'_, S>,
    ) -> super::run::Attempted {
        use crate::store::ContactChange;
        let set = self.set.clone().unwrap_or_default();
        let list = self.list.clone();
        let change = match (&self.add, &self.remove, &self.update) {
            (Some(email), _, _) => ContactChange::Add {
                list,
                email: email.clone(),
                set,
            },
            (_, Some(email), _) => ContactChange::Remove {
                list,
                email: email.clone(),
            },
            (_, _, Some(email)) => ContactChange::Update {
                list,
                email: email.clone(),
                set,
            },
            _ => return super::run::Attempted::fail("a contacts action needs add, remove or update"),
        };
        match cx.store.change_contact(&change, cx.now).await {
            Ok(done) => super::run::Attempted::done(done),
            Err(e) => super::run::Attempted::store(e),
        }
    }
}

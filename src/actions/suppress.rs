//! `suppress: { email, reason }` and `unsuppress: { email }` — the global suppression list
//! that every `email` action checks before sending.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::email::check_address;
use super::{field, opt_template, render_opt, template};
use crate::base::diag::Cx;
use crate::base::yaml::join_key;
use crate::template::{Templates, Tpl};

/// `suppress: { email, reason }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSuppress {
    pub email: String,
    pub reason: Option<String>,
}

/// `unsuppress: { email }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUnsuppress {
    pub email: String,
}

#[derive(Debug)]
pub struct SuppressSpec {
    email: Tpl,
    reason: Option<Tpl>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderedSuppress {
    pub email: String,
    /// Defaults to the event type (`bounce`, `spam`), so the list says why.
    pub reason: String,
}

impl SuppressSpec {
    pub(crate) fn compile(cx: &mut Cx, t: &mut Templates, path: &str, raw: RawSuppress) -> Option<Self> {
        let email = template(cx, t, &join_key(path, "email"), &raw.email, false);
        let reason = opt_template(cx, t, &join_key(path, "reason"), raw.reason.as_deref());
        Some(Self {
            email: email?,
            reason: reason.ok()?,
        })
    }

    pub fn render(&self, t: &Templates, ctx: &Value) -> Result<RenderedSuppress, String> {
        let email = field("email", t.render(&self.email, ctx).and_then(check_address))?;
        let reason = match render_opt(t, ctx, "reason", &self.reason)? {
            Some(r) => r,
            None => ctx["event"]["type"].as_str().unwrap_or("suppressed").to_owned(),
        };
        Ok(RenderedSuppress { email, reason })
    }
}

#[derive(Debug)]
pub struct UnsuppressSpec {
    email: Tpl,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderedUnsuppress {
    pub email: String,
}

impl UnsuppressSpec {
    pub(crate) fn compile(cx: &mut Cx, t: &mut Templates, path: &str, raw: RawUnsuppress) -> Option<Self> {
        let email = template(cx, t, &join_key(path, "email"), &raw.email, false)?;
        Some(Self { email })
    }

    pub fn render(&self, t: &Templates, ctx: &Value) -> Result<RenderedUnsuppress, String> {
        Ok(RenderedUnsuppress {
            email: field("email", t.render(&self.email, ctx).and_then(check_address))?,
        })
    }
}

impl RenderedSuppress {
    /// Adds the address to the suppression list (the first reason stays).
    pub async fn execute<S: crate::store::Lists>(
        &self,
        cx: &super::run::Exec<'_, S>,
    ) -> super::run::Attempted {
        match cx
            .store
            .suppress(&self.email, &self.reason, Some(cx.event_id), cx.now)
            .await
        {
            Ok(true) => super::run::Attempted::done(format!("{} suppressed: {}", self.email, self.reason)),
            Ok(false) => super::run::Attempted::done(format!("{} was already suppressed", self.email)),
            Err(e) => super::run::Attempted::store(e),
        }
    }
}

impl RenderedUnsuppress {
    /// Takes the address off the suppression list.
    pub async fn execute<S: crate::store::Lists>(
        &self,
        cx: &super::run::Exec<'_, S>,
    ) -> super::run::Attempted {
        match cx.store.unsuppress(&self.email).await {
            Ok(true) => super::run::Attempted::done(format!("{} no longer suppressed", self.email)),
            Ok(false) => super::run::Attempted::done(format!("{} was not suppressed", self.email)),
            Err(e) => super::run::Attempted::store(e),
        }
    }
}

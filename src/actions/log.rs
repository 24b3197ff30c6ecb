//! `log: { message }` — a line in the server log and the event's audit trail.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{field, template};
use crate::base::diag::Cx;
use crate::base::yaml::join_key;
use crate::template::{Templates, Tpl};

/// `log: { message }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub message: String,
}

#[derive(Debug)]
pub struct LogSpec {
    message: Tpl,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderedLog {
    pub message: String,
}

impl LogSpec {
    pub(crate) fn compile(cx: &mut Cx, t: &mut Templates, path: &str, raw: RawLog) -> Option<Self> {
        let message = template(cx, t, &join_key(path, "message"), &raw.message, false)?;
        Some(Self { message })
    }

    pub fn render(&self, t: &Templates, ctx: &Value) -> Result<RenderedLog, String> {
        Ok(RenderedLog {
            message: field("message", t.render(&self.message, ctx))?,
        })
    }
}

impl RenderedLog {
    /// A line in the server log (escaped, as every log line is); the message is the record.
    pub async fn execute<S: crate::store::Lists>(
        &self,
        cx: &super::run::Exec<'_, S>,
    ) -> super::run::Attempted {
        tracing::info!(rule = %cx.rule_id, event = %cx.event_id, "{}", self.message);
        super::run::Attempted::done(self.message.clone())
    }
}

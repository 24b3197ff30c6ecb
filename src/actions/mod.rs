//! Actions: what a rule does when it fires. One file per kind; each compiles the raw YAML
//! (templates built once) and renders it for one event. Rendering is all a dry run does;
//! executors (SMTP, HTTP, store) consume the same rendered form.

pub mod contacts;
pub mod email;
pub mod http;
pub mod log;
pub mod suppress;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::base::diag::Cx;
use crate::base::duration::Duration;
use crate::base::yaml::join_key;
use crate::rules::file::RawAction;
use crate::template::{Templates, Tpl};

/// The kinds, for messages.
pub const KINDS: &[&str] = &["email", "http", "contacts", "suppress", "unsuppress", "log"];

/// A compiled action of a rule.
#[derive(Debug)]
pub struct ActionSpec {
    pub delay: Option<Duration>,
    pub kind: ActionKind,
}

#[derive(Debug)]
pub enum ActionKind {
    Email(Box<email::EmailSpec>),
    Http(Box<http::HttpSpec>),
    Contacts(contacts::ContactsSpec),
    Suppress(suppress::SuppressSpec),
    Unsuppress(suppress::UnsuppressSpec),
    Log(log::LogSpec),
}

/// An action rendered for one event: what would be (or will be) executed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rendered {
    #[serde(flatten)]
    pub action: RenderedKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RenderedKind {
    Email(email::RenderedEmail),
    Http(http::RenderedHttp),
    Contacts(contacts::RenderedContacts),
    Suppress(suppress::RenderedSuppress),
    Unsuppress(suppress::RenderedUnsuppress),
    Log(log::RenderedLog),
}

impl ActionSpec {
    /// Renders every template of the action against `ctx` (see [`crate::template::context`]).
    pub fn render(&self, t: &Templates, ctx: &Value) -> Result<Rendered, String> {
        let action = match &self.kind {
            ActionKind::Email(s) => RenderedKind::Email(s.render(t, ctx)?),
            ActionKind::Http(s) => RenderedKind::Http(s.render(t, ctx)?),
            ActionKind::Contacts(s) => RenderedKind::Contacts(s.render(t, ctx)?),
            ActionKind::Suppress(s) => RenderedKind::Suppress(s.render(t, ctx)?),
            ActionKind::Unsuppress(s) => RenderedKind::Unsuppress(s.render(t, ctx)?),
            ActionKind::Log(s) => RenderedKind::Log(s.render(t, ctx)?),
        };
        Ok(Rendered {
            action,
            delay: self.delay,
        })
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ActionKind::Email(_) => "email",
            ActionKind::Http(_) => "http",
            ActionKind::Contacts(_) => "contacts",
            ActionKind::Suppress(_) => "suppress",
            ActionKind::Unsuppress(_) => "unsuppress",
            ActionKind::Log(_) => "log",
        }
    }
}

/// Compiles one `actions:` entry; `None` after reporting its errors.
pub(crate) fn compile(cx: &mut Cx, t: &mut Templates, path: &str, raw: RawAction) -> Option<ActionSpec> {
    let RawAction {
        delay,
        email,
        http,
        contacts,
        suppress,
        unsuppress,
        log,
    } = raw;
    let given: Vec<&str> = [
        email.is_some(),
        http.is_some(),
        contacts.is_some(),
        suppress.is_some(),
        unsuppress.is_some(),
        log.is_some(),
    ]
    .iter()
    .zip(KINDS)
    .filter_map(|(set, name)| set.then_some(*name))
    .collect();
    if given.len() != 1 {
        let msg = if given.is_empty() {
            format!("this action has no kind; give one of: {}", KINDS.join(", "))
        } else {
            format!(
                "this action has {} kinds ({}); put each in its own `- ` entry",
                given.len(),
                given.join(", ")
            )
        };
        cx.at_value(path, msg);
        return None;
    }
    let here = join_key(path, given[0]);
    let kind = if let Some(raw) = email {
        ActionKind::Email(Box::new(email::EmailSpec::compile(cx, t, &here, raw)?))
    } else if let Some(raw) = http {
        ActionKind::Http(Box::new(http::HttpSpec::compile(cx, t, &here, raw)?))
    } else if let Some(raw) = contacts {
        ActionKind::Contacts(contacts::ContactsSpec::compile(cx, t, &here, raw)?)
    } else if let Some(raw) = suppress {
        ActionKind::Suppress(suppress::SuppressSpec::compile(cx, t, &here, raw)?)
    } else if let Some(raw) = unsuppress {
        ActionKind::Unsuppress(suppress::UnsuppressSpec::compile(cx, t, &here, raw)?)
    } else {
        ActionKind::Log(log::LogSpec::compile(cx, t, &here, log?)?)
    };
    Some(ActionSpec { delay, kind })
}

/// Compiles a template at `path` after `${env:…}` substitution. A substituted value is
/// data, not template: its `{{` are escaped so a secret can never be rendered as code.
pub(crate) fn template(cx: &mut Cx, t: &mut Templates, path: &str, text: &str, html: bool) -> Option<Tpl> {
    let source = match crate::base::env::substitute_with(text, |name| {
        std::env::var(name).ok().map(|v| v.replace("{{", "\\{{"))
    }) {
        Ok(s) => s,
        Err(msg) => {
            cx.at_value(path, msg);
            return None;
        }
    };
    match t.compile(&source, html) {
        Ok(tpl) => Some(tpl),
        Err(msg) => {
            cx.at_value(path, msg);
            None
        }
    }
}

/// Compiles an optional template field.
pub(crate) fn opt_template(
    cx: &mut Cx,
    t: &mut Templates,
    path: &str,
    text: Option<&str>,
) -> Result<Option<Tpl>, ()> {
    match text {
        None => Ok(None),
        Some(text) => template(cx, t, path, text, false).map(Some).ok_or(()),
    }
}

/// A JSON value whose string leaves are templates: event data fills leaves, it never
/// writes JSON syntax, so no payload can break the body.
#[derive(Debug)]
pub enum JsonTpl {
    Leaf(Tpl),
    Array(Vec<JsonTpl>),
    Object(Vec<(String, JsonTpl)>),
    Literal(Value),
}

impl JsonTpl {
    pub(crate) fn compile(cx: &mut Cx, t: &mut Templates, path: &str, value: &Value) -> Option<JsonTpl> {
        Some(match value {
            Value::String(s) => JsonTpl::Leaf(template(cx, t, path, s, false)?),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match JsonTpl::compile(cx, t, &crate::base::yaml::join_index(path, i), item) {
                        Some(j) => out.push(j),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                JsonTpl::Array(out)
            }
            Value::Object(map) => {
                let mut out = Vec::with_capacity(map.len());
                let mut ok = true;
                for (k, v) in map {
                    match JsonTpl::compile(cx, t, &join_key(path, k), v) {
                        Some(j) => out.push((k.clone(), j)),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                JsonTpl::Object(out)
            }
            other => JsonTpl::Literal(other.clone()),
        })
    }

    pub fn render(&self, t: &Templates, ctx: &Value) -> Result<Value, String> {
        Ok(match self {
            JsonTpl::Leaf(tpl) => t.render_value(tpl, ctx)?,
            JsonTpl::Array(items) => {
                Value::Array(items.iter().map(|i| i.render(t, ctx)).collect::<Result<_, _>>()?)
            }
            JsonTpl::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| v.render(t, ctx).map(|v| (k.clone(), v)))
                    .collect::<Result<_, _>>()?,
            ),
            JsonTpl::Literal(v) => v.clone(),
        })
    }
}

/// Names the field in a render error: `subject: the event has no field ...`.
pub(crate) fn field<T>(name: &str, r: Result<T, String>) -> Result<T, String> {
    r.map_err(|e| format!("{name}: {e}"))
}

/// Renders an optional template.
pub(crate) fn render_opt(
    t: &Templates,
    ctx: &Value,
    name: &str,
    tpl: &Option<Tpl>,
) -> Result<Option<String>, String> {
    tpl.as_ref()
        .map(|tpl| field(name, t.render(tpl, ctx)))
        .transpose()
}

//! Actions: what a rule does when it fires. One file (or folder) per kind; each compiles
//! the raw YAML (templates built once), renders it for one event, and executes the
//! rendered form ([`run`]: what an executor gets and returns). Rendering is all a dry run
//! does; delivery executes the same rendered form.

pub mod attempt;
pub mod cancel;
pub mod contacts;
pub mod email;
pub mod http;
pub mod log;
pub mod run;
pub mod suppress;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::base::caps::{Cap, WhenCapped};
use crate::base::diag::Cx;
use crate::base::duration::Duration;
use crate::base::yaml::join_key;
use crate::template::{Templates, Tpl};

/// Every action kind, spelled once: its key in a rule (the field of [`RawAction`]), the
/// variant, and its file's three forms — as written (`Raw…`), compiled (`…Spec`: templates
/// built) and rendered for one event (`Rendered…`: what runs, and what a dry run shows).
/// Adding a kind is a line here and a file beside this one.
macro_rules! kinds {
    ($( $(#[doc = $doc:literal])* $key:ident : $variant:ident ( $raw:ty, $spec:ty, $rendered:ty ) ),+ $(,)?) => {
        /// The kinds' keys, in the order the docs list them.
        pub const KINDS: &[&str] = &[$(stringify!($key)),+];

        /// One action. Exactly one of the kinds must be set.
        #[derive(Debug, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(extend("minProperties" = 1))]
        pub struct RawAction {
            /// Run this action later (durably), e.g. `2h`.
            pub delay: Option<Duration>,
            /// Hold the job until these hours and days in the contact's zone, e.g.
            /// `{ between: ["09:00", "20:00"], tz: "{{Payload.tz}}", fallback: UTC }`;
            /// `none` for none (email actions otherwise take the configuration's).
            pub send_window: Option<serde_json::Value>,
            /// The frequency cap this action counts against: `none`, or a cap's name.
            /// Default: every cap of the configuration that covers its kind.
            pub cap: Option<String>,
            /// Over the cap: `skip` (not sent) or `hold` (waits for room). Default: the
            /// cap's own.
            pub when_capped: Option<crate::base::caps::WhenCapped>,
            $( $(#[doc = $doc])* pub $key: Option<$raw>, )+
        }

        /// A compiled action's kind.
        #[derive(Debug)]
        pub enum ActionKind {
            $( $variant(Box<$spec>), )+
        }

        /// An action rendered for one event. Stored as JSON with its `kind`; read back
        /// with [`RenderedKind::from_value`].
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum RenderedKind {
            $( $variant($rendered), )+
        }

        impl ActionKind {
            pub fn name(&self) -> &'static str {
                match self {
                    $( ActionKind::$variant(_) => stringify!($key), )+
                }
            }

            fn render(&self, t: &Templates, ctx: &Value) -> Result<RenderedKind, String> {
                Ok(match self {
                    $( ActionKind::$variant(s) => RenderedKind::$variant(s.render(t, ctx)?), )+
                })
            }
        }

        impl RenderedKind {
            pub fn name(&self) -> &'static str {
                match self {
                    $( RenderedKind::$variant(_) => stringify!($key), )+
                }
            }

            /// Reads an action as stored (`{"kind": "http", …}`), kind by kind: serde's
            /// internally tagged form buffers the values first, and loses numbers beyond
            /// 64 bits on the way.
            pub fn from_value(value: Value) -> Result<Self, String> {
                let Value::Object(mut fields) = value else {
                    return Err("a stored action is an object".into());
                };
                let kind = match fields.remove("kind") {
                    Some(Value::String(k)) => k,
                    _ => return Err("a stored action has no `kind`".into()),
                };
                let rest = Value::Object(fields);
                match kind.as_str() {
                    $( stringify!($key) => serde_json::from_value(rest).map(RenderedKind::$variant).map_err(|e| e.to_string()), )+
                    other => Err(format!("no action kind `{other}`")),
                }
            }

            /// Runs the action; never panics, every failure is an [`run::Attempted`].
            pub async fn execute<S: crate::store::Lists>(&self, cx: &run::Exec<'_, S>) -> run::Attempted {
                match self {
                    $( RenderedKind::$variant(r) => r.execute(cx).await, )+
                }
            }
        }

        /// Compiles one `actions:` entry; `None` after reporting its errors.
        pub(crate) fn compile(cx: &mut Cx, t: &mut Templates, path: &str, raw: RawAction) -> Option<ActionSpec> {
            let given: Vec<&str> = [$( raw.$key.is_some() ),+]
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
            let RawAction { delay, send_window, cap, when_capped, $( $key ),+ } = raw;
            let send_window = window(cx, path, send_window, given[0] == "email")?;
            let caps = caps(cx, path, cap.as_deref(), when_capped.is_some(), given[0])?;
            $(
                if let Some(raw) = $key {
                    let spec = <$spec>::compile(cx, t, &here, raw)?;
                    return Some(ActionSpec {
                        delay,
                        send_window,
                        caps,
                        when_capped,
                        kind: ActionKind::$variant(Box::new(spec)),
                    });
                }
            )+
            None
        }
    };
}

kinds! {
    /// Send an email.
    email: Email(email::RawEmail, email::EmailSpec, email::RenderedEmail),
    /// Call a URL (an outbound webhook).
    http: Http(http::RawHttp, http::HttpSpec, http::RenderedHttp),
    /// Change a contact list.
    contacts: Contacts(contacts::RawContacts, contacts::ContactsSpec, contacts::RenderedContacts),
    /// Add an address to the global suppression list.
    suppress: Suppress(suppress::RawSuppress, suppress::SuppressSpec, suppress::RenderedSuppress),
    /// Remove an address from the global suppression list.
    unsuppress: Unsuppress(suppress::RawUnsuppress, suppress::UnsuppressSpec, suppress::RenderedUnsuppress),
    /// Write a line to the log and the event's audit trail.
    log: Log(log::RawLog, log::LogSpec, log::RenderedLog),
    /// Cancel, for one contact, the pending jobs and `absent` timers of the rules named.
    cancel: Cancel(cancel::RawCancel, cancel::CancelSpec, cancel::RenderedCancel),
}

/// The send window of an action: its own, `none`, or (for email) the configuration's.
/// `None` after reporting a mistake in it.
fn window(
    cx: &mut Cx,
    path: &str,
    written: Option<Value>,
    email: bool,
) -> Option<Option<crate::base::local_time::LocalTime>> {
    use crate::base::local_time::LocalTime;
    let at = join_key(path, "send_window");
    let yaml = match written {
        Some(Value::String(none)) if none == "none" => return Some(None),
        Some(v) => match serde_yaml::to_value(&v) {
            Ok(y) => y,
            Err(e) => {
                cx.at_value(&at, e.to_string());
                return None;
            }
        },
        None => match (email, cx.context.send_window.clone()) {
            (true, Some(default)) => default,
            _ => return Some(None),
        },
    };
    LocalTime::compile(cx, &at, &yaml, "send_window").map(Some)
}

/// The caps an action counts against: none for `cap: none`, the one named, or every cap
/// of the configuration covering its kind. `None` after reporting a mistake.
fn caps(cx: &mut Cx, path: &str, written: Option<&str>, when_capped: bool, kind: &str) -> Option<Vec<Cap>> {
    let known = cx.context.caps.clone();
    let caps = match (written, &known) {
        (Some("none"), _) => Vec::new(),
        // No configuration known (`hookflow check` without `--config`): nothing applies.
        (_, None) => Vec::new(),
        (Some(name), Some(all)) => match all.iter().find(|c| c.name == name) {
            Some(cap) => vec![cap.clone()],
            None => {
                let mut msg = format!("no cap `{name}` in the configuration");
                if let Some(best) =
                    crate::base::suggest::did_you_mean(name, all.iter().map(|c| c.name.as_str()))
                {
                    msg.push_str(&format!(" — did you mean `{best}`?"));
                }
                let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
                msg.push_str(&format!(
                    " (caps: {}; or `none`)",
                    if names.is_empty() {
                        "none configured".to_owned()
                    } else {
                        names.join(", ")
                    }
                ));
                cx.at_value(&join_key(path, "cap"), msg);
                return None;
            }
        },
        (None, Some(all)) => all
            .iter()
            .filter(|c| c.kinds.iter().any(|k| k == kind))
            .cloned()
            .collect(),
    };
    if kind == "cancel" && !caps.is_empty() {
        cx.at_value(&join_key(path, "cap"), "a cancel sends nothing: no cap counts it");
        return None;
    }
    if when_capped && caps.is_empty() && known.is_some() {
        cx.at_key(
            &join_key(path, "when_capped"),
            "`when_capped` is for an action a cap counts; no cap covers this one",
        );
        return None;
    }
    Some(caps)
}

/// A compiled action of a rule.
#[derive(Debug)]
pub struct ActionSpec {
    pub delay: Option<Duration>,
    /// Hours and days in the contact's zone outside which the job waits.
    pub send_window: Option<crate::base::local_time::LocalTime>,
    /// The frequency caps its jobs count against (per contact).
    pub caps: Vec<Cap>,
    /// Over a cap: the action's own choice, else the cap's.
    pub when_capped: Option<WhenCapped>,
    pub kind: ActionKind,
}

/// An action rendered for one event: what would be (or will be) executed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rendered {
    #[serde(flatten)]
    pub action: RenderedKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// The send window in the event's zone (stored with the job as `send_window`).
    #[serde(skip)]
    pub window: Option<crate::base::local_time::Window>,
}

impl Rendered {
    /// Reads an action as stored (see [`RenderedKind::from_value`]).
    pub fn from_value(mut value: Value) -> Result<Self, String> {
        let delay = match value.as_object_mut().and_then(|m| m.remove("delay")) {
            Some(d) => Some(serde_json::from_value(d).map_err(|e| format!("delay: {e}"))?),
            None => None,
        };
        // What the window was is the job's record; it was applied when the job was planned.
        if let Some(m) = value.as_object_mut() {
            m.remove("send_window");
            m.remove("held");
        }
        Ok(Self {
            action: RenderedKind::from_value(value)?,
            delay,
            window: None,
        })
    }
}

impl ActionSpec {
    /// Renders every template of the action against `ctx` (see [`crate::template::context`]).
    pub fn render(&self, t: &Templates, ctx: &Value) -> Result<Rendered, String> {
        Ok(Rendered {
            action: self.kind.render(t, ctx)?,
            delay: self.delay,
            window: self.send_window.as_ref().and_then(|w| w.resolve(ctx)),
        })
    }

    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }
}

/// Compiles a template at `path` after `${env:…}` substitution. A substituted value is
/// data, not template: its `{{` are escaped so a secret can never be rendered as code.
pub(crate) fn template(cx: &mut Cx, t: &mut Templates, path: &str, text: &str, html: bool) -> Option<Tpl> {
    if text.contains("contact.") {
        cx.reads_contact = true;
    }
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

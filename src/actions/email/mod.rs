//! `email: { to, subject, template | text | html, from?, reply_to?, cc?, bcc?, headers? }`:
//! compiled and rendered here, sent by [`send`].

pub mod mailer;
pub mod send;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{field, opt_template, render_opt, template};
use crate::base::diag::Cx;
use crate::base::suggest::did_you_mean;
use crate::base::yaml::StringList;
use crate::base::yaml::{join_index, join_key};
use crate::template::{Templates, Tpl};

/// An email. Body from `text`, `html` or `template` (files `templates/NAME.txt.hbs` and/or
/// `templates/NAME.html.hbs`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    /// Recipient address(es); templates.
    pub to: StringList,
    /// Subject line; a template (not HTML-escaped).
    pub subject: String,
    /// Name of a template pair in the templates folder.
    pub template: Option<String>,
    /// Plain-text body; a template.
    pub text: Option<String>,
    /// HTML body; a template whose values are HTML-escaped.
    pub html: Option<String>,
    /// Sender; defaults to the server's configured `from`.
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub cc: Option<StringList>,
    pub bcc: Option<StringList>,
    /// Extra headers; values are templates.
    pub headers: Option<BTreeMap<String, String>>,
    /// One-click unsubscribe (RFC 8058) from this list: adds `List-Unsubscribe` with a
    /// signed link for the recipient, and `List-Unsubscribe-Post`.
    pub unsubscribe: Option<RawUnsubscribeLink>,
}

/// `unsubscribe: { list }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUnsubscribeLink {
    /// The contact list the link removes the recipient from; a template.
    pub list: String,
}

#[derive(Debug)]
pub struct EmailSpec {
    to: Recipients<Tpl>,
    subject: Tpl,
    template: Option<String>,
    text: Option<Tpl>,
    html: Option<Tpl>,
    from: Option<Tpl>,
    reply_to: Option<Tpl>,
    cc: Option<Recipients<Tpl>>,
    bcc: Option<Recipients<Tpl>>,
    headers: Vec<(String, Tpl)>,
    /// The list a one-click link leaves, and the key that signs it.
    unsubscribe: Option<(Tpl, crate::base::one_click::OneClick)>,
}

/// One address or a list, echoing how the rule wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Recipients<T> {
    One(T),
    Many(Vec<T>),
}

impl Recipients<String> {
    /// Every address, for executors.
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        match self {
            Recipients::One(a) => std::slice::from_ref(a).iter(),
            Recipients::Many(v) => v.iter(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderedEmail {
    pub to: Recipients<String>,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cc: Option<Recipients<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bcc: Option<Recipients<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
}

impl EmailSpec {
    pub(crate) fn compile(cx: &mut Cx, t: &mut Templates, path: &str, raw: RawEmail) -> Option<Self> {
        let to = recipients(cx, t, &join_key(path, "to"), &raw.to);
        let subject = template(cx, t, &join_key(path, "subject"), &raw.subject, false);
        let text = opt_template(cx, t, &join_key(path, "text"), raw.text.as_deref());
        let html = match raw.html.as_deref() {
            Some(h) => template(cx, t, &join_key(path, "html"), h, true)
                .map(Some)
                .ok_or(()),
            None => Ok(None),
        };
        let from = opt_template(cx, t, &join_key(path, "from"), raw.from.as_deref());
        let reply_to = opt_template(cx, t, &join_key(path, "reply_to"), raw.reply_to.as_deref());
        let cc = raw
            .cc
            .as_ref()
            .map(|l| recipients(cx, t, &join_key(path, "cc"), l));
        let bcc = raw
            .bcc
            .as_ref()
            .map(|l| recipients(cx, t, &join_key(path, "bcc"), l));
        let mut headers = Vec::new();
        let mut headers_ok = true;
        for (name, value) in raw.headers.iter().flatten() {
            let here = join_key(&join_key(path, "headers"), name);
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                cx.at_key(
                    &here,
                    format!("`{name}` is not a valid header name (letters, digits and `-`)"),
                );
                headers_ok = false;
                continue;
            }
            match template(cx, t, &here, value, false) {
                Some(tpl) => headers.push((name.clone(), tpl)),
                None => headers_ok = false,
            }
        }
        let mut unsubscribe = Ok(None);
        if let Some(u) = &raw.unsubscribe {
            let here = join_key(path, "unsubscribe");
            if let Some((name, _)) = raw.headers.iter().flatten().find(|(k, _)| {
                k.eq_ignore_ascii_case("list-unsubscribe") || k.eq_ignore_ascii_case("list-unsubscribe-post")
            }) {
                cx.at_key(
                    &here,
                    format!("`unsubscribe` writes `{name}` itself; remove it from `headers`"),
                );
                unsubscribe = Err(());
            } else if raw.to.was_list && raw.to.items.len() > 1 {
                cx.at_key(
                    &here,
                    "a one-click link is for one recipient: give `to` one address",
                );
                unsubscribe = Err(());
            } else {
                // The server always has a key (configured, or made and kept in its store);
                // elsewhere links are made with one no server has.
                let key = cx
                    .context
                    .one_click
                    .clone()
                    .unwrap_or_else(|| crate::base::one_click::OneClick::offline(None));
                unsubscribe = template(cx, t, &join_key(&here, "list"), &u.list, false)
                    .map(|list| Some((list, key)))
                    .ok_or(());
            }
        }
        let body_ok = check_body(cx, t, path, &raw);
        Some(Self {
            to: to?,
            subject: subject?,
            template: raw.template,
            text: text.ok()?,
            html: html.ok()?,
            from: from.ok()?,
            reply_to: reply_to.ok()?,
            cc: cc.map_or(Some(None), |c| c.map(Some))?,
            bcc: bcc.map_or(Some(None), |c| c.map(Some))?,
            headers: (headers_ok && body_ok).then_some(headers)?,
            unsubscribe: unsubscribe.ok()?,
        })
    }

    pub fn render(&self, t: &Templates, ctx: &Value) -> Result<RenderedEmail, String> {
        let to = render_recipients(t, ctx, "to", &self.to)?;
        let subject = field("subject", t.render(&self.subject, ctx).and_then(one_line))?;
        let (mut text, mut html) = (
            render_opt(t, ctx, "text", &self.text)?,
            render_opt(t, ctx, "html", &self.html)?,
        );
        if let Some(name) = &self.template {
            let files = t.file(name).unwrap_or_default();
            if files.text {
                text = Some(t.render_file(name, false, ctx)?);
            }
            if files.html {
                html = Some(t.render_file(name, true, ctx)?);
            }
        }
        let mut headers = (!self.headers.is_empty())
            .then(|| {
                self.headers
                    .iter()
                    .map(|(k, v)| {
                        field(&format!("headers.{k}"), t.render(v, ctx).and_then(one_line))
                            .map(|v| (k.clone(), v))
                    })
                    .collect::<Result<BTreeMap<_, _>, _>>()
            })
            .transpose()?;
        if let Some((list, key)) = &self.unsubscribe {
            let list = field("unsubscribe.list", t.render(list, ctx).and_then(one_line))?;
            let contact = match to.iter().collect::<Vec<_>>().as_slice() {
                [one] => crate::store::address_key(one),
                _ => {
                    return Err(
                        "unsubscribe: a one-click link is for one recipient; `to` rendered several".into(),
                    );
                }
            };
            let h = headers.get_or_insert_with(BTreeMap::new);
            h.insert(
                "List-Unsubscribe".into(),
                format!("<{}>", key.url(&contact, &list)),
            );
            h.insert(
                "List-Unsubscribe-Post".into(),
                "List-Unsubscribe=One-Click".into(),
            );
        }
        Ok(RenderedEmail {
            to,
            subject,
            template: self.template.clone(),
            text,
            html,
            from: render_opt(t, ctx, "from", &self.from)?
                .map(check_address)
                .transpose()
                .map_err(|e| format!("from: {e}"))?,
            reply_to: render_opt(t, ctx, "reply_to", &self.reply_to)?
                .map(check_address)
                .transpose()
                .map_err(|e| format!("reply_to: {e}"))?,
            cc: self
                .cc
                .as_ref()
                .map(|c| render_recipients(t, ctx, "cc", c))
                .transpose()?,
            bcc: self
                .bcc
                .as_ref()
                .map(|c| render_recipients(t, ctx, "bcc", c))
                .transpose()?,
            headers,
        })
    }
}

/// A body is `template`, or `text` and/or `html`; a named template must exist.
fn check_body(cx: &mut Cx, t: &Templates, path: &str, raw: &RawEmail) -> bool {
    match (&raw.template, raw.text.is_some() || raw.html.is_some()) {
        (None, false) => {
            cx.at_value(path, "this email has no body: give `text`, `html` or `template`");
            false
        }
        (Some(_), true) => {
            cx.at_key(
                &join_key(path, "template"),
                "give either `template` or `text`/`html`, not both",
            );
            false
        }
        (Some(name), false) => {
            if t.file(name).is_some() {
                return true;
            }
            let mut msg = format!(
                "no template `{name}`: expected templates/{name}.txt.hbs and/or templates/{name}.html.hbs"
            );
            if let Some(best) = did_you_mean(name, t.file_names()) {
                let _ = write!(msg, " — did you mean `{best}`?");
            }
            cx.at_value(&join_key(path, "template"), msg);
            false
        }
        (None, true) => true,
    }
}

fn recipients(cx: &mut Cx, t: &mut Templates, path: &str, list: &StringList) -> Option<Recipients<Tpl>> {
    if list.items.is_empty() {
        cx.at_value(path, "no recipient given");
        return None;
    }
    if !list.was_list {
        return template(cx, t, path, &list.items[0], false).map(Recipients::One);
    }
    let tpls: Vec<Option<Tpl>> = list
        .items
        .iter()
        .enumerate()
        .map(|(i, s)| template(cx, t, &join_index(path, i), s, false))
        .collect();
    tpls.into_iter().collect::<Option<Vec<_>>>().map(Recipients::Many)
}

fn render_recipients(
    t: &Templates,
    ctx: &Value,
    name: &str,
    r: &Recipients<Tpl>,
) -> Result<Recipients<String>, String> {
    let one = |tpl: &Tpl| field(name, t.render(tpl, ctx).and_then(check_address));
    Ok(match r {
        Recipients::One(tpl) => Recipients::One(one(tpl)?),
        Recipients::Many(tpls) => Recipients::Many(tpls.iter().map(one).collect::<Result<_, _>>()?),
    })
}

/// A header's rendered value must stay one line. Encoding would not save it: lettre
/// writes a CR/LF as an RFC 2047 encoded word, which a reader decodes back into a line
/// break, so `Hi\r\nBcc: x@evil` from event data would add a recipient. Control
/// characters (and the Unicode line separators) are refused; the job fails and says why.
fn one_line(rendered: String) -> Result<String, String> {
    match rendered
        .chars()
        .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        Some(c) => Err(format!(
            "the rendered text contains a control character ({}); refused, as it could end the header and start another: `{}`",
            c.escape_unicode(),
            rendered.escape_debug()
        )),
        None => Ok(rendered),
    }
}

/// Accepts `a@b.c` and `Name <a@b.c>`, on one line; the SMTP sender validates fully, this
/// catches a template that rendered something that is plainly not an address, or a
/// display name carrying a line break.
pub fn check_address(rendered: String) -> Result<String, String> {
    let rendered = one_line(rendered)?;
    let s = rendered.trim();
    let addr = match (s.rfind('<'), s.ends_with('>')) {
        (Some(open), true) => &s[open + 1..s.len() - 1],
        _ => s,
    };
    let valid = match addr.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !addr.chars().any(|c| c.is_whitespace() || c == ',')
                && domain.contains('.')
        }
        None => false,
    };
    if valid {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}` is not an email address"))
    }
}

#[cfg(test)]
mod tests {
    use super::check_address;

    #[test]
    fn addresses() {
        assert_eq!(check_address(" a@b.com ".into()).unwrap(), "a@b.com");
        assert!(check_address("Ann <a@b.com>".into()).is_ok());
        for bad in [
            "",
            "ann",
            "a@",
            "@b.com",
            "a b@c.com",
            "a@b",
            "a@b.com, c@d.com",
            "Ann\r\nBcc: e@evil.com <a@b.com>",
            "Ann\u{2028} <a@b.com>",
        ] {
            assert!(check_address(bad.into()).is_err(), "{bad}");
        }
        assert!(super::one_line("Ünïcödé — 24h".into()).is_ok());
        let err = super::one_line("Hi\r\nBcc: e@evil.com".into()).unwrap_err();
        assert!(err.contains("control character (\\u{d})"), "{err}");
    }
}

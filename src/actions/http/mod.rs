//! `http: { url, method?, headers?, json? | body?, timeout?, sign? }` — an outbound webhook,
//! compiled and rendered here, sent by [`send`].

pub mod send;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{JsonTpl, field, opt_template, render_opt, template};
use crate::base::diag::Cx;
use crate::base::duration::Duration;
use crate::base::yaml::{StringList, join_key};
use crate::template::{Templates, Tpl};

/// An outbound HTTP request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// The URL; a template.
    pub url: String,
    /// GET, POST (default), PUT, PATCH or DELETE.
    pub method: Option<String>,
    /// Request headers; values are templates.
    pub headers: Option<BTreeMap<String, String>>,
    /// A JSON body; every string leaf is a template, so event data cannot break the JSON.
    pub json: Option<Value>,
    /// A raw body; a template.
    pub body: Option<String>,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
    /// Standard Webhooks signature: `true` (server's secret) or `{ secret: ... }`.
    pub sign: Option<RawSign>,
    /// HTTP basic auth, usually from `${env:…}`; the password is never stored with the job.
    pub auth: Option<RawBasicAuth>,
}

/// `{ username, password }` for HTTP basic auth.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub username: String,
    pub password: String,
}

/// How to sign an outbound request.
#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(untagged)]
pub enum RawSign {
    Enabled(bool),
    Secret {
        /// A `whsec_...` secret, usually `${env:NAME}`; a list signs with each (rotation).
        secret: StringList,
    },
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

#[derive(Debug)]
pub struct HttpSpec {
    url: Tpl,
    method: String,
    headers: Vec<(String, Tpl)>,
    json: Option<JsonTpl>,
    body: Option<Tpl>,
    timeout: Option<Duration>,
    sign: Option<Signing>,
    basic: Option<(String, String)>,
    /// Whether any part of the URL's host comes from event data (the SSRF guard applies).
    host_from_event: bool,
}

/// Where the signing secret comes from. The secret itself never appears in rendered output.
#[derive(Clone, Debug)]
pub enum Signing {
    /// The server's configured `http.signing_secret`.
    ServerSecret,
    /// Secrets given on the action (after `${env:…}` substitution); several while rotating.
    Secrets(Vec<crate::base::net::sign::Secret>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderedHttp {
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Whether the request is signed (Standard Webhooks).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sign: bool,
    /// The basic-auth user; the password stays in the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<String>,
    /// The URL's host comes from event data: private addresses are refused when sending.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_from_event: bool,
}

impl HttpSpec {
    pub(crate) fn compile(cx: &mut Cx, t: &mut Templates, path: &str, raw: RawHttp) -> Option<Self> {
        let url_path = join_key(path, "url");
        let url = template(cx, t, &url_path, &raw.url, false);
        if let Some(u) = &url {
            let src = u.source();
            if !src.starts_with("{{") && !src.starts_with("http://") && !src.starts_with("https://") {
                cx.at_value(
                    &url_path,
                    format!("`{src}` is not a URL: it must start with http:// or https://"),
                );
            }
        }
        let method = raw.method.as_deref().unwrap_or("POST").to_ascii_uppercase();
        let mut ok = true;
        if !METHODS.contains(&method.as_str()) {
            cx.at_value(
                &join_key(path, "method"),
                format!("unknown method `{method}`; use one of: {}", METHODS.join(", ")),
            );
            ok = false;
        }
        if raw.json.is_some() && raw.body.is_some() {
            cx.at_key(&join_key(path, "body"), "give either `json` or `body`, not both");
            ok = false;
        }
        if method == "GET" && (raw.json.is_some() || raw.body.is_some()) {
            cx.at_key(
                &join_key(path, "method"),
                "a GET request carries no body; use POST, or drop `json`/`body`",
            );
            ok = false;
        }
        let mut headers = Vec::new();
        for (name, value) in raw.headers.iter().flatten() {
            let here = join_key(&join_key(path, "headers"), name);
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                cx.at_key(&here, format!("`{name}` is not a valid header name"));
                ok = false;
                continue;
            }
            match template(cx, t, &here, value, false) {
                Some(tpl) => headers.push((name.clone(), tpl)),
                None => ok = false,
            }
        }
        let json = match &raw.json {
            Some(v) => JsonTpl::compile(cx, t, &join_key(path, "json"), v).map(Some),
            None => Some(None),
        };
        let body = opt_template(cx, t, &join_key(path, "body"), raw.body.as_deref());
        let sign_path = join_key(path, "sign");
        let sign = match raw.sign {
            None | Some(RawSign::Enabled(false)) => Some(None),
            Some(RawSign::Enabled(true)) if !cx.context.signing_secret => {
                cx.at_value(
                    &sign_path,
                    "`sign: true` signs with the server's `http.signing_secret`, and this server has none; set it in hookflow.yaml or give `sign: { secret: … }`",
                );
                None
            }
            Some(RawSign::Enabled(true)) => Some(Some(Signing::ServerSecret)),
            Some(RawSign::Secret { secret }) => {
                let here = join_key(&sign_path, "secret");
                let mut secrets = Vec::new();
                for (i, text) in secret.items.iter().enumerate() {
                    let at = if secret.was_list {
                        crate::base::yaml::join_index(&here, i)
                    } else {
                        here.clone()
                    };
                    let Some(text) = cx.env(&at, text) else { continue };
                    match crate::base::net::sign::Secret::parse(&text) {
                        Ok(s) => secrets.push(s),
                        Err(e) => cx.at_value(&at, e),
                    }
                }
                if secret.items.is_empty() {
                    cx.at_value(&here, "give at least one secret");
                }
                (secrets.len() == secret.items.len() && !secrets.is_empty())
                    .then_some(Some(Signing::Secrets(secrets)))
            }
        };
        let basic = match raw.auth {
            Some(a) => {
                let here = join_key(path, "auth");
                let user = cx.env(&join_key(&here, "username"), &a.username);
                let password = cx.env(&join_key(&here, "password"), &a.password);
                Some(Some((user?, password?)))
            }
            None => Some(None),
        };
        let host_from_event = url.as_ref().is_some_and(|u| !literal_host(u.source()));
        Some(Self {
            basic: basic?,
            host_from_event,
            url: url?,
            method: ok.then_some(method)?,
            headers,
            json: json?,
            body: body.ok()?,
            timeout: raw.timeout,
            sign: sign?,
        })
    }

    pub fn signing(&self) -> Option<&Signing> {
        self.sign.as_ref()
    }

    /// User and password for basic auth, if the action has them.
    pub fn basic_auth(&self) -> Option<&(String, String)> {
        self.basic.as_ref()
    }

    pub fn render(&self, t: &Templates, ctx: &Value) -> Result<RenderedHttp, String> {
        let url = field("url", t.render(&self.url, ctx))?;
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return Err(format!("url: `{url}` is not an http:// or https:// URL"));
        }
        let headers = (!self.headers.is_empty())
            .then(|| {
                self.headers
                    .iter()
                    .map(|(k, v)| field(&format!("headers.{k}"), t.render(v, ctx)).map(|v| (k.clone(), v)))
                    .collect::<Result<BTreeMap<_, _>, _>>()
            })
            .transpose()?;
        Ok(RenderedHttp {
            method: self.method.clone(),
            url,
            headers,
            json: self
                .json
                .as_ref()
                .map(|j| field("json", j.render(t, ctx)))
                .transpose()?,
            body: render_opt(t, ctx, "body", &self.body)?,
            timeout: self.timeout,
            sign: self.sign.is_some(),
            basic_auth: self.basic.as_ref().map(|(user, _)| user.clone()),
            host_from_event: self.host_from_event,
        })
    }
}

/// Whether a URL template fixes its host: the scheme and the whole authority are written
/// out before the first `{{`, ended by `/`, `?` or `#`. Anything else lets event data choose
/// where the request goes — `{{url}}`, `{{default cb "https://x"}}`, `{{#if cb}}…{{/if}}`,
/// `{{scheme}}://h/`, `https://{{tenant}}.x.com/`, `https://h:{{port}}/`, `https://x.com{{path}}`
/// (the path could start with `.evil` or `@10.0.0.1`) — and the rendered URL's host is
/// then checked when sending. Deciding from the template's text rather than from what it
/// contains is the point: no helper or block can hide a host.
fn literal_host(src: &str) -> bool {
    let Some(first) = src.find("{{") else {
        return true;
    };
    let head = &src[..first];
    let Some(rest) = head
        .strip_prefix("https://")
        .or_else(|| head.strip_prefix("http://"))
    else {
        return false;
    };
    rest.find(['/', '?', '#']).is_some_and(|end| end > 0)
}

#[cfg(test)]
mod tests {
    use super::literal_host;

    #[test]
    fn only_a_fully_written_authority_is_literal() {
        for literal in [
            "https://crm.example.com/x/{{id}}",
            "http://h:8080?q={{a}}",
            "https://h.example#{{frag}}",
            "https://user@h.example/{{p}}",
            "https://no-template.example",
        ] {
            assert!(literal_host(literal), "{literal}");
        }
        for from_event in [
            "{{url}}",
            "{{default callback_url \"https://x.example/\"}}",
            "{{#if cb}}{{cb}}{{else}}https://x.example/{{/if}}",
            "{{scheme}}://host.example/",
            "https://{{tenant}}.example.com/x",
            "https://h.example:{{port}}/",
            "https://h.example{{path}}",
            "https://{{host}}",
            "https:///{{x}}",
            "ftp://h.example/{{x}}",
        ] {
            assert!(!literal_host(from_event), "{from_event}");
        }
    }
}

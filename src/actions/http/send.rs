//! Sending an `http` action: headers, the Standard Webhooks signature, the SSRF guard's
//! choice of client (see [`crate::base::net::client`](mod@crate::base::net::client)), and what the answer means.

use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::RenderedHttp;
use crate::actions::run::{Attempted, Exec, Outcome};
use crate::base::duration::Duration;
use crate::store::Lists;

/// Response bodies are kept up to this size in the audit trail.
pub const MAX_RESPONSE: usize = 20 * 1024;

impl RenderedHttp {
    /// Sends the request. A 2xx succeeds; `410 Gone` ends the job; `429`/`503` retry no
    /// sooner than their `Retry-After`; anything else (a 3xx: redirects are not followed,
    /// a timeout, a refused connection) is retried per the schedule.
    pub async fn execute<S: Lists>(&self, cx: &Exec<'_, S>) -> Attempted {
        send(self, cx).await
    }
}

async fn send<S: Lists>(action: &RenderedHttp, ctx: &Exec<'_, S>) -> Attempted {
    let method = match reqwest::Method::from_bytes(action.method.as_bytes()) {
        Ok(m) => m,
        Err(_) => return Attempted::fail(format!("invalid method `{}`", action.method)),
    };
    let (body, content_type) = match (&action.json, &action.body) {
        (Some(json), _) => (json.to_string(), Some("application/json")),
        (None, Some(body)) => (body.clone(), None),
        (None, None) => (String::new(), None),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in action.headers.iter().flatten() {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                headers.insert(n, v);
            }
            _ => return Attempted::fail(format!("header `{name}` has a value that cannot be sent")),
        }
    }
    if let Some(ct) = content_type {
        headers
            .entry(reqwest::header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static(ct));
    }
    let id = HeaderValue::from_str(ctx.key).unwrap_or(HeaderValue::from_static("invalid"));
    headers.insert("webhook-id", id);
    if action.sign {
        if ctx.signing_secrets.is_empty() {
            return Attempted::fail(
                "`sign: true` but no signing secret is configured (`http.signing_secret`)",
            );
        }
        let timestamp = Utc::now().timestamp();
        let signature =
            crate::base::net::sign::sign(ctx.signing_secrets, ctx.key, timestamp, body.as_bytes());
        headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
        match HeaderValue::from_str(&signature) {
            Ok(v) => {
                headers.insert("webhook-signature", v);
            }
            Err(_) => return Attempted::fail("the signature cannot be sent as a header"),
        }
    }
    let client = match ctx.clients.for_url(&action.url, action.host_from_event) {
        Ok(c) => c,
        Err(refused) => return Attempted::fail(refused),
    };
    let timeout = action.timeout.unwrap_or(ctx.timeout).to_std();
    let mut request = client
        .request(method, &action.url)
        .headers(headers)
        .timeout(timeout)
        .body(body);
    if action.basic_auth.is_some() {
        match ctx.basic_auth {
            Some((user, password)) => request = request.basic_auth(user, Some(password)),
            None => return Attempted::fail("the basic-auth credentials are no longer in the rule"),
        }
    }
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            // The guard's refusal surfaces as a connection error; it is final, not a hiccup.
            if let Some(refused) = crate::base::net::client::refusal(&e) {
                return Attempted::fail(refused.to_string());
            }
            let error = if e.is_timeout() {
                format!("timed out after {}s", timeout.as_secs())
            } else {
                format!("request failed: {}", crate::base::diag::error_chain(&e))
            };
            return Attempted::retry(error);
        }
    };
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    while body.len() < MAX_RESPONSE {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_RESPONSE);
    let outcome = match status.as_u16() {
        200..=299 => Outcome::Success,
        410 => Outcome::Permanent,
        429 | 503 => Outcome::Retryable { retry_after },
        _ => Outcome::Retryable { retry_after: None },
    };
    Attempted {
        outcome,
        status_code: Some(status.as_u16()),
        response: Some(String::from_utf8_lossy(&body).into_owned()),
        error: (!status.is_success()).then(|| format!("HTTP {status}")),
    }
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = (at.with_timezone(&Utc) - Utc::now()).num_seconds();
    Some(Duration::from_secs(secs.max(0) as u64))
}

//! One-click unsubscribe (RFC 8058): `POST /u/{token}` is what a mail client sends when
//! the reader clicks "Unsubscribe" (body `List-Unsubscribe=One-Click`); `GET /u/{token}`
//! is a person following the link, who gets a page with a button — a GET changes
//! nothing, because mail scanners fetch every link they see.
//!
//! A POST removes the address from the token's list, suppresses it when the
//! configuration says so, and ingests an `unsub` event from source `hookflow` (the event
//! fields: `email`, `list`, `via: one-click`) that rules see like any other: a `cancel`
//! on `unsub` ends the welcome series of someone who left this way too.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::{AppState, hooks};
use crate::event::{Event, content_id};
use crate::store::{ContactChange, Store};

/// The source name of the events hookflow makes itself.
pub const SOURCE: &str = "hookflow";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\n<body style=\"font-family: sans-serif; max-width: 32rem; margin: 3rem auto\">\n\
         <h1>{title}</h1>\n{body}\n</body></html>\n"
    );
    (status, Html(html)).into_response()
}

fn escape(text: &str) -> String {
    handlebars::html_escape(text)
}

/// The contact and list of a valid token.
fn check<S>(st: &AppState<S>, token: &str) -> Option<(String, String)> {
    st.config.one_click.as_ref()?.verify(token)
}

fn unknown() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not recognised",
        "<p>This unsubscribe link is not valid (it may have been cut short).</p>",
    )
}

pub async fn confirm<S: Store>(State(st): State<AppState<S>>, Path(token): Path<String>) -> Response {
    let Some((email, list)) = check(&st, &token) else {
        return unknown();
    };
    page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop emails from the list <b>{}</b> to <b>{}</b>?</p>\n\
             <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>",
            escape(&list),
            escape(&email)
        ),
    )
}

pub async fn unsubscribe<S: Store>(State(st): State<AppState<S>>, Path(token): Path<String>) -> Response {
    let Some((email, list)) = check(&st, &token) else {
        return unknown();
    };
    let now = st.clock.now();
    let removed = st
        .store
        .change_contact(
            &ContactChange::Remove {
                list: list.clone(),
                email: email.clone(),
            },
            now,
        )
        .await;
    let suppressed = match st.config.unsubscribe_suppresses {
        true => st
            .store
            .suppress(
                &email,
                &format!("unsubscribed from {list} (one-click)"),
                None,
                now,
            )
            .await
            .map(|_| ()),
        false => Ok(()),
    };
    if let Err(e) = removed.and(suppressed) {
        tracing::error!("one-click unsubscribe not applied: {e}");
        return unavailable();
    }
    let data = json!({
        "event": "unsub",
        "email": email,
        "list": list,
        "via": "one-click",
        "time": now.timestamp(),
    });
    let ev = Event {
        id: content_id(SOURCE, &data),
        source: SOURCE.into(),
        kind: "unsub".into(),
        time: now,
        data,
    };
    let batch = hooks::plan(&st, vec![ev]);
    if let Err(e) = hooks::commit(&st, batch).await {
        tracing::error!("one-click unsubscribe event not stored: {e}");
        return unavailable();
    }
    st.metrics.event(SOURCE, "unsub");
    page(
        StatusCode::OK,
        "Unsubscribed",
        &format!(
            "<p><b>{}</b> will get no more emails from the list <b>{}</b>.</p>",
            escape(&email),
            escape(&list)
        ),
    )
}

/// Nothing was lost: the client may try again.
fn unavailable() -> Response {
    let mut r = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "<p>We could not record this just now. Please try again in a minute.</p>",
    );
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("30"),
    );
    r
}

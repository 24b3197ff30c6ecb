//! `POST /hooks/{source}` and `/hooks/{source}/{type}`: authenticate, decode, plan, commit,
//! and only then answer `200 OK`. Nothing slow happens here: no network, no SMTP.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::{mpsc::error::TrySendError, oneshot};

use super::AppState;
use crate::engine;
use crate::ingest::Submit;
use crate::sources::auth;
use crate::store::Store;

pub async fn ingest<S: Store>(
    State(st): State<AppState<S>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(st, source, None, headers, body).await
}

pub async fn ingest_typed<S: Store>(
    State(st): State<AppState<S>>,
    Path((source, kind)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(st, source, Some(kind), headers, body).await
}

fn refuse<S>(st: &AppState<S>, status: StatusCode, message: String) -> Response {
    st.metrics.rejected(status.as_u16());
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error": message }).to_string(),
    )
        .into_response()
}

async fn handle<S: Store>(
    st: AppState<S>,
    source: String,
    kind: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(spec) = st.sources.get(&source) else {
        let known: Vec<&str> = st.sources.keys().map(String::as_str).collect();
        return refuse(
            &st,
            StatusCode::NOT_FOUND,
            format!("unknown source `{source}`; this server has: {}", known.join(", ")),
        );
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" && !media.ends_with("+json") {
        return refuse(
            &st,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected Content-Type: application/json, got `{content_type}`"),
        );
    }
    if let Some(auth) = &spec.auth
        && let Err(e) = auth::verify(
            auth,
            |name| headers.get(name).and_then(|v| v.to_str().ok()),
            &body,
        )
    {
        let mut response = refuse(&st, StatusCode::UNAUTHORIZED, e.to_string());
        if matches!(auth, crate::config::Auth::Basic { .. }) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"hookflow\"".parse().expect("valid header"),
            );
        }
        return response;
    }
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return refuse(
                &st,
                StatusCode::BAD_REQUEST,
                format!("body is not valid JSON: {e}"),
            );
        }
    };
    let now = st.clock.now();
    let events = match spec.decode(&source, parsed, kind.as_deref(), now) {
        Ok(events) => events,
        Err(e) => return refuse(&st, StatusCode::BAD_REQUEST, e.to_string()),
    };
    let rules = st.rules.load_full();
    let batch: Vec<_> = events
        .into_iter()
        .map(|ev| engine::plan(&rules, ev, now))
        .collect();
    let summary: Vec<(String, String, Vec<String>)> = batch
        .iter()
        .map(|e| (e.event.source.clone(), e.event.kind.clone(), e.matched.clone()))
        .collect();
    let (reply, answer) = oneshot::channel();
    match st.ingest.try_send(Submit { batch, reply }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            let mut r = refuse(
                &st,
                StatusCode::SERVICE_UNAVAILABLE,
                "busy: too many requests waiting to be stored; retry shortly".into(),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, "1".parse().expect("valid header"));
            return r;
        }
        Err(TrySendError::Closed(_)) => {
            return refuse(
                &st,
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down; retry shortly".into(),
            );
        }
    }
    match answer.await {
        Ok(Ok(inserted)) => {
            for ((source, kind, matched), new) in summary.iter().zip(inserted) {
                if new {
                    st.metrics.event(source, kind);
                    matched.iter().for_each(|r| st.metrics.matched(r));
                } else {
                    st.metrics.duplicate();
                }
            }
            (StatusCode::OK, "OK").into_response()
        }
        Ok(Err(e)) => {
            tracing::error!("events not stored: {e}");
            refuse(
                &st,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the events were not stored; retry".into(),
            )
        }
        Err(_) => refuse(
            &st,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: the events were not stored; retry".into(),
        ),
    }
}

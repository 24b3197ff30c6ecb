//! Every HTTP status the server answers, through the router itself (no socket): the
//! ingest handler's refusals and the admin API's, each with its JSON body.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use super::{AppState, router};
use crate::base::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::sources::{Auth, Source, Sources};
use crate::store::sqlite::SqliteStore;

/// A server's state on a fresh store, a `mailjet` source with basic auth and an open
/// one, and an ingest queue of `queue` whose writer runs only if `writer`.
async fn state(dir: &std::path::Path, queue: usize, writer: bool) -> AppState<SqliteStore> {
    let mut config = Config::defaults(dir);
    config.body_limit = 1024;
    config.admin_token = Some("t0ken".into());
    let mut sources = std::collections::BTreeMap::new();
    sources.insert(
        "mailjet".to_owned(),
        Source::new(
            crate::sources::mailjet::Mailjet,
            Some(Auth::Basic {
                username: "mj".into(),
                password: "pw".into(),
            }),
        ),
    );
    sources.insert(
        "open".to_owned(),
        Source::new(crate::sources::mailjet::Mailjet, None),
    );
    config.sources = Sources(sources);
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.join("h.db"), crate::store::Durability::Full)
            .await
            .unwrap(),
    );
    let metrics = Arc::new(Metrics::new());
    let reloader = Arc::new(Reloader::new(
        dir.join("rules"),
        dir.join("templates"),
        config.rules_context(),
        config.sources.clone(),
        metrics.clone(),
        None,
    ));
    let rules = reloader.rules();
    let wake = Arc::new(watch::channel(0u64).0);
    let (tx, rx) = mpsc::channel(queue);
    if writer {
        tokio::spawn(crate::ingest::writer(
            store.clone(),
            rules.clone(),
            rx,
            wake.clone(),
            metrics.clone(),
        ));
    } else {
        // Nobody drains the queue: it stays full.
        std::mem::forget(rx);
    }
    AppState {
        config: Arc::new(config.clone()),
        rules,
        store,
        ingest: tx,
        wake,
        metrics,
        sources: Arc::new(config.sources),
        reloader,
        clock: Clock::system(),
        firing: Arc::default(),
        rejections: Arc::default(),
    }
}

fn basic(user: &str, password: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b64}")
}

const OPEN: &str = r#"{"event": "open", "time": 1433103519, "email": "a@b.co", "MessageID": 1}"#;

async fn call(
    app: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into());
    (status, body, headers)
}

fn post(uri: &str, content_type: &str, auth: Option<&str>, body: &str) -> Request<Body> {
    let mut r = Request::post(uri).header("content-type", content_type);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn ingest_answers_every_status_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(state(dir.path(), 16, true).await);
    let json = "application/json";
    let good = basic("mj", "pw");
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post("/hooks/mailjet", json, Some(&good), OPEN),
            StatusCode::OK,
            "",
        ),
        (
            post("/hooks/nope", json, None, OPEN),
            StatusCode::NOT_FOUND,
            "unknown source",
        ),
        (
            post("/hooks/mailjet", json, None, OPEN),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            post("/hooks/mailjet", json, Some(&basic("mj", "no")), OPEN),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            post("/hooks/mailjet", "text/plain", Some(&good), OPEN),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type",
        ),
        (
            post("/hooks/open", json, None, "{"),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            post("/hooks/open", json, None, "[]"),
            StatusCode::BAD_REQUEST,
            "the batch is empty",
        ),
        (
            post("/hooks/open/click", json, None, OPEN),
            StatusCode::BAD_REQUEST,
            "posted to the URL for `click`",
        ),
        (
            post("/hooks/open", json, None, &format!("[{}]", [OPEN; 20].join(","))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than 1024 bytes",
        ),
    ];
    for (request, status, reason) in cases {
        let uri = request.uri().to_string();
        let (got, body, headers) = call(&app, request).await;
        assert_eq!(got, status, "{uri}: {body}");
        if status == StatusCode::OK {
            assert_eq!(body, "OK");
        } else {
            assert!(body["error"].as_str().unwrap().contains(reason), "{uri}: {body}");
        }
        if status == StatusCode::UNAUTHORIZED {
            // Why a credential failed is for the log only.
            assert_eq!(body["error"], "unauthorized", "{uri}");
            assert_eq!(headers["www-authenticate"], "Basic realm=\"hookflow\"");
        }
    }
}

#[tokio::test]
async fn a_full_ingest_queue_is_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), 1, false).await;
    let (reply, _answer) = tokio::sync::oneshot::channel();
    st.ingest
        .try_send(crate::ingest::Submit {
            batch: Vec::new(),
            reply,
        })
        .unwrap();
    let app = router(st);
    let (status, body, headers) = call(&app, post("/hooks/open", "application/json", None, OPEN)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert!(body["error"].as_str().unwrap().starts_with("busy"), "{body}");
}

#[tokio::test]
async fn the_admin_api_answers_mistakes_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(state(dir.path(), 16, true).await);
    let get = |uri: &str, token: Option<&str>| {
        let mut r = Request::get(uri);
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r.body(Body::empty()).unwrap()
    };
    for (request, status, reason) in [
        (get("/api/stats", None), StatusCode::UNAUTHORIZED, "Bearer"),
        (
            get("/api/stats", Some("wrong")),
            StatusCode::UNAUTHORIZED,
            "Bearer",
        ),
        (
            get("/api/jobs?status=nope", Some("t0ken")),
            StatusCode::BAD_REQUEST,
            "unknown status",
        ),
        (
            get("/api/jobs?limit=x", Some("t0ken")),
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            get("/api/jobs/7", Some("t0ken")),
            StatusCode::NOT_FOUND,
            "no job 7",
        ),
        (
            get("/api/events/nope", Some("t0ken")),
            StatusCode::NOT_FOUND,
            "no event",
        ),
        (get("/api/clock", Some("t0ken")), StatusCode::OK, ""),
        (
            get("/nowhere", None),
            StatusCode::NOT_FOUND,
            "no route GET /nowhere",
        ),
        (
            Request::delete("/healthz").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
        ),
    ] {
        let uri = request.uri().to_string();
        let (got, body, _) = call(&app, request).await;
        assert_eq!(got, status, "{uri}: {body}");
        if !status.is_success() {
            assert!(body["error"].as_str().unwrap().contains(reason), "{uri}: {body}");
        }
    }
    let move_clock = Request::post("/api/clock")
        .header("authorization", "Bearer t0ken")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"advance": "1h"}"#))
        .unwrap();
    let (status, body, _) = call(&app, move_clock).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the system clock cannot move: {body}"
    );
}

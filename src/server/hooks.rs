//! `POST /hooks/{source}` and `/hooks/{source}/{type}`: find the source, check the media
//! type, read the body (bounded in size and time), authenticate, decode, plan, commit, and
//! only then answer `200 OK`. Nothing slow happens here: no network, no SMTP. Each step is
//! a function that returns an [`IngestError`] for the sender; every refusal is counted and
//! logged (rate-limited), so a broken integration shows up in the log, not only in metrics.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::{mpsc::error::TrySendError, oneshot};

use super::AppState;
use crate::engine;
use crate::event::Event;
use crate::ingest::Submit;
use crate::sources::auth::Control;
use crate::sources::{Auth, DecodeError, Source, Verified, auth};
use crate::store::{NewEvent, Store};

/// Why a webhook request was refused. Client mistakes say what was wrong; a failure of
/// ours says only that nothing was stored (the cause is in the log).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("unknown source")]
    UnknownSource,
    #[error("expected Content-Type: application/json, got `{0}`")]
    MediaType(String),
    /// The sender sees only `unauthorized`; the reason goes to the log.
    #[error("unauthorized: {error}")]
    Unauthorized { error: auth::AuthError, basic: bool },
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body was not received within {0}s")]
    SlowBody(u64),
    #[error("the body could not be read: {0}")]
    Unreadable(String),
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("busy: too many requests waiting to be stored; retry shortly")]
    Busy,
    #[error("shutting down; retry shortly")]
    ShuttingDown,
    #[error("internal error: the events were not stored; retry")]
    NotStored,
    #[error("the store is unavailable: the events were not stored; retry shortly")]
    StoreUnavailable,
    #[error("the SNS subscription could not be confirmed: {0}")]
    NotConfirmed(String),
}

impl IngestError {
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::UnknownSource => StatusCode::NOT_FOUND,
            IngestError::MediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::SlowBody(_) => StatusCode::REQUEST_TIMEOUT,
            IngestError::Unreadable(_) | IngestError::Json(_) | IngestError::Decode(_) => {
                StatusCode::BAD_REQUEST
            }
            IngestError::Busy
            | IngestError::ShuttingDown
            | IngestError::StoreUnavailable
            | IngestError::NotConfirmed(_) => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::NotStored => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Why a signature failed helps whoever forges one: that stays in the log.
        let shown = match &self {
            IngestError::Unauthorized { .. } => "unauthorized".to_owned(),
            other => other.to_string(),
        };
        let mut response = (status, axum::Json(json!({ "error": shown }))).into_response();
        let headers = response.headers_mut();
        match self {
            IngestError::Unauthorized { basic: true, .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"hookflow\""),
                );
            }
            IngestError::Busy | IngestError::ShuttingDown => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            IngestError::NotConfirmed(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            IngestError::StoreUnavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

pub async fn ingest<S: Store>(
    State(st): State<AppState<S>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&st, &source, handle(&st, &source, None, &headers, body).await)
}

pub async fn ingest_typed<S: Store>(
    State(st): State<AppState<S>>,
    Path((source, kind)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(
        &st,
        &source,
        handle(&st, &source, Some(&kind), &headers, body).await,
    )
}

/// The response, with every refusal counted and logged.
fn answer<S>(st: &AppState<S>, source: &str, result: Result<(), IngestError>) -> Response {
    match result {
        Ok(()) => (StatusCode::OK, "OK").into_response(),
        Err(e) => {
            let status = e.status().as_u16();
            st.metrics.rejected(status);
            let known = if st.sources.contains(source) {
                source
            } else {
                "(unknown)"
            };
            st.rejections.log(known, status, &e);
            e.into_response()
        }
    }
}

async fn handle<S: Store>(
    st: &AppState<S>,
    source: &str,
    kind: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), IngestError> {
    let _in_flight = st.metrics.ingest_started();
    let spec = st.sources.get(source).ok_or(IngestError::UnknownSource)?;
    if !spec.provider.any_media_type() {
        media_type(headers)?;
    }
    let now = st.clock.now();
    // Basic auth and tokens need no body: an unknown sender is refused before it may send one.
    let early = spec.auth.as_ref().is_some_and(Auth::before_body);
    if early {
        authenticate(spec, headers, &[], now).await?;
    }
    let body = read_body(body, headers, st.config.body_limit, st.config.limits.body_timeout).await?;
    let verified = if early {
        Verified::default()
    } else {
        authenticate(spec, headers, &body, now).await?
    };
    if let Some(control) = verified.control {
        return sns_control(spec, source, control).await;
    }
    let mut events = decode(spec, source, &body, kind, verified.delivery.as_deref(), now)?;
    if events.is_empty() {
        // A provider's ping (SparkPost's `[{"msys": {}}]`): acknowledged, nothing to store.
        return Ok(());
    }
    // A batch is decided in the order things happened, not the order the provider listed
    // them (Mailjet's batches mix types): an `open` listed before its own `sent` still
    // finds it. Stable: events of the same second keep their order.
    events.sort_by_key(|e| e.time);
    let batch = plan(st, events);
    let summary: Vec<_> = batch
        .iter()
        .map(|e| (e.event.source.clone(), e.event.kind.clone()))
        .collect();
    let committed = commit(st, batch).await?;
    for ((source, kind), fired) in summary.iter().zip(committed) {
        match fired {
            Some(rules) => {
                st.metrics.event(source, kind);
                rules.iter().for_each(|r| st.metrics.matched(r));
            }
            None => st.metrics.duplicate(),
        }
    }
    Ok(())
}

fn media_type(headers: &HeaderMap) -> Result<(), IngestError> {
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
    if media == "application/json" || media.ends_with("+json") {
        Ok(())
    } else {
        Err(IngestError::MediaType(content_type.to_owned()))
    }
}

/// The whole body, at most `limit` bytes, within `timeout`: a sender that announces more
/// or trickles is refused before it holds the connection for long.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: crate::base::duration::Duration,
) -> Result<Bytes, IngestError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(IngestError::TooLarge(limit));
    }
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout(timeout.to_std(), limited.collect()).await {
        Err(_) => Err(IngestError::SlowBody(timeout.as_secs())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(IngestError::TooLarge(limit)),
        Ok(Err(e)) => Err(IngestError::Unreadable(e.to_string())),
    }
}

async fn authenticate(
    spec: &Source,
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Verified, IngestError> {
    let Some(auth) = &spec.auth else {
        return Ok(Verified::default());
    };
    let lookup = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    auth::verify(auth, lookup, body, now)
        .await
        .map_err(|error| IngestError::Unauthorized {
            error,
            basic: matches!(auth, Auth::Basic { .. }),
        })
}

/// An SNS message about the subscription itself, its signature already checked.
async fn sns_control(spec: &Source, source: &str, control: Control) -> Result<(), IngestError> {
    let sns = match &spec.auth {
        Some(Auth::Sns(sns)) => sns,
        _ => return Ok(()),
    };
    match control {
        Control::Confirm { topic, url } if sns.confirms() => match sns.confirm(&url).await {
            Ok(()) => {
                tracing::info!(source, topic, "confirmed the SNS subscription");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    source,
                    topic,
                    url,
                    "the SNS subscription could not be confirmed: {e}; open the URL to confirm it by hand"
                );
                Err(IngestError::NotConfirmed(e))
            }
        },
        Control::Confirm { topic, url } => {
            tracing::warn!(
                source,
                topic,
                url,
                "SNS asks to deliver here; `confirm: false`, so open the URL to confirm"
            );
            Ok(())
        }
        Control::Unsubscribed { topic } => {
            tracing::warn!(source, topic, "SNS ended this subscription");
            Ok(())
        }
    }
}

fn decode(
    spec: &Source,
    source: &str,
    body: &[u8],
    kind: Option<&str>,
    delivery: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Event>, IngestError> {
    let parsed: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| IngestError::Json(e.to_string()))?;
    Ok(spec.decode(source, parsed, kind, delivery, now)?)
}

pub(super) fn plan<S>(st: &AppState<S>, events: Vec<Event>) -> Vec<NewEvent> {
    let rules = st.rules.load_full();
    let now = st.clock.now();
    let planned: Vec<NewEvent> = events
        .into_iter()
        .map(|ev| engine::plan(&rules, ev, now))
        .collect();
    for item in &planned {
        for job in item.jobs.iter().filter(|j| j.error.is_some()) {
            let error = job.error.as_deref().unwrap_or_default();
            tracing::warn!(rule = %job.rule_id, event = %item.event.id, "action {} cannot be rendered: {error}", job.action_index);
        }
    }
    planned
}

/// Hands the batch to the group-commit writer and waits for the commit. Per event: the
/// rules that fired (`None`: a duplicate, not processed again).
pub(super) async fn commit<S>(
    st: &AppState<S>,
    batch: Vec<NewEvent>,
) -> Result<Vec<Option<Vec<String>>>, IngestError> {
    let (reply, answer) = oneshot::channel();
    match st.ingest.try_send(Submit { batch, reply }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(IngestError::Busy),
        Err(TrySendError::Closed(_)) => return Err(IngestError::ShuttingDown),
    }
    match answer.await {
        Ok(Ok(fired)) => Ok(fired),
        Ok(Err(e)) => {
            tracing::error!("events not stored: {}", e.message);
            Err(if e.unavailable {
                IngestError::StoreUnavailable
            } else {
                IngestError::NotStored
            })
        }
        Err(_) => Err(IngestError::NotStored),
    }
}

/// Logs refused webhooks at `warn`, at most one line per source, status and kind of
/// refusal every `EVERY`, with how many were not logged since: a sender retrying in a
/// loop cannot flood the log, and an operator still sees every kind of refusal (a stale
/// signature and a forged one are told apart).
#[derive(Default)]
pub struct Rejections {
    last: Mutex<HashMap<RejectionKey, (Instant, u64)>>,
}

type RejectionKey = (
    String,
    u16,
    std::mem::Discriminant<IngestError>,
    Option<std::mem::Discriminant<auth::AuthError>>,
);

const EVERY: Duration = Duration::from_secs(10);

impl Rejections {
    pub fn log(&self, source: &str, status: u16, reason: &IngestError) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let auth = match reason {
            IngestError::Unauthorized { error, .. } => Some(std::mem::discriminant(error)),
            _ => None,
        };
        let key = (source.to_owned(), status, std::mem::discriminant(reason), auth);
        let entry = last.entry(key).or_insert((now - EVERY, 0));
        if now.duration_since(entry.0) < EVERY {
            entry.1 += 1;
            return;
        }
        let quiet = std::mem::replace(entry, (now, 0)).1;
        let more = if quiet > 0 {
            format!(" ({quiet} more like it since the last line)")
        } else {
            String::new()
        };
        if status >= 500 {
            tracing::error!(source, status, "webhook not accepted: {reason}{more}");
        } else {
            tracing::warn!(source, status, "webhook refused: {reason}{more}");
        }
    }
}

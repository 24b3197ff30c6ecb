//! The admin API (`/api`, JSON): the audit trail and the controls operators need.
//! Protected by `Authorization: Bearer <admin_token>` when a token is configured.

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::AppState;
use std::sync::Arc;

use crate::engine::RuleDecision;
use crate::rules::RuleSet;
use crate::store::{DeadFilter, JobRow, Store, StoreError};

pub fn router<S: Store>(state: AppState<S>) -> Router<AppState<S>> {
    Router::new()
        .route("/events", get(events::<S>))
        .route("/events/{*id}", get(event::<S>))
        .route("/jobs", get(jobs::<S>))
        .route("/jobs/retry", post(retry_dead::<S>))
        .route("/jobs/{id}", get(job::<S>))
        .route("/jobs/{id}/retry", post(retry::<S>))
        .route("/jobs/{id}/skip", post(skip::<S>))
        .route("/endpoints", get(endpoints::<S>))
        .route("/endpoints/{id}/resume", post(resume::<S>))
        .route("/stats", get(stats::<S>))
        .route("/clock", get(clock::<S>).post(set_clock::<S>))
        .route("/rules", get(rules::<S>))
        .route("/rules/reload", post(reload::<S>))
        .route("/lists", get(lists::<S>))
        .route("/lists/{list}/contacts", get(contacts::<S>))
        .route("/suppressions", get(suppressions::<S>))
        .layer(middleware::from_fn_with_state(state, bearer::<S>))
}

/// Client mistakes get their own status and a helpful body; store failures a generic
/// body and a log line with the cause.
enum ApiError {
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Store(e) => {
                tracing::error!("admin API: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_owned())
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

async fn bearer<S: Store>(State(st): State<AppState<S>>, request: Request, next: Next) -> Response {
    if let Some(token) = &st.config.admin_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token.trim());
        let ok: bool = given.as_bytes().ct_eq(token.as_bytes()).into();
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "error": "missing or wrong `Authorization: Bearer` token" })),
            )
                .into_response();
        }
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
}

fn limit(q: &ListQuery) -> u32 {
    q.limit.unwrap_or(50).clamp(1, 1000)
}

async fn events<S: Store>(
    State(st): State<AppState<S>>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(st.store.events(q.kind.as_deref(), limit(&q)).await?).into_response())
}

/// The audit trail of one event, and why each rule that could see it did or did not
/// fire: conditions worked out again from the payload with the version of the rules that
/// decided (kept by the store), stateful decisions as they were made.
async fn event<S: Store>(
    State(st): State<AppState<S>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(detail) = st.store.event(&id).await? else {
        return Err(ApiError::NotFound(format!("no event `{id}`")));
    };
    let current = st.rules.load_full();
    let (set, version_note) = match detail.rule_set.as_deref() {
        Some(hash) if hash == current.version().hash => (current, None),
        Some(hash) => match st.store.rule_set(hash).await? {
            Some(files) => {
                let (templates, context) = (st.config.templates_dir.clone(), st.config.rules_context());
                let set =
                    tokio::task::spawn_blocking(move || RuleSet::from_texts(files, &templates, &context))
                        .await
                        .map_err(|e| ApiError::Conflict(format!("cannot compile rule set {hash}: {e}")))?;
                (Arc::new(set), None)
            }
            None => (
                current,
                Some(format!(
                    "rule set {hash} is not stored; explained with the rules now serving"
                )),
            ),
        },
        None => (
            current,
            Some("no rule set recorded; explained with the rules now serving".to_owned()),
        ),
    };
    let ev = stored_event_of(&detail)?;
    let matched: Vec<String> = serde_json::from_value(detail.event.matched.clone()).unwrap_or_default();
    // One by one: a decision in a shape this version does not read is left out, not all.
    let decisions: Vec<RuleDecision> = detail
        .decisions
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| serde_json::from_value(d.clone()).ok())
        .collect();
    let why: Vec<_> = set
        .candidates(&ev)
        .map(|rule| crate::engine::explain_rule(rule, &ev, &matched, &decisions))
        .collect();
    let mut body =
        serde_json::to_value(&detail).map_err(|e| ApiError::Store(StoreError::Corrupt(e.to_string())))?;
    body["why"] = serde_json::to_value(why).unwrap_or_default();
    // As kept, a decision holds only the state of its moment: shown, it is put in words.
    let described: Vec<_> = decisions
        .iter()
        .map(|d| crate::engine::describe(d, set.get(&d.rule), &ev))
        .collect();
    body["decisions"] = serde_json::to_value(described).unwrap_or_default();
    if let Some(note) = version_note {
        body["why_note"] = note.into();
    }
    Ok(Json(body).into_response())
}

/// Every status a job can have.
const STATUSES: &[&str] = crate::metrics::JOB_STATUSES;

async fn jobs<S: Store>(
    State(st): State<AppState<S>>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    if let Some(status) = q.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::BadRequest(format!(
            "unknown status `{status}`; one of: {}",
            STATUSES.join(", ")
        )));
    }
    Ok(Json(st.store.jobs(q.status.as_deref(), limit(&q)).await?).into_response())
}

async fn job<S: Store>(State(st): State<AppState<S>>, Path(id): Path<i64>) -> Result<Response, ApiError> {
    match st.store.job(id).await? {
        Some(job) => Ok(Json(job).into_response()),
        None => Err(ApiError::NotFound(format!("no job {id}"))),
    }
}

/// The job, or 404; 409 while it is pending or running (it runs by itself).
async fn finished_job<S: Store>(st: &AppState<S>, id: i64) -> Result<JobRow, ApiError> {
    let job = st
        .store
        .job(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))?;
    if matches!(job.status.as_str(), "pending" | "running") {
        return Err(ApiError::Conflict(format!(
            "job {id} is {}: it runs by itself",
            job.status
        )));
    }
    Ok(job)
}

/// Runs a job again. A `failed` job never had an action (it could not be rendered), so it
/// is rendered again from the rule in service and its stored event; if that still fails,
/// 409 says why.
async fn retry<S: Store>(State(st): State<AppState<S>>, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let job = finished_job(&st, id).await?;
    let now = st.clock.now();
    let rendered = if job.status == "failed" {
        let ev = stored_event(&st, &job.event_id).await?;
        let rendered = crate::engine::rerender(&st.rules.load(), &job.rule_id, job.action_index, &ev, now)
            .map_err(|why| ApiError::Conflict(format!("job {id} cannot be retried: {why}")))?;
        Some(rendered)
    } else {
        None
    };
    if !st.store.retry_job(id, now, rendered).await? {
        return Err(ApiError::Conflict(format!(
            "job {id} changed meanwhile; look again"
        )));
    }
    st.wake.send_modify(|g| *g += 1);
    Ok(Json(json!({ "job": id, "status": "pending" })).into_response())
}

/// The stored event a job was planned for, as rules see it.
async fn stored_event<S: Store>(st: &AppState<S>, id: &str) -> Result<crate::event::Event, ApiError> {
    let detail = st
        .store
        .event(id)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("its event `{id}` is no longer stored")))?;
    stored_event_of(&detail)
}

fn stored_event_of(detail: &crate::store::EventDetail) -> Result<crate::event::Event, ApiError> {
    let time = chrono::DateTime::parse_from_rfc3339(&detail.event.time)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| ApiError::Store(StoreError::Corrupt(e.to_string())))?;
    Ok(crate::event::Event {
        id: detail.event.id.clone(),
        source: detail.event.source.clone(),
        kind: detail.event.kind.clone(),
        time,
        data: detail.payload.clone(),
    })
}

/// Gives up on a job that has not succeeded: it is `skipped`, never attempted again.
async fn skip<S: Store>(State(st): State<AppState<S>>, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let job = st
        .store
        .job(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))?;
    if matches!(
        job.status.as_str(),
        "running" | "succeeded" | "skipped" | "cancelled"
    ) {
        return Err(ApiError::Conflict(format!(
            "job {id} is {}: only pending, failed and dead jobs can be skipped",
            job.status
        )));
    }
    if !st.store.skip_job(id, st.clock.now()).await? {
        return Err(ApiError::Conflict(format!(
            "job {id} changed meanwhile; look again"
        )));
    }
    Ok(Json(json!({ "job": id, "status": "skipped" })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeadQuery {
    /// Only the dead jobs of this endpoint (`scheme://host:port`, or any URL on it).
    endpoint: Option<String>,
    /// Only the dead jobs of this rule.
    rule: Option<String>,
}

/// `POST /api/jobs/retry?endpoint=…&rule=…`: every dead job (of an endpoint, of a rule)
/// back in line.
async fn retry_dead<S: Store>(
    State(st): State<AppState<S>>,
    Query(q): Query<DeadQuery>,
) -> Result<Response, ApiError> {
    let filter = DeadFilter {
        endpoint: q.endpoint.map(|e| crate::base::net::endpoint_of(&e).unwrap_or(e)),
        rule: q.rule,
    };
    let n = st.store.retry_dead(&filter, st.clock.now()).await?;
    if n > 0 {
        st.wake.send_modify(|g| *g += 1);
    }
    Ok(Json(json!({ "requeued": n })).into_response())
}

async fn endpoints<S: Store>(State(st): State<AppState<S>>) -> Result<Response, ApiError> {
    Ok(Json(st.store.endpoints().await?).into_response())
}

async fn resume<S: Store>(
    State(st): State<AppState<S>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match st.store.resume_endpoint(&id, st.clock.now()).await? {
        Some((endpoint, requeued)) => {
            st.wake.send_modify(|g| *g += 1);
            Ok(Json(json!({ "endpoint": endpoint, "requeued": requeued })).into_response())
        }
        None => Err(ApiError::NotFound(format!("no endpoint `{id}`"))),
    }
}

async fn lists<S: Store>(State(st): State<AppState<S>>) -> Result<Response, ApiError> {
    Ok(Json(st.store.lists().await?).into_response())
}

async fn contacts<S: Store>(
    State(st): State<AppState<S>>,
    Path(list): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(st.store.contacts(&list).await?).into_response())
}

async fn suppressions<S: Store>(State(st): State<AppState<S>>) -> Result<Response, ApiError> {
    Ok(Json(st.store.suppressions().await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveClock {
    /// An RFC 3339 time to move to.
    to: Option<String>,
    /// How far to move, such as `90s` or `48h`.
    advance: Option<String>,
}

async fn clock<S: Store>(State(st): State<AppState<S>>) -> Response {
    Json(json!({ "now": st.clock.now().to_rfc3339(), "manual": st.clock.is_manual() })).into_response()
}

/// Moves the manual clock, then fires the timers that became due, and says how many.
async fn set_clock<S: Store>(
    State(st): State<AppState<S>>,
    body: Result<Json<MoveClock>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let _held = st.firing.lock().await;
    let to = match (body.to, body.advance) {
        (Some(to), None) => chrono::DateTime::parse_from_rfc3339(&to)
            .map_err(|e| {
                ApiError::BadRequest(format!("`to`: {e}; expected a time such as 2026-11-27T10:00:00Z"))
            })?
            .with_timezone(&chrono::Utc),
        (None, Some(by)) => {
            let by = crate::base::duration::Duration::parse(&by)
                .map_err(|e| ApiError::BadRequest(format!("`advance`: {e}")))?;
            st.clock
                .now()
                .checked_add_signed(by.to_chrono())
                .ok_or_else(|| ApiError::BadRequest("the clock cannot move that far".into()))?
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give either `to` (a time) or `advance` (such as 90s)".into(),
            ));
        }
    };
    let now = st.clock.set(to).map_err(|e| ApiError::Conflict(e.to_string()))?;
    let fired = super::fire_due_timers(&*st.store, &st.rules, &st.wake, &st.metrics, now).await?;
    Ok(Json(json!({ "now": now.to_rfc3339(), "timers_fired": fired })).into_response())
}

async fn stats<S: Store>(State(st): State<AppState<S>>) -> Result<Response, ApiError> {
    Ok(Json(st.store.stats().await?).into_response())
}

async fn rules<S: Store>(State(st): State<AppState<S>>) -> Response {
    let generation = st.reloader.generation();
    let set = st.rules.load();
    let versions: std::collections::HashMap<&str, &crate::rules::FileStatus> =
        set.files().iter().map(|f| (f.file.as_str(), f)).collect();
    let rules: Vec<_> = set
        .rules()
        .iter()
        .map(|r| {
            let file = versions.get(r.file.as_str());
            json!({
                "id": r.id,
                "file": r.file,
                "enabled": r.enabled,
                "stateful": r.is_stateful(),
                "version": file.and_then(|f| f.version.as_ref()),
                "loaded_at": file.and_then(|f| f.loaded_at.as_ref()),
            })
        })
        .collect();
    Json(json!({
        "instance": st.config.instance(),
        "generation": generation,
        "rule_set": set.version().hash,
        "rules": rules,
        "files": set.files(),
        "errors": set.errors(),
    }))
    .into_response()
}

async fn reload<S: Store>(State(st): State<AppState<S>>) -> Response {
    let reloader = st.reloader.clone();
    match tokio::task::spawn_blocking(move || reloader.reload("admin API")).await {
        Ok(s) => Json(json!({
            "generation": s.generation,
            "rules": s.rules,
            "added": s.added,
            "removed": s.removed,
            "changed": s.changed,
            "files_in_error": s.files_in_error,
        }))
        .into_response(),
        Err(e) => ApiError::Conflict(format!("reload failed: {e}")).into_response(),
    }
}

//! The HTTP server: webhook ingest (`/hooks`), the admin API (`/api`), `/healthz` and
//! `/metrics`, and the lifecycle that ties them to the store and the delivery workers.

mod api;
mod hooks;
mod listen;
mod unsubscribe;

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::base::clock::Clock;
use crate::config::Config;
use crate::delivery::{self, Deliverer, policy::Policy};
use crate::ingest::{self, Submit};
use crate::metrics::Metrics;
use crate::reload::{self, Reloader};
use crate::rules::RuleSet;
use crate::sources::Sources;
use crate::store::{Store, StoreError};

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Mail(String),
}

/// What every handler shares.
pub struct AppState<S> {
    pub config: Arc<Config>,
    pub rules: Arc<ArcSwap<RuleSet>>,
    pub store: Arc<S>,
    pub ingest: mpsc::Sender<Submit>,
    pub wake: Arc<watch::Sender<u64>>,
    pub metrics: Arc<Metrics>,
    pub sources: Arc<Sources>,
    pub reloader: Arc<Reloader>,
    pub clock: Clock,
    /// Held while firing timers, so a move of the manual clock (`POST /api/clock`) fires
    /// what it made due itself and can say how many.
    pub firing: Arc<tokio::sync::Mutex<()>>,
    /// Refused webhooks, logged without flooding.
    pub rejections: Arc<hooks::Rejections>,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            rules: self.rules.clone(),
            store: self.store.clone(),
            ingest: self.ingest.clone(),
            wake: self.wake.clone(),
            metrics: self.metrics.clone(),
            sources: self.sources.clone(),
            reloader: self.reloader.clone(),
            clock: self.clock.clone(),
            firing: self.firing.clone(),
            rejections: self.rejections.clone(),
        }
    }
}

/// The routes, for the server and for tests that call it without a socket.
pub fn router<S: Store>(state: AppState<S>) -> Router {
    let hooks = Router::new()
        .route("/hooks/{source}", post(hooks::ingest::<S>))
        .route("/hooks/{source}/{kind}", post(hooks::ingest_typed::<S>));
    Router::new()
        .merge(hooks)
        .route("/healthz", get(healthz::<S>))
        .route("/metrics", get(metrics::<S>))
        .route(
            "/u/{token}",
            get(unsubscribe::confirm::<S>).post(unsubscribe::unsubscribe::<S>),
        )
        .nest("/api", api::router(state.clone()))
        .fallback(not_found)
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

/// `ok` while the store answers; 503 with the reason when it does not (a load balancer
/// then sends webhooks to another instance).
async fn healthz<S: Store>(
    axum::extract::State(st): axum::extract::State<AppState<S>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match st.store.health().await {
        Ok(()) => "ok".into_response(),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let error = format!("no route {method} {}", uri.path());
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "error": error })),
    )
        .into_response()
}

/// Every error answer is JSON, as documented: the handlers' own already are, and this
/// turns the rest (axum's rejections of a bad query string or path, 405 for a wrong
/// method) into `{"error": "…"}` with the same text.
async fn json_errors(response: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !status.is_client_error() && !status.is_server_error() || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let error = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_owned(),
        t => t.to_owned(),
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let mut json = (status, axum::Json(serde_json::json!({ "error": error }))).into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

async fn metrics<S: Store>(State(st): State<AppState<S>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let gauges = match st.store.stats().await {
        Ok(s) => crate::metrics::StoreGauges {
            jobs: s.jobs,
            timers_pending: s.timers_pending,
            endpoints_suspended: s.endpoints_suspended,
            oldest_due_seconds: s.oldest_due_ms.map_or(0.0, |due| {
                ((st.clock.now().timestamp_millis() - due).max(0)) as f64 / 1000.0
            }),
        },
        Err(e) => {
            tracing::error!("metrics: cannot read the store: {e}");
            crate::metrics::StoreGauges::default()
        }
    };
    let queued = st.ingest.max_capacity() - st.ingest.capacity();
    (
        [("content-type", crate::metrics::CONTENT_TYPE)],
        st.metrics.render(&gauges, queued),
    )
        .into_response()
}

/// Runs hookflow on `listener` until `shutdown` completes: stops accepting, answers the
/// requests in flight (their events committed), lets attempts in flight end, returns.
/// `ready` is called once the store is open and the rules are loaded, just before serving.
/// `clock` is where "now" comes from: `Clock::system()` but in tests.
pub async fn run(
    config: Config,
    clock: Clock,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce() + Send,
) -> Result<(), ServeError> {
    let backend = config.store.clone();
    let serve = Serve {
        config,
        clock,
        listener,
        shutdown,
        ready,
    };
    crate::store::open(&backend, crate::store::Access::Owner, serve).await?
}

/// The server, waiting for its store.
struct Serve<F, R> {
    config: Config,
    clock: Clock,
    listener: TcpListener,
    shutdown: F,
    ready: R,
}

impl<F, R> crate::store::WithStore for Serve<F, R>
where
    F: Future<Output = ()> + Send + 'static,
    R: FnOnce() + Send,
{
    type Output = Result<(), ServeError>;

    fn with<S: Store>(self, store: S) -> impl Future<Output = Self::Output> + Send {
        run_on(
            Arc::new(store),
            self.config,
            self.clock,
            self.listener,
            self.shutdown,
            self.ready,
        )
    }
}

/// The one-click unsubscribe key when the configuration has none: made once and kept in
/// the store (every server on it signs alike; links survive restarts), for `public_url`
/// or, failing that, this server's own address — which mail clients outside cannot
/// reach, so it is said at startup.
async fn one_click_key<S: Store>(
    store: &S,
    config: &Config,
    listener: &TcpListener,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<crate::base::one_click::OneClick, ServeError> {
    let fresh = crate::base::one_click::OneClick::fresh_key()
        .map_err(|e| ServeError::Io(std::io::Error::other(e)))?;
    let key = store.key("unsubscribe", &fresh, now).await?;
    let url = match &config.public_url {
        Some(url) => url.clone(),
        None => {
            let here = listener
                .local_addr()
                .map_or_else(|_| "http://127.0.0.1:8080".to_owned(), |a| format!("http://{a}"));
            tracing::warn!(
                "`public_url` is not set: one-click unsubscribe links point at {here}, which mail clients outside cannot reach"
            );
            here
        }
    };
    Ok(crate::base::one_click::OneClick::generated(&url, &key))
}

/// [`run`] on an open store.
async fn run_on<S: Store>(
    store: Arc<S>,
    mut config: Config,
    clock: Clock,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce() + Send,
) -> Result<(), ServeError> {
    // Attempts a killed server left in flight run again now, not when their lease ends.
    match store.release_leases(clock.now()).await? {
        0 => {}
        n => tracing::warn!("{n} job(s) were in flight when hookflow last stopped; running them again"),
    }
    if config.one_click.is_none() {
        config.one_click = Some(one_click_key(&*store, &config, &listener, clock.now()).await?);
    }
    let metrics = Arc::new(Metrics::new());
    let reloader = Arc::new(Reloader::new(
        config.rules_dir.clone(),
        config.templates_dir.clone(),
        config.rules_context(),
        config.sources.clone(),
        metrics.clone(),
        config.on_reload_error.clone(),
    ));
    let rules = reloader.rules();
    let config = Arc::new(config);
    let wake = Arc::new(watch::channel(0u64).0);
    store.listen(Arc::downgrade(&wake));
    let (tx, rx) = mpsc::channel(config.ingest_queue);
    let writer = tokio::spawn(ingest::writer(
        store.clone(),
        rules.clone(),
        rx,
        wake.clone(),
        metrics.clone(),
    ));

    let mailer = crate::actions::email::mailer::Mailer::new(
        config.smtp.as_ref().map(|s| s.url.as_str()),
        &config.outbox,
        config.delivery.timeout.to_std(),
    )
    .map_err(ServeError::Mail)?;
    let default_from = config
        .smtp
        .as_ref()
        .and_then(|s| s.from.clone())
        .unwrap_or_else(|| crate::actions::email::mailer::FALLBACK_FROM.to_owned());
    let (stop, stopped) = watch::channel(false);
    let deliverer = Arc::new(Deliverer {
        store: store.clone(),
        rules: rules.clone(),
        clients: crate::base::net::Clients::new(&config.allow_private_targets),
        policy: Policy {
            retries: config.delivery.retries.clone(),
        },
        timeout: config.delivery.timeout,
        server_secret: config.signing_secret.clone(),
        wake: wake.clone(),
        metrics: metrics.clone(),
        mailer,
        default_from,
        clock: clock.clone(),
    });
    let delivery = delivery::spawn(deliverer, config.delivery.workers, stopped.clone());
    let firing = Arc::new(tokio::sync::Mutex::new(()));
    let timers = tokio::spawn(fire_timers(
        store.clone(),
        rules.clone(),
        wake.clone(),
        metrics.clone(),
        clock.clone(),
        firing.clone(),
        stopped.clone(),
    ));
    let retention = config.retention.map(|keep| {
        tokio::spawn(keep_journal(
            store.clone(),
            keep,
            metrics.clone(),
            clock.clone(),
            stopped.clone(),
        ))
    });
    let watcher = reload::spawn(reloader.clone(), config.reload, stopped);

    let sources = config.sources.clone();
    let state = AppState {
        config,
        rules,
        store,
        ingest: tx,
        wake,
        metrics,
        sources: Arc::new(sources),
        reloader,
        clock,
        firing,
        rejections: Arc::default(),
    };
    let limits = state.config.limits;
    ready();
    let served = listen::serve(listener, router(state), limits, shutdown).await;
    // The router and its senders are gone: the writer commits what is queued and ends.
    let _ = writer.await;
    let _ = stop.send(true);
    let _ = delivery.await;
    let _ = watcher.await;
    let _ = timers.await;
    if let Some(retention) = retention {
        let _ = retention.await;
    }
    tracing::info!("stopped");
    Ok(served?)
}

/// Fires the `absent` timers due by `now`; how many fired. The jobs they planned wake the
/// delivery workers.
pub async fn fire_due_timers<S: Store>(
    store: &S,
    rules: &ArcSwap<RuleSet>,
    wake: &watch::Sender<u64>,
    metrics: &Metrics,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, StoreError> {
    let mut fired = 0;
    loop {
        // A round takes at most a few hundred: repeat until none is left.
        let decide = Arc::new(crate::engine::Timers(rules.load_full()));
        let (rules_fired, taken) = store.fire_timers(now, decide).await?;
        if taken == 0 {
            break;
        }
        fired += rules_fired.len();
        rules_fired.iter().for_each(|r| metrics.timer_fired(r));
        if !rules_fired.is_empty() {
            wake.send_modify(|g| *g += 1);
        }
    }
    if fired > 0 {
        tracing::info!("{fired} absent timer(s) fired");
    }
    Ok(fired)
}

/// Fires `absent` timers when due, until shutdown: when the clock reaches the next one,
/// and at least every second for timers that commits added since (already due ones
/// included, such as a timer for an event that arrived late).
async fn fire_timers<S: Store>(
    store: Arc<S>,
    rules: Arc<ArcSwap<RuleSet>>,
    wake: Arc<watch::Sender<u64>>,
    metrics: Arc<Metrics>,
    clock: Clock,
    firing: Arc<tokio::sync::Mutex<()>>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let held = firing.lock().await;
        if let Err(e) = fire_due_timers(&*store, &rules, &wake, &metrics, clock.now()).await {
            tracing::error!("cannot fire timers: {e}");
        }
        drop(held);
        let next = store.next_timer().await.ok().flatten();
        let due = async {
            match next {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = due => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Deletes the journal older than `keep` at start and then every `keep / 24` (between a
/// minute and an hour) by the server's clock, until shutdown. Every server of a shared
/// database does it; their batches never take the same rows.
async fn keep_journal<S: Store>(
    store: Arc<S>,
    keep: crate::base::duration::Duration,
    metrics: Arc<Metrics>,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let every = chrono::TimeDelta::seconds((keep.as_secs() / 24).clamp(60, 3600) as i64);
    while !*stop.borrow() {
        let before = clock.now() - keep.to_chrono();
        match crate::store::prune_journal(&*store, before).await {
            Ok(p) if p.events > 0 => {
                metrics.pruned(p.events, p.jobs, p.attempts);
                tracing::info!(
                    "retention: deleted {} event(s) received before {before}, {} job(s), {} attempt(s)",
                    p.events,
                    p.jobs,
                    p.attempts
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!("retention: cannot prune the journal: {e}"),
        }
        tokio::select! {
            _ = clock.sleep_until(clock.now() + every) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests;

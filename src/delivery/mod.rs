//! Delivery workers: lease a due job, run it, record the attempt, follow the schedule.
//!
//! Workers read top to bottom as lease → execute → finish. They wake when the ingest
//! writer commits new jobs, when the next retry is due, or on shutdown; an attempt in
//! flight at shutdown is allowed to end.

pub mod exec;
pub mod policy;

use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::actions::ActionKind;
use crate::actions::http::Signing;
use crate::duration::Duration;
use crate::metrics::Metrics;
use crate::rules::RuleSet;
use crate::store::{Job, Store};
use policy::{Outcome, Policy};

/// The action kinds that have an executor; jobs of other kinds wait in the store.
pub const KINDS: &[&str] = &["http", "log"];

/// `scheme://host:port` of a URL: the unit that gets suspended.
pub fn endpoint_of(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?;
    let port = u.port_or_known_default()?;
    Some(format!("{}://{}:{}", u.scheme(), host, port))
}

/// Everything a worker shares with the others.
pub struct Deliverer<S> {
    pub store: Arc<S>,
    pub rules: Arc<ArcSwap<RuleSet>>,
    pub client: reqwest::Client,
    pub policy: Policy,
    pub timeout: Duration,
    pub server_secret: Option<String>,
    /// Bumped by the ingest writer after each commit that added jobs.
    pub wake: Arc<watch::Sender<u64>>,
    pub metrics: Arc<Metrics>,
}

/// An HTTP client that never follows redirects: a 3xx is a failed delivery.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hookflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Starts `n` workers; they stop when `shutdown` turns true.
pub fn spawn<S: Store>(d: Arc<Deliverer<S>>, n: usize, shutdown: watch::Receiver<bool>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let d = d.clone();
        let shutdown = shutdown.clone();
        set.spawn(async move { d.work(shutdown).await });
    }
    set
}

impl<S: Store> Deliverer<S> {
    async fn work(&self, mut shutdown: watch::Receiver<bool>) {
        // A lease outlives the attempt's timeout, so only a crashed worker's job is retaken.
        let lease = Duration::from_secs(self.timeout.as_secs() + 30);
        let mut wake = self.wake.subscribe();
        loop {
            if *shutdown.borrow() {
                return;
            }
            wake.borrow_and_update();
            match self.store.lease(Utc::now(), lease, KINDS).await {
                Ok(Some(job)) => {
                    self.run(job).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::error!("cannot lease jobs: {e}"),
            }
            let wait = match self.store.next_due(KINDS).await {
                Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default(),
                _ => std::time::Duration::from_secs(5),
            };
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(wait.min(std::time::Duration::from_secs(5))) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn run(&self, job: Job) {
        let secret = self.signing_secret(&job);
        let ctx = exec::Ctx {
            client: &self.client,
            timeout: self.timeout,
            signing_secret: secret.as_deref(),
        };
        let (attempt, outcome) = exec::execute(&job, &ctx).await;
        let next = self.policy.next(&job, &outcome, Utc::now());
        self.metrics
            .attempt(&job.kind, outcome == Outcome::Success, attempt.duration_ms);
        if let Err(e) = self.store.finish(&job, &attempt, &next, Utc::now()).await {
            // The lease expires and the job is taken again: delivered at least once.
            tracing::error!(job = %job.key, "cannot record the attempt: {e}");
            return;
        }
        match &next {
            crate::store::Next::Dead {
                suspend: Some(endpoint),
            } => tracing::warn!(
                job = %job.key, %endpoint,
                "retries exhausted; endpoint suspended until `hookflow endpoints resume {endpoint}`"
            ),
            crate::store::Next::Dead { suspend: None } => {
                tracing::warn!(job = %job.key, error = attempt.error.as_deref().unwrap_or(""), "job failed for good")
            }
            _ => {}
        }
    }

    /// The secret for a signed `http` job: the rule's own, or the server's.
    fn signing_secret(&self, job: &Job) -> Option<String> {
        let rules = self.rules.load();
        let spec = rules
            .get(&job.rule_id)
            .and_then(|r| r.actions.get(job.action_index as usize));
        match spec.map(|a| &a.kind) {
            Some(ActionKind::Http(http)) => match http.signing() {
                Some(Signing::Secret(s)) => Some(s.clone()),
                Some(Signing::ServerSecret) => self.server_secret.clone(),
                None => None,
            },
            _ => self.server_secret.clone(),
        }
    }
}

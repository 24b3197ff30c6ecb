//! Delivery: lease due jobs, run them, record the attempts, follow the schedule.
//!
//! It reads top to bottom as lease → execute → finish. One dispatcher leases a batch of
//! due jobs per transaction (as many as there are free workers), each job runs on its own
//! task, and one finisher records the outcomes, many per transaction — the same group
//! commit as ingest, so delivery does not starve ingest of SQLite's single writer. The
//! dispatcher wakes when the ingest writer commits new jobs, when the next retry is due,
//! when a worker frees up, or on shutdown; attempts in flight at shutdown end and are
//! recorded.

pub mod policy;

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::actions::email::mailer::Mailer;
use crate::actions::http::Signing;
use crate::actions::run::{Attempted, Exec, Outcome};
use crate::actions::{ActionKind, KINDS, Rendered};
use crate::base::clock::Clock;
use crate::base::duration::Duration;
use crate::metrics::Metrics;
use crate::rules::RuleSet;
use crate::store::{Attempt, Finished, Job, Next, Store, StoreError};
use policy::Policy;

/// Everything a worker shares with the others.
pub struct Deliverer<S> {
    pub store: Arc<S>,
    pub rules: Arc<ArcSwap<RuleSet>>,
    /// Outbound HTTP: trusted for rules' own hosts, guarded for hosts from event data.
    pub clients: crate::base::net::Clients,
    pub policy: Policy,
    pub timeout: Duration,
    pub server_secret: Vec<crate::base::net::sign::Secret>,
    /// Bumped by the ingest writer after each commit that added jobs.
    pub wake: Arc<watch::Sender<u64>>,
    pub metrics: Arc<Metrics>,
    pub mailer: Mailer,
    /// Sender for emails that name none.
    pub default_from: String,
    /// When jobs are due and retries scheduled (attempt durations stay on real time).
    pub clock: Clock,
}

/// Starts delivery with `workers` concurrent attempts; it stops when `shutdown` turns
/// true, after the attempts in flight have ended and been recorded.
pub fn spawn<S: Store>(
    d: Arc<Deliverer<S>>,
    workers: usize,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move { d.dispatch(workers, shutdown).await })
}

/// Most outcomes recorded in one transaction.
const MAX_FINISH_GROUP: usize = 256;

/// The lease's margin beyond the attempt timeout.
const LEASE_MARGIN_SECS: u64 = 30;

/// How long outcomes are kept and offered again while the database is unreachable. Less
/// than the lease margin: an outcome recorded by then is recorded while its job is still
/// leased to this server, so no other server has taken it up again meanwhile.
const RECORD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(LEASE_MARGIN_SECS - 5);

impl<S: Store> Deliverer<S> {
    /// Leases as many due jobs as there are free workers (one transaction), runs each on
    /// its own task, and sleeps until new jobs are committed, the next one is due, a
    /// worker frees up, or shutdown.
    async fn dispatch(self: Arc<Self>, workers: usize, mut shutdown: watch::Receiver<bool>) {
        // A lease outlives the attempt's timeout, so only a crashed hookflow's jobs are retaken.
        let lease = Duration::from_secs(self.timeout.as_secs() + LEASE_MARGIN_SECS);
        let permits = Arc::new(Semaphore::new(workers));
        let (done, finished) = mpsc::unbounded_channel();
        let finisher = tokio::spawn(finish(
            self.store.clone(),
            self.clock.clone(),
            self.wake.clone(),
            finished,
        ));
        let mut running = JoinSet::new();
        let mut wake = self.wake.subscribe();
        while !*shutdown.borrow() {
            // A finished task keeps its memory until it is joined: reap them all, or a
            // dispatcher that never has to wait would hold every attempt ever made.
            while running.try_join_next().is_some() {}
            wake.borrow_and_update();
            let free = permits.available_permits();
            if free > 0 {
                match self
                    .store
                    .lease(self.clock.now(), chrono::Utc::now(), lease, KINDS, free)
                    .await
                {
                    Ok(jobs) if !jobs.is_empty() => {
                        for job in jobs {
                            let Ok(permit) = permits.clone().acquire_owned().await else {
                                break;
                            };
                            let (me, done) = (self.clone(), done.clone());
                            running.spawn(async move {
                                let finished = me.run(job).await;
                                let _ = done.send(finished);
                                drop(permit);
                            });
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!("cannot lease jobs: {e}"),
                }
            }
            // The next due job (a retry, a `delay`), unless no worker is free to take it.
            let next = match self.store.next_due(KINDS).await {
                Ok(next) => next.filter(|_| permits.available_permits() > 0),
                Err(e) => {
                    tracing::error!("cannot read the next due job: {e}");
                    None
                }
            };
            let due = async {
                match next {
                    Some(at) => {
                        self.clock.sleep_until(at).await;
                        // At most 100 leases a second, even if a due job cannot be leased.
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = wake.changed() => {}
                _ = due => {}
                // Jobs written by another process (`hookflow` CLI) are seen within 5 s.
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                _ = shutdown.changed() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        while running.join_next().await.is_some() {}
        drop(done);
        let _ = finisher.await;
    }

    /// One attempt: the stored action executed (never a panic: every failure is an
    /// attempt record), its next step by the schedule, counted and logged.
    async fn run(&self, job: Job) -> Finished {
        let started_at = chrono::Utc::now();
        let timer = std::time::Instant::now();
        let done = self.execute(&job).await;
        let outcome = done.outcome.clone();
        let attempt = Attempt {
            started_at,
            duration_ms: timer.elapsed().as_millis() as u64,
            status_code: done.status_code,
            error: done.error,
            response: done.response,
        };
        let next = self
            .judge_endpoint(&job, self.policy.next(&job, &outcome, self.clock.now()))
            .await;
        let result = match outcome {
            Outcome::Success => crate::metrics::AttemptResult::Success,
            Outcome::Skipped => crate::metrics::AttemptResult::Skipped,
            _ => crate::metrics::AttemptResult::Failure,
        };
        self.metrics.attempt(
            &job.kind,
            result,
            attempt.status_code,
            attempt.duration_ms,
            job.endpoint.as_deref(),
            matches!(next, Next::Retry(_)),
        );
        match &next {
            Next::Dead {
                suspend: Some(endpoint),
            } => tracing::warn!(
                job = %job.key, %endpoint,
                "retries exhausted; endpoint suspended until `hookflow endpoints resume {endpoint}`"
            ),
            Next::Dead { suspend: None } => {
                tracing::warn!(job = %job.key, error = attempt.error.as_deref().unwrap_or(""), "job failed for good")
            }
            _ => {}
        }
        Finished { job, attempt, next }
    }

    async fn execute(&self, job: &Job) -> Attempted {
        let rendered = match Rendered::from_value(job.action.clone()) {
            Ok(r) => r,
            Err(e) => return Attempted::fail(format!("stored action cannot be read: {e}")),
        };
        let (secrets, basic) = self.credentials(job);
        let cx = Exec {
            store: &*self.store,
            clients: &self.clients,
            mailer: &self.mailer,
            default_from: &self.default_from,
            timeout: self.timeout,
            signing_secrets: &secrets,
            basic_auth: basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            key: &job.key,
            rule_id: &job.rule_id,
            event_id: &job.event_id,
            now: self.clock.now(),
        };
        rendered.action.execute(&cx).await
    }

    /// A job that dies after its retries suspends its endpoint only when the endpoint
    /// itself is failing: if any attempt to it succeeded since this job's first attempt,
    /// the receiver is up and refuses this one payload, which dies alone (recorded, and
    /// retryable by hand) while other jobs keep flowing.
    async fn judge_endpoint(&self, job: &Job, next: Next) -> Next {
        let Next::Dead {
            suspend: Some(endpoint),
        } = &next
        else {
            return next;
        };
        match self.store.succeeded_since(endpoint, job.first_attempt_at).await {
            Ok(true) => {
                tracing::warn!(
                    job = %job.key, %endpoint,
                    "retries exhausted; the endpoint accepted other jobs meanwhile, so it stays active"
                );
                Next::Dead { suspend: None }
            }
            Ok(false) => next,
            Err(e) => {
                tracing::error!("cannot read the endpoint's health ({e}); suspending it");
                next
            }
        }
    }

    /// Secrets for an `http` job, read from the rule in service (never stored with the
    /// job): the signing secrets (the rule's own, or the server's) and basic-auth credentials.
    fn credentials(&self, job: &Job) -> (Vec<crate::base::net::sign::Secret>, Option<(String, String)>) {
        let rules = self.rules.load();
        let spec = rules
            .get(&job.rule_id)
            .and_then(|r| r.actions.get(job.action_index as usize));
        match spec.map(|a| &a.kind) {
            Some(ActionKind::Http(http)) => {
                let secrets = match http.signing() {
                    Some(Signing::Secrets(s)) => s.clone(),
                    Some(Signing::ServerSecret) => self.server_secret.clone(),
                    None => Vec::new(),
                };
                (secrets, http.basic_auth().cloned())
            }
            _ => (self.server_secret.clone(), None),
        }
    }
}

/// Records outcomes as they come, many per transaction. While the database is
/// unreachable (a PostgreSQL restart), a group is offered again, waiting 0.5 s, 1 s, 2 s…
/// (at most 5 s) between tries, for up to [`RECORD_PATIENCE`]: the attempts happened, and
/// recording them once the database is back spares their receivers a second delivery.
/// Past that, or on any other error, the group is given up: the jobs' leases expire and
/// they are attempted again (at least once, never lost). A recorded retry wakes the
/// dispatcher, which then sleeps exactly until it is due (it could not know of it before
/// it was recorded).
async fn finish<S: Store>(
    store: Arc<S>,
    clock: Clock,
    wake: Arc<watch::Sender<u64>>,
    mut finished: mpsc::UnboundedReceiver<Finished>,
) {
    let mut batch = Vec::with_capacity(MAX_FINISH_GROUP);
    while let Some(first) = finished.recv().await {
        batch.push(first);
        while batch.len() < MAX_FINISH_GROUP {
            match finished.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        let n = batch.len();
        let retries = batch.iter().any(|f| matches!(f.next, Next::Retry(_)));
        let group: Arc<[Finished]> = std::mem::take(&mut batch).into();
        let given_up = tokio::time::Instant::now() + RECORD_PATIENCE;
        let mut pause = std::time::Duration::from_millis(500);
        loop {
            match store.finish(group.clone(), clock.now()).await {
                Ok(()) if retries => wake.send_modify(|g| *g += 1),
                Ok(()) => {}
                Err(StoreError::Unavailable(e)) if tokio::time::Instant::now() + pause < given_up => {
                    tracing::warn!("cannot record {n} attempt(s) yet: {e}; trying again in {pause:?}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                    continue;
                }
                Err(e) => tracing::error!("cannot record {n} attempt(s): {e}; their jobs will be retried"),
            }
            break;
        }
    }
}

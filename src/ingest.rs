//! Group commit: request handlers hand their planned events to one writer task, which
//! commits everything waiting in one transaction and then answers each request. One
//! fsync serves many requests instead of one each.
//!
//! The queue is bounded (`ingest_queue`): when it is full, handlers answer 503 with
//! `Retry-After` instead of buffering without limit.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use arc_swap::ArcSwap;

use crate::metrics::Metrics;
use crate::rules::RuleSet;
use crate::store::{Committed, NewEvent, Store};

/// One request's events and the way to answer it.
pub struct Submit {
    pub batch: Vec<NewEvent>,
    /// Per event: the rules that fired (`None`: a duplicate). `Err` when the commit failed.
    pub reply: oneshot::Sender<Result<Vec<Option<Vec<String>>>, NotCommitted>>,
}

/// Why a batch was not stored, as the handlers answer it.
#[derive(Debug, Clone)]
pub struct NotCommitted {
    pub message: String,
    /// The database cannot be reached now: the sender should retry later (503), not
    /// treat it as an error of hookflow's (500).
    pub unavailable: bool,
}

/// Most requests folded into one transaction.
const MAX_GROUP: usize = 512;

/// Runs until every sender is dropped, then returns after the last commit.
/// `wake` counts commits that added jobs; workers watch it (a missed wake-up is
/// impossible: each worker compares with the generation it last saw).
pub async fn writer<S: Store>(
    store: Arc<S>,
    rules: Arc<ArcSwap<RuleSet>>,
    mut rx: mpsc::Receiver<Submit>,
    wake: Arc<watch::Sender<u64>>,
    metrics: Arc<Metrics>,
) {
    let mut group: Vec<Submit> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let sizes: Vec<usize> = group.iter().map(|s| s.batch.len()).collect();
        let mut all = Vec::with_capacity(sizes.iter().sum());
        let mut replies = Vec::with_capacity(group.len());
        for submit in group.drain(..) {
            all.extend(submit.batch);
            replies.push(submit.reply);
        }
        let events = all.len();
        let started = std::time::Instant::now();
        match store.commit(all, crate::engine::retention(&rules.load())).await {
            Ok(Committed { fired, jobs }) => {
                metrics.committed(events, started.elapsed().as_secs_f64());
                let mut rest = fired.into_iter();
                for (reply, n) in replies.into_iter().zip(sizes) {
                    let _ = reply.send(Ok(rest.by_ref().take(n).collect()));
                }
                if jobs > 0 {
                    wake.send_modify(|generation| *generation += 1);
                }
            }
            Err(e) => {
                tracing::error!("commit of {events} events failed: {e}");
                let failed = NotCommitted {
                    message: e.to_string(),
                    unavailable: matches!(e, crate::store::StoreError::Unavailable(_)),
                };
                for reply in replies {
                    let _ = reply.send(Err(failed.clone()));
                }
            }
        }
    }
}

//! Prometheus metrics (`GET /metrics`). Counters are updated where things happen; gauges
//! about the store (jobs by status) are read from it when scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    source: String,
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    duplicates: Counter,
    rejected: Family<CodeLabels, Counter>,
    matches: Family<RuleLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    attempt_seconds: Histogram,
    commit_events: Histogram,
    commit_seconds: Histogram,
    jobs: Family<StatusLabels, Gauge>,
    queue_depth: Gauge,
    reloads: Family<OutcomeLabels, Counter>,
    rules_loaded: Gauge,
    files_in_error: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookflow");
        let events = Family::<EventLabels, Counter>::default();
        let duplicates = Counter::default();
        let rejected = Family::<CodeLabels, Counter>::default();
        let matches = Family::<RuleLabels, Counter>::default();
        let attempts = Family::<AttemptLabels, Counter>::default();
        let attempt_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let commit_events = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let jobs = Family::<StatusLabels, Gauge>::default();
        let queue_depth = Gauge::default();
        let reloads = Family::<OutcomeLabels, Counter>::default();
        let rules_loaded = Gauge::default();
        let files_in_error = Gauge::default();
        registry.register(
            "reloads",
            "Rule set loads by outcome (error: some file failed)",
            reloads.clone(),
        );
        registry.register("rules_loaded", "Rules in service", rules_loaded.clone());
        registry.register(
            "rule_files_in_error",
            "Rule and template files whose current text fails to load",
            files_in_error.clone(),
        );
        registry.register(
            "events",
            "Events accepted and stored, by source and type",
            events.clone(),
        );
        registry.register(
            "duplicate_events",
            "Events received again and not processed twice",
            duplicates.clone(),
        );
        registry.register(
            "rejected_requests",
            "Webhook requests refused, by HTTP status",
            rejected.clone(),
        );
        registry.register("rule_matches", "Times each rule fired", matches.clone());
        registry.register(
            "attempts",
            "Delivery attempts by action kind and result",
            attempts.clone(),
        );
        registry.register(
            "attempt_duration_seconds",
            "Duration of delivery attempts",
            attempt_seconds.clone(),
        );
        registry.register(
            "commit_events",
            "Events per group commit (one transaction, one fsync)",
            commit_events.clone(),
        );
        registry.register(
            "commit_duration_seconds",
            "Duration of group commits, stateful rules included",
            commit_seconds.clone(),
        );
        registry.register("jobs", "Jobs in the store by status", jobs.clone());
        registry.register(
            "queue_depth",
            "Jobs waiting to run (pending or running)",
            queue_depth.clone(),
        );
        Self {
            registry,
            events,
            duplicates,
            rejected,
            matches,
            attempts,
            attempt_seconds,
            commit_events,
            commit_seconds,
            jobs,
            queue_depth,
            reloads,
            rules_loaded,
            files_in_error,
        }
    }

    pub fn event(&self, source: &str, kind: &str) {
        self.events
            .get_or_create(&EventLabels {
                source: source.to_owned(),
                r#type: kind.to_owned(),
            })
            .inc();
    }

    pub fn reloaded(&self, outcome: &str, rules: usize, files_in_error: usize) {
        self.reloads
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
        self.rules_loaded.set(rules as i64);
        self.files_in_error.set(files_in_error as i64);
    }

    /// One group commit of `events` events that took `seconds`.
    pub fn committed(&self, events: usize, seconds: f64) {
        self.commit_events.observe(events as f64);
        self.commit_seconds.observe(seconds);
    }

    pub fn duplicate(&self) {
        self.duplicates.inc();
    }

    pub fn rejected(&self, code: u16) {
        self.rejected
            .get_or_create(&CodeLabels {
                code: code.to_string(),
            })
            .inc();
    }

    pub fn matched(&self, rule: &str) {
        self.matches
            .get_or_create(&RuleLabels {
                rule: rule.to_owned(),
            })
            .inc();
    }

    pub fn attempt(&self, kind: &str, success: bool, duration_ms: u64) {
        let result = if success { "success" } else { "failure" };
        self.attempts
            .get_or_create(&AttemptLabels {
                kind: kind.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        self.attempt_seconds.observe(duration_ms as f64 / 1000.0);
    }

    /// Prometheus text, with the job gauges set from `jobs` (status → count) first.
    pub fn render(&self, jobs: &std::collections::BTreeMap<String, u64>) -> String {
        let mut queued = 0;
        for status in ["pending", "running", "succeeded", "dead", "failed"] {
            let n = jobs.get(status).copied().unwrap_or(0);
            if matches!(status, "pending" | "running") {
                queued += n;
            }
            self.jobs
                .get_or_create(&StatusLabels {
                    status: status.to_owned(),
                })
                .set(n as i64);
        }
        self.queue_depth.set(queued as i64);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

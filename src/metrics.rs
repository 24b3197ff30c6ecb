//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4, as `promtool check
//! metrics` reads it). Counters and histograms are updated where things happen; gauges
//! about the store (jobs by status, pending timers, suspended endpoints, the oldest due
//! job) are set from it when scraped. Process metrics (CPU, memory, file descriptors)
//! come with them.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder, exponential_buckets,
};

/// Endpoints get their own latency series up to this many; the rest share `other`, so
/// event data choosing hosts cannot grow the series without bound.
const MAX_ENDPOINT_SERIES: usize = 100;

/// Every job status, so that each has a series even at zero.
pub const JOB_STATUSES: &[&str] = &[
    "pending",
    "running",
    "succeeded",
    "failed",
    "dead",
    "skipped",
    "cancelled",
];

pub struct Metrics {
    registry: Registry,
    events: IntCounterVec,
    duplicates: IntCounter,
    rejected: IntCounterVec,
    matches: IntCounterVec,
    attempts: IntCounterVec,
    attempt_seconds: HistogramVec,
    endpoint_seconds: HistogramVec,
    endpoints_seen: Mutex<HashSet<String>>,
    retries: IntCounterVec,
    timers_fired: IntCounter,
    timers_pending: IntGauge,
    endpoints_suspended: IntGauge,
    jobs: IntGaugeVec,
    queue_depth: IntGauge,
    oldest_due: Gauge,
    commit_events: Histogram,
    commit_seconds: Histogram,
    ingest_seconds: Histogram,
    in_flight: IntGauge,
    ingest_queue: IntGauge,
    reloads: IntCounterVec,
    last_reload: Gauge,
    rules_loaded: IntGauge,
    files_in_error: IntGauge,
    rule_set: IntGaugeVec,
    generation: IntGauge,
    pruned: IntCounterVec,
}

/// One load of the rule set, as the metrics show it.
pub struct Loaded<'a> {
    /// `ok`, or `error` when some file failed.
    pub outcome: &'a str,
    pub rules: usize,
    pub files_in_error: usize,
    /// The rule set version's hash: instances serving different rules show different ones.
    pub hash: &'a str,
    pub generation: u64,
}

/// What the store says when scraped.
#[derive(Debug, Default)]
pub struct StoreGauges {
    pub jobs: std::collections::BTreeMap<String, u64>,
    pub timers_pending: u64,
    pub endpoints_suspended: u64,
    /// Seconds since the oldest due job became due (0 when none waits).
    pub oldest_due_seconds: f64,
}

/// How an attempt ended, for the `result` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    Success,
    Skipped,
    Failure,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    let _ = r.register(Box::new(c.clone()));
    c
}

fn plain_counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    let _ = r.register(Box::new(c.clone()));
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    let _ = r.register(Box::new(g.clone()));
    g
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).expect("valid metric");
    let _ = r.register(Box::new(h.clone()));
    h
}

fn buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    exponential_buckets(start, factor, count).unwrap_or_default()
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new_custom(Some("hookflow".into()), None).expect("valid prefix");
        let build = IntGaugeVec::new(
            Opts::new("build_info", "The running hookflow's version (always 1)"),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let _ = r.register(Box::new(build));
        #[cfg(target_os = "linux")]
        {
            // Process metrics keep their standard names (`process_…`), unprefixed.
            let _ = prometheus::default_registry().register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        let jobs = IntGaugeVec::new(Opts::new("jobs", "Jobs in the store by status"), &["status"])
            .expect("valid metric");
        let _ = r.register(Box::new(jobs.clone()));
        let rule_set = IntGaugeVec::new(
            Opts::new(
                "rule_set_info",
                "The rule set version in service, by hash (always 1; instances serving different rules differ)",
            ),
            &["hash"],
        )
        .expect("valid metric");
        let _ = r.register(Box::new(rule_set.clone()));
        let float_gauge = |name: &str, help: &str| {
            let g = Gauge::new(name, help).expect("valid metric");
            let _ = r.register(Box::new(g.clone()));
            g
        };
        let plain_histogram = |name: &str, help: &str, b: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(b)).expect("valid metric");
            let _ = r.register(Box::new(h.clone()));
            h
        };
        Self {
            events: counter(
                &r,
                "events_total",
                "Events accepted and stored, by source and type",
                &["source", "type"],
            ),
            duplicates: plain_counter(
                &r,
                "duplicate_events_total",
                "Events received again and not processed twice",
            ),
            rejected: counter(
                &r,
                "rejected_requests_total",
                "Webhook requests refused, by HTTP status",
                &["code"],
            ),
            matches: counter(
                &r,
                "rule_matches_total",
                "Times each rule fired (at ingest, by state, by timer)",
                &["rule"],
            ),
            attempts: counter(
                &r,
                "attempts_total",
                "Delivery attempts by action kind, result (success, skipped, failure) and HTTP status class",
                &["kind", "result", "status_class"],
            ),
            attempt_seconds: histogram(
                &r,
                "attempt_duration_seconds",
                "Duration of delivery attempts, by action kind",
                buckets(0.005, 2.0, 14),
                &["kind"],
            ),
            endpoint_seconds: histogram(
                &r,
                "endpoint_latency_seconds",
                "Duration of http attempts per endpoint (the first 100 endpoints; then `other`)",
                buckets(0.005, 2.0, 14),
                &["endpoint"],
            ),
            endpoints_seen: Mutex::new(HashSet::new()),
            retries: counter(
                &r,
                "retries_total",
                "Attempts that failed and scheduled a retry, by action kind",
                &["kind"],
            ),
            timers_fired: plain_counter(&r, "timers_fired_total", "`absent` timers that fired"),
            timers_pending: gauge(&r, "timers_pending", "`absent` timers waiting to fire"),
            endpoints_suspended: gauge(
                &r,
                "endpoints_suspended",
                "Outbound endpoints suspended after failing",
            ),
            jobs,
            queue_depth: gauge(&r, "queue_depth", "Jobs waiting to run (pending or running)"),
            oldest_due: float_gauge(
                "oldest_due_job_age_seconds",
                "How long the oldest due job has waited to be attempted (0: none waits)",
            ),
            commit_events: plain_histogram(
                "commit_events",
                "Events per group commit (one transaction, one fsync)",
                buckets(1.0, 2.0, 12),
            ),
            commit_seconds: plain_histogram(
                "commit_duration_seconds",
                "Duration of group commits, stateful rules included",
                buckets(0.0005, 2.0, 14),
            ),
            ingest_seconds: plain_histogram(
                "ingest_request_duration_seconds",
                "Duration of webhook requests, from the handler's start to its answer",
                buckets(0.0005, 2.0, 14),
            ),
            in_flight: gauge(&r, "ingest_requests_in_flight", "Webhook requests being handled"),
            ingest_queue: gauge(
                &r,
                "ingest_queue_depth",
                "Webhook requests waiting for the store's writer",
            ),
            reloads: counter(
                &r,
                "reloads_total",
                "Rule set loads by outcome (error: some file failed)",
                &["outcome"],
            ),
            last_reload: float_gauge(
                "last_reload_success_timestamp_seconds",
                "When the rules last loaded without an error (unix time)",
            ),
            rules_loaded: gauge(&r, "rules_loaded", "Rules in service"),
            files_in_error: gauge(
                &r,
                "rule_files_in_error",
                "Rule and template files whose current text fails to load",
            ),
            rule_set,
            generation: gauge(
                &r,
                "rule_set_generation",
                "How many times this instance built its rule set (1 at start)",
            ),
            pruned: counter(
                &r,
                "journal_pruned_total",
                "Rows deleted by retention, by table (events, jobs, attempts)",
                &["table"],
            ),
            registry: r,
        }
    }

    pub fn event(&self, source: &str, kind: &str) {
        self.events.with_label_values(&[source, kind]).inc();
    }

    pub fn reloaded(&self, l: &Loaded) {
        self.reloads.with_label_values(&[l.outcome]).inc();
        if l.outcome == "ok" {
            self.last_reload
                .set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
        }
        self.rules_loaded.set(l.rules as i64);
        self.files_in_error.set(l.files_in_error as i64);
        // One series: the version now serving, not every version since start.
        self.rule_set.reset();
        self.rule_set.with_label_values(&[l.hash]).set(1);
        self.generation.set(l.generation as i64);
    }

    /// What a retention pass deleted.
    pub fn pruned(&self, events: u64, jobs: u64, attempts: u64) {
        for (table, n) in [("events", events), ("jobs", jobs), ("attempts", attempts)] {
            self.pruned.with_label_values(&[table]).inc_by(n);
        }
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
        self.rejected.with_label_values(&[&code.to_string()]).inc();
    }

    pub fn matched(&self, rule: &str) {
        self.matches.with_label_values(&[rule]).inc();
    }

    pub fn timer_fired(&self, rule: &str) {
        self.timers_fired.inc();
        self.matched(rule);
    }

    /// A webhook request starts: counted in flight until the guard drops.
    pub fn ingest_started(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight {
            metrics: self,
            started: std::time::Instant::now(),
        }
    }

    /// One attempt: its result, HTTP status if any, duration, endpoint, whether it retries.
    pub fn attempt(
        &self,
        kind: &str,
        result: AttemptResult,
        status: Option<u16>,
        duration_ms: u64,
        endpoint: Option<&str>,
        retries: bool,
    ) {
        let result = match result {
            AttemptResult::Success => "success",
            AttemptResult::Skipped => "skipped",
            AttemptResult::Failure => "failure",
        };
        let class = match status {
            Some(s @ 100..=599) => ["1xx", "2xx", "3xx", "4xx", "5xx"][usize::from(s / 100 - 1)],
            Some(_) => "other",
            None => "none",
        };
        self.attempts.with_label_values(&[kind, result, class]).inc();
        let seconds = duration_ms as f64 / 1000.0;
        self.attempt_seconds.with_label_values(&[kind]).observe(seconds);
        if let Some(endpoint) = endpoint {
            let mut seen = self.endpoints_seen.lock().unwrap_or_else(|e| e.into_inner());
            let label = if seen.contains(endpoint) {
                endpoint
            } else if seen.len() < MAX_ENDPOINT_SERIES {
                seen.insert(endpoint.to_owned());
                endpoint
            } else {
                "other"
            };
            self.endpoint_seconds.with_label_values(&[label]).observe(seconds);
        }
        if retries {
            self.retries.with_label_values(&[kind]).inc();
        }
    }

    /// Prometheus text, with the store's gauges and the ingest queue set first.
    pub fn render(&self, store: &StoreGauges, ingest_queue: usize) -> String {
        let mut queued = 0;
        for status in JOB_STATUSES {
            let n = store.jobs.get(*status).copied().unwrap_or(0);
            if matches!(*status, "pending" | "running") {
                queued += n;
            }
            self.jobs.with_label_values(&[status]).set(n as i64);
        }
        self.queue_depth.set(queued as i64);
        self.timers_pending.set(store.timers_pending as i64);
        self.endpoints_suspended.set(store.endpoints_suspended as i64);
        self.oldest_due.set(store.oldest_due_seconds);
        self.ingest_queue.set(ingest_queue as i64);
        let mut families = self.registry.gather();
        families.extend(prometheus::default_registry().gather());
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A webhook request in flight; records its duration when dropped.
pub struct InFlight<'m> {
    metrics: &'m Metrics,
    started: std::time::Instant,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
        self.metrics
            .ingest_seconds
            .observe(self.started.elapsed().as_secs_f64());
    }
}

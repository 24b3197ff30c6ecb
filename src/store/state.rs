//! The state stateful rules keep, as the decision engine asks for it — and the hooks by
//! which the engine decides inside a store's transaction without the store knowing
//! anything of rules.
//!
//! The engine (`engine::decide`) holds the one algorithm for `after`, `absent`,
//! `threshold` and `once`. It reads and writes state only through [`State`]: the
//! server's store implements it over the transaction that commits the event (so a
//! decision and the state it changes commit together), and `engine::MemoryState`
//! implements it for `hookflow test --history` and inline tests. What an event needs
//! decided travels with it as a [`Stateful`]; due timers are decided by a [`FireTimers`].
//! Times are unix milliseconds.

use crate::event::Event;

use super::{NewJob, StoreError};

/// Questions and writes about stateful rules' memory.
pub trait State {
    /// Whether an event of type `kind` whose `field` had the value `key` happened at a
    /// time in `[from, to]`: what `after` asks, and what cancels an `absent` timer.
    fn seen(&mut self, kind: &str, field: &str, key: &str, from: i64, to: i64) -> Result<bool, StoreError>;

    /// Records such a fact, for later questions.
    fn record(&mut self, kind: &str, field: &str, key: &str, at: i64) -> Result<(), StoreError>;

    /// Starts an `absent` timer for the event being decided — unless the event that
    /// cancels it (type `cancel_kind`, the timer's key in `cancel_field`) was seen in the
    /// timer's period already, as events come out of order. Returns whether it started.
    /// One question and one write, so that a store can make them one statement.
    fn start_timer(
        &mut self,
        timer: &Timer,
        cancel_kind: &str,
        cancel_field: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes the timers of `rule` for `key` whose period covers `at`, adding `note` (a
    /// JSON object: what cancelled them) to the decisions of the events that started
    /// them. Returns how many.
    fn cancel_timers(&mut self, rule: &str, key: &str, at: i64, note: &str) -> Result<usize, StoreError>;

    /// Cancels, for `contact`, the jobs of `rules` not yet attempted (status
    /// `cancelled`, `note` as their message) and deletes their `absent` timers due after
    /// `at` (one due before would have fired by then), adding `decision`, a JSON object,
    /// to the events that started them. Jobs and timers of the event being decided are
    /// not among them. Returns (jobs, timers).
    fn cancel_contact(
        &mut self,
        rules: &[String],
        contact: &str,
        at: i64,
        note: &str,
        decision: &str,
    ) -> Result<(usize, usize), StoreError>;

    /// Counts one event of type `kind` into bucket `bucket` (its start) of `rule`'s window
    /// for `group`, then sums the buckets starting in `(from, to]`: events per type.
    fn count(
        &mut self,
        rule: &str,
        group: &str,
        kind: &str,
        bucket: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, u64)>, StoreError>;

    /// What is known of `contact` (a lowercased address), as `contact.*` conditions and
    /// templates read it: `{"lists": [..], "props": {..}, "suppressed": bool, "sent":
    /// {KIND: {PERIOD: n}}}`. `props` merges the properties of every list it is on, the
    /// most recently updated list winning. `sent` has, for each `(kind, period, since)`,
    /// how many of its jobs of that kind were planned since `since` (unix ms) and not
    /// cancelled, skipped or failed.
    fn contact(
        &mut self,
        contact: &str,
        sent: &[(String, String, i64)],
    ) -> Result<serde_json::Value, StoreError>;

    /// The due times (unix ms) of the jobs frequency cap `cap` counted for `contact` in
    /// `(from, to)`, in any order.
    fn cap_times(&mut self, cap: &str, contact: &str, from: i64, to: i64) -> Result<Vec<i64>, StoreError>;

    /// Counts job `job_key`, due at `at`, against the cap (a cancelled job's counts go
    /// with it: see [`State::cancel_contact`]).
    fn cap_take(&mut self, cap: &str, contact: &str, at: i64, job_key: &str) -> Result<(), StoreError>;

    /// When `rule`'s quiet period for `key` (a `once` key, a threshold's group) ends.
    fn mark(&mut self, rule: &str, key: &str) -> Result<Option<i64>, StoreError>;

    /// Starts (or extends) that quiet period.
    fn set_mark(&mut self, rule: &str, key: &str, until: i64) -> Result<(), StoreError>;
}

/// An `absent` timer: `rule` fires for the event that started it at `due`, unless the
/// cancelling event (with `key`) arrives in `[start, due]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timer {
    pub rule: String,
    pub key: String,
    pub start: i64,
    pub due: i64,
    /// The contact of the event that starts it, so a `cancel` for them can find it.
    pub contact: Option<String>,
}

/// A due timer, with the event that started it.
#[derive(Debug, Clone)]
pub struct DueTimer {
    pub rule: String,
    pub key: String,
    pub start: i64,
    pub due: i64,
    pub event: Event,
}

/// What deciding an event (or a timer) came to.
#[derive(Debug, Default)]
pub struct Decided {
    /// Rules that fired.
    pub fired: Vec<String>,
    /// Their jobs.
    pub jobs: Vec<NewJob>,
    /// The decisions to keep with the event (a JSON object each): what cannot be worked
    /// out again later, because it depended on state at that moment.
    pub decisions: Vec<String>,
}

/// The part of an event that stateful rules decide, planned when the event was, decided
/// in the transaction that stores it.
pub trait Stateful: Send + Sync {
    /// Whether deciding may change (cancel) or count jobs planned before: the store then
    /// writes the jobs of the batch's earlier events before it decides this one.
    fn changes_jobs(&self) -> bool {
        false
    }

    fn decide(
        &self,
        event: &Event,
        received_at: chrono::DateTime<chrono::Utc>,
        state: &mut dyn State,
    ) -> Result<Decided, StoreError>;
}

/// Decides due `absent` timers (with the rules in service when they fall due).
pub trait FireTimers: Send + Sync {
    fn fire(
        &self,
        timer: &DueTimer,
        now: chrono::DateTime<chrono::Utc>,
        state: &mut dyn State,
    ) -> Result<Decided, StoreError>;
}

/// How long state must be kept, from the rules in service: facts for the longest
/// correlation, window buckets for the longest window, cap counts for the longest cap
/// period (each plus a day for late events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub facts_ms: i64,
    pub windows_ms: i64,
    /// Cap counts, for the longest cap period (plus a day) before the clock.
    pub caps_ms: i64,
}

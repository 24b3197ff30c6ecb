//! Where the server's "now" comes from: the system clock in production, or a manual clock
//! that only moves when told to (`hookflow serve --manual-clock`, `POST /api/clock`).
//!
//! Timers, windows, `once` periods and `delay` run on event time and on this clock, so a
//! test can start a 48-hour timer and check it fires at exactly 48 hours, not a second
//! early, without waiting two days or sleeping on the wall clock. Attempt durations and
//! signature timestamps stay on real time: they describe real network calls.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A cheap handle to one clock; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<watch::Sender<DateTime<Utc>>>>);

/// Why a clock could not be moved.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClockError {
    #[error("the server runs on the system clock; start it with `--manual-clock` to move time by hand")]
    System,
    #[error("time only moves forward: the clock is at {now}, {asked} is earlier")]
    Backwards { now: String, asked: String },
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock standing at `start` until moved.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self(Some(Arc::new(watch::channel(start).0)))
    }

    pub fn is_manual(&self) -> bool {
        self.0.is_some()
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            None => Utc::now(),
            Some(time) => *time.borrow(),
        }
    }

    /// Moves a manual clock to `to`, never backwards (a timer that fired stays fired).
    pub fn set(&self, to: DateTime<Utc>) -> Result<DateTime<Utc>, ClockError> {
        let time = self.0.as_ref().ok_or(ClockError::System)?;
        let now = *time.borrow();
        if to < now {
            return Err(ClockError::Backwards {
                now: now.to_rfc3339(),
                asked: to.to_rfc3339(),
            });
        }
        time.send_replace(to);
        Ok(to)
    }

    /// Returns once the clock reads `at` or later. On the system clock that is a sleep;
    /// a manual clock returns when it is moved that far.
    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        match &self.0 {
            None => {
                if let Ok(wait) = (at - Utc::now()).to_std() {
                    tokio::time::sleep(wait).await;
                }
            }
            Some(time) => {
                let mut moved = time.subscribe();
                // Err only when the clock is dropped, and with it the server.
                let _ = moved.wait_for(|now| *now >= at).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[tokio::test]
    async fn a_manual_clock_moves_only_forward_and_wakes_sleepers() {
        let clock = Clock::manual(at("2026-11-27T10:00:00Z"));
        let due = at("2026-11-29T10:00:00Z");
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(due).await }
        });
        clock.set(at("2026-11-29T09:59:59Z")).unwrap();
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke a second early");
        clock.set(due).unwrap();
        sleeper.await.unwrap();
        assert_eq!(clock.now(), due);
        assert!(matches!(
            clock.set(at("2026-11-28T00:00:00Z")),
            Err(ClockError::Backwards { .. })
        ));
    }

    #[test]
    fn the_system_clock_cannot_be_set() {
        assert_eq!(Clock::system().set(Utc::now()), Err(ClockError::System));
    }
}

//! The retry schedule as data: after a failed attempt, wait, try again, give up.

use chrono::{DateTime, Utc};

use crate::base::duration::Duration;
use crate::store::{Job, Next};

pub use crate::actions::run::Outcome;

#[derive(Debug, Clone)]
pub struct Policy {
    /// The wait before each retry; the first attempt is immediate.
    pub retries: Vec<Duration>,
}

/// Waits longer than this from a `Retry-After` header are cut down to it.
const MAX_RETRY_AFTER: u64 = 24 * 3600;

impl Policy {
    /// What happens after `job`'s attempt number `job.attempts` ended with `outcome`.
    pub fn next(&self, job: &Job, outcome: &Outcome, now: DateTime<Utc>) -> Next {
        match outcome {
            Outcome::Success => Next::Succeeded,
            Outcome::Skipped => Next::Skipped,
            Outcome::Permanent => Next::Dead { suspend: None },
            Outcome::Retryable { retry_after } => {
                let done = job.attempts.max(1) as usize;
                match self.retries.get(done - 1) {
                    Some(wait) => {
                        let wait = match retry_after {
                            Some(asked) => {
                                Duration::from_secs(asked.as_secs().clamp(wait.as_secs(), MAX_RETRY_AFTER))
                            }
                            None => *wait,
                        };
                        Next::Retry(in_window(job, now + jittered(wait)))
                    }
                    None => Next::Dead {
                        suspend: job.endpoint.clone(),
                    },
                }
            }
        }
    }
}

/// `at`, or when the job's send window next opens after it: a retry waits for the
/// contact's hours as the first attempt did.
fn in_window(job: &Job, at: DateTime<Utc>) -> DateTime<Utc> {
    job.action
        .get("send_window")
        .and_then(crate::base::local_time::Window::from_json)
        .and_then(|w| w.next_open(at))
        .unwrap_or(at)
}

/// Up to 10% later (never earlier), so a burst of failures does not retry in lockstep.
fn jittered(wait: Duration) -> chrono::TimeDelta {
    let ms = wait.as_secs() as i64 * 1000;
    chrono::TimeDelta::milliseconds(ms + fastrand::i64(0..=ms / 10))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(attempts: u32) -> Job {
        Job {
            id: 1,
            key: "e/r/0".into(),
            event_id: "e".into(),
            rule_id: "r".into(),
            kind: "http".into(),
            action: json!({}),
            endpoint: Some("https://x.example:443".into()),
            attempts,
            action_index: 0,
            first_attempt_at: Utc::now(),
        }
    }

    #[test]
    fn follows_the_schedule_then_dies_and_suspends() {
        let p = Policy {
            retries: vec![Duration::from_secs(30), Duration::from_secs(1800)],
        };
        let now = Utc::now();
        let retry = Outcome::Retryable { retry_after: None };
        let Next::Retry(at) = p.next(&job(1), &retry, now) else {
            panic!()
        };
        let waited = (at - now).num_milliseconds();
        assert!((30_000..=33_000).contains(&waited), "{waited}");
        let Next::Retry(at) = p.next(&job(2), &retry, now) else {
            panic!()
        };
        assert!((at - now).num_seconds() >= 1800);
        assert_eq!(
            p.next(&job(3), &retry, now),
            Next::Dead {
                suspend: Some("https://x.example:443".into())
            }
        );
        assert_eq!(
            p.next(&job(1), &Outcome::Permanent, now),
            Next::Dead { suspend: None }
        );
        assert_eq!(p.next(&job(1), &Outcome::Success, now), Next::Succeeded);
    }

    #[test]
    fn a_retry_outside_the_send_window_waits_for_it() {
        let p = Policy {
            retries: vec![Duration::from_secs(30)],
        };
        let mut held = job(1);
        held.action =
            json!({"kind": "log", "send_window": {"tz": "Europe/Paris", "between": ["09:00", "20:00"]}});
        // 18:59:50 UTC is 19:59:50 in Paris: the retry would fall after 20:00.
        let now = chrono::DateTime::parse_from_rfc3339("2027-01-15T18:59:50Z")
            .unwrap()
            .with_timezone(&Utc);
        let retry = Outcome::Retryable { retry_after: None };
        let Next::Retry(at) = p.next(&held, &retry, now) else {
            panic!()
        };
        assert_eq!(
            at.to_rfc3339(),
            "2027-01-16T08:00:00+00:00",
            "09:00 the next morning in Paris"
        );
        let Next::Retry(at) = p.next(&job(1), &retry, now) else {
            panic!()
        };
        assert!((at - now).num_seconds() < 40, "no window, no wait");
    }

    #[test]
    fn retry_after_can_only_lengthen_the_wait() {
        let p = Policy {
            retries: vec![Duration::from_secs(30)],
        };
        let now = Utc::now();
        let asked = |s| Outcome::Retryable {
            retry_after: Some(Duration::from_secs(s)),
        };
        let Next::Retry(at) = p.next(&job(1), &asked(120), now) else {
            panic!()
        };
        assert!((at - now).num_seconds() >= 120);
        let Next::Retry(at) = p.next(&job(1), &asked(1), now) else {
            panic!()
        };
        assert!((at - now).num_seconds() >= 30);
    }
}

//! Frequency caps: at most `max` jobs of some kinds per contact in any period of length
//! `per` ("at most 2 marketing emails a day"), counted across every rule. Defined in the
//! configuration; the engine counts and decides in the commit transaction, through the
//! store's state. This file is the arithmetic: when one more job fits.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;

/// The action kinds a cap can count: every kind that delivers something (not `cancel`).
/// Spelled here because the configuration, which checks `kinds`, sits beside the actions
/// and not above them; a test in `actions` keeps the two lists in step.
pub const COUNTABLE: &[&str] = &["email", "http", "contacts", "suppress", "unsuppress", "log"];

/// One cap, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Cap {
    pub name: String,
    /// The action kinds it covers (`email`).
    pub kinds: Vec<String>,
    /// At most this many (at least 1) ...
    pub max: u32,
    /// ... in any period this long, per contact.
    pub per: Duration,
    /// What an action over it does, unless it says otherwise.
    pub when_capped: WhenCapped,
}

/// What a job over its cap does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WhenCapped {
    /// It is not sent: `skipped (capped: NAME, 2 in 1d)`.
    #[default]
    Skip,
    /// It waits until the cap has room, durably.
    Hold,
}

impl Cap {
    /// `capped: marketing, 2 in 1d`: why a job was skipped or held.
    /// The period in its largest exact unit, days included (`1d`, as a cap is written,
    /// where durations elsewhere print `24h`).
    pub fn reason(&self) -> String {
        let s = self.per.as_secs();
        let per = [(86_400, "d"), (3600, "h"), (60, "m")]
            .iter()
            .find(|(size, _)| s != 0 && s.is_multiple_of(*size))
            .map_or_else(|| format!("{s}s"), |(size, unit)| format!("{}{unit}", s / size));
        format!("capped: {}, {} in {per}", self.name, self.max)
    }
}

/// Whether one more job at `t` keeps every period of length `per` at `max` jobs or fewer,
/// given the times already `counted` (sorted). A period holding `t` and `max` others
/// spans less than `per` exactly when some `max` consecutive counted times around `t`
/// do, together with it.
pub fn fits(counted: &[i64], t: i64, per: i64, max: usize) -> bool {
    if max == 0 {
        return false;
    }
    // Counted times at `t` itself are "before" it; either way they share its periods.
    let p = counted.partition_point(|&c| c <= t);
    (0..=max).all(|before| {
        let after = max - before;
        if before > p || p + after > counted.len() {
            return true;
        }
        let first = if before == 0 { t } else { counted[p - before] };
        let last = if after == 0 { t } else { counted[p + after - 1] };
        last - first >= per
    })
}

/// The earliest time at or after `t` at which one more job fits (see [`fits`]). Room
/// opens only when a counted time leaves the period behind, so the answer is `t` or some
/// counted time plus `per`; the last of those always fits.
pub fn slot(counted: &[i64], t: i64, per: i64, max: usize) -> i64 {
    let mut sorted = counted.to_vec();
    sorted.sort_unstable();
    if fits(&sorted, t, per, max) {
        return t;
    }
    let mut candidates: Vec<i64> = sorted.iter().map(|c| c + per).filter(|&c| c > t).collect();
    candidates.sort_unstable();
    candidates
        .into_iter()
        .find(|&c| fits(&sorted, c, per, max))
        .unwrap_or_else(|| sorted.last().map_or(t, |l| (l + per).max(t)))
}

#[cfg(test)]
mod tests {
    use super::{fits, slot};

    const DAY: i64 = 86_400;

    #[test]
    fn two_a_day() {
        assert!(fits(&[], 0, DAY, 2));
        assert!(fits(&[0], 10, DAY, 2));
        assert!(!fits(&[0, 10], 20, DAY, 2), "a third within the day");
        assert!(fits(&[0, 10], DAY, DAY, 2), "the first has left the period");
        assert!(
            fits(&[0, 10], DAY + 5, DAY, 2),
            "two in the period from 10: allowed"
        );
        assert!(
            !fits(&[0, 10, DAY], DAY + 5, DAY, 2),
            "10, a day later and this: three"
        );
    }

    #[test]
    fn a_job_held_for_later_counts_too() {
        // One now and one just before this time tomorrow: a third in between crowds both.
        assert!(!fits(&[0, DAY - 1], DAY / 2, DAY, 2));
        // Exactly a day apart, the two never share a period: room between them.
        assert!(fits(&[0, DAY], DAY / 2, DAY, 2));
        // Right after the first leaves the period, and well before the one tomorrow: the
        // period ending tomorrow holds tomorrow's and this one.
        assert!(fits(&[0, 2 * DAY], DAY, DAY, 2));
        assert!(
            !fits(&[0, DAY + 1, DAY + 2], DAY, DAY, 2),
            "crowds the two tomorrow"
        );
    }

    #[test]
    fn slots_wait_until_there_is_room() {
        assert_eq!(slot(&[], 5, DAY, 2), 5);
        assert_eq!(slot(&[10, 0], 20, DAY, 2), DAY);
        assert_eq!(slot(&[0, 10, DAY], 20, DAY, 2), DAY + 10, "tomorrow's counts");
        assert_eq!(slot(&[0, 0, 0], 0, DAY, 1), DAY);
        // A cap of one a day with jobs held every day for a week: the first free day.
        let week: Vec<i64> = (0..7).map(|d| d * DAY).collect();
        assert_eq!(slot(&week, 0, DAY, 1), 7 * DAY);
    }

    #[test]
    fn zero_never_fits() {
        assert!(!fits(&[], 0, DAY, 0));
    }
}

//! What the router makes of a target's history: rolling statistics
//! ([`HealthStats`]: success rate, TTFT and tokens/s percentiles over the
//! last [`HEALTH_WINDOW`] attempts) and the cooldown state machine
//! (closed → cooling down → half-open → closed).
//!
//! Storage is not decided here: everything goes through
//! [`HealthStore`], so the same logic runs on
//! [`MemoryHealth`](crate::hooks::MemoryHealth) in tests and on SQLite
//! ([`SqliteHealth`](crate::SqliteHealth)) in the app and the CLI.
//! The state machine is a set of pure functions of the stored
//! [`CooldownState`] and the wall clock (Unix ms), so a cooldown entered in
//! one process is honoured by the next.

use std::time::Duration;

use serde::Serialize;

use crate::error::ErrorKind;
use crate::hooks::{CooldownState, HealthSample, HealthStore};

use super::config::CooldownSettings;

/// How many recent attempts the statistics look at.
pub const HEALTH_WINDOW: usize = 50;

/// Does a failure of this kind say something about the target's health?
/// A request that is itself wrong (`bad_request`, `context_too_long`) or
/// that only this model refuses (`unsupported`) says nothing about the
/// target, and `budget` / `policy` refusals never reach it: none of them
/// may cool a target down or lower its success rate. An account that
/// cannot pay (`billing`) or is not served here (`unavailable`) will keep
/// failing, so those count. Nor may a request the user stopped.
pub fn counts_for_health(kind: ErrorKind) -> bool {
    match kind {
        ErrorKind::Auth
        | ErrorKind::RateLimited
        | ErrorKind::Overloaded
        | ErrorKind::NotFound
        | ErrorKind::Network
        | ErrorKind::Timeout
        | ErrorKind::Interrupted
        | ErrorKind::Malformed
        | ErrorKind::Billing
        | ErrorKind::Unavailable => true,
        ErrorKind::ContextTooLong
        | ErrorKind::BadRequest
        | ErrorKind::Unsupported
        | ErrorKind::Budget
        | ErrorKind::Policy
        | ErrorKind::Stopped => false,
    }
}

/// Rolling statistics of one target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct HealthStats {
    /// Attempts looked at.
    pub samples: usize,
    /// Of which complete answers.
    pub successes: usize,
    /// `successes / samples`, when there are samples.
    pub success_rate: Option<f64>,
    /// Median time to first token (ms).
    pub ttft_p50_ms: Option<f64>,
    /// 90th percentile time to first token (ms).
    pub ttft_p90_ms: Option<f64>,
    /// Median output tokens per second.
    pub tps_p50: Option<f64>,
    /// 10th percentile tokens/s: the slow end, as p90 is for TTFT.
    pub tps_p10: Option<f64>,
}

impl HealthStats {
    /// Statistics of `samples` (any order).
    pub fn from_samples(samples: &[HealthSample]) -> Self {
        Self::from_each(samples.iter())
    }

    /// Statistics of `samples` (any order), read in place (no copy of
    /// them: the router computes this for every target of every request).
    pub fn from_each<'a, I>(samples: I) -> Self
    where
        I: Iterator<Item = &'a HealthSample> + Clone,
    {
        let (mut count, mut successes) = (0, 0);
        for s in samples.clone() {
            count += 1;
            successes += usize::from(s.ok);
        }
        let ttft = sorted(samples.clone().filter_map(|s| s.ttft_ms));
        let tps = sorted(samples.filter_map(|s| s.tokens_per_s));
        Self {
            samples: count,
            successes,
            success_rate: (count > 0).then(|| successes as f64 / count as f64),
            ttft_p50_ms: percentile(&ttft, 50.0),
            ttft_p90_ms: percentile(&ttft, 90.0),
            tps_p50: percentile(&tps, 50.0),
            tps_p10: percentile(&tps, 10.0),
        }
    }

    /// The statistics of `provider`/`model` in `store`.
    pub fn of(store: &dyn HealthStore, provider: &str, model: &str) -> Self {
        store.stats(provider, model)
    }
}

fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    // Equal values are the same value: no need for a stable sort (which
    // takes scratch space).
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// Nearest-rank percentile of sorted values: always one that was measured.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Where a target stands in the cooldown cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Healthy or not failing enough: run it.
    Closed,
    /// Skip it for `remaining` more.
    CoolingDown {
        /// Time left.
        remaining: Duration,
    },
    /// The cooldown ran out: the next attempt is a probe, and one probe only
    /// (it holds the target for the others while it runs).
    HalfOpen,
}

/// The phase of `state` at `now_ms` (Unix ms).
pub fn phase(state: &CooldownState, now_ms: i64) -> Phase {
    match state.until_unix_ms {
        None => Phase::Closed,
        Some(until) if until > now_ms => Phase::CoolingDown {
            remaining: Duration::from_millis(
                u64::try_from(until.saturating_sub(now_ms)).unwrap_or(0),
            ),
        },
        Some(_) => Phase::HalfOpen,
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The length of the next cooldown: `base × 2^level`, capped at `max`.
pub fn cooldown_period(settings: &CooldownSettings, level: u32) -> Duration {
    let factor = 1u32.checked_shl(level.min(31)).unwrap_or(u32::MAX);
    settings
        .base
        .checked_mul(factor)
        .unwrap_or(settings.max)
        .min(settings.max)
}

/// The state after a success: closed, level reset.
pub fn after_success() -> CooldownState {
    CooldownState::default()
}

/// The state after a failure that counts for health. A cooldown starts
/// when failures in a row reach `after_failures`, or at once when the
/// target was cooling down or half-open (its probe failed); each cooldown
/// in a row lasts twice the previous one. `hold_until_ms` keeps the target
/// out until then at least (a `Retry-After` the router did not wait for).
pub fn after_failure(
    state: CooldownState,
    now_ms: i64,
    settings: &CooldownSettings,
    hold_until_ms: Option<i64>,
) -> CooldownState {
    let mut s = state;
    s.consecutive_failures = s.consecutive_failures.saturating_add(1);
    let probing = s.until_unix_ms.is_some();
    if probing || s.consecutive_failures >= settings.after_failures {
        let until = now_ms.saturating_add(ms(cooldown_period(settings, s.level)));
        s.until_unix_ms = Some(until);
        s.level = s.level.saturating_add(1);
    }
    if let Some(hold) = hold_until_ms {
        s.until_unix_ms = Some(s.until_unix_ms.map_or(hold, |u| u.max(hold)));
    }
    s
}

/// Claim the half-open probe: the target stays out for the others for
/// `lease` (or until the probe ends and records its outcome).
pub fn claim_probe(state: CooldownState, now_ms: i64, lease: Duration) -> CooldownState {
    CooldownState {
        until_unix_ms: Some(now_ms.saturating_add(ms(lease))),
        ..state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ok: bool, ttft: Option<f64>, tps: Option<f64>) -> HealthSample {
        HealthSample {
            at_unix_ms: 0,
            ok,
            error_kind: (!ok).then_some(ErrorKind::Overloaded),
            ttft_ms: ttft,
            tokens_per_s: tps,
        }
    }

    #[test]
    fn statistics_are_nearest_rank_percentiles_of_what_was_measured() {
        let mut s: Vec<HealthSample> = (1..=10)
            .map(|i| sample(true, Some(f64::from(i) * 100.0), Some(f64::from(i))))
            .collect();
        s.push(sample(false, None, None));
        s.push(sample(false, None, None));
        let st = HealthStats::from_samples(&s);
        assert_eq!(st.samples, 12);
        assert_eq!(st.successes, 10);
        assert_eq!(st.success_rate, Some(10.0 / 12.0));
        assert_eq!(st.ttft_p50_ms, Some(500.0));
        assert_eq!(st.ttft_p90_ms, Some(900.0));
        assert_eq!(st.tps_p50, Some(5.0));
        assert_eq!(st.tps_p10, Some(1.0));
        let empty = HealthStats::from_samples(&[]);
        assert_eq!(empty.success_rate, None);
        assert_eq!(empty.ttft_p50_ms, None);
        let one = HealthStats::from_samples(&[sample(true, Some(42.0), None)]);
        assert_eq!((one.ttft_p50_ms, one.ttft_p90_ms), (Some(42.0), Some(42.0)));
    }

    #[test]
    fn failures_that_say_nothing_about_the_target_do_not_count() {
        assert!(counts_for_health(ErrorKind::Overloaded));
        assert!(counts_for_health(ErrorKind::Auth));
        assert!(counts_for_health(ErrorKind::Interrupted));
        assert!(!counts_for_health(ErrorKind::BadRequest));
        assert!(!counts_for_health(ErrorKind::Unsupported));
        assert!(counts_for_health(ErrorKind::Billing));
        assert!(!counts_for_health(ErrorKind::ContextTooLong));
        assert!(!counts_for_health(ErrorKind::Budget));
        assert!(!counts_for_health(ErrorKind::Policy));
    }

    #[test]
    fn cooldown_starts_after_n_failures_grows_and_clears_on_success() {
        let cfg = CooldownSettings {
            after_failures: 3,
            base: Duration::from_secs(5),
            max: Duration::from_secs(15),
        };
        let mut s = CooldownState::default();
        s = after_failure(s, 1_000, &cfg, None);
        s = after_failure(s, 1_000, &cfg, None);
        assert_eq!(
            phase(&s, 1_000),
            Phase::Closed,
            "two failures: still closed"
        );
        s = after_failure(s, 1_000, &cfg, None);
        assert_eq!(
            phase(&s, 1_000),
            Phase::CoolingDown {
                remaining: Duration::from_secs(5)
            }
        );
        assert_eq!(phase(&s, 6_000), Phase::HalfOpen);
        // The probe holds the target while it runs...
        s = claim_probe(s, 6_000, Duration::from_secs(2));
        assert!(matches!(phase(&s, 6_500), Phase::CoolingDown { .. }));
        // ...and its failure starts a cooldown twice as long at once.
        s = after_failure(s, 7_000, &cfg, None);
        assert_eq!(s.until_unix_ms, Some(17_000));
        assert_eq!(s.level, 2);
        // Capped at max.
        s = after_failure(s, 17_000, &cfg, None);
        assert_eq!(s.until_unix_ms, Some(32_000));
        assert_eq!(cooldown_period(&cfg, 30), Duration::from_secs(15));
        assert_eq!(after_success(), CooldownState::default());
        assert_eq!(phase(&after_success(), 0), Phase::Closed);
    }

    #[test]
    fn a_retry_after_hold_keeps_the_target_out_without_growing_the_period() {
        let cfg = CooldownSettings::default();
        let s = after_failure(CooldownState::default(), 1_000, &cfg, Some(61_000));
        assert_eq!(s.until_unix_ms, Some(61_000));
        assert_eq!(s.level, 0);
        assert_eq!(s.consecutive_failures, 1);
    }
}

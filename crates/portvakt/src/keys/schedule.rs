//! When the key store refreshes, retries, gives up waiting and drops keys: every delay and
//! limit of the JWKS refresh in one pure value (in the manner of tower's retry policies), so
//! the rules are read in one place and tested without a clock or a network.
//!
//! | Situation | Next refresh |
//! |---|---|
//! | success | the refresh interval ±10 %, at most half the maximum key age |
//! | the issuer contradicts the configuration | the refresh interval (at most 5 min) ±10 % |
//! | any other failure (n-th in a row) | exponential backoff from 1 s, capped at 1 min (or the interval), jittered over its upper half |
//!
//! An unknown `kid` may trigger one refresh per unknown-`kid` interval. A caller waits for a
//! refresh at most [`wait_limit`](RefreshSchedule::wait_limit) (discovery and JWKS may both be
//! fetched, each bounded by the HTTP timeout, plus slack); a forced refresh
//! ([`Validator::refresh`](crate::Validator::refresh)) twice that. Keys older than the
//! maximum key age are dropped.

use std::time::{Duration, Instant};

use crate::config::Config;

/// How much a delay is shortened or lengthened at random, in percent, so a fleet of sidecars
/// does not refresh in lockstep.
const JITTER_PERCENT: u64 = 10;
/// The longest wait before checking a misconfigured issuer again: hammering it changes
/// nothing, but a fixed configuration should be picked up within minutes.
const MISCONFIGURED_RECHECK: Duration = Duration::from_secs(300);
/// The first retry after a failure.
const BACKOFF_START: Duration = Duration::from_secs(1);
/// The longest retry delay after failures (or the refresh interval, when shorter).
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// Doublings of the backoff before it is capped anyway (1 s << 6 = 64 s > the cap).
const BACKOFF_MAX_DOUBLINGS: u32 = 6;
/// A refresh fetches at most two documents (discovery, JWKS), each bounded by the HTTP
/// timeout; this covers the rest (spawning, parsing).
const WAIT_SLACK: Duration = Duration::from_millis(500);

/// Every delay and limit of the key refresh; see the [module documentation](self).
///
/// Methods that add jitter take the random number as an argument (`random`), so they are pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefreshSchedule {
    /// The normal time between two successful refreshes.
    pub(crate) refresh_interval: Duration,
    /// The least time between two refreshes caused by unknown `kid`s.
    pub(crate) unknown_kid_interval: Duration,
    /// Keys older than this (since their last successful fetch) are dropped.
    pub(crate) max_key_age: Duration,
    /// The bound on one HTTP request to the issuer.
    pub(crate) http_timeout: Duration,
}

impl RefreshSchedule {
    /// The schedule a configuration asks for.
    pub(crate) fn from_config(config: &Config) -> Self {
        RefreshSchedule {
            refresh_interval: config.refresh_interval,
            unknown_kid_interval: config.unknown_kid_interval,
            max_key_age: config.max_key_age,
            http_timeout: config.http_timeout,
        }
    }

    /// The delay after a successful refresh: the interval, jittered, and never more than half
    /// the maximum key age, so keys from a healthy issuer never reach it between refreshes.
    pub(crate) fn after_success(&self, random: u64) -> Duration {
        jitter(self.refresh_interval, random).min(self.max_key_age / 2)
    }

    /// The delay after the issuer contradicted the configuration.
    pub(crate) fn after_misconfiguration(&self, random: u64) -> Duration {
        jitter(self.refresh_interval.min(MISCONFIGURED_RECHECK), random)
    }

    /// The delay after the `failures`-th failure in a row (1 for the first): exponential from
    /// 1 s, capped at one minute or the refresh interval, with full jitter over the upper half.
    pub(crate) fn after_failure(&self, failures: u32, random: u64) -> Duration {
        let cap = self.refresh_interval.min(BACKOFF_CAP);
        let doublings = failures.saturating_sub(1).min(BACKOFF_MAX_DOUBLINGS);
        let ceiling = (BACKOFF_START * (1u32 << doublings)).min(cap);
        let half = ceiling / 2;
        half + Duration::from_millis(random % (half.as_millis() as u64 + 1))
    }

    /// Whether a token with an unknown `kid` may start a refresh now, given when the last such
    /// refresh started.
    pub(crate) fn unknown_kid_refresh_allowed(&self, last: Option<Instant>, now: Instant) -> bool {
        last.is_none_or(|last| now.duration_since(last) >= self.unknown_kid_interval)
    }

    /// How long a caller waits for a refresh it joined or started.
    pub(crate) fn wait_limit(&self) -> Duration {
        self.http_timeout
            .saturating_mul(2)
            .saturating_add(WAIT_SLACK)
    }

    /// How long a forced refresh ([`Validator::refresh`](crate::Validator::refresh)) and the
    /// background loop wait for one refresh: twice the [`wait_limit`](Self::wait_limit), so a
    /// refresh already in flight for a while can still be joined.
    pub(crate) fn forced_wait_limit(&self) -> Duration {
        self.wait_limit().saturating_mul(2)
    }

    /// Whether keys fetched `age` ago are past the maximum key age.
    pub(crate) fn is_aged_out(&self, age: Duration) -> bool {
        age > self.max_key_age
    }

    /// When keys fetched at `fetched_at` reach the maximum key age; `None` when that lies
    /// beyond the clock's range (the keys then never age out).
    pub(crate) fn key_deadline(&self, fetched_at: Instant) -> Option<Instant> {
        fetched_at.checked_add(self.max_key_age)
    }
}

/// `base` shortened or lengthened by up to [`JITTER_PERCENT`], chosen by `random`. Saturating
/// throughout: an interval beyond the clock's range (`Duration::MAX`, "never refresh") stays
/// there instead of overflowing.
fn jitter(base: Duration, random: u64) -> Duration {
    let spread = base.as_millis().saturating_mul(u128::from(JITTER_PERCENT)) / 100;
    let spread = u64::try_from(spread)
        .unwrap_or(u64::MAX / 2)
        .min(u64::MAX / 2);
    if spread == 0 {
        return base;
    }
    let offset = random % (2 * spread + 1);
    base.saturating_add(Duration::from_millis(offset))
        .saturating_sub(Duration::from_millis(spread))
}

/// A random number for [`RefreshSchedule`]'s jitter.
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // The system RNG does not fail on supported platforms; a fixed value only loses jitter.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests;

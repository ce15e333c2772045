//! The issuer's keys, held for lock-free reads and refreshed in the background.
//!
//! Readers load the current [`Snapshot`] with one atomic operation (`arc-swap`); nothing on
//! the validation path takes a lock. Refreshes are single-flight: whoever starts one owns it,
//! everyone else waits on a generation counter. No lock is ever held across a network call.
//! Refreshes caused by unknown `kid`s are rate limited, so a flood of tokens with random
//! `kid`s costs at most one JWKS request per interval. When the issuer fails, the last good
//! keys stay in use (up to the maximum key age) and retries back off with jitter.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use url::Url;

use crate::config::{Config, Source};
use crate::discovery::Discovery;
use crate::fetch::{client, get_document};
use crate::jwk::KeySet;

/// What the validator verifies against at one moment: the trusted issuer and its keys.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) issuer: Arc<str>,
    pub(crate) keys: KeySet,
    pub(crate) fetched_at: Instant,
}

/// Whether the validator can validate tokens now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Keys are held.
    Ready {
        /// How many usable keys.
        keys: usize,
        /// Since when (age of the last successful fetch).
        age: Duration,
    },
    /// No usable keys yet, or they aged out; the reason says what failed last.
    NotReady {
        /// Why.
        reason: String,
    },
    /// The issuer answered, but not as configured (e.g. the discovery document names another
    /// issuer). Retrying will not help; fix the configuration.
    Misconfigured {
        /// What is wrong and which variable to fix.
        reason: String,
    },
}

impl Readiness {
    /// Whether tokens can be validated.
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready { .. })
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyStats {
    /// JWKS (and discovery) fetches attempted.
    pub fetches: u64,
    /// Of those, how many failed.
    pub failures: u64,
    /// Usable keys held now.
    pub keys: usize,
    /// When keys were last fetched successfully.
    pub last_success: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct Status {
    last_error: Option<String>,
    misconfigured: Option<String>,
    last_success: Option<SystemTime>,
    resolved: Option<(Arc<str>, Url)>,
    last_unknown_kid_refresh: Option<Instant>,
}

/// Why one refresh failed.
#[derive(Debug, Clone)]
enum RefreshError {
    /// Worth retrying.
    Transient(String),
    /// The issuer answered, but contradicts the configuration.
    Misconfigured(String),
}

pub(crate) struct KeyStore {
    current: ArcSwapOption<Snapshot>,
    source: Option<Source>,
    algorithms: Vec<crate::Algorithm>,
    refresh_interval: Duration,
    unknown_kid_interval: Duration,
    max_key_age: Duration,
    wait_limit: Duration,
    client: reqwest::Client,
    in_flight: AtomicBool,
    generation: watch::Sender<u64>,
    status: Mutex<Status>,
    fetches: AtomicU64,
    failures: AtomicU64,
}

impl KeyStore {
    /// A store that fetches from the configured issuer.
    pub(crate) fn remote(config: &Config) -> KeyStore {
        KeyStore::new(Some(config.source.clone()), config, None)
    }

    /// A store with fixed keys and no network (tests, the embedded issuer, Wycheproof).
    pub(crate) fn fixed(config: &Config, issuer: &str, keys: KeySet) -> KeyStore {
        let snapshot = Snapshot {
            issuer: Arc::from(issuer),
            keys,
            fetched_at: Instant::now(),
        };
        KeyStore::new(None, config, Some(snapshot))
    }

    fn new(source: Option<Source>, config: &Config, snapshot: Option<Snapshot>) -> KeyStore {
        let status = Status {
            last_success: snapshot.as_ref().map(|_| SystemTime::now()),
            ..Status::default()
        };
        KeyStore {
            current: ArcSwapOption::new(snapshot.map(Arc::new)),
            source,
            algorithms: config.algorithms.clone(),
            refresh_interval: config.refresh_interval,
            unknown_kid_interval: config.unknown_kid_interval,
            max_key_age: config.max_key_age,
            // Discovery and JWKS may both be fetched, each bounded by the timeout.
            wait_limit: config.http_timeout * 2 + Duration::from_millis(500),
            client: client(config.http_timeout),
            in_flight: AtomicBool::new(false),
            generation: watch::channel(0).0,
            status: Mutex::new(status),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The current snapshot; one atomic load.
    #[inline]
    pub(crate) fn snapshot(&self) -> arc_swap::Guard<Option<Arc<Snapshot>>> {
        self.current.load()
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        // A panic elsewhere while holding this lock leaves plain data behind; keep going.
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn readiness(&self) -> Readiness {
        let status = self.status();
        if let Some(reason) = &status.misconfigured {
            return Readiness::Misconfigured {
                reason: reason.clone(),
            };
        }
        match &*self.current.load() {
            Some(snapshot) => Readiness::Ready {
                keys: snapshot.keys.len(),
                age: snapshot.fetched_at.elapsed(),
            },
            None => Readiness::NotReady {
                reason: status
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the issuer's keys have not been fetched yet".to_owned()),
            },
        }
    }

    pub(crate) fn stats(&self) -> KeyStats {
        KeyStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            keys: self.current.load().as_ref().map_or(0, |s| s.keys.len()),
            last_success: self.status().last_success,
        }
    }

    /// Runs the periodic refresh until the store is dropped (the task holds only a `Weak`).
    pub(crate) async fn run_background(store: std::sync::Weak<KeyStore>) {
        let mut failures: u32 = 0;
        loop {
            let Some(this) = store.upgrade() else { return };
            let delay = match this.refresh_shared().await {
                Some(Ok(())) => {
                    failures = 0;
                    jitter(this.refresh_interval, 10)
                }
                Some(Err(RefreshError::Misconfigured(_))) => {
                    // Nothing will change by hammering the issuer; check again rarely.
                    jitter(this.refresh_interval.min(Duration::from_secs(300)), 10)
                }
                Some(Err(RefreshError::Transient(_))) | None => {
                    failures = failures.saturating_add(1);
                    this.expire_old_keys();
                    backoff(failures, this.refresh_interval)
                }
            };
            drop(this);
            tokio::time::sleep(delay).await;
        }
    }

    /// Drops keys older than the maximum age, so a long outage ends in "not ready" rather
    /// than in trusting keys the issuer may have revoked long ago.
    fn expire_old_keys(&self) {
        let guard = self.current.load();
        if let Some(snapshot) = &*guard
            && snapshot.fetched_at.elapsed() > self.max_key_age
        {
            tracing::error!(
                age_secs = snapshot.fetched_at.elapsed().as_secs(),
                "issuer unreachable for longer than the maximum key age; dropping its keys"
            );
            self.current.store(None);
        }
    }

    /// Called when a token names a `kid` we do not hold (or no keys are held). Joins a refresh
    /// in flight, or starts one if the rate limit allows, and waits for it (bounded). Returns
    /// whether a refresh finished, i.e. whether looking the key up again can help.
    pub(crate) async fn refresh_for_unknown_kid(self: &Arc<Self>) -> bool {
        if self.source.is_none() {
            return false;
        }
        let mut receiver = self.generation.subscribe();
        let seen = *receiver.borrow_and_update();
        if !self.in_flight.load(Ordering::Acquire) {
            let now = Instant::now();
            {
                let mut status = self.status();
                let allowed = status
                    .last_unknown_kid_refresh
                    .is_none_or(|last| now.duration_since(last) >= self.unknown_kid_interval);
                if !allowed {
                    return false;
                }
                status.last_unknown_kid_refresh = Some(now);
            }
            self.start_refresh();
        }
        matches!(
            tokio::time::timeout(self.wait_limit, receiver.wait_for(|g| *g != seen)).await,
            Ok(Ok(_))
        )
    }

    /// Forces a refresh now (joining one in flight) and waits for it.
    pub(crate) async fn refresh_now(self: &Arc<Self>) -> Result<(), String> {
        match self.refresh_shared().await {
            Some(Ok(())) => Ok(()),
            Some(Err(RefreshError::Transient(e) | RefreshError::Misconfigured(e))) => Err(e),
            None => Err("the refresh did not finish in time".to_owned()),
        }
    }

    /// Starts (or joins) a refresh and waits for it; `None` if it did not finish in time.
    async fn refresh_shared(self: &Arc<Self>) -> Option<Result<(), RefreshError>> {
        let mut receiver = self.generation.subscribe();
        let seen = *receiver.borrow_and_update();
        self.start_refresh();
        let finished = tokio::time::timeout(self.wait_limit * 2, receiver.wait_for(|g| *g != seen))
            .await
            .is_ok_and(|r| r.is_ok());
        if !finished {
            return None;
        }
        let status = self.status();
        Some(match (&status.misconfigured, &status.last_error) {
            (Some(reason), _) => Err(RefreshError::Misconfigured(reason.clone())),
            (None, Some(error)) => Err(RefreshError::Transient(error.clone())),
            (None, None) => Ok(()),
        })
    }

    /// Starts a refresh task unless one is in flight (single-flight).
    fn start_refresh(self: &Arc<Self>) {
        if self
            .in_flight
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let result = this.refresh_once().await;
            {
                let mut status = this.status();
                match result {
                    Ok(()) => {
                        status.last_error = None;
                        status.misconfigured = None;
                        status.last_success = Some(SystemTime::now());
                    }
                    Err(RefreshError::Transient(error)) => {
                        this.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, "refreshing the issuer's keys failed; keeping the last good keys");
                        status.last_error = Some(error);
                    }
                    Err(RefreshError::Misconfigured(error)) => {
                        this.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(%error, "issuer configuration mismatch");
                        status.misconfigured = Some(error);
                    }
                }
            }
            this.in_flight.store(false, Ordering::Release);
            this.generation.send_modify(|g| *g = g.wrapping_add(1));
        });
    }

    /// One refresh: discovery if still needed, then the JWKS.
    async fn refresh_once(&self) -> Result<(), RefreshError> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let (issuer, jwks_uri) = self.resolve(source).await?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let document = get_document(&self.client, &jwks_uri)
            .await
            .map_err(|e| RefreshError::Transient(format!("JWKS: {e}")))?;
        let (keys, warnings) = KeySet::from_jwks(&document, &self.algorithms)
            .map_err(|e| RefreshError::Transient(format!("JWKS from {jwks_uri}: {e}")))?;
        for warning in &warnings {
            tracing::warn!(%warning, "ignoring a key in the issuer's JWKS");
        }
        let previous = self.current.load_full();
        let keys = match &previous {
            Some(previous) => keys.keep_identity_from(&previous.keys),
            None => keys,
        };
        tracing::debug!(keys = keys.len(), kids = ?keys.kids(), "loaded the issuer's keys");
        self.current.store(Some(Arc::new(Snapshot {
            issuer,
            keys,
            fetched_at: Instant::now(),
        })));
        Ok(())
    }

    /// The issuer and JWKS URI: configured, or from discovery (fetched until it succeeds once).
    async fn resolve(&self, source: &Source) -> Result<(Arc<str>, Url), RefreshError> {
        match source {
            Source::Explicit { issuer, jwks_uri } => {
                Ok((Arc::from(issuer.as_str()), jwks_uri.clone()))
            }
            Source::Discovery {
                well_known,
                issuer,
                jwks_uri,
            } => {
                if let Some(resolved) = self.status().resolved.clone() {
                    return Ok(resolved);
                }
                self.fetches.fetch_add(1, Ordering::Relaxed);
                let document = get_document(&self.client, well_known)
                    .await
                    .map_err(|e| RefreshError::Transient(format!("discovery: {e}")))?;
                let discovery = Discovery::parse(&document)
                    .map_err(|e| RefreshError::Transient(format!("{e} (from {well_known})")))?;
                if let Some(expected) = issuer
                    && *expected != discovery.issuer
                {
                    return Err(RefreshError::Misconfigured(format!(
                        "{} is {expected:?} but the discovery document at {well_known} says the issuer is {:?}; set {} to the discovery issuer exactly (Maskinporten's ends with '/') or unset it",
                        crate::config::ENV_ISSUER,
                        discovery.issuer,
                        crate::config::ENV_ISSUER,
                    )));
                }
                let resolved = (
                    Arc::<str>::from(discovery.issuer.as_str()),
                    jwks_uri.clone().unwrap_or(discovery.jwks_uri),
                );
                self.status().resolved = Some(resolved.clone());
                Ok(resolved)
            }
        }
    }
}

/// `base` shortened or lengthened by up to `percent` percent, at random, so a fleet of
/// sidecars does not refresh in lockstep.
fn jitter(base: Duration, percent: u32) -> Duration {
    let spread = base.as_millis() as u64 * u64::from(percent) / 100;
    if spread == 0 {
        return base;
    }
    let offset = random_u64() % (2 * spread + 1);
    (base + Duration::from_millis(offset)).saturating_sub(Duration::from_millis(spread))
}

/// Exponential backoff from 1 s, capped at one minute (or the refresh interval when shorter),
/// with full jitter over the upper half.
fn backoff(failures: u32, refresh_interval: Duration) -> Duration {
    let cap = refresh_interval.min(Duration::from_secs(60));
    let exponential = Duration::from_secs(1u64 << failures.saturating_sub(1).min(6));
    let ceiling = exponential.min(cap);
    let half = ceiling / 2;
    let extra = random_u64() % (half.as_millis() as u64 + 1);
    half + Duration::from_millis(extra)
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // The system RNG does not fail on supported platforms; a fixed value only loses jitter.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let hour = Duration::from_secs(3600);
        for failures in 1..20 {
            let d = backoff(failures, hour);
            let ceiling =
                Duration::from_secs(1u64 << (failures - 1).min(6)).min(Duration::from_secs(60));
            assert!(d >= ceiling / 2 && d <= ceiling, "{failures}: {d:?}");
        }
        assert!(backoff(30, Duration::from_secs(2)) <= Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let base = Duration::from_secs(100);
        for _ in 0..100 {
            let d = jitter(base, 10);
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
    }
}

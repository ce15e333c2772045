//! The issuer's keys, held for lock-free reads and refreshed in the background.
//!
//! Readers load the current [`Snapshot`] with one atomic operation (`arc-swap`); nothing on
//! the validation path takes a lock. Refreshes are single-flight: whoever starts one owns it,
//! everyone else waits on a generation counter. No lock is ever held across a network call.
//! Refreshes caused by unknown `kid`s are rate limited, so a flood of tokens with random
//! `kid`s costs at most one JWKS request per interval. When the issuer fails, the last good
//! keys stay in use (up to the maximum key age) and retries back off with jitter.
//!
//! The maximum key age is enforced by a timer armed with each new key set, not by the
//! refresh loop alone: if that loop is stuck (a hanging issuer, a misconfiguration branch),
//! the keys still go at their deadline, and the validation path pays nothing for it (no clock
//! read beyond the one it already makes).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use url::Url;

use super::discovery::{Discovery, DiscoveryError};
use super::jwk::{JwksError, KeySet};
use super::schedule::{RefreshSchedule, random_u64};
use crate::algorithm::Algorithm;
use crate::config::{Config, ENV_ISSUER, ENV_JWKS_URI, ENV_WELL_KNOWN_URL, Source};
use crate::fetch::{FetchError, get_document};

/// A store that fetches its keys: from where, and with which client (timeouts, no redirects).
#[derive(Debug)]
struct Remote {
    source: Source,
    client: reqwest::Client,
}

/// What the validator verifies against at one moment: the trusted issuer and its keys.
/// Never changed once made; a refresh makes a new one.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) issuer: Arc<str>,
    pub(crate) keys: KeySet,
    pub(crate) fetched_at: Instant,
    /// Unique among the process's snapshots, and never reused: a cached token found to have
    /// its key in the snapshot of this generation need not look the key up again while this
    /// snapshot is current (see `Verified::held_in`). A pointer would not do: a freed
    /// snapshot's address can be a later one's.
    pub(crate) generation: u64,
}

impl Snapshot {
    pub(crate) fn new(issuer: Arc<str>, keys: KeySet) -> Snapshot {
        static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);
        Snapshot {
            issuer,
            keys,
            fetched_at: Instant::now(),
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
        }
    }
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
        /// Why (its `Display` is the sentence `/readyz` shows).
        reason: Unavailable,
    },
    /// The issuer answered, but not as configured (e.g. the discovery document names another
    /// issuer). Retrying will not help; fix the configuration. With an explicit issuer and
    /// JWKS URI, keys are still fetched and used from those; this reports the contradiction.
    Misconfigured {
        /// What is wrong and which variable to fix.
        reason: Misconfiguration,
    },
}

/// Why no keys are usable now ([`Readiness::NotReady`]). Every case is worth waiting for:
/// the key store keeps retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// Nothing has been fetched yet, and nothing has failed yet either (start-up).
    #[error("the issuer's keys have not been fetched yet")]
    NotFetchedYet,
    /// The last refresh failed, and no keys were ever held (or none are held since they aged
    /// out and a refresh then failed).
    #[error(transparent)]
    Refresh(RefreshError),
    /// The keys held reached the maximum key age and no refresh has succeeded since.
    #[error(
        "the issuer's keys are older than the maximum key age ({} s) and no refresh has succeeded since{}",
        max_key_age.as_secs(),
        last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
    )]
    AgedOut {
        /// The configured maximum key age.
        max_key_age: Duration,
        /// The last refresh's failure, if one has failed since.
        last_error: Option<RefreshError>,
    },
}

impl Readiness {
    /// Whether tokens can be validated.
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready { .. })
    }

    /// Why tokens cannot be validated (its `Display` is the sentence `/readyz` shows), or
    /// `None` when they can.
    pub fn reason(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Readiness::Ready { .. } => None,
            Readiness::NotReady { reason } => Some(reason),
            Readiness::Misconfigured { reason } => Some(reason),
        }
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
    last_error: Option<RefreshError>,
    misconfigured: Option<Misconfiguration>,
    /// The keys were dropped at their maximum age; cleared by the next successful fetch.
    aged_out: bool,
    last_success: Option<SystemTime>,
    resolved: Option<(Arc<str>, Url)>,
    last_unknown_kid_refresh: Option<Instant>,
    /// Explicit issuer and JWKS URI: whether the discovery document has confirmed the issuer.
    cross_checked: bool,
    /// Explicit issuer and JWKS URI: what the discovery document contradicts, if anything.
    /// Kept apart from `misconfigured`, which a successful key fetch clears.
    cross_check_mismatch: Option<Misconfiguration>,
    /// The timer that drops the current keys at their maximum age.
    expiry: Option<tokio::task::AbortHandle>,
}

/// The outcome of reading the discovery document only to cross-check an explicit issuer.
enum CrossCheck {
    Confirmed,
    Mismatch(Misconfiguration),
    Unavailable(RefreshError),
}

/// Why refreshing the issuer's keys failed ([`Validator::refresh`](crate::Validator::refresh)).
///
/// Every variant but [`Misconfigured`](Self::Misconfigured) is worth retrying, and the key
/// store does, with backoff; the last good keys stay in use meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The discovery document could not be fetched.
    #[error("discovery: {0}")]
    DiscoveryFetch(FetchError),
    /// What was fetched is not a discovery document (not JSON, a required member missing),
    /// e.g. a maintenance page.
    #[error("{error} (from {url})")]
    DiscoveryUnreadable {
        /// Where it was fetched from.
        url: Url,
        /// What is wrong with it.
        error: DiscoveryError,
    },
    /// The JWKS could not be fetched.
    #[error("JWKS: {0}")]
    JwksFetch(FetchError),
    /// The JWKS is not a usable key set.
    #[error("JWKS from {url}: {error}")]
    Jwks {
        /// Where it was fetched from.
        url: Url,
        /// What is wrong with it.
        error: JwksError,
    },
    /// The issuer answered, but contradicts the configuration: retrying will not help.
    #[error(transparent)]
    Misconfigured(Misconfiguration),
    /// The refresh did not finish within its wait limit.
    #[error("the refresh did not finish in time")]
    TimedOut,
}

/// The issuer contradicts the configuration; the message names the variable to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misconfiguration {
    /// The discovery document is not for this issuer (e.g. it names a different location).
    #[error("{error} (from {url}); check {var}", var = ENV_WELL_KNOWN_URL)]
    Discovery {
        /// Where it was fetched from.
        url: Url,
        /// What is wrong with it.
        error: DiscoveryError,
    },
    /// The configured issuer differs from the discovery document's.
    #[error(
        "{issuer_var} is {expected:?} but the discovery document at {url} says the issuer is {found:?}; set {issuer_var} to the discovery issuer exactly (Maskinporten's ends with '/'), or fix {well_known_var}",
        issuer_var = ENV_ISSUER,
        well_known_var = ENV_WELL_KNOWN_URL
    )]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The document's issuer.
        found: String,
        /// Where the document was fetched from.
        url: Url,
    },
    /// The discovery document does not belong to the URL it was fetched from (RFC 8414
    /// section 3.3).
    #[error(transparent)]
    Location(DiscoveryError),
    /// The discovery document names no JWKS and none is configured.
    #[error(
        "the discovery document at {url} has no `jwks_uri`; set {var} to the issuer's JWKS endpoint",
        var = ENV_JWKS_URI
    )]
    NoJwksUri {
        /// Where the document was fetched from.
        url: Url,
    },
}

pub(crate) struct KeyStore {
    current: ArcSwapOption<Snapshot>,
    /// Where keys come from and the client that fetches them; `None` for fixed keys.
    remote: Option<Remote>,
    algorithms: Vec<Algorithm>,
    schedule: RefreshSchedule,
    in_flight: AtomicBool,
    generation: watch::Sender<u64>,
    status: Mutex<Status>,
    fetches: AtomicU64,
    failures: AtomicU64,
}

impl Drop for KeyStore {
    fn drop(&mut self) {
        let status = self
            .status
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(timer) = status.expiry.take() {
            timer.abort();
        }
    }
}

impl KeyStore {
    /// A store that fetches from the configured issuer.
    pub(crate) fn remote(config: &Config, client: reqwest::Client) -> KeyStore {
        let remote = Remote {
            source: config.source.clone(),
            client,
        };
        KeyStore::new(Some(remote), config, None)
    }

    /// A store with fixed keys and no network (tests, the embedded issuer, Wycheproof).
    pub(crate) fn fixed(config: &Config, issuer: &str, keys: KeySet) -> KeyStore {
        let snapshot = Snapshot::new(Arc::from(issuer), keys);
        KeyStore::new(None, config, Some(snapshot))
    }

    fn new(remote: Option<Remote>, config: &Config, snapshot: Option<Snapshot>) -> KeyStore {
        let status = Status {
            last_success: snapshot.as_ref().map(|_| SystemTime::now()),
            ..Status::default()
        };
        KeyStore {
            current: ArcSwapOption::new(snapshot.map(Arc::new)),
            remote,
            algorithms: config.algorithms.clone(),
            schedule: RefreshSchedule::from_config(config),
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
        if let Some(reason) = status
            .misconfigured
            .as_ref()
            .or(status.cross_check_mismatch.as_ref())
        {
            return Readiness::Misconfigured {
                reason: reason.clone(),
            };
        }
        match &*self.current.load() {
            // Keys past their maximum age are about to be dropped by their timer; never call
            // them ready, even if the timer has not run yet.
            Some(snapshot)
                if self.remote.is_some()
                    && self.schedule.is_aged_out(snapshot.fetched_at.elapsed()) =>
            {
                Readiness::NotReady {
                    reason: self.aged_out(status.last_error.as_ref()),
                }
            }
            Some(snapshot) => Readiness::Ready {
                keys: snapshot.keys.len(),
                age: snapshot.fetched_at.elapsed(),
            },
            None => Readiness::NotReady {
                reason: match &status.last_error {
                    Some(error) => Unavailable::Refresh(error.clone()),
                    None if status.aged_out => self.aged_out(None),
                    None => Unavailable::NotFetchedYet,
                },
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
            let schedule = this.schedule;
            let delay = match this.refresh_shared().await {
                Some(Ok(())) => {
                    failures = 0;
                    schedule.after_success(random_u64())
                }
                Some(Err(RefreshError::Misconfigured(_))) => {
                    this.expire_old_keys();
                    schedule.after_misconfiguration(random_u64())
                }
                Some(Err(_)) | None => {
                    failures = failures.saturating_add(1);
                    this.expire_old_keys();
                    schedule.after_failure(failures, random_u64())
                }
            };
            drop(this);
            tokio::time::sleep(delay).await;
        }
    }

    /// Drops keys older than the maximum age, so a long outage ends in "not ready" rather
    /// than in trusting keys the issuer may have revoked long ago. The expiry timer does the
    /// same at the deadline; this catches a timer that could not run (a blocked runtime).
    fn expire_old_keys(&self) {
        if let Some(snapshot) = self.current.load_full()
            && self.schedule.is_aged_out(snapshot.fetched_at.elapsed())
        {
            self.drop_keys(&snapshot);
        }
    }

    /// Drops `snapshot` if it is still the current one (a newer key set is left alone).
    fn drop_keys(&self, snapshot: &Arc<Snapshot>) {
        let previous = self.current.compare_and_swap(snapshot, None);
        let dropped = previous
            .as_ref()
            .is_some_and(|previous| Arc::ptr_eq(previous, snapshot));
        if dropped {
            tracing::error!(
                age_secs = snapshot.fetched_at.elapsed().as_secs(),
                max_age_secs = self.schedule.max_key_age.as_secs(),
                "the issuer's keys reached the maximum key age without a successful refresh; dropping them"
            );
            let mut status = self.status();
            status.aged_out = true;
        }
    }

    fn aged_out(&self, last_error: Option<&RefreshError>) -> Unavailable {
        Unavailable::AgedOut {
            max_key_age: self.schedule.max_key_age,
            last_error: last_error.cloned(),
        }
    }

    /// Arms the timer that drops the current keys when they reach the maximum age, replacing
    /// the timer of the previous key set. The timer holds only weak references.
    fn arm_expiry(self: &Arc<Self>) {
        let Some(snapshot) = self.current.load_full() else {
            return;
        };
        let Some(deadline) = self.schedule.key_deadline(snapshot.fetched_at) else {
            return; // a maximum age beyond the clock's range: keys never age out
        };
        let store = Arc::downgrade(self);
        let target: Weak<Snapshot> = Arc::downgrade(&snapshot);
        drop(snapshot);
        let timer = tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
            if let (Some(store), Some(snapshot)) = (store.upgrade(), target.upgrade()) {
                store.drop_keys(&snapshot);
            }
        });
        if let Some(previous) = self.status().expiry.replace(timer.abort_handle()) {
            previous.abort();
        }
    }

    /// Called when a token names a `kid` we do not hold (or no keys are held). Joins a refresh
    /// in flight, or starts one if the rate limit allows, and waits for it (bounded). Returns
    /// whether a refresh finished, i.e. whether looking the key up again can help.
    pub(crate) async fn refresh_for_unknown_kid(self: &Arc<Self>) -> bool {
        if self.remote.is_none() {
            return false;
        }
        let mut receiver = self.generation.subscribe();
        let seen = *receiver.borrow_and_update();
        {
            // Deciding and starting under one lock: a caller that finds the allowance used
            // up always finds the refresh that used it in flight, and joins it rather than
            // failing while the key it needs is being fetched.
            let mut status = self.status();
            if !self.in_flight.load(Ordering::Acquire) {
                let now = Instant::now();
                let allowed = self
                    .schedule
                    .unknown_kid_refresh_allowed(status.last_unknown_kid_refresh, now);
                if !allowed {
                    return false;
                }
                status.last_unknown_kid_refresh = Some(now);
                // Only spawns a task: no network call happens under the lock.
                self.start_refresh();
            }
        }
        matches!(
            tokio::time::timeout(
                self.schedule.wait_limit(),
                receiver.wait_for(|g| *g != seen)
            )
            .await,
            Ok(Ok(_))
        )
    }

    /// Forces a refresh now (joining one in flight) and waits for it.
    pub(crate) async fn refresh_now(self: &Arc<Self>) -> Result<(), RefreshError> {
        self.refresh_shared()
            .await
            .unwrap_or(Err(RefreshError::TimedOut))
    }

    /// Starts (or joins) a refresh and waits for it; `None` if it did not finish in time.
    async fn refresh_shared(self: &Arc<Self>) -> Option<Result<(), RefreshError>> {
        let mut receiver = self.generation.subscribe();
        let seen = *receiver.borrow_and_update();
        self.start_refresh();
        let wait = self.schedule.forced_wait_limit();
        let finished = tokio::time::timeout(wait, receiver.wait_for(|g| *g != seen))
            .await
            .is_ok_and(|r| r.is_ok());
        if !finished {
            return None;
        }
        let status = self.status();
        Some(match (&status.misconfigured, &status.last_error) {
            (Some(reason), _) => Err(RefreshError::Misconfigured(reason.clone())),
            (None, Some(error)) => Err(error.clone()),
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
            if result.is_ok() {
                this.arm_expiry();
            }
            {
                let mut status = this.status();
                match result {
                    Ok(()) => {
                        status.last_error = None;
                        status.misconfigured = None;
                        status.aged_out = false;
                        status.last_success = Some(SystemTime::now());
                    }
                    Err(RefreshError::Misconfigured(error)) => {
                        this.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(%error, "issuer configuration mismatch");
                        status.misconfigured = Some(error);
                    }
                    Err(error) => {
                        this.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, "refreshing the issuer's keys failed; keeping the last good keys");
                        status.last_error = Some(error);
                    }
                }
            }
            this.in_flight.store(false, Ordering::Release);
            this.generation.send_modify(|g| *g = g.wrapping_add(1));
        });
    }

    /// One refresh: discovery if still needed, then the JWKS. With an explicit issuer and
    /// JWKS URI the keys never wait on discovery; an unconfirmed cross-check runs alongside.
    async fn refresh_once(&self) -> Result<(), RefreshError> {
        let Some(Remote { source, client }) = &self.remote else {
            return Ok(());
        };
        let (issuer, jwks_uri, cross_check) = match source {
            Source::Explicit {
                issuer,
                jwks_uri,
                cross_check,
            } => {
                let pending = cross_check
                    .as_ref()
                    .filter(|_| !self.status().cross_checked);
                (Arc::<str>::from(issuer.as_str()), jwks_uri.clone(), pending)
            }
            Source::Discovery {
                well_known,
                issuer,
                jwks_uri,
            } => {
                let (issuer, jwks_uri) = self
                    .resolve(client, well_known, issuer.as_deref(), jwks_uri.as_ref())
                    .await?;
                (issuer, jwks_uri, None)
            }
        };
        let check = async {
            match cross_check {
                Some(well_known) => Some(self.cross_check(client, well_known, &issuer).await),
                None => None,
            }
        };
        // Both bounded by the HTTP timeout. The verdict is recorded before the keys are
        // stored, so a start-up that waits for readiness sees a mismatch, not "ready".
        let (keys, check) = tokio::join!(self.fetch_keys(client, &jwks_uri), check);
        if let Some(check) = check {
            self.record_cross_check(check);
        }
        let keys = keys?;
        tracing::debug!(keys = keys.len(), kids = ?keys.kids(), "loaded the issuer's keys");
        self.current
            .store(Some(Arc::new(Snapshot::new(issuer, keys))));
        Ok(())
    }

    async fn fetch_keys(
        &self,
        client: &reqwest::Client,
        jwks_uri: &Url,
    ) -> Result<KeySet, RefreshError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let document = get_document(client, jwks_uri)
            .await
            .map_err(RefreshError::JwksFetch)?;
        let (keys, warnings) =
            KeySet::from_jwks(&document, &self.algorithms).map_err(|error| RefreshError::Jwks {
                url: jwks_uri.clone(),
                error,
            })?;
        for warning in &warnings {
            tracing::warn!(%warning, "ignoring a key in the issuer's JWKS");
        }
        Ok(match self.current.load_full() {
            Some(previous) => keys.keep_identity_from(&previous.keys),
            None => keys,
        })
    }

    /// Reads the discovery document only to see that it agrees with the explicit issuer.
    async fn cross_check(
        &self,
        client: &reqwest::Client,
        well_known: &Url,
        issuer: &str,
    ) -> CrossCheck {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let document = match get_document(client, well_known).await {
            Ok(document) => document,
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                return CrossCheck::Unavailable(RefreshError::DiscoveryFetch(e));
            }
        };
        match self.read_discovery(&document, well_known, Some(issuer)) {
            Ok(_) => CrossCheck::Confirmed,
            Err(RefreshError::Misconfigured(reason)) => CrossCheck::Mismatch(reason),
            Err(other) => CrossCheck::Unavailable(other),
        }
    }

    fn record_cross_check(&self, check: CrossCheck) {
        let mut status = self.status();
        match check {
            CrossCheck::Confirmed => {
                status.cross_checked = true;
                status.cross_check_mismatch = None;
            }
            CrossCheck::Mismatch(reason) => {
                tracing::error!(error = %reason, "the discovery document contradicts the configured issuer; validating with the configured issuer and JWKS URI");
                // Not marked as checked: a corrected document clears it at the next refresh.
                status.cross_check_mismatch = Some(reason);
            }
            CrossCheck::Unavailable(reason) => {
                tracing::warn!(error = %reason, "could not read the discovery document to cross-check the issuer; validating with the configured issuer and JWKS URI");
            }
        }
    }

    /// Parses a discovery document and holds it to the configuration: the configured issuer
    /// (if any) exactly, and RFC 8414 section 3.3 (the document belongs to the URL it was
    /// fetched from). A document that is not one at all is worth retrying (a maintenance
    /// page); one that contradicts the configuration is not.
    // A large `Err` (two URLs' worth) costs nothing here: at most once per refresh, off the
    // validation path.
    #[allow(clippy::result_large_err)]
    fn read_discovery(
        &self,
        document: &[u8],
        well_known: &Url,
        expected_issuer: Option<&str>,
    ) -> Result<Discovery, RefreshError> {
        let discovery = Discovery::parse(document).map_err(|e| match e {
            DiscoveryError::NotJson(_) | DiscoveryError::Missing(_) => {
                RefreshError::DiscoveryUnreadable {
                    url: well_known.clone(),
                    error: e,
                }
            }
            other => RefreshError::Misconfigured(Misconfiguration::Discovery {
                url: well_known.clone(),
                error: other,
            }),
        })?;
        // The configured issuer first: when it differs, that is the variable to fix.
        if let Some(expected) = expected_issuer
            && expected != discovery.issuer
        {
            return Err(RefreshError::Misconfigured(
                Misconfiguration::IssuerMismatch {
                    expected: expected.to_owned(),
                    found: discovery.issuer.clone(),
                    url: well_known.clone(),
                },
            ));
        }
        discovery
            .check_location(well_known)
            .map_err(|e| RefreshError::Misconfigured(Misconfiguration::Location(e)))?;
        Ok(discovery)
    }

    /// The issuer and JWKS URI from discovery (fetched until it succeeds once), with a
    /// configured JWKS URI taking precedence over the document's.
    async fn resolve(
        &self,
        client: &reqwest::Client,
        well_known: &Url,
        issuer: Option<&str>,
        jwks_uri: Option<&Url>,
    ) -> Result<(Arc<str>, Url), RefreshError> {
        if let Some(resolved) = self.status().resolved.clone() {
            return Ok(resolved);
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let document = get_document(client, well_known)
            .await
            .map_err(RefreshError::DiscoveryFetch)?;
        let discovery = self.read_discovery(&document, well_known, issuer)?;
        let jwks_uri = match (jwks_uri, discovery.jwks_uri) {
            (Some(configured), _) => configured.clone(),
            (None, Some(discovered)) => discovered,
            (None, None) => {
                return Err(RefreshError::Misconfigured(Misconfiguration::NoJwksUri {
                    url: well_known.clone(),
                }));
            }
        };
        let resolved = (Arc::<str>::from(discovery.issuer.as_str()), jwks_uri);
        self.status().resolved = Some(resolved.clone());
        Ok(resolved)
    }
}

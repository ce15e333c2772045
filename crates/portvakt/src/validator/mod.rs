//! The validator: every rule, in order, cheapest and safest first.
//!
//! 1. size;
//! 2. compact shape and strict base64url;
//! 3. header (`alg` allow-list, `kid`, no `crit`);
//! 4. signature with the key the `kid` names;
//! 5. claims: `iss`, `exp`, `nbf`, `iat`, and `aud` when an audience is required;
//! 6. the route's [`Policy`] (scopes, consumers).
//!
//! Verified tokens are cached, keyed by the token's exact bytes; a cache hit is re-checked
//! against the clock and the key set (whether the key that verified it is still held under
//! its `kid`; known without a lookup while the key-set snapshot it was last found in is
//! current), then against the policy.

mod cache;
mod counter;
mod local;
#[cfg(test)]
mod testing;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use self::cache::TokenCache;
use crate::algorithm::Algorithm;
use crate::config::{Config, StartError};
use crate::error::{ValidationError, printable};
use crate::jws::{KeyLookup, split_compact, verify_parts};
use crate::keys::{KeySet, KeyStats, KeyStore, Readiness, RefreshError, Snapshot};
use crate::policy::Policy;
use crate::token::{Claims, Verified, VerifiedToken, check_audience, parse_claims, past_expiry};

impl VerifiedToken {
    /// Whether this validator (or a clone of it) verified the token. Lets stacked layers reuse
    /// an outer layer's verification exactly when it was made with the same keys and rules.
    pub fn verified_by(&self, validator: &Validator) -> bool {
        self.0.validator_id == validator.inner.id
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// The key store's counters.
    pub keys: KeyStats,
    /// Verified-token cache hits.
    pub cache_hits: u64,
    /// Verified-token cache misses (full validations).
    pub cache_misses: u64,
    /// Entries in the cache.
    pub cache_entries: usize,
    /// Approximate bytes the cache holds.
    pub cache_bytes: u64,
}

/// Validates Maskinporten access tokens. Create one per process and clone it freely: clones
/// share keys, cache and background refresh. The refresh stops when the last clone is dropped.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("readiness", &self.readiness())
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// Unique per validator (clones share it), for [`VerifiedToken::verified_by`].
    id: u64,
    store: Arc<KeyStore>,
    cache: Option<TokenCache>,
    algorithms: Vec<Algorithm>,
    leeway: i64,
    leeway_secs: u64,
    max_token_size: usize,
    audience: Option<String>,
    /// Striped: every hit adds to it, on whichever thread validates.
    cache_hits: counter::Counter,
    cache_misses: std::sync::atomic::AtomicU64,
    refresher: Option<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = &self.refresher {
            task.abort();
        }
    }
}

impl Validator {
    /// Creates a validator and starts fetching keys in the background. Returns at once: until
    /// keys arrive, [`readiness`](Self::readiness) says why not, and validations wait briefly
    /// for the first fetch. Must be called inside a Tokio runtime.
    pub fn new(config: Config) -> Result<Validator, StartError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        // Built here, not left to a default: a platform that cannot give a client with
        // timeouts stops start-up, instead of a hanging issuer stalling refreshes forever.
        let client = crate::fetch::try_client(config.http_timeout)
            .map_err(|reason| StartError::HttpClient { reason })?;
        let store = Arc::new(KeyStore::remote(&config, client));
        let task = handle.spawn(KeyStore::run_background(Arc::downgrade(&store)));
        Ok(Validator::assemble(
            &config,
            store,
            Some(task.abort_handle()),
        ))
    }

    /// Creates a validator for fixed keys and issuer, with no network at all: for tests, for an
    /// issuer embedded in the same process, and for keys distributed out of band. The issuer
    /// and key-source settings in `config` are ignored.
    pub fn with_keys(config: &Config, issuer: &str, keys: KeySet) -> Validator {
        let store = Arc::new(KeyStore::fixed(config, issuer, keys));
        Validator::assemble(config, store, None)
    }

    fn assemble(
        config: &Config,
        store: Arc<KeyStore>,
        refresher: Option<tokio::task::AbortHandle>,
    ) -> Validator {
        Validator {
            inner: Arc::new(Inner {
                id: NEXT_VALIDATOR_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                store,
                cache: TokenCache::new(config.cache_bytes),
                algorithms: config.algorithms.clone(),
                leeway: config.leeway.as_secs() as i64,
                leeway_secs: config.leeway.as_secs(),
                max_token_size: config.max_token_size,
                audience: config.audience.clone(),
                cache_hits: Default::default(),
                cache_misses: Default::default(),
                refresher,
            }),
        }
    }

    /// Waits until keys are held, up to `timeout` (`Duration::MAX`: without a deadline).
    /// Returns the readiness either way, so a caller can report why not (and stop on
    /// [`Readiness::Misconfigured`]).
    pub async fn wait_until_ready(&self, timeout: Duration) -> Readiness {
        // `None`: beyond the clock's range, so no deadline.
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        loop {
            let readiness = self.readiness();
            if readiness.is_ready()
                || matches!(readiness, Readiness::Misconfigured { .. })
                || deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline)
            {
                return readiness;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether keys are held (for readiness probes).
    pub fn readiness(&self) -> Readiness {
        self.inner.store.readiness()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> Stats {
        use std::sync::atomic::Ordering::Relaxed;
        Stats {
            keys: self.inner.store.stats(),
            cache_hits: self.inner.cache_hits.get(),
            cache_misses: self.inner.cache_misses.load(Relaxed),
            cache_entries: self.inner.cache.as_ref().map_or(0, TokenCache::len),
            cache_bytes: self.inner.cache.as_ref().map_or(0, TokenCache::weight),
        }
    }

    /// The trusted issuer, once known (from configuration or discovery).
    pub fn issuer(&self) -> Option<String> {
        self.inner
            .store
            .snapshot()
            .as_ref()
            .map(|s| s.issuer.to_string())
    }

    /// The allowed algorithms.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.inner.algorithms
    }

    /// The audience every token must carry, if one is configured.
    pub fn required_audience(&self) -> Option<&str> {
        self.inner.audience.as_deref()
    }

    /// The largest token accepted, in bytes.
    pub fn max_token_size(&self) -> usize {
        self.inner.max_token_size
    }

    /// The clock leeway in seconds.
    pub fn leeway_seconds(&self) -> i64 {
        self.inner.leeway
    }

    /// Fetches keys now (joining a refresh in flight), e.g. after an operator rotated keys.
    pub async fn refresh(&self) -> Result<(), RefreshError> {
        self.inner.store.refresh_now().await
    }

    /// Validates a token. On an unknown `kid` it may wait for one rate-limited, single-flight
    /// key refresh, so keys the issuer has just published are picked up; tokens whose key we
    /// hold never wait.
    pub async fn validate(&self, token: &str) -> Result<VerifiedToken, ValidationError> {
        match self.validate_now(token) {
            Err(ValidationError::UnknownKid { .. } | ValidationError::KeysUnavailable)
                if self.inner.store.refresh_for_unknown_kid().await =>
            {
                self.validate_now(token)
            }
            result => result,
        }
    }

    /// Validates a token and applies a route's policy (scopes, consumers, audience).
    pub async fn validate_with(
        &self,
        token: &str,
        policy: &Policy,
    ) -> Result<VerifiedToken, ValidationError> {
        let verified = self.validate(token).await?;
        policy.check(verified.claims())?;
        Ok(verified)
    }

    /// [`validate_with`](Self::validate_with) for a token as the bytes it arrived in (an HTTP
    /// body or header value), for callers that would otherwise check them UTF-8 only to
    /// call `validate_with`: a token the cache holds is found by its bytes, and only a token
    /// it does not hold is checked and validated in full. For a Maskinporten token of 750
    /// bytes the UTF-8 check costs about as much as the cache lookup.
    ///
    /// Bytes that are not UTF-8 are refused as the text they make with each invalid sequence
    /// replaced by U+FFFD, which is never in a token: `not a compact JWS` or `not base64url`,
    /// as for any other stray character.
    ///
    /// ```
    /// # use portvakt::{Config, KeySet, Policy, Validator};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let config = Config::builder().issuer("https://i/").jwks_uri("https://i/jwk").build().unwrap();
    /// # let validator = Validator::with_keys(&config, "https://i/", KeySet::default());
    /// let refused = validator
    ///     .validate_bytes_with(b"ey\xff.e30.c2ln", &Policy::new())
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(refused.to_string(), "token header is not base64url without padding");
    /// # }
    /// ```
    pub async fn validate_bytes_with(
        &self,
        token: &[u8],
        policy: &Policy,
    ) -> Result<VerifiedToken, ValidationError> {
        if token.len() <= self.inner.max_token_size
            && let Some(decided) = self.cached_now(token)
        {
            let verified = decided?;
            policy.check(verified.claims())?;
            return Ok(verified);
        }
        self.validate_with(&String::from_utf8_lossy(token), policy)
            .await
    }

    /// Validates against the keys held now, without waiting for any refresh. For synchronous
    /// callers; [`validate`](Self::validate) is preferred where `.await` is available.
    pub fn validate_now(&self, token: &str) -> Result<VerifiedToken, ValidationError> {
        self.validate_at(token, SystemTime::now())
    }

    /// Validates as if the clock read `now` (tests, and replaying a token's history).
    pub fn validate_at(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<VerifiedToken, ValidationError> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_size {
            return Err(ValidationError::TokenTooLarge {
                size: token.len(),
                limit: inner.max_token_size,
            });
        }
        let now = unix_seconds(now);
        let snapshot = inner.store.snapshot();
        if let Some(decided) = self.cached(token.as_bytes(), snapshot.as_deref(), now) {
            return decided;
        }
        inner
            .cache_misses
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let parts = split_compact(token)?;
        let lookup = match snapshot.as_ref() {
            Some(s) => KeyLookup::Keys(&s.keys),
            None => KeyLookup::NoKeys,
        };
        let jws = verify_parts(parts, lookup, &inner.algorithms)?;
        let Some(snapshot) = snapshot.as_ref() else {
            return Err(ValidationError::KeysUnavailable);
        };
        let claims = parse_claims(jws.payload)?;
        match claims.issuer() {
            Some(iss) if *iss == *snapshot.issuer => {}
            found => {
                return Err(ValidationError::WrongIssuer {
                    found: found.map(printable),
                });
            }
        }
        self.check_times(&claims, now)?;
        if let Some(required) = &inner.audience {
            check_audience(&claims, required)?;
        }
        let verified = VerifiedToken(Arc::new(Verified {
            validator_id: inner.id,
            claims,
            algorithm: jws.header.alg,
            key: jws.key,
            held_in: AtomicU64::new(snapshot.generation),
        }));
        if let Some(cache) = &inner.cache {
            cache.insert(token, verified.clone(), now, inner.leeway);
        }
        Ok(verified)
    }

    /// [`cached`](Self::cached) against the clock and key set of now: the verdict
    /// [`validate_now`](Self::validate_now) would give, for a token the cache holds.
    pub(crate) fn cached_now(
        &self,
        token: &[u8],
    ) -> Option<Result<VerifiedToken, ValidationError>> {
        let now = unix_seconds(SystemTime::now());
        self.cached(token, self.inner.store.snapshot().as_deref(), now)
    }

    /// The verdict on a token the cache holds, judged now: `None` when it is not cached, or
    /// its key is no longer in the current set (then it is dropped, and a full validation
    /// decides).
    fn cached(
        &self,
        token: &[u8],
        snapshot: Option<&Snapshot>,
        now: i64,
    ) -> Option<Result<VerifiedToken, ValidationError>> {
        let cache = self.inner.cache.as_ref()?;
        let hit = cache.get(token)?;
        // Still valid only while the key that verified it is in the current set.
        if !key_held(snapshot, &hit) {
            cache.remove(token);
            return None;
        }
        self.inner.cache_hits.add_one();
        Some(match self.check_times(hit.claims(), now) {
            Ok(()) => Ok(hit),
            Err(e) => {
                cache.remove(token);
                Err(e)
            }
        })
    }

    /// `exp` (required), `nbf` and `iat` (when present), with leeway. Shared by full
    /// validations and cache hits, so a cached token is judged exactly as a fresh one would be
    /// at the same moment (also by `validate_at` with a time before the first validation).
    fn check_times(&self, claims: &Claims, now: i64) -> Result<(), ValidationError> {
        let leeway = self.inner.leeway;
        let exp = claims.expires_at().ok_or(ValidationError::MissingExpiry)?;
        if past_expiry(exp, now, leeway) {
            return Err(ValidationError::Expired {
                exp,
                ago: now.saturating_sub(exp),
                leeway: self.inner.leeway_secs,
            });
        }
        if let Some(nbf) = claims.not_before()
            && now.saturating_add(leeway) < nbf
        {
            return Err(ValidationError::NotYetValid {
                nbf,
                ahead: nbf.saturating_sub(now),
                leeway: self.inner.leeway_secs,
            });
        }
        if let Some(iat) = claims.issued_at()
            && iat > now.saturating_add(leeway)
        {
            return Err(ValidationError::IssuedInFuture {
                iat,
                ahead: iat.saturating_sub(now),
                leeway: self.inner.leeway_secs,
            });
        }
        Ok(())
    }
}

static NEXT_VALIDATOR_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Whether the key that verified a cached token is still in the current key set, under its
/// `kid`. While the snapshot it was last found in is current, that is known without a lookup
/// (a SipHash of the `kid` and a probe, on every hit); after a refresh the first hit looks it
/// up and remembers the new snapshot.
fn key_held(snapshot: Option<&Snapshot>, hit: &VerifiedToken) -> bool {
    let Some(snapshot) = snapshot else {
        return false;
    };
    if hit.0.held_in.load(Relaxed) == snapshot.generation {
        return true;
    }
    let held = snapshot
        .keys
        .get(hit.kid())
        .is_some_and(|key| Arc::ptr_eq(key, &hit.0.key));
    if held {
        // Snapshots are never changed, so this stays true while this one is current.
        hit.0.held_in.store(snapshot.generation, Relaxed);
    }
    held
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

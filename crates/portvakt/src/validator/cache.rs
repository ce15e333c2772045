//! The verified-token cache.
//!
//! A consumer reuses its Maskinporten token for the token's whole lifetime (often 120 s), so
//! most requests carry a token we have already verified. Remembering the outcome turns
//! thousands of RSA verifications into one. Entries are keyed by the whole token, compared in
//! full, so no crafted token can collide with a cached one. A hit is re-checked against the
//! clock and the current key set by the validator, so expiry and key removal take effect at
//! once.
//!
//! Which bucket of the table a token falls in is decided by its [`local::fingerprint`] (its
//! last eight bytes and its length) under the table's random seed, not by a hash of all of its
//! bytes. Why: hashing the whole token (about 800 bytes) took about 50 ns of the 255 ns a
//! lookup of one of 5000 cached tokens took (docs/BENCHMARKS.md, "Two threads, one token");
//! every lookup of a token not in this thread's copies ([`local`]) pays it, and the
//! fingerprint is computed for those copies anyway. Why it is enough: the bucket never decides
//! a hit (the bytes do). The last bytes of a token are its signature's, which nobody but the
//! issuer can choose for a token that verifies, and only tokens that verified are inserted, so
//! entries spread over the table as with a hash of everything. A client can send many tokens
//! with one fingerprint, but they are lookups: each is compared with the few entries of one
//! bucket (whose place it cannot predict without the seed) and then validated in full.
//!
//! Expired entries are dropped, too, not left to age out: a consumer's old token is never seen
//! again once it has a new one, but having been used a lot it looks hot to the eviction
//! policy, which would then evict the new tokens first. At most every
//! [`SWEEP_INTERVAL_SECS`], an insertion (a full validation, which costs far more) first
//! removes every entry past its `exp` and leeway.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::local;
use crate::token::{VerifiedToken, past_expiry};

/// What the cache holds for one entry besides the token's text and the value's own
/// allocations: the key's and value's pointers in quick_cache's slot, the slot's bookkeeping,
/// its share of the hash table, and the key's allocation header (two counters and the
/// allocator's own).
const ENTRY_OVERHEAD_BYTES: usize = 128;

/// A cached token's text. Hashed as its [`local::fingerprint`] (see the module doc).
#[derive(Clone, PartialEq, Eq)]
struct TokenKey(Arc<str>);

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(local::fingerprint(self.0.as_bytes()));
    }
}

/// A token's bytes as received, to look a [`TokenKey`] up by: a caller holding the bytes it
/// received (an HTTP body) looks it up without first proving them UTF-8
/// (`Validator::validate_bytes_with`). Hashes as the key does, from the fingerprint computed
/// once per lookup; equal only to the key with exactly these bytes.
struct TokenBytes<'a> {
    bytes: &'a [u8],
    fingerprint: u64,
}

impl Hash for TokenBytes<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint);
    }
}

impl quick_cache::Equivalent<TokenKey> for TokenBytes<'_> {
    fn equivalent(&self, key: &TokenKey) -> bool {
        self.bytes == key.0.as_bytes()
    }
}

#[derive(Clone)]
struct TokenWeight;

impl Weighter<TokenKey, VerifiedToken> for TokenWeight {
    fn weight(&self, key: &TokenKey, value: &VerifiedToken) -> u64 {
        (ENTRY_OVERHEAD_BYTES + key.0.len() + value.approximate_size()) as u64
    }
}

/// A bounded cache of verified tokens, sized in bytes.
pub(crate) struct TokenCache {
    /// This cache's id in each thread's front ([`local`]).
    id: u64,
    entries: Cache<TokenKey, VerifiedToken, TokenWeight>,
    /// When (Unix seconds) the next insertion sweeps out expired entries.
    next_sweep: AtomicI64,
}

/// The least time between two sweeps for expired entries.
pub(crate) const SWEEP_INTERVAL_SECS: i64 = 10;

/// A typical entry's weight (a Maskinporten token of about 800 bytes with a few scopes), to
/// turn a byte budget into the item estimate quick_cache sizes its table by.
const TYPICAL_ENTRY_BYTES: usize = 2 * 1024;

impl TokenCache {
    /// `None` when the budget is zero (caching disabled).
    pub(crate) fn new(budget_bytes: usize) -> Option<TokenCache> {
        if budget_bytes == 0 {
            return None;
        }
        let estimated_items = (budget_bytes / TYPICAL_ENTRY_BYTES).max(16);
        Some(TokenCache {
            id: local::new_cache_id(),
            entries: Cache::with_weighter(estimated_items, budget_bytes as u64, TokenWeight),
            next_sweep: AtomicI64::new(i64::MIN),
        })
    }

    /// The entry for exactly these bytes: this thread's copy when it holds one ([`local`]),
    /// else the shared entry. Only tokens that validated are inserted, so a hit is a token's
    /// text (strict base64url and dots).
    #[inline]
    pub(crate) fn get(&self, token: &[u8]) -> Option<VerifiedToken> {
        let fingerprint = local::fingerprint(token);
        if let Some(hit) = local::get(self.id, token, fingerprint) {
            return Some(hit);
        }
        let hit = self.entries.get(&TokenBytes {
            bytes: token,
            fingerprint,
        })?;
        local::found_in_shared(self.id, token, fingerprint, &hit);
        Some(hit)
    }

    /// Caches `verified`; first, when due, drops every entry expired at `now` (`exp` +
    /// `leeway` passed, as a hit would find).
    pub(crate) fn insert(&self, token: &str, verified: VerifiedToken, now: i64, leeway: i64) {
        let due = self.next_sweep.load(Relaxed);
        // One caller sweeps; the others go on.
        if now >= due
            && self
                .next_sweep
                .compare_exchange(
                    due,
                    now.saturating_add(SWEEP_INTERVAL_SECS),
                    Relaxed,
                    Relaxed,
                )
                .is_ok()
        {
            self.entries.retain(|_, cached| {
                cached
                    .claims()
                    .expires_at()
                    .is_some_and(|exp| !past_expiry(exp, now, leeway))
            });
        }
        self.entries.insert(TokenKey(Arc::from(token)), verified);
    }

    /// Drops the entry, and this thread's copy (another thread's copy is dropped when that
    /// thread finds it fails the same check).
    pub(crate) fn remove(&self, token: &[u8]) {
        let fingerprint = local::fingerprint(token);
        local::remove(self.id, token, fingerprint);
        self.entries.remove(&TokenBytes {
            bytes: token,
            fingerprint,
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn weight(&self) -> u64 {
        self.entries.weight()
    }
}

#[cfg(test)]
mod tests;

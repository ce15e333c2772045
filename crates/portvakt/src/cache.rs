//! The verified-token cache.
//!
//! A consumer reuses its Maskinporten token for the token's whole lifetime (often 120 s), so
//! most requests carry a token we have already verified. Remembering the outcome turns
//! thousands of RSA verifications into one. Entries are keyed by the whole token (hashed with
//! a per-process random seed, then compared in full), so no crafted token can collide with a
//! cached one. A hit is re-checked against the clock and the current key set by the
//! validator, so expiry and key removal take effect at once.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::validator::VerifiedToken;

#[derive(Clone)]
struct TokenWeight;

impl Weighter<Arc<str>, VerifiedToken> for TokenWeight {
    fn weight(&self, key: &Arc<str>, value: &VerifiedToken) -> u64 {
        (key.len() + value.approximate_size()) as u64
    }
}

/// A bounded cache of verified tokens, sized in bytes.
pub(crate) struct TokenCache {
    entries: Cache<Arc<str>, VerifiedToken, TokenWeight>,
}

/// A rough size of one entry, to turn a byte budget into the item estimate quick_cache wants.
const TYPICAL_ENTRY_BYTES: usize = 3 * 1024;

impl TokenCache {
    /// `None` when the budget is zero (caching disabled).
    pub(crate) fn new(budget_bytes: usize) -> Option<TokenCache> {
        if budget_bytes == 0 {
            return None;
        }
        let estimated_items = (budget_bytes / TYPICAL_ENTRY_BYTES).max(16);
        Some(TokenCache {
            entries: Cache::with_weighter(estimated_items, budget_bytes as u64, TokenWeight),
        })
    }

    #[inline]
    pub(crate) fn get(&self, token: &str) -> Option<VerifiedToken> {
        self.entries.get(token)
    }

    pub(crate) fn insert(&self, token: &str, verified: VerifiedToken) {
        self.entries.insert(Arc::from(token), verified);
    }

    pub(crate) fn remove(&self, token: &str) {
        self.entries.remove(token);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn weight(&self) -> u64 {
        self.entries.weight()
    }
}

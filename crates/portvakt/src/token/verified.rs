//! A token whose signature and claims verified, and when such a token has expired.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::Claims;
use crate::algorithm::Algorithm;
use crate::keys::VerifyingKey;

/// A token whose signature and claims verified. Cheap to clone (one `Arc`); dereferences to
/// its [`Claims`].
#[derive(Debug, Clone)]
pub struct VerifiedToken(pub(crate) Arc<Verified>);

#[derive(Debug)]
pub(crate) struct Verified {
    /// The validator that verified it, for [`VerifiedToken::verified_by`].
    pub(crate) validator_id: u64,
    pub(crate) claims: Claims,
    pub(crate) algorithm: Algorithm,
    pub(crate) key: Arc<VerifyingKey>,
    /// The generation of the newest key-set snapshot found to hold `key` under its `kid`: a
    /// cache hit while that snapshot is current skips the lookup (the validator's
    /// `key_held`).
    pub(crate) held_in: AtomicU64,
}

impl VerifiedToken {
    /// The verified claims.
    pub fn claims(&self) -> &Claims {
        &self.0.claims
    }

    /// The algorithm the token was signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.0.algorithm
    }

    /// The id of the key that verified it.
    pub fn kid(&self) -> &str {
        self.0.key.kid()
    }

    /// The consumer's organization number, the usual thing to authorize on.
    pub fn consumer_orgno(&self) -> Option<&str> {
        self.0.claims.consumer().and_then(|c| c.orgno())
    }

    /// A copy in an allocation of its own (the same claims, key and verdict), for one
    /// thread to use without touching the original's reference count
    /// (`validator::local`).
    pub(crate) fn private_copy(&self) -> VerifiedToken {
        VerifiedToken(Arc::new(Verified {
            validator_id: self.0.validator_id,
            claims: self.0.claims.clone(),
            algorithm: self.0.algorithm,
            key: Arc::clone(&self.0.key),
            held_in: AtomicU64::new(self.0.held_in.load(std::sync::atomic::Ordering::Relaxed)),
        }))
    }

    /// The bytes this token holds on the heap: its shared allocation and the claims'.
    pub(crate) fn approximate_size(&self) -> usize {
        // An `Arc`'s allocation: two counters and the value.
        2 * std::mem::size_of::<usize>()
            + std::mem::size_of::<Verified>()
            + self.0.claims.approximate_heap_bytes()
    }
}

impl Deref for VerifiedToken {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        &self.0.claims
    }
}

/// Whether a token with this `exp` has expired at `now`: from `exp` + `leeway` on. The one
/// definition, for validation, cache hits and the cache's sweep.
pub(crate) fn past_expiry(exp: i64, now: i64, leeway: i64) -> bool {
    now >= exp.saturating_add(leeway)
}

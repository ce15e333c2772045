//! Each thread's own front to the verified-token cache.
//!
//! Why: the cache ([`super::cache`]) is shared by every thread, and a hit in it writes to
//! memory the other threads write too: the shard's read lock (taken and released), the
//! entry's "referenced" mark, and the count of the entry's `Arc` (cloned, later dropped).
//! When two threads serve the same token at once (one consumer's requests spread over a
//! runtime's workers, or the proxy's worker threads: the common case), each of those writes
//! moves a cache line from the other core first. Measured with two threads validating the
//! same cached token in a loop (`cargo bench -p portvakt --bench contention`,
//! docs/BENCHMARKS.md): 520 to 630 ns a validation against 105 ns for one thread alone,
//! before this front. Here each thread keeps its own copy of the tokens it sees again and
//! again, so a hit reads and writes only memory no other thread touches: about 68 ns, alone
//! or side by side. With more tokens in turn than it keeps (a thousand), it costs nothing
//! measurable (175 ns against 173 ns without it).
//!
//! What keeps it as safe as the shared cache:
//! - an entry is found only by the token's exact bytes, compared in full, and only for the
//!   cache that verified it (each cache has an id no other cache in the process ever gets, so
//!   a validator made later at the same address finds nothing of an earlier one's);
//! - a hit here is judged as a hit in the shared cache is (the validator checks the key and
//!   the times on every hit), so expiry and a removed key take effect at once; a token the
//!   shared cache dropped for either reason fails the same checks here;
//! - nothing is copied in that the shared cache does not hold: only a token just found there.
//!
//! What bounds its cost:
//! - [`SLOTS`] entries a thread, each in the one slot its token's last bytes choose (the
//!   signature's, which differ for every token), allocated on the thread's first lookup; an
//!   entry holds the token's text (at most the validator's `max_token_size`) and its claims,
//!   about 2 KB for a Maskinporten token, so a thread holds a few hundred kilobytes at most
//!   (2 MB with tokens of the 16 KiB default limit); a dropped validator's copies stay until
//!   other tokens take their slots or the thread ends;
//! - a token is copied in (its bytes, and its verified claims into an allocation of this
//!   thread's) only when it is found in the shared cache twice in a row for its slot, and
//!   then only if the token held there has not been used since the newcomer was first seen:
//!   traffic with more distinct tokens than slots, where each token comes back only after
//!   others have passed through its slot, copies nothing and pays one comparison a request;
//!   two busy tokens that share a slot do not push each other out on every request.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::token::VerifiedToken;

/// Entries kept per thread (see the module documentation for what they hold).
pub(crate) const SLOTS: usize = 128;

/// Ids of caches: 0 is no cache (an empty slot).
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// A cache id no other cache in this process has had or will have.
pub(crate) fn new_cache_id() -> u64 {
    NEXT_CACHE_ID.fetch_add(1, Relaxed)
}

#[derive(Default)]
struct Slot {
    /// The cache whose token this slot holds; 0: none.
    cache: u64,
    /// The token's bytes.
    token: Box<[u8]>,
    /// This thread's copy of the verified token (`None` with `cache` 0).
    verified: Option<VerifiedToken>,
    /// Whether `verified` was used since `candidate` was first seen.
    used: bool,
    /// The cache and fingerprint of the token last found in the shared cache for this slot.
    candidate: (u64, u64),
}

impl Slot {
    /// Whether this slot holds exactly `token`, as verified by cache `cache`: the one test a
    /// copy is found or dropped by.
    fn holds(&self, cache: u64, token: &[u8]) -> bool {
        self.cache == cache && *self.token == *token
    }
}

thread_local! {
    static SLOTS_OF_THIS_THREAD: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// A token's fingerprint: its last eight bytes (of the signature) and its length. It picks
/// the slot and recognises a candidate seen before, and (under a random seed) the shared
/// cache's bucket (`cache.rs`); it never decides a hit (the bytes do).
pub(crate) fn fingerprint(token: &[u8]) -> u64 {
    let mut tail = [0u8; 8];
    let n = token.len().min(8);
    tail[8 - n..].copy_from_slice(&token[token.len() - n..]);
    u64::from_le_bytes(tail) ^ (token.len() as u64).rotate_left(32)
}

fn slot_of(fingerprint: u64) -> usize {
    // Fibonacci hashing: the multiplication spreads every byte of the fingerprint into the
    // top bits, which pick the slot.
    (fingerprint.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
}

/// Runs `f` on this thread's slot for `fingerprint`; `None` while the thread is being torn
/// down (its slots already dropped).
fn with_slot<T>(fingerprint: u64, f: impl FnOnce(&mut Slot) -> T) -> Option<T> {
    SLOTS_OF_THIS_THREAD
        .try_with(|slots| {
            let mut slots = slots.try_borrow_mut().ok()?;
            if slots.is_empty() {
                slots.resize_with(SLOTS, Slot::default);
            }
            Some(f(&mut slots[slot_of(fingerprint)]))
        })
        .ok()
        .flatten()
}

/// This thread's copy of `token` verified by cache `cache`, if it holds one.
pub(crate) fn get(cache: u64, token: &[u8], fingerprint: u64) -> Option<VerifiedToken> {
    with_slot(fingerprint, |slot| {
        if !slot.holds(cache, token) {
            return None;
        }
        slot.used = true;
        slot.verified.clone()
    })
    .flatten()
}

/// `token` was just found in cache `cache` as `verified`: copied in on its second time in a row
/// for its slot, unless the token held there was used in between.
pub(crate) fn found_in_shared(
    cache: u64,
    token: &[u8],
    fingerprint: u64,
    verified: &VerifiedToken,
) {
    with_slot(fingerprint, |slot| {
        if slot.candidate != (cache, fingerprint) {
            slot.candidate = (cache, fingerprint);
            slot.used = false;
            return;
        }
        if slot.used {
            // The token held here is in use too: it stays, and this one keeps going to the
            // shared cache until the held one has gone unused between two of its visits.
            slot.used = false;
            return;
        }
        slot.cache = cache;
        slot.token = token.into();
        slot.verified = Some(verified.private_copy());
        slot.candidate = (0, 0);
    });
}

/// Drops this thread's copy of `token` for cache `cache`, if it holds one (the shared cache
/// dropped it too).
pub(crate) fn remove(cache: u64, token: &[u8], fingerprint: u64) {
    with_slot(fingerprint, |slot| {
        if slot.holds(cache, token) {
            *slot = Slot::default();
        }
    });
}

#[cfg(test)]
mod tests;

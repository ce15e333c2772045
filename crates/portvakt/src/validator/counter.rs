//! A count that many threads add to without sharing a cache line while they do.
//!
//! Why: the validator counts every cache hit, and an `AtomicU64` that every thread adds to
//! moves its cache line between cores on each addition. Measured with two threads validating
//! a cached token each in a loop (the case `two threads, own tokens` of `cargo bench -p
//! portvakt --bench contention`): the shared count alone took a validation from about 105 ns
//! to 153 ns. Here each thread adds to a stripe of its own (threads are given stripes in turn,
//! so up to [`STRIPES`] threads never share one), and reading sums the stripes: exact once the
//! additions are done, as the one count was.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Stripes per counter (a kilobyte: each on a cache-line pair of its own, as adjacent-line
/// prefetching pulls lines in pairs).
pub(crate) const STRIPES: usize = 8;

#[repr(align(128))]
#[derive(Default)]
struct Stripe(AtomicU64);

/// A counter of events on many threads.
#[derive(Default)]
pub(crate) struct Counter {
    stripes: [Stripe; STRIPES],
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE_OF_THIS_THREAD: usize = NEXT_STRIPE.fetch_add(1, Relaxed) % STRIPES;
}

impl Counter {
    /// Counts one event.
    #[inline]
    pub(crate) fn add_one(&self) {
        // A thread being torn down (its stripe number gone) counts in the first stripe.
        let stripe = STRIPE_OF_THIS_THREAD.try_with(|s| *s).unwrap_or(0);
        self.stripes[stripe].0.fetch_add(1, Relaxed);
    }

    /// The events counted so far.
    pub(crate) fn get(&self) -> u64 {
        self.stripes.iter().map(|s| s.0.load(Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stripes_sum_to_every_addition_from_every_thread() {
        let counter = Counter::default();
        std::thread::scope(|s| {
            for _ in 0..(STRIPES + 3) {
                s.spawn(|| {
                    for _ in 0..1000 {
                        counter.add_one();
                    }
                });
            }
        });
        assert_eq!(counter.get(), (STRIPES as u64 + 3) * 1000);
        // More threads than stripes: some shared one, and none was lost.
        assert!(
            counter
                .stripes
                .iter()
                .filter(|s| s.0.load(Relaxed) > 0)
                .count()
                > 1
        );
    }
}

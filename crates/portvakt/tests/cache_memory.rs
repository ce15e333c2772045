//! The verified-token cache's byte budget is a real memory bound: what its entries hold on the
//! heap, counted by the allocator, is what the cache says it holds. (Its own test binary:
//! the counting allocator sees every allocation of the process.)

use portvakt_test_support as common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use common::{KEY_A, TEST_ISSUER, claims, sign};
use portvakt::{Algorithm, Config, KeySet, Validator};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn validator(cache_bytes: usize) -> Validator {
    let config = Config::builder()
        .issuer(TEST_ISSUER)
        .jwks_uri("https://test.maskinporten.no/jwk")
        .cache_bytes(cache_bytes)
        .build()
        .unwrap();
    let keys = KeySet::from_jwks_values(&[KEY_A.public_jwk()], &[Algorithm::RS256]).0;
    Validator::with_keys(&config, TEST_ISSUER, keys)
}

fn tokens(count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            sign(
                &KEY_A,
                &claims(TEST_ISSUER, "nav:arbeid:a.read nav:arbeid:b.write"),
            )
        })
        .collect()
}

#[test]
fn the_cache_holds_what_it_says_and_stays_within_its_budget() {
    const TOKENS: usize = 1500;
    let tokens = tokens(TOKENS);

    // A budget the tokens fit in: the allocator's count against the cache's own.
    let roomy = validator(64 * 1024 * 1024);
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    for token in &tokens {
        roomy.validate_now(token).unwrap();
    }
    let held = (LIVE_BYTES.load(Ordering::Relaxed) - before) as f64;
    let stats = roomy.stats();
    assert_eq!(stats.cache_entries, TOKENS);
    let counted = stats.cache_bytes as f64;
    let ratio = held / counted;
    println!(
        "{TOKENS} cached tokens hold {held} bytes; the cache counts {counted} ({ratio:.2}); {:.0} bytes per token, tokens are {} bytes",
        held / TOKENS as f64,
        tokens[0].len()
    );
    assert!(
        (0.8..=1.25).contains(&ratio),
        "the cache counts {counted} bytes, the allocator {held}: its weights are off by more than 25 %"
    );
    drop(roomy);

    // A budget for a third of them: the cache stays within it, and so does the memory.
    let budget = (counted / 3.0) as usize;
    let tight = validator(budget);
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    for token in &tokens {
        tight.validate_now(token).unwrap();
    }
    let held = (LIVE_BYTES.load(Ordering::Relaxed) - before) as f64;
    let stats = tight.stats();
    assert!(
        stats.cache_bytes <= budget as u64,
        "{stats:?} over {budget}"
    );
    assert!(stats.cache_entries < TOKENS / 2, "{stats:?}");
    assert!(
        held <= 1.25 * budget as f64,
        "a cache with a budget of {budget} bytes holds {held}"
    );
}

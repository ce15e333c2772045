//! Cached validations on two threads at once, side by side with one thread alone, in one run
//! (docs/BENCHMARKS.md, "Two threads, one token"):
//! - `one thread`: `validate_now` of a cached token in a loop;
//! - `two threads, one token`: two threads doing the same at once with the same token (one
//!   consumer's requests spread over a runtime's workers, or the proxy's worker threads);
//! - `two threads, own tokens`: each thread with a token of its own;
//! - `one thread, 1000 tokens`: one thread, a thousand cached tokens in turn, more than a
//!   thread keeps copies of (`validator/local.rs`), so each is found in the shared cache:
//!   what that front costs when it cannot help;
//! - `two threads, 1000 tokens`: two threads doing the same at once, each from its own half of
//!   the list (the sidecar's two workers serving many consumers): what sharing the shared
//!   cache's memory between cores costs, printed against one thread with the same tokens.
//!
//! A validation that writes to memory another thread writes too (a shared lock, a reference
//! count, a counter) waits for that cache line to come from the other core, so the two-thread
//! cases show what sharing costs: their time per validation over one thread's is the figure,
//! printed as ratios (1.0: no cost). Medians of five rounds, the cases alternating.
//!
//! Run: `cargo bench -p portvakt --bench contention`.

use portvakt_test_support as common;

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

use common::{KEY_A, TEST_ISSUER, claims, sign};
use portvakt::{Algorithm, Config, KeySet, Validator};

const VALIDATIONS: u32 = 2_000_000;
const ROUNDS: usize = 5;

/// A token of its own (a fresh `jti`), valid for 120 s: longer than the whole run.
fn token() -> String {
    sign(
        &KEY_A,
        &claims(
            TEST_ISSUER,
            "nav:arbeid:some.scope.read nav:arbeid:some.scope.write",
        ),
    )
}

/// Nanoseconds per validation on each of `threads` threads validating `tokens` in turn at
/// once, each starting at its own share of the list (so that no two validate the same token at
/// the same moment).
fn in_turn(validator: &Validator, tokens: &[String], threads: usize) -> f64 {
    let barrier = Barrier::new(threads);
    let rounds = VALIDATIONS / tokens.len() as u32;
    let started = Instant::now();
    std::thread::scope(|s| {
        for thread in 0..threads {
            let barrier = &barrier;
            let start = tokens.len() * thread / threads;
            s.spawn(move || {
                barrier.wait();
                for _ in 0..rounds {
                    for token in tokens[start..].iter().chain(&tokens[..start]) {
                        black_box(validator.validate_now(black_box(token)).unwrap());
                    }
                }
            });
        }
    });
    started.elapsed().as_nanos() as f64 / f64::from(rounds * tokens.len() as u32)
}

/// Nanoseconds per validation on each of `tokens.len()` threads validating at once.
fn run(validator: &Validator, tokens: &[&str]) -> f64 {
    let barrier = Barrier::new(tokens.len());
    let started = Instant::now();
    std::thread::scope(|s| {
        for token in tokens {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for _ in 0..VALIDATIONS {
                    black_box(validator.validate_now(black_box(token)).unwrap());
                }
            });
        }
    });
    started.elapsed().as_nanos() as f64 / f64::from(VALIDATIONS)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let config = Config::builder()
        .issuer(TEST_ISSUER)
        .jwks_uri("https://test.maskinporten.no/jwk")
        .build()
        .unwrap();
    let keys = KeySet::from_jwks_values(&[KEY_A.public_jwk()], &[Algorithm::RS256]).0;
    let validator = Validator::with_keys(&config, TEST_ISSUER, keys);
    let (a, b) = (token(), token());
    // Verified once (the cache holds them), then warm on every thread the runs start.
    for t in [&a, &b] {
        validator.validate_now(t).unwrap();
    }
    let many: Vec<String> = (0..1000).map(|_| token()).collect();
    for t in &many {
        validator.validate_now(t).unwrap();
    }
    run(&validator, &[&a, &b]);
    let cases: [(&str, Vec<&str>); 3] = [
        ("one thread", vec![&a]),
        ("two threads, one token", vec![&a, &a]),
        ("two threads, own tokens", vec![&a, &b]),
    ];
    let mut times = vec![Vec::new(); cases.len()];
    let mut many_times = Vec::new();
    let mut many_two_times = Vec::new();
    for _ in 0..ROUNDS {
        for (i, (_, tokens)) in cases.iter().enumerate() {
            times[i].push(run(&validator, tokens));
        }
        many_times.push(in_turn(&validator, &many, 1));
        many_two_times.push(in_turn(&validator, &many, 2));
    }
    let alone = median(times[0].clone());
    println!("cached validations, {VALIDATIONS} per thread, medians of {ROUNDS} rounds:");
    for ((name, _), times) in cases.iter().zip(times) {
        let ns = median(times);
        println!(
            "  {name:<24} {ns:6.0} ns per validation  {:.2}x one thread",
            ns / alone
        );
    }
    let ns = median(many_times);
    println!(
        "  {:<24} {ns:6.0} ns per validation  {:.2}x one thread",
        "one thread, 1000 tokens",
        ns / alone
    );
    let two = median(many_two_times);
    println!(
        "  {:<24} {two:6.0} ns per validation  {:.2}x one thread, 1000 tokens",
        "two threads, 1000 tokens",
        two / ns
    );
}

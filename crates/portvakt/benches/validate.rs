//! Validation cost, side by side in one run:
//! - `floor/aws_lc_rs_rs256_verify`: the raw aws-lc-rs RS256 verification of the token's
//!   signing input with a pre-parsed key: no validator can be faster than this.
//! - `portvakt/validate_fresh`: a full `validate()` of a token never seen before (cache off).
//! - `portvakt/validate_cached`: `validate()` of a token already verified (the common case:
//!   consumers reuse a token for its whole lifetime).
//! - `jsonwebtoken/naive_decode`: a typical validator built on jsonwebtoken (aws-lc-rs backend):
//!   `DecodingKey::from_jwk` per call, as middleware that looks keys up per request does, then
//!   `decode` with issuer and expiry checks.
//! - `jsonwebtoken/prepared_key`: jsonwebtoken with its `DecodingKey` prepared once.
//!
//!
//! Then, outside criterion, `paired: validate_fresh / floor`: criterion measures one function
//! after the other, and on a shared 2-core VM the CPU's speed drifts between two such runs by
//! more than the difference measured here (runs of the same code gave ratios from 1.0 to 1.3).
//! The paired figure alternates short batches of the floor and of `validate_fresh` and reports
//! the median ratio of neighbouring batches, which such drift leaves alone.
//!
//! Run: `cargo bench -p portvakt --bench validate`.

use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, RsaPublicKeyComponents};
use base64::Engine as _;
use criterion::{Criterion, criterion_group};
use portvakt::{Algorithm, Config, KeySet, SigningKey, Validator};
use serde_json::{Value, json};

const ISSUER: &str = "https://test.maskinporten.no/";

fn claims(jti: u64) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "iss": ISSUER,
        "scope": "nav:arbeid:some.scope.read nav:arbeid:some.scope.write",
        "client_id": "107c6f58-52a0-4a1b-8ad3-3e4c8f2b1e9a",
        "client_amr": "private_key_jwt",
        "token_type": "Bearer",
        "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:889640782"},
        "iat": now,
        "exp": now + 3600,
        "jti": format!("Cip-{jti:020}"),
    })
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

/// The fresh-token validator and the raw verification it is compared with.
struct Fixture {
    jwk: Value,
    config: Config,
    fresh: Validator,
    token: String,
    parsed: signature::ParsedPublicKey,
    signing_input_len: usize,
    signature: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        let key = SigningKey::generate("bench-key").unwrap();
        let jwk = key.public_jwk();
        let config = Config::builder()
            .issuer(ISSUER)
            .jwks_uri("https://test.maskinporten.no/jwk")
            .build()
            .unwrap();
        let no_cache = Config::builder()
            .issuer(ISSUER)
            .jwks_uri("https://test.maskinporten.no/jwk")
            .cache_bytes(0)
            .build()
            .unwrap();
        let fresh = Validator::with_keys(&no_cache, ISSUER, keys(&jwk));
        let token = key.sign_jwt(Algorithm::RS256, &claims(1)).unwrap();
        // The floor: aws-lc-rs alone, key pre-parsed, no parsing of the token beyond splitting.
        let n = b64(jwk["n"].as_str().unwrap());
        let e = b64(jwk["e"].as_str().unwrap());
        let parsed = RsaPublicKeyComponents {
            n: &n[..],
            e: &e[..],
        }
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
        let (signing_input, sig) = token.rsplit_once('.').unwrap();
        Fixture {
            signing_input_len: signing_input.len(),
            signature: b64(sig),
            jwk,
            config,
            fresh,
            token,
            parsed,
        }
    }

    fn floor(&self) {
        let signing_input = &self.token.as_bytes()[..self.signing_input_len];
        self.parsed
            .verify_sig(black_box(signing_input), black_box(&self.signature))
            .unwrap()
    }

    fn validate_fresh(&self) {
        black_box(self.fresh.validate_now(black_box(&self.token)).unwrap());
    }
}

fn keys(jwk: &Value) -> KeySet {
    KeySet::from_jwks_values(std::slice::from_ref(jwk), &[Algorithm::RS256]).0
}

fn bench(c: &mut Criterion) {
    let fixture = Fixture::new();
    let Fixture {
        jwk, config, token, ..
    } = &fixture;
    let cached = Validator::with_keys(config, ISSUER, keys(jwk));
    let mut group = c.benchmark_group("validate");
    group.bench_function("floor/aws_lc_rs_rs256_verify", |b| {
        b.iter(|| fixture.floor())
    });
    group.bench_function("portvakt/validate_fresh", |b| {
        b.iter(|| fixture.validate_fresh())
    });
    cached.validate_now(token).unwrap();
    group.bench_function("portvakt/validate_cached", |b| {
        b.iter(|| cached.validate_now(black_box(token)).unwrap())
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    group.bench_function("portvakt/validate_cached_async", |b| {
        b.iter(|| runtime.block_on(cached.validate(black_box(token))).unwrap())
    });

    let jwk_struct: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[ISSUER]);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iss"]);
    group.bench_function("jsonwebtoken/naive_decode", |b| {
        b.iter(|| {
            let key = jsonwebtoken::DecodingKey::from_jwk(&jwk_struct).unwrap();
            jsonwebtoken::decode::<Value>(black_box(token), &key, &validation).unwrap()
        })
    });
    let prepared = jsonwebtoken::DecodingKey::from_jwk(&jwk_struct).unwrap();
    group.bench_function("jsonwebtoken/prepared_key", |b| {
        b.iter(|| jsonwebtoken::decode::<Value>(black_box(token), &prepared, &validation).unwrap())
    });
    group.finish();
}

/// Alternates batches of the floor and of a fresh validation; prints the median ratio.
fn paired_overhead() {
    const PAIRS: usize = 400;
    const BATCH: u32 = 40;
    let fixture = Fixture::new();
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..BATCH {
            f();
        }
        start.elapsed().as_secs_f64() / f64::from(BATCH)
    };
    let mut ratios = Vec::with_capacity(PAIRS);
    let (mut floor_total, mut fresh_total) = (0.0, 0.0);
    for _ in 0..PAIRS {
        let floor = time(&|| fixture.floor());
        let fresh = time(&|| fixture.validate_fresh());
        floor_total += floor;
        fresh_total += fresh;
        ratios.push(fresh / floor);
    }
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q) as usize];
    println!(
        "validate/paired: validate_fresh / floor = {:.3} (median of {PAIRS} neighbouring batches \
         of {BATCH}; p10 {:.3}, p90 {:.3}; means {:.2} us / {:.2} us)",
        at(0.5),
        at(0.1),
        at(0.9),
        fresh_total / PAIRS as f64 * 1e6,
        floor_total / PAIRS as f64 * 1e6,
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Not in `cargo test --benches` (criterion's quick test mode), nor when a filter picks
    // other benchmarks.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let test_mode = args.iter().any(|a| a == "--test" || a == "--list");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted = filters.is_empty() || filters.iter().any(|f| "paired".contains(f.as_str()));
    if !test_mode && wanted {
        paired_overhead();
    }
}

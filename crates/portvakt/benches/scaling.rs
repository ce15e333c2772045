//! How validation cost grows (issue 12), each in one criterion group so the sizes run side by
//! side:
//! - `token_size/{floor,fresh,cached}/{1,4,16}KB`: tokens of about 1, 4 and 16 KB, grown the
//!   way Maskinporten tokens grow, by scopes (a consumer granted many scopes asks for them
//!   together). `floor` is aws-lc-rs's RS256 verify of the same signing input with a
//!   pre-parsed key: it holds SHA-256 over the signing input, the one per-byte cost of the
//!   crypto. `fresh` minus `floor` is what portvakt's parsing and claim checks cost, and its
//!   slope over the sizes their cost per byte. `cached` is a token seen before (the cache
//!   key is a hash of the whole token, so it too reads every byte).
//! - `jwks_size/fresh/{2,20,200}`: a fresh validation with a JWKS of 2, 20 and 200 keys, the
//!   token signed by the last key the issuer published: key lookup should stay flat.
//!
//! Run: `cargo bench -p portvakt --bench scaling` (generating 200 RSA keys takes a while
//! before the first figure).

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, RsaPublicKeyComponents};
use base64::Engine as _;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use portvakt::{Algorithm, Config, KeySet, SigningKey, Validator};
use serde_json::{Value, json};

const ISSUER: &str = "https://test.maskinporten.no/";

/// A Maskinporten-shaped token's claims with scopes added until the token is about `bytes`.
fn claims(scopes: usize) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let scope = (0..scopes.max(1))
        .map(|i| format!("nav:arbeid:some.scope{i:04}.read"))
        .collect::<Vec<_>>()
        .join(" ");
    json!({
        "iss": ISSUER,
        "scope": scope,
        "client_id": "107c6f58-52a0-4a1b-8ad3-3e4c8f2b1e9a",
        "client_amr": "private_key_jwt",
        "token_type": "Bearer",
        "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:889640782"},
        "iat": now,
        "exp": now + 3600,
        "jti": "Cip-00000000000000000001",
    })
}

/// A token of about `bytes` bytes (within 40 bytes: one scope is 30 characters of JSON, 40 of
/// base64url).
fn token_of(key: &SigningKey, bytes: usize) -> String {
    let base = key.sign_jwt(Algorithm::RS256, &claims(1)).unwrap().len();
    let scopes = 1 + bytes.saturating_sub(base) * 3 / 4 / 31;
    key.sign_jwt(Algorithm::RS256, &claims(scopes)).unwrap()
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn config(cache_bytes: usize) -> Config {
    Config::builder()
        .issuer(ISSUER)
        .jwks_uri("https://test.maskinporten.no/jwk")
        .max_token_size(32 * 1024)
        .cache_bytes(cache_bytes)
        .build()
        .unwrap()
}

fn key_set(jwks: &[Value]) -> KeySet {
    let (keys, warnings) = KeySet::from_jwks_values(jwks, &[Algorithm::RS256]);
    assert!(warnings.is_empty(), "{warnings:?}");
    keys
}

fn token_size(c: &mut Criterion) {
    let key = SigningKey::generate("bench-key").unwrap();
    let jwk = key.public_jwk();
    let parsed = RsaPublicKeyComponents {
        n: &b64(jwk["n"].as_str().unwrap())[..],
        e: &b64(jwk["e"].as_str().unwrap())[..],
    }
    .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
    .unwrap();
    let fresh = Validator::with_keys(&config(0), ISSUER, key_set(std::slice::from_ref(&jwk)));
    let cached = Validator::with_keys(
        &config(16 << 20),
        ISSUER,
        key_set(std::slice::from_ref(&jwk)),
    );

    let mut group = c.benchmark_group("token_size");
    for kb in [1usize, 4, 16] {
        let token = token_of(&key, kb * 1000);
        let verified = fresh.validate_now(&token).unwrap();
        assert!(
            verified
                .claims()
                .scopes()
                .contains("nav:arbeid:some.scope0000.read")
        );
        cached.validate_now(&token).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64(sig);
        eprintln!("token_size/{kb}KB: {} bytes", token.len());
        group.throughput(Throughput::Bytes(token.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("floor", format!("{kb}KB")),
            &(),
            |b, ()| {
                b.iter(|| {
                    parsed
                        .verify_sig(black_box(input.as_bytes()), black_box(&sig))
                        .unwrap()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("fresh", format!("{kb}KB")),
            &(),
            |b, ()| b.iter(|| black_box(fresh.validate_now(black_box(&token)).unwrap())),
        );
        group.bench_with_input(
            BenchmarkId::new("cached", format!("{kb}KB")),
            &(),
            |b, ()| b.iter(|| black_box(cached.validate_now(black_box(&token)).unwrap())),
        );
    }
    group.finish();
}

fn jwks_size(c: &mut Criterion) {
    let mut keys: Vec<SigningKey> = Vec::new();
    let mut group = c.benchmark_group("jwks_size");
    for count in [2usize, 20, 200] {
        while keys.len() < count {
            keys.push(SigningKey::generate(format!("bench-key-{:03}", keys.len())).unwrap());
        }
        let jwks: Vec<Value> = keys.iter().map(SigningKey::public_jwk).collect();
        let validator = Validator::with_keys(&config(0), ISSUER, key_set(&jwks));
        let last = keys.last().unwrap();
        let token = last.sign_jwt(Algorithm::RS256, &claims(2)).unwrap();
        assert_eq!(validator.validate_now(&token).unwrap().kid(), last.kid());
        group.bench_with_input(BenchmarkId::new("fresh", count), &(), |b, ()| {
            b.iter(|| black_box(validator.validate_now(black_box(&token)).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, token_size, jwks_size);
criterion_main!(benches);

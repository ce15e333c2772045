//! The validator on an arbitrary token, with a fixed key set and a fixed clock.
//!
//! The first byte chooses how the rest is used:
//! - even: the rest is the token string itself. Invariant: the validator never panics, and a
//!   token it accepts is one whose RS256 signature by the fuzzing key verifies when read
//!   independently (canonical base64url, aws-lc-rs called directly) and whose claims satisfy
//!   the rules read independently. A fuzzer cannot forge RSA, so in practice: only the seed
//!   tokens signed with the fuzzing key validate, and no mutation of them does.
//! - odd: the rest is a payload, signed here with the fuzzing key under a well-formed header,
//!   so the claims checks behind the signature are reached. Invariant: never a panic, and an
//!   accepted payload satisfies the same independently read rules.

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use portvakt::{Algorithm, Config, KeySet, SigningKey, Validator};
use serde_json::Value;

use crate::oracle;

/// The issuer the fuzzing validator trusts.
pub const ISSUER: &str = "https://test.maskinporten.no/";
/// The validator's clock: 2027-01-15, so the seed tokens (iat 1_800_000_000 - 30) stay valid.
pub const NOW: u64 = 1_800_000_000;
const LEEWAY: i64 = 60;

struct Fixture {
    validator: Validator,
    key: SigningKey,
    n: Vec<u8>,
    e: Vec<u8>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let key = SigningKey::from_jwk(crate::ISSUER_JWK).expect("the fuzzing key loads");
    let public = key.public_jwk();
    let (n, e) = oracle::rsa_public(&public);
    let config = Config::builder()
        .issuer(ISSUER)
        .jwks_uri("https://test.maskinporten.no/jwk")
        .build()
        .expect("the fuzzing configuration is valid");
    let keys = KeySet::from_jwks_values([&public], &[Algorithm::RS256]).0;
    Fixture {
        validator: Validator::with_keys(&config, ISSUER, keys),
        key,
        n,
        e,
    }
});

/// A token signed with the fuzzing key (for seeds and tests).
pub fn sign(payload: &[u8]) -> String {
    let header = format!(r#"{{"kid":"{}","alg":"RS256"}}"#, FIXTURE.key.kid());
    FIXTURE
        .key
        .sign_compact(Algorithm::RS256, header.as_bytes(), payload)
        .expect("RS256 signing works")
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fixture = &*FIXTURE;
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let (token, payload) = if mode % 2 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return;
        };
        let payload = token.split('.').nth(1).and_then(oracle::base64url);
        (token.to_owned(), payload)
    } else {
        (sign(rest), Some(rest.to_vec()))
    };
    let first = fixture.validator.validate_at(&token, now);
    if let Ok(verified) = &first {
        assert!(
            oracle::rs256_verifies(&token, &fixture.n, &fixture.e),
            "validated a token whose signature does not verify independently"
        );
        check_accepted(payload.as_deref(), verified.kid());
    }
    // A second validation is answered from the token cache: it must agree with the first.
    let second = fixture.validator.validate_at(&token, now);
    assert_eq!(
        first
            .as_ref()
            .map(|t| t.claims().payload().to_owned())
            .map_err(|e| e.code()),
        second
            .as_ref()
            .map(|t| t.claims().payload().to_owned())
            .map_err(|e| e.code()),
        "the cached verdict differs from the first"
    );
}

/// What any accepted token's payload satisfies, read with plain serde_json.
fn check_accepted(payload: Option<&[u8]>, kid: &str) {
    assert_eq!(kid, FIXTURE.key.kid(), "accepted under an unknown kid");
    let claims = payload
        .and_then(oracle::json_object)
        .expect("accepted a payload that is not one JSON object without duplicate names");
    assert_eq!(
        claims.get("iss").and_then(Value::as_str),
        Some(ISSUER),
        "accepted a token from another issuer"
    );
    let now = NOW as i64;
    let exp = claims.get("exp").and_then(Value::as_f64);
    assert!(
        exp.is_some_and(|exp| exp + LEEWAY as f64 > now as f64),
        "accepted a token without exp or past it: {exp:?}"
    );
    for (name, limit) in [("iat", now + LEEWAY), ("nbf", now + LEEWAY)] {
        if let Some(value) = claims.get(name) {
            let seconds = value.as_f64();
            assert!(
                seconds.is_some_and(|s| s <= limit as f64),
                "accepted {name} {value} in the future or not a number"
            );
        }
    }
}

//! Property tests: arbitrary input and mutated tokens never panic and never validate.

use portvakt_test_support as common;

use std::sync::LazyLock;

use common::{KEY_A, claims, jwks};
use portvakt::{Algorithm, Config, KeySet, Policy, Validator};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

const ISSUER: &str = "https://test.maskinporten.no/";

static VALIDATOR: LazyLock<Validator> = LazyLock::new(|| {
    let config = Config::builder()
        .issuer(ISSUER)
        .jwks_uri("https://test.maskinporten.no/jwk")
        .build()
        .unwrap();
    let (keys, _) =
        KeySet::from_jwks(jwks(&[&KEY_A]).to_string().as_bytes(), &[Algorithm::RS256]).unwrap();
    Validator::with_keys(&config, ISSUER, keys)
});

const READ: &str = "nav:arbeid:some.scope.read";

static TOKEN: LazyLock<String> = LazyLock::new(|| common::sign(&KEY_A, &claims(ISSUER, READ)));

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Swap(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop::sample::select(ALPHABET);
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
    ]
}

fn apply(token: &str, mutations: &[Mutation]) -> String {
    let mut bytes = token.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Replace(i, b) if !bytes.is_empty() => bytes[i % len] = b,
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Delete(i) if !bytes.is_empty() => {
                bytes.remove(i % len);
            }
            Mutation::Swap(i, j) if !bytes.is_empty() => bytes.swap(i % len, j % len),
            _ => {}
        }
    }
    String::from_utf8(bytes).expect("the alphabet is ASCII")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_validates(text in any::<String>()) {
        prop_assert!(VALIDATOR.validate_now(&text).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_validate(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(VALIDATOR.validate_now(&text).is_err());
    }

    #[test]
    fn three_arbitrary_segments_never_validate(
        header in "[A-Za-z0-9_-]{0,80}",
        payload in "[A-Za-z0-9_-]{0,400}",
        signature in "[A-Za-z0-9_-]{0,400}",
    ) {
        let token = format!("{header}.{payload}.{signature}");
        prop_assert!(VALIDATOR.validate_now(&token).is_err());
    }

    #[test]
    fn mutated_tokens_never_validate(mutations in prop::collection::vec(mutation(), 1..4)) {
        let original = &*TOKEN;
        let mutated = apply(original, &mutations);
        if mutated != *original {
            let result = VALIDATOR.validate_now(&mutated);
            prop_assert!(result.is_err(), "mutation {:?} validated", mutations);
        }
    }

    #[test]
    fn a_valid_header_and_signature_with_arbitrary_payload_never_validates(payload in "[A-Za-z0-9_-]{0,200}") {
        let original = &*TOKEN;
        let mut parts = original.split('.');
        let (header, real_payload, signature) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        prop_assume!(payload != real_payload);
        let token = format!("{header}.{payload}.{signature}");
        prop_assert!(VALIDATOR.validate_now(&token).is_err());
    }
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
}

fn inspect(token: &str) -> portvakt::inspect::Inspection {
    RUNTIME.with(|rt| rt.block_on(VALIDATOR.inspect(token, &Policy::new().require_scope(READ))))
}

/// A time claim as an attacker might write it: the integer extremes and their neighbours,
/// any integer, near now, a float (finite or huge), or the wrong type.
fn time_claim() -> impl Strategy<Value = Option<Value>> {
    let now = common::now();
    prop::option::of(prop_oneof![
        prop::sample::select(vec![i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX])
            .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (now - 1000..now + 1000).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!("1700000000")),
    ])
}

/// The report never panics, agrees with the validator, and never contains the signature.
fn check_report(token: &str) -> Result<(), TestCaseError> {
    let report = inspect(token);
    prop_assert_eq!(report.valid, VALIDATOR.validate_now(token).is_ok());
    prop_assert_eq!(report.valid, report.error.is_none());
    if let Some(signature) = token.rsplit('.').next().filter(|s| s.len() >= 16) {
        let shown = serde_json::to_string(&report).unwrap();
        prop_assert!(!shown.contains(signature), "the report shows the signature");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn inspecting_arbitrary_text_never_panics(text in any::<String>()) {
        check_report(&text)?;
        prop_assert!(!inspect(&text).valid);
    }

    #[test]
    fn inspecting_mutated_tokens_never_panics(mutations in prop::collection::vec(mutation(), 1..4)) {
        let mutated = apply(&TOKEN, &mutations);
        check_report(&mutated)?;
        if mutated != *TOKEN {
            prop_assert!(!inspect(&mutated).valid, "mutation {:?} validated", mutations);
        }
    }

    /// Signed tokens, so the extreme claims get past the signature into every time check
    /// (and, mutated, into the unverified report).
    #[test]
    fn inspecting_extreme_time_claims_never_panics(
        exp in time_claim(),
        iat in time_claim(),
        nbf in time_claim(),
        mutations in prop::collection::vec(mutation(), 0..2),
    ) {
        let mut claims = claims(ISSUER, READ);
        for (name, value) in [("exp", exp), ("iat", iat), ("nbf", nbf)] {
            match value {
                Some(value) => claims[name] = value,
                None => {
                    claims.as_object_mut().unwrap().remove(name);
                }
            }
        }
        let token = apply(&common::sign(&KEY_A, &claims), &mutations);
        check_report(&token)?;
    }
}

#[test]
fn the_unmutated_token_does_validate() {
    // Guards the properties above against passing because nothing could ever validate.
    VALIDATOR.validate_now(&TOKEN).unwrap();
    assert!(inspect(&TOKEN).valid);
}

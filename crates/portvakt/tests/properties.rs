//! Property tests: arbitrary input and mutated tokens never panic and never validate.

mod common;

use std::sync::LazyLock;

use common::{KEY_A, claims, jwks};
use portvakt::{Algorithm, Config, KeySet, Validator};
use proptest::prelude::*;

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

static TOKEN: LazyLock<String> =
    LazyLock::new(|| common::sign(&KEY_A, &claims(ISSUER, "nav:arbeid:some.scope.read")));

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

#[test]
fn the_unmutated_token_does_validate() {
    // Guards the properties above against passing because nothing could ever validate.
    VALIDATOR.validate_now(&TOKEN).unwrap();
}

//! Wycheproof test vectors through the signature layer production tokens use: the same JWK
//! vetting (`KeySet`) and the same JWS verification (`jws::verify_compact`) or key
//! (`VerifyingKey::verify`). No `invalid` case may ever be accepted; every `valid` RS256 case
//! must be accepted under the default policy. The `valid` cases we refuse are listed, with the
//! reason, in `REFUSED_VALID` below and in docs/WYCHEPROOF.md.
//!
//! The vectors are read from `../shared/testvectors/wycheproof/` beside the checkout; a
//! missing file fails the test (it never silently passes).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use portvakt::jws::verify_compact;
use portvakt::{Algorithm, KeySet};
use serde_json::{Value, json};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testvectors/wycheproof")
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "Wycheproof vectors are required: cannot read {} ({e}). They live in shared/ beside the checkout (../shared/testvectors/wycheproof).",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn header_alg(jws: &str) -> String {
    let header = jws.split('.').next().unwrap_or("");
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// The `valid` JWS/JWK cases the default policy (RS256 only) refuses, and why. Each is a case
/// whose algorithm or key type portvakt does not accept for Maskinporten tokens.
const REFUSED_VALID: &[(u64, &str)] = &[
    (
        1,
        "HS256: HMAC is never accepted (symmetric keys invite key confusion)",
    ),
    (
        18,
        "ES256: Maskinporten signs with RSA; EC keys are skipped",
    ),
    (264, "RS384: opt-in only"),
    (265, "RS384: opt-in only"),
    (266, "RS384: opt-in only"),
    (267, "RS384: opt-in only"),
    (268, "RS512: opt-in only"),
    (269, "RS512: opt-in only"),
    (270, "RS512: opt-in only"),
    (271, "RS512: opt-in only"),
    (272, "PS256: opt-in only"),
    (273, "PS256: opt-in only"),
    (274, "PS256: opt-in only"),
    (275, "PS256: opt-in only"),
    (287, "PS256: opt-in only"),
    (288, "PS256: opt-in only"),
    (320, "PS384: not supported"),
    (321, "PS384: not supported"),
    (322, "PS384: not supported"),
    (323, "PS384: not supported"),
    (325, "PS512: not supported"),
    (326, "PS512: not supported"),
    (327, "PS512: not supported"),
    (328, "PS512: not supported"),
    (346, "PS384: not supported"),
    (347, "ES512: EC keys are skipped"),
    (348, "HS256: HMAC is never accepted"),
    (350, "PS384: not supported"),
    (351, "ES512: EC keys are skipped"),
    (352, "HS256: HMAC is never accepted"),
    (357, "HS256: HMAC is never accepted"),
    (358, "HS256: HMAC is never accepted"),
    (359, "HS256: HMAC is never accepted"),
    (372, "HS256: HMAC is never accepted"),
    (373, "HS256: HMAC is never accepted"),
    (376, "HS256: HMAC is never accepted"),
    (377, "HS256: HMAC is never accepted"),
    (378, "ES256: EC keys are skipped"),
];

/// The JWK-file `valid` cases refused: HMAC keys in a set are never used.
const REFUSED_VALID_JWK: &[(u64, &str)] = &[
    (2, "HS256 key in a set: HMAC is never accepted"),
    (13, "HS256: HMAC is never accepted"),
    (14, "HS384: HMAC is never accepted"),
    (15, "HS512: HMAC is never accepted"),
];

struct Outcome {
    tested: usize,
    invalid_refused: usize,
    valid_accepted: usize,
    refused_valid: BTreeMap<u64, String>,
}

/// Runs one JWS-shaped vector file under an algorithm policy.
fn run_jws_file(name: &str, algorithms: &[Algorithm]) -> Outcome {
    let file = load(name);
    let mut outcome = Outcome {
        tested: 0,
        invalid_refused: 0,
        valid_accepted: 0,
        refused_valid: BTreeMap::new(),
    };
    for group in file["testGroups"].as_array().unwrap() {
        let key = group.get("public").or_else(|| group.get("private"));
        let jwks: Vec<Value> = match key {
            Some(Value::Object(k)) if k.contains_key("keys") => {
                k["keys"].as_array().unwrap().clone()
            }
            Some(k) => vec![k.clone()],
            None => vec![],
        };
        let (set, _warnings) = KeySet::from_jwks_values(&jwks, algorithms);
        for test in group["tests"].as_array().unwrap() {
            let id = test["tcId"].as_u64().unwrap();
            let Some(jws) = test["jws"].as_str() else {
                // JSON serialization: not a compact JWS, so it cannot even be presented to us.
                assert_ne!(
                    test["result"], "valid",
                    "tcId {id}: a valid JSON-serialized case"
                );
                continue;
            };
            outcome.tested += 1;
            let result = verify_compact(jws, &set, algorithms);
            match test["result"].as_str().unwrap() {
                "invalid" => {
                    assert!(
                        result.is_err(),
                        "{name} tcId {id} ({}) is invalid but was ACCEPTED",
                        test["comment"]
                    );
                    outcome.invalid_refused += 1;
                }
                "valid" => match result {
                    Ok(_) => outcome.valid_accepted += 1,
                    Err(e) => {
                        let alg = header_alg(jws);
                        assert!(
                            alg != "RS256" || !algorithms.contains(&Algorithm::RS256),
                            "{name} tcId {id}: valid RS256 case refused: {e}"
                        );
                        outcome
                            .refused_valid
                            .insert(id, format!("{alg}: {}", e.code()));
                    }
                },
                _ => {} // acceptable: either way
            }
        }
    }
    outcome
}

#[test]
fn jws_vectors_under_the_default_policy() {
    let outcome = run_jws_file("json_web_signature_test.json", &[Algorithm::RS256]);
    assert_eq!(outcome.tested, 401);
    assert_eq!(outcome.invalid_refused, 355);
    let expected: Vec<u64> = REFUSED_VALID.iter().map(|(id, _)| *id).collect();
    let refused: Vec<u64> = outcome.refused_valid.keys().copied().collect();
    assert_eq!(
        refused, expected,
        "refused valid cases changed: {:#?}",
        outcome.refused_valid
    );
    assert_eq!(outcome.valid_accepted, 46 - expected.len());
}

#[test]
fn jws_vectors_with_every_algorithm_allowed() {
    let outcome = run_jws_file("json_web_signature_test.json", &Algorithm::ALL);
    assert_eq!(outcome.invalid_refused, 355);
    // With RS384, RS512 and PS256 allowed, their valid cases verify too.
    for (id, reason) in &outcome.refused_valid {
        let alg = reason.split(':').next().unwrap();
        assert!(
            !["RS256", "RS384", "RS512", "PS256"].contains(&alg),
            "tcId {id}: {reason} should verify when allowed"
        );
    }
    assert!(outcome.valid_accepted >= 22, "{}", outcome.valid_accepted);
}

#[test]
fn jwk_vectors() {
    let outcome = run_jws_file("json_web_key_test.json", &[Algorithm::RS256]);
    assert_eq!(outcome.tested, 26);
    let expected: Vec<u64> = REFUSED_VALID_JWK.iter().map(|(id, _)| *id).collect();
    let refused: Vec<u64> = outcome.refused_valid.keys().copied().collect();
    assert_eq!(refused, expected, "{:#?}", outcome.refused_valid);
    assert_eq!(outcome.valid_accepted, 1, "the RS256 key set case");
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Runs a raw RSA signature file through JWK vetting and `VerifyingKey::verify`.
fn run_rsa_file(name: &str, alg: Algorithm) -> (usize, usize) {
    let file = load(name);
    let (mut invalid, mut valid) = (0, 0);
    for group in file["testGroups"].as_array().unwrap() {
        let public = &group["publicKey"];
        let jwk = json!({
            "kty": "RSA",
            "kid": "wycheproof",
            "n": b64(&hex(public["modulus"].as_str().unwrap())),
            "e": b64(&hex(public["publicExponent"].as_str().unwrap())),
        });
        let (set, warnings) = KeySet::from_jwks_values(&[jwk], &[alg]);
        let key = set
            .get("wycheproof")
            .unwrap_or_else(|| panic!("{name}: key refused: {warnings:?}"));
        for test in group["tests"].as_array().unwrap() {
            let id = test["tcId"].as_u64().unwrap();
            let result = key.verify(
                alg,
                &hex(test["msg"].as_str().unwrap()),
                &hex(test["sig"].as_str().unwrap()),
            );
            match test["result"].as_str().unwrap() {
                "invalid" => {
                    assert!(
                        result.is_err(),
                        "{name} tcId {id} ({}) is invalid but was ACCEPTED",
                        test["comment"]
                    );
                    invalid += 1;
                }
                "valid" => {
                    assert!(
                        result.is_ok(),
                        "{name} tcId {id}: valid case refused: {result:?}"
                    );
                    valid += 1;
                }
                _ => {}
            }
        }
    }
    (invalid, valid)
}

#[test]
fn rsa_pkcs1_signature_vectors() {
    let files = [
        (
            "rsa_signature_2048_sha256_test.json",
            Algorithm::RS256,
            249,
            9,
        ),
        (
            "rsa_signature_3072_sha256_test.json",
            Algorithm::RS256,
            250,
            8,
        ),
        (
            "rsa_signature_4096_sha256_test.json",
            Algorithm::RS256,
            250,
            7,
        ),
        (
            "rsa_signature_2048_sha384_test.json",
            Algorithm::RS384,
            250,
            7,
        ),
        (
            "rsa_signature_2048_sha512_test.json",
            Algorithm::RS512,
            250,
            8,
        ),
    ];
    for (name, alg, invalid, valid) in files {
        assert_eq!(run_rsa_file(name, alg), (invalid, valid), "{name}");
    }
}

#[test]
fn rsa_pss_signature_vectors() {
    assert_eq!(
        run_rsa_file("rsa_pss_2048_sha256_mgf1_32_test.json", Algorithm::PS256),
        (45, 63)
    );
}

/// The JWK cases must be refused for the right reason, at key vetting, not by luck later.
#[test]
fn weak_jwks_are_refused_at_vetting_with_the_reason() {
    let file = load("json_web_key_test.json");
    let warning_for = |comment: &str| {
        let group = file["testGroups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["comment"] == comment)
            .unwrap_or_else(|| panic!("no group {comment}"));
        let keys = group["public"]["keys"].as_array().unwrap();
        let (set, warnings) = KeySet::from_jwks_values(keys, &[Algorithm::RS256]);
        assert!(set.is_empty(), "{comment}: key accepted");
        warnings[0].to_string()
    };
    assert!(warning_for("jws_rsa_roca_key").contains("ROCA"));
    assert!(warning_for("keysize_too_small").contains("1024 bits"));
    assert!(warning_for("exponentOne").contains("public exponent"));
}

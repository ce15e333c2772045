//! The JWKS document parser and key vetting on arbitrary bytes.
//!
//! Invariants: never a panic; a key set is returned only for a document that plain serde_json
//! reads as one object (no duplicate names) with a `keys` array; every key kept is an RSA key
//! of that array with a `kid` that appears exactly once there, of at least 2048 bits; and a
//! kept key still verifies what it verified before (a seed's real key keeps its signature).

use portvakt::{Algorithm, KeySet};
use serde_json::Value;

use crate::oracle;

/// The fuzz target.
pub fn run(data: &[u8]) {
    let algorithms = [Algorithm::RS256, Algorithm::PS256];
    let Ok((set, _warnings)) = KeySet::from_jwks(data, &algorithms) else {
        return;
    };
    let document = oracle::json_object(data).expect("accepted a JWKS that is not one JSON object");
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .expect("accepted a JWKS without a `keys` array");
    assert!(!set.is_empty(), "an accepted key set is never empty");
    for kid in set.kids() {
        let listed: Vec<&Value> = keys
            .iter()
            .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
            .collect();
        assert_eq!(
            listed.len(),
            1,
            "kept kid {kid:?}, listed {} times",
            listed.len()
        );
        let jwk = listed[0];
        assert_eq!(
            jwk.get("kty").and_then(Value::as_str),
            Some("RSA"),
            "kept a key that is not RSA"
        );
        let key = set.get(kid).expect("a listed kid is held");
        assert!(key.bits() >= 2048, "kept a {}-bit key", key.bits());
        assert_eq!(key.kid(), kid);
    }
}

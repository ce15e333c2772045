//! The one-pass payload reader against a plain parse (differential).
//!
//! `Claims::from_payload` reads a verified payload in one pass into the typed claims;
//! `Claims::from_map` builds them from a parsed map. Here the map comes from plain serde_json
//! with duplicate names refused (the oracle). Invariants: both accept or both refuse; when both
//! accept, the typed claims and the verbatim claims are the same; when the map is well-formed
//! but its claims are not, both report the same error.

use portvakt::{Claims, ValidationError};

use crate::oracle;

/// The fuzz target.
pub fn run(data: &[u8]) {
    let one_pass = Claims::from_payload(data.to_vec());
    let plain = oracle::json_object(data);
    match (one_pass, plain) {
        (Ok(fast), Some(map)) => {
            let slow = Claims::from_map(map.clone()).unwrap_or_else(|e| {
                panic!("one-pass accepted, from_map refused: {e}");
            });
            assert_eq!(fast.raw(), &map, "the verbatim claims differ");
            assert_same(&fast, &slow);
        }
        (Ok(_), None) => panic!("one-pass accepted what plain serde_json refuses"),
        (Err(ValidationError::BadJson { .. }), None) => {}
        (Err(e), None) => panic!("plain serde_json refuses, one-pass says {e} (not BadJson)"),
        (Err(fast), Some(map)) => match Claims::from_map(map) {
            Ok(_) => panic!("one-pass refused ({fast}), from_map accepted"),
            Err(slow) => assert_eq!(fast.to_string(), slow.to_string(), "different errors"),
        },
    }
}

fn assert_same(fast: &Claims, slow: &Claims) {
    assert_eq!(fast.issuer(), slow.issuer());
    assert_eq!(fast.scopes(), slow.scopes());
    assert_eq!(fast.client_id(), slow.client_id());
    assert_eq!(fast.client_amr(), slow.client_amr());
    assert_eq!(fast.consumer(), slow.consumer());
    assert_eq!(fast.supplier(), slow.supplier());
    assert_eq!(fast.delegation_source(), slow.delegation_source());
    assert_eq!(fast.pid(), slow.pid());
    assert_eq!(fast.authorization_details(), slow.authorization_details());
    assert_eq!(fast.audience(), slow.audience());
    assert_eq!(fast.jti(), slow.jti());
    assert_eq!(fast.issued_at(), slow.issued_at());
    assert_eq!(fast.expires_at(), slow.expires_at());
    assert_eq!(fast.not_before(), slow.not_before());
}

use std::sync::Arc;

use super::*;

// The slots driven directly through `get` and `found_in_shared`, with a token a real validator
// verified; `tests/cache.rs` judges hits through the validator end to end.

fn verified() -> VerifiedToken {
    crate::validator::testing::verified(&["local-1"]).remove(0)
}

#[test]
fn a_token_is_copied_in_on_its_second_time_in_a_row_and_then_found_by_its_exact_bytes() {
    let cache = new_cache_id();
    let token = b"header.payload.signature-aaaaaaaa";
    let fp = fingerprint(token);
    let shared = verified();
    assert!(get(cache, token, fp).is_none());
    found_in_shared(cache, token, fp, &shared);
    assert!(
        get(cache, token, fp).is_none(),
        "copied in after one sighting"
    );
    found_in_shared(cache, token, fp, &shared);
    let copy = get(cache, token, fp).expect("copied in after two");
    // A copy of its own: the same claims, not the shared allocation.
    assert!(!Arc::ptr_eq(&copy.0, &shared.0));
    assert_eq!(copy.claims().jti(), Some("local-1"));
    // Not for another cache, and not for other bytes with the same fingerprint.
    assert!(get(new_cache_id(), token, fp).is_none());
    let mut other = token.to_vec();
    other[0] = b'H';
    assert_eq!(fingerprint(&other), fp);
    assert!(get(cache, &other, fp).is_none());
    remove(cache, token, fp);
    assert!(get(cache, token, fp).is_none());
}

/// Two tokens with the same fingerprint (so the same slot).
fn two_in_one_slot() -> ([u8; 33], [u8; 33], u64) {
    let a = *b"aaaaaa.payload.signature-xxxxxxxx";
    let mut b = a;
    b[0] = b'b';
    (a, b, fingerprint(&a))
}

#[test]
fn a_held_token_in_use_is_not_pushed_out_by_another_in_its_slot() {
    let cache = new_cache_id();
    let (a, b, fp) = two_in_one_slot();
    let shared = verified();
    found_in_shared(cache, &a, fp, &shared);
    found_in_shared(cache, &a, fp, &shared);
    assert!(get(cache, &a, fp).is_some());
    // `b` and `a` take turns: `a` stays, `b` keeps going to the shared cache.
    for _ in 0..5 {
        found_in_shared(cache, &b, fp, &shared);
        assert!(get(cache, &b, fp).is_none());
        assert!(get(cache, &a, fp).is_some());
    }
    // `a` goes quiet: `b` takes the slot on its next two sightings.
    found_in_shared(cache, &b, fp, &shared);
    found_in_shared(cache, &b, fp, &shared);
    assert!(get(cache, &b, fp).is_some());
    assert!(get(cache, &a, fp).is_none());
}

#[test]
fn tokens_that_each_come_back_after_others_passed_their_slot_are_never_copied_in() {
    let cache = new_cache_id();
    let shared = verified();
    let tokens: Vec<Vec<u8>> = (0..4 * SLOTS)
        .map(|i| format!("h.p.signature-{i:08}").into_bytes())
        .collect();
    for _ in 0..3 {
        for token in &tokens {
            found_in_shared(cache, token, fingerprint(token), &shared);
        }
    }
    let held = tokens
        .iter()
        .filter(|t| get(cache, t, fingerprint(t)).is_some())
        .count();
    // Only a token whose slot no other token visited between two of its own visits.
    assert!(held < SLOTS / 4, "{held} of {} copied in", tokens.len());
}

#[test]
fn each_thread_has_slots_of_its_own() {
    let cache = new_cache_id();
    let token = b"header.payload.signature-bbbbbbbb";
    let fp = fingerprint(token);
    let shared = verified();
    found_in_shared(cache, token, fp, &shared);
    found_in_shared(cache, token, fp, &shared);
    assert!(get(cache, token, fp).is_some());
    std::thread::spawn(move || assert!(get(cache, token, fp).is_none()))
        .join()
        .unwrap();
}

#[test]
fn fingerprints_of_short_tokens_and_slots_stay_in_range() {
    for token in [&b""[..], b"a", b"abcdefg", b"abcdefgh", b"abcdefghi"] {
        assert!(slot_of(fingerprint(token)) < SLOTS);
    }
    assert_ne!(fingerprint(b"a"), fingerprint(b"\0a"), "the length counts");
}

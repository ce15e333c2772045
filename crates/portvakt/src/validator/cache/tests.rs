use super::*;
use crate::validator::testing::{self, now};

fn jti(hit: Option<VerifiedToken>) -> Option<String> {
    hit.map(|v| v.claims().jti().unwrap().to_owned())
}

/// Tokens with one fingerprint (the same last eight bytes and length) fall in one bucket of
/// the table; each is found by exactly its own bytes, and one never inserted by none of them.
#[test]
fn tokens_that_share_a_fingerprint_are_told_apart_by_their_bytes() {
    let cache = TokenCache::new(1 << 20).unwrap();
    let [a, b, c, absent] =
        ["aaaa", "bbbb", "cccc", "dddd"].map(|start| format!("{start}.payload.signature-tail0123"));
    let fingerprint = local::fingerprint(a.as_bytes());
    for other in [&b, &c, &absent] {
        assert_eq!(local::fingerprint(other.as_bytes()), fingerprint);
    }
    let verified = testing::verified(&["a", "b", "c"]);
    for (token, verified) in [&a, &b, &c].into_iter().zip(verified) {
        cache.insert(token, verified, now(), 0);
    }
    assert_eq!(cache.len(), 3);
    // Twice each, interleaved: the first from the shared table, later ones maybe from this
    // thread's copies, which are made from what the table returned.
    for _ in 0..2 {
        for (token, want) in [(&a, "a"), (&b, "b"), (&c, "c")] {
            assert_eq!(jti(cache.get(token.as_bytes())).as_deref(), Some(want));
        }
    }
    assert_eq!(jti(cache.get(absent.as_bytes())), None);
    // A prefix or an extension of a cached token is another token.
    assert_eq!(jti(cache.get(&a.as_bytes()[1..])), None);
    assert_eq!(jti(cache.get(format!("{a}x").as_bytes())), None);

    cache.remove(b.as_bytes());
    assert_eq!(jti(cache.get(b.as_bytes())), None);
    assert_eq!(jti(cache.get(a.as_bytes())).as_deref(), Some("a"));
    assert_eq!(jti(cache.get(c.as_bytes())).as_deref(), Some("c"));
    assert_eq!(cache.len(), 2);
}

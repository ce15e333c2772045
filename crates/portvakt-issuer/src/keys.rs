//! The issuer's signing keys: one current key signs, retired keys stay published in the JWKS
//! for a grace period so tokens they signed keep validating, then disappear.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portvakt::SigningKey;
use serde_json::Value;

/// `bytes` random bytes, base64url. aws-lc-rs's system RNG; if it fails (it does not on any
/// supported platform) the time is used so ids stay unique, never a constant.
pub(crate) fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if aws_lc_rs::rand::fill(&mut buf).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8;
        }
    }
    URL_SAFE_NO_PAD.encode(buf)
}

/// A fresh, unique key id: `<prefix>-<unix seconds>-<random>`.
pub(crate) fn new_kid(prefix: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{prefix}-{secs}-{}", random_id(6))
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The key that signs from now on.
    pub new_kid: String,
    /// The key that signed until now; still in the JWKS until `retired_until`.
    pub previous_kid: String,
    /// When the previous key leaves the JWKS.
    pub retired_until: SystemTime,
}

struct Retired {
    key: Arc<SigningKey>,
    until: Instant,
}

pub(crate) struct KeyRing {
    current: Arc<SigningKey>,
    retired: Vec<Retired>,
}

impl KeyRing {
    pub(crate) fn new(key: SigningKey) -> KeyRing {
        KeyRing {
            current: Arc::new(key),
            retired: Vec::new(),
        }
    }

    pub(crate) fn current(&self) -> Arc<SigningKey> {
        Arc::clone(&self.current)
    }

    /// Makes `key` current; the previous key is published until `now + grace`.
    pub(crate) fn install(&mut self, key: SigningKey, grace: Duration, now: Instant) -> Rotation {
        self.prune(now);
        let previous = std::mem::replace(&mut self.current, Arc::new(key));
        let rotation = Rotation {
            new_kid: self.current.kid().to_owned(),
            previous_kid: previous.kid().to_owned(),
            retired_until: SystemTime::now() + grace,
        };
        if !grace.is_zero() {
            self.retired.push(Retired {
                key: previous,
                until: now + grace,
            });
        }
        rotation
    }

    pub(crate) fn prune(&mut self, now: Instant) {
        self.retired.retain(|r| r.until > now);
    }

    /// The published public keys, current first.
    pub(crate) fn public_jwks(&mut self, now: Instant) -> Vec<Value> {
        self.prune(now);
        std::iter::once(&self.current)
            .chain(self.retired.iter().rev().map(|r| &r.key))
            .map(|k| k.public_jwk())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_old_key_for_the_grace_period() {
        let a = SigningKey::generate("a").unwrap();
        let b = SigningKey::generate("b").unwrap();
        let mut ring = KeyRing::new(a);
        let t0 = Instant::now();
        let rotation = ring.install(b, Duration::from_secs(10), t0);
        assert_eq!(
            (rotation.new_kid.as_str(), rotation.previous_kid.as_str()),
            ("b", "a")
        );
        assert_eq!(ring.current().kid(), "b");
        let kids = |ring: &mut KeyRing, at| {
            ring.public_jwks(at)
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(&mut ring, t0 + Duration::from_secs(9)), ["b", "a"]);
        assert_eq!(kids(&mut ring, t0 + Duration::from_secs(10)), ["b"]);
    }

    #[test]
    fn ids_are_unique() {
        assert_ne!(new_kid("x"), new_kid("x"));
        assert_eq!(random_id(16).len(), 22);
    }
}

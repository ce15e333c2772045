//! The issuer's signing keys: one current key signs, retired keys stay published in the JWKS
//! for a grace period so tokens they signed keep validating, then disappear; and, when the
//! issuer announces its keys, the next key is published a whole rotation before it signs.
//!
//! Why announce: a validator that sees an unknown `kid` refetches the JWKS, but rate-limits
//! that refetch so a flood of made-up `kid`s cannot turn into a flood of requests to the
//! issuer. A key that signs the moment it is published can land inside that limit and be
//! refused until the next allowed refetch (portvakt: up to `unknown_kid_interval`, 10 s).
//! A key published before it signs is already held by every validator that refreshed in
//! between. Issuers that rotate with care publish the next key ahead (BankID's OIDC JWKS holds
//! the next, current and previous keys), and this is what the local issuer does when
//! [`IssuerConfig::announce_next`](crate::IssuerConfig::announce_next) is on.

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
    /// Since when the new key has been published: `None` when it signs from the moment it
    /// was published (an unannounced rotation).
    pub announced_since: Option<SystemTime>,
    /// The key announced to sign at the next rotation, published from now on; `None` when the
    /// issuer does not announce its keys.
    pub next_kid: Option<String>,
}

struct Announced {
    key: Arc<SigningKey>,
    since: SystemTime,
}

struct Retired {
    key: Arc<SigningKey>,
    until: Instant,
}

pub(crate) struct KeyRing {
    current: Arc<SigningKey>,
    next: Option<Announced>,
    retired: Vec<Retired>,
}

impl KeyRing {
    pub(crate) fn new(key: SigningKey) -> KeyRing {
        KeyRing {
            current: Arc::new(key),
            next: None,
            retired: Vec::new(),
        }
    }

    pub(crate) fn next_kid(&self) -> Option<String> {
        self.next.as_ref().map(|n| n.key.kid().to_owned())
    }

    /// Publishes `key` as the next key, replacing an earlier announcement (which never
    /// signed, so nothing needs it).
    pub(crate) fn announce(&mut self, key: SigningKey) {
        self.next = Some(Announced {
            key: Arc::new(key),
            since: SystemTime::now(),
        });
    }

    /// Makes the announced key current (see [`install`](Self::install)), or returns `None`
    /// when no key is announced.
    pub(crate) fn promote(&mut self, grace: Duration, now: Instant) -> Option<Rotation> {
        let next = self.next.take()?;
        let mut rotation = self.install_arc(next.key, grace, now);
        rotation.announced_since = Some(next.since);
        Some(rotation)
    }

    pub(crate) fn current(&self) -> Arc<SigningKey> {
        Arc::clone(&self.current)
    }

    /// Makes `key` current; the previous key is published until `now + grace`.
    /// The announced key, if any, stays announced.
    pub(crate) fn install(&mut self, key: SigningKey, grace: Duration, now: Instant) -> Rotation {
        self.install_arc(Arc::new(key), grace, now)
    }

    fn install_arc(&mut self, key: Arc<SigningKey>, grace: Duration, now: Instant) -> Rotation {
        self.prune(now);
        // Cannot overflow: `Issuer::new` bounds `grace` (`MAX_GRACE`, a year). Computed before
        // the key is replaced all the same, so that nothing is half done if it ever did.
        let until = now + grace;
        let retired_until = SystemTime::now() + grace;
        let previous = std::mem::replace(&mut self.current, key);
        let rotation = Rotation {
            new_kid: self.current.kid().to_owned(),
            previous_kid: previous.kid().to_owned(),
            retired_until,
            announced_since: None,
            next_kid: self.next_kid(),
        };
        if !grace.is_zero() {
            self.retired.push(Retired {
                key: previous,
                until,
            });
        }
        rotation
    }

    pub(crate) fn prune(&mut self, now: Instant) {
        self.retired.retain(|r| r.until > now);
    }

    /// The published public keys: current first, then the announced one, then the retired.
    pub(crate) fn public_jwks(&mut self, now: Instant) -> Vec<Value> {
        self.prune(now);
        std::iter::once(&self.current)
            .chain(self.next.iter().map(|n| &n.key))
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
    fn an_announced_key_is_published_before_it_signs() {
        let a = SigningKey::generate("a").unwrap();
        let b = SigningKey::generate("b").unwrap();
        let c = SigningKey::generate("c").unwrap();
        let mut ring = KeyRing::new(a);
        let t0 = Instant::now();
        let kids = |ring: &mut KeyRing| {
            ring.public_jwks(t0)
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert!(ring.promote(Duration::from_secs(10), t0).is_none());
        ring.announce(b);
        assert_eq!(ring.current().kid(), "a", "announcing does not sign");
        assert_eq!(kids(&mut ring), ["a", "b"]);

        let rotation = ring.promote(Duration::from_secs(10), t0).unwrap();
        assert_eq!(
            (rotation.new_kid.as_str(), rotation.previous_kid.as_str()),
            ("b", "a")
        );
        assert!(rotation.announced_since.is_some());
        assert_eq!(rotation.next_kid, None);
        assert_eq!(ring.current().kid(), "b");
        assert_eq!(kids(&mut ring), ["b", "a"]);

        // An unannounced key signs at once; an announcement made before it stays.
        ring.announce(SigningKey::generate("d").unwrap());
        let rotation = ring.install(c, Duration::from_secs(10), t0);
        assert_eq!(rotation.announced_since, None);
        assert_eq!(rotation.next_kid.as_deref(), Some("d"));
        assert_eq!(kids(&mut ring), ["c", "d", "b", "a"]);
    }

    #[test]
    fn ids_are_unique() {
        assert_ne!(new_kid("x"), new_kid("x"));
        assert_eq!(random_id(16).len(), 22);
    }
}

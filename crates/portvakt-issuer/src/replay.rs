//! Used assertion ids (`jti`), remembered until the assertion expires: a grant cannot be
//! reused. Memory is bounded: expired entries are dropped, and when the table is full of live
//! entries new assertions are refused rather than admitted unchecked.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// At most this many live assertion ids. Assertions live at most 120 s, so this allows over
/// 800 grants per second before the issuer starts refusing.
pub(crate) const DEFAULT_CAPACITY: usize = 100_000;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReplayError {
    /// The id was seen before.
    Reused,
    /// Too many live ids to remember another.
    Full,
}

pub(crate) struct ReplayCache {
    seen: Mutex<HashMap<(String, String), i64>>,
    capacity: usize,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Remembers `(client_id, jti)` until `exp`; fails if it is already remembered.
    pub(crate) fn remember(
        &self,
        client_id: &str,
        jti: &str,
        exp: i64,
        now: i64,
    ) -> Result<(), ReplayError> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (client_id.to_owned(), jti.to_owned());
        if let Some(until) = seen.get(&key)
            && *until >= now
        {
            return Err(ReplayError::Reused);
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= self.capacity {
                return Err(ReplayError::Full);
            }
        }
        seen.insert(key, exp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_is_refused_until_expiry_and_memory_is_bounded() {
        let cache = ReplayCache::new(2);
        assert_eq!(cache.remember("c", "1", 100, 0), Ok(()));
        assert_eq!(cache.remember("c", "1", 100, 50), Err(ReplayError::Reused));
        assert_eq!(cache.remember("d", "1", 100, 50), Ok(()));
        assert_eq!(cache.remember("c", "2", 100, 50), Err(ReplayError::Full));
        // Once the first two expire they are pruned.
        assert_eq!(cache.remember("c", "2", 300, 101), Ok(()));
        assert_eq!(cache.remember("c", "1", 300, 101), Ok(()));
    }
}

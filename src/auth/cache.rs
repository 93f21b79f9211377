//! Remembers tokens already verified, until they expire, so that a caller's repeated calls skip
//! the signature check (an ES256 verification costs a few hundred microseconds; a lookup, one).
//!
//! Only successes are kept, keyed by the whole token, and only until the token's own `exp` plus
//! the issuer's leeway (as long as verification would accept it). Each
//! entry is stamped with its issuer and the generation of that issuer's keys: once the keys
//! change (a rotation removed one), the token is verified again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Caller;

/// The most tokens kept; when full, expired entries go, and if none had expired, all of them.
const CAPACITY: usize = 4096;

/// Which issuer verified a token, and under which generation of its keys.
pub type Stamp = (usize, u64);

struct Entry {
    caller: Arc<Caller>,
    stamp: Stamp,
    /// The token's `exp`, in seconds since the epoch.
    expires: i64,
}

#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

impl TokenCache {
    /// The caller a token was verified as, if it was and has not expired by `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<(Arc<Caller>, Stamp)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(token)
            .filter(|entry| now < entry.expires)
            .map(|entry| (Arc::clone(&entry.caller), entry.stamp))
    }

    /// Remembers a verified token until `expires`.
    pub fn insert(&self, token: &str, caller: Arc<Caller>, expires: i64, now: i64, stamp: Stamp) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, entry| now < entry.expires);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            token.into(),
            Entry {
                caller,
                stamp,
                expires,
            },
        );
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(name: &str) -> Arc<Caller> {
        Arc::new(Caller {
            username: name.to_owned(),
            groups: Vec::new(),
            tenant: "t".to_owned(),
            ..Caller::default()
        })
    }

    #[test]
    fn entries_live_until_the_token_expires() {
        let cache = TokenCache::default();
        cache.insert("token-a", caller("alice"), 1_000, 900, (0, 0));
        assert_eq!(
            cache.get("token-a", 999).map(|(c, _)| c.username.clone()),
            Some("alice".into())
        );
        assert!(cache.get("token-a", 1_000).is_none(), "expired at exp");
        assert!(cache.get("token-b", 900).is_none());
        assert!(
            cache.get("token-", 900).is_none(),
            "the whole token is the key"
        );
    }

    #[test]
    fn a_full_cache_stays_bounded() {
        let cache = TokenCache::default();
        for i in 0..CAPACITY {
            cache.insert(&format!("old-{i}"), caller("a"), 100, 0, (0, 0));
        }
        cache.insert("fresh", caller("b"), 10_000, 200, (0, 0));
        assert_eq!(cache.len(), 1, "expired entries were dropped to make room");
        for i in 0..CAPACITY {
            cache.insert(&format!("live-{i}"), caller("a"), 10_000, 200, (0, 0));
        }
        assert!(cache.len() <= CAPACITY);
    }
}

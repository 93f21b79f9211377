//! Remembers tokens already verified, until they expire, so that a caller's repeated calls skip
//! the signature check (an ES256 verification costs a few hundred microseconds; a lookup, one).
//!
//! Only successes are kept, keyed by the whole token, and only until the token's own `exp` plus
//! the issuer's leeway (as long as verification would accept it). Each
//! entry is stamped with its issuer and the generation of that issuer's keys: once the keys
//! change (a rotation removed one), the token is verified again.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use super::Caller;

/// The most tokens kept; when full, the one used least recently goes (an expired one is dropped
/// when next looked up). About 1.5 KiB an entry: a token and its caller.
const CAPACITY: NonZeroUsize = NonZeroUsize::new(4096).expect("non-zero");

/// Which issuer verified a token, and under which generation of its keys.
pub type Stamp = (usize, u64);

struct Entry {
    caller: Arc<Caller>,
    stamp: Stamp,
    /// The token's `exp`, in seconds since the epoch.
    expires: i64,
}

pub struct TokenCache {
    entries: Mutex<LruCache<Box<str>, Entry>>,
}

impl Default for TokenCache {
    fn default() -> TokenCache {
        TokenCache {
            entries: Mutex::new(LruCache::new(CAPACITY)),
        }
    }
}

impl TokenCache {
    /// The caller a token was verified as, if it was and has not expired by `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<(Arc<Caller>, Stamp)> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(token)?;
        if now < entry.expires {
            return Some((Arc::clone(&entry.caller), entry.stamp));
        }
        entries.pop(token);
        None
    }

    /// Remembers a verified token until `expires`, making room by forgetting the token used
    /// least recently.
    pub fn insert(&self, token: &str, caller: Arc<Caller>, expires: i64, now: i64, stamp: Stamp) {
        if now >= expires {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.put(
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
    fn a_full_cache_forgets_the_token_used_least_recently_and_no_other() {
        let cache = TokenCache::default();
        let capacity = CAPACITY.get();
        for i in 0..capacity {
            cache.insert(&format!("t-{i}"), caller("a"), 10_000, 0, (0, 0));
        }
        // t-0 is used again, so t-1 is now the least recently used.
        assert!(cache.get("t-0", 1).is_some());
        cache.insert("fresh", caller("b"), 10_000, 1, (0, 0));
        assert_eq!(cache.len(), capacity, "one entry made room, not all");
        assert!(
            cache.get("t-1", 1).is_none(),
            "the least recently used went"
        );
        assert!(cache.get("t-0", 1).is_some());
        assert!(cache.get("fresh", 1).is_some());
        assert!(cache.get(&format!("t-{}", capacity - 1), 1).is_some());
        for i in 0..3 * capacity {
            cache.insert(&format!("more-{i}"), caller("a"), 10_000, 1, (0, 0));
        }
        assert_eq!(cache.len(), capacity);
    }

    #[test]
    fn an_expired_token_is_dropped_when_looked_up_and_never_stored() {
        let cache = TokenCache::default();
        cache.insert("old", caller("a"), 100, 200, (0, 0));
        assert_eq!(cache.len(), 0, "already expired: not stored");
        cache.insert("soon", caller("a"), 300, 200, (0, 0));
        assert!(cache.get("soon", 300).is_none());
        assert_eq!(cache.len(), 0, "dropped once seen expired");
    }
}

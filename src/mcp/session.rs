//! MCP sessions of the initialize revisions, as tokens any replica can check: a session id is
//! the session's facts (its owner, as a hash; its protocol version; when it expires) signed with
//! a key every replica shares (`[mcp] session_key_file`), so a session opened on one kubegate is
//! honoured by another behind the same Service without sticky routing, and refused, as an
//! unknown session, for any other caller or after it expires.
//!
//! Ending a session (`DELETE`) is remembered by the replica that ended it until the session
//! would have expired; other replicas honour the id until then. Without a configured key, each
//! process makes its own, and sessions do not outlive it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// How long a session lives unless configured.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Ended sessions remembered at most; beyond, the expired ones are forgotten, then the one that
/// expires first.
const MAX_ENDED: usize = 100_000;
/// Marks (and versions) a session id.
const PREFIX: &str = "s1.";
/// The capability field of a session whose client can answer `sampling/createMessage`.
const SAMPLING: &str = "sampling";

/// A live session's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    pub version: String,
    /// The client can answer `sampling/createMessage`.
    pub sampling: bool,
}

/// Why the session key could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SessionKeyError {
    #[error("cannot read the session key {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the session key {0} holds fewer than 32 bytes (whitespace around it is not counted); make \
         one with `head -c 48 /dev/urandom | base64 > {0}`"
    )]
    Short(std::path::PathBuf),
    #[error("the system's random source failed, so no session key could be made")]
    Random,
}

/// The sessions: the key that signs them, and the ones ended here.
pub struct Sessions {
    key: hmac::Key,
    lifetime: Duration,
    ended: Mutex<HashMap<String, i64>>,
}

impl Sessions {
    /// Sessions signed with the key in `key_file` (shared by replicas), or with a key of this
    /// process's own.
    pub fn new(key_file: Option<&Path>, lifetime: Duration) -> Result<Sessions, SessionKeyError> {
        let secret = match key_file {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|source| SessionKeyError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let bytes = bytes.trim_ascii().to_vec();
                if bytes.len() < 32 {
                    return Err(SessionKeyError::Short(path.to_owned()));
                }
                bytes
            }
            None => {
                let mut bytes = vec![0u8; 32];
                SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| SessionKeyError::Random)?;
                bytes
            }
        };
        Ok(Sessions {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            lifetime,
            ended: Mutex::new(HashMap::new()),
        })
    }

    /// Opens a session for `owner` at `protocol_version` and returns its id. `sampling`: the
    /// client said in `initialize` that it can answer `sampling/createMessage`.
    pub fn open(&self, owner: &str, protocol_version: &str, sampling: bool) -> String {
        let expires = now() + i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        let mut nonce = [0u8; 12];
        // A failed random source leaves a zero nonce: ids still differ by their expiry, and
        // nothing secret rests on the nonce.
        let _ = SystemRandom::new().fill(&mut nonce);
        let facts = format!(
            "{}|{protocol_version}|{expires}|{}|{}",
            owner_hash(owner),
            URL_SAFE_NO_PAD.encode(nonce),
            if sampling { SAMPLING } else { "" }
        );
        let tag = hmac::sign(&self.key, facts.as_bytes());
        format!(
            "{PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(facts),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// The protocol version of `owner`'s live session `id`; `None` if the id is not one kubegate
    /// signed, it expired or was ended here, or it belongs to someone else (a session id is not
    /// a credential).
    pub fn resume(&self, id: &str, owner: &str) -> Option<String> {
        self.resume_session(id, owner).map(|s| s.version)
    }

    /// What `owner`'s live session `id` knows: its version and the client's capabilities.
    pub fn resume_session(&self, id: &str, owner: &str) -> Option<Resumed> {
        let (resumed, expires) = self.verify(id, owner)?;
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        (!ended.contains_key(id) && now() < expires).then_some(resumed)
    }

    /// Ends `owner`'s session `id`; whether there was one.
    pub fn end(&self, id: &str, owner: &str) -> bool {
        let Some((_, expires)) = self.verify(id, owner) else {
            return false;
        };
        let now = now();
        if now >= expires {
            return false;
        }
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if ended.len() >= MAX_ENDED {
            ended.retain(|_, until| *until > now);
        }
        if ended.len() >= MAX_ENDED {
            // Forgetting an ended session lets its id work again until it expires: forget the
            // one that expires first, never all of them.
            let first = ended
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(id, _)| id.clone());
            if let Some(first) = first {
                ended.remove(&first);
            }
        }
        ended.insert(id.to_owned(), expires).is_none()
    }

    /// The facts and expiry of a session id signed by this key for `owner`.
    fn verify(&self, id: &str, owner: &str) -> Option<(Resumed, i64)> {
        let (encoded_facts, encoded_tag) = id.strip_prefix(PREFIX)?.split_once('.')?;
        let facts = URL_SAFE_NO_PAD.decode(encoded_facts).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(encoded_tag).ok()?;
        // One spelling per session: an id re-encoded differently is not the same id.
        if URL_SAFE_NO_PAD.encode(&facts) != encoded_facts
            || URL_SAFE_NO_PAD.encode(&tag) != encoded_tag
        {
            return None;
        }
        hmac::verify(&self.key, &facts, &tag).ok()?;
        let facts = String::from_utf8(facts).ok()?;
        let mut parts = facts.split('|');
        let (hash, version, expires) = (parts.next()?, parts.next()?, parts.next()?);
        if hash != owner_hash(owner) {
            return None;
        }
        // Ids made before capabilities were kept end after the nonce.
        let _nonce = parts.next();
        let sampling = parts.next() == Some(SAMPLING);
        Some((
            Resumed {
                version: version.to_owned(),
                sampling,
            },
            expires.parse().ok()?,
        ))
    }
}

/// A short hash of the owner's name: the id names its owner without showing who that is.
fn owner_hash(owner: &str) -> String {
    let digest = Sha256::digest(owner.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sessions() -> Sessions {
        Sessions::new(None, DEFAULT_LIFETIME).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_session_belongs_to_its_owner_and_ends_when_asked() {
        let sessions = sessions();
        let id = sessions.open("alice", "2025-06-18", false);
        assert!(
            id.bytes().all(|b| (0x21..0x7f).contains(&b)),
            "visible ASCII: {id}"
        );
        assert!(!id.contains("alice"));
        assert_eq!(sessions.resume(&id, "alice").as_deref(), Some("2025-06-18"));
        assert_eq!(
            sessions.resume(&id, "bob"),
            None,
            "another caller cannot use it"
        );
        assert!(!sessions.end(&id, "bob"));
        assert!(sessions.end(&id, "alice"));
        assert_eq!(sessions.resume(&id, "alice"), None);
        assert!(!sessions.end(&id, "alice"), "ended once");
    }

    #[test]
    fn a_full_memory_of_ended_sessions_forgets_one_not_all() {
        let sessions = sessions();
        let ids: Vec<String> = (0..MAX_ENDED)
            .map(|_| sessions.open("alice", "2025-06-18", false))
            .collect();
        for id in &ids {
            assert!(sessions.end(id, "alice"));
        }
        let last = sessions.open("alice", "2025-06-18", false);
        assert!(sessions.end(&last, "alice"));
        assert_eq!(sessions.resume(&last, "alice"), None);
        let revived = ids
            .iter()
            .filter(|id| sessions.resume(id, "alice").is_some())
            .count();
        assert_eq!(
            revived, 1,
            "one ended session made room, the others stay ended"
        );
    }

    #[test]
    fn replicas_sharing_a_key_honour_each_others_sessions_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let key = dir.path().join("session.key");
        std::fs::write(&key, [7u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        let one = Sessions::new(Some(&key), DEFAULT_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
        let two = Sessions::new(Some(&key), DEFAULT_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
        let id = one.open("alice", "2025-11-25", true);
        assert_eq!(two.resume(&id, "alice").as_deref(), Some("2025-11-25"));
        // What the client can do travels in the id, so every replica knows it.
        assert_eq!(
            two.resume_session(&id, "alice"),
            Some(Resumed {
                version: "2025-11-25".into(),
                sampling: true
            })
        );
        let plain = one.open("alice", "2025-11-25", false);
        assert_eq!(
            two.resume_session(&plain, "alice").map(|s| s.sampling),
            Some(false)
        );
        assert_eq!(sessions().resume(&id, "alice"), None, "another key");
        std::fs::write(&key, b"short").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            Sessions::new(Some(&key), DEFAULT_LIFETIME),
            Err(SessionKeyError::Short(_))
        ));
    }

    #[test]
    fn an_expired_session_is_unknown() {
        let sessions = Sessions::new(None, Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
        let id = sessions.open("alice", "2025-06-18", false);
        assert_eq!(sessions.resume(&id, "alice"), None);
    }

    proptest! {
        #[test]
        fn forged_or_altered_ids_are_unknown(junk in "[ -~]{0,120}", flip in 0usize..200) {
            let sessions = sessions();
            prop_assert_eq!(sessions.resume(&junk, "alice"), None);
            let id = sessions.open("alice", "2025-06-18", false);
            let mut bytes = id.clone().into_bytes();
            let at = flip % bytes.len();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap_or_default();
            if altered != id {
                prop_assert_eq!(sessions.resume(&altered, "alice"), None);
            }
        }
    }
}

//! Keeps MCP sessions: each is bound to the caller who opened it and the protocol version it
//! negotiated, and ends after an idle timeout or on the client's `DELETE`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long an idle session lives.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// At most this many live sessions; beyond it, the least recently used ends.
pub const MAX_SESSIONS: usize = 10_000;
/// At most this many live sessions per caller; beyond it, their least recently used ends, so
/// one caller cannot push everyone else's sessions out.
pub const MAX_SESSIONS_PER_CALLER: usize = 32;

struct Session {
    owner: String,
    protocol_version: String,
    last_seen: Instant,
}

/// The live sessions.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for `owner` and returns its id (random, unguessable).
    pub fn open(&self, owner: &str, protocol_version: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let owned: Vec<(&String, &Session)> =
            live.iter().filter(|(_, s)| s.owner == owner).collect();
        if owned.len() >= MAX_SESSIONS_PER_CALLER
            && let Some(oldest) = least_recent(owned)
        {
            live.remove(&oldest);
        }
        if live.len() >= MAX_SESSIONS {
            live.retain(|_, s| now.duration_since(s.last_seen) < IDLE_TIMEOUT);
            if live.len() >= MAX_SESSIONS
                && let Some(oldest) = least_recent(live.iter().collect())
            {
                live.remove(&oldest);
            }
        }
        live.insert(
            id.clone(),
            Session {
                owner: owner.to_owned(),
                protocol_version: protocol_version.to_owned(),
                last_seen: now,
            },
        );
        id
    }

    /// The protocol version of `owner`'s live session `id`; `None` if there is no such session,
    /// it expired, or it belongs to someone else (a session id is not a credential).
    pub fn resume(&self, id: &str, owner: &str) -> Option<String> {
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let session = live.get_mut(id)?;
        if session.owner != owner {
            return None;
        }
        if now.duration_since(session.last_seen) >= IDLE_TIMEOUT {
            live.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.protocol_version.clone())
    }

    /// Ends `owner`'s session `id`; whether there was one.
    pub fn end(&self, id: &str, owner: &str) -> bool {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        match live.get(id) {
            Some(session) if session.owner == owner => live.remove(id).is_some(),
            _ => false,
        }
    }
}

fn least_recent(sessions: Vec<(&String, &Session)>) -> Option<String> {
    sessions
        .into_iter()
        .min_by_key(|(_, s)| s.last_seen)
        .map(|(id, _)| id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sessions_belong_to_their_owner_and_expire_when_idle() {
        let sessions = Sessions::default();
        let id = sessions.open("alice", "2025-06-18");
        assert_eq!(sessions.resume(&id, "alice").as_deref(), Some("2025-06-18"));
        assert_eq!(
            sessions.resume(&id, "bob"),
            None,
            "another caller cannot use it"
        );
        assert!(!sessions.end(&id, "bob"));

        tokio::time::advance(IDLE_TIMEOUT - Duration::from_secs(1)).await;
        assert!(
            sessions.resume(&id, "alice").is_some(),
            "use keeps it alive"
        );
        tokio::time::advance(IDLE_TIMEOUT).await;
        assert_eq!(sessions.resume(&id, "alice"), None, "idle too long");
    }

    #[tokio::test]
    async fn ending_a_session_removes_it() {
        let sessions = Sessions::default();
        let id = sessions.open("alice", "2025-03-26");
        assert!(sessions.end(&id, "alice"));
        assert_eq!(sessions.resume(&id, "alice"), None);
        assert!(!sessions.end(&id, "alice"));
    }

    #[tokio::test(start_paused = true)]
    async fn one_caller_cannot_push_out_anothers_sessions() {
        let sessions = Sessions::default();
        let bobs = sessions.open("bob", "2025-06-18");
        tokio::time::advance(Duration::from_secs(1)).await;
        let first = sessions.open("mallory", "2025-06-18");
        for _ in 0..MAX_SESSIONS_PER_CALLER * 3 {
            tokio::time::advance(Duration::from_millis(1)).await;
            sessions.open("mallory", "2025-06-18");
        }
        assert!(
            sessions.resume(&bobs, "bob").is_some(),
            "bob's session survives"
        );
        assert!(
            sessions.resume(&first, "mallory").is_none(),
            "mallory's oldest went"
        );
        let live = sessions.live.lock().map(|l| l.len()).unwrap_or(0);
        assert_eq!(live, MAX_SESSIONS_PER_CALLER + 1);
    }
}

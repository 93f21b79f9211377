//! Remembers the requests in flight, by caller and request id, so that a client's
//! `notifications/cancelled` can stop one of its own: a call that changes nothing is then
//! abandoned (its Kubernetes request dropped), and recorded as cancelled. A call that changes
//! the cluster runs to its end once it has begun, and is recorded as what it did.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Requests tracked at most; beyond, new ones are not cancellable (they still run).
const MAX_TRACKED: usize = 100_000;

/// The requests in flight.
#[derive(Default)]
pub struct InFlight {
    requests: Mutex<HashMap<(String, String), CancellationToken>>,
}

/// A request's place in [`InFlight`]; leaving it (drop) forgets the request.
pub struct Tracked<'a> {
    inflight: &'a InFlight,
    key: Option<(String, String)>,
}

impl InFlight {
    /// Tracks `caller`'s request `id`, cancelled when `token` is.
    pub fn track(&self, caller: &str, id: &Value, token: &CancellationToken) -> Tracked<'_> {
        let key = (caller.to_owned(), id.to_string());
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if requests.len() >= MAX_TRACKED {
            return Tracked {
                inflight: self,
                key: None,
            };
        }
        requests.insert(key.clone(), token.clone());
        Tracked {
            inflight: self,
            key: Some(key),
        }
    }

    /// Cancels `caller`'s request `id`, if it is in flight; whether it was.
    pub fn cancel(&self, caller: &str, id: &Value) -> bool {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        match requests.get(&(caller.to_owned(), id.to_string())) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.inflight
                .requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_caller_cancels_only_their_own_requests_in_flight() {
        let inflight = InFlight::default();
        let token = CancellationToken::new();
        let tracked = inflight.track("alice", &json!(7), &token);
        assert!(
            !inflight.cancel("bob", &json!(7)),
            "bob cannot cancel alice's request"
        );
        assert!(!token.is_cancelled());
        assert!(
            !inflight.cancel("alice", &json!("7")),
            "ids are compared as sent"
        );
        assert!(inflight.cancel("alice", &json!(7)));
        assert!(token.is_cancelled());
        drop(tracked);
        assert!(
            !inflight.cancel("alice", &json!(7)),
            "a finished request is forgotten"
        );
    }
}

//! Lets a running call talk back to its client while the client waits for the answer: progress
//! notifications (when the request carried a `progressToken`) and requests such as
//! `sampling/createMessage` (when the client said in `initialize` it can sample). Messages go
//! out on the request's own response stream (Streamable HTTP answers with an event stream as
//! soon as a call has something to send); the client's answer to a request comes back as a
//! JSON-RPC response in a later POST, which [`Peers::answer`] hands to the waiting call.
//!
//! An answer is taken only from the caller the request went to, and only once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// Messages queued for one response stream before the call waits for the client to read.
pub const QUEUED: usize = 32;
/// The most requests waiting for their clients' answers, across callers.
const MAX_PENDING: usize = 4096;

/// A client's answer: its `result`, or its `error`.
type Answer = Result<Value, Value>;

/// The requests kubegate sent to clients and waits on.
#[derive(Default)]
pub struct Peers {
    /// By (caller, request id).
    pending: Mutex<HashMap<(String, String), oneshot::Sender<Answer>>>,
    next: AtomicU64,
}

/// Why a request to the client got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(
        "the client cannot answer {0} (it did not offer the capability, or its transport cannot carry it)"
    )]
    NotOffered(&'static str),
    #[error("the client's stream closed before the request could be sent")]
    Closed,
    #[error("the client did not answer within {0} s")]
    Timeout(u64),
    #[error("the client refused: {0}")]
    Refused(String),
    #[error("too many requests are waiting for their clients")]
    Busy,
}

impl Peers {
    /// Hands a client's JSON-RPC response to the call waiting for it; whether one was.
    pub fn answer(&self, owner: &str, id: &Value, outcome: Answer) -> bool {
        let Some(id) = id_key(id) else { return false };
        let waiting = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(owner.to_owned(), id));
        match waiting {
            Some(sender) => sender.send(outcome).is_ok(),
            None => false,
        }
    }

    fn register(&self, owner: &str) -> Result<(String, oneshot::Receiver<Answer>), PeerError> {
        let id = format!("kubegate-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (sender, receiver) = oneshot::channel();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() >= MAX_PENDING {
            pending.retain(|_, s| !s.is_closed());
            if pending.len() >= MAX_PENDING {
                return Err(PeerError::Busy);
            }
        }
        pending.insert((owner.to_owned(), id.clone()), sender);
        Ok((id, receiver))
    }

    fn forget(&self, owner: &str, id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(owner.to_owned(), id.to_owned()));
    }
}

/// Request ids as kubegate makes them are strings; a number never matches one.
fn id_key(id: &Value) -> Option<String> {
    id.as_str().map(str::to_owned)
}

/// The client of one request in flight, as a running call reaches it.
pub struct Peer<'a> {
    pub(crate) peers: &'a Peers,
    pub(crate) owner: String,
    pub(crate) out: mpsc::Sender<String>,
    /// The client offered `sampling` in `initialize`.
    pub(crate) sampling: bool,
    /// The request's `_meta.progressToken`, if it asked for progress.
    pub(crate) progress_token: Option<Value>,
}

impl Peer<'_> {
    /// Whether the client can answer `sampling/createMessage`.
    pub fn can_sample(&self) -> bool {
        self.sampling
    }

    /// Tells the client how far the call has come, if it asked to know.
    pub async fn progress(&self, progress: u64, total: Option<u64>, message: &str) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut params = json!({"progressToken": token, "progress": progress, "message": message});
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        let note = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": params});
        // Progress is advisory: a full queue drops it rather than hold up the call.
        let _ = self.out.try_send(note.to_string());
    }

    /// Asks the client `sampling/createMessage` and waits for its answer's `result`.
    pub async fn sample(&self, params: Value, timeout: Duration) -> Result<Value, PeerError> {
        if !self.sampling {
            return Err(PeerError::NotOffered("sampling/createMessage"));
        }
        self.request("sampling/createMessage", params, timeout)
            .await
    }

    async fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, PeerError> {
        let (id, answer) = self.peers.register(&self.owner)?;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let sent = tokio::time::timeout(timeout, self.out.send(message.to_string())).await;
        if !matches!(sent, Ok(Ok(()))) {
            self.peers.forget(&self.owner, &id);
            return Err(PeerError::Closed);
        }
        let outcome = tokio::time::timeout(timeout, answer).await;
        self.peers.forget(&self.owner, &id);
        match outcome {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(error))) => Err(PeerError::Refused(
                error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .chars()
                    .take(300)
                    .collect(),
            )),
            Ok(Err(_)) => Err(PeerError::Closed),
            Err(_) => Err(PeerError::Timeout(timeout.as_secs())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_reaches_only_the_request_of_its_own_caller() {
        let peers = Peers::default();
        let (out, mut sent) = mpsc::channel(4);
        let peer = Peer {
            peers: &peers,
            owner: "alice".into(),
            out,
            sampling: true,
            progress_token: None,
        };
        let ask = peer.sample(json!({"messages": []}), Duration::from_secs(5));
        let answer = async {
            let request: Value =
                serde_json::from_str(&sent.recv().await.unwrap_or_default()).unwrap_or_default();
            assert_eq!(request["method"], "sampling/createMessage");
            let id = request["id"].clone();
            assert!(
                !peers.answer("mallory", &id, Ok(json!({"forged": true}))),
                "another caller"
            );
            assert!(peers.answer("alice", &id, Ok(json!({"content": {"text": "hi"}}))));
            assert!(!peers.answer("alice", &id, Ok(json!({}))), "answered once");
        };
        let (result, ()) = tokio::join!(ask, answer);
        assert_eq!(result.ok(), Some(json!({"content": {"text": "hi"}})));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_answers_times_out_and_one_that_cannot_is_not_asked() {
        let peers = Peers::default();
        let (out, _sent) = mpsc::channel(4);
        let mut peer = Peer {
            peers: &peers,
            owner: "alice".into(),
            out,
            sampling: true,
            progress_token: None,
        };
        let result = peer.sample(json!({}), Duration::from_secs(30)).await;
        assert!(matches!(result, Err(PeerError::Timeout(30))), "{result:?}");
        assert!(peers.pending.lock().map(|p| p.is_empty()).unwrap_or(false));
        peer.sampling = false;
        let result = peer.sample(json!({}), Duration::from_secs(30)).await;
        assert!(
            matches!(result, Err(PeerError::NotOffered(_))),
            "{result:?}"
        );
    }
}

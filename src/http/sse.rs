//! The legacy HTTP+SSE transport (MCP 2024-11-05), as mcp-server-kubernetes serves it with
//! `ENABLE_UNSAFE_SSE_TRANSPORT`: `GET /sse` opens an event stream whose first event names the
//! endpoint (`/messages?sessionId=…`); each `POST` there is answered `202 Accepted` and its
//! JSON-RPC response arrives on the stream as an `event: message`.
//!
//! Unlike mcp-server-kubernetes's, kubegate's is behind the same TLS and tokens as everything
//! else: opening a stream needs a valid token, and a stream belongs to the caller who opened
//! it (another caller's `POST` to it is answered 404, as an unknown stream). A stream lives on
//! the replica that opened it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::Body;
use super::limits::{KeySlot, PerKey};

/// Streams one caller may have open at once.
const STREAMS_PER_CALLER: usize = 8;
/// Events queued for a stream whose client reads slowly; beyond, the stream is closed.
const QUEUED_EVENTS: usize = 64;
/// A comment sent this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The open streams, by id.
pub struct SseStreams {
    streams: Arc<Mutex<HashMap<String, Arc<SseStream>>>>,
    per_caller: PerKey<String>,
}

/// One open stream.
pub struct SseStream {
    owner: String,
    sender: mpsc::Sender<Bytes>,
    /// The protocol version its `initialize` negotiated.
    version: Mutex<Option<String>>,
    _slot: KeySlot<String>,
}

impl Default for SseStreams {
    fn default() -> Self {
        SseStreams {
            streams: Arc::new(Mutex::new(HashMap::new())),
            per_caller: PerKey::new(STREAMS_PER_CALLER),
        }
    }
}

impl SseStreams {
    /// Opens a stream for `owner`: its id and the body to answer `GET /sse` with. `None` if
    /// they have too many open.
    pub fn open(&self, owner: &str) -> Option<(String, Body)> {
        let slot = self.per_caller.try_take(&owner.to_owned())?;
        let id = uuid::Uuid::new_v4().to_string();
        let (sender, receiver) = mpsc::channel(QUEUED_EVENTS);
        let endpoint = event("endpoint", &format!("/messages?sessionId={id}"));
        // The queue is empty: the first event always fits.
        let _ = sender.try_send(endpoint);
        let stream = Arc::new(SseStream {
            owner: owner.to_owned(),
            sender: sender.clone(),
            version: Mutex::new(None),
            _slot: slot,
        });
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), stream);
        // Keep-alive comments; the first that cannot be sent (the client is gone) ends the
        // stream here too.
        let streams = Arc::clone(&self.streams);
        let keep_id = id.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(KEEP_ALIVE);
            every.tick().await;
            loop {
                every.tick().await;
                if sender
                    .send(Bytes::from_static(b": keep-alive\n\n"))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&keep_id);
        });
        Some((id, body(receiver)))
    }

    /// `owner`'s open stream `id`, if there is one.
    pub fn get(&self, id: &str, owner: &str) -> Option<Arc<SseStream>> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let stream = streams.get(id)?;
        if stream.sender.is_closed() {
            // Its client went away: the stream ends, and its caller's slot comes back.
            streams.remove(id);
            return None;
        }
        (stream.owner == owner).then(|| Arc::clone(stream))
    }
}

impl SseStream {
    /// The protocol version the stream's `initialize` negotiated, if it has run.
    pub fn version(&self) -> Option<String> {
        self.version
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_version(&self, version: String) {
        *self.version.lock().unwrap_or_else(|e| e.into_inner()) = Some(version);
    }

    /// Sends a JSON-RPC message as an `event: message`; whether the stream took it (a client
    /// that reads too slowly loses its stream).
    pub fn send(&self, message: &str) -> bool {
        self.sender.try_send(event("message", message)).is_ok()
    }
}

/// One event: its name and its data, on one line (JSON-RPC messages are encoded compactly).
pub(super) fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!(
        "event: {name}\ndata: {}\n\n",
        data.replace('\n', " ")
    ))
}

pub(super) fn body(receiver: mpsc::Receiver<Bytes>) -> Body {
    let frames = futures::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), receiver))
    });
    StreamBody::new(frames).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_starts_with_its_endpoint_and_belongs_to_its_owner() {
        let streams = SseStreams::default();
        let (id, body) = streams
            .open("alice")
            .unwrap_or_else(|| unreachable!("alice has no stream yet"));
        assert!(
            streams.get(&id, "bob").is_none(),
            "another caller cannot post to it"
        );
        let stream = streams
            .get(&id, "alice")
            .unwrap_or_else(|| panic!("alice's stream"));
        assert!(stream.send(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#));
        drop(stream);
        let mut body = body;
        let first = body
            .frame()
            .await
            .and_then(|f| f.ok())
            .and_then(|f| f.into_data().ok());
        assert_eq!(
            first,
            Some(Bytes::from(format!(
                "event: endpoint\ndata: /messages?sessionId={id}\n\n"
            )))
        );
        let second = body
            .frame()
            .await
            .and_then(|f| f.ok())
            .and_then(|f| f.into_data().ok());
        assert!(
            second.is_some_and(|d| d.starts_with(b"event: message\ndata: {\"jsonrpc\"")),
            "the answer arrives as a message event"
        );
        // Dropping the body (the client went away) closes the stream.
        drop(body);
        assert!(streams.get(&id, "alice").is_none());
    }

    #[tokio::test]
    async fn a_caller_has_a_bounded_number_of_streams() {
        let streams = SseStreams::default();
        let held: Vec<_> = (0..STREAMS_PER_CALLER)
            .filter_map(|_| streams.open("alice"))
            .collect();
        assert_eq!(held.len(), STREAMS_PER_CALLER);
        assert!(streams.open("alice").is_none());
        assert!(streams.open("bob").is_some());
    }
}

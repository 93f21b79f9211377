//! Answers a Streamable HTTP POST with an event stream when, and only when, its call has
//! something to tell the client before its answer (progress, `sampling/createMessage`): until
//! then the exchange runs as usual, and a call that sends nothing is answered with plain JSON.
//! Once a first message is sent, the response becomes `text/event-stream`: that message, every
//! later one, and the final JSON-RPC answer as the last event (if the exchange fails at the
//! HTTP level after the stream began, say its audit record cannot be written, the stream ends
//! without an answer: its status line has gone out already).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio::sync::{mpsc, oneshot};

use super::{Body, sse};
use crate::mcp::peer::QUEUED;

/// Whether the client accepts an event stream as the answer to its POST.
pub fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().starts_with("text/event-stream"))
}

/// The channel a call's messages to its client go on.
pub fn channel() -> (mpsc::Sender<String>, mpsc::Receiver<String>) {
    mpsc::channel(QUEUED)
}

/// Drives `exchange` (which answers with the JSON response) and hands `answer` the response to
/// send: the JSON one if the call sent nothing on the way, else an event stream that carries
/// `messages` and then the JSON answer. Returns when the exchange is done and its last event
/// queued.
pub async fn answer_with(
    exchange: impl Future<Output = Response<Body>>,
    mut messages: mpsc::Receiver<String>,
    answer: oneshot::Sender<Response<Body>>,
) {
    tokio::pin!(exchange);
    let first = tokio::select! {
        response = &mut exchange => {
            let _ = answer.send(response);
            return;
        }
        first = messages.recv() => first,
    };
    let Some(first) = first else {
        // The call dropped its way back without using it.
        let _ = answer.send(exchange.await);
        return;
    };
    let (events, receiver) = mpsc::channel::<Bytes>(QUEUED);
    let _ = events.send(sse::event("message", &first)).await;
    let mut response = Response::new(sse::body(receiver));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let _ = answer.send(response);
    let mut open = true;
    let last = loop {
        tokio::select! {
            response = &mut exchange => break response,
            message = messages.recv(), if open => match message {
                Some(message) => {
                    // Never waits here (the exchange must keep running): a client that
                    // stopped reading loses its messages, and a request among them times out.
                    let _ = events.try_send(sse::event("message", &message));
                }
                None => open = false,
            },
        }
    };
    // Messages sent just before the answer go first.
    while let Ok(message) = messages.try_recv() {
        let _ = events.try_send(sse::event("message", &message));
    }
    let status = last.status();
    match last.into_body().collect().await {
        Ok(body) if status == StatusCode::OK => {
            let bytes = body.to_bytes();
            let _ = events
                .send(sse::event("message", &String::from_utf8_lossy(&bytes)))
                .await;
        }
        // The status line went out already; an HTTP-level failure (the audit record could not
        // be written) ends the stream without an answer.
        _ => tracing::warn!(%status, "an event-stream answer failed after it began"),
    }
}

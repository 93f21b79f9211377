//! Serves one accepted connection: the TLS handshake under its deadline, HTTP/2 or HTTP/1.1 as
//! ALPN chose (never sniffed, so the first request's headers are under a deadline too), and a
//! watch that closes the connection when it has had no request in flight for too long (or never
//! sent one in time), or when kubegate shuts down; one that does not close in time is dropped.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming as IncomingBody;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::limits::KeySlot;
use super::{Body, route};
use crate::gateway::Gateway;

/// How long an HTTP/2 peer has to answer a keep-alive ping.
const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a connection asked to close on shutdown gets to finish its answers.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// One accepted connection and what it holds.
pub(super) struct Connection {
    pub gateway: Arc<Gateway>,
    /// TLS, or (for the plain listener behind a TLS-terminating proxy) none.
    pub acceptor: Option<TlsAcceptor>,
    pub exchanges: TaskTracker,
    pub closing: CancellationToken,
    pub peer: SocketAddr,
    /// Its place among all connections and among its address's, given back when it ends.
    pub _slots: (OwnedSemaphorePermit, Option<KeySlot<std::net::IpAddr>>),
}

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
    served: AtomicBool,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> ActivityGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.served.store(true, Ordering::SeqCst);
        ActivityGuard(Arc::clone(self))
    }

    /// When the connection may be closed for idleness, if nothing is in flight.
    fn idle_deadline(&self, first_request: Duration, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let since = *self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            since
                + if self.served.load(Ordering::SeqCst) {
                    idle
                } else {
                    first_request
                },
        )
    }
}

struct ActivityGuard(Arc<Activity>);

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Connection {
    pub async fn serve(self, stream: tokio::net::TcpStream) {
        let guards = &self.gateway.guards;
        let peer = self.peer;
        let Some(acceptor) = self.acceptor.clone() else {
            // Plain HTTP/1.1: the proxy in front terminated TLS (and client certificates).
            return self.serve_http(TokioIo::new(stream), None).await;
        };
        let tls =
            match tokio::time::timeout(guards.handshake_timeout(), acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(client.ip = %peer.ip(), %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(client.ip = %peer.ip(), "TLS handshake timed out");
                    return;
                }
            };
        let session = tls.get_ref().1;
        let h2 = session.alpn_protocol() == Some(b"h2");
        // rustls verified the chain against the client CA; its subject names the caller.
        let certificate = match (
            &self.gateway.certificates,
            session.peer_certificates().and_then(|chain| chain.first()),
        ) {
            (Some(names), Some(leaf)) => match names.caller(leaf) {
                Ok(caller) => Some(caller),
                Err(error) => {
                    tracing::info!(client.ip = %peer.ip(), %error, "client certificate refused");
                    return;
                }
            },
            _ => None,
        };
        self.serve_http(TokioIo::new(tls), Some((h2, certificate)))
            .await;
    }

    /// Serves HTTP on an accepted stream: over TLS (`Some((h2, the client certificate's
    /// caller))`), or plain HTTP/1.1 (`None`).
    async fn serve_http<I>(
        self,
        io: TokioIo<I>,
        tls: Option<(bool, Option<Arc<crate::auth::Caller>>)>,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let plain = tls.is_none();
        let (h2, certificate) = tls.unwrap_or((false, None));
        let guards = &self.gateway.guards;
        let peer = self.peer;
        let activity = Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            served: AtomicBool::new(false),
        });
        let gateway = Arc::clone(&self.gateway);
        let exchanges = self.exchanges.clone();
        let counted = Arc::clone(&activity);
        let service = service_fn(move |mut request: http::Request<IncomingBody>| {
            let active = counted.begin();
            // Only behind the plain listener's TLS-terminating proxy: over TLS the peer is the
            // client itself. A value that is not text is read lossily, so that what a client
            // put first cannot hide the hop a proxy appended after it.
            let source = if plain {
                let forwarded: Vec<String> = request
                    .headers()
                    .get_all("x-forwarded-for")
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect();
                let forwarded: Vec<&str> = forwarded.iter().map(String::as_str).collect();
                gateway.guards.proxies.source(peer, &forwarded)
            } else {
                peer
            };
            if let Some(caller) = &certificate {
                request
                    .extensions_mut()
                    .insert(super::ClientCertificate(Arc::clone(caller)));
            }
            // Routed (and an MCP exchange spawned) now, not when hyper first polls the returned
            // future: hyper may drop that future unpolled if the client hangs up.
            let gone = CancellationToken::new();
            let (routed, metadata) = route(
                Arc::clone(&gateway),
                &exchanges,
                source,
                request,
                gone.clone(),
            );
            async move {
                // Dropped with this future (or, for an event stream, with its body): when the
                // client resets the stream or hangs up.
                let gone = gone.drop_guard();
                let response = routed.response().await;
                let response = super::oauth::point_to_metadata(response, metadata.as_deref());
                let streaming = response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
                if streaming {
                    // An event stream is in flight for as long as it is open: its body holds
                    // the connection's activity.
                    let (parts, body) = response.into_parts();
                    let held = body.map_frame(move |frame| {
                        let _still_active = &active;
                        let _still_here = &gone;
                        frame
                    });
                    return Ok::<_, Infallible>(http::Response::from_parts(parts, held.boxed()));
                }
                drop(active);
                drop(gone);
                Ok::<_, Infallible>(response)
            }
        });
        let idle = guards.idle_timeout();
        let first = guards.header_timeout();
        if h2 {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .max_concurrent_streams(guards.config.max_streams_per_connection)
                .max_pending_accept_reset_streams(Some(20))
                .max_local_error_reset_streams(Some(256))
                .keep_alive_interval(Some(idle))
                .keep_alive_timeout(PING_TIMEOUT);
            let connection = builder.serve_connection(io, service);
            watch(connection, &activity, &self.closing, first, idle, peer).await;
        } else {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(first)
                .keep_alive(true);
            let connection = builder.serve_connection(io, service);
            watch(connection, &activity, &self.closing, first, idle, peer).await;
        }
    }
}

/// A served connection that can be asked to close gracefully.
trait Closable: Future<Output = Result<(), hyper::Error>> {
    fn close(self: std::pin::Pin<&mut Self>);
}

impl<I, S> Closable for hyper::server::conn::http1::Connection<TokioIo<I>, S>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<IncomingBody, ResBody = Body>,
{
    fn close(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S> Closable for hyper::server::conn::http2::Connection<TokioIo<I>, S, TokioExecutor>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<IncomingBody, ResBody = Body>,
    S::Future: Send + 'static,
{
    fn close(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Drives a connection to its end, closing it gracefully when it has been idle too long (or
/// never sent a request in time), or when kubegate shuts down.
async fn watch<C: Closable>(
    connection: C,
    activity: &Activity,
    closing: &CancellationToken,
    first_request: Duration,
    idle: Duration,
    peer: SocketAddr,
) {
    let mut connection = pin!(connection);
    let mut closed = false;
    // Once asked to close, a connection gets this long to finish; then it is dropped (a peer
    // that never sent its HTTP/2 preface cannot keep it).
    let mut hard_deadline: Option<Instant> = None;
    loop {
        let deadline = activity.idle_deadline(first_request, idle);
        let wait = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                // Something is in flight: look again soon.
                None => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(client.ip = %peer.ip(), %error, "connection ended with an error");
                }
                return;
            }
            () = closing.cancelled(), if !closed => {
                connection.as_mut().close();
                closed = true;
                hard_deadline = Some(Instant::now() + CLOSE_GRACE);
            }
            () = wait, if !closed => {
                if activity.idle_deadline(first_request, idle).is_some_and(|at| at <= Instant::now()) {
                    tracing::debug!(client.ip = %peer.ip(), "closing an idle connection");
                    connection.as_mut().close();
                    closed = true;
                    hard_deadline = Some(Instant::now() + first_request);
                }
            }
            () = async {
                match hard_deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                tracing::debug!(client.ip = %peer.ip(), "dropping a connection that did not close");
                return;
            }
        }
    }
}

//! Serves kubegate over HTTPS: accepts TLS connections (HTTP/2 or HTTP/1.1, as ALPN chose),
//! routes `/mcp`, `/healthz` and `/readyz`, and is the one place where errors become HTTP
//! statuses.
//!
//! Every `POST /mcp` leaves exactly one audit record, whatever its fate (401s are recorded at a
//! bounded rate per address, the rest counted), and the response is sent only once the record
//! is written. Each exchange runs as its own task, so a client that resets its stream or drops
//! the connection mid-call cannot cut a change short: the call finishes and is recorded, and
//! shutdown waits for it. A call that changes nothing is abandoned instead when its client goes
//! away before it reached Kubernetes.
//!
//! # Nobody can hold it down
//! - Every phase has a deadline: the TLS handshake, each request's headers (the first one's
//!   too: the protocol is chosen by ALPN, never sniffed), its body, and idleness (a connection
//!   with no request in flight is closed; HTTP/2 peers are also pinged).
//! - Connections are bounded in all (below the file-descriptor limit) and per source address;
//!   exchanges in flight in all (503, before any work is spawned) and per caller (429); HTTP/2
//!   streams per connection; bodies by size (413, from `Content-Length` before reading).
//! - A request for a `Host` kubegate does not serve, or from a foreign `Origin`, is refused
//!   (see [`origin`]); tokens kubegate has not verified before cost a signature check only
//!   within their address's budget (see [`crate::auth`]).
//! - On shutdown, readiness goes false first, then the listener stops, connections close
//!   gracefully and exchanges get a grace period to finish and write their records.

mod connection;
pub mod forwarded;
pub mod limits;
pub mod oauth;
pub mod origin;
pub mod sse;
mod stream;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming as IncomingBody;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{AuditError, AuditRecord, Outcome};
use crate::auth::AuthError;
use crate::config::HttpConfig;
use crate::gateway::Gateway;
use crate::mcp::{self, Incoming, McpError, Reply, jsonrpc};
use connection::Connection;
use limits::Limits;
use origin::HostCheck;
use sse::SseStreams;

const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const TRANSPORT: &str = "streamable-http";
const SSE_TRANSPORT: &str = "sse";
/// How long a refused client is asked to wait before trying again.
const RETRY_AFTER_SECONDS: &str = "1";
/// A response body: whole, or an event stream.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed()
}

/// What the listener checks and bounds, built once from the configuration.
pub struct Guards {
    pub config: HttpConfig,
    pub limits: Limits,
    pub hosts: HostCheck,
    /// The legacy SSE streams, if that transport is on.
    pub sse: Option<SseStreams>,
    /// Proxies whose `X-Forwarded-For` names the caller's address.
    pub proxies: forwarded::TrustedProxies,
    /// False from the moment shutdown begins: `/readyz` says so.
    ready: AtomicBool,
}

/// Where kubegate listens: HTTPS, and plain HTTP only when asked for (behind a proxy that
/// terminates TLS).
pub struct Listeners {
    pub tls: Option<(TcpListener, Arc<ServerConfig>)>,
    pub plain: Option<TcpListener>,
}

/// Accepts on `listener`, or never if there is none.
async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// The caller a connection's verified client certificate names (a request extension).
#[derive(Clone)]
pub struct ClientCertificate(pub Arc<crate::auth::Caller>);

/// The request's caller: by its bearer token; without one, by the connection's client
/// certificate, if it presented one.
async fn authenticate(
    gateway: &Gateway,
    headers: &HeaderMap,
    certificate: Option<&ClientCertificate>,
    peer: SocketAddr,
) -> Result<Arc<crate::auth::Caller>, AuthError> {
    match (authorization(headers), certificate) {
        (None, Some(certificate)) => Ok(Arc::clone(&certificate.0)),
        (token, _) => gateway.auth.authenticate(token, peer.ip()).await,
    }
}

impl Guards {
    pub fn new(config: &HttpConfig, hosts: HostCheck, sse: bool) -> Guards {
        Guards {
            config: config.clone(),
            limits: Limits::new(config),
            hosts,
            sse: sse.then(SseStreams::default),
            proxies: forwarded::TrustedProxies::new(&config.trusted_proxies),
            ready: AtomicBool::new(true),
        }
    }

    fn seconds(seconds: u64) -> Duration {
        Duration::from_secs(seconds.max(1))
    }

    fn handshake_timeout(&self) -> Duration {
        Guards::seconds(self.config.handshake_timeout_seconds)
    }
    fn header_timeout(&self) -> Duration {
        Guards::seconds(self.config.header_timeout_seconds)
    }
    fn body_timeout(&self) -> Duration {
        Guards::seconds(self.config.body_timeout_seconds)
    }
    fn idle_timeout(&self) -> Duration {
        Guards::seconds(self.config.idle_timeout_seconds)
    }
}

/// Serves HTTPS on `listener` until `shutdown` completes, then drains: not ready for
/// `shutdown_delay_seconds` while still serving, then no new connections, open ones closed
/// gracefully, and exchanges given `shutdown_grace_seconds` to finish.
pub async fn serve(
    gateway: Arc<Gateway>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) {
    let Listeners { tls, plain } = listeners;
    let (listener, acceptor) = match tls {
        Some((listener, config)) => (Some(listener), Some(TlsAcceptor::from(config))),
        None => (None, None),
    };

    let closing = CancellationToken::new();
    let connections = TaskTracker::new();
    let exchanges = TaskTracker::new();
    let guards = &gateway.guards;
    let mut shutdown = pin!(shutdown);
    let mut draining: Option<Instant> = None;
    loop {
        let stop_accepting = async {
            match draining {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let permit = tokio::select! {
            permit = Arc::clone(&guards.limits.connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown, if draining.is_none() => {
                draining = Some(begin_draining(guards));
                continue;
            }
            () = stop_accepting => break,
        };
        let stop_accepting = async {
            match draining {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let (stream, peer, secure) = tokio::select! {
            accepted = accept(listener.as_ref()) => match accepted {
                Ok((stream, peer)) => (stream, peer, true),
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            accepted = accept(plain.as_ref()) => match accepted {
                Ok((stream, peer)) => (stream, peer, false),
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown, if draining.is_none() => {
                draining = Some(begin_draining(guards));
                continue;
            }
            () = stop_accepting => break,
        };
        // A trusted proxy in front of the plain listener carries many callers' connections:
        // only the overall limit applies to it.
        let ip_slot = if !secure && guards.proxies.contains(peer.ip()) {
            None
        } else {
            match guards.limits.per_ip.try_take(&peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    tracing::debug!(client.ip = %peer.ip(), "too many connections from this address");
                    continue;
                }
            }
        };
        // Small answers (and HTTP/2 control frames) must not wait for the peer's delayed ACKs.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(client.ip = %peer.ip(), %error, "cannot set TCP_NODELAY");
        }
        let connection = Connection {
            gateway: Arc::clone(&gateway),
            acceptor: acceptor.clone().filter(|_| secure),
            exchanges: exchanges.clone(),
            closing: closing.clone(),
            peer,
            _slots: (permit, ip_slot),
        };
        connections.spawn(connection.serve(stream));
    }
    drop(listener);
    drop(plain);
    let grace = Guards::seconds(guards.config.shutdown_grace_seconds);
    closing.cancel();
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not close within the shutdown grace period");
    }
    // Exchanges whose connections are gone still finish and write their audit records.
    exchanges.close();
    if tokio::time::timeout(grace, exchanges.wait()).await.is_err() {
        tracing::error!("MCP exchanges still running at shutdown; their audit records are lost");
    }
    gateway.audit.close().await;
}

/// Marks kubegate not ready and returns when to stop accepting connections.
fn begin_draining(guards: &Guards) -> Instant {
    guards.ready.store(false, Ordering::SeqCst);
    let delay = Duration::from_secs(guards.config.shutdown_delay_seconds);
    tracing::info!(
        delay_seconds = delay.as_secs(),
        "shutting down: not ready; still serving until the delay is over"
    );
    Instant::now() + delay
}

/// Why a request failed, as the transport sees it. Mapped to a status in [`error_response`].
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
    #[error(transparent)]
    Mcp(#[from] McpError),
    #[error("MCP messages must be sent as `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("the request body could not be read")]
    BodyRead,
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error(transparent)]
    Refused(#[from] origin::Refused),
    #[error("kubegate is busy: too many calls are in flight; try again in a moment")]
    Busy,
    #[error("you have too many calls in flight; wait for one to finish, then try again")]
    CallerBusy,
    #[error("no such SSE stream: it closed, or it is another caller's; open one with GET /sse")]
    NoStream,
    #[error("kubegate could not write its audit record, so it refuses to answer")]
    Audit(#[source] AuditError),
    #[error("kubegate failed while answering; the failure is in its log")]
    Internal,
}

/// Where a request went: an MCP exchange running as its own task, or an answer already made.
enum Routed {
    Exchange(tokio::task::JoinHandle<Response<Body>>),
    /// An exchange that may answer with an event stream before it is done.
    Streaming(tokio::sync::oneshot::Receiver<Response<Body>>),
    Ready(Response<Body>),
}

impl Routed {
    async fn response(self) -> Response<Body> {
        match self {
            Routed::Exchange(exchange) => exchange.await.unwrap_or_else(|error| {
                tracing::error!(%error, "an MCP exchange failed");
                error_response(&HttpError::Internal)
            }),
            Routed::Streaming(answer) => answer.await.unwrap_or_else(|_| {
                tracing::error!("an MCP exchange ended without an answer");
                error_response(&HttpError::Internal)
            }),
            Routed::Ready(response) => response,
        }
    }
}

/// Routes a request; with it, where a `401` points the client for how to get a token.
fn route(
    gateway: Arc<Gateway>,
    exchanges: &TaskTracker,
    peer: SocketAddr,
    request: Request<IncomingBody>,
    gone: CancellationToken,
) -> (Routed, Option<String>) {
    let asked = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| header_str(request.headers(), header::HOST.as_str()).map(str::to_owned));
    let metadata = gateway
        .protected_resource
        .as_ref()
        .zip(asked.as_deref())
        .map(|(resource, host)| resource.metadata_url(host));
    (
        routed(gateway, exchanges, peer, request, gone, asked.as_deref()),
        metadata,
    )
}

fn routed(
    gateway: Arc<Gateway>,
    exchanges: &TaskTracker,
    peer: SocketAddr,
    request: Request<IncomingBody>,
    gone: CancellationToken,
    asked: Option<&str>,
) -> Routed {
    let guards = &gateway.guards;
    // HTTP/2 names the host in `:authority`, HTTP/1.1 in `Host`; a request may carry both, and
    // both must be kubegate's.
    let authority = request.uri().authority().map(|a| a.as_str());
    let host = header_str(request.headers(), header::HOST.as_str());
    let origin = header_str(request.headers(), header::ORIGIN.as_str());
    let checked = guards
        .hosts
        .check(authority, origin)
        .and_then(|()| guards.hosts.check(host, None));
    if let Err(refused) = checked {
        return Routed::Ready(error_response(&HttpError::Refused(refused)));
    }
    if query_param(request.uri().query(), "access_token").is_some() {
        return Routed::Ready(error_response(&HttpError::Unauthenticated(
            AuthError::TokenInQuery,
        )));
    }
    let response = match (request.method(), request.uri().path()) {
        (&Method::POST, "/mcp") => {
            // The slot is taken before anything is spawned, and held by the exchange itself.
            let Some(slot) = guards.limits.exchange() else {
                return Routed::Ready(error_response(&HttpError::Busy));
            };
            // Its own task: dropping the connection's future (a reset stream, a closed
            // connection) does not cancel a change that may already have reached Kubernetes,
            // nor its audit record.
            let via = Via::StreamableHttp;
            if stream::accepts_event_stream(request.headers()) {
                // The call may talk to its client before it answers: the answer may become an
                // event stream.
                let (out, messages) = stream::channel();
                let (answer, answered) = tokio::sync::oneshot::channel();
                let exchange = post_mcp(gateway, peer, request, gone, slot, via, Some(out));
                exchanges.spawn(stream::answer_with(exchange, messages, answer));
                return Routed::Streaming(answered);
            }
            return Routed::Exchange(
                exchanges.spawn(post_mcp(gateway, peer, request, gone, slot, via, None)),
            );
        }
        (&Method::DELETE, "/mcp") | (&Method::GET, "/sse") => {
            if request.method() == Method::GET && guards.sse.is_none() {
                return Routed::Ready(plain(
                    StatusCode::NOT_FOUND,
                    "not found; MCP is served at /mcp\n",
                ));
            }
            let Some(slot) = guards.limits.exchange() else {
                return Routed::Ready(error_response(&HttpError::Busy));
            };
            let deleting = request.method() == Method::DELETE;
            let headers = request.headers().clone();
            let certificate = request.extensions().get::<ClientCertificate>().cloned();
            return Routed::Exchange(exchanges.spawn(async move {
                let _slot = slot;
                if deleting {
                    delete_session(&gateway, peer, &headers, certificate).await
                } else {
                    open_sse(&gateway, peer, &headers, certificate).await
                }
            }));
        }
        (&Method::POST, "/messages") if guards.sse.is_some() => {
            let Some(stream) = query_param(request.uri().query(), "sessionId") else {
                return Routed::Ready(plain(
                    StatusCode::BAD_REQUEST,
                    "name the stream: POST /messages?sessionId=<the id GET /sse gave>\n",
                ));
            };
            let Some(slot) = guards.limits.exchange() else {
                return Routed::Ready(error_response(&HttpError::Busy));
            };
            let via = Via::Sse(stream);
            return Routed::Exchange(
                exchanges.spawn(post_mcp(gateway, peer, request, gone, slot, via, None)),
            );
        }
        (&Method::GET, "/mcp") => plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "kubegate does not open a server-to-client stream; POST MCP messages to /mcp\n",
        )
        .with_header(header::ALLOW, "POST, DELETE"),
        (&Method::GET, path)
            if path
                .strip_prefix(oauth::METADATA_PATH)
                .is_some_and(|p| p.is_empty() || p == "/mcp") =>
        {
            match (&gateway.protected_resource, asked) {
                (Some(resource), Some(host)) => json(StatusCode::OK, &resource.document(host)),
                _ => plain(StatusCode::NOT_FOUND, "not found; MCP is served at /mcp\n"),
            }
        }
        (&Method::GET, "/healthz") => plain(StatusCode::OK, "ok\n"),
        // The gateway exists only once its cluster's discovery and namespace cache are done
        // (with several clusters, once each has been tried); it stays ready while some cluster
        // can serve (its copy of the namespaces can be trusted) and it is not shutting down.
        (&Method::GET, "/readyz") => {
            let (waiting, none_loaded) = gateway.auth.waiting();
            let keys = (!waiting.is_empty())
                .then(|| format!("the keys of {} are not loaded", waiting.join(", ")));
            let clusters: Vec<(&str, Option<String>)> = gateway
                .clusters
                .iter()
                .map(|c| (c.name.as_str(), c.unready()))
                .collect();
            let no_cluster = if clusters.iter().any(|(_, why)| why.is_none()) {
                None
            } else if let [(_, why)] = clusters.as_slice() {
                why.clone()
            } else {
                Some("no cluster can serve".to_owned())
            };
            let unready = no_cluster.or_else(|| keys.clone().filter(|_| none_loaded));
            // With several clusters, how many can serve: not their names or troubles (this is
            // unauthenticated; the log names each cluster that cannot be reached, and why).
            let each = if gateway.clusters.several() {
                let serving = clusters.iter().filter(|(_, why)| why.is_none()).count();
                format!("clusters: {serving} of {} can serve\n", clusters.len())
            } else {
                String::new()
            };
            match unready {
                _ if !guards.ready.load(Ordering::SeqCst) => plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: shutting down\n",
                ),
                Some(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n{each}"),
                ),
                // Some issuers work: ready, and saying which do not yet.
                None => match keys {
                    Some(waiting) => text(StatusCode::OK, format!("ok; {waiting}\n{each}")),
                    None if each.is_empty() => plain(StatusCode::OK, "ok\n"),
                    None => text(StatusCode::OK, format!("ok\n{each}")),
                },
            }
        }
        _ => plain(StatusCode::NOT_FOUND, "not found; MCP is served at /mcp\n"),
    };
    Routed::Ready(response)
}

/// How an MCP message came: on Streamable HTTP, or posted for a legacy SSE stream.
enum Via {
    StreamableHttp,
    Sse(String),
}

async fn post_mcp(
    gateway: Arc<Gateway>,
    peer: SocketAddr,
    request: Request<IncomingBody>,
    gone: CancellationToken,
    _slot: OwnedSemaphorePermit,
    via: Via,
    to_client: Option<tokio::sync::mpsc::Sender<String>>,
) -> Response<Body> {
    let user_agent = header_str(request.headers(), header::USER_AGENT.as_str()).map(str::to_owned);
    let transport = match via {
        Via::StreamableHttp => TRANSPORT,
        Via::Sse(_) => SSE_TRANSPORT,
    };
    let mut record = AuditRecord::begin(gateway.audit.level(), transport, peer.ip(), user_agent);
    record.trace_parent = header_str(request.headers(), "traceparent").map(|traceparent| {
        crate::telemetry::TraceParent {
            traceparent: traceparent.chars().take(128).collect(),
            tracestate: header_str(request.headers(), "tracestate")
                .map(|state| state.chars().take(512).collect()),
        }
    });
    let outcome = exchange(&gateway, peer, request, gone, &via, to_client, &mut record).await;
    // The one place a failed exchange is marked in its record (the MCP layer marks only what
    // it answers itself, such as a refused tool call).
    if let Err(error) = &outcome
        && record.error.is_none()
    {
        let kind = match error {
            HttpError::Unauthenticated(AuthError::TooManyUnverified) => Outcome::Throttled,
            HttpError::Unauthenticated(AuthError::KeysUnavailable { .. }) => Outcome::Error,
            HttpError::Unauthenticated(_) => Outcome::Unauthenticated,
            HttpError::Mcp(McpError::InsufficientScope { .. }) => Outcome::Denied,
            HttpError::Busy | HttpError::CallerBusy => Outcome::Throttled,
            _ => Outcome::Invalid,
        };
        record.fail(kind, error.to_string());
    }
    let unauthenticated = matches!(outcome, Err(HttpError::Unauthenticated(_)));
    let batch = matches!(outcome, Ok((Reply::Batch { .. }, _)));
    if batch {
        // Each message of the batch has its own record already.
    } else if unauthenticated {
        // A flood of these is counted, not written line by line; and a refusal stays a refusal
        // even if its record cannot be written (nothing was served).
        if let Some(left_out) = gateway.audit.admit_unauthenticated(peer.ip()) {
            record.unrecorded_before = (left_out > 0).then_some(left_out);
            if let Err(error) = gateway.audit.write(&mut record).await {
                tracing::warn!(%error, "cannot record an unauthenticated request");
            }
        }
    } else if let Err(error) = gateway.audit.write(&mut record).await {
        tracing::error!(%error, audit.id = %record.audit_id, "audit write failed; refusing the answer");
        return error_response(&HttpError::Audit(error));
    }
    match outcome {
        // On the legacy transport, the answer goes on the caller's stream.
        Ok((reply, Some(stream))) => {
            let body = match reply {
                Reply::Message { body, .. } | Reply::Batch { body: Some(body) } => Some(body),
                Reply::Accepted | Reply::Batch { body: None } => None,
            };
            if let Some(body) = body
                && !stream.send(body.get())
            {
                tracing::debug!("an SSE stream closed before its answer could be sent");
            }
            empty(StatusCode::ACCEPTED)
        }
        Ok((
            Reply::Message {
                body,
                session_id,
                not_found,
            },
            None,
        )) => {
            let status = if not_found {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            let response = json(status, &body);
            match session_id {
                Some(id) => response.with_header(SESSION_HEADER, &id),
                None => response,
            }
        }
        Ok((Reply::Accepted, None)) => empty(StatusCode::ACCEPTED),
        Ok((Reply::Batch { body: Some(body) }, None)) => json(StatusCode::OK, &body),
        Ok((Reply::Batch { body: None }, None)) => empty(StatusCode::ACCEPTED),
        Err(error) => error_response(&error),
    }
}

/// Authenticates, reads and hands one message to the MCP layer; for the legacy transport, also
/// the caller's stream its answer goes on.
async fn exchange(
    gateway: &Gateway,
    peer: SocketAddr,
    request: Request<IncomingBody>,
    gone: CancellationToken,
    via: &Via,
    to_client: Option<tokio::sync::mpsc::Sender<String>>,
    record: &mut AuditRecord,
) -> Result<(Reply, Option<Arc<sse::SseStream>>), HttpError> {
    let caller = authenticate(
        gateway,
        request.headers(),
        request.extensions().get::<ClientCertificate>(),
        peer,
    )
    .await?;
    let stream = match via {
        Via::StreamableHttp => None,
        Via::Sse(id) => {
            let streams = gateway.guards.sse.as_ref();
            match streams.and_then(|s| s.get(id, &caller.username)) {
                Some(stream) => Some(stream),
                None => {
                    record.user = Some(crate::audit::AuditUser::of(&caller));
                    return Err(HttpError::NoStream);
                }
            }
        }
    };
    let Some(_caller_slot) = gateway.guards.limits.caller_exchange(&caller.username) else {
        record.user = Some(crate::audit::AuditUser::of(&caller));
        return Err(HttpError::CallerBusy);
    };
    if !is_json(request.headers()) {
        record.user = Some(crate::audit::AuditUser::of(&caller));
        return Err(HttpError::UnsupportedMediaType);
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(&gateway.guards, &parts.headers, body).await {
        Ok(body) => body,
        Err(error) => {
            record.user = Some(crate::audit::AuditUser::of(&caller));
            return Err(error);
        }
    };
    let Some(stream) = stream else {
        let incoming = Incoming {
            caller,
            source_ip: peer.ip(),
            transport: TRANSPORT,
            session_id: header_str(&parts.headers, SESSION_HEADER),
            protocol_version: header_str(&parts.headers, PROTOCOL_HEADER),
            method_header: header_values(&parts.headers, METHOD_HEADER),
            name_header: header_values(&parts.headers, NAME_HEADER),
            headers: true,
            body: &body,
            gone,
            peer: to_client,
        };
        return Ok((mcp::handle(gateway, incoming, record).await?, None));
    };
    // The legacy transport has no MCP headers: the stream remembers its version.
    let version = stream.version();
    let incoming = Incoming {
        caller,
        source_ip: peer.ip(),
        transport: SSE_TRANSPORT,
        session_id: None,
        protocol_version: version.as_deref(),
        method_header: Vec::new(),
        name_header: Vec::new(),
        headers: false,
        body: &body,
        gone,
        peer: None,
    };
    let reply = mcp::handle(gateway, incoming, record).await?;
    if record.mcp.method.as_deref() == Some("initialize")
        && let Some(version) = record.mcp.protocol_version.clone()
    {
        stream.set_version(version);
    }
    Ok((reply, Some(stream)))
}

/// `GET /sse`: opens a legacy event stream for a caller with a valid token.
async fn open_sse(
    gateway: &Gateway,
    peer: SocketAddr,
    headers: &HeaderMap,
    certificate: Option<ClientCertificate>,
) -> Response<Body> {
    let caller = match authenticate(gateway, headers, certificate.as_ref(), peer).await {
        Ok(caller) => caller,
        Err(error) => return error_response(&HttpError::Unauthenticated(error)),
    };
    let Some(streams) = gateway.guards.sse.as_ref() else {
        return plain(StatusCode::NOT_FOUND, "not found; MCP is served at /mcp\n");
    };
    let Some((id, body)) = streams.open(&caller.username) else {
        return error_response(&HttpError::CallerBusy);
    };
    let mut record = AuditRecord::begin(
        gateway.audit.level(),
        SSE_TRANSPORT,
        peer.ip(),
        header_str(headers, header::USER_AGENT.as_str()).map(str::to_owned),
    );
    record.user = Some(crate::audit::AuditUser::of(&caller));
    record.mcp.method = Some("sse/open".to_owned());
    record.mcp.session_id = Some(id);
    if let Err(error) = gateway.audit.write(&mut record).await {
        tracing::error!(%error, "audit write failed; refusing the stream");
        return error_response(&HttpError::Audit(error));
    }
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A query parameter's value (percent-decoded).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

async fn delete_session(
    gateway: &Gateway,
    peer: SocketAddr,
    headers: &HeaderMap,
    certificate: Option<ClientCertificate>,
) -> Response<Body> {
    let user_agent = header_str(headers, header::USER_AGENT.as_str()).map(str::to_owned);
    let mut record = AuditRecord::begin(gateway.audit.level(), TRANSPORT, peer.ip(), user_agent);
    record.mcp.method = Some("session/delete".to_owned());
    let caller = match authenticate(gateway, headers, certificate.as_ref(), peer).await {
        Ok(caller) => caller,
        Err(error) => {
            let error = HttpError::Unauthenticated(error);
            if let Some(left_out) = gateway.audit.admit_unauthenticated(peer.ip()) {
                record.unrecorded_before = (left_out > 0).then_some(left_out);
                record.fail(Outcome::Unauthenticated, error.to_string());
                if let Err(error) = gateway.audit.write(&mut record).await {
                    tracing::warn!(%error, "cannot record an unauthenticated request");
                }
            }
            return error_response(&error);
        }
    };
    record.user = Some(crate::audit::AuditUser::of(&caller));
    let id = header_str(headers, SESSION_HEADER);
    record.mcp.session_id = id.map(str::to_owned);
    let response = match id {
        Some(id) if gateway.sessions.end(id, &caller.username) => empty(StatusCode::NO_CONTENT),
        Some(_) => {
            let error = HttpError::Mcp(McpError::SessionNotFound { id: None });
            record.fail(Outcome::Invalid, error.to_string());
            error_response(&error)
        }
        None => {
            record.fail(Outcome::Invalid, "no Mcp-Session-Id");
            plain(
                StatusCode::BAD_REQUEST,
                "name the session in Mcp-Session-Id\n",
            )
        }
    };
    if let Err(error) = gateway.audit.write(&mut record).await {
        tracing::error!(%error, audit.id = %record.audit_id, "audit write failed; refusing the answer");
        return error_response(&HttpError::Audit(error));
    }
    response
}

/// Reads a body up to the configured size and within the body deadline; a declared length over
/// the limit is refused before anything is read.
async fn read_body(
    guards: &Guards,
    headers: &HeaderMap,
    body: IncomingBody,
) -> Result<Bytes, HttpError> {
    let max = guards.config.max_body_bytes;
    let declared = header_str(headers, header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(HttpError::BodyTooLarge(max));
    }
    let read = Limited::new(body, max).collect();
    match tokio::time::timeout(guards.body_timeout(), read).await {
        Err(_) => Err(HttpError::BodyTimeout(guards.body_timeout().as_secs())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(HttpError::BodyTooLarge(max))
        }
        Ok(Err(_)) => Err(HttpError::BodyRead),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    header_str(headers, header::CONTENT_TYPE.as_str())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn authorization(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every value a header was sent with (a value that is not text counts as an empty one).
fn header_values<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect()
}

/// The one mapping from failures to HTTP statuses; the body is a JSON-RPC error a client can show.
fn error_response(error: &HttpError) -> Response<Body> {
    use jsonrpc::code;
    let (status, code) = match error {
        HttpError::Unauthenticated(AuthError::TooManyUnverified) => {
            (StatusCode::TOO_MANY_REQUESTS, code::UNAUTHENTICATED)
        }
        HttpError::Unauthenticated(AuthError::TokenInQuery) => {
            (StatusCode::BAD_REQUEST, code::UNAUTHENTICATED)
        }
        HttpError::Unauthenticated(AuthError::KeysUnavailable { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, code::UNAUTHENTICATED)
        }
        HttpError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED),
        HttpError::Mcp(error @ McpError::InsufficientScope { .. }) => {
            (StatusCode::FORBIDDEN, error.code())
        }
        HttpError::Mcp(error @ McpError::SessionNotFound { .. }) => {
            (StatusCode::NOT_FOUND, error.code())
        }
        HttpError::Mcp(error) => (StatusCode::BAD_REQUEST, error.code()),
        HttpError::UnsupportedMediaType => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, code::INVALID_REQUEST)
        }
        HttpError::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, code::INVALID_REQUEST),
        HttpError::BodyRead => (StatusCode::BAD_REQUEST, code::INVALID_REQUEST),
        HttpError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, code::INVALID_REQUEST),
        HttpError::Refused(_) => (StatusCode::FORBIDDEN, code::INVALID_REQUEST),
        HttpError::Busy => (StatusCode::SERVICE_UNAVAILABLE, code::INTERNAL_ERROR),
        HttpError::CallerBusy => (StatusCode::TOO_MANY_REQUESTS, code::INVALID_REQUEST),
        HttpError::NoStream => (StatusCode::NOT_FOUND, code::INVALID_REQUEST),
        HttpError::Audit(_) | HttpError::Internal => {
            (StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL_ERROR)
        }
    };
    let (id, data) = match error {
        HttpError::Mcp(error) => (error.request_id(), error.data()),
        _ => (None, None),
    };
    let response = json(
        status,
        &jsonrpc::error_with_data(id, code, error.to_string(), data),
    );
    match error {
        HttpError::Unauthenticated(
            AuthError::TooManyUnverified | AuthError::KeysUnavailable { .. },
        )
        | HttpError::Busy
        | HttpError::CallerBusy => response.with_header(header::RETRY_AFTER, RETRY_AFTER_SECONDS),
        HttpError::Unauthenticated(AuthError::TokenInQuery) => response.with_header(
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"kubegate\", error=\"invalid_request\", error_description=\"send \
             the token in the Authorization header, not in the URL\"",
        ),
        HttpError::Mcp(McpError::InsufficientScope { insufficient, .. }) => response.with_header(
            header::WWW_AUTHENTICATE,
            &format!(
                "Bearer realm=\"kubegate\", error=\"insufficient_scope\", scope=\"{}\", \
                 error_description=\"{}\"",
                insufficient.needed.join(" "),
                challenge_text(&error.to_string())
            ),
        ),
        // No credentials: the challenge carries no error code (RFC 6750 §3.1).
        // No credentials, or another scheme than Bearer: the challenge carries no error code
        // (RFC 6750 §3.1).
        HttpError::Unauthenticated(AuthError::MissingToken | AuthError::MalformedHeader) => {
            response.with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"kubegate\"")
        }
        HttpError::Unauthenticated(cause) => response.with_header(
            header::WWW_AUTHENTICATE,
            &format!(
                "Bearer realm=\"kubegate\", error=\"invalid_token\", error_description=\"{}\"",
                challenge_text(&cause.to_string())
            ),
        ),
        HttpError::BodyTooLarge(_) | HttpError::BodyTimeout(_) => {
            // The rest of the body is not read: the connection cannot carry another request.
            response.with_header(header::CONNECTION, "close")
        }
        _ => response,
    }
}

/// Text fit for a quoted challenge parameter: visible ASCII without quotes or backslashes (a
/// token's `kid` can hold anything), at most 200 characters.
fn challenge_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .take(200)
        .collect()
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    response(status, "application/json", Bytes::from(bytes))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    response(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(text.as_bytes()),
    )
}

fn text(status: StatusCode, text: String) -> Response<Body> {
    response(status, "text/plain; charset=utf-8", Bytes::from(text))
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Adds a header whose value kubegate made (a session id, a challenge), dropping it if unsendable.
trait WithHeader {
    fn with_header(self, name: impl header::IntoHeaderName, value: &str) -> Self;
}

impl WithHeader for Response<Body> {
    fn with_header(mut self, name: impl header::IntoHeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers_mut().insert(name, value);
        }
        self
    }
}

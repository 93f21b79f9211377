//! Serves kubegate over HTTPS: accepts TLS connections (HTTP/2 or HTTP/1.1), routes `/mcp`,
//! `/healthz` and `/readyz`, and is the one place where errors become HTTP statuses.
//!
//! Every `POST /mcp` leaves exactly one audit record, whatever its fate (401s included), and the
//! response is sent only once the record is written. Each exchange runs as its own task, so a
//! client that resets its stream or drops the connection mid-call cannot cut it short: the call
//! finishes and is recorded, and shutdown waits for it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming as IncomingBody;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::audit::{AuditError, AuditRecord, Outcome};
use crate::auth::AuthError;
use crate::gateway::Gateway;
use crate::mcp::{self, Incoming, McpError, Reply, jsonrpc};
use crate::policy::NamespaceDirectory;

/// The largest MCP message body kubegate reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A client gets this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, open requests get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// An HTTP/1.1 client gets this long to send a request's headers (slow clients hold sockets).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many connections at once; beyond, new ones wait to be accepted.
const MAX_CONNECTIONS: usize = 4096;

const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";
const TRANSPORT: &str = "streamable-http";

type Body = Full<Bytes>;

/// Serves HTTPS on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    gateway: Arc<Gateway>,
    tls: Arc<ServerConfig>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let exchanges = TaskTracker::new();
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small answers (and HTTP/2 control frames) must not wait for the peer's delayed ACKs.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(client.ip = %peer.ip(), %error, "cannot set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let gateway = Arc::clone(&gateway);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let exchanges = exchanges.clone();
        tokio::spawn(async move {
            let _connection_slot = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
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
            let service = service_fn(move |request| {
                // Routed (and an MCP exchange spawned) now, not when hyper first polls the
                // returned future: hyper may drop that future unpolled if the client hangs up.
                let routed = route(Arc::clone(&gateway), &exchanges, peer, request);
                async move { Ok::<_, Infallible>(routed.response().await) }
            });
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(client.ip = %peer.ip(), %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within the shutdown grace period");
    }
    // Exchanges whose connections are gone still finish and write their audit records.
    exchanges.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, exchanges.wait())
        .await
        .is_err()
    {
        tracing::error!("MCP exchanges still running at shutdown; their audit records are lost");
    }
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
    #[error("the request body is larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    #[error("the request body could not be read")]
    BodyRead,
    #[error("kubegate could not write its audit record, so it refuses to answer")]
    Audit(#[source] AuditError),
    #[error("kubegate failed while answering; the failure is in its log")]
    Internal,
}

/// Where a request went: an MCP exchange running as its own task, or an answer already made.
enum Routed {
    Exchange(tokio::task::JoinHandle<Response<Body>>),
    Ready(Response<Body>),
}

impl Routed {
    async fn response(self) -> Response<Body> {
        match self {
            Routed::Exchange(exchange) => exchange.await.unwrap_or_else(|error| {
                tracing::error!(%error, "an MCP exchange failed");
                error_response(&HttpError::Internal)
            }),
            Routed::Ready(response) => response,
        }
    }
}

fn route(
    gateway: Arc<Gateway>,
    exchanges: &TaskTracker,
    peer: SocketAddr,
    request: Request<IncomingBody>,
) -> Routed {
    let response = match (request.method(), request.uri().path()) {
        // Its own task: dropping the connection's future (a reset stream, a closed connection)
        // does not cancel a call that may already have reached Kubernetes, nor its audit record.
        (&Method::POST, "/mcp") => {
            return Routed::Exchange(exchanges.spawn(post_mcp(gateway, peer, request)));
        }
        (&Method::DELETE, "/mcp") => delete_session(&gateway, request.headers()),
        (&Method::GET, "/mcp") => plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "kubegate does not open a server-to-client stream; POST MCP messages to /mcp\n",
        )
        .with_header(header::ALLOW, "POST, DELETE"),
        (&Method::GET, "/healthz") => plain(StatusCode::OK, "ok\n"),
        // The gateway exists only once discovery and the namespace cache are done; it stays
        // ready while its copy of the namespaces can be trusted.
        (&Method::GET, "/readyz") => match gateway.kube.stale() {
            None => plain(StatusCode::OK, "ok\n"),
            Some(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        _ => plain(StatusCode::NOT_FOUND, "not found; MCP is served at /mcp\n"),
    };
    Routed::Ready(response)
}

async fn post_mcp(
    gateway: Arc<Gateway>,
    peer: SocketAddr,
    request: Request<IncomingBody>,
) -> Response<Body> {
    let user_agent = header_str(request.headers(), header::USER_AGENT.as_str()).map(str::to_owned);
    let mut record = AuditRecord::begin(gateway.audit.level(), TRANSPORT, peer.ip(), user_agent);
    let outcome = exchange(&gateway, peer, request, &mut record).await;
    // The one place a failed exchange is marked in its record (the MCP layer marks only what
    // it answers itself, such as a refused tool call).
    if let Err(error) = &outcome
        && record.error.is_none()
    {
        let kind = match error {
            HttpError::Unauthenticated(_) => Outcome::Unauthenticated,
            _ => Outcome::Invalid,
        };
        record.fail(kind, error.to_string());
    }
    if let Err(error) = gateway.audit.write(&mut record) {
        tracing::error!(%error, audit.id = %record.audit_id, "audit write failed; refusing the answer");
        return error_response(&HttpError::Audit(error));
    }
    match outcome {
        Ok(Reply::Message { body, session_id }) => {
            let response = json(StatusCode::OK, &body);
            match session_id {
                Some(id) => response.with_header(SESSION_HEADER, &id),
                None => response,
            }
        }
        Ok(Reply::Accepted) => empty(StatusCode::ACCEPTED),
        Err(error) => error_response(&error),
    }
}

/// Authenticates, reads and hands one message to the MCP layer.
async fn exchange(
    gateway: &Gateway,
    peer: SocketAddr,
    request: Request<IncomingBody>,
    record: &mut AuditRecord,
) -> Result<Reply, HttpError> {
    let caller = gateway
        .auth
        .authenticate(authorization(request.headers()))?;
    if !is_json(request.headers()) {
        return Err(HttpError::UnsupportedMediaType);
    }
    let (parts, body) = request.into_parts();
    let body = read_body(body).await?;
    let incoming = Incoming {
        caller,
        source_ip: peer.ip(),
        transport: TRANSPORT,
        session_id: header_str(&parts.headers, SESSION_HEADER),
        protocol_version: header_str(&parts.headers, PROTOCOL_HEADER),
        body: &body,
    };
    Ok(mcp::handle(gateway, incoming, record).await?)
}

fn delete_session(gateway: &Gateway, headers: &HeaderMap) -> Response<Body> {
    let caller = match gateway.auth.authenticate(authorization(headers)) {
        Ok(caller) => caller,
        Err(error) => return error_response(&HttpError::Unauthenticated(error)),
    };
    match header_str(headers, SESSION_HEADER) {
        Some(id) if gateway.sessions.end(id, &caller.username) => empty(StatusCode::NO_CONTENT),
        Some(_) => error_response(&HttpError::Mcp(McpError::SessionNotFound)),
        None => plain(
            StatusCode::BAD_REQUEST,
            "name the session in Mcp-Session-Id\n",
        ),
    }
}

async fn read_body(body: IncomingBody) -> Result<Bytes, HttpError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(HttpError::BodyTooLarge)
        }
        Err(_) => Err(HttpError::BodyRead),
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

/// The one mapping from failures to HTTP statuses; the body is a JSON-RPC error a client can show.
fn error_response(error: &HttpError) -> Response<Body> {
    let (status, code) = match error {
        HttpError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, jsonrpc::code::UNAUTHENTICATED),
        HttpError::Mcp(McpError::Envelope(envelope)) => (StatusCode::BAD_REQUEST, envelope.code()),
        HttpError::Mcp(McpError::SessionNotFound) => {
            (StatusCode::NOT_FOUND, jsonrpc::code::INVALID_REQUEST)
        }
        HttpError::Mcp(McpError::UnsupportedVersion(_) | McpError::VersionMismatch { .. }) => {
            (StatusCode::BAD_REQUEST, jsonrpc::code::INVALID_REQUEST)
        }
        HttpError::UnsupportedMediaType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            jsonrpc::code::INVALID_REQUEST,
        ),
        HttpError::BodyTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            jsonrpc::code::INVALID_REQUEST,
        ),
        HttpError::BodyRead => (StatusCode::BAD_REQUEST, jsonrpc::code::INVALID_REQUEST),
        HttpError::Audit(_) | HttpError::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            jsonrpc::code::INTERNAL_ERROR,
        ),
    };
    let response = json(status, &jsonrpc::error(None, code, error.to_string()));
    match error {
        HttpError::Unauthenticated(cause) => response.with_header(
            header::WWW_AUTHENTICATE,
            &format!(
                "Bearer realm=\"kubegate\", error=\"invalid_token\", error_description=\"{}\"",
                cause.to_string().replace(['"', '\\'], "'")
            ),
        ),
        _ => response,
    }
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
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
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

//! A kubelet stand-in: serves `GET /containerLogs/{namespace}/{pod}/{container}` over TLS, the
//! one kubelet endpoint that the API server's `pods/log` proxies to, from files on disk.
//!
//! A container's log is `<root>/<namespace>/<pod>/<container>.log` (and `.previous.log` for the
//! previous instance); each line is `<RFC 3339 timestamp> <message>`, as the kubelet keeps them.
//! It honours `tailLines`, `sinceSeconds`, `sinceTime`, `previous`, `timestamps` and `limitBytes`.
//! The API server itself checks the caller's RBAC and the container name before it gets here.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use kubegate::dev::CertifiedKey;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Starts serving on a free loopback port (on the current runtime) and returns the port.
pub async fn start(cert: CertifiedKey, root: PathBuf) -> Result<u16> {
    let chain = vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes())?];
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())?;
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let root = Arc::new(root);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let root = Arc::clone(&root);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |request| {
                    let root = Arc::clone(&root);
                    async move { Ok::<_, Infallible>(serve(&root, &request)) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(port)
}

fn serve<B>(root: &std::path::Path, request: &Request<B>) -> Response<Full<Bytes>> {
    let segments: Vec<&str> = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .collect();
    let ["containerLogs", namespace, pod, container] = segments.as_slice() else {
        return text(
            StatusCode::NOT_FOUND,
            "the kubelet stand-in serves /containerLogs only",
        );
    };
    if [namespace, pod, container]
        .iter()
        .any(|s| s.is_empty() || s.contains("..") || s.contains('/'))
    {
        return text(StatusCode::BAD_REQUEST, "bad path");
    }
    let query: HashMap<String, String> =
        form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let flag = |name: &str| query.get(name).is_some_and(|v| v == "true");
    let number = |name: &str| query.get(name).and_then(|v| v.parse::<i64>().ok());
    let previous = flag("previous");
    let file = root.join(namespace).join(pod).join(format!(
        "{container}{}.log",
        if previous { ".previous" } else { "" }
    ));
    let Ok(contents) = std::fs::read_to_string(&file) else {
        let message = if previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{pod}\" is waiting to start: no logs yet")
        };
        return text(StatusCode::BAD_REQUEST, &message);
    };
    let since = number("sinceSeconds")
        .map(|s| jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s))
        .or_else(|| query.get("sinceTime").and_then(|t| t.parse().ok()));
    let mut lines: Vec<(jiff::Timestamp, &str)> = contents
        .lines()
        .filter_map(|line| {
            let (stamp, message) = line.split_once(' ')?;
            Some((stamp.parse().ok()?, message))
        })
        .filter(|(stamp, _)| since.is_none_or(|since| *stamp >= since))
        .collect();
    if let Some(tail) = number("tailLines").and_then(|n| usize::try_from(n).ok()) {
        lines.drain(..lines.len().saturating_sub(tail));
    }
    let mut body = String::new();
    for (stamp, message) in lines {
        if flag("timestamps") {
            body.push_str(&stamp.to_string());
            body.push(' ');
        }
        body.push_str(message);
        body.push('\n');
    }
    if let Some(limit) = number("limitBytes").and_then(|n| usize::try_from(n).ok()) {
        let mut cut = limit.min(body.len());
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    text(StatusCode::OK, &body)
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
}

//! Fetches an identity provider's discovery document and key set: HTTPS only, against the
//! issuer's own CA (or the system's roots), bounded in time and size, never following redirects.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

/// The longest one fetch may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest discovery document or key set read.
const MAX_BYTES: usize = 1024 * 1024;

/// An HTTPS client for one issuer.
pub struct Fetcher {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Fetcher {
    /// A client that trusts `certificate_authority` (PEM certificates, or a file holding them)
    /// or, without it, the system's roots.
    pub fn new(certificate_authority: Option<&str>) -> Result<Fetcher, String> {
        let mut roots = rustls::RootCertStore::empty();
        match certificate_authority {
            Some(ca) => {
                let pem = if ca.trim_start().starts_with("-----BEGIN") {
                    ca.as_bytes().to_vec()
                } else {
                    std::fs::read(ca)
                        .map_err(|e| format!("cannot read certificateAuthority {ca}: {e}"))?
                };
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| format!("certificateAuthority: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("certificateAuthority: {e}"))?;
                }
                if roots.is_empty() {
                    return Err("certificateAuthority holds no certificate".into());
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // A system root rustls cannot parse is skipped, as every TLS client does.
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    tracing::warn!(
                        "no system roots: set issuer.certificateAuthority, or the issuer's keys \
                         cannot be fetched"
                    );
                }
            }
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        Ok(Fetcher {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// GETs `url` and reads its body as JSON; the error says what went wrong in plain words.
    pub async fn get_json(&self, url: &str) -> Result<Value, String> {
        let uri: http::Uri = url.parse().map_err(|_| format!("{url} is not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("{url} is not an https:// URL"));
        }
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("GET {url}: {}", describe(&e)))?;
            let status = response.status();
            if status != http::StatusCode::OK {
                return Err(format!("GET {url}: {status}"));
            }
            let body = Limited::new(response.into_body(), MAX_BYTES)
                .collect()
                .await
                .map_err(|_| format!("GET {url}: the body is over {MAX_BYTES} bytes or broke off"))?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON ({e})"))
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| format!("GET {url}: no answer within {} s", TIMEOUT.as_secs()))?
    }
}

/// The innermost cause of a failed request (a refused connection, a certificate problem).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

//! Builds the rustls server configuration that terminates TLS, offering HTTP/2 and HTTP/1.1 by ALPN.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS server configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {path} (expected PEM `CERTIFICATE` blocks)")]
    ReadCertificates {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the certificate file {0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("cannot read the private key {path} (expected a PEM PKCS#8, PKCS#1 or SEC1 key)")]
    ReadKey {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error(
        "the certificate and key do not make a usable TLS configuration (does the key match the certificate?)"
    )]
    Build(#[source] rustls::Error),
}

/// The first (the server's own) certificate of a PEM chain, if it can be read.
pub fn first_certificate(cert: &Path) -> Option<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(cert).ok()?.next()?.ok()
}

/// Loads a PEM certificate chain and key and makes a server configuration with ALPN `h2`, `http/1.1`.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::ReadCertificates {
            path: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::ReadKey {
        path: key.to_owned(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Build)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Build)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

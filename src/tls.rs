//! Builds the rustls server configuration that terminates TLS, offering HTTP/2 and HTTP/1.1 by
//! ALPN, and keeps its certificate fresh.
//!
//! The certificate and key are read again whenever their files change (checked every
//! [`RELOAD_EVERY`]; cert-manager and the kubelet swap them in place, through symlinks). Each
//! handshake asks the resolver for the current pair, so connections already open keep theirs
//! and new ones get the new one; a pair that does not load (a half-written file, a key that
//! does not match) is logged and the last good pair stays.
//!
//! With `[tls] client_ca`, clients may (or, with `client_auth = "required"`, must) present a
//! certificate that CA signed: its subject becomes the caller (see `auth::certificate`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use crate::config::{ClientAuth, TlsConfig};

/// How often the certificate files are checked for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Why a TLS server configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    #[error("the client CA {path} cannot be used to verify client certificates")]
    ClientCa {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The first (the server's own) certificate of a PEM chain, if it can be read.
pub fn first_certificate(cert: &Path) -> Option<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(cert).ok()?.next()?.ok()
}

/// The server's certificate and key as last loaded, and the files they come from.
pub struct ServerCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Loaded>,
}

struct Loaded {
    /// The files' contents, to tell a change from the same files read again.
    files: (Vec<u8>, Vec<u8>),
    certified: Arc<CertifiedKey>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        Some(Arc::clone(&current.certified))
    }
}

impl ServerCert {
    /// Loads the pair; fails if it does not make a usable certificate.
    pub fn load(cert: &Path, key: &Path) -> Result<ServerCert, TlsError> {
        let files = read_pair(cert, key)?;
        let certified = Arc::new(certified_key(cert, key, &files)?);
        Ok(ServerCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Loaded { files, certified }),
        })
    }

    /// Reads the files again; puts a changed pair in force if it loads. Returns whether it did.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let files = read_pair(&self.cert, &self.key)?;
        if self.current.read().unwrap_or_else(|e| e.into_inner()).files == files {
            return Ok(false);
        }
        let certified = Arc::new(certified_key(&self.cert, &self.key, &files)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Loaded { files, certified };
        Ok(true)
    }

    /// Checks the files every [`RELOAD_EVERY`] for as long as the certificate is in use.
    pub fn keep_fresh(self: &Arc<Self>) {
        let cert = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let Some(cert) = cert.upgrade() else { return };
                match cert.reload() {
                    Ok(true) => {
                        failing = false;
                        tracing::info!(cert = %cert.cert.display(), "TLS certificate reloaded");
                    }
                    Ok(false) => failing = false,
                    // Logged once per failing spell, not every two seconds.
                    Err(error) if !failing => {
                        failing = true;
                        tracing::error!(
                            %error,
                            "the changed TLS certificate does not load; the last good one stays"
                        );
                    }
                    Err(_) => {}
                }
            }
        });
    }
}

fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    Ok((read(cert)?, read(key)?))
}

fn certified_key(
    cert: &Path,
    key: &Path,
    (cert_pem, key_pem): &(Vec<u8>, Vec<u8>),
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::ReadCertificates {
            path: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| TlsError::ReadKey {
        path: key.to_owned(),
        source,
    })?;
    CertifiedKey::from_der(chain, private, &rustls::crypto::ring::default_provider())
        .map_err(TlsError::Build)
}

/// The server configuration for `[tls]`: ALPN `h2`, `http/1.1`; the certificate from `cert`
/// (which the caller keeps fresh with [`ServerCert::keep_fresh`]); client certificates if a
/// client CA is configured.
pub fn server_config(
    tls: &TlsConfig,
    cert: Arc<ServerCert>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Build)?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let client_ca = |source: Box<dyn std::error::Error + Send + Sync>| TlsError::ClientCa {
                path: path.clone(),
                source,
            };
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(path).map_err(|e| client_ca(Box::new(e)))? {
                roots
                    .add(ca.map_err(|e| client_ca(Box::new(e)))?)
                    .map_err(|e| client_ca(Box::new(e)))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match tls.client_auth {
                ClientAuth::Optional => verifier.allow_unauthenticated(),
                ClientAuth::Required => verifier,
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| client_ca(Box::new(e)))?)
        }
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

//! An OpenID provider's public face, served by the test over HTTPS: a discovery document and a
//! JWKS the test can change (rotate keys), take down (503) and count fetches of; and real RSA,
//! EC and Ed25519 keys that sign tokens for it.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kubegate::dev::{DevCa, Usage};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A signing key: its public JWK and what signs with it.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub jwk: Value,
    encoding: EncodingKey,
    /// The public key as PEM (for the HS256-with-the-public-key attack).
    pub public_pem: String,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// A fresh 2048-bit RSA key for `algorithm` (RS* or PS*), named in its JWK's `alg`.
    pub fn rsa(kid: &str, algorithm: Algorithm) -> Result<SigningKey> {
        use rsa::pkcs8::EncodePublicKey;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
        let pem = key.to_pkcs8_pem(LineEnding::LF)?;
        let public_pem = key.to_public_key().to_public_key_pem(LineEnding::LF)?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            algorithm,
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": format!("{algorithm:?}"),
                        "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())}),
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes())?,
            public_pem,
        })
    }

    /// A fresh EC key: P-256 for ES256, P-384 for ES384 (no `alg`: the curve says it).
    pub fn ec(kid: &str, algorithm: Algorithm) -> Result<SigningKey> {
        let (curve, crv) = match algorithm {
            Algorithm::ES384 => (&rcgen::PKCS_ECDSA_P384_SHA384, "P-384"),
            _ => (&rcgen::PKCS_ECDSA_P256_SHA256, "P-256"),
        };
        let pair = rcgen::KeyPair::generate_for(curve)?;
        let point = pair.public_key_raw();
        let half = (point.len() - 1) / 2;
        Ok(SigningKey {
            kid: kid.to_owned(),
            algorithm,
            jwk: json!({"kty": "EC", "crv": crv, "kid": kid,
                        "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..])}),
            encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())?,
            public_pem: pair.public_key_pem(),
        })
    }

    /// A fresh Ed25519 key (EdDSA).
    pub fn ed25519(kid: &str) -> Result<SigningKey> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            algorithm: Algorithm::EdDSA,
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pair.public_key_raw())}),
            encoding: EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes())?,
            public_pem: pair.public_key_pem(),
        })
    }

    /// Signs `claims` with this key, its kid in the header and `typ` as given.
    pub fn sign(&self, typ: &str, claims: &Value) -> Result<String> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// The provider's state, shared with its server.
struct State {
    issuer: String,
    keys: Mutex<Vec<Value>>,
    down: AtomicBool,
    jwks_fetches: AtomicUsize,
}

/// A running provider face on 127.0.0.1.
pub struct Idp {
    pub issuer: String,
    /// The PEM of the CA that signed its HTTPS certificate.
    pub ca_pem: String,
    state: Arc<State>,
}

impl Idp {
    /// Serves discovery and the JWKS of `keys` over HTTPS; `down` makes it answer 503 at first.
    pub async fn start(keys: &[&SigningKey], down: bool) -> Result<Idp> {
        let ca = DevCa::generate("kubegate test IdP CA")?;
        let cert = ca.issue("127.0.0.1", &["127.0.0.1"], None, Usage::Server)?;
        let chain = vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes())?];
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())?;
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let issuer = format!("https://127.0.0.1:{}", listener.local_addr()?.port());
        let state = Arc::new(State {
            issuer: issuer.clone(),
            keys: Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect()),
            down: AtomicBool::new(down),
            jwks_fetches: AtomicUsize::new(0),
        });
        let served = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, &request)) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Idp {
            issuer,
            ca_pem: ca.cert_pem().to_owned(),
            state,
        })
    }

    /// Publishes exactly these keys from now on.
    pub fn publish(&self, keys: &[&SigningKey]) {
        *self.state.keys.lock().unwrap_or_else(|e| e.into_inner()) =
            keys.iter().map(|k| k.jwk.clone()).collect();
    }

    /// Takes the provider down (every request 503) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// How often the JWKS was fetched successfully.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }
}

fn answer(state: &State, request: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let respond = |status: StatusCode, body: Value| {
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        response
    };
    if state.down.load(Ordering::SeqCst) {
        return respond(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "down"}));
    }
    match request.uri().path() {
        "/.well-known/openid-configuration" => respond(
            StatusCode::OK,
            json!({
                "issuer": state.issuer,
                "jwks_uri": format!("{}/jwks", state.issuer),
                "token_endpoint": format!("{}/token", state.issuer),
                "id_token_signing_alg_values_supported": ["RS256", "PS384", "ES384", "EdDSA"],
            }),
        ),
        "/jwks" => {
            state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            let keys = state.keys.lock().unwrap_or_else(|e| e.into_inner()).clone();
            respond(StatusCode::OK, json!({ "keys": keys }))
        }
        _ => respond(StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}

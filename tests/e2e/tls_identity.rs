//! TLS that rotates and identifies: the certificate swapped in place (the kubelet's `..data`
//! symlink swap, as cert-manager's Secrets are mounted) under load without a failed request;
//! client certificates (mTLS) naming callers; and the plain-HTTP listener behind a trusted
//! proxy, whose `X-Forwarded-For` names the source the audit record shows.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use kubegate::dev::{CertifiedKey, DevCa, Usage};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::volume::MountedVolume;
use crate::support::{GatewayOptions, McpClient, TestGateway, cluster::free_port};

/// The TLS Secret as the kubelet mounts it (`tls.crt -> ..data/tls.crt`, `..data -> ..vN`).
struct MountedSecret(MountedVolume);

impl MountedSecret {
    fn new(dir: &Path, pair: &CertifiedKey) -> Result<MountedSecret> {
        let files = [("tls.crt", &*pair.cert_pem), ("tls.key", &*pair.key_pem)];
        Ok(MountedSecret(MountedVolume::new(dir, &files)?))
    }

    /// A new version of the Secret, as one rename.
    fn swap(&mut self, pair: &CertifiedKey) -> Result<()> {
        self.swap_files(&pair.cert_pem, &pair.key_pem)
    }

    fn swap_files(&mut self, cert: &str, key: &str) -> Result<()> {
        self.0.update(&[("tls.crt", cert), ("tls.key", key)])
    }

    fn tls_lines(&self) -> Vec<String> {
        let path = |name: &str| self.0.dir.join(name).display().to_string();
        vec![
            format!("cert = {:?}", path("tls.crt")),
            format!("key = {:?}", path("tls.key")),
        ]
    }
}

fn der(pem: &str) -> Result<Vec<u8>> {
    Ok(CertificateDer::from_pem_slice(pem.as_bytes())?.to_vec())
}

/// A TLS connection to `addr` trusting `ca`, optionally presenting a client certificate.
async fn connect(
    addr: std::net::SocketAddr,
    ca: &str,
    client: Option<&CertifiedKey>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    kubegate::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.as_bytes())?)?;
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = match client {
        Some(pair) => builder.with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(pair.cert_pem.as_bytes())?],
            PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes())?,
        )?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    Ok(connector
        .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
        .await?)
}

/// One HTTP/1.1 POST of `body` to `/mcp` over `stream`; the status and the body.
async fn post<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    headers: &[(&str, &str)],
    body: &Value,
) -> Result<(u16, Value)> {
    let body = body.to_string();
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    // A TLS peer may close without close_notify after `Connection: close`: keep what came.
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn list() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
}

#[tokio::test]
async fn a_certificate_swapped_in_place_under_load_fails_no_request() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = DevCa::generate("rotation CA")?;
    let first = ca.issue("kubegate", &["127.0.0.1"], None, Usage::Server)?;
    let mut secret = MountedSecret::new(dir.path(), &first)?;
    let gateway = TestGateway::start(GatewayOptions {
        tls: secret.tls_lines(),
        ..GatewayOptions::default()
    })
    .await?;
    let token = gateway.token("alice", &[], "team-a");
    let served = |addr| {
        let ca = ca.cert_pem().to_owned();
        async move {
            let tls = connect(addr, &ca, None).await?;
            let leaf = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .cloned();
            anyhow::Ok(leaf.map(|c| c.to_vec()).unwrap_or_default())
        }
    };
    assert_eq!(served(gateway.addr()).await?, der(&first.cert_pem)?);

    // Load: each worker opens a new connection (a new handshake) per request, and one keeps a
    // connection open throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for worker in 0..6 {
        let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
        let (url, ca, token) = (gateway.url.clone(), ca.cert_pem().to_owned(), token.clone());
        workers.push(tokio::spawn(async move {
            let kept = McpClient::new(&url, &ca);
            while !stop.load(Ordering::SeqCst) {
                let client = if worker == 0 {
                    kept.clone()
                } else {
                    McpClient::new(&url, &ca)
                };
                match client.post(Some(&token), &list()).await {
                    Ok(answer) if answer.status == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = ca.issue("kubegate", &["127.0.0.1"], None, Usage::Server)?;
    secret.swap(&second)?;
    let mut rotated = false;
    for _ in 0..60 {
        if served(gateway.addr()).await? == der(&second.cert_pem)? {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotated, "new handshakes get the new certificate within 6 s");
    // A pair that does not match (the key of another certificate) is not taken: the last good
    // certificate stays in force.
    let third = ca.issue("kubegate", &["127.0.0.1"], None, Usage::Server)?;
    secret.swap_files(&third.cert_pem, &first.key_pem)?;
    tokio::time::sleep(kubegate::tls::RELOAD_EVERY * 2).await;
    assert_eq!(served(gateway.addr()).await?, der(&second.cert_pem)?);
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await?;
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
    assert!(ok > 50, "the load ran: {ok} requests");
    Ok(())
}

#[tokio::test]
async fn a_client_certificate_names_its_caller_and_a_token_still_works() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = DevCa::generate("mTLS CA")?;
    let server = ca.issue("kubegate", &["127.0.0.1"], None, Usage::Server)?;
    let secret = MountedSecret::new(dir.path(), &server)?;
    let client_ca = dir.path().join("client-ca.pem");
    std::fs::write(&client_ca, ca.cert_pem())?;
    let mut tls = secret.tls_lines();
    tls.extend([
        format!("client_ca = {:?}", client_ca.display().to_string()),
        "client_username_prefix = \"mtls:\"".into(),
        "client_group_prefix = \"mtls:\"".into(),
        "client_tenant = \"platform\"".into(),
    ]);
    // Token names get their own prefix: certificate and token names must not overlap.
    let auth = format!(
        "[[auth.jwt]]\nissuer.url = {:?}\nissuer.audiences = [{:?}]\n\
         issuer.keys = [{{ file = \"certs/dev-issuer.pub.pem\", algorithm = \"ES256\" }}]\n\
         claimMappings.username = {{ claim = \"sub\", prefix = \"dev:\" }}\n\
         claimMappings.groups = {{ claim = \"groups\", prefix = \"dev:\" }}\n\
         tenant = {{ claim = \"tenant\" }}\n",
        kubegate::dev::DEV_ISSUER,
        kubegate::dev::DEV_AUDIENCE
    );
    let gateway = TestGateway::start(GatewayOptions {
        tls: tls.clone(),
        auth: Some(auth.clone()),
        ..GatewayOptions::default()
    })
    .await?;
    let bot = ca.issue("ci-deployer", &[], Some("release-bots"), Usage::Client)?;
    let (status, body) = post(
        connect(gateway.addr(), ca.cert_pem(), Some(&bot)).await?,
        &[],
        &list(),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["user"]["username"], "mtls:ci-deployer");
    assert_eq!(record["user"]["groups"], json!(["mtls:release-bots"]));
    assert_eq!(record["user"]["tenant"], "platform");
    // Without a certificate, a token is the way in (client_auth = "optional").
    let token = gateway.token("alice", &[], "team-a");
    let bearer = format!("Bearer {token}");
    let (status, _) = post(
        connect(gateway.addr(), ca.cert_pem(), None).await?,
        &[("Authorization", &bearer)],
        &list(),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(
        gateway.audit_records().pop().unwrap_or_default()["user"]["username"],
        "dev:alice"
    );
    let (status, _) = post(
        connect(gateway.addr(), ca.cert_pem(), None).await?,
        &[],
        &list(),
    )
    .await?;
    assert_eq!(status, 401, "neither a certificate nor a token");
    // A certificate from another CA does not complete the handshake.
    let stranger = DevCa::generate("stranger CA")?.issue("mallory", &[], None, Usage::Client)?;
    let refused = match connect(gateway.addr(), ca.cert_pem(), Some(&stranger)).await {
        Err(_) => true,
        // TLS 1.3 reports the client's rejection on the first read.
        Ok(stream) => post(stream, &[], &list()).await.is_err(),
    };
    assert!(refused, "a certificate of an unknown CA is refused");

    // client_auth = "required": no certificate, no connection.
    tls.push("client_auth = \"required\"".into());
    let strict = TestGateway::start(GatewayOptions {
        tls,
        auth: Some(auth),
        ..GatewayOptions::default()
    })
    .await?;
    let without = match connect(strict.addr(), ca.cert_pem(), None).await {
        Err(_) => true,
        Ok(stream) => post(stream, &[("Authorization", &bearer)], &list())
            .await
            .is_err(),
    };
    assert!(
        without,
        "a client without a certificate is refused at the handshake"
    );
    let (status, _) = post(
        connect(strict.addr(), ca.cert_pem(), Some(&bot)).await?,
        &[],
        &list(),
    )
    .await?;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test]
async fn behind_a_trusted_proxy_plain_http_records_the_forwarded_source() -> Result<()> {
    let port = free_port()?;
    let gateway = TestGateway::start(GatewayOptions {
        http: vec![
            format!("plain_listen = \"127.0.0.1:{port}\""),
            "trusted_proxies = [\"127.0.0.1\"]".into(),
        ],
        ..GatewayOptions::default()
    })
    .await?;
    let bearer = format!("Bearer {}", gateway.token("alice", &[], "team-a"));
    let plain = || tokio::net::TcpStream::connect(("127.0.0.1", port));
    let (status, body) = post(
        plain().await?,
        &[
            ("Authorization", &bearer),
            ("X-Forwarded-For", "198.51.100.1, 203.0.113.7"),
        ],
        &list(),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(
        record["sourceIPs"],
        json!(["203.0.113.7"]),
        "the nearest untrusted hop"
    );
    // Plain HTTP still needs a token.
    let (status, _) = post(plain().await?, &[], &list()).await?;
    assert_eq!(status, 401);

    // Without trusted proxies, what a client writes in X-Forwarded-For is ignored.
    let untrusting = TestGateway::start(GatewayOptions::default()).await?;
    let bearer = format!("Bearer {}", untrusting.token("alice", &[], "team-a"));
    let answer = untrusting
        .client()
        .post_raw(
            None,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
                ("authorization", &bearer),
                ("x-forwarded-for", "203.0.113.7"),
            ],
            list().to_string().into_bytes(),
        )
        .await?;
    assert_eq!(answer.status, 200);
    let record = untrusting.audit_records().pop().unwrap_or_default();
    assert_eq!(record["sourceIPs"], json!(["127.0.0.1"]));
    Ok(())
}

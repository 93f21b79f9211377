//! TLS and HTTP versions: HTTP/2 and HTTP/1.1 by ALPN over a real rustls handshake; no plaintext.

use anyhow::Result;
use serde_json::json;

use crate::support::{GatewayOptions, TestGateway};

#[tokio::test]
async fn both_http_versions_are_served_over_tls_and_plaintext_is_not() -> Result<()> {
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let alice = gateway.token("alice", &[], "t");
    let ca = reqwest::Certificate::from_pem(gateway.ca_pem.as_bytes())?;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    for (client, version) in [
        (
            reqwest::Client::builder()
                .tls_certs_only([ca.clone()])
                .build()?,
            reqwest::Version::HTTP_2,
        ),
        (
            reqwest::Client::builder()
                .tls_certs_only([ca.clone()])
                .http1_only()
                .build()?,
            reqwest::Version::HTTP_11,
        ),
    ] {
        let answer = client
            .post(&gateway.url)
            .bearer_auth(&alice)
            .json(&ping)
            .send()
            .await?;
        assert_eq!(answer.version(), version);
        assert_eq!(answer.status(), 200);
        assert_eq!(
            answer.json::<serde_json::Value>().await?["result"],
            json!({})
        );
    }
    // A client that does not trust the dev CA fails the handshake.
    let stranger = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(
            kubegate::dev::DevCa::generate("other")?
                .cert_pem()
                .as_bytes(),
        )?])
        .build()?;
    assert!(
        stranger
            .post(&gateway.url)
            .json(&ping)
            .send()
            .await
            .is_err()
    );
    // Plain HTTP on the TLS port gets no MCP answer.
    let plain = reqwest::Client::new()
        .post(gateway.url.replace("https://", "http://"))
        .json(&ping)
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));

    let health = reqwest::Client::builder().tls_certs_only([ca]).build()?;
    let healthz = gateway.url.replace("/mcp", "/healthz");
    assert_eq!(health.get(&healthz).send().await?.text().await?, "ok\n");
    let get_mcp = health.get(&gateway.url).send().await?;
    assert_eq!(get_mcp.status(), 405);
    Ok(())
}

/// A client that sends a call and hangs up at once: the call still runs to its end and leaves its
/// audit record (hyper drops a request's future when its HTTP/1.1 connection closes mid-request).
#[tokio::test]
async fn a_call_whose_client_hangs_up_is_still_completed_and_audited() -> anyhow::Result<()> {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::AsyncWriteExt;

    use crate::support::cluster::VIEW_ROLE;
    use crate::support::{self, tenant_namespace};

    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "hangup-a",
        Some("tenant-hangup"),
        "hangup-devs",
        VIEW_ROLE,
    )
    .await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("alice", &["hangup-devs"], "tenant-hangup");

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(gateway.ca_pem.as_bytes())?)?;
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let address = gateway
        .url
        .trim_start_matches("https://")
        .trim_end_matches("/mcp")
        .to_owned();
    let tcp = tokio::net::TcpStream::connect(&address).await?;
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("127.0.0.1")?, tcp)
        .await?;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "list-resources", "arguments": {"resourceType": "pods", "namespace": "hangup-a"}}})
    .to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    stream.shutdown().await?;
    drop(stream);

    support::eventually("the hung-up call's audit record", || {
        let done = gateway.audit_records().len() == 1;
        async move { done }
    })
    .await?;
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["mcp"]["tool"], "list-resources");
    assert_eq!(record["kube"][0]["code"], 200, "{record}");
    assert_eq!(record["outcome"], "success");
    Ok(())
}

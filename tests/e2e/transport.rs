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

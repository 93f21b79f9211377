//! Authentication at the door: no valid token, no MCP, and the refusal is audited.

use anyhow::Result;
use serde_json::json;

use crate::support::{GatewayOptions, TestGateway};

#[tokio::test]
async fn requests_without_a_valid_token_get_401_and_are_audited() -> Result<()> {
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});

    let anonymous = client.post(None, &list).await?;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.body["error"]["message"],
        "no bearer token: send `Authorization: Bearer <JWT>`"
    );
    let challenge = anonymous
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok());
    assert!(
        challenge.is_some_and(|c| c.starts_with("Bearer realm=\"kubegate\"")),
        "{challenge:?}"
    );

    // An unsigned token (`alg: none`) is not even a JWT kubegate will read.
    let unsigned = client
        .post(Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."), &list)
        .await?;
    assert_eq!(unsigned.status, 401);
    assert_eq!(
        unsigned.body["error"]["message"],
        "the bearer token is not a well-formed JWT"
    );

    // A token from another issuer key: same claims, wrong signature.
    let other = TestGateway::start(GatewayOptions::default()).await?;
    let stranger = other.token("alice", &[], "tenant");
    let answer = client.post(Some(&stranger), &list).await?;
    assert_eq!(answer.status, 401);
    assert!(
        answer.text.contains("its signature does not verify"),
        "{}",
        answer.text
    );

    let records = gateway.audit_records();
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r["outcome"] == "unauthenticated" && r.get("user").is_none())
    );
    assert_eq!(records[0]["sourceIPs"], json!(["127.0.0.1"]));
    Ok(())
}

#[tokio::test]
async fn a_session_is_bound_to_the_caller_who_opened_it() -> Result<()> {
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &[], "t");
    let bob = gateway.token("bob", &[], "t");
    let opened = client
        .post(
            Some(&alice),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"}}}),
        )
        .await?;
    let session = opened
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let with_session = |token: String| {
        let client = client.clone();
        let session = session.clone();
        let ping = ping.clone();
        async move {
            client
                .post_raw(
                    Some(&token),
                    &[
                        ("content-type", "application/json"),
                        ("mcp-session-id", &session),
                    ],
                    serde_json::to_vec(&ping).unwrap_or_default(),
                )
                .await
        }
    };
    assert_eq!(with_session(alice.clone()).await?.status, 200);
    let hijack = with_session(bob).await?;
    assert_eq!(hijack.status, 404, "bob must not use alice's session");
    Ok(())
}

#[tokio::test]
async fn a_client_finds_where_to_get_a_token_from_the_401_alone() -> Result<()> {
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let host = gateway
        .url
        .trim_start_matches("https://")
        .trim_end_matches("/mcp")
        .to_owned();
    let metadata_url = format!("https://{host}/.well-known/oauth-protected-resource/mcp");

    // No token: a challenge with no error code (RFC 6750 §3.1), pointing at the metadata.
    let anonymous = client.post(None, &list).await?;
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.headers["www-authenticate"].to_str()?;
    assert_eq!(
        challenge,
        format!("Bearer realm=\"kubegate\", resource_metadata=\"{metadata_url}\"")
    );
    // A bad token: invalid_token, and the same pointer.
    let bad = client.post(Some("not.a.jwt"), &list).await?;
    let challenge = bad.headers["www-authenticate"].to_str()?;
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.ends_with(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );

    // The metadata itself, at both well-known paths, without a token.
    for url in [
        metadata_url.clone(),
        format!("https://{host}/.well-known/oauth-protected-resource"),
    ] {
        let document: serde_json::Value = client.http.get(&url).send().await?.json().await?;
        assert_eq!(document["resource"], format!("https://{host}/mcp"), "{url}");
        assert_eq!(
            document["authorization_servers"],
            json!([kubegate::dev::DEV_ISSUER])
        );
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    }
    // A call with a token is not given the pointer.
    let alice = gateway.token("alice", &[], "tenant");
    let answer = client.post(Some(&alice), &list).await?;
    assert_eq!(answer.status, 200);
    assert!(answer.headers.get("www-authenticate").is_none());
    Ok(())
}

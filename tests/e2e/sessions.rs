//! Sessions any replica honours: two kubegates sharing `[mcp] session_key_file` behind no
//! sticky routing, a session opened on one used on the other, and refused (404, as unknown) for
//! another caller, after it is ended, and by a replica with another key.

use anyhow::Result;
use serde_json::json;

use crate::support::{GatewayOptions, TestGateway};

#[tokio::test]
async fn a_session_opened_on_one_replica_is_honoured_by_another() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("session.key");
    std::fs::write(&key, [42u8; 48])?;
    let shared = |key: &std::path::Path| GatewayOptions {
        mcp: vec![format!(
            "session_key_file = {:?}",
            key.display().to_string()
        )],
        ..GatewayOptions::default()
    };
    let one = TestGateway::start(shared(&key)).await?;
    let two = TestGateway::start(shared(&key)).await?;
    let elsewhere = TestGateway::start(GatewayOptions::default()).await?;
    let alice = one.token("alice", &[], "nowhere");
    let opened = one
        .client()
        .post(
            Some(&alice),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .await?;
    let session = opened.headers["mcp-session-id"].to_str()?.to_owned();
    let headers = [
        ("content-type", "application/json"),
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let ping = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))?;
    // The other replica (same key, same issuer in these tests) honours it.
    let alice_on_two = two.token("alice", &[], "nowhere");
    let answer = two
        .client()
        .post_raw(Some(&alice_on_two), &headers, ping.clone())
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let record = two.audit_records().pop().unwrap_or_default();
    assert_eq!(record["mcp"]["sessionId"], session.as_str());
    assert_eq!(record["mcp"]["protocolVersion"], "2025-11-25");
    // Another caller cannot use it, nor a replica with another key.
    let bob = two.token("bob", &[], "nowhere");
    let answer = two
        .client()
        .post_raw(Some(&bob), &headers, ping.clone())
        .await?;
    assert_eq!(answer.status, 404, "{}", answer.text);
    let alice_elsewhere = elsewhere.token("alice", &[], "nowhere");
    let answer = elsewhere
        .client()
        .post_raw(Some(&alice_elsewhere), &headers, ping.clone())
        .await?;
    assert_eq!(answer.status, 404);
    // Ended where it is ended.
    let ended = two
        .client()
        .http
        .delete(&two.url)
        .bearer_auth(&alice_on_two)
        .header("mcp-session-id", &session)
        .send()
        .await?;
    assert_eq!(ended.status(), 204);
    let answer = two
        .client()
        .post_raw(Some(&alice_on_two), &headers, ping)
        .await?;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["id"], 2, "the error echoes the request's id");
    Ok(())
}

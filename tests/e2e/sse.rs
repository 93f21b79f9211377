//! The legacy HTTP+SSE transport as mcp-server-kubernetes's users know it (`GET /sse`, then
//! `POST /messages?sessionId=…`, answers as `event: message`), behind kubegate's TLS and tokens:
//! the stream belongs to the caller who opened it, and calls are decided and impersonated as
//! on any transport.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::support::cluster::VIEW_ROLE;
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace};

/// Reads events from an SSE response until one named `name` arrives; its data.
async fn next_event(
    response: &mut reqwest::Response,
    buffer: &mut String,
    name: &str,
) -> Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let mut event_name = "message";
            let mut data = String::new();
            for line in event.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    event_name = n;
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            if event_name == name && !data.is_empty() {
                return Ok(data);
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .context("no event within 15 s")??
            .context("the stream ended")?;
        buffer.push_str(std::str::from_utf8(&chunk)?);
    }
}

#[tokio::test]
async fn the_legacy_sse_transport_answers_on_the_callers_stream() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "sse-a",
        Some("tenant-sse-a"),
        "sse-a-devs",
        VIEW_ROLE,
    )
    .await?;
    let gateway = TestGateway::start(GatewayOptions {
        mcp: vec!["sse = true".into()],
        ..GatewayOptions::default()
    })
    .await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["sse-a-devs"], "tenant-sse-a");
    let bob = gateway.token("bob", &[], "nowhere");

    // No token, no stream.
    let refused = client.http.get(gateway.url_of("/sse")).send().await?;
    assert_eq!(refused.status(), 401);

    let mut stream = client
        .http
        .get(gateway.url_of("/sse"))
        .bearer_auth(&alice)
        .send()
        .await?;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    let endpoint = next_event(&mut stream, &mut buffer, "endpoint").await?;
    let Some(session) = endpoint.strip_prefix("/messages?sessionId=") else {
        bail!("the endpoint event names /messages: {endpoint}");
    };
    let post = |token: &str, message: Value| {
        client
            .http
            .post(gateway.url_of(&format!("/messages?sessionId={session}")))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .json(&message)
            .send()
    };
    let accepted = post(&alice, json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "sse", "version": "1"}}}))
    .await?;
    assert_eq!(accepted.status(), 202);
    let init: Value =
        serde_json::from_str(&next_event(&mut stream, &mut buffer, "message").await?)?;
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");

    post(
        &alice,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "list-resources", "arguments": {"resourceType": "pods", "namespace": "sse-a"}}}),
    )
    .await?;
    let listed: Value =
        serde_json::from_str(&next_event(&mut stream, &mut buffer, "message").await?)?;
    assert_eq!(listed["id"], 2);
    assert_eq!(listed["result"]["isError"], false, "{listed}");
    let record = gateway
        .audit_records()
        .into_iter()
        .rfind(|r| r["mcp"]["method"] == "tools/call")
        .unwrap_or_default();
    assert_eq!(record["mcp"]["transport"], "sse");
    assert_eq!(record["mcp"]["protocolVersion"], "2024-11-05");
    assert!(!support::impersonated_requests("alice", "/namespaces/sse-a/pods").is_empty());

    // The seed's own example (mcp-server-kubernetes's list_pods): answered on the stream, as an
    // unknown tool here.
    post(
        &alice,
        json!({"jsonrpc": "2.0", "id": 1234, "method": "tools/call",
        "params": {"name": "list_pods", "namespace": "default"}}),
    )
    .await?;
    let unknown: Value =
        serde_json::from_str(&next_event(&mut stream, &mut buffer, "message").await?)?;
    assert_eq!(unknown["id"], 1234);
    assert!(
        unknown["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown tool"))
    );

    // Another caller cannot post to alice's stream.
    let foreign = post(
        &bob,
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
    )
    .await?;
    assert_eq!(foreign.status(), 404);
    Ok(())
}

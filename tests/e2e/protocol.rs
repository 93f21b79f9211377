//! The initialize revisions' remaining rules against the real API server: JSON-RPC batches
//! (2025-03-26 only), each message decided, run and recorded on its own; and a client's
//! `notifications/cancelled` abandoning its own read in flight.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::support::cluster::VIEW_ROLE;
use crate::support::proxy::Proxy;
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace};

async fn session(gateway: &TestGateway, token: &str, version: &str) -> Result<String> {
    let answer = gateway
        .client()
        .post(
            Some(token),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": version, "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .await?;
    Ok(answer.headers["mcp-session-id"].to_str()?.to_owned())
}

#[tokio::test]
async fn a_batch_is_answered_together_and_recorded_message_by_message() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "bt-a", Some("tenant-bt-a"), "bt-a-devs", VIEW_ROLE).await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["bt-a-devs"], "tenant-bt-a");
    let id = session(&gateway, &alice, "2025-03-26").await?;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {
            "name": "list-resources", "arguments": {"resourceType": "pods", "namespace": "bt-a"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {
            "name": "list-resources", "arguments": {"resourceType": "pods", "namespace": "kube-system"}}},
        {"jsonrpc": "2.0", "id": 12, "method": "ping"},
    ]);
    let before = gateway.audit_records().len();
    let headers = [
        ("content-type", "application/json"),
        ("mcp-session-id", id.as_str()),
        ("mcp-protocol-version", "2025-03-26"),
    ];
    let answer = client
        .post_raw(Some(&alice), &headers, serde_json::to_vec(&batch)?)
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let answers = answer.body.as_array().cloned().unwrap_or_default();
    let ids: Vec<&Value> = answers.iter().map(|a| &a["id"]).collect();
    assert_eq!(
        ids,
        [&json!(10), &json!(11), &json!(12)],
        "a notification gets no answer"
    );
    assert_eq!(answers[0]["result"]["isError"], false);
    assert_eq!(
        answers[1]["result"]["isError"], true,
        "each message is decided on its own"
    );
    let records: Vec<Value> = gateway.audit_records().split_off(before);
    assert_eq!(
        records.len(),
        4,
        "one record per message, none for the batch: {records:?}"
    );
    assert_eq!(records[1]["mcp"]["method"], "notifications/initialized");
    assert_eq!(records[2]["outcome"], "denied");

    // Later revisions have no batches.
    let later = session(&gateway, &alice, "2025-06-18").await?;
    let refused = client
        .post_raw(
            Some(&alice),
            &[
                ("content-type", "application/json"),
                ("mcp-session-id", later.as_str()),
                ("mcp-protocol-version", "2025-06-18"),
            ],
            serde_json::to_vec(&batch)?,
        )
        .await?;
    assert_eq!(refused.status, 400);
    assert!(
        refused.text.contains("only part of MCP 2025-03-26"),
        "{}",
        refused.text
    );
    Ok(())
}

#[tokio::test]
async fn notifications_cancelled_abandons_the_callers_read_in_flight() -> Result<()> {
    let plane = support::cluster();
    let admin = plane.client("admin").await?;
    tenant_namespace(&admin, "cn-a", Some("tenant-cn-a"), "cn-a-devs", VIEW_ROLE).await?;
    let upstream = plane.url.trim_start_matches("https://").parse()?;
    let proxy = Proxy::start(upstream).await?;
    let gateway = TestGateway::start(GatewayOptions {
        kube_server: Some(proxy.url()),
        ..GatewayOptions::default()
    })
    .await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["cn-a-devs"], "tenant-cn-a");
    let bob = gateway.token("bob", &[], "nowhere");
    // The API server now hangs: a read would wait for its 30 s deadline.
    proxy.black_hole().await?;
    let started = tokio::time::Instant::now();
    let call = {
        let client = client.clone();
        let alice = alice.clone();
        tokio::spawn(async move {
            client
                .post(
                    Some(&alice),
                    &json!({"jsonrpc": "2.0", "id": 77, "method": "tools/call", "params": {
                        "name": "list-resources",
                        "arguments": {"resourceType": "pods", "namespace": "cn-a"}}}),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cancel = |token: String| {
        let client = client.clone();
        async move {
            client
                .post(
                    Some(&token),
                    &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": {"requestId": 77, "reason": "the user moved on"}}),
                )
                .await
        }
    };
    // Another caller's cancellation does nothing to alice's request.
    assert_eq!(cancel(bob).await?.status, 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "bob cannot cancel alice's call");
    assert_eq!(cancel(alice).await?.status, 202);
    let answer = tokio::time::timeout(Duration::from_secs(10), call).await???;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "abandoned, not timed out"
    );
    let (text, is_error) = support::tool_text(&answer.body["result"]);
    assert!(is_error && text.contains("abandoned"), "{text}");
    let record = gateway
        .audit_records()
        .into_iter()
        .find(|r| r["mcp"]["requestId"] == 77)
        .unwrap_or_default();
    assert_eq!(record["outcome"], "cancelled", "{record}");
    Ok(())
}

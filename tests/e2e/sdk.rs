//! The official MCP Rust SDK (rmcp) as the client, over HTTPS with a bearer token: it initializes
//! (opening a session), lists tools, and calls `list-resources`, allowed and refused.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

use crate::support::cluster::VIEW_ROLE;
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace};

fn call(namespace: &str) -> CallToolRequestParams {
    let arguments = json!({"resourceType": "pods", "namespace": namespace});
    let mut params = CallToolRequestParams::new("list-resources");
    params.arguments = arguments.as_object().cloned();
    params
}

#[tokio::test]
async fn the_official_rust_sdk_initializes_lists_and_calls_tools() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "sdk-a", Some("tenant-sdk"), "sdk-devs", VIEW_ROLE).await?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "checkout-0"},
        "spec": {"containers": [{"name": "app", "image": "registry.example/checkout:1"}]},
    }))?;
    Api::<Pod>::namespaced(admin, "sdk-a")
        .create(&PostParams::default(), &pod)
        .await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("alice", &["sdk-devs"], "tenant-sdk");

    let https = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(gateway.ca_pem.as_bytes())?])
        .build()?;
    let transport = StreamableHttpClientTransport::with_client(
        https,
        StreamableHttpClientTransportConfig::with_uri(gateway.url.clone()).auth_header(token),
    );
    let client = ().serve(transport).await.context("the SDK's initialize")?;

    let server = client.peer_info().context("initialize result")?;
    assert_eq!(
        server.server_info.as_ref().map(|i| i.name.as_str()),
        Some("kubegate")
    );
    assert_eq!(server.protocol_version.to_string(), "2025-11-25");

    let tools = client.list_all_tools().await?;
    let list = tools
        .iter()
        .find(|t| t.name == "list-resources")
        .context("list-resources is listed")?;
    let annotations = list.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.read_only_hint, Some(true));
    assert_eq!(annotations.destructive_hint, Some(false));

    let allowed = client.call_tool(call("sdk-a")).await?;
    assert_eq!(allowed.is_error, Some(false));
    let text = serde_json::to_value(&allowed.content)?.to_string();
    assert!(text.contains("checkout-0"), "{text}");

    let refused = client.call_tool(call("kube-system")).await?;
    assert_eq!(refused.is_error, Some(true));
    let text = serde_json::to_value(&refused.content)?.to_string();
    assert!(text.contains("no policy permits it"), "{text}");

    client.cancel().await?;
    // Every message the SDK sent after initialize carried the session kubegate opened for it.
    let records = gateway.audit_records();
    let opened = records
        .iter()
        .find(|r| r["mcp"]["method"] == "initialize")
        .and_then(|r| r["mcp"]["sessionId"].as_str())
        .context("an initialize record with its session")?
        .to_owned();
    let calls: Vec<_> = records
        .iter()
        .filter(|r| r["mcp"]["method"] == "tools/call")
        .collect();
    assert_eq!(calls.len(), 2);
    assert!(
        calls
            .iter()
            .all(|r| r["mcp"]["sessionId"] == opened.as_str())
    );
    assert!(
        calls
            .iter()
            .all(|r| r["mcp"]["protocolVersion"] == "2025-11-25")
    );
    Ok(())
}

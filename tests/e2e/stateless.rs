//! The 2026-07-28 (stateless) revision over HTTPS: `server/discover`, every request's `_meta`
//! and `Mcp-Method`/`Mcp-Name` headers checked in the revision's order with its status codes
//! and error codes (the request's id echoed), removed methods answered 404, results with
//! `resultType`, caching hints and the server's identity. A request refused on the wire never
//! reaches the policy or Kubernetes.

use anyhow::Result;
use serde_json::{Value, json};

use crate::support::cluster::VIEW_ROLE;
use crate::support::{self, GatewayOptions, McpClient, TestGateway, tenant_namespace};

const VERSION: &str = "2026-07-28";

/// A request refused on the wire: what it is, its headers and params, the status and the code.
type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Value,
    u16,
    i64,
);

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "kubegate-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// POSTs a stateless request with the given headers (`MCP-Protocol-Version`, `Mcp-Method`, …).
async fn send(
    client: &McpClient,
    token: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Result<support::Answer> {
    let mut all = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    all.extend_from_slice(headers);
    client
        .post_raw(Some(token), &all, serde_json::to_vec(&body)?)
        .await
}

#[tokio::test]
async fn the_stateless_revision_discovers_checks_and_decorates() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "sl-a", Some("tenant-sl-a"), "sl-a-devs", VIEW_ROLE).await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["sl-a-devs"], "tenant-sl-a");
    let standard = [("mcp-protocol-version", VERSION)];

    // Discovery: the versions kubegate speaks, its capabilities, its identity in _meta.
    let discover = send(
        &client,
        &alice,
        &[("mcp-protocol-version", VERSION), ("mcp-method", "server/discover")],
        json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta()}}),
    )
    .await?;
    assert_eq!(discover.status, 200, "{}", discover.text);
    let result = &discover.body["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["supportedVersions"][0], VERSION);
    assert!(result["capabilities"]["tools"].is_object());
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "kubegate"
    );

    // A tool call: checked headers, a decorated result, a real list.
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "list-resources", "arguments": {"resourceType": "pods", "namespace": "sl-a"},
        "_meta": meta()}});
    let ok = send(
        &client,
        &alice,
        &[
            ("mcp-protocol-version", VERSION),
            ("mcp-method", "tools/call"),
            ("mcp-name", "  list-resources  "),
        ],
        call.clone(),
    )
    .await?;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["id"], 7);
    assert_eq!(ok.body["result"]["resultType"], "complete");
    assert_eq!(ok.body["result"]["isError"], false);
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["mcp"]["protocolVersion"], VERSION);
    // A list: caching hints, private to the caller.
    let tools = send(
        &client,
        &alice,
        &[
            ("mcp-protocol-version", VERSION),
            ("mcp-method", "tools/list"),
        ],
        json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": {"_meta": meta()}}),
    )
    .await?;
    assert_eq!(tools.body["result"]["cacheScope"], "private");
    assert!(tools.body["result"]["ttlMs"].as_u64().is_some());

    // Each violation, in the revision's order, with its status and code, and the id echoed.
    let mut no_caps = meta();
    no_caps
        .as_object_mut()
        .map(|m| m.remove("io.modelcontextprotocol/clientCapabilities"));
    let mut v999 = meta();
    v999["io.modelcontextprotocol/protocolVersion"] = json!("v999.0.0");
    let records_before = gateway.audit_records().len();
    let cases: Vec<Case> = vec![
        (
            "no _meta",
            standard.to_vec(),
            json!({"name": "list-resources", "arguments": {}}),
            400,
            -32602,
        ),
        (
            "no client capabilities",
            standard.to_vec(),
            json!({"name": "list-resources", "arguments": {}, "_meta": no_caps}),
            400,
            -32602,
        ),
        (
            "version header disagrees",
            vec![("mcp-protocol-version", VERSION)],
            json!({"name": "list-resources", "arguments": {}, "_meta": v999.clone()}),
            400,
            -32020,
        ),
        (
            "unsupported version",
            vec![("mcp-protocol-version", "v999.0.0")],
            json!({"name": "list-resources", "arguments": {}, "_meta": v999}),
            400,
            -32022,
        ),
        (
            "no Mcp-Method",
            standard.to_vec(),
            json!({"name": "list-resources", "arguments": {}, "_meta": meta()}),
            400,
            -32020,
        ),
        (
            "Mcp-Method disagrees",
            vec![
                ("mcp-protocol-version", VERSION),
                ("mcp-method", "tools/list"),
                ("mcp-name", "list-resources"),
            ],
            json!({"name": "list-resources", "arguments": {}, "_meta": meta()}),
            400,
            -32020,
        ),
        (
            "Mcp-Name disagrees",
            vec![
                ("mcp-protocol-version", VERSION),
                ("mcp-method", "tools/call"),
                ("mcp-name", "delete_pod"),
            ],
            json!({"name": "list-resources", "arguments": {}, "_meta": meta()}),
            400,
            -32020,
        ),
    ];
    for (what, headers, params, status, code) in cases {
        let answer = send(
            &client,
            &alice,
            &headers,
            json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": params}),
        )
        .await?;
        assert_eq!(answer.status, status, "{what}: {}", answer.text);
        assert_eq!(
            answer.body["error"]["code"], code,
            "{what}: {}",
            answer.text
        );
        assert_eq!(answer.body["id"], 42, "{what}: the id is echoed");
        if code == -32022 {
            assert_eq!(answer.body["error"]["data"]["requested"], "v999.0.0");
            assert_eq!(answer.body["error"]["data"]["supported"][0], VERSION);
        }
    }
    // None of them reached the policy or Kubernetes.
    for record in &gateway.audit_records()[records_before..] {
        assert!(record.get("decision").is_none(), "{record}");
        assert!(record.get("kube").is_none(), "{record}");
        assert_eq!(record["outcome"], "invalid", "{record}");
    }
    // Methods this revision removed are not found, 404.
    for removed in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
    ] {
        let answer = send(
            &client,
            &alice,
            &[("mcp-protocol-version", VERSION), ("mcp-method", removed)],
            json!({"jsonrpc": "2.0", "id": 5, "method": removed, "params": {"_meta": meta()}}),
        )
        .await?;
        assert_eq!(answer.status, 404, "{removed}: {}", answer.text);
        assert_eq!(answer.body["error"]["code"], -32601);
        assert_eq!(answer.body["id"], 5);
    }
    // An unknown resource names its URI.
    let unknown = send(
        &client,
        &alice,
        &[("mcp-protocol-version", VERSION), ("mcp-method", "resources/read"), ("mcp-name", "test://nope")],
        json!({"jsonrpc": "2.0", "id": 9, "method": "resources/read", "params": {"uri": "test://nope", "_meta": meta()}}),
    )
    .await?;
    assert_eq!(unknown.body["error"]["code"], -32602);
    assert_eq!(unknown.body["error"]["data"]["uri"], "test://nope");
    Ok(())
}

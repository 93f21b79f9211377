//! The MCP surface over Streamable HTTP: initialize, negotiation, tools/list, stateless calls,
//! sessions, and clear errors for malformed messages.

use anyhow::Result;
use serde_json::{Value, json};

use crate::support::{GatewayOptions, TestGateway, tool_text};

fn session_of(answer: &crate::support::Answer) -> String {
    answer
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn initialize_negotiates_a_version_and_opens_a_session() -> Result<()> {
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &[], "t");
    let initialize = |version: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "e2e", "version": "1.0"}}})
    };
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let answer = client.post(Some(&alice), &initialize(version)).await?;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["result"]["protocolVersion"], version);
        assert_eq!(answer.body["result"]["serverInfo"]["name"], "kubegate");
        assert!(answer.body["result"]["capabilities"]["tools"].is_object());
        // A signed session token, of visible ASCII only (the header's rule).
        let session = session_of(&answer);
        assert!(
            session.starts_with("s1.") && session.len() > 60,
            "{session}"
        );
        assert!(session.bytes().all(|b| (0x21..0x7f).contains(&b)));
    }
    // An unknown version gets kubegate's newest, for the client to accept or not.
    let answer = client.post(Some(&alice), &initialize("1999-01-01")).await?;
    assert_eq!(answer.body["result"]["protocolVersion"], "2025-11-25");

    let session = session_of(&answer);
    let initialized = client
        .post_raw(
            Some(&alice),
            &[
                ("content-type", "application/json"),
                ("mcp-session-id", &session),
            ],
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec(),
        )
        .await?;
    assert_eq!(initialized.status, 202);
    assert!(initialized.text.is_empty());

    // A version header that contradicts the session's negotiated version is refused.
    let contradicting = client
        .post_raw(
            Some(&alice),
            &[
                ("content-type", "application/json"),
                ("mcp-session-id", &session),
                ("mcp-protocol-version", "2025-06-18"),
            ],
            br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#.to_vec(),
        )
        .await?;
    assert_eq!(contradicting.status, 400);
    assert!(
        contradicting.text.contains("is not the version"),
        "{}",
        contradicting.text
    );

    let ended = client
        .http
        .delete(&client.url)
        .bearer_auth(&alice)
        .header("mcp-session-id", &session)
        .send()
        .await?;
    assert_eq!(ended.status(), 204);
    let after = client
        .post_raw(
            Some(&alice),
            &[
                ("content-type", "application/json"),
                ("mcp-session-id", &session),
            ],
            br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#.to_vec(),
        )
        .await?;
    assert_eq!(after.status, 404);
    assert!(after.text.contains("no such session"), "{}", after.text);
    Ok(())
}

#[tokio::test]
async fn tools_list_describes_tools_with_schemas_and_honest_annotations() -> Result<()> {
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let alice = gateway.token("alice", &[], "t");
    // A bare request without initialize, exactly as k8sgpt's documented curl sends it.
    let answer = gateway
        .client()
        .post_raw(
            Some(&alice),
            &[("content-type", "application/json")],
            br#"{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}"#.to_vec(),
        )
        .await?;
    assert_eq!(answer.status, 200);
    let tools = answer.body["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let list = tools
        .iter()
        .find(|t| t["name"] == "list-resources")
        .cloned()
        .unwrap_or_default();
    assert_eq!(list["inputSchema"]["required"], json!(["resourceType"]));
    assert_eq!(
        list["inputSchema"]["properties"]["labelSelector"]["type"],
        "string"
    );
    assert_eq!(list["annotations"]["readOnlyHint"], true);
    assert_eq!(list["annotations"]["destructiveHint"], false);
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["mcp"]["method"], "tools/list");
    assert_eq!(
        record["mcp"]["protocolVersion"], "2025-03-26",
        "the HTTP transport's default"
    );
    Ok(())
}

#[tokio::test]
async fn broken_messages_get_clear_errors_and_never_reach_kubernetes() -> Result<()> {
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &[], "t");
    let json_headers = [("content-type", "application/json")];

    let garbage = client
        .post_raw(Some(&alice), &json_headers, b"{\"jsonrpc\":".to_vec())
        .await?;
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.body["error"]["code"], -32700);
    assert_eq!(garbage.body["id"], Value::Null);

    let batch = client
        .post_raw(Some(&alice), &json_headers, b"[{}]".to_vec())
        .await?;
    assert_eq!(batch.status, 400);
    // A bare request names no revision: batches belong to 2025-03-26 only.
    assert!(
        batch.text.contains("only part of MCP 2025-03-26"),
        "{}",
        batch.text
    );

    let form = client
        .post_raw(
            Some(&alice),
            &[("content-type", "application/x-www-form-urlencoded")],
            b"a=b".to_vec(),
        )
        .await?;
    assert_eq!(form.status, 415);

    let huge = client
        .post_raw(Some(&alice), &json_headers, vec![b' '; 2 * 1024 * 1024])
        .await?;
    assert_eq!(huge.status, 413);

    let bad_version = client
        .post_raw(
            Some(&alice),
            &[
                ("content-type", "application/json"),
                ("mcp-protocol-version", "2030-01-01"),
            ],
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.to_vec(),
        )
        .await?;
    assert_eq!(bad_version.status, 400);
    assert!(
        bad_version
            .text
            .contains("unsupported MCP protocol version")
    );

    let unknown_method = client
        .post(
            Some(&alice),
            &json!({"jsonrpc": "2.0", "id": "x", "method": "tools/destroy"}),
        )
        .await?;
    assert_eq!(unknown_method.status, 200);
    assert_eq!(unknown_method.body["error"]["code"], -32601);
    assert_eq!(unknown_method.body["id"], "x");

    let unknown_tool = client
        .post(
            Some(&alice),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                    "params": {"name": "rm-rf", "arguments": {}}}),
        )
        .await?;
    assert_eq!(unknown_tool.body["error"]["code"], -32602);
    assert_eq!(
        unknown_tool.body["error"]["message"],
        "unknown tool `rm-rf`; tools/list shows the tools you may call"
    );

    // Invalid arguments come back as a tool error the model can read and fix.
    let bad_args = client
        .call_tool(
            &alice,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "../etc"}),
        )
        .await?;
    let (text, is_error) = tool_text(&bad_args);
    assert!(is_error);
    assert!(text.contains("is not a namespace name"), "{text}");
    let wrong_type = client
        .call_tool(&alice, "list-resources", json!({"resourceType": 42}))
        .await?;
    assert!(
        tool_text(&wrong_type)
            .0
            .contains("`resourceType`: invalid type: integer `42`, expected a string")
    );

    let records = gateway.audit_records();
    assert_eq!(records.len(), 9);
    assert!(
        records.iter().all(|r| r.get("kube").is_none()),
        "nothing reached Kubernetes"
    );
    assert!(
        records.iter().all(|r| r["outcome"] == "invalid"),
        "{records:?}"
    );
    Ok(())
}

//! `kubegate stdio` as a desktop client runs it: the real binary, JSON-RPC lines on stdin and
//! stdout, the caller from `[stdio]`, decided by the policies and impersonated toward the real
//! API server, every message audited with the identity's source.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::cluster::VIEW_ROLE;
use crate::support::{self, GatewayFiles, GatewayOptions, tenant_namespace};

#[tokio::test]
async fn stdio_serves_the_configured_caller_under_the_policies() -> Result<()> {
    let plane = support::cluster();
    let admin = plane.client("admin").await?;
    tenant_namespace(&admin, "io-a", Some("tenant-io-a"), "io-a-devs", VIEW_ROLE).await?;
    let options = GatewayOptions {
        stdio: vec![
            r#"user = "dana""#.into(),
            r#"groups = ["io-a-devs"]"#.into(),
            r#"tenant = "tenant-io-a""#.into(),
        ],
        ..GatewayOptions::default()
    };
    let files = GatewayFiles::write(plane, &options, "127.0.0.1:0")?;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubegate"))
        .args(["stdio", "--config"])
        .arg(&files.config_file)
        .env("KUBEGATE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut ask = async |message: Value| -> Result<Value> {
        stdin.write_all(format!("{message}\n").as_bytes()).await?;
        stdin.flush().await?;
        if message.get("id").is_none() {
            return Ok(Value::Null);
        }
        let line = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
            .await??
            .context("stdout closed")?;
        Ok(serde_json::from_str(&line)?)
    };
    let init = ask(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "desktop", "version": "1"}}}))
    .await?;
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    ask(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await?;
    let listed = ask(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "list-resources", "arguments": {"resourceType": "pods", "namespace": "io-a"}}}),
    )
    .await?;
    assert_eq!(listed["result"]["isError"], false, "{listed}");
    let refused = ask(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "list-resources", "arguments": {"resourceType": "pods", "namespace": "kube-system"}}}))
    .await?;
    let text = refused["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains(r#"for User::"dana": no policy permits it"#),
        "{text}"
    );
    let junk = ask(json!({"jsonrpc": "2.0", "id": 4, "method": 7})).await;
    // A malformed message is answered, not fatal (its id cannot be read: null).
    assert!(junk.is_err() || junk.as_ref().is_ok_and(|j| j["error"]["code"] == -32600));
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await??;
    assert!(status.success(), "stdio ends when stdin closes: {status}");

    // Impersonated as dana, and audited as the stdio configuration's caller.
    assert!(!support::impersonated_requests("dana", "/namespaces/io-a/pods").is_empty());
    let audit = std::fs::read_to_string(files.dir.path().join("audit.log"))?;
    let records: Vec<Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let calls: Vec<&Value> = records
        .iter()
        .filter(|r| r["mcp"]["method"] == "tools/call")
        .collect();
    assert_eq!(calls.len(), 2);
    for record in calls {
        assert_eq!(record["mcp"]["transport"], "stdio");
        assert_eq!(record["user"]["username"], "dana");
        assert_eq!(record["user"]["source"], "stdio configuration");
        assert_eq!(record["mcp"]["protocolVersion"], "2025-06-18");
    }
    Ok(())
}

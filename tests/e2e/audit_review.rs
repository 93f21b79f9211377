//! `kubegate audit query|stats|join` as an auditor runs them, on a real gateway's audit log and
//! the real API server's: an allowed call pairs with the API server's event of it, which names
//! the caller as the impersonated user; a denied call made no API request; stats count the
//! denial against the caller.

use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::support::cluster::VIEW_ROLE;
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace};

fn kubegate(args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_kubegate"))
        .args(args)
        .env("KUBEGATE_LOG", "error")
        .output()?)
}

/// Runs kubegate, which must succeed and say nothing on stderr; returns its stdout.
fn stdout_of(args: &[&str]) -> Result<String> {
    let out = kubegate(args)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.is_empty() {
        bail!("kubegate {args:?} failed ({}): {stderr}", out.status);
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn json_lines(text: &str) -> Result<Vec<Value>> {
    Ok(text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}

#[tokio::test]
async fn audit_review_pairs_calls_with_the_api_server_and_counts_refusals() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "review-a",
        Some("tenant-review-a"),
        "review-a-devs",
        VIEW_ROLE,
    )
    .await?;
    tenant_namespace(
        &admin,
        "review-b",
        Some("tenant-review-b"),
        "review-b-devs",
        VIEW_ROLE,
    )
    .await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let dana = gateway.token("dana", &["review-a-devs"], "tenant-review-a");
    let list = |ns: &str| json!({"resourceType": "pods", "namespace": ns});
    client
        .call_ok(&dana, "list-resources", list("review-a"))
        .await?;
    client
        .call_err(&dana, "list-resources", list("review-b"))
        .await?;
    let log = gateway.audit_log.display().to_string();

    // query: the allowed call, and the denied one, each as its line was written.
    let allowed = stdout_of(&[
        "audit",
        "query",
        "--user",
        "dana",
        "--decision",
        "allowed",
        "--output",
        "json",
        &log,
    ])?;
    let written = std::fs::read_to_string(&gateway.audit_log)?;
    assert!(
        written.lines().any(|l| l == allowed.trim_end()),
        "{allowed}"
    );
    let allowed = json_lines(&allowed)?;
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    assert_eq!(
        allowed[0]["kube"][0]["uri"],
        "/api/v1/namespaces/review-a/pods?limit=100"
    );
    let kube_audit_id = allowed[0]["kube"][0]["auditID"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!kube_audit_id.is_empty(), "{allowed:?}");

    let denied = json_lines(&stdout_of(&[
        "audit",
        "query",
        "--user",
        "dana",
        "--decision",
        "denied",
        "--namespace",
        "review-b",
        "--group",
        "read",
        "--output",
        "json",
        &log,
    ])?)?;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["outcome"], "denied");
    assert!(
        denied[0].get("kube").is_none(),
        "a denied call sends nothing: {denied:?}"
    );
    let table = stdout_of(&["audit", "query", "--user", "dana", &log])?;
    assert_eq!(table.lines().count(), 3, "a header and two calls: {table}");
    assert!(table.contains("tools/call list-resources"), "{table}");

    // stats: two calls of dana, one denied; dana is the caller refused most.
    let stats: Value =
        serde_json::from_str(&stdout_of(&["audit", "stats", "--output", "json", &log])?)?;
    assert_eq!(
        stats["byUser"],
        json!([{"name": "dana", "calls": 2, "denied": 1}]),
        "{stats}"
    );
    assert_eq!(
        stats["byTenant"],
        json!([{"name": "tenant-review-a", "calls": 2, "denied": 1}])
    );
    assert_eq!(
        stats["topRefused"],
        json!([{"caller": {"user": "dana"}, "refused": 1, "denied": 1,
                "unauthenticated": 0, "throttled": 0}])
    );

    // join: the allowed call's API request beside the API server's event of it (which
    // kube-apiserver writes to its log in batches, a little later).
    let kube_audit = support::cluster().audit_log.display().to_string();
    let join_args = [
        "audit",
        "join",
        "--kube-audit",
        &kube_audit,
        "--gateway-user",
        "kubegate",
        "--output",
        "json",
        &log,
    ];
    let mut join = Value::Null;
    for _ in 0..100 {
        join = serde_json::from_str(&stdout_of(&join_args)?)?;
        if join["unmatchedKubegate"]
            .as_array()
            .is_some_and(Vec::is_empty)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pairs = join["pairs"].as_array().cloned().unwrap_or_default();
    assert_eq!(pairs.len(), 1, "{join}");
    let pair = &pairs[0];
    assert_eq!(pair["kubegate"]["auditID"], kube_audit_id.as_str());
    assert_eq!(pair["kubegate"]["caller"], "dana");
    assert_eq!(pair["apiServer"]["auditID"], kube_audit_id.as_str());
    assert_eq!(pair["apiServer"]["user"], "kubegate");
    assert_eq!(pair["apiServer"]["impersonatedUser"], "dana");
    assert_eq!(pair["apiServer"]["verb"], "list");
    assert_eq!(pair["apiServer"]["code"], 200);
    assert_eq!(pair["disagreements"], json!([]), "{pair}");
    assert_eq!(join["unmatchedKubegate"], json!([]));
    // Other tests share the API server; none of what it saw done as dana is unexplained.
    let unexplained = join["unmatchedApiServer"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        unexplained.iter().all(|e| e["impersonatedUser"] != "dana"),
        "{unexplained:?}"
    );
    Ok(())
}

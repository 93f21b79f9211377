//! Two kubegate processes (the built binary) with one configuration, as two pods of the
//! Deployment are: the same issuer, session key, audit signing key, policies and `[http]`
//! hosts, each with an audit file of its own, against the same API server. One client goes
//! back and forth between them: a session opened on one goes on on the other, a tenant's
//! filters set on one are in effect on the other, the Deployment's probes are answered by
//! both, a policy added to the mounted ConfigMap comes into force on both, and `kubegate audit
//! verify` checks both chains at once and names the one tampered with.

use anyhow::{Context, Result};
use base64::Engine;
use ring::rand::SecureRandom;
use serde_json::{Value, json};

use super::Rendering;
use crate::audit_durable::verify;
use crate::support::cluster::free_port;
use crate::support::cluster::{KUBEGATE_NAMESPACE, VIEW_ROLE};
use crate::support::process::{Launch, ServedProcess};
use crate::support::volume::MountedVolume;
use crate::support::{
    self, Answer, GatewayFiles, GatewayOptions, shipped_policy, tenant_namespace,
};

const TENANT: &str = "kgd-replicas";
const VERSION: &str = "2025-11-25";
/// A policy the test adds to the mounted set while both replicas run.
const NO_LISTING: &str = r#"@id("kgd-replicas-no-filter-listing")
@reason("a policy added to the mounted ConfigMap while kubegate runs")
forbid (principal, action == Action::"list-filters", resource)
when { principal.tenant == "kgd-replicas" };
"#;

/// Sends one JSON-RPC message in session `id` to `replica`.
async fn in_session(
    replica: &ServedProcess,
    token: &str,
    id: &str,
    message: Value,
) -> Result<Answer> {
    let headers = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-session-id", id),
        ("mcp-protocol-version", VERSION),
    ];
    let body = serde_json::to_vec(&message)?;
    replica.client().post_raw(Some(token), &headers, body).await
}

/// Calls `tool` in session `id` on `replica`; the result, which must not be an error.
async fn call(
    replica: &ServedProcess,
    token: &str,
    id: &str,
    tool: &str,
    arguments: Value,
) -> Result<Value> {
    let message = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                         "params": {"name": tool, "arguments": arguments}});
    let answer = in_session(replica, token, id, message).await?;
    assert_eq!(
        answer.status, 200,
        "{tool} on port {}: {}",
        replica.port, answer.text
    );
    let result = answer.body["result"].clone();
    let (text, is_error) = support::tool_text(&result);
    assert!(!is_error, "{tool} on port {}: {text}", replica.port);
    Ok(result)
}

fn active_filters(listed: &Value) -> Vec<&str> {
    listed["structuredContent"]["activeFilters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The records (not checkpoints) of an audit log: a change has two, one per stage.
fn records(path: &std::path::Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["kind"] != "Checkpoint")
        .collect())
}

#[tokio::test]
async fn two_replicas_with_one_configuration_serve_one_client_as_one() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let group = "kgd-replicas-devs";
    tenant_namespace(&admin, TENANT, Some(TENANT), group, VIEW_ROLE).await?;
    // The session key as deploy/README.md makes it: 48 random bytes, base64.
    let keys = tempfile::tempdir()?;
    let session_key = keys.path().join("session.key");
    let mut random = [0u8; 48];
    ring::rand::SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| anyhow::anyhow!("no random bytes"))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(random);
    std::fs::write(&session_key, format!("{encoded}\n"))?;
    // The hosts the Deployment's configuration serves, and the Host its probes send.
    let rendering = Rendering::overlay("production")?;
    let config = rendering
        .all("ConfigMap")
        .find(|m| m["data"]["kubegate.toml"].is_string())
        .context("no ConfigMap holds kubegate.toml")?;
    let config: toml::Table = config["data"]["kubegate.toml"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    let hosts = config["http"]["allowed_hosts"].clone();
    let probe_host = |probe: &str| -> Result<String> {
        let header = &rendering.container()?[probe]["httpGet"]["httpHeaders"][0];
        Ok(header["value"].as_str().unwrap_or_default().to_owned())
    };

    // The policies from one folder laid out as the kubegate-policies ConfigMap is mounted,
    // holding what the base's does.
    let mut options = GatewayOptions {
        policies: Vec::new(),
        policy_dir: true,
        ..GatewayOptions::default()
    };
    let key = session_key.display().to_string();
    options.mcp.push(format!("session_key_file = {key:?}"));
    options.http.push(format!("allowed_hosts = {hosts}"));
    options.http.push("shutdown_delay_seconds = 0".to_owned());
    let port = free_port()?;
    let files = GatewayFiles::write(support::cluster(), &options, &format!("127.0.0.1:{port}"))?;
    let shipped = ["tenant-isolation.cedar", "platform-admins.cedar"].map(shipped_policy);
    let mut policies: Vec<(&str, &str)> = shipped
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    let mut mounted = MountedVolume::new(&files.policy_folder, &policies)?;
    let one = ServedProcess::start_with(files, port, Launch::default()).await?;
    let two = one.replica(Launch::default()).await?;
    assert_ne!(one.audit_log, two.audit_log);

    // Both answer the probes as the kubelet sends them, and refuse a host they do not serve.
    for replica in [&one, &two] {
        let http = replica.client().http;
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let url = format!("https://127.0.0.1:{}{path}", replica.port);
            let answer = http
                .get(&url)
                .header("host", probe_host(probe)?)
                .send()
                .await?;
            assert_eq!(answer.status(), 200, "{probe} on port {}", replica.port);
            let foreign = http
                .get(&url)
                .header("host", "elsewhere.example")
                .send()
                .await?;
            assert_eq!(foreign.status(), 403, "{path} for a foreign host");
        }
    }

    // One session, opened on one and used on both; the token is good on both (one issuer).
    let token = one.token("dana", &[group], TENANT);
    let opened = one
        .client()
        .post(
            Some(&token),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": VERSION, "capabilities": {},
                "clientInfo": {"name": "kgd", "version": "1"}}}),
        )
        .await?;
    assert_eq!(opened.status, 200, "{}", opened.text);
    let id = opened.headers["mcp-session-id"].to_str()?.to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let answer = in_session(&two, &token, &id, initialized).await?;
    assert_eq!(answer.status, 202, "{}", answer.text);

    // Filters set through one replica are those of the other.
    let filters = json!({"filters": "Security"});
    call(&two, &token, &id, "add-filters", filters.clone()).await?;
    let listed = call(&one, &token, &id, "list-filters", json!({})).await?;
    assert!(active_filters(&listed).contains(&"Security"), "{listed}");
    let analyzed = call(&two, &token, &id, "analyze", json!({"namespace": TENANT})).await?;
    let ran = &analyzed["structuredContent"]["analyzers"];
    assert!(
        ran.as_array()
            .is_some_and(|a| a.contains(&json!("Security"))),
        "{analyzed}"
    );
    let stored = crate::analyze::CONFIG_MAP
        .api(&admin, Some(KUBEGATE_NAMESPACE))
        .get(&format!("kubegate-analysis-{TENANT}"))
        .await?;
    assert!(serde_json::to_string(&stored)?.contains("Security"));
    call(&one, &token, &id, "remove-filters", filters).await?;
    let listed = call(&two, &token, &id, "list-filters", json!({})).await?;
    assert!(!active_filters(&listed).contains(&"Security"), "{listed}");

    // A policy added to the ConfigMap is in force on both, once each has reloaded the set.
    policies.push(("kgd-replicas.cedar", NO_LISTING));
    mounted.update(&policies)?;
    for replica in [&one, &two] {
        support::eventually("the policy update reaching both replicas", || async {
            let message = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
                                 "params": {"name": "list-filters", "arguments": {}}});
            let answer = in_session(replica, &token, &id, message).await;
            let (text, refused) = answer.map_or((String::new(), false), |a| {
                support::tool_text(&a.body["result"])
            });
            refused && text.contains("kgd-replicas-no-filter-listing")
        })
        .await?;
    }

    // Each replica recorded what it served, in the one session, in its own chain.
    let (one_log, two_log) = (one.audit_log.clone(), two.audit_log.clone());
    let (one_files, two_files) = (one.stop().await?, two.stop().await?);
    let served = |path: &std::path::Path| -> Result<Vec<String>> {
        Ok(records(path)?
            .iter()
            .filter(|r| r["mcp"]["sessionId"] == id.as_str() && r["stage"] == "ResponseComplete")
            .map(|r| {
                let tool = r["mcp"]["tool"].as_str();
                tool.or(r["mcp"]["method"].as_str())
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect())
    };
    let (on_one, on_two) = (served(&one_log)?, served(&two_log)?);
    // (After these, the refused list-filters calls of the policy update.)
    let on_one_first = ["initialize", "list-filters", "remove-filters"];
    assert!(
        on_one.starts_with(&on_one_first.map(String::from)),
        "{on_one:?}"
    );
    let on_two_first = [
        "notifications/initialized",
        "add-filters",
        "analyze",
        "list-filters",
    ];
    assert!(
        on_two.starts_with(&on_two_first.map(String::from)),
        "{on_two:?}"
    );
    let key = one_files.audit_public_key();
    let (intact, said) = verify(&key, &[&one_log, &two_log])?;
    assert!(intact, "{said}");
    let chains: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("chain through"))
        .collect();
    assert_eq!(chains.len(), 2, "{said}");
    assert!(chains.iter().all(|c| c.ends_with("intact")), "{said}");

    // An edited line in one replica's file breaks that chain, and only that one.
    let text = std::fs::read_to_string(&two_log)?;
    std::fs::write(&two_log, text.replacen("\"dana\"", "\"erin\"", 1))?;
    let (intact, said) = verify(&key, &[&one_log, &two_log])?;
    assert!(!intact, "{said}");
    let broken = |path: &std::path::Path| {
        said.lines()
            .any(|l| l.contains(&path.display().to_string()) && l.ends_with("BROKEN"))
    };
    assert!(broken(&two_log) && !broken(&one_log), "{said}");
    drop(two_files);
    Ok(())
}

//! What `analyze` asks outside kubegate, each a real HTTP server on loopback: a tenant's custom
//! analyzer (named with `config`, only at a prefix the operator allows), whose results are kept
//! only for the namespaces the call covers and which learns nothing of the caller; and the
//! operator's OpenAI-compatible model, which explains problems to clients that cannot sample,
//! seeing placeholders instead of names.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::cluster::VIEW_ROLE;
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace, tool_text};

/// Serves POSTs on a free loopback port, answering each with `answer`; keeps each request.
async fn custom_analyzer(answer: Value) -> Result<(u16, Arc<Mutex<Vec<String>>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = Arc::clone(&kept);
            let body = answer.to_string();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Headers, then as much body as Content-Length says.
                loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if rest.len() >= length {
                            seen.lock().map(|mut s| s.push(text.clone())).ok();
                            break;
                        }
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok((port, seen))
}

#[tokio::test]
async fn a_tenants_custom_analyzer_is_asked_and_cannot_widen_what_the_caller_sees() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "custom-a",
        Some("tenant-custom"),
        "custom-devs",
        VIEW_ROLE,
    )
    .await?;
    let (port, seen) = custom_analyzer(json!({"results": [
        {"kind": "Disk", "name": "custom-a/db-0", "parentObject": "StatefulSet/db",
         "error": [{"Text": "volume db-0 is 97% full", "KubernetesDoc": ""}]},
        {"kind": "Disk", "name": "kube-system/etcd-0",
         "error": [{"Text": "this namespace is not the caller's", "KubernetesDoc": ""}]},
        {"kind": "Node", "name": "node-7",
         "error": [{"Text": "a cluster-scoped result on a namespace call", "KubernetesDoc": ""}]},
    ]}))
    .await?;
    let mut options = GatewayOptions::default().policy(
        "analysis-admins.cedar",
        r#"@id("analysis-admins-config")
           permit (principal in Group::"analysis-admins", action == Action::"config", resource);"#,
    );
    options.sections.push(format!(
        "[analysis]\ncustom_analyzer_allowlist = [\"http://127.0.0.1:{port}/\"]\n"
    ));
    let gateway = TestGateway::start(options).await?;
    let client = gateway.client();
    let alice = gateway.token(
        "alice",
        &["custom-devs", "analysis-admins"],
        "tenant-custom",
    );

    // Only a URL under an allowed prefix is taken: kubegate is not a request forger.
    let refused = client
        .call_err(
            &alice,
            "config",
            json!({"customAnalyzers": [{"name": "meta", "url": "http://169.254.169.254/latest"}]}),
        )
        .await?;
    assert!(refused.contains("is not allowed here"), "{refused}");
    let look_alike = format!("http://127.0.0.1:{port}.evil.example/");
    let refused = client
        .call_err(
            &alice,
            "config",
            json!({"customAnalyzers": [{"name": "x", "url": look_alike}]}),
        )
        .await?;
    assert!(refused.contains("is not allowed here"), "{refused}");
    let url = format!("http://127.0.0.1:{port}/analyze");
    let set = client
        .call_ok(
            &alice,
            "config",
            json!({"customAnalyzers": [{"name": "disk", "url": url}], "cache": {"ttlSeconds": 0}}),
        )
        .await?;
    assert_eq!(set["structuredContent"]["customAnalyzers"][0]["url"], url);
    assert_eq!(set["structuredContent"]["cache"]["ttlSeconds"], 0);

    let analyzed = client
        .call_ok(
            &alice,
            "analyze",
            json!({"namespace": "custom-a", "filters": "Pod"}),
        )
        .await?;
    let results = analyzed["structuredContent"]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = results.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["custom-a/db-0"], "{analyzed}");
    assert_eq!(results[0]["kind"], "Disk");
    assert_eq!(results[0]["parentObject"], "StatefulSet/db");
    let text = tool_text(&analyzed).0;
    assert!(text.contains("volume db-0 is 97% full"), "{text}");
    assert!(
        !text.contains("etcd-0") && !text.contains("node-7"),
        "{text}"
    );

    // It was told which namespaces to look at, and nothing of who asked.
    let requests = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert!(request.starts_with("POST /analyze HTTP/1.1"), "{request}");
    assert!(
        request.contains(r#""namespaces":["custom-a"]"#)
            && request.contains(r#""clusterWide":false"#),
        "{request}"
    );
    let lower = request.to_ascii_lowercase();
    assert!(
        !lower.contains("authorization") && !request.contains("alice"),
        "{request}"
    );

    // A tenant without the permit cannot set one at all.
    let bob = gateway.token("bob", &["custom-devs"], "tenant-custom");
    let denied = client.call_tool(&bob, "config", json!({})).await?;
    assert!(tool_text(&denied).1, "{denied}");
    Ok(())
}

#[tokio::test]
async fn without_sampling_the_operators_model_explains_and_sees_no_names() -> Result<()> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, Patch, PatchParams, PostParams};

    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "model-a",
        Some("tenant-model"),
        "model-devs",
        VIEW_ROLE,
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "model-a");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "billing-0"},
        "spec": {"containers": [{"name": "app", "image": "registry.example/billing:1"}]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let status = json!({"status": {"phase": "Pending", "containerStatuses": [{
        "name": "app", "ready": false, "restartCount": 0, "image": "registry.example/billing:1",
        "imageID": "", "state": {"waiting": {"reason": "ImagePullBackOff",
        "message": "Back-off pulling image \"registry.example/billing:1\""}}}]}});
    pods.patch_status("billing-0", &PatchParams::default(), &Patch::Merge(status))
        .await?;
    let (port, seen) = custom_analyzer(json!({"choices": [{"index": 0, "message": {
        "role": "assistant", "content": "Fix the image tag of object-2 in namespace-1."}}]}))
    .await?;
    let key_dir = tempfile::tempdir()?;
    let key = key_dir.path().join("model.key");
    std::fs::write(&key, "sk-test-123\n")?;
    let mut options = GatewayOptions::default();
    options.sections.push(format!(
        "[analysis.model]\nendpoint = \"http://127.0.0.1:{port}/v1/chat/completions\"\n\
         model = \"test-model\"\napi_key_file = {:?}\n",
        key.display().to_string()
    ));
    let gateway = TestGateway::start(options).await?;
    let alice = gateway.token("alice", &["model-devs"], "tenant-model");
    let answer = gateway
        .client()
        .call_ok(
            &alice,
            "analyze",
            json!({"namespace": "model-a", "filters": "Pod", "explain": true, "anonymize": true}),
        )
        .await?;
    let result = &answer["structuredContent"]["results"][0];
    assert_eq!(result["name"], "model-a/billing-0", "{answer}");
    assert_eq!(
        result["details"], "Fix the image tag of billing-0 in model-a.",
        "the names come back in the answer: {answer}"
    );
    assert_eq!(answer["structuredContent"]["provider"], "openai-compatible");
    let requests = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert!(
        request.starts_with("POST /v1/chat/completions HTTP/1.1"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-test-123"),
        "{request}"
    );
    assert!(request.contains(r#""model":"test-model""#), "{request}");
    assert!(request.contains("ImagePullBackOff"), "{request}");
    assert!(
        !request.contains("billing-0") && !request.contains("model-a"),
        "names reached the model: {request}"
    );
    Ok(())
}

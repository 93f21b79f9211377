//! `analyze` talking back to its client while the client waits: explanations asked of the
//! caller's own model through MCP sampling (the official Rust SDK as the client, answering
//! `sampling/createMessage`), names masked with `anonymize`; progress notifications on an
//! event-stream answer; and the plain answer, with a note, when the client cannot sample.
// rmcp marks sampling deprecated (SEP-2577 proposes its removal); it is part of every protocol
// revision kubegate serves sessions for, and clients offer it today.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rmcp::ServiceExt;
use rmcp::handler::client::ClientHandler;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
    CreateMessageResult, Implementation, Role, SamplingMessage, SamplingMessageContentBlock,
};
use rmcp::service::{RequestContext, RoleClient};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::support::cluster::VIEW_ROLE;
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace, tool_text};

/// A client whose "model" answers every sampling request with a fixed fix, and keeps what it
/// was asked.
#[derive(Clone, Default)]
struct Model {
    asked: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Model {
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, rmcp::ErrorData> {
        let prompt = serde_json::to_value(&params.messages).unwrap_or_default();
        let text = prompt
            .pointer("/0/content/text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.asked.lock().map(|mut a| a.push(text.to_owned())).ok();
        // The model names the object by the name it was given (a placeholder, if masked).
        let object = text
            .split_whitespace()
            .nth(2)
            .and_then(|n| n.split('/').nth(1))
            .unwrap_or("the pod")
            .to_owned();
        let answer = format!("Restart {object} after fixing its image.");
        Ok(CreateMessageResult::new(
            SamplingMessage::new(Role::Assistant, SamplingMessageContentBlock::text(answer)),
            "test-model".into(),
        ))
    }

    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.sampling = Some(Default::default());
        ClientConfig::new(
            capabilities,
            Implementation::new("kubegate-test-sampler", "1"),
        )
    }
}

async fn crash_looping_pod(admin: &kube::Client, ns: &str, name: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(admin.clone(), ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let status = json!({"status": {"phase": "Running", "containerStatuses": [{
        "name": "app", "ready": false, "restartCount": 4, "image": "registry.example/app:1",
        "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff",
        "message": "back-off 40s restarting failed container"}},
        "lastState": {"terminated": {"reason": "Error", "exitCode": 3}}}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(())
}

#[tokio::test]
async fn explanations_come_from_the_callers_own_model_with_names_masked() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "explain-a",
        Some("tenant-explain"),
        "explain-devs",
        VIEW_ROLE,
    )
    .await?;
    crash_looping_pod(&admin, "explain-a", "checkout-5f7d").await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("alice", &["explain-devs"], "tenant-explain");

    let https = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(gateway.ca_pem.as_bytes())?])
        .build()?;
    let transport = StreamableHttpClientTransport::with_client(
        https,
        StreamableHttpClientTransportConfig::with_uri(gateway.url.clone()).auth_header(token),
    );
    let model = Model::default();
    let client = model.clone().serve(transport).await.context("initialize")?;
    let mut call = CallToolRequestParams::new("analyze");
    call.arguments = json!({"namespace": "explain-a", "filters": "Pod", "explain": true,
                            "anonymize": true})
    .as_object()
    .cloned();
    let answer = serde_json::to_value(client.call_tool(call).await?)?;
    let results = answer["structuredContent"]["results"].clone();
    assert_eq!(results[0]["name"], "explain-a/checkout-5f7d", "{answer}");
    // The model saw placeholders only, and the answer has the names back.
    let asked = model.asked.lock().map(|a| a.clone()).unwrap_or_default();
    assert_eq!(
        asked.len(),
        1,
        "one sampling request per problem: {asked:?}"
    );
    assert!(
        !asked[0].contains("checkout-5f7d") && !asked[0].contains("explain-a"),
        "names reached the model: {}",
        asked[0]
    );
    assert!(asked[0].contains("CrashLoopBackOff"), "{}", asked[0]);
    assert_eq!(
        results[0]["details"], "Restart checkout-5f7d after fixing its image.",
        "{answer}"
    );
    assert_eq!(answer["structuredContent"]["provider"], "mcp-sampling");
    let text = answer["content"][0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Explanation: Restart checkout-5f7d"),
        "{text}"
    );
    client.cancel().await?;

    // A client that cannot sample gets the problems and a note saying why nothing explains them.
    let plain = gateway
        .client()
        .call_ok(
            &gateway.token("alice", &["explain-devs"], "tenant-explain"),
            "analyze",
            json!({"namespace": "explain-a", "filters": "Pod", "explain": "true"}),
        )
        .await?;
    assert_eq!(plain["structuredContent"]["results"][0]["details"], "");
    let text = tool_text(&plain).0;
    assert!(text.contains("no language model is available"), "{text}");
    Ok(())
}

#[tokio::test]
async fn a_client_that_asks_for_progress_gets_it_on_an_event_stream_before_the_answer() -> Result<()>
{
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "progress-a",
        Some("tenant-progress"),
        "progress-devs",
        VIEW_ROLE,
    )
    .await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("alice", &["progress-devs"], "tenant-progress");
    let client = gateway.client();
    let message = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "analyze", "arguments": {"namespace": "progress-a"},
        "_meta": {"progressToken": "p-1"}}});
    let answer = client.post(Some(&token), &message).await?;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream"),
        "{}",
        answer.text
    );
    let events: Vec<Value> = answer
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    let progress: Vec<&Value> = events
        .iter()
        .filter(|e| e["method"] == "notifications/progress")
        .collect();
    assert!(progress.len() >= 2, "{events:?}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "p-1")
    );
    let last = events.last().context("no events")?;
    assert_eq!(last["id"], 7, "the answer comes last: {events:?}");
    assert_eq!(last["result"]["structuredContent"]["status"], "OK");

    // Without a progress token the same call is answered with plain JSON.
    let message = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {
        "name": "analyze", "arguments": {"namespace": "progress-a"}}});
    let answer = client.post(Some(&token), &message).await?;
    assert_eq!(
        answer
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_eq!(answer.body["result"]["structuredContent"]["status"], "OK");
    Ok(())
}

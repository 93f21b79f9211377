//! k8sgpt's MCP documentation's curl examples (`../shared/seeds/`), sent as written, with only a
//! bearer token added: the interface k8sgpt's users already know works against kubegate.

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::support::cluster::NODE_NAME;
use crate::support::{self, GatewayOptions, TestGateway};

#[tokio::test]
async fn k8sgpts_documented_requests_work_with_a_token_added() -> Result<()> {
    let plane = support::cluster();
    let admin = plane.client("admin").await?;
    support::cluster_view_for_group(&admin, "platform-admins").await?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "nginx-abc123"},
        "spec": {"nodeName": NODE_NAME, "containers": [{"name": "nginx", "image": "nginx:1.25"}]},
    }))?;
    Api::<Pod>::namespaced(admin, "default")
        .create(&PostParams::default(), &pod)
        .await?;
    let dir = plane.container_logs.join("default").join("nginx-abc123");
    std::fs::create_dir_all(&dir)?;
    let lines: String = (0..150)
        .map(|n| format!("{} GET /{n} 200\n", jiff::Timestamp::now()))
        .collect();
    std::fs::write(dir.join("nginx.log"), lines)?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let carol = gateway.token("carol", &["platform-admins"], "platform");
    // The bodies exactly as the seed's curl examples send them.
    let send = |body: &str| {
        let client = client.clone();
        let carol = carol.clone();
        let body = body.as_bytes().to_vec();
        async move {
            let answer = client
                .post_raw(Some(&carol), &[("content-type", "application/json")], body)
                .await?;
            anyhow::ensure!(answer.status == 200, "{}: {}", answer.status, answer.text);
            anyhow::ensure!(answer.body.get("error").is_none(), "error: {}", answer.text);
            Ok::<Value, anyhow::Error>(answer.body["result"].clone())
        }
    };

    let tools = send(r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}"#).await?;
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for k8sgpt_tool in [
        "cluster-info",
        "list-resources",
        "get-resource",
        "list-namespaces",
        "get-logs",
        "list-events",
    ] {
        assert!(names.contains(&k8sgpt_tool), "{k8sgpt_tool} in {names:?}");
    }

    let pods = send(
        r#"{
"jsonrpc": "2.0",
"id": 2,
"method": "tools/call",
"params": {
"name": "list-resources",
"arguments": {
"resourceType": "pods",
"namespace": "default"
}
}
}"#,
    )
    .await?;
    assert_eq!(pods["isError"], false, "{pods}");
    assert!(support::item_names(&pods).contains(&"nginx-abc123".to_owned()));

    let logs = send(
        r#"{
"jsonrpc": "2.0",
"id": 3,
"method": "tools/call",
"params": {
"name": "get-logs",
"arguments": {
"podName": "nginx-abc123",
"namespace": "default",
"tail": "100"
}
}
}"#,
    )
    .await?;
    let text = support::tool_text(&logs).0;
    assert_eq!(text.lines().count(), 100, "tail 100 of 150 lines");
    assert!(
        text.starts_with("GET /50 200\n") && text.ends_with("GET /149 200\n"),
        "{text}"
    );

    let namespaces = send(
        r#"{
"jsonrpc": "2.0",
"id": 4,
"method": "resources/read",
"params": {
"uri": "namespaces"
}
}"#,
    )
    .await?;
    assert_eq!(namespaces["contents"][0]["uri"], "namespaces");
    let listed: Value = serde_json::from_str(
        namespaces["contents"][0]["text"]
            .as_str()
            .unwrap_or_default(),
    )?;
    assert!(
        listed["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["name"] == "default"),
        "{listed}"
    );

    let prompt = send(
        r#"{
"jsonrpc": "2.0",
"id": 5,
"method": "prompts/get",
"params": {
"name": "troubleshoot-pod",
"arguments": {
"podName": "nginx-abc123",
"namespace": "default"
}
}
}"#,
    )
    .await?;
    let text = prompt["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("get-logs with podName \"nginx-abc123\""),
        "{text}"
    );

    let resources = send(r#"{"jsonrpc": "2.0", "id": 2, "method": "resources/list"}"#).await?;
    // k8sgpt's resource names, each under a URI with a scheme (as MCP's schema wants); the bare
    // names k8sgpt's clients read by work too (above and below).
    let listed: Vec<(&str, &str)> = resources["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["name"].as_str()?, r["uri"].as_str()?)))
        .collect();
    assert_eq!(
        listed,
        [
            ("cluster-info", "k8s://cluster-info"),
            ("namespaces", "k8s://namespaces"),
            ("active-filters", "k8s://active-filters")
        ]
    );
    let prompts = send(r#"{"jsonrpc": "2.0", "id": 3, "method": "prompts/list"}"#).await?;
    let prompt_names: Vec<&str> = prompts["prompts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        prompt_names,
        [
            "troubleshoot-pod",
            "troubleshoot-deployment",
            "troubleshoot-cluster"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn resources_prompts_and_completions_are_decided_per_caller() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    support::tenant_namespace(
        &admin,
        "rp-a",
        Some("tenant-rp"),
        "rp-devs",
        support::cluster::VIEW_ROLE,
    )
    .await?;
    support::tenant_namespace(
        &admin,
        "rp-b",
        Some("tenant-rp-b"),
        "rp-b-devs",
        support::cluster::VIEW_ROLE,
    )
    .await?;
    for name in ["checkout-0", "checkout-1", "cart-0"] {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}))?;
        Api::<Pod>::namespaced(admin.clone(), "rp-a")
            .create(&PostParams::default(), &pod)
            .await?;
    }
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["rp-devs"], "tenant-rp");

    // The object template reads as get-resource does; another tenant's object is refused.
    let read = client
        .request(
            &alice,
            "resources/read",
            json!({"uri": "k8s://rp-a/pods/cart-0"}),
        )
        .await?;
    let object: Value = serde_json::from_str(
        read["result"]["contents"][0]["text"]
            .as_str()
            .unwrap_or_default(),
    )?;
    assert_eq!(object["metadata"]["name"], "cart-0");
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["decision"]["action"], "read-resource");
    assert_eq!(
        record["decision"]["resource"],
        r#"Object::"local/rp-a/Pod/cart-0""#
    );
    let refused = client
        .request(
            &alice,
            "resources/read",
            json!({"uri": "k8s://rp-b/pods/x"}),
        )
        .await?;
    assert_eq!(refused["error"]["code"], -32003);
    let missing = client
        .request(
            &alice,
            "resources/read",
            json!({"uri": "k8s://rp-a/pods/gone"}),
        )
        .await?;
    assert_eq!(missing["error"]["code"], -32002, "{missing}");
    let unknown = client
        .request(
            &alice,
            "resources/read",
            json!({"uri": "file:///etc/passwd"}),
        )
        .await?;
    assert_eq!(unknown["error"]["code"], -32002);
    let info = client
        .request(&alice, "resources/read", json!({"uri": "cluster-info"}))
        .await?;
    assert!(
        info["result"]["contents"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("v1.20.2"))
    );
    let templates = client
        .request(&alice, "resources/templates/list", json!({}))
        .await?;
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        "k8s://{namespace}/{resourceType}/{name}"
    );

    // Prompts are decided on their namespace.
    let prompt = client
        .request(&alice, "prompts/get", json!({"name": "troubleshoot-deployment", "arguments": {"deploymentName": "web", "namespace": "rp-a"}}))
        .await?;
    assert!(
        prompt["result"]["messages"][0]["content"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("kubectl_scale"))
    );
    let refused = client
        .request(
            &alice,
            "prompts/get",
            json!({"name": "troubleshoot-pod", "arguments": {"podName": "x", "namespace": "rp-b"}}),
        )
        .await?;
    assert_eq!(refused["error"]["code"], -32003);
    let incomplete = client
        .request(
            &alice,
            "prompts/get",
            json!({"name": "troubleshoot-pod", "arguments": {"podName": "x"}}),
        )
        .await?;
    assert!(
        incomplete["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("needs the argument `namespace`"))
    );

    // Completions: namespaces alice may use, and pod names she may list.
    let complete = |argument: Value, context: Value| {
        let client = client.clone();
        let alice = alice.clone();
        async move {
            let answer = client
                .request(&alice, "completion/complete", json!({"ref": {"type": "ref/prompt", "name": "troubleshoot-pod"}, "argument": argument, "context": {"arguments": context}}))
                .await?;
            Ok::<Value, anyhow::Error>(answer["result"]["completion"]["values"].clone())
        }
    };
    assert_eq!(
        complete(json!({"name": "namespace", "value": "rp-"}), json!({})).await?,
        json!(["rp-a"])
    );
    assert_eq!(
        complete(
            json!({"name": "podName", "value": "check"}),
            json!({"namespace": "rp-a"})
        )
        .await?,
        json!(["checkout-0", "checkout-1"])
    );
    assert_eq!(
        complete(
            json!({"name": "podName", "value": ""}),
            json!({"namespace": "rp-b"})
        )
        .await?,
        json!([])
    );
    Ok(())
}

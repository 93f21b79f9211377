//! The read tools as two tenants and a platform admin, against the real API server:
//! `cluster-info`, `list-namespaces`, `get-resource`, `get-logs`, `list-events`, and
//! `list-resources`'s paging. Each read costs exactly one API request (none for the two answered
//! from kubegate's caches), and a refusal costs none.

use anyhow::Result;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::support::cluster::{NODE_NAME, VIEW_ROLE};
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace, tool_text};

async fn pod(admin: &kube::Client, ns: &str, name: &str, containers: &[&str]) -> Result<()> {
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| json!({"name": c, "image": "registry.example/app:1"}))
        .collect();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": NODE_NAME, "containers": containers},
    }))?;
    Api::<Pod>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await?;
    Ok(())
}

fn last_record(gateway: &TestGateway) -> Value {
    gateway.audit_records().pop().unwrap_or_default()
}

#[tokio::test]
async fn cluster_info_and_namespaces_come_from_kubegates_caches_as_policy_allows() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "ns-a", Some("tenant-ns-a"), "ns-a-devs", VIEW_ROLE).await?;
    tenant_namespace(
        &admin,
        "ns-a-2",
        Some("tenant-ns-a"),
        "ns-a-devs",
        VIEW_ROLE,
    )
    .await?;
    tenant_namespace(&admin, "ns-b", Some("tenant-ns-b"), "ns-b-devs", VIEW_ROLE).await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["ns-a-devs"], "tenant-ns-a");
    let carol = gateway.token("carol", &["platform-admins"], "platform");

    let info = client.call_ok(&alice, "cluster-info", json!({})).await?;
    assert_eq!(
        info["structuredContent"]["version"]["gitVersion"],
        "v1.20.2"
    );
    assert_eq!(info["structuredContent"]["cluster"], "local");
    assert!(tool_text(&info).0.contains("Kubernetes v1.20.2"));
    let record = last_record(&gateway);
    assert!(record.get("kube").is_none(), "cached: no API request");
    assert_eq!(
        record["decision"]["policies"],
        json!(["everyone-cluster-info"])
    );

    let listed = client.call_ok(&alice, "list-namespaces", json!({})).await?;
    let names: Vec<&str> = listed["structuredContent"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["ns-a", "ns-a-2"]);
    let text = tool_text(&listed).0;
    assert!(
        text.contains("tenant-ns-a") && !text.contains("ns-b"),
        "{text}"
    );
    let record = last_record(&gateway);
    assert!(
        !record.to_string().contains("ns-b"),
        "the record names no hidden namespace: {record}"
    );
    assert!(record.get("kube").is_none());

    // The platform admin sees every namespace, kube-system included.
    let everything = client.call_ok(&carol, "list-namespaces", json!({})).await?;
    let text = tool_text(&everything).0;
    for ns in ["ns-a", "ns-b", "kube-system", "default"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{ns} "))),
            "{ns} in {text}"
        );
    }

    // A caller of no tenant sees no namespace, and the refusal names none.
    let stranger = gateway.token("zed", &[], "nowhere");
    let refused = client
        .call_err(&stranger, "list-namespaces", json!({}))
        .await?;
    assert!(
        !refused.contains("ns-a") && !refused.contains("kube-system"),
        "{refused}"
    );
    Ok(())
}

#[tokio::test]
async fn get_resource_reads_one_object_where_policy_and_rbac_allow() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "get-a",
        Some("tenant-get-a"),
        "get-a-devs",
        VIEW_ROLE,
    )
    .await?;
    tenant_namespace(
        &admin,
        "get-b",
        Some("tenant-get-b"),
        "get-b-devs",
        VIEW_ROLE,
    )
    .await?;
    pod(&admin, "get-a", "web-1", &["app"]).await?;
    pod(&admin, "get-b", "web-1", &["app"]).await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["get-a-devs"], "tenant-get-a");

    let got = client
        .call_ok(
            &alice,
            "get-resource",
            json!({"resourceType": "po", "name": "web-1", "namespace": "get-a"}),
        )
        .await?;
    let object = &got["structuredContent"];
    assert_eq!(object["metadata"]["name"], "web-1");
    assert_eq!(object["metadata"]["namespace"], "get-a");
    assert!(
        object["metadata"].get("managedFields").is_none(),
        "managedFields dropped"
    );
    let text_object: Value = serde_json::from_str(&tool_text(&got).0)?;
    assert_eq!(
        &text_object, object,
        "the text is the same object, as k8sgpt gives it"
    );
    let record = last_record(&gateway);
    assert_eq!(
        record["decision"]["resource"],
        r#"Object::"local/get-a/Pod/web-1""#
    );
    assert_eq!(
        record["kube"].as_array().map(Vec::len),
        Some(1),
        "one API request"
    );
    assert_eq!(
        record["kube"][0]["uri"],
        "/api/v1/namespaces/get-a/pods/web-1"
    );
    let audit_id = record["kube"][0]["auditID"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    support::eventually("the API server's audit event", || {
        let found = support::kube_audit_events(|e| e["auditID"] == audit_id.as_str())
            .iter()
            .any(|e| e["impersonatedUser"]["username"] == "alice" && e["verb"] == "get");
        async move { found }
    })
    .await?;

    let refused = client
        .call_err(
            &alice,
            "get-resource",
            json!({"resourceType": "pods", "name": "web-1", "namespace": "get-b"}),
        )
        .await?;
    assert_eq!(
        refused,
        r#"kubegate refused `get-resource` on Object::"local/get-b/Pod/web-1" for User::"alice": no policy permits it"#
    );
    assert!(last_record(&gateway).get("kube").is_none());
    assert!(support::impersonated_requests("alice", "/namespaces/get-b/").is_empty());

    let missing = client
        .call_err(
            &alice,
            "get-resource",
            json!({"resourceType": "deployments", "name": "nope", "namespace": "get-a"}),
        )
        .await?;
    assert_eq!(
        missing,
        "Deployment \"nope\" was not found in namespace \"get-a\". Call list-resources with \
         resourceType \"deployments\" and namespace \"get-a\" to see what exists."
    );
    // Policy lets alice read her namespace's Secrets, RBAC (the view role) does not.
    let rbac = client
        .call_err(
            &alice,
            "get-resource",
            json!({"resourceType": "secret", "name": "x", "namespace": "get-a"}),
        )
        .await?;
    assert!(
        rbac.contains(r#"secrets "x" is forbidden: User "alice" cannot get resource "secrets""#),
        "{rbac}"
    );
    Ok(())
}

#[tokio::test]
async fn get_logs_reads_through_pods_log_with_the_seed_and_k8sgpt_spellings() -> Result<()> {
    let plane = support::cluster();
    let admin = plane.client("admin").await?;
    tenant_namespace(
        &admin,
        "logs-t",
        Some("tenant-logs-t"),
        "logs-t-devs",
        VIEW_ROLE,
    )
    .await?;
    pod(&admin, "logs-t", "api-0", &["api", "sidecar"]).await?;
    let dir = plane.container_logs.join("logs-t").join("api-0");
    std::fs::create_dir_all(&dir)?;
    let now = jiff::Timestamp::now();
    let old = now - jiff::SignedDuration::from_secs(3600);
    std::fs::write(
        dir.join("api.log"),
        format!("{old} starting\n{now} listening on :8080\n{now} GET /healthz 200\n"),
    )?;
    std::fs::write(
        dir.join("api.previous.log"),
        format!("{old} panic: out of memory\n"),
    )?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["logs-t-devs"], "tenant-logs-t");
    let log = |args: Value| {
        let client = client.clone();
        let alice = alice.clone();
        async move {
            client
                .call_tool(&alice, "get-logs", args)
                .await
                .map(|r| tool_text(&r))
        }
    };

    let (text, error) =
        log(json!({"podName": "api-0", "namespace": "logs-t", "container": "api", "tail": "1"}))
            .await?;
    assert!(!error, "{text}");
    assert_eq!(text, "GET /healthz 200\n");
    let (text, _) =
        log(json!({"podName": "api-0", "namespace": "logs-t", "container": "api", "tailLines": 2}))
            .await?;
    assert_eq!(text, "listening on :8080\nGET /healthz 200\n");
    let (text, _) = log(json!({"podName": "api-0", "namespace": "logs-t", "container": "api", "sinceSeconds": "600"})).await?;
    assert_eq!(text, "listening on :8080\nGET /healthz 200\n");
    let (text, _) = log(
        json!({"podName": "api-0", "namespace": "logs-t", "container": "api", "previous": "true"}),
    )
    .await?;
    assert_eq!(text, "panic: out of memory\n");
    let record = last_record(&gateway);
    assert_eq!(
        record["decision"]["resource"],
        r#"Object::"local/logs-t/Pod/api-0""#
    );
    assert_eq!(record["kube"].as_array().map(Vec::len), Some(1));
    assert!(
        record["kube"][0]["uri"]
            .as_str()
            .is_some_and(|u| u.contains("/pods/api-0/log?") && u.contains("previous=true"))
    );

    // The API server's own words come back: two containers and none named; a wrong name.
    let (text, error) = log(json!({"podName": "api-0", "namespace": "logs-t"})).await?;
    assert!(
        error && text.contains("a container name must be specified for pod api-0"),
        "{text}"
    );
    let (text, error) =
        log(json!({"podName": "api-0", "namespace": "logs-t", "container": "db"})).await?;
    assert!(
        error && text.contains("container db is not valid for pod api-0"),
        "{text}"
    );
    let (text, error) = log(json!({"podName": "gone", "namespace": "logs-t"})).await?;
    assert!(
        error && text.starts_with("Pod \"gone\" was not found in namespace \"logs-t\""),
        "{text}"
    );
    // Another tenant's pod: refused before Kubernetes.
    let bob = gateway.token("bob", &["someone-else"], "tenant-other");
    let refused = client
        .call_err(
            &bob,
            "get-logs",
            json!({"podName": "api-0", "namespace": "logs-t", "container": "api"}),
        )
        .await?;
    assert!(
        refused.starts_with("kubegate refused `get-logs`"),
        "{refused}"
    );
    assert!(support::impersonated_requests("bob", "/namespaces/logs-t/").is_empty());
    Ok(())
}

#[tokio::test]
async fn list_events_filters_by_object_and_puts_the_newest_first() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "ev-a", Some("tenant-ev-a"), "ev-a-devs", VIEW_ROLE).await?;
    let now = jiff::Timestamp::now();
    let events = Api::<Event>::namespaced(admin.clone(), "ev-a");
    for (n, (object, kind, reason, ago)) in [
        ("web-1", "Pod", "BackOff", 300),
        ("web-1", "Pod", "Pulled", 30),
        ("web", "Deployment", "ScalingReplicaSet", 60),
        ("db-0", "Pod", "FailedMount", 5),
    ]
    .into_iter()
    .enumerate()
    {
        let at = (now - jiff::SignedDuration::from_secs(ago)).to_string();
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": format!("ev-{n}")},
            "involvedObject": {"kind": kind, "name": object, "namespace": "ev-a"},
            "reason": reason, "message": format!("{reason} happened"), "type": "Warning",
            "firstTimestamp": at, "lastTimestamp": at, "count": 1,
            "source": {"component": "kubelet"},
        }))?;
        events.create(&PostParams::default(), &event).await?;
    }
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["ev-a-devs"], "tenant-ev-a");

    let all = client
        .call_ok(&alice, "list-events", json!({"namespace": "ev-a"}))
        .await?;
    let reasons: Vec<&str> = all["structuredContent"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        ["FailedMount", "Pulled", "ScalingReplicaSet", "BackOff"],
        "newest first"
    );
    let web = client
        .call_ok(&alice, "list-events", json!({"namespace": "ev-a", "involvedObjectName": "web-1", "involvedObjectKind": "pod", "limit": 1}))
        .await?;
    let items = web["structuredContent"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["reason"], "Pulled");
    let text = tool_text(&web).0;
    assert!(
        text.contains("pod/web-1") && text.contains("1 more older"),
        "{text}"
    );
    let record = last_record(&gateway);
    assert_eq!(record["kube"].as_array().map(Vec::len), Some(1));
    let uri = record["kube"][0]["uri"].as_str().unwrap_or_default();
    assert!(
        uri.contains("fieldSelector=involvedObject.name%3Dweb-1%2CinvolvedObject.kind%3DPod"),
        "the API server filters: {uri}"
    );
    Ok(())
}

#[tokio::test]
async fn long_lists_come_a_page_at_a_time() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "page-a",
        Some("tenant-page-a"),
        "page-a-devs",
        VIEW_ROLE,
    )
    .await?;
    for n in 0..5 {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("cm-{n}")}, "data": {"n": n.to_string()}}),
        )?;
        Api::<ConfigMap>::namespaced(admin.clone(), "page-a")
            .create(&PostParams::default(), &cm)
            .await?;
    }
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["page-a-devs"], "tenant-page-a");
    let first = client
        .call_ok(
            &alice,
            "list-resources",
            json!({"resourceType": "cm", "namespace": "page-a", "limit": "2"}),
        )
        .await?;
    assert_eq!(support::item_names(&first), ["cm-0", "cm-1"]);
    let token = first["structuredContent"]["continue"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!token.is_empty());
    assert_eq!(first["structuredContent"]["remainingItemCount"], 3);
    let text = tool_text(&first).0;
    assert!(
        text.contains("3 more remain") && text.contains(&token),
        "{text}"
    );
    let second = client
        .call_ok(&alice, "list-resources", json!({"resourceType": "configmaps", "namespace": "page-a", "limit": 2, "continue": token}))
        .await?;
    assert_eq!(support::item_names(&second), ["cm-2", "cm-3"]);
    let last = client
        .call_ok(&alice, "list-resources", json!({"resourceType": "configmaps", "namespace": "page-a", "limit": 2, "continue": second["structuredContent"]["continue"]}))
        .await?;
    assert_eq!(support::item_names(&last), ["cm-4"]);
    assert!(last["structuredContent"].get("continue").is_none());
    Ok(())
}

//! `list-resources` through the whole gateway: policy, impersonation, RBAC, discovery, masking.

use anyhow::Result;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::cluster::{EDIT_ROLE, VIEW_ROLE};
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace, tool_text};

async fn pod(admin: &kube::Client, ns: &str, name: &str, app: &str) -> Result<()> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    }))?;
    Api::<Pod>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await?;
    Ok(())
}

/// The names of the objects in a tool result's `structuredContent`.
fn names(result: &Value) -> Vec<String> {
    support::item_names(result)
}

/// The cluster's own audit events with this auditID.
fn kube_audit_events(audit_id: &str) -> Vec<Value> {
    std::fs::read_to_string(&support::cluster().audit_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(audit_id))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test]
async fn a_tenant_member_lists_their_pods_as_themselves_and_is_refused_elsewhere() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "lr-a", Some("tenant-lr-a"), "lr-a-devs", VIEW_ROLE).await?;
    tenant_namespace(&admin, "lr-b", Some("tenant-lr-b"), "lr-b-devs", VIEW_ROLE).await?;
    pod(&admin, "lr-a", "web-1", "web").await?;
    pod(&admin, "lr-a", "db-1", "db").await?;
    pod(&admin, "lr-b", "secret-project", "web").await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["lr-a-devs"], "tenant-lr-a");

    let result = client
        .call_tool(
            &alice,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "lr-a"}),
        )
        .await?;
    let (text, is_error) = tool_text(&result);
    assert!(!is_error, "{text}");
    assert_eq!(names(&result), ["db-1", "web-1"]);
    // The text is a table a model can read: a header and a row per pod.
    assert!(
        text.starts_with("2 pods in namespace \"lr-a\":\nNAME "),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("web-1 ") && l.contains("Pending")),
        "{text}"
    );

    let selected = client
        .call_tool(
            &alice,
            "list-resources",
            json!({"resourceType": "po", "namespace": "lr-a", "labelSelector": "app=web"}),
        )
        .await?;
    assert_eq!(names(&selected), ["web-1"]);

    // kubegate's record names the deciding policy and the API server's Audit-Id...
    let records = gateway.audit_records();
    let allowed = &records[0];
    assert_eq!(allowed["outcome"], "success");
    assert_eq!(allowed["user"]["username"], "alice");
    assert_eq!(allowed["mcp"]["tool"], "list-resources");
    assert_eq!(allowed["decision"]["allowed"], true);
    assert_eq!(
        allowed["decision"]["policies"],
        json!(["tenant-read-own-namespaces"])
    );
    assert_eq!(
        allowed["decision"]["resource"],
        r#"Namespace::"local/lr-a""#
    );
    assert_eq!(allowed["kube"][0]["code"], 200);
    assert_eq!(
        allowed["kube"][0]["uri"],
        "/api/v1/namespaces/lr-a/pods?limit=100"
    );
    let audit_id = allowed["kube"][0]["auditID"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!audit_id.is_empty());
    // ... which joins with the cluster's audit log: kubegate as user, alice as impersonatedUser.
    support::eventually("the API server's audit event", || {
        let found = !kube_audit_events(&audit_id).is_empty();
        async move { found }
    })
    .await?;
    let event = &kube_audit_events(&audit_id)[0];
    assert_eq!(event["user"]["username"], "kubegate");
    assert_eq!(event["impersonatedUser"]["username"], "alice");
    assert!(
        event["impersonatedUser"]["groups"]
            .as_array()
            .is_some_and(|g| g.contains(&json!("lr-a-devs")))
    );
    assert_eq!(event["objectRef"]["namespace"], "lr-a");
    assert_eq!(event["verb"], "list");

    // Another tenant's namespace: refused by policy, and Kubernetes is never asked.
    let refused = client
        .call_tool(
            &alice,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "lr-b"}),
        )
        .await?;
    let (text, is_error) = tool_text(&refused);
    assert!(is_error);
    assert_eq!(
        text,
        r#"kubegate refused `list-resources` on Namespace::"local/lr-b" for User::"alice": no policy permits it"#
    );
    assert!(!text.contains("secret-project"));
    let records = gateway.audit_records();
    let denied = records.last().cloned().unwrap_or_default();
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["decision"]["allowed"], false);
    assert!(
        denied.get("kube").is_none(),
        "no Kubernetes request: {denied}"
    );
    let cluster_log = std::fs::read_to_string(&support::cluster().audit_log)?;
    assert!(
        !cluster_log
            .lines()
            .any(|l| l.contains(r#""impersonatedUser":{"username":"alice""#)
                && l.contains("/namespaces/lr-b/")),
        "alice's request for lr-b reached the API server"
    );

    // All namespaces means the cluster: not alice's.
    let everything = client
        .call_tool(&alice, "list-resources", json!({"resourceType": "pods"}))
        .await?;
    assert!(tool_text(&everything).1);
    Ok(())
}

#[tokio::test]
async fn kubernetes_rbac_still_judges_the_impersonated_caller() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    // Labelled for dave's tenant, so the policy permits; but only another group may view it.
    tenant_namespace(
        &admin,
        "rbac-c",
        Some("tenant-rbac"),
        "not-daves-group",
        VIEW_ROLE,
    )
    .await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let dave = gateway.token("dave", &["daves-group"], "tenant-rbac");
    let result = gateway
        .client()
        .call_tool(
            &dave,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "rbac-c"}),
        )
        .await?;
    let (text, is_error) = tool_text(&result);
    assert!(is_error);
    assert!(
        text.contains(r#"pods is forbidden: User "dave" cannot list resource "pods""#),
        "{text}"
    );
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["decision"]["allowed"], true);
    assert_eq!(record["kube"][0]["code"], 403);
    assert_eq!(record["outcome"], "error");
    Ok(())
}

#[tokio::test]
async fn platform_admins_list_across_namespaces_and_kinds_resolve_by_discovery() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "disc-a",
        Some("tenant-disc"),
        "disc-devs",
        VIEW_ROLE,
    )
    .await?;
    support::cluster_view_for_group(&admin, "platform-admins").await?;
    // Kubernetes 1.20 serves CronJob only as batch/v1beta1, though batch/v1 is preferred.
    let cronjobs = ApiResource::from_gvk(&GroupVersionKind::gvk("batch", "v1beta1", "CronJob"));
    let cronjob: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "batch/v1beta1", "kind": "CronJob",
        "metadata": {"name": "nightly-report"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "report", "image": "registry.example/report:1"}]}}}}},
    }))?;
    Api::<DynamicObject>::namespaced_with(admin.clone(), "disc-a", &cronjobs)
        .create(&PostParams::default(), &cronjob)
        .await?;
    pod(&admin, "disc-a", "lonely", "x").await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let carol = gateway.token("carol", &["platform-admins"], "platform");
    let client = gateway.client();
    let listed = client
        .call_tool(
            &carol,
            "list-resources",
            json!({"resourceType": "cronjobs", "namespace": "disc-a"}),
        )
        .await?;
    let (text, is_error) = tool_text(&listed);
    assert!(!is_error, "{text}");
    assert_eq!(names(&listed), ["nightly-report"]);
    assert!(text.contains("0 3 * * *"), "the schedule column: {text}");
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(
        record["kube"][0]["uri"],
        "/apis/batch/v1beta1/namespaces/disc-a/cronjobs?limit=100"
    );

    let everywhere = client
        .call_tool(&carol, "list-resources", json!({"resourceType": "pods"}))
        .await?;
    let (text, is_error) = tool_text(&everywhere);
    assert!(!is_error, "{text}");
    assert!(names(&everywhere).contains(&"lonely".to_owned()));
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.contains("across the namespaces")),
        "{text}"
    );
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("NAMESPACE ")),
        "{text}"
    );
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["decision"]["resource"], r#"Cluster::"local""#);
    assert_eq!(
        record["decision"]["policies"],
        json!(["platform-admins-read-all"])
    );
    Ok(())
}

#[tokio::test]
async fn secret_values_are_masked_unless_reveal_secrets_is_granted() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    // The edit role lets the group read secrets in Kubernetes; masking is kubegate's own layer.
    tenant_namespace(&admin, "sec-a", Some("tenant-sec"), "sec-devs", EDIT_ROLE).await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "db-password"},
        "stringData": {"password": "hunter2"},
    }))?;
    Api::<Secret>::namespaced(admin.clone(), "sec-a")
        .create(&PostParams::default(), &secret)
        .await?;
    let hunter2 = "aHVudGVyMg==";
    let list = json!({"resourceType": "secrets", "namespace": "sec-a"});

    let masked = TestGateway::start(GatewayOptions::default()).await?;
    let erin = masked.token("erin", &["sec-devs"], "tenant-sec");
    let result = masked
        .client()
        .call_tool(&erin, "list-resources", list.clone())
        .await?;
    let (text, is_error) = tool_text(&result);
    assert!(!is_error, "{text}");
    assert!(!result.to_string().contains(hunter2), "{result}");
    let item = result["structuredContent"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["metadata"]["name"] == "db-password")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        item["data"]["password"],
        "<masked: grant reveal-secrets to see values>"
    );

    let mut options = GatewayOptions::default();
    options.policies.push((
        "reveal.cedar".into(),
        r#"@id("erin-reveals") permit (principal == User::"erin", action == Action::"reveal-secrets", resource);"#.into(),
    ));
    let revealing = TestGateway::start(options).await?;
    let erin = revealing.token("erin", &["sec-devs"], "tenant-sec");
    let result = revealing
        .client()
        .call_tool(&erin, "list-resources", list)
        .await?;
    assert!(result.to_string().contains(hunter2), "{result}");
    let record = revealing.audit_records().pop().unwrap_or_default();
    assert_eq!(record["decision"]["grants"][0]["action"], "reveal-secrets");
    assert_eq!(record["decision"]["grants"][0]["allowed"], true);
    assert_eq!(
        record["decision"]["grants"][0]["policies"],
        json!(["erin-reveals"])
    );
    Ok(())
}

#[tokio::test]
async fn an_answer_past_the_memory_bound_is_refused_and_gives_its_memory_back() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "lr-mem",
        Some("tenant-lr-mem"),
        "lr-mem-devs",
        VIEW_ROLE,
    )
    .await?;
    // Two pods of ~200 KB each (a large annotation): their list, counted three times, is
    // larger than a 1 MiB bound; one of them alone is not.
    for name in ["big-1", "big-2"] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {"example.com/blob": "x".repeat(200_000)}},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
        }))?;
        Api::<Pod>::namespaced(admin.clone(), "lr-mem")
            .create(&PostParams::default(), &pod)
            .await?;
    }
    let gateway = TestGateway::start(GatewayOptions {
        kubernetes: vec!["answer_memory_mib = 1".to_owned()],
        ..GatewayOptions::default()
    })
    .await?;
    let client = gateway.client();
    let token = gateway.token("dana", &["lr-mem-devs"], "tenant-lr-mem");
    let all = json!({"resourceType": "pods", "namespace": "lr-mem"});
    let result = client.call_tool(&token, "list-resources", all).await?;
    let (text, is_error) = tool_text(&result);
    assert!(is_error, "{text}");
    assert!(
        text.contains(
            "this answer alone is larger than kubegate's memory bound for answers (1 MiB"
        ) && text.contains("limit"),
        "{text}"
    );
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["outcome"], "throttled", "{record}");
    // What the refused call had counted came back: a page of one fits, again and again.
    for _ in 0..3 {
        let one = json!({"resourceType": "pods", "namespace": "lr-mem", "limit": 1});
        let result = client.call_tool(&token, "list-resources", one).await?;
        let (text, is_error) = tool_text(&result);
        assert!(!is_error, "{text}");
        assert_eq!(names(&result).len(), 1);
    }
    Ok(())
}

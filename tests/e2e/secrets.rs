//! A known secret value, put where Secrets leak (a Secret, its last-applied annotation, another
//! object's last-applied annotation, a Secret applied through `kubectl_apply`, a JSON log line,
//! a Helm release's manifest), never comes back from any tool, resource, prompt, completion or
//! audit record without `reveal-secrets`.

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::support::cluster::{EDIT_ROLE, NODE_NAME};
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace};

const VALUE: &str = "s3cr3t-v4lue-7d1f";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[tokio::test]
async fn a_secret_value_never_leaves_kubegate_without_reveal_secrets() -> Result<()> {
    let plane = support::cluster();
    let admin = plane.client("admin").await?;
    tenant_namespace(
        &admin,
        "leak-a",
        Some("tenant-leak"),
        "leak-devs",
        EDIT_ROLE,
    )
    .await?;
    let encoded = STANDARD.encode(VALUE);
    let secret_json = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "leak-a"},
                             "stringData": {"password": VALUE}});
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "db", "annotations": {LAST_APPLIED: secret_json.to_string()}},
        "stringData": {"password": VALUE},
    }))?;
    Api::<Secret>::namespaced(admin.clone(), "leak-a")
        .create(&PostParams::default(), &secret)
        .await?;
    let list_json = json!({"apiVersion": "v1", "kind": "List", "items": [secret_json]});
    let config_map: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "bundle", "annotations": {LAST_APPLIED: list_json.to_string()}},
        "data": {"note": "holds nothing secret itself"},
    }))?;
    Api::<ConfigMap>::namespaced(admin.clone(), "leak-a")
        .create(&PostParams::default(), &config_map)
        .await?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "leaky-0"},
        "spec": {"nodeName": NODE_NAME, "containers": [{"name": "app", "image": "registry.example/app:1"}]},
    }))?;
    Api::<Pod>::namespaced(admin.clone(), "leak-a")
        .create(&PostParams::default(), &pod)
        .await?;
    let dir = plane.container_logs.join("leak-a").join("leaky-0");
    std::fs::create_dir_all(&dir)?;
    let now = jiff::Timestamp::now();
    std::fs::write(
        dir.join("app.log"),
        format!(
            "{now} read secret\n{now} {}\n",
            json!({"kind": "Secret", "data": {"password": encoded}})
        ),
    )?;

    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]}}},
    }))?;
    Api::<Deployment>::namespaced(admin.clone(), "leak-a")
        .create(&PostParams::default(), &deployment)
        .await?;
    // A Helm release whose manifest holds the value in a Secret.
    let chart_secret = format!(
        "---\n# Source: vault/templates/secret.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: vault-creds\nstringData:\n  password: {VALUE}\n"
    );
    let release: Secret = serde_json::from_value(support::helm_release_secret(
        "vault",
        "leak-a",
        1,
        "deployed",
        &chart_secret,
    ))?;
    Api::<Secret>::namespaced(admin.clone(), "leak-a")
        .create(&PostParams::default(), &release)
        .await?;
    // carol may read Secrets cluster-wide in Kubernetes (and the platform-admins policy lets
    // her ask); kubegate must still mask them.
    let role: k8s_openapi::api::rbac::v1::ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "leak-secret-reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets", "configmaps", "events"], "verbs": ["get", "list"]}],
    }))?;
    match Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => return Err(error.into()),
    }
    support::cluster_role_for_group(&admin, "leak-admins", "leak-secret-reader").await?;

    let gateway = TestGateway::start(GatewayOptions::with_tenant_edit()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["leak-devs"], "tenant-leak");
    let carol = gateway.token("carol", &["platform-admins", "leak-admins"], "platform");
    let mut answers: Vec<(String, Value)> = Vec::new();
    let applied = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: applied}}\nstringData:\n  token: {VALUE}\n"
    );
    for (tool, arguments) in [
        (
            "kubectl_apply",
            json!({"manifest": applied, "namespace": "leak-a"}),
        ),
        (
            "kubectl_apply",
            json!({"manifest": applied, "namespace": "leak-a", "dryRun": true}),
        ),
        (
            "list-resources",
            json!({"resourceType": "secrets", "namespace": "leak-a"}),
        ),
        (
            "list-resources",
            json!({"resourceType": "configmaps", "namespace": "leak-a"}),
        ),
        (
            "get-resource",
            json!({"resourceType": "secret", "name": "db", "namespace": "leak-a"}),
        ),
        (
            "get-resource",
            json!({"resourceType": "secret", "name": "applied", "namespace": "leak-a"}),
        ),
        (
            "get-resource",
            json!({"resourceType": "configmap", "name": "bundle", "namespace": "leak-a"}),
        ),
        (
            "get-logs",
            json!({"podName": "leaky-0", "namespace": "leak-a"}),
        ),
        ("list-events", json!({"namespace": "leak-a"})),
    ] {
        let result = client.call_ok(&alice, tool, arguments.clone()).await?;
        answers.push((format!("{tool} {arguments}"), result));
    }
    let read = client
        .request(
            &alice,
            "resources/read",
            json!({"uri": "k8s://leak-a/secrets/db"}),
        )
        .await?;
    answers.push(("resources/read".to_owned(), read));
    // Every other tool, resource, prompt and completion, as the tenant and as an administrator.
    for (who, tool, arguments) in [
        (&alice, "cluster-info", json!({})),
        (&alice, "list-namespaces", json!({})),
        (&carol, "list-resources", json!({"resourceType": "secrets"})),
        (
            &carol,
            "list-resources",
            json!({"resourceType": "configmaps"}),
        ),
        (&carol, "list-events", json!({})),
        (
            &alice,
            "kubectl_scale",
            json!({"name": "web", "namespace": "leak-a", "replicas": 2}),
        ),
        (
            &alice,
            "uninstall_helm_chart",
            json!({"name": "vault", "namespace": "leak-a", "dryRun": true}),
        ),
        (
            &alice,
            "delete_pod",
            json!({"name": "leaky-0", "namespace": "leak-a", "dryRun": true}),
        ),
        (
            &alice,
            "delete_deployment",
            json!({"name": "web", "namespace": "leak-a", "dryRun": true}),
        ),
        (
            &alice,
            "cleanup",
            json!({"namespace": "leak-a", "dryRun": true}),
        ),
        (
            &alice,
            "uninstall_helm_chart",
            json!({"name": "vault", "namespace": "leak-a"}),
        ),
    ] {
        let result = client.call_tool(who, tool, arguments.clone()).await?;
        answers.push((format!("{tool} {arguments}"), result));
    }
    for (method, params) in [
        ("resources/read", json!({"uri": "cluster-info"})),
        ("resources/read", json!({"uri": "namespaces"})),
        ("resources/list", json!({})),
        (
            "prompts/get",
            json!({"name": "troubleshoot-pod", "arguments": {"podName": "leaky-0", "namespace": "leak-a"}}),
        ),
        (
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "troubleshoot-pod"},
            "argument": {"name": "podName", "value": ""}, "context": {"arguments": {"namespace": "leak-a"}}}),
        ),
        ("tools/list", json!({})),
    ] {
        let answer = client.request(&alice, method, params.clone()).await?;
        answers.push((format!("{method} {params}"), answer));
    }
    // The cluster-wide Secret list did show the Secrets, masked.
    let secrets = answers
        .iter()
        .find(|(what, _)| what.starts_with("list-resources") && what.contains("\"secrets\"}"))
        .map(|(_, answer)| answer.clone())
        .unwrap_or_default();
    assert!(
        support::item_names(&secrets).contains(&"db".to_owned()),
        "{secrets}"
    );

    for (what, answer) in &answers {
        let text = answer.to_string();
        assert!(
            !text.contains(VALUE) && !text.contains(&encoded),
            "{what} leaked the value: {text}"
        );
    }
    // The release really was uninstalled (its Secret read, decoded and removed).
    assert!(
        Api::<Secret>::namespaced(admin.clone(), "leak-a")
            .get_opt("sh.helm.release.v1.vault.v1")
            .await?
            .is_none()
    );
    // The masks are where the values were.
    let db = &answers[4].1["structuredContent"];
    assert_eq!(db["data"]["password"], kubegate::tool::MASK);
    assert_eq!(
        db["metadata"]["annotations"][LAST_APPLIED],
        kubegate::tool::MASK
    );
    let log = support::tool_text(&answers[7].1).0;
    assert!(
        log.starts_with("read secret\n") && log.contains(kubegate::tool::MASK),
        "{log}"
    );
    // The secret really is there, for someone allowed to see it.
    assert!(
        Api::<Secret>::namespaced(admin.clone(), "leak-a")
            .get("applied")
            .await?
            .data
            .is_some()
    );
    // And the audit log holds no value either: the applied manifest is recorded masked.
    let audit = std::fs::read_to_string(&gateway.audit_log)?;
    assert!(
        !audit.contains(VALUE) && !audit.contains(&encoded),
        "the audit log leaked the value"
    );
    assert!(audit.contains(kubegate::tool::MASK));

    // With reveal-secrets granted, the same read shows the value.
    let revealing = TestGateway::start(GatewayOptions::with_tenant_edit().policy(
        "reveal.cedar",
        r#"@id("alice-reveals") permit (principal == User::"alice", action == Action::"reveal-secrets", resource);"#,
    ))
    .await?;
    let alice = revealing.token("alice", &["leak-devs"], "tenant-leak");
    let shown = revealing
        .client()
        .call_ok(
            &alice,
            "get-resource",
            json!({"resourceType": "secret", "name": "db", "namespace": "leak-a"}),
        )
        .await?;
    assert_eq!(
        shown["structuredContent"]["data"]["password"],
        encoded.as_str()
    );
    Ok(())
}

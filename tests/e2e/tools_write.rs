//! The write tools (`kubectl_apply`, `kubectl_scale`) against the real API server, as the caller:
//! server-side apply with the creator's label, all or nothing, dry runs, RBAC through
//! impersonation, and the audit record on disk before anything reaches Kubernetes.

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::json;

use crate::support::cluster::{EDIT_ROLE, VIEW_ROLE};
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example/web:1}]
";

#[tokio::test]
async fn apply_creates_and_updates_as_the_caller_with_their_label() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "wr-a", Some("tenant-wr-a"), "wr-a-devs", EDIT_ROLE).await?;
    let gateway = TestGateway::start(GatewayOptions::with_tenant_edit()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["wr-a-devs"], "tenant-wr-a");
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {{kubegate.io/created-by: mallory}}\ndata:\n  color: blue\n---\n{DEPLOYMENT}"
    );

    let applied = client
        .call_ok(
            &alice,
            "kubectl_apply",
            json!({"manifest": manifest, "namespace": "wr-a"}),
        )
        .await?;
    assert_eq!(
        support::tool_text(&applied).0,
        "configmap/settings in namespace wr-a created\ndeployment.apps/web in namespace wr-a created\n"
    );
    let configmaps = Api::<ConfigMap>::namespaced(admin.clone(), "wr-a");
    let settings = configmaps.get("settings").await?;
    let labels = settings.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("kubegate.io/created-by").map(String::as_str),
        Some("alice"),
        "the manifest cannot name another creator"
    );
    assert_eq!(
        settings.metadata.managed_fields.unwrap_or_default()[0]
            .manager
            .as_deref(),
        Some("kubegate"),
        "server-side apply with field manager kubegate"
    );
    assert!(
        Api::<Deployment>::namespaced(admin.clone(), "wr-a")
            .get("web")
            .await
            .is_ok()
    );
    // The API server saw alice, through kubegate.
    let patches = support::impersonated_requests("alice", "/namespaces/wr-a/configmaps/settings");
    assert!(
        patches
            .iter()
            .any(|e| e["verb"] == "patch" && e["user"]["username"] == "kubegate"),
        "{patches:?}"
    );

    // The record was on disk before the change: RequestReceived, then ResponseComplete.
    let records = gateway.audit_records();
    let stages: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["auditID"].as_str().unwrap_or_default(),
                r["stage"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let id = stages[0].0;
    assert_eq!(stages, [(id, "RequestReceived"), (id, "ResponseComplete")]);
    assert_eq!(records[0]["decision"]["allowed"], true);
    assert!(
        records[0].get("kube").is_none(),
        "written before any request"
    );
    assert_eq!(
        records[1]["decision"]["resources"],
        json!([
            r#"Object::"local/wr-a/ConfigMap/settings""#,
            r#"Object::"local/wr-a/Deployment/web""#
        ])
    );
    // get (does it exist?), dry run, apply: for each of the two objects.
    let verbs: Vec<&str> = records[1]["kube"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["verb"].as_str())
        .collect();
    assert_eq!(verbs, ["get", "get", "patch", "patch", "patch", "patch"]);

    // Applied again with a change: configured, and the creator stays.
    let changed = manifest.replace("color: blue", "color: green");
    let again = client
        .call_ok(
            &alice,
            "kubectl_apply",
            json!({"manifest": changed, "namespace": "wr-a"}),
        )
        .await?;
    assert!(
        support::tool_text(&again)
            .0
            .starts_with("configmap/settings in namespace wr-a configured")
    );
    let settings = configmaps.get("settings").await?;
    assert_eq!(
        settings
            .data
            .unwrap_or_default()
            .get("color")
            .map(String::as_str),
        Some("green")
    );

    // A dry run changes nothing.
    let dry = client
        .call_ok(&alice, "kubectl_apply", json!({"manifest": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: draft, namespace: wr-a}\n", "dryRun": true}))
        .await?;
    assert_eq!(
        support::tool_text(&dry).0,
        "configmap/draft in namespace wr-a would be created (dry run)\n"
    );
    assert_eq!(
        dry["structuredContent"]["objects"][0]["metadata"]["name"],
        "draft"
    );
    assert!(configmaps.get_opt("draft").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn apply_is_all_or_nothing() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "aon-a",
        Some("tenant-aon-a"),
        "aon-a-devs",
        EDIT_ROLE,
    )
    .await?;
    tenant_namespace(
        &admin,
        "aon-b",
        Some("tenant-aon-b"),
        "aon-b-devs",
        EDIT_ROLE,
    )
    .await?;
    let gateway = TestGateway::start(GatewayOptions::with_tenant_edit()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["aon-a-devs"], "tenant-aon-a");

    // One object in another tenant's namespace: the policy refuses the whole manifest.
    let across = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: aon-a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: theirs, namespace: aon-b}\n";
    let refused = client
        .call_err(&alice, "kubectl_apply", json!({"manifest": across}))
        .await?;
    assert_eq!(
        refused,
        r#"kubegate refused `kubectl_apply` on Object::"local/aon-b/ConfigMap/theirs" for User::"alice": no policy permits it"#
    );
    assert!(
        support::impersonated_requests("alice", "/namespaces/aon-a/").is_empty(),
        "nothing was sent"
    );
    let records = gateway.audit_records();
    assert_eq!(records.len(), 1, "a refusal writes no write-ahead record");
    assert_eq!(records[0]["outcome"], "denied");

    // One object Kubernetes rejects (a Deployment without a selector): nothing is applied.
    let invalid = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\nspec: {template: {spec: {containers: []}}}\n";
    let error = client
        .call_err(
            &alice,
            "kubectl_apply",
            json!({"manifest": invalid, "namespace": "aon-a"}),
        )
        .await?;
    assert!(error.starts_with("nothing was changed: deployment.apps/broken in namespace aon-a was refused by Kubernetes"), "{error}");
    assert!(
        Api::<ConfigMap>::namespaced(admin.clone(), "aon-a")
            .get_opt("first")
            .await?
            .is_none()
    );

    // Kinds the cluster does not serve are refused before anything is asked.
    let unknown = client
        .call_err(
            &alice,
            "kubectl_apply",
            json!({"manifest": "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"}),
        )
        .await?;
    assert!(
        unknown.contains("this cluster does not serve the kind Widget (example.com/v1)"),
        "{unknown}"
    );
    Ok(())
}

#[tokio::test]
async fn rbac_judges_the_impersonated_writer() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    // The policy lets alice write in her tenant's namespace; Kubernetes only lets her view it.
    tenant_namespace(&admin, "ro-a", Some("tenant-ro-a"), "ro-a-devs", VIEW_ROLE).await?;
    let gateway = TestGateway::start(GatewayOptions::with_tenant_edit()).await?;
    let alice = gateway.token("alice", &["ro-a-devs"], "tenant-ro-a");
    let error = gateway
        .client()
        .call_err(&alice, "kubectl_apply", json!({"manifest": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "namespace": "ro-a"}))
        .await?;
    assert!(
        error.contains(
            r#"configmaps "c" is forbidden: User "alice" cannot patch resource "configmaps""#
        ),
        "{error}"
    );
    // The API server refused the impersonated caller, not kubegate: its own audit log shows the
    // request from kubegate as alice, answered 403.
    let refused = support::kube_audit_events(|e| {
        e["impersonatedUser"]["username"] == "alice"
            && e["requestURI"]
                .as_str()
                .is_some_and(|u| u.contains("/namespaces/ro-a/configmaps/c"))
            && e["verb"] == "patch"
            && e["stage"] == "ResponseComplete"
    });
    assert!(!refused.is_empty(), "the API server saw the request");
    for event in &refused {
        assert_eq!(event["user"]["username"], "kubegate", "{event}");
        assert_eq!(event["responseStatus"]["code"], 403, "{event}");
    }
    Ok(())
}

#[tokio::test]
async fn an_apply_conflict_says_how_to_resolve_it_and_force_takes_the_fields_over() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "cf-a", Some("tenant-cf-a"), "cf-a-devs", EDIT_ROLE).await?;
    // Another field manager owns `data.mode`.
    let owned: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "settings"}, "data": {"mode": "blue"}}),
    )?;
    Api::<ConfigMap>::namespaced(admin.clone(), "cf-a")
        .patch(
            "settings",
            &kube::api::PatchParams::apply("deploy-pipeline"),
            &kube::api::Patch::Apply(&owned),
        )
        .await?;
    let gateway = TestGateway::start(GatewayOptions::with_tenant_edit()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["cf-a-devs"], "tenant-cf-a");
    let manifest =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: green}\n";
    let error = client
        .call_err(
            &alice,
            "kubectl_apply",
            json!({"manifest": manifest, "namespace": "cf-a"}),
        )
        .await?;
    assert!(error.contains("409"), "{error}");
    assert!(
        error.contains("\"force\": true"),
        "the hint names the way out: {error}"
    );
    client
        .call_ok(
            &alice,
            "kubectl_apply",
            json!({"manifest": manifest, "namespace": "cf-a", "force": true}),
        )
        .await?;
    let now = Api::<ConfigMap>::namespaced(admin.clone(), "cf-a")
        .get("settings")
        .await?;
    assert_eq!(
        now.data.and_then(|d| d.get("mode").cloned()).as_deref(),
        Some("green")
    );
    Ok(())
}

#[tokio::test]
async fn scale_sets_replicas_through_the_scale_subresource() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "sc-a", Some("tenant-sc-a"), "sc-a-devs", EDIT_ROLE).await?;
    let gateway = TestGateway::start(GatewayOptions::with_tenant_edit()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["sc-a-devs"], "tenant-sc-a");
    client
        .call_ok(
            &alice,
            "kubectl_apply",
            json!({"manifest": DEPLOYMENT, "namespace": "sc-a"}),
        )
        .await?;

    let scaled = client
        .call_ok(
            &alice,
            "kubectl_scale",
            json!({"name": "web", "namespace": "sc-a", "replicas": "3"}),
        )
        .await?;
    assert_eq!(
        support::tool_text(&scaled).0,
        "Scaled deployment \"web\" in namespace \"sc-a\" to 3 replica(s)."
    );
    assert_eq!(scaled["structuredContent"]["replicas"], 3);
    let deployment = Api::<Deployment>::namespaced(admin.clone(), "sc-a")
        .get("web")
        .await?;
    assert_eq!(deployment.spec.and_then(|s| s.replicas), Some(3));
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(
        record["decision"]["resource"],
        r#"Object::"local/sc-a/Deployment/web""#
    );
    assert_eq!(
        record["kube"][0]["uri"],
        "/apis/apps/v1/namespaces/sc-a/deployments/web/scale"
    );

    // A StatefulSet, named by mcp-server-kubernetes's resourceType.
    let statefulset = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  replicas: 1\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: db, image: registry.example/db:1}]}\n";
    client
        .call_ok(
            &alice,
            "kubectl_apply",
            json!({"manifest": statefulset, "namespace": "sc-a"}),
        )
        .await?;
    let scaled = client
        .call_ok(
            &alice,
            "kubectl_scale",
            json!({"name": "db", "namespace": "sc-a", "replicas": 2, "resourceType": "statefulset"}),
        )
        .await?;
    assert!(
        support::tool_text(&scaled)
            .0
            .contains("Scaled statefulset \"db\""),
        "{scaled}"
    );
    let db = Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(admin.clone(), "sc-a")
        .get("db")
        .await?;
    assert_eq!(db.spec.and_then(|s| s.replicas), Some(2));

    let missing = client
        .call_err(
            &alice,
            "kubectl_scale",
            json!({"name": "nope", "namespace": "sc-a", "replicas": 1}),
        )
        .await?;
    assert!(
        missing.starts_with("Deployment \"nope\" was not found"),
        "{missing}"
    );
    // Another tenant's deployment: refused before Kubernetes.
    let bob = gateway.token("bob", &["x"], "tenant-other");
    let refused = client
        .call_err(
            &bob,
            "kubectl_scale",
            json!({"name": "web", "namespace": "sc-a", "replicas": 0}),
        )
        .await?;
    assert!(
        refused.starts_with("kubegate refused `kubectl_scale`"),
        "{refused}"
    );
    let deployment = Api::<Deployment>::namespaced(admin, "sc-a")
        .get("web")
        .await?;
    assert_eq!(deployment.spec.and_then(|s| s.replicas), Some(3));
    Ok(())
}

#[tokio::test]
async fn a_kind_installed_after_start_is_found_by_discovering_again() -> Result<()> {
    use k8s_openapi::api::rbac::v1::Role;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "crd-a",
        Some("tenant-crd-a"),
        "crd-a-devs",
        EDIT_ROLE,
    )
    .await?;
    let gateway = TestGateway::start(GatewayOptions::with_tenant_edit()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["crd-a-devs"], "tenant-crd-a");
    let manifest =
        "apiVersion: gadgets.example.com/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {size: 3}\n";
    let before = client
        .call_err(
            &alice,
            "kubectl_apply",
            json!({"manifest": manifest, "namespace": "crd-a"}),
        )
        .await?;
    assert!(
        before.contains("this cluster does not serve the kind Gadget"),
        "{before}"
    );

    // Installed while kubegate runs.
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gadgets.gadgets.example.com"},
        "spec": {"group": "gadgets.example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    }))?;
    Api::<CustomResourceDefinition>::all(admin.clone())
        .create(&kube::api::PostParams::default(), &crd)
        .await?;
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "gadgets"},
        "rules": [{"apiGroups": ["gadgets.example.com"], "resources": ["gadgets"], "verbs": ["get", "patch", "create"]}],
    }))?;
    Api::<Role>::namespaced(admin.clone(), "crd-a")
        .create(&kube::api::PostParams::default(), &role)
        .await?;
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "gadgets"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gadgets"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "crd-a-devs"}],
    }))?;
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(admin.clone(), "crd-a")
        .create(&kube::api::PostParams::default(), &binding)
        .await?;
    // Discovery runs again at most every 10 s; the CRD also needs a moment to be served.
    let mut applied = None;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let result = client
            .call_tool(
                &alice,
                "kubectl_apply",
                json!({"manifest": manifest, "namespace": "crd-a"}),
            )
            .await?;
        if !support::tool_text(&result).1 {
            applied = Some(result);
            break;
        }
    }
    let applied = applied.ok_or_else(|| anyhow::anyhow!("the new kind was never found"))?;
    assert_eq!(
        support::tool_text(&applied).0,
        "gadget.gadgets.example.com/g1 in namespace crd-a created\n"
    );
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(
        record["decision"]["resource"],
        r#"Object::"local/crd-a/Gadget/g1""#
    );
    Ok(())
}

//! The destructive tools against the real API server: the four deletes, `uninstall_helm_chart`
//! on a release stored exactly as Helm 3 stores it, `cleanup` removing only the caller's own
//! objects, and the non-destructive mode refusing all six before anything reaches Kubernetes.

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::cluster::EDIT_ROLE;
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace, tool_text};

const ADMINS_DESTROY: &str = r#"@id("admins-destroy") permit (principal in Group::"platform-admins", action in [Action::"write", Action::"destructive"], resource);"#;

async fn create<K>(api: &Api<K>, object: Value) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &serde_json::from_value(object)?)
        .await?;
    Ok(())
}

fn pod(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "registry.example/c:1"}]}})
}

fn deployment(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "registry.example/c:1"}]}}}})
}

#[tokio::test]
async fn the_deletes_remove_one_object_each_as_the_caller() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "del-a",
        Some("tenant-del-a"),
        "del-a-devs",
        EDIT_ROLE,
    )
    .await?;
    create(
        &Api::<Namespace>::all(admin.clone()),
        json!({"metadata": {"name": "del-doomed"}}),
    )
    .await?;
    let pods = Api::<Pod>::namespaced(admin.clone(), "del-a");
    create(&pods, pod("victim")).await?;
    create(&pods, pod("survivor")).await?;
    let deployments = Api::<Deployment>::namespaced(admin.clone(), "del-a");
    create(&deployments, deployment("web")).await?;
    let cronjobs = ApiResource::from_gvk(&GroupVersionKind::gvk("batch", "v1beta1", "CronJob"));
    let cronjob: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "registry.example/c:1"}]}}}}},
    }))?;
    let cronjob_api = Api::<DynamicObject>::namespaced_with(admin.clone(), "del-a", &cronjobs);
    cronjob_api.create(&PostParams::default(), &cronjob).await?;
    // carol may delete namespaces in Kubernetes; the platform-admins policy lets her ask.
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "namespace-deleter"},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "delete"]}],
    }))?;
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await?;
    support::cluster_role_for_group(&admin, "platform-admins", "namespace-deleter").await?;

    let gateway = TestGateway::start(
        GatewayOptions::with_tenant_edit().policy("admins.cedar", ADMINS_DESTROY),
    )
    .await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["del-a-devs"], "tenant-del-a");
    let carol = gateway.token("carol", &["platform-admins"], "platform");

    // A dry run deletes nothing.
    let dry = client
        .call_ok(
            &alice,
            "delete_pod",
            json!({"name": "victim", "namespace": "del-a", "dryRun": true}),
        )
        .await?;
    assert_eq!(
        tool_text(&dry).0,
        "Dry run: pod \"victim\" in namespace \"del-a\" would be deleted."
    );
    assert!(pods.get_opt("victim").await?.is_some());

    let deleted = client
        .call_ok(
            &alice,
            "delete_pod",
            json!({"name": "victim", "namespace": "del-a", "gracePeriodSeconds": 0}),
        )
        .await?;
    assert_eq!(deleted["structuredContent"]["status"], "deleted");
    assert!(pods.get_opt("victim").await?.is_none());
    assert!(pods.get_opt("survivor").await?.is_some(), "one object only");
    let records = gateway.audit_records();
    let last_two: Vec<&str> = records[records.len() - 2..]
        .iter()
        .filter_map(|r| r["stage"].as_str())
        .collect();
    assert_eq!(
        last_two,
        ["RequestReceived", "ResponseComplete"],
        "written ahead"
    );
    let delete_events = support::impersonated_requests("alice", "/namespaces/del-a/pods/victim");
    assert!(
        delete_events.iter().any(|e| e["verb"] == "delete"),
        "{delete_events:?}"
    );

    let again = client
        .call_err(
            &alice,
            "delete_pod",
            json!({"name": "victim", "namespace": "del-a"}),
        )
        .await?;
    assert!(
        again.starts_with("Pod \"victim\" was not found in namespace \"del-a\""),
        "{again}"
    );
    let ignored = client
        .call_ok(
            &alice,
            "delete_pod",
            json!({"name": "victim", "namespace": "del-a", "ignoreNotFound": "true"}),
        )
        .await?;
    assert_eq!(ignored["structuredContent"]["status"], "not found");

    client
        .call_ok(
            &alice,
            "delete_deployment",
            json!({"name": "web", "namespace": "del-a"}),
        )
        .await?;
    assert!(deployments.get_opt("web").await?.is_none());
    client
        .call_ok(
            &alice,
            "delete_cronjob",
            json!({"name": "nightly", "namespace": "del-a"}),
        )
        .await?;
    assert!(cronjob_api.get_opt("nightly").await?.is_none());
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(
        record["kube"][0]["uri"],
        "/apis/batch/v1beta1/namespaces/del-a/cronjobs/nightly"
    );

    // Namespaces are not the tenant's to delete (tenant-edit leaves them to admins): no call of
    // delete_namespace can be permitted to alice, so it is not in her tools/list, and a call of
    // it is refused before its arguments are read.
    let refused = client
        .call_err(&alice, "delete_namespace", json!({"name": "del-a"}))
        .await?;
    assert_eq!(
        refused,
        r#"kubegate refused `delete_namespace` on any resource of Cluster::"local" for User::"alice": no policy permits it"#
    );
    let listed = client.request(&alice, "tools/list", json!({})).await?;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"delete_pod") && !names.contains(&"delete_namespace"),
        "{names:?}"
    );
    client
        .call_ok(&carol, "delete_namespace", json!({"name": "del-doomed"}))
        .await?;
    // No namespace controller runs here, so the namespace stays Terminating.
    let doomed = Api::<Namespace>::all(admin.clone())
        .get("del-doomed")
        .await?;
    assert!(doomed.metadata.deletion_timestamp.is_some());
    Ok(())
}

/// A Helm 3 release record, exactly as Helm stores it.
#[tokio::test]
async fn uninstall_helm_chart_removes_the_latest_revisions_objects_and_records() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "helm-a",
        Some("tenant-helm-a"),
        "helm-a-devs",
        EDIT_ROLE,
    )
    .await?;
    tenant_namespace(
        &admin,
        "helm-b",
        Some("tenant-helm-b"),
        "helm-b-devs",
        EDIT_ROLE,
    )
    .await?;
    let configmaps = Api::<ConfigMap>::namespaced(admin.clone(), "helm-a");
    let services = Api::<Service>::namespaced(admin.clone(), "helm-a");
    let secrets = Api::<Secret>::namespaced(admin.clone(), "helm-a");
    create(&configmaps, json!({"metadata": {"name": "shop-config"}})).await?;
    create(&configmaps, json!({"metadata": {"name": "shop-legacy"}})).await?;
    create(
        &services,
        json!({"metadata": {"name": "shop"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await?;
    create(
        &Api::<Deployment>::namespaced(admin.clone(), "helm-a"),
        deployment("shop"),
    )
    .await?;
    let v1 = "---\n# Source: shop/templates/legacy.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-legacy\n";
    let v2 = "---\n# Source: shop/templates/configmap.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-config\n---\n# Source: shop/templates/service.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: shop\nspec:\n  ports: [{port: 80}]\n---\n# Source: shop/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\n";
    create(
        &secrets,
        support::helm_release_secret("shop", "helm-a", 1, "superseded", v1),
    )
    .await?;
    create(
        &secrets,
        support::helm_release_secret("shop", "helm-a", 2, "deployed", v2),
    )
    .await?;
    // A release whose manifest reaches into another tenant's namespace.
    let sneaky =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop-config, namespace: helm-b}\n";
    create(
        &secrets,
        support::helm_release_secret("sneaky", "helm-a", 1, "deployed", sneaky),
    )
    .await?;

    let gateway = TestGateway::start(GatewayOptions::with_tenant_edit()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["helm-a-devs"], "tenant-helm-a");

    let dry = client
        .call_ok(
            &alice,
            "uninstall_helm_chart",
            json!({"name": "shop", "namespace": "helm-a", "dryRun": true}),
        )
        .await?;
    assert!(
        tool_text(&dry)
            .0
            .starts_with("Dry run: would uninstall Helm release \"shop\" (revision 2)")
    );
    assert!(configmaps.get_opt("shop-config").await?.is_some());

    let done = client
        .call_ok(
            &alice,
            "uninstall_helm_chart",
            json!({"name": "shop", "namespace": "helm-a"}),
        )
        .await?;
    let text = tool_text(&done).0;
    assert!(
        text.starts_with("Uninstalled Helm release \"shop\" (revision 2) in namespace \"helm-a\""),
        "{text}"
    );
    assert!(configmaps.get_opt("shop-config").await?.is_none());
    assert!(services.get_opt("shop").await?.is_none());
    assert!(
        Api::<Deployment>::namespaced(admin.clone(), "helm-a")
            .get_opt("shop")
            .await?
            .is_none()
    );
    assert!(
        configmaps.get_opt("shop-legacy").await?.is_some(),
        "only the latest revision's objects"
    );
    assert!(
        secrets
            .get_opt("sh.helm.release.v1.shop.v1")
            .await?
            .is_none()
    );
    assert!(
        secrets
            .get_opt("sh.helm.release.v1.shop.v2")
            .await?
            .is_none()
    );
    assert!(
        secrets
            .get_opt("sh.helm.release.v1.sneaky.v1")
            .await?
            .is_some()
    );
    let record = gateway.audit_records().pop().unwrap_or_default();
    let later: Vec<&str> = record["decision"]["later"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["resource"].as_str())
        .collect();
    assert!(
        later.contains(&r#"Object::"local/helm-a/Service/shop""#),
        "{later:?}"
    );
    assert!(
        later.contains(&r#"Object::"local/helm-a/Secret/sh.helm.release.v1.shop.v2""#),
        "{later:?}"
    );

    // Every object is decided first: one in another tenant's namespace refuses the whole uninstall.
    let refused = client
        .call_err(
            &alice,
            "uninstall_helm_chart",
            json!({"name": "sneaky", "namespace": "helm-a"}),
        )
        .await?;
    assert!(refused.starts_with("nothing was deleted: kubegate refused `uninstall_helm_chart` on Object::\"local/helm-b/ConfigMap/shop-config\""), "{refused}");
    assert!(
        secrets
            .get_opt("sh.helm.release.v1.sneaky.v1")
            .await?
            .is_some()
    );
    assert!(support::impersonated_requests("alice", "/namespaces/helm-b/").is_empty());

    let missing = client
        .call_err(
            &alice,
            "uninstall_helm_chart",
            json!({"name": "nope", "namespace": "helm-a"}),
        )
        .await?;
    assert!(
        missing.starts_with("there is no Helm release \"nope\" in namespace \"helm-a\""),
        "{missing}"
    );
    Ok(())
}

#[tokio::test]
async fn cleanup_removes_only_what_the_caller_created_through_kubegate() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "cl-a", Some("tenant-cl"), "cl-devs", EDIT_ROLE).await?;
    tenant_namespace(&admin, "cl-b", Some("tenant-cl"), "cl-devs", EDIT_ROLE).await?;
    let gateway = TestGateway::start(GatewayOptions::with_tenant_edit()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["cl-devs"], "tenant-cl");
    let bob = gateway.token("bob", &["cl-devs"], "tenant-cl");
    let configmap =
        |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n");
    client
        .call_ok(
            &alice,
            "kubectl_apply",
            json!({"manifest": configmap("alices-1"), "namespace": "cl-a"}),
        )
        .await?;
    client
        .call_ok(
            &alice,
            "kubectl_apply",
            json!({"manifest": configmap("alices-2"), "namespace": "cl-b"}),
        )
        .await?;
    client
        .call_ok(
            &bob,
            "kubectl_apply",
            json!({"manifest": configmap("bobs"), "namespace": "cl-a"}),
        )
        .await?;
    let cl_a = Api::<ConfigMap>::namespaced(admin.clone(), "cl-a");
    create(&cl_a, json!({"metadata": {"name": "by-hand"}})).await?;
    // Someone labelled an object as alice's by hand, without kubegate's annotation.
    create(
        &cl_a,
        json!({"metadata": {"name": "forged", "labels": {"kubegate.io/created-by": "alice"}}}),
    )
    .await?;

    let dry = client
        .call_ok(&alice, "cleanup", json!({"dryRun": true}))
        .await?;
    assert_eq!(
        dry["structuredContent"]["deleted"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(cl_a.get_opt("alices-1").await?.is_some());

    let done = client.call_ok(&alice, "cleanup", json!({})).await?;
    let text = tool_text(&done).0;
    assert!(
        text.starts_with("Deleted 2 object(s) you created through kubegate"),
        "{text}"
    );
    assert!(cl_a.get_opt("alices-1").await?.is_none());
    assert!(
        Api::<ConfigMap>::namespaced(admin.clone(), "cl-b")
            .get_opt("alices-2")
            .await?
            .is_none()
    );
    for kept in ["bobs", "by-hand", "forged"] {
        assert!(cl_a.get_opt(kept).await?.is_some(), "{kept} must stay");
    }
    Ok(())
}

#[tokio::test]
async fn the_non_destructive_mode_refuses_every_destructive_tool_and_nothing_else() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "nd-a", Some("tenant-nd"), "nd-devs", EDIT_ROLE).await?;
    let pods = Api::<Pod>::namespaced(admin.clone(), "nd-a");
    create(&pods, pod("precious")).await?;
    let mut options = GatewayOptions::with_tenant_edit().policy("admins.cedar", ADMINS_DESTROY);
    options.non_destructive = true;
    let gateway = TestGateway::start(options).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["nd-devs"], "tenant-nd");
    let carol = gateway.token("carol", &["platform-admins"], "platform");
    let calls = [
        (
            "delete_pod",
            json!({"name": "precious", "namespace": "nd-a"}),
        ),
        (
            "delete_deployment",
            json!({"name": "web", "namespace": "nd-a"}),
        ),
        (
            "delete_cronjob",
            json!({"name": "nightly", "namespace": "nd-a"}),
        ),
        ("delete_namespace", json!({"name": "nd-a"})),
        (
            "uninstall_helm_chart",
            json!({"name": "shop", "namespace": "nd-a"}),
        ),
        ("cleanup", json!({"namespace": "nd-a"})),
        ("cleanup", json!({})),
    ];
    for who in [&alice, &carol] {
        for (tool, args) in &calls {
            let refused = client.call_err(who, tool, args.clone()).await?;
            assert!(
                refused.contains(
                    "forbidden by policy non-destructive (only non-destructive tools are allowed"
                ),
                "{tool}: {refused}"
            );
        }
    }
    assert!(pods.get_opt("precious").await?.is_some());
    let records = gateway.audit_records();
    assert_eq!(
        records.len(),
        2 * calls.len(),
        "no write-ahead records: nothing was about to change"
    );
    assert!(
        records
            .iter()
            .all(|r| r.get("kube").is_none() && r["outcome"] == "denied")
    );
    for user in ["alice", "carol"] {
        assert!(
            support::impersonated_requests(user, "/namespaces/nd-a").is_empty(),
            "{user} reached the API server"
        );
    }
    // Reads and writes still work.
    client
        .call_ok(
            &alice,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "nd-a"}),
        )
        .await?;
    client.call_ok(&alice, "kubectl_apply", json!({"manifest": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: allowed}\n", "namespace": "nd-a"})).await?;
    Ok(())
}

#[tokio::test]
async fn cleanup_keeps_what_policy_protects_and_says_what_rbac_did_not_let_it_check() -> Result<()>
{
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "cl-p", Some("tenant-clp"), "clp-devs", EDIT_ROLE).await?;
    // In cl-q, RBAC lets the tenant list and delete ConfigMaps only.
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "configmaps-only"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "delete"]}],
    }))?;
    match Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => return Err(error.into()),
    }
    tenant_namespace(
        &admin,
        "cl-q",
        Some("tenant-clp"),
        "clp-devs",
        "configmaps-only",
    )
    .await?;
    // Objects alice created through kubegate (its label and annotation), made here directly.
    let alices = |name: &str| {
        json!({"metadata": {"name": name,
            "labels": {"kubegate.io/created-by": "alice"},
            "annotations": {"kubegate.io/created-by": "alice"}}})
    };
    create(
        &Api::<ConfigMap>::namespaced(admin.clone(), "cl-p"),
        alices("cm-p"),
    )
    .await?;
    create(
        &Api::<Secret>::namespaced(admin.clone(), "cl-p"),
        alices("secret-p"),
    )
    .await?;
    create(
        &Api::<ConfigMap>::namespaced(admin.clone(), "cl-q"),
        alices("cm-q"),
    )
    .await?;
    create(
        &Api::<Secret>::namespaced(admin.clone(), "cl-q"),
        alices("secret-q"),
    )
    .await?;

    let keep_secrets = r#"@id("cleanup-keeps-secrets") @reason("Secrets are removed by hand")
        forbid (principal, action == Action::"cleanup", resource is Object)
        when { resource.kind == "Secret" };"#;
    let gateway = TestGateway::start(
        GatewayOptions::with_tenant_edit().policy("keep-secrets.cedar", keep_secrets),
    )
    .await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["clp-devs"], "tenant-clp");
    let done = client.call_ok(&alice, "cleanup", json!({})).await?;
    let text = tool_text(&done).0;
    assert!(text.starts_with("Deleted 2 object(s)"), "{text}");
    assert!(
        text.contains("Kept, because policy does not let you delete them: Secret cl-p/secret-p"),
        "{text}"
    );
    assert!(
        text.contains("Not checked, because Kubernetes RBAC does not let you list them"),
        "{text}"
    );
    assert!(text.contains("Secret in cl-q"), "{text}");
    let unchecked = &done["structuredContent"]["unchecked"];
    assert!(
        unchecked
            .as_array()
            .into_iter()
            .flatten()
            .any(|u| u["kind"] == "Secret" && u["namespace"] == "cl-q"),
        "{unchecked}"
    );
    assert!(
        Api::<ConfigMap>::namespaced(admin.clone(), "cl-p")
            .get_opt("cm-p")
            .await?
            .is_none()
    );
    assert!(
        Api::<ConfigMap>::namespaced(admin.clone(), "cl-q")
            .get_opt("cm-q")
            .await?
            .is_none()
    );
    for (ns, name) in [("cl-p", "secret-p"), ("cl-q", "secret-q")] {
        assert!(
            Api::<Secret>::namespaced(admin.clone(), ns)
                .get_opt(name)
                .await?
                .is_some(),
            "{ns}/{name} must stay"
        );
    }
    // The protected Secret was decided, refused, and never asked of Kubernetes.
    let record = gateway.audit_records().pop().unwrap_or_default();
    let refused: Vec<&Value> = record["decision"]["later"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["allowed"] == false)
        .collect();
    assert_eq!(refused.len(), 1, "{record}");
    assert_eq!(
        refused[0]["resource"],
        r#"Object::"local/cl-p/Secret/secret-p""#
    );
    assert!(support::impersonated_requests("alice", "/secrets/secret-p").is_empty());
    Ok(())
}

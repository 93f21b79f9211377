//! Security: default ServiceAccount, privileged containers, no securityContext, wildcard roles.

use serde_json::{Value, json};

use super::{only, run, says, snapshot, texts};
use crate::analyze::cluster::security;
use crate::analyze::{Source, docs};

/// A pod with its own ServiceAccount and a pod-level securityContext: nothing to report.
fn safe_pod(name: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "serviceAccountName": "web",
            "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "app", "image": "app:1"}],
        },
    })
}

fn role(name: &str, rules: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "shop"}, "rules": rules})
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"metadata": {"name": name}, "rules": rules})
}

fn wildcard() -> Value {
    json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])
}

#[test]
fn a_pod_on_the_default_service_account_is_reported() {
    for account in [json!(null), json!(""), json!("default")] {
        let mut pod = safe_pod("web-1");
        pod["spec"]["serviceAccountName"] = account.clone();
        let s = snapshot(&[(Source::Pods, vec![pod])]);
        let findings = run(security, &s);
        let finding = only(&findings, "Pod", "shop/web-1");
        says(finding, &["default ServiceAccount"]);
        assert_eq!(finding.failures[0].doc, docs::SERVICE_ACCOUNTS, "{account}");
    }
}

#[test]
fn the_deprecated_service_account_field_is_honoured() {
    let mut pod = safe_pod("web-1");
    pod["spec"]["serviceAccountName"] = json!(null);
    pod["spec"]["serviceAccount"] = json!("web");
    let s = snapshot(&[(Source::Pods, vec![pod])]);
    assert_eq!(run(security, &s), vec![]);
}

#[test]
fn a_privileged_container_is_reported_by_name() {
    let mut pod = safe_pod("agent");
    pod["spec"]["containers"] = json!([
        {"name": "app", "image": "app:1"},
        {"name": "probe", "image": "probe:1", "securityContext": {"privileged": true}},
    ]);
    pod["spec"]["initContainers"] = json!([
        {"name": "setup", "image": "setup:1", "securityContext": {"privileged": true}},
        {"name": "copy", "image": "copy:1", "securityContext": {"privileged": false}},
    ]);
    let s = snapshot(&[(Source::Pods, vec![pod])]);
    let findings = run(security, &s);
    let finding = only(&findings, "Pod", "shop/agent");
    let texts = texts(finding);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].starts_with("Container probe runs privileged"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].starts_with("Init container setup runs privileged"),
        "{}",
        texts[1]
    );
    assert!(
        finding
            .failures
            .iter()
            .all(|f| f.doc == docs::SECURITY_CONTEXT)
    );
}

#[test]
fn a_pod_with_no_security_context_anywhere_is_reported() {
    // The API server gives every pod `securityContext: {}`: that sets nothing.
    for pod_context in [json!(null), json!({})] {
        let mut pod = safe_pod("bare");
        pod["spec"]["securityContext"] = pod_context;
        pod["spec"]["containers"] =
            json!([{"name": "app", "image": "app:1", "securityContext": {}}]);
        let s = snapshot(&[(Source::Pods, vec![pod])]);
        let findings = run(security, &s);
        says(only(&findings, "Pod", "shop/bare"), &["securityContext"]);
    }
}

#[test]
fn a_security_context_on_any_container_is_enough() {
    let mut pod = safe_pod("partly");
    pod["spec"]["securityContext"] = json!({});
    pod["spec"]["containers"] = json!([
        {"name": "app", "image": "app:1"},
        {"name": "proxy", "image": "proxy:1", "securityContext": {"runAsUser": 1000}},
    ]);
    let s = snapshot(&[(Source::Pods, vec![pod])]);
    assert_eq!(run(security, &s), vec![]);
}

#[test]
fn a_pod_names_its_owning_deployment_as_parent() {
    let mut pod = json!({
        "metadata": {"name": "web-5d9-x", "namespace": "shop", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9", "uid": "r", "controller": true}
        ]},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    });
    pod["spec"]["serviceAccountName"] = json!("default");
    let replica_set = json!({
        "metadata": {"name": "web-5d9", "namespace": "shop", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d", "controller": true}
        ]},
        "spec": {"selector": {}},
    });
    let s = snapshot(&[
        (Source::Pods, vec![pod]),
        (Source::ReplicaSets, vec![replica_set]),
    ]);
    let findings = run(security, &s);
    let finding = only(&findings, "Pod", "shop/web-5d9-x");
    assert_eq!(finding.parent_object, "Deployment/web");
    assert_eq!(
        finding.failures.len(),
        2,
        "default account and no securityContext"
    );
}

#[test]
fn a_role_with_wildcards_is_reported_naming_them() {
    let rules = json!([
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["*"], "verbs": ["get", "watch"]},
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
    ]);
    let s = snapshot(&[
        (Source::Pods, vec![]),
        (Source::Roles, vec![role("ops", rules)]),
    ]);
    let findings = run(security, &s);
    let finding = only(&findings, "Role", "shop/ops");
    assert_eq!(
        texts(finding),
        [
            "Rule 2 allows every verb ('*') on deployments, statefulsets in API group apps.",
            "Rule 3 allows get, watch on every resource ('*') in API group core.",
            "Rule 4 allows every verb on every resource in every API group ('*' in both).",
        ]
    );
    assert!(finding.failures.iter().all(|f| f.doc == docs::RBAC));
}

#[test]
fn a_cluster_role_with_a_wildcard_on_non_resource_urls_is_reported() {
    let rules = json!([{"nonResourceURLs": ["/metrics"], "verbs": ["*"]}]);
    let s = snapshot(&[(Source::ClusterRoles, vec![cluster_role("scraper", rules)])]);
    let findings = run(security, &s);
    says(
        only(&findings, "ClusterRole", "scraper"),
        &["every verb", "/metrics"],
    );
}

#[test]
fn a_cluster_role_someone_wrote_is_reported_but_not_kubernetes_own() {
    let mut bootstrap = cluster_role("kubeadm:get-nodes", wildcard());
    bootstrap["metadata"]["labels"] = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    let s = snapshot(&[(
        Source::ClusterRoles,
        vec![
            cluster_role("cluster-admin", wildcard()),
            cluster_role("admin", wildcard()),
            cluster_role("edit", wildcard()),
            cluster_role("view", wildcard()),
            cluster_role("system:controller:generic", wildcard()),
            bootstrap,
            cluster_role("argocd-application-controller", wildcard()),
        ],
    )]);
    let findings = run(security, &s);
    says(
        only(&findings, "ClusterRole", "argocd-application-controller"),
        &["every verb on every resource"],
    );
}

#[test]
fn cluster_roles_are_judged_only_when_they_were_read() {
    let mut s = snapshot(&[(Source::Pods, vec![])]);
    s.cluster_roles
        .push(serde_json::from_value(cluster_role("mine", wildcard())).unwrap_or_default());
    assert_eq!(run(security, &s), vec![]);
    s.mark_read(Source::ClusterRoles);
    assert_eq!(run(security, &s).len(), 1);
}

#[test]
fn a_system_role_in_kube_system_is_not_reported() {
    let mut system = role("system:controller:bootstrap-signer", wildcard());
    system["metadata"]["namespace"] = json!("kube-system");
    let s = snapshot(&[(Source::Roles, vec![system])]);
    assert_eq!(run(security, &s), vec![]);
}

#[test]
fn safe_pods_and_narrow_roles_yield_nothing() {
    let rules = json!([
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]},
        {"verbs": ["*"]},
    ]);
    let s = snapshot(&[
        (Source::Pods, vec![safe_pod("web-1"), safe_pod("web-2")]),
        (Source::Roles, vec![role("reader", rules.clone())]),
        (Source::ClusterRoles, vec![cluster_role("reader", rules)]),
    ]);
    assert_eq!(run(security, &s), vec![]);
}

#[test]
fn a_pod_without_a_spec_does_not_panic_or_get_reported() {
    let s = snapshot(&[(Source::Pods, vec![json!({"metadata": {}})])]);
    assert_eq!(run(security, &s), vec![]);
}

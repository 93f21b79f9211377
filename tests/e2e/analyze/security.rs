//! The Security analyzer: pods on their namespace's default ServiceAccount, with a privileged
//! container or with no securityContext, and Roles granting everything.

use anyhow::Result;
use serde_json::{Value, json};

use super::{POD, ROLE, analyze, create, in_ns};
use crate::support::cluster::VIEW_ROLE;
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace};

#[tokio::test]
async fn pods_on_the_default_account_privileged_or_without_security_context_and_wildcard_roles_are_reported()
-> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-sec";
    tenant_namespace(&admin, ns, Some("az-sec"), "az-sec-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    let pod = |name: &str, spec: Value| json!({"metadata": {"name": name}, "spec": spec});
    create(
        &admin,
        POD,
        at,
        pod(
            "default-account",
            json!({"containers": [{"name": "app", "image": "registry.example/app:1"}]}),
        ),
    )
    .await?;
    // The test API server runs with --allow-privileged=true, as clusters with such pods do.
    create(
        &admin,
        POD,
        at,
        pod(
            "privileged",
            json!({"serviceAccountName": "agent",
        "containers": [{"name": "agent", "image": "registry.example/agent:1",
                        "securityContext": {"privileged": true}}]}),
        ),
    )
    .await?;
    create(
        &admin,
        POD,
        at,
        pod(
            "own-account",
            json!({"serviceAccountName": "agent",
        "containers": [{"name": "agent", "image": "registry.example/agent:1"}]}),
        ),
    )
    .await?;
    create(
        &admin,
        POD,
        at,
        pod(
            "hardened",
            json!({"serviceAccountName": "web",
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000},
        "containers": [{"name": "web", "image": "registry.example/web:1",
                        "securityContext": {"allowPrivilegeEscalation": false}}]}),
        ),
    )
    .await?;
    create(
        &admin,
        ROLE,
        at,
        json!({"metadata": {"name": "anything"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
    )
    .await?;
    create(
        &admin,
        ROLE,
        at,
        json!({"metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
    )
    .await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-sec-devs"], "az-sec");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "Security"}),
    )
    .await?;
    assert_eq!(
        found.names("Pod"),
        in_ns(ns, &["default-account", "own-account", "privileged"]),
        "{}",
        found.text()
    );
    assert_eq!(
        found.names("Role"),
        in_ns(ns, &["anything"]),
        "{}",
        found.text()
    );
    found.expect(
        "Pod",
        "az-sec/default-account",
        "",
        &[
            "Pod runs as its namespace's default ServiceAccount",
            "Neither the pod nor any of its containers sets a securityContext",
        ],
    );
    found.expect(
        "Pod",
        "az-sec/own-account",
        "",
        &["Neither the pod nor any of its containers sets a securityContext"],
    );
    assert_eq!(
        found.failures("Pod", "az-sec/own-account").lines().count(),
        1,
        "it has its own account"
    );
    found.expect(
        "Pod",
        "az-sec/privileged",
        "",
        &["Container agent runs privileged, with full access to the node's devices and kernel."],
    );
    assert_eq!(
        found.failures("Pod", "az-sec/privileged").lines().count(),
        1,
        "it has its own account, and its container sets a securityContext"
    );
    found.expect(
        "Role",
        "az-sec/anything",
        "",
        &["Rule 1 allows every verb on every resource in every API group ('*' in both)."],
    );
    Ok(())
}

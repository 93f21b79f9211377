//! The analyzers of custom resources: the Gateway API's (GatewayClass, Gateway, HTTPRoute) and
//! the KEDA and Kyverno integrations', with minimal CRDs applied to the API server before
//! kubegate starts (its discovery runs then).

use anyhow::Result;
use serde_json::{Value, json};

use super::{
    DEPLOYMENT, Kind, SERVICE, analyze, cluster_kinds_for_group, create, create_with_status,
    delete_all, deployment, in_ns, install_crd,
};
use crate::support::cluster::VIEW_ROLE;
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace, tool_text};

const GATEWAY_CLASS: Kind = Kind::new(
    "gateway.networking.k8s.io/v1",
    "GatewayClass",
    "gatewayclasses",
);
const GATEWAY: Kind = Kind::new("gateway.networking.k8s.io/v1", "Gateway", "gateways");
const HTTP_ROUTE: Kind = Kind::new("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes");
const SCALED_OBJECT: Kind = Kind::new("keda.sh/v1alpha1", "ScaledObject", "scaledobjects");
const POLICY_REPORT: Kind = Kind::new("wgpolicyk8s.io/v1alpha2", "PolicyReport", "policyreports");

fn accepted(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2024-05-01T10:00:00Z", "observedGeneration": 1})
}

#[tokio::test]
async fn gateway_api_objects_naming_what_is_missing_or_not_accepted_are_reported() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    install_crd(&admin, GATEWAY_CLASS, false).await?;
    install_crd(&admin, GATEWAY, true).await?;
    install_crd(&admin, HTTP_ROUTE, true).await?;
    let ns = "az-gw";
    tenant_namespace(&admin, ns, Some("az-gw"), "az-gw-devs", VIEW_ROLE).await?;
    cluster_kinds_for_group(&admin, "az-gw-devs").await?;
    let at = Some(ns);
    let controller = "example.com/gateway-controller";
    create_with_status(&admin, GATEWAY_CLASS, None,
        json!({"metadata": {"name": "az-gwc-rejected"}, "spec": {"controllerName": controller}}),
        json!({"conditions": [accepted("Accepted", "False", "InvalidParameters", "parametersRef names a ConfigMap that does not exist")]})).await?;
    create_with_status(
        &admin,
        GATEWAY_CLASS,
        None,
        json!({"metadata": {"name": "az-gwc-fine"}, "spec": {"controllerName": controller}}),
        json!({"conditions": [accepted("Accepted", "True", "Accepted", "")]}),
    )
    .await?;
    let gateway_object = |name: &str, class: &str| {
        json!({"metadata": {"name": name}, "spec": {
        "gatewayClassName": class, "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}})
    };
    create(
        &admin,
        GATEWAY,
        at,
        gateway_object("no-class", "az-gwc-nope"),
    )
    .await?;
    create_with_status(&admin, GATEWAY, at, gateway_object("refused", "az-gwc-fine"),
        json!({"conditions": [accepted("Accepted", "False", "UnsupportedAddress", "the address type NamedAddress is not supported")]})).await?;
    create_with_status(&admin, GATEWAY, at, gateway_object("fine", "az-gwc-fine"), json!({"conditions": [
        accepted("Accepted", "True", "Accepted", ""), accepted("Programmed", "True", "Programmed", "")]})).await?;
    create(
        &admin,
        SERVICE,
        at,
        json!({"metadata": {"name": "web"},
        "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    )
    .await?;
    let route = |name: &str, gateway: &str, service: &str, port: i64| {
        json!({"metadata": {"name": name}, "spec": {
        "parentRefs": [{"name": gateway}],
        "rules": [{"backendRefs": [{"name": service, "port": port}]}]}})
    };
    create(
        &admin,
        HTTP_ROUTE,
        at,
        route("no-gateway", "nowhere", "web", 80),
    )
    .await?;
    create(
        &admin,
        HTTP_ROUTE,
        at,
        route("no-service", "fine", "gone", 80),
    )
    .await?;
    create(
        &admin,
        HTTP_ROUTE,
        at,
        route("wrong-port", "fine", "web", 8080),
    )
    .await?;
    create(&admin, HTTP_ROUTE, at, route("fine", "fine", "web", 80)).await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-gw-devs"], "az-gw");
    // GatewayClasses are cluster-scoped: they are looked at only when the call covers the cluster.
    let found = analyze(
        &gateway,
        &token,
        json!({"filters": "GatewayClass,Gateway,HTTPRoute"}),
    )
    .await?;
    assert_eq!(
        found.names_starting("GatewayClass", "az-gwc-"),
        ["az-gwc-rejected"],
        "{}",
        found.text()
    );
    assert_eq!(
        found.names("Gateway"),
        in_ns(ns, &["no-class", "refused"]),
        "{}",
        found.text()
    );
    assert_eq!(
        found.names("HTTPRoute"),
        in_ns(ns, &["no-gateway", "no-service", "wrong-port"]),
        "{}",
        found.text()
    );
    found.expect("GatewayClass", "az-gwc-rejected", "", &[
        "GatewayClass az-gwc-rejected is not accepted by its controller example.com/gateway-controller: parametersRef names a ConfigMap that does not exist",
    ]);
    found.expect(
        "Gateway",
        "az-gw/no-class",
        "",
        &["Gateway no-class uses the GatewayClass az-gwc-nope, which does not exist"],
    );
    found.expect(
        "Gateway",
        "az-gw/refused",
        "",
        &["Gateway refused is not accepted: the address type NamedAddress is not supported"],
    );
    found.expect(
        "HTTPRoute",
        "az-gw/no-gateway",
        "",
        &["HTTPRoute no-gateway attaches to Gateway az-gw/nowhere, which does not exist"],
    );
    found.expect(
        "HTTPRoute",
        "az-gw/no-service",
        "",
        &["HTTPRoute no-service routes to Service az-gw/gone, which does not exist"],
    );
    found.expect("HTTPRoute", "az-gw/wrong-port", "",
        &["HTTPRoute wrong-port routes to port 8080 of Service az-gw/web, which has no such port (it has 80)"]);
    delete_all(&admin, GATEWAY_CLASS, &["az-gwc-rejected", "az-gwc-fine"]).await;
    Ok(())
}

/// The row of `list-integrations` for integration `name`.
fn integration(listed: &Value, name: &str) -> Value {
    listed["structuredContent"]["integrations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == name)
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn keda_and_kyverno_integrations_work_once_their_crds_are_installed_and_activated()
-> Result<()> {
    let admin = support::cluster().client("admin").await?;
    install_crd(&admin, SCALED_OBJECT, true).await?;
    install_crd(&admin, POLICY_REPORT, true).await?;
    let ns = "az-int";
    tenant_namespace(&admin, ns, Some("az-int"), "az-int-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    create_with_status(
        &admin,
        DEPLOYMENT,
        at,
        deployment("web", 1),
        json!({"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1}),
    )
    .await?;
    let scaled = |name: &str, target: &str| {
        json!({"metadata": {"name": name}, "spec": {
        "scaleTargetRef": {"name": target}, "minReplicaCount": 1, "maxReplicaCount": 10,
        "triggers": [{"type": "kafka", "metadata": {"topic": "orders", "lagThreshold": "50"}}]}})
    };
    create(&admin, SCALED_OBJECT, at, scaled("orphan", "gone")).await?;
    create(&admin, SCALED_OBJECT, at, scaled("web", "web")).await?;
    let report = |name: &str, results: Value| {
        json!({"metadata": {"name": name},
        "summary": {"pass": 1, "fail": 1}, "results": results})
    };
    create(&admin, POLICY_REPORT, at, report("polr-web", json!([
        {"policy": "require-team-label", "rule": "check-team", "result": "fail", "severity": "medium",
         "message": "validation error: label 'team' is required",
         "resources": [{"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": "web-1"}]},
        {"policy": "disallow-latest-tag", "rule": "validate-image-tag", "result": "pass",
         "resources": [{"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": "web-1"}]},
    ]))).await?;
    create(&admin, POLICY_REPORT, at, report("polr-clean", json!([
        {"policy": "disallow-latest-tag", "rule": "validate-image-tag", "result": "pass",
         "resources": [{"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": "web-2"}]},
    ]))).await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let token = gateway.token("dev", &["az-int-devs"], "az-int");
    let listed = client
        .call_ok(&token, "list-integrations", json!({}))
        .await?;
    for name in ["keda", "kyverno"] {
        let row = integration(&listed, name);
        assert_eq!(
            (row["installed"].clone(), row["active"].clone()),
            (json!(true), json!(false)),
            "{row}"
        );
    }
    assert_eq!(integration(&listed, "prometheus")["installed"], false);
    assert!(
        tool_text(&listed).0.contains("- keda: "),
        "{}",
        tool_text(&listed).0
    );
    // Not active: the tenant's defaults do not look at ScaledObjects.
    let before = analyze(&gateway, &token, json!({"namespace": ns})).await?;
    assert!(before.results().is_empty(), "{}", before.text());

    let added = client
        .call_ok(&token, "add-filters", json!({"filters": "keda"}))
        .await?;
    let active = &added["structuredContent"]["activeFilters"];
    assert!(
        active
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a == "ScaledObject"),
        "{active}"
    );
    let listed = client
        .call_ok(&token, "list-integrations", json!({}))
        .await?;
    assert_eq!(integration(&listed, "keda")["active"], true);
    assert_eq!(integration(&listed, "kyverno")["active"], false);
    client
        .call_ok(&token, "add-filters", json!({"filters": ["kyverno"]}))
        .await?;

    let found = analyze(&gateway, &token, json!({"namespace": ns})).await?;
    let kinds: Vec<(String, String)> = found
        .results()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or_default().to_owned(),
                r["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("ScaledObject".to_owned(), "az-int/orphan".to_owned()),
            ("PolicyReport".to_owned(), "az-int/polr-web".to_owned())
        ],
        "exactly these, and nothing of the healthy ones: {}",
        found.text()
    );
    found.expect(
        "ScaledObject",
        "az-int/orphan",
        "",
        &["ScaledObject orphan scales Deployment gone, which does not exist"],
    );
    found.expect("PolicyReport", "az-int/polr-web", "", &[
        "Kyverno policy require-team-label (rule check-team) fails for Pod az-int/web-1: validation error: label 'team' is required",
    ]);
    assert_eq!(
        found
            .failures("PolicyReport", "az-int/polr-web")
            .lines()
            .count(),
        1,
        "the passing result says nothing"
    );
    let analyzers = found.structured()["analyzers"].clone();
    assert!(
        ["ScaledObject", "PolicyReport"].iter().all(|a| analyzers
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n == a)),
        "{analyzers}"
    );
    Ok(())
}

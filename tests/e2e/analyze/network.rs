//! The Service, Ingress, NetworkPolicy and admission webhook analyzers: Services with the
//! Endpoints an endpoints controller would keep, Ingresses naming what does and does not exist,
//! and webhooks that never intercept a request (they match no resource and no namespace).

use anyhow::Result;
use serde_json::{Value, json};

use super::{
    ENDPOINTS, INGRESS, INGRESS_CLASS, MUTATING_WEBHOOKS, NETWORK_POLICY, POD, SECRET, SERVICE,
    VALIDATING_WEBHOOKS, analyze, cluster_kinds_for_group, create, create_with_status, delete_all,
    in_ns, warning,
};
use crate::support::cluster::{EDIT_ROLE, VIEW_ROLE};
use crate::support::{
    self, GatewayOptions, TestGateway, bind_in_namespace, cluster_role_for_group, tenant_namespace,
};

/// A headless Service selecting `selector` (headless: the tests' Service IP range is small).
fn service(name: &str, selector: Value) -> Value {
    json!({"metadata": {"name": name},
           "spec": {"clusterIP": "None", "selector": selector, "ports": [{"name": "http", "port": 80}]}})
}

fn address(ip: &str, pod: &str, ns: &str) -> Value {
    json!({"ip": ip, "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}})
}

#[tokio::test]
async fn services_without_ready_endpoints_are_reported_with_their_selector() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-svc";
    tenant_namespace(&admin, ns, Some("az-svc"), "az-svc-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    let endpoints = |name: &str, ready: &[Value], not_ready: &[Value]| {
        json!({"metadata": {"name": name},
               "subsets": [{"addresses": ready, "notReadyAddresses": not_ready,
                            "ports": [{"name": "http", "port": 8080}]}]})
    };
    create(
        &admin,
        SERVICE,
        at,
        service("no-endpoints", json!({"app": "api", "tier": "back"})),
    )
    .await?;
    create(
        &admin,
        SERVICE,
        at,
        service("not-ready", json!({"app": "db"})),
    )
    .await?;
    create(
        &admin,
        ENDPOINTS,
        at,
        endpoints("not-ready", &[], &[address("10.1.0.7", "db-0", ns)]),
    )
    .await?;
    create(
        &admin,
        SERVICE,
        at,
        service("partly", json!({"app": "cache"})),
    )
    .await?;
    create(
        &admin,
        ENDPOINTS,
        at,
        endpoints(
            "partly",
            &[address("10.1.0.8", "cache-0", ns)],
            &[address("10.1.0.9", "cache-1", ns)],
        ),
    )
    .await?;
    create(&admin, SERVICE, at, service("ready", json!({"app": "web"}))).await?;
    create(
        &admin,
        ENDPOINTS,
        at,
        endpoints("ready", &[address("10.1.0.5", "web-0", ns)], &[]),
    )
    .await?;
    create(
        &admin,
        SERVICE,
        at,
        json!({"metadata": {"name": "external"},
        "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
    )
    .await?;
    // No selector: its endpoints are kept by hand, so none is not a problem.
    create(
        &admin,
        SERVICE,
        at,
        json!({"metadata": {"name": "manual"},
        "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
    )
    .await?;
    create(
        &admin,
        SERVICE,
        at,
        json!({"metadata": {"name": "balanced"},
        "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
    )
    .await?;
    warning(
        &admin,
        ns,
        ("Service", "balanced"),
        None,
        "SyncLoadBalancerFailed",
        "Error syncing load balancer: failed to ensure load balancer: no subnets found",
        30,
    )
    .await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-svc-devs"], "az-svc");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "Service"}),
    )
    .await?;
    assert_eq!(
        found.names("Service"),
        in_ns(ns, &["balanced", "no-endpoints", "not-ready", "partly"]),
        "{}",
        found.text()
    );
    found.expect(
        "Service",
        "az-svc/no-endpoints",
        "",
        &["Service no-endpoints has no endpoints; expected pods with labels app=api, tier=back"],
    );
    found.expect(
        "Service",
        "az-svc/not-ready",
        "",
        &["Service not-ready has no ready endpoints; not ready: Pod/db-0"],
    );
    found.expect(
        "Service",
        "az-svc/partly",
        "",
        &["Service partly has endpoints that are not ready: Pod/cache-1"],
    );
    let balanced = found.failures("Service", "az-svc/balanced");
    assert!(
        balanced.contains("SyncLoadBalancerFailed") && balanced.contains("no subnets found"),
        "{balanced}"
    );
    Ok(())
}

#[tokio::test]
async fn ingresses_naming_a_missing_class_backend_or_tls_secret_are_reported() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-ing";
    // Seeing that a TLS Secret is missing takes listing Secrets (edit); an unknown class,
    // listing IngressClasses across the cluster.
    tenant_namespace(&admin, ns, Some("az-ing"), "az-ing-devs", EDIT_ROLE).await?;
    cluster_kinds_for_group(&admin, "az-ing-devs").await?;
    bind_in_namespace(&admin, ns, "az-ing-viewers", VIEW_ROLE).await?;
    let at = Some(ns);
    create(
        &admin,
        INGRESS_CLASS,
        None,
        json!({"metadata": {"name": "az-ing-nginx"},
        "spec": {"controller": "example.com/ingress-nginx"}}),
    )
    .await?;
    create(&admin, SERVICE, at, service("web", json!({"app": "web"}))).await?;
    create(
        &admin,
        SECRET,
        at,
        json!({"metadata": {"name": "web-tls"}, "data": {"tls.crt": "eA=="}}),
    )
    .await?;
    let ingress = |name: &str, class: Option<&str>, backend: &str, tls: Option<&str>| {
        let mut ingress = json!({
            "metadata": {"name": name},
            "spec": {"rules": [{"host": format!("{name}.example.com"), "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": backend, "port": {"number": 80}}}}]}}]},
        });
        if let Some(class) = class {
            ingress["spec"]["ingressClassName"] = class.into();
        }
        if let Some(secret) = tls {
            ingress["spec"]["tls"] =
                json!([{"hosts": [format!("{name}.example.com")], "secretName": secret}]);
        }
        ingress
    };
    create(&admin, INGRESS, at, ingress("no-class", None, "web", None)).await?;
    create(
        &admin,
        INGRESS,
        at,
        ingress("unknown-class", Some("az-ing-missing"), "web", None),
    )
    .await?;
    create(
        &admin,
        INGRESS,
        at,
        ingress("missing-backend", Some("az-ing-nginx"), "gone", None),
    )
    .await?;
    create(
        &admin,
        INGRESS,
        at,
        ingress(
            "missing-tls",
            Some("az-ing-nginx"),
            "web",
            Some("web-tls-missing"),
        ),
    )
    .await?;
    create(
        &admin,
        INGRESS,
        at,
        ingress("fine", Some("az-ing-nginx"), "web", Some("web-tls")),
    )
    .await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-ing-devs"], "az-ing");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "Ingress"}),
    )
    .await?;
    assert_eq!(
        found.names("Ingress"),
        in_ns(
            ns,
            &[
                "missing-backend",
                "missing-tls",
                "no-class",
                "unknown-class"
            ]
        ),
        "{}",
        found.text()
    );
    found.expect(
        "Ingress",
        "az-ing/no-class",
        "",
        &["Ingress no-class does not specify an Ingress class"],
    );
    found.expect(
        "Ingress",
        "az-ing/unknown-class",
        "",
        &["Ingress unknown-class uses the Ingress class az-ing-missing, which does not exist"],
    );
    found.expect(
        "Ingress",
        "az-ing/missing-backend",
        "",
        &["Ingress missing-backend routes to Service az-ing/gone, which does not exist"],
    );
    found.expect("Ingress", "az-ing/missing-tls", "",
        &["Ingress missing-tls uses Secret az-ing/web-tls-missing as its TLS certificate, which does not exist"]);

    // A caller who may list neither Secrets nor IngressClasses is told neither is missing.
    let viewer = gateway.token("viewer", &["az-ing-viewers"], "az-ing");
    let seen = analyze(
        &gateway,
        &viewer,
        json!({"namespace": ns, "filters": "Ingress"}),
    )
    .await?;
    assert_eq!(
        seen.names("Ingress"),
        in_ns(ns, &["missing-backend", "no-class"]),
        "{}",
        seen.text()
    );
    delete_all(&admin, INGRESS_CLASS, &["az-ing-nginx"]).await;
    Ok(())
}

#[tokio::test]
async fn network_policies_selecting_every_pod_or_none_are_reported_when_named() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-netpol";
    tenant_namespace(&admin, ns, Some("az-netpol"), "az-netpol-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    create(
        &admin,
        POD,
        at,
        json!({"metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/web:1"}]}}),
    )
    .await?;
    let policy = |name: &str, selector: Value| json!({"metadata": {"name": name}, "spec": {"podSelector": selector, "policyTypes": ["Ingress"]}});
    create(&admin, NETWORK_POLICY, at, policy("everything", json!({}))).await?;
    create(
        &admin,
        NETWORK_POLICY,
        at,
        policy("nothing", json!({"matchLabels": {"app": "ghost"}})),
    )
    .await?;
    create(
        &admin,
        NETWORK_POLICY,
        at,
        policy("web-only", json!({"matchLabels": {"app": "web"}})),
    )
    .await?;
    create(&admin, NETWORK_POLICY, at, policy("web-expr",
        json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}))).await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-netpol-devs"], "az-netpol");
    // Optional: not among the defaults.
    let defaults = analyze(&gateway, &token, json!({"namespace": ns})).await?;
    assert!(
        defaults.names("NetworkPolicy").is_empty(),
        "{}",
        defaults.text()
    );
    assert!(
        !defaults.structured()["analyzers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a == "NetworkPolicy")
    );
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "NetworkPolicy"}),
    )
    .await?;
    assert_eq!(
        found.names("NetworkPolicy"),
        in_ns(ns, &["everything", "nothing"]),
        "{}",
        found.text()
    );
    found.expect("NetworkPolicy", "az-netpol/everything", "",
        &["NetworkPolicy everything applies to every pod in namespace az-netpol: its podSelector is empty"]);
    found.expect("NetworkPolicy", "az-netpol/nothing", "",
        &["NetworkPolicy nothing applies to no pod: no pod in namespace az-netpol matches its podSelector app=ghost"]);
    Ok(())
}

/// A webhook configuration calling Service `ns`/`service`, that never intercepts a request:
/// it matches only a resource no API group serves, in namespaces and objects with a label none
/// has, and is ignored if it fails.
fn webhooks(name: &str, ns: &str, service: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "webhooks": [{
            "name": format!("{name}.az-hook.example.com"),
            "clientConfig": {"service": {"namespace": ns, "name": service, "path": "/admit"}},
            "rules": [{"apiGroups": ["az-never.example.com"], "apiVersions": ["v1"],
                       "operations": ["CREATE"], "resources": ["nothings"]}],
            "namespaceSelector": {"matchLabels": {"az-never": "true"}},
            "objectSelector": {"matchLabels": {"az-never": "true"}},
            "failurePolicy": "Ignore", "sideEffects": "None",
            "admissionReviewVersions": ["v1"], "timeoutSeconds": 1,
        }],
    })
}

#[tokio::test]
async fn webhooks_whose_service_is_missing_or_has_no_running_pods_are_reported() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-hook";
    tenant_namespace(&admin, ns, Some("az-hook"), "az-hook-devs", VIEW_ROLE).await?;
    cluster_role_for_group(&admin, "platform-admins", VIEW_ROLE).await?;
    let at = Some(ns);
    let receiver_pod = |name: &str, app: &str| {
        json!({"metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "hook", "image": "registry.example/hook:1"}]}})
    };
    create(
        &admin,
        SERVICE,
        at,
        service("receiver", json!({"app": "receiver"})),
    )
    .await?;
    create(
        &admin,
        SERVICE,
        at,
        service("starting", json!({"app": "starting"})),
    )
    .await?;
    create_with_status(
        &admin,
        POD,
        at,
        receiver_pod("starting-0", "starting"),
        json!({"phase": "Pending"}),
    )
    .await?;
    create(
        &admin,
        SERVICE,
        at,
        service("served", json!({"app": "served"})),
    )
    .await?;
    create_with_status(
        &admin,
        POD,
        at,
        receiver_pod("served-0", "served"),
        json!({"phase": "Running"}),
    )
    .await?;
    create(
        &admin,
        MUTATING_WEBHOOKS,
        None,
        webhooks("az-hook-missing-service", ns, "gone"),
    )
    .await?;
    create(
        &admin,
        MUTATING_WEBHOOKS,
        None,
        webhooks("az-hook-pods-down", ns, "starting"),
    )
    .await?;
    create(
        &admin,
        VALIDATING_WEBHOOKS,
        None,
        webhooks("az-hook-no-pods", ns, "receiver"),
    )
    .await?;
    create(
        &admin,
        VALIDATING_WEBHOOKS,
        None,
        webhooks("az-hook-fine", ns, "served"),
    )
    .await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let carol = gateway.token("carol", &["platform-admins"], "platform");
    let filters = "MutatingWebhookConfiguration,ValidatingWebhookConfiguration";
    let found = analyze(&gateway, &carol, json!({"filters": filters})).await?;
    let mutating = "MutatingWebhookConfiguration";
    let validating = "ValidatingWebhookConfiguration";
    assert_eq!(
        found.names_starting(mutating, "az-hook-"),
        ["az-hook-missing-service", "az-hook-pods-down"],
        "{}",
        found.text()
    );
    assert_eq!(
        found.names_starting(validating, "az-hook-"),
        ["az-hook-no-pods"],
        "{}",
        found.text()
    );
    found.expect(mutating, "az-hook-missing-service", "", &[
        "Webhook az-hook-missing-service.az-hook.example.com calls Service az-hook/gone, which does not exist",
    ]);
    found.expect(mutating, "az-hook-pods-down", "", &[
        "Webhook az-hook-pods-down.az-hook.example.com calls Service az-hook/starting, whose pods are not running: starting-0 (Pending)",
    ]);
    found.expect(validating, "az-hook-no-pods", "", &[
        "Webhook az-hook-no-pods.az-hook.example.com calls Service az-hook/receiver, but no pod has its labels app=receiver",
    ]);

    // They look at cluster-scoped objects: with a namespace they do not run, and say so.
    let scoped = analyze(
        &gateway,
        &carol,
        json!({"namespace": ns, "filters": filters}),
    )
    .await?;
    assert!(scoped.results().is_empty(), "{}", scoped.text());
    assert!(
        scoped.notes().contains("MutatingWebhookConfiguration looks at cluster-scoped objects: it runs only without a namespace"),
        "{}",
        scoped.notes()
    );
    // A tenant may not list webhook configurations: nothing is concluded, and the answer says why.
    let tenant = gateway.token("dev", &["az-hook-devs"], "az-hook");
    let refused = analyze(&gateway, &tenant, json!({"filters": filters})).await?;
    assert!(refused.results().is_empty(), "{}", refused.text());
    assert!(
        refused.notes().contains("ValidatingWebhookConfiguration did not run: Kubernetes does not let you list ValidatingWebhookConfiguration"),
        "{}",
        refused.notes()
    );
    delete_all(
        &admin,
        MUTATING_WEBHOOKS,
        &["az-hook-missing-service", "az-hook-pods-down"],
    )
    .await;
    delete_all(
        &admin,
        VALIDATING_WEBHOOKS,
        &["az-hook-no-pods", "az-hook-fine"],
    )
    .await;
    Ok(())
}

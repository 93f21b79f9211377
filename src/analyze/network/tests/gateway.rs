//! The Gateway API analyzers: GatewayClass, Gateway and HTTPRoute.

use super::*;

fn condition(kind: &str, status: &str, message: &str) -> Value {
    json!({ "type": kind, "status": status, "reason": "Because", "message": message })
}

fn class(name: &str, conditions: Value) -> Value {
    json!({
        "metadata": { "name": name },
        "spec": { "controllerName": "example.com/gateway" },
        "status": { "conditions": conditions },
    })
}

fn gateway(ns: &str, name: &str, class: &str, listeners: Value, conditions: Value) -> Value {
    json!({
        "metadata": meta(ns, name),
        "spec": { "gatewayClassName": class, "listeners": listeners },
        "status": { "conditions": conditions },
    })
}

/// A Gateway `edge`/`public` of class `cloud`, whose one listener takes routes from every namespace.
fn public() -> Value {
    let listeners = json!([{ "name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": { "namespaces": { "from": "All" } } }]);
    gateway(
        "edge",
        "public",
        "cloud",
        listeners,
        json!([condition("Accepted", "True", "")]),
    )
}

fn route(parents: Value, backends: Value) -> Value {
    json!({
        "metadata": meta("shop", "web"),
        "spec": { "parentRefs": parents, "rules": [{ "backendRefs": backends }] },
    })
}

#[test]
fn a_class_not_accepted_says_why() {
    let snapshot = snapshot(&[(
        Source::GatewayClasses,
        vec![class(
            "cloud",
            json!([condition("Accepted", "False", "unsupported parameters")]),
        )],
    )]);
    let finding = only(network::gateway_class, &snapshot, "GatewayClass", "cloud");
    assert_says(
        &finding,
        &[
            "not accepted",
            "example.com/gateway",
            ": unsupported parameters",
        ],
    );
}

#[test]
fn accepted_or_unprocessed_classes_say_nothing() {
    let snapshot = snapshot(&[(
        Source::GatewayClasses,
        vec![
            class("cloud", json!([condition("Accepted", "True", "")])),
            class("new", json!([])),
        ],
    )]);
    assert_silent(network::gateway_class, &snapshot);
}

#[test]
fn a_gateway_of_an_unknown_class_is_reported_where_classes_were_read() {
    let unknown = || gateway("edge", "public", "missing", json!([]), json!([]));
    let snapshot = snapshot(&[
        (Source::Gateways, vec![unknown()]),
        (Source::GatewayClasses, vec![class("cloud", json!([]))]),
    ]);
    let finding = only(network::gateway, &snapshot, "Gateway", "edge/public");
    assert_says(&finding, &["GatewayClass missing, which does not exist"]);

    let unread = self::snapshot(&[(Source::Gateways, vec![unknown()])]);
    assert_silent(network::gateway, &unread);
}

#[test]
fn a_gateway_not_accepted_or_not_programmed_says_why() {
    let conditions = json!([
        condition("Accepted", "False", "listener http is invalid"),
        condition("Programmed", "False", "no addresses"),
    ]);
    let snapshot = snapshot(&[(
        Source::Gateways,
        vec![gateway("edge", "public", "cloud", json!([]), conditions)],
    )]);
    let finding = only(network::gateway, &snapshot, "Gateway", "edge/public");
    assert_says(&finding, &["not accepted: listener http is invalid"]);
    assert_says(&finding, &["not programmed: no addresses"]);
}

#[test]
fn a_healthy_gateway_says_nothing() {
    let snapshot = snapshot(&[
        (Source::Gateways, vec![public()]),
        (
            Source::GatewayClasses,
            vec![class("cloud", json!([condition("Accepted", "True", "")]))],
        ),
    ]);
    assert_silent(network::gateway, &snapshot);
}

#[test]
fn a_missing_gateway_defaults_to_the_route_namespace() {
    let parents = json!([{ "name": "public" }, { "name": "public", "namespace": "edge" }]);
    let snapshot = snapshot(&[
        (Source::HttpRoutes, vec![route(parents, json!([]))]),
        (Source::Gateways, vec![public()]),
    ]);
    let finding = only(network::http_route, &snapshot, "HTTPRoute", "shop/web");
    assert_says(&finding, &["Gateway shop/public, which does not exist"]);
    assert_eq!(finding.failures.len(), 1, "{:#?}", finding.failures);
}

#[test]
fn a_gateway_namespace_not_read_says_nothing() {
    let parents = json!([{ "name": "public", "namespace": "edge" }]);
    let mut snapshot = snapshot(&[(Source::HttpRoutes, vec![route(parents, json!([]))])]);
    read_only_in(&mut snapshot, Source::Gateways, "shop");
    assert_silent(network::http_route, &snapshot);
}

#[test]
fn a_gateway_taking_routes_only_from_its_namespace_is_reported() {
    let listeners = json!([{ "name": "http", "port": 80, "protocol": "HTTP" }]);
    let same = gateway("edge", "private", "cloud", listeners, json!([]));
    let parents = json!([{ "name": "private", "namespace": "edge" }, { "name": "public", "namespace": "edge" }]);
    let snapshot = snapshot(&[
        (Source::HttpRoutes, vec![route(parents, json!([]))]),
        (Source::Gateways, vec![same, public()]),
    ]);
    let finding = only(network::http_route, &snapshot, "HTTPRoute", "shop/web");
    assert_says(
        &finding,
        &["Gateway edge/private", "only from namespace edge"],
    );
    assert_eq!(finding.failures.len(), 1, "{:#?}", finding.failures);
}

#[test]
fn a_missing_backend_or_port_is_reported() {
    let backends = json!([
        { "name": "web", "port": 8080 },
        { "name": "gone", "port": 80 },
        { "name": "bucket", "kind": "Bucket", "group": "storage.example.com" },
    ]);
    let snapshot = snapshot(&[
        (Source::HttpRoutes, vec![route(json!([]), backends)]),
        (
            Source::Services,
            vec![service("shop", "web", json!({ "app": "web" }), &[80, 443])],
        ),
    ]);
    let finding = only(network::http_route, &snapshot, "HTTPRoute", "shop/web");
    assert_says(
        &finding,
        &["port 8080 of Service shop/web", "it has 80, 443"],
    );
    assert_says(&finding, &["Service shop/gone, which does not exist"]);
    assert_eq!(finding.failures.len(), 2, "{:#?}", finding.failures);
}

#[test]
fn services_not_read_say_nothing_about_backends() {
    let backends = json!([{ "name": "gone", "port": 80 }]);
    let snapshot = snapshot(&[(Source::HttpRoutes, vec![route(json!([]), backends)])]);
    assert_silent(network::http_route, &snapshot);
}

#[test]
fn a_healthy_route_says_nothing() {
    let parents = json!([{ "name": "public", "namespace": "edge", "sectionName": "http" }]);
    let backends = json!([{ "name": "web", "port": 80 }]);
    let snapshot = snapshot(&[
        (Source::HttpRoutes, vec![route(parents, backends)]),
        (Source::Gateways, vec![public()]),
        (
            Source::Services,
            vec![service("shop", "web", json!({ "app": "web" }), &[80])],
        ),
    ]);
    assert_silent(network::http_route, &snapshot);
}

//! The Ingress analyzer: its class, backend Services and TLS Secrets.

use super::*;

fn ingress(class: Option<&str>, backends: &[&str], tls: &[&str]) -> Value {
    let paths: Vec<Value> = backends
        .iter()
        .map(|b| json!({ "path": "/", "pathType": "Prefix", "backend": { "service": { "name": b, "port": { "number": 80 } } } }))
        .collect();
    let tls: Vec<Value> = tls.iter().map(|s| json!({ "secretName": s })).collect();
    json!({
        "metadata": meta("shop", "front"),
        "spec": { "ingressClassName": class, "rules": [{ "http": { "paths": paths } }], "tls": tls },
    })
}

fn class(name: &str) -> Value {
    json!({ "metadata": { "name": name }, "spec": { "controller": "k8s.io/ingress-nginx" } })
}

fn secret(ns: &str, name: &str) -> Value {
    json!({ "metadata": meta(ns, name), "type": "kubernetes.io/tls" })
}

#[test]
fn no_class_is_reported() {
    let snapshot = snapshot(&[(Source::Ingresses, vec![ingress(None, &[], &[])])]);
    let finding = only(network::ingress, &snapshot, "Ingress", "shop/front");
    assert_says(
        &finding,
        &["Ingress front does not specify an Ingress class"],
    );
}

#[test]
fn the_class_annotation_counts_as_a_class_and_must_exist() {
    let mut annotated = ingress(None, &[], &[]);
    annotated["metadata"]["annotations"] = json!({ "kubernetes.io/ingress.class": "nginx" });
    let snapshot = snapshot(&[
        (Source::Ingresses, vec![annotated]),
        (Source::IngressClasses, vec![class("traefik")]),
    ]);
    let finding = only(network::ingress, &snapshot, "Ingress", "shop/front");
    assert_says(&finding, &["Ingress class nginx, which does not exist"]);
    assert_eq!(finding.failures.len(), 1, "{:#?}", finding.failures);
}

#[test]
fn an_unknown_class_is_reported_only_where_classes_were_read() {
    let unknown = || ingress(Some("haproxy"), &[], &[]);
    let snapshot = snapshot(&[
        (Source::Ingresses, vec![unknown()]),
        (Source::IngressClasses, vec![class("nginx")]),
    ]);
    let finding = only(network::ingress, &snapshot, "Ingress", "shop/front");
    assert_says(&finding, &["haproxy", "does not exist"]);

    let unread = self::snapshot(&[(Source::Ingresses, vec![unknown()])]);
    assert_silent(network::ingress, &unread);
}

#[test]
fn missing_backend_services_are_named_once_each() {
    let mut routed = ingress(Some("nginx"), &["web", "api", "web"], &[]);
    routed["spec"]["defaultBackend"] =
        json!({ "service": { "name": "fallback", "port": { "number": 80 } } });
    let snapshot = snapshot(&[
        (Source::Ingresses, vec![routed]),
        (
            Source::Services,
            vec![service("shop", "api", Value::Null, &[80])],
        ),
    ]);
    let finding = only(network::ingress, &snapshot, "Ingress", "shop/front");
    assert_says(&finding, &["Service shop/web, which does not exist"]);
    assert_says(&finding, &["Service shop/fallback, which does not exist"]);
    assert_eq!(finding.failures.len(), 2, "{:#?}", finding.failures);
}

#[test]
fn a_missing_tls_secret_is_named() {
    let snapshot = snapshot(&[
        (
            Source::Ingresses,
            vec![ingress(Some("nginx"), &[], &["front-tls", "old-tls"])],
        ),
        (
            Source::Secrets,
            vec![secret("shop", "old-tls"), secret("other", "front-tls")],
        ),
    ]);
    let finding = only(network::ingress, &snapshot, "Ingress", "shop/front");
    assert_says(
        &finding,
        &["Secret shop/front-tls", "TLS certificate", "does not exist"],
    );
    assert_eq!(finding.failures.len(), 1, "{:#?}", finding.failures);
}

#[test]
fn services_and_secrets_not_read_are_not_missing() {
    let mut snapshot = snapshot(&[(
        Source::Ingresses,
        vec![ingress(Some("nginx"), &["web"], &["front-tls"])],
    )]);
    read_only_in(&mut snapshot, Source::Services, "other");
    read_only_in(&mut snapshot, Source::Secrets, "other");
    assert_silent(network::ingress, &snapshot);
}

#[test]
fn a_healthy_ingress_says_nothing() {
    let snapshot = snapshot(&[
        (
            Source::Ingresses,
            vec![ingress(Some("nginx"), &["web"], &["front-tls"])],
        ),
        (Source::IngressClasses, vec![class("nginx")]),
        (
            Source::Services,
            vec![service("shop", "web", json!({ "app": "web" }), &[80])],
        ),
        (Source::Secrets, vec![secret("shop", "front-tls")]),
    ]);
    assert_silent(network::ingress, &snapshot);
}

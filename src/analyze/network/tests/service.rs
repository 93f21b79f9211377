//! The Service analyzer: endpoints missing or not ready, and warning events.

use super::*;

fn endpoints(ns: &str, name: &str, subsets: Value) -> Value {
    json!({ "metadata": meta(ns, name), "subsets": subsets })
}

fn web() -> Value {
    service(
        "shop",
        "web",
        json!({ "app": "web", "tier": "front" }),
        &[80],
    )
}

#[test]
fn no_endpoints_names_the_selector() {
    let snapshot = snapshot(&[
        (Source::Services, vec![web()]),
        (Source::Endpoints, vec![endpoints("shop", "web", json!([]))]),
    ]);
    let finding = only(network::service, &snapshot, "Service", "shop/web");
    assert_says(
        &finding,
        &["Service web has no endpoints", "app=web, tier=front"],
    );
    assert_eq!(finding.failures[0].doc, docs::SERVICES);
}

#[test]
fn a_missing_endpoints_object_is_no_endpoints_where_endpoints_were_read() {
    let mut snapshot = snapshot(&[(Source::Services, vec![web()])]);
    snapshot.mark_read(Source::Endpoints);
    let finding = only(network::service, &snapshot, "Service", "shop/web");
    assert_says(&finding, &["no endpoints", "app=web"]);
}

#[test]
fn endpoints_not_read_say_nothing_about_endpoints() {
    let snapshot = snapshot(&[(Source::Services, vec![web()])]);
    assert_silent(network::service, &snapshot);

    let mut elsewhere = self::snapshot(&[(Source::Services, vec![web()])]);
    read_only_in(&mut elsewhere, Source::Endpoints, "other");
    assert_silent(network::service, &elsewhere);
}

#[test]
fn not_ready_endpoints_name_their_pods() {
    let subsets = json!([{
        "addresses": [{ "ip": "10.0.0.1" }],
        "notReadyAddresses": [
            { "ip": "10.0.0.2", "targetRef": { "kind": "Pod", "name": "web-2" } },
            { "ip": "10.0.0.3" },
        ],
    }]);
    let snapshot = snapshot(&[
        (Source::Services, vec![web()]),
        (Source::Endpoints, vec![endpoints("shop", "web", subsets)]),
    ]);
    let finding = only(network::service, &snapshot, "Service", "shop/web");
    assert_says(&finding, &["not ready", "Pod/web-2, 10.0.0.3"]);
    assert_eq!(finding.failures.len(), 1);
}

#[test]
fn only_not_ready_endpoints_are_no_ready_endpoints() {
    let subsets = json!([{ "notReadyAddresses": [
        { "ip": "10.0.0.2", "targetRef": { "kind": "Pod", "name": "web-2" } },
    ] }]);
    let snapshot = snapshot(&[
        (Source::Services, vec![web()]),
        (Source::Endpoints, vec![endpoints("shop", "web", subsets)]),
    ]);
    let finding = only(network::service, &snapshot, "Service", "shop/web");
    assert_says(&finding, &["no ready endpoints", "Pod/web-2"]);
}

#[test]
fn warning_events_are_quoted() {
    let ready = json!([{ "addresses": [{ "ip": "10.0.0.1" }] }]);
    let snapshot = snapshot(&[
        (Source::Services, vec![web()]),
        (Source::Endpoints, vec![endpoints("shop", "web", ready)]),
        (
            Source::Events,
            vec![warning(
                "shop",
                "Service",
                "web",
                "SyncLoadBalancerFailed",
                "quota exceeded",
            )],
        ),
    ]);
    let finding = only(network::service, &snapshot, "Service", "shop/web");
    assert_says(&finding, &["SyncLoadBalancerFailed", "\"quota exceeded\""]);
}

#[test]
fn healthy_and_selectorless_services_say_nothing() {
    let ready = json!([{ "addresses": [{ "ip": "10.0.0.1" }] }]);
    let external = json!({
        "metadata": meta("shop", "db"),
        "spec": { "type": "ExternalName", "externalName": "db.example.com", "selector": { "app": "db" } },
    });
    let snapshot = snapshot(&[
        (
            Source::Services,
            vec![
                web(),
                service("shop", "manual", Value::Null, &[5432]),
                external,
            ],
        ),
        (Source::Endpoints, vec![endpoints("shop", "web", ready)]),
        (
            Source::Events,
            vec![warning(
                "shop",
                "Service",
                "other",
                "Failed",
                "about another service",
            )],
        ),
    ]);
    assert_silent(network::service, &snapshot);
}

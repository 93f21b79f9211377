//! The NetworkPolicy analyzer, and the label-selector matching it shares.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

use super::*;

fn policy(ns: &str, name: &str, selector: Value) -> Value {
    json!({ "metadata": meta(ns, name), "spec": { "podSelector": selector, "policyTypes": ["Ingress"] } })
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

fn expressions(requirements: Vec<LabelSelectorRequirement>) -> LabelSelector {
    LabelSelector {
        match_labels: None,
        match_expressions: Some(requirements),
    }
}

#[test]
fn an_empty_pod_selector_applies_to_every_pod() {
    let snapshot = snapshot(&[(
        Source::NetworkPolicies,
        vec![policy("shop", "deny-all", json!({}))],
    )]);
    let finding = only(
        network::network_policy,
        &snapshot,
        "NetworkPolicy",
        "shop/deny-all",
    );
    assert_says(
        &finding,
        &["NetworkPolicy deny-all applies to every pod in namespace shop"],
    );
}

#[test]
fn a_selector_matching_no_pod_is_named() {
    let selector = json!({
        "matchLabels": { "app": "web" },
        "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["front", "edge"] }],
    });
    let snapshot = snapshot(&[
        (
            Source::NetworkPolicies,
            vec![policy("shop", "web-only", selector)],
        ),
        (
            Source::Pods,
            vec![
                pod(
                    "shop",
                    "web-1",
                    json!({ "app": "web", "tier": "back" }),
                    "Running",
                ),
                // Matches, but in another namespace.
                pod(
                    "other",
                    "web-2",
                    json!({ "app": "web", "tier": "front" }),
                    "Running",
                ),
            ],
        ),
    ]);
    let finding = only(
        network::network_policy,
        &snapshot,
        "NetworkPolicy",
        "shop/web-only",
    );
    assert_says(
        &finding,
        &[
            "applies to no pod",
            "namespace shop",
            "app=web, tier in (front,edge)",
        ],
    );
}

#[test]
fn pods_not_read_say_nothing_about_matching() {
    let selector = json!({ "matchLabels": { "app": "web" } });
    let mut snapshot = snapshot(&[(
        Source::NetworkPolicies,
        vec![policy("shop", "web-only", selector)],
    )]);
    assert_silent(network::network_policy, &snapshot);
    read_only_in(&mut snapshot, Source::Pods, "other");
    assert_silent(network::network_policy, &snapshot);
}

#[test]
fn a_policy_selecting_a_pod_says_nothing() {
    let selector = json!({ "matchExpressions": [{ "key": "app", "operator": "Exists" }] });
    let snapshot = snapshot(&[
        (
            Source::NetworkPolicies,
            vec![policy("shop", "apps", selector)],
        ),
        (
            Source::Pods,
            vec![pod("shop", "web-1", json!({ "app": "web" }), "Running")],
        ),
    ]);
    assert_silent(network::network_policy, &snapshot);
}

#[test]
fn match_labels_need_every_pair() {
    let selector = LabelSelector {
        match_labels: Some(labels(&[("app", "web"), ("tier", "front")])),
        match_expressions: None,
    };
    assert!(selects(
        &selector,
        Some(&labels(&[("app", "web"), ("tier", "front"), ("x", "y")]))
    ));
    assert!(!selects(&selector, Some(&labels(&[("app", "web")]))));
    assert!(!selects(
        &selector,
        Some(&labels(&[("app", "web"), ("tier", "back")]))
    ));
    assert!(!selects(&selector, None));
    assert!(
        selects(&LabelSelector::default(), None),
        "the empty selector selects all"
    );
}

#[test]
fn match_expressions_follow_each_operator() {
    let web = labels(&[("app", "web")]);
    let cases = [
        (requirement("app", "In", &["web", "api"]), true, false),
        (requirement("app", "In", &["api"]), false, false),
        (requirement("app", "NotIn", &["api"]), true, true),
        (requirement("app", "NotIn", &["web"]), false, true),
        (requirement("app", "Exists", &[]), true, false),
        (requirement("app", "DoesNotExist", &[]), false, true),
        (requirement("app", "Matches", &["web"]), false, false),
    ];
    for (requirement, on_web, on_unlabelled) in cases {
        let text = format!("{} {}", requirement.key, requirement.operator);
        let selector = expressions(vec![requirement]);
        assert_eq!(selects(&selector, Some(&web)), on_web, "{text} on app=web");
        assert_eq!(
            selects(&selector, None),
            on_unlabelled,
            "{text} on no labels"
        );
    }
}

#[test]
fn selectors_are_described_as_kubectl_writes_them() {
    let mut selector = expressions(vec![
        requirement("tier", "NotIn", &["back", "db"]),
        requirement("canary", "Exists", &[]),
        requirement("debug", "DoesNotExist", &[]),
    ]);
    selector.match_labels = Some(labels(&[("app", "web")]));
    assert_eq!(
        describe(&selector),
        "app=web, tier notin (back,db), canary, !debug"
    );
}

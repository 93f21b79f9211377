//! Tests of the analyzer registry and of running analyzers over a snapshot.

use std::collections::HashSet;

use serde_json::json;

use super::*;

#[test]
fn analyzer_names_are_k8sgpts_unique_and_found_in_any_case() {
    let mut seen = HashSet::new();
    for each in ANALYZERS {
        assert!(seen.insert(each.name), "{} twice", each.name);
        assert!(!each.reads.is_empty(), "{} reads nothing", each.name);
        assert_eq!(
            analyzer(&each.name.to_ascii_lowercase()).map(|a| a.name),
            Some(each.name)
        );
    }
    for name in [
        "Pod",
        "HorizontalPodAutoScaler",
        "MutatingWebhookConfiguration",
        "HTTPRoute",
    ] {
        assert!(analyzer(name).is_some(), "{name}");
    }
    for integration in INTEGRATIONS {
        for name in integration.analyzers {
            let found = analyzer(name).and_then(|a| a.integration);
            assert_eq!(found, Some(integration.name), "{name}");
        }
    }
}

#[test]
fn an_analyzer_whose_own_kind_was_not_read_does_not_run() {
    let mut snapshot = Snapshot::default();
    // Services read, Endpoints not: the Service analyzer runs but concludes nothing from
    // Endpoints it never saw.
    snapshot.add_values(
        Source::Services,
        &[json!({"metadata": {"name": "web", "namespace": "a"},
                 "spec": {"selector": {"app": "web"}}})],
    );
    let deployment = analyzer("Deployment").into_iter().collect::<Vec<_>>();
    assert!(run(&snapshot, &deployment).is_empty());
    let service = analyzer("Service").into_iter().collect::<Vec<_>>();
    assert!(
        run(&snapshot, &service).is_empty(),
        "no Endpoints read: no verdict"
    );
    snapshot.mark_read(Source::Endpoints);
    let found = run(&snapshot, &service);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].name, "a/web");
}

#[test]
fn a_kind_read_everywhere_is_known_only_in_the_namespaces_the_call_covers() {
    let mut snapshot = Snapshot::default();
    snapshot.mark_read(Source::Services);
    assert!(
        snapshot.has_in(Source::Services, "kube-system"),
        "no coverage: anywhere"
    );
    snapshot.covered = Some(HashSet::from(["team-a".to_owned()]));
    assert!(snapshot.has_in(Source::Services, "team-a"));
    assert!(
        !snapshot.has_in(Source::Services, "kube-system"),
        "a namespace the caller may not read is unknown, not empty"
    );
    snapshot.add(Source::Pods, Some("team-b"), &[]);
    assert!(snapshot.has_in(Source::Pods, "team-b"));
    assert!(!snapshot.has_in(Source::Pods, "team-a"));
}

#[test]
fn a_pods_parent_is_its_topmost_owner() {
    let mut snapshot = Snapshot::default();
    let owner = |kind: &str, name: &str| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true}]);
    snapshot.add_values(
        Source::ReplicaSets,
        &[json!({"metadata": {"name": "web-7d4b", "namespace": "a",
                               "ownerReferences": owner("Deployment", "web")}})],
    );
    snapshot.add_values(
        Source::Deployments,
        &[json!({"metadata": {"name": "web", "namespace": "a"}})],
    );
    let pod: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
        serde_json::from_value(json!({"name": "web-7d4b-x", "namespace": "a",
                                      "ownerReferences": owner("ReplicaSet", "web-7d4b")}))
        .unwrap_or_default();
    assert_eq!(
        snapshot.parent_of("a", &pod).as_deref(),
        Some("Deployment/web")
    );
    // The ReplicaSet in another namespace is not this pod's: the chain stops at its owner.
    assert_eq!(
        snapshot.parent_of("b", &pod).as_deref(),
        Some("ReplicaSet/web-7d4b")
    );
    let orphan = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta::default();
    assert_eq!(snapshot.parent_of("a", &orphan), None);
}

//! ConfigMap: unused, empty, too large.

use std::collections::BTreeMap;

use base64::Engine;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{only, run, says, snapshot, texts};
use crate::analyze::cluster::{CONFIG_MAP_LIMIT, config_map, config_map_size};
use crate::analyze::{Finding, Snapshot, Source, docs};

fn config(ns: &str, name: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": ns}, "data": {"key": "value"}})
}

fn pod(ns: &str, name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn container(extra: Value) -> Value {
    let mut c = json!({"name": "app", "image": "app:1"});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

/// Pod specs that each use the ConfigMap `settings`, one way each.
fn uses_of_settings() -> Vec<(&'static str, Value)> {
    let key_ref = json!({"env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}]});
    let env_from = json!({"envFrom": [{"configMapRef": {"name": "settings"}}]});
    vec![
        (
            "volume",
            json!({"containers": [container(json!({}))], "volumes": [{"name": "v", "configMap": {"name": "settings"}}]}),
        ),
        (
            "projected volume",
            json!({"containers": [container(json!({}))], "volumes": [{"name": "v", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token"}},
                {"configMap": {"name": "settings"}},
            ]}}]}),
        ),
        (
            "env configMapKeyRef",
            json!({"containers": [container(key_ref.clone())]}),
        ),
        (
            "envFrom configMapRef",
            json!({"containers": [container(env_from.clone())]}),
        ),
        (
            "init container env",
            json!({"containers": [container(json!({}))], "initContainers": [container(key_ref)]}),
        ),
        (
            "ephemeral container envFrom",
            json!({"containers": [container(json!({}))], "ephemeralContainers": [container(env_from)]}),
        ),
    ]
}

fn unused(finding: &Finding) -> bool {
    texts(finding)
        .iter()
        .any(|t| t.contains("not used by any pod"))
}

#[test]
fn a_config_map_no_pod_names_is_reported_unused() {
    let s = snapshot(&[
        (Source::ConfigMaps, vec![config("shop", "settings")]),
        (
            Source::Pods,
            vec![pod(
                "shop",
                "web",
                json!({"containers": [container(json!({}))]}),
            )],
        ),
    ]);
    let findings = run(config_map, &s);
    let finding = only(&findings, "ConfigMap", "shop/settings");
    says(finding, &["not used by any pod"]);
    assert_eq!(finding.failures[0].doc, docs::CONFIGMAPS);
}

#[test]
fn a_config_map_is_used_through_every_kind_of_reference() {
    for (how, spec) in uses_of_settings() {
        let s = snapshot(&[
            (Source::ConfigMaps, vec![config("shop", "settings")]),
            (Source::Pods, vec![pod("shop", "web", spec)]),
        ]);
        assert_eq!(run(config_map, &s), vec![], "used through {how}");
    }
}

#[test]
fn a_pod_in_another_namespace_does_not_use_it() {
    for (how, spec) in uses_of_settings() {
        let s = snapshot(&[
            (Source::ConfigMaps, vec![config("shop", "settings")]),
            (Source::Pods, vec![pod("other", "web", spec)]),
        ]);
        let findings = run(config_map, &s);
        assert!(
            unused(only(&findings, "ConfigMap", "shop/settings")),
            "{how}"
        );
    }
}

#[test]
fn unused_is_not_concluded_where_pods_were_not_read() {
    let s = snapshot(&[(Source::ConfigMaps, vec![config("shop", "settings")])]);
    assert_eq!(run(config_map, &s), vec![]);

    // Pods read in one namespace only: a ConfigMap elsewhere is not judged.
    let mut s = snapshot(&[(
        Source::ConfigMaps,
        vec![config("shop", "settings"), config("lab", "settings")],
    )]);
    s.add(Source::Pods, Some("lab"), &[]);
    let findings = run(config_map, &s);
    assert!(unused(only(&findings, "ConfigMap", "lab/settings")));
}

#[test]
fn config_maps_read_through_the_api_are_not_reported_unused() {
    let mut sidecar = config("monitoring", "dashboard");
    sidecar["metadata"]["labels"] = json!({"grafana_dashboard": "1"});
    let mut marked = config("shop", "dynamic");
    marked["metadata"]["labels"] = json!({"k8sgpt.ai/dynamically-loaded": "true"});
    let mut skipped = config("shop", "skipped");
    skipped["metadata"]["annotations"] = json!({"k8sgpt.ai/skip-usage-check": "true"});
    let mut lock = config("kube-system", "controller-lock");
    lock["metadata"]["annotations"] = json!({"control-plane.alpha.kubernetes.io/leader": "{}"});
    let s = snapshot(&[
        (
            Source::ConfigMaps,
            vec![
                config("shop", "kube-root-ca.crt"),
                config("kube-system", "extension-apiserver-authentication"),
                config("kube-public", "cluster-info"),
                sidecar,
                marked,
                skipped,
                lock,
            ],
        ),
        (Source::Pods, vec![]),
    ]);
    assert_eq!(run(config_map, &s), vec![]);
}

#[test]
fn an_empty_config_map_is_reported_even_when_used() {
    let empty = vec![
        json!({"metadata": {"name": "settings", "namespace": "shop"}}),
        json!({"metadata": {"name": "settings", "namespace": "lab"}, "data": {}, "binaryData": {}}),
    ];
    let spec = json!({"containers": [container(json!({"envFrom": [{"configMapRef": {"name": "settings"}}]}))]});
    let s = snapshot(&[
        (Source::ConfigMaps, empty),
        (
            Source::Pods,
            vec![pod("shop", "web", spec.clone()), pod("lab", "web", spec)],
        ),
    ]);
    let findings = run(config_map, &s);
    assert_eq!(findings.len(), 2);
    for finding in &findings {
        says(finding, &["empty"]);
    }
}

#[test]
fn binary_data_alone_is_not_empty() {
    let object = json!({"metadata": {"name": "certs", "namespace": "shop"}, "binaryData": {"ca.der": "AAEC"}});
    let s = snapshot(&[(Source::ConfigMaps, vec![object])]);
    assert_eq!(run(config_map, &s), vec![]);
}

/// A ConfigMap of `text` bytes of data and `binary` bytes of binaryData.
fn sized(text: usize, binary: usize) -> Value {
    let encoded = base64::engine::general_purpose::STANDARD.encode(vec![7u8; binary]);
    json!({
        "metadata": {"name": "big", "namespace": "shop"},
        "data": {"a": "x".repeat(text / 2), "b": "é".repeat((text - text / 2) / 2) + &"y".repeat((text - text / 2) % 2)},
        "binaryData": {"blob": encoded},
    })
}

fn large(snapshot: &Snapshot) -> Vec<String> {
    let findings = run(config_map, snapshot);
    findings
        .iter()
        .flat_map(|f| f.failures.iter())
        .filter(|f| f.text.contains("more than 1 MB"))
        .map(|f| f.text.clone())
        .collect()
}

#[test]
fn a_config_map_over_one_megabyte_is_reported_with_its_size() {
    let s = snapshot(&[(
        Source::ConfigMaps,
        vec![sized(CONFIG_MAP_LIMIT / 2, CONFIG_MAP_LIMIT / 2 + 1)],
    )]);
    let texts = large(&s);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("1000001 bytes"), "{}", texts[0]);
}

#[test]
fn a_config_map_of_exactly_one_megabyte_is_not_too_large() {
    let s = snapshot(&[(Source::ConfigMaps, vec![sized(CONFIG_MAP_LIMIT - 10, 10)])]);
    assert_eq!(large(&s), Vec::<String>::new());
}

#[test]
fn a_healthy_used_config_map_yields_nothing() {
    let spec = json!({"containers": [container(json!({}))], "volumes": [{"name": "v", "configMap": {"name": "settings"}}]});
    let s = snapshot(&[
        (Source::ConfigMaps, vec![config("shop", "settings")]),
        (Source::Pods, vec![pod("shop", "web", spec)]),
    ]);
    assert_eq!(run(config_map, &s), vec![]);
}

proptest! {
    #[test]
    fn the_size_is_every_value_byte_and_no_key(
        data in proptest::collection::btree_map(".{0,8}", ".{0,64}", 0..8),
        binary in proptest::collection::btree_map("[a-z]{1,8}", proptest::collection::vec(any::<u8>(), 0..64), 0..8),
    ) {
        let encoded: BTreeMap<&String, String> = binary
            .iter()
            .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
            .collect();
        let object = json!({"metadata": {"name": "c", "namespace": "n"}, "data": data, "binaryData": encoded});
        let parsed: k8s_openapi::api::core::v1::ConfigMap =
            serde_json::from_value(object.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected: usize = data.values().map(String::len).sum::<usize>()
            + binary.values().map(Vec::len).sum::<usize>();
        prop_assert_eq!(config_map_size(&parsed), expected);

        // And the analyzer, given it, never panics and calls it empty exactly when it is.
        let s = snapshot(&[(Source::ConfigMaps, vec![object])]);
        let findings = run(config_map, &s);
        let empty = data.is_empty() && binary.is_empty();
        prop_assert_eq!(findings.len(), usize::from(empty));
    }

    #[test]
    fn the_limit_is_crossed_exactly_above_one_megabyte(
        text in (CONFIG_MAP_LIMIT - 4)..(CONFIG_MAP_LIMIT + 4),
        binary in 0usize..6,
    ) {
        let s = snapshot(&[(Source::ConfigMaps, vec![sized(text - binary, binary)])]);
        let texts = large(&s);
        if text > CONFIG_MAP_LIMIT {
            prop_assert_eq!(texts.len(), 1);
            let size = format!("{text} bytes");
            prop_assert!(texts[0].contains(&size), "{} lacks {}", texts[0], size);
        } else {
            prop_assert!(texts.is_empty(), "{:?}", texts);
        }
    }

    #[test]
    fn config_map_never_panics_on_partial_objects(
        name in proptest::option::of("[a-z.-]{0,12}"),
        ns in proptest::option::of("[a-z]{0,6}"),
        pod_refs in proptest::collection::vec(proptest::option::of("[a-z]{0,4}"), 0..4),
        with_pods in any::<bool>(),
    ) {
        let mut meta = json!({});
        if let Some(name) = &name { meta["name"] = json!(name); }
        if let Some(ns) = &ns { meta["namespace"] = json!(ns); }
        let pods: Vec<Value> = pod_refs
            .iter()
            .map(|r| {
                let reference = r.as_ref().map_or(json!({}), |r| json!({"name": r}));
                json!({"metadata": meta.clone(), "spec": {"containers": [
                    {"name": "c", "envFrom": [{"configMapRef": reference.clone()}],
                     "env": [{"name": "E", "valueFrom": {"configMapKeyRef": reference}}]}
                ], "volumes": [{"name": "v", "projected": {}}, {"name": "w", "configMap": {}}]}})
            })
            .collect();
        let mut s = snapshot(&[(Source::ConfigMaps, vec![json!({"metadata": meta})])]);
        if with_pods {
            s.add_values(Source::Pods, &pods);
        }
        let findings = run(config_map, &s);
        prop_assert!(findings.len() <= 1);
    }
}

//! Properties: no input makes the selector matcher or an analyzer panic.

use proptest::prelude::*;

use super::*;

/// Keys the analyzers read, so generated objects reach deep into them.
const KEYS: &[&str] = &[
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "spec",
    "status",
    "conditions",
    "type",
    "status",
    "message",
    "reason",
    "selector",
    "ports",
    "port",
    "subsets",
    "addresses",
    "notReadyAddresses",
    "targetRef",
    "kind",
    "group",
    "ip",
    "podSelector",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "webhooks",
    "clientConfig",
    "service",
    "controllerName",
    "gatewayClassName",
    "listeners",
    "allowedRoutes",
    "namespaces",
    "from",
    "parentRefs",
    "sectionName",
    "rules",
    "backendRefs",
    "http",
    "paths",
    "backend",
    "tls",
    "secretName",
    "ingressClassName",
    "defaultBackend",
    "phase",
    "involvedObject",
];

/// Values the analyzers compare against.
const WORDS: &[&str] = &[
    "",
    "shop",
    "web",
    "True",
    "False",
    "Unknown",
    "Accepted",
    "Programmed",
    "Service",
    "Gateway",
    "gateway.networking.k8s.io",
    "Same",
    "All",
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
    "app",
    "Running",
    "ExternalName",
    "Warning",
];

/// Any JSON, biased towards the keys and words the analyzers look for.
pub(super) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
        ".{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(prop::sample::select(KEYS), inner, 0..6)
                .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
        ]
    })
}

/// An object with metadata in a few namespaces, and anything in it.
fn object() -> impl Strategy<Value = Value> {
    let ns = prop::sample::select(&["shop", "edge", ""][..]);
    let name = prop::sample::select(&["web", "public", "cloud"][..]);
    (ns, name, json_value(), json_value(), json_value()).prop_map(
        |(ns, name, spec, status, rest)| {
            let mut object = json!({ "metadata": meta(ns, name), "spec": spec, "status": status });
            if let (Value::Object(object), Value::Object(rest)) = (&mut object, rest) {
                for (k, v) in rest {
                    object.entry(k).or_insert(v);
                }
            }
            object
        },
    )
}

const SOURCES: &[Source] = &[
    Source::Services,
    Source::Endpoints,
    Source::Events,
    Source::Ingresses,
    Source::IngressClasses,
    Source::Secrets,
    Source::NetworkPolicies,
    Source::Pods,
    Source::MutatingWebhooks,
    Source::ValidatingWebhooks,
    Source::GatewayClasses,
    Source::Gateways,
    Source::HttpRoutes,
];

const ANALYZERS: &[Analyzer] = &[
    network::service,
    network::ingress,
    network::network_policy,
    network::mutating_webhook,
    network::validating_webhook,
    network::gateway_class,
    network::gateway,
    network::http_route,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// Whatever objects of whatever shape each kind holds, every analyzer returns, and every
    /// finding it makes has something to say.
    #[test]
    fn analyzers_never_panic(objects in prop::collection::vec((0..SOURCES.len(), object()), 0..12)) {
        let mut snapshot = Snapshot::default();
        for (i, object) in objects {
            snapshot.add_values(SOURCES[i], &[object]);
        }
        for analyzer in ANALYZERS {
            for finding in findings(*analyzer, &snapshot) {
                prop_assert!(!finding.failures.is_empty());
            }
        }
    }

    /// Any selector that parses matches any labels without panicking, and a selector of
    /// `matchLabels` only selects exactly the labels that hold every pair.
    #[test]
    fn selectors_never_panic(selector in json_value(), labels in prop::collection::btree_map(prop::sample::select(WORDS), prop::sample::select(WORDS), 0..4)) {
        let labels: Labels = labels.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        if let Ok(selector) = serde_json::from_value::<LabelSelector>(selector) {
            let selected = selects(&selector, Some(&labels));
            let _ = describe(&selector);
            if selector.match_expressions.as_ref().is_none_or(|e| e.is_empty()) {
                let pairs = selector.match_labels.clone().unwrap_or_default();
                prop_assert_eq!(selected, has_labels(Some(&labels), &pairs));
            }
        }
    }
}

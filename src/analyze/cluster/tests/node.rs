//! Node: readiness and pressure conditions.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{only, run, says, snapshot, texts};
use crate::analyze::cluster::node;
use crate::analyze::{Source, docs};

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message})
}

fn healthy_conditions() -> Vec<Value> {
    vec![
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "ok",
        ),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
        condition(
            "NetworkUnavailable",
            "False",
            "RouteCreated",
            "routes created",
        ),
    ]
}

fn node_with(name: &str, conditions: Vec<Value>) -> Value {
    json!({"metadata": {"name": name}, "status": {"conditions": conditions}})
}

/// The healthy conditions with the one of `kind` replaced.
fn with_condition(replacement: Value) -> Vec<Value> {
    let mut conditions = healthy_conditions();
    for c in &mut conditions {
        if c["type"] == replacement["type"] {
            *c = replacement.clone();
        }
    }
    conditions
}

#[test]
fn a_healthy_node_is_not_reported() {
    let s = snapshot(&[(Source::Nodes, vec![node_with("n1", healthy_conditions())])]);
    assert_eq!(run(node, &s), vec![]);
}

#[test]
fn a_node_not_ready_is_reported_with_its_reason_and_message() {
    let conditions = with_condition(condition(
        "Ready",
        "False",
        "KubeletNotReady",
        "container runtime network not ready: NetworkReady=false",
    ));
    let s = snapshot(&[(Source::Nodes, vec![node_with("n1", conditions)])]);
    let findings = run(node, &s);
    let finding = only(&findings, "Node", "n1");
    says(
        finding,
        &["not ready", "KubeletNotReady", "NetworkReady=false"],
    );
    assert_eq!(finding.failures[0].doc, docs::NODES);
    assert_eq!(finding.parent_object, "");
}

#[test]
fn a_node_whose_readiness_is_unknown_is_reported() {
    let conditions = with_condition(condition(
        "Ready",
        "Unknown",
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    ));
    let s = snapshot(&[(Source::Nodes, vec![node_with("n2", conditions)])]);
    let findings = run(node, &s);
    says(
        only(&findings, "Node", "n2"),
        &[
            "unknown",
            "NodeStatusUnknown",
            "Kubelet stopped posting node status.",
        ],
    );
}

#[test]
fn each_pressure_true_is_reported_with_its_message() {
    let cases = [
        (
            "MemoryPressure",
            "memory",
            "kubelet has insufficient memory available",
        ),
        ("DiskPressure", "disk", "kubelet has disk pressure"),
        (
            "PIDPressure",
            "process IDs",
            "kubelet has insufficient PID available",
        ),
        ("NetworkUnavailable", "network", "no route created"),
    ];
    for (kind, what, message) in cases {
        let conditions = with_condition(condition(kind, "True", "SomeReason", message));
        let s = snapshot(&[(Source::Nodes, vec![node_with("n3", conditions)])]);
        let findings = run(node, &s);
        let finding = only(&findings, "Node", "n3");
        says(finding, &[kind, what, "SomeReason", message]);
        let doc = if kind == "NetworkUnavailable" {
            docs::NODES
        } else {
            docs::EVICTION
        };
        assert_eq!(finding.failures[0].doc, doc, "{kind}");
    }
}

#[test]
fn a_pressure_condition_unknown_is_reported() {
    let conditions = with_condition(condition(
        "DiskPressure",
        "Unknown",
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    ));
    let s = snapshot(&[(Source::Nodes, vec![node_with("n4", conditions)])]);
    let findings = run(node, &s);
    says(
        only(&findings, "Node", "n4"),
        &[
            "DiskPressure",
            "Unknown",
            "Kubelet stopped posting node status.",
        ],
    );
}

#[test]
fn every_failing_condition_of_a_node_is_one_failure_of_one_finding() {
    let conditions = vec![
        condition("Ready", "Unknown", "NodeStatusUnknown", "stopped"),
        condition("MemoryPressure", "Unknown", "NodeStatusUnknown", "stopped"),
        condition("DiskPressure", "True", "", ""),
        condition("PIDPressure", "False", "", ""),
    ];
    let s = snapshot(&[(Source::Nodes, vec![node_with("n5", conditions)])]);
    let findings = run(node, &s);
    let texts = texts(only(&findings, "Node", "n5"));
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[1].contains("MemoryPressure") && texts[2].contains("disk"));
}

#[test]
fn a_problem_detector_condition_true_is_reported_as_k8sgpt_does() {
    let mut conditions = healthy_conditions();
    conditions.push(condition(
        "KernelDeadlock",
        "True",
        "DockerHung",
        "task hung",
    ));
    let s = snapshot(&[(Source::Nodes, vec![node_with("n6", conditions)])]);
    let findings = run(node, &s);
    says(
        only(&findings, "Node", "n6"),
        &["KernelDeadlock", "True", "task hung"],
    );
}

#[test]
fn a_node_without_status_or_conditions_is_not_reported() {
    let nodes = vec![
        json!({"metadata": {"name": "bare"}}),
        json!({"metadata": {"name": "empty"}, "status": {}}),
        json!({"metadata": {}, "status": {"conditions": []}}),
    ];
    let s = snapshot(&[(Source::Nodes, nodes)]);
    assert_eq!(run(node, &s), vec![]);
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(".{0,40}")
}

fn any_condition() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just("Ready".to_owned()),
        Just("MemoryPressure".to_owned()),
        Just("DiskPressure".to_owned()),
        Just(String::new()),
        ".{0,12}",
    ];
    let status = prop_oneof![
        Just("True".to_owned()),
        Just("False".to_owned()),
        Just("Unknown".to_owned()),
        ".{0,8}",
    ];
    (
        proptest::option::of(kind),
        proptest::option::of(status),
        optional_text(),
        optional_text(),
    )
        .prop_map(|(kind, status, reason, message)| {
            let mut c = json!({});
            for (key, value) in [
                ("type", kind),
                ("status", status),
                ("reason", reason),
                ("message", message),
            ] {
                if let Some(value) = value {
                    c[key] = Value::String(value);
                }
            }
            c
        })
}

proptest! {
    #[test]
    fn node_never_panics_and_reports_exactly_the_bad_conditions(
        name in proptest::option::of("[a-z0-9.-]{0,20}"),
        conditions in proptest::collection::vec(any_condition(), 0..6),
    ) {
        let mut object = json!({"metadata": {}, "status": {"conditions": conditions.clone()}});
        if let Some(name) = &name {
            object["metadata"]["name"] = json!(name);
        }
        let s = snapshot(&[(Source::Nodes, vec![object])]);
        let findings = run(node, &s);
        let bad = conditions
            .iter()
            .filter(|c| {
                let kind = c["type"].as_str().unwrap_or_default();
                let status = c["status"].as_str().unwrap_or_default();
                !kind.is_empty() && match kind {
                    "Ready" => status != "True",
                    _ => status != "False",
                }
            })
            .count();
        let reported = findings.first().map_or(0, |f| f.failures.len());
        prop_assert!(findings.len() <= 1);
        prop_assert_eq!(reported, bad);
        for finding in &findings {
            prop_assert_eq!(finding.kind, "Node");
            prop_assert_eq!(&finding.name, name.as_deref().unwrap_or_default());
        }
    }
}

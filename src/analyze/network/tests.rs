//! Tests of the networking analyzers: each failure built in exactly its failing state, a healthy
//! case that says nothing, and a case where the kind a check needs was not read.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Value, json};

use super::selector::has_labels;
use super::*;
use crate::analyze::json::{condition, detail, items, text};
use crate::analyze::network;

mod gateway;
mod ingress;
mod network_policy;
mod properties;
mod service;
mod webhook;

/// An analyzer, as the registry holds it.
type Analyzer = fn(&Snapshot, &mut Vec<Finding>);

/// A snapshot holding these objects, each kind read in every namespace.
fn snapshot(objects: &[(Source, Vec<Value>)]) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for (source, items) in objects {
        snapshot.add_values(*source, items);
    }
    assert_eq!(
        snapshot.unreadable, 0,
        "every test object parses as its kind"
    );
    snapshot
}

/// Marks `source` as read only in namespace `ns` (and so not in any other).
fn read_only_in(snapshot: &mut Snapshot, source: Source, ns: &str) {
    snapshot.add(source, Some(ns), &[]);
}

fn findings(analyzer: Analyzer, snapshot: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    analyzer(snapshot, &mut out);
    out
}

/// The one finding the analyzer makes, which must be about `kind` `name`.
fn only(analyzer: Analyzer, snapshot: &Snapshot, kind: &str, name: &str) -> Finding {
    let mut found = findings(analyzer, snapshot);
    assert_eq!(found.len(), 1, "one finding expected: {found:#?}");
    let finding = found.remove(0);
    assert_eq!((finding.kind, finding.name.as_str()), (kind, name));
    finding
}

/// Asserts that one failure of `finding` says every fragment.
fn assert_says(finding: &Finding, fragments: &[&str]) {
    assert!(
        finding
            .failures
            .iter()
            .any(|f| fragments.iter().all(|s| f.text.contains(s))),
        "no failure says all of {fragments:?}: {:#?}",
        finding.failures
    );
}

fn assert_silent(analyzer: Analyzer, snapshot: &Snapshot) {
    let found = findings(analyzer, snapshot);
    assert!(found.is_empty(), "no finding expected: {found:#?}");
}

fn meta(ns: &str, name: &str) -> Value {
    json!({ "namespace": ns, "name": name })
}

fn pod(ns: &str, name: &str, labels: Value, phase: &str) -> Value {
    json!({
        "metadata": { "namespace": ns, "name": name, "labels": labels },
        "status": { "phase": phase },
    })
}

/// A Service selecting `selector` (`null`: none) on these ports.
fn service(ns: &str, name: &str, selector: Value, ports: &[i64]) -> Value {
    let ports: Vec<Value> = ports.iter().map(|p| json!({ "port": p })).collect();
    json!({ "metadata": meta(ns, name), "spec": { "selector": selector, "ports": ports } })
}

fn warning(ns: &str, kind: &str, name: &str, reason: &str, message: &str) -> Value {
    json!({
        "metadata": meta(ns, &format!("{name}.1")),
        "involvedObject": { "namespace": ns, "kind": kind, "name": name },
        "type": "Warning",
        "reason": reason,
        "message": message,
    })
}

#[test]
fn lists_are_cut_after_ten_names() {
    let names: Vec<String> = (0..13).map(|i| format!("p{i}")).collect();
    assert_eq!(list(&names[..2]), "p0, p1");
    assert_eq!(list(&names[..10]).matches(", ").count(), 9);
    assert!(list(&names).ends_with("p9 and 3 more"), "{}", list(&names));
}

#[test]
fn readers_of_json_take_any_shape() {
    let object = json!({ "status": { "conditions": [
        { "type": "Accepted", "status": "False", "reason": "NoController" },
        "not an object",
    ] }, "spec": { "n": 3 } });
    assert_eq!(text(&object, "/spec/n"), "");
    assert_eq!(items(&object, "/spec").count(), 0);
    let accepted = condition(&object, "Accepted").expect("the condition is there");
    assert_eq!(detail(accepted), ": NoController");
    assert!(condition(&json!([1, 2]), "Accepted").is_none());
}

//! Tests of the Node, PersistentVolumeClaim, Storage, ConfigMap and Security analyzers, each on
//! objects built in exactly the state it reports (and in the healthy one next to it).

mod config_map;
mod node;
mod security;
mod storage;

use serde_json::{Value, json};

use crate::analyze::{Finding, Snapshot, Source};

/// The findings of one analyzer over a snapshot.
fn run(analyzer: fn(&Snapshot, &mut Vec<Finding>), snapshot: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    analyzer(snapshot, &mut out);
    out
}

/// A snapshot of a cluster-wide call with `items` read (everywhere) for each source.
fn snapshot(sources: &[(Source, Vec<Value>)]) -> Snapshot {
    let mut snapshot = Snapshot::default();
    snapshot.cluster_wide = true;
    for (source, items) in sources {
        snapshot.add_values(*source, items);
    }
    snapshot
}

/// The one finding there must be, with its kind and name checked.
fn only<'f>(findings: &'f [Finding], kind: &str, name: &str) -> &'f Finding {
    assert_eq!(findings.len(), 1, "expected one finding, got {findings:#?}");
    let finding = &findings[0];
    assert_eq!((finding.kind, finding.name.as_str()), (kind, name));
    finding
}

/// The texts of a finding's failures.
fn texts(finding: &Finding) -> Vec<&str> {
    finding.failures.iter().map(|f| f.text.as_str()).collect()
}

/// Asserts that the one failure of `finding` carries every fact in `facts`.
fn says(finding: &Finding, facts: &[&str]) {
    assert_eq!(
        finding.failures.len(),
        1,
        "expected one failure: {finding:#?}"
    );
    let text = &finding.failures[0].text;
    for fact in facts {
        assert!(text.contains(fact), "{text:?} does not say {fact:?}");
    }
}

/// A Warning event about an object.
fn event(ns: &str, kind: &str, name: &str, reason: &str, message: &str, at: &str) -> Value {
    json!({
        "metadata": {"name": format!("{name}.{at}"), "namespace": ns},
        "involvedObject": {"kind": kind, "name": name, "namespace": ns},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "lastTimestamp": at,
    })
}

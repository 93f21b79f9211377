//! Tests of the integrations' analyzers: KEDA's ScaledObject and Kyverno's policy reports.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::analyze::{Source, integrations};

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

/// The texts of a finding's failures.
fn texts(finding: &Finding) -> Vec<&str> {
    finding.failures.iter().map(|f| f.text.as_str()).collect()
}

fn assert_silent(analyzer: Analyzer, snapshot: &Snapshot) {
    let found = findings(analyzer, snapshot);
    assert!(found.is_empty(), "no finding expected: {found:#?}");
}

fn meta(ns: &str, name: &str) -> Value {
    json!({ "namespace": ns, "name": name })
}

/// A ScaledObject in `shop` scaling `target` (`{kind, name}`) on these triggers and conditions.
fn scaled(target: Value, triggers: Value, conditions: Value) -> Value {
    json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": meta("shop", "worker"),
        "spec": { "scaleTargetRef": target, "triggers": triggers },
        "status": { "conditions": conditions },
    })
}

fn queue() -> Value {
    json!([{ "type": "rabbitmq", "metadata": { "queueName": "jobs" } }])
}

/// A Deployment `shop`/`name` whose one container requests `requests`.
fn deployment(name: &str, requests: Value) -> Value {
    json!({
        "metadata": meta("shop", name),
        "spec": {
            "selector": { "matchLabels": { "app": name } },
            "template": { "spec": { "containers": [
                { "name": "main", "image": "worker:1", "resources": { "requests": requests } },
            ] } },
        },
    })
}

#[test]
fn a_missing_target_defaults_to_a_deployment() {
    let snapshot = snapshot(&[
        (
            Source::ScaledObjects,
            vec![scaled(json!({ "name": "worker" }), queue(), json!([]))],
        ),
        (Source::Deployments, vec![deployment("other", json!({}))]),
    ]);
    let finding = only(
        integrations::scaled_object,
        &snapshot,
        "ScaledObject",
        "shop/worker",
    );
    assert_eq!(
        texts(&finding),
        ["ScaledObject worker scales Deployment worker, which does not exist"]
    );
    assert_eq!(finding.failures[0].doc, docs::KEDA);
}

#[test]
fn a_missing_stateful_set_is_named_where_stateful_sets_were_read() {
    let target = || json!({ "kind": "StatefulSet", "name": "db", "apiVersion": "apps/v1" });
    let mut snapshot = snapshot(&[(
        Source::ScaledObjects,
        vec![scaled(target(), queue(), json!([]))],
    )]);
    snapshot.mark_read(Source::StatefulSets);
    let finding = only(
        integrations::scaled_object,
        &snapshot,
        "ScaledObject",
        "shop/worker",
    );
    assert_eq!(
        texts(&finding),
        ["ScaledObject worker scales StatefulSet db, which does not exist"]
    );

    // Deployments were read, but the target is a StatefulSet.
    let unread = self::snapshot(&[
        (
            Source::ScaledObjects,
            vec![scaled(target(), queue(), json!([]))],
        ),
        (Source::Deployments, vec![]),
    ]);
    assert_silent(integrations::scaled_object, &unread);
}

#[test]
fn targets_not_read_or_of_other_groups_are_not_missing() {
    let rollout = json!({ "kind": "Deployment", "name": "worker", "apiVersion": "example.com/v1" });
    let mut snapshot = snapshot(&[(
        Source::ScaledObjects,
        vec![scaled(json!({ "name": "worker" }), queue(), json!([]))],
    )]);
    assert_silent(integrations::scaled_object, &snapshot);
    snapshot.add(Source::Deployments, Some("other"), &[]);
    assert_silent(integrations::scaled_object, &snapshot);

    let custom = self::snapshot(&[
        (
            Source::ScaledObjects,
            vec![scaled(rollout, queue(), json!([]))],
        ),
        (Source::Deployments, vec![]),
    ]);
    assert_silent(integrations::scaled_object, &custom);
}

#[test]
fn not_ready_says_why() {
    let conditions = json!([
        { "type": "Ready", "status": "False", "reason": "ScaledObjectCheckFailed", "message": "failed to reach RabbitMQ" },
        { "type": "Active", "status": "False" },
    ]);
    let snapshot = snapshot(&[
        (
            Source::ScaledObjects,
            vec![scaled(json!({ "name": "worker" }), queue(), conditions)],
        ),
        (Source::Deployments, vec![deployment("worker", json!({}))]),
    ]);
    let finding = only(
        integrations::scaled_object,
        &snapshot,
        "ScaledObject",
        "shop/worker",
    );
    assert_eq!(
        texts(&finding),
        ["ScaledObject worker is not ready: failed to reach RabbitMQ"]
    );
}

#[test]
fn a_cpu_trigger_needs_cpu_requests() {
    let cpu = json!([
        { "type": "cpu", "metricType": "Utilization", "metadata": { "value": "60" } },
        { "type": "memory", "metricType": "AverageValue", "metadata": { "value": "512Mi" } },
    ]);
    let snapshot = snapshot(&[
        (
            Source::ScaledObjects,
            vec![scaled(json!({ "name": "worker" }), cpu, json!([]))],
        ),
        (
            Source::Deployments,
            vec![deployment("worker", json!({ "memory": "256Mi" }))],
        ),
    ]);
    let finding = only(
        integrations::scaled_object,
        &snapshot,
        "ScaledObject",
        "shop/worker",
    );
    assert_eq!(
        texts(&finding),
        [
            "Deployment worker has containers without a cpu request, which the ScaledObject's cpu \
          trigger needs: main"
        ]
    );
}

#[test]
fn warning_events_are_quoted() {
    let event = json!({
        "metadata": meta("shop", "worker.1"),
        "involvedObject": { "namespace": "shop", "kind": "ScaledObject", "name": "worker" },
        "type": "Warning",
        "reason": "KEDAScalerFailed",
        "message": "connection refused",
    });
    let snapshot = snapshot(&[
        (
            Source::ScaledObjects,
            vec![scaled(json!({ "name": "worker" }), queue(), json!([]))],
        ),
        (Source::Events, vec![event]),
    ]);
    let finding = only(
        integrations::scaled_object,
        &snapshot,
        "ScaledObject",
        "shop/worker",
    );
    assert_eq!(
        texts(&finding),
        ["ScaledObject worker has a warning event KEDAScalerFailed: \"connection refused\""]
    );
}

#[test]
fn a_healthy_scaled_object_says_nothing() {
    let cpu =
        json!([{ "type": "cpu", "metricType": "Utilization", "metadata": { "value": "60" } }]);
    let ready = json!([{ "type": "Ready", "status": "True" }]);
    let snapshot = snapshot(&[
        (
            Source::ScaledObjects,
            vec![scaled(json!({ "name": "worker" }), cpu, ready)],
        ),
        (
            Source::Deployments,
            vec![deployment("worker", json!({ "cpu": "100m" }))],
        ),
        (Source::Events, vec![]),
    ]);
    assert_silent(integrations::scaled_object, &snapshot);
}

/// A report whose results are these.
fn report(ns: Option<&str>, name: &str, results: Value) -> Value {
    let metadata = match ns {
        Some(ns) => meta(ns, name),
        None => json!({ "name": name }),
    };
    json!({ "apiVersion": "wgpolicyk8s.io/v1alpha2", "metadata": metadata, "results": results })
}

fn result(verdict: &str, resources: Value) -> Value {
    json!({
        "policy": "require-labels",
        "rule": "check-team",
        "result": verdict,
        "message": "validation error: label team is required",
        "resources": resources,
    })
}

#[test]
fn failed_and_erroring_results_name_policy_rule_resources_and_message() {
    let web = json!([{ "kind": "Pod", "namespace": "shop", "name": "web-1" }, { "kind": "Pod", "namespace": "shop", "name": "web-2" }]);
    let results = json!([
        result("fail", web),
        result("error", json!([])),
        result("pass", json!([])),
        result("warn", json!([]))
    ]);
    let snapshot = snapshot(&[(
        Source::PolicyReports,
        vec![report(Some("shop"), "polr-shop", results)],
    )]);
    let finding = only(
        integrations::policy_report,
        &snapshot,
        "PolicyReport",
        "shop/polr-shop",
    );
    assert_eq!(
        texts(&finding),
        [
            "Kyverno policy require-labels (rule check-team) fails for Pod shop/web-1, Pod \
             shop/web-2: validation error: label team is required",
            "Kyverno policy require-labels (rule check-team) could not be applied: validation \
             error: label team is required",
        ]
    );
    assert_eq!(finding.failures[0].doc, docs::KYVERNO);
}

#[test]
fn a_report_of_one_resource_names_its_scope() {
    let mut scoped = report(Some("shop"), "b1f2", json!([result("fail", Value::Null)]));
    scoped["scope"] = json!({ "kind": "Deployment", "namespace": "shop", "name": "web" });
    let snapshot = snapshot(&[(Source::PolicyReports, vec![scoped])]);
    let finding = only(
        integrations::policy_report,
        &snapshot,
        "PolicyReport",
        "shop/b1f2",
    );
    assert!(
        texts(&finding)[0].contains("fails for Deployment shop/web:"),
        "{:?}",
        texts(&finding)
    );
}

#[test]
fn cluster_reports_name_the_report() {
    let results = json!([result(
        "fail",
        json!([{ "kind": "Namespace", "name": "shop" }])
    )]);
    let snapshot = snapshot(&[(
        Source::ClusterPolicyReports,
        vec![report(None, "cpol-labels", results)],
    )]);
    let finding = only(
        integrations::cluster_policy_report,
        &snapshot,
        "ClusterPolicyReport",
        "cpol-labels",
    );
    assert!(
        texts(&finding)[0].contains("fails for Namespace shop:"),
        "{:?}",
        texts(&finding)
    );
}

#[test]
fn passing_reports_say_nothing() {
    let results = json!([result("pass", json!([])), result("skip", json!([]))]);
    let snapshot = snapshot(&[
        (
            Source::PolicyReports,
            vec![
                report(Some("shop"), "polr", results.clone()),
                report(Some("shop"), "empty", json!([])),
            ],
        ),
        (
            Source::ClusterPolicyReports,
            vec![report(None, "cpol", results)],
        ),
    ]);
    assert_silent(integrations::policy_report, &snapshot);
    assert_silent(integrations::cluster_policy_report, &snapshot);
}

/// Keys and words the analyzers look for, so generated objects reach deep into them.
const KEYS: &[&str] = &[
    "metadata",
    "name",
    "namespace",
    "ownerReferences",
    "kind",
    "apiVersion",
    "spec",
    "status",
    "conditions",
    "type",
    "status",
    "message",
    "reason",
    "scaleTargetRef",
    "triggers",
    "metricType",
    "results",
    "result",
    "resources",
    "scope",
    "policy",
    "rule",
];
const WORDS: &[&str] = &[
    "",
    "shop",
    "worker",
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "apps/v1",
    "cpu",
    "memory",
    "Ready",
    "False",
    "fail",
    "error",
    "pass",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
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

const SOURCES: &[Source] = &[
    Source::ScaledObjects,
    Source::Deployments,
    Source::StatefulSets,
    Source::ReplicaSets,
    Source::Events,
    Source::PolicyReports,
    Source::ClusterPolicyReports,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// Whatever the objects hold, the analyzers return, and each finding has something to say.
    #[test]
    fn analyzers_never_panic(objects in prop::collection::vec((0..SOURCES.len(), json_value(), json_value()), 0..10)) {
        let mut snapshot = Snapshot::default();
        for (i, spec, rest) in objects {
            let mut object = json!({ "metadata": meta("shop", "worker"), "spec": spec });
            if let (Value::Object(object), Value::Object(rest)) = (&mut object, rest) {
                object.extend(rest);
            }
            snapshot.add_values(SOURCES[i], &[object]);
        }
        let analyzers: [Analyzer; 3] = [
            integrations::scaled_object,
            integrations::policy_report,
            integrations::cluster_policy_report,
        ];
        for analyzer in analyzers {
            for finding in findings(analyzer, &snapshot) {
                prop_assert!(!finding.failures.is_empty());
            }
        }
    }
}

//! Tests over the whole catalog: every tool's examples parse, and the Cedar request each makes
//! validates against the generated schema (in release builds too, where kubegate itself skips
//! that check per call).

use std::collections::BTreeMap;

use cedar_policy::{Context, EntityUid, Request, RestrictedExpression};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Map, Value};

use super::*;
use crate::kube::Served;

/// What a 1.20 API server serves of the kinds the examples use.
pub fn catalog() -> ApiCatalog {
    let kind = |group: &str, version: &str, kind: &str, plural: &str, namespaced: bool| Served {
        resource: ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            plural,
        ),
        namespaced,
    };
    ApiCatalog::of([
        kind("", "v1", "Pod", "pods", true),
        kind("", "v1", "ConfigMap", "configmaps", true),
        kind("", "v1", "Secret", "secrets", true),
        kind("", "v1", "Namespace", "namespaces", false),
        kind("", "v1", "Node", "nodes", false),
        kind("apps", "v1", "Deployment", "deployments", true),
        kind("batch", "v1", "Job", "jobs", true),
        kind("batch", "v1beta1", "CronJob", "cronjobs", true),
        kind(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
        ),
    ])
}

fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        other => panic!("example {text} is not an object: {other:?}"),
    }
}

/// A Cedar value for a JSON value, as the policy engine builds contexts.
fn restricted(value: &Value) -> RestrictedExpression {
    match value {
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => RestrictedExpression::new_long(n.as_i64().unwrap_or_default()),
        Value::Array(items) => RestrictedExpression::new_set(items.iter().map(restricted)),
        Value::Object(fields) => {
            RestrictedExpression::new_record(fields.iter().map(|(k, v)| (k.clone(), restricted(v))))
                .unwrap_or_else(|e| panic!("record: {e}"))
        }
        Value::Null => panic!("Cedar has no null"),
    }
}

#[test]
fn every_example_parses_and_its_context_matches_the_schema() {
    let schema = crate::policy::schema::schema().unwrap_or_else(|e| panic!("schema: {e}"));
    let served = catalog();
    for spec in CATALOG {
        let takes_arguments = super::input_schema(spec.name)
            .and_then(|schema| schema.get("properties"))
            .and_then(Value::as_object)
            .is_some_and(|properties| !properties.is_empty());
        assert!(
            spec.examples.len() >= 2 || !takes_arguments,
            "{}: give a minimal and a full example",
            spec.name
        );
        for example in spec.examples {
            let call = ToolCall::parse(spec.name, &object(example), &served)
                .unwrap_or_else(|e| panic!("{}: example {example} does not parse: {e}", spec.name));
            let arguments = call.cedar_arguments();
            assert_schema_accepts(&schema, spec.name, spec.resources, &arguments, example);
            // The scope names only resource types the tool declares.
            let scope = call.scope(&NoNamespaces);
            let targets = match scope {
                Scope::One(t) => vec![t],
                Scope::All(ts) | Scope::Visible(ts) => ts,
            };
            for target in targets {
                let ty = match target {
                    Target::Cluster => ResourceType::Cluster,
                    Target::Namespace(_) => ResourceType::Namespace,
                    Target::Object(_) => ResourceType::Object,
                };
                assert!(
                    spec.resources.contains(&ty),
                    "{} targets {ty:?} undeclared",
                    spec.name
                );
            }
        }
    }
}

/// Asserts that the schema accepts a request of `action` with these `arguments` (as the policy
/// engine would make its context) on each of `resources`.
fn assert_schema_accepts(
    schema: &cedar_policy::Schema,
    action: &str,
    resources: &[ResourceType],
    arguments: &Value,
    example: &str,
) {
    let request = RestrictedExpression::new_record([
        (
            "transport".to_owned(),
            RestrictedExpression::new_string("stdio".into()),
        ),
        (
            "sourceIp".to_owned(),
            RestrictedExpression::new_ip("127.0.0.1"),
        ),
        (
            "protocolVersion".to_owned(),
            RestrictedExpression::new_string("2025-06-18".into()),
        ),
        (
            "time".to_owned(),
            RestrictedExpression::new_datetime("2026-01-01T00:00:00Z"),
        ),
    ])
    .unwrap_or_else(|e| panic!("request record: {e}"));
    let context = Context::from_pairs([
        ("arguments".to_owned(), restricted(arguments)),
        ("request".to_owned(), request),
    ])
    .unwrap_or_else(|e| panic!("context: {e}"));
    let uid = |text: &str| {
        text.parse::<EntityUid>()
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    };
    for resource in resources {
        let id = match resource {
            ResourceType::Cluster => r#"Cluster::"local""#,
            ResourceType::Namespace => r#"Namespace::"local/team-a""#,
            ResourceType::Object => r#"Object::"local/team-a/Pod/web""#,
        };
        let built = Request::new(
            uid(r#"User::"alice""#),
            uid(&format!("Action::{action:?}")),
            uid(id),
            context.clone(),
            Some(schema),
        );
        assert!(
            built.is_ok(),
            "{action} on {resource:?}: {example} makes a context {arguments} the schema refuses: {:?}",
            built.err()
        );
    }
}

#[test]
fn resource_reads_and_prompts_make_contexts_the_schema_accepts() {
    use crate::policy::schema::{GET_PROMPT, READ_RESOURCE, decided_actions};
    let schema = crate::policy::schema::schema().unwrap_or_else(|e| panic!("schema: {e}"));
    let types = |action: &str| {
        decided_actions()
            .into_iter()
            .find(|(a, _)| *a == action)
            .map(|(_, types)| types)
            .unwrap_or_else(|| panic!("{action} is not decided"))
    };
    let served = catalog();
    for uri in [
        "cluster-info",
        "namespaces",
        "active-filters",
        "k8s://team-a/pods/web",
    ] {
        let read =
            resources::ResourceRead::parse(uri, &served).unwrap_or_else(|e| panic!("{uri}: {e}"));
        let arguments = read.cedar_arguments();
        assert_schema_accepts(
            &schema,
            READ_RESOURCE,
            types(READ_RESOURCE),
            &arguments,
            uri,
        );
    }
    for params in [
        r#"{"name": "troubleshoot-pod", "arguments": {"podName": "web", "namespace": "team-a"}}"#,
        r#"{"name": "troubleshoot-deployment", "arguments": {"deploymentName": "web", "namespace": "team-a"}}"#,
        r#"{"name": "troubleshoot-cluster"}"#,
    ] {
        let prompt =
            prompts::Prompt::parse(&object(params)).unwrap_or_else(|e| panic!("{params}: {e}"));
        let arguments = prompt.cedar_arguments();
        assert_schema_accepts(&schema, GET_PROMPT, types(GET_PROMPT), &arguments, params);
    }
}

struct NoNamespaces;

impl NamespaceDirectory for NoNamespaces {
    fn namespace(&self, _: &str) -> Option<crate::policy::NamespaceFacts> {
        None
    }
    fn names(&self) -> Vec<String> {
        vec!["team-a".to_owned()]
    }
}

#[test]
fn every_tool_is_described_honestly() {
    let mut names = std::collections::HashSet::new();
    for spec in CATALOG {
        assert!(names.insert(spec.name), "{} twice", spec.name);
        let schema =
            input_schema(spec.name).unwrap_or_else(|| panic!("{} has no schema", spec.name));
        assert_eq!(schema["type"], "object", "{}", spec.name);
        assert_eq!(
            schema["additionalProperties"], false,
            "{}: unknown keys must be refused",
            spec.name
        );
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            assert!(
                property
                    .get("description")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.len() > 10),
                "{}.{name} needs a description a model can use",
                spec.name
            );
        }
        let a = spec.annotations;
        match spec.group {
            ActionGroup::Read => assert!(a.read_only && !a.destructive, "{}", spec.name),
            ActionGroup::Write => assert!(!a.read_only && !a.destructive, "{}", spec.name),
            ActionGroup::Destructive => assert!(!a.read_only && a.destructive, "{}", spec.name),
        }
        let described = spec.describe(schema);
        assert_eq!(described["annotations"]["destructiveHint"], a.destructive);
        if let Some(output) = spec.output_schema {
            assert_eq!(
                output()["type"],
                "object",
                "{}: structuredContent is an object",
                spec.name
            );
        }
    }
    // The seed's six destructive tools, and only they, are destructive.
    let destructive: BTreeMap<&str, bool> = CATALOG
        .iter()
        .map(|s| (s.name, s.group == ActionGroup::Destructive))
        .collect();
    for name in [
        "delete_pod",
        "delete_deployment",
        "delete_namespace",
        "delete_cronjob",
        "uninstall_helm_chart",
        "cleanup",
    ] {
        assert_eq!(destructive.get(name), Some(&true), "{name}");
    }
    assert_eq!(destructive.values().filter(|d| **d).count(), 6);
}

#[test]
fn k8sgpt_and_seed_spellings_are_accepted() {
    let served = catalog();
    let parse = |tool: &str, args: &str| ToolCall::parse(tool, &object(args), &served);
    // The seed's curl sends tail as a string; k8sgpt's code calls it tailLines.
    let seed = parse(
        "get-logs",
        r#"{"podName": "nginx-abc123", "namespace": "default", "tail": "100"}"#,
    );
    let code = parse(
        "get-logs",
        r#"{"podName": "nginx-abc123", "namespace": "default", "tailLines": 100}"#,
    );
    let args =
        |c: Result<ToolCall, ToolError>| c.map(|c| c.cedar_arguments()).map_err(|e| e.to_string());
    assert_eq!(args(seed), args(code));
    // resourceType aliases normalise to the plural name for Cedar.
    for alias in ["pods", "pod", "po", "Pods"] {
        let call = parse(
            "list-resources",
            &format!(r#"{{"resourceType": "{alias}", "namespace": "team-a"}}"#),
        );
        assert_eq!(
            args(call),
            Ok(serde_json::json!({"resourceType": "pods", "namespace": "team-a"})),
            "{alias}"
        );
    }
    // Empty namespaces are absent, as k8sgpt treats them.
    let all = parse(
        "list-resources",
        r#"{"resourceType": "pods", "namespace": ""}"#,
    );
    assert!(all.is_ok_and(|c| c.scope(&NoNamespaces) == Scope::One(Target::Cluster)));
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let served = catalog();
    let error = |tool: &str, args: &str| {
        ToolCall::parse(tool, &object(args), &served)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(
        error("list-resources", r#"{"resourceType": "widgets"}"#)
            .contains("unknown resourceType \"widgets\"")
    );
    assert!(
        error("list-resources", r#"{"resourceType": "namespaces"}"#)
            .contains("unsupported resourceType")
    );
    assert!(
        error(
            "list-resources",
            r#"{"resourceType": "pods", "namespace": "../kube-system"}"#
        )
        .contains("not a namespace name")
    );
    assert!(
        error("list-resources", r#"{"resourceType": "pods", "limit": 0}"#)
            .contains("between 1 and 1000")
    );
    assert_eq!(
        error("list-resources", r#"{"namespace": "a"}"#),
        "invalid arguments for `list-resources`: missing field `resourceType`"
    );
    assert!(
        error("get-logs", r#"{"podName": "a", "tailLines": -1}"#).contains("must not be negative")
    );
    assert!(
        error(
            "get-resource",
            r#"{"resourceType": "pods", "name": "a/../b"}"#
        )
        .contains("not a Kubernetes object name")
    );
    assert!(
        error(
            "kubectl_scale",
            r#"{"name": "a", "replicas": 2, "resourceType": "pods"}"#
        )
        .contains("deployment, statefulset or replicaset")
    );
    assert!(
        error(
            "kubectl_apply",
            r#"{"manifest": "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}"}"#
        )
        .contains("does not serve the kind Widget")
    );
    assert!(
        error(
            "kubectl_apply",
            r#"{"manifest": "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: a}"}"#
        )
        .contains("it serves it at batch/v1beta1")
    );
    assert!(error("kubectl_apply", r#"{"manifest": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: b}", "namespace": "c"}"#).contains("names namespace \"b\""));
    assert!(
        error("list-resources", r#"{"resourceType": "pods", "extra": 1}"#)
            .contains("unknown field `extra`")
    );
    assert!(error("no-such-tool", "{}").contains("unknown tool"));
}

#[test]
fn apply_decides_each_object_where_it_lands() {
    let served = catalog();
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r, namespace: ignored}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: fresh}\n";
    let mut args = Map::new();
    args.insert("manifest".into(), Value::from(manifest));
    args.insert("namespace".into(), Value::from("team-a"));
    let call = ToolCall::parse("kubectl_apply", &args, &served).unwrap_or_else(|e| panic!("{e}"));
    let Scope::All(targets) = call.scope(&NoNamespaces) else {
        panic!("apply decides every object");
    };
    let object = |group: &str, kind: &str, ns: Option<&str>, name: &str| {
        Target::Object(crate::policy::ObjectRef {
            api_group: group.into(),
            kind: kind.into(),
            namespace: ns.map(str::to_owned),
            name: name.into(),
        })
    };
    assert_eq!(
        targets,
        [
            object("", "ConfigMap", Some("team-a"), "a"),
            object("rbac.authorization.k8s.io", "ClusterRole", None, "r"),
            Target::Namespace("fresh".into()),
        ]
    );
    // The audit keeps objects, not the manifest's text, and masks Secrets in them.
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2}\n";
    let mut args = Map::new();
    args.insert("manifest".into(), Value::from(secret));
    let call = ToolCall::parse("kubectl_apply", &args, &served).unwrap_or_else(|e| panic!("{e}"));
    let audited = call.audit_arguments().to_string();
    assert!(!audited.contains("hunter2"), "{audited}");
    assert!(audited.contains(MASK));
}

mod hostile {
    use proptest::prelude::*;

    use super::*;
    use crate::tool::args::tests::any_json;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Every tool's parser, given any value for any of its arguments (and any other
        /// arguments), answers with a call or an error naming the tool: never a panic.
        #[test]
        fn every_tools_arguments_parse_or_fail_with_a_message(
            tool in 0..CATALOG.len(),
            values in prop::collection::vec(any_json(3), 1..4),
            junk in any_json(2),
        ) {
            let spec = CATALOG[tool];
            let served = catalog();
            let names: Vec<String> = input_schema(spec.name)
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            let mut arguments = Map::new();
            for (i, value) in values.into_iter().enumerate() {
                if let Some(name) = names.get(i % names.len().max(1)) {
                    arguments.insert(name.clone(), value);
                }
            }
            if let Value::Object(extra) = junk {
                for (k, v) in extra {
                    arguments.entry(k).or_insert(v);
                }
            }
            match ToolCall::parse(spec.name, &arguments, &served) {
                Ok(call) => prop_assert_eq!(call.spec().name, spec.name),
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }
    }
}

//! `list-resources`: lists the objects of one resource type in a namespace, or in all of them.
//!
//! MCP tool: `list-resources` (k8sgpt's name and parameters: `resourceType`, `namespace?`,
//! `labelSelector?`). Kubernetes: `list` on pods, deployments, services, nodes, jobs, cronjobs,
//! statefulsets, daemonsets, replicasets, configmaps, secrets, ingresses, persistentvolumeclaims
//! and persistentvolumes, at the version the API server prefers.
//!
//! The answer is the JSON array of the list's items, as k8sgpt gives it. Secret values (and the
//! `last-applied-configuration` annotation, which repeats them) are masked unless the caller is
//! granted `reveal-secrets`.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::arguments::{namespace, optional_string, required_string};
use super::{ActionGroup, Annotations, Grants, Param, ParamType, ToolError, ToolOutput, ToolSpec};
use crate::kube::{BuiltinKind, Impersonated};
use crate::policy::{ResourceType, Target};

const NAME: &str = "list-resources";

pub static SPEC: ToolSpec = ToolSpec {
    name: NAME,
    title: "List Kubernetes resources",
    description: "List Kubernetes resources of one type, in a namespace or in all namespaces, \
                  optionally filtered by a label selector. Returns a JSON array of the objects.",
    group: ActionGroup::Read,
    params: &[
        Param {
            name: "resourceType",
            ty: ParamType::String,
            required: true,
            description: "Type of resource: pods, deployments, services, nodes, jobs, cronjobs, \
                          statefulsets, daemonsets, replicasets, configmaps, secrets, ingresses, \
                          pvcs, pvs (singular forms and kubectl short names work too)",
        },
        Param {
            name: "namespace",
            ty: ParamType::String,
            required: false,
            description: "Namespace to list in; all namespaces if omitted",
        },
        Param {
            name: "labelSelector",
            ty: ParamType::String,
            required: false,
            description: "Label selector to filter by, e.g. app=web,tier!=cache",
        },
    ],
    resources: &[ResourceType::Cluster, ResourceType::Namespace],
    annotations: Annotations {
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: false,
    },
};

/// The kinds `list-resources` offers (the seed's list).
const LISTABLE: &[BuiltinKind] = &[
    BuiltinKind::Pod,
    BuiltinKind::Deployment,
    BuiltinKind::Service,
    BuiltinKind::Node,
    BuiltinKind::Job,
    BuiltinKind::CronJob,
    BuiltinKind::StatefulSet,
    BuiltinKind::DaemonSet,
    BuiltinKind::ReplicaSet,
    BuiltinKind::ConfigMap,
    BuiltinKind::Secret,
    BuiltinKind::Ingress,
    BuiltinKind::PersistentVolumeClaim,
    BuiltinKind::PersistentVolume,
];

/// A parsed `list-resources` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResources {
    pub kind: BuiltinKind,
    /// `None`: all namespaces (or a cluster-scoped kind).
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
}

impl ListResources {
    pub fn parse(args: &Map<String, Value>) -> Result<ListResources, ToolError> {
        let resource_type = required_string(NAME, args, "resourceType")?;
        let kind = BuiltinKind::from_name(&resource_type)
            .filter(|k| LISTABLE.contains(k))
            .ok_or_else(|| ToolError::InvalidArguments {
                tool: NAME,
                message: format!(
                    "unsupported resourceType {resource_type:?}; supported: {}",
                    LISTABLE
                        .iter()
                        .map(|k| k.plural())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let namespace = namespace(NAME, optional_string(NAME, args, "namespace")?)?;
        Ok(ListResources {
            kind,
            // A namespace means nothing to cluster-scoped kinds; Kubernetes ignores it too.
            namespace: namespace.filter(|_| kind.namespaced()),
            label_selector: optional_string(NAME, args, "labelSelector")?,
        })
    }

    pub fn target(&self) -> Target {
        match &self.namespace {
            Some(ns) => Target::Namespace(ns.clone()),
            None => Target::Cluster,
        }
    }

    pub fn cedar_arguments(&self) -> Value {
        let mut args = json!({ "resourceType": self.kind.plural() });
        if let Some(ns) = &self.namespace {
            args["namespace"] = Value::from(ns.as_str());
        }
        if let Some(selector) = &self.label_selector {
            args["labelSelector"] = Value::from(selector.as_str());
        }
        args
    }

    pub fn touches_secrets(&self) -> bool {
        self.kind == BuiltinKind::Secret
    }

    pub async fn run(
        &self,
        kube: &mut Impersonated<'_>,
        grants: Grants,
    ) -> Result<ToolOutput, ToolError> {
        let body = kube
            .list(
                self.kind,
                self.namespace.as_deref(),
                self.label_selector.as_deref(),
            )
            .await?;
        let text = if self.touches_secrets() && !grants.reveal_secrets {
            masked_items(&body)?
        } else {
            items(&body)?.get().to_owned()
        };
        Ok(ToolOutput { text })
    }
}

/// The `items` of a list response, as the API server wrote them (no re-encoding).
pub fn items(body: &[u8]) -> Result<&RawValue, ToolError> {
    #[derive(Deserialize)]
    struct List<'a> {
        #[serde(borrow)]
        items: Option<&'a RawValue>,
    }
    let list: List<'_> = serde_json::from_slice(body).map_err(|e| unreadable(&e))?;
    // `null` items: an empty list, as the API server sometimes writes it.
    Ok(list
        .items
        .filter(|raw| raw.get() != "null")
        .unwrap_or_else(|| empty_array()))
}

fn empty_array() -> &'static RawValue {
    static EMPTY: std::sync::LazyLock<Box<RawValue>> = std::sync::LazyLock::new(|| {
        RawValue::from_string("[]".to_owned()).unwrap_or_else(|_| unreachable!("[] is valid JSON"))
    });
    &EMPTY
}

/// The mask that replaces each Secret value.
pub const MASK: &str = "<masked: grant reveal-secrets to see values>";

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The items of a Secret list with every value masked (keys stay, so callers see what exists).
fn masked_items(body: &[u8]) -> Result<String, ToolError> {
    let mut list: Value = serde_json::from_slice(body).map_err(|e| unreadable(&e))?;
    let mut items = match list.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    for item in &mut items {
        mask_secret(item);
    }
    Ok(Value::Array(items).to_string())
}

/// Masks a Secret's `data` and `stringData` values and its last-applied annotation.
pub fn mask_secret(secret: &mut Value) {
    for field in ["data", "stringData"] {
        if let Some(Value::Object(values)) = secret.get_mut(field) {
            values.values_mut().for_each(|v| *v = Value::from(MASK));
        }
    }
    if let Some(Value::Object(annotations)) = secret.pointer_mut("/metadata/annotations")
        && let Some(v) = annotations.get_mut(LAST_APPLIED)
    {
        *v = Value::from(MASK);
    }
}

fn unreadable(error: &serde_json::Error) -> ToolError {
    ToolError::Kube(crate::kube::KubeError::Decode(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ListResources, ToolError> {
        match v {
            Value::Object(m) => ListResources::parse(&m),
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn aliases_normalise_to_the_plural_name() {
        for alias in ["pods", "pod", "po", "Pods"] {
            let call = parse(json!({"resourceType": alias, "namespace": "team-a"}));
            let call = call.ok().map(|c| c.cedar_arguments());
            assert_eq!(
                call,
                Some(json!({"resourceType": "pods", "namespace": "team-a"})),
                "{alias}"
            );
        }
        let pvc = parse(json!({"resourceType": "pvcs"})).ok().map(|c| c.kind);
        assert_eq!(pvc, Some(BuiltinKind::PersistentVolumeClaim));
    }

    #[test]
    fn namespaces_decide_the_target_and_cluster_kinds_ignore_them() {
        let one = parse(json!({"resourceType": "pods", "namespace": "team-a"})).ok();
        assert_eq!(
            one.map(|c| c.target()),
            Some(Target::Namespace("team-a".into()))
        );
        let all = parse(json!({"resourceType": "pods"})).ok();
        assert_eq!(all.map(|c| c.target()), Some(Target::Cluster));
        let nodes = parse(json!({"resourceType": "nodes", "namespace": "team-a"})).ok();
        assert_eq!(nodes.map(|c| c.target()), Some(Target::Cluster));
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        let unknown = parse(json!({"resourceType": "widgets"})).err();
        assert!(unknown.map(|e| e.to_string()).is_some_and(|m| {
            m.contains("unsupported resourceType \"widgets\"") && m.contains("pods")
        }));
        let traversal = parse(json!({"resourceType": "pods", "namespace": "../kube-system"}));
        assert!(matches!(traversal, Err(ToolError::InvalidArguments { .. })));
        let missing = parse(json!({"namespace": "a"}))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            missing.as_deref(),
            Some("invalid arguments for `list-resources`: `resourceType` is required")
        );
        // Namespaces are not listable through list-resources (list-namespaces is their tool).
        assert!(parse(json!({"resourceType": "namespaces"})).is_err());
    }

    #[test]
    fn items_are_passed_through_unchanged() {
        let body = br#"{"kind":"PodList","items":[{"metadata":{"name":"a"}}],"metadata":{}}"#;
        assert_eq!(
            items(body).ok().map(|r| r.get()),
            Some(r#"[{"metadata":{"name":"a"}}]"#)
        );
        let empty = br#"{"kind":"PodList","items":null}"#;
        assert_eq!(items(empty).ok().map(|r| r.get()), Some("[]"));
        assert!(items(b"not json").is_err());
    }

    #[test]
    fn secret_values_and_last_applied_are_masked() {
        let body = json!({"items": [{
            "metadata": {"name": "db", "annotations": {LAST_APPLIED: "{\"data\":{\"password\":\"aHVudGVyMg==\"}}", "team": "a"}},
            "data": {"password": "aHVudGVyMg=="},
            "stringData": {"user": "admin"},
        }]})
        .to_string();
        let masked = masked_items(body.as_bytes()).unwrap_or_default();
        assert!(!masked.contains("aHVudGVyMg=="), "{masked}");
        assert!(!masked.contains("admin"), "{masked}");
        let parsed: Value = serde_json::from_str(&masked).unwrap_or_default();
        assert_eq!(parsed[0]["data"]["password"], MASK);
        assert_eq!(parsed[0]["stringData"]["user"], MASK);
        assert_eq!(parsed[0]["metadata"]["annotations"]["team"], "a");
    }
}

//! `get-resource`: one object, whole (filtered: Secret values masked, `managedFields` dropped).
//!
//! MCP tool: `get-resource` (k8sgpt's name and parameters: `resourceType`, `name`,
//! `namespace?`). Kubernetes: `get` on any of the kinds `list-resources` lists, and on
//! namespaces and events. Cedar resource: `Object::"<cluster>/<namespace>/<Kind>/<name>"` in its
//! `Namespace` (a namespace itself is its `Namespace` entity).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::args::{DEFAULT_NAMESPACE, Kind, check_name, check_namespace};
use super::{ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output};
use crate::kube::{ApiCatalog, BuiltinKind, KubeError};
use crate::policy::{NamespaceDirectory, ObjectRef, ResourceType, Scope, Target};

/// A `get-resource` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GetResource {
    /// Type of resource: pod, deployment, service, node, job, cronjob, statefulset, daemonset,
    /// replicaset, configmap, secret, ingress, pvc, pv, namespace or event (plural forms and
    /// kubectl short names work too).
    pub resource_type: Kind,
    /// Name of the object.
    pub name: String,
    /// Namespace of the object (namespaced kinds only; "default" if omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl Tool for GetResource {
    const SPEC: ToolSpec = ToolSpec {
        name: "get-resource",
        title: "Get a Kubernetes resource",
        description: "Get one Kubernetes object in full, by type, name and namespace. Secret \
                      values are masked unless a policy lets you reveal them.",
        group: ActionGroup::Read,
        resources: &[ResourceType::Namespace, ResourceType::Object],
        annotations: Annotations::READ,
        output_schema: Some(output_schema),
        examples: &[
            r#"{"resourceType": "node", "name": "node-1"}"#,
            r#"{"resourceType": "deploy", "name": "web", "namespace": "team-a"}"#,
        ],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        check_name("name", &self.name)?;
        let kind = self.resource_type.0;
        if kind == BuiltinKind::Namespace {
            check_namespace(&self.name)?;
        }
        match (&self.namespace, kind.namespaced()) {
            (Some(ns), true) => check_namespace(ns)?,
            (None, true) => self.namespace = Some(DEFAULT_NAMESPACE.to_owned()),
            (_, false) => self.namespace = None,
        }
        Ok(())
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(object_target(
            self.resource_type.0,
            self.namespace.as_deref(),
            &self.name,
        ))
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let kind = self.resource_type.0;
        let ns = self.namespace.as_deref();
        let body = run
            .kube
            .get(kind, ns, &self.name)
            .await
            .map_err(|e| not_found_hint(e, kind, ns, &self.name))?;
        let mut object: Value =
            serde_json::from_slice(&body).map_err(|e| KubeError::Decode(e.to_string()))?;
        run.filter(&mut object, Some(kind.kind()));
        let text = serde_json::to_string_pretty(&object).unwrap_or_default();
        Ok(ToolOutput {
            text,
            structured: output::raw(&object),
        })
    }
}

/// The Cedar target of one object of a built-in kind.
pub fn object_target(kind: BuiltinKind, namespace: Option<&str>, name: &str) -> Target {
    if kind == BuiltinKind::Namespace {
        return Target::Namespace(name.to_owned());
    }
    Target::Object(ObjectRef {
        api_group: kind.groups()[0].to_owned(),
        kind: kind.kind().to_owned(),
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
    })
}

/// Turns "not found" into an answer that says what to try next.
pub fn not_found_hint(
    error: KubeError,
    kind: BuiltinKind,
    namespace: Option<&str>,
    name: &str,
) -> ToolError {
    match (&error, namespace) {
        (KubeError::Api { code: 404, .. }, Some(ns)) => ToolError::NotFound(format!(
            "{} {name:?} was not found in namespace {ns:?}. Call list-resources with \
             resourceType {:?} and namespace {ns:?} to see what exists.",
            kind.kind(),
            kind.plural()
        )),
        (KubeError::Api { code: 404, .. }, None) => ToolError::NotFound(format!(
            "{} {name:?} was not found. Call list-resources with resourceType {:?} to see what \
             exists.",
            kind.kind(),
            kind.plural()
        )),
        _ => error.into(),
    }
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "description": "The Kubernetes object, filtered",
        "properties": {
            "kind": {"type": "string"},
            "apiVersion": {"type": "string"},
            "metadata": {"type": "object"},
        },
    })
}

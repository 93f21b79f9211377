//! `kubectl_scale`: sets the replicas of a Deployment, StatefulSet or ReplicaSet.
//!
//! MCP tool: `kubectl_scale` (mcp-server-kubernetes's name; `name`, `namespace?`, `replicas`,
//! `resourceType?` (deployment)). Kubernetes: `patch` on the kind's `scale` subresource
//! (deployments/scale, statefulsets/scale, replicasets/scale). Cedar resource: the object.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::args::{DEFAULT_NAMESPACE, Int, Kind, check_name, namespace_or_default};
use super::get_resource::{not_found_hint, object_target};
use super::{ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output};
use crate::kube::{ApiCatalog, BuiltinKind, KubeError};
use crate::policy::{NamespaceDirectory, ResourceType, Scope};

/// The most replicas one call may ask for (a typo guard, not a Kubernetes limit).
pub const MAX_REPLICAS: i64 = 1000;
const SCALABLE: &[BuiltinKind] = &[
    BuiltinKind::Deployment,
    BuiltinKind::StatefulSet,
    BuiltinKind::ReplicaSet,
];

/// A `kubectl_scale` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scale {
    /// Name of the object to scale.
    pub name: String,
    /// Its namespace ("default" if omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The number of replicas to scale to (0 to 1000).
    pub replicas: Int,
    /// deployment (the default), statefulset or replicaset.
    #[serde(default = "deployment")]
    pub resource_type: Kind,
}

fn deployment() -> Kind {
    Kind(BuiltinKind::Deployment)
}

impl Tool for Scale {
    const SPEC: ToolSpec = ToolSpec {
        name: "kubectl_scale",
        title: "Scale a workload",
        description: "Set the number of replicas of a Deployment (or a StatefulSet or \
                      ReplicaSet), as you.",
        group: ActionGroup::Write,
        resources: &[ResourceType::Namespace, ResourceType::Object],
        annotations: Annotations::WRITE,
        output_schema: Some(output_schema),
        examples: &[
            r#"{"name": "web", "replicas": 3}"#,
            r#"{"name": "web", "namespace": "team-a", "replicas": "0", "resourceType": "statefulset"}"#,
        ],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        check_name("name", &self.name)?;
        namespace_or_default(&mut self.namespace)?;
        if !SCALABLE.contains(&self.resource_type.0) {
            return Err(format!(
                "`resourceType` must be deployment, statefulset or replicaset, not {:?}",
                self.resource_type.0.plural()
            ));
        }
        if !(0..=MAX_REPLICAS).contains(&self.replicas.0) {
            return Err(format!(
                "`replicas` must be between 0 and {MAX_REPLICAS}, not {}",
                self.replicas.0
            ));
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
        let namespace = self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let body = run
            .kube
            .patch_subresource(
                kind,
                namespace,
                &self.name,
                "scale",
                &json!({ "spec": { "replicas": self.replicas.0 } }),
            )
            .await
            .map_err(|e| not_found_hint(e, kind, Some(namespace), &self.name))?;
        let scale: Value =
            serde_json::from_slice(&body).map_err(|e| KubeError::Decode(e.to_string()))?;
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(self.replicas.0);
        Ok(ToolOutput {
            text: format!(
                "Scaled {} {:?} in namespace {namespace:?} to {replicas} replica(s).",
                kind.kind().to_ascii_lowercase(),
                self.name
            ),
            structured: output::raw(&json!({
                "success": true,
                "kind": kind.kind(),
                "name": self.name,
                "namespace": namespace,
                "replicas": replicas,
            })),
        })
    }
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "kind": {"type": "string"},
            "name": {"type": "string"},
            "namespace": {"type": "string"},
            "replicas": {"type": "integer"},
        },
        "required": ["success", "kind", "name", "namespace", "replicas"],
    })
}

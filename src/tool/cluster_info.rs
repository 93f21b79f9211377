//! `cluster-info`: the cluster's name, Kubernetes version and platform.
//!
//! MCP tool: `cluster-info` (k8sgpt's name; no parameters). Kubernetes: none per call; the
//! version is read once at start, as kubegate (`/version` is public to any authenticated user).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output};
use crate::policy::{NamespaceDirectory, ResourceType, Scope, Target};

/// A `cluster-info` call (no arguments).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterInfo {}

impl Tool for ClusterInfo {
    const SPEC: ToolSpec = ToolSpec {
        name: "cluster-info",
        title: "Cluster information",
        description: "Get Kubernetes cluster information: its name, Kubernetes version and platform.",
        group: ActionGroup::Read,
        resources: &[ResourceType::Cluster],
        annotations: Annotations::READ,
        output_schema: Some(output_schema),
        examples: &["{}"],
    };

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(Target::Cluster)
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let version = run.kube.kube().version();
        let text = format!(
            "Cluster {:?}: Kubernetes {} ({}), served through kubegate.",
            run.cluster(),
            version.git_version,
            version.platform
        );
        Ok(ToolOutput {
            text,
            structured: output::raw(&json!({
                "cluster": run.cluster(),
                "version": version,
            })),
        })
    }
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "cluster": {"type": "string", "description": "The cluster's name in kubegate"},
            "version": {"type": "object", "description": "The API server's /version"},
        },
        "required": ["cluster", "version"],
    })
}

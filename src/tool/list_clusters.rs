//! `list-clusters`: the clusters this caller may use, the names the other tools' `context`
//! argument takes (served only when kubegate fronts several clusters).
//!
//! MCP tool: `list-clusters` (no parameters; kubernetes-mcp-server lists its contexts the same
//! way). Decided as `Action::"list-clusters"` on the cluster the call goes to, then on each
//! other `Cluster::"<name>"`: a cluster is listed if that decision permits it, so a policy that
//! keeps a caller out of a cluster also keeps it out of their list. Kubernetes: none; each
//! cluster's version was read when kubegate connected to it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output};
use crate::policy::cases::StaticNamespaces;
use crate::policy::{NamespaceDirectory, ResourceType, Scope, Target};

/// The name of the tool, which tools/list shows only with several clusters.
pub const NAME: &str = "list-clusters";

/// A `list-clusters` call (no arguments).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListClusters {}

impl Tool for ListClusters {
    const SPEC: ToolSpec = ToolSpec {
        name: NAME,
        title: "List clusters",
        description: "List the Kubernetes clusters you may use through kubegate: their names \
                      (the value of the other tools' `context` argument), which one is the \
                      default, and whether each is reachable now.",
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
        let none = StaticNamespaces::default();
        let mut listed = Vec::new();
        let mut lines = Vec::new();
        for (i, cluster) in run.clusters.iter().enumerate() {
            let kube = cluster.kube();
            let permitted = cluster.name == run.cluster() || {
                let namespaces: &dyn NamespaceDirectory = match &kube {
                    Ok(kube) => *kube,
                    Err(_) => &none,
                };
                run.permit
                    .also(&cluster.policy, &Target::Cluster, namespaces)
                    .is_ok()
            };
            if !permitted {
                continue;
            }
            let default = i == 0;
            let mut entry = json!({
                "name": cluster.name,
                "default": default,
                "reachable": kube.is_ok(),
            });
            let state = match &kube {
                Ok(kube) => {
                    entry["version"] = Value::from(kube.version().git_version.clone());
                    format!("Kubernetes {}", kube.version().git_version)
                }
                Err(error) => error.to_string(),
            };
            let default = if default { " (the default)" } else { "" };
            lines.push(format!("- {}{default}: {state}", cluster.name));
            listed.push(entry);
        }
        let text = format!(
            "{} cluster(s) you may use; name one as `context` in a tool call:\n{}",
            listed.len(),
            lines.join("\n")
        );
        Ok(ToolOutput {
            text,
            structured: output::raw(&json!({ "clusters": listed })),
        })
    }
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "clusters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "The value of `context`"},
                        "default": {"type": "boolean", "description": "Calls without `context` go here"},
                        "reachable": {"type": "boolean"},
                        "version": {"type": "string", "description": "Its Kubernetes version"},
                    },
                    "required": ["name", "default", "reachable"],
                },
            },
        },
        "required": ["clusters"],
    })
}

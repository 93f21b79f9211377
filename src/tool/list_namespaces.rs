//! `list-namespaces`: the namespaces this caller may use, from kubegate's namespace watch and the
//! policy (RBAC cannot filter a list of namespaces; the policy can, as OpenShift's projects do).
//! A namespace the policy hides is never named, here or in any error.
//!
//! MCP tool: `list-namespaces` (k8sgpt's name; no parameters). Kubernetes: none per call (the
//! namespace cache is fed by kubegate's own watch).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output, summary,
};
use crate::policy::{NamespaceDirectory, ResourceType, Scope};

/// A `list-namespaces` call (no arguments).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListNamespaces {}

impl Tool for ListNamespaces {
    const SPEC: ToolSpec = ToolSpec {
        name: "list-namespaces",
        title: "List namespaces",
        description: "List the namespaces you may use in the cluster, with their tenant and status.",
        group: ActionGroup::Read,
        resources: &[ResourceType::Namespace],
        annotations: Annotations::READ,
        output_schema: Some(output_schema),
        examples: &["{}"],
    };

    /// Decided on each namespace: the caller sees those permitted.
    fn scope(&self, namespaces: &dyn NamespaceDirectory) -> Scope {
        Scope::every_namespace(namespaces)
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        Ok(visible_namespaces(run))
    }
}

/// The namespaces the permit allows, as a table and as structured content (shared with the
/// `namespaces` resource).
pub fn visible_namespaces(run: &Run<'_>) -> ToolOutput {
    let cache = run.kube.kube().namespaces();
    let summaries: Vec<_> = run
        .permit
        .namespaces()
        .filter_map(|name| cache.summary(name))
        .collect();
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = summaries
        .iter()
        .map(|s| {
            json!({
                "metadata": {"name": s.name, "creationTimestamp": s.created},
                "tenant": s.tenant,
                "phase": s.phase,
            })
        })
        .collect();
    let mut text = format!(
        "{} namespace(s) you may use in cluster {:?}:\n",
        summaries.len(),
        run.cluster()
    );
    text.push_str(&table(&rows, now));
    ToolOutput {
        text,
        structured: output::raw(&json!({ "namespaces": summaries })),
    }
}

fn table(rows: &[Value], now: jiff::Timestamp) -> String {
    let mut lines = vec![
        ["NAME", "TENANT", "STATUS", "AGE"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for row in rows {
        lines.push(vec![
            row.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            row.get("tenant")
                .and_then(Value::as_str)
                .unwrap_or("<none>")
                .to_owned(),
            row.get("phase")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            summary::age(row, "/metadata/creationTimestamp", now),
        ]);
    }
    summary::align(&lines)
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "namespaces": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "tenant": {"type": "string"},
                        "phase": {"type": "string"},
                        "created": {"type": "string"},
                        "labels": {"type": "object"},
                    },
                    "required": ["name", "phase", "labels"],
                },
            },
        },
        "required": ["namespaces"],
    })
}

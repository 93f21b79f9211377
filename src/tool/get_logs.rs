//! `get-logs`: the log of one container of a pod, through the API server (`pods/log`), so RBAC
//! and the cluster's audit log see the caller.
//!
//! MCP tool: `get-logs` (k8sgpt's name and parameters: `podName`, `namespace`, `container?`,
//! `tailLines?` (or the documented `tail`), `previous?`, `sinceSeconds?`). Kubernetes: `get` on
//! `pods/log`. Cedar resource: the pod, `Object::"<cluster>/<namespace>/Pod/<name>"`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::{DEFAULT_NAMESPACE, Flag, Int, check_name, namespace_or_default};
use super::get_resource::{not_found_hint, object_target};
use super::{ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output};
use crate::kube::{ApiCatalog, BuiltinKind, KubeError};
use crate::policy::{NamespaceDirectory, ResourceType, Scope};

/// Lines from the end unless the caller asks for another number (k8sgpt's default).
pub const DEFAULT_TAIL_LINES: i64 = 100;
/// The most log bytes one call returns (the API server stops there: `limitBytes`).
pub const MAX_LOG_BYTES: usize = 512 * 1024;

/// A `get-logs` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GetLogs {
    /// Name of the pod.
    pub pod_name: String,
    /// Namespace of the pod ("default" if omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Container name (needed when the pod has several containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Number of lines from the end of the log (default 100). `tail` is accepted too.
    #[serde(default, alias = "tail", skip_serializing_if = "Option::is_none")]
    pub tail_lines: Option<Int>,
    /// Show the log of the previous, terminated instance of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Flag>,
    /// Only lines newer than this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_seconds: Option<Int>,
}

impl Tool for GetLogs {
    const SPEC: ToolSpec = ToolSpec {
        name: "get-logs",
        title: "Get pod logs",
        description: "Get the log of a pod's container (the last 100 lines unless tailLines says \
                      otherwise), or of its previous instance after a restart.",
        group: ActionGroup::Read,
        resources: &[ResourceType::Namespace, ResourceType::Object],
        annotations: Annotations::READ,
        output_schema: None,
        examples: &[
            r#"{"podName": "web-1"}"#,
            r#"{"podName": "web-1", "namespace": "team-a", "container": "app", "tail": "100", "previous": "true", "sinceSeconds": 3600}"#,
        ],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        check_name("podName", &self.pod_name)?;
        namespace_or_default(&mut self.namespace)?;
        if let Some(container) = &self.container {
            check_name("container", container)?;
        }
        if let Some(Int(n)) = self.tail_lines
            && n < 0
        {
            return Err(format!("`tailLines` must not be negative, not {n}"));
        }
        if let Some(Int(n)) = self.since_seconds
            && n < 1
        {
            return Err(format!("`sinceSeconds` must be at least 1, not {n}"));
        }
        Ok(())
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(object_target(
            BuiltinKind::Pod,
            self.namespace.as_deref(),
            &self.pod_name,
        ))
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let namespace = self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let mut query = vec![
            (
                "tailLines",
                self.tail_lines
                    .map_or(DEFAULT_TAIL_LINES, |n| n.0)
                    .to_string(),
            ),
            ("limitBytes", MAX_LOG_BYTES.to_string()),
        ];
        if let Some(container) = &self.container {
            query.push(("container", container.clone()));
        }
        if self.previous.is_some_and(|p| p.0) {
            query.push(("previous", "true".to_owned()));
        }
        if let Some(Int(seconds)) = self.since_seconds {
            query.push(("sinceSeconds", seconds.to_string()));
        }
        let body = run
            .kube
            .logs(namespace, &self.pod_name, &query)
            .await
            .map_err(|e| match e {
                // A 404 with the API server's own words (no such pod) gets a hint; a 400 (no
                // such container, no previous instance) is the API server's message as is.
                KubeError::Api { code: 404, .. } => {
                    not_found_hint(e, BuiltinKind::Pod, Some(namespace), &self.pod_name)
                }
                other => other.into(),
            })?;
        let log = String::from_utf8_lossy(&body);
        let mut text = output::filter_log(&log, &mut |_| run.reveal(Some(namespace)));
        if text.is_empty() {
            text = "(the log is empty)".to_owned();
        } else if body.len() >= MAX_LOG_BYTES {
            text.push_str(&format!(
                "\n[kubegate: the log was cut at {MAX_LOG_BYTES} bytes; ask for fewer tailLines \
                 or a shorter sinceSeconds]\n"
            ));
        }
        Ok(ToolOutput::text(text))
    }
}

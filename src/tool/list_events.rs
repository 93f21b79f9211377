//! `list-events`: the events of a namespace (or of every namespace the caller may read),
//! optionally of one object, newest first.
//!
//! MCP tool: `list-events` (k8sgpt's name and parameters: `namespace?`, `involvedObjectName?`,
//! `involvedObjectKind?`, `limit?`). Kubernetes: `list` on events, filtered by the API server
//! with field selectors; one request per call.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::args::{Int, check_limit, check_name, check_namespace};
use super::list_resources::{Page, keep_readable, take_items};
use super::{
    ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output, summary,
};
use crate::kube::{ApiCatalog, BuiltinKind, KubeError};
use crate::policy::{NamespaceDirectory, ResourceType, Scope, Target};

/// Events returned unless the caller asks for another `limit` (k8sgpt's default).
pub const DEFAULT_LIMIT: i64 = 100;
/// How many events one call reads from the API server to sort, newest first.
pub const WINDOW: i64 = 1000;

/// A `list-events` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListEvents {
    /// Namespace to list events in; all the namespaces you may read if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only events about the object of this name (e.g. a pod's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub involved_object_name: Option<String>,
    /// Only events about objects of this kind (e.g. Pod, Deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub involved_object_kind: Option<String>,
    /// The most events to return, newest first (1 to 1000, default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Int>,
}

impl Tool for ListEvents {
    const SPEC: ToolSpec = ToolSpec {
        name: "list-events",
        title: "List Kubernetes events",
        description: "List Kubernetes events, newest first, in a namespace or in all the \
                      namespaces you may read, optionally only those about one object.",
        group: ActionGroup::Read,
        resources: &[ResourceType::Cluster, ResourceType::Namespace],
        annotations: Annotations::READ,
        output_schema: Some(output_schema),
        examples: &[
            "{}",
            r#"{"namespace": "team-a", "involvedObjectName": "web-1", "involvedObjectKind": "Pod", "limit": 20}"#,
        ],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        if let Some(ns) = &self.namespace {
            check_namespace(ns)?;
        }
        if let Some(name) = &self.involved_object_name {
            check_name("involvedObjectName", name)?;
        }
        if let Some(kind) = &self.involved_object_kind {
            let mut chars = kind.chars();
            let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric())
                && kind.len() <= 63;
            if !ok {
                return Err(format!(
                    "`involvedObjectKind` {kind:?} is not a kind (letters and digits, e.g. Pod)"
                ));
            }
            // Callers write `pod` or `pods` as often as `Pod`.
            if let Some(builtin) = BuiltinKind::from_name(kind) {
                self.involved_object_kind = Some(builtin.kind().to_owned());
            }
        }
        check_limit(self.limit, WINDOW)?;
        Ok(())
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(Target::namespace_or_cluster(self.namespace.as_deref()))
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let mut selectors = Vec::new();
        if let Some(name) = &self.involved_object_name {
            selectors.push(format!("involvedObject.name={name}"));
        }
        if let Some(kind) = &self.involved_object_kind {
            selectors.push(format!("involvedObject.kind={kind}"));
        }
        let mut query = vec![("limit", WINDOW.to_string())];
        if !selectors.is_empty() {
            query.push(("fieldSelector", selectors.join(",")));
        }
        let body = run
            .kube
            .list(BuiltinKind::Event, self.namespace.as_deref(), &query)
            .await?;
        let mut list: Value =
            serde_json::from_slice(&body).map_err(|e| KubeError::Decode(e.to_string()))?;
        let mut events = take_items(&mut list);
        if self.namespace.is_none() {
            keep_readable(run, &mut events);
        }
        // Newest first; the API server returns them in key order.
        events.sort_by_key(|e| std::cmp::Reverse(summary::event_time(e)));
        let limit = usize::try_from(self.limit.map_or(DEFAULT_LIMIT, |l| l.0)).unwrap_or(0);
        let total = events.len();
        events.truncate(limit);
        for event in &mut events {
            run.filter(event, Some("Event"));
        }
        let mut text = format!("{} event(s), newest first", events.len());
        if total > events.len() {
            text.push_str(&format!(
                " ({} more older ones not shown; raise `limit`)",
                total - events.len()
            ));
        }
        text.push_str(":\n");
        text.push_str(&summary::table(
            "Event",
            &events,
            self.namespace.is_none(),
            jiff::Timestamp::now(),
        ));
        if Page::is_cut(&list) {
            text.push_str(&format!(
                "\nOnly the first {WINDOW} events the API server returned were sorted; name an \
                 involvedObjectName or a namespace to narrow the search.\n"
            ));
        }
        Ok(ToolOutput {
            text,
            structured: output::raw(&json!({ "kind": "EventList", "items": events })),
        })
    }
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "kind": {"type": "string"},
            "items": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["kind", "items"],
    })
}

//! `list-resources`: lists the objects of one resource type in a namespace, or in all of them,
//! a page at a time.
//!
//! MCP tool: `list-resources` (k8sgpt's name and parameters: `resourceType`, `namespace?`,
//! `labelSelector?`; plus `limit?` and `continue?` for paging). Kubernetes: `list` on pods,
//! deployments, services, nodes, jobs, cronjobs, statefulsets, daemonsets, replicasets,
//! configmaps, secrets, ingresses, persistentvolumeclaims and persistentvolumes, at the version
//! the API server prefers; exactly one request per call.
//!
//! The answer is a table (one row per object, kubectl's columns) for the model, and the filtered
//! objects as `structuredContent`. A list across all namespaces shows only the items in
//! namespaces the policy lets the caller read: each namespace is decided (once per call) as the
//! call's own action on that `Namespace`, so a `forbid` on a namespace holds here too.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::args::{Int, Kind, check_limit, check_namespace};
use super::shaped::{self, List};
use super::summary::At;
use super::{
    ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output, paging, summary,
};
use crate::kube::{ApiCatalog, BuiltinKind, KubeError};
use crate::policy::{NamespaceDirectory, ResourceType, Scope, Target, Unmask};

/// Objects per page unless the caller asks for another `limit`.
pub const DEFAULT_LIMIT: i64 = 100;
/// The largest page a caller may ask for (a bound on memory per call).
pub const MAX_LIMIT: i64 = 1000;

/// The kinds `list-resources` offers (the seed's list).
pub const LISTABLE: &[BuiltinKind] = &[
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

/// A `list-resources` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListResources {
    /// Type of resource: pods, deployments, services, nodes, jobs, cronjobs, statefulsets,
    /// daemonsets, replicasets, configmaps, secrets, ingresses, pvcs, pvs (singular forms and
    /// kubectl short names work too).
    pub resource_type: Kind,
    /// Namespace to list in; all the namespaces you may read if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Label selector to filter by, e.g. `app=web,tier!=cache`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Objects per page, 1 to 1000 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Int>,
    /// The `continue` token of the previous page, to get the next one.
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

impl Tool for ListResources {
    const SPEC: ToolSpec = ToolSpec {
        name: "list-resources",
        title: "List Kubernetes resources",
        description: "List Kubernetes resources of one type, in a namespace or in all the \
                      namespaces you may read, optionally filtered by a label selector. Answers \
                      with a table (kubectl's columns) and the full objects as structured \
                      content; long lists come a page at a time.",
        group: ActionGroup::Read,
        resources: &[ResourceType::Cluster, ResourceType::Namespace],
        annotations: Annotations::READ,
        output_schema: Some(output_schema),
        examples: &[
            r#"{"resourceType": "pods"}"#,
            r#"{"resourceType": "po", "namespace": "team-a", "labelSelector": "app=web", "limit": "10", "continue": "abc"}"#,
        ],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        let kind = self.resource_type.0;
        if !LISTABLE.contains(&kind) {
            return Err(format!(
                "unsupported resourceType {:?}; supported: {}",
                kind.plural(),
                LISTABLE
                    .iter()
                    .map(|k| k.plural())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(ns) = &self.namespace {
            check_namespace(ns)?;
        }
        // A namespace means nothing to cluster-scoped kinds; Kubernetes ignores it too.
        if !kind.namespaced() {
            self.namespace = None;
        }
        check_limit(self.limit, MAX_LIMIT)?;
        Ok(())
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(Target::namespace_or_cluster(self.namespace.as_deref()))
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let kind = self.resource_type.0;
        let limit = self.limit.map_or(DEFAULT_LIMIT, |l| l.0);
        let mut query = vec![("limit", limit.to_string())];
        if let Some(selector) = &self.label_selector {
            query.push(("labelSelector", selector.clone()));
        }
        // A token is good for this caller and this list only.
        let binding = format!(
            "{}\0{}\0{}\0{}",
            run.caller().username,
            kind.plural(),
            self.namespace.as_deref().unwrap_or(""),
            self.label_selector.as_deref().unwrap_or("")
        );
        if let Some(sealed) = &self.continue_token {
            let token = paging::open(sealed, &binding)
                .map_err(|e| ToolError::invalid(Self::SPEC.name, e.to_string()))?;
            query.push(("continue", token));
        }
        let body = run
            .kube
            .list(kind, self.namespace.as_deref(), &query)
            .await?;
        let mut decided: HashMap<String, bool> = HashMap::new();
        let run = &*run;
        self.answer(
            &body,
            |token| paging::seal(token, &binding),
            |ns| {
                *decided
                    .entry(ns.to_owned())
                    .or_insert_with(|| run.also(&Target::Namespace(ns.to_owned())).is_ok())
            },
            |ns| run.reveal(ns),
        )
    }
}

impl ListResources {
    /// Builds the answer from the list the API server returned: the items in namespaces `keep`
    /// allows (asked only for lists across namespaces), each passed through `filter`, as a
    /// table and as structured content. The API server's `continue` token goes out only as
    /// `seal` makes it; a list across namespaces does not say how many items remain (the count
    /// would include those in namespaces the caller may not see).
    pub fn answer(
        &self,
        body: &[u8],
        seal: impl FnOnce(&str) -> Option<String>,
        mut keep: impl FnMut(&str) -> bool,
        mut reveal: impl FnMut(Option<&str>) -> Option<Unmask>,
    ) -> Result<ToolOutput, ToolError> {
        let kind = self.resource_type.0;
        let list = List::read(body, kind.kind()).map_err(|e| KubeError::Decode(e.to_string()))?;
        let paths = summary::paths(kind.kind());
        let across_namespaces = self.namespace.is_none() && kind.namespaced();
        let mut views = Vec::with_capacity(list.items.len());
        let mut items = Vec::with_capacity(list.items.len());
        for item in list.items {
            let view = item.view(paths);
            if across_namespaces
                && let Some(ns) = view.at("/metadata/namespace").and_then(Value::as_str)
                && !keep(ns)
            {
                continue;
            }
            let filtered = shaped::filter(item, Some(kind.kind()), &mut reveal)
                .map_err(|e| KubeError::Decode(e.to_string()))?;
            items.push(filtered);
            views.push(view);
        }
        let cut = list.continue_token.filter(|t| !t.is_empty());
        let page = Page {
            continue_token: cut.as_deref().and_then(seal),
            cut: cut.is_some(),
            remaining: list.remaining_item_count.filter(|_| !across_namespaces),
        };
        let where_ = match &self.namespace {
            Some(ns) => format!("in namespace {ns:?}"),
            None if kind.namespaced() => "across the namespaces you may read".to_owned(),
            None => "in the cluster".to_owned(),
        };
        let mut text = format!("{} {} {where_}", items.len(), kind.plural());
        if let Some(selector) = &self.label_selector {
            text.push_str(&format!(" matching {selector:?}"));
        }
        text.push_str(":\n");
        text.push_str(&summary::table(
            kind.kind(),
            &views,
            across_namespaces,
            jiff::Timestamp::now(),
        ));
        text.push_str(&page.note("list-resources"));
        let structured = RawAnswer {
            kind: format!("{}List", kind.kind()),
            items: &items,
            continue_token: page.continue_token.as_deref(),
            remaining_item_count: page.remaining,
        };
        Ok(ToolOutput {
            text,
            structured: output::raw(&structured),
        })
    }
}

/// `list-resources`' structured answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RawAnswer<'a> {
    kind: String,
    items: &'a [shaped::Filtered<'a>],
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    continue_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining_item_count: Option<i64>,
}

/// Removes the items of a list answer (an empty list if it has none).
pub fn take_items(list: &mut Value) -> Vec<Value> {
    match list.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

/// Drops the items in namespaces the call is not permitted in, deciding each namespace once.
pub fn keep_readable(run: &Run<'_>, items: &mut Vec<Value>) {
    let mut decided: HashMap<String, bool> = HashMap::new();
    items.retain(|item| {
        let Some(ns) = item.pointer("/metadata/namespace").and_then(Value::as_str) else {
            return true;
        };
        if let Some(&allowed) = decided.get(ns) {
            return allowed;
        }
        let allowed = run.also(&Target::Namespace(ns.to_owned())).is_ok();
        decided.insert(ns.to_owned(), allowed);
        allowed
    });
}

/// Where a paged list stopped.
pub struct Page {
    /// The sealed token for the next page.
    pub continue_token: Option<String>,
    /// Whether the API server cut the list (even if no token could be sealed).
    pub cut: bool,
    pub remaining: Option<i64>,
}

impl Page {
    /// Whether the API server cut this list answer.
    pub fn is_cut(list: &Value) -> bool {
        list.pointer("/metadata/continue")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
    }

    /// A line telling the model how to get the rest, if there is more.
    pub fn note(&self, tool: &str) -> String {
        let more = match self.remaining {
            Some(n) => format!("{n} more remain"),
            None => "more remain".to_owned(),
        };
        match (&self.continue_token, self.cut) {
            (Some(token), _) => format!(
                "\nThe list was cut at this page; {more}. Call {tool} again with the same \
                 arguments and \"continue\": {token:?} for the next page.\n"
            ),
            (None, true) => format!(
                "\nThe list was cut at this page; {more}. Narrow it with a namespace or a \
                 labelSelector.\n"
            ),
            (None, false) => String::new(),
        }
    }
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "kind": {"type": "string", "description": "The list's kind, e.g. PodList"},
            "items": {"type": "array", "items": {"type": "object"}},
            "continue": {"type": "string", "description": "Pass as `continue` for the next page"},
            "remainingItemCount": {"type": "integer"},
        },
        "required": ["kind", "items"],
    })
}

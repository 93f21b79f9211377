//! The MCP resources kubegate serves, each read as the caller and decided by policy as
//! `Action::"read-resource"` (with the URI in `context.arguments.uri`):
//!
//! Each fixed resource is listed under a URI (`k8s://cluster-info`, as MCP wants URIs with a
//! scheme) and read by that URI or by its bare name (`cluster-info`, as k8sgpt's clients ask for
//! it); policies see the bare name in `context.arguments.uri`.
//!
//! - `cluster-info`: the cluster's name and version (Cedar resource: the `Cluster`);
//! - `namespaces`: the namespaces this caller may use (decided on each `Namespace`, as
//!   `list-namespaces` is), with several clusters also in each other cluster;
//! - `active-filters`: the analyzers `analyze` runs for the caller's tenant (Cedar resource:
//!   the `Cluster`);
//! - `k8s://{namespace}/{resourceType}/{name}`: one object, as `get-resource` reads it (Cedar
//!   resource: the `Object`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::cluster_info::ClusterInfo;
use super::get_resource::GetResource;
use super::list_namespaces::visible_namespaces;
use super::{Run, Runnable, Tool, ToolError, ToolOutput, args, output};
use crate::kube::ApiCatalog;
use crate::policy::{Decidable, NamespaceDirectory, ResourceType, Scope, Target};

/// The URI template of objects.
pub const OBJECT_TEMPLATE: &str = "k8s://{namespace}/{resourceType}/{name}";
const OBJECT_SCHEME: &str = "k8s://";

/// What a `read-resource` decision sees as `context.arguments`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceArguments {
    /// The resource's URI, e.g. `cluster-info` or `k8s://team-a/pods/web-1`.
    pub uri: String,
}

/// One `resources/read`, parsed.
#[derive(Debug)]
pub enum ResourceRead {
    ClusterInfo,
    Namespaces,
    ActiveFilters,
    Object { uri: String, get: GetResource },
}

/// The fixed resources, as `resources/list` shows them: those `could_read(uri, resource type)`
/// says some read of this caller could be permitted.
pub fn list(mut could_read: impl FnMut(&str, ResourceType) -> bool) -> Value {
    let all = [
        (
            ResourceType::Cluster,
            json!({"uri": "k8s://cluster-info", "name": "cluster-info", "title": "Cluster information",
                   "description": "The cluster's name, Kubernetes version and platform",
                   "mimeType": "application/json"}),
        ),
        (
            ResourceType::Namespace,
            json!({"uri": "k8s://namespaces", "name": "namespaces", "title": "Namespaces",
                   "description": "The namespaces you may use", "mimeType": "application/json"}),
        ),
        (
            ResourceType::Cluster,
            json!({"uri": "k8s://active-filters", "name": "active-filters",
                   "title": "Active analyzer filters",
                   "description": "The analyzers `analyze` runs for your tenant",
                   "mimeType": "application/json"}),
        ),
    ];
    Value::from(
        all.into_iter()
            .filter(|(ty, entry)| could_read(entry["name"].as_str().unwrap_or_default(), *ty))
            .map(|(_, entry)| entry)
            .collect::<Vec<_>>(),
    )
}

/// The resource templates, as `resources/templates/list` shows them, if reading some object
/// could be permitted to the caller.
pub fn templates(objects_readable: bool) -> Value {
    if !objects_readable {
        return json!([]);
    }
    json!([
        {"uriTemplate": OBJECT_TEMPLATE, "name": "object", "title": "A Kubernetes object",
         "description": "One namespaced object by namespace, resource type (pods, deployments, \
                         services, configmaps, ...) and name, as get-resource returns it",
         "mimeType": "application/json"},
    ])
}

impl ResourceRead {
    /// Parses a resource URI; unknown ones are refused with the list of known ones.
    pub fn parse(uri: &str, served: &ApiCatalog) -> Result<ResourceRead, String> {
        let bare = uri.strip_prefix(OBJECT_SCHEME).unwrap_or(uri);
        match bare {
            "cluster-info" => return Ok(ResourceRead::ClusterInfo),
            "namespaces" => return Ok(ResourceRead::Namespaces),
            "active-filters" => return Ok(ResourceRead::ActiveFilters),
            _ => {}
        }
        let Some(path) = uri.strip_prefix(OBJECT_SCHEME) else {
            return Err(format!(
                "unknown resource {uri:?}: kubegate serves cluster-info, namespaces, \
                 active-filters and {OBJECT_TEMPLATE}"
            ));
        };
        let parts: Vec<&str> = path.split('/').collect();
        let [namespace, resource_type, name] = parts[..] else {
            return Err(format!("{uri:?} does not match {OBJECT_TEMPLATE}"));
        };
        let arguments: Map<String, Value> = [
            ("resourceType", resource_type),
            ("name", name),
            ("namespace", namespace),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect();
        let mut get: GetResource = args::parse(&arguments)?;
        get.check(served)?;
        if !get.resource_type.0.namespaced() {
            return Err(format!(
                "{uri:?}: {} are not namespaced; use get-resource for them",
                get.resource_type.0.plural()
            ));
        }
        Ok(ResourceRead::Object {
            uri: uri.to_owned(),
            get,
        })
    }

    /// The URI as read.
    pub fn uri(&self) -> &str {
        match self {
            ResourceRead::ClusterInfo => "cluster-info",
            ResourceRead::Namespaces => "namespaces",
            ResourceRead::ActiveFilters => "active-filters",
            ResourceRead::Object { uri, .. } => uri,
        }
    }
}

impl Decidable for ResourceRead {
    fn action(&self) -> &'static str {
        "read-resource"
    }

    fn scope(&self, namespaces: &dyn NamespaceDirectory) -> Scope {
        match self {
            ResourceRead::ClusterInfo | ResourceRead::ActiveFilters => Scope::One(Target::Cluster),
            ResourceRead::Namespaces => Scope::every_namespace(namespaces),
            ResourceRead::Object { get, .. } => get.scope(namespaces),
        }
    }

    fn cedar_arguments(&self) -> Value {
        serde_json::to_value(ResourceArguments {
            uri: self.uri().to_owned(),
        })
        .unwrap_or(Value::Null)
    }
}

impl Runnable for ResourceRead {
    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let output = match self {
            ResourceRead::ClusterInfo => ClusterInfo {}.run(run).await?,
            ResourceRead::Namespaces if run.clusters.several() => in_every_cluster(run),
            ResourceRead::Namespaces => visible_namespaces(run),
            ResourceRead::ActiveFilters => {
                let settings = run.analysis.settings.read(&run.caller().tenant).await;
                let settings = settings.map_err(|e| ToolError::Failed(e.to_string()))?;
                let active = super::filters::active_filters(&settings);
                ToolOutput {
                    text: active.join(","),
                    structured: output::raw(&json!({
                        "activeFilters": active,
                        "defaults": settings.filters.is_none(),
                    })),
                }
            }
            ResourceRead::Object { get, .. } => get.run(run).await?,
        };
        Ok(output)
    }
}

/// The `namespaces` resource when kubegate fronts several clusters: this cluster's namespaces
/// the caller may use, as with one, and under `clusters` each cluster's, decided on each
/// `Namespace::"<cluster>/<name>"` with the same action and arguments. A cluster where the
/// caller may use none, or that cannot be reached now, is left out.
fn in_every_cluster(run: &Run<'_>) -> ToolOutput {
    let here = visible_namespaces(run);
    let mut clusters = Vec::new();
    let mut text = String::new();
    for cluster in run.clusters.iter() {
        // A cluster that cannot be reached now has no namespaces to show (list-clusters says
        // which of theirs a caller cannot reach).
        let Ok(kube) = cluster.kube() else {
            continue;
        };
        let cache = kube.namespaces();
        let summaries: Vec<_> = if cluster.name == run.cluster() {
            run.permit
                .namespaces()
                .filter_map(|name| cache.summary(name))
                .collect()
        } else {
            kube.names()
                .iter()
                .filter(|name| {
                    let target = Target::Namespace((*name).clone());
                    run.permit.may_see(&cluster.policy, &target, kube)
                })
                .filter_map(|name| cache.summary(name))
                .collect()
        };
        if summaries.is_empty() && cluster.name != run.cluster() {
            continue;
        }
        let names: Vec<&str> = summaries.iter().map(|s| s.name.as_str()).collect();
        text.push_str(&format!(
            "cluster {:?}: {}\n",
            cluster.name,
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ));
        clusters.push(json!({"name": cluster.name, "namespaces": summaries}));
    }
    let mut structured = here
        .structured
        .as_deref()
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .unwrap_or_else(|| json!({}));
    structured["clusters"] = Value::from(clusters);
    ToolOutput {
        text: format!("{}\nIn every cluster you may use:\n{text}", here.text),
        structured: output::raw(&structured),
    }
}

/// A resource's contents as `resources/read` answers them: its JSON, under the URI it was read
/// by.
pub fn contents(asked: &str, output: &ToolOutput) -> Value {
    let text = match output
        .structured
        .as_deref()
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
    {
        Some(value) => serde_json::to_string_pretty(&value).unwrap_or_default(),
        None => output.text.clone(),
    };
    json!({ "contents": [{ "uri": asked, "mimeType": "application/json", "text": text }] })
}

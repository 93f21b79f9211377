//! Answers `completion/complete` for prompt arguments and the object template: namespace names
//! the caller may use (as `list-namespaces` decides them), and names of pods, deployments or
//! other objects in a namespace (as `list-resources` lists them, as the caller). Each
//! completion is the tool call it resembles, decided and run the same way, in the cluster the
//! arguments given so far name (`context`, or a prompt's `cluster`) or the default one; a refusal completes nothing
//! rather than saying why.

use serde_json::{Map, Value, json};

use super::{Exchange, jsonrpc};
use crate::audit::{AuditRecord, Outcome};
use crate::clusters::Reached;
use crate::mcp::jsonrpc::code;
use crate::tool::{self, ToolCall};

/// The most values one completion returns (MCP's limit).
const MAX_VALUES: usize = 100;

pub(super) async fn complete(
    ex: &Exchange<'_>,
    params: &Map<String, Value>,
    record: &mut AuditRecord,
) -> jsonrpc::Response {
    let id = &ex.id;
    let argument = params.get("argument");
    let (Some(name), Some(prefix)) = (
        argument.and_then(|a| a.get("name")).and_then(Value::as_str),
        argument
            .and_then(|a| a.get("value"))
            .and_then(Value::as_str),
    ) else {
        let message = "completion/complete needs `argument` with `name` and `value`";
        record.fail(Outcome::Invalid, message);
        return jsonrpc::error(Some(id), code::INVALID_PARAMS, message);
    };
    let context = params
        .get("context")
        .and_then(|c| c.get("arguments"))
        .and_then(Value::as_object);
    let given = |key: &str| context.and_then(|c| c.get(key)).and_then(Value::as_str);
    record.set_arguments(&json!({ "argument": name, "value": prefix }));
    // Names come from the cluster the arguments given so far name (`context`), or the default.
    // (A prompt's argument is `cluster`, a tool's `context`.)
    let cluster = ex
        .gateway
        .clusters
        .get(given("context").or(given("cluster")));
    if let Ok(cluster) = cluster {
        record.cluster = Some(cluster.name.clone());
    }
    let reached = cluster.ok().and_then(|c| ex.reach(c).ok());
    let mut values = match (name, reached) {
        ("resourceType", _) => tool::LISTABLE
            .iter()
            .map(|k| k.plural().to_owned())
            .collect(),
        (_, None) => Vec::new(),
        ("namespace", Some(to)) => namespaces(ex, to, record),
        ("podName", Some(to)) => names(ex, to, record, "pods", given("namespace")).await,
        ("deploymentName", Some(to)) => {
            names(ex, to, record, "deployments", given("namespace")).await
        }
        ("name", Some(to)) => match given("resourceType") {
            Some(kind) => names(ex, to, record, kind, given("namespace")).await,
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    values.retain(|v| v.starts_with(prefix));
    values.sort();
    values.dedup();
    let total = values.len();
    values.truncate(MAX_VALUES);
    ex.result(json!({ "completion": { "values": values, "total": total, "hasMore": total > MAX_VALUES } }))
}

/// The namespaces `list-namespaces` would show this caller.
fn namespaces(ex: &Exchange<'_>, to: Reached<'_>, record: &mut AuditRecord) -> Vec<String> {
    let Ok(call) = ToolCall::parse("list-namespaces", &Map::new(), &to.kube.catalog()) else {
        return Vec::new();
    };
    match ex.authorize(call, to, record) {
        Ok(permitted) => permitted.permit().namespaces().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

/// The names `list-resources` would list for this caller.
async fn names(
    ex: &Exchange<'_>,
    to: Reached<'_>,
    record: &mut AuditRecord,
    resource_type: &str,
    namespace: Option<&str>,
) -> Vec<String> {
    let Some(namespace) = namespace else {
        return Vec::new();
    };
    let arguments: Map<String, Value> = [
        ("resourceType", Value::from(resource_type)),
        ("namespace", Value::from(namespace)),
        ("limit", Value::from(500)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let Ok(call) = ToolCall::parse("list-resources", &arguments, &to.kube.catalog()) else {
        return Vec::new();
    };
    let Ok(permitted) = ex.authorize(call, to, record) else {
        return Vec::new();
    };
    ex.run(&permitted, to, None, record)
        .await
        .ok()
        .and_then(|o| o.structured)
        .and_then(|s| serde_json::from_str::<Value>(s.get()).ok())
        .and_then(|s| s.get("items").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

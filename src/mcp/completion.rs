//! Answers `completion/complete` for prompt arguments and the object template: namespace names
//! the caller may use (as `list-namespaces` decides them), and names of pods, deployments or
//! other objects in a namespace (as `list-resources` lists them, as the caller). Each
//! completion is the tool call it resembles, decided and run the same way; a refusal completes
//! nothing rather than saying why.

use serde_json::{Map, Value, json};

use super::{Exchange, jsonrpc};
use crate::audit::{AuditRecord, Outcome};
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
    let mut values = match name {
        "namespace" => namespaces(ex, record),
        "resourceType" => tool::LISTABLE
            .iter()
            .map(|k| k.plural().to_owned())
            .collect(),
        "podName" => names(ex, record, "pods", given("namespace")).await,
        "deploymentName" => names(ex, record, "deployments", given("namespace")).await,
        "name" => match given("resourceType") {
            Some(kind) => names(ex, record, kind, given("namespace")).await,
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
fn namespaces(ex: &Exchange<'_>, record: &mut AuditRecord) -> Vec<String> {
    let Ok(call) = ToolCall::parse("list-namespaces", &Map::new(), &ex.gateway.kube.catalog())
    else {
        return Vec::new();
    };
    match ex.authorize(call, record) {
        Ok(permitted) => permitted.permit().namespaces().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

/// The names `list-resources` would list for this caller.
async fn names(
    ex: &Exchange<'_>,
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
    let Ok(call) = ToolCall::parse("list-resources", &arguments, &ex.gateway.kube.catalog()) else {
        return Vec::new();
    };
    let Ok(permitted) = ex.authorize(call, record) else {
        return Vec::new();
    };
    ex.run(&permitted, None, record)
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

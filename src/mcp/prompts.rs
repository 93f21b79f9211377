//! Answers `prompts/get`: parses the prompt ([`crate::tool::prompts`] defines them), lets the
//! policy decide it in the cluster its optional `cluster` argument names (else the default),
//! and returns its messages.

use serde_json::{Map, Value, json};

use super::{Exchange, jsonrpc};
use crate::audit::{AuditRecord, Outcome};
use crate::clusters::ClusterError;
use crate::mcp::jsonrpc::code;
use crate::policy::Decidable;
use crate::tool::prompts::Prompt;

pub(super) fn get(
    ex: &Exchange<'_>,
    params: &Map<String, Value>,
    record: &mut AuditRecord,
) -> jsonrpc::Response {
    let id = &ex.id;
    let prompt = match Prompt::parse(params) {
        Ok(prompt) => prompt,
        Err(message) => {
            record.fail(Outcome::Invalid, message.clone());
            return jsonrpc::error(Some(id), code::INVALID_PARAMS, message);
        }
    };
    record.set_arguments(&prompt.cedar_arguments());
    // The prompt is about the cluster its `cluster` argument names, or the default one.
    let clusters = &ex.gateway.clusters;
    let named = params
        .get("arguments")
        .and_then(|a| a.get("cluster"))
        .and_then(Value::as_str)
        .filter(|_| clusters.several());
    let reached = match clusters.get(named).and_then(|cluster| {
        record.cluster = Some(cluster.name.clone());
        ex.reach(cluster)
    }) {
        Ok(reached) => reached,
        Err(error @ ClusterError::Unknown(_)) => {
            record.fail(Outcome::Invalid, error.to_string());
            return jsonrpc::error(Some(id), code::INVALID_PARAMS, error.to_string());
        }
        Err(error) => {
            record.fail(Outcome::Error, error.detail());
            return jsonrpc::error(Some(id), code::INTERNAL_ERROR, error.to_string());
        }
    };
    let permitted = match ex.authorize(prompt, reached, record) {
        Ok(permitted) => permitted,
        Err(denied) => return jsonrpc::error(Some(id), code::REFUSED, denied.to_string()),
    };
    let (description, mut text) = permitted.call().messages();
    if ex.gateway.clusters.several() {
        let cluster = &reached.cluster.name;
        text.push_str(&format!(
            "\nThis is about the cluster {cluster:?}: call every tool with `context` {cluster:?}."
        ));
    }
    ex.result(json!({
        "description": description,
        "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
    }))
}

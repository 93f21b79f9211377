//! Answers `prompts/get`: parses the prompt ([`crate::tool::prompts`] defines them), lets the
//! policy decide it, and returns its messages.

use serde_json::{Map, Value, json};

use super::{Exchange, jsonrpc};
use crate::audit::{AuditRecord, Outcome};
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
    let cluster = ex.gateway.clusters.default_cluster();
    record.cluster = Some(cluster.name.clone());
    let reached = match cluster.reach() {
        Ok(reached) => reached,
        Err(error) => {
            record.fail(Outcome::Error, error.to_string());
            return jsonrpc::error(Some(id), code::INTERNAL_ERROR, error.to_string());
        }
    };
    let permitted = match ex.authorize(prompt, reached, record) {
        Ok(permitted) => permitted,
        Err(denied) => return jsonrpc::error(Some(id), code::REFUSED, denied.to_string()),
    };
    let (description, text) = permitted.call().messages();
    ex.result(json!({
        "description": description,
        "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
    }))
}

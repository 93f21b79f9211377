//! Speaks MCP over JSON-RPC: negotiates the protocol version, keeps sessions, and dispatches each
//! method. A `tools/call`, `resources/read` or `prompts/get` is parsed, decided by the policy, and
//! only then run.
//!
//! Clients may skip `initialize` and send bare requests (as k8sgpt's documented curl examples
//! do): kubegate then answers statelessly with the version the client names in
//! `MCP-Protocol-Version`, or the transport's default.

mod calls;
mod completion;
pub mod jsonrpc;
mod prompts;
pub mod session;

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::audit::{AuditRecord, AuditUser, Outcome};
use crate::auth::Caller;
use crate::gateway::Gateway;
use crate::policy::schema::{GET_PROMPT, READ_RESOURCE};
use crate::policy::{Listed, RequestFacts, ResourceType};
use crate::tool;
use jsonrpc::{EnvelopeError, Message, code};

/// The protocol revisions kubegate speaks, newest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// What the Streamable HTTP transport assumes when a client names no version.
pub const DEFAULT_HTTP_VERSION: &str = "2025-03-26";

/// One MCP message as it arrived, with what the transport knows about it.
pub struct Incoming<'a> {
    pub caller: Arc<Caller>,
    pub source_ip: IpAddr,
    pub transport: &'static str,
    /// The `Mcp-Session-Id` header.
    pub session_id: Option<&'a str>,
    /// The `MCP-Protocol-Version` header.
    pub protocol_version: Option<&'a str>,
    pub body: &'a [u8],
    /// Cancelled when the client goes away (a reset stream, a closed connection): a call that
    /// changes nothing and has not reached Kubernetes yet is then abandoned.
    pub gone: tokio_util::sync::CancellationToken,
}

/// What to answer.
#[derive(Debug)]
pub enum Reply {
    /// A JSON-RPC response; `session_id` is set when this response opened a session.
    Message {
        body: jsonrpc::Response,
        session_id: Option<String>,
    },
    /// A notification or response was received; nothing to answer.
    Accepted,
}

/// Why a message could not be handled at all (the transport answers with an HTTP error).
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("no such session: it ended, expired, or belongs to another caller; initialize again")]
    SessionNotFound,
    #[error("unsupported MCP protocol version {0:?}; kubegate speaks {versions}", versions = PROTOCOL_VERSIONS.join(", "))]
    UnsupportedVersion(String),
    #[error(
        "MCP-Protocol-Version {header:?} is not the version {session:?} this session negotiated"
    )]
    VersionMismatch { session: String, header: String },
}

/// What a method handler works with.
pub(crate) struct Exchange<'a> {
    pub gateway: &'a Gateway,
    pub caller: &'a Arc<Caller>,
    pub facts: RequestFacts,
    pub id: Value,
    pub gone: tokio_util::sync::CancellationToken,
}

/// Handles one message from an authenticated caller, filling in its audit record.
pub async fn handle(
    gateway: &Gateway,
    incoming: Incoming<'_>,
    record: &mut AuditRecord,
) -> Result<Reply, McpError> {
    let caller = &incoming.caller;
    record.user = Some(AuditUser::of(caller));
    // Errors returned from here are recorded once, by the transport that answers them.
    let message = jsonrpc::parse(incoming.body)?;
    if let Some(version) = incoming.protocol_version
        && !PROTOCOL_VERSIONS.contains(&version)
    {
        return Err(McpError::UnsupportedVersion(version.to_owned()));
    }
    let session_version = match incoming.session_id {
        Some(id) => {
            record.mcp.session_id = Some(id.to_owned());
            Some(
                gateway
                    .sessions
                    .resume(id, &caller.username)
                    .ok_or(McpError::SessionNotFound)?,
            )
        }
        None => None,
    };
    if let (Some(session), Some(header)) = (&session_version, incoming.protocol_version)
        && session != header
    {
        return Err(McpError::VersionMismatch {
            session: session.clone(),
            header: header.to_owned(),
        });
    }
    let protocol_version = session_version
        .or_else(|| incoming.protocol_version.map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_HTTP_VERSION.to_owned());
    record.mcp.protocol_version = Some(protocol_version.clone());

    let (id, method, params) = match message {
        Message::Request { id, method, params } => (id, method, params.unwrap_or_default()),
        Message::Notification { method } => {
            record.mcp.method = Some(method);
            return Ok(Reply::Accepted);
        }
        Message::Response => return Ok(Reply::Accepted),
    };
    record.mcp.method = Some(method.clone());
    record.mcp.request_id = Some(id.clone());
    let exchange = Exchange {
        gateway,
        caller,
        facts: RequestFacts {
            transport: incoming.transport,
            source_ip: incoming.source_ip,
            protocol_version,
            session_id: incoming.session_id.map(str::to_owned),
            time: record.request_received_timestamp,
        },
        id,
        gone: incoming.gone.clone(),
    };

    let mut session_id = None;
    let id = &exchange.id;
    let body = match method.as_str() {
        "initialize" => {
            let version = negotiate(&params);
            let id_opened = gateway.sessions.open(&caller.username, version);
            record.mcp.session_id = Some(id_opened.clone());
            record.mcp.protocol_version = Some(version.to_owned());
            session_id = Some(id_opened);
            jsonrpc::result(id, initialize_result(version))
        }
        "ping" => jsonrpc::result(id, json!({})),
        "tools/list" => jsonrpc::result(id, tools_list(&gateway.policy.listed(caller))),
        "tools/call" => calls::call_tool(&exchange, &params, record).await,
        "resources/list" => {
            let resources = tool::resources::list(|uri, ty| {
                let arguments = json!({ "uri": uri });
                gateway
                    .policy
                    .could_permit(caller, READ_RESOURCE, ty, &arguments, &exchange.facts)
            });
            jsonrpc::result(id, json!({ "resources": resources }))
        }
        "resources/templates/list" => {
            let listed = gateway.policy.listed(caller);
            let readable = listed.possible_on(READ_RESOURCE, ResourceType::Object);
            jsonrpc::result(
                id,
                json!({ "resourceTemplates": tool::resources::templates(readable) }),
            )
        }
        "resources/read" => calls::read_resource(&exchange, &params, record).await,
        "prompts/list" => {
            let listed = gateway.policy.listed(caller);
            let prompts = tool::prompts::list(
                listed.possible_on(GET_PROMPT, ResourceType::Namespace),
                listed.possible_on(GET_PROMPT, ResourceType::Cluster),
            );
            jsonrpc::result(id, json!({ "prompts": prompts }))
        }
        "prompts/get" => prompts::get(&exchange, &params, record),
        "completion/complete" => completion::complete(&exchange, &params, record).await,
        other => {
            let message = format!("unknown method `{other}`");
            record.fail(Outcome::Invalid, message.clone());
            jsonrpc::error(Some(id), code::METHOD_NOT_FOUND, message)
        }
    };
    Ok(Reply::Message { body, session_id })
}

/// The client's version if kubegate speaks it, else kubegate's newest (the client then decides).
fn negotiate(params: &Map<String, Value>) -> &'static str {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    PROTOCOL_VERSIONS
        .iter()
        .copied()
        .find(|v| Some(*v) == asked)
        .unwrap_or(PROTOCOL_VERSIONS[0])
}

fn initialize_result(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": { "listChanged": false },
            "resources": { "subscribe": false, "listChanged": false },
            "prompts": { "listChanged": false },
            "completions": {},
        },
        "serverInfo": {
            "name": "kubegate",
            "title": "kubegate: policy-gated Kubernetes",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": "Kubernetes tools, run as you: every call is checked by policy and by \
                         Kubernetes RBAC, and audited. Start with list-namespaces to see where \
                         you may work.",
    })
}

/// The tools some call of this caller could be permitted.
fn tools_list(listed: &Listed) -> Value {
    let tools: Vec<Value> = tool::CATALOG
        .iter()
        .filter(|spec| listed.possible(spec.name))
        .map(|spec| {
            let schema = tool::input_schema(spec.name)
                .cloned()
                .unwrap_or(Value::Null);
            spec.describe(&schema)
        })
        .collect();
    json!({ "tools": tools })
}

/// A tool result the model can read: text content, structured content if any (already
/// encoded: spliced in, not encoded again), flagged as an error or not.
pub fn tool_result(
    id: &Value,
    text: &str,
    structured: Option<&RawValue>,
    is_error: bool,
) -> jsonrpc::Response {
    #[derive(Serialize)]
    struct Text<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        text: &'a str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct CallToolResult<'a> {
        content: [Text<'a>; 1],
        #[serde(rename = "structuredContent", skip_serializing_if = "Option::is_none")]
        structured: Option<&'a RawValue>,
        is_error: bool,
    }
    jsonrpc::result(
        id,
        CallToolResult {
            content: [Text { kind: "text", text }],
            structured,
            is_error,
        },
    )
}

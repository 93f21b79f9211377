//! Speaks MCP over JSON-RPC: negotiates the protocol version, keeps sessions, and dispatches each
//! method. A `tools/call` is parsed into a [`ToolCall`], decided by the policy, and only then run.
//!
//! Clients may skip `initialize` and send bare requests (as k8sgpt's documented curl examples
//! do): kubegate then answers statelessly with the version the client names in
//! `MCP-Protocol-Version`, or the transport's default.

pub mod jsonrpc;
pub mod session;

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::audit::{AuditDecision, AuditGrant, AuditRecord, AuditUser, Outcome};
use crate::auth::Caller;
use crate::gateway::Gateway;
use crate::policy::{Denied, Permit, RequestFacts};
use crate::tool::{self, Grants, ToolCall, ToolError};
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
}

/// What to answer.
#[derive(Debug)]
pub enum Reply {
    /// A JSON-RPC response; `session_id` is set when this response opened a session.
    Message {
        body: Value,
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

/// Handles one message from an authenticated caller, filling in its audit record.
pub async fn handle(
    gateway: &Gateway,
    incoming: Incoming<'_>,
    record: &mut AuditRecord,
) -> Result<Reply, McpError> {
    let caller = &incoming.caller;
    record.user = Some(AuditUser {
        username: caller.username.clone(),
        groups: caller.groups.clone(),
        tenant: caller.tenant.clone(),
    });
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
    let facts = RequestFacts {
        transport: incoming.transport,
        source_ip: incoming.source_ip,
        protocol_version,
        session_id: incoming.session_id.map(str::to_owned),
        time: record.request_received_timestamp,
    };

    let mut session_id = None;
    let body = match method.as_str() {
        "initialize" => {
            let version = negotiate(&params);
            let id_opened = gateway.sessions.open(&caller.username, version);
            record.mcp.session_id = Some(id_opened.clone());
            record.mcp.protocol_version = Some(version.to_owned());
            session_id = Some(id_opened);
            jsonrpc::result(&id, initialize_result(version))
        }
        "ping" => jsonrpc::result(&id, json!({})),
        "tools/list" => jsonrpc::result(&id, tools_list()),
        "tools/call" => call_tool(gateway, caller, &facts, &id, &params, record).await,
        other => {
            let message = format!("unknown method `{other}`");
            record.fail(Outcome::Invalid, message.clone());
            jsonrpc::error(Some(&id), code::METHOD_NOT_FOUND, message)
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
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": {
            "name": "kubegate",
            "title": "kubegate: policy-gated Kubernetes",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": "Kubernetes tools, run as you: every call is checked by policy and by \
                         Kubernetes RBAC, and audited.",
    })
}

fn tools_list() -> Value {
    let tools: Vec<Value> = tool::CATALOG.iter().map(|spec| spec.describe()).collect();
    json!({ "tools": tools })
}

/// A tool result the model can read: text content, flagged as an error or not.
fn tool_result(id: &Value, text: String, is_error: bool) -> Value {
    jsonrpc::result(
        id,
        json!({ "content": [{ "type": "text", "text": text }], "isError": is_error }),
    )
}

async fn call_tool(
    gateway: &Gateway,
    caller: &Arc<Caller>,
    facts: &RequestFacts,
    id: &Value,
    params: &Map<String, Value>,
    record: &mut AuditRecord,
) -> Value {
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        let message = "tools/call needs a `name` (string)";
        record.fail(Outcome::Invalid, message);
        return jsonrpc::error(Some(id), code::INVALID_PARAMS, message);
    };
    record.mcp.tool = Some(name.to_owned());
    let empty = Map::new();
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(arguments)) => arguments,
        Some(_) => {
            let message = "tools/call `arguments` must be an object";
            record.fail(Outcome::Invalid, message);
            return jsonrpc::error(Some(id), code::INVALID_PARAMS, message);
        }
    };
    record.set_arguments(&Value::Object(arguments.clone()));
    let call = match ToolCall::parse(name, arguments) {
        Ok(call) => call,
        Err(error @ ToolError::UnknownTool(_)) => {
            record.fail(Outcome::Invalid, error.to_string());
            return jsonrpc::error(Some(id), code::INVALID_PARAMS, error.to_string());
        }
        // Invalid arguments are a tool error the model can read and correct (MCP 2025-11-25).
        Err(error) => {
            record.fail(Outcome::Invalid, error.to_string());
            return tool_result(id, error.to_string(), true);
        }
    };
    let decision = gateway.policy.authorize(
        caller,
        call.spec().name,
        &call.target(),
        Some(&call.cedar_arguments()),
        facts,
        &gateway.kube,
    );
    record.decision = Some(audit_decision(&decision, call.spec().name));
    let permit = match decision {
        Ok(permit) => permit,
        Err(denied) => {
            record.fail(Outcome::Denied, denied.to_string());
            return tool_result(id, denied.to_string(), true);
        }
    };
    let mut grants = Grants::default();
    if call.touches_secrets() {
        let reveal = gateway.policy.authorize(
            caller,
            "reveal-secrets",
            &call.target(),
            None,
            facts,
            &gateway.kube,
        );
        grants.reveal_secrets = reveal.is_ok();
        if let Some(decision) = record.decision.as_mut() {
            decision.grants.push(AuditGrant {
                action: "reveal-secrets",
                allowed: reveal.is_ok(),
                policies: match &reveal {
                    Ok(permit) => permit.policies().to_vec(),
                    Err(denied) => denied.policies().to_vec(),
                },
            });
        }
    }
    let outcome = call
        .run(&permit, &gateway.kube, &mut record.kube, grants)
        .await;
    match outcome {
        Ok(output) => tool_result(id, output.text, false),
        Err(error) => {
            let message = error.to_string();
            record.fail(Outcome::Error, message.clone());
            tool_result(id, message, true)
        }
    }
}

fn audit_decision(decision: &Result<Permit, Denied>, action: &str) -> AuditDecision {
    match decision {
        Ok(permit) => AuditDecision {
            allowed: true,
            action: action.to_owned(),
            resource: permit.resource().to_owned(),
            policies: permit.policies().to_vec(),
            reasons: permit.reasons().to_vec(),
            errors: Vec::new(),
            grants: Vec::new(),
        },
        Err(denied) => AuditDecision {
            allowed: false,
            action: action.to_owned(),
            resource: denied.resource.clone(),
            policies: denied.policies().to_vec(),
            reasons: denied.reasons().to_vec(),
            errors: denied.errors().to_vec(),
            grants: Vec::new(),
        },
    }
}

//! Speaks MCP over JSON-RPC: recognises the protocol revision a message is sent under,
//! validates it by that revision's rules, keeps sessions (for the revisions that have them), and
//! dispatches each method. A `tools/call`, `resources/read` or `prompts/get` is parsed, decided
//! by the policy, and only then run.
//!
//! # Revisions
//! - **Initialize revisions** (2024-11-05 … 2025-11-25): `initialize` opens a session bound to
//!   its caller; later messages name it in `Mcp-Session-Id`. Clients may also skip
//!   `initialize` and send bare requests (as k8sgpt's documented curl examples do): kubegate
//!   then answers statelessly with the version the client names in `MCP-Protocol-Version`, or
//!   the transport's default.
//! - **2026-07-28, the stateless revision** ([`wire`]): no `initialize` and no session; every
//!   request carries its protocol version and client capabilities in `params._meta`, and its
//!   method (and tool, prompt or resource name) in the `Mcp-Method` (and `Mcp-Name`) headers,
//!   which must agree with the body. Results carry `resultType`, list results their caching
//!   hints, and every result names the server in `_meta`.

mod calls;
mod completion;
pub mod inflight;
pub mod jsonrpc;
pub mod peer;
mod prompts;
pub mod session;
pub mod wire;

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::audit::{AuditRecord, AuditUser, Outcome};
use crate::auth::Caller;
use crate::clusters::Clusters;
use crate::gateway::Gateway;
use crate::policy::schema::{GET_PROMPT, READ_RESOURCE};
use crate::policy::{Listed, RequestFacts, ResourceType};
use crate::tool;
use jsonrpc::{EnvelopeError, Message, code};
use wire::Wire;

/// The initialize-based protocol revisions kubegate speaks, newest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The stateless revisions kubegate speaks.
pub const STATELESS_VERSIONS: &[&str] = &["2026-07-28"];
/// What the Streamable HTTP transport assumes when a client names no version.
pub const DEFAULT_HTTP_VERSION: &str = "2025-03-26";

/// Every revision kubegate speaks, newest first.
pub fn supported_versions() -> Vec<&'static str> {
    STATELESS_VERSIONS
        .iter()
        .chain(PROTOCOL_VERSIONS)
        .copied()
        .collect()
}

/// One MCP message as it arrived, with what the transport knows about it.
pub struct Incoming<'a> {
    pub caller: Arc<Caller>,
    pub source_ip: IpAddr,
    pub transport: &'static str,
    /// The `Mcp-Session-Id` header.
    pub session_id: Option<&'a str>,
    /// The `MCP-Protocol-Version` header.
    pub protocol_version: Option<&'a str>,
    /// The `Mcp-Method` and `Mcp-Name` headers (every value each was sent with).
    pub method_header: Vec<&'a str>,
    pub name_header: Vec<&'a str>,
    /// Whether the transport carries headers at all (stdio does not: there are none to check).
    pub headers: bool,
    pub body: &'a [u8],
    /// Cancelled when the client goes away (a reset stream, a closed connection): a call that
    /// changes nothing and has not reached Kubernetes yet is then abandoned.
    pub gone: tokio_util::sync::CancellationToken,
    /// Where a running call's messages to its client go (progress, `sampling/createMessage`),
    /// if the transport can carry them while the client waits for the answer.
    pub peer: Option<tokio::sync::mpsc::Sender<String>>,
}

/// What to answer.
#[derive(Debug)]
pub enum Reply {
    /// A JSON-RPC response; `session_id` is set when this response opened a session.
    Message {
        body: jsonrpc::Response,
        session_id: Option<String>,
        /// A method the revision does not have (the stateless revision answers those 404).
        not_found: bool,
    },
    /// A notification or response was received; nothing to answer.
    Accepted,
    /// A batch's answers (none if it held only notifications). Each message of it has already
    /// been recorded on its own; the transport writes no record for the batch.
    Batch { body: Option<jsonrpc::Response> },
}

/// Why a message could not be handled at all (the transport answers with an HTTP error). The
/// request's id is kept whenever it could be read, and echoed in the error.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("no such session: it ended, expired, or belongs to another caller; initialize again")]
    SessionNotFound { id: Option<Value> },
    #[error("unsupported MCP protocol version {requested:?}; kubegate speaks {}", supported_versions().join(", "))]
    UnsupportedVersion {
        id: Option<Value>,
        requested: String,
    },
    #[error(
        "MCP-Protocol-Version {header:?} is not the version {session:?} this session negotiated"
    )]
    VersionMismatch {
        id: Option<Value>,
        session: String,
        header: String,
    },
    #[error("params._meta must carry {key:?} (the {revision} revision sends it on every request)")]
    MissingMeta {
        id: Option<Value>,
        key: &'static str,
        revision: &'static str,
    },
    #[error("the {header} header {problem}")]
    HeaderMismatch {
        id: Option<Value>,
        header: &'static str,
        problem: String,
    },
    #[error(
        "the token does not carry the scope{} this call needs: {}; ask the authorization \
         server for a token with {}",
        if insufficient.missing.len() == 1 { "" } else { "s" },
        insufficient.missing.join(", "),
        if insufficient.missing.len() == 1 { "it" } else { "them" }
    )]
    InsufficientScope {
        id: Option<Value>,
        insufficient: crate::auth::scope::Insufficient,
    },
}

impl McpError {
    /// The request's id, if it could be read.
    pub fn request_id(&self) -> Option<&Value> {
        match self {
            McpError::Envelope(_) => None,
            McpError::SessionNotFound { id }
            | McpError::UnsupportedVersion { id, .. }
            | McpError::VersionMismatch { id, .. }
            | McpError::MissingMeta { id, .. }
            | McpError::HeaderMismatch { id, .. }
            | McpError::InsufficientScope { id, .. } => id.as_ref(),
        }
    }

    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            McpError::Envelope(envelope) => envelope.code(),
            McpError::SessionNotFound { .. } | McpError::VersionMismatch { .. } => {
                code::INVALID_REQUEST
            }
            McpError::UnsupportedVersion { .. } => code::UNSUPPORTED_VERSION,
            McpError::MissingMeta { .. } => code::INVALID_PARAMS,
            McpError::HeaderMismatch { .. } => code::HEADER_MISMATCH,
            McpError::InsufficientScope { .. } => code::UNAUTHENTICATED,
        }
    }

    /// The error's `data`, where the revision defines one.
    pub fn data(&self) -> Option<Value> {
        match self {
            McpError::UnsupportedVersion { requested, .. } => Some(json!({
                "supported": supported_versions(),
                "requested": requested,
            })),
            _ => None,
        }
    }
}

/// What a method handler works with.
pub(crate) struct Exchange<'a> {
    pub gateway: &'a Gateway,
    pub caller: &'a Arc<Caller>,
    pub facts: RequestFacts,
    pub id: Value,
    pub gone: tokio_util::sync::CancellationToken,
    pub wire: Wire,
    /// The request's way back to its client, if its transport has one.
    pub peer_out: Option<tokio::sync::mpsc::Sender<String>>,
    /// The session's client offered `sampling`.
    pub sampling: bool,
    /// The request's `_meta.progressToken`.
    pub progress_token: Option<Value>,
}

/// The most messages one JSON-RPC batch may hold.
pub const MAX_BATCH: usize = 32;

/// Handles one message (or, under 2025-03-26, one batch) from an authenticated caller, filling
/// in its audit record.
pub async fn handle(
    gateway: &Gateway,
    incoming: Incoming<'_>,
    record: &mut AuditRecord,
) -> Result<Reply, McpError> {
    if incoming.body.trim_ascii_start().starts_with(b"[") {
        return handle_batch(gateway, incoming, record).await;
    }
    handle_one(gateway, incoming, record).await
}

/// A JSON-RPC batch, which only the 2025-03-26 revision has: each message is handled (and
/// decided, and run) as if sent alone, and leaves its own audit record; the answers go back
/// together.
async fn handle_batch(
    gateway: &Gateway,
    incoming: Incoming<'_>,
    record: &mut AuditRecord,
) -> Result<Reply, McpError> {
    record.user = Some(AuditUser::of(&incoming.caller));
    let version = match incoming.session_id {
        Some(session) => gateway.sessions.resume(session, &incoming.caller.username),
        None => incoming.protocol_version.map(|v| v.trim().to_owned()),
    };
    if version.as_deref() != Some("2025-03-26") {
        return Err(McpError::Envelope(EnvelopeError::Batch));
    }
    let messages: Vec<Box<RawValue>> = serde_json::from_slice(incoming.body)
        .map_err(|e| McpError::Envelope(EnvelopeError::Parse(e.to_string())))?;
    if messages.is_empty() || messages.len() > MAX_BATCH {
        return Err(McpError::Envelope(EnvelopeError::Invalid(
            "a batch holds 1 to 32 messages",
        )));
    }
    let mut answers: Vec<Box<RawValue>> = Vec::new();
    for message in &messages {
        let mut element = AuditRecord::begin(
            record.level,
            record.mcp.transport,
            record
                .source_ips
                .first()
                .copied()
                .unwrap_or(incoming.source_ip),
            record.user_agent.clone(),
        );
        element.trace_parent = record.trace_parent.clone();
        let one = Incoming {
            caller: Arc::clone(&incoming.caller),
            source_ip: incoming.source_ip,
            transport: incoming.transport,
            session_id: incoming.session_id,
            protocol_version: version.as_deref(),
            method_header: Vec::new(),
            name_header: Vec::new(),
            headers: false,
            body: message.get().as_bytes(),
            gone: incoming.gone.clone(),
            // A batch's answers go back together: nothing can be sent before them.
            peer: None,
        };
        let is_initialize =
            serde_json::from_str::<Value>(message.get()).is_ok_and(|m| m["method"] == "initialize");
        let answer = if is_initialize {
            let text = "initialize cannot be part of a batch";
            element.fail(Outcome::Invalid, text);
            Some(jsonrpc::error(None, code::INVALID_REQUEST, text))
        } else {
            match handle_one(gateway, one, &mut element).await {
                Ok(Reply::Message { body, .. }) => Some(body),
                Ok(Reply::Accepted | Reply::Batch { .. }) => None,
                Err(error) => {
                    let outcome = match error {
                        McpError::InsufficientScope { .. } => Outcome::Denied,
                        _ => Outcome::Invalid,
                    };
                    element.fail(outcome, error.to_string());
                    Some(jsonrpc::error_with_data(
                        error.request_id(),
                        error.code(),
                        error.to_string(),
                        error.data(),
                    ))
                }
            }
        };
        // Nothing is answered that was not recorded.
        let answer = match gateway.audit.write(&mut element).await {
            Ok(()) => answer,
            Err(error) => {
                tracing::error!(%error, audit.id = %element.audit_id, "audit write failed; refusing the answer");
                answer.map(|_| {
                    jsonrpc::error(
                        element.mcp.request_id.as_ref(),
                        code::INTERNAL_ERROR,
                        "kubegate could not write its audit record, so it refuses to answer",
                    )
                })
            }
        };
        answers.extend(answer);
    }
    record.mcp.method = Some(format!("batch of {}", messages.len()));
    let body = serde_json::value::to_raw_value(&answers).unwrap_or_default();
    Ok(Reply::Batch {
        body: (!answers.is_empty()).then_some(body),
    })
}

/// Handles one message.
async fn handle_one(
    gateway: &Gateway,
    incoming: Incoming<'_>,
    record: &mut AuditRecord,
) -> Result<Reply, McpError> {
    let caller = &incoming.caller;
    record.user = Some(AuditUser::of(caller));
    // Errors returned from here are recorded once, by the transport that answers them.
    let message = jsonrpc::parse(incoming.body)?;
    let (id, method, mut params) = match message {
        Message::Request { id, method, params } => (Some(id), method, params.unwrap_or_default()),
        Message::Notification { method, params } => (None, method, params.unwrap_or_default()),
        Message::Response { id, outcome } => {
            // The answer to a request kubegate sent this caller; any other is dropped.
            let taken = gateway.peers.answer(&caller.username, &id, outcome);
            tracing::debug!(taken, id = %id, "a client's response");
            return Ok(Reply::Accepted);
        }
    };
    record.mcp.method = Some(method.clone());
    record.mcp.request_id = id.clone();
    if let Some(parent) = crate::telemetry::TraceParent::from_meta(&params) {
        record.trace_parent = Some(parent);
    }
    let (wire, sampling) = match wire::recognise(&incoming, &method, &params) {
        wire::Recognised::Stateless => {
            let version = wire::validate(&incoming, id.as_ref(), &method, &mut params)?;
            (Wire::Stateless { version }, false)
        }
        wire::Recognised::Initialize => {
            initialize_wire(gateway, &incoming, id.as_ref(), &method, record)?
        }
    };
    let progress_token = params
        .get("_meta")
        .and_then(|meta| meta.get("progressToken"))
        .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
        .cloned();
    record.mcp.protocol_version = Some(wire.version().to_owned());
    let Some(id) = id else {
        // A client cancelling one of its own requests in flight.
        if method == "notifications/cancelled"
            && let Some(request) = params.get("requestId")
        {
            let cancelled = gateway.inflight.cancel(&caller.username, request);
            tracing::debug!(cancelled, request = %request, "notifications/cancelled");
        }
        // Notifications need no answer.
        return Ok(Reply::Accepted);
    };
    // Before anything is decided or run: the token must carry the scopes the request needs.
    if let Err(insufficient) = gateway.auth.check_scopes(caller, &method, &params) {
        return Err(McpError::InsufficientScope {
            id: Some(id),
            insufficient,
        });
    }
    let _tracked = gateway
        .inflight
        .track(&caller.username, &id, &incoming.gone);
    let exchange = Exchange {
        gateway,
        caller,
        facts: RequestFacts {
            transport: incoming.transport,
            source_ip: incoming.source_ip,
            protocol_version: wire.version().to_owned(),
            session_id: incoming.session_id.map(str::to_owned),
            time: record.request_received_timestamp,
        },
        id,
        gone: incoming.gone.clone(),
        wire,
        peer_out: incoming.peer.clone(),
        sampling,
        progress_token,
    };
    let mut session_id = None;
    let ex = &exchange;
    let stateless = ex.wire.is_stateless();
    let body = match method.as_str() {
        "initialize" if !stateless => {
            let version = negotiate(&params);
            let sampling = params
                .get("capabilities")
                .and_then(|c| c.get("sampling"))
                .is_some_and(Value::is_object);
            let opened = gateway.sessions.open(&caller.username, version, sampling);
            record.mcp.session_id = Some(opened.clone());
            record.mcp.protocol_version = Some(version.to_owned());
            session_id = Some(opened);
            jsonrpc::result(&ex.id, initialize_result(version))
        }
        // Exactly `{}`: these two carry nothing back.
        "ping" | "logging/setLevel" if !stateless => jsonrpc::result(&ex.id, json!({})),
        "server/discover" if stateless => ex.result(wire::discover_result()),
        "tools/list" => ex.list_result(tools_list(
            &gateway.policy.listed(caller),
            &gateway.clusters,
        )),
        "tools/call" => calls::call_tool(ex, &params, record).await,
        "resources/list" => {
            let resources = tool::resources::list(|uri, ty| {
                let arguments = json!({ "uri": uri });
                gateway
                    .policy
                    .could_permit(caller, READ_RESOURCE, ty, &arguments, &ex.facts)
            });
            ex.list_result(json!({ "resources": resources }))
        }
        "resources/templates/list" => {
            let listed = gateway.policy.listed(caller);
            let readable = listed.possible_on(READ_RESOURCE, ResourceType::Object);
            ex.list_result(json!({ "resourceTemplates": tool::resources::templates(readable) }))
        }
        "resources/read" => calls::read_resource(ex, &params, record).await,
        "prompts/list" => {
            let listed = gateway.policy.listed(caller);
            let prompts = tool::prompts::list(
                listed.possible_on(GET_PROMPT, ResourceType::Namespace),
                listed.possible_on(GET_PROMPT, ResourceType::Cluster),
                gateway.clusters.several(),
            );
            ex.list_result(json!({ "prompts": prompts }))
        }
        "prompts/get" => prompts::get(ex, &params, record),
        "completion/complete" => completion::complete(ex, &params, record).await,
        other => {
            let message = if stateless && wire::REMOVED_METHODS.contains(&other) {
                format!(
                    "`{other}` is not a method of the {} revision",
                    ex.wire.version()
                )
            } else {
                format!("unknown method `{other}`")
            };
            record.fail(Outcome::Invalid, message.clone());
            return Ok(Reply::Message {
                body: jsonrpc::error(Some(&ex.id), code::METHOD_NOT_FOUND, message),
                session_id: None,
                not_found: stateless,
            });
        }
    };
    Ok(Reply::Message {
        body,
        session_id,
        not_found: false,
    })
}

/// The initialize revisions' rules: a known version, a live session of this caller, and a
/// header that agrees with the session.
fn initialize_wire(
    gateway: &Gateway,
    incoming: &Incoming<'_>,
    id: Option<&Value>,
    method: &str,
    record: &mut AuditRecord,
) -> Result<(Wire, bool), McpError> {
    let header = incoming.protocol_version.map(str::trim);
    if let Some(version) = header
        && !PROTOCOL_VERSIONS.contains(&version)
    {
        return Err(McpError::UnsupportedVersion {
            id: id.cloned(),
            requested: version.to_owned(),
        });
    }
    let resumed = match incoming.session_id {
        Some(session) if method != "initialize" => {
            record.mcp.session_id = Some(session.to_owned());
            Some(
                gateway
                    .sessions
                    .resume_session(session, &incoming.caller.username)
                    .ok_or(McpError::SessionNotFound { id: id.cloned() })?,
            )
        }
        _ => None,
    };
    let sampling = resumed.as_ref().is_some_and(|s| s.sampling);
    let session_version = resumed.map(|s| s.version);
    if let (Some(session), Some(header)) = (&session_version, header)
        && session != header
    {
        return Err(McpError::VersionMismatch {
            id: id.cloned(),
            session: session.clone(),
            header: header.to_owned(),
        });
    }
    let version = session_version
        .or_else(|| header.map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_HTTP_VERSION.to_owned());
    Ok((Wire::Initialize { version }, sampling))
}

impl Exchange<'_> {
    /// A successful result, as the revision has results look.
    pub(crate) fn result(&self, result: Value) -> jsonrpc::Response {
        jsonrpc::result(&self.id, self.wire.decorate(result, None))
    }

    /// A list result: with the stateless revision's caching hints (lists vary by caller and by
    /// policy set: private, and short-lived).
    pub(crate) fn list_result(&self, result: Value) -> jsonrpc::Response {
        jsonrpc::result(
            &self.id,
            self.wire.decorate(result, Some(wire::LIST_TTL_MS)),
        )
    }

    /// A resource's contents: live, so not to be kept (a zero lifetime), and the caller's own.
    pub(crate) fn read_result(&self, result: Value) -> jsonrpc::Response {
        jsonrpc::result(&self.id, self.wire.decorate(result, Some(0)))
    }

    /// A tool result the model can read: text content, structured content if any (already
    /// encoded: spliced in, not encoded again), flagged as an error or not.
    pub(crate) fn tool_result(
        &self,
        text: &str,
        structured: Option<&RawValue>,
        is_error: bool,
    ) -> jsonrpc::Response {
        let stateless = self.wire.is_stateless();
        tool_result_as(&self.id, text, structured, is_error, stateless)
    }
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

/// What kubegate can do, as `initialize` and `server/discover` declare it. Nothing is
/// subscribed to or announced as changed: lists are worked out per call.
pub fn capabilities(stateless: bool) -> Value {
    let mut capabilities = json!({
        "tools": {},
        "resources": {},
        "prompts": {},
        "completions": {},
    });
    if !stateless {
        capabilities["logging"] = json!({});
    }
    capabilities
}

fn initialize_result(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": capabilities(false),
        "serverInfo": wire::server_info(),
        "instructions": "Kubernetes tools, run as you: every call is checked by policy and by \
                         Kubernetes RBAC, and audited. Start with list-namespaces to see where \
                         you may work.",
    })
}

/// The tools some call of this caller could be permitted. With several clusters, each tool
/// but `list-clusters` takes `context`; with one, neither `context` nor `list-clusters` is
/// shown (a small model is not asked to choose among one).
fn tools_list(listed: &Listed, clusters: &Clusters) -> Value {
    let several = clusters.several();
    let context = several.then(|| {
        json!({
            "type": "string",
            "description": format!(
                "The cluster to act on: a name list-clusters shows. Without it, the default \
                 cluster, `{}`.",
                clusters.default_cluster().name
            ),
        })
    });
    let tools: Vec<Value> = tool::CATALOG
        .iter()
        .filter(|spec| listed.possible(spec.name))
        .filter(|spec| several || spec.name != tool::LIST_CLUSTERS)
        .map(|spec| {
            let mut schema = tool::input_schema(spec.name)
                .cloned()
                .unwrap_or(Value::Null);
            if let Some(context) = context
                .as_ref()
                .filter(|_| spec.name != tool::LIST_CLUSTERS)
                && let Some(properties) = schema
                    .as_object_mut()
                    .map(|s| s.entry("properties").or_insert_with(|| json!({})))
                    .and_then(Value::as_object_mut)
            {
                properties.insert("context".to_owned(), context.clone());
            }
            spec.describe(&schema)
        })
        .collect();
    json!({ "tools": tools })
}

/// A tool result as an initialize revision writes it.
pub fn tool_result(
    id: &Value,
    text: &str,
    structured: Option<&RawValue>,
    is_error: bool,
) -> jsonrpc::Response {
    tool_result_as(id, text, structured, is_error, false)
}

fn tool_result_as(
    id: &Value,
    text: &str,
    structured: Option<&RawValue>,
    is_error: bool,
    stateless: bool,
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
        #[serde(skip_serializing_if = "Option::is_none")]
        result_type: Option<&'static str>,
        #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
        meta: Option<Value>,
    }
    jsonrpc::result(
        id,
        CallToolResult {
            content: [Text { kind: "text", text }],
            structured,
            is_error,
            result_type: stateless.then_some(wire::COMPLETE),
            meta: stateless.then(wire::result_meta),
        },
    )
}

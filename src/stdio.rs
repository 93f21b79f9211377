//! Serves MCP over stdio for a local client (Claude Desktop and the like): one JSON-RPC message
//! per line on stdin, each answer one line on stdout (logs go to stderr).
//!
//! There is no token: the caller is the one configured in `[stdio]` (or, without it, the local
//! OS user), stated as such in every audit record. Everything else is as over HTTPS: each call
//! is decided by the policies, run as the caller through impersonation, and recorded; an answer
//! whose record cannot be written is not given.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::audit::{AuditRecord, AuditUser, Outcome};
use crate::auth::Caller;
use crate::config::StdioConfig;
use crate::gateway::Gateway;
use crate::mcp::{self, Incoming, Reply, jsonrpc};

const TRANSPORT: &str = "stdio";
/// The longest line read (a message larger than this is refused, and the line skipped).
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Who the stdio caller is, and where that came from.
pub struct StdioCaller {
    pub caller: Arc<Caller>,
    /// `stdio configuration` or `local OS user`.
    pub source: &'static str,
}

impl StdioCaller {
    /// The configured caller, or the local OS user (`$USER`) in no groups and no tenant.
    pub fn from_config(config: Option<&StdioConfig>) -> StdioCaller {
        match config {
            Some(stdio) => StdioCaller {
                caller: Arc::new(Caller {
                    username: stdio.user.clone(),
                    groups: stdio.groups.clone(),
                    tenant: stdio.tenant.clone(),
                    email: stdio.email.clone(),
                    claims: Default::default(),
                    ..Default::default()
                }),
                source: "stdio configuration",
            },
            None => StdioCaller {
                caller: Arc::new(Caller {
                    username: std::env::var("USER")
                        .or_else(|_| std::env::var("LOGNAME"))
                        .unwrap_or_else(|_| "local-user".to_owned()),
                    groups: Vec::new(),
                    tenant: String::new(),
                    email: None,
                    claims: Default::default(),
                    ..Default::default()
                }),
                source: "local OS user",
            },
        }
    }
}

/// Why serving stdio stopped.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("cannot read from stdin")]
    Read(#[source] std::io::Error),
    #[error("cannot write to stdout")]
    Write(#[source] std::io::Error),
    #[error("the caller's name {0:?} is one Kubernetes reserves or cannot carry in a header")]
    Caller(String),
}

/// Answers messages from `input` on `output` until `input` ends.
pub async fn serve(
    gateway: &Gateway,
    who: &StdioCaller,
    mut input: impl AsyncBufRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
) -> Result<(), StdioError> {
    let name = &who.caller.username;
    if name.starts_with("system:") || name.trim() != name || name.is_empty() {
        return Err(StdioError::Caller(name.clone()));
    }
    let mut negotiated: Option<String> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut input)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
            .map_err(StdioError::Read)?;
        if read == 0 {
            return Ok(());
        }
        if line.len() > MAX_LINE_BYTES && !line.ends_with(b"\n") {
            // Skip the rest of the oversized line.
            let mut rest = Vec::new();
            input
                .read_until(b'\n', &mut rest)
                .await
                .map_err(StdioError::Read)?;
            let refusal = jsonrpc::error(
                None,
                jsonrpc::code::INVALID_REQUEST,
                format!("a message is larger than {MAX_LINE_BYTES} bytes"),
            );
            write_line(&mut output, refusal.get()).await?;
            continue;
        }
        let body = line.trim_ascii();
        if body.is_empty() {
            continue;
        }
        if let Some(answer) = exchange(gateway, who, body, &mut negotiated).await {
            write_line(&mut output, &answer).await?;
        }
    }
}

/// Handles one message and writes its audit record; the line to answer, if any.
async fn exchange(
    gateway: &Gateway,
    who: &StdioCaller,
    body: &[u8],
    negotiated: &mut Option<String>,
) -> Option<String> {
    let mut record = AuditRecord::begin(
        gateway.audit.level(),
        TRANSPORT,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        None,
    );
    let incoming = Incoming {
        caller: Arc::clone(&who.caller),
        source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        transport: TRANSPORT,
        session_id: None,
        protocol_version: negotiated.as_deref(),
        method_header: Vec::new(),
        name_header: Vec::new(),
        headers: false,
        body,
        gone: tokio_util::sync::CancellationToken::new(),
        // One message at a time on stdio: nothing can go back before the answer.
        peer: None,
    };
    let outcome = mcp::handle(gateway, incoming, &mut record).await;
    if let Some(user) = record.user.as_mut() {
        user.source = Some(who.source);
    } else {
        let mut user = AuditUser::of(&who.caller);
        user.source = Some(who.source);
        record.user = Some(user);
    }
    let answer = match outcome {
        Ok(Reply::Message { body, .. }) => {
            if record.mcp.method.as_deref() == Some("initialize")
                && let Some(version) = serde_json::from_str::<Value>(body.get())
                    .ok()
                    .and_then(|v| v["result"]["protocolVersion"].as_str().map(str::to_owned))
            {
                *negotiated = Some(version);
            }
            Some(body.get().to_owned())
        }
        Ok(Reply::Accepted) => None,
        // Each message of a batch was recorded on its own.
        Ok(Reply::Batch { body }) => return body.map(|b| b.get().to_owned()),
        Err(error) => {
            record.fail(Outcome::Invalid, error.to_string());
            let refusal = jsonrpc::error_with_data(
                error.request_id(),
                error.code(),
                error.to_string(),
                error.data(),
            );
            Some(refusal.get().to_owned())
        }
    };
    if let Err(error) = gateway.audit.write(&mut record).await {
        tracing::error!(%error, audit.id = %record.audit_id, "audit write failed; refusing the answer");
        let id = record.mcp.request_id.clone();
        let refusal = jsonrpc::error(
            id.as_ref(),
            jsonrpc::code::INTERNAL_ERROR,
            "kubegate could not write its audit record, so it refuses to answer",
        );
        return answer.map(|_| refusal.get().to_owned());
    }
    answer
}

async fn write_line(output: &mut (impl AsyncWrite + Unpin), line: &str) -> Result<(), StdioError> {
    output
        .write_all(line.as_bytes())
        .await
        .map_err(StdioError::Write)?;
    output.write_all(b"\n").await.map_err(StdioError::Write)?;
    output.flush().await.map_err(StdioError::Write)
}

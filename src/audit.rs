//! Writes one audit record per MCP request as a JSON line, shaped after Kubernetes' `audit.k8s.io/v1`
//! `Event` so that people who read the cluster's audit log can read kubegate's without a manual.
//!
//! Each record is one line handed to the kernel (one `write_all` on a file opened for appending)
//! before the response leaves, so a killed kubegate process loses no record it has answered for.
//! A record that cannot be written turns the response into an error: nothing is answered that
//! was not recorded.
//!
//! A call that changes the cluster (a write or destructive tool) first writes a
//! `RequestReceived` record (who, what, the decision) and flushes it to disk
//! ([`AuditLog::write_ahead`]); only the [`WriteAhead`] proof this returns lets the Kubernetes
//! client send a change. If that record cannot be written, the call is refused. Its
//! `ResponseComplete` record follows, also flushed to disk.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use crate::config::AuditLevel;

/// Why an audit record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open the audit log {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write to the audit log")]
    Write(#[source] std::io::Error),
    #[error("cannot encode the audit record")]
    Encode(#[source] serde_json::Error),
}

/// One MCP request, from arrival to answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub level: AuditLevel,
    #[serde(rename = "auditID")]
    pub audit_id: String,
    pub stage: &'static str,
    pub request_received_timestamp: jiff::Timestamp,
    pub stage_timestamp: jiff::Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<AuditUser>,
    #[serde(rename = "sourceIPs")]
    pub source_ips: Vec<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    pub mcp: AuditMcp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<AuditDecision>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kube: Vec<KubeCall>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For an unauthenticated request: how many from the same address were left unrecorded
    /// since the previous record of one (a flood is counted, not written line by line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unrecorded_before: Option<u64>,
    /// From the request's arrival to the record, in microseconds.
    pub latency_micros: u64,
    /// Whether this record must reach the disk before its answer leaves (calls that change
    /// the cluster).
    #[serde(skip)]
    pub durable: bool,
}

/// The caller, as kubegate impersonated them.
#[derive(Debug, Clone, Serialize)]
pub struct AuditUser {
    pub username: String,
    pub groups: Vec<String>,
    pub tenant: String,
    /// Where the identity came from when it is not a verified token (`stdio configuration`,
    /// `local OS user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
}

impl AuditUser {
    /// The caller as a record names them.
    pub fn of(caller: &crate::auth::Caller) -> AuditUser {
        AuditUser {
            username: caller.username.clone(),
            groups: caller.groups.clone(),
            tenant: caller.tenant.clone(),
            source: None,
        }
    }
}

/// What was asked over MCP.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditMcp {
    pub transport: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
}

/// The policy decision and what decided it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditDecision {
    pub allowed: bool,
    pub action: String,
    pub resource: String,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Every resource the call was permitted on, when more than one (a manifest's objects,
    /// the namespaces a caller may list).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Decisions made while the call ran (the namespaces of a cluster-wide list's items, the
    /// objects of a Helm release), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub later: Vec<AuditSubDecision>,
    /// Further actions decided for the call, such as `reveal-secrets`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<AuditGrant>,
    /// The version (a short hash of the sources) of the policy set that decided.
    pub policy_version: String,
    /// What the shadow policy set would have decided, when one is loaded (never enforced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<AuditShadow>,
}

/// A shadow set's would-be decision for a call.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuditShadow {
    pub allowed: bool,
    /// Whether it decided as the enforced set did (for calls that see what they may of several
    /// namespaces: the same ones).
    pub agrees: bool,
    pub policies: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

/// A decision made while a permitted call ran.
#[derive(Debug, Clone, Serialize)]
pub struct AuditSubDecision {
    pub resource: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Whether the shadow set would have allowed it, when one is loaded.
    #[serde(rename = "shadowAllowed", skip_serializing_if = "Option::is_none")]
    pub shadow_allowed: Option<bool>,
}

/// A further action decided for a call (`reveal-secrets`), and the policies that decided it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditGrant {
    pub action: &'static str,
    pub resource: String,
    pub allowed: bool,
    pub policies: Vec<String>,
    /// Whether the shadow set would have granted it, when one is loaded.
    #[serde(rename = "shadowAllowed", skip_serializing_if = "Option::is_none")]
    pub shadow_allowed: Option<bool>,
}

/// One request kubegate made to the API server on the caller's behalf.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KubeCall {
    pub verb: &'static str,
    pub uri: String,
    pub code: u16,
    /// The API server's `Audit-Id` response header: the join key to the cluster's audit log.
    #[serde(rename = "auditID", skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
    /// From sending the request to the end of the answer's body, in microseconds.
    pub latency_micros: u64,
}

/// How the request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Answered as asked (for a tool, the tool ran, even if Kubernetes refused it).
    Success,
    /// The policy refused it.
    Denied,
    /// No valid token.
    Unauthenticated,
    /// Refused for load: too many calls in flight, or too many unverified tokens.
    Throttled,
    /// The client went away before a call that changes nothing was sent to Kubernetes.
    Cancelled,
    /// A malformed request, unknown method or tool, or invalid arguments.
    Invalid,
    /// kubegate or Kubernetes failed.
    Error,
}

impl AuditRecord {
    /// Starts a record for a request that arrived just now.
    pub fn begin(
        level: AuditLevel,
        transport: &'static str,
        source_ip: IpAddr,
        user_agent: Option<String>,
    ) -> AuditRecord {
        let now = jiff::Timestamp::now();
        AuditRecord {
            kind: "Event",
            api_version: "audit.kubegate.io/v1",
            level,
            audit_id: uuid::Uuid::new_v4().to_string(),
            stage: "ResponseComplete",
            request_received_timestamp: now,
            stage_timestamp: now,
            user: None,
            source_ips: vec![source_ip],
            user_agent,
            mcp: AuditMcp {
                transport,
                ..AuditMcp::default()
            },
            arguments: None,
            decision: None,
            kube: Vec::new(),
            outcome: Outcome::Success,
            error: None,
            unrecorded_before: None,
            latency_micros: 0,
            durable: false,
        }
    }

    /// Keeps the call's arguments as much as the record's level allows. Callers pass arguments
    /// already redacted by the tool's own rules (Secret values in a manifest are masked).
    pub fn set_arguments(&mut self, arguments: &Value) {
        self.arguments = match self.level {
            AuditLevel::None => None,
            AuditLevel::Metadata => match arguments {
                Value::Object(map) => Some(Value::from(
                    map.keys()
                        .map(|k| Value::from(k.as_str()))
                        .collect::<Vec<_>>(),
                )),
                _ => None,
            },
            AuditLevel::Request => Some(arguments.clone()),
        };
    }

    /// Marks the record as failed with an outcome and a message.
    pub fn fail(&mut self, outcome: Outcome, message: impl Into<String>) {
        self.outcome = outcome;
        self.error = Some(message.into());
    }

    /// Cuts what a caller controls to a bounded size: the user agent, the error message (which
    /// may quote the request), the MCP method, tool, session and request ids.
    fn cap(&mut self) {
        let cut = |text: &mut String| {
            if text.len() > MAX_FIELD_BYTES {
                let mut end = MAX_FIELD_BYTES;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                text.push_str("…<cut>");
            }
        };
        for field in [
            self.user_agent.as_mut(),
            self.error.as_mut(),
            self.mcp.method.as_mut(),
            self.mcp.tool.as_mut(),
            self.mcp.session_id.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            cut(field);
        }
        if let Some(id) = self.mcp.request_id.as_mut() {
            match id {
                Value::String(text) => cut(text),
                Value::Number(_) | Value::Null => {}
                _ => *id = Value::from("<not a string or number>"),
            }
        }
    }
}

/// Proof that a call's `RequestReceived` record is on disk. Only [`AuditLog::write_ahead`]
/// makes one; the Kubernetes client sends changes only with one.
#[derive(Debug)]
pub struct WriteAhead {
    _on_disk: (),
}

/// The append-only audit log file.
pub struct AuditLog {
    file: Mutex<std::fs::File>,
    level: AuditLevel,
    unauthenticated: Option<Unauthenticated>,
}

/// Records of unauthenticated requests, per source address: a token bucket, and how many were
/// left out since the last one written.
struct Unauthenticated {
    limiter: governor::DefaultKeyedRateLimiter<IpAddr>,
    left_out: Mutex<HashMap<IpAddr, u64>>,
}

/// Addresses whose left-out counts are kept; beyond, the counts start over.
const REMEMBERED_ADDRESSES: usize = 65_536;

/// The longest user agent, error message or id a record keeps (a caller cannot make one
/// record large).
const MAX_FIELD_BYTES: usize = 1024;

impl AuditLog {
    /// Opens (creating if needed, owner-only) the audit log for appending.
    pub fn open(path: &Path, level: AuditLevel) -> Result<AuditLog, AuditError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| AuditError::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(AuditLog {
            file: Mutex::new(file),
            level,
            unauthenticated: None,
        })
    }

    /// Records at most `per_second` unauthenticated requests per source address (twice that in
    /// a burst); the rest are counted into the next record.
    pub fn with_unauthenticated_rate(mut self, per_second: u32) -> AuditLog {
        let rate = std::num::NonZeroU32::new(per_second);
        self.unauthenticated = rate.map(|rate| {
            let burst = std::num::NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
            Unauthenticated {
                limiter: governor::RateLimiter::keyed(
                    governor::Quota::per_second(rate).allow_burst(burst),
                ),
                left_out: Mutex::new(HashMap::new()),
            }
        });
        self
    }

    /// Whether to write the record of an unauthenticated request from `source` now: if so,
    /// with how many were left out before it; if not, it is counted.
    pub fn admit_unauthenticated(&self, source: IpAddr) -> Option<u64> {
        let Some(flood) = &self.unauthenticated else {
            return Some(0);
        };
        let mut left_out = flood.left_out.lock().unwrap_or_else(|e| e.into_inner());
        if flood.limiter.check_key(&source).is_ok() {
            return Some(left_out.remove(&source).unwrap_or(0));
        }
        if left_out.len() >= REMEMBERED_ADDRESSES {
            left_out.clear();
            flood.limiter.retain_recent();
        }
        *left_out.entry(source).or_insert(0) += 1;
        None
    }

    /// The level records are written at.
    pub fn level(&self) -> AuditLevel {
        self.level
    }

    /// Stamps and appends one record as one line (flushed to disk if the record is durable).
    pub fn write(&self, record: &mut AuditRecord) -> Result<(), AuditError> {
        record.cap();
        record.stage_timestamp = jiff::Timestamp::now();
        let elapsed = record
            .stage_timestamp
            .duration_since(record.request_received_timestamp);
        record.latency_micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.append(record, record.durable)
    }

    /// Writes the `RequestReceived` stage of a call that is about to change the cluster, and
    /// flushes it to disk. Marks the record durable, so its `ResponseComplete` is flushed too.
    pub fn write_ahead(&self, record: &mut AuditRecord) -> Result<WriteAhead, AuditError> {
        record.durable = true;
        let mut ahead = record.clone();
        ahead.stage = "RequestReceived";
        ahead.stage_timestamp = jiff::Timestamp::now();
        self.append(&ahead, true)?;
        Ok(WriteAhead { _on_disk: () })
    }

    fn append(&self, record: &AuditRecord, sync: bool) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record).map_err(AuditError::Encode)?;
        line.push(b'\n');
        // A poisoned lock only means another writer panicked mid-call; the file itself is fine.
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line).map_err(AuditError::Write)?;
        if sync {
            file.sync_data().map_err(AuditError::Write)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! Writes one audit record per MCP request as a JSON line, shaped after Kubernetes' `audit.k8s.io/v1`
//! `Event` so that people who read the cluster's audit log can read kubegate's without a manual.
//!
//! Records go to one [`writer`], which chains every line to the one before and signs periodic
//! checkpoints ([`chain`]), so `kubegate audit verify` finds an edited, dropped, inserted or
//! reordered line and a cut tail. Its thread writes the records that must be durable, and any
//! record while the file is busy or records wait for it; otherwise a read's record is appended
//! by its own call. A call is answered only once the writer has its record in the file, so
//! nothing is answered that was not recorded (except, when configured with
//! `on_read_failure = "continue"`, a read whose record the log could not take; and
//! unauthenticated refusals beyond their rate, which are counted into the next record).
//!
//! A call that changes the cluster (a write or destructive tool) first writes a
//! `RequestReceived` record (who, what, the decision) and waits until it is on disk
//! ([`AuditLog::write_ahead`]); only the [`WriteAhead`] proof this returns lets the Kubernetes
//! client send a change. If that record cannot be written, the call is refused. Its
//! `ResponseComplete` record follows, also on disk before the answer leaves. Concurrent calls
//! share one `fdatasync` (group commit).

pub mod chain;
pub mod verify;
pub mod writer;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::config::{AuditConfig, AuditLevel, ReadFailure};
pub mod review;
use writer::Message;

/// Why an audit record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Open(#[from] writer::OpenError),
    #[error("the audit signing key cannot be used")]
    Key(#[from] chain::KeyError),
    #[error("cannot start the audit writer")]
    Thread(#[source] std::io::Error),
    #[error("{0}")]
    Failed(String),
    #[error("the audit log is not keeping up (too many records waiting)")]
    Backlog,
    #[error("the audit log is closed")]
    Stopped,
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
    /// The cluster the call went to (its configured name, the Cedar `Cluster` id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
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
    /// The caller's trace context, the parent of this request's spans.
    #[serde(skip)]
    pub trace_parent: Option<crate::telemetry::TraceParent>,
    /// When the policy decided, and how long it took (for the trace).
    #[serde(skip)]
    pub decided: Option<(std::time::SystemTime, Duration)>,
}

/// The caller, as kubegate impersonated them.
#[derive(Debug, Clone, Serialize)]
pub struct AuditUser {
    pub username: String,
    pub groups: Vec<String>,
    pub tenant: String,
    /// The issuer of the caller's token (`iss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
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
            issuer: caller.issuer.clone(),
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
    /// When it was sent (for the trace).
    #[serde(skip)]
    pub started: Option<std::time::SystemTime>,
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
    /// Refused for load: too many calls in flight, too many unverified tokens, or no room
    /// left under the answer memory bound.
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
            cluster: None,
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
            trace_parent: None,
            decided: None,
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
        let cut = |text: &mut String| cut_to(text, MAX_FIELD_BYTES);
        let cut_value = |text: &mut String| cut_to(text, MAX_ARGUMENT_BYTES);
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
        if let Some(arguments) = self.arguments.as_mut() {
            cap_strings(arguments, &cut_value);
            let size = serde_json::to_vec(arguments).map_or(0, |b| b.len());
            if size > MAX_ARGUMENTS_BYTES {
                *arguments = serde_json::json!({
                    "<cut>": format!("{size} bytes of arguments, over the record's limit")
                });
            }
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

/// Cuts `text` to at most `max` bytes (on a character boundary), marked as cut.
fn cut_to(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("…<cut>");
    }
}

/// Applies `cut` to every string (and key) in a JSON value.
fn cap_strings(value: &mut Value, cut: &impl Fn(&mut String)) {
    match value {
        Value::String(text) => cut(text),
        Value::Array(items) => items.iter_mut().for_each(|v| cap_strings(v, cut)),
        Value::Object(map) => map.values_mut().for_each(|v| cap_strings(v, cut)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Proof that a call's `RequestReceived` record is on disk. Only [`AuditLog::write_ahead`]
/// makes one; the Kubernetes client sends changes only with one.
#[derive(Debug)]
pub struct WriteAhead {
    _on_disk: (),
}

/// The audit log: a handle to its [`writer`] thread, and to the writer itself for reads'
/// records appended in place.
pub struct AuditLog {
    writer: std::sync::mpsc::SyncSender<Message>,
    shared: writer::Shared,
    /// Messages sent to the thread and not yet handled (see [`writer::Writer::run`]).
    queued: Arc<AtomicUsize>,
    sync_reads: bool,
    level: AuditLevel,
    levels: std::collections::BTreeMap<String, AuditLevel>,
    on_read_failure: ReadFailure,
    unauthenticated: Option<Unauthenticated>,
}

/// Records of unauthenticated requests, per source address: a token bucket, and how many were
/// left out since the last one written.
struct Unauthenticated {
    limiter: governor::DefaultKeyedRateLimiter<IpAddr>,
    left_out: Mutex<lru::LruCache<IpAddr, u64>>,
}

/// Addresses whose left-out counts are kept; beyond, the address flooding least recently is
/// forgotten (its next record says nothing of what it had left out).
const REMEMBERED_ADDRESSES: usize = 65_536;

/// The longest user agent, error message or id a record keeps (a caller cannot make one
/// record large).
const MAX_FIELD_BYTES: usize = 1024;

/// The longest string kept of an argument value (a manifest, a patch), and the most bytes of
/// arguments a record keeps in all.
const MAX_ARGUMENT_BYTES: usize = 8 * 1024;
const MAX_ARGUMENTS_BYTES: usize = 64 * 1024;

/// Records waiting for the writer; beyond, records are refused (and so are their calls) rather
/// than queued without bound behind a stalled disk.
const BACKLOG: usize = 16 * 1024;

impl AuditLog {
    /// Opens the log (resuming its chain) and starts its writer thread.
    pub fn open(config: &AuditConfig) -> Result<AuditLog, AuditError> {
        let signer = match &config.signing_key {
            Some(path) => Some(chain::Signer::from_file(path)?),
            None => {
                tracing::warn!(
                    "no audit.signing_key: audit checkpoints are unsigned, so a rewritten log \
                     would go undetected"
                );
                None
            }
        };
        let settings = writer::Settings {
            path: config.path.clone(),
            signer,
            checkpoint_every: config.checkpoint_every.max(1),
            checkpoint_interval: Duration::from_secs(config.checkpoint_interval_seconds.max(1)),
            max_file_bytes: config.max_file_mib.saturating_mul(1024 * 1024),
            sync_reads: config.sync_reads,
        };
        let shared = Arc::new(Mutex::new(writer::Writer::open(settings)?));
        let (sender, messages) = std::sync::mpsc::sync_channel(BACKLOG);
        let thread_writer = Arc::clone(&shared);
        let queued = Arc::new(AtomicUsize::new(0));
        let thread_queued = Arc::clone(&queued);
        std::thread::Builder::new()
            .name("audit-writer".to_owned())
            .spawn(move || {
                writer::Writer::run(
                    thread_writer,
                    messages,
                    thread_queued,
                    crate::metrics::AuditObserver,
                )
            })
            .map_err(AuditError::Thread)?;
        Ok(AuditLog {
            writer: sender,
            shared,
            queued,
            sync_reads: config.sync_reads,
            level: config.level,
            levels: config.levels.clone(),
            on_read_failure: config.on_read_failure,
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
                left_out: Mutex::new(lru::LruCache::new(
                    std::num::NonZeroUsize::new(REMEMBERED_ADDRESSES).expect("non-zero"),
                )),
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
        // Addresses seen once and never again must not grow the limiter without bound.
        if flood.limiter.len() >= REMEMBERED_ADDRESSES {
            flood.limiter.retain_recent();
        }
        if flood.limiter.check_key(&source).is_ok() {
            return Some(left_out.pop(&source).unwrap_or(0));
        }
        *left_out.get_or_insert_mut(source, || 0) += 1;
        None
    }

    /// The level records start at (before their tool is known).
    pub fn level(&self) -> AuditLevel {
        self.level
    }

    /// The level of a tool's records: its own, else its action group's, else the default.
    pub fn level_for(&self, tool: &str, group: &str) -> AuditLevel {
        self.levels
            .get(tool)
            .or_else(|| self.levels.get(group))
            .copied()
            .unwrap_or(self.level)
    }

    /// Stamps and appends one record as one line; returns once the writer has it in the file
    /// (and on disk, if the record is durable). A read whose record cannot be written answers
    /// anyway when so configured (`on_read_failure = "continue"`), the failure logged and
    /// counted.
    pub async fn write(&self, record: &mut AuditRecord) -> Result<(), AuditError> {
        record.cap();
        record.stage_timestamp = jiff::Timestamp::now();
        let elapsed = record
            .stage_timestamp
            .duration_since(record.request_received_timestamp);
        record.latency_micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let result = self.append(record, record.durable).await;
        crate::metrics::request(record);
        crate::telemetry::export(record);
        match result {
            Err(error) if !record.durable && self.on_read_failure == ReadFailure::Continue => {
                tracing::error!(%error, audit.id = %record.audit_id, "audit write failed; answering anyway (audit.on_read_failure = continue)");
                crate::metrics::audit_read_failure_continued();
                Ok(())
            }
            other => other,
        }
    }

    /// Writes the `RequestReceived` stage of a call that is about to change the cluster, and
    /// waits until it is on disk. Marks the record durable, so its `ResponseComplete` is too.
    pub async fn write_ahead(&self, record: &mut AuditRecord) -> Result<WriteAhead, AuditError> {
        record.cap();
        record.durable = true;
        let mut ahead = record.clone();
        ahead.stage = "RequestReceived";
        ahead.stage_timestamp = jiff::Timestamp::now();
        self.append(&ahead, true).await?;
        Ok(WriteAhead { _on_disk: () })
    }

    /// Closes the current file and opens its path again (for logrotate's `create` mode): the
    /// old file ends with a closing checkpoint, the new one continues the chain.
    pub async fn reopen(&self) -> Result<(), AuditError> {
        let (done, answer) = oneshot::channel();
        self.send(Message::Reopen { done })?;
        answer
            .await
            .map_err(|_| AuditError::Stopped)?
            .map_err(AuditError::Failed)
    }

    /// Writes the closing checkpoint and stops the writer; records after this are refused.
    pub async fn close(&self) {
        let (done, answer) = oneshot::channel();
        if self.send(Message::Close { done }).is_ok() {
            let _ = answer.await;
        }
    }

    async fn append(&self, record: &AuditRecord, durable: bool) -> Result<(), AuditError> {
        let object = serde_json::to_vec(record).map_err(AuditError::Encode)?;
        // A record that need not reach the disk (a read's) is appended here when the file is
        // free: one write(2) to the page cache, where the hop to the writer thread and back
        // costs two thread wakes. While the writer holds the file (a group being synced, a
        // rotation) it queues as any other record, so no call waits on a sync it did not need;
        // and while records wait for the thread, it queues behind them, so that the thread is
        // not kept from the file by a stream of appends in place. A rotation, with its sync,
        // is the thread's work too.
        if !durable
            && !self.sync_reads
            && self.queued.load(Ordering::Acquire) == 0
            && let Ok(mut writer) = self.shared.try_lock()
            && !writer.rotation_due()
        {
            return writer
                .append_now(&object, &crate::metrics::AuditObserver)
                .ok_or(AuditError::Stopped)?
                .map_err(AuditError::Failed);
        }
        let (done, answer) = oneshot::channel();
        self.send(Message::Record {
            object,
            durable,
            done,
        })?;
        answer
            .await
            .map_err(|_| AuditError::Stopped)?
            .map_err(AuditError::Failed)
    }

    fn send(&self, message: Message) -> Result<(), AuditError> {
        use std::sync::mpsc::TrySendError;
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.writer.try_send(message).map_err(|error| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            match error {
                TrySendError::Full(_) => AuditError::Backlog,
                TrySendError::Disconnected(_) => AuditError::Stopped,
            }
        })
    }
}

#[cfg(test)]
mod tests;

//! OpenTelemetry traces of every MCP request, made from its audit record once it is written:
//! the same facts, in the MCP semantic conventions, so a trace and an audit line never disagree.
//!
//! One server span per request, named `{mcp.method.name} {gen_ai.tool.name}`, carrying the
//! method, tool, session, protocol revision, JSON-RPC id, the caller (`enduser.id`), tenant,
//! decision and deciding policies, and `error.type` when it did not succeed; below it a span
//! for the policy decision and a client span for each Kubernetes request. The parent is the
//! caller's W3C trace context, from the `traceparent` header or `params._meta`.
//!
//! Export is OTLP (gRPC or HTTP/protobuf), configured by the standard `OTEL_EXPORTER_OTLP_*`
//! and `OTEL_SERVICE_NAME` variables, off when no endpoint is set. Spans are queued to a batch
//! exporter on its own thread: when the collector is slow or down the queue fills and spans are
//! dropped, and no request ever waits for it.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::audit::{AuditRecord, Outcome};

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL `{0}` is not supported: use `grpc` or `http/protobuf`")]
    Protocol(String),
    #[error("cannot build the OTLP exporter")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The exporter while it runs; [`Tracing::shutdown`] flushes what is queued.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// Flushes queued spans (waiting at most a few seconds) and stops exporting.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(%error, "spans still queued at shutdown were not exported");
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Starts exporting if an OTLP endpoint is configured. Must run inside the Tokio runtime (the
/// gRPC exporter's connection lives there).
pub fn start_from_env() -> Result<Option<Tracing>, TelemetryError> {
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v == "none");
    let endpoint =
        env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
    if disabled || endpoint.is_none() {
        return Ok(None);
    }
    let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".to_owned());
    let exporter = match protocol.as_str() {
        "grpc" => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?,
        "http/protobuf" => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?,
        other => return Err(TelemetryError::Protocol(other.to_owned())),
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if env("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("kubegate");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "kubegate");
    if TRACER.set(tracer).is_err() {
        tracing::warn!("tracing was already started; keeping the first exporter");
    }
    tracing::info!(
        otlp.endpoint = endpoint.as_deref().unwrap_or_default(),
        otlp.protocol = %protocol,
        "exporting traces over OTLP"
    );
    Ok(Some(Tracing { provider }))
}

/// The caller's W3C trace context: `traceparent` and, if any, `tracestate`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceParent {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

impl TraceParent {
    /// From `params._meta` (the MCP convention), if it carries a `traceparent`.
    pub fn from_meta(params: &serde_json::Map<String, serde_json::Value>) -> Option<TraceParent> {
        let meta = params.get("_meta")?;
        let traceparent = meta.get("traceparent")?.as_str()?;
        Some(TraceParent {
            traceparent: traceparent.chars().take(128).collect(),
            tracestate: meta
                .get("tracestate")
                .and_then(|v| v.as_str())
                .map(|v| v.chars().take(512).collect()),
        })
    }

    fn context(&self) -> Context {
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), self.traceparent.clone());
        if let Some(state) = &self.tracestate {
            carrier.insert("tracestate".to_owned(), state.clone());
        }
        TraceContextPropagator::new().extract(&carrier)
    }
}

/// Sends a finished request's spans, if tracing is on. Never blocks.
pub fn export(record: &AuditRecord) {
    let Some(tracer) = TRACER.get() else {
        return;
    };
    let parent = record
        .trace_parent
        .as_ref()
        .map_or_else(Context::new, TraceParent::context);
    let start = SystemTime::from(record.request_received_timestamp);
    let end = SystemTime::from(record.stage_timestamp);
    let server = tracer
        .span_builder(span_name(record))
        .with_kind(SpanKind::Server)
        .with_start_time(start)
        .with_attributes(server_attributes(record))
        .start_with_context(tracer, &parent);
    let cx = parent.with_span(server);
    if let Some((at, took)) = record.decided {
        let decision = record.decision.as_ref();
        let mut attributes = vec![KeyValue::new(
            "kubegate.decision",
            if decision.is_some_and(|d| d.allowed) {
                "allow"
            } else {
                "deny"
            },
        )];
        if let Some(decision) = decision {
            attributes.push(KeyValue::new(
                "kubegate.policy.action",
                decision.action.clone(),
            ));
            attributes.push(KeyValue::new(
                "kubegate.policy.ids",
                decision.policies.join(","),
            ));
        }
        let mut span = tracer
            .span_builder("policy decision")
            .with_kind(SpanKind::Internal)
            .with_start_time(at)
            .with_attributes(attributes)
            .start_with_context(tracer, &cx);
        span.end_with_timestamp(at + took);
    }
    for call in &record.kube {
        let method = http_method(call.verb);
        let (path, _) = call.uri.split_once('?').unwrap_or((call.uri.as_str(), ""));
        let mut attributes = vec![
            KeyValue::new("http.request.method", method),
            KeyValue::new("url.path", path.to_owned()),
            KeyValue::new("http.response.status_code", i64::from(call.code)),
            KeyValue::new("kubegate.kube.verb", call.verb),
        ];
        if let Some(namespace) = namespace_of(path) {
            attributes.push(KeyValue::new("k8s.namespace.name", namespace.to_owned()));
        }
        if let Some(cluster) = &record.cluster {
            attributes.push(KeyValue::new("k8s.cluster.name", cluster.clone()));
        }
        if let Some(id) = &call.audit_id {
            attributes.push(KeyValue::new("kubegate.kube.audit_id", id.clone()));
        }
        let started = call.started.unwrap_or(start);
        let mut span = tracer
            .span_builder(method)
            .with_kind(SpanKind::Client)
            .with_start_time(started)
            .with_attributes(attributes)
            .start_with_context(tracer, &cx);
        if call.code == 0 || call.code >= 500 {
            span.set_status(Status::error("the Kubernetes request failed"));
        }
        span.end_with_timestamp(started + Duration::from_micros(call.latency_micros));
    }
    let span = cx.span();
    if record.outcome != Outcome::Success {
        span.set_status(Status::error(record.error.clone().unwrap_or_default()));
    }
    span.end_with_timestamp(end);
}

/// `{method} {tool}`; a tool kubegate does not have is named `other`, so a caller cannot make
/// up span names (the attribute keeps what they sent, capped like the record).
fn span_name(record: &AuditRecord) -> String {
    let method = record.mcp.method.as_deref().unwrap_or("mcp");
    match &record.mcp.tool {
        Some(tool) => {
            let known = crate::tool::spec(tool).map_or("other", |spec| spec.name);
            format!("{method} {known}")
        }
        None => method.to_owned(),
    }
}

fn server_attributes(record: &AuditRecord) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(16);
    let mcp = &record.mcp;
    if let Some(method) = &mcp.method {
        attributes.push(KeyValue::new("mcp.method.name", method.clone()));
    }
    if let Some(tool) = &mcp.tool {
        attributes.push(KeyValue::new("gen_ai.tool.name", tool.clone()));
        attributes.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
    }
    if let Some(session) = &mcp.session_id {
        attributes.push(KeyValue::new("mcp.session.id", session.clone()));
    }
    if let Some(version) = &mcp.protocol_version {
        attributes.push(KeyValue::new("mcp.protocol.version", version.clone()));
    }
    if let Some(id) = &mcp.request_id {
        let id = match id {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        attributes.push(KeyValue::new("jsonrpc.request.id", id));
    }
    attributes.push(KeyValue::new("kubegate.transport", mcp.transport));
    if let Some(cluster) = &record.cluster {
        attributes.push(KeyValue::new("k8s.cluster.name", cluster.clone()));
    }
    if let Some(ip) = record.source_ips.first() {
        attributes.push(KeyValue::new("client.address", ip.to_string()));
    }
    if let Some(user) = &record.user {
        attributes.push(KeyValue::new("enduser.id", user.username.clone()));
        attributes.push(KeyValue::new("kubegate.tenant", user.tenant.clone()));
    }
    if let Some(decision) = &record.decision {
        attributes.push(KeyValue::new(
            "kubegate.decision",
            if decision.allowed { "allow" } else { "deny" },
        ));
        attributes.push(KeyValue::new(
            "kubegate.policy.ids",
            decision.policies.join(","),
        ));
    }
    attributes.push(KeyValue::new("kubegate.audit_id", record.audit_id.clone()));
    if record.outcome != Outcome::Success {
        let kind = serde_json::to_value(record.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        attributes.push(KeyValue::new("error.type", kind));
    }
    attributes
}

/// The HTTP method of a Kubernetes verb.
fn http_method(verb: &str) -> &'static str {
    match verb {
        "create" => "POST",
        "update" => "PUT",
        "patch" => "PATCH",
        "delete" | "deletecollection" => "DELETE",
        _ => "GET",
    }
}

/// The namespace of an API path (`/api/v1/namespaces/{ns}/...`).
fn namespace_of(path: &str) -> Option<&str> {
    let (_, rest) = path.split_once("/namespaces/")?;
    rest.split('/').next().filter(|ns| !ns.is_empty())
}

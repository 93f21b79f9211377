//! Prometheus metrics: requests by method, tool, decision and outcome; latencies of requests,
//! policy decisions and Kubernetes calls (taken from each audit record as it is written); the
//! audit writer's commit latency, group sizes and failures. Served as OpenMetrics text (which
//! Prometheus scrapes) at `/metrics` on their own listener ([`crate::config::MetricsConfig`]),
//! never on the MCP port.
//!
//! Label values are bounded: a tool or method name a caller made up is counted as `other`, so
//! no client can grow the series without limit.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    tool: &'static str,
    decision: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KubeLabels {
    verb: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    synced: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<MethodLabels>,
    policy_seconds: Histogram,
    kube_seconds: Histograms<KubeLabels>,
    audit_commit_seconds: Histograms<SyncLabels>,
    audit_group_records: Histogram,
    audit_failed_records: Counter,
    audit_read_failures_continued: Counter,
}

fn latency_buckets() -> Histogram {
    // 50 µs to about 26 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::with_prefix("kubegate");
        let requests = Family::default();
        registry.register(
            "mcp_requests",
            "MCP requests by method, tool, policy decision and outcome",
            requests.clone(),
        );
        let request_seconds: Histograms<MethodLabels> =
            Family::new_with_constructor(latency_buckets);
        registry.register(
            "mcp_request_duration_seconds",
            "From a request's arrival to its audit record",
            request_seconds.clone(),
        );
        let policy_seconds = latency_buckets();
        registry.register(
            "policy_decision_duration_seconds",
            "Time to decide one call with Cedar",
            policy_seconds.clone(),
        );
        let kube_seconds: Histograms<KubeLabels> = Family::new_with_constructor(latency_buckets);
        registry.register(
            "kube_request_duration_seconds",
            "Kubernetes API requests made as the caller, by verb and status code",
            kube_seconds.clone(),
        );
        let audit_commit_seconds: Histograms<SyncLabels> =
            Family::new_with_constructor(latency_buckets);
        registry.register(
            "audit_commit_duration_seconds",
            "Time to write (and, if synced, fdatasync) one group of audit records",
            audit_commit_seconds.clone(),
        );
        let audit_group_records = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "audit_group_records",
            "Audit records committed together (group commit)",
            audit_group_records.clone(),
        );
        let audit_failed_records = Counter::default();
        registry.register(
            "audit_failed_records",
            "Audit records that could not be written",
            audit_failed_records.clone(),
        );
        let audit_read_failures_continued = Counter::default();
        registry.register(
            "audit_read_failures_continued",
            "Reads answered although their audit record could not be written \
             (audit.on_read_failure = continue)",
            audit_read_failures_continued.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            policy_seconds,
            kube_seconds,
            audit_commit_seconds,
            audit_group_records,
            audit_failed_records,
            audit_read_failures_continued,
        }
    })
}

/// Counts one finished MCP request from its audit record.
pub fn request(record: &crate::audit::AuditRecord) {
    let method = known_method(record.mcp.method.as_deref());
    let tool = record.mcp.tool.as_deref().map_or("", |name| {
        crate::tool::spec(name).map_or("other", |s| s.name)
    });
    let decision = match &record.decision {
        Some(d) if d.allowed => "allowed",
        Some(_) => "denied",
        None => "none",
    };
    let outcome = serde_json::to_value(record.outcome)
        .ok()
        .and_then(|v| OUTCOMES.iter().copied().find(|o| v == *o))
        .unwrap_or("other");
    let metrics = metrics();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            tool,
            decision,
            outcome,
        })
        .inc();
    metrics
        .request_seconds
        .get_or_create(&MethodLabels { method })
        .observe(record.latency_micros as f64 / 1e6);
    for call in &record.kube {
        metrics
            .kube_seconds
            .get_or_create(&KubeLabels {
                verb: call.verb,
                code: call.code,
            })
            .observe(call.latency_micros as f64 / 1e6);
    }
}

const OUTCOMES: &[&str] = &[
    "success",
    "denied",
    "unauthenticated",
    "throttled",
    "cancelled",
    "invalid",
    "error",
];

const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "logging/setLevel",
    "server/discover",
    "completion/complete",
    "notifications/initialized",
    "notifications/cancelled",
    "sse/open",
    "session/delete",
];

fn known_method(method: Option<&str>) -> &'static str {
    match method {
        None => "",
        Some(name) => METHODS
            .iter()
            .copied()
            .find(|m| *m == name)
            .unwrap_or("other"),
    }
}

/// Times one policy decision.
pub fn policy_decision(took: Duration) {
    metrics().policy_seconds.observe(took.as_secs_f64());
}

/// Counts a read answered without its audit record.
pub fn audit_read_failure_continued() {
    metrics().audit_read_failures_continued.inc();
}

/// Reports the audit writer's commits.
pub struct AuditObserver;

impl crate::audit::writer::Observer for AuditObserver {
    fn committed(&self, records: usize, synced: bool, took: Duration) {
        let metrics = metrics();
        let synced = if synced { "true" } else { "false" };
        metrics
            .audit_commit_seconds
            .get_or_create(&SyncLabels { synced })
            .observe(took.as_secs_f64());
        metrics.audit_group_records.observe(records as f64);
    }

    fn failed(&self, records: usize) {
        metrics().audit_failed_records.inc_by(records as u64);
    }
}

/// Everything, as Prometheus text exposition.
pub fn render() -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &metrics().registry);
    text
}

/// Serves `GET /metrics` (OpenMetrics text) on `listener` until `shutdown` completes.
pub async fn serve(listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};
    let answer = |request: hyper::Request<hyper::body::Incoming>| async move {
        // prometheus-client writes OpenMetrics text (`_total` counters, `# EOF`), and Prometheus
        // picks its parser by the content type.
        let (status, kind, body) = match (request.method(), request.uri().path()) {
            (&hyper::Method::GET, "/metrics") => (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                render(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "metrics are at /metrics\n".to_owned(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(kind),
        );
        Ok::<_, std::convert::Infallible>(response)
    };
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let io = hyper_util::rt::TokioIo::new(stream);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(answer);
            let serving = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(Duration::from_secs(5))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(io, service);
            // A scrape is small: a connection that takes longer than this is dropped.
            let _ = tokio::time::timeout(Duration::from_secs(30), serving).await;
        });
    }
}

//! Traces and metrics as an operator's collector and scraper receive them, with kubegate as its
//! own process: spans reach a real OTLP receiver over HTTP/protobuf and over gRPC with the
//! caller's trace as their parent, calls are answered as usual when no collector listens, and
//! `/metrics` parses as Prometheus text with bounded label values.

mod collector;

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use hyper::header::CONTENT_TYPE;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{Value, json};

use crate::support::cluster::{VIEW_ROLE, free_port};
use crate::support::process::{Launch, ServedProcess};
use crate::support::{self, GatewayFiles, GatewayOptions, tenant_namespace};
use collector::{Collector, Protocol, attribute, children, hex, int, server_span, text};

fn options() -> GatewayOptions {
    let mut options = GatewayOptions::default();
    options.http.push("shutdown_delay_seconds = 0".to_owned());
    options
}

/// The environment that points kubegate's exporter at `endpoint`, exporting a batch every
/// `delay_ms` milliseconds (`OTEL_BSP_SCHEDULE_DELAY`).
fn exporting(endpoint: &str, protocol: Protocol, delay_ms: u64) -> Launch {
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_owned()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.name().to_owned()),
        ("OTEL_SERVICE_NAME", "kubegate-e2e".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", delay_ms.to_string()),
    ];
    Launch {
        env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ..Launch::default()
    }
}

fn list_pods(namespace: &str) -> Value {
    json!({"resourceType": "pods", "namespace": namespace})
}

fn call(id: &str, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
}

#[tokio::test]
async fn spans_reach_an_otlp_http_collector_with_the_callers_trace_as_parent() -> Result<()> {
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "tel-http",
        Some("tenant-tel-http"),
        "tel-http-devs",
        VIEW_ROLE,
    )
    .await?;
    let collector = Collector::start(Protocol::Http).await?;
    // A batch delay longer than the test: the spans can only arrive by the flush at SIGTERM.
    let launch = exporting(&collector.endpoint, Protocol::Http, 600_000);
    let served = ServedProcess::start(&options(), launch).await?;
    let token = served.token("alice", &["tel-http-devs"], "tenant-tel-http");
    let client = served.client();

    // In a session, so that the span carries its id and protocol revision.
    let opened = client
        .post(
            Some(&token),
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "telemetry-e2e", "version": "1"}}}),
        )
        .await?;
    ensure!(opened.status == 200, "initialize: {}", opened.text);
    let session = opened
        .headers
        .get("mcp-session-id")
        .context("initialize answered without a session")?
        .to_str()?
        .to_owned();
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let headers = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
        ("traceparent", traceparent.as_str()),
    ];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    client
        .post_raw(
            Some(&token),
            &headers[..4],
            serde_json::to_vec(&initialized)?,
        )
        .await?;
    let allowed = client
        .post_raw(
            Some(&token),
            &headers,
            serde_json::to_vec(&call("allowed-1", "list-resources", list_pods("tel-http")))?,
        )
        .await?;
    ensure!(allowed.status == 200, "{}", allowed.text);
    ensure!(
        allowed.body["result"]["isError"] == false,
        "the call should have succeeded: {}",
        allowed.text
    );
    // Outside the caller's tenant: refused by policy before Kubernetes is asked.
    let denied = client
        .post(
            Some(&token),
            &call("denied-1", "list-resources", list_pods("default")),
        )
        .await?;
    ensure!(
        denied.body["result"]["isError"] == true,
        "the call should have been refused: {}",
        denied.text
    );
    let audit_log = served.audit_log.clone();
    let files = served.stop().await?;

    assert!(collector.refused().is_empty(), "{:?}", collector.refused());
    let spans = collector.spans();
    let server = server_span(&spans, "tools/call list-resources", "allowed-1")?;
    assert_eq!(server.service.as_deref(), Some("kubegate-e2e"));
    let span = &server.span;
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(hex(&span.trace_id), TRACE);
    assert_eq!(hex(&span.parent_span_id), PARENT);
    for (key, value) in [
        ("mcp.method.name", "tools/call"),
        ("gen_ai.tool.name", "list-resources"),
        ("gen_ai.operation.name", "execute_tool"),
        ("mcp.session.id", session.as_str()),
        ("mcp.protocol.version", "2025-11-25"),
        ("jsonrpc.request.id", "allowed-1"),
        ("client.address", "127.0.0.1"),
        ("enduser.id", "alice"),
        ("kubegate.tenant", "tenant-tel-http"),
        ("k8s.cluster.name", "local"),
        ("kubegate.decision", "allow"),
    ] {
        assert_eq!(text(span, key), Some(value), "{key} of {span:?}");
    }
    let policies = text(span, "kubegate.policy.ids").unwrap_or_default();
    assert!(
        policies.contains("tenant-read-own-namespaces"),
        "{policies}"
    );
    assert_eq!(attribute(span, "error.type"), None, "it succeeded");
    // The trace and the audit log name the same request.
    let record = std::fs::read_to_string(&audit_log)?
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|r| r["mcp"]["requestId"] == "allowed-1")
        .context("the allowed call has an audit record")?;
    assert_eq!(
        text(span, "kubegate.audit_id"),
        record["auditID"].as_str(),
        "{record}"
    );

    let below = children(&spans, span);
    let decision = below
        .iter()
        .find(|s| s.name == "policy decision")
        .with_context(|| format!("no policy decision below the server span: {below:?}"))?;
    assert_eq!(text(decision, "kubegate.decision"), Some("allow"));
    let kube: Vec<_> = below
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    let list = kube
        .iter()
        .find(|s| text(s, "url.path") == Some("/api/v1/namespaces/tel-http/pods"))
        .with_context(|| format!("no client span for the pods list: {kube:?}"))?;
    assert_eq!(list.name, "GET");
    assert_eq!(text(list, "http.request.method"), Some("GET"));
    assert_eq!(int(list, "http.response.status_code"), Some(200));
    assert_eq!(text(list, "k8s.namespace.name"), Some("tel-http"));
    // The test gateway fronts one cluster, `local`; its name is on both spans.
    assert_eq!(text(list, "k8s.cluster.name"), Some("local"));

    let refused = &server_span(&spans, "tools/call list-resources", "denied-1")?.span;
    assert_eq!(refused.kind, SpanKind::Server as i32);
    assert_eq!(text(refused, "error.type"), Some("denied"));
    assert_eq!(text(refused, "kubegate.decision"), Some("deny"));
    assert_eq!(text(refused, "enduser.id"), Some("alice"));
    assert_eq!(
        refused.parent_span_id,
        Vec::<u8>::new(),
        "no traceparent: a root span"
    );
    let below = children(&spans, refused);
    assert!(
        below.iter().any(|s| s.name == "policy decision"),
        "{below:?}"
    );
    assert!(
        below.iter().all(|s| s.kind != SpanKind::Client as i32),
        "a refused call asks Kubernetes nothing: {below:?}"
    );
    drop(files);
    Ok(())
}

#[tokio::test]
async fn spans_reach_an_otlp_grpc_collector_with_the_parent_from_params_meta() -> Result<()> {
    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const PARENT: &str = "b7ad6b7169203331";
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "tel-grpc",
        Some("tenant-tel-grpc"),
        "tel-grpc-devs",
        VIEW_ROLE,
    )
    .await?;
    let collector = Collector::start(Protocol::Grpc).await?;
    let launch = exporting(&collector.endpoint, Protocol::Grpc, 100);
    let served = ServedProcess::start(&options(), launch).await?;
    let token = served.token("bob", &["tel-grpc-devs"], "tenant-tel-grpc");
    let mut message = call("grpc-1", "list-resources", list_pods("tel-grpc"));
    message["params"]["_meta"] = json!({"traceparent": format!("00-{TRACE}-{PARENT}-01")});
    let answer = served.client().post(Some(&token), &message).await?;
    ensure!(
        answer.body["result"]["isError"] == false,
        "the call should have succeeded: {}",
        answer.text
    );
    // Exported on the batch schedule, while kubegate runs.
    collector
        .wait_for("tools/call list-resources", "grpc-1")
        .await
        .with_context(|| served.log_text())?;
    served.stop().await?;

    assert!(collector.refused().is_empty(), "{:?}", collector.refused());
    let spans = collector.spans();
    let server = server_span(&spans, "tools/call list-resources", "grpc-1")?;
    assert_eq!(server.service.as_deref(), Some("kubegate-e2e"));
    let span = &server.span;
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(hex(&span.trace_id), TRACE);
    assert_eq!(hex(&span.parent_span_id), PARENT);
    assert_eq!(text(span, "mcp.method.name"), Some("tools/call"));
    assert_eq!(text(span, "gen_ai.tool.name"), Some("list-resources"));
    assert_eq!(text(span, "enduser.id"), Some("bob"));
    assert_eq!(text(span, "kubegate.decision"), Some("allow"));
    let below = children(&spans, span);
    assert!(
        below.iter().any(|s| s.kind == SpanKind::Client as i32
            && text(s, "k8s.namespace.name") == Some("tel-grpc")),
        "{below:?}"
    );
    Ok(())
}

/// Checks the exposition's shape: every line a `# HELP`, a `# TYPE` or a sample of a family
/// typed before it, and `# EOF` last (OpenMetrics, which Prometheus scrapes).
fn check_exposition(text: &str) -> Result<()> {
    use prometheus_parse::LineInfo;
    let mut families: Vec<String> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" {
            ensure!(lines.peek().is_none(), "text after `# EOF`");
            return Ok(());
        }
        match LineInfo::parse(line) {
            LineInfo::Doc { .. } => {}
            LineInfo::Type { metric_name, .. } => {
                // The parser names a histogram by its buckets.
                families.push(metric_name.trim_end_matches("_bucket").to_owned());
            }
            LineInfo::Sample { metric_name, .. } => {
                let known = families.iter().any(|family| {
                    metric_name
                        .strip_prefix(family.as_str())
                        .is_some_and(|suffix| {
                            ["", "_total", "_bucket", "_sum", "_count", "_created"]
                                .contains(&suffix)
                        })
                });
                ensure!(known, "`{line}`: a sample of no declared family");
            }
            LineInfo::Empty | LineInfo::Ignored => bail!("`{line}` is not exposition text"),
        }
    }
    bail!("the exposition does not end with `# EOF`")
}

/// The value of the sample `name` whose labels include all of `labels`.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .and_then(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_bound_their_labels() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "tel-metrics",
        Some("tenant-tel-metrics"),
        "tel-metrics-devs",
        VIEW_ROLE,
    )
    .await?;
    let port = free_port()?;
    let mut options = options();
    options
        .sections
        .push(format!("[metrics]\nlisten = \"127.0.0.1:{port}\""));
    let served = ServedProcess::start(&options, Launch::default()).await?;
    let token = served.token("carol", &["tel-metrics-devs"], "tenant-tel-metrics");
    let client = served.client();
    client
        .call_ok(&token, "list-resources", list_pods("tel-metrics"))
        .await?;
    client
        .call_err(&token, "list-resources", list_pods("default"))
        .await?;
    let made_up = client
        .post(
            Some(&token),
            &call("made-up", "tel-made-up-tool", json!({})),
        )
        .await?;
    ensure!(made_up.status == 200, "{}", made_up.text);

    let scraped = client
        .http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await?;
    assert_eq!(scraped.status(), 200);
    let kind = scraped
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        kind.starts_with("application/openmetrics-text; version=1.0.0"),
        "the body is OpenMetrics and must say so: {kind}"
    );
    let text = scraped.text().await?;
    check_exposition(&text)?;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))?;
    assert!(
        text.contains("# TYPE kubegate_mcp_requests counter"),
        "{text}"
    );

    let requests = |decision: &str, outcome: &str| {
        sample(
            &scrape,
            "kubegate_mcp_requests_total",
            &[
                ("method", "tools/call"),
                ("tool", "list-resources"),
                ("decision", decision),
                ("outcome", outcome),
            ],
        )
        .unwrap_or(0.0)
    };
    assert!(requests("allowed", "success") >= 1.0, "{text}");
    assert!(requests("denied", "denied") >= 1.0, "{text}");
    let durations = sample(
        &scrape,
        "kubegate_mcp_request_duration_seconds_count",
        &[("method", "tools/call")],
    );
    assert!(durations.is_some_and(|n| n >= 2.0), "{text}");
    let groups = sample(&scrape, "kubegate_audit_group_records_count", &[]);
    assert!(groups.is_some_and(|n| n >= 1.0), "{text}");

    // A tool name the caller made up is counted, as `other`, and never becomes a label.
    let other = sample(
        &scrape,
        "kubegate_mcp_requests_total",
        &[("method", "tools/call"), ("tool", "other")],
    );
    assert!(other.is_some_and(|n| n >= 1.0), "{text}");
    assert!(!text.contains("tel-made-up-tool"), "{text}");
    served.stop().await?;
    Ok(())
}

/// What a stopped `kubegate serve` wrote to stderr (its `kubegate-*.log` files).
fn process_log(files: &GatewayFiles) -> Result<String> {
    let mut log = String::new();
    for entry in std::fs::read_dir(files.dir.path())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("kubegate-") && name.ends_with(".log") {
            log.push_str(&std::fs::read_to_string(&path)?);
        }
    }
    Ok(log)
}

#[tokio::test]
async fn calls_are_answered_as_usual_when_no_collector_listens() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "tel-down",
        Some("tenant-tel-down"),
        "tel-down-devs",
        VIEW_ROLE,
    )
    .await?;
    for protocol in [Protocol::Http, Protocol::Grpc] {
        let nobody = format!("http://127.0.0.1:{}", free_port()?);
        let served = ServedProcess::start(&options(), exporting(&nobody, protocol, 50)).await?;
        let token = served.token("dave", &["tel-down-devs"], "tenant-tel-down");
        let client = served.client();
        for _ in 0..5 {
            client
                .call_ok(&token, "list-resources", list_pods("tel-down"))
                .await
                .with_context(|| format!("over {protocol:?}"))?;
            // Past a batch delay, so that exports to nowhere are tried in between.
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        // It also stops cleanly, although what was queued cannot be delivered; and it says why
        // the spans are missing.
        let files = served
            .stop()
            .await
            .with_context(|| format!("{protocol:?}"))?;
        let log = process_log(&files)?;
        assert!(
            log.contains("exporting traces over OTLP"),
            "the exporter was not on: {log}"
        );
        assert!(
            log.contains("BatchSpanProcessor.ExportError"),
            "the failed exports are not logged: {log}"
        );
    }
    Ok(())
}

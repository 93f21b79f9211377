//! Measures read tools through kubegate, with TLS, JWT verification, the Cedar decision and the
//! audit log all on, against the same request sent directly with kube-rs to the same API server
//! as the same user, in the same run:
//!
//! - `list-resources`: the 20 pods of one namespace (`GET .../pods?limit=100`);
//! - `get-resource`: one of those pods (`GET .../pods/<name>`);
//! - `get-logs`: the last 100 lines of one container's log (`GET .../pods/<name>/log?...`),
//!   served by the kubelet stand-in through the API server.
//!
//! Prints, for 1, 16 and 64 concurrent callers: throughput, median and p99 latency, the ratios,
//! and the latency kubegate adds.
//!
//! `cargo bench --features dev --bench list_resources` (it starts its own local control plane). kubegate runs as
//! its own process, the release binary, as in production. `KUBEGATE_BENCH_TOOLS=get-logs`
//! measures a subset of the tools, `KUBEGATE_BENCH_CALLERS=1,16` of the concurrencies.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;
use support::cluster::{NODE_NAME, VIEW_ROLE};
use support::{GatewayFiles, GatewayOptions, McpClient, tenant_namespace};

const NAMESPACE: &str = "bench-a";
const PODS: usize = 20;
/// Concurrent callers measured; `KUBEGATE_BENCH_CALLERS=1,16` measures a subset.
fn callers() -> Vec<usize> {
    std::env::var("KUBEGATE_BENCH_CALLERS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 16, 64])
}
/// Requests per measured round, by number of callers.
fn requests(callers: usize) -> usize {
    if callers == 1 { 2_000 } else { 6_000 }
}
const ROUNDS: usize = 2;
/// The pod whose object and log `get-resource` and `get-logs` read.
const LOG_POD: &str = "web-7d4b9c6f5-00000";
const LOG_LINES: usize = 100;

/// One measured tool: its call through kubegate and the same request sent directly.
struct Workload {
    tool: &'static str,
    arguments: serde_json::Value,
    direct_path: String,
    what: String,
}

fn workloads() -> Vec<Workload> {
    let all = vec![
        Workload {
            tool: "list-resources",
            arguments: json!({"resourceType": "pods", "namespace": NAMESPACE}),
            // kubegate pages lists (limit 100 unless asked); the direct request asks the same.
            direct_path: format!("/api/v1/namespaces/{NAMESPACE}/pods?limit=100"),
            what: format!("{PODS} pods of one namespace"),
        },
        Workload {
            tool: "get-resource",
            arguments: json!({"resourceType": "pods", "name": LOG_POD, "namespace": NAMESPACE}),
            direct_path: format!("/api/v1/namespaces/{NAMESPACE}/pods/{LOG_POD}"),
            what: "one pod".to_owned(),
        },
        Workload {
            tool: "get-logs",
            arguments: json!({"podName": LOG_POD, "namespace": NAMESPACE, "container": "web", "tail": "100"}),
            direct_path: format!(
                "/api/v1/namespaces/{NAMESPACE}/pods/{LOG_POD}/log?tailLines={LOG_LINES}&limitBytes=524288&container=web"
            ),
            what: format!("the last {LOG_LINES} lines of one container's log"),
        },
    ];
    match std::env::var("KUBEGATE_BENCH_TOOLS") {
        Ok(only) => all
            .into_iter()
            .filter(|w| only.split(',').any(|t| t.trim() == w.tool))
            .collect(),
        Err(_) => all,
    }
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

/// kubegate as a child process, killed when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run() -> Result<()> {
    let plane = support::cluster();
    let admin = plane.client("admin").await?;
    // alice's token-file identity has group team-a-devs; her JWT says the same, so the direct
    // baseline and kubegate's impersonation are judged by Kubernetes as the same user.
    tenant_namespace(&admin, NAMESPACE, Some("bench"), "team-a-devs", VIEW_ROLE).await?;
    seed_pods(&admin).await?;

    let port = support::cluster::free_port()?;
    let files = GatewayFiles::write(
        plane,
        &GatewayOptions::default(),
        &format!("127.0.0.1:{port}"),
    )?;
    let log = std::fs::File::create(files.dir.path().join("kubegate.log"))?;
    let _served = Served(
        Command::new(env!("CARGO_BIN_EXE_kubegate"))
            .args(["serve", "--config"])
            .arg(&files.config_file)
            .env("KUBEGATE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting kubegate")?,
    );
    let url = format!("https://127.0.0.1:{port}/mcp");
    let mut mcp = McpClient::new(&url, &files.ca_pem);
    if std::env::var("KUBEGATE_BENCH_HTTP1").is_ok() {
        mcp.http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(files.ca_pem.as_bytes())?])
            .http1_only()
            .build()?;
    }
    wait_ready(&mcp, &url).await?;

    let token = files.token("alice", &["team-a-devs"], "bench");
    let direct = plane.client("alice").await?;
    let mut audited = 0;
    for workload in workloads() {
        audited = measure_workload(&workload, &mcp, &token, &direct, &files, audited).await?;
    }
    Ok(())
}

/// Checks that both paths answer the same, then measures both at each concurrency.
async fn measure_workload(
    workload: &Workload,
    mcp: &McpClient,
    token: &str,
    direct: &kube::Client,
    files: &GatewayFiles,
    mut audited: usize,
) -> Result<usize> {
    let body = Arc::new(serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": workload.tool, "arguments": workload.arguments},
    }))?);
    // Both paths answer the same thing before anything is timed.
    let first = mcp
        .call_tool(token, workload.tool, workload.arguments.clone())
        .await?;
    ensure!(
        first["isError"] == false,
        "{} failed: {first}",
        workload.tool
    );
    let raw = direct.request_text(get(&workload.direct_path)?).await?;
    match workload.tool {
        "list-resources" => {
            let listed = first["structuredContent"]["items"].as_array().map(Vec::len);
            let direct: serde_json::Value = serde_json::from_str(&raw)?;
            ensure!(
                listed == Some(PODS) && direct["items"].as_array().map(Vec::len) == Some(PODS),
                "kubegate listed {listed:?} pods, not {PODS}"
            );
        }
        "get-resource" => {
            let direct: serde_json::Value = serde_json::from_str(&raw)?;
            ensure!(first["structuredContent"]["metadata"]["uid"] == direct["metadata"]["uid"]);
        }
        _ => {
            let text = first["content"][0]["text"].as_str().unwrap_or_default();
            ensure!(
                text == raw && raw.lines().count() == LOG_LINES,
                "logs differ"
            );
        }
    }

    let gateway_call = {
        let mcp = mcp.clone();
        let token = token.to_owned();
        move || {
            let mcp = mcp.clone();
            let token = token.clone();
            let body = Arc::clone(&body);
            async move {
                let answer = mcp
                    .http
                    .post(&mcp.url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await?;
                ensure!(
                    answer.status() == 200,
                    "kubegate answered {}",
                    answer.status()
                );
                let bytes = answer.bytes().await?;
                ensure!(
                    memchr_find(&bytes, br#""isError":false"#),
                    "tool error: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                );
                Ok(())
            }
        }
    };
    let direct_call = {
        let path = workload.direct_path.clone();
        let direct = direct.clone();
        move || {
            let direct = direct.clone();
            let path = path.clone();
            async move {
                direct.request_text(get(&path)?).await?;
                Ok(())
            }
        }
    };

    println!(
        "\n{}, {}; kubegate (TLS + ES256 JWT + Cedar + audit) vs kube-rs direct, same API server, same run",
        workload.tool, workload.what
    );
    println!(
        "{:>7} | {:>10} {:>10} {:>6} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9}",
        "callers",
        "direct/s",
        "gate/s",
        "ratio",
        "p50 dir",
        "p50 gate",
        "added",
        "p99 dir",
        "p99 gate",
        "added"
    );
    for callers in callers() {
        // Warm both paths (connections, caches) at this concurrency.
        measure(callers, 200, direct_call.clone()).await?;
        measure(callers, 200, gateway_call.clone()).await?;
        let mut direct_runs = Vec::new();
        let mut gateway_runs = Vec::new();
        // Alternate rounds so that drift (caches, other load) hits both paths alike.
        for _ in 0..ROUNDS {
            direct_runs.push(measure(callers, requests(callers), direct_call.clone()).await?);
            gateway_runs.push(measure(callers, requests(callers), gateway_call.clone()).await?);
        }
        let d = Run::merge(direct_runs);
        let g = Run::merge(gateway_runs);
        println!(
            "{:>7} | {:>10.0} {:>10.0} {:>6.3} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9}",
            callers,
            d.throughput(),
            g.throughput(),
            g.throughput() / d.throughput(),
            ms(d.percentile(0.50)),
            ms(g.percentile(0.50)),
            signed_ms(g.percentile(0.50), d.percentile(0.50)),
            ms(d.percentile(0.99)),
            ms(g.percentile(0.99)),
            signed_ms(g.percentile(0.99), d.percentile(0.99)),
        );
        audited = audit_summary(files, audited)?;
    }
    Ok(audited)
}

/// From kubegate's audit records since `skip` lines: every tools/call made exactly one API request;
/// and the split of its server-side latency between the API request and kubegate's own work.
/// Returns the number of lines read in all.
fn audit_summary(files: &GatewayFiles, skip: usize) -> Result<usize> {
    let text = std::fs::read_to_string(files.dir.path().join("audit.log"))?;
    let mut kube = Vec::new();
    let mut own = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[skip.min(lines.len())..] {
        let record: serde_json::Value = serde_json::from_str(line)?;
        if record["mcp"]["method"] != "tools/call" {
            continue;
        }
        let requests = record["kube"].as_array().map(Vec::len).unwrap_or(0);
        ensure!(
            requests == 1,
            "a tools/call made {requests} API requests: {record}"
        );
        let total = record["latencyMicros"].as_u64().unwrap_or(0);
        let api = record["kube"][0]["latencyMicros"].as_u64().unwrap_or(0);
        kube.push(Duration::from_micros(api));
        own.push(Duration::from_micros(total.saturating_sub(api)));
    }
    let (kube, own) = (
        Run::merge(vec![Run::of(kube)]),
        Run::merge(vec![Run::of(own)]),
    );
    println!(
        "{:>7}   kubegate, server side ({} calls, 1 API request each): API request p50 {} p99 {}; \
         kubegate's own work p50 {} p99 {}",
        "",
        kube.latencies.len(),
        ms(kube.percentile(0.50)),
        ms(kube.percentile(0.99)),
        ms(own.percentile(0.50)),
        ms(own.percentile(0.99)),
    );
    Ok(lines.len())
}

fn get(path: &str) -> Result<http::Request<Vec<u8>>> {
    Ok(http::Request::get(path).body(Vec::new())?)
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn wait_ready(mcp: &McpClient, url: &str) -> Result<()> {
    let readyz = url.replace("/mcp", "/readyz");
    for _ in 0..300 {
        if let Ok(answer) = mcp.http.get(&readyz).send().await
            && answer.status() == 200
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("kubegate did not become ready within 30 s")
}

/// Latencies and wall time of one measured round.
struct Run {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Run {
    fn of(latencies: Vec<Duration>) -> Run {
        Run {
            latencies,
            wall: Duration::ZERO,
        }
    }

    fn merge(runs: Vec<Run>) -> Run {
        let wall = runs.iter().map(|r| r.wall).sum();
        let mut latencies: Vec<Duration> = runs.into_iter().flat_map(|r| r.latencies).collect();
        latencies.sort_unstable();
        Run { latencies, wall }
    }

    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let index = ((self.latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        self.latencies.get(index).copied().unwrap_or_default()
    }
}

/// Runs `total` calls spread over `callers` concurrent tasks, each calling in a loop.
async fn measure<F, Fut>(callers: usize, total: usize, call: F) -> Result<Run>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let call = call.clone();
        let share = total / callers + usize::from(caller < total % callers);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            for _ in 0..share {
                let t = Instant::now();
                call().await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let wall = started.elapsed();
    latencies.sort_unstable();
    Ok(Run { latencies, wall })
}

fn ms(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1e3)
}

fn signed_ms(a: Duration, b: Duration) -> String {
    format!("{:+.3}ms", (a.as_secs_f64() - b.as_secs_f64()) * 1e3)
}

/// 20 pods shaped like real ones: labels, two containers, probes, a running status; bound to
/// the kubelet stand-in's node, the first with a 1,000-line log.
async fn seed_pods(admin: &kube::Client) -> Result<()> {
    let dir = support::cluster()
        .container_logs
        .join(NAMESPACE)
        .join(LOG_POD);
    std::fs::create_dir_all(&dir)?;
    let now = jiff::Timestamp::now();
    let log: String = (0..1000)
        .map(|n| format!("{now} 10.244.0.{} - - \"GET /api/orders/{n} HTTP/1.1\" 200 512 \"-\" \"checkout/2.4\" rt=0.004\n", n % 250))
        .collect();
    std::fs::write(dir.join("web.log"), log)?;
    let pods = Api::<Pod>::namespaced(admin.clone(), NAMESPACE);
    for i in 0..PODS {
        let name = format!("web-7d4b9c6f5-{i:05}");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "web", "tier": "frontend", "pod-template-hash": "7d4b9c6f5"},
                         "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}},
            "spec": {"nodeName": NODE_NAME, "containers": [
                {"name": "web", "image": "registry.example/shop/web:2.4.1",
                 "ports": [{"containerPort": 8080, "name": "http"}],
                 "env": [{"name": "LISTEN_ADDR", "value": ":8080"}, {"name": "LOG_LEVEL", "value": "info"}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5}},
                {"name": "metrics", "image": "registry.example/exporter:0.9", "ports": [{"containerPort": 9090}]}
            ]},
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
        pods.patch_status(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"status": {
                "phase": "Running", "podIP": format!("10.244.1.{i}"), "hostIP": "10.0.0.5",
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
                "containerStatuses": [
                    {"name": "web", "ready": true, "restartCount": 0, "image": "registry.example/shop/web:2.4.1", "imageID": "", "state": {"running": {"startedAt": "2026-11-20T08:00:00Z"}}},
                    {"name": "metrics", "ready": true, "restartCount": 0, "image": "registry.example/exporter:0.9", "imageID": "", "state": {"running": {"startedAt": "2026-11-20T08:00:00Z"}}}
                ]}})),
        )
        .await?;
    }
    Ok(())
}

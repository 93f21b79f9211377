//! Measures read tools through kubegate, with TLS, JWT verification, the Cedar decision and the
//! audit log all on, against the floor: the same request sent directly to the same API server by
//! kubegate's own identity impersonating the same user (what kubegate itself sends), in the same
//! run:
//!
//! - `list-resources`: the 20 pods of one namespace (`GET .../pods?limit=100`);
//! - `get-resource`: one of those pods (`GET .../pods/<name>`);
//! - `get-logs`: the last 100 lines of one container's log (`GET .../pods/<name>/log?...`),
//!   served by the kubelet stand-in through the API server.
//!
//! Prints, for 1, 16 and 64 concurrent callers: throughput, median and p99 latency, the ratios,
//! the latency kubegate adds, and CPU time per call of kubegate's process and of the API server
//! (from `/proc/<pid>/stat`, over each measured round). Two client views: kube-rs and reqwest in
//! this process (HTTP/2 to kubegate unless `KUBEGATE_BENCH_HTTP1` is set), and h2load, an
//! external load generator (Debian's `nghttp2-client`), over HTTP/1.1 and HTTP/2 alike, for
//! `list-resources` (skipped with a note when `h2load` is not installed). The h2load view also
//! measures nginx, a bare TLS pass-through proxy adding the same token and impersonation headers,
//! in kubegate's place against the same floor (skipped when nginx is not installed; Debian's
//! `nginx-light`): what a second hop alone costs on the machine.
//!
//! `cargo bench --features dev --bench list_resources` (it starts its own local control plane). kubegate runs as
//! its own process, the release binary, as in production. `KUBEGATE_BENCH_TOOLS=get-logs`
//! measures a subset of the tools, `KUBEGATE_BENCH_CALLERS=1,16` of the concurrencies;
//! `KUBEGATE_BENCH_BIN=<path>` measures another build of kubegate (to compare two commits).

#[path = "proxy/nginx.rs"]
mod nginx;
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
    // alice's JWT says group team-a-devs; the floor impersonates the same user and group, so
    // Kubernetes judges both paths alike.
    tenant_namespace(&admin, NAMESPACE, Some("bench"), "team-a-devs", VIEW_ROLE).await?;
    seed_pods(&admin).await?;

    let port = support::cluster::free_port()?;
    // One caller's 64 calls at once would pass the per-caller limit (429): lift it here. The
    // policies are in a folder of their own, as deployed, so the policy watcher does not wake
    // for each audit record written beside them.
    let options = GatewayOptions {
        http: vec!["max_exchanges_per_caller = 256".to_owned()],
        policy_dir: true,
        ..GatewayOptions::default()
    };
    let files = GatewayFiles::write(plane, &options, &format!("127.0.0.1:{port}"))?;
    let log = std::fs::File::create(files.dir.path().join("kubegate.log"))?;
    let served = Served(
        Command::new(support::process::kubegate_binary()?)
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

    let bench = Bench {
        mcp,
        token: files.token("alice", &["team-a-devs"], "bench"),
        floor: plane.client("kubegate").await?,
        cpu: Cpu::find(served.0.id(), &plane.dir)?,
        files,
    };
    let mut audited = 0;
    for workload in workloads() {
        audited = bench.measure_workload(&workload, audited).await?;
    }
    if let Some(list) = workloads().iter().find(|w| w.tool == "list-resources") {
        audited = bench.h2load_view(list, audited).await?;
    }
    let rss = bench.cpu.kubegate_rss_kib()?;
    println!(
        "\nkubegate's RSS at the end: {:.1} MiB",
        rss as f64 / 1024.0
    );
    let _ = audited;
    Ok(())
}

/// What every measurement needs: kubegate's client and token, the floor's client, the probes.
struct Bench {
    mcp: McpClient,
    /// alice's JWT for kubegate.
    token: String,
    /// kube-rs as kubegate's own identity, which impersonates alice on each request.
    floor: kube::Client,
    cpu: Cpu,
    files: GatewayFiles,
}

/// CPU time and memory of the processes in the measurement, read from `/proc`.
#[derive(Clone)]
struct Cpu {
    /// The proxy measured: kubegate's process, or nginx's master and workers.
    proxy: Vec<u32>,
    api_server: u32,
    etcd: u32,
}

/// CPU seconds spent by each process over one measured round, per call.
#[derive(Default, Clone, Copy)]
struct CpuPerCall {
    /// kubegate's, or nginx's.
    proxy: f64,
    api_server: f64,
    etcd: f64,
}

impl Cpu {
    /// kubegate's process and the control plane's two whose command line names `dir`.
    fn find(kubegate: u32, dir: &std::path::Path) -> Result<Cpu> {
        let dir = dir.display().to_string();
        let (mut api_server, mut etcd) = (None, None);
        for entry in std::fs::read_dir("/proc")? {
            let entry = entry?;
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if !args.iter().any(|a| a.contains(&dir)) {
                continue;
            }
            match args.first().map(String::as_str) {
                Some(bin) if bin.ends_with("/kube-apiserver") => api_server = Some(pid),
                Some(bin) if bin.ends_with("/etcd") => etcd = Some(pid),
                _ => {}
            }
        }
        Ok(Cpu {
            proxy: vec![kubegate],
            api_server: api_server.context("the API server's process")?,
            etcd: etcd.context("etcd's process")?,
        })
    }

    /// User plus system CPU seconds of each process so far.
    fn now(&self) -> Result<[f64; 3]> {
        let mut proxy = 0.0;
        for pid in &self.proxy {
            proxy += cpu_seconds(*pid)?;
        }
        Ok([
            proxy,
            cpu_seconds(self.api_server)?,
            cpu_seconds(self.etcd)?,
        ])
    }

    /// Runs `round`, and returns its result with each process's CPU time per call.
    async fn during<T>(
        &self,
        calls: usize,
        round: impl std::future::Future<Output = Result<T>>,
    ) -> Result<(T, CpuPerCall)> {
        let before = self.now()?;
        let result = round.await?;
        Ok((result, self.since(before, calls)?))
    }

    /// `during` for a round that blocks (an external load generator).
    fn measured<T>(
        &self,
        calls: usize,
        round: impl FnOnce() -> Result<T>,
    ) -> Result<(T, CpuPerCall)> {
        let before = self.now()?;
        let result = round()?;
        Ok((result, self.since(before, calls)?))
    }

    /// Each process's CPU time since `before`, per call.
    fn since(&self, before: [f64; 3], calls: usize) -> Result<CpuPerCall> {
        let after = self.now()?;
        let per = |i: usize| (after[i] - before[i]) / calls as f64;
        Ok(CpuPerCall {
            proxy: per(0),
            api_server: per(1),
            etcd: per(2),
        })
    }

    fn kubegate_rss_kib(&self) -> Result<u64> {
        let kubegate = self.proxy.first().context("kubegate's pid")?;
        let status = std::fs::read_to_string(format!("/proc/{kubegate}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("VmRSS")
    }
}

/// utime + stime of a process (fields 14 and 15 of `/proc/<pid>/stat`, in clock ticks), including
/// its threads that have ended.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> { Ok(fields.get(i).context("stat field")?.parse()?) };
    // After ')' field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// Clock ticks a second (`getconf CLK_TCK`; USER_HZ, 100 on Linux unless it says otherwise).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

impl CpuPerCall {
    fn merge(runs: &[CpuPerCall]) -> CpuPerCall {
        let n = runs.len().max(1) as f64;
        CpuPerCall {
            proxy: runs.iter().map(|r| r.proxy).sum::<f64>() / n,
            api_server: runs.iter().map(|r| r.api_server).sum::<f64>() / n,
            etcd: runs.iter().map(|r| r.etcd).sum::<f64>() / n,
        }
    }
}

impl Bench {
    /// The floor's request: kubegate's identity impersonating alice and her group, as kubegate
    /// sends it.
    fn floor_request(path: &str) -> Result<http::Request<Vec<u8>>> {
        Ok(http::Request::get(path)
            .header("Impersonate-User", "alice")
            .header("Impersonate-Group", "team-a-devs")
            .body(Vec::new())?)
    }

    /// Checks that both paths answer the same, then measures both at each concurrency.
    async fn measure_workload(&self, workload: &Workload, mut audited: usize) -> Result<usize> {
        let (mcp, token) = (&self.mcp, &self.token);
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
        let raw = self
            .floor
            .request_text(Self::floor_request(&workload.direct_path)?)
            .await?;
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
                        .header("accept", "application/json, text/event-stream")
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
        let floor_call = {
            let path = workload.direct_path.clone();
            let floor = self.floor.clone();
            move || {
                let floor = floor.clone();
                let path = path.clone();
                async move {
                    floor.request_text(Self::floor_request(&path)?).await?;
                    Ok(())
                }
            }
        };

        println!(
            "\n{}, {}; kubegate (TLS + ES256 JWT + Cedar + audit, {}) vs the floor (kube-rs as \
             kubegate's identity impersonating alice, HTTP/1.1 as kubegate's own client), same API \
             server, same run",
            workload.tool,
            workload.what,
            if std::env::var("KUBEGATE_BENCH_HTTP1").is_ok() {
                "HTTP/1.1"
            } else {
                "HTTP/2"
            }
        );
        print_header("gate");
        for callers in callers() {
            // Warm both paths (connections, caches) at this concurrency.
            measure(callers, 200, floor_call.clone()).await?;
            measure(callers, 200, gateway_call.clone()).await?;
            let (mut floor_runs, mut gateway_runs) = (Vec::new(), Vec::new());
            let (mut floor_cpu, mut gateway_cpu) = (Vec::new(), Vec::new());
            // Alternate rounds so that drift (caches, other load) hits both paths alike.
            for _ in 0..ROUNDS {
                let n = requests(callers);
                let (run, cpu) = self
                    .cpu
                    .during(n, measure(callers, n, floor_call.clone()))
                    .await?;
                floor_runs.push(run);
                floor_cpu.push(cpu);
                let (run, cpu) = self
                    .cpu
                    .during(n, measure(callers, n, gateway_call.clone()))
                    .await?;
                gateway_runs.push(run);
                gateway_cpu.push(cpu);
            }
            print_row(
                callers,
                &Run::merge(floor_runs),
                &Run::merge(gateway_runs),
                CpuPerCall::merge(&floor_cpu),
                CpuPerCall::merge(&gateway_cpu),
            );
            audited = audit_summary(&self.files, audited)?;
        }
        Ok(audited)
    }

    /// The same comparison with h2load as the client, over HTTP/1.1 and HTTP/2; then nginx, a
    /// bare TLS pass-through proxy, in kubegate's place, when it is installed.
    async fn h2load_view(&self, workload: &Workload, mut audited: usize) -> Result<usize> {
        if Command::new("h2load").arg("--version").output().is_err() {
            println!("\nh2load view skipped: h2load is not installed (Debian: nghttp2-client)");
            return Ok(audited);
        }
        let dir = self.files.dir.path();
        let body = dir.join("call.json");
        std::fs::write(
            &body,
            serde_json::to_vec(&json!({
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": workload.tool, "arguments": workload.arguments},
            }))?,
        )?;
        let plane = support::cluster();
        let floor_token = plane.tokens.get("kubegate").context("kubegate's token")?;
        let floor_url = format!("{}{}", plane.url, workload.direct_path);
        let floor = |http1: bool, callers: usize, n: usize| {
            let args = vec![
                "-H".to_owned(),
                format!("authorization: Bearer {floor_token}"),
                "-H".to_owned(),
                "impersonate-user: alice".to_owned(),
                "-H".to_owned(),
                "impersonate-group: team-a-devs".to_owned(),
                floor_url.clone(),
            ];
            h2load(dir, http1, callers, n, &args)
        };
        for http1 in [true, false] {
            println!(
                "\n{}, {}; h2load over {} (one connection per caller, keep-alive), kubegate vs \
                 the floor (kubegate's identity impersonating alice), same run",
                workload.tool,
                workload.what,
                if http1 { "HTTP/1.1" } else { "HTTP/2" }
            );
            print_header("gate");
            for callers in callers() {
                let gateway = |n: usize| {
                    let args = vec![
                        "-d".to_owned(),
                        body.display().to_string(),
                        "-H".to_owned(),
                        format!("authorization: Bearer {}", self.token),
                        "-H".to_owned(),
                        "content-type: application/json".to_owned(),
                        "-H".to_owned(),
                        "accept: application/json, text/event-stream".to_owned(),
                        self.mcp.url.clone(),
                    ];
                    h2load(dir, http1, callers, n, &args)
                };
                compare(&self.cpu, callers, |n| floor(http1, callers, n), gateway)?;
                // The warm-up's 200 and each round's calls: every one a successful tool call.
                audited = audit_summary(&self.files, audited)?;
            }
        }

        let Some(binary) = nginx::binary() else {
            println!("\nnginx view skipped: nginx is not installed (Debian: nginx-light)");
            return Ok(audited);
        };
        let certs = dir.join("certs");
        let proxy = nginx::Nginx::start(
            &binary,
            dir,
            support::cluster::free_port()?,
            &nginx::Upstream {
                api_server: &plane.url,
                token: floor_token,
                user: "alice",
                group: "team-a-devs",
                cert: &certs.join("server.pem"),
                key: &certs.join("server-key.pem"),
            },
        )?;
        let cpu = Cpu {
            proxy: proxy.pids()?,
            ..self.cpu.clone()
        };
        let proxy_url = format!("{}{}", proxy.url, workload.direct_path);
        for http1 in [true, false] {
            println!(
                "\n{}, {}; h2load over {} to nginx (a TLS pass-through proxy adding the token and \
                 the impersonation headers: no JWT, no policy, no audit, the answer copied as is) \
                 vs the floor, same run",
                workload.tool,
                workload.what,
                if http1 { "HTTP/1.1" } else { "HTTP/2" }
            );
            print_header("nginx");
            for callers in callers() {
                let through =
                    |n: usize| h2load(dir, http1, callers, n, std::slice::from_ref(&proxy_url));
                compare(&cpu, callers, |n| floor(http1, callers, n), through)?;
            }
        }
        Ok(audited)
    }
}

/// Warms both, then measures `ROUNDS` alternating rounds of each and prints the row.
fn compare(
    cpu: &Cpu,
    callers: usize,
    floor: impl Fn(usize) -> Result<Run>,
    proxy: impl Fn(usize) -> Result<Run>,
) -> Result<()> {
    floor(200)?;
    proxy(200)?;
    let (mut floor_runs, mut proxy_runs) = (Vec::new(), Vec::new());
    let (mut floor_cpu, mut proxy_cpu) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let n = requests(callers);
        let (run, used) = cpu.measured(n, || floor(n))?;
        floor_runs.push(run);
        floor_cpu.push(used);
        let (run, used) = cpu.measured(n, || proxy(n))?;
        proxy_runs.push(run);
        proxy_cpu.push(used);
    }
    print_row(
        callers,
        &Run::merge(floor_runs),
        &Run::merge(proxy_runs),
        CpuPerCall::merge(&floor_cpu),
        CpuPerCall::merge(&proxy_cpu),
    );
    Ok(())
}

/// The table's header; `proxy` names the columns of what is measured against the floor.
fn print_header(proxy: &str) {
    println!(
        "{:>7} | {:>8} {:>8} {:>6} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>9} {:>8} {:>9}",
        "callers",
        "floor/s",
        format!("{proxy}/s"),
        "ratio",
        "p50 floor",
        format!("p50 {proxy}"),
        "added",
        "p99 floor",
        format!("p99 {proxy}"),
        "added",
        format!("cpu {proxy}"),
        "api/flr",
        format!("api/{proxy}"),
    );
}

/// One row: throughput, latency, and CPU per call (kubegate's; the API server's on the floor's
/// round and on kubegate's).
fn print_row(callers: usize, f: &Run, g: &Run, fc: CpuPerCall, gc: CpuPerCall) {
    println!(
        "{:>7} | {:>8.0} {:>8.0} {:>6.3} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>9} {:>8} {:>9}",
        callers,
        f.throughput(),
        g.throughput(),
        g.throughput() / f.throughput(),
        ms(f.percentile(0.50)),
        ms(g.percentile(0.50)),
        signed_ms(g.percentile(0.50), f.percentile(0.50)),
        ms(f.percentile(0.99)),
        ms(g.percentile(0.99)),
        signed_ms(g.percentile(0.99), f.percentile(0.99)),
        cpu_ms(gc.proxy),
        cpu_ms(fc.api_server + fc.etcd),
        cpu_ms(gc.api_server + gc.etcd),
    );
}

fn cpu_ms(seconds: f64) -> String {
    format!("{:.3}ms", seconds * 1e3)
}

/// Runs h2load for `n` requests over `callers` connections of one stream each and reads its
/// per-request log: latencies, wall time, and that every answer was a 200.
fn h2load(
    dir: &std::path::Path,
    http1: bool,
    callers: usize,
    n: usize,
    args: &[String],
) -> Result<Run> {
    let log = dir.join("h2load.log");
    // h2load appends to its log: each run starts from an empty one.
    let _ = std::fs::remove_file(&log);
    let mut command = Command::new("h2load");
    command
        .args(["-n", &n.to_string(), "-c", &callers.to_string(), "-m", "1"])
        .arg(format!("--log-file={}", log.display()));
    if http1 {
        command.arg("--h1");
    }
    let output = command.args(args).output().context("running h2load")?;
    ensure!(
        output.status.success(),
        "h2load failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Each line starts: start (µs since the epoch), status (-1 for a failed stream), duration
    // (µs); later versions may add columns.
    let text = std::fs::read_to_string(&log)?;
    let (mut first, mut last) = (u64::MAX, 0u64);
    let mut latencies = Vec::with_capacity(n);
    for line in text.lines() {
        let fields = line
            .split('\t')
            .take(3)
            .map(|f| f.trim().parse::<i64>())
            .collect::<Result<Vec<i64>, _>>()
            .with_context(|| format!("h2load log line {line:?}"))?;
        let [start, status, micros] = fields[..] else {
            bail!("h2load log line {line:?}");
        };
        ensure!(
            status == 200,
            "h2load got a {status} (-1: the stream failed)"
        );
        let (start, micros) = (start.unsigned_abs(), micros.unsigned_abs());
        first = first.min(start);
        last = last.max(start + micros);
        latencies.push(Duration::from_micros(micros));
    }
    ensure!(
        latencies.len() == n,
        "h2load logged {} of {n} requests",
        latencies.len()
    );
    latencies.sort_unstable();
    Ok(Run {
        latencies,
        wall: Duration::from_micros(last.saturating_sub(first)),
    })
}

/// From kubegate's audit records since `skip` lines: every tools/call succeeded and made exactly
/// one API request;
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
        ensure!(
            record["outcome"] == "success" && record["kube"][0]["code"] == 200,
            "a tools/call did not succeed: {record}"
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

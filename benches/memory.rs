//! Measures kubegate's memory at cluster scale, as its own process (the release binary) against
//! the local API server:
//!
//! - idle, after start;
//! - an admin paging through a cluster-wide list of 10,000 pods (100 namespaces), 1,000 a page:
//!   the peak must follow the page, not the cluster;
//! - 64 such first pages asked at once, under a configured answer memory bound
//!   (`[kubernetes] answer_memory_mib`, 256 here): how many were answered, how many refused with
//!   the bound's message, and the peak;
//! - after 1,000 sessions opened and never ended, and after 10,000 distinct callers' tokens
//!   (each verified once, each caller's policy slice cut once): the caches are sized and forget
//!   the entry used least recently, so the resident set levels off.
//!
//! `cargo bench --features dev --bench memory` (it starts its own local control plane).
//! `KUBEGATE_BENCH_ANSWER_MIB` sets the bound; `KUBEGATE_BENCH_BIN=<path>` measures another build.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use support::cluster::VIEW_ROLE;
use support::process::{Launch, ServedProcess};
use support::{GatewayOptions, tenant_namespace};

const NAMESPACES: usize = 100;
const PODS_PER_NAMESPACE: usize = 100;
const PAGE: usize = 1000;
const AT_ONCE: usize = 64;
const SESSIONS: usize = 1000;
const CALLERS: usize = 10_000;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    let plane = support::cluster();
    let admin = plane.client("admin").await?;
    let started = Instant::now();
    seed(&admin).await?;
    println!(
        "seeded {} pods in {NAMESPACES} namespaces in {:.1} s",
        NAMESPACES * PODS_PER_NAMESPACE,
        started.elapsed().as_secs_f64()
    );

    let bound: u64 = std::env::var("KUBEGATE_BENCH_ANSWER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    // 64 calls of one caller at once, and 10,000 new tokens from one address, would pass the
    // per-caller and per-address limits (429): lift them here.
    let options = GatewayOptions {
        kubernetes: vec![format!("answer_memory_mib = {bound}")],
        http: vec![
            "max_exchanges_per_caller = 256".to_owned(),
            "unverified_tokens_per_ip_per_second = 100000".to_owned(),
        ],
        // As deployed: the audit log is not in the policies' folder.
        policy_dir: true,
        ..GatewayOptions::default()
    };
    let served = ServedProcess::start(&options, Launch::default()).await?;
    let pid = served.pid().context("kubegate's pid")?;
    let mcp = served.client();
    let carol = served.token("carol", &["platform-admins"], "platform");
    let alice = served.token("alice", &["team-a-devs"], "bench");
    // The first calls fill what is made once (discovery-backed kinds, the caller's slice).
    mcp.call_tool(
        &alice,
        "list-resources",
        json!({"resourceType": "pods", "namespace": "mem-0"}),
    )
    .await?;
    let idle = Memory::read(pid)?;
    println!(
        "\nkubegate's memory (MiB)                         {:>8} {:>8}",
        "RSS", "peak"
    );
    idle.print("idle (after one call)");
    let split = Split::read(pid)?;
    println!(
        "  of which kubegate's binary {:.1} (its code and read-only data, paged in from the \
         file), other files {:.1}, anonymous {:.1}",
        split.binary as f64 / 1024.0,
        split.other_files as f64 / 1024.0,
        split.anonymous as f64 / 1024.0
    );

    // One admin pages through the whole cluster.
    let mut token: Option<String> = None;
    let (mut pages, mut items) = (0, 0);
    loop {
        let mut arguments = json!({"resourceType": "pods", "limit": PAGE});
        if let Some(token) = &token {
            arguments["continue"] = json!(token);
        }
        let result = mcp.call_tool(&carol, "list-resources", arguments).await?;
        ensure!(result["isError"] == false, "paging failed: {result}");
        let structured = &result["structuredContent"];
        items += structured["items"].as_array().map_or(0, Vec::len);
        pages += 1;
        token = structured["continue"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    ensure!(
        items == NAMESPACES * PODS_PER_NAMESPACE,
        "paged {items} pods, not {}",
        NAMESPACES * PODS_PER_NAMESPACE
    );
    Memory::read(pid)?.print(&format!(
        "after paging {items} pods, {pages} pages of {PAGE}"
    ));

    // Many admins at once, each asking for a first page of 1,000.
    let calls: Vec<_> = (0..AT_ONCE)
        .map(|_| {
            let mcp = mcp.clone();
            let carol = carol.clone();
            tokio::spawn(async move {
                mcp.call_tool(
                    &carol,
                    "list-resources",
                    json!({"resourceType": "pods", "limit": PAGE}),
                )
                .await
            })
        })
        .collect();
    let (mut answered, mut refused) = (0, 0);
    for call in calls {
        let result = call.await??;
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        if result["isError"] == false {
            ensure!(
                result["structuredContent"]["items"]
                    .as_array()
                    .map(Vec::len)
                    == Some(PAGE)
            );
            answered += 1;
        } else if text.contains("answer_memory_mib") {
            refused += 1;
        } else {
            anyhow::bail!("an unexpected failure: {text}");
        }
    }
    Memory::read(pid)?.print(&format!(
        "{AT_ONCE} first pages at once: {answered} answered, {refused} refused (bound {bound} MiB)"
    ));

    // Sessions are signed ids, not server state: opening many holds nothing.
    for _ in 0..SESSIONS {
        let answer = mcp
            .post(
                Some(&alice),
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "1"}}}),
            )
            .await?;
        ensure!(answer.headers.contains_key("mcp-session-id"), "no session");
    }
    Memory::read(pid)?.print(&format!("after {SESSIONS} sessions opened"));

    // Distinct callers, each with a token of their own, 16 at a time.
    let tokens: Vec<String> = (0..CALLERS)
        .map(|i| served.token(&format!("user-{i:05}"), &["team-a-devs"], "bench"))
        .collect();
    let tokens = Arc::new(tokens);
    for quarter in 1..=4 {
        let range = (quarter - 1) * CALLERS / 4..quarter * CALLERS / 4;
        let workers: Vec<_> = (0..16)
            .map(|w| {
                let (mcp, tokens, range) = (mcp.clone(), Arc::clone(&tokens), range.clone());
                tokio::spawn(async move {
                    for i in range.skip(w).step_by(16) {
                        let result = mcp
                            .call_tool(
                                &tokens[i],
                                "list-resources",
                                json!({"resourceType": "configmaps", "namespace": "mem-0"}),
                            )
                            .await?;
                        ensure!(result["isError"] == false, "{result}");
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.await??;
        }
        Memory::read(pid)?.print(&format!("after {} distinct callers", quarter * CALLERS / 4));
    }
    Ok(())
}

/// `VmRSS` and `VmHWM` (the peak) of a process, in KiB.
struct Memory {
    rss: u64,
    peak: u64,
}

impl Memory {
    fn read(pid: u32) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("{name} in /proc/{pid}/status"))
        };
        Ok(Memory {
            rss: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }

    fn print(&self, what: &str) {
        println!(
            "{what:<48} {:>8.1} {:>8.1}",
            self.rss as f64 / 1024.0,
            self.peak as f64 / 1024.0
        );
    }
}

/// How the resident set divides, in KiB: kubegate's own binary, other files (the C library and
/// the like), and anonymous memory (the heap, stacks, relocated data).
struct Split {
    binary: u64,
    other_files: u64,
    anonymous: u64,
}

impl Split {
    /// From `/proc/<pid>/smaps`: each mapping's header line names its file, and its `Rss:` and
    /// `Anonymous:` lines follow.
    fn read(pid: u32) -> Result<Split> {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
        let exe = exe.to_string_lossy();
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
        let kib = |v: &str| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok();
        let (mut split, mut path, mut rss) = (
            Split {
                binary: 0,
                other_files: 0,
                anonymous: 0,
            },
            String::new(),
            0,
        );
        for line in smaps.lines() {
            if let Some(v) = line.strip_prefix("Rss:") {
                rss = kib(v).context("Rss in smaps")?;
            } else if let Some(v) = line.strip_prefix("Anonymous:") {
                let anonymous = kib(v).context("Anonymous in smaps")?;
                split.anonymous += anonymous;
                let file = rss.saturating_sub(anonymous);
                if path == exe {
                    split.binary += file;
                } else if path.starts_with('/') {
                    split.other_files += file;
                }
            } else if line.split_whitespace().next().is_some_and(|f| {
                f.contains('-') && f.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            }) {
                // `start-end perms offset dev inode [path]`
                path = line
                    .split_whitespace()
                    .nth(5)
                    .unwrap_or_default()
                    .to_owned();
            }
        }
        Ok(split)
    }
}

/// 100 namespaces of tenant `bench` with 100 pods each; carol's group may read pods anywhere,
/// alice's (and the distinct callers') in these namespaces.
async fn seed(admin: &kube::Client) -> Result<()> {
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "platform-admins-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": VIEW_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "platform-admins"}],
    }))?;
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &binding)
        .await?;
    for n in 0..NAMESPACES {
        tenant_namespace(
            admin,
            &format!("mem-{n}"),
            Some("bench"),
            "team-a-devs",
            VIEW_ROLE,
        )
        .await?;
    }
    let mut workers = Vec::new();
    for w in 0..16 {
        let admin = admin.clone();
        workers.push(tokio::spawn(async move {
            for i in (w..NAMESPACES * PODS_PER_NAMESPACE).step_by(16) {
                let ns = format!("mem-{}", i / PODS_PER_NAMESPACE);
                let pods = Api::<Pod>::namespaced(admin.clone(), &ns);
                pods.create(&PostParams::default(), &pod(i)?).await?;
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(())
}

/// A pod shaped like a real one: labels, annotations, two containers with ports, env,
/// resources and a probe.
fn pod(i: usize) -> Result<Pod> {
    let spec: Value = json!({
        "metadata": {"name": format!("web-{i:05}"), "labels": {"app": "web", "tier": "frontend", "pod-template-hash": "7d4b9c6f5"},
                     "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}},
        "spec": {"containers": [
            {"name": "web", "image": "registry.example/shop/web:2.4.1",
             "ports": [{"containerPort": 8080, "name": "http"}],
             "env": [{"name": "LISTEN_ADDR", "value": ":8080"}, {"name": "LOG_LEVEL", "value": "info"}],
             "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
             "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5}},
            {"name": "metrics", "image": "registry.example/exporter:0.9", "ports": [{"containerPort": 9090}]}
        ]},
    });
    Ok(serde_json::from_value(spec)?)
}

//! What the audit log costs a call: kubegate's writer (hash chain, group commit) against the
//! naive durable writer it replaces, in the same run, on the same disk.
//!
//! `cargo bench --bench audit_log`. For 1, 16 and 64 concurrent callers on a two-worker Tokio
//! runtime, each writing records of a typical call for about two seconds:
//! - **baseline, fdatasync per record**: a mutex around the file, one `write` and one
//!   `fdatasync` per record, on the async worker (what a durable log without group commit does);
//! - **kubegate, durable** (`write_ahead` + the `ResponseComplete` of a change): waits until the
//!   writer thread's group is on disk;
//! - **baseline read, write per record**: a mutex around the file, one `write` per record (the
//!   writer kubegate had before: a read's record in the page cache);
//! - **kubegate, read**: the record of a read, answered once it is in the file (page cache).
//!
//! Durable rows are compared with the first baseline, read rows with the second.
//!
//! Printed: records per second, and the p50 and p99 of one record's write as its caller sees it.

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use kubegate::audit::{AuditLog, AuditRecord, AuditUser, KubeCall};
use kubegate::config::{AuditConfig, AuditLevel};
use serde_json::json;

const ROUND: Duration = Duration::from_secs(2);

fn record() -> AuditRecord {
    let mut record = AuditRecord::begin(
        AuditLevel::Request,
        "streamable-http",
        IpAddr::from([10, 1, 2, 3]),
        Some("claude-code/2.0".into()),
    );
    record.user = Some(AuditUser {
        issuer: None,
        username: "alice@example.com".into(),
        groups: vec!["team-a-devs".into(), "system:authenticated".into()],
        tenant: "team-a".into(),
        source: None,
    });
    record.mcp.method = Some("tools/call".into());
    record.mcp.tool = Some("kubectl_scale".into());
    record.mcp.request_id = Some(json!(42));
    record.mcp.protocol_version = Some("2025-11-25".into());
    record.set_arguments(
        &json!({"name": "web", "namespace": "team-a", "replicas": 3, "kind": "deployment"}),
    );
    record.kube.push(KubeCall {
        verb: "patch",
        uri: "/apis/apps/v1/namespaces/team-a/deployments/web/scale".into(),
        code: 200,
        audit_id: Some("0b8e5a1e-6a4e-4d7e-9b7a-2f1e3c4d5e6f".into()),
        latency_micros: 2100,
        started: None,
    });
    record
}

fn config(dir: &std::path::Path, name: &str) -> AuditConfig {
    AuditConfig {
        max_file_mib: 0,
        ..AuditConfig::at(dir.join(name))
    }
}

/// What one round measured.
struct Round {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `callers` tasks, each calling `write` in a loop for a round; collects every latency.
async fn round<F, Fut>(callers: usize, write: F) -> Round
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let write = write.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while started.elapsed() < ROUND {
                let at = Instant::now();
                write().await;
                times.push(at.elapsed());
            }
            times
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Round {
        per_second: times.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// A round of the naive writer: a mutex around the file, one `write` (and, if `sync`, one
/// `fdatasync`) per record, on the async worker.
async fn naive_round(callers: usize, file: &Arc<Mutex<std::fs::File>>, sync: bool) -> Round {
    let file = Arc::clone(file);
    round(callers, move || {
        let file = Arc::clone(&file);
        async move {
            let mut line = serde_json::to_vec(&record()).unwrap_or_default();
            line.push(b'\n');
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = file.write_all(&line);
            if sync {
                let _ = file.sync_data();
            }
        }
    })
    .await
}

fn print(name: &str, callers: usize, round: &Round, baseline: Option<&Round>) {
    let ratio = baseline.map_or(String::from("-"), |b| {
        format!("{:.2}", round.per_second / b.per_second)
    });
    println!(
        "{name:<32} {callers:>7} {:>12.0} {:>10.3} {:>10.3} {ratio:>8}",
        round.per_second,
        round.p50.as_secs_f64() * 1e3,
        round.p99.as_secs_f64() * 1e3,
    );
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // On the project's own disk (not /tmp, which may be memory): where a log would live.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    runtime.block_on(async {
        let naive = Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.path().join("naive.log"))?,
        ));
        let plain = Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.path().join("plain.log"))?,
        ));
        let durable = Arc::new(AuditLog::open(&config(dir.path(), "durable.log"))?);
        let reads = Arc::new(AuditLog::open(&config(dir.path(), "reads.log"))?);
        println!(
            "{:<32} {:>7} {:>12} {:>10} {:>10} {:>8}",
            "writer", "callers", "records/s", "p50 ms", "p99 ms", "ratio"
        );
        for callers in [1, 16, 64] {
            let baseline = naive_round(callers, &naive, true).await;
            print("baseline, fdatasync per record", callers, &baseline, None);
            let log = Arc::clone(&durable);
            let grouped = round(callers, move || {
                let log = Arc::clone(&log);
                async move {
                    let mut record = record();
                    let _ = log.write_ahead(&mut record).await;
                }
            })
            .await;
            print("kubegate, durable", callers, &grouped, Some(&baseline));
            let plain_read = naive_round(callers, &plain, false).await;
            print(
                "baseline read, write per record",
                callers,
                &plain_read,
                None,
            );
            let log = Arc::clone(&reads);
            let read = round(callers, move || {
                let log = Arc::clone(&log);
                async move {
                    let mut record = record();
                    let _ = log.write(&mut record).await;
                }
            })
            .await;
            print(
                "kubegate, read (page cache)",
                callers,
                &read,
                Some(&plain_read),
            );
            println!(
                "{:<32} {callers:>7} {:>12} {:>10.3}",
                "  added by durability (p50)",
                "",
                (grouped.p50.as_secs_f64() - read.p50.as_secs_f64()) * 1e3
            );
        }
        durable.close().await;
        reads.close().await;
        Ok::<_, anyhow::Error>(())
    })
}

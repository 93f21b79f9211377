//! Measures `analyze` over one namespace of 1,000 pods and 100 Deployments (each with its
//! ReplicaSet and Service, and a few dozen pods failing), through kubegate with TLS, JWT, Cedar
//! and the audit log on, against its floor measured in the same run: the same list requests
//! kubegate sent (read from its audit record), sent directly with kube-rs as the same user, with
//! the same concurrency. Also kubegate's own analysis work alone, in process: parsing those lists
//! into a snapshot and running the core analyzers.
//!
//! `cargo bench --features dev --bench analyze` (it starts its own local control plane).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use support::cluster::{NODE_NAME, VIEW_ROLE};
use support::process::{Launch, ServedProcess};
use support::{GatewayOptions, McpClient, tenant_namespace};

use kubegate::analyze::{self, Snapshot, Source};

const NAMESPACE: &str = "bench-analyze";
const DEPLOYMENTS: usize = 100;
const PODS_PER_DEPLOYMENT: usize = 10;
const ROUNDS: usize = 3;
const CALLS_PER_ROUND: usize = 10;
/// As kubegate's default `[analysis] max_concurrency`.
const CONCURRENCY: usize = 8;

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
    tenant_namespace(&admin, NAMESPACE, Some("bench"), "team-a-devs", VIEW_ROLE).await?;
    let seeded = Instant::now();
    let failing = seed(&admin).await?;
    println!(
        "seeded {DEPLOYMENTS} deployments, {} pods ({failing} failing) in {:.1} s",
        DEPLOYMENTS * PODS_PER_DEPLOYMENT,
        seeded.elapsed().as_secs_f64()
    );

    // The release binary as its own process, as in production.
    let served = ServedProcess::start(&GatewayOptions::default(), Launch::default()).await?;
    let files = &served.files;
    let mcp = McpClient::new(&served.url, &files.ca_pem);
    let token = files.token("alice", &["team-a-devs"], "bench");
    let direct = plane.client("alice").await?;
    let arguments = json!({"namespace": NAMESPACE, "noCache": true});

    // The answer is right before anything is timed: every failing pod found, nothing else.
    let first = mcp.call_tool(&token, "analyze", arguments.clone()).await?;
    ensure!(first["isError"] == false, "analyze failed: {first}");
    let problems = first["structuredContent"]["problems"].as_u64().unwrap_or(0);
    ensure!(
        problems as usize == failing,
        "analyze found {problems} problems, not {failing}: {}",
        first["content"][0]["text"]
    );
    let record = last_tool_record(&served.audit_log)?;
    let uris: Vec<String> = record["kube"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["uri"].as_str().map(str::to_owned))
        .collect();
    ensure!(!uris.is_empty(), "analyze sent no API request: {record}");
    println!(
        "one analyze = {} list requests: {}",
        uris.len(),
        uris.join(" ")
    );

    let mut gateway = Vec::new();
    let mut floor = Vec::new();
    let mut own = Vec::new();
    for _ in 0..ROUNDS {
        for _ in 0..CALLS_PER_ROUND {
            let t = Instant::now();
            lists(&direct, &uris).await?;
            floor.push(t.elapsed());
        }
        for _ in 0..CALLS_PER_ROUND {
            let t = Instant::now();
            let answer = mcp.call_tool(&token, "analyze", arguments.clone()).await?;
            gateway.push(t.elapsed());
            ensure!(
                answer["structuredContent"]["problems"] == first["structuredContent"]["problems"]
            );
        }
    }
    // kubegate's analysis alone: the same lists parsed into a snapshot, the core analyzers run.
    let bodies = lists(&direct, &uris).await?;
    let core: Vec<&analyze::Analyzer> = analyze::ANALYZERS.iter().filter(|a| a.core).collect();
    for _ in 0..ROUNDS * CALLS_PER_ROUND {
        let t = Instant::now();
        let snapshot = snapshot_of(&uris, &bodies)?;
        let findings = analyze::run(&snapshot, &core);
        own.push(t.elapsed());
        ensure!(
            findings.len() == failing,
            "in process: {} findings",
            findings.len()
        );
    }
    for v in [&mut gateway, &mut floor, &mut own] {
        v.sort_unstable();
    }
    println!(
        "\nanalyze, one namespace of {} pods and {DEPLOYMENTS} deployments (1 caller, {} calls each)",
        DEPLOYMENTS * PODS_PER_DEPLOYMENT,
        ROUNDS * CALLS_PER_ROUND
    );
    println!("{:<44} {:>10} {:>10}", "", "p50", "p99");
    for (what, v) in [
        ("floor: the same lists, direct (kube-rs)", &floor),
        ("kubegate analyze (TLS, JWT, Cedar, audit)", &gateway),
        ("kubegate's analysis alone (parse + analyzers)", &own),
    ] {
        println!(
            "{what:<44} {:>10} {:>10}",
            ms(pct(v, 0.5)),
            ms(pct(v, 0.99))
        );
    }
    println!(
        "ratio kubegate/floor at p50: {:.2}",
        pct(&gateway, 0.5).as_secs_f64() / pct(&floor, 0.5).as_secs_f64()
    );
    Ok(())
}

/// Sends the list requests `uris` as the direct client, [`CONCURRENCY`] at a time: each
/// answer's body, or `None` where the API server refused (as RBAC refuses alice cluster-scoped
/// kinds; kubegate sent those requests too).
async fn lists(client: &kube::Client, uris: &[String]) -> Result<Vec<Option<String>>> {
    let answers: Vec<Result<Option<String>>> = futures::stream::iter(uris.iter().cloned())
        .map(|uri| {
            let client = client.clone();
            async move {
                let request = http::Request::get(uri).body(Vec::new())?;
                match client.request_text(request).await {
                    Ok(body) => Ok(Some(body)),
                    Err(kube::Error::Api(status)) if status.code == 403 => Ok(None),
                    Err(error) => Err(error.into()),
                }
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    answers.into_iter().collect()
}

/// The snapshot kubegate builds from these list answers.
fn snapshot_of(uris: &[String], bodies: &[Option<String>]) -> Result<Snapshot> {
    #[derive(serde::Deserialize)]
    struct Items<'a> {
        #[serde(borrow, default)]
        items: Option<Vec<&'a RawValue>>,
    }
    let mut snapshot = Snapshot::default();
    for (uri, body) in uris.iter().zip(bodies) {
        let Some(body) = body else { continue };
        let Some(source) = source_of(uri) else {
            bail!("no source for {uri}");
        };
        let items: Items<'_> = serde_json::from_str(body)?;
        let namespace = source.namespaced().then_some(NAMESPACE);
        snapshot.add(source, namespace, &items.items.unwrap_or_default());
    }
    Ok(snapshot)
}

fn source_of(uri: &str) -> Option<Source> {
    let path = uri.split('?').next()?;
    let plural = path.rsplit('/').next()?;
    Some(match plural {
        "pods" => Source::Pods,
        "deployments" => Source::Deployments,
        "replicasets" => Source::ReplicaSets,
        "statefulsets" => Source::StatefulSets,
        "daemonsets" => Source::DaemonSets,
        "jobs" => Source::Jobs,
        "cronjobs" => Source::CronJobs,
        "services" => Source::Services,
        "endpoints" => Source::Endpoints,
        "ingresses" => Source::Ingresses,
        "ingressclasses" => Source::IngressClasses,
        "persistentvolumeclaims" => Source::PersistentVolumeClaims,
        "storageclasses" => Source::StorageClasses,
        "configmaps" => Source::ConfigMaps,
        "secrets" => Source::Secrets,
        "events" => Source::Events,
        _ => return None,
    })
}

/// 100 Deployments, each with a ReplicaSet, a Service with ready endpoints and 10 pods; 3 pods
/// in CrashLoopBackOff and 2 Pending in every tenth Deployment. Returns how many objects an
/// analysis must report.
async fn seed(admin: &kube::Client) -> Result<usize> {
    let pp = PostParams::default();
    let status = PatchParams::default();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(admin.clone(), NAMESPACE);
    let replica_sets: Api<k8s_openapi::api::apps::v1::ReplicaSet> =
        Api::namespaced(admin.clone(), NAMESPACE);
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(admin.clone(), NAMESPACE);
    let endpoints: Api<k8s_openapi::api::core::v1::Endpoints> =
        Api::namespaced(admin.clone(), NAMESPACE);
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(admin.clone(), NAMESPACE);
    let mut failing_pods = 0;
    let mut jobs = Vec::new();
    for d in 0..DEPLOYMENTS {
        let name = format!("app-{d:03}");
        let labels = json!({"app": name});
        let template = json!({
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                     "resources": {"requests": {"cpu": "10m"}}}]},
        });
        let deployment = deployments
            .create(
                &pp,
                &serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "spec": {"replicas": PODS_PER_DEPLOYMENT, "selector": {"matchLabels": labels},
                             "template": template},
                }))?,
            )
            .await?;
        deployments
            .patch_status(&name, &status, &Patch::Merge(json!({"status": {
                "replicas": PODS_PER_DEPLOYMENT, "readyReplicas": PODS_PER_DEPLOYMENT,
                "availableReplicas": PODS_PER_DEPLOYMENT, "updatedReplicas": PODS_PER_DEPLOYMENT,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}],
            }})))
            .await?;
        let rs_name = format!("{name}-7d4b9c6f5");
        let rs = replica_sets
            .create(
                &pp,
                &serde_json::from_value(json!({
                    "metadata": {"name": rs_name, "labels": labels, "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                        "uid": deployment.metadata.uid, "controller": true}]},
                    "spec": {"replicas": PODS_PER_DEPLOYMENT, "selector": {"matchLabels": labels},
                             "template": template},
                }))?,
            )
            .await?;
        replica_sets
            .patch_status(
                &rs_name,
                &status,
                &Patch::Merge(json!({"status": {
                "replicas": PODS_PER_DEPLOYMENT, "readyReplicas": PODS_PER_DEPLOYMENT,
                "availableReplicas": PODS_PER_DEPLOYMENT}})),
            )
            .await?;
        services
            .create(
                &pp,
                &serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "spec": {"selector": labels, "ports": [{"port": 80}]},
                }))?,
            )
            .await?;
        let addresses: Vec<Value> = (0..PODS_PER_DEPLOYMENT)
            .map(|p| json!({"ip": format!("10.1.{d}.{p}")}))
            .collect();
        endpoints
            .create(
                &pp,
                &serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "subsets": [{"addresses": addresses, "ports": [{"port": 80}]}],
                }))?,
            )
            .await?;
        for p in 0..PODS_PER_DEPLOYMENT {
            let state = if d % 10 == 0 && p < 3 {
                failing_pods += 1;
                "crash"
            } else if d % 10 == 0 && p < 5 {
                failing_pods += 1;
                "pending"
            } else {
                "running"
            };
            jobs.push((
                format!("{rs_name}-{p:05}"),
                rs_name.clone(),
                rs.metadata.uid.clone(),
                labels.clone(),
                state,
            ));
        }
    }
    let created: Vec<Result<()>> = futures::stream::iter(jobs)
        .map(|(name, rs_name, rs_uid, labels, state)| {
            let pods = pods.clone();
            async move {
                let mut spec = json!({"containers": [{"name": "app", "image": "registry.example/app:1"}]});
                if state != "pending" {
                    spec["nodeName"] = json!(NODE_NAME);
                }
                pods.create(&PostParams::default(), &serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": labels, "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                        "uid": rs_uid, "controller": true}]},
                    "spec": spec,
                }))?)
                .await?;
                let status = match state {
                    "crash" => json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                        "containerStatuses": [{"name": "app", "ready": false, "restartCount": 7,
                        "image": "registry.example/app:1", "imageID": "",
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
                        "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}]}),
                    "pending" => json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
                        "status": "False", "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 Insufficient cpu."}]}),
                    _ => json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                        "image": "registry.example/app:1", "imageID": "",
                        "state": {"running": {"startedAt": "2026-12-01T10:00:00Z"}}}]}),
                };
                pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
                    .await?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for result in created {
        result?;
    }
    Ok(failing_pods)
}

fn last_tool_record(audit_log: &std::path::Path) -> Result<Value> {
    let text = std::fs::read_to_string(audit_log)?;
    for line in text.lines().rev() {
        let record: Value = serde_json::from_str(line)?;
        if record["mcp"]["method"] == "tools/call" && record["stage"] == "ResponseComplete" {
            return Ok(record);
        }
    }
    bail!("no tools/call record in the audit log")
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1);
    sorted.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1e3)
}

//! Measures the CPU cost of each stage kubegate adds to a `list-resources` call, in-process and
//! without a network: JWT verification (ES256), the Cedar decision, reading the API server's list,
//! encoding the MCP response, and writing the audit record of a read (through the audit writer
//! thread, to the page cache; `benches/audit_log.rs` measures durable writes).
//!
//! `cargo bench --features dev --bench gate_stages`. Each stage runs for about a second; the median and p99 of
//! per-iteration times are printed.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Result;
use kube::core::{ApiResource, GroupVersionKind};
use kubegate::audit::{AuditLog, AuditRecord, KubeCall};
use kubegate::auth::Authenticator;
use kubegate::config::{AuditLevel, AuthConfig};
use kubegate::dev::{self, IssuerKey, TokenRequest};
use kubegate::kube::{ApiCatalog, Served};
use kubegate::policy::{NamespaceDirectory, NamespaceFacts, PolicyEngine, RequestFacts};
use kubegate::tool::{ListResources, ToolCall};
use serde_json::{Value, json};

struct OneNamespace;

impl NamespaceDirectory for OneNamespace {
    fn namespace(&self, name: &str) -> Option<NamespaceFacts> {
        (name == "bench-a").then(|| NamespaceFacts {
            labels: BTreeMap::from([("kubegate.io/tenant".to_owned(), "bench".to_owned())]),
            tenant: Some("bench".to_owned()),
        })
    }
    fn names(&self) -> Vec<String> {
        vec!["bench-a".to_owned()]
    }
}

/// What a 1.20 API server serves of pods.
fn served() -> ApiCatalog {
    ApiCatalog::of([Served {
        resource: ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("", "v1", "Pod"),
            "pods",
        ),
        namespaced: true,
    }])
}

fn main() -> Result<()> {
    kubegate::install_crypto_provider();
    let dir = tempfile::tempdir()?;

    // Authentication: a real ES256 token verified against its public key.
    let key = IssuerKey::generate()?;
    let key_file = dir.path().join("issuer.pub.pem");
    std::fs::write(&key_file, &key.public_pem)?;
    let auth: AuthConfig = toml::from_str(&format!(
        "[[jwt]]\n{}",
        dev::dev_issuer_toml(&key_file.display().to_string())
    ))?;
    let auth = Authenticator::from_config(&auth)?;
    // Static keys: authentication never waits on anything, so polling it once completes it.
    let authenticate = |token: Option<&[u8]>| {
        futures::executor::block_on(auth.authenticate(token, IpAddr::from([127, 0, 0, 1])))
    };
    let mint = || {
        dev::mint_token(
            key.private_pem.as_bytes(),
            &TokenRequest {
                issuer: dev::DEV_ISSUER.into(),
                audience: dev::DEV_AUDIENCE.into(),
                subject: "alice".into(),
                groups: vec!["team-a-devs".into()],
                tenant: Some("bench".into()),
                email: Some("alice@example.com".into()),
                lifetime: Duration::from_secs(3600),
            },
        )
        .map(|token| format!("Bearer {token}").into_bytes())
    };
    let header = mint()?;
    // Distinct tokens (each has its own jti), so that each is verified on first use.
    let fresh: Vec<Vec<u8>> = (0..3_000).map(|_| mint()).collect::<Result<_, _>>()?;
    let caller = authenticate(Some(&header))?;

    // The shipped policies.
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let policy = PolicyEngine::load(
        kubegate::policy::PolicySources {
            paths: vec![
                policies.join("tenant-isolation.cedar"),
                policies.join("platform-admins.cedar"),
            ],
            ..Default::default()
        },
        "local",
    )?;
    let arguments = json!({"resourceType": "pods", "namespace": "bench-a"});
    let served = served();
    let parse = |arguments: &Value| match arguments {
        Value::Object(args) => ToolCall::parse("list-resources", args, &served),
        _ => unreachable!("the arguments are an object"),
    };
    let list_call: ListResources = serde_json::from_value(arguments.clone())?;
    let facts = RequestFacts {
        transport: "streamable-http",
        source_ip: IpAddr::from([127, 0, 0, 1]),
        protocol_version: "2025-06-18".into(),
        session_id: None,
        time: jiff::Timestamp::now(),
    };

    let list = pod_list(20);
    let audit = AuditLog::open(&kubegate::config::AuditConfig::at(
        dir.path().join("audit.log"),
    ))?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;

    println!(
        "stage costs for one list-resources call (20 pods, {} bytes from the API server)",
        list.len()
    );
    println!("{:<34} {:>10} {:>10}", "stage", "p50", "p99");
    let mut unused = fresh.iter();
    stage_n(
        "JWT, first use of a token (ES256)",
        fresh.len() - 50,
        || {
            let token = unused.next().map(Vec::as_slice);
            black_box(authenticate(black_box(token)).is_ok());
        },
    );
    stage("JWT, token seen before (cache)", || {
        black_box(authenticate(Some(black_box(&header))).is_ok());
    });
    stage("Cedar decision (shipped policies)", || {
        let call =
            parse(&arguments).map(|call| policy.authorize(&caller, call, &facts, &OneNamespace));
        black_box(matches!(call, Ok(Ok(_))));
    });
    stage("parse tools/call + arguments", || {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list-resources","arguments":{"resourceType":"pods","namespace":"bench-a"}}}"#;
        let message = kubegate::mcp::jsonrpc::parse(black_box(body));
        black_box(message.is_ok() && parse(&arguments).is_ok());
    });
    stage("list answer (filter, table) + encoding", || {
        let answer = list_call.answer(black_box(&list), |_| None, |_| true, |_| None);
        let answer = answer.unwrap_or_else(|_| kubegate::tool::ToolOutput::text(""));
        let response = kubegate::mcp::tool_result(
            &json!(1),
            &answer.text,
            answer.structured.as_deref(),
            false,
        );
        black_box(serde_json::to_vec(&response).map(|v| v.len()).unwrap_or(0));
    });
    stage("audit record (encode, chain, write)", || {
        let mut record = AuditRecord::begin(
            AuditLevel::Request,
            "streamable-http",
            IpAddr::from([127, 0, 0, 1]),
            Some("bench".into()),
        );
        record.set_arguments(&arguments);
        record.kube.push(KubeCall {
            verb: "list",
            uri: "/api/v1/namespaces/bench-a/pods".into(),
            code: 200,
            audit_id: Some("0b8e5a1e-6a4e-4d7e-9b7a-2f1e3c4d5e6f".into()),
            latency_micros: 2000,
            started: None,
        });
        black_box(runtime.block_on(audit.write(&mut record)).is_ok());
    });
    Ok(())
}

/// Runs `f` repeatedly for about a second and prints the median and p99 of its duration.
fn stage(name: &str, f: impl FnMut()) {
    stage_n(name, usize::MAX, f);
}

/// Runs `f` at most `limit` times (after 50 warm-up runs), for at most about a second.
fn stage_n(name: &str, limit: usize, mut f: impl FnMut()) {
    for _ in 0..50 {
        f();
    }
    let mut times = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) && times.len() < limit {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name:<34} {:>8.1}µs {:>8.1}µs",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6
    );
}

/// A PodList as kube-apiserver 1.20 writes it: 20 pods with two containers and a running status.
fn pod_list(pods: usize) -> Vec<u8> {
    let items: Vec<Value> = (0..pods)
        .map(|i| {
            json!({
                "metadata": {"name": format!("web-7d4b9c6f5-{i:05}"), "namespace": "bench-a",
                    "uid": format!("1b4e28ba-2fa1-11d2-883f-{i:012}"), "resourceVersion": "4242",
                    "creationTimestamp": "2026-11-20T08:00:00Z",
                    "labels": {"app": "web", "tier": "frontend", "pod-template-hash": "7d4b9c6f5"},
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
                    "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                        "time": "2026-11-20T08:00:00Z", "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}]},
                "spec": {"containers": [
                    {"name": "web", "image": "registry.example/shop/web:2.4.1",
                     "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                     "env": [{"name": "LISTEN_ADDR", "value": ":8080"}, {"name": "LOG_LEVEL", "value": "info"}],
                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                     "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                        "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                     "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent"},
                    {"name": "metrics", "image": "registry.example/exporter:0.9",
                     "ports": [{"containerPort": 9090, "protocol": "TCP"}], "imagePullPolicy": "IfNotPresent"}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler", "priority": 0, "enableServiceLinks": true},
                "status": {"phase": "Running", "podIP": format!("10.244.1.{i}"), "hostIP": "10.0.0.5",
                    "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
                    "containerStatuses": [
                        {"name": "web", "ready": true, "restartCount": 0, "image": "registry.example/shop/web:2.4.1",
                         "imageID": "", "state": {"running": {"startedAt": "2026-11-20T08:00:00Z"}}},
                        {"name": "metrics", "ready": true, "restartCount": 0, "image": "registry.example/exporter:0.9",
                         "imageID": "", "state": {"running": {"startedAt": "2026-11-20T08:00:00Z"}}}]},
            })
        })
        .collect();
    serde_json::to_vec(&json!({"kind": "PodList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "4242"}, "items": items}))
    .unwrap_or_default()
}

//! The kubelet stand-in behind the real API server's `pods/log`: the API server checks RBAC and
//! container names, then proxies to it; it honours tailLines, previous, timestamps, sinceSeconds.

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use serde_json::json;

use crate::support::cluster::{NODE_NAME, VIEW_ROLE};
use crate::support::{self, tenant_namespace};

#[tokio::test]
async fn pod_logs_travel_through_the_api_server_to_the_stand_in() -> Result<()> {
    let plane = support::cluster();
    let admin = plane.client("admin").await?;
    tenant_namespace(
        &admin,
        "logs-a",
        Some("tenant-logs"),
        "logs-devs",
        VIEW_ROLE,
    )
    .await?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "api-0"},
        "spec": {"nodeName": NODE_NAME, "containers": [{"name": "api", "image": "registry.example/api:1"}]},
    }))?;
    let pods = Api::<Pod>::namespaced(admin.clone(), "logs-a");
    pods.create(&PostParams::default(), &pod).await?;
    let dir = plane.container_logs.join("logs-a").join("api-0");
    std::fs::create_dir_all(&dir)?;
    let now = jiff::Timestamp::now();
    let old = now - jiff::SignedDuration::from_secs(3600);
    std::fs::write(
        dir.join("api.log"),
        format!("{old} starting\n{now} listening on :8080\n{now} GET /healthz 200\n"),
    )?;
    std::fs::write(
        dir.join("api.previous.log"),
        format!("{old} panic: out of memory\n"),
    )?;

    let all = pods.logs("api-0", &LogParams::default()).await?;
    assert_eq!(all, "starting\nlistening on :8080\nGET /healthz 200\n");
    let tail = pods
        .logs(
            "api-0",
            &LogParams {
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await?;
    assert_eq!(tail, "GET /healthz 200\n");
    let recent = pods
        .logs(
            "api-0",
            &LogParams {
                since_seconds: Some(600),
                ..LogParams::default()
            },
        )
        .await?;
    assert_eq!(recent, "listening on :8080\nGET /healthz 200\n");
    let previous = pods
        .logs(
            "api-0",
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await?;
    assert_eq!(previous, "panic: out of memory\n");
    let stamped = pods
        .logs(
            "api-0",
            &LogParams {
                timestamps: true,
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await?;
    assert_eq!(stamped, format!("{now} GET /healthz 200\n"));

    // The API server validates container names before asking the kubelet.
    let wrong = pods
        .logs(
            "api-0",
            &LogParams {
                container: Some("sidecar".into()),
                ..LogParams::default()
            },
        )
        .await;
    assert!(
        matches!(wrong, Err(kube::Error::Api(ref s)) if s.code == 400),
        "{wrong:?}"
    );
    // And RBAC: bob has no role in this namespace.
    let bob = plane.client("bob").await?;
    let denied = Api::<Pod>::namespaced(bob, "logs-a")
        .logs("api-0", &LogParams::default())
        .await;
    assert!(
        matches!(denied, Err(kube::Error::Api(ref s)) if s.code == 403),
        "{denied:?}"
    );
    Ok(())
}

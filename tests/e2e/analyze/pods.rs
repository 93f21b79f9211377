//! The Pod analyzer: a pod in each failing state k8sgpt knows, beside healthy pods, in one
//! namespace, analyzed by a tenant through policy and impersonation.

use anyhow::Result;
use serde_json::{Value, json};

use super::{
    DEPLOYMENT, POD, REPLICA_SET, analyze, container_status, create, create_with_status,
    deployment, in_ns, owned_by, template, warning,
};
use crate::support::cluster::VIEW_ROLE;
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace};

/// A pod of one container `app` (labelled `app: name`), with `spec` merged over that.
fn pod(name: &str, spec: Value) -> Value {
    let mut pod = json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    });
    if let (Some(base), Some(more)) = (pod["spec"].as_object_mut(), spec.as_object()) {
        base.extend(more.clone());
    }
    pod
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({"waiting": {"reason": reason, "message": message}})
}

fn running() -> Value {
    json!({"running": {"startedAt": "2024-05-01T10:00:00Z"}})
}

fn pending(reason: &str, message: &str) -> Value {
    json!({
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": reason, "message": message}],
    })
}

#[tokio::test]
async fn pods_in_each_failing_state_are_reported_with_the_reason_and_their_owner() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-pods";
    tenant_namespace(&admin, ns, Some("az-pods"), "az-pods-devs", VIEW_ROLE).await?;
    let put = |name: &str, spec: Value, status: Value| {
        let admin = admin.clone();
        let object = pod(name, spec);
        async move { create_with_status(&admin, POD, Some(ns), object, status).await }
    };

    // Deployment web → ReplicaSet web-6d4cf56db6 → its crash-looping pod.
    let web = create(&admin, DEPLOYMENT, Some(ns), deployment("web", 1)).await?;
    let rs = create(
        &admin,
        REPLICA_SET,
        Some(ns),
        json!({
            "metadata": {"name": "web-6d4cf56db6", "ownerReferences": owned_by(&web)},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template("web")},
        }),
    )
    .await?;
    let mut crashing = pod("web-6d4cf56db6-x7k2p", json!({}));
    crashing["metadata"]["labels"] = json!({"app": "web"});
    crashing["metadata"]["ownerReferences"] = owned_by(&rs);
    create(&admin, POD, Some(ns), crashing).await?;
    super::set_status(
        &admin,
        POD,
        Some(ns),
        "web-6d4cf56db6-x7k2p",
        json!({"phase": "Running", "containerStatuses": [{
            "name": "app", "ready": false, "restartCount": 6, "image": "registry.example/app:1", "imageID": "",
            "state": waiting("CrashLoopBackOff", "back-off 5m0s restarting failed container=app"),
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                         "startedAt": "2024-05-01T10:00:00Z", "finishedAt": "2024-05-01T10:00:09Z"}},
        }]}),
    )
    .await?;

    put(
        "unschedulable",
        json!({}),
        pending(
            "Unschedulable",
            "0/3 nodes are available: 3 Insufficient cpu.",
        ),
    )
    .await?;
    // Kubernetes 1.20 has no spec.schedulingGates (1.26 added them; this API server drops the
    // field), so the gated pod is as the scheduler reports one: Pending, PodScheduled False
    // because SchedulingGated.
    put(
        "gated",
        json!({}),
        pending(
            "SchedulingGated",
            "Scheduling is blocked due to non-empty scheduling gates",
        ),
    )
    .await?;
    put(
        "evicted",
        json!({}),
        json!({"phase": "Failed", "reason": "Evicted",
               "message": "The node was low on resource: memory. Container app was using 1Gi, which exceeds its request of 0."}),
    )
    .await?;
    for (name, reason, message) in [
        (
            "image-backoff",
            "ImagePullBackOff",
            "Back-off pulling image \"registry.example/nope:1\"",
        ),
        (
            "image-error",
            "ErrImagePull",
            "rpc error: code = NotFound desc = failed to pull and unpack image \"registry.example/nope:2\": not found",
        ),
        (
            "config-error",
            "CreateContainerConfigError",
            "configmap \"app-settings\" not found",
        ),
    ] {
        put(
            name,
            json!({}),
            json!({"phase": "Pending", "containerStatuses": [container_status("app", false, waiting(reason, message))]}),
        )
        .await?;
    }
    put(
        "init-failing",
        json!({"initContainers": [{"name": "migrate", "image": "registry.example/migrate:1"}]}),
        json!({"phase": "Pending",
               "initContainerStatuses": [{
                   "name": "migrate", "ready": false, "restartCount": 4, "image": "registry.example/migrate:1", "imageID": "",
                   "state": waiting("CrashLoopBackOff", "back-off 2m40s restarting failed container=migrate"),
                   "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                "startedAt": "2024-05-01T10:00:00Z", "finishedAt": "2024-05-01T10:00:02Z"}},
               }],
               "containerStatuses": [container_status("app", false, waiting("PodInitializing", ""))]}),
    )
    .await?;
    put(
        "creating",
        json!({"volumes": [{"name": "certs", "secret": {"secretName": "tls-certs"}}]}),
        json!({"phase": "Pending",
               "containerStatuses": [container_status("app", false, waiting("ContainerCreating", ""))]}),
    )
    .await?;
    warning(
        &admin,
        ns,
        ("Pod", "creating"),
        None,
        "FailedMount",
        "MountVolume.SetUp failed for volume \"certs\" : secret \"tls-certs\" not found",
        20,
    )
    .await?;
    put(
        "exited",
        json!({"restartPolicy": "Never"}),
        json!({"phase": "Failed", "containerStatuses": [container_status("app", false, json!({
            "terminated": {"exitCode": 2, "reason": "Error", "message": "config file /etc/app.yaml missing",
                           "startedAt": "2024-05-01T10:00:00Z", "finishedAt": "2024-05-01T10:00:01Z"}}))]}),
    )
    .await?;
    put(
        "unready",
        json!({}),
        json!({"phase": "Running", "containerStatuses": [container_status("app", false, running())]}),
    )
    .await?;
    warning(
        &admin,
        ns,
        ("Pod", "unready"),
        Some("spec.containers{app}"),
        "Unhealthy",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
        10,
    )
    .await?;

    // Healthy: running and ready; completed; just created (no status yet); running, not ready
    // and no failing probe said so; a failed container the kubelet starts again.
    put(
        "healthy",
        json!({}),
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [container_status("app", true, running())]}),
    )
    .await?;
    put(
        "completed",
        json!({"restartPolicy": "Never"}),
        json!({"phase": "Succeeded", "containerStatuses": [container_status("app", false, json!({
            "terminated": {"exitCode": 0, "reason": "Completed",
                           "startedAt": "2024-05-01T10:00:00Z", "finishedAt": "2024-05-01T10:00:05Z"}}))]}),
    )
    .await?;
    create(&admin, POD, Some(ns), pod("fresh", json!({}))).await?;
    put(
        "starting",
        json!({}),
        json!({"phase": "Running", "containerStatuses": [container_status("app", false, running())]}),
    )
    .await?;
    put(
        "restarting",
        json!({}),
        json!({"phase": "Running", "containerStatuses": [container_status("app", false, json!({
            "terminated": {"exitCode": 1, "reason": "Error",
                           "startedAt": "2024-05-01T10:00:00Z", "finishedAt": "2024-05-01T10:00:01Z"}}))]}),
    )
    .await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("alice", &["az-pods-devs"], "az-pods");
    let found = analyze(&gateway, &token, json!({"namespace": ns, "filters": "Pod"})).await?;

    assert_eq!(
        found.names("Pod"),
        in_ns(
            ns,
            &[
                "config-error",
                "creating",
                "evicted",
                "exited",
                "gated",
                "image-backoff",
                "image-error",
                "init-failing",
                "unready",
                "unschedulable",
                "web-6d4cf56db6-x7k2p",
            ]
        ),
        "exactly the failing pods: {}",
        found.text()
    );
    let structured = found.structured();
    assert_eq!(structured["status"], "ProblemDetected");
    assert_eq!(structured["problems"], 11);
    assert_eq!(structured["analyzers"], json!(["Pod"]));
    let pod_at = |name: &str| format!("{ns}/{name}");
    found.expect(
        "Pod",
        &pod_at("web-6d4cf56db6-x7k2p"),
        "Deployment/web",
        &[
            "container \"app\" is in CrashLoopBackOff",
            "it last terminated with OOMKilled (exit code 137)",
        ],
    );
    found.expect(
        "Pod",
        &pod_at("unschedulable"),
        "",
        &["the pod cannot be scheduled: 0/3 nodes are available: 3 Insufficient cpu."],
    );
    found.expect(
        "Pod",
        &pod_at("gated"),
        "",
        &["the pod is not scheduled until its scheduling gates are removed"],
    );
    found.expect(
        "Pod",
        &pod_at("evicted"),
        "",
        &["the pod was evicted: The node was low on resource: memory."],
    );
    found.expect(
        "Pod",
        &pod_at("image-backoff"),
        "",
        &["container \"app\" is waiting in ImagePullBackOff: Back-off pulling image \"registry.example/nope:1\""],
    );
    found.expect(
        "Pod",
        &pod_at("image-error"),
        "",
        &["container \"app\" is waiting in ErrImagePull: rpc error: code = NotFound"],
    );
    found.expect(
        "Pod",
        &pod_at("config-error"),
        "",
        &["container \"app\" is waiting in CreateContainerConfigError: configmap \"app-settings\" not found"],
    );
    found.expect(
        "Pod",
        &pod_at("init-failing"),
        "",
        &["init container \"migrate\" is in CrashLoopBackOff; it last terminated with Error (exit code 1)"],
    );
    found.expect(
        "Pod",
        &pod_at("creating"),
        "",
        &["container \"app\" is stuck in ContainerCreating (FailedMount): MountVolume.SetUp failed for volume \"certs\" : secret \"tls-certs\" not found"],
    );
    found.expect(
        "Pod",
        &pod_at("exited"),
        "",
        &["container \"app\" terminated with Error (exit code 2): config file /etc/app.yaml missing"],
    );
    found.expect(
        "Pod",
        &pod_at("unready"),
        "",
        &["container \"app\" is not ready: Readiness probe failed: HTTP probe failed with statuscode: 503"],
    );
    // The init-failing pod's app container waits for its init containers: nothing to say of it.
    assert_eq!(
        found
            .failures("Pod", &pod_at("init-failing"))
            .lines()
            .count(),
        1,
        "{}",
        found.failures("Pod", &pod_at("init-failing"))
    );

    // The filters may come as a list, in any case: the same analyzer runs.
    let again = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": ["pod"], "noCache": true}),
    )
    .await?;
    assert_eq!(again.structured()["analyzers"], json!(["Pod"]));
    assert_eq!(again.names("Pod"), found.names("Pod"));
    // An analyzer kubegate does not have is refused, with the list of those it has.
    let refused = gateway
        .client()
        .call_err(
            &token,
            "analyze",
            json!({"namespace": ns, "filters": "Pod,Podz"}),
        )
        .await?;
    assert!(
        refused.contains("unknown analyzer \"Podz\"")
            && refused.contains("HorizontalPodAutoScaler"),
        "{refused}"
    );
    Ok(())
}

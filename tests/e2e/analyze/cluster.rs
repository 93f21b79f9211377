//! The Node, PersistentVolumeClaim, ConfigMap and Storage analyzers: Nodes registered with the
//! conditions a kubelet reports, claims and volumes in the phases their controller sets, and
//! ConfigMaps used and unused.

use anyhow::Result;
use serde_json::{Value, json};

use super::{
    CONFIG_MAP, NODE, POD, PV, PVC, STORAGE_CLASS, analyze, cluster_kinds_for_group, create,
    create_with_status, delete_all, in_ns, warning,
};
use crate::support::cluster::{NODE_NAME, VIEW_ROLE};
use crate::support::{self, GatewayOptions, TestGateway, cluster_role_for_group, tenant_namespace};

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastHeartbeatTime": "2024-05-01T10:00:00Z", "lastTransitionTime": "2024-05-01T09:00:00Z"})
}

#[tokio::test]
async fn nodes_not_ready_or_under_pressure_are_reported_to_a_platform_admin() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    cluster_role_for_group(&admin, "platform-admins", VIEW_ROLE).await?;
    tenant_namespace(
        &admin,
        "az-node-t",
        Some("az-node-t"),
        "az-node-devs",
        VIEW_ROLE,
    )
    .await?;
    let calm = [
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
    ];
    let ready = condition(
        "Ready",
        "True",
        "KubeletReady",
        "kubelet is posting ready status",
    );
    let nodes: [(&str, Vec<Value>); 4] = [
        (
            "az-node-down",
            vec![condition(
                "Ready",
                "False",
                "KubeletNotReady",
                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady",
            )],
        ),
        (
            "az-node-silent",
            vec![condition(
                "Ready",
                "Unknown",
                "NodeStatusUnknown",
                "Kubelet stopped posting node status.",
            )],
        ),
        (
            "az-node-pressed",
            vec![
                ready.clone(),
                condition(
                    "MemoryPressure",
                    "True",
                    "KubeletHasInsufficientMemory",
                    "kubelet has insufficient memory available",
                ),
                condition(
                    "DiskPressure",
                    "True",
                    "KubeletHasDiskPressure",
                    "kubelet has disk pressure",
                ),
                calm[2].clone(),
            ],
        ),
        (
            "az-node-fine",
            [vec![ready.clone()], calm.to_vec()].concat(),
        ),
    ];
    for (name, conditions) in &nodes {
        // Nodes take their status on create, as a kubelet registers one.
        create(
            &admin,
            NODE,
            None,
            json!({"metadata": {"name": name}, "status": {"conditions": conditions}}),
        )
        .await?;
    }

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let carol = gateway.token("carol", &["platform-admins"], "platform");
    let found = analyze(&gateway, &carol, json!({"filters": "Node"})).await?;
    assert_eq!(
        found.names_starting("Node", "az-node-"),
        ["az-node-down", "az-node-pressed", "az-node-silent"],
        "{}",
        found.text()
    );
    assert!(
        !found.names("Node").contains(&NODE_NAME.to_owned()),
        "the kubelet stand-in is ready: {}",
        found.text()
    );
    found.expect("Node", "az-node-down", "", &[
        "Node is not ready, reason KubeletNotReady: container runtime network not ready: NetworkReady=false",
    ]);
    found.expect(
        "Node",
        "az-node-silent",
        "",
        &["Node's readiness is unknown", "NodeStatusUnknown"],
    );
    found.expect("Node", "az-node-pressed", "", &[
        "Node is short of memory (MemoryPressure), reason KubeletHasInsufficientMemory: kubelet has insufficient memory available.",
        "Node is short of disk space (DiskPressure), reason KubeletHasDiskPressure",
    ]);
    assert_eq!(found.failures("Node", "az-node-pressed").lines().count(), 2);

    // A tenant may not list Nodes: none is reported, and the answer says why.
    let tenant = gateway.token("dev", &["az-node-devs"], "az-node-t");
    let refused = analyze(&gateway, &tenant, json!({"filters": "Node"})).await?;
    assert!(refused.results().is_empty(), "{}", refused.text());
    assert!(
        refused
            .notes()
            .contains("Node did not run: Kubernetes does not let you list Node"),
        "{}",
        refused.notes()
    );
    delete_all(
        &admin,
        NODE,
        &[
            "az-node-down",
            "az-node-silent",
            "az-node-pressed",
            "az-node-fine",
        ],
    )
    .await;
    Ok(())
}

#[tokio::test]
async fn claims_pending_because_provisioning_failed_are_reported() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-pvc";
    tenant_namespace(&admin, ns, Some("az-pvc"), "az-pvc-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    let claim = |name: &str| {
        json!({"metadata": {"name": name}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}})
    };
    create_with_status(
        &admin,
        PVC,
        at,
        claim("waiting"),
        json!({"phase": "Pending"}),
    )
    .await?;
    warning(
        &admin,
        ns,
        ("PersistentVolumeClaim", "waiting"),
        None,
        "ProvisioningFailed",
        "storageclass.storage.k8s.io \"fast\" not found",
        60,
    )
    .await?;
    create_with_status(&admin, PVC, at, claim("quiet"), json!({"phase": "Pending"})).await?;
    create_with_status(
        &admin,
        PVC,
        at,
        claim("bound"),
        json!({"phase": "Bound",
        "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}),
    )
    .await?;
    warning(
        &admin,
        ns,
        ("PersistentVolumeClaim", "bound"),
        None,
        "ProvisioningFailed",
        "failed to provision volume: timeout",
        3600,
    )
    .await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-pvc-devs"], "az-pvc");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "PersistentVolumeClaim"}),
    )
    .await?;
    assert_eq!(
        found.names("PersistentVolumeClaim"),
        in_ns(ns, &["waiting"]),
        "{}",
        found.text()
    );
    found.expect("PersistentVolumeClaim", "az-pvc/waiting", "", &[
        "Claim is Pending: provisioning its volume failed: storageclass.storage.k8s.io \"fast\" not found.",
    ]);
    Ok(())
}

#[tokio::test]
async fn config_maps_unused_empty_or_larger_than_1_mb_are_reported() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-cm";
    tenant_namespace(&admin, ns, Some("az-cm"), "az-cm-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    let map = |name: &str, data: Value| json!({"metadata": {"name": name}, "data": data});
    create(
        &admin,
        CONFIG_MAP,
        at,
        map("unused", json!({"mode": "debug"})),
    )
    .await?;
    create(
        &admin,
        CONFIG_MAP,
        at,
        json!({"metadata": {"name": "empty"}}),
    )
    .await?;
    // k8sgpt's "larger than 1 MB": one byte above 1,000,000 is, 1,000,000 is not. (The API
    // server refuses above 1 MiB, 1,048,576 bytes.)
    create(
        &admin,
        CONFIG_MAP,
        at,
        map("large", json!({"blob": "x".repeat(1_000_001)})),
    )
    .await?;
    create(
        &admin,
        CONFIG_MAP,
        at,
        map(
            "at-limit",
            json!({"blob": "x".repeat(999_990), "tail": "y".repeat(10)}),
        ),
    )
    .await?;
    for name in ["by-volume", "by-projection", "by-env", "by-env-from"] {
        create(&admin, CONFIG_MAP, at, map(name, json!({"key": "value"}))).await?;
    }
    create(&admin, POD, at, json!({"metadata": {"name": "consumer"}, "spec": {
        "containers": [{"name": "app", "image": "registry.example/app:1",
            "env": [{"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "by-env", "key": "key"}}}],
            "envFrom": [{"configMapRef": {"name": "by-env-from"}}]}],
        "volumes": [
            {"name": "a", "configMap": {"name": "by-volume"}},
            {"name": "b", "configMap": {"name": "empty"}},
            {"name": "c", "configMap": {"name": "large"}},
            {"name": "d", "configMap": {"name": "at-limit"}},
            {"name": "e", "projected": {"sources": [{"configMap": {"name": "by-projection"}}]}},
        ],
    }})).await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-cm-devs"], "az-cm");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "ConfigMap"}),
    )
    .await?;
    assert_eq!(
        found.names("ConfigMap"),
        in_ns(ns, &["empty", "large", "unused"]),
        "{}",
        found.text()
    );
    found.expect(
        "ConfigMap",
        "az-cm/unused",
        "",
        &["ConfigMap is not used by any pod"],
    );
    found.expect(
        "ConfigMap",
        "az-cm/empty",
        "",
        &["ConfigMap is empty: it has no data and no binaryData."],
    );
    found.expect(
        "ConfigMap",
        "az-cm/large",
        "",
        &["ConfigMap holds 1000001 bytes of data, more than 1 MB"],
    );
    for used in ["empty", "large"] {
        let failures = found.failures("ConfigMap", &format!("az-cm/{used}"));
        assert_eq!(failures.lines().count(), 1, "a pod uses it: {failures}");
    }
    Ok(())
}

#[tokio::test]
async fn released_volumes_claims_on_missing_volumes_or_classes_and_in_tree_classes_are_reported()
-> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-storage";
    tenant_namespace(&admin, ns, Some("az-storage"), "az-storage-devs", VIEW_ROLE).await?;
    cluster_kinds_for_group(&admin, "az-storage-devs").await?;
    let at = Some(ns);
    let volume = |name: &str, claim: &str, policy: &str| {
        json!({"metadata": {"name": name}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": format!("/srv/{name}")},
        "claimRef": {"namespace": ns, "name": claim}}})
    };
    create_with_status(
        &admin,
        PV,
        None,
        volume("az-storage-released", "old-claim", "Retain"),
        json!({"phase": "Released"}),
    )
    .await?;
    create_with_status(
        &admin,
        PV,
        None,
        volume("az-storage-failed", "older-claim", "Recycle"),
        json!({"phase": "Failed", "message": "recycler pod failed: exit code 1"}),
    )
    .await?;
    create_with_status(
        &admin,
        PV,
        None,
        volume("az-storage-bound", "fine", "Delete"),
        json!({"phase": "Bound"}),
    )
    .await?;
    create(
        &admin,
        STORAGE_CLASS,
        None,
        json!({"metadata": {"name": "az-storage-ebs"}, "provisioner": "kubernetes.io/aws-ebs"}),
    )
    .await?;
    create(
        &admin,
        STORAGE_CLASS,
        None,
        json!({"metadata": {"name": "az-storage-csi"}, "provisioner": "ebs.csi.aws.com"}),
    )
    .await?;
    let claim = |name: &str, volume: Option<&str>, class: &str| {
        let mut claim = json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
            "storageClassName": class, "resources": {"requests": {"storage": "1Gi"}}}});
        if let Some(volume) = volume {
            claim["spec"]["volumeName"] = volume.into();
        }
        claim
    };
    let bound =
        json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}});
    create_with_status(
        &admin,
        PVC,
        at,
        claim("fine", Some("az-storage-bound"), "az-storage-csi"),
        bound.clone(),
    )
    .await?;
    create_with_status(
        &admin,
        PVC,
        at,
        claim(
            "bound-to-missing",
            Some("az-storage-nowhere"),
            "az-storage-csi",
        ),
        bound,
    )
    .await?;
    create_with_status(
        &admin,
        PVC,
        at,
        claim("no-class", None, "az-storage-missing"),
        json!({"phase": "Pending"}),
    )
    .await?;
    create_with_status(
        &admin,
        PVC,
        at,
        claim("provisioning", None, "az-storage-csi"),
        json!({"phase": "Pending"}),
    )
    .await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-storage-devs"], "az-storage");
    // On one namespace: its claims, judged against the volumes and classes.
    let claims = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "Storage"}),
    )
    .await?;
    assert_eq!(
        claims.names("PersistentVolumeClaim"),
        in_ns(ns, &["bound-to-missing", "no-class"]),
        "{}",
        claims.text()
    );
    assert_eq!(
        claims.results().len(),
        2,
        "no cluster-scoped object: {}",
        claims.text()
    );
    // On the cluster: the volumes and classes too.
    let found = analyze(&gateway, &token, json!({"filters": "Storage"})).await?;
    assert_eq!(
        found.names_starting("PersistentVolume", "az-storage-"),
        ["az-storage-failed", "az-storage-released"],
        "{}",
        found.text()
    );
    assert_eq!(
        found.names("PersistentVolumeClaim"),
        in_ns(ns, &["bound-to-missing", "no-class"]),
        "{}",
        found.text()
    );
    assert_eq!(
        found.names_starting("StorageClass", "az-storage-"),
        ["az-storage-ebs"],
        "{}",
        found.text()
    );
    found.expect("PersistentVolume", "az-storage-released", "", &[
        "Volume is Released: its claim az-storage/old-claim is gone, and under reclaim policy Retain it keeps its data",
    ]);
    found.expect(
        "PersistentVolume",
        "az-storage-failed",
        "",
        &["Volume is Failed: its automatic reclamation failed: recycler pod failed: exit code 1."],
    );
    found.expect(
        "PersistentVolumeClaim",
        "az-storage/bound-to-missing",
        "",
        &["Claim is bound to PersistentVolume az-storage-nowhere, which does not exist."],
    );
    found.expect(
        "PersistentVolumeClaim",
        "az-storage/no-class",
        "",
        &["Claim is Pending for StorageClass az-storage-missing, which does not exist."],
    );
    found.expect(
        "StorageClass",
        "az-storage-ebs",
        "",
        &[
            "StorageClass uses the deprecated in-tree provisioner kubernetes.io/aws-ebs",
            "CSI driver ebs.csi.aws.com",
        ],
    );
    delete_all(
        &admin,
        PV,
        &[
            "az-storage-released",
            "az-storage-failed",
            "az-storage-bound",
        ],
    )
    .await;
    delete_all(&admin, STORAGE_CLASS, &["az-storage-ebs", "az-storage-csi"]).await;
    Ok(())
}

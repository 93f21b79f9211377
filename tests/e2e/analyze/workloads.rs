//! The Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and CronJob analyzers: controllers'
//! objects with the status their controller would write when they are broken, beside healthy
//! ones.

use anyhow::Result;
use serde_json::{Value, json};

use super::{
    CRON_JOB, DAEMON_SET, DEPLOYMENT, JOB, REPLICA_SET, SECRET, SERVICE, STATEFUL_SET,
    STORAGE_CLASS, analyze, cluster_kinds_for_group, create, create_with_status, delete_all,
    deployment, in_ns, owned_by, set_status, template, warning,
};
use crate::support::cluster::{EDIT_ROLE, VIEW_ROLE};
use crate::support::{self, GatewayOptions, TestGateway, bind_in_namespace, tenant_namespace};

#[tokio::test]
async fn deployments_short_of_ready_replicas_or_past_their_deadline_are_reported() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-deploy";
    tenant_namespace(&admin, ns, Some("az-deploy"), "az-deploy-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    create_with_status(
        &admin,
        DEPLOYMENT,
        at,
        deployment("short", 3),
        json!({"replicas": 3, "updatedReplicas": 3, "readyReplicas": 1, "availableReplicas": 1}),
    )
    .await?;
    create_with_status(&admin, DEPLOYMENT, at, deployment("stuck", 1), json!({
        "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                        "message": "ReplicaSet \"stuck-7f9c6d8b5\" has timed out progressing."}],
    })).await?;
    create_with_status(&admin, DEPLOYMENT, at, deployment("fine", 2), json!({
        "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
        "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                        "message": "ReplicaSet \"fine-5c9f\" has successfully progressed."}],
    })).await?;
    create(&admin, DEPLOYMENT, at, deployment("idle", 0)).await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-deploy-devs"], "az-deploy");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "Deployment"}),
    )
    .await?;
    assert_eq!(
        found.names("Deployment"),
        in_ns(ns, &["short", "stuck"]),
        "{}",
        found.text()
    );
    found.expect(
        "Deployment",
        "az-deploy/short",
        "",
        &["Deployment short has 1 ready replica(s) of 3 desired"],
    );
    found.expect("Deployment", "az-deploy/stuck", "", &[
        "Deployment stuck is not progressing: ProgressDeadlineExceeded: ReplicaSet \"stuck-7f9c6d8b5\" has timed out progressing.",
    ]);
    Ok(())
}

#[tokio::test]
async fn replica_sets_that_cannot_create_their_pods_are_reported_under_their_deployment()
-> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-rs";
    tenant_namespace(&admin, ns, Some("az-rs"), "az-rs-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    let replica_set = |name: &str, app: &str, replicas: i64, owner: Option<&Value>| {
        let mut rs = json!({
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}}, "template": template(app)},
        });
        if let Some(owner) = owner {
            rs["metadata"]["ownerReferences"] = owned_by(owner);
        }
        rs
    };
    let api = create_with_status(
        &admin,
        DEPLOYMENT,
        at,
        deployment("api", 2),
        json!({"replicas": 0, "readyReplicas": 0}),
    )
    .await?;
    // No pod: the ReplicaSet controller's FailedCreate says why.
    create(
        &admin,
        REPLICA_SET,
        at,
        replica_set("api-5f8d7c9b4", "api", 2, Some(&api)),
    )
    .await?;
    warning(&admin, ns, ("ReplicaSet", "api-5f8d7c9b4"), None, "FailedCreate",
        "Error creating: pods \"api-5f8d7c9b4-\" is forbidden: exceeded quota: compute, requested: cpu=2, used: cpu=8, limited: cpu=8",
        15).await?;
    create_with_status(&admin, REPLICA_SET, at, replica_set("full", "full", 1, None),
        json!({"replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1})).await?;
    // It failed once, and has its pods now: an old event says nothing.
    create_with_status(&admin, REPLICA_SET, at, replica_set("recovered", "recovered", 1, None),
        json!({"replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1})).await?;
    warning(
        &admin,
        ns,
        ("ReplicaSet", "recovered"),
        None,
        "FailedCreate",
        "Error creating: pods \"recovered-\" is forbidden: exceeded quota: compute",
        3600,
    )
    .await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-rs-devs"], "az-rs");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "ReplicaSet"}),
    )
    .await?;
    assert_eq!(
        found.names("ReplicaSet"),
        in_ns(ns, &["api-5f8d7c9b4"]),
        "{}",
        found.text()
    );
    found.expect("ReplicaSet", "az-rs/api-5f8d7c9b4", "Deployment/api", &[
        "ReplicaSet api-5f8d7c9b4 has 0 of 2 pod(s) and cannot create more: FailedCreate: Error creating: pods \"api-5f8d7c9b4-\" is forbidden: exceeded quota: compute",
    ]);
    Ok(())
}

#[tokio::test]
async fn stateful_sets_missing_their_service_or_storage_class_or_replicas_are_reported()
-> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-sts";
    tenant_namespace(&admin, ns, Some("az-sts"), "az-sts-devs", VIEW_ROLE).await?;
    cluster_kinds_for_group(&admin, "az-sts-devs").await?;
    bind_in_namespace(&admin, ns, "az-sts-viewers", VIEW_ROLE).await?;
    let at = Some(ns);
    create(
        &admin,
        STORAGE_CLASS,
        None,
        json!({"metadata": {"name": "az-sts-standard"}, "provisioner": "example.com/none"}),
    )
    .await?;
    create(
        &admin,
        SERVICE,
        at,
        json!({"metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}}),
    )
    .await?;
    let stateful_set = |name: &str, service: &str, replicas: i64, class: Option<&str>| {
        let mut sts = json!({
            "metadata": {"name": name},
            "spec": {"serviceName": service, "replicas": replicas,
                     "selector": {"matchLabels": {"app": name}}, "template": template(name)},
        });
        if let Some(class) = class {
            sts["spec"]["volumeClaimTemplates"] = json!([{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                         "resources": {"requests": {"storage": "1Gi"}}},
            }]);
        }
        sts
    };
    // 1.20 has no status.availableReplicas (the API server drops it): readyReplicas counts.
    let ready =
        |n: i64, of: i64| json!({"replicas": of, "readyReplicas": n, "currentReplicas": of});
    create_with_status(
        &admin,
        STATEFUL_SET,
        at,
        stateful_set("no-service", "db-headless", 1, None),
        ready(1, 1),
    )
    .await?;
    create_with_status(
        &admin,
        STATEFUL_SET,
        at,
        stateful_set("no-class", "db", 1, Some("az-sts-missing")),
        ready(1, 1),
    )
    .await?;
    create_with_status(
        &admin,
        STATEFUL_SET,
        at,
        stateful_set("unavailable", "db", 3, None),
        ready(1, 3),
    )
    .await?;
    create_with_status(
        &admin,
        STATEFUL_SET,
        at,
        stateful_set("fine", "db", 2, Some("az-sts-standard")),
        ready(2, 2),
    )
    .await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-sts-devs"], "az-sts");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "StatefulSet"}),
    )
    .await?;
    assert_eq!(
        found.names("StatefulSet"),
        in_ns(ns, &["no-class", "no-service", "unavailable"]),
        "{}",
        found.text()
    );
    found.expect("StatefulSet", "az-sts/no-service", "",
        &["StatefulSet no-service names the governing Service \"db-headless\", which does not exist"]);
    found.expect("StatefulSet", "az-sts/no-class", "",
        &["StatefulSet no-class claims volumes of StorageClass \"az-sts-missing\", which does not exist"]);
    found.expect(
        "StatefulSet",
        "az-sts/unavailable",
        "",
        &["StatefulSet unavailable has 1 available replica(s) of 3 desired"],
    );

    // A caller who may not list StorageClasses is not told one is missing.
    let viewer = gateway.token("viewer", &["az-sts-viewers"], "az-sts");
    let seen = analyze(
        &gateway,
        &viewer,
        json!({"namespace": ns, "filters": "StatefulSet"}),
    )
    .await?;
    assert_eq!(
        seen.names("StatefulSet"),
        in_ns(ns, &["no-service", "unavailable"]),
        "{}",
        seen.text()
    );
    delete_all(&admin, STORAGE_CLASS, &["az-sts-standard"]).await;
    Ok(())
}

#[tokio::test]
async fn daemon_sets_short_of_ready_pods_or_naming_a_missing_pull_secret_are_reported() -> Result<()>
{
    let admin = support::cluster().client("admin").await?;
    let ns = "az-ds";
    // Seeing that a Secret is missing takes listing Secrets: the edit role.
    tenant_namespace(&admin, ns, Some("az-ds"), "az-ds-devs", EDIT_ROLE).await?;
    bind_in_namespace(&admin, ns, "az-ds-viewers", VIEW_ROLE).await?;
    let at = Some(ns);
    create(
        &admin,
        SECRET,
        at,
        json!({"metadata": {"name": "regcred"}, "data": {"auth": "eA=="}}),
    )
    .await?;
    let daemon_set = |name: &str, pull_secret: Option<&str>| {
        let mut ds = json!({
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name)},
        });
        if let Some(secret) = pull_secret {
            ds["spec"]["template"]["spec"]["imagePullSecrets"] = json!([{"name": secret}]);
        }
        ds
    };
    let scheduled = |ready: i64, of: i64| {
        json!({
            "currentNumberScheduled": of, "desiredNumberScheduled": of, "numberMisscheduled": 0,
            "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": of,
        })
    };
    create_with_status(
        &admin,
        DAEMON_SET,
        at,
        daemon_set("short", None),
        scheduled(1, 3),
    )
    .await?;
    create_with_status(
        &admin,
        DAEMON_SET,
        at,
        daemon_set("no-pull-secret", Some("regcred-missing")),
        scheduled(1, 1),
    )
    .await?;
    create_with_status(
        &admin,
        DAEMON_SET,
        at,
        daemon_set("fine", Some("regcred")),
        scheduled(2, 2),
    )
    .await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-ds-devs"], "az-ds");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "DaemonSet"}),
    )
    .await?;
    assert_eq!(
        found.names("DaemonSet"),
        in_ns(ns, &["no-pull-secret", "short"]),
        "{}",
        found.text()
    );
    found.expect(
        "DaemonSet",
        "az-ds/short",
        "",
        &["DaemonSet short has 1 ready pod(s) of 3 scheduled"],
    );
    found.expect("DaemonSet", "az-ds/no-pull-secret", "",
        &["DaemonSet no-pull-secret names the image pull Secret \"regcred-missing\", which does not exist"]);

    // A caller who may not list Secrets is not told one is missing.
    let viewer = gateway.token("viewer", &["az-ds-viewers"], "az-ds");
    let seen = analyze(
        &gateway,
        &viewer,
        json!({"namespace": ns, "filters": "DaemonSet"}),
    )
    .await?;
    assert_eq!(
        seen.names("DaemonSet"),
        in_ns(ns, &["short"]),
        "{}",
        seen.text()
    );
    Ok(())
}

#[tokio::test]
async fn jobs_that_failed_are_reported_under_their_cron_job() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-job";
    tenant_namespace(&admin, ns, Some("az-job"), "az-job-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    let pod_template = json!({"spec": {"restartPolicy": "Never",
        "containers": [{"name": "run", "image": "registry.example/etl:1"}]}});
    let nightly = create(
        &admin,
        CRON_JOB,
        at,
        json!({"metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": pod_template}}}}),
    )
    .await?;
    let job = |name: &str| json!({"metadata": {"name": name}, "spec": {"template": pod_template}});
    let mut backoff = job("nightly-28551420");
    backoff["metadata"]["ownerReferences"] = owned_by(&nightly);
    create_with_status(
        &admin,
        JOB,
        at,
        backoff,
        json!({
            "failed": 7, "startTime": "2024-05-01T03:00:00Z",
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                            "message": "Job has reached the specified backoff limit"}],
        }),
    )
    .await?;
    create_with_status(
        &admin,
        JOB,
        at,
        job("retrying"),
        json!({"failed": 2, "active": 1, "startTime": "2024-05-01T03:00:00Z"}),
    )
    .await?;
    create_with_status(&admin, JOB, at, job("done"), json!({
        "succeeded": 1, "startTime": "2024-05-01T03:00:00Z", "completionTime": "2024-05-01T03:01:00Z",
        "conditions": [{"type": "Complete", "status": "True"}],
    })).await?;
    create_with_status(
        &admin,
        JOB,
        at,
        job("running"),
        json!({"active": 1, "startTime": "2024-05-01T03:00:00Z"}),
    )
    .await?;
    // Kubernetes 1.20 has no spec.suspend on Jobs (1.21 added it): the API server drops it, so a
    // suspended Job cannot be built here.
    let mut suspended = job("suspended");
    suspended["spec"]["suspend"] = true.into();
    let stored = create(&admin, JOB, at, suspended).await?;
    assert!(
        stored["spec"].get("suspend").is_none(),
        "1.20 keeps no Job suspend: {stored}"
    );

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-job-devs"], "az-job");
    let found = analyze(&gateway, &token, json!({"namespace": ns, "filters": "Job"})).await?;
    assert_eq!(
        found.names("Job"),
        in_ns(ns, &["nightly-28551420", "retrying"]),
        "{}",
        found.text()
    );
    found.expect("Job", "az-job/nightly-28551420", "CronJob/nightly", &[
        "Job nightly-28551420 failed: BackoffLimitExceeded: Job has reached the specified backoff limit",
    ]);
    found.expect(
        "Job",
        "az-job/retrying",
        "",
        &["Job retrying has 2 failed pod(s) and has not completed"],
    );
    Ok(())
}

#[tokio::test]
async fn suspended_cron_jobs_are_reported_and_the_api_server_refuses_invalid_ones() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-cron";
    tenant_namespace(&admin, ns, Some("az-cron"), "az-cron-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    let cron_job = |name: &str, schedule: &str, extra: Value| {
        let mut spec = json!({"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "run", "image": "registry.example/report:1"}]}}}}});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        json!({"metadata": {"name": name}, "spec": spec})
    };
    create(
        &admin,
        CRON_JOB,
        at,
        cron_job("paused", "0 3 * * *", json!({"suspend": true})),
    )
    .await?;
    create(
        &admin,
        CRON_JOB,
        at,
        cron_job("every-five", "@every 5m", json!({})),
    )
    .await?;
    create(
        &admin,
        CRON_JOB,
        at,
        cron_job(
            "office-hours",
            "*/15 9-17 * * mon-fri",
            json!({"startingDeadlineSeconds": 0}),
        ),
    )
    .await?;
    // The API server checks the schedule and the starting deadline itself (with the cron
    // parser the controller uses): a CronJob with an invalid one cannot exist here.
    for (name, schedule, extra, refused) in [
        ("bad-weekday", "0 0 * * 1-7", json!({}), "spec.schedule"),
        ("bad-fields", "every day", json!({}), "spec.schedule"),
        (
            "zoned",
            "TZ=Europe/Paris 0 * * * *",
            json!({}),
            "spec.schedule",
        ),
        (
            "late",
            "0 * * * *",
            json!({"startingDeadlineSeconds": -5}),
            "spec.startingDeadlineSeconds",
        ),
    ] {
        let error = create(&admin, CRON_JOB, at, cron_job(name, schedule, extra))
            .await
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            error.contains(refused) && error.contains("is invalid"),
            "{name}: {error}"
        );
    }

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-cron-devs"], "az-cron");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "CronJob"}),
    )
    .await?;
    assert_eq!(
        found.names("CronJob"),
        in_ns(ns, &["paused"]),
        "{}",
        found.text()
    );
    found.expect(
        "CronJob",
        "az-cron/paused",
        "",
        &["CronJob paused is suspended"],
    );
    Ok(())
}

#[tokio::test]
async fn a_status_written_after_the_first_answer_is_seen_afresh_with_no_cache() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-deploy-2";
    tenant_namespace(
        &admin,
        ns,
        Some("az-deploy-2"),
        "az-deploy-2-devs",
        VIEW_ROLE,
    )
    .await?;
    create_with_status(
        &admin,
        DEPLOYMENT,
        Some(ns),
        deployment("rolling", 2),
        json!({"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}),
    )
    .await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-deploy-2-devs"], "az-deploy-2");
    let args = json!({"namespace": ns, "filters": "Deployment", "noCache": true});
    let before = analyze(&gateway, &token, args.clone()).await?;
    assert_eq!(before.structured()["status"], "OK", "{}", before.text());
    assert!(
        before
            .text()
            .starts_with("No problems found in namespace \"az-deploy-2\"."),
        "{}",
        before.text()
    );
    set_status(
        &admin,
        DEPLOYMENT,
        Some(ns),
        "rolling",
        json!({"readyReplicas": 0, "availableReplicas": 0}),
    )
    .await?;
    let after = analyze(&gateway, &token, args).await?;
    assert_eq!(
        after.names("Deployment"),
        in_ns(ns, &["rolling"]),
        "{}",
        after.text()
    );
    Ok(())
}

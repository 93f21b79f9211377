//! The analyzers of controllers and their policies: Deployment, ReplicaSet, StatefulSet,
//! DaemonSet, Job, CronJob, HorizontalPodAutoscaler and PodDisruptionBudget.

use serde_json::{Value, json};

use super::{assert_says, assert_silent, meta, only, owned, snapshot, warning};
use crate::analyze::Source;
use crate::analyze::workloads;

fn object(meta: Value, spec: Value, status: Value) -> Value {
    json!({"metadata": meta, "spec": spec, "status": status})
}

/// A pod template whose one container sets `resources`.
fn template(resources: Value) -> Value {
    json!({"spec": {"containers": [{"name": "app", "image": "shop/app:1", "resources": resources}]}})
}

fn deployment(replicas: Value, status: Value) -> Value {
    let spec = json!({"replicas": replicas, "selector": {}, "template": template(json!({}))});
    object(meta("web"), spec, status)
}

#[test]
fn deployments_short_of_ready_replicas_say_how_many() {
    let d = deployment(json!(3), json!({"replicas": 3, "readyReplicas": 1}));
    let finding = only(
        workloads::deployment,
        &snapshot(&[(Source::Deployments, vec![d])]),
        "Deployment",
        "web",
    );
    assert_eq!(
        finding.failures[0].text,
        "Deployment web has 1 ready replica(s) of 3 desired"
    );
    assert_eq!(finding.parent_object, "");

    // No replicas field means one; a paused Deployment says so.
    let mut d = deployment(Value::Null, json!({}));
    d["spec"]["paused"] = json!(true);
    let finding = only(
        workloads::deployment,
        &snapshot(&[(Source::Deployments, vec![d])]),
        "Deployment",
        "web",
    );
    assert_says(&finding, &["0 ready replica(s) of 1 desired", "paused"]);
}

#[test]
fn deployments_still_scaling_down_and_stuck_rollouts_are_reported() {
    let d = deployment(json!(1), json!({"replicas": 3, "readyReplicas": 3}));
    let finding = only(
        workloads::deployment,
        &snapshot(&[(Source::Deployments, vec![d])]),
        "Deployment",
        "web",
    );
    assert_says(&finding, &["3 replica(s) of 1 desired", "scaling down"]);

    let conditions = json!([
        {"type": "Available", "status": "True"},
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": "ReplicaSet \"web-5d8f\" has timed out progressing."},
    ]);
    let d = deployment(
        json!(2),
        json!({"replicas": 2, "readyReplicas": 2, "conditions": conditions}),
    );
    let finding = only(
        workloads::deployment,
        &snapshot(&[(Source::Deployments, vec![d])]),
        "Deployment",
        "web",
    );
    assert_eq!(
        finding.failures[0].text,
        "Deployment web is not progressing: ProgressDeadlineExceeded: ReplicaSet \"web-5d8f\" has timed out progressing."
    );
}

#[test]
fn healthy_and_scaled_to_zero_deployments_yield_nothing() {
    let progressing =
        json!([{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]);
    let healthy = deployment(
        json!(3),
        json!({"replicas": 3, "readyReplicas": 3, "conditions": progressing}),
    );
    let mut zero = deployment(json!(0), json!({}));
    zero["metadata"] = meta("idle");
    assert_silent(
        workloads::deployment,
        &snapshot(&[(Source::Deployments, vec![healthy, zero])]),
    );
}

fn replica_set(status: Value) -> Value {
    object(
        owned("web-5d8f", "Deployment", "web"),
        json!({"replicas": 2, "selector": {}}),
        status,
    )
}

#[test]
fn replica_sets_that_cannot_create_pods_quote_the_condition_or_event() {
    let conditions = json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
        "message": "pods \"web-5d8f-\" is forbidden: exceeded quota: compute"}]);
    let rs = replica_set(json!({"replicas": 0, "conditions": conditions}));
    let s = snapshot(&[
        (Source::ReplicaSets, vec![rs]),
        (Source::Deployments, vec![json!({"metadata": meta("web")})]),
    ]);
    let finding = only(workloads::replica_set, &s, "ReplicaSet", "web-5d8f");
    assert_eq!(finding.parent_object, "Deployment/web");
    assert_says(
        &finding,
        &[
            "0 of 2 pod(s)",
            "FailedCreate: pods \"web-5d8f-\" is forbidden: exceeded quota: compute",
        ],
    );

    let rs = replica_set(json!({"replicas": 0}));
    let event = warning(
        "ReplicaSet",
        "web-5d8f",
        "FailedCreate",
        "Error creating: admission webhook denied",
        5,
    );
    let s = snapshot(&[
        (Source::ReplicaSets, vec![rs]),
        (Source::Events, vec![event]),
    ]);
    let finding = only(workloads::replica_set, &s, "ReplicaSet", "web-5d8f");
    assert_says(
        &finding,
        &[
            "cannot create more",
            "Error creating: admission webhook denied",
        ],
    );
}

#[test]
fn replica_sets_with_their_pods_yield_nothing_even_with_old_events() {
    let rs = replica_set(json!({"replicas": 2, "readyReplicas": 2}));
    let old = warning(
        "ReplicaSet",
        "web-5d8f",
        "FailedCreate",
        "Error creating: quota",
        5,
    );
    assert_silent(
        workloads::replica_set,
        &snapshot(&[(Source::ReplicaSets, vec![rs]), (Source::Events, vec![old])]),
    );
}

fn stateful_set(spec: Value, status: Value) -> Value {
    let mut full = json!({"replicas": 3, "serviceName": "db-headless", "selector": {}, "template": template(json!({}))});
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(extra.clone());
    }
    object(meta("db"), full, status)
}

#[test]
fn stateful_sets_naming_a_missing_service_or_storage_class_are_reported() {
    let claims = json!({"volumeClaimTemplates": [
        {"metadata": {"name": "data"}, "spec": {"storageClassName": "fast"}},
        {"metadata": {"name": "logs"}, "spec": {"storageClassName": "fast"}},
        {"metadata": {"name": "scratch"}, "spec": {"storageClassName": ""}},
        {"metadata": {"name": "default"}, "spec": {}},
    ]});
    let sts = stateful_set(claims, json!({"replicas": 3, "availableReplicas": 3}));
    let s = snapshot(&[
        (Source::StatefulSets, vec![sts]),
        (
            Source::Services,
            vec![object(meta("db"), json!({}), json!({}))],
        ),
        (
            Source::StorageClasses,
            vec![json!({"metadata": {"name": "standard"}, "provisioner": "x"})],
        ),
    ]);
    let finding = only(workloads::stateful_set, &s, "StatefulSet", "db");
    assert_eq!(finding.failures.len(), 2, "{:#?}", finding.failures);
    assert_says(
        &finding,
        &["governing Service \"db-headless\", which does not exist"],
    );
    assert_says(&finding, &["StorageClass \"fast\", which does not exist"]);
}

#[test]
fn stateful_set_references_are_not_judged_where_services_or_classes_were_not_read() {
    let claims = json!({"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"storageClassName": "fast"}}]});
    let sts = stateful_set(claims, json!({"replicas": 3, "availableReplicas": 3}));
    assert_silent(
        workloads::stateful_set,
        &snapshot(&[(Source::StatefulSets, vec![sts.clone()])]),
    );

    let s = snapshot(&[
        (Source::StatefulSets, vec![sts]),
        (
            Source::Services,
            vec![object(meta("db-headless"), json!({}), json!({}))],
        ),
        (
            Source::StorageClasses,
            vec![json!({"metadata": {"name": "fast"}, "provisioner": "x"})],
        ),
    ]);
    assert_silent(workloads::stateful_set, &s);
}

#[test]
fn stateful_sets_short_of_available_replicas_say_why_when_an_event_does() {
    let sts = stateful_set(
        json!({}),
        json!({"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}),
    );
    let event = warning(
        "StatefulSet",
        "db",
        "FailedCreate",
        "create Pod db-1 in StatefulSet db failed: exceeded quota",
        5,
    );
    let s = snapshot(&[
        (Source::StatefulSets, vec![sts]),
        (Source::Events, vec![event]),
    ]);
    let finding = only(workloads::stateful_set, &s, "StatefulSet", "db");
    assert_eq!(
        finding.failures[0].text,
        "StatefulSet db has 1 available replica(s) of 3 desired"
    );
    assert_says(
        &finding,
        &[
            "cannot create its pods",
            "create Pod db-1 in StatefulSet db failed: exceeded quota",
        ],
    );
}

fn daemon_set(pull_secret: &str, ready: i32) -> Value {
    let mut pod = template(json!({}));
    pod["spec"]["imagePullSecrets"] = json!([{"name": pull_secret}]);
    let status = json!({"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": ready});
    object(
        meta("agent"),
        json!({"selector": {}, "template": pod}),
        status,
    )
}

#[test]
fn daemon_sets_short_of_ready_pods_or_naming_a_missing_pull_secret_are_reported() {
    let secrets =
        vec![json!({"metadata": meta("other"), "type": "kubernetes.io/dockerconfigjson"})];
    let s = snapshot(&[
        (Source::DaemonSets, vec![daemon_set("regcred", 1)]),
        (Source::Secrets, secrets),
    ]);
    let finding = only(workloads::daemon_set, &s, "DaemonSet", "agent");
    assert_eq!(
        finding.failures[0].text,
        "DaemonSet agent has 1 ready pod(s) of 3 scheduled"
    );
    assert_says(
        &finding,
        &["image pull Secret \"regcred\", which does not exist"],
    );
}

#[test]
fn healthy_daemon_sets_yield_nothing_and_unread_secrets_are_not_missing() {
    let secrets = vec![json!({"metadata": meta("regcred")})];
    let s = snapshot(&[
        (Source::DaemonSets, vec![daemon_set("regcred", 3)]),
        (Source::Secrets, secrets),
    ]);
    assert_silent(workloads::daemon_set, &s);
    assert_silent(
        workloads::daemon_set,
        &snapshot(&[(Source::DaemonSets, vec![daemon_set("regcred", 3)])]),
    );
}

fn job(spec: Value, status: Value) -> Value {
    object(owned("nightly-2961", "CronJob", "nightly"), spec, status)
}

#[test]
fn jobs_suspended_or_failed_are_reported_under_their_cron_job() {
    let s = snapshot(&[(
        Source::Jobs,
        vec![job(json!({"suspend": true, "template": {}}), json!({}))],
    )]);
    let finding = only(workloads::job, &s, "Job", "nightly-2961");
    assert_eq!(finding.failures[0].text, "Job nightly-2961 is suspended");
    assert_eq!(finding.parent_object, "CronJob/nightly");

    let failed = json!({"failed": 7, "conditions": [{"type": "Failed", "status": "True",
        "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]});
    let s = snapshot(&[(Source::Jobs, vec![job(json!({"template": {}}), failed)])]);
    let finding = only(workloads::job, &s, "Job", "nightly-2961");
    assert_eq!(
        finding.failures,
        vec![crate::analyze::Failure::doc(
            "Job nightly-2961 failed: BackoffLimitExceeded: Job has reached the specified backoff limit",
            crate::analyze::docs::JOBS
        )]
    );

    let retrying = json!({"active": 1, "failed": 2});
    let s = snapshot(&[(Source::Jobs, vec![job(json!({"template": {}}), retrying)])]);
    let finding = only(workloads::job, &s, "Job", "nightly-2961");
    assert_says(&finding, &["2 failed pod(s)", "not completed"]);
}

#[test]
fn jobs_running_or_complete_yield_nothing() {
    let complete = json!({"succeeded": 1, "failed": 1, "conditions": [{"type": "Complete", "status": "True"}]});
    let running = json!({"active": 1});
    let s = snapshot(&[(
        Source::Jobs,
        vec![
            job(json!({"suspend": false}), complete),
            job(json!({}), running),
        ],
    )]);
    assert_silent(workloads::job, &s);
}

fn cron_job(spec: Value) -> Value {
    let mut full = json!({"schedule": "0 3 * * *", "jobTemplate": {}});
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(extra.clone());
    }
    object(meta("nightly"), full, json!({}))
}

#[test]
fn cron_jobs_suspended_misscheduled_or_with_a_negative_deadline_are_reported() {
    let s = snapshot(&[(Source::CronJobs, vec![cron_job(json!({"suspend": true}))])]);
    let finding = only(workloads::cron_job, &s, "CronJob", "nightly");
    assert_eq!(finding.failures[0].text, "CronJob nightly is suspended");

    let s = snapshot(&[(
        Source::CronJobs,
        vec![cron_job(json!({"schedule": "61 3 * * *"}))],
    )]);
    let finding = only(workloads::cron_job, &s, "CronJob", "nightly");
    assert_says(
        &finding,
        &[
            "invalid schedule \"61 3 * * *\"",
            "minute field",
            "out of range",
        ],
    );

    let s = snapshot(&[(
        Source::CronJobs,
        vec![cron_job(json!({"startingDeadlineSeconds": -10}))],
    )]);
    let finding = only(workloads::cron_job, &s, "CronJob", "nightly");
    assert_says(&finding, &["negative starting deadline (-10 seconds)"]);
}

#[test]
fn cron_jobs_that_run_yield_nothing() {
    let zoned = cron_job(
        json!({"schedule": "CRON_TZ=Europe/Berlin 30 6 * * MON-FRI", "startingDeadlineSeconds": 0}),
    );
    let s = snapshot(&[(
        Source::CronJobs,
        vec![cron_job(json!({"suspend": false})), zoned],
    )]);
    assert_silent(workloads::cron_job, &s);
}

fn hpa(kind: &str, target: &str, conditions: Value) -> Value {
    let spec = json!({"maxReplicas": 5, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target}});
    object(
        meta("web"),
        spec,
        json!({"desiredReplicas": 1, "conditions": conditions}),
    )
}

fn with_resources() -> Value {
    template(json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}))
}

#[test]
fn hpas_scaling_a_missing_target_are_reported_where_the_kind_was_read() {
    let s = snapshot(&[(
        Source::HorizontalPodAutoscalers,
        vec![hpa("Deployment", "web", json!([]))],
    )]);
    assert_silent(workloads::hpa, &s);

    let mut s = snapshot(&[(
        Source::HorizontalPodAutoscalers,
        vec![hpa("Deployment", "web", json!([]))],
    )]);
    s.mark_read(Source::Deployments);
    let finding = only(workloads::hpa, &s, "HorizontalPodAutoscaler", "web");
    assert_eq!(
        finding.failures[0].text,
        "HorizontalPodAutoscaler web scales Deployment \"web\", which does not exist"
    );

    let mut s = snapshot(&[(
        Source::HorizontalPodAutoscalers,
        vec![hpa("ReplicaSet", "web-5d8f", json!([]))],
    )]);
    s.mark_read(Source::ReplicaSets);
    let finding = only(workloads::hpa, &s, "HorizontalPodAutoscaler", "web");
    assert_says(&finding, &["ReplicaSet \"web-5d8f\", which does not exist"]);
}

#[test]
fn hpas_scaling_a_target_without_resources_are_reported() {
    let sts = object(
        meta("db"),
        json!({"selector": {}, "template": template(json!({"requests": {"cpu": "1"}}))}),
        json!({}),
    );
    let s = snapshot(&[
        (
            Source::HorizontalPodAutoscalers,
            vec![hpa("StatefulSet", "db", json!([]))],
        ),
        (Source::StatefulSets, vec![sts]),
    ]);
    let finding = only(workloads::hpa, &s, "HorizontalPodAutoscaler", "web");
    assert_says(
        &finding,
        &[
            "StatefulSet \"db\"",
            "no container with resource requests and limits",
        ],
    );
}

#[test]
fn hpas_that_cannot_scale_quote_their_conditions() {
    let conditions = json!([
        {"type": "AbleToScale", "status": "False", "reason": "FailedGetScale", "message": "no matches for kind"},
        {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
         "message": "failed to get cpu utilization: missing request for cpu"},
        {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange"},
    ]);
    let d = object(
        meta("web"),
        json!({"selector": {}, "template": with_resources()}),
        json!({}),
    );
    let s = snapshot(&[
        (
            Source::HorizontalPodAutoscalers,
            vec![hpa("Deployment", "web", conditions)],
        ),
        (Source::Deployments, vec![d]),
    ]);
    let finding = only(workloads::hpa, &s, "HorizontalPodAutoscaler", "web");
    assert_eq!(finding.failures.len(), 2, "{:#?}", finding.failures);
    assert_says(
        &finding,
        &["cannot scale: FailedGetScale: no matches for kind"],
    );
    assert_says(
        &finding,
        &["is not scaling: FailedGetResourceMetric: failed to get cpu utilization"],
    );
}

#[test]
fn hpas_with_a_resourced_target_and_active_scaling_yield_nothing() {
    let conditions = json!([{"type": "AbleToScale", "status": "True"}, {"type": "ScalingActive", "status": "True"}]);
    let d = object(
        meta("web"),
        json!({"selector": {}, "template": with_resources()}),
        json!({}),
    );
    let custom = {
        let mut h = hpa("Rollout", "canary", json!([]));
        h["metadata"] = meta("canary");
        h
    };
    let s = snapshot(&[
        (
            Source::HorizontalPodAutoscalers,
            vec![hpa("Deployment", "web", conditions), custom],
        ),
        (Source::Deployments, vec![d]),
    ]);
    assert_silent(workloads::hpa, &s);
}

fn pdb(allowed: &str, reason: &str) -> Value {
    let spec = json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "edge"]}]}});
    let status = json!({"currentHealthy": 1, "desiredHealthy": 2, "disruptionsAllowed": 0, "expectedPods": 1,
        "conditions": [{"type": "DisruptionAllowed", "status": allowed, "reason": reason, "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    object(meta("web"), spec, status)
}

#[test]
fn pdbs_allowing_no_disruption_say_why_and_what_they_select() {
    let s = snapshot(&[(
        Source::PodDisruptionBudgets,
        vec![pdb("False", "InsufficientPods")],
    )]);
    let finding = only(workloads::pdb, &s, "PodDisruptionBudget", "web");
    assert_eq!(
        finding.failures[0].text,
        "PodDisruptionBudget web allows no disruption: InsufficientPods (1 healthy pod(s), 2 required); \
         it selects pods with app=web, tier In (front, edge)"
    );
}

#[test]
fn pdbs_allowing_disruption_yield_nothing() {
    let s = snapshot(&[(
        Source::PodDisruptionBudgets,
        vec![pdb("True", "SufficientPods")],
    )]);
    assert_silent(workloads::pdb, &s);
}

#[test]
fn budgets_without_conditions_are_judged_by_their_counts_as_kubernetes_1_20_writes_them() {
    let mut blocked = pdb("False", "InsufficientPods");
    blocked["status"]
        .as_object_mut()
        .map(|s| s.remove("conditions"));
    let mut fine = blocked.clone();
    fine["metadata"]["name"] = json!("fine");
    fine["status"]["disruptionsAllowed"] = json!(1);
    let mut empty = blocked.clone();
    empty["metadata"]["name"] = json!("nothing-selected");
    empty["status"]["expectedPods"] = json!(0);
    let s = snapshot(&[(Source::PodDisruptionBudgets, vec![blocked, fine, empty])]);
    let finding = only(workloads::pdb, &s, "PodDisruptionBudget", "web");
    assert!(
        finding.failures[0].text.starts_with(
            "PodDisruptionBudget web allows no disruption: InsufficientPods (1 healthy"
        ),
        "{}",
        finding.failures[0].text
    );
}

//! The Pod and Log analyzers: pods of Deployment web, through its ReplicaSet, in each state
//! k8sgpt reports and in healthy ones.

use serde_json::{Value, json};

use super::{NS, assert_says, assert_silent, meta, only, owned, snapshot, warning};
use crate::analyze::workloads::{self, pods::WAITING_ERRORS};
use crate::analyze::{Finding, Snapshot, Source};

const POD: &str = "web-5d8f-x2";

fn pod(spec: Value, status: Value) -> Value {
    json!({"metadata": owned(POD, "ReplicaSet", "web-5d8f"), "spec": spec, "status": status})
}

fn app() -> Value {
    json!({"containers": [{"name": "app", "image": "shop/app:1"}]})
}

fn container(name: &str, ready: bool, state: Value) -> Value {
    json!({"name": name, "ready": ready, "restartCount": 3, "image": "shop/app:1", "imageID": "", "state": state})
}

fn waiting(name: &str, reason: &str, message: &str) -> Value {
    container(
        name,
        false,
        json!({"waiting": {"reason": reason, "message": message}}),
    )
}

fn terminated(name: &str, reason: &str, exit_code: i32) -> Value {
    container(
        name,
        false,
        json!({"terminated": {"reason": reason, "exitCode": exit_code}}),
    )
}

/// The pods and events, with the ReplicaSet and Deployment that own the pods.
fn cluster(pods: Vec<Value>, events: Vec<Value>) -> Snapshot {
    snapshot(&[
        (Source::Pods, pods),
        (Source::Events, events),
        (
            Source::ReplicaSets,
            vec![json!({"metadata": owned("web-5d8f", "Deployment", "web")})],
        ),
        (Source::Deployments, vec![json!({"metadata": meta("web")})]),
    ])
}

fn the_pod(snapshot: &Snapshot) -> Finding {
    let finding = only(workloads::pod, snapshot, "Pod", POD);
    assert_eq!(finding.parent_object, "Deployment/web");
    finding
}

#[test]
fn unschedulable_pending_pods_quote_the_scheduler() {
    let status = json!({"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient cpu.",
    }]});
    let finding = the_pod(&cluster(vec![pod(app(), status)], vec![]));
    assert_says(
        &finding,
        &[
            "cannot be scheduled",
            "0/3 nodes are available: 3 Insufficient cpu.",
        ],
    );
}

#[test]
fn gated_pods_say_they_wait_for_their_gates() {
    let mut spec = app();
    spec["schedulingGates"] = json!([{"name": "example.com/quota"}]);
    let finding = the_pod(&cluster(
        vec![pod(spec, json!({"phase": "Pending"}))],
        vec![],
    ));
    assert_says(&finding, &["scheduling gates", "example.com/quota"]);

    let status = json!({"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
    }]});
    let finding = the_pod(&cluster(vec![pod(app(), status)], vec![]));
    assert_says(
        &finding,
        &["not scheduled until its scheduling gates are removed"],
    );
}

#[test]
fn evicted_pods_say_why_and_nothing_about_their_stopped_containers() {
    let status = json!({
        "phase": "Failed", "reason": "Evicted",
        "message": "The node was low on resource: memory.",
        "containerStatuses": [terminated("app", "ContainerStatusUnknown", 137)],
    });
    let finding = the_pod(&cluster(vec![pod(app(), status)], vec![]));
    assert_eq!(finding.failures.len(), 1, "{:#?}", finding.failures);
    assert_says(
        &finding,
        &["evicted", "The node was low on resource: memory."],
    );
}

#[test]
fn crash_looping_containers_say_how_they_last_ended() {
    let mut looping = waiting(
        "app",
        "CrashLoopBackOff",
        "back-off 5m0s restarting failed container",
    );
    looping["lastState"] = json!({"terminated": {"reason": "Error", "exitCode": 1}});
    let status = json!({"phase": "Running", "containerStatuses": [looping]});
    let finding = the_pod(&cluster(vec![pod(app(), status)], vec![]));
    assert_eq!(
        finding.failures[0].text,
        "container \"app\" is in CrashLoopBackOff; it last terminated with Error (exit code 1)"
    );

    let mut init = waiting("migrate", "CrashLoopBackOff", "");
    init["lastState"] = json!({"terminated": {"reason": "OOMKilled", "exitCode": 137, "message": "out of\nmemory"}});
    let status = json!({"phase": "Pending", "initContainerStatuses": [init]});
    let finding = the_pod(&cluster(vec![pod(app(), status)], vec![]));
    assert_says(
        &finding,
        &[
            "init container \"migrate\"",
            "OOMKilled (exit code 137): out of memory",
        ],
    );

    // Without a last state, the kubelet's own message is what there is to say.
    let looping = waiting(
        "app",
        "CrashLoopBackOff",
        "back-off 10s restarting failed container=app",
    );
    let status = json!({"phase": "Running", "containerStatuses": [looping]});
    let finding = the_pod(&cluster(vec![pod(app(), status)], vec![]));
    assert_says(
        &finding,
        &["CrashLoopBackOff: back-off 10s restarting failed container=app"],
    );
}

#[test]
fn every_waiting_error_is_reported_with_its_message() {
    assert_eq!(WAITING_ERRORS.len(), 11);
    for reason in WAITING_ERRORS {
        let message = format!("the {reason} message");
        let status =
            json!({"phase": "Pending", "containerStatuses": [waiting("app", reason, &message)]});
        let finding = the_pod(&cluster(vec![pod(app(), status)], vec![]));
        let expected = format!("container \"app\" is waiting in {reason}: {message}");
        assert_eq!(finding.failures[0].text, expected);
        assert!(!finding.failures[0].doc.is_empty(), "{reason} links a doc");
    }
    // In init containers too.
    let status = json!({"phase": "Pending", "initContainerStatuses": [waiting("fetch", "ErrImagePull", "not found")]});
    let finding = the_pod(&cluster(vec![pod(app(), status)], vec![]));
    assert_says(
        &finding,
        &["init container \"fetch\" is waiting in ErrImagePull: not found"],
    );
}

#[test]
fn containers_stuck_creating_quote_the_latest_mount_or_sandbox_event() {
    for reason in [
        "FailedMount",
        "FailedCreatePodSandBox",
        "FailedAttachVolume",
    ] {
        let status = json!({"phase": "Pending", "containerStatuses": [waiting("app", "ContainerCreating", "")]});
        let events = vec![
            warning("Pod", POD, reason, "the older message", 10),
            warning(
                "Pod",
                POD,
                reason,
                "MountVolume.SetUp failed for volume \"config\"",
                50,
            ),
            warning(
                "Pod",
                POD,
                "FailedScheduling",
                "a later, unrelated event",
                90,
            ),
        ];
        let finding = the_pod(&cluster(vec![pod(app(), status)], events));
        let expected = format!(
            "container \"app\" is stuck in ContainerCreating ({reason}): MountVolume.SetUp failed for volume \"config\""
        );
        assert_eq!(finding.failures[0].text, expected);
    }
    let status = json!({"phase": "Pending", "containerStatuses": [
        waiting("app", "ContainerCreating", ""), waiting("proxy", "ContainerCreating", ""),
    ]});
    let events = vec![warning(
        "Pod",
        POD,
        "FailedMount",
        "volume \"data\" not attached",
        5,
    )];
    let finding = the_pod(&cluster(vec![pod(app(), status)], events));
    assert_eq!(finding.failures.len(), 1, "one failure for the pod's event");
    assert_says(
        &finding,
        &[
            "containers \"app\", \"proxy\" are stuck",
            "volume \"data\" not attached",
        ],
    );
}

#[test]
fn containers_creating_without_a_failure_event_are_not_reported() {
    let creating =
        json!({"phase": "Pending", "containerStatuses": [waiting("app", "ContainerCreating", "")]});
    let other = vec![warning("Pod", POD, "FailedScheduling", "0/3 nodes", 5)];
    assert_silent(workloads::pod, &cluster(vec![pod(app(), creating)], other));
    // An event about another pod says nothing about this one.
    let creating =
        json!({"phase": "Pending", "containerStatuses": [waiting("app", "ContainerCreating", "")]});
    let elsewhere = vec![warning("Pod", "web-5d8f-zz", "FailedMount", "timed out", 5)];
    assert_silent(
        workloads::pod,
        &cluster(vec![pod(app(), creating)], elsewhere),
    );
}

#[test]
fn failed_containers_that_will_not_restart_are_reported() {
    let mut never = app();
    never["restartPolicy"] = json!("Never");
    let status = json!({"phase": "Running", "containerStatuses": [terminated("app", "Error", 2)]});
    let finding = the_pod(&cluster(vec![pod(never, status)], vec![]));
    assert_eq!(
        finding.failures[0].text,
        "container \"app\" terminated with Error (exit code 2)"
    );

    // A failed pod restarts nothing, whatever its policy.
    let mut on_failure = app();
    on_failure["restartPolicy"] = json!("OnFailure");
    let status =
        json!({"phase": "Failed", "containerStatuses": [terminated("app", "OOMKilled", 137)]});
    let finding = the_pod(&cluster(vec![pod(on_failure, status)], vec![]));
    assert_says(
        &finding,
        &["container \"app\" terminated with OOMKilled (exit code 137)"],
    );
}

#[test]
fn containers_that_restart_or_succeeded_are_not_reported() {
    let restarting =
        json!({"phase": "Running", "containerStatuses": [terminated("app", "Error", 1)]});
    assert_silent(
        workloads::pod,
        &cluster(vec![pod(app(), restarting)], vec![]),
    );

    let mut never = app();
    never["restartPolicy"] = json!("Never");
    let done =
        json!({"phase": "Succeeded", "containerStatuses": [terminated("app", "Completed", 0)]});
    assert_silent(
        workloads::pod,
        &cluster(vec![pod(never.clone(), done)], vec![]),
    );

    // A sidecar (an init container that restarts always) is started again even so.
    never["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
    let status = json!({
        "phase": "Running",
        "initContainerStatuses": [terminated("proxy", "Error", 1)],
        "containerStatuses": [container("app", true, json!({"running": {}}))],
    });
    assert_silent(workloads::pod, &cluster(vec![pod(never, status)], vec![]));
}

#[test]
fn unready_running_containers_quote_their_failing_probe() {
    let status = json!({"phase": "Running", "containerStatuses": [
        container("app", false, json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}})),
    ]});
    let mut unhealthy = warning(
        "Pod",
        POD,
        "Unhealthy",
        "Readiness probe failed: HTTP probe failed with statuscode: 500",
        5,
    );
    unhealthy["involvedObject"]["fieldPath"] = json!("spec.containers{app}");
    let finding = the_pod(&cluster(vec![pod(app(), status)], vec![unhealthy]));
    assert_eq!(
        finding.failures[0].text,
        "container \"app\" is not ready: Readiness probe failed: HTTP probe failed with statuscode: 500"
    );
}

#[test]
fn unready_containers_without_their_own_unhealthy_event_are_not_reported() {
    let status = json!({"phase": "Running", "containerStatuses": [
        container("app", false, json!({"running": {}})),
    ]});
    assert_silent(
        workloads::pod,
        &cluster(vec![pod(app(), status.clone())], vec![]),
    );
    let mut other = warning("Pod", POD, "Unhealthy", "Liveness probe failed", 5);
    other["involvedObject"]["fieldPath"] = json!("spec.containers{proxy}");
    assert_silent(
        workloads::pod,
        &cluster(vec![pod(app(), status)], vec![other]),
    );
}

#[test]
fn healthy_pods_yield_nothing() {
    let running = json!({
        "phase": "Running",
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
        "containerStatuses": [container("app", true, json!({"running": {}}))],
    });
    let initializing = json!({
        "phase": "Pending",
        "initContainerStatuses": [container("migrate", false, json!({"running": {}}))],
        "containerStatuses": [waiting("app", "PodInitializing", "")],
    });
    let unread_events = warning("Pod", POD, "BackOff", "an event of no failure class", 5);
    assert_silent(
        workloads::pod,
        &cluster(
            vec![pod(app(), running), pod(app(), initializing), json!({})],
            vec![unread_events],
        ),
    );
}

fn with_logs(logs: &str) -> Snapshot {
    let spec = json!({"containers": [{"name": "app"}, {"name": "proxy"}]});
    let running = json!({"phase": "Running"});
    let mut snapshot = cluster(vec![pod(spec, running)], vec![]);
    let key = |c: &str| (NS.to_owned(), POD.to_owned(), c.to_owned());
    snapshot.logs.insert(key("app"), logs.to_owned());
    snapshot
        .logs
        .insert(key("proxy"), "started\nlistening on :8080\n".to_owned());
    snapshot.logs.insert(
        (NS.to_owned(), "gone".to_owned(), "app".to_owned()),
        "error\n".to_owned(),
    );
    snapshot
}

#[test]
fn error_lines_in_logs_are_quoted_the_most_recent_few() {
    let mut logs = String::from("starting\n");
    for i in 1..=8 {
        logs.push_str(&format!("2026-01-01 ERROR request {i} failed\nok {i}\n"));
    }
    let finding = only(
        workloads::log,
        &with_logs(&logs),
        "Pod",
        &format!("{POD}/app"),
    );
    assert_eq!(finding.parent_object, "Deployment/web");
    let texts: Vec<&str> = finding.failures.iter().map(|f| f.text.as_str()).collect();
    assert_eq!(texts.len(), 6, "{texts:#?}");
    assert_eq!(
        texts[0],
        "container \"app\" logged 3 earlier error line(s), not shown"
    );
    assert_eq!(
        texts[1],
        "container \"app\" logged: 2026-01-01 ERROR request 4 failed"
    );
    assert_eq!(
        texts[5],
        "container \"app\" logged: 2026-01-01 ERROR request 8 failed"
    );
}

#[test]
fn log_lines_match_any_case_and_are_cut() {
    let long = format!("Unhandled Exception: {}", "x".repeat(1000));
    let logs = format!("fine\nFAILED to connect\n{long}\n");
    let finding = only(
        workloads::log,
        &with_logs(&logs),
        "Pod",
        &format!("{POD}/app"),
    );
    assert_says(&finding, &["FAILED to connect"]);
    let cut = &finding.failures[1].text;
    assert!(cut.ends_with('…') && cut.chars().count() < 340, "{cut}");
}

#[test]
fn logs_without_error_lines_or_of_unknown_pods_yield_nothing() {
    assert_silent(workloads::log, &with_logs("started\nserving\n"));
    assert_silent(workloads::log, &Snapshot::default());
}

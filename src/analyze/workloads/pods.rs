//! Finds broken pods (the Pod analyzer) and error lines in their containers' recent logs (Log).

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodSpec};

use super::{MAX_QUOTE, clip, latest_event, quote, report};
use crate::analyze::{Failure, Finding, Snapshot, docs, ns_name};

/// Error lines quoted per container by `Log`: the most recent ones.
const MAX_LOG_LINES: usize = 5;

/// Waiting reasons that mean a container cannot start without someone fixing something.
pub(super) const WAITING_ERRORS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "ImageInspectError",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreCreateHookError",
    "PreStartHookError",
    "PostStartHookError",
];
/// Warning events that explain why a pod's containers stay in `ContainerCreating`.
const CREATE_ERRORS: &[&str] = &[
    "FailedMount",
    "FailedCreatePodSandBox",
    "FailedAttachVolume",
];

/// Pods pending unscheduled or gated, evicted, with containers crash-looping, failing to pull or
/// start, stuck creating, failed for good, or running but failing their probes.
pub fn pod(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for pod in &snapshot.pods {
        report(
            snapshot,
            out,
            "Pod",
            &pod.metadata,
            pod_failures(snapshot, pod),
        );
    }
}

fn pod_failures(snapshot: &Snapshot, pod: &Pod) -> Vec<Failure> {
    let mut failures = Vec::new();
    let (ns, name) = ns_name(&pod.metadata);
    let (spec, status) = (pod.spec.as_ref(), pod.status.as_ref());
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or_default();

    if status.and_then(|s| s.reason.as_deref()) == Some("Evicted") {
        let why = quote(status.and_then(|s| s.message.as_deref()));
        failures.push(Failure::doc(
            format!("the pod was evicted: {why}"),
            docs::EVICTION,
        ));
        // An evicted pod's containers were stopped by the eviction: nothing more to say.
        return failures;
    }

    let gates = spec
        .and_then(|s| s.scheduling_gates.as_deref())
        .unwrap_or_default();
    let scheduled = status
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == "PodScheduled");
    let scheduled_reason = scheduled.and_then(|c| c.reason.as_deref());
    if !gates.is_empty() || (phase == "Pending" && scheduled_reason == Some("SchedulingGated")) {
        let names: Vec<&str> = gates.iter().map(|g| g.name.as_str()).collect();
        let mut text = "the pod is not scheduled until its scheduling gates are removed".to_owned();
        if !names.is_empty() {
            text = format!("{text}: {}", names.join(", "));
        }
        failures.push(Failure::doc(text, docs::SCHEDULING_GATES));
    } else if phase == "Pending" && scheduled_reason == Some("Unschedulable") {
        let why = quote(scheduled.and_then(|c| c.message.as_deref()));
        failures.push(Failure::doc(
            format!("the pod cannot be scheduled: {why}"),
            docs::SCHEDULING,
        ));
    }

    let pod_policy = spec
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let mut creating = Vec::new();
    let statuses = status.map(|s| {
        let init = s
            .init_container_statuses
            .iter()
            .flatten()
            .map(|c| (c, true));
        init.chain(s.container_statuses.iter().flatten().map(|c| (c, false)))
    });
    let check = ContainerCheck {
        snapshot,
        ns,
        pod: name,
        phase,
    };
    for (container, init) in statuses.into_iter().flatten() {
        // The kubelet starts a failed container again unless the pod's restartPolicy is Never
        // (a sidecar, an init container whose own policy is Always, is restarted even then) or
        // the pod has failed for good.
        let sidecar = init && init_restart_policy(spec, &container.name) == Some("Always");
        let restarted = phase != "Failed" && (sidecar || pod_policy != "Never");
        match check.failure(container, init, restarted) {
            Verdict::Failure(failure) => failures.push(failure),
            Verdict::Creating => creating.push(container.name.as_str()),
            Verdict::Healthy => {}
        }
    }
    if !creating.is_empty() {
        let event = latest_event(snapshot, ns, "Pod", name, |e| {
            e.reason
                .as_deref()
                .is_some_and(|r| CREATE_ERRORS.contains(&r))
        });
        if let Some(event) = event {
            let which: Vec<String> = creating.iter().map(|c| format!("{c:?}")).collect();
            let (noun, verb) = match which.len() {
                1 => ("container", "is"),
                _ => ("containers", "are"),
            };
            failures.push(Failure::doc(
                format!(
                    "{noun} {} {verb} stuck in ContainerCreating ({}): {}",
                    which.join(", "),
                    event.reason.as_deref().unwrap_or_default(),
                    quote(event.message.as_deref()),
                ),
                docs::DEBUG_PODS,
            ));
        }
    }
    failures
}

/// The `restartPolicy` of the init container of `name` (`Always` makes it a sidecar).
fn init_restart_policy<'a>(spec: Option<&'a PodSpec>, name: &str) -> Option<&'a str> {
    let init = spec?.init_containers.as_deref().unwrap_or_default();
    init.iter()
        .find(|c| c.name == name)?
        .restart_policy
        .as_deref()
}

/// Judges the containers of one pod by their statuses (and the pod's events).
struct ContainerCheck<'s> {
    snapshot: &'s Snapshot,
    ns: &'s str,
    pod: &'s str,
    phase: &'s str,
}

enum Verdict {
    Healthy,
    Failure(Failure),
    /// Waiting in `ContainerCreating`: the pod's events may say why (once for all containers).
    Creating,
}

impl ContainerCheck<'_> {
    /// The verdict on `container` (an init container if `init`), which the kubelet starts again
    /// after it fails if `restarted`.
    fn failure(&self, container: &ContainerStatus, init: bool, restarted: bool) -> Verdict {
        let (who, field) = if init {
            let who = format!("init container {:?}", container.name);
            (who, format!("spec.initContainers{{{}}}", container.name))
        } else {
            let who = format!("container {:?}", container.name);
            (who, format!("spec.containers{{{}}}", container.name))
        };
        let state = container.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.as_deref().unwrap_or_default();
            let message = waiting.message.as_deref().filter(|m| !m.trim().is_empty());
            let last = container
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref());
            return Verdict::Failure(match reason {
                "CrashLoopBackOff" => {
                    let text = match (last, message) {
                        (Some(last), _) => format!(
                            "{who} is in CrashLoopBackOff; it last terminated with {}",
                            termination(
                                last.reason.as_deref(),
                                last.exit_code,
                                last.message.as_deref()
                            )
                        ),
                        (None, Some(message)) => {
                            format!("{who} is in CrashLoopBackOff: {}", quote(Some(message)))
                        }
                        (None, None) => format!("{who} is in CrashLoopBackOff"),
                    };
                    Failure::doc(text, docs::DEBUG_PODS)
                }
                "ContainerCreating" if self.phase == "Pending" => return Verdict::Creating,
                reason if WAITING_ERRORS.contains(&reason) => {
                    let doc = match reason {
                        "ImagePullBackOff" | "ErrImagePull" | "ErrImageNeverPull"
                        | "InvalidImageName" | "ImageInspectError" => docs::IMAGES,
                        "PreStartHookError" | "PostStartHookError" => docs::POD_LIFECYCLE,
                        _ => docs::DEBUG_PODS,
                    };
                    let text = match message {
                        Some(message) => {
                            format!("{who} is waiting in {reason}: {}", quote(Some(message)))
                        }
                        None => format!("{who} is waiting in {reason}"),
                    };
                    Failure::doc(text, doc)
                }
                _ => return Verdict::Healthy,
            });
        }
        if let Some(done) = state.and_then(|s| s.terminated.as_ref()) {
            if done.exit_code != 0 && !restarted {
                return Verdict::Failure(Failure::doc(
                    format!(
                        "{who} terminated with {}",
                        termination(
                            done.reason.as_deref(),
                            done.exit_code,
                            done.message.as_deref()
                        )
                    ),
                    docs::POD_LIFECYCLE,
                ));
            }
            return Verdict::Healthy;
        }
        if container.ready || self.phase != "Running" {
            return Verdict::Healthy;
        }
        // Running (or starting) but not ready: a failing probe says so in an `Unhealthy` event,
        // about this container (its `field`) when the event names one.
        let unhealthy = latest_event(self.snapshot, self.ns, "Pod", self.pod, |e| {
            let path = e.involved_object.field_path.as_deref().unwrap_or_default();
            e.reason.as_deref() == Some("Unhealthy") && (path.is_empty() || path == field)
        });
        match unhealthy {
            Some(event) => Verdict::Failure(Failure::doc(
                format!("{who} is not ready: {}", quote(event.message.as_deref())),
                docs::PROBES,
            )),
            None => Verdict::Healthy,
        }
    }
}

/// `Error (exit code 1)`, with the container's termination message if it left one.
fn termination(reason: Option<&str>, exit_code: i32, message: Option<&str>) -> String {
    let reason = reason
        .filter(|r| !r.is_empty())
        .unwrap_or("an unknown reason");
    match message.filter(|m| !m.trim().is_empty()) {
        Some(message) => format!("{reason} (exit code {exit_code}): {}", quote(Some(message))),
        None => format!("{reason} (exit code {exit_code})"),
    }
}

/// Error lines (k8sgpt's "error", "exception" or "fail", any case) in the recent logs of each
/// container, the most recent few, reported as k8sgpt does: kind `Pod`, named
/// `namespace/pod/container`.
pub fn log(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    if snapshot.logs.is_empty() {
        return;
    }
    for pod in &snapshot.pods {
        let (ns, name) = ns_name(&pod.metadata);
        let Some(spec) = pod.spec.as_ref() else {
            continue;
        };
        for container in spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
        {
            let key = (ns.to_owned(), name.to_owned(), container.name.clone());
            let Some(text) = snapshot.logs.get(&key) else {
                continue;
            };
            let failures = error_lines(&container.name, text);
            if failures.is_empty() {
                continue;
            }
            let parent = snapshot.parent_of(ns, &pod.metadata);
            let object = format!("{name}/{}", container.name);
            out.extend(Finding::namespaced("Pod", ns, &object, failures, parent));
        }
    }
}

fn error_lines(container: &str, logs: &str) -> Vec<Failure> {
    const WORDS: [&[u8]; 3] = [b"error", b"exception", b"fail"];
    let looks_bad = |line: &&str| {
        let line = line.as_bytes();
        WORDS
            .iter()
            .any(|w| line.windows(w.len()).any(|win| win.eq_ignore_ascii_case(w)))
    };
    let lines: Vec<&str> = logs.lines().filter(looks_bad).collect();
    let earlier = lines.len().saturating_sub(MAX_LOG_LINES);
    let mut failures = Vec::new();
    if earlier > 0 {
        failures.push(Failure::new(format!(
            "container {container:?} logged {earlier} earlier error line(s), not shown"
        )));
    }
    for line in lines.iter().skip(earlier) {
        failures.push(Failure::new(format!(
            "container {container:?} logged: {}",
            clip(line, MAX_QUOTE)
        )));
    }
    failures
}

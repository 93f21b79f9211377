//! Finds broken workloads, with k8sgpt's conditions: the Pod, Deployment, ReplicaSet,
//! StatefulSet, DaemonSet, Job, CronJob, HorizontalPodAutoScaler, PodDisruptionBudget and Log
//! analyzers.
//!
//! Each analyzer reports one [`Finding`] per broken object and nothing for a healthy one. A check
//! that needs a second kind (the Service a StatefulSet names) runs only where that kind was read
//! ([`Snapshot::has_in`]), so an unreadable kind never reads as a missing object. Messages
//! Kubernetes wrote (events, conditions, logs) are quoted on one line and cut to a bounded length.
//!
//! Pods and their logs are judged in `pods`; CronJob schedules are checked in `schedule`.

mod pods;
mod schedule;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use super::snapshot::{ScaleTarget, Source, find};
use super::{Failure, Finding, Snapshot, docs, ns_name};

pub use pods::{log, pod};

/// The longest quoted message (characters), so one chatty event cannot crowd out the rest.
const MAX_QUOTE: usize = 300;

/// Deployments whose ready replicas differ from those desired, or that stopped progressing.
pub fn deployment(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for deployment in &snapshot.deployments {
        let mut failures = Vec::new();
        let name = deployment.metadata.name.as_deref().unwrap_or_default();
        let (spec, status) = (deployment.spec.as_ref(), deployment.status.as_ref());
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
        let ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
        let current = status.and_then(|s| s.replicas).unwrap_or(0);
        if ready != desired {
            let mut text = if current > desired {
                format!(
                    "Deployment {name} has {current} replica(s) of {desired} desired ({ready} \
                     ready): it has not finished scaling down"
                )
            } else {
                format!("Deployment {name} has {ready} ready replica(s) of {desired} desired")
            };
            if spec.and_then(|s| s.paused) == Some(true) {
                text.push_str("; it is paused, so no rollout proceeds until it is resumed");
            }
            failures.push(Failure::doc(text, docs::DEPLOYMENTS));
        }
        for c in status
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default()
        {
            let why = explain(c.reason.as_deref(), c.message.as_deref());
            match (c.type_.as_str(), c.status.as_str()) {
                ("Progressing", "False") => failures.push(Failure::doc(
                    format!("Deployment {name} is not progressing: {why}"),
                    docs::DEPLOYMENT_FAILED,
                )),
                ("ReplicaFailure", "True") => failures.push(Failure::doc(
                    format!("Deployment {name} cannot create its pods: {why}"),
                    docs::DEPLOYMENT_FAILED,
                )),
                _ => {}
            }
        }
        report(snapshot, out, "Deployment", &deployment.metadata, failures);
    }
}

/// ReplicaSets that cannot create their pods (a ReplicaFailure condition, or FailedCreate
/// events while pods are missing).
pub fn replica_set(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for rs in &snapshot.replica_sets {
        let (ns, name) = ns_name(&rs.metadata);
        let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let current = rs.status.as_ref().map_or(0, |s| s.replicas);
        let conditions = rs.status.as_ref().and_then(|s| s.conditions.as_deref());
        let condition = conditions
            .unwrap_or_default()
            .iter()
            .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
            .map(|c| explain(c.reason.as_deref(), c.message.as_deref()));
        // An event may be old: it counts only while pods are missing.
        let event = || {
            let create = |e: &Event| e.reason.as_deref() == Some("FailedCreate");
            let event = latest_event(snapshot, ns, "ReplicaSet", name, create);
            let event = event.filter(|_| current < desired)?;
            Some(explain(event.reason.as_deref(), event.message.as_deref()))
        };
        let failed = condition.or_else(event);
        let failures = failed.map(|why| {
            let text = format!(
                "ReplicaSet {name} has {current} of {desired} pod(s) and cannot create more: {why}"
            );
            Failure::doc(text, docs::REPLICASETS)
        });
        let failures = failures.into_iter().collect();
        report(snapshot, out, "ReplicaSet", &rs.metadata, failures);
    }
}

/// StatefulSets whose governing Service or volume StorageClass is missing, or whose available
/// replicas differ from those desired.
pub fn stateful_set(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for sts in &snapshot.stateful_sets {
        let mut failures = Vec::new();
        let (ns, name) = ns_name(&sts.metadata);
        let spec = sts.spec.as_ref();
        let service = spec
            .and_then(|s| s.service_name.as_deref())
            .unwrap_or_default();
        if !service.is_empty()
            && snapshot.has_in(Source::Services, ns)
            && find(&snapshot.services, ns, service).is_none()
        {
            failures.push(Failure::doc(
                format!("StatefulSet {name} names the governing Service {service:?}, which does not exist"),
                docs::STATEFULSETS,
            ));
        }
        let mut classes: Vec<&str> = Vec::new();
        let templates = spec.and_then(|s| s.volume_claim_templates.as_deref());
        for template in templates.unwrap_or_default() {
            let class = template
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_deref());
            // No class takes the default one; an empty class binds a pre-made volume.
            let Some(class) = class.filter(|c| !c.is_empty()) else {
                continue;
            };
            let exists = snapshot
                .storage_classes
                .iter()
                .any(|s| s.metadata.name.as_deref() == Some(class));
            if !exists && snapshot.has(Source::StorageClasses) && !classes.contains(&class) {
                classes.push(class);
                failures.push(Failure::doc(
                    format!("StatefulSet {name} claims volumes of StorageClass {class:?}, which does not exist"),
                    docs::STORAGE_CLASSES,
                ));
            }
        }
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
        let status = sts.status.as_ref();
        let available = status
            .and_then(|s| s.available_replicas.or(s.ready_replicas))
            .unwrap_or(0);
        if available != desired {
            failures.push(Failure::doc(
                format!(
                    "StatefulSet {name} has {available} available replica(s) of {desired} desired"
                ),
                docs::STATEFULSETS,
            ));
            let create = |e: &Event| e.reason.as_deref() == Some("FailedCreate");
            if available < desired
                && let Some(event) = latest_event(snapshot, ns, "StatefulSet", name, create)
            {
                failures.push(Failure::doc(
                    format!(
                        "StatefulSet {name} cannot create its pods: {}",
                        quote(event.message.as_deref())
                    ),
                    docs::STATEFULSETS,
                ));
            }
        }
        report(snapshot, out, "StatefulSet", &sts.metadata, failures);
    }
}

/// DaemonSets with fewer ready pods than scheduled, or naming a missing image pull Secret.
pub fn daemon_set(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for ds in &snapshot.daemon_sets {
        let mut failures = Vec::new();
        let (ns, name) = ns_name(&ds.metadata);
        if let Some(status) = ds
            .status
            .as_ref()
            .filter(|s| s.number_ready < s.desired_number_scheduled)
        {
            failures.push(Failure::doc(
                format!(
                    "DaemonSet {name} has {} ready pod(s) of {} scheduled",
                    status.number_ready, status.desired_number_scheduled
                ),
                docs::DAEMONSETS,
            ));
        }
        let template = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        let pull_secrets = template.and_then(|s| s.image_pull_secrets.as_deref());
        if snapshot.has_in(Source::Secrets, ns) {
            for secret in pull_secrets
                .unwrap_or_default()
                .iter()
                .map(|s| s.name.as_str())
            {
                let exists = snapshot
                    .secrets
                    .iter()
                    .any(|s| ns_name(&s.metadata) == (ns, secret));
                if !secret.is_empty() && !exists {
                    failures.push(Failure::doc(
                        format!("DaemonSet {name} names the image pull Secret {secret:?}, which does not exist"),
                        docs::PULL_SECRETS,
                    ));
                }
            }
        }
        report(snapshot, out, "DaemonSet", &ds.metadata, failures);
    }
}

/// Jobs suspended, failed, or with failed pods and not complete.
pub fn job(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for job in &snapshot.jobs {
        let mut failures = Vec::new();
        let name = job.metadata.name.as_deref().unwrap_or_default();
        if job.spec.as_ref().and_then(|s| s.suspend) == Some(true) {
            failures.push(Failure::doc(format!("Job {name} is suspended"), docs::JOBS));
        }
        let status = job.status.as_ref();
        let conditions = status
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default();
        let holds = |kind: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == kind && c.status == "True")
        };
        let failed_pods = status.and_then(|s| s.failed).unwrap_or(0);
        if let Some(failed) = holds("Failed") {
            failures.push(Failure::doc(
                format!(
                    "Job {name} failed: {}",
                    explain(failed.reason.as_deref(), failed.message.as_deref())
                ),
                docs::JOBS,
            ));
        } else if failed_pods > 0 && holds("Complete").is_none() {
            failures.push(Failure::doc(
                format!("Job {name} has {failed_pods} failed pod(s) and has not completed"),
                docs::JOBS,
            ));
        }
        report(snapshot, out, "Job", &job.metadata, failures);
    }
}

/// CronJobs suspended, with a schedule Kubernetes cannot run, or a negative starting deadline.
pub fn cron_job(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for cron_job in &snapshot.cron_jobs {
        let mut failures = Vec::new();
        let name = cron_job.metadata.name.as_deref().unwrap_or_default();
        let Some(spec) = cron_job.spec.as_ref() else {
            continue;
        };
        if spec.suspend == Some(true) {
            failures.push(Failure::doc(
                format!("CronJob {name} is suspended"),
                docs::CRONJOBS,
            ));
        }
        if let Err(why) = schedule::check(&spec.schedule) {
            failures.push(Failure::doc(
                format!(
                    "CronJob {name} has an invalid schedule {:?}: {why}",
                    clip(&spec.schedule, 80)
                ),
                docs::CRONJOBS,
            ));
        }
        if let Some(deadline) = spec.starting_deadline_seconds.filter(|d| *d < 0) {
            failures.push(Failure::doc(
                format!("CronJob {name} has a negative starting deadline ({deadline} seconds)"),
                docs::CRONJOBS,
            ));
        }
        report(snapshot, out, "CronJob", &cron_job.metadata, failures);
    }
}

/// HorizontalPodAutoscalers whose scale target is missing or has no container with resources,
/// or that cannot scale (ScalingActive or AbleToScale false).
pub fn hpa(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for hpa in &snapshot.hpas {
        let mut failures = Vec::new();
        let (ns, name) = ns_name(&hpa.metadata);
        let conditions = hpa.status.as_ref().and_then(|s| s.conditions.as_deref());
        for c in conditions
            .unwrap_or_default()
            .iter()
            .filter(|c| c.status == "False")
        {
            let state = match c.type_.as_str() {
                "ScalingActive" => "is not scaling",
                "AbleToScale" => "cannot scale",
                _ => continue,
            };
            failures.push(Failure::doc(
                format!(
                    "HorizontalPodAutoscaler {name} {state}: {}",
                    explain(c.reason.as_deref(), c.message.as_deref())
                ),
                docs::HPA,
            ));
        }
        if let Some(target) = hpa.spec.as_ref().map(|s| &s.scale_target_ref) {
            let (kind, target_name) = (target.kind.as_str(), target.name.as_str());
            let scales = format!("HorizontalPodAutoscaler {name} scales {kind} {target_name:?}");
            match snapshot.scale_target(ns, kind, target_name) {
                ScaleTarget::Unknown => {}
                ScaleTarget::Missing => failures.push(Failure::doc(
                    format!("{scales}, which does not exist"),
                    docs::HPA,
                )),
                ScaleTarget::Found(pods) if !has_resources(pods) => failures.push(Failure::doc(
                    format!(
                        "{scales}, which has no container with resource requests and limits \
                         configured"
                    ),
                    docs::HPA,
                )),
                ScaleTarget::Found(_) => {}
            }
        }
        report(
            snapshot,
            out,
            "HorizontalPodAutoscaler",
            &hpa.metadata,
            failures,
        );
    }
}

/// Whether some container of the pod template sets both resource requests and limits.
fn has_resources(pods: Option<&PodSpec>) -> bool {
    pods.into_iter().flat_map(|p| &p.containers).any(|c| {
        let set = |m: Option<&BTreeMap<_, _>>| m.is_some_and(|m| !m.is_empty());
        c.resources
            .as_ref()
            .is_some_and(|r| set(r.requests.as_ref()) && set(r.limits.as_ref()))
    })
}

/// PodDisruptionBudgets that allow no disruption, with the pods they select.
pub fn pdb(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for pdb in &snapshot.pdbs {
        let name = pdb.metadata.name.as_deref().unwrap_or_default();
        let status = pdb.status.as_ref();
        let conditions = status
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default();
        // Kubernetes before 1.21 writes no conditions on a budget, only its counts: then no
        // disruption allowed while pods are expected says the same.
        let counted_block = conditions.is_empty()
            && status.is_some_and(|s| s.disruptions_allowed == 0 && s.expected_pods > 0);
        let blocked = conditions
            .iter()
            .find(|c| c.type_ == "DisruptionAllowed" && c.status == "False");
        let (reason, message) = match (blocked, counted_block) {
            (Some(c), _) => (Some(c.reason.as_str()), Some(c.message.as_str())),
            (None, true) => (Some("InsufficientPods"), None),
            (None, false) => continue,
        };
        let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
        let mut terms: Vec<String> = selector
            .and_then(|s| s.match_labels.as_ref())
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for e in selector
            .and_then(|s| s.match_expressions.as_deref())
            .unwrap_or_default()
        {
            terms.push(format!(
                "{} {} ({})",
                e.key,
                e.operator,
                e.values.as_deref().unwrap_or_default().join(", ")
            ));
        }
        let selects = match (selector, terms.is_empty()) {
            (None, _) => "it has no selector".to_owned(),
            (Some(_), true) => "it selects every pod in the namespace".to_owned(),
            (Some(_), false) => format!("it selects pods with {}", terms.join(", ")),
        };
        let (healthy, required) = status.map_or((0, 0), |s| (s.current_healthy, s.desired_healthy));
        let why = explain(reason, message);
        let failure = Failure::doc(
            format!(
                "PodDisruptionBudget {name} allows no disruption: {why} ({healthy} healthy pod(s), \
                 {required} required); {selects}"
            ),
            docs::PDB,
        );
        report(
            snapshot,
            out,
            "PodDisruptionBudget",
            &pdb.metadata,
            vec![failure],
        );
    }
}

/// Pushes the finding about the object of `meta`, if it has failures (with its topmost owner).
fn report(
    snapshot: &Snapshot,
    out: &mut Vec<Finding>,
    kind: &'static str,
    meta: &ObjectMeta,
    failures: Vec<Failure>,
) {
    if failures.is_empty() {
        return;
    }
    let (ns, name) = ns_name(meta);
    out.extend(Finding::namespaced(
        kind,
        ns,
        name,
        failures,
        snapshot.parent_of(ns, meta),
    ));
}

/// The most recent Warning event about an object that `keep` accepts (the last listed, among
/// events without a time).
fn latest_event<'s>(
    snapshot: &'s Snapshot,
    ns: &str,
    kind: &str,
    name: &str,
    keep: impl Fn(&Event) -> bool,
) -> Option<&'s Event> {
    let when = |e: &Event| -> Option<Timestamp> {
        let last = e.last_timestamp.as_ref().map(|t| t.0);
        last.or_else(|| e.event_time.as_ref().map(|t| t.0))
            .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
    };
    let events = snapshot.events_about(ns, kind, name).filter(|e| keep(e));
    events
        .enumerate()
        .max_by_key(|(i, e)| (when(e), *i))
        .map(|(_, e)| e)
}

/// `reason: message` from a condition or event, either alone if the other is empty.
fn explain(reason: Option<&str>, message: Option<&str>) -> String {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    match (reason, message.filter(|m| !m.trim().is_empty())) {
        (Some(reason), Some(message)) => format!("{reason}: {}", quote(Some(message))),
        (Some(reason), None) => reason.to_owned(),
        (None, message) => quote(message),
    }
}

/// A message Kubernetes wrote, on one line and bounded.
fn quote(message: Option<&str>) -> String {
    match message.filter(|m| !m.trim().is_empty()) {
        Some(message) => clip(message, MAX_QUOTE),
        None => "no reason given".to_owned(),
    }
}

/// `text` with each run of whitespace made one space, cut to `max` characters (marked `…`).
fn clip(text: &str, max: usize) -> String {
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > max * 4 {
            break; // no character is longer than 4 bytes: enough to cut from
        }
    }
    if let Some((cut, _)) = out.char_indices().nth(max) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;

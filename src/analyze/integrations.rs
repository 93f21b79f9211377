//! Analyzers that integrations bring: KEDA's ScaledObject, Kyverno's PolicyReport and ClusterPolicyReport.
//!
//! Their objects are JSON ([`Value`]s: the CRDs' versions vary), read with the readers of
//! `analyze::json`, which the Gateway API's analyzers share.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::Value;

use super::json::{condition, detail, items, json_ns_name, list, or, text, warnings};
use super::snapshot::ScaleTarget;
use super::{Failure, Finding, Snapshot, docs};

/// KEDA ScaledObjects whose scale target is missing or lacks the requests a cpu or memory trigger
/// needs, that are not ready, or that have warning events.
pub fn scaled_object(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for object in &snapshot.scaled_objects {
        let (ns, name) = json_ns_name(object);
        let mut failures = Vec::new();
        let target = text(object, "/spec/scaleTargetRef/name");
        let kind = or(text(object, "/spec/scaleTargetRef/kind"), "Deployment");
        if target.is_empty() {
            failures.push(Failure::doc(
                format!("ScaledObject {name} does not name its scale target"),
                docs::KEDA,
            ));
        } else {
            match scale_target(snapshot, object, kind, ns, target) {
                ScaleTarget::Missing => failures.push(Failure::doc(
                    format!("ScaledObject {name} scales {kind} {target}, which does not exist"),
                    docs::KEDA,
                )),
                ScaleTarget::Found(template) => {
                    failures.extend(missing_requests(object, kind, target, template));
                }
                ScaleTarget::Unknown => {}
            }
        }
        if let Some(ready) = condition(object, "Ready")
            && text(ready, "/status") == "False"
        {
            failures.push(Failure::doc(
                format!("ScaledObject {name} is not ready{}", detail(ready)),
                docs::KEDA,
            ));
        }
        failures.extend(warnings(snapshot, ns, "ScaledObject", name));
        let parent = meta(object).and_then(|m| snapshot.parent_of(ns, &m));
        out.extend(Finding::namespaced(
            "ScaledObject",
            ns,
            name,
            failures,
            parent,
        ));
    }
}

/// A ScaledObject's scale target. A Deployment of another API group (a custom resource with
/// a scale subresource) is not the apps one, and not judged.
fn scale_target<'s>(
    snapshot: &'s Snapshot,
    object: &Value,
    kind: &str,
    ns: &str,
    name: &str,
) -> ScaleTarget<'s> {
    let version = text(object, "/spec/scaleTargetRef/apiVersion");
    if !version.is_empty() && !version.starts_with("apps/") {
        return ScaleTarget::Unknown;
    }
    snapshot.scale_target(ns, kind, name)
}

/// The containers without the request a `cpu` or `memory` trigger's utilization is a share of
/// (KEDA scales on it through an HPA, which cannot compute a utilization without it).
fn missing_requests(
    object: &Value,
    kind: &str,
    target: &str,
    template: Option<&PodSpec>,
) -> Vec<Failure> {
    let containers = template
        .map(|t| t.containers.as_slice())
        .unwrap_or_default();
    let mut failures = Vec::new();
    for resource in ["cpu", "memory"] {
        let needed = items(object, "/spec/triggers").any(|t| {
            // `metricType` since KEDA 2.10; `metadata.type` before it.
            let metric = or(text(t, "/metricType"), text(t, "/metadata/type"));
            text(t, "/type") == resource && metric != "AverageValue"
        });
        let lacking: Vec<String> = containers
            .iter()
            .filter(|c| {
                let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
                !requests.is_some_and(|r| r.contains_key(resource))
            })
            .map(|c| c.name.clone())
            .collect();
        if needed && !lacking.is_empty() {
            failures.push(Failure::doc(
                format!(
                    "{kind} {target} has containers without a {resource} request, which the \
                     ScaledObject's {resource} trigger needs: {}",
                    list(&lacking)
                ),
                docs::KEDA,
            ));
        }
    }
    failures
}

/// Kyverno PolicyReports with failed or erroring results, one failure each.
pub fn policy_report(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for report in &snapshot.policy_reports {
        let (ns, name) = json_ns_name(report);
        let parent = meta(report).and_then(|m| snapshot.parent_of(ns, &m));
        let failures = failed_results(snapshot, report);
        out.extend(Finding::namespaced(
            "PolicyReport",
            ns,
            name,
            failures,
            parent,
        ));
    }
}

/// Kyverno ClusterPolicyReports with failed or erroring results, one failure each.
pub fn cluster_policy_report(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for report in &snapshot.cluster_policy_reports {
        let name = text(report, "/metadata/name");
        out.extend(Finding::cluster(
            "ClusterPolicyReport",
            name,
            failed_results(snapshot, report),
        ));
    }
}

/// A report's results that are `fail` or `error`, as sentences naming the policy, the rule, the
/// resources and the message.
fn failed_results(snapshot: &Snapshot, report: &Value) -> Vec<Failure> {
    // Reports of one resource (Kyverno 1.10 on) name it once, in `scope`, not in each result.
    let scope = report.get("scope").filter(|s| s.is_object());
    items(report, "/results")
        .filter_map(|result| {
            // A result about an object in a namespace the call does not cover is not the
            // caller's to see (a cluster report may name any namespace's objects).
            let elsewhere = items(result, "/resources")
                .map(|r| text(r, "/namespace"))
                .any(|ns| !ns.is_empty() && !snapshot.covers(ns));
            if elsewhere {
                return None;
            }
            let verdict = match text(result, "/result") {
                "fail" => "fails",
                "error" => "could not be applied",
                _ => return None,
            };
            let mut sentence = format!("Kyverno policy {}", text(result, "/policy"));
            match text(result, "/rule") {
                "" => {}
                rule => sentence += &format!(" (rule {rule})"),
            }
            sentence += &format!(" {verdict}");
            let mut resources: Vec<String> = items(result, "/resources").map(reference).collect();
            if resources.is_empty() {
                resources.extend(scope.map(reference));
            }
            if !resources.is_empty() {
                sentence += &format!(" for {}", list(&resources));
            }
            match text(result, "/message").trim() {
                "" => {}
                message => sentence += &format!(": {message}"),
            }
            Some(Failure::doc(sentence, docs::KYVERNO))
        })
        .collect()
}

/// An object reference as `Kind namespace/name` (or `Kind name`, cluster-scoped).
fn reference(object: &Value) -> String {
    let (kind, ns, name) = (
        text(object, "/kind"),
        text(object, "/namespace"),
        text(object, "/name"),
    );
    match (kind, ns) {
        ("", "") => name.to_owned(),
        ("", ns) => format!("{ns}/{name}"),
        (kind, "") => format!("{kind} {name}"),
        (kind, ns) => format!("{kind} {ns}/{name}"),
    }
}

/// The metadata of a JSON object, when it has well-formed metadata.
fn meta(object: &Value) -> Option<ObjectMeta> {
    ObjectMeta::deserialize(object.get("metadata")?).ok()
}

#[cfg(test)]
mod tests;

//! Finds pods and roles that are unsafe: the Security analyzer.
//!
//! It reports the failure conditions of k8sgpt's Security analyzer, except that the
//! `securityContext: {}` the API server gives every pod counts as none.

use k8s_openapi::api::core::v1::{Pod, PodSecurityContext, SecurityContext};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{ContainerView, spec_containers};
use crate::analyze::{Failure, Finding, Snapshot, Source, docs, ns_name};

/// Pods on their namespace's default ServiceAccount, privileged containers, pods with no
/// securityContext anywhere; Roles and ClusterRoles (not Kubernetes' own) with `*` in their
/// verbs or resources.
pub fn security(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for pod in &snapshot.pods {
        let (ns, name) = ns_name(&pod.metadata);
        let failures = pod_failures(pod);
        let parent = snapshot.parent_of(ns, &pod.metadata);
        out.extend(Finding::namespaced("Pod", ns, name, failures, parent));
    }
    for role in &snapshot.roles {
        if built_in_role(&role.metadata, false) {
            continue;
        }
        let (ns, name) = ns_name(&role.metadata);
        let failures = wildcard_rules(role.rules.as_deref().unwrap_or_default());
        out.extend(Finding::namespaced("Role", ns, name, failures, None));
    }
    // ClusterRoles are cluster-scoped: reported only by a call that covers the cluster.
    if snapshot.cluster_wide && snapshot.has(Source::ClusterRoles) {
        for role in &snapshot.cluster_roles {
            if built_in_role(&role.metadata, true) {
                continue;
            }
            let name = role.metadata.name.as_deref().unwrap_or_default();
            let failures = wildcard_rules(role.rules.as_deref().unwrap_or_default());
            out.extend(Finding::cluster("ClusterRole", name, failures));
        }
    }
}

/// What is unsafe about how a pod runs.
fn pod_failures(pod: &Pod) -> Vec<Failure> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let mut failures = Vec::new();
    // `serviceAccount` is the deprecated spelling; the API server fills in "default".
    let account = [&spec.service_account_name, &spec.service_account]
        .into_iter()
        .filter_map(|a| a.as_deref())
        .find(|a| !a.is_empty())
        .unwrap_or("default");
    if account == "default" {
        failures.push(Failure::doc(
            "Pod runs as its namespace's default ServiceAccount, sharing its identity and \
             permissions with every other pod that names none; give it its own ServiceAccount.",
            docs::SERVICE_ACCOUNTS,
        ));
    }
    for container in containers(pod) {
        if container.security_context.and_then(|s| s.privileged) == Some(true) {
            failures.push(Failure::doc(
                format!(
                    "{} {} runs privileged, with full access to the node's devices and kernel.",
                    container.role, container.name
                ),
                docs::SECURITY_CONTEXT,
            ));
        }
    }
    let pod_set = spec
        .security_context
        .as_ref()
        .is_some_and(|s| *s != PodSecurityContext::default());
    let container_set = containers(pod).any(|c| {
        c.security_context
            .is_some_and(|s| *s != SecurityContext::default())
    });
    if !pod_set && !container_set {
        failures.push(Failure::doc(
            "Neither the pod nor any of its containers sets a securityContext, so they run as \
             whatever user the image names, with the runtime's default privileges.",
            docs::SECURITY_CONTEXT,
        ));
    }
    failures
}

/// Whether a role is one Kubernetes made: `system:` names are reserved for it, its bootstrap
/// roles carry the `rbac-defaults` label, and the user-facing ClusterRoles are its own.
fn built_in_role(meta: &ObjectMeta, cluster: bool) -> bool {
    let name = meta.name.as_deref().unwrap_or_default();
    let bootstrap = meta
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/bootstrapping"))
        .is_some_and(|v| v == "rbac-defaults");
    name.starts_with("system:")
        || bootstrap
        || (cluster && ["cluster-admin", "admin", "edit", "view"].contains(&name))
}

/// One failure per rule with `*` in its verbs or resources, saying which and on what.
fn wildcard_rules(rules: &[PolicyRule]) -> Vec<Failure> {
    let mut failures = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let n = i + 1;
        let resources = rule.resources.as_deref().unwrap_or_default();
        let urls = rule.non_resource_urls.as_deref().unwrap_or_default();
        let all_verbs = rule.verbs.iter().any(|v| v == "*");
        let all_resources = resources.iter().any(|r| r == "*");
        let groups = api_groups(rule.api_groups.as_deref().unwrap_or_default());
        let text = if all_verbs && all_resources {
            format!("Rule {n} allows every verb on every resource{groups} ('*' in both).")
        } else if all_resources {
            let verbs = rule.verbs.join(", ");
            format!("Rule {n} allows {verbs} on every resource ('*'){groups}.")
        } else if all_verbs && !resources.is_empty() {
            let resources = resources.join(", ");
            format!("Rule {n} allows every verb ('*') on {resources}{groups}.")
        } else if all_verbs && !urls.is_empty() {
            let urls = urls.join(", ");
            format!("Rule {n} allows every verb ('*') on the non-resource URLs {urls}.")
        } else {
            // No wildcard, or a rule on nothing, which grants nothing whatever its verbs.
            continue;
        };
        failures.push(Failure::doc(text, docs::RBAC));
    }
    failures
}

/// " in API group apps" for a rule's groups (the core group named so), or "" for none.
fn api_groups(groups: &[String]) -> String {
    if groups.iter().any(|g| g == "*") {
        return " in every API group".to_owned();
    }
    let names: Vec<&str> = groups
        .iter()
        .map(|g| if g.is_empty() { "core" } else { g.as_str() })
        .collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => format!(" in API group {one}"),
        many => format!(" in API groups {}", many.join(", ")),
    }
}

/// Every container, init container and ephemeral container of a pod.
fn containers(pod: &Pod) -> impl Iterator<Item = ContainerView<'_>> {
    pod.spec.iter().flat_map(spec_containers)
}

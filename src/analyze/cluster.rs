//! Finds nodes, claims and ConfigMaps that are broken: the Node, PersistentVolumeClaim and
//! ConfigMap analyzers; the Storage analyzer is in `storage`, the Security analyzer in `security`.
//!
//! Each reports the failure conditions of k8sgpt's analyzer of the same name, except where
//! those misjudge a real cluster: a check that another kind is missing or unused runs only where
//! that kind was read.

mod security;
mod storage;

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvFromSource, EnvVar, EphemeralContainer, Event, NodeCondition,
    PersistentVolumeClaim, PodSpec, SecurityContext,
};
use k8s_openapi::jiff::Timestamp;

pub use security::security;
pub use storage::storage;

use super::{Failure, Finding, Snapshot, Source, docs, ns_name};

/// Nodes whose Ready condition is not True, or with any other condition (MemoryPressure,
/// DiskPressure, PIDPressure, NetworkUnavailable, a node-problem-detector's) not False.
pub fn node(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for node in &snapshot.nodes {
        let conditions = node.status.as_ref().and_then(|s| s.conditions.as_deref());
        let failures = conditions
            .unwrap_or_default()
            .iter()
            .filter_map(node_condition)
            .collect();
        let name = node.metadata.name.as_deref().unwrap_or_default();
        out.extend(Finding::cluster("Node", name, failures));
    }
}

/// The conditions that say a node runs short of something when True, and how to say so.
const SHORTAGES: &[(&str, &str, &str)] = &[
    ("MemoryPressure", "short of memory", docs::EVICTION),
    ("DiskPressure", "short of disk space", docs::EVICTION),
    ("PIDPressure", "short of process IDs", docs::EVICTION),
    (
        "NetworkUnavailable",
        "without a working network",
        docs::NODES,
    ),
];

/// What a node's condition says is wrong, if anything.
fn node_condition(condition: &NodeCondition) -> Option<Failure> {
    let kind = condition.type_.as_str();
    let shortage = SHORTAGES.iter().find(|s| s.0 == kind);
    let (mut text, doc) = match (kind, condition.status.as_str(), shortage) {
        ("", _, _) | ("Ready", "True", _) => return None,
        ("Ready", "False", _) => ("Node is not ready".to_owned(), docs::NODES),
        ("Ready", "Unknown", _) => (
            "Node's readiness is unknown (its kubelet has stopped reporting)".to_owned(),
            docs::NODES,
        ),
        (_, "False", _) => return None,
        (_, "True", Some(&(_, what, doc))) => (format!("Node is {what} ({kind})"), doc),
        (_, "", _) => (
            format!("Node's {kind} condition has no status"),
            docs::NODES,
        ),
        (_, status, _) => (format!("Node's {kind} condition is {status}"), docs::NODES),
    };
    let reason = condition.reason.as_deref().unwrap_or_default().trim();
    if !reason.is_empty() {
        text.push_str(", reason ");
        text.push_str(reason);
    }
    let message = condition.message.as_deref().unwrap_or_default();
    Some(Failure::doc(sentence(text, message), doc))
}

/// The kind of a PersistentVolumeClaim, as findings and events name it.
const CLAIM: &str = "PersistentVolumeClaim";

/// Claims pending because their volume could not be provisioned, with the latest
/// `ProvisioningFailed` event's message.
pub fn pvc(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for claim in &snapshot.pvcs {
        if claim_phase(claim) != "Pending" {
            continue;
        }
        let (ns, name) = ns_name(&claim.metadata);
        let failed = snapshot
            .events_about(ns, CLAIM, name)
            .filter(|e| e.reason.as_deref() == Some("ProvisioningFailed"));
        let message = latest(failed)
            .and_then(|e| e.message.as_deref())
            .map(str::trim)
            .filter(|m| !m.is_empty());
        let failures = message
            .map(|m| {
                Failure::doc(
                    sentence("Claim is Pending: provisioning its volume failed".into(), m),
                    docs::PVC,
                )
            })
            .into_iter()
            .collect();
        let parent = snapshot.parent_of(ns, &claim.metadata);
        out.extend(Finding::namespaced(CLAIM, ns, name, failures, parent));
    }
}

/// The ConfigMap size (values of `data` and `binaryData`, in bytes) above which k8sgpt's
/// "larger than 1 MB" holds; the API server refuses more than 1 MiB, so this warns before.
const CONFIG_MAP_LIMIT: usize = 1_000_000;

/// ConfigMaps no pod (and no workload's pod template) in their namespace uses, empty ones, and
/// ones above 1 MB.
pub fn config_map(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    let used = used_config_maps(snapshot);
    for config_map in &snapshot.config_maps {
        let (ns, name) = ns_name(&config_map.metadata);
        let mut failures = Vec::new();
        if snapshot.has_in(Source::Pods, ns)
            && !used.contains(&(ns, name))
            && !read_through_api(config_map)
        {
            failures.push(Failure::doc(
                "ConfigMap is not used by any pod or pod template in its namespace: no volume, \
                 env or envFrom names it.",
                docs::CONFIGMAPS,
            ));
        }
        let data = config_map.data.as_ref().filter(|d| !d.is_empty());
        let binary = config_map.binary_data.as_ref().filter(|d| !d.is_empty());
        if data.is_none() && binary.is_none() {
            failures.push(Failure::doc(
                "ConfigMap is empty: it has no data and no binaryData.",
                docs::CONFIGMAPS,
            ));
        }
        let size = config_map_size(config_map);
        if size > CONFIG_MAP_LIMIT {
            failures.push(Failure::doc(
                format!(
                    "ConfigMap holds {size} bytes of data, more than 1 MB; Kubernetes refuses \
                     ConfigMaps above 1 MiB, so keep data this large in a volume or the image \
                     instead."
                ),
                docs::CONFIGMAPS,
            ));
        }
        let parent = snapshot.parent_of(ns, &config_map.metadata);
        out.extend(Finding::namespaced("ConfigMap", ns, name, failures, parent));
    }
}

/// The bytes a ConfigMap holds, counted as the API server counts them: the values of `data`
/// and `binaryData` (decoded), not the keys.
fn config_map_size(config_map: &ConfigMap) -> usize {
    let data = config_map.data.iter().flatten().map(|(_, v)| v.len());
    let binary = config_map
        .binary_data
        .iter()
        .flatten()
        .map(|(_, v)| v.0.len());
    data.chain(binary).sum()
}

/// ConfigMaps the control plane publishes and reads through the API, in every cluster.
const CONTROL_PLANE_CONFIG_MAPS: &[(&str, &str)] = &[
    ("kube-system", "extension-apiserver-authentication"),
    (
        "kube-system",
        "kube-apiserver-legacy-service-account-token-tracking",
    ),
    ("kube-system", "kubeadm-config"),
    ("kube-system", "kubelet-config"),
    ("kube-public", "cluster-info"),
];

/// Labels of ConfigMaps that sidecars load through the API (k8sgpt's list).
const SIDECAR_LABELS: &[&str] = &[
    "grafana_dashboard",
    "grafana_datasource",
    "prometheus_rule",
    "fluentd_config",
];

/// Whether a ConfigMap is read through the API rather than by a pod spec, so that no pod
/// naming it says nothing: the CA bundle every namespace gets, the control plane's own,
/// leader-election locks, sidecar-loaded ones, and those marked so (k8sgpt's annotations).
fn read_through_api(config_map: &ConfigMap) -> bool {
    let meta = &config_map.metadata;
    let (ns, name) = ns_name(meta);
    let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key));
    let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key));
    name == "kube-root-ca.crt"
        || CONTROL_PLANE_CONFIG_MAPS.contains(&(ns, name))
        || annotation("control-plane.alpha.kubernetes.io/leader").is_some()
        || SIDECAR_LABELS.iter().any(|key| label(key).is_some())
        || label("k8sgpt.ai/dynamically-loaded").is_some_and(|v| v == "true")
        || annotation("k8sgpt.ai/skip-usage-check").is_some_and(|v| v == "true")
}

/// The (namespace, name) of every ConfigMap a pod, or the pod template of a workload (so that
/// a Deployment scaled to zero or a CronJob between runs still counts), names in a volume, a
/// projected volume, an env value or an envFrom.
fn used_config_maps(snapshot: &Snapshot) -> HashSet<(&str, &str)> {
    let mut specs: Vec<(&str, &PodSpec)> = Vec::new();
    for pod in &snapshot.pods {
        specs.extend(pod.spec.as_ref().map(|s| (ns_name(&pod.metadata).0, s)));
    }
    macro_rules! templates {
        ($($list:ident),*) => {$(
            for object in &snapshot.$list {
                let spec = object.spec.as_ref().and_then(|s| s.template.spec.as_ref());
                specs.extend(spec.map(|s| (ns_name(&object.metadata).0, s)));
            }
        )*};
    }
    templates!(deployments, stateful_sets, daemon_sets, jobs);
    for set in &snapshot.replica_sets {
        let spec = set.spec.as_ref().and_then(|s| s.template.as_ref());
        let spec = spec.and_then(|t| t.spec.as_ref());
        specs.extend(spec.map(|s| (ns_name(&set.metadata).0, s)));
    }
    for cron in &snapshot.cron_jobs {
        let spec = cron
            .spec
            .as_ref()
            .and_then(|s| s.job_template.spec.as_ref());
        let spec = spec.and_then(|s| s.template.spec.as_ref());
        specs.extend(spec.map(|s| (ns_name(&cron.metadata).0, s)));
    }
    let mut used = HashSet::new();
    for (ns, spec) in specs {
        let volumes = spec.volumes.iter().flatten();
        for volume in volumes {
            if let Some(source) = &volume.config_map {
                used.insert((ns, source.name.as_str()));
            }
            let projected = volume
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten());
            for source in projected.filter_map(|s| s.config_map.as_ref()) {
                used.insert((ns, source.name.as_str()));
            }
        }
        for container in spec_containers(spec) {
            let keys = container.env.iter().filter_map(|e| e.value_from.as_ref());
            for key in keys.filter_map(|v| v.config_map_key_ref.as_ref()) {
                used.insert((ns, key.name.as_str()));
            }
            for source in container
                .env_from
                .iter()
                .filter_map(|e| e.config_map_ref.as_ref())
            {
                used.insert((ns, source.name.as_str()));
            }
        }
    }
    used
}

/// One container of a pod, whichever of its lists it is in.
struct ContainerView<'p> {
    /// "Container", "Init container" or "Ephemeral container".
    role: &'static str,
    name: &'p str,
    env: &'p [EnvVar],
    env_from: &'p [EnvFromSource],
    security_context: Option<&'p SecurityContext>,
}

/// Every container of a pod spec, as the checks see them.
fn spec_containers(spec: &PodSpec) -> impl Iterator<Item = ContainerView<'_>> {
    fn of<'p>(role: &'static str, c: &'p Container) -> ContainerView<'p> {
        ContainerView {
            role,
            name: &c.name,
            env: c.env.as_deref().unwrap_or_default(),
            env_from: c.env_from.as_deref().unwrap_or_default(),
            security_context: c.security_context.as_ref(),
        }
    }
    fn ephemeral(c: &EphemeralContainer) -> ContainerView<'_> {
        ContainerView {
            role: "Ephemeral container",
            name: &c.name,
            env: c.env.as_deref().unwrap_or_default(),
            env_from: c.env_from.as_deref().unwrap_or_default(),
            security_context: c.security_context.as_ref(),
        }
    }
    let main = spec.containers.iter().map(|c| of("Container", c));
    let init = spec.init_containers.iter().flatten();
    let debug = spec.ephemeral_containers.iter().flatten();
    main.chain(init.map(|c| of("Init container", c)))
        .chain(debug.map(ephemeral))
}

/// A claim's phase, or "" if it has none.
fn claim_phase(claim: &PersistentVolumeClaim) -> &str {
    claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// The event seen last (the last listed among equals).
fn latest<'e>(events: impl Iterator<Item = &'e Event>) -> Option<&'e Event> {
    events.max_by_key(|e| last_seen(e))
}

/// When an event was last seen, as well as it says.
fn last_seen(event: &Event) -> Option<Timestamp> {
    let series = event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref());
    series
        .map(|t| t.0)
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
}

/// `what`, then ": message" if there is one, ending in a full stop.
fn sentence(what: String, message: &str) -> String {
    let message = message.trim();
    let mut text = what;
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(message);
    }
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests;

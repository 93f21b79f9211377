//! Finds nodes, storage and ConfigMaps that are broken, and pods and roles that are unsafe: the
//! Node, PersistentVolumeClaim, Storage, ConfigMap and Security analyzers.
//!
//! Each reports the failure conditions of k8sgpt's analyzer of the same name, except where
//! those misjudge a real cluster: a check that another kind is missing or unused runs only where
//! that kind was read; the `securityContext: {}` the API server gives every pod counts as none;
//! `kubernetes.io/no-provisioner` (local volumes) is not called deprecated; and Storage leaves
//! out k8sgpt's "smaller than 1Gi" and "names no StorageClass", which describe working claims.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvFromSource, EnvVar, EphemeralContainer, Event, NodeCondition,
    PersistentVolume, PersistentVolumeClaim, Pod, PodSecurityContext, PodSpec, SecurityContext,
};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

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

/// PersistentVolumes released or failed; claims lost, bound to a volume that does not exist,
/// or pending for a StorageClass that does not exist; several default StorageClasses; classes
/// on a deprecated in-tree provisioner.
pub fn storage(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    // A call on one namespace reads volumes and classes to judge its claims, and reports only
    // those.
    let volumes = if snapshot.cluster_wide {
        snapshot.pvs.as_slice()
    } else {
        &[]
    };
    for volume in volumes {
        let name = volume.metadata.name.as_deref().unwrap_or_default();
        let failures = volume_failure(volume).into_iter().collect();
        out.extend(Finding::cluster("PersistentVolume", name, failures));
    }
    for claim in &snapshot.pvcs {
        let (ns, name) = ns_name(&claim.metadata);
        let failures = claim_failures(snapshot, claim);
        let parent = snapshot.parent_of(ns, &claim.metadata);
        out.extend(Finding::namespaced(CLAIM, ns, name, failures, parent));
    }
    if snapshot.cluster_wide {
        storage_classes(snapshot, out);
    }
}

/// What is wrong with a PersistentVolume's phase, if anything.
fn volume_failure(volume: &PersistentVolume) -> Option<Failure> {
    let status = volume.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or_default();
    let message = status
        .and_then(|s| s.message.as_deref())
        .unwrap_or_default();
    let spec = volume.spec.as_ref();
    let claim_ref = spec.and_then(|s| s.claim_ref.as_ref());
    let claim = match claim_ref.map(|c| (c.namespace.as_deref(), c.name.as_deref())) {
        Some((Some(ns), Some(name))) => format!("its claim {ns}/{name}"),
        _ => "its claim".to_owned(),
    };
    let policy = spec.and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
    let text = match (phase, policy) {
        ("Released", Some("Retain")) => format!(
            "Volume is Released: {claim} is gone, and under reclaim policy Retain it keeps its \
             data and will not be bound again until an administrator deletes it or clears its \
             claimRef"
        ),
        ("Released", Some("Delete")) => format!(
            "Volume is Released: {claim} is gone, but the volume has not been deleted as its \
             reclaim policy Delete asks; its provisioner may be failing"
        ),
        ("Released", _) => format!(
            "Volume is Released: {claim} is gone, and it will not be bound again until it is \
             cleaned up"
        ),
        ("Failed", _) => "Volume is Failed: its automatic reclamation failed".to_owned(),
        _ => return None,
    };
    Some(Failure::doc(sentence(text, message), docs::PVC))
}

/// What is wrong with a claim's volume or class (its provisioning is `pvc`'s business).
fn claim_failures(snapshot: &Snapshot, claim: &PersistentVolumeClaim) -> Vec<Failure> {
    let phase = claim_phase(claim);
    let spec = claim.spec.as_ref();
    let volume = spec
        .and_then(|s| s.volume_name.as_deref())
        .filter(|v| !v.is_empty());
    let mut failures = Vec::new();
    if let Some(volume) = volume {
        let volumes = snapshot.pvs.iter().map(|pv| &pv.metadata);
        let missing = snapshot.has(Source::PersistentVolumes) && !named(volumes, volume);
        let text = match (missing, phase) {
            (true, "Lost") => {
                format!("Claim is Lost: PersistentVolume {volume} it was bound to does not exist")
            }
            (true, "Bound") => {
                format!("Claim is bound to PersistentVolume {volume}, which does not exist")
            }
            (true, _) => format!(
                "Claim waits for PersistentVolume {volume} (spec.volumeName), which does not exist"
            ),
            (false, "Lost") => format!(
                "Claim is Lost: it can no longer reach PersistentVolume {volume}, which was \
                 deleted or bound to another claim"
            ),
            (false, _) => return failures,
        };
        failures.push(Failure::doc(format!("{text}."), docs::PVC));
    } else if phase == "Lost" {
        failures.push(Failure::doc(
            "Claim is Lost: the PersistentVolume it was bound to is gone.",
            docs::PVC,
        ));
    } else if phase == "Pending" && snapshot.has(Source::StorageClasses) {
        // The beta annotation, where set, is the class Kubernetes goes by.
        let class = claim
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
            .map(String::as_str)
            .or_else(|| spec.and_then(|s| s.storage_class_name.as_deref()))
            .filter(|c| !c.is_empty());
        let classes = || snapshot.storage_classes.iter().map(|sc| &sc.metadata);
        if let Some(class) = class.filter(|c| !named(classes(), c)) {
            failures.push(Failure::doc(
                format!("Claim is Pending for StorageClass {class}, which does not exist."),
                docs::STORAGE_CLASSES,
            ));
        }
    }
    failures
}

/// An in-tree volume plugin's provisioner, and the CSI driver that replaces it.
struct InTree {
    provisioner: &'static str,
    csi: Option<&'static str>,
    /// Kubernetes still serves its classes by handing them to `csi` (CSI migration).
    migrated: bool,
}

/// The in-tree provisioners Kubernetes deprecated or removed in favour of CSI drivers.
const IN_TREE: &[InTree] = &[
    InTree::migrated("kubernetes.io/aws-ebs", "ebs.csi.aws.com"),
    InTree::migrated("kubernetes.io/gce-pd", "pd.csi.storage.gke.io"),
    InTree::migrated("kubernetes.io/azure-disk", "disk.csi.azure.com"),
    InTree::migrated("kubernetes.io/azure-file", "file.csi.azure.com"),
    InTree::migrated("kubernetes.io/cinder", "cinder.csi.openstack.org"),
    InTree::migrated("kubernetes.io/vsphere-volume", "csi.vsphere.vmware.com"),
    InTree::migrated("kubernetes.io/portworx-volume", "pxd.portworx.com"),
    InTree::removed("kubernetes.io/rbd", Some("rbd.csi.ceph.com")),
    InTree::removed("kubernetes.io/glusterfs", None),
    InTree::removed("kubernetes.io/quobyte", None),
    InTree::removed("kubernetes.io/scaleio", None),
    InTree::removed("kubernetes.io/storageos", None),
];

impl InTree {
    const fn migrated(provisioner: &'static str, csi: &'static str) -> InTree {
        InTree {
            provisioner,
            csi: Some(csi),
            migrated: true,
        }
    }

    const fn removed(provisioner: &'static str, csi: Option<&'static str>) -> InTree {
        InTree {
            provisioner,
            csi,
            migrated: false,
        }
    }

    fn failure(&self) -> Failure {
        let provisioner = self.provisioner;
        let text = match (self.migrated, self.csi) {
            (true, Some(csi)) => format!(
                "StorageClass uses the deprecated in-tree provisioner {provisioner}: Kubernetes \
                 serves it only by handing its volumes to the CSI driver {csi}, which must be \
                 installed; new classes should name {csi}."
            ),
            (_, Some(csi)) => format!(
                "StorageClass uses the in-tree provisioner {provisioner}, which Kubernetes has \
                 removed, so its claims cannot be provisioned; use the CSI driver {csi} instead."
            ),
            (_, None) => format!(
                "StorageClass uses the in-tree provisioner {provisioner}, which Kubernetes has \
                 removed, so its claims cannot be provisioned; use a CSI driver for this storage."
            ),
        };
        Failure::doc(text, docs::STORAGE_CLASSES)
    }
}

/// StorageClasses that share the default mark, or use a deprecated in-tree provisioner.
fn storage_classes(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    let name = |meta: &ObjectMeta| meta.name.clone().unwrap_or_default();
    let defaults: Vec<(usize, String)> = snapshot
        .storage_classes
        .iter()
        .enumerate()
        .filter(|(_, class)| is_default_class(&class.metadata))
        .map(|(i, class)| (i, name(&class.metadata)))
        .collect();
    for (i, class) in snapshot.storage_classes.iter().enumerate() {
        let mut failures = Vec::new();
        if defaults.len() > 1 && defaults.iter().any(|(d, _)| *d == i) {
            let others: Vec<&str> = defaults
                .iter()
                .filter(|(d, _)| *d != i)
                .map(|(_, other)| other.as_str())
                .collect();
            failures.push(Failure::doc(
                format!(
                    "StorageClass is marked default, and so {} {}: which one a claim without a \
                     class gets is ambiguous (Kubernetes picks the newest).",
                    if others.len() == 1 { "is" } else { "are" },
                    others.join(", "),
                ),
                docs::STORAGE_CLASSES,
            ));
        }
        if let Some(in_tree) = IN_TREE.iter().find(|t| t.provisioner == class.provisioner) {
            failures.push(in_tree.failure());
        }
        let name = name(&class.metadata);
        out.extend(Finding::cluster("StorageClass", &name, failures));
    }
}

/// Whether a StorageClass carries the default mark (GA or beta annotation), as Kubernetes reads it.
fn is_default_class(meta: &ObjectMeta) -> bool {
    let Some(annotations) = &meta.annotations else {
        return false;
    };
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|key| annotations.get(*key).map(String::as_str) == Some("true"))
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
    if snapshot.has(Source::ClusterRoles) {
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

/// One container of a pod, whichever of its lists it is in.
struct ContainerView<'p> {
    /// "Container", "Init container" or "Ephemeral container".
    role: &'static str,
    name: &'p str,
    env: &'p [EnvVar],
    env_from: &'p [EnvFromSource],
    security_context: Option<&'p SecurityContext>,
}

/// Every container, init container and ephemeral container of a pod.
fn containers(pod: &Pod) -> impl Iterator<Item = ContainerView<'_>> {
    pod.spec.iter().flat_map(spec_containers)
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

/// Whether an object of `name` is among `objects`.
fn named<'a>(mut objects: impl Iterator<Item = &'a ObjectMeta>, name: &str) -> bool {
    objects.any(|meta| meta.name.as_deref() == Some(name))
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

//! Holds what the analyzers look at: the objects of each [`Source`] kind the caller could read,
//! in the namespaces the call covers, with indexes the analyzers share (events by the object
//! they are about, owners by name).

use std::collections::{HashMap, HashSet};

use k8s_openapi::Metadata;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Node, PersistentVolume, PersistentVolumeClaim, Pod, PodSpec,
    Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// A kind the analyzers read, listed once per namespace (or once, if cluster-scoped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Pods,
    Deployments,
    ReplicaSets,
    StatefulSets,
    DaemonSets,
    Jobs,
    CronJobs,
    Services,
    Endpoints,
    Ingresses,
    IngressClasses,
    PersistentVolumeClaims,
    PersistentVolumes,
    StorageClasses,
    ConfigMaps,
    /// Names only: the analyzers never read a Secret's data.
    Secrets,
    ServiceAccounts,
    /// Warning events only.
    Events,
    Nodes,
    MutatingWebhooks,
    ValidatingWebhooks,
    HorizontalPodAutoscalers,
    PodDisruptionBudgets,
    NetworkPolicies,
    Roles,
    RoleBindings,
    ClusterRoles,
    ClusterRoleBindings,
    GatewayClasses,
    Gateways,
    HttpRoutes,
    ScaledObjects,
    PolicyReports,
    ClusterPolicyReports,
}

impl Source {
    /// The API group and kind, as discovery names them.
    pub fn group_kind(self) -> (&'static str, &'static str) {
        match self {
            Source::Pods => ("", "Pod"),
            Source::Deployments => ("apps", "Deployment"),
            Source::ReplicaSets => ("apps", "ReplicaSet"),
            Source::StatefulSets => ("apps", "StatefulSet"),
            Source::DaemonSets => ("apps", "DaemonSet"),
            Source::Jobs => ("batch", "Job"),
            Source::CronJobs => ("batch", "CronJob"),
            Source::Services => ("", "Service"),
            Source::Endpoints => ("", "Endpoints"),
            Source::Ingresses => ("networking.k8s.io", "Ingress"),
            Source::IngressClasses => ("networking.k8s.io", "IngressClass"),
            Source::PersistentVolumeClaims => ("", "PersistentVolumeClaim"),
            Source::PersistentVolumes => ("", "PersistentVolume"),
            Source::StorageClasses => ("storage.k8s.io", "StorageClass"),
            Source::ConfigMaps => ("", "ConfigMap"),
            Source::Secrets => ("", "Secret"),
            Source::ServiceAccounts => ("", "ServiceAccount"),
            Source::Events => ("", "Event"),
            Source::Nodes => ("", "Node"),
            Source::MutatingWebhooks => (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
            ),
            Source::ValidatingWebhooks => (
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
            ),
            Source::HorizontalPodAutoscalers => ("autoscaling", "HorizontalPodAutoscaler"),
            Source::PodDisruptionBudgets => ("policy", "PodDisruptionBudget"),
            Source::NetworkPolicies => ("networking.k8s.io", "NetworkPolicy"),
            Source::Roles => ("rbac.authorization.k8s.io", "Role"),
            Source::RoleBindings => ("rbac.authorization.k8s.io", "RoleBinding"),
            Source::ClusterRoles => ("rbac.authorization.k8s.io", "ClusterRole"),
            Source::ClusterRoleBindings => ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            Source::GatewayClasses => ("gateway.networking.k8s.io", "GatewayClass"),
            Source::Gateways => ("gateway.networking.k8s.io", "Gateway"),
            Source::HttpRoutes => ("gateway.networking.k8s.io", "HTTPRoute"),
            Source::ScaledObjects => ("keda.sh", "ScaledObject"),
            Source::PolicyReports => ("wgpolicyk8s.io", "PolicyReport"),
            Source::ClusterPolicyReports => ("wgpolicyk8s.io", "ClusterPolicyReport"),
        }
    }

    /// Whether the kind lives in namespaces.
    pub fn namespaced(self) -> bool {
        !matches!(
            self,
            Source::IngressClasses
                | Source::PersistentVolumes
                | Source::StorageClasses
                | Source::Nodes
                | Source::MutatingWebhooks
                | Source::ValidatingWebhooks
                | Source::ClusterRoles
                | Source::ClusterRoleBindings
                | Source::GatewayClasses
                | Source::ClusterPolicyReports
        )
    }

    /// Extra query parameters of its list (Warning events only).
    pub fn selector(self) -> Option<(&'static str, &'static str)> {
        match self {
            Source::Events => Some(("fieldSelector", "type=Warning")),
            _ => None,
        }
    }
}

/// A Secret as the analyzers see it: its name and type, never its data.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecretName {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
}

/// The objects the call covers, by kind. A kind's list is empty both when there are none and
/// when it could not be read: [`Snapshot::has_in`] tells which.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub pods: Vec<Pod>,
    pub deployments: Vec<Deployment>,
    pub replica_sets: Vec<ReplicaSet>,
    pub stateful_sets: Vec<StatefulSet>,
    pub daemon_sets: Vec<DaemonSet>,
    pub jobs: Vec<Job>,
    pub cron_jobs: Vec<CronJob>,
    pub services: Vec<Service>,
    pub endpoints: Vec<Endpoints>,
    pub ingresses: Vec<Ingress>,
    pub ingress_classes: Vec<IngressClass>,
    pub pvcs: Vec<PersistentVolumeClaim>,
    pub pvs: Vec<PersistentVolume>,
    pub storage_classes: Vec<StorageClass>,
    pub config_maps: Vec<ConfigMap>,
    pub secrets: Vec<SecretName>,
    pub service_accounts: Vec<ServiceAccount>,
    pub events: Vec<Event>,
    pub nodes: Vec<Node>,
    pub mutating_webhooks: Vec<MutatingWebhookConfiguration>,
    pub validating_webhooks: Vec<ValidatingWebhookConfiguration>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    pub pdbs: Vec<PodDisruptionBudget>,
    pub network_policies: Vec<NetworkPolicy>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// Gateway API, KEDA and Kyverno objects, as JSON (their CRDs' versions vary).
    pub gateway_classes: Vec<Value>,
    pub gateways: Vec<Value>,
    pub http_routes: Vec<Value>,
    pub scaled_objects: Vec<Value>,
    pub policy_reports: Vec<Value>,
    pub cluster_policy_reports: Vec<Value>,
    /// Recent log lines of running containers, by (namespace, pod, container), for `Log`.
    pub logs: HashMap<(String, String, String), String>,
    /// Which kinds were read, and where: `None` for every namespace the call covers (and for
    /// cluster-scoped kinds), `Some(ns)` for one namespace.
    read: HashSet<(Source, Option<String>)>,
    /// Indexes of `events`, by (namespace, involved kind, involved name).
    events_by_object: HashMap<(String, String, String), Vec<usize>>,
    /// Objects that did not parse as their kind (skipped, and said in the answer).
    pub unreadable: usize,
    /// The call covers the cluster (no namespace named): only then are cluster-scoped objects
    /// (PersistentVolumes, StorageClasses) reported, not just consulted.
    pub cluster_wide: bool,
    /// The namespaces the call covers (`None`: any, as in tests). A kind read "everywhere" was
    /// read in these only: a Service in a namespace outside them is unknown, not missing.
    pub covered: Option<HashSet<String>>,
}

impl Snapshot {
    /// Adds a list answer's items for `source`, read in `namespace` (`None`: all covered).
    pub fn add(&mut self, source: Source, namespace: Option<&str>, items: &[&RawValue]) {
        fn parse<T: serde::de::DeserializeOwned>(
            items: &[&RawValue],
            into: &mut Vec<T>,
            unreadable: &mut usize,
        ) {
            into.reserve(items.len());
            for item in items {
                match serde_json::from_str(item.get()) {
                    Ok(object) => into.push(object),
                    Err(_) => *unreadable += 1,
                }
            }
        }
        let u = &mut self.unreadable;
        match source {
            Source::Pods => parse(items, &mut self.pods, u),
            Source::Deployments => parse(items, &mut self.deployments, u),
            Source::ReplicaSets => parse(items, &mut self.replica_sets, u),
            Source::StatefulSets => parse(items, &mut self.stateful_sets, u),
            Source::DaemonSets => parse(items, &mut self.daemon_sets, u),
            Source::Jobs => parse(items, &mut self.jobs, u),
            Source::CronJobs => parse(items, &mut self.cron_jobs, u),
            Source::Services => parse(items, &mut self.services, u),
            Source::Endpoints => parse(items, &mut self.endpoints, u),
            Source::Ingresses => parse(items, &mut self.ingresses, u),
            Source::IngressClasses => parse(items, &mut self.ingress_classes, u),
            Source::PersistentVolumeClaims => parse(items, &mut self.pvcs, u),
            Source::PersistentVolumes => parse(items, &mut self.pvs, u),
            Source::StorageClasses => parse(items, &mut self.storage_classes, u),
            Source::ConfigMaps => parse(items, &mut self.config_maps, u),
            Source::Secrets => parse(items, &mut self.secrets, u),
            Source::ServiceAccounts => parse(items, &mut self.service_accounts, u),
            Source::Events => {
                let first = self.events.len();
                parse(items, &mut self.events, u);
                for (i, event) in self.events.iter().enumerate().skip(first) {
                    let about = &event.involved_object;
                    let key = (
                        about.namespace.clone().unwrap_or_default(),
                        about.kind.clone().unwrap_or_default(),
                        about.name.clone().unwrap_or_default(),
                    );
                    self.events_by_object.entry(key).or_default().push(i);
                }
            }
            Source::Nodes => parse(items, &mut self.nodes, u),
            Source::MutatingWebhooks => parse(items, &mut self.mutating_webhooks, u),
            Source::ValidatingWebhooks => parse(items, &mut self.validating_webhooks, u),
            Source::HorizontalPodAutoscalers => parse(items, &mut self.hpas, u),
            Source::PodDisruptionBudgets => parse(items, &mut self.pdbs, u),
            Source::NetworkPolicies => parse(items, &mut self.network_policies, u),
            Source::Roles => parse(items, &mut self.roles, u),
            Source::RoleBindings => parse(items, &mut self.role_bindings, u),
            Source::ClusterRoles => parse(items, &mut self.cluster_roles, u),
            Source::ClusterRoleBindings => parse(items, &mut self.cluster_role_bindings, u),
            Source::GatewayClasses => parse(items, &mut self.gateway_classes, u),
            Source::Gateways => parse(items, &mut self.gateways, u),
            Source::HttpRoutes => parse(items, &mut self.http_routes, u),
            Source::ScaledObjects => parse(items, &mut self.scaled_objects, u),
            Source::PolicyReports => parse(items, &mut self.policy_reports, u),
            Source::ClusterPolicyReports => parse(items, &mut self.cluster_policy_reports, u),
        }
        self.read.insert((source, namespace.map(str::to_owned)));
    }

    /// Adds typed objects of `source` (for tests and benchmarks), as read everywhere covered.
    pub fn add_values(&mut self, source: Source, items: &[Value]) {
        let raw: Vec<Box<RawValue>> = items
            .iter()
            .filter_map(|v| serde_json::value::to_raw_value(v).ok())
            .collect();
        let refs: Vec<&RawValue> = raw.iter().map(|r| &**r).collect();
        self.add(source, None, &refs);
    }

    /// Marks `source` as read with nothing in it (every covered namespace).
    pub fn mark_read(&mut self, source: Source) {
        self.read.insert((source, None));
    }

    /// Whether `source` was read anywhere.
    pub fn has(&self, source: Source) -> bool {
        self.read.iter().any(|(s, _)| *s == source)
    }

    /// Whether `source` was read in `namespace` (or everywhere the call covers, and the call
    /// covers it): only then does its absence there mean something ("no Service of that name
    /// exists"). A webhook's Service in a namespace the caller may not read is neither.
    pub fn has_in(&self, source: Source, namespace: &str) -> bool {
        (self.covers(namespace) && self.read.contains(&(source, None)))
            || self.read.contains(&(source, Some(namespace.to_owned())))
    }

    /// Whether the call covers `namespace` (always, for a snapshot built without coverage):
    /// only then may an analyzer name an object there.
    pub fn covers(&self, namespace: &str) -> bool {
        self.covered
            .as_ref()
            .is_none_or(|names| names.contains(namespace))
    }

    /// The Warning events about one object, oldest first as listed.
    pub fn events_about<'s>(
        &'s self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> impl Iterator<Item = &'s Event> + 's {
        self.events_by_object
            .get(&(namespace.to_owned(), kind.to_owned(), name.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|&i| self.events.get(i))
    }

    /// The topmost owner of an object in `namespace`, as `Kind/name` (a pod's Deployment
    /// through its ReplicaSet, a Job's CronJob), or `None` if it has no owner.
    pub fn parent_of(&self, namespace: &str, meta: &ObjectMeta) -> Option<String> {
        let mut owner = controller(meta)?;
        // Owner chains are short (Pod → ReplicaSet → Deployment); the bound stops a cycle.
        for _ in 0..8 {
            let next = match owner.kind.as_str() {
                "ReplicaSet" => {
                    find(&self.replica_sets, namespace, &owner.name).map(Metadata::metadata)
                }
                "Job" => find(&self.jobs, namespace, &owner.name).map(Metadata::metadata),
                "StatefulSet" => {
                    find(&self.stateful_sets, namespace, &owner.name).map(Metadata::metadata)
                }
                "DaemonSet" => {
                    find(&self.daemon_sets, namespace, &owner.name).map(Metadata::metadata)
                }
                "Deployment" => {
                    find(&self.deployments, namespace, &owner.name).map(Metadata::metadata)
                }
                "CronJob" => find(&self.cron_jobs, namespace, &owner.name).map(Metadata::metadata),
                _ => None,
            };
            match next.and_then(controller) {
                Some(up) => owner = up,
                None => break,
            }
        }
        Some(format!("{}/{}", owner.kind, owner.name))
    }
}

/// A scale target (of an autoscaler, a KEDA ScaledObject), as far as the snapshot can tell.
#[derive(Debug)]
pub enum ScaleTarget<'s> {
    /// It exists, with its pod template's spec (if it has one).
    Found(Option<&'s PodSpec>),
    /// Its kind was read in the namespace, and it is not there.
    Missing,
    /// A kind the snapshot does not hold (a ReplicationController, a custom resource with a
    /// scale subresource), or not read there: nothing to judge.
    Unknown,
}

impl Snapshot {
    /// The Deployment, StatefulSet or ReplicaSet `name` in `ns` an autoscaler names.
    pub fn scale_target(&self, ns: &str, kind: &str, name: &str) -> ScaleTarget<'_> {
        let (source, found) = match kind {
            "Deployment" => (
                Source::Deployments,
                find(&self.deployments, ns, name)
                    .map(|d| d.spec.as_ref().and_then(|s| s.template.spec.as_ref())),
            ),
            "StatefulSet" => (
                Source::StatefulSets,
                find(&self.stateful_sets, ns, name)
                    .map(|s| s.spec.as_ref().and_then(|s| s.template.spec.as_ref())),
            ),
            "ReplicaSet" => (
                Source::ReplicaSets,
                find(&self.replica_sets, ns, name).map(|r| {
                    let template = r.spec.as_ref().and_then(|s| s.template.as_ref());
                    template.and_then(|t| t.spec.as_ref())
                }),
            ),
            _ => return ScaleTarget::Unknown,
        };
        match found {
            Some(pods) => ScaleTarget::Found(pods),
            None if self.has_in(source, ns) => ScaleTarget::Missing,
            None => ScaleTarget::Unknown,
        }
    }
}

/// The controlling owner reference (or the first one, if none is marked controller).
fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let owners = meta.owner_references.as_deref()?;
    owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())
}

/// The object of `name` in `namespace`, among `objects`.
pub(super) fn find<'a, T: Metadata<Ty = ObjectMeta>>(
    objects: &'a [T],
    namespace: &str,
    name: &str,
) -> Option<&'a T> {
    objects.iter().find(|o| {
        let meta = o.metadata();
        meta.name.as_deref() == Some(name) && meta.namespace.as_deref() == Some(namespace)
    })
}

/// The namespace and name of an object (empty when absent).
pub fn ns_name(meta: &ObjectMeta) -> (&str, &str) {
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

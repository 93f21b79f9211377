//! Names every analyzer kubegate has (k8sgpt's filter names), what it reads, whether it is on by
//! default, and the integrations that bring more of them.

use super::snapshot::Source::{self, *};
use super::{Finding, Snapshot, cluster, integrations, network, workloads};

/// Where an analyzer looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Objects in namespaces: runs for a namespace and for the cluster.
    Namespaced,
    /// Cluster-scoped objects (nodes, webhook configurations): runs only when the call covers
    /// the cluster (`analyze` without a namespace).
    Cluster,
}

/// One analyzer.
pub struct Analyzer {
    /// Its filter name, as k8sgpt spells it.
    pub name: &'static str,
    pub description: &'static str,
    /// On unless a tenant's filters say otherwise.
    pub core: bool,
    pub reach: Reach,
    /// The kinds it reads, its own first: it runs only when that one could be read.
    pub reads: &'static [Source],
    /// The integration that brings it, if it is not built in.
    pub integration: Option<&'static str>,
    pub run: fn(&Snapshot, &mut Vec<Finding>),
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! analyzers {
    ($($name:literal, $core:literal, $reach:ident, [$($source:ident),*], $integration:expr, $run:path, $description:literal;)*) => {
        /// Every analyzer, in the order results are reported.
        pub static ANALYZERS: &[Analyzer] = &[$(Analyzer {
            name: $name,
            description: $description,
            core: $core,
            reach: Reach::$reach,
            reads: &[$($source),*],
            integration: $integration,
            run: $run,
        },)*];
    };
}

analyzers! {
    "Pod", true, Namespaced, [Pods, Events, ReplicaSets, Deployments, Jobs, CronJobs, StatefulSets, DaemonSets], None, workloads::pod,
        "Pods pending, evicted, crash-looping, failing to pull or start, or running but not ready";
    "Deployment", true, Namespaced, [Deployments], None, workloads::deployment,
        "Deployments with fewer ready replicas than desired, or past their progress deadline";
    "ReplicaSet", true, Namespaced, [ReplicaSets, Events], None, workloads::replica_set,
        "ReplicaSets that cannot create their pods";
    "PersistentVolumeClaim", true, Namespaced, [PersistentVolumeClaims, Events], None, cluster::pvc,
        "PersistentVolumeClaims pending because provisioning failed";
    "Service", true, Namespaced, [Services, Endpoints, Events], None, network::service,
        "Services with no endpoints for their selector, not-ready endpoints, or warning events";
    "Ingress", true, Namespaced, [Ingresses, IngressClasses, Services, Secrets], None, network::ingress,
        "Ingresses naming a missing ingress class, backend Service or TLS Secret";
    "StatefulSet", true, Namespaced, [StatefulSets, Services, StorageClasses, Events], None, workloads::stateful_set,
        "StatefulSets whose governing Service or volume StorageClass is missing, or with replicas not available";
    "Job", true, Namespaced, [Jobs, CronJobs], None, workloads::job,
        "Jobs suspended or failed";
    "CronJob", true, Namespaced, [CronJobs], None, workloads::cron_job,
        "CronJobs suspended, with an invalid schedule or a negative starting deadline";
    "Node", true, Cluster, [Nodes], None, cluster::node,
        "Nodes not ready or under memory, disk or PID pressure";
    "DaemonSet", true, Namespaced, [DaemonSets, Secrets], None, workloads::daemon_set,
        "DaemonSets with fewer ready pods than desired, or naming a missing image pull Secret";
    "MutatingWebhookConfiguration", true, Cluster, [MutatingWebhooks, Services, Pods], None, network::mutating_webhook,
        "Mutating webhooks whose Service is missing or has no running pods";
    "ValidatingWebhookConfiguration", true, Cluster, [ValidatingWebhooks, Services, Pods], None, network::validating_webhook,
        "Validating webhooks whose Service is missing or has no running pods";
    "ConfigMap", true, Namespaced, [ConfigMaps, Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs], None, cluster::config_map,
        "ConfigMaps no pod or pod template uses, empty ones, and ones larger than 1 MB";
    "HorizontalPodAutoScaler", false, Namespaced, [HorizontalPodAutoscalers, Deployments, StatefulSets, ReplicaSets], None, workloads::hpa,
        "HorizontalPodAutoscalers whose scale target is missing or sets no resource requests and limits, or that cannot scale (ScalingActive or AbleToScale False)";
    "PodDisruptionBudget", false, Namespaced, [PodDisruptionBudgets], None, workloads::pdb,
        "PodDisruptionBudgets that allow no disruption";
    "NetworkPolicy", false, Namespaced, [NetworkPolicies, Pods], None, network::network_policy,
        "NetworkPolicies that select every pod, or no pod";
    "Log", false, Namespaced, [Pods, ReplicaSets, Jobs], None, workloads::log,
        "Error lines in the recent logs of running containers (one result per container)";
    "Storage", false, Namespaced, [PersistentVolumeClaims, PersistentVolumes, StorageClasses], None, cluster::storage,
        "PersistentVolumes released or failed; claims lost, bound to missing volumes or pending for missing StorageClasses; several default StorageClasses; in-tree provisioners";
    "Security", false, Namespaced, [Pods, Roles, ClusterRoles], None, cluster::security,
        "Pods on the default ServiceAccount, privileged containers, pods with no securityContext anywhere, roles with wildcards";
    "GatewayClass", false, Cluster, [GatewayClasses], None, network::gateway_class,
        "GatewayClasses not accepted by their controller";
    "Gateway", false, Namespaced, [Gateways, GatewayClasses], None, network::gateway,
        "Gateways naming a missing GatewayClass, or not accepted";
    "HTTPRoute", false, Namespaced, [HttpRoutes, Gateways, Services], None, network::http_route,
        "HTTPRoutes naming a missing Gateway or backend Service, or a port the Service lacks";
    "ScaledObject", false, Namespaced, [ScaledObjects, Deployments, StatefulSets, ReplicaSets, Events], Some("keda"), integrations::scaled_object,
        "KEDA ScaledObjects whose scale target is missing, or not ready";
    "PolicyReport", false, Namespaced, [PolicyReports], Some("kyverno"), integrations::policy_report,
        "Kyverno policy results that failed, per namespace";
    "ClusterPolicyReport", false, Cluster, [ClusterPolicyReports], Some("kyverno"), integrations::cluster_policy_report,
        "Kyverno policy results that failed, for cluster-scoped objects";
}

/// The analyzer of this filter name (case-insensitive, as k8sgpt takes them).
pub fn analyzer(name: &str) -> Option<&'static Analyzer> {
    let name = name.trim();
    ANALYZERS.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// A family of analyzers that work when a project's CRDs are installed.
#[derive(Debug)]
pub struct Integration {
    pub name: &'static str,
    pub description: &'static str,
    /// The analyzers it adds.
    pub analyzers: &'static [&'static str],
    /// The CRD (group, kind) whose presence means the integration can work.
    pub detect: Option<(&'static str, &'static str)>,
    /// What it needs that kubegate does not have, if it cannot work here.
    pub unavailable: Option<&'static str>,
}

/// Every integration `list-integrations` shows.
pub static INTEGRATIONS: &[Integration] = &[
    Integration {
        name: "keda",
        description: "KEDA event-driven autoscaling: analyzes ScaledObjects",
        analyzers: &["ScaledObject"],
        detect: Some(("keda.sh", "ScaledObject")),
        unavailable: None,
    },
    Integration {
        name: "kyverno",
        description: "Kyverno policy engine: reports failed policy results from PolicyReports",
        analyzers: &["PolicyReport", "ClusterPolicyReport"],
        detect: Some(("wgpolicyk8s.io", "PolicyReport")),
        unavailable: None,
    },
    Integration {
        name: "prometheus",
        description: "Prometheus configuration validation and relabelling reports",
        analyzers: &[],
        detect: None,
        unavailable: Some(
            "a Prometheus server's URL and read access to its configuration; kubegate does not \
             reach services outside the Kubernetes API, so this integration is not offered",
        ),
    },
    Integration {
        name: "aws",
        description: "Amazon EKS cluster checks",
        analyzers: &[],
        detect: None,
        unavailable: Some(
            "AWS credentials and the EKS API; kubegate talks only to the Kubernetes API, so this \
             integration is not offered",
        ),
    },
];

/// The integration of this name.
pub fn integration(name: &str) -> Option<&'static Integration> {
    let name = name.trim();
    INTEGRATIONS
        .iter()
        .find(|i| i.name.eq_ignore_ascii_case(name))
}

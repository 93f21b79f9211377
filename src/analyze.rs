//! Finds what is broken in a namespace (or the cluster) and says why: k8sgpt's analyzers, in
//! Rust, over a [`Snapshot`] of the objects the caller may read.
//!
//! An [`Analyzer`] is a pure function from a snapshot to [`Finding`]s. It names the [`Source`]s
//! (kinds) it reads; the `analyze` tool (`crate::tool`) lists each source once per namespace,
//! as the caller, fills one snapshot and runs every active analyzer over it. Nothing here talks
//! to Kubernetes, so each analyzer is tested on objects built in memory, and benchmarked so.
//!
//! Analyzer names are k8sgpt's filter names (`Pod`, `Service`, `HorizontalPodAutoScaler`, …),
//! so `add-filters` takes what k8sgpt users already type.

mod cluster;
mod integrations;
mod json;
mod network;
mod registry;
mod snapshot;
mod workloads;

use serde::Serialize;

pub use registry::{ANALYZERS, Analyzer, INTEGRATIONS, Integration, Reach, analyzer, integration};
pub use snapshot::{SecretName, Snapshot, Source, ns_name};

/// One object found broken: k8sgpt's `Result`, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The analyzer's kind (`Pod`, `Deployment`, …).
    pub kind: &'static str,
    /// `namespace/name`, or `name` for a cluster-scoped object.
    pub name: String,
    /// What is wrong with it, one plain sentence each.
    #[serde(rename = "error")]
    pub failures: Vec<Failure>,
    /// The object that owns it at the top (`Deployment/web` for a failing pod), or empty.
    pub parent_object: String,
}

/// One thing wrong with an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    #[serde(rename = "Text")]
    pub text: String,
    /// A link to the Kubernetes documentation that explains the problem, or empty.
    #[serde(rename = "KubernetesDoc")]
    pub doc: &'static str,
}

impl Failure {
    pub fn new(text: impl Into<String>) -> Failure {
        Failure {
            text: text.into(),
            doc: "",
        }
    }

    pub fn doc(text: impl Into<String>, doc: &'static str) -> Failure {
        Failure {
            text: text.into(),
            doc,
        }
    }
}

impl Finding {
    /// A finding about a namespaced object, if it has any failures.
    pub fn namespaced(
        kind: &'static str,
        namespace: &str,
        name: &str,
        failures: Vec<Failure>,
        parent_object: Option<String>,
    ) -> Option<Finding> {
        (!failures.is_empty()).then(|| Finding {
            kind,
            name: format!("{namespace}/{name}"),
            failures,
            parent_object: parent_object.unwrap_or_default(),
        })
    }

    /// A finding about a cluster-scoped object, if it has any failures.
    pub fn cluster(kind: &'static str, name: &str, failures: Vec<Failure>) -> Option<Finding> {
        (!failures.is_empty()).then(|| Finding {
            kind,
            name: name.to_owned(),
            failures,
            parent_object: String::new(),
        })
    }
}

/// Documentation links the analyzers point to.
pub mod docs {
    pub const POD_LIFECYCLE: &str =
        "https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/";
    pub const DEBUG_PODS: &str =
        "https://kubernetes.io/docs/tasks/debug/debug-application/debug-pods/";
    pub const IMAGES: &str = "https://kubernetes.io/docs/concepts/containers/images/";
    pub const PROBES: &str = "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/";
    pub const SCHEDULING: &str =
        "https://kubernetes.io/docs/concepts/scheduling-eviction/kube-scheduler/";
    pub const SCHEDULING_GATES: &str =
        "https://kubernetes.io/docs/concepts/scheduling-eviction/pod-scheduling-readiness/";
    pub const EVICTION: &str =
        "https://kubernetes.io/docs/concepts/scheduling-eviction/node-pressure-eviction/";
    pub const DEPLOYMENTS: &str =
        "https://kubernetes.io/docs/concepts/workloads/controllers/deployment/";
    pub const DEPLOYMENT_FAILED: &str =
        "https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#failed-deployment";
    pub const REPLICASETS: &str =
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/";
    pub const STATEFULSETS: &str =
        "https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/";
    pub const DAEMONSETS: &str =
        "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub const JOBS: &str = "https://kubernetes.io/docs/concepts/workloads/controllers/job/";
    pub const CRONJOBS: &str =
        "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/";
    pub const SERVICES: &str = "https://kubernetes.io/docs/concepts/services-networking/service/";
    pub const INGRESS: &str = "https://kubernetes.io/docs/concepts/services-networking/ingress/";
    pub const NETWORK_POLICIES: &str =
        "https://kubernetes.io/docs/concepts/services-networking/network-policies/";
    pub const GATEWAY_API: &str = "https://gateway-api.sigs.k8s.io/";
    pub const PVC: &str = "https://kubernetes.io/docs/concepts/storage/persistent-volumes/";
    pub const STORAGE_CLASSES: &str =
        "https://kubernetes.io/docs/concepts/storage/storage-classes/";
    pub const NODES: &str = "https://kubernetes.io/docs/concepts/architecture/nodes/";
    pub const WEBHOOKS: &str =
        "https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/";
    pub const CONFIGMAPS: &str = "https://kubernetes.io/docs/concepts/configuration/configmap/";
    pub const HPA: &str =
        "https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/";
    pub const PDB: &str = "https://kubernetes.io/docs/concepts/workloads/pods/disruptions/";
    pub const SECURITY_CONTEXT: &str =
        "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/";
    pub const SERVICE_ACCOUNTS: &str =
        "https://kubernetes.io/docs/concepts/security/service-accounts/";
    pub const RBAC: &str = "https://kubernetes.io/docs/reference/access-authn-authz/rbac/";
    pub const PULL_SECRETS: &str =
        "https://kubernetes.io/docs/tasks/configure-pod-container/pull-image-private-registry/";
    pub const KEDA: &str = "https://keda.sh/docs/latest/concepts/scaling-deployments/";
    pub const KYVERNO: &str = "https://kyverno.io/docs/policy-reports/";
}

/// Runs `analyzers` over `snapshot`: every finding, in analyzer order, then by name.
pub fn run(snapshot: &Snapshot, analyzers: &[&Analyzer]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for analyzer in analyzers {
        // An analyzer runs when its main kind could be read; checks that need another kind
        // (a Service an Ingress names) are skipped when that one could not be.
        if !analyzer.reads.first().is_some_and(|s| snapshot.has(*s)) {
            continue;
        }
        let start = findings.len();
        (analyzer.run)(snapshot, &mut findings);
        findings[start..].sort_by(|a, b| a.name.cmp(&b.name));
    }
    findings
}

#[cfg(test)]
mod tests;

//! Names the built-in Kubernetes kinds kubegate's tools work with, the API groups that serve them,
//! and the names (plural, singular, kubectl short names) callers use for them.

/// A built-in kind. Its served version is found by discovery, never assumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinKind {
    Pod,
    Deployment,
    Service,
    Node,
    Job,
    CronJob,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ConfigMap,
    Secret,
    Ingress,
    PersistentVolumeClaim,
    PersistentVolume,
    Namespace,
    Event,
}

impl BuiltinKind {
    pub const ALL: [BuiltinKind; 16] = [
        BuiltinKind::Pod,
        BuiltinKind::Deployment,
        BuiltinKind::Service,
        BuiltinKind::Node,
        BuiltinKind::Job,
        BuiltinKind::CronJob,
        BuiltinKind::StatefulSet,
        BuiltinKind::DaemonSet,
        BuiltinKind::ReplicaSet,
        BuiltinKind::ConfigMap,
        BuiltinKind::Secret,
        BuiltinKind::Ingress,
        BuiltinKind::PersistentVolumeClaim,
        BuiltinKind::PersistentVolume,
        BuiltinKind::Namespace,
        BuiltinKind::Event,
    ];

    /// The `kind` as the API writes it.
    pub fn kind(self) -> &'static str {
        match self {
            BuiltinKind::Pod => "Pod",
            BuiltinKind::Deployment => "Deployment",
            BuiltinKind::Service => "Service",
            BuiltinKind::Node => "Node",
            BuiltinKind::Job => "Job",
            BuiltinKind::CronJob => "CronJob",
            BuiltinKind::StatefulSet => "StatefulSet",
            BuiltinKind::DaemonSet => "DaemonSet",
            BuiltinKind::ReplicaSet => "ReplicaSet",
            BuiltinKind::ConfigMap => "ConfigMap",
            BuiltinKind::Secret => "Secret",
            BuiltinKind::Ingress => "Ingress",
            BuiltinKind::PersistentVolumeClaim => "PersistentVolumeClaim",
            BuiltinKind::PersistentVolume => "PersistentVolume",
            BuiltinKind::Namespace => "Namespace",
            BuiltinKind::Event => "Event",
        }
    }

    /// The resource's plural name: the name used in URLs, RBAC and kubegate's Cedar arguments.
    pub fn plural(self) -> &'static str {
        self.names()[0]
    }

    /// The API groups that may serve the kind, most current first (`""` is the core group).
    pub fn groups(self) -> &'static [&'static str] {
        match self {
            BuiltinKind::Deployment
            | BuiltinKind::StatefulSet
            | BuiltinKind::DaemonSet
            | BuiltinKind::ReplicaSet => &["apps"],
            BuiltinKind::Job | BuiltinKind::CronJob => &["batch"],
            // extensions/v1beta1 served Ingress until Kubernetes 1.22.
            BuiltinKind::Ingress => &["networking.k8s.io", "extensions"],
            _ => &[""],
        }
    }

    pub fn namespaced(self) -> bool {
        !matches!(
            self,
            BuiltinKind::Node | BuiltinKind::PersistentVolume | BuiltinKind::Namespace
        )
    }

    /// Plural first, then singular and kubectl's short names (and k8sgpt's `pvcs`, `pvs`).
    fn names(self) -> &'static [&'static str] {
        match self {
            BuiltinKind::Pod => &["pods", "pod", "po"],
            BuiltinKind::Deployment => &["deployments", "deployment", "deploy"],
            BuiltinKind::Service => &["services", "service", "svc"],
            BuiltinKind::Node => &["nodes", "node", "no"],
            BuiltinKind::Job => &["jobs", "job"],
            BuiltinKind::CronJob => &["cronjobs", "cronjob", "cj"],
            BuiltinKind::StatefulSet => &["statefulsets", "statefulset", "sts"],
            BuiltinKind::DaemonSet => &["daemonsets", "daemonset", "ds"],
            BuiltinKind::ReplicaSet => &["replicasets", "replicaset", "rs"],
            BuiltinKind::ConfigMap => &["configmaps", "configmap", "cm"],
            BuiltinKind::Secret => &["secrets", "secret"],
            BuiltinKind::Ingress => &["ingresses", "ingress", "ing"],
            BuiltinKind::PersistentVolumeClaim => &[
                "persistentvolumeclaims",
                "persistentvolumeclaim",
                "pvc",
                "pvcs",
            ],
            BuiltinKind::PersistentVolume => {
                &["persistentvolumes", "persistentvolume", "pv", "pvs"]
            }
            BuiltinKind::Namespace => &["namespaces", "namespace", "ns"],
            BuiltinKind::Event => &["events", "event", "ev"],
        }
    }

    /// Finds a kind by any of its names, case-insensitively.
    pub fn from_name(name: &str) -> Option<BuiltinKind> {
        let name = name.trim().to_ascii_lowercase();
        BuiltinKind::ALL
            .into_iter()
            .find(|k| k.names().contains(&name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_finds_its_kind_and_no_name_is_shared() {
        let mut seen = std::collections::HashSet::new();
        for kind in BuiltinKind::ALL {
            for name in kind.names() {
                assert!(seen.insert(*name), "{name} names two kinds");
                assert_eq!(BuiltinKind::from_name(name), Some(kind));
            }
        }
        assert_eq!(
            BuiltinKind::from_name(" PVCs "),
            Some(BuiltinKind::PersistentVolumeClaim)
        );
        assert_eq!(BuiltinKind::from_name("widgets"), None);
    }
}

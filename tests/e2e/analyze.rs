//! `analyze` and its settings tools against the real API server: objects are built in exactly
//! the state a controller or kubelet would leave them in when something is broken (the control
//! plane runs no controllers: each test writes `status` through the status subresource and
//! records the Warning events itself), beside healthy objects of the same kinds, and each test
//! checks exactly which objects are reported, under which owner, and why.
//!
//! The shared helpers are here; the tests are in one file per family of analyzers, plus
//! `tenants` (isolation through policy and impersonation, per-tenant filters, caching).

mod cluster;
mod crds;
mod network;
mod optional;
mod pods;
mod security;
mod tenants;
mod workloads;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::{TestGateway, tool_text};

/// A kind as the Kubernetes 1.20 API server of the tests serves it.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

impl Kind {
    pub const fn new(api_version: &'static str, kind: &'static str, plural: &'static str) -> Kind {
        Kind {
            api_version,
            kind,
            plural,
        }
    }

    fn resource(self) -> ApiResource {
        let (group, version) = self
            .api_version
            .split_once('/')
            .unwrap_or(("", self.api_version));
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, self.kind),
            self.plural,
        )
    }

    /// Its API, in namespace `ns` or cluster-wide.
    pub fn api(self, client: &kube::Client, ns: Option<&str>) -> Api<DynamicObject> {
        match ns {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource()),
            None => Api::all_with(client.clone(), &self.resource()),
        }
    }
}

pub const POD: Kind = Kind::new("v1", "Pod", "pods");
pub const SERVICE: Kind = Kind::new("v1", "Service", "services");
pub const ENDPOINTS: Kind = Kind::new("v1", "Endpoints", "endpoints");
pub const CONFIG_MAP: Kind = Kind::new("v1", "ConfigMap", "configmaps");
pub const SECRET: Kind = Kind::new("v1", "Secret", "secrets");
pub const PVC: Kind = Kind::new("v1", "PersistentVolumeClaim", "persistentvolumeclaims");
pub const PV: Kind = Kind::new("v1", "PersistentVolume", "persistentvolumes");
pub const NODE: Kind = Kind::new("v1", "Node", "nodes");
pub const DEPLOYMENT: Kind = Kind::new("apps/v1", "Deployment", "deployments");
pub const REPLICA_SET: Kind = Kind::new("apps/v1", "ReplicaSet", "replicasets");
pub const STATEFUL_SET: Kind = Kind::new("apps/v1", "StatefulSet", "statefulsets");
pub const DAEMON_SET: Kind = Kind::new("apps/v1", "DaemonSet", "daemonsets");
pub const JOB: Kind = Kind::new("batch/v1", "Job", "jobs");
/// batch/v1 CronJob arrived in 1.21.
pub const CRON_JOB: Kind = Kind::new("batch/v1beta1", "CronJob", "cronjobs");
pub const INGRESS: Kind = Kind::new("networking.k8s.io/v1", "Ingress", "ingresses");
pub const INGRESS_CLASS: Kind = Kind::new("networking.k8s.io/v1", "IngressClass", "ingressclasses");
pub const NETWORK_POLICY: Kind =
    Kind::new("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies");
pub const STORAGE_CLASS: Kind = Kind::new("storage.k8s.io/v1", "StorageClass", "storageclasses");
pub const ROLE: Kind = Kind::new("rbac.authorization.k8s.io/v1", "Role", "roles");
/// autoscaling/v2 arrived in 1.23; v2beta2 has its shape.
pub const HPA: Kind = Kind::new(
    "autoscaling/v2beta2",
    "HorizontalPodAutoscaler",
    "horizontalpodautoscalers",
);
/// policy/v1 arrived in 1.21.
pub const PDB: Kind = Kind::new(
    "policy/v1beta1",
    "PodDisruptionBudget",
    "poddisruptionbudgets",
);
pub const MUTATING_WEBHOOKS: Kind = Kind::new(
    "admissionregistration.k8s.io/v1",
    "MutatingWebhookConfiguration",
    "mutatingwebhookconfigurations",
);
pub const VALIDATING_WEBHOOKS: Kind = Kind::new(
    "admissionregistration.k8s.io/v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
);

/// Creates an object of `kind` (its `apiVersion` and `kind` filled in) in `ns`, or cluster-wide,
/// and returns it as the API server stored it.
pub async fn create(
    admin: &kube::Client,
    kind: Kind,
    ns: Option<&str>,
    mut object: Value,
) -> Result<Value> {
    object["apiVersion"] = kind.api_version.into();
    object["kind"] = kind.kind.into();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    let object: DynamicObject = serde_json::from_value(object)?;
    let created = kind
        .api(admin, ns)
        .create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating {} {name} in {ns:?}", kind.kind))?;
    Ok(serde_json::to_value(created)?)
}

/// Writes an object's `status` through its status subresource, as its controller would.
pub async fn set_status(
    admin: &kube::Client,
    kind: Kind,
    ns: Option<&str>,
    name: &str,
    status: Value,
) -> Result<Value> {
    let written = kind
        .api(admin, ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .with_context(|| format!("writing the status of {} {name}", kind.kind))?;
    Ok(serde_json::to_value(written)?)
}

/// Creates an object, then writes its status.
pub async fn create_with_status(
    admin: &kube::Client,
    kind: Kind,
    ns: Option<&str>,
    object: Value,
    status: Value,
) -> Result<Value> {
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    create(admin, kind, ns, object).await?;
    set_status(admin, kind, ns, &name, status).await
}

/// Deletes cluster-scoped objects a test made (other tests share the control plane).
pub async fn delete_all(admin: &kube::Client, kind: Kind, names: &[&str]) {
    for name in names {
        let _ = kind
            .api(admin, None)
            .delete(name, &DeleteParams::default())
            .await;
    }
}

/// `ownerReferences` naming `owner` (as the API server returned it) as the controller.
pub fn owned_by(owner: &Value) -> Value {
    json!([{
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true,
    }])
}

/// A Warning event about `kind`/`name` in `ns`, as the kubelet or a controller records it;
/// `field_path` names a container (`spec.containers{app}`).
pub async fn warning(
    admin: &kube::Client,
    ns: &str,
    (kind, name): (&str, &str),
    field_path: Option<&str>,
    reason: &str,
    message: &str,
    seconds_ago: i64,
) -> Result<()> {
    let at = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(seconds_ago)).to_string();
    let mut involved = json!({"kind": kind, "name": name, "namespace": ns});
    if let Some(path) = field_path {
        involved["fieldPath"] = path.into();
    }
    let event = json!({
        "metadata": {"name": format!("{name}.{}", uuid::Uuid::new_v4().simple())},
        "involvedObject": involved,
        "reason": reason, "message": message, "type": "Warning",
        "firstTimestamp": at, "lastTimestamp": at, "count": 1,
        "source": {"component": "kubelet"},
    });
    create(admin, Kind::new("v1", "Event", "events"), Some(ns), event).await?;
    Ok(())
}

/// A container's status as the kubelet writes it.
pub fn container_status(name: &str, ready: bool, state: Value) -> Value {
    json!({
        "name": name, "ready": ready, "restartCount": 0, "state": state,
        "image": "registry.example/app:1", "imageID": "",
    })
}

/// A pod template's labels and one container.
pub fn template(app: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    })
}

/// A Deployment of `replicas` pods labelled `app: name`.
pub fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": template(name)},
    })
}

/// Lets `group` list, across the cluster, the cluster-scoped kinds analyzers check references
/// against (StorageClasses, IngressClasses, PersistentVolumes, GatewayClasses), and nothing
/// namespaced: without it a tenant is never told that one of those does not exist.
pub async fn cluster_kinds_for_group(admin: &kube::Client, group: &str) -> Result<()> {
    let role = json!({
        "metadata": {"name": "analyze-cluster-kinds"},
        "rules": [
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingressclasses"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["get", "list"]},
            {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gatewayclasses"], "verbs": ["get", "list"]},
        ],
    });
    let kind = Kind::new(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "clusterroles",
    );
    match create(admin, kind, None, role).await {
        Ok(_) => {}
        Err(error) if already_exists(&error) => {}
        Err(error) => return Err(error),
    }
    crate::support::cluster_role_for_group(admin, group, "analyze-cluster-kinds").await
}

fn already_exists(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<kube::Error>()
        .is_some_and(|e| matches!(e, kube::Error::Api(s) if s.code == 409))
}

/// Applies a CustomResourceDefinition whose objects may hold anything (and have a status
/// subresource), unless another test did, and waits until the API server serves it.
pub async fn install_crd(admin: &kube::Client, kind: Kind, namespaced: bool) -> Result<()> {
    let (group, version) = kind
        .api_version
        .split_once('/')
        .context("a CRD has a group")?;
    // Groups under k8s.io are Kubernetes' own: their CRDs name the API review approving them.
    let mut annotations = serde_json::Map::new();
    if group.ends_with(".k8s.io") {
        annotations.insert(
            "api-approved.kubernetes.io".into(),
            "https://github.com/kubernetes-sigs/gateway-api/pull/891".into(),
        );
    }
    let crd = json!({
        "metadata": {"name": format!("{}.{group}", kind.plural), "annotations": annotations},
        "spec": {
            "group": group,
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "names": {"plural": kind.plural, "singular": kind.kind.to_lowercase(),
                      "kind": kind.kind, "listKind": format!("{}List", kind.kind)},
            "versions": [{
                "name": version, "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            }],
        },
    });
    let crds = Kind::new(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    match create(admin, crds, None, crd).await {
        Ok(_) => {}
        Err(error) if already_exists(&error) => {}
        Err(error) => return Err(error),
    }
    for _ in 0..100 {
        let listed = kind
            .api(admin, None)
            .list(&ListParams::default().limit(1))
            .await;
        if listed.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the API server did not serve {} within 10 s", kind.plural)
}

/// An `analyze` answer.
pub struct Analysis {
    pub result: Value,
}

impl Analysis {
    /// k8sgpt's JSON: status, problems, results, errors, analyzers, notes.
    pub fn structured(&self) -> &Value {
        &self.result["structuredContent"]
    }

    /// The readable text.
    pub fn text(&self) -> String {
        tool_text(&self.result).0
    }

    pub fn results(&self) -> Vec<Value> {
        self.structured()["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The names reported for `kind` (`ns/name`, or `name` if cluster-scoped), sorted.
    pub fn names(&self, kind: &str) -> Vec<String> {
        let names: BTreeSet<String> = self
            .results()
            .iter()
            .filter(|r| r["kind"] == kind)
            .filter_map(|r| r["name"].as_str().map(str::to_owned))
            .collect();
        names.into_iter().collect()
    }

    /// The names reported for `kind` that start with `prefix` (for cluster-scoped objects, of
    /// which other tests make their own).
    pub fn names_starting(&self, kind: &str, prefix: &str) -> Vec<String> {
        let mut names = self.names(kind);
        names.retain(|n| n.starts_with(prefix));
        names
    }

    /// The notes, joined.
    pub fn notes(&self) -> String {
        let notes = self.structured()["notes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        notes
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The failure texts of one finding, one a line.
    pub fn failures(&self, kind: &str, name: &str) -> String {
        self.finding(kind, name)
            .map(|f| {
                let errors = f["error"].as_array().cloned().unwrap_or_default();
                let texts: Vec<String> = errors
                    .iter()
                    .filter_map(|e| e["Text"].as_str().map(str::to_owned))
                    .collect();
                texts.join("\n")
            })
            .unwrap_or_default()
    }

    pub fn finding(&self, kind: &str, name: &str) -> Option<Value> {
        self.results()
            .into_iter()
            .find(|r| r["kind"] == kind && r["name"] == name)
    }

    /// Asserts that `kind` `name` was reported under `parent` (`""`: none), with failure texts
    /// that carry each of `facts` and point to the Kubernetes documentation, and that the
    /// readable text says the same.
    #[track_caller]
    pub fn expect(&self, kind: &str, name: &str, parent: &str, facts: &[&str]) {
        let Some(finding) = self.finding(kind, name) else {
            panic!(
                "{kind} {name} is not reported; the answer:\n{}",
                self.text()
            );
        };
        assert_eq!(
            finding["parentObject"], parent,
            "the owner of {kind} {name}: {finding}"
        );
        let errors = finding["error"].as_array().cloned().unwrap_or_default();
        for fact in facts {
            let carrying: Vec<&Value> = errors
                .iter()
                .filter(|e| e["Text"].as_str().is_some_and(|t| t.contains(fact)))
                .collect();
            assert!(
                !carrying.is_empty(),
                "no failure of {kind} {name} says {fact:?}: {finding}"
            );
            for failure in carrying {
                let doc = failure["KubernetesDoc"].as_str().unwrap_or_default();
                assert!(
                    doc.starts_with("https://"),
                    "{kind} {name}'s {fact:?} has doc {doc:?}"
                );
            }
        }
        let text = self.text();
        let heading = match parent {
            "" => format!("{kind} {name}\n"),
            parent => format!("{kind} {name} ({parent})\n"),
        };
        assert!(text.contains(&heading), "{heading:?} in the text:\n{text}");
        for fact in facts {
            assert!(text.contains(fact), "{fact:?} in the text:\n{text}");
        }
    }
}

/// Calls `analyze` as `token` (it must succeed).
pub async fn analyze(gateway: &TestGateway, token: &str, arguments: Value) -> Result<Analysis> {
    let result = gateway
        .client()
        .call_ok(token, "analyze", arguments)
        .await?;
    Ok(Analysis { result })
}

/// The names, as `ns/name`, of `names` in namespace `ns`.
pub fn in_ns(ns: &str, names: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = names.iter().map(|n| format!("{ns}/{n}")).collect();
    all.sort();
    all
}

/// The last audit record (that of the call just made).
pub fn last_record(gateway: &TestGateway) -> Value {
    gateway.audit_records().pop().unwrap_or_default()
}

/// The URIs of the API requests an audit record lists.
pub fn kube_uris(record: &Value) -> Vec<String> {
    record["kube"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["uri"].as_str().map(str::to_owned))
        .collect()
}

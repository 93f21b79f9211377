//! Finds volumes, claims and StorageClasses that are broken: the Storage analyzer.
//!
//! It reports the failure conditions of k8sgpt's Storage analyzer, except where those misjudge a
//! real cluster: a volume or class is called missing only where its kind was read;
//! `kubernetes.io/no-provisioner` (local volumes) is not called deprecated; and it leaves out
//! k8sgpt's "smaller than 1Gi" and "names no StorageClass", which describe working claims.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{CLAIM, claim_phase, sentence};
use crate::analyze::{Failure, Finding, Snapshot, Source, docs, ns_name};

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
        let failures = volume_failure(snapshot, volume).into_iter().collect();
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
fn volume_failure(snapshot: &Snapshot, volume: &PersistentVolume) -> Option<Failure> {
    let status = volume.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or_default();
    let message = status
        .and_then(|s| s.message.as_deref())
        .unwrap_or_default();
    let spec = volume.spec.as_ref();
    let claim_ref = spec.and_then(|s| s.claim_ref.as_ref());
    let claim = match claim_ref.map(|c| (c.namespace.as_deref(), c.name.as_deref())) {
        // A claim in a namespace the caller may not read is not named.
        Some((Some(ns), Some(name))) if snapshot.covers(ns) => format!("its claim {ns}/{name}"),
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

/// Whether an object of `name` is among `objects`.
fn named<'a>(mut objects: impl Iterator<Item = &'a ObjectMeta>, name: &str) -> bool {
    objects.any(|meta| meta.name.as_deref() == Some(name))
}

//! PersistentVolumeClaim (provisioning) and Storage (volumes, claims, classes).

use serde_json::{Value, json};

use super::{event, only, run, says, snapshot};
use crate::analyze::cluster::{pvc, storage};
use crate::analyze::{Source, docs};

fn claim(ns: &str, name: &str, phase: &str, spec: Value) -> Value {
    json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
        "status": {"phase": phase},
    })
}

fn volume(name: &str, phase: &str, policy: &str, claim: Option<(&str, &str)>) -> Value {
    let mut pv = json!({
        "metadata": {"name": name},
        "spec": {"persistentVolumeReclaimPolicy": policy, "capacity": {"storage": "10Gi"}},
        "status": {"phase": phase},
    });
    if let Some((ns, name)) = claim {
        pv["spec"]["claimRef"] =
            json!({"kind": "PersistentVolumeClaim", "namespace": ns, "name": name});
    }
    pv
}

fn class(name: &str, provisioner: &str, default: bool) -> Value {
    let mut sc = json!({"metadata": {"name": name}, "provisioner": provisioner});
    if default {
        sc["metadata"]["annotations"] =
            json!({"storageclass.kubernetes.io/is-default-class": "true"});
    }
    sc
}

const NOT_FOUND: &str = "storageclass.storage.k8s.io \"fast\" not found";

// PersistentVolumeClaim

#[test]
fn a_pending_claim_whose_provisioning_failed_is_reported_with_the_event() {
    let s = snapshot(&[
        (
            Source::PersistentVolumeClaims,
            vec![claim(
                "shop",
                "data",
                "Pending",
                json!({"storageClassName": "fast"}),
            )],
        ),
        (
            Source::Events,
            vec![event(
                "shop",
                "PersistentVolumeClaim",
                "data",
                "ProvisioningFailed",
                NOT_FOUND,
                "2024-05-01T10:00:00Z",
            )],
        ),
    ]);
    let findings = run(pvc, &s);
    let finding = only(&findings, "PersistentVolumeClaim", "shop/data");
    says(finding, &["Pending", "provisioning", NOT_FOUND]);
    assert_eq!(finding.failures[0].doc, docs::PVC);
}

#[test]
fn the_latest_provisioning_failure_is_the_one_quoted() {
    let events = vec![
        event(
            "shop",
            "PersistentVolumeClaim",
            "data",
            "ProvisioningFailed",
            "new: quota exceeded",
            "2024-05-01T12:00:00Z",
        ),
        event(
            "shop",
            "PersistentVolumeClaim",
            "data",
            "ProvisioningFailed",
            "old: timeout",
            "2024-05-01T09:00:00Z",
        ),
        event(
            "shop",
            "PersistentVolumeClaim",
            "data",
            "FailedBinding",
            "no volume",
            "2024-05-01T13:00:00Z",
        ),
    ];
    let s = snapshot(&[
        (
            Source::PersistentVolumeClaims,
            vec![claim("shop", "data", "Pending", json!({}))],
        ),
        (Source::Events, events),
    ]);
    let findings = run(pvc, &s);
    says(
        only(&findings, "PersistentVolumeClaim", "shop/data"),
        &["new: quota exceeded"],
    );
}

#[test]
fn a_claim_owned_by_a_statefulset_names_it_as_parent() {
    let mut object = claim("shop", "data-db-0", "Pending", json!({}));
    object["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u1", "controller": true}
    ]);
    let s = snapshot(&[
        (Source::PersistentVolumeClaims, vec![object]),
        (
            Source::Events,
            vec![event(
                "shop",
                "PersistentVolumeClaim",
                "data-db-0",
                "ProvisioningFailed",
                "boom",
                "2024-05-01T10:00:00Z",
            )],
        ),
    ]);
    let findings = run(pvc, &s);
    let finding = only(&findings, "PersistentVolumeClaim", "shop/data-db-0");
    assert_eq!(finding.parent_object, "StatefulSet/db");
}

#[test]
fn a_claim_is_not_reported_without_a_provisioning_failure_or_once_bound() {
    let s = snapshot(&[
        (
            Source::PersistentVolumeClaims,
            vec![
                claim("shop", "waiting", "Pending", json!({})),
                claim("shop", "bound", "Bound", json!({"volumeName": "pv-1"})),
                claim("shop", "elsewhere", "Pending", json!({})),
                claim("shop", "blank", "Pending", json!({})),
            ],
        ),
        (
            Source::Events,
            vec![
                event(
                    "shop",
                    "PersistentVolumeClaim",
                    "waiting",
                    "FailedBinding",
                    "no persistent volumes available",
                    "2024-05-01T10:00:00Z",
                ),
                event(
                    "shop",
                    "PersistentVolumeClaim",
                    "bound",
                    "ProvisioningFailed",
                    "old failure",
                    "2024-05-01T10:00:00Z",
                ),
                event(
                    "other",
                    "PersistentVolumeClaim",
                    "elsewhere",
                    "ProvisioningFailed",
                    "not about shop",
                    "2024-05-01T10:00:00Z",
                ),
                event(
                    "shop",
                    "Pod",
                    "elsewhere",
                    "ProvisioningFailed",
                    "not about a claim",
                    "2024-05-01T10:00:00Z",
                ),
                event(
                    "shop",
                    "PersistentVolumeClaim",
                    "blank",
                    "ProvisioningFailed",
                    "  ",
                    "2024-05-01T10:00:00Z",
                ),
            ],
        ),
    ]);
    assert_eq!(run(pvc, &s), vec![]);
}

// Storage: PersistentVolumes

#[test]
fn a_released_volume_under_retain_is_reported_with_its_claim() {
    let s = snapshot(&[
        (Source::PersistentVolumeClaims, vec![]),
        (
            Source::PersistentVolumes,
            vec![volume("pv-1", "Released", "Retain", Some(("shop", "data")))],
        ),
    ]);
    let findings = run(storage, &s);
    let finding = only(&findings, "PersistentVolume", "pv-1");
    says(finding, &["Released", "shop/data", "Retain", "claimRef"]);
    assert_eq!(finding.failures[0].doc, docs::PVC);
}

#[test]
fn a_released_volume_under_delete_says_it_was_not_deleted() {
    let s = snapshot(&[(
        Source::PersistentVolumes,
        vec![volume("pv-2", "Released", "Delete", None)],
    )]);
    let findings = run(storage, &s);
    says(
        only(&findings, "PersistentVolume", "pv-2"),
        &["Released", "its claim", "not been deleted"],
    );
}

#[test]
fn a_failed_volume_is_reported_with_its_message() {
    let mut pv = volume("pv-3", "Failed", "Recycle", Some(("shop", "old")));
    pv["status"]["message"] = json!("recycler pod failed: exit code 1");
    let s = snapshot(&[(Source::PersistentVolumes, vec![pv])]);
    let findings = run(storage, &s);
    says(
        only(&findings, "PersistentVolume", "pv-3"),
        &["Failed", "reclamation", "exit code 1"],
    );
}

// Storage: claims

#[test]
fn a_claim_bound_to_a_volume_that_does_not_exist_is_reported() {
    let s = snapshot(&[
        (
            Source::PersistentVolumeClaims,
            vec![claim(
                "shop",
                "data",
                "Bound",
                json!({"volumeName": "pv-gone"}),
            )],
        ),
        (
            Source::PersistentVolumes,
            vec![volume("pv-other", "Bound", "Delete", Some(("shop", "x")))],
        ),
    ]);
    let findings = run(storage, &s);
    let finding = only(&findings, "PersistentVolumeClaim", "shop/data");
    says(
        finding,
        &["bound to PersistentVolume pv-gone", "does not exist"],
    );
}

#[test]
fn a_claim_pending_for_a_named_volume_that_does_not_exist_is_reported() {
    let s = snapshot(&[
        (
            Source::PersistentVolumeClaims,
            vec![claim(
                "shop",
                "data",
                "Pending",
                json!({"volumeName": "pv-gone"}),
            )],
        ),
        (Source::PersistentVolumes, vec![]),
    ]);
    let findings = run(storage, &s);
    says(
        only(&findings, "PersistentVolumeClaim", "shop/data"),
        &["waits for PersistentVolume pv-gone", "does not exist"],
    );
}

#[test]
fn a_claim_whose_volume_exists_or_was_not_read_is_not_reported_missing() {
    let claims = vec![claim(
        "shop",
        "data",
        "Bound",
        json!({"volumeName": "pv-1"}),
    )];
    let read = snapshot(&[
        (Source::PersistentVolumeClaims, claims.clone()),
        (
            Source::PersistentVolumes,
            vec![volume("pv-1", "Bound", "Delete", Some(("shop", "data")))],
        ),
    ]);
    assert_eq!(run(storage, &read), vec![]);
    let unread = snapshot(&[(Source::PersistentVolumeClaims, claims)]);
    assert_eq!(run(storage, &unread), vec![]);
}

#[test]
fn a_lost_claim_is_reported_whether_or_not_volumes_were_read() {
    let claims = vec![claim("shop", "data", "Lost", json!({"volumeName": "pv-1"}))];
    let unread = snapshot(&[(Source::PersistentVolumeClaims, claims.clone())]);
    let findings = run(storage, &unread);
    says(
        only(&findings, "PersistentVolumeClaim", "shop/data"),
        &["Lost", "pv-1"],
    );
    let read = snapshot(&[
        (Source::PersistentVolumeClaims, claims),
        (Source::PersistentVolumes, vec![]),
    ]);
    let findings = run(storage, &read);
    says(
        only(&findings, "PersistentVolumeClaim", "shop/data"),
        &["Lost", "pv-1", "does not exist"],
    );
}

#[test]
fn a_claim_pending_for_a_storage_class_that_does_not_exist_is_reported() {
    let s = snapshot(&[
        (
            Source::PersistentVolumeClaims,
            vec![claim(
                "shop",
                "data",
                "Pending",
                json!({"storageClassName": "fast"}),
            )],
        ),
        (
            Source::StorageClasses,
            vec![class("standard", "ebs.csi.aws.com", true)],
        ),
    ]);
    let findings = run(storage, &s);
    let finding = only(&findings, "PersistentVolumeClaim", "shop/data");
    says(finding, &["Pending", "StorageClass fast", "does not exist"]);
    assert_eq!(finding.failures[0].doc, docs::STORAGE_CLASSES);
}

#[test]
fn the_beta_class_annotation_is_the_class_a_claim_goes_by() {
    let mut object = claim(
        "shop",
        "data",
        "Pending",
        json!({"storageClassName": "standard"}),
    );
    object["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/storage-class": "fast"});
    let s = snapshot(&[
        (Source::PersistentVolumeClaims, vec![object]),
        (
            Source::StorageClasses,
            vec![class("standard", "ebs.csi.aws.com", true)],
        ),
    ]);
    let findings = run(storage, &s);
    says(
        only(&findings, "PersistentVolumeClaim", "shop/data"),
        &["StorageClass fast"],
    );
}

#[test]
fn a_missing_class_is_not_concluded_when_classes_were_not_read_or_none_is_named() {
    let claims = vec![
        claim(
            "shop",
            "fast",
            "Pending",
            json!({"storageClassName": "fast"}),
        ),
        claim("shop", "static", "Pending", json!({"storageClassName": ""})),
        claim("shop", "default", "Pending", json!({})),
        claim(
            "shop",
            "bound",
            "Bound",
            json!({"storageClassName": "gone", "volumeName": "pv-1"}),
        ),
    ];
    let unread = snapshot(&[(Source::PersistentVolumeClaims, claims.clone())]);
    assert_eq!(run(storage, &unread), vec![]);
    let read = snapshot(&[
        (Source::PersistentVolumeClaims, claims),
        (
            Source::StorageClasses,
            vec![class("fast", "ebs.csi.aws.com", true)],
        ),
    ]);
    assert_eq!(run(storage, &read), vec![]);
}

// Storage: classes

#[test]
fn every_class_marked_default_is_reported_when_there_are_several() {
    let mut beta = class("old", "ebs.csi.aws.com", false);
    beta["metadata"]["annotations"] =
        json!({"storageclass.beta.kubernetes.io/is-default-class": "true"});
    let s = snapshot(&[
        (Source::PersistentVolumeClaims, vec![]),
        (
            Source::StorageClasses,
            vec![
                class("gp3", "ebs.csi.aws.com", true),
                class("io2", "ebs.csi.aws.com", true),
                beta,
                class("slow", "ebs.csi.aws.com", false),
            ],
        ),
    ]);
    let findings = run(storage, &s);
    let names: Vec<&str> = findings.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["gp3", "io2", "old"]);
    for finding in &findings {
        assert_eq!(finding.kind, "StorageClass");
        says(finding, &["marked default", "ambiguous"]);
    }
    says(&findings[0], &["io2, old"]);
    assert!(!findings[0].failures[0].text.contains("gp3"));
}

#[test]
fn one_default_class_is_healthy() {
    let s = snapshot(&[(
        Source::StorageClasses,
        vec![
            class("gp3", "ebs.csi.aws.com", true),
            class("io2", "ebs.csi.aws.com", false),
        ],
    )]);
    assert_eq!(run(storage, &s), vec![]);
}

#[test]
fn a_class_on_a_migrated_in_tree_provisioner_names_its_csi_driver() {
    let cases = [
        ("kubernetes.io/aws-ebs", "ebs.csi.aws.com"),
        ("kubernetes.io/gce-pd", "pd.csi.storage.gke.io"),
        ("kubernetes.io/azure-disk", "disk.csi.azure.com"),
        ("kubernetes.io/cinder", "cinder.csi.openstack.org"),
    ];
    for (provisioner, csi) in cases {
        let s = snapshot(&[(
            Source::StorageClasses,
            vec![class("legacy", provisioner, false)],
        )]);
        let findings = run(storage, &s);
        let finding = only(&findings, "StorageClass", "legacy");
        says(finding, &["deprecated", provisioner, csi]);
        assert_eq!(finding.failures[0].doc, docs::STORAGE_CLASSES);
    }
}

#[test]
fn a_class_on_a_removed_in_tree_provisioner_says_it_cannot_provision() {
    let s = snapshot(&[(
        Source::StorageClasses,
        vec![class("gluster", "kubernetes.io/glusterfs", false)],
    )]);
    let findings = run(storage, &s);
    says(
        only(&findings, "StorageClass", "gluster"),
        &[
            "kubernetes.io/glusterfs",
            "removed",
            "cannot be provisioned",
        ],
    );
}

#[test]
fn csi_and_local_provisioners_are_healthy() {
    let s = snapshot(&[(
        Source::StorageClasses,
        vec![
            class("local", "kubernetes.io/no-provisioner", false),
            class("ebs", "ebs.csi.aws.com", false),
            class("path", "rancher.io/local-path", false),
        ],
    )]);
    assert_eq!(run(storage, &s), vec![]);
}

#[test]
fn healthy_storage_yields_nothing() {
    let s = snapshot(&[
        (
            Source::PersistentVolumeClaims,
            vec![
                claim(
                    "shop",
                    "data",
                    "Bound",
                    json!({"volumeName": "pv-1", "storageClassName": "gp3"}),
                ),
                claim("shop", "new", "Pending", json!({"storageClassName": "gp3"})),
            ],
        ),
        (
            Source::PersistentVolumes,
            vec![
                volume("pv-1", "Bound", "Delete", Some(("shop", "data"))),
                volume("pv-2", "Available", "Retain", None),
            ],
        ),
        (
            Source::StorageClasses,
            vec![class("gp3", "ebs.csi.aws.com", true)],
        ),
    ]);
    assert_eq!(run(storage, &s), vec![]);
}

#[test]
fn objects_missing_every_optional_field_do_not_panic() {
    let s = snapshot(&[
        (
            Source::PersistentVolumeClaims,
            vec![
                json!({"metadata": {}}),
                json!({"metadata": {}, "status": {"phase": "Lost"}}),
            ],
        ),
        (
            Source::PersistentVolumes,
            vec![
                json!({"metadata": {}}),
                json!({"metadata": {}, "status": {"phase": "Released"}}),
            ],
        ),
        (
            Source::StorageClasses,
            vec![json!({"metadata": {}, "provisioner": ""})],
        ),
        (
            Source::Events,
            vec![json!({"metadata": {}, "involvedObject": {}})],
        ),
    ]);
    let findings = run(storage, &s);
    let kinds: Vec<&str> = findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, ["PersistentVolume", "PersistentVolumeClaim"]);
    assert_eq!(run(pvc, &s), vec![]);
}

#[test]
fn a_call_on_one_namespace_reports_its_claims_but_not_the_clusters_volumes_or_classes() {
    let mut s = snapshot(&[
        (
            Source::PersistentVolumes,
            vec![volume("pv-gone", "Failed", "Retain", None)],
        ),
        (
            Source::StorageClasses,
            vec![
                class("a", "kubernetes.io/aws-ebs", true),
                class("b", "ebs.csi.aws.com", true),
            ],
        ),
        (
            Source::PersistentVolumeClaims,
            vec![claim(
                "shop",
                "data",
                "Bound",
                json!({"volumeName": "pv-missing"}),
            )],
        ),
    ]);
    s.cluster_wide = false;
    let findings = run(storage, &s);
    let claim = only(&findings, "PersistentVolumeClaim", "shop/data");
    says(claim, &["pv-missing"]);
    s.cluster_wide = true;
    let kinds: Vec<&str> = run(storage, &s).iter().map(|f| f.kind).collect();
    assert!(
        kinds.contains(&"PersistentVolume") && kinds.contains(&"StorageClass"),
        "{kinds:?}"
    );
}

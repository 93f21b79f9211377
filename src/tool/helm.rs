//! `uninstall_helm_chart`: removes a Helm 3 release without a helm binary: the objects of its
//! latest revision's manifest, then the release's own records.
//!
//! MCP tool: `uninstall_helm_chart` (mcp-server-kubernetes's name; `name`, `namespace?`,
//! `dryRun?`). Kubernetes: `list` on secrets (Helm 3 keeps each revision as a Secret
//! `sh.helm.release.v1.<name>.v<N>` labelled `owner=helm,name=<name>`, its `release` holding
//! base64 of gzip of the release's JSON), then `delete` on each object of the manifest (any
//! served kind) and on the release's secrets. Cedar: the call is decided on the release's
//! `Namespace`; then every object it would delete is decided as its own `Object`, and one
//! refusal refuses the whole uninstall before anything is deleted.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::args::{DEFAULT_NAMESPACE, Flag, check_name, namespace_or_default};
use super::delete::delete_options;
use super::list_resources::take_items;
use super::{
    ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, manifest, output,
};
use crate::kube::{ApiCatalog, BuiltinKind, KubeError, Served};
use crate::policy::{NamespaceDirectory, ObjectRef, ResourceType, Scope, Target};

/// The largest release kubegate unpacks (Kubernetes caps a Secret at 1 MiB; gzip can expand it).
pub const MAX_RELEASE_BYTES: u64 = 32 * 1024 * 1024;

/// An `uninstall_helm_chart` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UninstallHelmChart {
    /// Name of the Helm release.
    pub name: String,
    /// Namespace of the release ("default" if omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Show what would be deleted, without deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Flag>,
}

impl Tool for UninstallHelmChart {
    const SPEC: ToolSpec = ToolSpec {
        name: "uninstall_helm_chart",
        title: "Uninstall a Helm release",
        description: "Uninstall a Helm 3 release: delete the objects of its latest revision and \
                      its release records, as you. Every object must be permitted, or nothing \
                      is deleted. Destructive.",
        group: ActionGroup::Destructive,
        resources: &[ResourceType::Namespace, ResourceType::Object],
        annotations: Annotations::DESTRUCTIVE,
        output_schema: Some(output_schema),
        examples: &[
            r#"{"name": "shop"}"#,
            r#"{"name": "shop", "namespace": "team-a", "dryRun": true}"#,
        ],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        check_name("name", &self.name)?;
        namespace_or_default(&mut self.namespace)?;
        Ok(())
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(Target::Namespace(
            self.namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
        ))
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let namespace = self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let selector = format!("owner=helm,name={}", self.name);
        let body = run
            .kube
            .list(
                BuiltinKind::Secret,
                Some(namespace),
                &[("labelSelector", selector)],
            )
            .await?;
        let mut list: Value =
            serde_json::from_slice(&body).map_err(|e| KubeError::Decode(e.to_string()))?;
        let records = take_items(&mut list);
        let latest = records.iter().max_by_key(|s| revision(s)).ok_or_else(|| {
            ToolError::Failed(format!(
                "there is no Helm release {:?} in namespace {namespace:?} (Helm 3 keeps \
                     releases as Secrets labelled owner=helm; list-resources with resourceType \
                     secrets and labelSelector \"owner=helm\" shows them)",
                self.name
            ))
        })?;
        let payload = latest
            .pointer("/data/release")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ToolError::Failed("the release record has no `release` data".to_owned())
            })?;
        let release = decode_release(payload).map_err(|e| {
            ToolError::Failed(format!(
                "the release record of {:?} cannot be read: {e}",
                self.name
            ))
        })?;
        let catalog = run.kube.kube().catalog();
        let mut plan: Vec<Planned> = Vec::new();
        let mut skipped = Vec::new();
        for object in manifest::parse_all(&release.manifest)
            .map_err(|e| ToolError::Failed(format!("the release's manifest: {e}")))?
        {
            match catalog.by_api_version(&object.api_version, &object.kind) {
                Some(served) => {
                    let ns = served.namespaced.then(|| {
                        object
                            .namespace
                            .clone()
                            .unwrap_or_else(|| namespace.to_owned())
                    });
                    plan.push((served.clone(), ns, object.name, object.kind));
                }
                None => skipped.push(format!(
                    "{} {} ({})",
                    object.kind, object.name, object.api_version
                )),
            }
        }
        let secret = run.kube.kube().served(BuiltinKind::Secret)?;
        let record_plan: Vec<Planned> = records
            .iter()
            .filter_map(|r| r.pointer("/metadata/name").and_then(Value::as_str))
            .map(|name| {
                (
                    secret.clone(),
                    Some(namespace.to_owned()),
                    name.to_owned(),
                    "Secret".to_owned(),
                )
            })
            .collect();
        // Every object is decided before anything is deleted.
        for (served, ns, name, kind) in plan.iter().chain(&record_plan) {
            let target = if served.resource.group.is_empty() && kind == "Namespace" {
                Target::Namespace(name.clone())
            } else {
                Target::Object(ObjectRef {
                    api_group: served.resource.group.clone(),
                    kind: kind.clone(),
                    namespace: ns.clone(),
                    name: name.clone(),
                })
            };
            run.also(&target)
                .map_err(|denied| ToolError::Failed(format!("nothing was deleted: {denied}")))?;
        }
        let dry_run = self.dry_run.is_some_and(|f| f.0);
        let options = delete_options(None, dry_run);
        let mut deleted = Vec::new();
        // The release's objects in reverse manifest order (Helm installs in dependency order),
        // then its records.
        for (served, ns, name, kind) in plan.iter().rev().chain(&record_plan) {
            let what = match ns {
                Some(ns) => format!("{kind} {ns}/{name}"),
                None => format!("{kind} {name}"),
            };
            match run
                .kube
                .delete_served(served, ns.as_deref(), name, &options)
                .await
            {
                Ok(_) => deleted.push(
                    json!({"kind": kind, "namespace": ns, "name": name, "status": "deleted"}),
                ),
                Err(KubeError::Api { code: 404, .. }) => {
                    deleted.push(json!({"kind": kind, "namespace": ns, "name": name, "status": "already gone"}));
                }
                Err(error) => {
                    return Err(ToolError::Failed(format!(
                        "deleting {what} failed: {error}. Deleted before it: {}",
                        describe_all(&deleted)
                    )));
                }
            }
        }
        let verb = if dry_run {
            "Dry run: would uninstall"
        } else {
            "Uninstalled"
        };
        let mut text = format!(
            "{verb} Helm release {:?} (revision {}) in namespace {namespace:?}: {}.",
            self.name,
            release.version,
            describe_all(&deleted)
        );
        if !skipped.is_empty() {
            text.push_str(&format!(
                " Not deleted (kinds this cluster no longer serves): {}.",
                skipped.join(", ")
            ));
        }
        Ok(ToolOutput {
            text,
            structured: output::raw(&json!({
                "release": self.name,
                "namespace": namespace,
                "revision": release.version,
                "dryRun": dry_run,
                "objects": deleted,
                "skipped": skipped,
            })),
        })
    }
}

/// One object to delete: its served kind, namespace, name and kind.
type Planned = (Served, Option<String>, String, String);

fn describe_all(objects: &[Value]) -> String {
    if objects.is_empty() {
        return "nothing".to_owned();
    }
    objects
        .iter()
        .map(|o| {
            let kind = o["kind"].as_str().unwrap_or_default();
            let name = o["name"].as_str().unwrap_or_default();
            match o["namespace"].as_str() {
                Some(ns) => format!("{kind} {ns}/{name}"),
                None => format!("{kind} {name}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A release record's revision, from its `version` label.
fn revision(secret: &Value) -> u64 {
    secret
        .pointer("/metadata/labels/version")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What kubegate reads of a Helm 3 release.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Release {
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub manifest: String,
}

/// Decodes a release record's `release` data as the API server returns it: base64 (the Secret's
/// encoding) of base64 (Helm's) of gzip (or, from old Helm versions, plain) JSON.
pub fn decode_release(data: &str) -> Result<Release, String> {
    let helm_text = STANDARD
        .decode(data.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let compressed = STANDARD
        .decode(trim_ascii(&helm_text))
        .map_err(|e| format!("not Helm's base64: {e}"))?;
    let json = if compressed.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .take(MAX_RELEASE_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("not gzip: {e}"))?;
        if out.len() as u64 > MAX_RELEASE_BYTES {
            return Err(format!(
                "the release is larger than {MAX_RELEASE_BYTES} bytes"
            ));
        }
        out
    } else {
        compressed
    };
    serde_json::from_slice(&json).map_err(|e| format!("not a Helm release: {e}"))
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "release": {"type": "string"},
            "namespace": {"type": "string"},
            "revision": {"type": "integer"},
            "dryRun": {"type": "boolean"},
            "objects": {"type": "array", "items": {"type": "object"}},
            "skipped": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["release", "namespace", "revision", "dryRun", "objects", "skipped"],
    })
}

/// Encodes a release as Helm 3 stores it and the API server returns it (for tests and fixtures).
pub fn encode_release(release: &Value) -> String {
    use std::io::Write;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = gzip.write_all(release.to_string().as_bytes());
    let compressed = gzip.finish().unwrap_or_default();
    STANDARD.encode(STANDARD.encode(compressed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_release_stored_as_helm_stores_it_decodes() {
        let release = json!({
            "name": "shop", "namespace": "team-a", "version": 3,
            "manifest": "---\n# Source: shop/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\n",
            "info": {"status": "deployed"}, "chart": {"metadata": {"name": "shop"}},
        });
        let decoded = decode_release(&encode_release(&release));
        assert_eq!(decoded.as_ref().map(|r| r.version), Ok(3));
        assert_eq!(decoded.as_ref().map(|r| r.name.as_str()), Ok("shop"));
        let objects = decoded.map(|r| manifest::parse_all(&r.manifest).unwrap_or_default());
        assert_eq!(objects.map(|o| o.len()), Ok(1));
        // Plain JSON (no gzip) is read too.
        let plain = STANDARD.encode(STANDARD.encode(release.to_string()));
        assert!(decode_release(&plain).is_ok());
    }

    #[test]
    fn broken_records_say_what_is_wrong() {
        assert!(decode_release("%%%").is_err_and(|e| e.starts_with("not base64")));
        let once = STANDARD.encode("%%%");
        assert!(decode_release(&once).is_err_and(|e| e.starts_with("not Helm's base64")));
        let not_json = STANDARD.encode(STANDARD.encode("{"));
        assert!(decode_release(&not_json).is_err_and(|e| e.starts_with("not a Helm release")));
        let bad_gzip = STANDARD.encode(STANDARD.encode([0x1f, 0x8b, 0x08, 0, 1, 2]));
        assert!(decode_release(&bad_gzip).is_err());
    }

    #[test]
    fn gzip_bombs_are_refused() {
        use std::io::Write;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1024 * 1024];
        for _ in 0..40 {
            let _ = gzip.write_all(&zeros);
        }
        let bomb = STANDARD.encode(STANDARD.encode(gzip.finish().unwrap_or_default()));
        assert!(decode_release(&bomb).is_err_and(|e| e.contains("larger than")));
    }

    proptest! {
        #[test]
        fn any_payload_is_answered_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_release(&STANDARD.encode(STANDARD.encode(&bytes)));
            let _ = decode_release(&STANDARD.encode(&bytes));
            let _ = decode_release(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn gzipped_garbage_is_answered_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            use std::io::Write;
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = gzip.write_all(&bytes);
            let compressed = gzip.finish().unwrap_or_default();
            let _ = decode_release(&STANDARD.encode(STANDARD.encode(compressed)));
        }
    }
}

//! `cleanup`: deletes what this caller created through kubegate, in the namespaces the policy
//! lets them clean up.
//!
//! MCP tool: `cleanup` (mcp-server-kubernetes's name; `namespace?`, `dryRun?`). Kubernetes:
//! `list` (by the `kubegate.io/created-by` label `kubectl_apply` sets) and `delete` on
//! deployments, statefulsets, daemonsets, replicasets, cronjobs, jobs, pods, services,
//! ingresses, configmaps, secrets and persistentvolumeclaims. Cedar: decided on the namespace
//! (without `namespace`, on every namespace: those permitted are cleaned), then on each object
//! before it is deleted. An object is this caller's only if both the label and the annotation
//! `kubegate.io/created-by` name them. The answer says what was deleted, what policy kept, and
//! which kinds RBAC did not let the caller list (so were not checked).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::apply::{CREATED_BY, label_value};
use super::args::{Flag, check_namespace};
use super::delete::delete_options;
use super::get_resource::object_target;
use super::list_resources::take_items;
use super::{ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output};
use crate::kube::{ApiCatalog, BuiltinKind, KubeError};
use crate::policy::{NamespaceDirectory, ResourceType, Scope, Target};

/// The kinds `cleanup` looks in, owners before what they own.
pub const CLEANED_KINDS: &[BuiltinKind] = &[
    BuiltinKind::Deployment,
    BuiltinKind::StatefulSet,
    BuiltinKind::DaemonSet,
    BuiltinKind::CronJob,
    BuiltinKind::Job,
    BuiltinKind::ReplicaSet,
    BuiltinKind::Pod,
    BuiltinKind::Service,
    BuiltinKind::Ingress,
    BuiltinKind::ConfigMap,
    BuiltinKind::Secret,
    BuiltinKind::PersistentVolumeClaim,
];

/// A `cleanup` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cleanup {
    /// Only this namespace; every namespace you may clean up if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Show what would be deleted, without deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Flag>,
}

impl Tool for Cleanup {
    const SPEC: ToolSpec = ToolSpec {
        name: "cleanup",
        title: "Clean up what you created",
        description: "Delete the objects you created through kubegate (kubectl_apply labels \
                      them), in one namespace or in every namespace you may clean up. Objects \
                      others created are never touched. Destructive.",
        group: ActionGroup::Destructive,
        resources: &[ResourceType::Namespace, ResourceType::Object],
        annotations: Annotations::DESTRUCTIVE,
        output_schema: Some(output_schema),
        examples: &["{}", r#"{"namespace": "team-a", "dryRun": "true"}"#],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        if let Some(ns) = &self.namespace {
            check_namespace(ns)?;
        }
        Ok(())
    }

    fn scope(&self, namespaces: &dyn NamespaceDirectory) -> Scope {
        match &self.namespace {
            Some(ns) => Scope::One(Target::Namespace(ns.clone())),
            None => Scope::every_namespace(namespaces),
        }
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let caller = run.caller().username.clone();
        let selector = format!("{CREATED_BY}={}", label_value(&caller));
        let namespaces: Vec<String> = run.permit.namespaces().map(str::to_owned).collect();
        let dry_run = self.dry_run.is_some_and(|f| f.0);
        let options = delete_options(None, dry_run);
        let mut deleted = Vec::new();
        let mut kept = Vec::new();
        let mut unchecked = Vec::new();
        for namespace in &namespaces {
            for &kind in CLEANED_KINDS {
                let body = match run
                    .kube
                    .list(
                        kind,
                        Some(namespace),
                        &[("labelSelector", selector.clone())],
                    )
                    .await
                {
                    Ok(body) => body,
                    // RBAC may let the caller list some kinds and not others: say which.
                    Err(KubeError::Api { code: 403, .. }) => {
                        unchecked.push(json!({"kind": kind.kind(), "namespace": namespace}));
                        continue;
                    }
                    Err(KubeError::NotServed(_)) => continue,
                    Err(error) => return Err(error.into()),
                };
                let mut list: Value =
                    serde_json::from_slice(&body).map_err(|e| KubeError::Decode(e.to_string()))?;
                for object in take_items(&mut list) {
                    let creator = object
                        .pointer("/metadata/annotations")
                        .and_then(|a| a.get(CREATED_BY))
                        .and_then(Value::as_str);
                    let Some(name) = object.pointer("/metadata/name").and_then(Value::as_str)
                    else {
                        continue;
                    };
                    let entry = json!({"kind": kind.kind(), "namespace": namespace, "name": name});
                    if creator != Some(caller.as_str()) {
                        continue;
                    }
                    if run
                        .also(&object_target(kind, Some(namespace), name))
                        .is_err()
                    {
                        kept.push(entry);
                        continue;
                    }
                    match run.kube.delete(kind, Some(namespace), name, &options).await {
                        Ok(_) | Err(KubeError::Api { code: 404, .. }) => deleted.push(entry),
                        Err(error) => {
                            return Err(ToolError::Failed(format!(
                                "deleting {} {namespace}/{name} failed: {error}. Deleted before \
                                 it: {}",
                                kind.kind(),
                                describe(&deleted)
                            )));
                        }
                    }
                }
            }
        }
        let verb = if dry_run {
            "Dry run: would delete"
        } else {
            "Deleted"
        };
        let mut text = format!(
            "{verb} {} object(s) you created through kubegate: {}.",
            deleted.len(),
            describe(&deleted)
        );
        if !kept.is_empty() {
            text.push_str(&format!(
                " Kept, because policy does not let you delete them: {}.",
                describe(&kept)
            ));
        }
        if !unchecked.is_empty() {
            let where_: Vec<String> = unchecked
                .iter()
                .map(|u| {
                    format!(
                        "{} in {}",
                        u["kind"].as_str().unwrap_or_default(),
                        u["namespace"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            text.push_str(&format!(
                " Not checked, because Kubernetes RBAC does not let you list them: {}.",
                where_.join(", ")
            ));
        }
        Ok(ToolOutput {
            text,
            structured: output::raw(
                &json!({ "dryRun": dry_run, "deleted": deleted, "kept": kept, "unchecked": unchecked }),
            ),
        })
    }
}

fn describe(objects: &[Value]) -> String {
    if objects.is_empty() {
        return "nothing".to_owned();
    }
    objects
        .iter()
        .map(|o| {
            format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap_or_default(),
                o["namespace"].as_str().unwrap_or_default(),
                o["name"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "dryRun": {"type": "boolean"},
            "deleted": {"type": "array", "items": {"type": "object"}},
            "kept": {"type": "array", "items": {"type": "object"}},
            "unchecked": {"type": "array", "items": {"type": "object"},
                          "description": "Kinds and namespaces RBAC did not let you list"},
        },
        "required": ["dryRun", "deleted", "kept", "unchecked"],
    })
}

//! The delete tools of mcp-server-kubernetes's non-destructive list: one object each.
//!
//! MCP tools: `delete_pod`, `delete_deployment`, `delete_cronjob` (`name`, `namespace?`) and
//! `delete_namespace` (`name`), each with `gracePeriodSeconds?`, `dryRun?` and
//! `ignoreNotFound?`. Kubernetes: `delete` on pods, deployments, cronjobs and namespaces
//! (propagation `Background`: the owned objects follow). Cedar resource: the object (a namespace
//! is its `Namespace`). All are in the `destructive` action group, so the non-destructive
//! policy set forbids them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::args::{Flag, Int, check_name, check_namespace, namespace_or_default};
use super::get_resource::{not_found_hint, object_target};
use super::{ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output};
use crate::kube::{ApiCatalog, BuiltinKind, KubeError};
use crate::policy::{NamespaceDirectory, ResourceType, Scope};

/// Generates one namespaced delete tool.
macro_rules! namespaced_delete {
    ($ty:ident, $tool:literal, $title:literal, $kind:expr, $what:literal) => {
        #[doc = concat!("A `", $tool, "` call.")]
        #[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $ty {
            #[doc = concat!("Name of the ", $what, " to delete.")]
            pub name: String,
            #[doc = concat!("Namespace of the ", $what, " (\"default\" if omitted).")]
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub namespace: Option<String>,
            /// Seconds to let it terminate gracefully (0: at once); the object's own default if omitted.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub grace_period_seconds: Option<Int>,
            /// Check that the deletion would be accepted, without deleting.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub dry_run: Option<Flag>,
            /// Succeed even if it does not exist.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub ignore_not_found: Option<Flag>,
        }

        impl Tool for $ty {
            const SPEC: ToolSpec = ToolSpec {
                name: $tool,
                title: $title,
                description: concat!(
                    "Delete a ", $what, " by name and namespace, as you. Destructive: refused \
                     where policy (or the non-destructive mode) forbids it."
                ),
                group: ActionGroup::Destructive,
                resources: &[ResourceType::Namespace, ResourceType::Object],
                annotations: Annotations::DESTRUCTIVE,
                output_schema: Some(output_schema),
                examples: &[
                    r#"{"name": "web-1"}"#,
                    r#"{"name": "web-1", "namespace": "team-a", "gracePeriodSeconds": 0, "dryRun": "true", "ignoreNotFound": true}"#,
                ],
            };

            fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
                check_name("name", &self.name)?;
                namespace_or_default(&mut self.namespace)?;
                check_grace(self.grace_period_seconds)
            }

            fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
                Scope::One(object_target($kind, self.namespace.as_deref(), &self.name))
            }

            async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
                let deletion = Deletion {
                    kind: $kind,
                    namespace: self.namespace.as_deref(),
                    name: &self.name,
                    grace_period_seconds: self.grace_period_seconds,
                    dry_run: self.dry_run.is_some_and(|f| f.0),
                    ignore_not_found: self.ignore_not_found.is_some_and(|f| f.0),
                };
                deletion.run(run).await
            }
        }
    };
}

namespaced_delete!(
    DeletePod,
    "delete_pod",
    "Delete a pod",
    BuiltinKind::Pod,
    "pod"
);
namespaced_delete!(
    DeleteDeployment,
    "delete_deployment",
    "Delete a deployment",
    BuiltinKind::Deployment,
    "deployment"
);
namespaced_delete!(
    DeleteCronJob,
    "delete_cronjob",
    "Delete a cron job",
    BuiltinKind::CronJob,
    "cron job"
);

/// A `delete_namespace` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeleteNamespace {
    /// Name of the namespace to delete, with everything in it.
    pub name: String,
    /// Seconds to let its objects terminate gracefully; their own default if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<Int>,
    /// Check that the deletion would be accepted, without deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Flag>,
    /// Succeed even if it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_not_found: Option<Flag>,
}

impl Tool for DeleteNamespace {
    const SPEC: ToolSpec = ToolSpec {
        name: "delete_namespace",
        title: "Delete a namespace",
        description: "Delete a namespace and everything in it, as you. Destructive: refused \
                      where policy (or the non-destructive mode) forbids it.",
        group: ActionGroup::Destructive,
        resources: &[ResourceType::Namespace],
        annotations: Annotations::DESTRUCTIVE,
        output_schema: Some(output_schema),
        examples: &[
            r#"{"name": "scratch"}"#,
            r#"{"name": "scratch", "gracePeriodSeconds": "30", "dryRun": true, "ignoreNotFound": false}"#,
        ],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        check_namespace(&self.name)?;
        check_grace(self.grace_period_seconds)
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(object_target(BuiltinKind::Namespace, None, &self.name))
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let deletion = Deletion {
            kind: BuiltinKind::Namespace,
            namespace: None,
            name: &self.name,
            grace_period_seconds: self.grace_period_seconds,
            dry_run: self.dry_run.is_some_and(|f| f.0),
            ignore_not_found: self.ignore_not_found.is_some_and(|f| f.0),
        };
        deletion.run(run).await
    }
}

fn check_grace(grace: Option<Int>) -> Result<(), String> {
    match grace {
        Some(Int(n)) if n < 0 => Err(format!(
            "`gracePeriodSeconds` must not be negative, not {n}"
        )),
        _ => Ok(()),
    }
}

/// One deletion, as every delete tool makes it.
struct Deletion<'a> {
    kind: BuiltinKind,
    namespace: Option<&'a str>,
    name: &'a str,
    grace_period_seconds: Option<Int>,
    dry_run: bool,
    ignore_not_found: bool,
}

impl Deletion<'_> {
    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let options = delete_options(self.grace_period_seconds, self.dry_run);
        let what = match self.namespace {
            Some(ns) => format!(
                "{} {:?} in namespace {ns:?}",
                self.kind.kind().to_ascii_lowercase(),
                self.name
            ),
            None => format!("{} {:?}", self.kind.kind().to_ascii_lowercase(), self.name),
        };
        let outcome = run
            .kube
            .delete(self.kind, self.namespace, self.name, &options)
            .await;
        let (status, text) = match outcome {
            Ok(_) if self.dry_run => (
                "would be deleted",
                format!("Dry run: {what} would be deleted."),
            ),
            Ok(_) => ("deleted", format!("Deleted {what}.")),
            Err(KubeError::Api { code: 404, .. }) if self.ignore_not_found => (
                "not found",
                format!("{what} does not exist; nothing to delete."),
            ),
            Err(error) => return Err(not_found_hint(error, self.kind, self.namespace, self.name)),
        };
        Ok(ToolOutput {
            text,
            structured: output::raw(&json!({
                "success": true,
                "status": status,
                "kind": self.kind.kind(),
                "name": self.name,
                "namespace": self.namespace,
                "dryRun": self.dry_run,
            })),
        })
    }
}

/// `DeleteOptions` for a deletion: background propagation, an optional grace period, dry run.
pub fn delete_options(grace: Option<Int>, dry_run: bool) -> Value {
    let mut options = json!({
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "propagationPolicy": "Background",
    });
    if let Some(Int(seconds)) = grace {
        options["gracePeriodSeconds"] = Value::from(seconds);
    }
    if dry_run {
        options["dryRun"] = json!(["All"]);
    }
    options
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "status": {"type": "string", "description": "deleted, would be deleted, or not found"},
            "kind": {"type": "string"},
            "name": {"type": "string"},
            "namespace": {"type": ["string", "null"]},
            "dryRun": {"type": "boolean"},
        },
        "required": ["success", "status", "kind", "name", "dryRun"],
    })
}

//! `kubectl_apply`: applies a manifest (YAML or JSON, one or many objects) with server-side
//! apply, as the caller, all or nothing.
//!
//! MCP tool: `kubectl_apply` (mcp-server-kubernetes's name; `manifest`, `namespace?`,
//! `dryRun?`, `force?`). Kubernetes: `get` and `patch` (server-side apply, field manager
//! `kubegate`) on each object's kind, any kind the API server serves. Cedar: each object is
//! decided as its own `Object` (a `Namespace` object as its `Namespace`); one refusal refuses
//! the whole manifest.
//!
//! All or nothing: every object is first applied as a server-side dry run; only if all pass is
//! any applied for real. Objects kubegate creates carry the label `kubegate.io/created-by`
//! naming the creating caller (hashed when the name is not a valid label value) and the
//! annotation of the same name with the full name; `cleanup` finds them by it. An object that
//! existed keeps the creator it had.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::args::{DEFAULT_NAMESPACE, Flag, check_namespace};
use super::{
    ActionGroup, Annotations, NOT_SERVED, Run, Tool, ToolError, ToolOutput, ToolSpec, manifest,
    output,
};
use crate::kube::{ApiCatalog, KubeError, Served, split_api_version};
use crate::policy::{NamespaceDirectory, ObjectRef, ResourceType, Scope, Target};

/// The label (and annotation) that names who created an object through kubegate.
pub const CREATED_BY: &str = "kubegate.io/created-by";
/// The field manager of kubegate's server-side applies.
pub const FIELD_MANAGER: &str = "kubegate";

/// A `kubectl_apply` call.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Apply {
    /// The manifest to apply: YAML (one or more documents separated by `---`) or JSON (an
    /// object, a list of objects, or a `List`).
    pub manifest: String,
    /// Namespace for namespaced objects whose manifest names none ("default" if omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Validate the objects with the API server and show the result without changing anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Flag>,
    /// Take over fields that another field manager owns (server-side apply's `force`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<Flag>,
    /// The manifest's objects, resolved against what the API server serves.
    #[serde(skip)]
    #[schemars(skip)]
    planned: Vec<Planned>,
}

/// One object of the manifest, ready to apply.
#[derive(Debug, Clone)]
struct Planned {
    served: Served,
    namespace: Option<String>,
    name: String,
    object: Value,
    target: Target,
}

impl Tool for Apply {
    const SPEC: ToolSpec = ToolSpec {
        name: "kubectl_apply",
        title: "Apply a Kubernetes manifest",
        description: "Create or update Kubernetes objects from a YAML or JSON manifest (one or \
                      many objects) with server-side apply, as you. Every object must be \
                      permitted; if any is refused or invalid, nothing is changed. Use dryRun to \
                      validate first.",
        group: ActionGroup::Write,
        resources: &[ResourceType::Namespace, ResourceType::Object],
        annotations: Annotations::WRITE,
        output_schema: Some(output_schema),
        examples: &[
            "{\"manifest\": \"apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: settings\\n\"}",
            "{\"manifest\": \"apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: settings\\n\", \"namespace\": \"team-a\", \"dryRun\": true, \"force\": \"false\"}",
        ],
    };

    fn check(&mut self, served: &ApiCatalog) -> Result<(), String> {
        if let Some(ns) = &self.namespace {
            check_namespace(ns)?;
        }
        let default_ns = self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let mut seen = HashSet::new();
        for object in manifest::parse(&self.manifest)? {
            let planned = plan(object, served, self.namespace.as_deref(), default_ns)?;
            if !seen.insert(planned.target.clone()) {
                return Err(format!(
                    "the manifest names {} {:?} twice",
                    planned.served.resource.kind, planned.name
                ));
            }
            self.planned.push(planned);
        }
        Ok(())
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::All(self.planned.iter().map(|p| p.target.clone()).collect())
    }

    /// The manifest's objects with Secret values masked, instead of its text.
    fn audit_arguments(&self) -> Value {
        let objects: Vec<Value> = self
            .planned
            .iter()
            .map(|p| {
                let mut object = p.object.clone();
                super::output::filter(&mut object, None, &mut |_| None);
                object
            })
            .collect();
        let mut arguments = json!({ "objects": objects });
        if let Some(ns) = &self.namespace {
            arguments["namespace"] = Value::from(ns.as_str());
        }
        if let Some(dry_run) = self.dry_run {
            arguments["dryRun"] = Value::from(dry_run.0);
        }
        if let Some(force) = self.force {
            arguments["force"] = Value::from(force.0);
        }
        arguments
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let creator = run.caller().username.clone();
        let mut bodies = Vec::with_capacity(self.planned.len());
        for planned in &self.planned {
            let existing = match run
                .kube
                .get_served(&planned.served, planned.namespace.as_deref(), &planned.name)
                .await
            {
                Ok(body) => Some(serde_json::from_slice::<Value>(&body).map_err(decode)?),
                Err(KubeError::Api { code: 404, .. }) => None,
                Err(error) => {
                    return Err(ToolError::Failed(format!(
                        "nothing was changed: reading {} failed: {error}",
                        describe(planned)
                    )));
                }
            };
            let body = with_creator(&planned.object, existing.as_ref(), &creator);
            bodies.push((planned, body, existing.is_some()));
        }
        let mut query = vec![("fieldManager", FIELD_MANAGER.to_owned())];
        if self.force.is_some_and(|f| f.0) {
            query.push(("force", "true".to_owned()));
        }
        let mut dry_query = query.clone();
        dry_query.push(("dryRun", "All".to_owned()));
        let dry_run = self.dry_run.is_some_and(|d| d.0);
        let planned: Vec<(&Planned, &Value)> = bodies.iter().map(|(p, b, _)| (*p, b)).collect();
        // All or nothing: every object passes a server-side dry run before any is applied.
        let mut results = apply_each(run, &planned, &dry_query)
            .await
            .map_err(|(n, error)| {
                ToolError::Failed(format!(
                    "nothing was changed: {} was refused by Kubernetes: {error}{}",
                    describe(planned[n].0),
                    conflict_hint(&error)
                ))
            })?;
        if !dry_run {
            results = apply_each(run, &planned, &query)
                .await
                .map_err(|(n, error)| {
                    let done: Vec<String> = planned[..n].iter().map(|(p, _)| describe(p)).collect();
                    ToolError::Failed(format!(
                        "{} was refused by Kubernetes after passing the dry run: {error}{}. \
                         Already applied: {}",
                        describe(planned[n].0),
                        conflict_hint(&error),
                        if done.is_empty() {
                            "nothing".to_owned()
                        } else {
                            done.join(", ")
                        }
                    ))
                })?;
        }
        let mut lines = Vec::new();
        let mut objects = Vec::new();
        for ((planned, _, existed), answer) in bodies.iter().zip(results) {
            let verb = match (dry_run, existed) {
                (true, true) => "would be configured (dry run)",
                (true, false) => "would be created (dry run)",
                (false, true) => "configured",
                (false, false) => "created",
            };
            lines.push(format!("{} {verb}", describe(planned)));
            let mut object: Value = serde_json::from_slice(&answer).map_err(decode)?;
            run.filter(&mut object, None);
            objects.push(object);
        }
        Ok(ToolOutput {
            text: lines.join("\n") + "\n",
            structured: output::raw(&json!({ "dryRun": dry_run, "objects": objects })),
        })
    }
}

/// What to do about a server-side apply conflict (409: fields another field manager owns).
fn conflict_hint(error: &KubeError) -> &'static str {
    if error.status() == Some(409) {
        " (another field manager owns those fields: change them with the tool that owns them, \
         or call kubectl_apply again with \"force\": true to take them over)"
    } else {
        ""
    }
}

/// Applies each object in turn; stops at the first refusal, saying which.
async fn apply_each(
    run: &mut Run<'_>,
    objects: &[(&Planned, &Value)],
    query: crate::kube::Query<'_>,
) -> Result<Vec<bytes::Bytes>, (usize, KubeError)> {
    let mut answers = Vec::with_capacity(objects.len());
    for (n, (planned, body)) in objects.iter().enumerate() {
        let answer = run
            .kube
            .apply(
                &planned.served,
                planned.namespace.as_deref(),
                &planned.name,
                body,
                query,
            )
            .await
            .map_err(|error| (n, error))?;
        answers.push(answer);
    }
    Ok(answers)
}

/// Resolves one manifest object: its served kind, namespace and Cedar target.
fn plan(
    object: manifest::ManifestObject,
    served: &ApiCatalog,
    asked_ns: Option<&str>,
    default_ns: &str,
) -> Result<Planned, String> {
    let kind = served
        .by_api_version(&object.api_version, &object.kind)
        .cloned()
        .ok_or_else(|| {
            let (group, _) = split_api_version(&object.api_version);
            let versions = served.versions_of(group, &object.kind);
            if versions.is_empty() {
                format!(
                    "{NOT_SERVED} the kind {} ({})",
                    object.kind, object.api_version
                )
            } else {
                let group_prefix = if group.is_empty() {
                    String::new()
                } else {
                    format!("{group}/")
                };
                format!(
                    "{NOT_SERVED} {} at {}; it serves it at {}",
                    object.kind,
                    object.api_version,
                    versions
                        .iter()
                        .map(|v| format!("{group_prefix}{v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        })?;
    let mut body = object.object;
    let namespace = if kind.namespaced {
        let ns = match (&object.namespace, asked_ns) {
            (Some(own), Some(asked)) if own != asked => {
                return Err(format!(
                    "{} {:?} names namespace {own:?}, but `namespace` is {asked:?}",
                    object.kind, object.name
                ));
            }
            (Some(own), _) => own.clone(),
            (None, _) => default_ns.to_owned(),
        };
        body["metadata"]["namespace"] = Value::from(ns.as_str());
        Some(ns)
    } else {
        if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("namespace");
        }
        None
    };
    let group = kind.resource.group.clone();
    let target = if group.is_empty() && object.kind == "Namespace" {
        Target::Namespace(object.name.clone())
    } else {
        Target::Object(ObjectRef {
            api_group: group,
            kind: object.kind.clone(),
            namespace: namespace.clone(),
            name: object.name.clone(),
        })
    };
    Ok(Planned {
        served: kind,
        namespace,
        name: object.name,
        object: body,
        target,
    })
}

/// The object to apply, carrying its creator: the existing object's if it has one, else `caller`.
fn with_creator(object: &Value, existing: Option<&Value>, caller: &str) -> Value {
    let mut body = object.clone();
    let existing_meta = |field: &str| {
        existing
            .and_then(|e| e.pointer(&format!("/metadata/{field}")))
            .and_then(|m| m.get(CREATED_BY))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (label, annotation) = match existing {
        Some(_) => (existing_meta("labels"), existing_meta("annotations")),
        None => (Some(label_value(caller)), Some(caller.to_owned())),
    };
    let metadata = body
        .as_object_mut()
        .and_then(|o| o.get_mut("metadata"))
        .and_then(Value::as_object_mut);
    if let Some(metadata) = metadata {
        for (field, value) in [("labels", label), ("annotations", annotation)] {
            let map = metadata
                .entry(field)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(map) = map {
                match value {
                    Some(value) => {
                        map.insert(CREATED_BY.to_owned(), Value::from(value));
                    }
                    // An object that existed without a creator does not get one from a manifest.
                    None => {
                        map.remove(CREATED_BY);
                    }
                }
            }
        }
    }
    body
}

/// A caller's name as a label value: itself if it is a valid one, else `sha256-` and the first
/// 40 hex digits of its SHA-256.
pub fn label_value(name: &str) -> String {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        return name.to_owned();
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256-{}", &hex[..40])
}

fn describe(planned: &Planned) -> String {
    let kind = planned.served.resource.kind.to_ascii_lowercase();
    let group = &planned.served.resource.group;
    let kind = if group.is_empty() {
        kind
    } else {
        format!("{kind}.{group}")
    };
    match &planned.namespace {
        Some(ns) => format!("{kind}/{} in namespace {ns}", planned.name),
        None => format!("{kind}/{}", planned.name),
    }
}

fn decode(error: serde_json::Error) -> ToolError {
    KubeError::Decode(error.to_string()).into()
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "dryRun": {"type": "boolean"},
            "objects": {"type": "array", "items": {"type": "object"}, "description": "The objects as the API server answered (filtered)"},
        },
        "required": ["dryRun", "objects"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creators_are_labels_or_hashes() {
        assert_eq!(label_value("alice"), "alice");
        assert_eq!(label_value("alice.smith_2"), "alice.smith_2");
        let hashed = label_value("oidc:alice@example.com");
        assert!(
            hashed.starts_with("sha256-") && hashed.len() == 47,
            "{hashed}"
        );
        assert_eq!(hashed, label_value("oidc:alice@example.com"), "stable");
        assert_ne!(hashed, label_value("oidc:bob@example.com"));
        assert!(label_value(&"a".repeat(64)).starts_with("sha256-"));
    }

    #[test]
    fn new_objects_get_the_caller_and_existing_ones_keep_theirs() {
        let object =
            json!({"metadata": {"name": "a", "labels": {CREATED_BY: "mallory", "app": "x"}}});
        let new = with_creator(&object, None, "alice");
        assert_eq!(new["metadata"]["labels"][CREATED_BY], "alice");
        assert_eq!(new["metadata"]["labels"]["app"], "x");
        assert_eq!(new["metadata"]["annotations"][CREATED_BY], "alice");
        let existing = json!({"metadata": {"labels": {CREATED_BY: "bob"}, "annotations": {CREATED_BY: "bob"}}});
        let updated = with_creator(&object, Some(&existing), "alice");
        assert_eq!(updated["metadata"]["labels"][CREATED_BY], "bob");
        let unowned = with_creator(&object, Some(&json!({"metadata": {}})), "alice");
        assert!(
            unowned["metadata"]["labels"].get(CREATED_BY).is_none(),
            "a manifest cannot name a creator"
        );
    }
}

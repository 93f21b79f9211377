//! The MCP prompts kubegate serves (k8sgpt's names and arguments): step-by-step troubleshooting
//! workflows that name kubegate's own tools. Getting one is decided by policy as
//! `Action::"get-prompt"` on the namespace it is about (`troubleshoot-cluster`: the cluster),
//! with [`PromptArguments`] as the Cedar context's `arguments` (the schema's type for them is
//! generated from that struct).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::args::{check_name, check_namespace};
use crate::policy::{Decidable, NamespaceDirectory, Scope, Target};

/// What a `get-prompt` decision sees as `context.arguments`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PromptArguments {
    /// The prompt's name.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The prompts, as `prompts/list` shows them to a caller who could be permitted those on a
/// namespace (`on_namespace`) or on the cluster (`on_cluster`); with `several` clusters, each
/// takes an optional `cluster`.
pub fn list(on_namespace: bool, on_cluster: bool, several: bool) -> Value {
    let all = json!([
        {"name": "troubleshoot-pod", "title": "Troubleshoot a pod",
         "description": "A step-by-step workflow to find out why a pod is failing",
         "arguments": [
            {"name": "podName", "description": "Name of the pod to troubleshoot", "required": true},
            {"name": "namespace", "description": "Namespace of the pod", "required": true},
         ]},
        {"name": "troubleshoot-deployment", "title": "Troubleshoot a deployment",
         "description": "A step-by-step workflow to find out why a deployment is not available",
         "arguments": [
            {"name": "deploymentName", "description": "Name of the deployment", "required": true},
            {"name": "namespace", "description": "Namespace of the deployment", "required": true},
         ]},
        {"name": "troubleshoot-cluster", "title": "Troubleshoot the cluster",
         "description": "A general workflow to find what is broken in the cluster", "arguments": []},
    ]);
    Value::from(
        all.as_array()
            .into_iter()
            .flatten()
            .filter(|prompt| {
                if prompt["name"] == "troubleshoot-cluster" {
                    on_cluster
                } else {
                    on_namespace
                }
            })
            .cloned()
            .map(|mut prompt| {
                if several && let Some(arguments) = prompt["arguments"].as_array_mut() {
                    arguments.push(json!({
                        "name": "cluster",
                        "description": "The cluster (a name list-clusters shows); without it, \
                                        the default one",
                        "required": false,
                    }));
                }
                prompt
            })
            .collect::<Vec<_>>(),
    )
}

/// One `prompts/get`, parsed.
#[derive(Debug)]
pub enum Prompt {
    Pod {
        pod: String,
        namespace: String,
    },
    Deployment {
        deployment: String,
        namespace: String,
    },
    Cluster,
}

impl Prompt {
    /// Parses `prompts/get` parameters: `name` and `arguments`.
    pub fn parse(params: &Map<String, Value>) -> Result<Prompt, String> {
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .ok_or("prompts/get needs a `name` (string)")?;
        let empty = Map::new();
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(arguments)) => arguments,
            Some(_) => return Err("prompts/get `arguments` must be an object".to_owned()),
        };
        let argument = |key: &str| -> Result<String, String> {
            arguments
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("prompt {name:?} needs the argument `{key}`"))
        };
        let namespace = || -> Result<String, String> {
            let ns = argument("namespace")?;
            check_namespace(&ns)?;
            Ok(ns)
        };
        match name {
            "troubleshoot-pod" => {
                let pod = argument("podName")?;
                check_name("podName", &pod)?;
                Ok(Prompt::Pod {
                    pod,
                    namespace: namespace()?,
                })
            }
            "troubleshoot-deployment" => {
                let deployment = argument("deploymentName")?;
                check_name("deploymentName", &deployment)?;
                Ok(Prompt::Deployment {
                    deployment,
                    namespace: namespace()?,
                })
            }
            "troubleshoot-cluster" => Ok(Prompt::Cluster),
            other => Err(format!(
                "unknown prompt {other:?}: kubegate serves troubleshoot-pod, \
                 troubleshoot-deployment and troubleshoot-cluster"
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Prompt::Pod { .. } => "troubleshoot-pod",
            Prompt::Deployment { .. } => "troubleshoot-deployment",
            Prompt::Cluster => "troubleshoot-cluster",
        }
    }

    /// The prompt's description and its one user message.
    pub fn messages(&self) -> (String, String) {
        match self {
            Prompt::Pod { pod, namespace } => (
                format!("Troubleshoot pod {pod} in namespace {namespace}"),
                format!(
                    "Find out why the pod {pod:?} in namespace {namespace:?} is not working, and \
                     say how to fix it. Work through these steps with the kubegate tools, and \
                     stop once the cause is clear:\n\
                     1. get-resource with resourceType \"pods\", name {pod:?}, namespace \
                     {namespace:?}: read status.phase, each container's state (waiting reason, \
                     last termination reason and exit code), restartCount and the conditions.\n\
                     2. list-events with namespace {namespace:?} and involvedObjectName {pod:?}: \
                     look for scheduling failures, image pull errors, failed mounts and probe \
                     failures.\n\
                     3. get-logs with podName {pod:?} and namespace {namespace:?} (add \
                     \"previous\": true if the container restarted; name the container if \
                     there are several): look for the error that ended it.\n\
                     4. If the pod belongs to a Deployment or StatefulSet (metadata.ownerReferences), \
                     get-resource on it and compare its spec (image, resources, probes, env from \
                     ConfigMaps and Secrets) with what the pod shows.\n\
                     5. If a ConfigMap, Secret or PersistentVolumeClaim it uses is missing, \
                     list-resources in {namespace:?} shows what exists.\n\
                     Report the cause, the evidence (quote the event or log line), and the fix. \
                     Change nothing unless asked; kubectl_apply and delete_pod are there if the \
                     user wants the fix made."
                ),
            ),
            Prompt::Deployment {
                deployment,
                namespace,
            } => (
                format!("Troubleshoot deployment {deployment} in namespace {namespace}"),
                format!(
                    "Find out why the deployment {deployment:?} in namespace {namespace:?} is not \
                     fully available, and say how to fix it:\n\
                     1. get-resource with resourceType \"deployments\", name {deployment:?}, \
                     namespace {namespace:?}: compare spec.replicas with status.readyReplicas and \
                     availableReplicas; read the Progressing and Available conditions.\n\
                     2. list-resources with resourceType \"replicasets\" and namespace \
                     {namespace:?} (labelSelector from spec.selector.matchLabels): find the newest \
                     ReplicaSet and whether it could create its pods (list-events on it).\n\
                     3. list-resources with resourceType \"pods\", the same labelSelector and \
                     namespace: find the pods that are not Running and Ready.\n\
                     4. For one failing pod, follow the troubleshoot-pod steps: get-resource, \
                     list-events with involvedObjectName, get-logs.\n\
                     5. list-events in {namespace:?} with involvedObjectName {deployment:?} for \
                     rollout problems (quota, admission, progress deadline).\n\
                     Report the cause with its evidence and the fix. kubectl_scale and \
                     kubectl_apply can make the fix if the user asks."
                ),
            ),
            Prompt::Cluster => (
                "Troubleshoot the cluster".to_owned(),
                "Find what is broken in the Kubernetes cluster, as far as you may see it:\n\
                 1. cluster-info: the Kubernetes version.\n\
                 2. list-namespaces: the namespaces you may look at.\n\
                 3. list-resources with resourceType \"nodes\": any node not Ready, or under \
                 memory, disk or PID pressure.\n\
                 4. list-events (no namespace, or each namespace in turn): Warning events, \
                 newest first.\n\
                 5. For each namespace, list-resources with resourceType \"pods\": pods not \
                 Running or with many restarts; list-resources with resourceType \
                 \"deployments\": deployments whose READY is below their desired count.\n\
                 6. For each problem, use the troubleshoot-pod or troubleshoot-deployment \
                 steps to find the cause.\n\
                 Report the problems, most severe first, each with its evidence and a fix."
                    .to_owned(),
            ),
        }
    }
}

impl Decidable for Prompt {
    fn action(&self) -> &'static str {
        "get-prompt"
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(match self {
            Prompt::Pod { namespace, .. } | Prompt::Deployment { namespace, .. } => {
                Target::Namespace(namespace.clone())
            }
            Prompt::Cluster => Target::Cluster,
        })
    }

    fn cedar_arguments(&self) -> Value {
        serde_json::to_value(self.arguments()).unwrap_or(Value::Null)
    }
}

impl Prompt {
    /// The prompt's arguments as its decision sees them.
    pub fn arguments(&self) -> PromptArguments {
        let mut arguments = PromptArguments {
            name: self.name().to_owned(),
            pod_name: None,
            deployment_name: None,
            namespace: None,
        };
        match self {
            Prompt::Pod { pod, namespace } => {
                arguments.pod_name = Some(pod.clone());
                arguments.namespace = Some(namespace.clone());
            }
            Prompt::Deployment {
                deployment,
                namespace,
            } => {
                arguments.deployment_name = Some(deployment.clone());
                arguments.namespace = Some(namespace.clone());
            }
            Prompt::Cluster => {}
        }
        arguments
    }
}

//! The MCP tools kubegate serves. Each tool is one small file: an argument struct (serde and
//! schemars, so one definition gives the parser, the MCP `inputSchema` and the Cedar context
//! type) implementing [`Tool`]: its catalog entry, the Cedar resources it targets, and how it
//! runs with an impersonated client. [`catalog!`] generates the rest: the [`ToolCall`] enum,
//! parsing by name and dispatch.
//!
//! Every call goes the same way: [`ToolCall::parse`] its arguments, let the policy decide it
//! ([`crate::policy::PolicyEngine::authorize`] consumes the call and returns it bound to its
//! permit), then [`run`] it from that [`Permitted`] call. Every object a tool returns passes
//! through [`output`]'s filter: Secret values masked unless `reveal-secrets` is granted,
//! `managedFields` dropped.

pub mod analyze;
mod apply;
pub mod args;
mod cleanup;
mod cluster_info;
mod delete;
pub mod filters;
mod get_logs;
mod get_resource;
mod helm;
mod list_clusters;
mod list_events;
mod list_namespaces;
pub mod list_resources;
pub mod manifest;
pub mod output;
pub mod paging;
pub mod prompts;
pub mod resources;
mod scale;
mod shaped;
mod summary;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{LazyLock, Mutex};

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

pub use analyze::Analysis;
pub use helm::{decode_release, encode_release};
pub use list_clusters::NAME as LIST_CLUSTERS;
pub use list_resources::{LISTABLE, ListResources};
pub use output::{MASK, ToolOutput};

use crate::audit::{AuditGrant, KubeCall, WriteAhead};
use crate::auth::Caller;
use crate::clusters::{Clusters, Reached};
use crate::kube::{ApiCatalog, Impersonated, KubeError};
use crate::mcp::peer::Peer;
use crate::policy::{
    Decidable, Denied, NamespaceDirectory, Permit, Permitted, PolicyEngine, RequestFacts,
    ResourceType, Scope, Target, Unmask,
};

/// The Cedar action group a tool's action belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionGroup {
    Read,
    Write,
    Destructive,
}

impl ActionGroup {
    /// The group's Cedar action id (`Action::"read"`, ...).
    pub fn action(self) -> &'static str {
        match self {
            ActionGroup::Read => "read",
            ActionGroup::Write => "write",
            ActionGroup::Destructive => "destructive",
        }
    }

    /// Whether calls of this group change the cluster (and so write their audit record first).
    pub fn changes_cluster(self) -> bool {
        self != ActionGroup::Read
    }
}

/// The MCP tool annotations (hints to clients, never a security boundary).
#[derive(Debug, Clone, Copy)]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

impl Annotations {
    /// Reads the cluster and changes nothing.
    pub const READ: Annotations = Annotations {
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: false,
    };
    /// Creates or changes objects; the same call twice leaves the same state.
    pub const WRITE: Annotations = Annotations {
        read_only: false,
        destructive: false,
        idempotent: true,
        open_world: false,
    };
    /// Deletes objects; the same call twice leaves the same state.
    pub const DESTRUCTIVE: Annotations = Annotations {
        read_only: false,
        destructive: true,
        idempotent: true,
        open_world: false,
    };
}

/// A tool as the catalog describes it.
#[derive(Debug)]
pub struct ToolSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub group: ActionGroup,
    /// The Cedar resource types its calls target.
    pub resources: &'static [ResourceType],
    pub annotations: Annotations,
    /// The JSON Schema of its `structuredContent`, for tools that answer with one.
    pub output_schema: Option<fn() -> Value>,
    /// Example arguments (JSON): the first with only what is required, the last with every
    /// argument. Tests parse each and check its Cedar context against the schema.
    pub examples: &'static [&'static str],
}

impl ToolSpec {
    /// The tool as `tools/list` shows it.
    pub fn describe(&self, input_schema: &Value) -> Value {
        let mut tool = json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": input_schema,
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.annotations.read_only,
                "destructiveHint": self.annotations.destructive,
                "idempotentHint": self.annotations.idempotent,
                "openWorldHint": self.annotations.open_world,
            },
        });
        if let Some(schema) = self.output_schema {
            tool["outputSchema"] = schema();
        }
        tool
    }
}

/// Why a tool call could not be parsed or run. Each message tells the model what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("unknown tool `{0}`; tools/list shows the tools you may call")]
    UnknownTool(String),
    #[error("invalid arguments for `{tool}`: {message}")]
    InvalidArguments { tool: &'static str, message: String },
    /// The call names a kind the API server does not serve (as last discovered).
    #[error("invalid arguments for `{tool}`: {message}")]
    NotServed { tool: &'static str, message: String },
    #[error("{0}")]
    Kube(#[from] KubeError),
    #[error("{0}")]
    Denied(Denied),
    /// The object asked for does not exist; the message says how to find what does.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
    /// The client went away before the call (which changes nothing) was done.
    #[error("the call was abandoned: its client went away")]
    Cancelled,
}

impl ToolError {
    pub fn invalid(tool: &'static str, message: impl Into<String>) -> ToolError {
        ToolError::InvalidArguments {
            tool,
            message: message.into(),
        }
    }
}

/// One tool: its arguments are this struct.
pub trait Tool: Sized + DeserializeOwned + Serialize + JsonSchema + Send + Sync {
    const SPEC: ToolSpec;

    /// Checks what serde cannot (names, ranges, combinations) and resolves what the call names
    /// against what the API server serves; runs right after parsing.
    fn check(&mut self, _served: &ApiCatalog) -> Result<(), String> {
        Ok(())
    }

    /// The Cedar resources the call is decided on.
    fn scope(&self, namespaces: &dyn NamespaceDirectory) -> Scope;

    /// The arguments as the audit record keeps them (by default, as Cedar saw them). Tools
    /// whose arguments can carry Secret values redact them here.
    fn audit_arguments(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Runs the permitted call.
    fn run(&self, run: &mut Run<'_>) -> impl Future<Output = Result<ToolOutput, ToolError>> + Send;
}

/// How a `check` says that the call names a kind the API server does not serve (so that the
/// caller of [`ToolCall::parse`] may discover again and retry).
pub const NOT_SERVED: &str = "this cluster does not serve";

fn parse<T: Tool>(arguments: &Map<String, Value>, served: &ApiCatalog) -> Result<T, ToolError> {
    let mut call: T =
        args::parse(arguments).map_err(|message| ToolError::invalid(T::SPEC.name, message))?;
    call.check(served).map_err(|message| {
        if message.contains(NOT_SERVED) {
            ToolError::NotServed {
                tool: T::SPEC.name,
                message,
            }
        } else {
            ToolError::invalid(T::SPEC.name, message)
        }
    })?;
    Ok(call)
}

/// Generates [`ToolCall`], [`CATALOG`] and the dispatch over every tool.
macro_rules! catalog {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// A parsed call of one tool.
        #[derive(Debug)]
        pub enum ToolCall {
            $($variant($ty),)*
        }

        /// Every tool kubegate serves, in `tools/list` order.
        pub static CATALOG: &[&ToolSpec] = &[$(&<$ty as Tool>::SPEC,)*];

        /// Each tool's MCP `inputSchema`, made once from its argument struct.
        static INPUT_SCHEMAS: LazyLock<HashMap<&'static str, Value>> = LazyLock::new(|| {
            HashMap::from([$((<$ty as Tool>::SPEC.name, args::input_schema::<$ty>()),)*])
        });

        impl ToolCall {
            /// Parses `tools/call` parameters: the tool's name and its arguments object, resolving
            /// what they name against what the API server serves.
            pub fn parse(
                name: &str,
                arguments: &Map<String, Value>,
                served: &ApiCatalog,
            ) -> Result<ToolCall, ToolError> {
                $(if name == <$ty as Tool>::SPEC.name {
                    return parse::<$ty>(arguments, served).map(ToolCall::$variant);
                })*
                Err(ToolError::UnknownTool(name.to_owned()))
            }

            /// The catalog entry of the called tool.
            pub fn spec(&self) -> &'static ToolSpec {
                match self {
                    $(ToolCall::$variant(_) => &<$ty as Tool>::SPEC,)*
                }
            }

            /// The arguments as the audit record keeps them.
            pub fn audit_arguments(&self) -> Value {
                match self {
                    $(ToolCall::$variant(call) => call.audit_arguments(),)*
                }
            }

        }

        impl Runnable for ToolCall {
            async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
                match self {
                    $(ToolCall::$variant(call) => call.run(run).await,)*
                }
            }
        }

        impl Decidable for ToolCall {
            fn action(&self) -> &'static str {
                self.spec().name
            }
            fn scope(&self, namespaces: &dyn NamespaceDirectory) -> Scope {
                match self {
                    $(ToolCall::$variant(call) => call.scope(namespaces),)*
                }
            }
            fn cedar_arguments(&self) -> Value {
                match self {
                    $(ToolCall::$variant(call) => serde_json::to_value(call).unwrap_or(Value::Null),)*
                }
            }
        }
    };
}

catalog! {
    Analyze(analyze::Analyze),
    ClusterInfo(cluster_info::ClusterInfo),
    ListClusters(list_clusters::ListClusters),
    ListNamespaces(list_namespaces::ListNamespaces),
    ListResources(list_resources::ListResources),
    GetResource(get_resource::GetResource),
    GetLogs(get_logs::GetLogs),
    ListEvents(list_events::ListEvents),
    Apply(apply::Apply),
    Scale(scale::Scale),
    DeletePod(delete::DeletePod),
    DeleteDeployment(delete::DeleteDeployment),
    DeleteCronJob(delete::DeleteCronJob),
    DeleteNamespace(delete::DeleteNamespace),
    UninstallHelmChart(helm::UninstallHelmChart),
    Cleanup(cleanup::Cleanup),
    ListFilters(filters::ListFilters),
    AddFilters(filters::AddFilters),
    RemoveFilters(filters::RemoveFilters),
    ListIntegrations(filters::ListIntegrations),
    Config(filters::Config),
}

/// Looks a tool up by its MCP name.
pub fn spec(name: &str) -> Option<&'static ToolSpec> {
    CATALOG.iter().copied().find(|s| s.name == name)
}

/// A tool's MCP `inputSchema`.
pub fn input_schema(name: &str) -> Option<&'static Value> {
    INPUT_SCHEMAS.get(name)
}

/// Something a permit lets run: a tool call, or a resource read.
pub trait Runnable {
    fn run(&self, run: &mut Run<'_>) -> impl Future<Output = Result<ToolOutput, ToolError>> + Send;
}

/// What running a call produced, besides its answer: for the audit record.
pub struct Ran {
    pub output: Result<ToolOutput, ToolError>,
    pub calls: Vec<KubeCall>,
    pub grants: Vec<AuditGrant>,
}

/// Runs a permitted call as the caller its permit names. `write_ahead` must be given for calls
/// that change the cluster: without it their client cannot send a change.
pub async fn run<T: Runnable>(
    permitted: &Permitted<T>,
    clusters: &Clusters,
    to: Reached<'_>,
    facts: &RequestFacts,
    peer: Option<Peer<'_>>,
    write_ahead: Option<WriteAhead>,
) -> Ran {
    let permit = permitted.permit();
    let mut client = match to.kube.impersonate(permit) {
        Ok(client) => client,
        Err(error) => {
            return Ran {
                output: Err(error.into()),
                calls: Vec::new(),
                grants: Vec::new(),
            };
        }
    };
    if let Some(write_ahead) = write_ahead {
        client.journaled(write_ahead);
    }
    let mut run = Run {
        policy: &to.cluster.policy,
        analysis: &to.cluster.analysis,
        clusters,
        peer,
        permit,
        facts,
        kube: client,
        reveals: Mutex::new(HashMap::new()),
        grants: Mutex::new(Vec::new()),
    };
    let output = permitted.call().run(&mut run).await;
    Ran {
        output,
        calls: run.kube.take_calls(),
        grants: run.grants.into_inner().unwrap_or_else(|e| e.into_inner()),
    }
}

/// What a running tool works with: the impersonating client, its permit, and the policy for the
/// decisions it makes on the way (an item's namespace, revealing Secrets).
pub struct Run<'a> {
    pub policy: &'a PolicyEngine,
    /// Tenants' analysis settings and recent answers, for `analyze` and its settings tools.
    pub analysis: &'a Analysis,
    /// Every cluster kubegate fronts (this call's is the one of `policy` and `kube`).
    pub clusters: &'a Clusters,
    /// The caller's client while it waits for this answer (progress, sampling), if reachable.
    pub peer: Option<Peer<'a>>,
    pub permit: &'a Permit,
    pub facts: &'a RequestFacts,
    pub kube: Impersonated<'a>,
    /// `reveal-secrets` decisions, by namespace (`None`: cluster-wide).
    reveals: Mutex<HashMap<Option<String>, Option<Unmask>>>,
    grants: Mutex<Vec<AuditGrant>>,
}

impl Run<'_> {
    /// The caller, as the permit names them.
    pub fn caller(&self) -> &Caller {
        self.permit.caller()
    }

    /// The name of the cluster (the Cedar `Cluster` id).
    pub fn cluster(&self) -> &str {
        self.policy.cluster()
    }

    /// Decides a further resource for this call (same caller, action and arguments).
    pub fn also(&self, target: &Target) -> Result<(), Denied> {
        self.permit
            .also(self.policy, target, self.kube.kube())
            .map(|_| ())
    }

    /// Notes a further decision this call made for the audit record.
    pub fn note_grant(&self, grant: AuditGrant) {
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants.push(grant);
    }

    /// Whether Secret values may be shown in `namespace` (`None`: cluster-scoped or cluster-wide),
    /// decided once per namespace by `Action::"reveal-secrets"`: the grant's [`Unmask`] if so.
    pub fn reveal(&self, namespace: Option<&str>) -> Option<Unmask> {
        let key = namespace.map(str::to_owned);
        let mut reveals = self.reveals.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&decided) = reveals.get(&key) {
            return decided;
        }
        let target = match namespace {
            Some(ns) => Target::Namespace(ns.to_owned()),
            None => Target::Cluster,
        };
        let (decision, shadow_allowed) =
            self.policy
                .reveal_secrets_for(self.permit, &target, self.facts, self.kube.kube());
        let unmask = decision.as_ref().ok().map(|grant| grant.unmask());
        let allowed = unmask.is_some();
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants.push(AuditGrant {
            action: crate::policy::REVEAL_SECRETS,
            resource: self.policy.resource_uid(&target),
            allowed,
            policies: match &decision {
                Ok(grant) => grant.allowed().policies.clone(),
                Err(denied) => denied.policies().to_vec(),
            },
            shadow_allowed,
        });
        reveals.insert(key, unmask);
        unmask
    }

    /// Filters Kubernetes objects for the caller (see [`output::filter`]).
    pub fn filter(&self, value: &mut Value, kind: Option<&str>) {
        output::filter(value, kind, &mut |ns| self.reveal(ns));
    }
}

#[cfg(test)]
mod tests;

//! Decides every call with Cedar: builds the request's entities and context, evaluates the enforced
//! policy set, and returns a [`Permit`] naming the policies that allowed it, or a [`Denied`].
//!
//! # Guarantees
//! - Default deny: no policy loaded, or none that permits, means refusal.
//! - `forbid` wins over `permit` (Cedar's own semantics).
//! - Fail closed: if any policy fails to evaluate for a request, the request is refused, even if
//!   the rest would permit it (Cedar alone would skip the failing policy, which for a `forbid`
//!   would open the gate).
//! - A [`Permit`] can only be made here, and only a `Permit` builds an impersonating Kubernetes
//!   client ([`crate::kube::Kube::impersonate`]), so a path that skips the decision does not compile.
//! - Policies are validated in strict mode against the schema generated from the tool catalog;
//!   one that does not validate stops the load.

mod entities;
pub mod schema;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Decision, Entities, EntityUid, Policy, PolicyId, PolicySet, Request, Schema,
    ValidationMode, Validator,
};
use serde_json::Value;

use crate::auth::Caller;

/// The non-destructive policy set, as shipped in `policies/non-destructive.cedar`.
pub const NON_DESTRUCTIVE_POLICIES: &str = include_str!("../policies/non-destructive.cedar");

/// The Cedar entity types a call can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Cluster,
    Namespace,
}

impl ResourceType {
    pub fn cedar_name(self) -> &'static str {
        match self {
            ResourceType::Cluster => "Cluster",
            ResourceType::Namespace => "Namespace",
        }
    }
}

/// The Cedar resource of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Cluster-scoped or all-namespace calls: `Cluster::"<cluster name>"`.
    Cluster,
    /// Calls within one namespace: `Namespace::"<name>"`.
    Namespace(String),
}

/// What kubegate knows about a namespace, from its watch of namespaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceFacts {
    pub labels: BTreeMap<String, String>,
    /// The value of the tenant label, if the namespace carries it.
    pub tenant: Option<String>,
}

/// Where the policy engine looks namespaces up (kubegate's namespace cache); never the API server.
pub trait NamespaceDirectory {
    fn namespace(&self, name: &str) -> Option<NamespaceFacts>;
}

/// Facts about the transport of a request: the Cedar context's `request` record.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub transport: &'static str,
    pub source_ip: IpAddr,
    pub protocol_version: String,
    pub session_id: Option<String>,
    pub time: jiff::Timestamp,
}

/// Proof that the policy permitted one action for one caller, and why.
#[derive(Debug, Clone)]
pub struct Permit {
    caller: Arc<Caller>,
    action: &'static str,
    target: Target,
    resource: String,
    policies: Vec<String>,
    reasons: Vec<String>,
}

impl Permit {
    /// The caller the permit was granted to: the identity kubegate impersonates.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }
    pub fn action(&self) -> &'static str {
        self.action
    }
    /// The Cedar resource the permit is for, e.g. `Namespace::"team-a"`.
    pub fn resource(&self) -> &str {
        &self.resource
    }
    /// Whether this permit is for exactly this action on this target (a tool checks before it
    /// runs, so that no permit for one call can run another).
    pub fn covers(&self, action: &str, target: &Target) -> bool {
        self.action == action && &self.target == target
    }
    /// The ids of the policies that permitted the call.
    pub fn policies(&self) -> &[String] {
        &self.policies
    }
    /// Their `@reason` annotations.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }
}

/// A refusal, with what decided it.
#[derive(Debug, Clone)]
pub struct Denied {
    pub principal: String,
    pub action: &'static str,
    pub resource: String,
    pub cause: Refusal,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No policy permits it (Cedar's default deny).
    NotPermitted,
    /// `forbid` policies matched; they win over any `permit`.
    Forbidden {
        policies: Vec<String>,
        reasons: Vec<String>,
    },
    /// A policy could not be evaluated (or the request not built): kubegate refuses what it
    /// cannot decide.
    Undecidable { errors: Vec<String> },
}

impl Denied {
    /// The `forbid` policies that decided, if any.
    pub fn policies(&self) -> &[String] {
        match &self.cause {
            Refusal::Forbidden { policies, .. } => policies,
            _ => &[],
        }
    }

    /// Their `@reason` annotations.
    pub fn reasons(&self) -> &[String] {
        match &self.cause {
            Refusal::Forbidden { reasons, .. } => reasons,
            _ => &[],
        }
    }

    /// Evaluation errors, if that is why.
    pub fn errors(&self) -> &[String] {
        match &self.cause {
            Refusal::Undecidable { errors } => errors,
            _ => &[],
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kubegate refused `{}` on {} for {}: ",
            self.action, self.resource, self.principal
        )?;
        match &self.cause {
            Refusal::NotPermitted => write!(f, "no policy permits it"),
            Refusal::Forbidden { policies, reasons } => {
                write!(f, "forbidden by policy {}", policies.join(", "))?;
                if !reasons.is_empty() {
                    write!(f, " ({})", reasons.join("; "))?;
                }
                Ok(())
            }
            Refusal::Undecidable { errors } => write!(
                f,
                "a policy could not be evaluated ({}), and kubegate refuses what it cannot decide",
                errors.join("; ")
            ),
        }
    }
}

/// Why policies could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the generated Cedar schema does not parse (a bug in kubegate): {0}")]
    Schema(String),
    #[error("cannot read policy file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse policies in {source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("policy id `{0}` is used twice; every @id must be unique")]
    DuplicateId(String),
    #[error("policies do not validate against the kubegate schema:\n{0}")]
    Validation(String),
}

/// The enforced policy set, with the schema it was validated against.
pub struct PolicyEngine {
    schema: Schema,
    policies: PolicySet,
    authorizer: Authorizer,
    /// Per action: its entity and its groups' (from the schema), all a request needs of them.
    actions: HashMap<String, Vec<cedar_policy::Entity>>,
    extension_values: entities::ExtensionValues,
    /// Each policy's `@reason`, read once at load (Cedar parses the key on every lookup).
    reasons: HashMap<PolicyId, String>,
    cluster: EntityUid,
}

impl PolicyEngine {
    /// Loads policy files, plus the non-destructive set if asked, for the named cluster.
    pub fn load(
        files: &[PathBuf],
        non_destructive: bool,
        cluster: &str,
    ) -> Result<PolicyEngine, PolicyError> {
        let mut sources = files
            .iter()
            .map(|path| read_source(path))
            .collect::<Result<Vec<_>, _>>()?;
        if non_destructive {
            sources.push((
                "policies/non-destructive.cedar".to_owned(),
                NON_DESTRUCTIVE_POLICIES.to_owned(),
            ));
        }
        PolicyEngine::from_sources(&sources, cluster)
    }

    /// Builds an engine from `(name, policy text)` pairs. Policy ids are their `@id` annotations,
    /// or `<name>#<n>` for policies without one.
    pub fn from_sources(
        sources: &[(String, String)],
        cluster: &str,
    ) -> Result<PolicyEngine, PolicyError> {
        let schema = schema::schema().map_err(PolicyError::Schema)?;
        let mut policies = PolicySet::new();
        let mut seen = HashSet::new();
        for (name, text) in sources {
            let parsed = PolicySet::from_str(text).map_err(|e| PolicyError::Parse {
                source_name: name.clone(),
                message: format!("{e:?}"),
            })?;
            let mut in_file: Vec<&Policy> = parsed.policies().collect();
            // Cedar names a file's policies `policy0`, `policy1`, ... in file order, but iterates
            // them in no set order; sort so that `<name>#<n>` ids follow the file.
            in_file.sort_by_key(|p| {
                p.id()
                    .to_string()
                    .trim_start_matches("policy")
                    .parse::<usize>()
                    .unwrap_or(usize::MAX)
            });
            for (n, policy) in in_file.into_iter().enumerate() {
                let id = policy
                    .annotation("id")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{name}#{n}"));
                if !seen.insert(id.clone()) {
                    return Err(PolicyError::DuplicateId(id));
                }
                let policy = policy.new_id(PolicyId::new(id.clone()));
                policies.add(policy).map_err(|e| PolicyError::Parse {
                    source_name: name.clone(),
                    message: e.to_string(),
                })?;
            }
        }
        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !validation.validation_passed() {
            let problems: Vec<String> = validation
                .validation_errors()
                .map(|e| format!("- {e}"))
                .collect();
            return Err(PolicyError::Validation(problems.join("\n")));
        }
        let all_actions = schema
            .action_entities()
            .map_err(|e| PolicyError::Schema(e.to_string()))?;
        let by_uid: HashMap<EntityUid, cedar_policy::Entity> =
            all_actions.iter().map(|e| (e.uid(), e.clone())).collect();
        let actions = by_uid
            .iter()
            .map(|(uid, entity)| {
                let groups = all_actions
                    .ancestors(uid)
                    .into_iter()
                    .flatten()
                    .filter_map(|group| by_uid.get(group).cloned());
                let chain = std::iter::once(entity.clone()).chain(groups).collect();
                (uid.id().unescaped().to_owned(), chain)
            })
            .collect();
        let reasons = policies
            .policies()
            .filter_map(|p| Some((p.id().clone(), p.annotation("reason")?.to_owned())))
            .collect();
        Ok(PolicyEngine {
            schema,
            policies,
            reasons,
            authorizer: Authorizer::new(),
            actions,
            extension_values: entities::ExtensionValues::default(),
            cluster: entities::uid("Cluster", cluster),
        })
    }

    /// How many policies are enforced.
    pub fn len(&self) -> usize {
        self.policies.num_of_policies()
    }

    /// Whether no policy is enforced (then nothing is permitted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides whether `caller` may take `action` on `target`, with the call's typed arguments.
    pub fn authorize(
        &self,
        caller: &Arc<Caller>,
        action: &'static str,
        target: &Target,
        arguments: Option<&Value>,
        request: &RequestFacts,
        namespaces: &dyn NamespaceDirectory,
    ) -> Result<Permit, Denied> {
        let principal = entities::uid("User", &caller.username);
        let resource = match target {
            Target::Cluster => self.cluster.clone(),
            Target::Namespace(name) => entities::uid("Namespace", name),
        };
        let denied = |cause| Denied {
            principal: principal.to_string(),
            action,
            resource: resource.to_string(),
            cause,
        };
        let action_uid = entities::uid("Action", action);
        let (request, entities) = match self.request(
            caller,
            &principal,
            &action_uid,
            &resource,
            target,
            arguments,
            request,
            namespaces,
        ) {
            Ok(built) => built,
            Err(error) => {
                return Err(denied(Refusal::Undecidable {
                    errors: vec![error],
                }));
            }
        };
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        let policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        let reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .filter_map(|id| self.reasons.get(id).cloned())
            .collect();
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        match (response.decision(), errors.is_empty()) {
            (Decision::Allow, true) => Ok(Permit {
                caller: Arc::clone(caller),
                action,
                target: target.clone(),
                resource: resource.to_string(),
                policies,
                reasons,
            }),
            (_, false) => Err(denied(Refusal::Undecidable { errors })),
            (Decision::Deny, true) if policies.is_empty() => Err(denied(Refusal::NotPermitted)),
            (Decision::Deny, true) => Err(denied(Refusal::Forbidden { policies, reasons })),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        caller: &Caller,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        target: &Target,
        arguments: Option<&Value>,
        facts: &RequestFacts,
        namespaces: &dyn NamespaceDirectory,
    ) -> Result<(Request, Entities), String> {
        let context = entities::context(arguments, facts, &self.extension_values)?;
        // Validating each request against the schema costs more than the decision itself, so
        // only debug builds do it. Contexts come only from the tools' typed parsers, and every
        // tool's requests are built under this validation in the tests; that is the guarantee
        // that release builds evaluate requests of the schema's types.
        let schema = cfg!(debug_assertions).then_some(&self.schema);
        let request = Request::new(
            principal.clone(),
            action.clone(),
            resource.clone(),
            context,
            schema,
        )
        .map_err(|e| format!("request: {e}"))?;
        let mut all = self
            .actions
            .get(action.id().unescaped())
            .cloned()
            .ok_or_else(|| format!("the schema has no action {action}"))?;
        entities::caller(caller, principal, &mut all)?;
        all.push(entities::cluster(&self.cluster));
        if let Target::Namespace(name) = target {
            let facts = namespaces.namespace(name).unwrap_or_default();
            entities::namespace(name, &facts, &self.cluster, &mut all)?;
        }
        let entities = Entities::from_entities(dedup(all), None).map_err(|e| e.to_string())?;
        Ok((request, entities))
    }
}

/// Keeps the first of entities with the same uid (a tenant can be both the caller's and the
/// namespace's parent).
fn dedup(all: Vec<cedar_policy::Entity>) -> Vec<cedar_policy::Entity> {
    let mut seen = HashSet::new();
    all.into_iter().filter(|e| seen.insert(e.uid())).collect()
}

fn read_source(path: &Path) -> Result<(String, String), PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok((path.display().to_string(), text))
}

#[cfg(test)]
mod tests;

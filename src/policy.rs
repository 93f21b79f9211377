//! Decides every call with Cedar: builds the request's entities and context, evaluates the enforced
//! policy set, and returns the call itself as [`Permitted`] (with the policies that allowed it), or
//! a [`Denied`].
//!
//! # Guarantees
//! - Default deny: no policy loaded, or none that permits, means refusal.
//! - `forbid` wins over `permit` (Cedar's own semantics).
//! - Fail closed: if any policy fails to evaluate for a request, the request is refused, even if
//!   the rest would permit it (Cedar alone would skip the failing policy, which for a `forbid`
//!   would open the gate).
//! - The decision binds the exact call: [`PolicyEngine::authorize`] consumes the parsed call and
//!   returns it inside a [`Permitted`], which only this module can make. A tool runs only from a
//!   `Permitted`, with the arguments Cedar saw, and only its [`Permit`] builds an impersonating
//!   Kubernetes client ([`crate::kube::Kube::impersonate`]). A path that skips the decision does
//!   not compile.
//! - Revealing Secret values is a grant of its own kind ([`RevealSecrets`]), decided separately
//!   for `Action::"reveal-secrets"`, never implied by a tool's permit.
//! - Policies are validated in strict mode against the schema generated from the tool catalog;
//!   one that does not validate stops the load.
//!
//! # Entities
//! Ids are qualified by cluster (`Namespace::"<cluster>/<name>"`,
//! `Object::"<cluster>/<namespace>/<Kind>/<name>"`), as `../shared/DESIGN.md` §3 specifies, so that
//! one kubegate can front several clusters without two namespaces sharing an id.

mod entities;
pub mod schema;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityUid, Policy, PolicyId, PolicySet, Request,
    Schema, ValidationMode, Validator,
};
use serde_json::Value;

use crate::auth::Caller;

/// The non-destructive policy set, as shipped in `policies/non-destructive.cedar`.
pub const NON_DESTRUCTIVE_POLICIES: &str = include_str!("../policies/non-destructive.cedar");

/// The action that reveals Secret values, granted only on its own.
pub const REVEAL_SECRETS: &str = "reveal-secrets";

/// The Cedar entity types a call can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Cluster,
    Namespace,
    Object,
}

impl ResourceType {
    pub fn cedar_name(self) -> &'static str {
        match self {
            ResourceType::Cluster => "Cluster",
            ResourceType::Namespace => "Namespace",
            ResourceType::Object => "Object",
        }
    }
}

/// One Kubernetes object, as a Cedar `Object` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// The API group (`""` for the core group).
    pub api_group: String,
    pub kind: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub name: String,
}

/// The Cedar resource of one decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Cluster-scoped or all-namespace calls: `Cluster::"<cluster>"`.
    Cluster,
    /// Calls within one namespace: `Namespace::"<cluster>/<name>"`.
    Namespace(String),
    /// Calls on one object: `Object::"<cluster>/<namespace>/<Kind>/<name>"`.
    Object(ObjectRef),
}

impl Target {
    /// A namespace, or the cluster for a call across all namespaces.
    pub fn namespace_or_cluster(namespace: Option<&str>) -> Target {
        match namespace {
            Some(ns) => Target::Namespace(ns.to_owned()),
            None => Target::Cluster,
        }
    }
}

/// Which resources a call's decision covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One resource: the call is permitted on it or refused.
    One(Target),
    /// Several resources, each decided; all must be permitted (a manifest's objects).
    All(Vec<Target>),
    /// The call sees those of these resources that are permitted and is refused if none is
    /// (`list-namespaces`: the namespaces a caller may use).
    Visible(Vec<Target>),
}

impl Scope {
    /// Every namespace the cluster has, each decided: the call sees those permitted.
    pub fn every_namespace(namespaces: &dyn NamespaceDirectory) -> Scope {
        Scope::Visible(
            namespaces
                .names()
                .into_iter()
                .map(Target::Namespace)
                .collect(),
        )
    }
}

/// What a call must tell the policy engine about itself.
pub trait Decidable {
    /// The Cedar action (the tool's name, `read-resource`, `get-prompt`).
    fn action(&self) -> &'static str;
    /// The resources the decision covers; `namespaces` lists the cluster's namespaces.
    fn scope(&self, namespaces: &dyn NamespaceDirectory) -> Scope;
    /// The Cedar context's `arguments` record: typed and normalised.
    fn cedar_arguments(&self) -> Value;
}

/// What kubegate knows about a namespace, from its watch of namespaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceFacts {
    pub labels: BTreeMap<String, String>,
    /// The value of the tenant label, if the namespace carries it.
    pub tenant: Option<String>,
}

/// Where the policy engine looks namespaces up (kubegate's namespace cache); never the API server.
pub trait NamespaceDirectory: Sync {
    fn namespace(&self, name: &str) -> Option<NamespaceFacts>;
    /// The names of every namespace known, sorted.
    fn names(&self) -> Vec<String>;
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

/// One question put to the policy: this caller, this action, these arguments, over this
/// transport. Asked once, then decided for each resource the call touches.
pub struct Question {
    caller: Arc<Caller>,
    principal: EntityUid,
    action: &'static str,
    action_uid: EntityUid,
    context: Context,
}

impl fmt::Debug for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Question")
            .field("principal", &self.principal.to_string())
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

/// One resource a decision permitted, and the policies that permitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    pub target: Target,
    /// The Cedar uid, e.g. `Namespace::"local/team-a"`.
    pub resource: String,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
}

/// A further decision made while a permitted call ran (an item's namespace, an object of a
/// Helm release), kept for the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubDecision {
    pub resource: String,
    pub allowed: bool,
    pub policies: Vec<String>,
}

/// Proof that the policy permitted one action for one caller on the resources of its scope.
#[derive(Debug)]
pub struct Permit {
    question: Question,
    /// The permitted resources: the one target, every target of an `All` scope, or the
    /// visible ones of a `Visible` scope.
    allowed: Vec<Allowed>,
    /// Decisions made while the call ran, in order.
    later: Mutex<Vec<SubDecision>>,
}

impl Permit {
    /// The caller the permit was granted to: the identity kubegate impersonates.
    pub fn caller(&self) -> &Caller {
        &self.question.caller
    }
    pub fn caller_arc(&self) -> &Arc<Caller> {
        &self.question.caller
    }
    pub fn action(&self) -> &'static str {
        self.question.action
    }
    /// The first permitted resource's Cedar uid, e.g. `Namespace::"local/team-a"`.
    pub fn resource(&self) -> &str {
        self.allowed.first().map_or("", |a| a.resource.as_str())
    }
    /// Every permitted resource.
    pub fn allowed(&self) -> &[Allowed] {
        &self.allowed
    }
    /// The ids of the policies that permitted the call (each once).
    pub fn policies(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.allowed
            .iter()
            .flat_map(|a| a.policies.iter())
            .filter(|p| seen.insert(p.as_str()))
            .cloned()
            .collect()
    }
    /// Their `@reason` annotations (each once).
    pub fn reasons(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.allowed
            .iter()
            .flat_map(|a| a.reasons.iter())
            .filter(|r| seen.insert(r.as_str()))
            .cloned()
            .collect()
    }
    /// The namespaces among the permitted resources, in order.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().filter_map(|a| match &a.target {
            Target::Namespace(ns) => Some(ns.as_str()),
            _ => None,
        })
    }

    /// Whether `target` is one of the resources this permit was decided for.
    pub fn covers(&self, target: &Target) -> bool {
        self.allowed.iter().any(|a| &a.target == target)
    }

    /// Decides a further resource for the same caller, action and arguments (the namespace of
    /// an item of a cluster-wide list, an object found while running). Recorded for the audit.
    pub fn also(
        &self,
        engine: &PolicyEngine,
        target: &Target,
        namespaces: &dyn NamespaceDirectory,
    ) -> Result<Allowed, Denied> {
        let decision = engine.decide(&self.question, target, namespaces);
        let mut later = self.later.lock().unwrap_or_else(|e| e.into_inner());
        later.push(match &decision {
            Ok(allowed) => SubDecision {
                resource: allowed.resource.clone(),
                allowed: true,
                policies: allowed.policies.clone(),
            },
            Err(denied) => SubDecision {
                resource: denied.resource.clone(),
                allowed: false,
                policies: denied.policies().to_vec(),
            },
        });
        decision
    }

    /// The decisions made while the call ran.
    pub fn later(&self) -> Vec<SubDecision> {
        self.later.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A call the policy permitted, bound to its permit: only this call can run under it.
#[derive(Debug)]
pub struct Permitted<T> {
    call: T,
    permit: Permit,
}

impl<T> Permitted<T> {
    pub fn call(&self) -> &T {
        &self.call
    }
    pub fn permit(&self) -> &Permit {
        &self.permit
    }
}

/// The grant to see Secret values in one namespace (or cluster-wide), from its own decision of
/// `Action::"reveal-secrets"`. Only the policy engine makes one.
#[derive(Debug, Clone)]
pub struct RevealSecrets {
    allowed: Allowed,
}

impl RevealSecrets {
    pub fn allowed(&self) -> &Allowed {
        &self.allowed
    }

    /// What lets the output filter show Secret values: only a grant makes one.
    pub fn unmask(&self) -> Unmask {
        Unmask { _granted: () }
    }
}

/// Lets the output filter show the values of Secrets in one namespace instead of masking them.
/// Only a [`RevealSecrets`] grant makes one, so no code path can unmask without a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmask {
    _granted: (),
}

impl Unmask {
    /// An unmask without a decision, for the output filter's own unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Unmask {
        Unmask { _granted: () }
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
    cluster: entities::ClusterId,
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
            cluster: entities::ClusterId::new(cluster),
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

    /// The name of the cluster this engine decides for.
    pub fn cluster(&self) -> &str {
        self.cluster.name()
    }

    /// The Cedar uid of a target, e.g. `Namespace::"local/team-a"`.
    pub fn resource_uid(&self, target: &Target) -> String {
        self.cluster.uid(target).to_string()
    }

    /// Decides a call on every resource of its scope. On success the call comes back bound to
    /// its permit; it cannot be changed afterwards.
    pub fn authorize<T: Decidable>(
        &self,
        caller: &Arc<Caller>,
        call: T,
        request: &RequestFacts,
        namespaces: &dyn NamespaceDirectory,
    ) -> Result<Permitted<T>, Denied> {
        let action = call.action();
        let arguments = call.cedar_arguments();
        let question = self.ask(caller, action, Some(&arguments), request)?;
        let allowed = match call.scope(namespaces) {
            Scope::One(target) => vec![self.decide(&question, &target, namespaces)?],
            Scope::All(targets) => targets
                .iter()
                .map(|t| self.decide(&question, t, namespaces))
                .collect::<Result<Vec<_>, _>>()?,
            Scope::Visible(targets) => {
                let mut visible = Vec::new();
                let (mut policies, mut reasons) = (Vec::new(), Vec::new());
                for target in &targets {
                    match self.decide(&question, target, namespaces) {
                        Ok(allowed) => visible.push(allowed),
                        Err(denied) => {
                            merge(&mut policies, denied.policies());
                            merge(&mut reasons, denied.reasons());
                        }
                    }
                }
                if visible.is_empty() {
                    // Say which forbids refused, never which namespaces exist.
                    let cause = if policies.is_empty() {
                        Refusal::NotPermitted
                    } else {
                        Refusal::Forbidden { policies, reasons }
                    };
                    return Err(Denied {
                        principal: question.principal.to_string(),
                        action,
                        resource: format!("every Namespace of {}", self.cluster.uid_cluster()),
                        cause,
                    });
                }
                visible
            }
        };
        Ok(Permitted {
            call,
            permit: Permit {
                question,
                allowed,
                later: Mutex::new(Vec::new()),
            },
        })
    }

    /// Decides `Action::"reveal-secrets"` for the caller on one target.
    pub fn reveal_secrets(
        &self,
        caller: &Arc<Caller>,
        target: &Target,
        request: &RequestFacts,
        namespaces: &dyn NamespaceDirectory,
    ) -> Result<RevealSecrets, Denied> {
        let question = self.ask(caller, REVEAL_SECRETS, None, request)?;
        self.decide(&question, target, namespaces)
            .map(|allowed| RevealSecrets { allowed })
    }

    /// Builds the principal and context of a question, once for all the resources it is decided on.
    fn ask(
        &self,
        caller: &Arc<Caller>,
        action: &'static str,
        arguments: Option<&Value>,
        request: &RequestFacts,
    ) -> Result<Question, Denied> {
        let principal = entities::uid("User", &caller.username);
        let context = entities::context(arguments, request, &self.extension_values);
        match context {
            Ok(context) => Ok(Question {
                caller: Arc::clone(caller),
                principal,
                action,
                action_uid: entities::uid("Action", action),
                context,
            }),
            Err(error) => Err(Denied {
                principal: principal.to_string(),
                action,
                resource: self.cluster.uid_cluster().to_string(),
                cause: Refusal::Undecidable {
                    errors: vec![error],
                },
            }),
        }
    }

    /// Decides one question on one resource.
    fn decide(
        &self,
        question: &Question,
        target: &Target,
        namespaces: &dyn NamespaceDirectory,
    ) -> Result<Allowed, Denied> {
        let resource = self.cluster.uid(target);
        let denied = |cause| Denied {
            principal: question.principal.to_string(),
            action: question.action,
            resource: resource.to_string(),
            cause,
        };
        let (request, entities) = match self.request(question, &resource, target, namespaces) {
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
        // Cedar reports the deciding policies as a set; sorted by id, answers are stable.
        let mut deciding: Vec<&PolicyId> = response.diagnostics().reason().collect();
        deciding.sort_unstable_by_key(|id| id.to_string());
        let policies: Vec<String> = deciding.iter().map(|id| id.to_string()).collect();
        let reasons: Vec<String> = deciding
            .iter()
            .filter_map(|id| self.reasons.get(*id).cloned())
            .collect();
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        match (response.decision(), errors.is_empty()) {
            (Decision::Allow, true) => Ok(Allowed {
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

    fn request(
        &self,
        question: &Question,
        resource: &EntityUid,
        target: &Target,
        namespaces: &dyn NamespaceDirectory,
    ) -> Result<(Request, Entities), String> {
        // Validating each request against the schema costs more than the decision itself, so
        // only debug builds do it. Contexts come only from the tools' typed parsers, and every
        // catalog entry's arguments are validated against the schema by a unit test that runs
        // in release builds too; that is the guarantee that release builds evaluate requests of
        // the schema's types.
        let schema = cfg!(debug_assertions).then_some(&self.schema);
        let request = Request::new(
            question.principal.clone(),
            question.action_uid.clone(),
            resource.clone(),
            question.context.clone(),
            schema,
        )
        .map_err(|e| format!("request: {e}"))?;
        let mut all = self
            .actions
            .get(question.action)
            .cloned()
            .ok_or_else(|| format!("the schema has no action {}", question.action_uid))?;
        entities::caller(&question.caller, &question.principal, &mut all)?;
        all.push(self.cluster.entity());
        entities::target(&self.cluster, target, namespaces, &mut all)?;
        let entities = Entities::from_entities(dedup(all), None).map_err(|e| e.to_string())?;
        Ok((request, entities))
    }
}

/// Appends the strings of `more` not yet in `into`.
fn merge(into: &mut Vec<String>, more: &[String]) {
    for item in more {
        if !into.contains(item) {
            into.push(item.clone());
        }
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

//! Decides every call with Cedar: builds the request's entities and context, evaluates the
//! policies that can apply to the caller, and returns the call itself as [`Permitted`] (with the
//! policies that allowed it), or a [`Denied`]; records what a shadow set would have decided;
//! and works out what each caller's lists may show.
//!
//! # Guarantees
//! - Default deny: no policy loaded, or none that permits, means refusal.
//! - `forbid` wins over `permit` (Cedar's own semantics), and a forbid on a namespace holds for
//!   everything in it: a call on an object is decided on the object and, for its forbids, on
//!   its namespace; a call across namespaces sees only what each namespace's decision allows.
//! - Fail closed: if any policy fails to evaluate for a request, the request is refused, even if
//!   the rest would permit it (Cedar alone would skip the failing policy, which for a `forbid`
//!   would open the gate). So is a decision that needs namespace facts while they are stale.
//! - The decision binds the exact call: [`PolicyEngine::authorize`] consumes the parsed call and
//!   returns it inside a [`Permitted`], which only this module can make. A tool runs only from a
//!   `Permitted`, with the arguments Cedar saw, and only its [`Permit`] builds an impersonating
//!   Kubernetes client ([`crate::kube::Kube::impersonate`]). A path that skips the decision does
//!   not compile.
//! - Revealing Secret values is a grant of its own kind ([`RevealSecrets`]), decided separately
//!   for `Action::"reveal-secrets"` by the forbids and only the permits that name that action
//!   (a permit for every action does not grant it), never implied by a tool's permit.
//! - Policies are validated in strict mode against the schema generated from the tool catalog;
//!   one that does not validate stops the load, and a reload that does not validate leaves the
//!   last good set in force. Each call is decided against one set from start to end.
//!
//! # Entities
//! Ids are qualified by cluster (`Namespace::"<cluster>/<name>"`,
//! `Object::"<cluster>/<namespace>/<Kind>/<name>"`), as `../shared/DESIGN.md` §3 specifies, so that
//! one kubegate can front several clusters without two namespaces sharing an id.
//!
//! # Cost
//! A decision reads only the policies whose principal scope can include the caller
//! ([`slice`]), so it does not grow with the number of tenants.

pub mod cases;
mod decision;
mod entities;
pub mod listing;
pub mod load;
pub mod reload;
pub mod schema;
mod slice;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use cedar_policy::{
    Authorizer, Decision, Entities, EntityUid, PolicyId, PolicySet, Request, Schema,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use decision::{Loaded, Outcome, Question, Verdict, shadow_of};
use load::Corpus;

pub use decision::{
    Allowed, Denied, Permit, Permitted, Refusal, RevealSecrets, ShadowDecision, SubDecision, Unmask,
};
pub use listing::Listed;
pub use load::{PolicyError, Problem, Source, TenantLinks};

/// The non-destructive policy set, as shipped in `policies/non-destructive.cedar`.
pub const NON_DESTRUCTIVE_POLICIES: &str = include_str!("../policies/non-destructive.cedar");
/// The read-only policy set, as shipped in `policies/read-only.cedar`.
pub const READ_ONLY_POLICIES: &str = include_str!("../policies/read-only.cedar");

/// The action that reveals Secret values, granted only on its own.
pub const REVEAL_SECRETS: &str = "reveal-secrets";

/// The Cedar entity types a call can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// Why the namespace facts cannot be trusted now (the watch that feeds them has failed for
    /// too long), if so: then every decision that reads them refuses.
    fn stale(&self) -> Option<String> {
        None
    }
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

/// Where policies come from: files and directories of `.cedar` files, the built-in sets, the
/// links of templates per tenant, and a shadow set.
#[derive(Debug, Clone, Default)]
pub struct PolicySources {
    /// Policy files, or directories whose `.cedar` files are read in name order.
    pub paths: Vec<PathBuf>,
    /// Policies given as text (tests, `policy test` case files).
    pub inline: Vec<Source>,
    /// Add `policies/non-destructive.cedar` (`ALLOW_ONLY_NON_DESTRUCTIVE_TOOLS=true`).
    pub non_destructive: bool,
    /// Add `policies/read-only.cedar`.
    pub read_only: bool,
    /// Templates to link, one link per tenant.
    pub links: Vec<TenantLinks>,
    pub shadow: Option<ShadowSources>,
}

/// A policy set evaluated on every call and recorded, never enforced.
#[derive(Debug, Clone, Default)]
pub struct ShadowSources {
    pub paths: Vec<PathBuf>,
    pub inline: Vec<Source>,
    /// Whether the shadow set is the enforced set plus these policies (to trial an addition),
    /// or these policies alone (to trial a replacement).
    pub with_enforced: bool,
}

impl PolicySources {
    /// Policies given as `(name, text)` pairs and nothing else.
    pub fn inline(sources: &[(String, String)]) -> PolicySources {
        PolicySources {
            inline: sources
                .iter()
                .map(|(name, text)| Source {
                    name: name.clone(),
                    text: text.clone(),
                })
                .collect(),
            ..PolicySources::default()
        }
    }

    /// Every file and directory to watch for changes.
    pub fn watched(&self) -> Vec<PathBuf> {
        let mut paths = self.paths.clone();
        if let Some(shadow) = &self.shadow {
            paths.extend(shadow.paths.iter().cloned());
        }
        paths
    }

    /// Reads the enforced sources.
    fn read_enforced(&self) -> Result<Vec<Source>, PolicyError> {
        let mut enforced = load::read_sources(&self.paths)?;
        enforced.extend(self.inline.iter().cloned());
        let builtin = |name: &str, text: &str| Source {
            name: name.to_owned(),
            text: text.to_owned(),
        };
        if self.non_destructive {
            enforced.push(builtin(
                "policies/non-destructive.cedar",
                NON_DESTRUCTIVE_POLICIES,
            ));
        }
        if self.read_only {
            enforced.push(builtin("policies/read-only.cedar", READ_ONLY_POLICIES));
        }
        Ok(enforced)
    }

    /// Reads the shadow set's sources, if one is configured (with the enforced ones first, if it
    /// adds to them).
    fn read_shadow(&self, enforced: &[Source]) -> Result<Option<Vec<Source>>, PolicyError> {
        let Some(shadow) = &self.shadow else {
            return Ok(None);
        };
        let mut sources = if shadow.with_enforced {
            enforced.to_vec()
        } else {
            Vec::new()
        };
        sources.extend(load::read_sources(&shadow.paths)?);
        sources.extend(shadow.inline.iter().cloned());
        Ok(Some(sources))
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The sources had not changed.
    Unchanged,
    /// A new set is in force.
    Replaced { version: String, policies: usize },
}

/// The policy engine of one cluster: the parts every cluster's engine shares (the schema, the
/// set in force, replaced whole on reload, and what a decision needs besides) and the cluster
/// it decides for. [`PolicyEngine::for_cluster`] makes the engine of another cluster over the
/// same policies: one reload puts a new set in force for every cluster at once.
pub struct PolicyEngine {
    shared: Arc<Shared>,
    cluster: entities::ClusterId,
}

/// What the engines of every cluster share.
struct Shared {
    schema: Schema,
    authorizer: Authorizer,
    /// Per action: its entity and its groups' (from the schema), all a request needs of them.
    actions: HashMap<String, Vec<cedar_policy::Entity>>,
    /// Per action: the uids of its groups.
    action_groups: HashMap<String, Vec<EntityUid>>,
    extension_values: entities::ExtensionValues,
    sources: PolicySources,
    current: RwLock<Arc<Loaded>>,
    /// Reloads one at a time (a file watch and SIGHUP may fire together).
    reloading: Mutex<()>,
    /// Whether kubegate fronts several clusters: then listings leave the cluster unknown, so
    /// that a caller's lists show what some call of theirs could be permitted in any of them.
    several_clusters: AtomicBool,
}

impl PolicyEngine {
    /// Loads policies from their sources for the named cluster.
    pub fn load(sources: PolicySources, cluster: &str) -> Result<PolicyEngine, PolicyError> {
        let schema = schema::schema().map_err(PolicyError::Schema)?;
        let loaded = build(&sources, &schema, None)?;
        let all_actions = schema
            .action_entities()
            .map_err(|e| PolicyError::Schema(e.to_string()))?;
        let by_uid: HashMap<EntityUid, cedar_policy::Entity> =
            all_actions.iter().map(|e| (e.uid(), e.clone())).collect();
        let actions: HashMap<String, Vec<cedar_policy::Entity>> = by_uid
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
        let action_groups = actions
            .iter()
            .map(|(name, chain)| (name.clone(), chain[1..].iter().map(|e| e.uid()).collect()))
            .collect();
        Ok(PolicyEngine {
            shared: Arc::new(Shared {
                schema,
                authorizer: Authorizer::new(),
                action_groups,
                actions,
                extension_values: entities::ExtensionValues::default(),
                sources,
                current: RwLock::new(Arc::new(loaded)),
                reloading: Mutex::new(()),
                several_clusters: AtomicBool::new(false),
            }),
            cluster: entities::ClusterId::new(cluster),
        })
    }

    /// The engine of another cluster kubegate fronts, over the same policies (and the same
    /// reloads). From then on, listings cover every cluster.
    pub fn for_cluster(&self, cluster: &str) -> PolicyEngine {
        self.shared.several_clusters.store(true, Ordering::Relaxed);
        PolicyEngine {
            shared: Arc::clone(&self.shared),
            cluster: entities::ClusterId::new(cluster),
        }
    }

    /// Builds an engine from `(name, policy text)` pairs. Policy ids are their `@id` annotations,
    /// or `<name>#<n>` for policies without one.
    pub fn from_sources(
        sources: &[(String, String)],
        cluster: &str,
    ) -> Result<PolicyEngine, PolicyError> {
        PolicyEngine::load(PolicySources::inline(sources), cluster)
    }

    /// Reads the sources again and, if they changed and validate, puts the new set in force.
    /// On any error the set in force stays; calls already deciding finish on the set they began
    /// with.
    pub fn reload(&self) -> Result<Reloaded, PolicyError> {
        let _one_at_a_time = self
            .shared
            .reloading
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let loaded = build(
            &self.shared.sources,
            &self.shared.schema,
            self.current().shadow.clone(),
        )?;
        if loaded.version == self.current().version {
            return Ok(Reloaded::Unchanged);
        }
        let version = loaded.version.clone();
        let policies = loaded.enforced.len();
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        Ok(Reloaded::Replaced { version, policies })
    }

    fn current(&self) -> Arc<Loaded> {
        Arc::clone(
            &self
                .shared
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Where the policies come from.
    pub fn sources(&self) -> &PolicySources {
        &self.shared.sources
    }

    /// How many policies (static ones and template links) are enforced.
    pub fn len(&self) -> usize {
        self.current().enforced.len()
    }

    /// Whether no policy is enforced (then nothing is permitted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The version (a short hash of the sources) of the set in force.
    pub fn version(&self) -> String {
        self.current().version.clone()
    }

    /// Whether a shadow set is loaded.
    pub fn has_shadow(&self) -> bool {
        self.current().shadow.is_some()
    }

    /// What policy authors should know about the set in force that is not an error (a permit
    /// for every action, which does not grant `reveal-secrets`).
    pub fn notes(&self) -> Vec<String> {
        self.current().enforced.notes.clone()
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
        let version = question.loaded.version.clone();
        let (allowed, shadow) = match call.scope(namespaces) {
            Scope::One(target) => {
                let (decision, shadow) = self.decide(&question, &target, namespaces);
                let shadow = shadow.map(|v| shadow_of(&[(self.resource_uid(&target), v)], false));
                (
                    decision.map(|a| vec![a]).map_err(|d| (d, shadow.clone())),
                    shadow,
                )
            }
            Scope::All(targets) => {
                let mut allowed = Vec::new();
                let mut first_denied = None;
                let mut verdicts = Vec::new();
                for target in &targets {
                    let (decision, shadow) = self.decide(&question, target, namespaces);
                    match decision {
                        Ok(a) => allowed.push(a),
                        Err(denied) => {
                            first_denied.get_or_insert(denied);
                        }
                    }
                    verdicts.extend(shadow.map(|v| (self.resource_uid(target), v)));
                }
                let shadow = question
                    .slices
                    .shadow
                    .as_ref()
                    .map(|_| shadow_of(&verdicts, false));
                match first_denied {
                    Some(denied) => (Err((denied, shadow.clone())), shadow),
                    None => (Ok(allowed), shadow),
                }
            }
            Scope::Visible(targets) => {
                let mut visible = Vec::new();
                let (mut policies, mut reasons, mut errors) = (Vec::new(), Vec::new(), Vec::new());
                let mut verdicts = Vec::new();
                for target in &targets {
                    let (decision, shadow) = self.decide(&question, target, namespaces);
                    match decision {
                        Ok(allowed) => visible.push(allowed),
                        Err(denied) => {
                            merge(&mut policies, denied.policies());
                            merge(&mut reasons, denied.reasons());
                            merge(&mut errors, denied.errors());
                        }
                    }
                    verdicts.extend(shadow.map(|v| (self.resource_uid(target), v)));
                }
                let shadow = question
                    .slices
                    .shadow
                    .as_ref()
                    .map(|_| shadow_of(&verdicts, true));
                if visible.is_empty() {
                    // Say which forbids refused, never which namespaces exist.
                    let cause = if !errors.is_empty() {
                        Refusal::Undecidable { errors }
                    } else if policies.is_empty() {
                        Refusal::NotPermitted
                    } else {
                        Refusal::Forbidden { policies, reasons }
                    };
                    let denied = Denied {
                        principal: question.principal.to_string(),
                        action,
                        resource: format!("every Namespace of {}", self.cluster.uid_cluster()),
                        cause,
                        shadow: None,
                        policy_version: version.clone(),
                    };
                    (Err((denied, shadow.clone())), shadow)
                } else {
                    (Ok(visible), shadow)
                }
            }
        };
        match allowed {
            Ok(allowed) => Ok(Permitted {
                call,
                permit: Permit {
                    question,
                    allowed,
                    shadow,
                    later: Mutex::new(Vec::new()),
                },
            }),
            Err((mut denied, shadow)) => {
                denied.shadow = shadow;
                Err(denied)
            }
        }
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
            .0
            .map(|allowed| RevealSecrets { allowed })
    }

    /// Decides `Action::"reveal-secrets"` for a permitted call's caller on one target, against
    /// the policy set that permitted the call (a reload mid-call changes nothing of it). Also
    /// says what the shadow set would have decided, if one is loaded.
    pub fn reveal_secrets_for(
        &self,
        permit: &Permit,
        target: &Target,
        request: &RequestFacts,
        namespaces: &dyn NamespaceDirectory,
    ) -> (Result<RevealSecrets, Denied>, Option<bool>) {
        let asked = &permit.question;
        let question = match entities::context(None, request, &self.shared.extension_values) {
            Ok(context) => Question {
                caller: Arc::clone(&asked.caller),
                principal: asked.principal.clone(),
                action: REVEAL_SECRETS,
                action_uid: entities::uid("Action", REVEAL_SECRETS),
                context,
                loaded: Arc::clone(&asked.loaded),
                slices: Arc::clone(&asked.slices),
            },
            Err(error) => {
                let denied = Denied {
                    principal: asked.principal.to_string(),
                    action: REVEAL_SECRETS,
                    resource: self.resource_uid(target),
                    cause: Refusal::Undecidable {
                        errors: vec![error],
                    },
                    shadow: None,
                    policy_version: asked.loaded.version.clone(),
                };
                return (Err(denied), None);
            }
        };
        let (decision, shadow) = self.decide(&question, target, namespaces);
        (
            decision.map(|allowed| RevealSecrets { allowed }),
            shadow.map(|v| v.allowed()),
        )
    }

    /// What this caller could ever be permitted, per action and resource type, worked out once
    /// per caller and policy set (see [`listing`]).
    pub fn listed(&self, caller: &Arc<Caller>) -> Arc<Listed> {
        let loaded = self.current();
        self.listed_in(&loaded, caller)
    }

    fn listed_in(&self, loaded: &Loaded, caller: &Arc<Caller>) -> Arc<Listed> {
        let slices = match loaded
            .slices
            .get(caller, &loaded.enforced, loaded.shadow.as_deref())
        {
            Ok(slices) => slices,
            // Nothing is listed; every decision of the caller refuses with the reason.
            Err(error) => {
                tracing::error!(%error, "cannot cut the caller's policies");
                return Arc::new(Listed::default());
            }
        };
        let listed = slices.listed.get_or_init(|| {
            let principal = entities::uid("User", &caller.username);
            let entities = self.caller_entities(caller, &principal);
            let actions = schema::decided_actions();
            listing::list(
                &slices.enforced,
                listing::Subject {
                    schema: &self.shared.schema,
                    principal: &principal,
                    entities,
                    cluster: self.listing_cluster(),
                },
                &actions,
            )
        });
        Arc::new(listed.clone())
    }

    /// Whether some call of `action` on a resource of type `ty` could be permitted to this caller
    /// with exactly these arguments and request facts (for list entries that fix the arguments,
    /// as `resources/list`'s do).
    pub fn could_permit(
        &self,
        caller: &Arc<Caller>,
        action: &'static str,
        ty: ResourceType,
        arguments: &Value,
        request: &RequestFacts,
    ) -> bool {
        let Ok(context) =
            entities::context(Some(arguments), request, &self.shared.extension_values)
        else {
            return false;
        };
        let loaded = self.current();
        let Ok(slices) = loaded
            .slices
            .get(caller, &loaded.enforced, loaded.shadow.as_deref())
        else {
            return false;
        };
        let principal = entities::uid("User", &caller.username);
        let entities = self.caller_entities(caller, &principal);
        listing::possible_with(
            &slices.enforced,
            listing::Subject {
                schema: &self.shared.schema,
                principal: &principal,
                entities,
                cluster: self.listing_cluster(),
            },
            action,
            ty,
            context,
        )
    }

    /// The cluster a listing knows: none when kubegate fronts several.
    fn listing_cluster(&self) -> Option<&entities::ClusterId> {
        (!self.shared.several_clusters.load(Ordering::Relaxed)).then_some(&self.cluster)
    }

    /// The caller's `User`, `Group`s and `Tenant`, and the cluster: what a listing knows.
    fn caller_entities(&self, caller: &Caller, principal: &EntityUid) -> Entities {
        let mut all = Vec::new();
        if let Err(error) = entities::caller(caller, principal, &mut all) {
            tracing::warn!(%error, "cannot build the caller's entities for a listing");
        }
        all.push(self.cluster.entity());
        Entities::from_entities(all, None).unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot build the caller's entities for a listing");
            Entities::empty()
        })
    }

    /// Refuses, as a decision would, a call of an action no call of this caller can be permitted
    /// (one their lists do not show), before anything of the call is read.
    pub fn refuse_unlisted(
        &self,
        caller: &Arc<Caller>,
        action: &'static str,
    ) -> Result<(), Denied> {
        let loaded = self.current();
        // With a shadow set, every call is decided in full, so that the shadow's verdict on it
        // is recorded too (the enforced decision refuses it all the same).
        if loaded.shadow.is_some() {
            return Ok(());
        }
        let listed = self.listed_in(&loaded, caller);
        if listed.possible(action) {
            return Ok(());
        }
        let forbids = listed.forbids(action);
        let reasons = forbids
            .iter()
            .filter_map(|id| loaded.enforced.reasons.get(&PolicyId::new(id)).cloned())
            .collect();
        Err(Denied {
            principal: entities::uid("User", &caller.username).to_string(),
            action,
            resource: format!("any resource of {}", self.cluster.uid_cluster()),
            cause: if forbids.is_empty() {
                Refusal::NotPermitted
            } else {
                Refusal::Forbidden {
                    policies: forbids,
                    reasons,
                }
            },
            shadow: None,
            policy_version: loaded.version.clone(),
        })
    }

    /// Builds the principal and context of a question, once for all the resources it is decided
    /// on, against the set in force now.
    fn ask(
        &self,
        caller: &Arc<Caller>,
        action: &'static str,
        arguments: Option<&Value>,
        request: &RequestFacts,
    ) -> Result<Question, Denied> {
        let loaded = self.current();
        let principal = entities::uid("User", &caller.username);
        let undecidable = |error: String| Denied {
            principal: principal.to_string(),
            action,
            resource: self.cluster.uid_cluster().to_string(),
            cause: Refusal::Undecidable {
                errors: vec![error],
            },
            shadow: None,
            policy_version: loaded.version.clone(),
        };
        let slices = loaded
            .slices
            .get(caller, &loaded.enforced, loaded.shadow.as_deref())
            .map_err(undecidable)?;
        match entities::context(arguments, request, &self.shared.extension_values) {
            Ok(context) => Ok(Question {
                slices,
                caller: Arc::clone(caller),
                principal,
                action,
                action_uid: entities::uid("Action", action),
                context,
                loaded: Arc::clone(&loaded),
            }),
            Err(error) => Err(undecidable(error)),
        }
    }

    /// Decides one question on one resource: the enforced decision, and the shadow set's
    /// verdict if one is loaded. A call on an object is refused if its namespace's decision
    /// forbids the call (or cannot be made), whatever the object's own decision.
    fn decide(
        &self,
        question: &Question,
        target: &Target,
        namespaces: &dyn NamespaceDirectory,
    ) -> (Result<Allowed, Denied>, Option<Verdict>) {
        let resource = self.cluster.uid(target);
        let reveal = question.action == REVEAL_SECRETS;
        let enforced_set = if reveal {
            &question.slices.reveal
        } else {
            &question.slices.enforced
        };
        let shadow_set = question
            .slices
            .shadow
            .as_ref()
            .map(|(calls, reveals)| if reveal { reveals } else { calls });
        let shadow_reasons = question.loaded.shadow.as_deref().map(|c| &c.reasons);
        let (enforced, shadow) = match self.entities(question, target, namespaces) {
            Err(error) => (
                Verdict::undecidable(error.clone()),
                shadow_set.map(|_| Verdict::undecidable(error)),
            ),
            Ok(entities) => {
                let on = |resource: &EntityUid| -> (Verdict, Option<Verdict>) {
                    match self.request(question, resource) {
                        Err(error) => (
                            Verdict::undecidable(error.clone()),
                            shadow_set.map(|_| Verdict::undecidable(error)),
                        ),
                        Ok(request) => (
                            self.evaluate(
                                enforced_set,
                                &request,
                                &entities,
                                &question.loaded.enforced.reasons,
                            ),
                            shadow_set.zip(shadow_reasons).map(|(set, reasons)| {
                                self.evaluate(set, &request, &entities, reasons)
                            }),
                        ),
                    }
                };
                let (mut enforced, mut shadow) = on(&resource);
                if let Target::Object(ObjectRef {
                    namespace: Some(ns),
                    ..
                }) = target
                {
                    let in_ns = self.cluster.uid(&Target::Namespace(ns.clone()));
                    // Only the forbids matter here, and only if one could apply at all.
                    if question
                        .slices
                        .namespace_forbids(question.action, self.groups_of(question.action))
                    {
                        let verdict = match self.request(question, &in_ns) {
                            Ok(request) => self.evaluate(
                                &question.slices.forbids,
                                &request,
                                &entities,
                                &question.loaded.enforced.reasons,
                            ),
                            Err(error) => Verdict::undecidable(error),
                        };
                        enforced = enforced.within(verdict);
                    }
                    if let Some((set, reasons)) = shadow_set.zip(shadow_reasons) {
                        let verdict = match self.request(question, &in_ns) {
                            Ok(request) => self.evaluate(set, &request, &entities, reasons),
                            Err(error) => Verdict::undecidable(error),
                        };
                        shadow = shadow.map(|v| v.within(verdict));
                    }
                }
                (enforced, shadow)
            }
        };
        let decision = match enforced.refusal() {
            None => Ok(Allowed {
                target: target.clone(),
                resource: resource.to_string(),
                policies: enforced.policies,
                reasons: enforced.reasons,
            }),
            Some(cause) => Err(Denied {
                principal: question.principal.to_string(),
                action: question.action,
                resource: resource.to_string(),
                cause,
                shadow: None,
                policy_version: question.loaded.version.clone(),
            }),
        };
        (decision, shadow)
    }

    /// Evaluates one request against one set. Any evaluation error refuses.
    fn evaluate(
        &self,
        set: &PolicySet,
        request: &Request,
        entities: &Entities,
        reasons: &HashMap<PolicyId, String>,
    ) -> Verdict {
        let response = self.shared.authorizer.is_authorized(request, set, entities);
        // Cedar reports the deciding policies as a set; sorted by id, answers are stable.
        let mut deciding: Vec<&PolicyId> = response.diagnostics().reason().collect();
        deciding.sort_unstable_by_key(|id| id.to_string());
        let policies: Vec<String> = deciding.iter().map(|id| id.to_string()).collect();
        let reasons: Vec<String> = deciding
            .iter()
            .filter_map(|id| reasons.get(*id).cloned())
            .collect();
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        let outcome = match (response.decision(), errors.is_empty()) {
            (_, false) => Outcome::Undecidable,
            (Decision::Allow, true) => Outcome::Allow,
            (Decision::Deny, true) if policies.is_empty() => Outcome::NotPermitted,
            (Decision::Deny, true) => Outcome::Forbidden,
        };
        Verdict {
            outcome,
            policies,
            reasons,
            errors,
        }
    }

    fn request(&self, question: &Question, resource: &EntityUid) -> Result<Request, String> {
        // Validating each request against the schema costs more than the decision itself, so
        // only debug builds do it. Contexts come only from the tools' typed parsers, and every
        // catalog entry's arguments are validated against the schema by a unit test that runs
        // in release builds too; that is the guarantee that release builds evaluate requests of
        // the schema's types.
        let schema = cfg!(debug_assertions).then_some(&self.shared.schema);
        Request::new(
            question.principal.clone(),
            question.action_uid.clone(),
            resource.clone(),
            question.context.clone(),
            schema,
        )
        .map_err(|e| format!("request: {e}"))
    }

    /// The entities of a decision on `target` (an object's include its namespace's).
    fn entities(
        &self,
        question: &Question,
        target: &Target,
        namespaces: &dyn NamespaceDirectory,
    ) -> Result<Entities, String> {
        let mut all = self
            .shared
            .actions
            .get(question.action)
            .cloned()
            .ok_or_else(|| format!("the schema has no action {}", question.action_uid))?;
        let caller = question.slices.caller.get_or_init(|| {
            let mut made = Vec::new();
            entities::caller(&question.caller, &question.principal, &mut made).map(|()| made)
        });
        all.extend(caller.clone()?);
        all.push(self.cluster.entity());
        entities::target(&self.cluster, target, namespaces, &mut all)?;
        // A tenant may come twice (the caller's and the namespace's): identical entities, which
        // Cedar takes as one.
        Entities::from_entities(all, None).map_err(|e| e.to_string())
    }

    /// The groups (`Action::"read"`, ...) an action is in.
    fn groups_of(&self, action: &str) -> &[EntityUid] {
        self.shared
            .action_groups
            .get(action)
            .map_or(&[], Vec::as_slice)
    }
}

/// Reads, links and validates every source into a set ready to decide.
/// Reads, links and validates every source into a set ready to decide. The shadow set is built
/// apart: if it does not read or validate, the enforced set still loads, with `previous` (the
/// shadow set in force until now, if any) kept beside it and the problem logged.
fn build(
    sources: &PolicySources,
    schema: &Schema,
    previous: Option<Arc<Corpus>>,
) -> Result<Loaded, PolicyError> {
    let enforced_sources = sources.read_enforced()?;
    // A directory read while it changes (an editor's write, a ConfigMap's swap) could give a
    // mix that still validates: read again and insist on the same sources.
    if sources.read_enforced()? != enforced_sources {
        return Err(PolicyError::Changing);
    }
    let shadow_sources = match sources.read_shadow(&enforced_sources) {
        Ok(shadow) => shadow,
        Err(error) => {
            tracing::error!("the shadow policy set does not read, keeping the last one: {error}");
            None
        }
    };
    let version = version_of(&enforced_sources, shadow_sources.as_deref(), &sources.links);
    let enforced = Corpus::build(&enforced_sources, &sources.links, false, schema)?;
    let shadow = match shadow_sources {
        Some(shadow) => match Corpus::build(&shadow, &sources.links, true, schema) {
            Ok(corpus) => Some(Arc::new(corpus)),
            Err(error) => {
                tracing::error!(
                    "the shadow policy set does not validate, keeping the last one: {error}"
                );
                previous
            }
        },
        None if sources.shadow.is_some() => previous,
        None => None,
    };
    Ok(Loaded {
        enforced,
        shadow,
        slices: Default::default(),
        version,
    })
}

/// A short hash of everything a set is built from.
fn version_of(enforced: &[Source], shadow: Option<&[Source]>, links: &[TenantLinks]) -> String {
    let mut hash = Sha256::new();
    let add = |hash: &mut Sha256, sources: &[Source]| {
        for source in sources {
            hash.update(source.name.as_bytes());
            hash.update([0]);
            hash.update(source.text.as_bytes());
            hash.update([0]);
        }
    };
    add(&mut hash, enforced);
    if let Some(shadow) = shadow {
        hash.update(b"shadow\0");
        add(&mut hash, shadow);
    }
    for link in links {
        hash.update(link.template.as_bytes());
        for tenant in &link.tenants {
            hash.update([0]);
            hash.update(tenant.as_bytes());
        }
        hash.update([1]);
    }
    let digest = hash.finalize();
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends the strings of `more` not yet in `into`.
fn merge(into: &mut Vec<String>, more: &[String]) {
    for item in more {
        if !into.contains(item) {
            into.push(item.clone());
        }
    }
}

#[cfg(test)]
mod tests;

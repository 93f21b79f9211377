//! Decides hypothetical calls the way live calls are decided, for the people who write policies:
//! `kubegate policy test` runs case files (YAML or JSON: the policies, the namespaces as
//! kubegate's watch would see them, and cases each naming a caller, a call and the decision it
//! must get), and `kubegate policy explain` decides one call and says why.
//!
//! A call is parsed by the same code as a live one (tool arguments by the tool's own argument
//! struct, against the built-in kinds when no cluster is at hand), refused if the caller's lists
//! would not show it, and decided by [`PolicyEngine::authorize`].
//!
//! ```yaml
//! policies: [../tenant-isolation.cedar, ../platform-admins.cedar]   # relative to this file
//! namespaces:
//!   team-a: {kubegate.io/tenant: team-a}
//! cases:
//!   - name: alice reads pods in her tenant's namespace
//!     as: {user: alice, groups: [team-a-devs], tenant: team-a}
//!     tool: list-resources
//!     arguments: {resourceType: pods, namespace: team-a}
//!     expect: allow
//!     policies: [tenant-read-own-namespaces]
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    Denied, NamespaceDirectory, NamespaceFacts, Permit, PolicyEngine, PolicyError, PolicySources,
    RequestFacts, Target, TenantLinks,
};
use crate::auth::Caller;
use crate::config::DEFAULT_TENANT_LABEL;
use crate::kube::ApiCatalog;
use crate::tool::prompts::Prompt;
use crate::tool::resources::ResourceRead;
use crate::tool::{self, ToolCall};

/// Why a case file could not be run.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid case file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("the policies of {path} do not load")]
    Policies {
        path: PathBuf,
        #[source]
        source: PolicyError,
    },
}

/// A case file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// Policy files or directories, relative to the case file.
    pub policies: Vec<PathBuf>,
    #[serde(default)]
    pub links: Vec<TenantLinks>,
    #[serde(default)]
    pub non_destructive: bool,
    #[serde(default)]
    pub read_only: bool,
    /// The Cedar `Cluster` id.
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// The namespace label naming a namespace's tenant.
    #[serde(default = "default_tenant_label")]
    pub tenant_label: String,
    /// The namespaces, each with its labels.
    #[serde(default)]
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub cases: Vec<Case>,
}

fn default_cluster() -> String {
    "local".to_owned()
}
fn default_tenant_label() -> String {
    DEFAULT_TENANT_LABEL.to_owned()
}

/// One case: a caller, a call, and the decision it must get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(rename = "as")]
    pub principal: Principal,
    /// Exactly one of `tool`, `resource`, `prompt` and `reveal` names the call.
    #[serde(default)]
    pub tool: Option<String>,
    /// A resource URI to read.
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    /// `reveal-secrets` in this namespace, or in `cluster`.
    #[serde(default)]
    pub reveal: Option<String>,
    /// The cluster the call goes to (the Cedar `Cluster` id), if not the file's; its
    /// namespaces are the file's.
    #[serde(default)]
    pub cluster: Option<String>,
    /// The tool's or the prompt's arguments.
    #[serde(default)]
    pub arguments: Map<String, Value>,
    #[serde(default)]
    pub request: RequestCase,
    pub expect: Expect,
    /// The deciding policies' ids, if the case checks them (the permits of an allowed call, the
    /// forbids of a forbidden one; none for a call no policy permits).
    #[serde(default)]
    pub policies: Option<Vec<String>>,
    /// For calls that see what they may of every namespace (`list-namespaces`, `cleanup`
    /// without a namespace, and lists across namespaces, whose items are kept by their
    /// namespace's decision): the namespaces they may.
    #[serde(default)]
    pub visible: Option<Vec<String>>,
}

/// The caller, as their token would make them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub email: Option<String>,
    /// Every other claim (the `User`'s tags).
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
}

impl Principal {
    pub fn caller(&self) -> Arc<Caller> {
        Arc::new(Caller {
            username: self.user.clone(),
            groups: self.groups.clone(),
            tenant: self.tenant.clone(),
            email: self.email.clone(),
            claims: self.claims.clone(),
            ..Default::default()
        })
    }
}

impl Case {
    /// The call this case names.
    pub fn call(&self) -> Result<Call, String> {
        match (&self.tool, &self.resource, &self.prompt, &self.reveal) {
            (Some(tool), None, None, None) => Ok(Call::Tool {
                tool: tool.clone(),
                arguments: self.arguments.clone(),
            }),
            (None, Some(uri), None, None) => Ok(Call::Resource {
                resource: uri.clone(),
            }),
            (None, None, Some(prompt), None) => Ok(Call::Prompt {
                prompt: prompt.clone(),
                arguments: self.arguments.clone(),
            }),
            (None, None, None, Some(reveal)) => Ok(Call::Reveal {
                reveal: reveal.clone(),
            }),
            _ => {
                Err("a case names exactly one of `tool`, `resource`, `prompt` and `reveal`".into())
            }
        }
    }
}

/// A hypothetical call: a tool with arguments, a resource read, a prompt, or `reveal-secrets`
/// in a namespace (or `cluster`).
#[derive(Debug, Clone)]
pub enum Call {
    Tool {
        tool: String,
        arguments: Map<String, Value>,
    },
    Resource {
        resource: String,
    },
    Prompt {
        prompt: String,
        arguments: Map<String, Value>,
    },
    Reveal {
        reveal: String,
    },
}

/// The request facts of a case (`context.request`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestCase {
    #[serde(default = "default_transport")]
    pub transport: String,
    #[serde(default = "default_ip")]
    pub source_ip: IpAddr,
    #[serde(default = "default_version")]
    pub protocol_version: String,
    /// RFC 3339; now if not given.
    #[serde(default)]
    pub time: Option<jiff::Timestamp>,
}

impl Default for RequestCase {
    fn default() -> Self {
        RequestCase {
            transport: default_transport(),
            source_ip: default_ip(),
            protocol_version: default_version(),
            time: None,
        }
    }
}

fn default_transport() -> String {
    "streamable-http".to_owned()
}
fn default_ip() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}
fn default_version() -> String {
    crate::mcp::PROTOCOL_VERSIONS[0].to_owned()
}

impl RequestCase {
    pub fn facts(&self) -> RequestFacts {
        let transport = match self.transport.as_str() {
            "stdio" => "stdio",
            "sse" => "sse",
            _ => "streamable-http",
        };
        RequestFacts {
            transport,
            source_ip: self.source_ip,
            protocol_version: self.protocol_version.clone(),
            session_id: None,
            time: self.time.unwrap_or_else(jiff::Timestamp::now),
        }
    }
}

/// What a case expects: the call permitted, refused, or not even a valid call (its arguments
/// do not parse): a case that meant to test a decision fails if its call is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Deny,
    Invalid,
}

/// Namespaces given by hand: what a case file says, or what explain was told.
#[derive(Debug, Clone, Default)]
pub struct StaticNamespaces {
    namespaces: BTreeMap<String, NamespaceFacts>,
}

impl StaticNamespaces {
    pub fn new(
        labelled: &BTreeMap<String, BTreeMap<String, String>>,
        tenant_label: &str,
    ) -> StaticNamespaces {
        StaticNamespaces {
            namespaces: labelled
                .iter()
                .map(|(name, labels)| {
                    let facts = NamespaceFacts {
                        labels: labels.clone(),
                        tenant: labels.get(tenant_label).cloned(),
                    };
                    (name.clone(), facts)
                })
                .collect(),
        }
    }
}

impl NamespaceDirectory for StaticNamespaces {
    fn namespace(&self, name: &str) -> Option<NamespaceFacts> {
        self.namespaces.get(name).cloned()
    }
    fn names(&self) -> Vec<String> {
        self.namespaces.keys().cloned().collect()
    }
}

/// How one hypothetical call was decided.
#[derive(Debug, Clone)]
pub struct Decided {
    pub allowed: bool,
    /// The deciding policies (permits if allowed, forbids if forbidden).
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    /// Each permitted resource's uid and the policies that permitted it.
    pub resources: Vec<(String, Vec<String>)>,
    /// The namespaces among the permitted resources (for a call permitted on the cluster, with
    /// `across` asked: the namespaces whose items it would show).
    pub namespaces: Vec<String>,
    /// Whether the call did not parse (then nothing was decided).
    pub invalid: bool,
    /// What the shadow set would have decided, if one is loaded.
    pub shadow: Option<super::ShadowDecision>,
    /// The refusal or parse error, said as kubegate would say it to the caller.
    pub message: String,
}

impl Decided {
    fn permitted(permit: &Permit) -> Decided {
        Decided {
            allowed: true,
            policies: permit.policies(),
            reasons: permit.reasons(),
            resources: permit
                .allowed()
                .iter()
                .map(|a| (a.resource.clone(), a.policies.clone()))
                .collect(),
            namespaces: permit.namespaces().map(str::to_owned).collect(),
            invalid: false,
            shadow: permit.shadow().cloned(),
            message: format!("permitted on {}", permit.resource()),
        }
    }

    /// As [`Decided::permitted`]; for a call permitted on the cluster, with each namespace
    /// decided as the call's items in it would be (`across`).
    fn permitted_across(
        permit: &Permit,
        engine: &PolicyEngine,
        namespaces: &dyn NamespaceDirectory,
        across: bool,
    ) -> Decided {
        let mut decided = Decided::permitted(permit);
        if across && permit.covers(&Target::Cluster) {
            decided.namespaces = namespaces
                .names()
                .into_iter()
                .filter(|ns| {
                    permit
                        .also(engine, &Target::Namespace(ns.clone()), namespaces)
                        .is_ok()
                })
                .collect();
        }
        decided
    }

    fn denied(denied: &Denied) -> Decided {
        Decided {
            allowed: false,
            policies: denied.policies().to_vec(),
            reasons: denied.reasons().to_vec(),
            resources: Vec::new(),
            namespaces: Vec::new(),
            invalid: false,
            shadow: denied.shadow.clone(),
            message: denied.to_string(),
        }
    }

    fn invalid(message: String) -> Decided {
        Decided {
            allowed: false,
            policies: Vec::new(),
            reasons: Vec::new(),
            resources: Vec::new(),
            namespaces: Vec::new(),
            invalid: true,
            shadow: None,
            message,
        }
    }
}

/// Decides one hypothetical call as kubegate would decide it live; with `across`, a call
/// permitted on the cluster also has each namespace decided, as its items would be.
pub fn decide(
    engine: &PolicyEngine,
    caller: &Arc<Caller>,
    call: &Call,
    facts: &RequestFacts,
    namespaces: &dyn NamespaceDirectory,
    served: &ApiCatalog,
    across: bool,
) -> Decided {
    let permitted = |permit: &Permit| Decided::permitted_across(permit, engine, namespaces, across);
    let outcome = match call {
        Call::Tool { tool, arguments } => {
            if let Some(spec) = tool::spec(tool)
                && let Err(denied) = engine.refuse_unlisted(caller, spec.name)
            {
                return Decided::denied(&denied);
            }
            match ToolCall::parse(tool, arguments, served) {
                Ok(call) => engine
                    .authorize(caller, call, facts, namespaces)
                    .map(|p| permitted(p.permit())),
                Err(error) => return Decided::invalid(error.to_string()),
            }
        }
        Call::Resource { resource } => match ResourceRead::parse(resource, served) {
            Ok(read) => engine
                .authorize(caller, read, facts, namespaces)
                .map(|p| permitted(p.permit())),
            Err(message) => return Decided::invalid(message),
        },
        Call::Prompt { prompt, arguments } => {
            let params = json!({ "name": prompt, "arguments": arguments });
            let params = params.as_object().cloned().unwrap_or_default();
            match Prompt::parse(&params) {
                Ok(prompt) => engine
                    .authorize(caller, prompt, facts, namespaces)
                    .map(|p| permitted(p.permit())),
                Err(message) => return Decided::invalid(message),
            }
        }
        Call::Reveal { reveal } => {
            let target = match reveal.as_str() {
                "cluster" => Target::Cluster,
                namespace => Target::Namespace(namespace.to_owned()),
            };
            engine
                .reveal_secrets(caller, &target, facts, namespaces)
                .map(|grant| Decided {
                    allowed: true,
                    policies: grant.allowed().policies.clone(),
                    reasons: grant.allowed().reasons.clone(),
                    resources: vec![(
                        grant.allowed().resource.clone(),
                        grant.allowed().policies.clone(),
                    )],
                    namespaces: Vec::new(),
                    invalid: false,
                    shadow: None,
                    message: format!("reveal-secrets granted on {}", grant.allowed().resource),
                })
        }
    };
    outcome.unwrap_or_else(|denied| Decided::denied(&denied))
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    pub name: String,
    /// `None` if the case held; else what differed.
    pub failure: Option<String>,
}

/// Reads a case file (YAML, or JSON if it ends in `.json`).
pub fn read(path: &Path) -> Result<CaseFile, CaseError> {
    let text = std::fs::read_to_string(path).map_err(|source| CaseError::Read {
        path: path.to_owned(),
        source,
    })?;
    let parsed = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_saphyr::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|message| CaseError::Parse {
        path: path.to_owned(),
        message,
    })
}

/// Runs every case of a case file.
pub fn run(path: &Path) -> Result<Vec<CaseOutcome>, CaseError> {
    let file = read(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let sources = PolicySources {
        paths: file.policies.iter().map(|p| base.join(p)).collect(),
        non_destructive: file.non_destructive,
        read_only: file.read_only,
        links: file.links.clone(),
        ..PolicySources::default()
    };
    let engine =
        PolicyEngine::load(sources, &file.cluster).map_err(|source| CaseError::Policies {
            path: path.to_owned(),
            source,
        })?;
    let namespaces = StaticNamespaces::new(&file.namespaces, &file.tenant_label);
    let served = ApiCatalog::offline();
    // One engine per other cluster the cases name, over the same policies.
    let mut others: BTreeMap<&str, PolicyEngine> = BTreeMap::new();
    for name in file.cases.iter().filter_map(|c| c.cluster.as_deref()) {
        if name != file.cluster && !others.contains_key(name) {
            others.insert(name, engine.for_cluster(name));
        }
    }
    Ok(file
        .cases
        .iter()
        .map(|case| {
            let engine = case
                .cluster
                .as_deref()
                .and_then(|name| others.get(name))
                .unwrap_or(&engine);
            let failure = match case.call() {
                Ok(call) => {
                    let decided = decide(
                        engine,
                        &case.principal.caller(),
                        &call,
                        &case.request.facts(),
                        &namespaces,
                        &served,
                        case.visible.is_some(),
                    );
                    check(case, &decided)
                }
                Err(message) => Some(message),
            };
            CaseOutcome {
                name: case.name.clone(),
                failure,
            }
        })
        .collect())
}

/// What a decision got wrong against its case, if anything.
fn check(case: &Case, decided: &Decided) -> Option<String> {
    match (case.expect, decided.invalid) {
        (Expect::Invalid, true) => return None,
        (Expect::Invalid, false) => {
            return Some(format!(
                "expected an invalid call, but it was decided: {}",
                decided.message
            ));
        }
        (_, true) => {
            return Some(format!(
                "the call is not valid, so nothing was decided: {}",
                decided.message
            ));
        }
        (_, false) => {}
    }
    let expected_allow = case.expect == Expect::Allow;
    if decided.allowed != expected_allow {
        return Some(format!(
            "expected {}, got {}: {}",
            if expected_allow { "allow" } else { "deny" },
            if decided.allowed { "allow" } else { "deny" },
            decided.message
        ));
    }
    if let Some(policies) = &case.policies {
        let mut want = policies.clone();
        want.sort();
        let mut got = decided.policies.clone();
        got.sort();
        if want != got {
            return Some(format!(
                "expected deciding policies {want:?}, got {got:?} ({})",
                decided.message
            ));
        }
    }
    if let Some(visible) = &case.visible {
        let mut want = visible.clone();
        want.sort();
        let mut got = decided.namespaces.clone();
        got.sort();
        if want != got {
            return Some(format!("expected visible namespaces {want:?}, got {got:?}"));
        }
    }
    None
}

/// The case files of a folder (`.yaml`, `.yml`, `.json`), in name order.
pub fn files_in(folder: &Path) -> Result<Vec<PathBuf>, CaseError> {
    let entries = std::fs::read_dir(folder).map_err(|source| CaseError::Read {
        path: folder.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        })
        .collect();
    files.sort();
    Ok(files)
}

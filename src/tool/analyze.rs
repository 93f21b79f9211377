//! `analyze`: finds what is broken in a namespace, or in every namespace the caller may read, and
//! says why, as k8sgpt's `analyze` does, but as the caller and decided by policy.
//!
//! MCP tool: `analyze` (k8sgpt's name and parameters: `namespace?`, `explain?`, `filters?`; plus
//! `anonymize?` and `noCache?`). Kubernetes: `list` on each kind the active analyzers read
//! (pods, events, deployments, replicasets, services, endpoints, ingresses, …; see
//! [`crate::analyze::Source`]), once per call (or once per readable namespace, where a
//! cluster-wide list is refused, fails or is cut), and `get` on `pods/log` for the `Log`
//! analyzer; `get` on the caller's tenant's settings ConfigMap, as kubegate.
//!
//! When the call names no `filters`, the tenant's stored ones run, and the call is decided
//! again with them as its `filters` (so a policy on `context.arguments.filters` holds for
//! them too); the namespaces are then decided under that second decision.
//!
//! Without a namespace the call is decided on the `Cluster`; then each namespace is decided as
//! this call's own action on that `Namespace`, and only those permitted are looked at: nothing
//! from another namespace reaches the results, their counts or their errors. Cluster-scoped
//! analyzers (Node, webhooks, GatewayClass) run only then.
//!
//! Answers are kept for the tenant's cache TTL, per caller, policy version and arguments.

mod custom;
mod explain;
mod gather;

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::args::{Flag, NameList, check_namespace};
use super::{ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output};
use crate::analyze::{self, ANALYZERS, Analyzer, Finding, Reach, Source};
use crate::audit::AuditGrant;
use crate::config::AnalysisConfig;
use crate::kube::{ApiCatalog, SettingsError, SettingsStore, TenantSettings};
use crate::policy::{NamespaceDirectory, Permit, ResourceType, Scope, Target};

pub use gather::{Coverage, Gathered, MAX_OBJECTS_PER_KIND};

/// The most answers kept at once (across callers); beyond, the one used least recently goes.
const MAX_CACHED: NonZeroUsize = NonZeroUsize::new(4096).expect("non-zero");

/// What `analyze` and the settings tools share: tenants' settings and the answer cache.
pub struct Analysis {
    pub settings: SettingsStore,
    pub config: AnalysisConfig,
    custom: custom::CustomClient,
    /// The operator's explanation model, if one is configured.
    model: Option<explain::Model>,
    cache: Mutex<LruCache<String, (Instant, Arc<Report>)>>,
}

impl Analysis {
    /// The shared state; fails if the configured model's API key cannot be read.
    pub fn new(settings: SettingsStore, config: AnalysisConfig) -> Result<Analysis, String> {
        let model = config
            .model
            .as_ref()
            .map(explain::Model::from_config)
            .transpose()?;
        Ok(Analysis {
            settings,
            config,
            custom: custom::CustomClient::new(),
            model,
            cache: Mutex::new(LruCache::new(MAX_CACHED)),
        })
    }

    /// The tenant's settings; the defaults, with a note, if they cannot be read.
    pub async fn tenant_settings(&self, tenant: &str) -> (TenantSettings, Option<String>) {
        match self.settings.read(tenant).await {
            Ok(settings) => (settings, None),
            Err(error) => {
                tracing::warn!(tenant, %error, "a tenant's analysis settings could not be read");
                (
                    TenantSettings::default(),
                    Some(format!(
                        "your tenant's analysis settings could not be read ({}); the defaults \
                         were used",
                        short(&error)
                    )),
                )
            }
        }
    }

    /// The TTL answers of this tenant are kept for.
    pub fn ttl(&self, settings: &TenantSettings) -> Duration {
        let seconds = settings
            .cache_ttl_seconds
            .unwrap_or(self.config.cache_ttl_seconds)
            .min(self.config.max_cache_ttl_seconds);
        Duration::from_secs(seconds)
    }

    fn cached(&self, key: &str) -> Option<Arc<Report>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (expires, report) = cache.get(key)?;
        if *expires > Instant::now() {
            return Some(Arc::clone(report));
        }
        cache.pop(key);
        None
    }

    fn keep(&self, key: String, report: Arc<Report>, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(expires) = Instant::now().checked_add(ttl) {
            cache.put(key, (expires, report));
        }
    }
}

fn short(error: &SettingsError) -> String {
    let text = error.to_string();
    text.chars().take(200).collect()
}

/// An `analyze` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Analyze {
    /// Namespace to analyze; all the namespaces you may read if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Ask a language model to explain the problems found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<Flag>,
    /// Analyzers to run (comma-separated or a list, e.g. `Pod,Service`); your tenant's active
    /// filters if omitted. `list-filters` shows them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<NameList>,
    /// Mask object names before they are sent to a language model (with `explain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymize: Option<Flag>,
    /// Analyze afresh instead of reusing a recent answer.
    #[serde(default, alias = "nocache", skip_serializing_if = "Option::is_none")]
    pub no_cache: Option<Flag>,
}

impl Tool for Analyze {
    const SPEC: ToolSpec = ToolSpec {
        name: "analyze",
        title: "Analyze the cluster for problems",
        description: "Find what is broken in a namespace, or in all the namespaces you may read, \
                      and why: pods that crash or cannot start, deployments short of replicas, \
                      services without endpoints, ingresses naming missing backends, failing \
                      jobs, unready nodes, and more (k8sgpt's analyzers). Each result names the \
                      object, its owner, the problem, and where the Kubernetes documentation \
                      explains it.",
        group: ActionGroup::Read,
        resources: &[ResourceType::Cluster, ResourceType::Namespace],
        annotations: Annotations::READ,
        output_schema: Some(output_schema),
        examples: &[
            "{}",
            r#"{"namespace": "team-a", "explain": "true", "filters": "Pod,Service", "anonymize": true, "noCache": true}"#,
        ],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        if let Some(ns) = &self.namespace {
            check_namespace(ns)?;
        }
        if let Some(filters) = &mut self.filters {
            filters.0 = canonical_filters(&filters.0)?;
        }
        Ok(())
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(Target::namespace_or_cluster(self.namespace.as_deref()))
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let analysis = run.analysis;
        let (settings, settings_note) = analysis.tenant_settings(&run.caller().tenant).await;
        let names: Vec<String> = match (&self.filters, &settings.filters) {
            (Some(asked), _) => asked.0.clone(),
            (None, Some(tenant)) => tenant.clone(),
            (None, None) => core_filters(),
        };
        let mut notes: Vec<String> = settings_note.into_iter().collect();
        let mut active: Vec<&'static Analyzer> = Vec::new();
        for name in &names {
            match analyze::analyzer(name) {
                Some(a) if a.reach == Reach::Cluster && self.namespace.is_some() => {
                    notes.push(format!(
                        "{} looks at cluster-scoped objects: it runs only without a namespace",
                        a.name
                    ))
                }
                Some(a) => active.push(a),
                // A tenant's stored filter that this version no longer knows.
                None => notes.push(format!("{name:?} is not an analyzer kubegate has; skipped")),
            }
        }
        // The tenant's stored filters were not what Cedar saw: the call is decided again as it
        // will run, and that decision (not the first) says which namespaces it may look at.
        let effective;
        let decided: &Permit = match (&self.filters, &settings.filters) {
            (None, Some(stored)) => {
                let call = Analyze {
                    filters: Some(NameList(stored.clone())),
                    ..self.clone()
                };
                let permitted = run
                    .policy
                    .authorize(
                        run.permit.caller_arc(),
                        super::ToolCall::Analyze(call),
                        run.facts,
                        run.kube.kube(),
                    )
                    .map_err(ToolError::Denied)?;
                run.note_grant(AuditGrant {
                    action: Self::SPEC.name,
                    resource: permitted.permit().resource().to_owned(),
                    allowed: true,
                    policies: permitted.permit().policies(),
                    shadow_allowed: None,
                });
                effective = permitted;
                effective.permit()
            }
            _ => run.permit,
        };
        let coverage = match &self.namespace {
            Some(ns) => Coverage::One(ns.clone()),
            None => {
                let names = run.kube.kube().names();
                let readable = names
                    .into_iter()
                    .filter(|ns| {
                        let target = Target::Namespace(ns.clone());
                        decided.may_see(run.policy, &target, run.kube.kube())
                    })
                    .collect();
                Coverage::Readable(readable)
            }
        };
        if !std::ptr::eq(decided, run.permit) {
            // The namespaces were decided under the second decision: into the record with it.
            for sub in decided.later() {
                run.note_grant(AuditGrant {
                    action: Self::SPEC.name,
                    resource: sub.resource,
                    allowed: sub.allowed,
                    policies: sub.policies,
                    shadow_allowed: sub.shadow_allowed,
                });
            }
        }
        // Decided afresh on every call, so an answer is reused only for exactly what this call
        // may see now.
        let key = cache_key(run, self, &active, &settings, &coverage);
        let fresh = self.no_cache.is_some_and(|f| f.0);
        let report = match analysis.cached(&key).filter(|_| !fresh) {
            Some(report) => {
                notes.push("a recent answer was reused (pass noCache to analyze afresh)".into());
                report
            }
            None => {
                let report = Arc::new(self.analyze(run, &active, &settings, &coverage).await);
                // A report missing what could not be listed is not kept: the next call tries
                // again instead of being answered the gap for the whole TTL.
                if report.errors.is_empty() {
                    analysis.keep(key, report.clone(), analysis.ttl(&settings));
                }
                report
            }
        };
        notes.extend(report.notes.iter().cloned());
        let mut details = Vec::new();
        let mut provider = "";
        if self.explain.is_some_and(|f| f.0) && !report.findings.is_empty() {
            let anonymize = self.anonymize.is_some_and(|f| f.0);
            let sampling = run.peer.as_ref().filter(|p| p.can_sample());
            let explainer = match (sampling, &analysis.model) {
                (Some(peer), _) => Some(explain::Explainer::Client(peer)),
                (None, Some(model)) => Some(explain::Explainer::Model(model, &analysis.custom)),
                (None, None) => None,
            };
            match explainer {
                Some(explainer) => {
                    let (explained, note) = explain::explain(
                        &explainer,
                        run.peer.as_ref(),
                        &report.findings,
                        anonymize,
                    )
                    .await;
                    provider = explainer.provider();
                    details = explained;
                    notes.extend(note);
                }
                None => notes.push(explain::NO_MODEL.to_owned()),
            }
        }
        Ok(answer(self, &report, &notes, &details, provider))
    }
}

/// What one analysis found.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// What the tenant's custom analyzers reported (within the call's namespaces).
    pub custom: Vec<custom::CustomFinding>,
    pub analyzers: Vec<&'static str>,
    /// How many namespaces were looked at.
    pub namespaces: usize,
    pub notes: Vec<String>,
    pub errors: Vec<String>,
}

impl Analyze {
    async fn analyze(
        &self,
        run: &mut Run<'_>,
        active: &[&'static Analyzer],
        settings: &TenantSettings,
        coverage: &Coverage,
    ) -> Report {
        let coverage = coverage.clone();
        let mut sources: BTreeSet<Source> = BTreeSet::new();
        for analyzer in active {
            sources.extend(analyzer.reads.iter().copied());
        }
        let concurrency = run.analysis.config.max_concurrency;
        if let Some(peer) = &run.peer {
            let namespaces = match &coverage {
                Coverage::One(_) => 1,
                Coverage::Readable(names) => names.len(),
            };
            let what = format!(
                "listing {} kinds in {namespaces} namespace(s)",
                sources.len()
            );
            peer.progress(0, Some(2), &what).await;
        }
        let mut gathered = match &coverage {
            Coverage::Readable(names) if names.is_empty() => Gathered::default(),
            _ => gather::gather(&mut run.kube, &sources, &coverage, concurrency).await,
        };
        if active.iter().any(|a| a.name == "Log") {
            gather::gather_logs(&mut run.kube, &mut gathered, concurrency).await;
            // Log lines are quoted in findings: Secret values in them are masked, as get-logs
            // masks them, unless reveal-secrets is granted there.
            for ((ns, _, _), text) in gathered.snapshot.logs.iter_mut() {
                *text = output::filter_log(text, &mut |_| run.reveal(Some(ns)));
            }
        }
        if let Some(peer) = &run.peer {
            peer.progress(1, Some(2), "analyzing").await;
        }
        let findings = analyze::run(&gathered.snapshot, active);
        let mut notes = Vec::new();
        let mut custom = Vec::new();
        if !settings.custom_analyzers.is_empty() {
            let namespaces = match &coverage {
                Coverage::One(ns) => vec![ns.clone()],
                Coverage::Readable(names) => names.clone(),
            };
            let (found, custom_notes) = run
                .analysis
                .custom
                .ask(
                    &settings.custom_analyzers,
                    &run.analysis.config.custom_analyzer_allowlist,
                    run.cluster(),
                    &namespaces,
                    matches!(coverage, Coverage::Readable(_)),
                )
                .await;
            custom = found;
            notes.extend(custom_notes);
        }
        for analyzer in active {
            let main = analyzer.reads.first().copied();
            let Some(main) = main else { continue };
            if gathered.not_served.contains(&main) {
                let why = match analyzer.integration {
                    Some(integration) => format!(
                        "{} needs the {integration} integration's CRDs, which this cluster does \
                         not serve",
                        analyzer.name
                    ),
                    None => format!(
                        "{} did not run: this cluster does not serve its kind",
                        analyzer.name
                    ),
                };
                notes.push(why);
            } else if gathered.forbidden.contains(&main) && !gathered.snapshot.has(main) {
                notes.push(format!(
                    "{} did not run: Kubernetes does not let you list {}",
                    analyzer.name,
                    main.group_kind().1
                ));
            }
        }
        for source in &gathered.cut {
            notes.push(format!(
                "only the first {MAX_OBJECTS_PER_KIND} {} objects were analyzed; name a \
                 namespace to analyze the rest",
                source.group_kind().1
            ));
        }
        if gathered.snapshot.unreadable > 0 {
            notes.push(format!(
                "{} object(s) could not be read as their kind and were skipped",
                gathered.snapshot.unreadable
            ));
        }
        Report {
            findings,
            custom,
            analyzers: active.iter().map(|a| a.name).collect(),
            namespaces: match &coverage {
                Coverage::One(_) => 1,
                Coverage::Readable(names) => names.len(),
            },
            notes,
            errors: gathered.errors,
        }
    }
}

/// The core analyzers' names: what runs when neither the call nor the tenant names any.
pub fn core_filters() -> Vec<String> {
    ANALYZERS
        .iter()
        .filter(|a| a.core)
        .map(|a| a.name.to_owned())
        .collect()
}

/// Checks analyzer names and spells them as kubegate does (`pod` → `Pod`).
pub fn canonical_filters(names: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let Some(analyzer) = analyze::analyzer(name) else {
            return Err(format!(
                "unknown analyzer {name:?}; the analyzers are: {}",
                ANALYZERS
                    .iter()
                    .map(|a| a.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        if !out.iter().any(|n| n == analyzer.name) {
            out.push(analyzer.name.to_owned());
        }
    }
    Ok(out)
}

fn cache_key(
    run: &Run<'_>,
    call: &Analyze,
    active: &[&Analyzer],
    settings: &TenantSettings,
    coverage: &Coverage,
) -> String {
    let caller = run.caller();
    let mut groups = caller.groups.clone();
    groups.sort();
    let mut analyzers: Vec<&str> = active.iter().map(|a| a.name).collect();
    analyzers.sort_unstable();
    let covered = match coverage {
        Coverage::One(ns) => ns.clone(),
        Coverage::Readable(names) => names.join(","),
    };
    format!(
        "{}\0{}\0{}\0{}\0{}\0{}\0{}\0{covered}",
        caller.username,
        groups.join("\u{1}"),
        caller.tenant,
        run.policy.version(),
        call.namespace.as_deref().unwrap_or(""),
        analyzers.join(","),
        settings
            .custom_analyzers
            .iter()
            .map(|c| format!("{}={}", c.name, c.url))
            .collect::<Vec<_>>()
            .join("\u{1}")
    )
}

/// The answer: k8sgpt's JSON shape as structured content, and its text summary; the built-in
/// analyzers' results first (explained, if asked), then the custom analyzers'.
fn answer(
    call: &Analyze,
    report: &Report,
    notes: &[String],
    details: &[String],
    provider: &str,
) -> ToolOutput {
    let mut results: Vec<Value> = report
        .findings
        .iter()
        .enumerate()
        .map(|(i, finding)| {
            let mut result = serde_json::to_value(finding).unwrap_or(Value::Null);
            result["details"] = Value::from(details.get(i).cloned().unwrap_or_default());
            result
        })
        .collect();
    results.extend(report.custom.iter().map(|found| {
        let mut result = serde_json::to_value(found).unwrap_or(Value::Null);
        result["details"] = Value::from("");
        result
    }));
    let place = match &call.namespace {
        Some(ns) => format!("in namespace {ns:?}"),
        None => format!("across the {} namespace(s) you may read", report.namespaces),
    };
    let mut text = match results.len() {
        0 => format!("No problems found {place}."),
        n => format!("{n} problem(s) found {place}:"),
    };
    text.push('\n');
    let field = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    for (i, result) in results.iter().enumerate() {
        let parent = field(result, "parentObject");
        let parent = if parent.is_empty() {
            String::new()
        } else {
            format!(" ({parent})")
        };
        let (kind, name) = (field(result, "kind"), field(result, "name"));
        text.push_str(&format!("{i}: {kind} {name}{parent}\n"));
        for failure in result["error"].as_array().into_iter().flatten() {
            text.push_str(&format!("- Error: {}\n", field(failure, "Text")));
            let doc = field(failure, "KubernetesDoc");
            if !doc.is_empty() {
                text.push_str(&format!("  See {doc}\n"));
            }
        }
        let explained = field(result, "details");
        if !explained.is_empty() {
            text.push_str(&format!("  Explanation: {explained}\n"));
        }
    }
    text.push_str(&format!("Analyzers: {}.\n", report.analyzers.join(", ")));
    for note in notes.iter().chain(&report.errors) {
        text.push_str(&format!("Note: {note}.\n"));
    }
    let structured = json!({
        "provider": provider,
        "status": if results.is_empty() { "OK" } else { "ProblemDetected" },
        "problems": results.len(),
        "results": results,
        "errors": report.errors,
        "analyzers": report.analyzers,
        "notes": notes,
    });
    ToolOutput {
        text,
        structured: output::raw(&structured),
    }
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["OK", "ProblemDetected"]},
            "problems": {"type": "integer"},
            "results": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string"},
                    "name": {"type": "string", "description": "namespace/name, or name if cluster-scoped"},
                    "error": {"type": "array", "items": {"type": "object", "properties": {
                        "Text": {"type": "string"},
                        "KubernetesDoc": {"type": "string"},
                    }}},
                    "parentObject": {"type": "string"},
                    "details": {"type": "string", "description": "A language model's explanation, with explain"},
                },
                "required": ["kind", "name", "error", "parentObject"],
            }},
            "errors": {"type": "array", "items": {"type": "string"}},
            "analyzers": {"type": "array", "items": {"type": "string"}},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["status", "problems", "results"],
    })
}

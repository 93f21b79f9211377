//! The settings of `analyze`, per tenant: which analyzers run (`list-filters`, `add-filters`,
//! `remove-filters`, the `active-filters` resource), which integrations exist
//! (`list-integrations`), and the result cache TTL and custom analyzers (`config`).
//!
//! MCP tools: `list-filters`, `list-integrations` (read), `add-filters`, `remove-filters`,
//! `config` (write), k8sgpt's names and parameters. Kubernetes: `get`, `create`, `update` on the
//! caller's tenant's settings ConfigMap in kubegate's namespace, as kubegate, after the policy
//! permitted the call (see [`crate::kube::SettingsStore`]); discovery (cached) for whether an
//! integration's CRDs are installed. A change touches only the caller's own tenant.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::analyze::{canonical_filters, core_filters};
use super::args::{Int, NameList};
use super::{ActionGroup, Annotations, Run, Tool, ToolError, ToolOutput, ToolSpec, output};
use crate::analyze::{ANALYZERS, INTEGRATIONS, Integration, integration};
use crate::kube::{ApiCatalog, CustomAnalyzer, SettingsError, TenantSettings};
use crate::policy::{NamespaceDirectory, ResourceType, Scope, Target};

/// The most custom analyzers one tenant may name.
const MAX_CUSTOM_ANALYZERS: usize = 16;

/// A `list-filters` call (no arguments).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListFilters {}

impl Tool for ListFilters {
    const SPEC: ToolSpec = ToolSpec {
        name: "list-filters",
        title: "List analyzer filters",
        description: "List the analyzers `analyze` can run, and those active for your tenant.",
        group: ActionGroup::Read,
        resources: &[ResourceType::Cluster],
        annotations: Annotations::READ,
        output_schema: Some(filters_schema),
        examples: &["{}"],
    };

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(Target::Cluster)
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let settings = run.analysis.settings.read(&run.caller().tenant).await;
        let settings = settings.map_err(settings_failed)?;
        Ok(filters_answer(&settings, None))
    }
}

/// The tenant's filters as `list-filters` and the `active-filters` resource show them.
pub fn filters_answer(settings: &TenantSettings, changed: Option<&str>) -> ToolOutput {
    let active = active_filters(settings);
    let of = |core: bool, integration: bool| -> Vec<Value> {
        ANALYZERS
            .iter()
            .filter(|a| a.core == core && a.integration.is_some() == integration)
            .map(|a| json!({"name": a.name, "description": a.description,
                            "integration": a.integration, "active": active.contains(&a.name.to_owned())}))
            .collect()
    };
    let mut text = String::new();
    if let Some(changed) = changed {
        text.push_str(changed);
        text.push('\n');
    }
    text.push_str(&format!(
        "Active analyzers{}: {}.\n",
        if settings.filters.is_none() {
            " (the defaults)"
        } else {
            ""
        },
        if active.is_empty() {
            "none".to_owned()
        } else {
            active.join(", ")
        }
    ));
    text.push_str("Available analyzers:\n");
    for a in ANALYZERS {
        let on = if active.iter().any(|n| n == a.name) {
            "active"
        } else {
            "inactive"
        };
        let from = match a.integration {
            Some(i) => format!(", from the {i} integration"),
            None if a.core => ", core".to_owned(),
            None => ", optional".to_owned(),
        };
        text.push_str(&format!("- {} ({on}{from}): {}\n", a.name, a.description));
    }
    ToolOutput {
        text,
        structured: output::raw(&json!({
            "activeFilters": active,
            "defaults": settings.filters.is_none(),
            "coreFilters": of(true, false),
            "additionalFilters": of(false, false),
            "integrationFilters": of(false, true),
        })),
    }
}

/// The analyzers that run for a tenant when a call names none.
pub fn active_filters(settings: &TenantSettings) -> Vec<String> {
    settings.filters.clone().unwrap_or_else(core_filters)
}

fn filters_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "activeFilters": {"type": "array", "items": {"type": "string"}},
            "defaults": {"type": "boolean", "description": "Whether these are kubegate's defaults"},
            "coreFilters": {"type": "array", "items": {"type": "object"}},
            "additionalFilters": {"type": "array", "items": {"type": "object"}},
            "integrationFilters": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["activeFilters"],
    })
}

/// An `add-filters` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddFilters {
    /// Analyzers to activate for your tenant (comma-separated or a list), or an integration's
    /// name (`keda`, `kyverno`) to activate all of its analyzers.
    pub filters: NameList,
}

/// A `remove-filters` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveFilters {
    /// Analyzers to deactivate for your tenant (comma-separated or a list), or an
    /// integration's name.
    pub filters: NameList,
}

/// Integration names become their analyzers; analyzer names are checked and spelled as kubegate
/// spells them.
fn expand(filters: &NameList) -> Result<Vec<String>, String> {
    if filters.0.is_empty() {
        return Err("`filters` names no analyzer; list-filters shows them".into());
    }
    let mut names = Vec::new();
    for name in &filters.0 {
        match integration(name) {
            Some(i) if i.analyzers.is_empty() => {
                return Err(format!(
                    "the {} integration cannot be activated here: it needs {}",
                    i.name,
                    i.unavailable.unwrap_or("what kubegate does not have")
                ));
            }
            Some(i) => names.extend(i.analyzers.iter().map(|a| (*a).to_owned())),
            None => names.push(name.clone()),
        }
    }
    canonical_filters(&names)
}

impl Tool for AddFilters {
    const SPEC: ToolSpec = ToolSpec {
        name: "add-filters",
        title: "Activate analyzers",
        description: "Activate analyzers (or an integration's analyzers) for your tenant: \
                      `analyze` runs them from now on, on every kubegate replica.",
        group: ActionGroup::Write,
        resources: &[ResourceType::Cluster],
        annotations: Annotations::WRITE,
        output_schema: Some(filters_schema),
        examples: &[
            r#"{"filters": "Pod"}"#,
            r#"{"filters": ["HorizontalPodAutoScaler", "keda"]}"#,
        ],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        self.filters = NameList(expand(&self.filters)?);
        Ok(())
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(Target::Cluster)
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let adding = &self.filters.0;
        change_filters(run, "Activated", adding, |active| {
            for name in adding {
                if !active.contains(name) {
                    active.push(name.clone());
                }
            }
        })
        .await
    }
}

impl Tool for RemoveFilters {
    const SPEC: ToolSpec = ToolSpec {
        name: "remove-filters",
        title: "Deactivate analyzers",
        description: "Deactivate analyzers (or an integration's analyzers) for your tenant.",
        group: ActionGroup::Write,
        resources: &[ResourceType::Cluster],
        annotations: Annotations::WRITE,
        output_schema: Some(filters_schema),
        examples: &[
            r#"{"filters": "ConfigMap"}"#,
            r#"{"filters": ["ConfigMap", "kyverno"]}"#,
        ],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        self.filters = NameList(expand(&self.filters)?);
        Ok(())
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(Target::Cluster)
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let removing = &self.filters.0;
        change_filters(run, "Deactivated", removing, |active| {
            active.retain(|name| !removing.contains(name));
        })
        .await
    }
}

/// Changes the caller's tenant's active analyzers with `change` and answers with them.
async fn change_filters(
    run: &Run<'_>,
    done: &str,
    names: &[String],
    change: impl Fn(&mut Vec<String>),
) -> Result<ToolOutput, ToolError> {
    let tenant = &run.caller().tenant;
    let settings = run
        .analysis
        .settings
        .update(tenant, |settings| {
            let mut active = active_filters(settings);
            change(&mut active);
            settings.filters = Some(active);
            Ok(())
        })
        .await
        .map_err(settings_failed)?;
    let said = format!("{done} {} for tenant {tenant:?}.", names.join(", "));
    Ok(filters_answer(&settings, Some(&said)))
}

/// A `list-integrations` call (no arguments).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListIntegrations {}

impl Tool for ListIntegrations {
    const SPEC: ToolSpec = ToolSpec {
        name: "list-integrations",
        title: "List integrations",
        description: "List the integrations (KEDA, Kyverno, Prometheus, AWS): whether this \
                      cluster has what each needs, and whether it is active for your tenant.",
        group: ActionGroup::Read,
        resources: &[ResourceType::Cluster],
        annotations: Annotations::READ,
        output_schema: Some(integrations_schema),
        examples: &["{}"],
    };

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(Target::Cluster)
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let settings = run.analysis.settings.read(&run.caller().tenant).await;
        let active = active_filters(&settings.map_err(settings_failed)?);
        let catalog = run.kube.kube().catalog();
        let mut text = String::from("Integrations:\n");
        let mut rows = Vec::new();
        for i in INTEGRATIONS {
            let installed = installed(i, &catalog);
            let on = !i.analyzers.is_empty()
                && i.analyzers.iter().all(|a| active.iter().any(|n| n == a));
            let state = match (i.unavailable, installed, on) {
                (Some(needs), _, _) => format!("not available: needs {needs}"),
                (None, false, _) => "its CRDs are not installed in this cluster".to_owned(),
                (None, true, true) => "installed, active".to_owned(),
                (None, true, false) => format!(
                    "installed, inactive (activate: add-filters with filters {:?})",
                    i.name
                ),
            };
            text.push_str(&format!("- {}: {} — {state}\n", i.name, i.description));
            rows.push(json!({
                "name": i.name,
                "description": i.description,
                "analyzers": i.analyzers,
                "installed": installed,
                "active": on,
                "needs": i.unavailable,
            }));
        }
        Ok(ToolOutput {
            text,
            structured: output::raw(&json!({ "integrations": rows })),
        })
    }
}

/// Whether the cluster serves the integration's CRDs.
fn installed(integration: &Integration, catalog: &ApiCatalog) -> bool {
    integration
        .detect
        .is_some_and(|(group, kind)| !catalog.versions_of(group, kind).is_empty())
}

fn integrations_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"integrations": {"type": "array", "items": {"type": "object"}}},
        "required": ["integrations"],
    })
}

/// The result cache settings `config` takes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CacheSettings {
    /// How long an `analyze` answer is reused, in seconds (0: never).
    pub ttl_seconds: Int,
}

/// A custom analyzer as `config` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomAnalyzerArgument {
    /// Its name (letters, digits, `-`).
    pub name: String,
    /// Its HTTP(S) endpoint: must start with one of the operator's allowed prefixes.
    pub url: String,
}

/// A `config` call: with no arguments it shows the settings; with some it sets them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Custom analyzers (replacing your tenant's list; `[]` removes them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_analyzers: Option<Vec<CustomAnalyzerArgument>>,
    /// The result cache's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSettings>,
}

impl Tool for Config {
    const SPEC: ToolSpec = ToolSpec {
        name: "config",
        title: "Configure analysis",
        description: "View or set your tenant's analysis settings: the result cache TTL and \
                      custom analyzers (HTTP endpoints the operator allows). Without arguments \
                      it shows the settings.",
        group: ActionGroup::Write,
        resources: &[ResourceType::Cluster],
        annotations: Annotations::WRITE,
        output_schema: Some(config_schema),
        examples: &[
            "{}",
            r#"{"customAnalyzers": [{"name": "disk", "url": "https://analyzers.internal/disk"}], "cache": {"ttlSeconds": 60}}"#,
        ],
    };

    fn check(&mut self, _: &ApiCatalog) -> Result<(), String> {
        if let Some(cache) = &self.cache
            && cache.ttl_seconds.0 < 0
        {
            return Err("`cache.ttlSeconds` must be 0 or more".into());
        }
        if let Some(custom) = &self.custom_analyzers {
            if custom.len() > MAX_CUSTOM_ANALYZERS {
                return Err(format!(
                    "at most {MAX_CUSTOM_ANALYZERS} custom analyzers; {} given",
                    custom.len()
                ));
            }
            for analyzer in custom {
                super::args::check_name("customAnalyzers[].name", &analyzer.name)?;
                check_url(&analyzer.url)?;
            }
        }
        Ok(())
    }

    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(Target::Cluster)
    }

    async fn run(&self, run: &mut Run<'_>) -> Result<ToolOutput, ToolError> {
        let analysis = run.analysis;
        let tenant = run.caller().tenant.clone();
        let max_ttl = analysis.config.max_cache_ttl_seconds;
        let allow = &analysis.config.custom_analyzer_allowlist;
        if let Some(custom) = &self.custom_analyzers {
            for analyzer in custom {
                if !allowed(&analyzer.url, allow) {
                    return Err(ToolError::invalid(
                        Self::SPEC.name,
                        format!(
                            "custom analyzer URL {:?} is not allowed here: it must start with {}",
                            analyzer.url,
                            if allow.is_empty() {
                                "one of the operator's allowed prefixes, and none are configured \
                                 ([analysis] custom_analyzer_allowlist)"
                                    .to_owned()
                            } else {
                                allow.join(" or ")
                            }
                        ),
                    ));
                }
            }
        }
        let settings = if self.custom_analyzers.is_none() && self.cache.is_none() {
            analysis.settings.read(&tenant).await
        } else {
            analysis
                .settings
                .update(&tenant, |settings| {
                    if let Some(cache) = &self.cache {
                        let ttl = u64::try_from(cache.ttl_seconds.0).unwrap_or(0);
                        if ttl > max_ttl {
                            return Err(format!(
                                "`cache.ttlSeconds` may be at most {max_ttl} here"
                            ));
                        }
                        settings.cache_ttl_seconds = Some(ttl);
                    }
                    if let Some(custom) = &self.custom_analyzers {
                        settings.custom_analyzers = custom
                            .iter()
                            .map(|c| CustomAnalyzer {
                                name: c.name.clone(),
                                url: c.url.clone(),
                            })
                            .collect();
                    }
                    Ok(())
                })
                .await
        }
        .map_err(settings_failed)?;
        let ttl = analysis.ttl(&settings).as_secs();
        let mut text = format!(
            "Analysis settings of tenant {tenant:?}: answers are reused for {ttl} s{}.\n",
            if settings.cache_ttl_seconds.is_none() {
                " (kubegate's default)"
            } else {
                ""
            }
        );
        if settings.custom_analyzers.is_empty() {
            text.push_str("No custom analyzers.\n");
        }
        for c in &settings.custom_analyzers {
            text.push_str(&format!("Custom analyzer {}: {}\n", c.name, c.url));
        }
        Ok(ToolOutput {
            text,
            structured: output::raw(&json!({
                "tenant": tenant,
                "cache": {"ttlSeconds": ttl},
                "customAnalyzers": settings.custom_analyzers,
                "allowedPrefixes": allow,
            })),
        })
    }
}

/// A custom analyzer's URL: http(s), a host, no credentials in it.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("custom analyzer URL {url:?} must start with https:// or http://")
        })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || url.len() > 2048 {
        return Err(format!(
            "custom analyzer URL {url:?} must name a host, with no credentials in it"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "custom analyzer URL {url:?} contains spaces or control characters"
        ));
    }
    Ok(())
}

/// Whether `url` starts with an allowed prefix, compared at a boundary: the prefix
/// `https://a.internal` allows `https://a.internal/x`, not `https://a.internal.evil.example`.
pub fn allowed(url: &str, allowlist: &[String]) -> bool {
    allowlist.iter().any(|prefix| {
        url.strip_prefix(prefix.as_str()).is_some_and(|rest| {
            prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?', '#'])
        })
    })
}

fn config_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "tenant": {"type": "string"},
            "cache": {"type": "object"},
            "customAnalyzers": {"type": "array", "items": {"type": "object"}},
            "allowedPrefixes": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["tenant", "cache", "customAnalyzers"],
    })
}

fn settings_failed(error: SettingsError) -> ToolError {
    match error {
        SettingsError::Rejected(message) => ToolError::Failed(message),
        other => ToolError::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_analyzer_urls_must_start_with_an_allowed_prefix_at_a_boundary() {
        let allow = vec![
            "https://analyzers.internal".to_owned(),
            "http://10.0.0.7:8080/k8sgpt/".to_owned(),
        ];
        assert!(allowed("https://analyzers.internal/disk", &allow));
        assert!(allowed("https://analyzers.internal", &allow));
        assert!(allowed("http://10.0.0.7:8080/k8sgpt/x", &allow));
        assert!(!allowed(
            "https://analyzers.internal.evil.example/x",
            &allow
        ));
        assert!(!allowed("https://analyzers.internal@evil.example/", &allow));
        assert!(!allowed("http://169.254.169.254/latest/meta-data", &allow));
        assert!(!allowed("https://analyzers.internal/x", &[]));
        assert!(check_url("https://user:pw@analyzers.internal/").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
        assert!(check_url("https:///nohost").is_err());
        assert!(check_url("https://analyzers.internal/disk").is_ok());
    }

    #[test]
    fn integrations_expand_to_their_analyzers_and_unknown_names_are_refused() {
        let got = expand(&NameList(vec!["keda".into(), "pod".into()])).unwrap_or_default();
        assert_eq!(got, ["ScaledObject", "Pod"]);
        let err = expand(&NameList(vec!["Podz".into()]))
            .err()
            .unwrap_or_default();
        assert!(err.contains("unknown analyzer \"Podz\""), "{err}");
        let err = expand(&NameList(vec!["prometheus".into()]))
            .err()
            .unwrap_or_default();
        assert!(err.contains("cannot be activated"), "{err}");
        assert!(expand(&NameList(vec![])).is_err());
    }
}

//! Reads kubegate's TOML configuration file into plain, validated settings for each part.
//!
//! Relative paths in the file are taken relative to the file's own directory, so a configuration
//! and the certificates, keys and policies beside it can move together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::policy::{PolicySources, ShadowSources, TenantLinks};

mod auth;
pub use auth::{
    AuthConfig, ClaimMappings, ClaimValidationRule, IssuerConfig, JwtConfig, KeyConfig,
    MAX_LEEWAY_SECONDS, PrefixedClaim, ScopeRules, TenantMapping,
};

/// The environment variable (the seed's own name) that adds the non-destructive policy set.
pub const NON_DESTRUCTIVE_ENV: &str = "ALLOW_ONLY_NON_DESTRUCTIVE_TOOLS";
/// mcp-server-kubernetes's switch for the legacy SSE transport (`1` or `true`).
pub const SSE_ENV: &str = "ENABLE_UNSAFE_SSE_TRANSPORT";
/// mcp-server-kubernetes's port setting: the port kubegate listens on.
pub const PORT_ENV: &str = "PORT";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to serve HTTPS; `--listen` overrides it.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The name of the cluster, the id of the Cedar `Cluster` entity (one cluster; with
    /// `[[clusters]]`, each names its own).
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// The clusters kubegate fronts, when it fronts several (instead of `cluster_name` and
    /// `[kubernetes] kubeconfig` and `context`).
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
    /// The server certificate: needed to serve over HTTPS, not for stdio.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// How bearer tokens are verified: needed to serve over HTTPS, not for stdio.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// The caller of `kubegate stdio` (without it, the local OS user).
    #[serde(default)]
    pub stdio: Option<StdioConfig>,
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
    pub policy: PolicyConfig,
    pub audit: AuditConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub mcp: McpConfig,
    /// Prometheus metrics on a listener of their own (off without it).
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    #[serde(default)]
    pub analysis: AnalysisConfig,
}

/// How `analyze` works: where tenants' settings live, how long answers are reused, how many
/// lists run at once, and which custom analyzer endpoints tenants may name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// kubegate's own namespace, where each tenant's settings ConfigMap is kept (kubegate needs
    /// `get`, `create` and `update` on ConfigMaps there).
    #[serde(default = "default_analysis_namespace")]
    pub namespace: String,
    /// How long a caller's answer is reused unless their tenant sets another TTL (0: never).
    #[serde(default = "default_analysis_ttl")]
    pub cache_ttl_seconds: u64,
    /// The most TTL a tenant may set.
    #[serde(default = "default_analysis_max_ttl")]
    pub max_cache_ttl_seconds: u64,
    /// The most API requests one `analyze` has in flight.
    #[serde(default = "default_analysis_concurrency")]
    pub max_concurrency: usize,
    /// URL prefixes (`https://analyzers.internal/`) a custom analyzer's URL must start with;
    /// empty: tenants cannot add custom analyzers (kubegate never becomes a request forger).
    #[serde(default)]
    pub custom_analyzer_allowlist: Vec<String>,
    /// A language model kubegate asks to explain problems when the caller's client cannot
    /// sample (an OpenAI-compatible chat completions endpoint); without it, and without
    /// sampling, `explain` says no model is available.
    #[serde(default)]
    pub model: Option<ModelConfig>,
}

/// An OpenAI-compatible chat completions endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The full URL, e.g. `https://llm.internal/v1/chat/completions`.
    pub endpoint: String,
    /// The model to ask for.
    pub model: String,
    /// A file holding the API key (sent as a bearer token), if the endpoint needs one.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
}

impl Default for AnalysisConfig {
    fn default() -> AnalysisConfig {
        AnalysisConfig {
            namespace: default_analysis_namespace(),
            cache_ttl_seconds: default_analysis_ttl(),
            max_cache_ttl_seconds: default_analysis_max_ttl(),
            max_concurrency: default_analysis_concurrency(),
            custom_analyzer_allowlist: Vec::new(),
            model: None,
        }
    }
}

fn default_analysis_namespace() -> String {
    "kubegate".to_owned()
}
fn default_analysis_ttl() -> u64 {
    30
}
fn default_analysis_max_ttl() -> u64 {
    3600
}
fn default_analysis_concurrency() -> usize {
    8
}

/// Where Prometheus scrapes `/metrics` (plain HTTP, meant for a loopback or cluster-internal
/// address: the MCP port never serves metrics).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

/// MCP sessions (of the initialize revisions).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// A file of at least 32 random bytes, the same on every replica: sessions opened on one are
    /// honoured by the others. Without it, each process signs with a key of its own.
    #[serde(default)]
    pub session_key_file: Option<PathBuf>,
    /// How long a session lives; 12 hours by default.
    #[serde(default)]
    pub session_lifetime_seconds: Option<u64>,
    /// Serve the legacy HTTP+SSE transport (`GET /sse`, `POST /messages`), as
    /// mcp-server-kubernetes's `ENABLE_UNSAFE_SSE_TRANSPORT=true` does; behind the same TLS and
    /// tokens as everything else.
    #[serde(default)]
    pub sse: bool,
}

/// How the HTTPS listener protects itself: its limits and timeouts, and which `Host`s and
/// `Origin`s it answers. The defaults suit one replica on two cores.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Connections at once (capped below the process's file-descriptor limit); beyond, new
    /// ones wait to be accepted.
    pub max_connections: usize,
    /// Connections at once from one source address; beyond, new ones are closed at once.
    pub max_connections_per_ip: usize,
    /// MCP exchanges in flight at once; beyond, requests are answered 503 with `Retry-After`.
    pub max_exchanges: usize,
    /// MCP exchanges in flight at once for one caller; beyond, 429 with `Retry-After`.
    pub max_exchanges_per_caller: usize,
    /// HTTP/2 streams one connection may have open at once.
    pub max_streams_per_connection: u32,
    /// The largest MCP message body read, in bytes; larger ones are answered 413.
    pub max_body_bytes: usize,
    /// To finish the TLS handshake.
    pub handshake_timeout_seconds: u64,
    /// To send a request's headers (the first request's included).
    pub header_timeout_seconds: u64,
    /// To send a request's body.
    pub body_timeout_seconds: u64,
    /// A connection with no request in flight for this long is closed (HTTP/1.1 keep-alive and
    /// HTTP/2 alike); HTTP/2 peers are also pinged at this interval.
    pub idle_timeout_seconds: u64,
    /// Signature checks of tokens kubegate has not verified before, per source address per
    /// second (twice that in a burst); beyond, 429. Tokens already verified are not counted.
    pub unverified_tokens_per_ip_per_second: u32,
    /// Audit records of unauthenticated requests per source address per second (twice that in
    /// a burst); beyond, they are counted and the next record says how many were left out.
    pub unauthenticated_records_per_ip_per_second: u32,
    /// Names a request's `Host` may carry. Empty: the names the server certificate is valid
    /// for (and loopback names when listening on loopback).
    pub allowed_hosts: Vec<String>,
    /// Check `Host` (DNS-rebinding protection). On by default.
    pub check_host: bool,
    /// Origins (`https://app.example.com`) browsers may call kubegate from, besides kubegate's
    /// own hosts; a request with another `Origin` is refused 403.
    pub allowed_origins: Vec<String>,
    /// On SIGTERM, how long kubegate stays up, not ready, before it stops accepting (so load
    /// balancers take it out first).
    pub shutdown_delay_seconds: u64,
    /// Then how long in-flight calls get to finish.
    pub shutdown_grace_seconds: u64,
    /// Also serve plain HTTP here: only behind a proxy or mesh that terminates TLS for kubegate
    /// (a token sent in the clear can be stolen on the way). Off by default.
    pub plain_listen: Option<SocketAddr>,
    /// Addresses (`10.0.0.7`) or networks (`10.0.0.0/8`) of proxies whose `X-Forwarded-For`
    /// names the caller's address (for policies and the audit record). None by default.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: 4096,
            max_connections_per_ip: 256,
            max_exchanges: 512,
            max_exchanges_per_caller: 32,
            max_streams_per_connection: 64,
            max_body_bytes: 1024 * 1024,
            handshake_timeout_seconds: 10,
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            idle_timeout_seconds: 120,
            unverified_tokens_per_ip_per_second: 20,
            unauthenticated_records_per_ip_per_second: 5,
            allowed_hosts: Vec::new(),
            check_host: true,
            allowed_origins: Vec::new(),
            shutdown_delay_seconds: 5,
            shutdown_grace_seconds: 20,
            plain_listen: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Who calls through `kubegate stdio`: the one local user a desktop client runs it for. Their
/// calls are decided and impersonated as this identity, as any caller's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdioConfig {
    /// The Kubernetes username.
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// The server certificate chain and key, PEM files (reloaded when they change), and the
/// optional client certificates (mTLS) for service-to-service callers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA (PEM) that signs client certificates; without it, none are asked for.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// `optional` (default: a client without a certificate presents a token instead) or
    /// `required`.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Prepended to a client certificate's CN to make the Kubernetes username; required with
    /// `client_ca` (`""` says to use the CN as it is).
    #[serde(default)]
    pub client_username_prefix: Option<String>,
    /// Prepended to each O of the certificate's subject to make a group; required with `client_ca`.
    #[serde(default)]
    pub client_group_prefix: Option<String>,
    /// The tenant of callers known by their certificate.
    #[serde(default)]
    pub client_tenant: String,
}

/// Whether a client certificate may be or must be presented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    Optional,
    Required,
}

/// How kubegate reaches the Kubernetes API server, under its own identity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// A kubeconfig for kubegate's own identity; without it, the in-cluster or default one.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; its current context if unset.
    #[serde(default)]
    pub context: Option<String>,
    /// The namespace label naming the tenant a namespace belongs to.
    #[serde(default)]
    pub tenant_label: Option<String>,
    /// How long the namespace watch may fail before kubegate stops trusting its copy of the
    /// namespaces (decisions that read them refuse, `/readyz` says not ready); 60 by default.
    #[serde(default)]
    pub namespaces_stale_after_seconds: Option<u64>,
    /// The most memory, in MiB, that Kubernetes answers may hold while kubegate works on them
    /// (each byte counted three times: the answer, the filtered objects, the response); a call
    /// that would go over is refused at once, with a message to retry or to ask for less.
    /// 512 by default.
    #[serde(default)]
    pub answer_memory_mib: Option<u64>,
}

/// One cluster of several: its name, how kubegate reaches it as itself, its tenant label.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The Cedar `Cluster` id, and the value of the tools' `context` argument.
    pub name: String,
    /// A kubeconfig for kubegate's own identity there; without it, the in-cluster or default one.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; its current context if unset.
    #[serde(default)]
    pub context: Option<String>,
    /// The namespace label naming a namespace's tenant there; `[kubernetes] tenant_label` if unset.
    #[serde(default)]
    pub tenant_label: Option<String>,
    /// The cluster of calls that name none (at most one says so; else the first).
    #[serde(default)]
    pub default: bool,
}

/// A cluster kubegate fronts, as the configuration resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    pub name: String,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub tenant_label: String,
}

/// Which Cedar policies are enforced, and which are trialled in shadow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Policy files (`.cedar`), or directories whose `.cedar` files are all read, validated in
    /// strict mode against the generated schema.
    pub files: Vec<PathBuf>,
    /// Also enforce the non-destructive policy set (as `ALLOW_ONLY_NON_DESTRUCTIVE_TOOLS=true` does).
    #[serde(default)]
    pub non_destructive: bool,
    /// Also enforce the read-only policy set (no write or destructive tool).
    #[serde(default)]
    pub read_only: bool,
    /// Templates linked once per tenant (`[[policy.links]]` with `template` and `tenants`).
    #[serde(default)]
    pub links: Vec<TenantLinks>,
    /// A policy set evaluated and recorded on every call, never enforced.
    #[serde(default)]
    pub shadow: Option<ShadowConfig>,
    /// Reload the policies when their files change (and on SIGHUP, always).
    #[serde(default = "default_true")]
    pub watch: bool,
}

/// The shadow policy set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    /// Policy files or directories.
    pub files: Vec<PathBuf>,
    /// The shadow set is the enforced set plus these files (true, to trial additions), or these
    /// files alone (false, to trial a replacement).
    #[serde(default = "default_true")]
    pub with_enforced: bool,
}

/// Where and how much kubegate's own audit trail records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    pub path: PathBuf,
    /// The level of records of every tool not named in `levels`.
    #[serde(default)]
    pub level: AuditLevel,
    /// Levels per action group (`read`, `write`, `destructive`, ...) or per tool name (a tool's
    /// name wins over its group): e.g. `{ destructive = "request", read = "metadata" }`.
    #[serde(default)]
    pub levels: std::collections::BTreeMap<String, AuditLevel>,
    /// An Ed25519 private key (PKCS#8 PEM) that signs the log's checkpoints. Without one,
    /// checkpoints are unsigned and a rewritten log goes undetected.
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// A checkpoint after this many records...
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// ... and at least this often, also when idle; `audit verify` takes a log whose last
    /// checkpoint is older than twice this, and which kubegate did not close, as cut.
    #[serde(default = "default_checkpoint_seconds")]
    pub checkpoint_interval_seconds: u64,
    /// Rotate the file at this size, in MiB (0: only on SIGHUP, by logrotate).
    #[serde(default = "default_max_file_mib")]
    pub max_file_mib: u64,
    /// Also wait for records of reads to reach the disk before answering (those of writes and
    /// destructive calls always do).
    #[serde(default)]
    pub sync_reads: bool,
    /// When a read's record cannot be written: `refuse` the answer (default), or `continue`,
    /// answering and counting the failure. Writes and destructive calls are always refused.
    #[serde(default)]
    pub on_read_failure: ReadFailure,
}

/// What a read does when its audit record cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFailure {
    #[default]
    Refuse,
    Continue,
}

impl AuditConfig {
    /// A log at `path` with every other setting at its default (as an `[audit]` section with
    /// only `path` would give).
    pub fn at(path: impl Into<PathBuf>) -> AuditConfig {
        AuditConfig {
            path: path.into(),
            level: AuditLevel::default(),
            levels: Default::default(),
            signing_key: None,
            checkpoint_every: default_checkpoint_every(),
            checkpoint_interval_seconds: default_checkpoint_seconds(),
            max_file_mib: default_max_file_mib(),
            sync_reads: false,
            on_read_failure: ReadFailure::default(),
        }
    }
}

fn default_checkpoint_every() -> u64 {
    1000
}
fn default_checkpoint_seconds() -> u64 {
    30
}
fn default_max_file_mib() -> u64 {
    256
}

/// How much of each call's arguments an audit record keeps. Written in records as Kubernetes
/// writes audit levels (`None`, `Metadata`, `Request`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all(deserialize = "lowercase", serialize = "PascalCase"))]
pub enum AuditLevel {
    /// No arguments.
    None,
    /// The argument names only.
    Metadata,
    /// The arguments in full.
    #[default]
    Request,
}

/// The default label that ties a namespace to its tenant.
pub const DEFAULT_TENANT_LABEL: &str = "kubegate.io/tenant";

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}
/// The cluster's name when the configuration gives none.
pub const DEFAULT_CLUSTER_NAME: &str = "default";
fn default_true() -> bool {
    true
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("configuration is not usable: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads, parses and checks a configuration file; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.apply_env(std::env::var(NON_DESTRUCTIVE_ENV).ok().as_deref())?;
        config.apply_seed_env(
            std::env::var(SSE_ENV).ok().as_deref(),
            std::env::var(PORT_ENV).ok().as_deref(),
        )?;
        config.check()?;
        Ok(config)
    }

    /// Makes every relative path in the configuration relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(tls) = self.tls.as_mut() {
            fix(&mut tls.cert);
            fix(&mut tls.key);
            if let Some(ca) = tls.client_ca.as_mut() {
                fix(ca);
            }
        }
        if let Some(auth) = self.auth.as_mut() {
            auth.resolve_paths(base);
        }
        if let Some(k) = self.kubernetes.kubeconfig.as_mut() {
            fix(k);
        }
        for cluster in &mut self.clusters {
            if let Some(k) = cluster.kubeconfig.as_mut() {
                fix(k);
            }
        }
        self.policy.files.iter_mut().for_each(fix);
        if let Some(shadow) = self.policy.shadow.as_mut() {
            shadow.files.iter_mut().for_each(fix);
        }
        if let Some(key) = self.mcp.session_key_file.as_mut() {
            fix(key);
        }
        fix(&mut self.audit.path);
        if let Some(key) = self.audit.signing_key.as_mut() {
            fix(key);
        }
    }

    /// Checks what serde cannot: settings that parse but could never work.
    pub fn check(&self) -> Result<(), ConfigError> {
        for name in self.audit.levels.keys() {
            let group = ["read", "write", "destructive"].contains(&name.as_str());
            if !group && crate::tool::spec(name).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "audit.levels names `{name}`, which is neither an action group (read, \
                     write, destructive) nor a tool"
                )));
            }
        }
        if let Some(auth) = &self.auth {
            auth.check()?;
        }
        if let Some(tls) = &self.tls
            && tls.client_ca.is_some()
        {
            if tls.client_username_prefix.is_none() || tls.client_group_prefix.is_none() {
                return Err(ConfigError::Invalid(
                    "tls.client_ca needs client_username_prefix and client_group_prefix: they \
                     keep certificate names apart from token names (e.g. \"mtls:\")"
                        .into(),
                ));
            }
            if tls.client_tenant.is_empty() {
                return Err(ConfigError::Invalid(
                    "tls.client_ca needs client_tenant: the tenant of callers known by their \
                     certificate"
                        .into(),
                ));
            }
            if self.http.plain_listen.is_some() && tls.client_auth == ClientAuth::Required {
                return Err(ConfigError::Invalid(
                    "http.plain_listen with tls.client_auth = \"required\": plain-HTTP callers \
                     present no certificate; drop one of the two"
                        .into(),
                ));
            }
            let ours = (
                tls.client_username_prefix.as_deref().unwrap_or_default(),
                tls.client_group_prefix.as_deref(),
            );
            for jwt in self.auth.iter().flat_map(|a| &a.jwt) {
                if let Some(kind) = auth::overlapping(ours, jwt.prefixes()) {
                    return Err(ConfigError::Invalid(format!(
                        "tls.client_{kind}_prefix overlaps the {kind} prefix of {}: a token \
                         could then name a certificate's caller, or the other way round",
                        jwt.issuer.url
                    )));
                }
            }
        }
        if self.http.plain_listen.is_some()
            && self.tls.is_none()
            && self.http.allowed_hosts.is_empty()
            && self.http.check_host
        {
            return Err(ConfigError::Invalid(
                "http.plain_listen without [tls] needs http.allowed_hosts: the names clients \
                 reach kubegate by (no certificate says them)"
                    .into(),
            ));
        }
        for proxy in &self.http.trusted_proxies {
            if crate::http::forwarded::parse_network(proxy).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "http.trusted_proxies holds {proxy:?}: write an address or a network \
                     (10.0.0.7, 10.0.0.0/8)"
                )));
            }
        }
        self.check_clusters()?;
        let http = &self.http;
        let zero = [
            ("max_connections", http.max_connections == 0),
            ("max_connections_per_ip", http.max_connections_per_ip == 0),
            ("max_exchanges", http.max_exchanges == 0),
            (
                "max_exchanges_per_caller",
                http.max_exchanges_per_caller == 0,
            ),
            (
                "max_streams_per_connection",
                http.max_streams_per_connection == 0,
            ),
            ("max_body_bytes", http.max_body_bytes == 0),
            (
                "unverified_tokens_per_ip_per_second",
                http.unverified_tokens_per_ip_per_second == 0,
            ),
            (
                "unauthenticated_records_per_ip_per_second",
                http.unauthenticated_records_per_ip_per_second == 0,
            ),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(ConfigError::Invalid(format!(
                "http.{name} is 0: nothing could ever be served"
            )));
        }
        if self.kubernetes.answer_memory_mib == Some(0) {
            return Err(ConfigError::Invalid(
                "kubernetes.answer_memory_mib is 0: no answer could ever be read".into(),
            ));
        }
        Ok(())
    }

    /// Checks the clusters: names that Cedar ids and the `context` argument can carry, each
    /// once, at most one default, and one way of naming them.
    fn check_clusters(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if !self.clusters.is_empty() {
            let single = [
                ("cluster_name", self.cluster_name.is_some()),
                (
                    "[kubernetes] kubeconfig",
                    self.kubernetes.kubeconfig.is_some(),
                ),
                ("[kubernetes] context", self.kubernetes.context.is_some()),
            ];
            if let Some((name, _)) = single.iter().find(|(_, set)| *set) {
                return invalid(format!(
                    "{name} is set beside [[clusters]]: with [[clusters]], each cluster names \
                     its own name, kubeconfig and context"
                ));
            }
            if self.clusters.iter().filter(|c| c.default).count() > 1 {
                return invalid("more than one of [[clusters]] says `default = true`".into());
            }
        }
        if self.clusters.is_empty() {
            // One cluster: its name as it always was, anything but empty.
            if self.cluster_name.as_deref() == Some("") {
                return invalid("cluster_name is empty".into());
            }
            return Ok(());
        }
        let mut seen = std::collections::HashSet::new();
        for cluster in self.clusters() {
            let name = &cluster.name;
            // `/` separates the parts of a Namespace or Object id (`<cluster>/<namespace>`).
            let usable = !name.is_empty()
                && name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !usable {
                return invalid(format!(
                    "cluster name {name:?} is not usable: write 1 to 63 letters, digits, `-`, \
                     `_` or `.` (it is the Cedar Cluster id and the tools' `context`)"
                ));
            }
            if !seen.insert(name.clone()) {
                return invalid(format!("cluster name `{name}` is given twice"));
            }
        }
        Ok(())
    }

    /// The clusters kubegate fronts, the default one first.
    pub fn clusters(&self) -> Vec<ClusterSettings> {
        let tenant_label = |own: &Option<String>| {
            own.clone()
                .unwrap_or_else(|| self.tenant_label().to_owned())
        };
        if self.clusters.is_empty() {
            return vec![ClusterSettings {
                name: self
                    .cluster_name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_CLUSTER_NAME.to_owned()),
                kubeconfig: self.kubernetes.kubeconfig.clone(),
                context: self.kubernetes.context.clone(),
                tenant_label: tenant_label(&None),
            }];
        }
        let default = self.clusters.iter().position(|c| c.default).unwrap_or(0);
        let mut clusters: Vec<ClusterSettings> = self
            .clusters
            .iter()
            .map(|c| ClusterSettings {
                name: c.name.clone(),
                kubeconfig: c.kubeconfig.clone(),
                context: c.context.clone(),
                tenant_label: tenant_label(&c.tenant_label),
            })
            .collect();
        clusters[..=default].rotate_right(1);
        clusters
    }

    /// The name of the default cluster (the Cedar `Cluster` id of calls that name none).
    pub fn cluster_name(&self) -> String {
        self.clusters().swap_remove(0).name
    }

    /// Applies the seed's `ALLOW_ONLY_NON_DESTRUCTIVE_TOOLS` (its value, if set): `true` adds
    /// the non-destructive set, `false` leaves the file's choice; anything else is refused, so
    /// that a typo (`on`, `TRUE1`) cannot silently mean false.
    pub fn apply_env(&mut self, non_destructive: Option<&str>) -> Result<(), ConfigError> {
        let Some(value) = non_destructive else {
            return Ok(());
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" => self.policy.non_destructive = true,
            "false" => {}
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "{NON_DESTRUCTIVE_ENV} must be \"true\" or \"false\", not {value:?}"
                )));
            }
        }
        Ok(())
    }

    /// Applies mcp-server-kubernetes's settings, if set: `ENABLE_UNSAFE_SSE_TRANSPORT` (`1` or
    /// `true` turns the legacy SSE transport on, `0` or `false` leaves the file's choice) and,
    /// with it on, `PORT` (the port to listen on, as it is the SSE server's port there; a `PORT`
    /// set for something else does not move kubegate). Anything else is refused.
    pub fn apply_seed_env(
        &mut self,
        sse: Option<&str>,
        port: Option<&str>,
    ) -> Result<(), ConfigError> {
        let mut enabled_here = false;
        if let Some(value) = sse {
            match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" => {
                    self.mcp.sse = true;
                    enabled_here = true;
                }
                "0" | "false" => {}
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "{SSE_ENV} must be 1, true, 0 or false, not {value:?}"
                    )));
                }
            }
        }
        if let Some(value) = port.filter(|_| enabled_here) {
            let port: u16 = value.trim().parse().map_err(|_| {
                ConfigError::Invalid(format!("{PORT_ENV} must be a port number, not {value:?}"))
            })?;
            self.listen.set_port(port);
        }
        Ok(())
    }

    /// Whether the non-destructive policy set is enforced.
    pub fn non_destructive(&self) -> bool {
        self.policy.non_destructive
    }

    /// Where the policy engine reads its policies.
    pub fn policy_sources(&self) -> PolicySources {
        PolicySources {
            paths: self.policy.files.clone(),
            inline: Vec::new(),
            non_destructive: self.policy.non_destructive,
            read_only: self.policy.read_only,
            links: self.policy.links.clone(),
            shadow: self.policy.shadow.as_ref().map(|shadow| ShadowSources {
                paths: shadow.files.clone(),
                inline: Vec::new(),
                with_enforced: shadow.with_enforced,
            }),
        }
    }

    /// The tenant label in effect.
    pub fn tenant_label(&self) -> &str {
        self.kubernetes
            .tenant_label
            .as_deref()
            .unwrap_or(DEFAULT_TENANT_LABEL)
    }
}

#[cfg(test)]
mod tests;

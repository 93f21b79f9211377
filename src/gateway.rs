//! Holds the parts of a running kubegate (authenticator, policy engine, the clusters it fronts,
//! audit log, sessions) and builds them, in order, from a configuration.

use std::sync::Arc;

use crate::audit::{AuditError, AuditLog};
use crate::auth::{AuthSetupError, Authenticator};
use crate::clusters::Clusters;
use crate::config::Config;
use crate::http::Guards;
use crate::http::origin::HostCheck;
use crate::kube::KubeError;
use crate::mcp::session::Sessions;
use crate::policy::{PolicyEngine, PolicyError};

/// Everything a request needs, shared by all connections.
pub struct Gateway {
    pub guards: Guards,
    pub auth: Authenticator,
    /// The default cluster's policy engine (every cluster's engine shares its policies).
    pub policy: Arc<PolicyEngine>,
    /// The clusters kubegate fronts (their connections, engines and analysis settings).
    pub clusters: Clusters,
    pub audit: AuditLog,
    pub sessions: Sessions,
    /// Requests in flight, for `notifications/cancelled`.
    pub inflight: crate::mcp::inflight::InFlight,
    /// How client certificates name callers (none without `[tls] client_ca`).
    pub certificates: Option<crate::auth::certificate::CertificateNames>,
    /// What `/.well-known/oauth-protected-resource` says (none without `[auth]`).
    pub protected_resource: Option<crate::http::oauth::ProtectedResource>,
    /// Requests kubegate sent to clients (`sampling/createMessage`), waiting for their answers.
    pub peers: crate::mcp::peer::Peers,
}

/// Why kubegate could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("authentication setup failed")]
    Auth(#[from] AuthSetupError),
    #[error("policies could not be loaded")]
    Policy(#[from] PolicyError),
    #[error("the audit log cannot be opened")]
    Audit(#[from] AuditError),
    #[error("Kubernetes is not reachable as kubegate")]
    Kube(#[from] KubeError),
    #[error("the session key cannot be used")]
    Sessions(#[from] crate::mcp::session::SessionKeyError),
    #[error("the analysis model cannot be used: {0}")]
    Analysis(String),
}

impl Gateway {
    /// Builds every part from the configuration: cheap local checks first (keys, policies, audit
    /// log), then Kubernetes (discovery and the namespace cache), so a typo fails fast.
    pub async fn start(config: &Config) -> Result<Gateway, StartError> {
        let hosts = HostCheck::new(
            &config.http,
            config
                .tls
                .as_ref()
                .and_then(|tls| crate::tls::first_certificate(&tls.cert)),
            config.listen,
        );
        let guards = Guards::new(&config.http, hosts, config.mcp.sse);
        // Without [auth] (kubegate stdio), no token is ever accepted.
        let auth = match &config.auth {
            Some(auth) => Authenticator::from_config(auth)?,
            None => Authenticator::refusing(),
        }
        .with_signature_budget(config.http.unverified_tokens_per_ip_per_second);
        auth.start();
        let policy = PolicyEngine::load(config.policy_sources(), &config.cluster_name())?;
        if policy.is_empty() {
            tracing::warn!("no policies are loaded: every call will be refused");
        }
        for note in policy.notes() {
            tracing::warn!("{note}");
        }
        let sessions = Sessions::new(
            config.mcp.session_key_file.as_deref(),
            config.mcp.session_lifetime_seconds.map_or(
                crate::mcp::session::DEFAULT_LIFETIME,
                std::time::Duration::from_secs,
            ),
        )?;
        if config.mcp.session_key_file.is_none() {
            tracing::info!(
                "no mcp.session_key_file: sessions are signed with this process's own key and \
                 are not honoured by other replicas or after a restart"
            );
        }
        let policy = Arc::new(policy);
        crate::policy::reload::spawn(Arc::clone(&policy), config.policy.watch);
        let audit = AuditLog::open(&config.audit)?
            .with_unauthenticated_rate(config.http.unauthenticated_records_per_ip_per_second);
        let clusters = Clusters::start(config, Arc::clone(&policy)).await?;
        tracing::info!(
            clusters = clusters.iter().count(),
            policies = policy.len(),
            policy.version = %policy.version(),
            shadow = policy.has_shadow(),
            non_destructive = config.non_destructive(),
            "kubegate is ready"
        );
        Ok(Gateway {
            peers: Default::default(),
            guards,
            auth,
            policy,
            clusters,
            audit,
            sessions,
            inflight: Default::default(),
            certificates: crate::auth::certificate::CertificateNames::from_config(
                config.tls.as_ref(),
                &config
                    .auth
                    .as_ref()
                    .map(|a| a.never_impersonate.clone())
                    .unwrap_or_default(),
            ),
            protected_resource: crate::http::oauth::ProtectedResource::from_config(
                config.auth.as_ref(),
            ),
        })
    }
}

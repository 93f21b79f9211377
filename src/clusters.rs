//! The clusters kubegate fronts. Each has its name (the Cedar `Cluster` id, and the value of
//! the tools' `context` argument), its policy engine (the one policy set, deciding on this
//! cluster's ids), the tenants' analysis settings kept there, and its connection: kubegate's
//! own client, discovery and namespace watch ([`Kube`]).
//!
//! # One cluster down
//! With several clusters, a cluster that cannot be reached at start is connected in the
//! background, again and again until it answers: kubegate serves the others meanwhile, and a
//! call to it is refused with a message that says so. Once connected, a cluster's parts
//! recover by themselves (each request is its own; the namespace watch restarts), and an
//! error of one call names its cluster. A single cluster keeps the stricter start: kubegate
//! does not start without it.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crate::config::{AnalysisConfig, ClusterSettings, Config};
use crate::gateway::StartError;
use crate::kube::{AnswerMemory, DEFAULT_ANSWER_MIB, Kube, SettingsStore};
use crate::policy::{NamespaceDirectory, PolicyEngine};
use crate::tool::Analysis;

/// How long kubegate's start waits for every cluster's first attempt to connect; a cluster
/// still connecting then goes on in the background.
const FIRST_ATTEMPT: Duration = Duration::from_secs(20);
/// The longest pause between two attempts to connect to an unreachable cluster.
const MOST_BETWEEN_ATTEMPTS: Duration = Duration::from_secs(8);

/// Every cluster kubegate fronts, the default one first.
pub struct Clusters {
    all: Vec<Arc<Cluster>>,
}

/// One cluster kubegate fronts.
pub struct Cluster {
    pub name: String,
    /// The policies, deciding on this cluster's `Cluster`, `Namespace` and `Object` ids.
    pub policy: Arc<PolicyEngine>,
    /// Tenants' analysis settings (kept in this cluster) and recent `analyze` answers.
    pub analysis: Analysis,
    kube: OnceLock<Kube>,
    /// Why the last attempt to connect failed, while not connected.
    failing: Mutex<Option<String>>,
}

/// Why a call cannot go to the cluster it names.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "unknown context `{0}`: it names no cluster kubegate fronts; list-clusters shows the \
         clusters you may use"
    )]
    Unknown(String),
    /// `why` (an address, a certificate problem) is for the audit record and the log only.
    #[error(
        "cluster `{name}` is not reachable now; kubegate keeps trying to connect to it, so try \
         again later"
    )]
    Unreachable { name: String, why: String },
}

impl ClusterError {
    /// The message and, for an unreachable cluster, why (for the record and the log).
    pub fn detail(&self) -> String {
        match self {
            ClusterError::Unreachable { why, .. } => format!("{self} ({why})"),
            ClusterError::Unknown(_) => self.to_string(),
        }
    }
}

impl Clusters {
    /// Builds every configured cluster with `policy` (the default cluster's engine) and
    /// connects to them; see the module's notes for a cluster that does not answer.
    pub async fn start(config: &Config, policy: Arc<PolicyEngine>) -> Result<Clusters, StartError> {
        let settings = config.clusters();
        let memory = AnswerMemory::new(
            config
                .kubernetes
                .answer_memory_mib
                .unwrap_or(DEFAULT_ANSWER_MIB),
        );
        let mut all = Vec::with_capacity(settings.len());
        let mut clients = Vec::with_capacity(settings.len());
        for cluster in &settings {
            let policy = if all.is_empty() {
                Arc::clone(&policy)
            } else {
                Arc::new(policy.for_cluster(&cluster.name))
            };
            let client = Kube::client(cluster).await?;
            all.push(Arc::new(Cluster {
                name: cluster.name.clone(),
                policy,
                analysis: analysis(client.clone(), &config.analysis)?,
                kube: OnceLock::new(),
                failing: Mutex::new(None),
            }));
            clients.push(client);
        }
        if let ([cluster], [client]) = (all.as_slice(), clients.as_slice()) {
            let kube =
                Kube::start(client.clone(), &settings[0], &config.kubernetes, memory).await?;
            let _ = cluster.kube.set(kube);
            return Ok(Clusters { all });
        }
        let mut first = tokio::task::JoinSet::new();
        for ((cluster, client), settings) in all.iter().zip(clients).zip(settings) {
            let (tried, attempt) = tokio::sync::oneshot::channel();
            tokio::spawn(keep_connecting(
                Arc::downgrade(cluster),
                client,
                settings,
                config.kubernetes.clone(),
                memory.clone(),
                tried,
            ));
            first.spawn(attempt);
        }
        let _ = tokio::time::timeout(FIRST_ATTEMPT, first.join_all()).await;
        Ok(Clusters { all })
    }

    /// The cluster of calls that name none.
    pub fn default_cluster(&self) -> &Arc<Cluster> {
        &self.all[0]
    }

    /// The cluster a call's `context` names, or the default one.
    pub fn get(&self, context: Option<&str>) -> Result<&Arc<Cluster>, ClusterError> {
        match context {
            None => Ok(self.default_cluster()),
            Some(name) => self
                .all
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| ClusterError::Unknown(name.chars().take(64).collect())),
        }
    }

    /// The default cluster if kubegate is connected to it, else the first one it is connected
    /// to (else the default).
    pub fn first_reachable(&self) -> &Arc<Cluster> {
        self.all
            .iter()
            .find(|c| c.kube.get().is_some())
            .unwrap_or(self.default_cluster())
    }

    /// Whether kubegate fronts more than one cluster (then tools take `context`).
    pub fn several(&self) -> bool {
        self.all.len() > 1
    }

    /// Every cluster, the default one first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Cluster>> {
        self.all.iter()
    }
}

/// A cluster a call goes to, connected.
#[derive(Clone, Copy)]
pub struct Reached<'a> {
    pub cluster: &'a Cluster,
    pub kube: &'a Kube,
}

impl Cluster {
    /// The cluster with its connection, if kubegate has connected to it.
    pub fn reach(&self) -> Result<Reached<'_>, ClusterError> {
        Ok(Reached {
            cluster: self,
            kube: self.kube()?,
        })
    }

    /// The connection, once kubegate has connected.
    pub fn kube(&self) -> Result<&Kube, ClusterError> {
        self.kube.get().ok_or_else(|| ClusterError::Unreachable {
            name: self.name.clone(),
            why: self
                .failing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_else(|| "kubegate is still connecting".to_owned()),
        })
    }

    /// Why this cluster cannot serve calls now, if it cannot (not connected, or its copy of
    /// the namespaces is out of date).
    pub fn unready(&self) -> Option<String> {
        match self.kube() {
            Ok(kube) => kube.namespaces().stale(),
            Err(error) => Some(error.detail()),
        }
    }
}

fn analysis(client: kube::Client, config: &AnalysisConfig) -> Result<Analysis, StartError> {
    Analysis::new(
        SettingsStore::new(client, &config.namespace),
        config.clone(),
    )
    .map_err(StartError::Analysis)
}

/// Connects to one cluster, again after each failure (waiting longer each time, up to
/// [`MOST_BETWEEN_ATTEMPTS`]), until it answers or the cluster is dropped (its gateway with
/// it); `tried` hears when the first attempt ends. A failed attempt leaves nothing running.
async fn keep_connecting(
    cluster: Weak<Cluster>,
    client: kube::Client,
    settings: ClusterSettings,
    kubernetes: crate::config::KubernetesConfig,
    memory: AnswerMemory,
    tried: tokio::sync::oneshot::Sender<()>,
) {
    let mut tried = Some(tried);
    let mut pause = Duration::from_millis(500);
    loop {
        let attempt = Kube::start(client.clone(), &settings, &kubernetes, memory.clone()).await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        match attempt {
            Ok(kube) => {
                let _ = cluster.kube.set(kube);
                *cluster.failing.lock().unwrap_or_else(|e| e.into_inner()) = None;
                tracing::info!(cluster = %cluster.name, "connected to the cluster");
                if let Some(tried) = tried.take() {
                    let _ = tried.send(());
                }
                return;
            }
            Err(error) => {
                let why = describe(&error);
                let mut failing = cluster.failing.lock().unwrap_or_else(|e| e.into_inner());
                // Said once per reason, not once per attempt.
                if failing.as_deref() != Some(why.as_str()) {
                    tracing::warn!(cluster = %cluster.name, %why, "cannot connect to the cluster; retrying");
                }
                *failing = Some(why);
            }
        }
        drop(cluster);
        if let Some(tried) = tried.take() {
            let _ = tried.send(());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MOST_BETWEEN_ATTEMPTS);
    }
}

/// An error and, after it, its innermost cause (a refused connection, a certificate problem).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if std::ptr::addr_eq(cause, error) {
        error.to_string()
    } else {
        format!("{error}: {cause}")
    }
}

//! Finds what the API server serves (every group, version and kind, with its plural and scope) so
//! that tools name kinds, not URLs, and keeps it fresh: discovery runs at start, every few
//! minutes, and again when a request for a kind it found comes back "not found" (an API server
//! upgrade that moves a kind, such as CronJob from `batch/v1beta1` to `batch/v1`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kube::core::ApiResource;
use kube::discovery::{Discovery, Scope};
use tokio::time::Instant;

use super::{BuiltinKind, KubeError};

/// How often discovery runs on its own.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// The least time between two discoveries caused by "not found" answers, so that a caller
/// asking for missing kinds cannot make kubegate hammer the API server.
const REDISCOVER_AT_MOST_EVERY: Duration = Duration::from_secs(10);

/// A kind as the API server serves it.
#[derive(Debug, Clone)]
pub struct Served {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// One discovery's findings.
#[derive(Debug, Default)]
pub struct ApiCatalog {
    /// The built-in kinds, at the version kubegate prefers for each.
    builtin: HashMap<BuiltinKind, Served>,
    /// Every served `(group, version, kind)`.
    by_gvk: HashMap<(String, String, String), Served>,
    /// Every served `(group, kind)`, with its versions (preferred first).
    versions: HashMap<(String, String), Vec<String>>,
}

impl ApiCatalog {
    /// The built-in kinds at their current versions, for deciding calls where no cluster is at
    /// hand (`kubegate policy test`); kinds a cluster adds (custom resources) are not in it.
    pub fn offline() -> ApiCatalog {
        ApiCatalog::of(BuiltinKind::ALL.into_iter().map(|kind| {
            let group = kind.groups()[0];
            let gvk = kube::core::GroupVersionKind::gvk(group, "v1", kind.kind());
            Served {
                resource: ApiResource::from_gvk_with_plural(&gvk, kind.plural()),
                namespaced: kind.namespaced(),
            }
        }))
    }

    pub fn builtin(&self, kind: BuiltinKind) -> Option<&Served> {
        self.builtin.get(&kind)
    }

    /// The kind an object names by `apiVersion` and `kind`, if served at that version.
    pub fn by_api_version(&self, api_version: &str, kind: &str) -> Option<&Served> {
        let (group, version) = split_api_version(api_version);
        self.by_gvk
            .get(&(group.to_owned(), version.to_owned(), kind.to_owned()))
    }

    /// The versions a `(group, kind)` is served at, preferred first.
    pub fn versions_of(&self, group: &str, kind: &str) -> &[String] {
        self.versions
            .get(&(group.to_owned(), kind.to_owned()))
            .map_or(&[], Vec::as_slice)
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// The current catalog, replaced whole by each discovery.
#[derive(Clone)]
pub struct Discovered {
    current: Arc<RwLock<Arc<ApiCatalog>>>,
    last_run: Arc<Mutex<Instant>>,
    client: kube::Client,
    /// The refresh every [`REFRESH_EVERY`], stopped with the last clone.
    _refresh: Arc<super::Background>,
}

impl Discovered {
    /// Runs discovery once, then keeps it fresh on the current runtime.
    pub async fn start(client: kube::Client) -> Result<Discovered, KubeError> {
        let catalog = discover(&client).await?;
        let current = Arc::new(RwLock::new(Arc::new(catalog)));
        let (into, from) = (Arc::clone(&current), client.clone());
        let refresh = super::Background::spawn(async move {
            let mut every = tokio::time::interval(REFRESH_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                refresh(&from, &into).await;
            }
        });
        Ok(Discovered {
            current,
            last_run: Arc::new(Mutex::new(Instant::now())),
            client,
            _refresh: refresh,
        })
    }

    /// The current catalog.
    pub fn catalog(&self) -> Arc<ApiCatalog> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs discovery again unless it ran moments ago; returns whether it ran.
    pub async fn rediscover(&self) -> bool {
        {
            let mut last = self.last_run.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < REDISCOVER_AT_MOST_EVERY {
                return false;
            }
            *last = Instant::now();
        }
        self.refresh().await;
        true
    }

    async fn refresh(&self) {
        refresh(&self.client, &self.current).await;
    }
}

/// Runs discovery and, if it succeeds, puts its catalog in `current`.
async fn refresh(client: &kube::Client, current: &RwLock<Arc<ApiCatalog>>) {
    match discover(client).await {
        Ok(catalog) => *current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(catalog),
        Err(error) => tracing::warn!(%error, "API discovery failed; keeping the last result"),
    }
}

async fn discover(client: &kube::Client) -> Result<ApiCatalog, KubeError> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(KubeError::Discovery)?;
    let mut served = Vec::new();
    for group in discovery.groups() {
        let preferred = group.preferred_version_or_latest().to_owned();
        let versions =
            std::iter::once(preferred.as_str()).chain(group.versions().filter(|v| *v != preferred));
        for version in versions {
            for (resource, capabilities) in group.versioned_resources(version) {
                served.push(Served {
                    namespaced: matches!(capabilities.scope, Scope::Namespaced),
                    resource,
                });
            }
        }
    }
    Ok(ApiCatalog::of(served))
}

impl ApiCatalog {
    /// A catalog of these kinds, each group's versions given preferred first (as discovery
    /// lists them). Built-in kinds resolve to the first version serving them in the first of
    /// their groups that does (as kubectl does; Kubernetes 1.20 serves `batch/v1` but CronJob
    /// only at `batch/v1beta1`).
    pub fn of(served: impl IntoIterator<Item = Served>) -> ApiCatalog {
        let mut catalog = ApiCatalog::default();
        for kind in served {
            let resource = &kind.resource;
            catalog
                .versions
                .entry((resource.group.clone(), resource.kind.clone()))
                .or_default()
                .push(resource.version.clone());
            catalog.by_gvk.insert(
                (
                    resource.group.clone(),
                    resource.version.clone(),
                    resource.kind.clone(),
                ),
                kind,
            );
        }
        for builtin in BuiltinKind::ALL {
            let found = builtin.groups().iter().find_map(|group| {
                let version = catalog.versions_of(group, builtin.kind()).first()?;
                catalog
                    .by_gvk
                    .get(&(
                        (*group).to_owned(),
                        version.clone(),
                        builtin.kind().to_owned(),
                    ))
                    .cloned()
            });
            match found {
                Some(served) => {
                    catalog.builtin.insert(builtin, served);
                }
                None => tracing::debug!(
                    kind = builtin.kind(),
                    "the API server does not serve this kind"
                ),
            }
        }
        catalog
    }
}

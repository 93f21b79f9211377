//! Keeps a live copy of the cluster's namespaces (labels, tenant) from a watch under kubegate's own
//! identity, so that policy decisions never cost a round trip to the API server; and knows when
//! that copy can no longer be trusted (its watch has failed for longer than a bound), so that
//! decisions that read it refuse and readiness says so.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;

use super::KubeError;
use crate::policy::{NamespaceDirectory, NamespaceFacts};

/// How long start-up waits for the first full list of namespaces.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the namespace watch may fail before its copy is stale, unless configured.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(60);

/// The namespace cache.
#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<Namespace>,
    tenant_label: String,
    health: Arc<WatchHealth>,
    /// The watch feeding `store`, stopped with the last clone (or if the cache never fills).
    _watch: Arc<super::Background>,
}

/// Whether the watch feeding the cache works, and since when it has not.
#[derive(Debug)]
pub struct WatchHealth {
    failing_since: Mutex<Option<Instant>>,
    stale_after: Duration,
}

impl WatchHealth {
    pub fn new(stale_after: Duration) -> WatchHealth {
        WatchHealth {
            failing_since: Mutex::new(None),
            stale_after,
        }
    }

    /// Notes what the watch just did: an error starts (or continues) a failure; anything else
    /// ends it.
    pub fn note(&self, ok: bool) {
        let mut since = self.failing_since.lock().unwrap_or_else(|e| e.into_inner());
        match (ok, *since) {
            (true, _) => *since = None,
            (false, None) => *since = Some(Instant::now()),
            (false, Some(_)) => {}
        }
    }

    /// Why the copy is not to be trusted, if it is not: the watch has failed for too long.
    pub fn stale(&self) -> Option<String> {
        let since = (*self.failing_since.lock().unwrap_or_else(|e| e.into_inner()))?;
        let failing = since.elapsed();
        (failing > self.stale_after).then(|| {
            format!(
                "kubegate's copy of the cluster's namespaces is out of date (its watch has failed \
                 for {} s), so it refuses what depends on them until the watch recovers",
                failing.as_secs()
            )
        })
    }
}

impl NamespaceCache {
    /// Checks that kubegate may list namespaces, starts the watch on the current runtime, and
    /// returns once the cache holds a full list.
    pub async fn start(
        client: kube::Client,
        tenant_label: &str,
        stale_after: Duration,
    ) -> Result<NamespaceCache, KubeError> {
        let api: Api<Namespace> = Api::all(client);
        // One plain list first: a missing RBAC grant then fails start-up with a clear error
        // instead of a watch that retries forever.
        api.list_metadata(&ListParams::default().limit(1))
            .await
            .map_err(KubeError::NamespaceWatch)?;
        let (store, writer) = reflector::store();
        let health = Arc::new(WatchHealth::new(stale_after));
        let watching = super::Background::spawn(watch(api, writer, Arc::clone(&health)));
        tokio::time::timeout(SYNC_TIMEOUT, store.wait_until_ready())
            .await
            .map_err(|_| KubeError::NamespaceSync)?
            .map_err(|_| KubeError::NamespaceSync)?;
        Ok(NamespaceCache {
            store,
            tenant_label: tenant_label.to_owned(),
            health,
            _watch: watching,
        })
    }
}

/// Feeds the cache for as long as kubegate runs. Every interruption starts the watch over with
/// a fresh list, after a short backoff: the list's end is what proves the copy whole and current
/// again (a watch resumed where it stopped says nothing until a namespace changes, so its copy
/// could not be told recovered from still broken).
async fn watch(
    api: Api<Namespace>,
    mut writer: reflector::store::Writer<Namespace>,
    health: Arc<WatchHealth>,
) {
    let mut backoff = WATCH_BACKOFF_MIN;
    loop {
        let mut events = std::pin::pin!(watcher(api.clone(), watcher::Config::default()));
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    writer.apply_watcher_event(&event);
                    if matches!(
                        event,
                        watcher::Event::InitDone
                            | watcher::Event::Apply(_)
                            | watcher::Event::Delete(_)
                    ) {
                        health.note(true);
                        backoff = WATCH_BACKOFF_MIN;
                    }
                }
                Err(error) => {
                    health.note(false);
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis(), "namespace watch interrupted; listing again");
                    break;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(WATCH_BACKOFF_MAX);
    }
}

/// The wait before listing again after the watch failed: doubling from the least to the most.
const WATCH_BACKOFF_MIN: Duration = Duration::from_millis(500);
const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// One namespace as `list-namespaces` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSummary {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `Active` or `Terminating`.
    pub phase: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl NamespaceCache {
    /// The namespace called `name`, as `list-namespaces` shows it.
    pub fn summary(&self, name: &str) -> Option<NamespaceSummary> {
        let ns = self.store.get(&ObjectRef::new(name))?;
        let labels: BTreeMap<String, String> = ns.metadata.labels.clone().unwrap_or_default();
        Some(NamespaceSummary {
            name: name.to_owned(),
            tenant: labels.get(&self.tenant_label).cloned(),
            phase: ns
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Active".to_owned()),
            created: ns
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string()),
            labels,
        })
    }
}

impl NamespaceDirectory for NamespaceCache {
    fn namespace(&self, name: &str) -> Option<NamespaceFacts> {
        let ns = self.store.get(&ObjectRef::new(name))?;
        let labels: BTreeMap<String, String> = ns.metadata.labels.clone().unwrap_or_default();
        let tenant = labels.get(&self.tenant_label).cloned();
        Some(NamespaceFacts { labels, tenant })
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .store
            .state()
            .iter()
            .filter_map(|ns| ns.metadata.name.clone())
            .collect();
        names.sort_unstable();
        names
    }

    fn stale(&self) -> Option<String> {
        self.health.stale()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_failing_for_longer_than_the_bound_makes_the_copy_stale_until_it_recovers() {
        let health = WatchHealth::new(Duration::from_millis(30));
        assert_eq!(health.stale(), None);
        health.note(false);
        assert_eq!(health.stale(), None, "a short failure is tolerated");
        std::thread::sleep(Duration::from_millis(60));
        health.note(false);
        let stale = health.stale().unwrap_or_default();
        assert!(stale.contains("out of date"), "{stale}");
        health.note(true);
        assert_eq!(health.stale(), None, "a working watch is fresh again");
    }
}

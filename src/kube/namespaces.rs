//! Keeps a live copy of the cluster's namespaces (labels, tenant) from a watch under kubegate's own
//! identity, so that policy decisions never cost a round trip to the API server.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use super::KubeError;
use crate::policy::{NamespaceDirectory, NamespaceFacts};

/// How long start-up waits for the first full list of namespaces.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// The namespace cache.
#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<Namespace>,
    tenant_label: String,
}

impl NamespaceCache {
    /// Checks that kubegate may list namespaces, starts the watch on the current runtime, and
    /// returns once the cache holds a full list.
    pub async fn start(
        client: kube::Client,
        tenant_label: &str,
    ) -> Result<NamespaceCache, KubeError> {
        let api: Api<Namespace> = Api::all(client);
        // One plain list first: a missing RBAC grant then fails start-up with a clear error
        // instead of a watch that retries forever.
        api.list_metadata(&ListParams::default().limit(1))
            .await
            .map_err(KubeError::NamespaceWatch)?;
        let (store, writer) = reflector::store();
        let watch = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .for_each(|event| async move {
                if let Err(error) = event {
                    tracing::warn!(%error, "namespace watch interrupted; retrying");
                }
            });
        tokio::spawn(watch);
        tokio::time::timeout(SYNC_TIMEOUT, store.wait_until_ready())
            .await
            .map_err(|_| KubeError::NamespaceSync)?
            .map_err(|_| KubeError::NamespaceSync)?;
        Ok(NamespaceCache {
            store,
            tenant_label: tenant_label.to_owned(),
        })
    }
}

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
}

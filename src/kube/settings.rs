//! Keeps each tenant's analysis settings (active analyzers, result cache TTL, custom analyzers)
//! in the cluster itself: one ConfigMap per tenant in kubegate's own namespace, read and written
//! as kubegate, so that they survive a restart and every replica sees the same ones.
//!
//! Kubernetes: `get`, `create` and `update` on `configmaps` in kubegate's namespace (only there,
//! and only ConfigMaps named `kubegate-analysis-…`). A change is a read-modify-write guarded by
//! the ConfigMap's `resourceVersion`: when two replicas change one tenant's settings at once, the
//! API server refuses the second write (409) and it is made again on what the first wrote, so no
//! change is lost.
//!
//! Callers never reach this directly: the tools that change settings are decided by policy
//! first, and only the caller's own tenant's ConfigMap is ever named.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::KubeError;

/// How many times a change is made again after a concurrent one won.
const CONFLICT_RETRIES: usize = 8;
/// The label that marks kubegate's settings ConfigMaps (and names their kind of content).
pub const SETTINGS_LABEL: &str = "kubegate.io/settings";

/// A tenant's analysis settings. `None` fields mean "kubegate's default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSettings {
    /// The analyzers `analyze` runs when the call names none (`None`: the core ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<String>>,
    /// How long a caller's `analyze` answer is reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl_seconds: Option<u64>,
    /// Custom analyzers: HTTP endpoints (from the operator's allowlist) that `analyze` asks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_analyzers: Vec<CustomAnalyzer>,
}

/// An analyzer served over HTTP (k8sgpt's custom analyzers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomAnalyzer {
    pub name: String,
    pub url: String,
}

/// Where the settings live.
#[derive(Clone)]
pub struct SettingsStore {
    configmaps: Api<ConfigMap>,
    namespace: String,
}

/// A change of settings could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Rejected(String),
    #[error("the settings could not be read or written in namespace {namespace:?}: {source}")]
    Store {
        namespace: String,
        #[source]
        source: KubeError,
    },
    #[error(
        "the settings kept changing under this write ({CONFLICT_RETRIES} concurrent changes won); try again"
    )]
    Contended,
}

impl SettingsStore {
    /// The store in `namespace`, reached with kubegate's own client.
    pub fn new(client: kube::Client, namespace: &str) -> SettingsStore {
        SettingsStore {
            configmaps: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
        }
    }

    /// The namespace the settings live in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The tenant's settings (the defaults if it has none yet).
    pub async fn read(&self, tenant: &str) -> Result<TenantSettings, SettingsError> {
        Ok(self.fetch(tenant).await?.0)
    }

    /// Changes the tenant's settings with `change` (which may refuse, with a message for the
    /// caller) and returns them as written. Safe against concurrent changes by other replicas.
    pub async fn update(
        &self,
        tenant: &str,
        mut change: impl FnMut(&mut TenantSettings) -> Result<(), String>,
    ) -> Result<TenantSettings, SettingsError> {
        for _ in 0..CONFLICT_RETRIES {
            let (mut settings, existing) = self.fetch(tenant).await?;
            change(&mut settings).map_err(SettingsError::Rejected)?;
            let written = match existing {
                Some(mut map) => {
                    map.data = Some(encode(&settings));
                    self.configmaps
                        .replace(&configmap_name(tenant), &PostParams::default(), &map)
                        .await
                }
                None => {
                    let map = ConfigMap {
                        metadata: kube::api::ObjectMeta {
                            name: Some(configmap_name(tenant)),
                            labels: Some(BTreeMap::from([(
                                SETTINGS_LABEL.to_owned(),
                                "analysis".to_owned(),
                            )])),
                            annotations: Some(BTreeMap::from([(
                                "kubegate.io/tenant".to_owned(),
                                tenant.to_owned(),
                            )])),
                            ..Default::default()
                        },
                        data: Some(encode(&settings)),
                        ..Default::default()
                    };
                    self.configmaps.create(&PostParams::default(), &map).await
                }
            };
            match written {
                Ok(_) => return Ok(settings),
                // Another replica changed (or created) it since we read it: read again.
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(error) => return Err(self.failed(error)),
            }
        }
        Err(SettingsError::Contended)
    }

    async fn fetch(
        &self,
        tenant: &str,
    ) -> Result<(TenantSettings, Option<ConfigMap>), SettingsError> {
        let map = self
            .configmaps
            .get_opt(&configmap_name(tenant))
            .await
            .map_err(|e| self.failed(e))?;
        let settings = map
            .as_ref()
            .and_then(|m| m.data.as_ref())
            .map(decode)
            .unwrap_or_default();
        Ok((settings, map))
    }

    fn failed(&self, error: kube::Error) -> SettingsError {
        SettingsError::Store {
            namespace: self.namespace.clone(),
            source: KubeError::Request(error),
        }
    }
}

/// The ConfigMap of a tenant: `kubegate-analysis-<tenant>` when the tenant's name fits a
/// ConfigMap name, else (or when it could collide) a hash of it.
pub fn configmap_name(tenant: &str) -> String {
    let fits = !tenant.is_empty()
        && tenant.len() <= 40
        && tenant
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !tenant.starts_with('-')
        && !tenant.ends_with('-')
        // A tenant literally named like a hash could collide with a hashed one.
        && !tenant.starts_with("h-");
    if fits {
        format!("kubegate-analysis-{tenant}")
    } else {
        let digest = Sha256::digest(tenant.as_bytes());
        let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
        format!("kubegate-analysis-h-{hex}")
    }
}

/// The ConfigMap's data keys: one per setting, so an operator reads them with kubectl.
fn encode(settings: &TenantSettings) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    if let Some(filters) = &settings.filters {
        data.insert("filters".to_owned(), filters.join(","));
    }
    if let Some(ttl) = settings.cache_ttl_seconds {
        data.insert("cache-ttl-seconds".to_owned(), ttl.to_string());
    }
    if !settings.custom_analyzers.is_empty() {
        data.insert(
            "custom-analyzers".to_owned(),
            serde_json::to_string(&settings.custom_analyzers).unwrap_or_default(),
        );
    }
    data
}

/// Reads the data keys back; what does not parse (an operator's typo) is the default.
fn decode(data: &BTreeMap<String, String>) -> TenantSettings {
    TenantSettings {
        filters: data.get("filters").map(|f| {
            f.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }),
        cache_ttl_seconds: data
            .get("cache-ttl-seconds")
            .and_then(|t| t.trim().parse().ok()),
        custom_analyzers: data
            .get("custom-analyzers")
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_get_their_own_configmap_names_and_odd_names_are_hashed() {
        assert_eq!(configmap_name("team-a"), "kubegate-analysis-team-a");
        let odd = configmap_name("Team A/x");
        assert!(odd.starts_with("kubegate-analysis-h-"), "{odd}");
        assert_ne!(odd, configmap_name("Team A/y"));
        // A name that looks like a hash is hashed too, so it cannot take another's map.
        assert!(configmap_name("h-0123").starts_with("kubegate-analysis-h-"));
        assert_ne!(configmap_name("h-0123"), "kubegate-analysis-h-0123");
        for name in ["team-a", "Team A/x", &"x".repeat(300)] {
            let n = configmap_name(name);
            assert!(
                n.len() <= 63 && crate::tool::args::is_dns_subdomain(&n),
                "{n}"
            );
        }
    }

    #[test]
    fn settings_survive_their_encoding() {
        let settings = TenantSettings {
            filters: Some(vec!["Pod".into(), "Service".into()]),
            cache_ttl_seconds: Some(30),
            custom_analyzers: vec![CustomAnalyzer {
                name: "disk".into(),
                url: "https://analyzers.internal/disk".into(),
            }],
        };
        assert_eq!(decode(&encode(&settings)), settings);
        assert_eq!(
            decode(&encode(&TenantSettings::default())),
            TenantSettings::default()
        );
        // An empty filter list is "no analyzers", not "the defaults".
        let none = TenantSettings {
            filters: Some(vec![]),
            ..TenantSettings::default()
        };
        assert_eq!(decode(&encode(&none)).filters, Some(vec![]));
    }
}

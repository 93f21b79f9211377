//! Talks to the Kubernetes API server through one shared client: as the permitted caller for tool
//! calls (impersonation headers on each request), and as kubegate itself for what it caches
//! (the served version of each kind, from discovery; namespaces, from a watch).
//!
//! # Identity
//! kubegate's own identity needs `impersonate` on users and groups, and `list`/`watch` on
//! namespaces. Every tool request carries `Impersonate-User` and `Impersonate-Group` for the
//! caller, so Kubernetes RBAC judges the caller, and the cluster's audit log shows kubegate as
//! `user` and the caller as `impersonatedUser`. The caller's own token never reaches Kubernetes.
//!
//! # Cost per call
//! One API request per tool call: no discovery, namespace lookup or access review on the way.

mod kinds;
mod namespaces;

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use kube::Resource;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, DynamicObject};
use kube::discovery::{ApiGroup, Discovery};

pub use kinds::BuiltinKind;
pub use namespaces::NamespaceCache;

use crate::audit::KubeCall;
use crate::config::KubernetesConfig;
use crate::policy::{NamespaceDirectory, NamespaceFacts, Permit};

/// The largest API server response kubegate reads (a list bigger than this needs a selector).
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Why talking to Kubernetes failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("cannot load the kubeconfig: {0}")]
    Config(String),
    #[error("cannot build a Kubernetes client")]
    Client(#[source] kube::Error),
    #[error("API discovery failed")]
    Discovery(#[source] kube::Error),
    #[error(
        "cannot list namespaces as kubegate (does its identity have list/watch on namespaces?)"
    )]
    NamespaceWatch(#[source] kube::Error),
    #[error("the namespace cache did not fill within 30 s")]
    NamespaceSync,
    #[error("this API server does not serve {0}")]
    NotServed(&'static str),
    #[error("kubegate will not impersonate `{0}`")]
    Impersonation(String),
    #[error("cannot build the request to Kubernetes")]
    BuildRequest(#[source] http::Error),
    #[error("cannot reach the Kubernetes API server")]
    Request(#[source] kube::Error),
    #[error("the Kubernetes API server's answer was cut off or too large (over 32 MiB)")]
    ReadBody,
    #[error("Kubernetes answered {code} {reason}: {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("cannot read Kubernetes' answer: {0}")]
    Decode(String),
}

/// The shared Kubernetes client and kubegate's caches of the cluster.
#[derive(Clone)]
pub struct Kube {
    client: kube::Client,
    resources: HashMap<BuiltinKind, ApiResource>,
    namespaces: NamespaceCache,
}

impl Kube {
    /// Connects with kubegate's own identity (the configured kubeconfig, or the in-cluster /
    /// default one), runs discovery and fills the namespace cache.
    pub async fn connect(config: &KubernetesConfig, tenant_label: &str) -> Result<Kube, KubeError> {
        let options = KubeConfigOptions {
            context: config.context.clone(),
            ..KubeConfigOptions::default()
        };
        let kube_config = match &config.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path)
                    .map_err(|e| KubeError::Config(format!("{}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| KubeError::Config(e.to_string()))?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| KubeError::Config(e.to_string()))?,
        };
        let client = kube::Client::try_from(kube_config).map_err(KubeError::Client)?;
        Kube::from_client(client, tenant_label).await
    }

    /// Builds on an existing client (kubegate's own identity).
    pub async fn from_client(client: kube::Client, tenant_label: &str) -> Result<Kube, KubeError> {
        let resources = discover(&client).await?;
        let namespaces = NamespaceCache::start(client.clone(), tenant_label).await?;
        Ok(Kube {
            client,
            resources,
            namespaces,
        })
    }

    /// The resource a kind is served as (group, preferred served version, plural).
    pub fn resource(&self, kind: BuiltinKind) -> Result<&ApiResource, KubeError> {
        self.resources
            .get(&kind)
            .ok_or(KubeError::NotServed(kind.kind()))
    }

    /// A client that acts as the permitted caller and notes every request in `calls`.
    pub fn impersonate<'a>(
        &'a self,
        permit: &Permit,
        calls: &'a mut Vec<KubeCall>,
    ) -> Result<Impersonated<'a>, KubeError> {
        let caller = permit.caller();
        // Authentication refuses these names already; this is the last door before Kubernetes.
        let header = |name: &str| {
            let reserved = name.starts_with("system:") || name.trim() != name;
            HeaderValue::from_str(name)
                .ok()
                .filter(|_| !reserved)
                .ok_or_else(|| KubeError::Impersonation(name.to_owned()))
        };
        Ok(Impersonated {
            kube: self,
            user: header(&caller.username)?,
            groups: caller
                .groups
                .iter()
                .map(|g| header(g))
                .collect::<Result<_, _>>()?,
            calls,
        })
    }
}

impl NamespaceDirectory for Kube {
    fn namespace(&self, name: &str) -> Option<NamespaceFacts> {
        self.namespaces.namespace(name)
    }
}

/// Finds, for every built-in kind, the version the API server serves it at: the group's preferred
/// version if it serves the kind there, else the first other version that does (as kubectl does;
/// Kubernetes 1.20 serves `batch/v1` but CronJob only at `batch/v1beta1`).
async fn discover(client: &kube::Client) -> Result<HashMap<BuiltinKind, ApiResource>, KubeError> {
    let mut wanted: Vec<&str> = BuiltinKind::ALL
        .iter()
        .flat_map(|k| k.groups().iter().copied())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let discovery = Discovery::new(client.clone())
        .filter(&wanted)
        .run()
        .await
        .map_err(KubeError::Discovery)?;
    let groups: HashMap<&str, &ApiGroup> = discovery.groups().map(|g| (g.name(), g)).collect();
    let mut found = HashMap::new();
    for kind in BuiltinKind::ALL {
        let served = kind
            .groups()
            .iter()
            .filter_map(|name| groups.get(name))
            .find_map(|group| served_version(group, kind.kind()));
        match served {
            Some(resource) => {
                found.insert(kind, resource);
            }
            None => tracing::warn!(
                kind = kind.kind(),
                "the API server does not serve this kind"
            ),
        }
    }
    Ok(found)
}

fn served_version(group: &ApiGroup, kind: &str) -> Option<ApiResource> {
    let preferred = group.preferred_version_or_latest();
    std::iter::once(preferred)
        .chain(group.versions().filter(|v| *v != preferred))
        .find_map(|version| {
            group
                .versioned_resources(version)
                .into_iter()
                .map(|(resource, _)| resource)
                .find(|resource| resource.kind == kind)
        })
}

/// The shared client acting as one permitted caller.
pub struct Impersonated<'a> {
    kube: &'a Kube,
    user: HeaderValue,
    groups: Vec<HeaderValue>,
    calls: &'a mut Vec<KubeCall>,
}

impl Impersonated<'_> {
    /// Lists a kind in one namespace, or in all (or a cluster-scoped kind); returns the raw JSON.
    pub async fn list(
        &mut self,
        kind: BuiltinKind,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Bytes, KubeError> {
        let resource = self.kube.resource(kind)?;
        let mut uri = <DynamicObject as Resource>::url_path(
            resource,
            namespace.filter(|_| kind.namespaced()),
        );
        if let Some(selector) = label_selector {
            uri.push('?');
            uri.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .append_pair("labelSelector", selector)
                    .finish(),
            );
        }
        self.send("list", &uri).await
    }

    /// Sends one GET as the caller, notes it, and returns the body of a successful answer.
    async fn send(&mut self, verb: &'static str, uri: &str) -> Result<Bytes, KubeError> {
        let mut request = Request::get(uri)
            .header("Impersonate-User", self.user.clone())
            .header(http::header::ACCEPT, "application/json");
        for group in &self.groups {
            request = request.header("Impersonate-Group", group.clone());
        }
        let request = request
            .body(kube::client::Body::empty())
            .map_err(KubeError::BuildRequest)?;
        let started = std::time::Instant::now();
        let mut call = KubeCall {
            verb,
            uri: uri.to_owned(),
            code: 0,
            audit_id: None,
            latency_micros: 0,
        };
        let response = match self.kube.client.send(request).await {
            Ok(response) => response,
            Err(error) => {
                call.latency_micros = micros_since(started);
                self.calls.push(call);
                return Err(KubeError::Request(error));
            }
        };
        let status = response.status();
        call.code = status.as_u16();
        call.audit_id = response
            .headers()
            .get("Audit-Id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await;
        call.latency_micros = micros_since(started);
        self.calls.push(call);
        let body = body.map_err(|_| KubeError::ReadBody)?.to_bytes();
        if status.is_success() {
            Ok(body)
        } else {
            Err(api_error(status, &body))
        }
    }
}

fn micros_since(started: std::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Turns a failed answer (a `metav1.Status`, usually) into an error that quotes Kubernetes.
fn api_error(status: StatusCode, body: &[u8]) -> KubeError {
    #[derive(serde::Deserialize)]
    struct Status {
        #[serde(default)]
        reason: String,
        #[serde(default)]
        message: String,
    }
    let (reason, message) = match serde_json::from_slice::<Status>(body) {
        Ok(s) if !s.message.is_empty() => (s.reason, s.message),
        _ => (
            status.canonical_reason().unwrap_or_default().to_owned(),
            String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        ),
    };
    KubeError::Api {
        code: status.as_u16(),
        reason,
        message,
    }
}

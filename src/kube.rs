//! Talks to the Kubernetes API server through one shared client: as the permitted caller for tool
//! calls (impersonation headers on each request), and as kubegate itself for what it caches
//! (what the API server serves, from discovery; namespaces, from a watch; the server's version).
//!
//! # Identity
//! kubegate's own identity needs `impersonate` on users and groups, and `get`/`list`/`watch` on
//! namespaces. Every tool request carries `Impersonate-User` and `Impersonate-Group` for the
//! caller, so Kubernetes RBAC judges the caller, and the cluster's audit log shows kubegate as
//! `user` and the caller as `impersonatedUser`. The caller's own token never reaches Kubernetes.
//!
//! # Writes
//! A request that changes the cluster (anything but GET) is sent only by a client built with a
//! [`WriteAhead`]: proof from the audit log that the call's record is on disk. Without one the
//! request is refused here, before it leaves kubegate.
//!
//! # Cost per call
//! One API request per read call: no discovery, namespace lookup or access review on the way.
//! Each request has a deadline ([`REQUEST_TIMEOUT`]).

mod discovery;
mod kinds;
mod memory;
mod namespaces;
mod settings;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use kube::Resource;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::DynamicObject;

pub use discovery::{ApiCatalog, Served, split_api_version};
pub use kinds::BuiltinKind;
pub use memory::{AnswerMemory, DEFAULT_MIB as DEFAULT_ANSWER_MIB};
pub use namespaces::{DEFAULT_STALE_AFTER, NamespaceCache, NamespaceSummary};
pub use settings::{CustomAnalyzer, SettingsError, SettingsStore, TenantSettings, configmap_name};

use crate::audit::{KubeCall, WriteAhead};
use crate::config::{ClusterSettings, KubernetesConfig};
use crate::policy::{NamespaceDirectory, NamespaceFacts, Permit};

/// The largest API server response kubegate reads (a list bigger than this needs a selector or
/// a smaller `limit`).
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// How long one request to the API server may take, from sending to the end of its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
    NotServed(String),
    #[error("kubegate will not impersonate `{0}`")]
    Impersonation(String),
    #[error("cannot build the request to Kubernetes")]
    BuildRequest(#[source] http::Error),
    #[error("cannot reach the Kubernetes API server")]
    Request(#[source] kube::Error),
    #[error("the Kubernetes API server did not answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    #[error("the Kubernetes API server's answer was cut off or too large (over 32 MiB)")]
    ReadBody,
    #[error(
        "{}; ask for a smaller page (`limit`) or a narrower list (a namespace, a labelSelector)",
        if *alone {
            format!("this answer alone is larger than kubegate's memory bound for answers ({mib} MiB, `[kubernetes] answer_memory_mib`)")
        } else {
            format!("kubegate is holding as many Kubernetes answers as its memory bound allows ({mib} MiB, `[kubernetes] answer_memory_mib`); try again in a moment")
        }
    )]
    AnswerMemory { mib: u64, alone: bool },
    #[error("Kubernetes answered {code} {reason}: {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("cannot read Kubernetes' answer: {0}")]
    Decode(String),
    #[error(
        "a change to the cluster was about to be sent without its audit record on disk \
         (a bug in kubegate; nothing was sent)"
    )]
    NotJournaled,
}

impl KubeError {
    /// The HTTP status of a Kubernetes refusal, if that is what this is.
    pub fn status(&self) -> Option<u16> {
        match self {
            KubeError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What `/version` says of the API server.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerVersion {
    #[serde(default)]
    pub major: String,
    #[serde(default)]
    pub minor: String,
    #[serde(default)]
    pub git_version: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub go_version: String,
}

/// The shared Kubernetes client and kubegate's caches of the cluster.
#[derive(Clone)]
pub struct Kube {
    client: kube::Client,
    discovered: discovery::Discovered,
    namespaces: NamespaceCache,
    version: ServerVersion,
    memory: AnswerMemory,
}

impl Kube {
    /// Builds kubegate's own client for a cluster (its kubeconfig and context, or the
    /// in-cluster / default one). Reads files only: a wrong path or an impersonating kubeconfig
    /// fails here, before anything is asked of the cluster.
    pub async fn client(cluster: &ClusterSettings) -> Result<kube::Client, KubeError> {
        let options = KubeConfigOptions {
            context: cluster.context.clone(),
            ..KubeConfigOptions::default()
        };
        let kube_config = match &cluster.kubeconfig {
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
        refuse_impersonating(&kube_config)?;
        kube::Client::try_from(kube_config).map_err(KubeError::Client)
    }

    /// Connects with kubegate's own identity to one cluster: builds its client, then runs
    /// discovery, reads the server's version and fills the namespace cache.
    pub async fn connect(
        cluster: &ClusterSettings,
        config: &KubernetesConfig,
    ) -> Result<Kube, KubeError> {
        let client = Kube::client(cluster).await?;
        let memory = AnswerMemory::new(config.answer_memory_mib.unwrap_or(memory::DEFAULT_MIB));
        Kube::start(client, cluster, config, memory).await
    }

    /// Builds the caches of one cluster from kubegate's own client there (discovery, the
    /// server's version, the namespace cache); `memory` is the bound its answers share (with
    /// every other cluster's).
    pub async fn start(
        client: kube::Client,
        cluster: &ClusterSettings,
        config: &KubernetesConfig,
        memory: AnswerMemory,
    ) -> Result<Kube, KubeError> {
        let stale_after = config
            .namespaces_stale_after_seconds
            .map_or(DEFAULT_STALE_AFTER, Duration::from_secs);
        let discovered = discovery::Discovered::start(client.clone()).await?;
        let version = client
            .apiserver_version()
            .await
            .map(|v| ServerVersion {
                major: v.major,
                minor: v.minor,
                git_version: v.git_version,
                platform: v.platform,
                go_version: v.go_version,
            })
            .map_err(KubeError::Request)?;
        let namespaces =
            NamespaceCache::start(client.clone(), &cluster.tenant_label, stale_after).await?;
        Ok(Kube {
            client,
            discovered,
            namespaces,
            version,
            memory,
        })
    }

    /// The API server's version, read once at start.
    pub fn version(&self) -> &ServerVersion {
        &self.version
    }

    /// The namespace cache.
    pub fn namespaces(&self) -> &NamespaceCache {
        &self.namespaces
    }

    /// What the API server serves, as last discovered.
    pub fn catalog(&self) -> std::sync::Arc<ApiCatalog> {
        self.discovered.catalog()
    }

    /// Runs discovery again, unless it ran moments ago; whether it ran.
    pub async fn rediscover(&self) -> bool {
        self.discovered.rediscover().await
    }

    /// The store of tenants' analysis settings, in kubegate's `namespace`, reached as kubegate.
    pub fn settings_store(&self, namespace: &str) -> SettingsStore {
        SettingsStore::new(self.client.clone(), namespace)
    }

    /// A built-in kind as served (group, preferred served version, plural, scope).
    pub fn served(&self, kind: BuiltinKind) -> Result<Served, KubeError> {
        self.catalog()
            .builtin(kind)
            .cloned()
            .ok_or_else(|| KubeError::NotServed(kind.kind().to_owned()))
    }

    /// A client that acts as the permitted caller and notes every request it sends. It can only
    /// read; [`Impersonated::journaled`] lets it write.
    pub fn impersonate(&self, permit: &Permit) -> Result<Impersonated<'_>, KubeError> {
        let caller = permit.caller();
        // Authentication refuses these names already (and those on the operator's deny-list);
        // this is the last door before Kubernetes. An empty name would be no impersonation at
        // all: the request would run as kubegate itself.
        let header = |name: &str| {
            let reserved = crate::auth::never_impersonated(name, &[])
                || name.trim() != name
                || name.is_empty();
            HeaderValue::from_str(name)
                .ok()
                .filter(|_| !reserved)
                .ok_or_else(|| KubeError::Impersonation(name.to_owned()))
        };
        let value =
            |v: &str| HeaderValue::from_str(v).map_err(|_| KubeError::Impersonation(v.to_owned()));
        let mut extra = Vec::new();
        for (key, values) in &caller.extra {
            // Extra keys are percent-encoded into the header name (`/` is not a header character).
            let name = format!(
                "impersonate-extra-{}",
                key.replace('%', "%25").replace('/', "%2F")
            );
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| KubeError::Impersonation(key.clone()))?;
            for v in values {
                extra.push((name.clone(), value(v)?));
            }
        }
        Ok(Impersonated {
            kube: self,
            user: header(&caller.username)?,
            groups: caller
                .groups
                .iter()
                .map(|g| header(g))
                .collect::<Result<_, _>>()?,
            uid: caller.uid.as_deref().map(value).transpose()?,
            extra,
            calls: Vec::new(),
            write_ahead: None,
            held: Arc::default(),
        })
    }
}

impl NamespaceDirectory for Kube {
    fn namespace(&self, name: &str) -> Option<NamespaceFacts> {
        self.namespaces.namespace(name)
    }
    fn names(&self) -> Vec<String> {
        self.namespaces.names()
    }
    fn stale(&self) -> Option<String> {
        self.namespaces.stale()
    }
}

/// Refuses a kubeconfig (or `KUBE_RS_DEBUG_IMPERSONATE_*`) that makes kubegate's own identity
/// impersonate someone: kubegate's requests would then carry two sets of impersonation headers,
/// and its own ones (the cache, the settings) would run as another identity.
fn refuse_impersonating(config: &kube::Config) -> Result<(), KubeError> {
    let auth = &config.auth_info;
    let impersonates = auth.impersonate.is_some()
        || auth.impersonate_uid.is_some()
        || auth
            .impersonate_groups
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        || auth
            .impersonate_user_extra
            .as_ref()
            .is_some_and(|e| !e.is_empty());
    if impersonates {
        return Err(KubeError::Config(
            "kubegate's kubeconfig impersonates (`as`, `as-groups`, `as-uid` or `as-user-extra`); \
             give kubegate an identity of its own: it impersonates each caller itself"
                .to_owned(),
        ));
    }
    Ok(())
}

/// A background task of one cluster's connection (discovery's refresh, the namespace watch),
/// stopped when the last part holding it is dropped: a connection attempt that fails half-way
/// leaves nothing running.
pub(crate) struct Background(tokio::task::AbortHandle);

impl Background {
    pub(crate) fn spawn<F>(task: F) -> Arc<Background>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        Arc::new(Background(tokio::spawn(task).abort_handle()))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Query parameters of one request.
pub type Query<'a> = &'a [(&'a str, String)];

/// The shared client acting as one permitted caller.
pub struct Impersonated<'a> {
    kube: &'a Kube,
    user: HeaderValue,
    groups: Vec<HeaderValue>,
    /// `Impersonate-Uid` (Kubernetes 1.22 and later read it).
    uid: Option<HeaderValue>,
    /// `Impersonate-Extra-<key>` headers.
    extra: Vec<(HeaderName, HeaderValue)>,
    calls: Vec<KubeCall>,
    write_ahead: Option<WriteAhead>,
    /// The answer memory this call's requests hold (shared with its forks).
    held: Arc<Mutex<memory::Held>>,
}

impl<'a> Impersonated<'a> {
    /// Another client for the same caller, to send requests beside this one (it can only
    /// read); hand its requests back with [`Impersonated::adopt`].
    pub fn fork(&self) -> Impersonated<'a> {
        Impersonated {
            kube: self.kube,
            user: self.user.clone(),
            groups: self.groups.clone(),
            uid: self.uid.clone(),
            extra: self.extra.clone(),
            calls: Vec::new(),
            write_ahead: None,
            held: Arc::clone(&self.held),
        }
    }
}

impl Impersonated<'_> {
    /// Lets this client change the cluster: the write-ahead record is on disk.
    pub fn journaled(&mut self, write_ahead: WriteAhead) {
        self.write_ahead = Some(write_ahead);
    }

    /// The requests sent so far, for the audit record.
    pub fn take_calls(&mut self) -> Vec<KubeCall> {
        std::mem::take(&mut self.calls)
    }

    /// Notes the requests a forked client sent, for the audit record.
    pub fn adopt(&mut self, calls: Vec<KubeCall>) {
        self.calls.extend(calls);
    }

    /// The cluster's caches (namespaces, discovery), read as kubegate.
    pub fn kube(&self) -> &Kube {
        self.kube
    }

    /// Lists a built-in kind in one namespace, or in all (or a cluster-scoped kind); returns
    /// the raw JSON.
    pub async fn list(
        &mut self,
        kind: BuiltinKind,
        namespace: Option<&str>,
        query: Query<'_>,
    ) -> Result<Bytes, KubeError> {
        self.with_kind(
            kind,
            |served| {
                let ns = namespace.filter(|_| served.namespaced);
                with_query(collection(&served.resource, ns), query)
            },
            Method::GET,
            "list",
            None,
        )
        .await
    }

    /// Reads one object of a built-in kind.
    pub async fn get(
        &mut self,
        kind: BuiltinKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Bytes, KubeError> {
        self.with_kind(
            kind,
            |served| object_path(served, namespace, name),
            Method::GET,
            "get",
            None,
        )
        .await
    }

    /// Reads a pod's container log (`pods/log`) as text.
    pub async fn logs(
        &mut self,
        namespace: &str,
        pod: &str,
        query: Query<'_>,
    ) -> Result<Bytes, KubeError> {
        let uri = with_query(
            format!("/api/v1/namespaces/{namespace}/pods/{pod}/log"),
            query,
        );
        self.send(Method::GET, "get", &uri, None).await
    }

    /// Deletes one object of a built-in kind with `DeleteOptions`.
    pub async fn delete(
        &mut self,
        kind: BuiltinKind,
        namespace: Option<&str>,
        name: &str,
        options: &serde_json::Value,
    ) -> Result<Bytes, KubeError> {
        let body = Body::json(options);
        self.with_kind(
            kind,
            |served| object_path(served, namespace, name),
            Method::DELETE,
            "delete",
            Some(body),
        )
        .await
    }

    /// Deletes one object of any served kind.
    pub async fn delete_served(
        &mut self,
        served: &Served,
        namespace: Option<&str>,
        name: &str,
        options: &serde_json::Value,
    ) -> Result<Bytes, KubeError> {
        let uri = object_path(served, namespace, name);
        self.send(Method::DELETE, "delete", &uri, Some(Body::json(options)))
            .await
    }

    /// Lists any served kind in one namespace, or in all.
    pub async fn list_served(
        &mut self,
        served: &Served,
        namespace: Option<&str>,
        query: Query<'_>,
    ) -> Result<Bytes, KubeError> {
        let ns = namespace.filter(|_| served.namespaced);
        let uri = with_query(collection(&served.resource, ns), query);
        self.send(Method::GET, "list", &uri, None).await
    }

    /// Reads one object of any served kind.
    pub async fn get_served(
        &mut self,
        served: &Served,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Bytes, KubeError> {
        let uri = object_path(served, namespace, name);
        self.send(Method::GET, "get", &uri, None).await
    }

    /// Server-side apply of one object (`application/apply-patch+yaml`; JSON is YAML).
    pub async fn apply(
        &mut self,
        served: &Served,
        namespace: Option<&str>,
        name: &str,
        object: &serde_json::Value,
        query: Query<'_>,
    ) -> Result<Bytes, KubeError> {
        let uri = with_query(object_path(served, namespace, name), query);
        let body = Body {
            bytes: serde_json::to_vec(object).unwrap_or_default(),
            content_type: "application/apply-patch+yaml",
        };
        self.send(Method::PATCH, "patch", &uri, Some(body)).await
    }

    /// A JSON merge patch of a built-in kind's subresource (`scale`).
    pub async fn patch_subresource(
        &mut self,
        kind: BuiltinKind,
        namespace: &str,
        name: &str,
        subresource: &str,
        patch: &serde_json::Value,
    ) -> Result<Bytes, KubeError> {
        let body = Body {
            bytes: serde_json::to_vec(patch).unwrap_or_default(),
            content_type: "application/merge-patch+json",
        };
        self.with_kind(
            kind,
            |served| {
                format!(
                    "{}/{subresource}",
                    object_path(served, Some(namespace), name)
                )
            },
            Method::PATCH,
            "patch",
            Some(body),
        )
        .await
    }

    /// Sends a request for a built-in kind; if the API server says it no longer serves the kind
    /// where discovery found it, discovers again and, if the kind moved, sends once more.
    async fn with_kind(
        &mut self,
        kind: BuiltinKind,
        uri: impl Fn(&Served) -> String,
        method: Method,
        verb: &'static str,
        body: Option<Body>,
    ) -> Result<Bytes, KubeError> {
        let served = self.kube.served(kind)?;
        let first = uri(&served);
        match self.send(method.clone(), verb, &first, body.clone()).await {
            Err(KubeError::Api {
                code: 404,
                ref message,
                ..
            }) if message == KIND_NOT_FOUND && self.kube.discovered.rediscover().await => {
                let moved = self.kube.served(kind)?;
                let second = uri(&moved);
                if second == first {
                    return Err(KubeError::NotServed(format!(
                        "{} at {}",
                        kind.kind(),
                        served.resource.api_version
                    )));
                }
                tracing::info!(kind = kind.kind(), from = %first, to = %second, "a kind moved; retrying");
                self.send(method, verb, &second, body).await
            }
            other => other,
        }
    }

    /// Sends one request as the caller, notes it, and returns the body of a successful answer.
    async fn send(
        &mut self,
        method: Method,
        verb: &'static str,
        uri: &str,
        body: Option<Body>,
    ) -> Result<Bytes, KubeError> {
        if method != Method::GET && self.write_ahead.is_none() {
            return Err(KubeError::NotJournaled);
        }
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("Impersonate-User", self.user.clone())
            .header(http::header::ACCEPT, "application/json");
        for group in &self.groups {
            request = request.header("Impersonate-Group", group.clone());
        }
        if let Some(uid) = &self.uid {
            request = request.header("Impersonate-Uid", uid.clone());
        }
        for (name, value) in &self.extra {
            request = request.header(name, value.clone());
        }
        let request = match body {
            Some(body) => request
                .header(http::header::CONTENT_TYPE, body.content_type)
                .body(kube::client::Body::from(body.bytes)),
            None => request.body(kube::client::Body::empty()),
        }
        .map_err(KubeError::BuildRequest)?;
        let started = std::time::Instant::now();
        let mut call = KubeCall {
            verb,
            uri: uri.to_owned(),
            code: 0,
            audit_id: None,
            latency_micros: 0,
            started: Some(std::time::SystemTime::now()),
        };
        let exchange = async {
            let response = self
                .kube
                .client
                .send(request)
                .await
                .map_err(KubeError::Request)?;
            let status = response.status();
            let audit_id = response
                .headers()
                .get("Audit-Id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = self.read_body(response.into_body()).await;
            Ok::<_, KubeError>((status, audit_id, body))
        };
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await;
        call.latency_micros = micros_since(started);
        let (status, audit_id, body) = match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                self.calls.push(call);
                return Err(error);
            }
            Err(_) => {
                self.calls.push(call);
                return Err(KubeError::Timeout);
            }
        };
        call.code = status.as_u16();
        call.audit_id = audit_id;
        self.calls.push(call);
        let body = body?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(api_error(status, &body))
        }
    }
}

impl Impersonated<'_> {
    /// Reads an answer's body, at most [`MAX_RESPONSE_BYTES`], counting it against the answer
    /// memory bound as it arrives.
    async fn read_body(&self, mut body: kube::client::Body) -> Result<Bytes, KubeError> {
        let mut read = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(|_| KubeError::ReadBody)?.into_data() else {
                continue;
            };
            if read.len() + data.len() > MAX_RESPONSE_BYTES {
                return Err(KubeError::ReadBody);
            }
            {
                let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
                self.kube
                    .memory
                    .take(data.len(), &mut held)
                    .map_err(|full| KubeError::AnswerMemory {
                        mib: full.mib,
                        alone: full.alone,
                    })?;
            }
            read.extend_from_slice(&data);
        }
        Ok(read.freeze())
    }
}

/// A request body and its media type.
#[derive(Clone)]
struct Body {
    bytes: Vec<u8>,
    content_type: &'static str,
}

impl Body {
    fn json(value: &serde_json::Value) -> Body {
        Body {
            bytes: serde_json::to_vec(value).unwrap_or_default(),
            content_type: "application/json",
        }
    }
}

/// The message of a 404 for a URL the API server does not route (a kind it does not serve
/// there), as opposed to a missing object.
const KIND_NOT_FOUND: &str = "the server could not find the requested resource";

fn collection(resource: &kube::core::ApiResource, namespace: Option<&str>) -> String {
    <DynamicObject as Resource>::url_path(resource, namespace)
}

fn object_path(served: &Served, namespace: Option<&str>, name: &str) -> String {
    let ns = namespace.filter(|_| served.namespaced);
    format!("{}/{name}", collection(&served.resource, ns))
}

fn with_query(mut uri: String, query: Query<'_>) -> String {
    if !query.is_empty() {
        let mut encoded = form_urlencoded::Serializer::new(String::new());
        for (key, value) in query {
            encoded.append_pair(key, value);
        }
        uri.push('?');
        uri.push_str(&encoded.finish());
    }
    uri
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
        _ if status == StatusCode::NOT_FOUND => ("NotFound".to_owned(), KIND_NOT_FOUND.to_owned()),
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

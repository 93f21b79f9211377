//! Test support shared by the integration tests, the benchmark and the demo's local cluster:
//! a real control plane ([`cluster`]), the kubelet stand-in ([`kubelet`]), kubegate started
//! in-process from a real configuration file ([`TestGateway`]), an MCP client over HTTPS
//! ([`McpClient`]), files mounted as the kubelet mounts volumes ([`volume`]), and tenant
//! seeding.
// Each including target (tests, bench, example) uses a different part of this module.
#![allow(dead_code)]

pub mod cluster;
pub mod idp;
pub mod kubelet;
pub mod process;
pub mod proxy;
pub mod volume;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, PostParams};
use kubegate::config::Config;
use kubegate::dev::{self, TokenRequest};
use kubegate::gateway::Gateway;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub use cluster::ControlPlane;

/// The one control plane of this test process, started on first use on a runtime of its own
/// (which also runs the kubelet stand-in) and stopped when the process exits.
pub fn cluster() -> &'static ControlPlane {
    static CLUSTER: OnceLock<ControlPlane> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        kubegate::install_crypto_provider();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = sender.send(Err(anyhow::Error::from(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                remove_dead_runs();
                let dir =
                    std::env::temp_dir().join(format!("kubegate-test-{}", std::process::id()));
                let _ = sender.send(ControlPlane::start(&dir).await);
                std::future::pending::<()>().await;
            });
        });
        match receiver.recv() {
            Ok(Ok(plane)) => plane,
            Ok(Err(error)) => panic!("the test control plane did not start: {error:#}"),
            Err(_) => panic!("the test control plane's thread died"),
        }
    })
}

/// Removes the folders of earlier test runs whose process is gone (the processes themselves
/// died with it, by their tether).
fn remove_dead_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("kubegate-test-")) else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// What a test's kubegate runs with.
pub struct GatewayOptions {
    /// Policy files: (file name, Cedar text).
    pub policies: Vec<(String, String)>,
    pub non_destructive: bool,
    pub audit_level: &'static str,
    /// Where the audit log goes, if not `audit.log` in the configuration's folder.
    pub audit_path: Option<PathBuf>,
    /// Load the policies from a folder (`policies/` beside the configuration) instead of
    /// naming each file.
    pub policy_dir: bool,
    /// A shadow set, as (file name, Cedar text), trialled on top of the enforced set.
    pub shadow: Vec<(String, String)>,
    pub read_only: bool,
    /// Reach the API server at this URL instead of the control plane's own (a proxy).
    pub kube_server: Option<String>,
    /// `kubernetes.namespaces_stale_after_seconds`.
    pub namespaces_stale_after: Option<u64>,
    /// More settings of the `[kubernetes]` section, as `key = value` TOML lines.
    pub kubernetes: Vec<String>,
    /// Settings of the `[http]` section, as `key = value` TOML lines.
    pub http: Vec<String>,
    /// Settings of a `[stdio]` section, if any.
    pub stdio: Vec<String>,
    /// Settings of the `[mcp]` section.
    pub mcp: Vec<String>,
    /// More settings of the `[audit]` section (its checkpoints are always signed).
    pub audit: Vec<String>,
    /// Whole sections at the end of the file (`[metrics]`).
    pub sections: Vec<String>,
    /// The `[tls]` section's lines instead of the dev certificate's.
    pub tls: Vec<String>,
    /// The whole `[auth]` configuration (`[auth]` and its `[[auth.jwt]]` tables) instead of
    /// the dev issuer's.
    pub auth: Option<String>,
    /// Several clusters, as `[[clusters]]` tables (instead of the shared plane as `local`).
    pub clusters: Vec<GatewayCluster>,
}

/// One cluster of a gateway that fronts several.
#[derive(Clone)]
pub struct GatewayCluster {
    pub name: String,
    /// kubegate's kubeconfig there (YAML).
    pub kubeconfig: String,
    pub default: bool,
    /// Its own `tenant_label`, if not `[kubernetes]`'s.
    pub tenant_label: Option<String>,
}

impl GatewayCluster {
    /// `plane`, as kubegate's identity reaches it, named `name`.
    pub fn of(name: &str, plane: &ControlPlane, default: bool) -> GatewayCluster {
        GatewayCluster {
            name: name.to_owned(),
            kubeconfig: plane.kubeconfig("kubegate"),
            default,
            tenant_label: None,
        }
    }

    /// A cluster named `name` that never answers: `plane`'s kubeconfig, its server moved to a
    /// loopback port where nothing listens.
    pub fn unreachable(name: &str, plane: &ControlPlane) -> Result<GatewayCluster> {
        let closed = format!("https://127.0.0.1:{}", cluster::free_port()?);
        Ok(GatewayCluster {
            kubeconfig: plane.kubeconfig("kubegate").replace(&plane.url, &closed),
            ..GatewayCluster::of(name, plane, false)
        })
    }
}

/// A policy file shipped in `policies/`, as (file name, Cedar text).
pub fn shipped_policy(name: &str) -> (String, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("policies")
        .join(name);
    (
        name.to_owned(),
        std::fs::read_to_string(path).unwrap_or_default(),
    )
}

impl GatewayOptions {
    /// The defaults plus the shipped `tenant-edit.cedar` (tenants may change their namespaces).
    pub fn with_tenant_edit() -> GatewayOptions {
        let mut options = GatewayOptions::default();
        options.policies.push(shipped_policy("tenant-edit.cedar"));
        options
    }

    /// Adds a policy file.
    pub fn policy(mut self, name: &str, text: &str) -> GatewayOptions {
        self.policies.push((name.to_owned(), text.to_owned()));
        self
    }
}

impl Default for GatewayOptions {
    /// The shipped tenant-isolation and platform-admin policies.
    fn default() -> Self {
        GatewayOptions {
            policies: vec![
                shipped_policy("tenant-isolation.cedar"),
                shipped_policy("platform-admins.cedar"),
            ],
            non_destructive: false,
            audit_level: "request",
            audit_path: None,
            policy_dir: false,
            shadow: Vec::new(),
            read_only: false,
            kube_server: None,
            namespaces_stale_after: None,
            kubernetes: Vec::new(),
            http: Vec::new(),
            stdio: Vec::new(),
            mcp: Vec::new(),
            audit: Vec::new(),
            sections: Vec::new(),
            auth: None,
            tls: Vec::new(),
            clusters: Vec::new(),
        }
    }
}

/// A kubegate configuration written to a temporary folder: certificates, dev issuer key,
/// kubeconfig for kubegate's identity, policy files and `kubegate.toml`.
pub struct GatewayFiles {
    pub dir: tempfile::TempDir,
    /// Where the policies are when `policy_dir` is set.
    pub policy_folder: PathBuf,
    pub config_file: PathBuf,
    pub ca_pem: String,
    pub issuer_key: String,
}

impl GatewayFiles {
    /// Writes a configuration for the shared control plane, listening on `listen`.
    pub fn write(
        plane: &ControlPlane,
        options: &GatewayOptions,
        listen: &str,
    ) -> Result<GatewayFiles> {
        let dir = tempfile::tempdir()?;
        let pki = dev::write_dev_pki(
            &dir.path().join("certs"),
            &["127.0.0.1", "localhost"],
            false,
        )?;
        let kubeconfig = dir.path().join("kubegate.kubeconfig");
        plane.write_kubeconfig("kubegate", &kubeconfig)?;
        if let Some(server) = &options.kube_server {
            let text = std::fs::read_to_string(&kubeconfig)?.replace(&plane.url, server);
            std::fs::write(&kubeconfig, text)?;
        }
        let policy_folder = dir.path().join("policies");
        std::fs::create_dir_all(&policy_folder)?;
        let mut policy_files = Vec::new();
        for (name, text) in &options.policies {
            let path = if options.policy_dir {
                policy_folder.join(name)
            } else {
                dir.path().join(name)
            };
            std::fs::write(&path, text)?;
            policy_files.push(format!("{:?}", path.display().to_string()));
        }
        if options.policy_dir {
            policy_files = vec![format!("{:?}", policy_folder.display().to_string())];
        }
        let mut shadow = String::new();
        if !options.shadow.is_empty() {
            let folder = dir.path().join("shadow");
            std::fs::create_dir_all(&folder)?;
            for (name, text) in &options.shadow {
                std::fs::write(folder.join(name), text)?;
            }
            shadow = format!(
                "\n[policy.shadow]\nfiles = [{:?}]\n",
                folder.display().to_string()
            );
        }
        let stale = options
            .namespaces_stale_after
            .map(|s| format!("namespaces_stale_after_seconds = {s}\n"))
            .unwrap_or_default();
        // One cluster, the shared plane as `local`; or each of `clusters` with a kubeconfig.
        let (cluster_name, kubeconfig_line) = if options.clusters.is_empty() {
            (
                "cluster_name = \"local\"\n",
                "kubeconfig = \"kubegate.kubeconfig\"\n",
            )
        } else {
            ("", "")
        };
        let mut clusters = String::new();
        for cluster in &options.clusters {
            let file = format!("{}.kubeconfig", cluster.name);
            kubegate::dev::write_file(&dir.path().join(&file), &cluster.kubeconfig, true)?;
            clusters.push_str(&format!(
                "\n[[clusters]]\nname = {:?}\nkubeconfig = {file:?}\ndefault = {}\n",
                cluster.name, cluster.default
            ));
            if let Some(label) = &cluster.tenant_label {
                clusters.push_str(&format!("tenant_label = {label:?}\n"));
            }
        }
        let config_file = dir.path().join("kubegate.toml");
        std::fs::write(
            &config_file,
            format!(
                r#"
listen = "{listen}"
{cluster_name}
[tls]
{tls}

{auth}

[kubernetes]
{kubeconfig_line}{stale}{kubernetes}
[policy]
files = [{files}]
non_destructive = {non_destructive}
read_only = {read_only}
{shadow}
[audit]
path = "{audit_path}"
level = "{level}"
signing_key = "certs/audit-signing-key.pem"
{audit}

[http]
{http}

[mcp]
{mcp}
{stdio}
{sections}
{clusters}"#,
                audit = options.audit.join("\n"),
                kubernetes = options.kubernetes.join("\n"),
                sections = options.sections.join("\n"),
                http = options.http.join("\n"),
                mcp = options.mcp.join("\n"),
                stdio = if options.stdio.is_empty() {
                    String::new()
                } else {
                    format!("[stdio]\n{}\n", options.stdio.join("\n"))
                },
                audit_path = options
                    .audit_path
                    .as_ref()
                    .map_or("audit.log".to_owned(), |p| p.display().to_string()),
                tls = if options.tls.is_empty() {
                    "cert = \"certs/server.pem\"\nkey = \"certs/server-key.pem\"".to_owned()
                } else {
                    options.tls.join("\n")
                },
                auth = options.auth.clone().unwrap_or_else(|| format!(
                    "[[auth.jwt]]\n{}",
                    dev::dev_issuer_toml("certs/dev-issuer.pub.pem")
                )),
                files = policy_files.join(", "),
                non_destructive = options.non_destructive,
                read_only = options.read_only,
                level = options.audit_level,
            ),
        )?;
        Ok(GatewayFiles {
            policy_folder,
            ca_pem: std::fs::read_to_string(&pki.ca_cert)?,
            issuer_key: std::fs::read_to_string(&pki.issuer_key)?,
            config_file,
            dir,
        })
    }

    /// The public key the audit checkpoints verify with.
    pub fn audit_public_key(&self) -> PathBuf {
        self.dir.path().join("certs").join("audit-signing.pub.pem")
    }

    /// Another replica of this configuration, as a Deployment's pods are: the same certificates,
    /// issuer, audit signing key, kubeconfig, policy files and `[mcp]` settings, in a folder of
    /// its own and listening on `listen`, so that its audit log (`audit.log` beside the
    /// configuration, unless `audit_path` named one) is its own.
    pub fn replica(&self, listen: &str) -> Result<GatewayFiles> {
        let dir = tempfile::tempdir()?;
        let certs = dir.path().join("certs");
        std::fs::create_dir_all(&certs)?;
        for entry in std::fs::read_dir(self.dir.path().join("certs"))? {
            let entry = entry?;
            std::fs::copy(entry.path(), certs.join(entry.file_name()))?;
        }
        std::fs::copy(
            self.dir.path().join("kubegate.kubeconfig"),
            dir.path().join("kubegate.kubeconfig"),
        )?;
        let config: Vec<String> = std::fs::read_to_string(&self.config_file)?
            .lines()
            .map(|line| {
                if line.starts_with("listen = ") {
                    format!("listen = {listen:?}")
                } else {
                    line.to_owned()
                }
            })
            .collect();
        let config_file = dir.path().join("kubegate.toml");
        std::fs::write(&config_file, config.join("\n"))?;
        Ok(GatewayFiles {
            // The policy files are named by absolute paths: both replicas read this one's, as
            // pods read one mounted ConfigMap.
            policy_folder: self.policy_folder.clone(),
            config_file,
            ca_pem: self.ca_pem.clone(),
            issuer_key: self.issuer_key.clone(),
            dir,
        })
    }

    /// A dev token for `user` in `tenant` with `groups`, signed by this configuration's issuer.
    pub fn token(&self, user: &str, groups: &[&str], tenant: &str) -> String {
        dev::mint_token(
            self.issuer_key.as_bytes(),
            &TokenRequest {
                issuer: dev::DEV_ISSUER.to_owned(),
                audience: dev::DEV_AUDIENCE.to_owned(),
                subject: user.to_owned(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                tenant: Some(tenant.to_owned()),
                email: None,
                lifetime: Duration::from_secs(3600),
            },
        )
        .unwrap_or_else(|e| panic!("minting a dev token: {e}"))
    }
}

/// A kubegate served in-process on a free port, configured through a real configuration file.
pub struct TestGateway {
    /// `https://127.0.0.1:<port>/mcp`.
    pub url: String,
    pub audit_log: PathBuf,
    pub ca_pem: String,
    files: GatewayFiles,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestGateway {
    /// Starts kubegate on the current runtime against the shared control plane.
    pub async fn start(options: GatewayOptions) -> Result<TestGateway> {
        let files = GatewayFiles::write(cluster(), &options, "127.0.0.1:0")?;
        let config = Config::load(&files.config_file)?;
        let tls = config
            .tls
            .as_ref()
            .context("the test configuration has [tls]")?;
        let cert = Arc::new(kubegate::tls::ServerCert::load(&tls.cert, &tls.key)?);
        cert.keep_fresh();
        let tls = kubegate::tls::server_config(tls, cert)?;
        let gateway = Arc::new(Gateway::start(&config).await?);
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let port = listener.local_addr()?.port();
        let (shutdown, stop) = oneshot::channel::<()>();
        let plain = match config.http.plain_listen {
            Some(address) => Some(tokio::net::TcpListener::bind(address).await?),
            None => None,
        };
        let listeners = kubegate::http::Listeners {
            tls: Some((listener, tls)),
            plain,
        };
        tokio::spawn(kubegate::http::serve(gateway, listeners, async move {
            let _ = stop.await;
        }));
        Ok(TestGateway {
            url: format!("https://127.0.0.1:{port}/mcp"),
            audit_log: config.audit.path.clone(),
            ca_pem: files.ca_pem.clone(),
            files,
            shutdown: Some(shutdown),
        })
    }

    /// A dev token for `user` in `tenant` with `groups`, signed by this gateway's dev issuer.
    pub fn token(&self, user: &str, groups: &[&str], tenant: &str) -> String {
        self.files.token(user, groups, tenant)
    }

    /// The configuration file this gateway was started from.
    pub fn config_file(&self) -> &std::path::Path {
        &self.files.config_file
    }

    /// The public key its audit checkpoints verify with.
    pub fn audit_public_key(&self) -> PathBuf {
        self.files.audit_public_key()
    }

    /// The folder the policies are loaded from, with `policy_dir`.
    pub fn policy_folder(&self) -> &std::path::Path {
        &self.files.policy_folder
    }

    /// `https://127.0.0.1:<port>` + `path`.
    pub fn url_of(&self, path: &str) -> String {
        self.url.replace("/mcp", path)
    }

    /// The address kubegate listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        let port = self
            .url
            .trim_start_matches("https://127.0.0.1:")
            .trim_end_matches("/mcp")
            .parse()
            .unwrap_or(0);
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Begins kubegate's shutdown, as SIGTERM does.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// A raw TLS connection to kubegate offering `alpn` (`h2` or `http/1.1`).
    pub async fn tls(
        &self,
        alpn: &[u8],
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        kubegate::install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr()).await?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?.to_owned();
        Ok(connector.connect(name, tcp).await?)
    }

    /// The audit records written so far (the chain's checkpoints left out; a line that is
    /// not JSON is kept, as null, so that a test sees it).
    pub fn audit_records(&self) -> Vec<Value> {
        self.audit_lines()
            .into_iter()
            .filter(|line| line["kind"] != "Checkpoint")
            .collect()
    }

    /// Every line of the audit log, checkpoints included.
    pub fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
            .collect()
    }

    /// An MCP client that trusts this gateway's dev CA.
    pub fn client(&self) -> McpClient {
        McpClient::new(&self.url, &self.ca_pem)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// An HTTP answer from kubegate.
#[derive(Debug)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

/// Speaks MCP's Streamable HTTP (JSON responses) over HTTPS, trusting one CA.
#[derive(Clone)]
pub struct McpClient {
    pub http: reqwest::Client,
    pub url: String,
}

impl McpClient {
    pub fn new(url: &str, ca_pem: &str) -> McpClient {
        kubegate::install_crypto_provider();
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
            .unwrap_or_else(|e| panic!("the dev CA must parse: {e}"));
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .build()
            .unwrap_or_else(|e| panic!("building the HTTPS client: {e}"));
        McpClient {
            http,
            url: url.to_owned(),
        }
    }

    /// POSTs a raw body with the given headers.
    pub async fn post_raw(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer> {
        let mut request = self.http.post(&self.url).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.context("POST to kubegate")?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            body,
            text,
        })
    }

    /// POSTs one JSON-RPC message as JSON.
    pub async fn post(&self, token: Option<&str>, message: &Value) -> Result<Answer> {
        self.post_raw(
            token,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
            ],
            serde_json::to_vec(message)?,
        )
        .await
    }

    /// Sends one JSON-RPC request (statelessly) and returns the whole answer's body.
    pub async fn request(&self, token: &str, method: &str, params: Value) -> Result<Value> {
        let answer = self
            .post(
                Some(token),
                &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
            )
            .await?;
        if answer.status != reqwest::StatusCode::OK {
            bail!("{method} answered {}: {}", answer.status, answer.text);
        }
        Ok(answer.body)
    }

    /// Calls a tool that must succeed; returns the JSON-RPC `result`.
    pub async fn call_ok(&self, token: &str, name: &str, arguments: Value) -> Result<Value> {
        let result = self.call_tool(token, name, arguments.clone()).await?;
        let (text, is_error) = tool_text(&result);
        if is_error {
            bail!("{name} {arguments} failed: {text}");
        }
        Ok(result)
    }

    /// Calls a tool that must fail; returns its error text.
    pub async fn call_err(&self, token: &str, name: &str, arguments: Value) -> Result<String> {
        let result = self.call_tool(token, name, arguments.clone()).await?;
        let (text, is_error) = tool_text(&result);
        if !is_error {
            bail!("{name} {arguments} succeeded, but should not have: {text}");
        }
        Ok(text)
    }

    /// Calls a tool (statelessly) and returns the JSON-RPC `result`.
    pub async fn call_tool(&self, token: &str, name: &str, arguments: Value) -> Result<Value> {
        let answer = self
            .post(
                Some(token),
                &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": name, "arguments": arguments}}),
            )
            .await?;
        if answer.status != reqwest::StatusCode::OK {
            bail!("tools/call answered {}: {}", answer.status, answer.text);
        }
        answer
            .body
            .get("result")
            .cloned()
            .with_context(|| format!("no result in {}", answer.text))
    }
}

/// The text of a tool result, and whether it is an error.
pub fn tool_text(result: &Value) -> (String, bool) {
    (
        result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        result["isError"].as_bool().unwrap_or(true),
    )
}

/// The sorted names of the objects in a tool result's `structuredContent.items`.
pub fn item_names(result: &Value) -> Vec<String> {
    let mut names: Vec<String> = result["structuredContent"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Creates a namespace labelled for `tenant` and binds `cluster_role` ([`cluster::VIEW_ROLE`],
/// [`cluster::EDIT_ROLE`]) to `group`
/// in it (Kubernetes RBAC).
pub async fn tenant_namespace(
    admin: &kube::Client,
    name: &str,
    tenant: Option<&str>,
    group: &str,
    cluster_role: &str,
) -> Result<()> {
    let mut labels = serde_json::Map::new();
    if let Some(tenant) = tenant {
        labels.insert(kubegate::config::DEFAULT_TENANT_LABEL.into(), tenant.into());
    }
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))?;
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    bind_in_namespace(admin, name, group, cluster_role).await
}

/// Binds `cluster_role` to `group` in namespace `ns` (Kubernetes RBAC).
pub async fn bind_in_namespace(
    admin: &kube::Client,
    ns: &str,
    group: &str,
    cluster_role: &str,
) -> Result<()> {
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("{group}-{cluster_role}"), "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }))?;
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .with_context(|| format!("binding {cluster_role} to {group} in {ns}"))?;
    Ok(())
}

/// Lets `group` view the whole cluster (idempotent: tests share the control plane).
pub async fn cluster_view_for_group(admin: &kube::Client, group: &str) -> Result<()> {
    cluster_role_for_group(admin, group, cluster::VIEW_ROLE).await
}

/// Binds a ClusterRole to `group` cluster-wide (idempotent: tests share the control plane).
pub async fn cluster_role_for_group(admin: &kube::Client, group: &str, role: &str) -> Result<()> {
    let binding: k8s_openapi::api::rbac::v1::ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("{group}-{role}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }))?;
    match Api::all(admin.clone())
        .create(&PostParams::default(), &binding)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// The API server's own audit events (JSON lines) that satisfy `keep`, read now.
pub fn kube_audit_events(keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    cluster().audit_events(keep)
}

/// The API server's audit events of requests kubegate made as `user` to a URI containing `path`.
pub fn impersonated_requests(user: &str, path: &str) -> Vec<Value> {
    cluster().impersonated_requests(user, path)
}

/// Waits until `check` holds, polling (for caches fed by watches).
pub async fn eventually<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{what} did not happen within 5 s")
}

/// A release Secret as Helm 3's Secret driver writes it, encoded here independently of
/// kubegate's own decoder: the release as JSON, gzipped, base64-encoded into a string, and that
/// string's bytes stored as the Secret's `data.release` (which the API carries as base64 again).
pub fn helm_release_secret(
    release: &str,
    namespace: &str,
    version: u64,
    status: &str,
    manifest: &str,
) -> Value {
    use std::io::Write;
    let payload = json!({
        "name": release, "namespace": namespace, "version": version,
        "info": {"status": status, "description": "Install complete"},
        "chart": {"metadata": {"name": release, "version": "1.0.0"}},
        "config": {}, "manifest": manifest,
    });
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(payload.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("gzip: {e}"));
    let compressed = gzip.finish().unwrap_or_else(|e| panic!("gzip: {e}"));
    let helm_value = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, compressed);
    let data = k8s_openapi::ByteString(helm_value.into_bytes());
    json!({
        "metadata": {
            "name": format!("sh.helm.release.v1.{release}.v{version}"),
            "labels": {"owner": "helm", "name": release, "status": status, "version": version.to_string()},
        },
        "type": "helm.sh/release.v1",
        "data": {"release": data},
    })
}

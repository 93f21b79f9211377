//! Starts a real Kubernetes control plane on loopback: etcd and kube-apiserver 1.20 (built from
//! Debian's packages by `deploy/local/build-control-plane`), with RBAC, token authentication,
//! audit logging, and a kubelet stand-in registered as a Node so that `pods/log` works.
//!
//! The processes are tethered to this process: each runs under a small `sh` that kills it when
//! this process's end of a pipe closes, which happens however this process ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kubegate::dev::{CertifiedKey, DevCa, IssuerKey, Usage, write_file};
use serde_json::{Value, json};

use super::kubelet;

/// The users in the API server's token file: (name, groups).
pub const USERS: &[(&str, &[&str])] = &[
    ("admin", &["system:masters"]),
    // kubegate's own identity: it may impersonate and watch namespaces, nothing else.
    ("kubegate", &[]),
    ("alice", &["team-a-devs"]),
    ("bob", &["team-b-devs"]),
    ("carol", &["platform-admins"]),
];

/// The Node the kubelet stand-in is registered as; pods bound to it have readable logs.
pub const NODE_NAME: &str = "kubegate-node-1";
/// kubegate's own namespace (its tenants' analysis settings live there).
pub const KUBEGATE_NAMESPACE: &str = "kubegate";

/// Read access to workloads, their logs and events, not Secrets (like the built-in `view`).
///
/// The built-in `view`, `edit` and `admin` roles are aggregated: the controller-manager fills
/// their rules, and there is none here, so they stay empty. These two carry their rules.
pub const VIEW_ROLE: &str = "tenant-view";
/// `tenant-view` plus reading Secrets and changing and deleting workloads.
pub const EDIT_ROLE: &str = "tenant-edit";

const WORKLOAD_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "networking.k8s.io",
    "extensions",
    "policy",
    "autoscaling",
    "rbac.authorization.k8s.io",
    "gateway.networking.k8s.io",
    "keda.sh",
    "wgpolicyk8s.io",
];
const WORKLOAD_RESOURCES: &[&str] = &[
    "pods",
    "pods/log",
    "services",
    "endpoints",
    "configmaps",
    "persistentvolumeclaims",
    "events",
    "replicationcontrollers",
    "deployments",
    "deployments/scale",
    "replicasets",
    "replicasets/scale",
    "statefulsets",
    "statefulsets/scale",
    "daemonsets",
    "jobs",
    "cronjobs",
    "ingresses",
    "horizontalpodautoscalers",
    "poddisruptionbudgets",
    "networkpolicies",
    "roles",
    // Custom resources the analyzers' tests install: Gateway API, KEDA, Kyverno's reports.
    "gateways",
    "httproutes",
    "scaledobjects",
    "policyreports",
];

/// How long [`ControlPlane::stop_apiserver`] lets kube-apiserver shut down before killing it.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running control plane.
pub struct ControlPlane {
    /// Where its files live (certificates, tokens, etcd data, logs).
    pub dir: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The CA that signed the API server's (and the kubelet stand-in's) certificate.
    pub ca_file: PathBuf,
    pub ca_pem: String,
    /// Bearer tokens by user name.
    pub tokens: BTreeMap<&'static str, String>,
    /// The API server's own audit log (JSON lines).
    pub audit_log: PathBuf,
    /// Where the kubelet stand-in reads container logs: `<ns>/<pod>/<container>[.previous].log`.
    pub container_logs: PathBuf,
    /// etcd, with its tether.
    etcd: (Child, ChildStdin),
    /// kube-apiserver with its tether, while it runs.
    apiserver: Option<(Child, ChildStdin)>,
    /// How kube-apiserver is started (to start it again the same way, on the same port).
    apiserver_command: (PathBuf, Vec<String>),
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and the kubelet stand-in with their files under `dir`.
    /// The kubelet stand-in runs on the current tokio runtime, which must outlive the control plane.
    pub async fn start(dir: &Path) -> Result<ControlPlane> {
        let bin = binaries()?;
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let pki = Pki::generate()?;
        let files = pki.write(&dir)?;
        let tokens: BTreeMap<&'static str, String> = USERS
            .iter()
            .map(|(name, _)| (*name, uuid::Uuid::new_v4().simple().to_string()))
            .collect();
        let token_file = dir.join("tokens.csv");
        let lines: Vec<String> = USERS
            .iter()
            .map(|(name, groups)| {
                format!(
                    "{},{name},{name}-uid,\"{}\"",
                    tokens[name],
                    groups.join(",")
                )
            })
            .collect();
        write_file(&token_file, &(lines.join("\n") + "\n"), true)?;
        let audit_policy = dir.join("audit-policy.yaml");
        write_file(
            &audit_policy,
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
            false,
        )?;
        let audit_log = dir.join("kube-audit.log");
        let container_logs = dir.join("container-logs");
        std::fs::create_dir_all(&container_logs)?;

        let etcd_port = free_port()?;
        let etcd_peer_port = free_port()?;
        let etcd_data = dir.join("etcd");
        let _ = std::fs::remove_dir_all(&etcd_data);
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
        let etcd = spawn_tethered(
            &bin.join("etcd"),
            &[
                "--name=kubegate-test".into(),
                format!("--data-dir={}", etcd_data.display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=kubegate-test={peer_url}"),
                "--log-level=warn".into(),
            ],
            &dir.join("etcd.log"),
        )?;

        let port = free_port()?;
        let apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--tls-cert-file={}", files.apiserver_cert.display()),
            format!("--tls-private-key-file={}", files.apiserver_key.display()),
            format!("--client-ca-file={}", files.ca.display()),
            format!("--token-auth-file={}", token_file.display()),
            "--authorization-mode=RBAC".into(),
            // Pods may ask for privileged containers, so the Security analyzer can be shown one.
            "--allow-privileged=true".into(),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!(
                "--service-account-signing-key-file={}",
                files.sa_key.display()
            ),
            format!("--service-account-key-file={}", files.sa_pub.display()),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--endpoint-reconciler-type=none".into(),
            // No controller-manager makes ServiceAccounts or their tokens.
            "--disable-admission-plugins=ServiceAccount".into(),
            format!("--audit-log-path={}", audit_log.display()),
            format!("--audit-policy-file={}", audit_policy.display()),
            format!("--kubelet-certificate-authority={}", files.ca.display()),
            format!(
                "--kubelet-client-certificate={}",
                files.kubelet_client_cert.display()
            ),
            format!(
                "--kubelet-client-key={}",
                files.kubelet_client_key.display()
            ),
            "--kubelet-preferred-address-types=InternalIP".into(),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            "--profiling=false".into(),
            "--v=0".into(),
        ];
        let apiserver_bin = bin.join("kube-apiserver");
        let apiserver = spawn_tethered(
            &apiserver_bin,
            &apiserver_args,
            &dir.join("kube-apiserver.log"),
        )?;

        let mut plane = ControlPlane {
            url: format!("https://127.0.0.1:{port}"),
            ca_file: files.ca.clone(),
            ca_pem: pki.ca.cert_pem().to_owned(),
            tokens,
            audit_log,
            container_logs,
            dir,
            etcd,
            apiserver: Some(apiserver),
            apiserver_command: (apiserver_bin, apiserver_args),
        };
        plane.wait_ready().await?;
        plane.bootstrap(&pki.kubelet).await?;
        Ok(plane)
    }

    /// A kubeconfig (YAML) that authenticates as `user` with their token.
    pub fn kubeconfig(&self, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: {user}\n  user:\n    token: {}\ncontexts:\n- name: {user}@local\n  context:\n    cluster: local\n    user: {user}\ncurrent-context: {user}@local\n",
            self.url,
            self.ca_file.display(),
            self.tokens
                .get(user)
                .map(String::as_str)
                .unwrap_or_default(),
        )
    }

    /// Writes `kubeconfig(user)` to a file (owner-only: it holds a token).
    pub fn write_kubeconfig(&self, user: &str, path: &Path) -> Result<()> {
        write_file(path, &self.kubeconfig(user), true)?;
        Ok(())
    }

    /// A kube-rs client authenticated as `user`, on the current runtime.
    pub async fn client(&self, user: &str) -> Result<kube::Client> {
        let kubeconfig = Kubeconfig::from_yaml(&self.kubeconfig(user))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// This API server's audit events that `keep` keeps.
    pub fn audit_events(&self, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| keep(e))
            .collect()
    }

    /// This API server's audit events of requests kubegate made as `user` to a URI containing
    /// `path`.
    pub fn impersonated_requests(&self, user: &str, path: &str) -> Vec<Value> {
        self.audit_events(|e| {
            e["impersonatedUser"]["username"] == user
                && e["requestURI"].as_str().is_some_and(|u| u.contains(path))
        })
    }

    /// Stops kube-apiserver (etcd keeps the cluster's state), and waits until it has exited and
    /// its port is closed.
    ///
    /// kube-apiserver is asked to stop (SIGTERM), and killed if it has not exited within
    /// [`STOP_GRACE`]: with watches open (kubegate's) its graceful shutdown waits out its
    /// request timeout, a minute. The wait polls instead of blocking, because kubegate and the
    /// kubelet stand-in may run on this same runtime.
    pub async fn stop_apiserver(&mut self) -> Result<()> {
        let Some((mut child, tether)) = self.apiserver.take() else {
            return Ok(());
        };
        drop(tether);
        let grace = Instant::now() + STOP_GRACE;
        let deadline = grace + Duration::from_secs(10);
        let mut killed = false;
        while child.try_wait()?.is_none() {
            if !killed && Instant::now() > grace {
                // The tether's USR1 trap kills kube-apiserver outright.
                Command::new("kill")
                    .args(["-USR1", &child.id().to_string()])
                    .status()?;
                killed = true;
            }
            if Instant::now() > deadline {
                bail!("kube-apiserver had not exited 10 s after it was killed");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let address = self.url.trim_start_matches("https://").to_owned();
        while tokio::net::TcpStream::connect(&address).await.is_ok() {
            if Instant::now() > deadline {
                bail!("kube-apiserver still listens on {address} 30 s after it was stopped");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Starts kube-apiserver again as it first started (same port, flags and files), and
    /// waits until it is ready.
    pub async fn start_apiserver(&mut self) -> Result<()> {
        if self.apiserver.is_none() {
            let (bin, args) = &self.apiserver_command;
            let log = self.dir.join("kube-apiserver.log");
            // The first run's log stays beside the new one.
            let _ = std::fs::rename(&log, self.dir.join("kube-apiserver.1.log"));
            self.apiserver = Some(spawn_tethered(bin, args, &log)?);
        }
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = self.client("admin").await?;
        loop {
            let ready = client
                .request_text(http::Request::get("/readyz").body(Vec::new())?)
                .await;
            if ready.is_ok() {
                return Ok(());
            }
            let apiserver = self.apiserver.as_mut().map(|(child, _)| child);
            let processes = [Some(&mut self.etcd.0), apiserver];
            for (child, name) in processes.into_iter().zip(["etcd", "kube-apiserver"]) {
                let Some(child) = child else { continue };
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "{name} exited ({status}) during start-up; its log:\n{}",
                        tail(&self.dir.join(format!("{name}.log")))
                    );
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver was not ready within 60 s; its log:\n{}",
                    tail(&self.dir.join("kube-apiserver.log"))
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Grants kubegate its identity's rights and registers the kubelet stand-in as a Node.
    async fn bootstrap(&self, kubelet_cert: &CertifiedKey) -> Result<()> {
        let admin = self.client("admin").await?;
        let role: ClusterRole = serde_json::from_value(json!({
            "metadata": {"name": "kubegate"},
            "rules": [
                {"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]},
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
            ],
        }))?;
        let binding: ClusterRoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "kubegate"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kubegate"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kubegate"}],
        }))?;
        let pp = PostParams::default();
        Api::<ClusterRole>::all(admin.clone())
            .create(&pp, &role)
            .await
            .context("creating kubegate's ClusterRole")?;
        let read = ["get", "list", "watch"];
        let view: ClusterRole = serde_json::from_value(json!({
            "metadata": {"name": VIEW_ROLE},
            "rules": [
                {"apiGroups": WORKLOAD_GROUPS, "resources": WORKLOAD_RESOURCES, "verbs": read},
                {"apiGroups": [""], "resources": ["namespaces", "nodes", "persistentvolumes"], "verbs": read},
                {"apiGroups": ["admissionregistration.k8s.io"],
                 "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"], "verbs": read},
                {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": read},
                {"apiGroups": ["networking.k8s.io"], "resources": ["ingressclasses"], "verbs": read},
            ],
        }))?;
        let edit: ClusterRole = serde_json::from_value(json!({
            "metadata": {"name": EDIT_ROLE},
            "rules": [
                {"apiGroups": WORKLOAD_GROUPS, "resources": WORKLOAD_RESOURCES,
                 "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]},
                {"apiGroups": [""], "resources": ["secrets"],
                 "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            ],
        }))?;
        for role in [view, edit] {
            Api::<ClusterRole>::all(admin.clone())
                .create(&pp, &role)
                .await
                .context("creating the tenant roles")?;
        }
        Api::<ClusterRoleBinding>::all(admin.clone())
            .create(&pp, &binding)
            .await
            .context("creating kubegate's ClusterRoleBinding")?;
        // kubegate keeps each tenant's analysis settings in ConfigMaps of its own namespace.
        let own: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(json!({"metadata": {"name": KUBEGATE_NAMESPACE}}))?;
        Api::all(admin.clone())
            .create(&pp, &own)
            .await
            .context("creating kubegate's namespace")?;
        let settings: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(json!({
            "metadata": {"name": "kubegate-settings", "namespace": KUBEGATE_NAMESPACE},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]}],
        }))?;
        Api::namespaced(admin.clone(), KUBEGATE_NAMESPACE)
            .create(&pp, &settings)
            .await
            .context("creating kubegate's settings Role")?;
        let settings_binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(
            json!({
                "metadata": {"name": "kubegate-settings", "namespace": KUBEGATE_NAMESPACE},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kubegate-settings"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kubegate"}],
            }),
        )?;
        Api::namespaced(admin.clone(), KUBEGATE_NAMESPACE)
            .create(&pp, &settings_binding)
            .await
            .context("binding kubegate's settings Role")?;

        let kubelet_port =
            kubelet::start(kubelet_cert.clone(), self.container_logs.clone()).await?;
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME}},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet stand-in is serving container logs"}],
            },
        }))?;
        Api::<Node>::all(admin)
            .create(&pp, &node)
            .await
            .context("registering the kubelet stand-in's Node")?;
        Ok(())
    }
}

/// Where the control plane binaries are, building them first if this machine has none.
fn binaries() -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/local/build-control-plane");
    let output = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed ({})", script.display(), output.status);
    }
    let stdout = String::from_utf8(output.stdout)?;
    let dir = stdout
        .lines()
        .last()
        .context("build-control-plane printed no folder")?;
    Ok(PathBuf::from(dir))
}

/// Starts `bin` under a shell that kills it once this process's end of the returned pipe closes.
fn spawn_tethered(bin: &Path, args: &[String], log: &Path) -> Result<(Child, ChildStdin)> {
    let log_file = std::fs::File::create(log)?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#""$@" </dev/null & child=$!; trap 'kill $child 2>/dev/null' TERM INT; trap 'kill -9 $child 2>/dev/null' USR1; cat >/dev/null; kill $child 2>/dev/null; wait $child"#)
        .arg("kubegate-tether")
        .arg(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let tether = child.stdin.take().context("no stdin pipe")?;
    Ok((child, tether))
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The control plane's certificates and keys.
struct Pki {
    ca: DevCa,
    apiserver: CertifiedKey,
    kubelet: CertifiedKey,
    kubelet_client: CertifiedKey,
    service_accounts: IssuerKey,
}

struct PkiFiles {
    ca: PathBuf,
    apiserver_cert: PathBuf,
    apiserver_key: PathBuf,
    kubelet_client_cert: PathBuf,
    kubelet_client_key: PathBuf,
    sa_key: PathBuf,
    sa_pub: PathBuf,
}

impl Pki {
    fn generate() -> Result<Pki> {
        let ca = DevCa::generate("kubegate test cluster CA")?;
        let apiserver = ca.issue(
            "kube-apiserver",
            &[
                "127.0.0.1",
                "localhost",
                "10.0.0.1",
                "kubernetes.default.svc",
            ],
            None,
            Usage::Server,
        )?;
        let kubelet = ca.issue(NODE_NAME, &["127.0.0.1", "localhost"], None, Usage::Server)?;
        let kubelet_client = ca.issue(
            "kube-apiserver-kubelet-client",
            &[],
            Some("system:masters"),
            Usage::Client,
        )?;
        Ok(Pki {
            ca,
            apiserver,
            kubelet,
            kubelet_client,
            service_accounts: IssuerKey::generate()?,
        })
    }

    fn write(&self, dir: &Path) -> Result<PkiFiles> {
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            apiserver_cert: dir.join("apiserver.pem"),
            apiserver_key: dir.join("apiserver-key.pem"),
            kubelet_client_cert: dir.join("kubelet-client.pem"),
            kubelet_client_key: dir.join("kubelet-client-key.pem"),
            sa_key: dir.join("sa-key.pem"),
            sa_pub: dir.join("sa.pub.pem"),
        };
        write_file(&files.ca, self.ca.cert_pem(), false)?;
        write_file(&files.apiserver_cert, &self.apiserver.cert_pem, false)?;
        write_file(&files.apiserver_key, &self.apiserver.key_pem, true)?;
        write_file(
            &files.kubelet_client_cert,
            &self.kubelet_client.cert_pem,
            false,
        )?;
        write_file(
            &files.kubelet_client_key,
            &self.kubelet_client.key_pem,
            true,
        )?;
        write_file(&files.sa_key, &self.service_accounts.private_pem, true)?;
        write_file(&files.sa_pub, &self.service_accounts.public_pem, false)?;
        Ok(files)
    }
}

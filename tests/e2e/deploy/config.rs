//! Each overlay's Deployment runs a configuration kubegate loads: its ConfigMaps are laid out
//! as the kubelet mounts them, the configuration goes through `Config::load` with the
//! container's environment and its policies through the policy loader, and calls are decided
//! as the overlay promises. The files the configuration names come from the volumes and
//! Secrets the README says to create; ports, probes, shutdown and security settings agree
//! with the configuration and the Containerfile.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use kubegate::auth::Caller;
use kubegate::config::{Config, NON_DESTRUCTIVE_ENV};
use kubegate::kube::ApiCatalog;
use kubegate::policy::cases::{self, Call, Decided, Principal, StaticNamespaces};
use kubegate::policy::{PolicyEngine, RequestFacts};
use serde_json::{Value, json};

use super::{OVERLAYS, Rendering, deploy_dir, wrap};
use crate::support::volume::MountedVolume;

/// What each overlay promises: (overlay, non-destructive set on, tenants may change objects in
/// their namespaces, tenants may delete them).
const PROMISES: &[(&str, bool, bool, bool)] = &[
    ("dev", false, true, true),
    ("production", true, false, false),
    ("non-destructive", true, true, false),
];

/// A rendered overlay's configuration, loaded from its mounted files under `root`.
struct Loaded {
    root: tempfile::TempDir,
    config: Config,
    engine: PolicyEngine,
    env: BTreeMap<String, String>,
}

impl Loaded {
    /// Lays out the Deployment's ConfigMap volumes and loads the file `--config` names, with
    /// the non-destructive switch of the container's environment.
    fn from(rendering: &Rendering) -> Result<Loaded> {
        let root = tempfile::tempdir()?;
        mount_config_maps(rendering, root.path())?;
        let container = rendering.container()?;
        let args: Vec<&str> = container["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let Some(["serve", "--config", file]) = args.get(..3) else {
            bail!("the container does not run `serve --config FILE`: {args:?}");
        };
        let path = root.path().join(file.trim_start_matches('/'));
        let mut config = Config::load(&path).with_context(|| format!("loading {file}"))?;
        let env: BTreeMap<String, String> = container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    e["name"].as_str()?.to_owned(),
                    e["value"].as_str()?.to_owned(),
                ))
            })
            .collect();
        config.apply_env(env.get(NON_DESTRUCTIVE_ENV).map(String::as_str))?;
        let engine = PolicyEngine::load(config.policy_sources(), &config.cluster_name())
            .with_context(|| format!("loading the policies {file} names"))?;
        Ok(Loaded {
            root,
            config,
            engine,
            env,
        })
    }

    /// Where a path of the configuration is inside the pod.
    fn in_pod(&self, path: &Path) -> PathBuf {
        let mut inside = PathBuf::from("/");
        for part in path
            .strip_prefix(self.root.path())
            .unwrap_or(path)
            .components()
        {
            match part {
                Component::ParentDir => {
                    inside.pop();
                }
                Component::Normal(name) => inside.push(name),
                _ => {}
            }
        }
        inside
    }

    /// A caller as the configuration's issuer names them to Kubernetes (its prefixes).
    fn caller(&self, user: &str, groups: &[&str], tenant: &str) -> Arc<Caller> {
        let jwt = self.config.auth.iter().flat_map(|a| &a.jwt).next();
        let prefix = |claim: Option<&kubegate::config::PrefixedClaim>| {
            claim.and_then(|c| c.prefix.clone()).unwrap_or_default()
        };
        let (users, group) = (
            prefix(jwt.map(|j| &j.claim_mappings.username)),
            prefix(jwt.and_then(|j| j.claim_mappings.groups.as_ref())),
        );
        Principal {
            user: format!("{users}{user}"),
            groups: groups.iter().map(|g| format!("{group}{g}")).collect(),
            tenant: tenant.to_owned(),
            email: None,
            claims: BTreeMap::new(),
        }
        .caller()
    }
}

/// Writes each ConfigMap volume of the Deployment under `root` as the kubelet mounts it.
fn mount_config_maps(rendering: &Rendering, root: &Path) -> Result<()> {
    for (mount, volume) in mounts(rendering)? {
        let Some(name) = volume["configMap"]["name"].as_str() else {
            continue;
        };
        let files: Vec<(&str, &str)> = rendering.get("ConfigMap", name)?["data"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(key, value)| (key.as_str(), value.as_str().unwrap_or_default()))
            .collect();
        let path = mount["mountPath"].as_str().unwrap_or("/");
        MountedVolume::new(&root.join(path.trim_start_matches('/')), &files)?;
    }
    Ok(())
}

/// The kubegate container's volume mounts, each with its volume.
fn mounts(rendering: &Rendering) -> Result<Vec<(&Value, &Value)>> {
    let pod = &rendering.one("Deployment")?["spec"]["template"]["spec"];
    let mut found = Vec::new();
    for mount in rendering.container()?["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let volume = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == mount["name"])
            .with_context(|| format!("no volume for the mount {mount}"))?;
        found.push((mount, volume));
    }
    Ok(found)
}

/// What provides the file at `path` in the pod: (kind, name, key) of its ConfigMap or Secret.
fn source_of(rendering: &Rendering, path: &Path) -> Result<(String, String, String)> {
    let key = |items: &Value, file: &str| match items.as_array() {
        Some(items) => items
            .iter()
            .find(|i| i["path"] == file)
            .and_then(|i| i["key"].as_str())
            .map(str::to_owned),
        None => Some(file.to_owned()),
    };
    for (mount, volume) in mounts(rendering)? {
        let Ok(file) = path.strip_prefix(mount["mountPath"].as_str().unwrap_or("")) else {
            continue;
        };
        let file = file.display().to_string();
        let mut sources: Vec<&Value> = volume["projected"]["sources"]
            .as_array()
            .map(|s| s.iter().collect())
            .unwrap_or_else(|| vec![volume]);
        for source in sources.drain(..) {
            let (kind, name, items) = if source["configMap"].is_object() {
                (
                    "ConfigMap",
                    &source["configMap"]["name"],
                    &source["configMap"]["items"],
                )
            } else if source["secret"].is_object() {
                let secret = &source["secret"];
                let name = secret.get("secretName").unwrap_or(&secret["name"]);
                ("Secret", name, &secret["items"])
            } else {
                continue;
            };
            if let (Some(name), Some(key)) = (name.as_str(), key(items, &file)) {
                return Ok((kind.to_owned(), name.to_owned(), key));
            }
        }
    }
    bail!("nothing the Deployment mounts provides {}", path.display())
}

/// Decides a call of `tool` as kubegate would live, with namespaces team-a and team-b
/// labelled as their tenants'.
fn decide(loaded: &Loaded, caller: &Arc<Caller>, tool: &str, arguments: Value) -> Decided {
    let label = loaded.config.tenant_label();
    let namespaces = BTreeMap::from(["team-a", "team-b"].map(|ns| {
        (
            ns.to_owned(),
            BTreeMap::from([(label.to_owned(), ns.to_owned())]),
        )
    }));
    let facts = RequestFacts {
        transport: "streamable-http",
        source_ip: [10, 0, 0, 7].into(),
        protocol_version: kubegate::mcp::PROTOCOL_VERSIONS[0].to_owned(),
        session_id: None,
        time: jiff::Timestamp::now(),
    };
    let call = Call::Tool {
        tool: tool.to_owned(),
        arguments: arguments.as_object().cloned().unwrap_or_default(),
    };
    let namespaces = StaticNamespaces::new(&namespaces, label);
    cases::decide(
        &loaded.engine,
        caller,
        &call,
        &facts,
        &namespaces,
        &ApiCatalog::offline(),
        false,
    )
}

/// The user the Containerfile's runtime stage runs as.
fn image_user() -> Result<u64> {
    let text = std::fs::read_to_string(deploy_dir().join("Containerfile"))?;
    let user = text
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .context("the Containerfile names no USER")?;
    Ok(user.split(':').next().unwrap_or(user).trim().parse()?)
}

#[test]
fn every_overlay_runs_a_configuration_kubegate_loads_with_the_policy_set_it_promises() -> Result<()>
{
    for &(overlay, non_destructive, tenants_change, tenants_delete) in PROMISES {
        let rendering = Rendering::overlay(overlay)?;
        let loaded = Loaded::from(&rendering)?;
        let config = &loaded.config;
        assert_eq!(config.non_destructive(), non_destructive, "{overlay}");

        let alice = loaded.caller("alice", &["team-a-devs"], "team-a");
        let carol = loaded.caller("carol", &["platform-admins"], "platform");
        let pods = |ns: &str| json!({"resourceType": "pods", "namespace": ns});
        let said = |d: &Decided| format!("{overlay}: {}", d.message);
        let read = decide(&loaded, &alice, "list-resources", pods("team-a"));
        assert!(read.allowed, "{}", said(&read));
        let across = decide(&loaded, &alice, "list-resources", pods("team-b"));
        assert!(!across.allowed, "{}", said(&across));
        let admin = decide(&loaded, &carol, "list-resources", pods("team-b"));
        assert!(
            admin.allowed,
            "platform-admins as the issuer names them: {}",
            said(&admin)
        );
        let scale = json!({"name": "web", "namespace": "team-a", "replicas": 2});
        let scaled = decide(&loaded, &alice, "kubectl_scale", scale);
        assert_eq!(scaled.allowed, tenants_change, "{}", said(&scaled));
        let pod = json!({"name": "web-1", "namespace": "team-a"});
        let deleted = decide(&loaded, &alice, "delete_pod", pod);
        assert_eq!(deleted.allowed, tenants_delete, "{}", said(&deleted));
        if tenants_change && !tenants_delete {
            assert_eq!(deleted.policies, ["non-destructive"], "{}", said(&deleted));
        }

        // The policies are the shipped ones, byte for byte.
        let policies = rendering.get("ConfigMap", "kubegate-policies")?;
        for (name, text) in policies["data"].as_object().into_iter().flatten() {
            let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("policies")
                .join(name);
            let shipped = std::fs::read_to_string(&shipped)
                .with_context(|| format!("{overlay}: {name} is not a shipped policy"))?;
            assert!(
                text.as_str() == Some(shipped.as_str()),
                "{overlay}: {name} differs from policies/{name}: copy it into deploy/ again"
            );
        }
    }
    assert_eq!(OVERLAYS.len(), PROMISES.len());
    Ok(())
}

#[test]
fn every_file_the_configuration_names_comes_from_what_the_deployment_mounts() -> Result<()> {
    for &overlay in OVERLAYS {
        let rendering = Rendering::overlay(overlay)?;
        let loaded = Loaded::from(&rendering)?;
        let config = &loaded.config;
        let from = |path: &Path| source_of(&rendering, &loaded.in_pod(path));
        let tls = config.tls.as_ref().context("[tls]")?;
        let secret = |name: &str, key: &str| ("Secret".to_owned(), name.to_owned(), key.to_owned());
        assert_eq!(
            from(&tls.cert)?,
            secret("kubegate-tls", "tls.crt"),
            "{overlay}"
        );
        assert_eq!(
            from(&tls.key)?,
            secret("kubegate-tls", "tls.key"),
            "{overlay}"
        );
        let session = config
            .mcp
            .session_key_file
            .as_deref()
            .context("a shared session key")?;
        assert_eq!(
            from(session)?,
            secret("kubegate-session-key", "session.key")
        );
        let signing = config
            .audit
            .signing_key
            .as_deref()
            .context("signed checkpoints")?;
        let audit_key = secret("kubegate-audit-key", "audit-signing-key.pem");
        assert_eq!(from(signing)?, audit_key, "{overlay}");
        let audit_dir = loaded.in_pod(config.audit.path.parent().unwrap_or(Path::new("/")));
        let (audit_mount, audit_volume) = mounts(&rendering)?
            .into_iter()
            .find(|(m, _)| m["mountPath"] == audit_dir.display().to_string())
            .context("the audit log's folder is no volume")?;
        assert_ne!(audit_mount["readOnly"], true, "{overlay}");
        if overlay == "production" {
            // One folder per pod on one volume that outlives the pods.
            assert_eq!(audit_mount["subPathExpr"], "$(POD_NAME)");
            let claim = audit_volume["persistentVolumeClaim"]["claimName"].as_str();
            let claim = rendering.get("PersistentVolumeClaim", claim.unwrap_or_default())?;
            assert_eq!(claim["spec"]["accessModes"], json!(["ReadWriteMany"]));
            let pod_name = rendering.container()?["env"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["name"] == "POD_NAME");
            assert_eq!(
                pod_name.map(|e| &e["valueFrom"]["fieldRef"]["fieldPath"]),
                Some(&json!("metadata.name"))
            );
        }
    }
    Ok(())
}

#[test]
fn ports_probes_shutdown_and_security_agree_with_the_configuration_and_the_image() -> Result<()> {
    for &overlay in OVERLAYS {
        let rendering = Rendering::overlay(overlay)?;
        let loaded = Loaded::from(&rendering)?;
        let config = &loaded.config;
        // Ports, probes and shutdown agree with the configuration.
        let container = rendering.container()?;
        let port = |name: &str| {
            container["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == name)
                .and_then(|p| p["containerPort"].as_u64())
        };
        assert_eq!(
            port("https"),
            Some(u64::from(config.listen.port())),
            "{overlay}"
        );
        let metrics = config.metrics.as_ref().context("[metrics]")?.listen.port();
        assert_eq!(port("metrics"), Some(u64::from(metrics)), "{overlay}");
        let service = rendering.one("Service")?;
        for name in ["https", "metrics"] {
            let targets = service["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == name && p["targetPort"] == name);
            assert!(targets, "{overlay}: the Service's {name} port");
        }
        for (probe, path) in [
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ] {
            let get = &container[probe]["httpGet"];
            assert_eq!(
                (&get["path"], &get["port"], &get["scheme"]),
                (&json!(path), &json!("https"), &json!("HTTPS")),
                "{overlay}: {probe}"
            );
            let host = get["httpHeaders"][0]["value"].as_str().unwrap_or_default();
            assert!(
                get["httpHeaders"][0]["name"] == "Host"
                    && config.http.allowed_hosts.iter().any(|h| h == host),
                "{overlay}: {probe} must name a host kubegate serves, or it is refused 403"
            );
        }
        let deployment = rendering.one("Deployment")?;
        let pod = &deployment["spec"]["template"]["spec"];
        let drain = config.http.shutdown_delay_seconds + config.http.shutdown_grace_seconds;
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
        assert!(
            grace > drain,
            "{overlay}: {grace} s to stop, {drain} s of drain"
        );
        let namespace = rendering.one("Namespace")?["metadata"]["name"].as_str();
        assert_eq!(
            namespace,
            Some(config.analysis.namespace.as_str()),
            "{overlay}"
        );
        assert_eq!(
            rendering.one("Role")?["metadata"]["namespace"].as_str(),
            namespace
        );

        // Non-root as the image's user, nothing to escalate with, resources bounded.
        let context = &pod["securityContext"];
        assert_eq!(context["runAsNonRoot"], true, "{overlay}");
        assert_eq!(
            context["runAsUser"].as_u64(),
            Some(image_user()?),
            "{overlay}"
        );
        assert_eq!(
            context["seccompProfile"]["type"], "RuntimeDefault",
            "{overlay}"
        );
        let context = &container["securityContext"];
        assert_eq!(context["allowPrivilegeEscalation"], false, "{overlay}");
        assert_eq!(context["readOnlyRootFilesystem"], true, "{overlay}");
        assert_eq!(context["capabilities"]["drop"], json!(["ALL"]), "{overlay}");
        let resources = &container["resources"];
        for (bound, what) in [
            ("requests", "cpu"),
            ("requests", "memory"),
            ("limits", "memory"),
        ] {
            assert!(
                resources[bound][what].is_string(),
                "{overlay}: {bound}.{what}"
            );
        }

        // The autoscaler starts from the Deployment's replicas; the budget lets a drain go on.
        let replicas = deployment["spec"]["replicas"].as_u64().unwrap_or(1);
        match (rendering.all("HorizontalPodAutoscaler").next(), overlay) {
            (None, "dev") => assert!(rendering.all("PodDisruptionBudget").next().is_none()),
            (Some(hpa), _) => {
                assert_eq!(
                    hpa["spec"]["minReplicas"].as_u64(),
                    Some(replicas),
                    "{overlay}"
                );
                let budget = rendering.one("PodDisruptionBudget")?["spec"]["minAvailable"].as_u64();
                assert!(budget.is_some_and(|b| b < replicas), "{overlay}");
            }
            (None, _) => bail!("{overlay} has no HorizontalPodAutoscaler"),
        }
        assert!(loaded.env.contains_key("OTEL_SERVICE_NAME"), "{overlay}");
    }
    Ok(())
}

#[test]
fn the_optional_components_match_what_the_deployment_mounts_and_serves() -> Result<()> {
    let dir = wrap(
        "overlays/production",
        &["components/cert-manager", "components/service-monitor"],
        None,
    )?;
    let rendering = Rendering::of(dir.path())?;
    let loaded = Loaded::from(&rendering)?;
    let tls = loaded.config.tls.as_ref().context("[tls]")?;
    let (_, secret, _) = source_of(&rendering, &loaded.in_pod(&tls.cert))?;
    let certificate = rendering.one("Certificate")?;
    assert_eq!(certificate["apiVersion"], "cert-manager.io/v1");
    assert_eq!(
        certificate["spec"]["secretName"].as_str(),
        Some(secret.as_str())
    );
    let names: Vec<&str> = certificate["spec"]["dnsNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for host in &loaded.config.http.allowed_hosts {
        assert!(names.contains(&host.as_str()), "{host} is not in {names:?}");
    }

    let monitor = rendering.one("ServiceMonitor")?;
    let service = rendering.one("Service")?;
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    let port = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == endpoint["port"])
        .context("the ServiceMonitor names no port of the Service")?;
    assert_eq!(port["targetPort"], "metrics");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
    {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "selects the Service"
        );
    }
    Ok(())
}

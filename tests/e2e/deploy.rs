//! `deploy/` for real: every overlay renders with kubectl's kustomize and runs a configuration
//! kubegate loads, with the policy set it promises (`config`); every overlay applies to the
//! real API server, server-side dry-run first, with RBAC that SubjectAccessReviews show is
//! exactly kubegate's (`apply`); and two kubegate processes configured as one Deployment's
//! replicas serve one client as one (`replicas`).
//!
//! The helpers here render a folder of `deploy/`, alone or wrapped with components into a
//! namespace of its own, and find objects in what it rendered.

mod apply;
mod config;
mod replicas;

use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The overlays `deploy/overlays/` ships.
pub const OVERLAYS: &[&str] = &["dev", "production", "non-destructive"];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// The kubectl to render and apply with: `KUBEGATE_KUBECTL`, else what
/// `deploy/local/install-kubectl` prints (the one on PATH if its kustomize is v5, else one it
/// installs once per machine).
pub fn kubectl() -> Result<PathBuf> {
    static KUBECTL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = KUBECTL.get_or_init(|| {
        if let Some(path) = std::env::var_os("KUBEGATE_KUBECTL") {
            return Ok(PathBuf::from(path));
        }
        let script = deploy_dir().join("local/install-kubectl");
        let output = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        match stdout.lines().last() {
            Some(path) if output.status.success() => Ok(PathBuf::from(path)),
            _ => Err(format!("{} failed ({})", script.display(), output.status)),
        }
    });
    found.clone().map_err(anyhow::Error::msg)
}

/// Runs kubectl with `args` (and `input` on stdin); its stdout, or an error with its stderr.
pub fn run_kubectl(args: &[&str], input: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new(kubectl()?)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting kubectl")?;
    let mut stdin = child.stdin.take().context("kubectl's stdin")?;
    stdin.write_all(input.unwrap_or_default().as_bytes())?;
    drop(stdin);
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "kubectl {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// The objects a kustomization renders.
pub struct Rendering {
    pub objects: Vec<Value>,
}

impl Rendering {
    /// Renders `dir` with `kubectl kustomize`.
    pub fn of(dir: &Path) -> Result<Rendering> {
        let dir = dir.display().to_string();
        let yaml = run_kubectl(&["kustomize", &dir], None)?;
        let objects = serde_saphyr::from_multiple::<Value>(&yaml)
            .with_context(|| format!("reading what {dir} renders"))?;
        Ok(Rendering { objects })
    }

    /// Renders the overlay `deploy/overlays/<name>`.
    pub fn overlay(name: &str) -> Result<Rendering> {
        Rendering::of(&deploy_dir().join("overlays").join(name))
    }

    /// The objects of `kind`.
    pub fn all<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Value> + use<'a> {
        let kind = kind.to_owned();
        self.objects
            .iter()
            .filter(move |o| o["kind"] == kind.as_str())
    }

    /// The one object of `kind`.
    pub fn one(&self, kind: &str) -> Result<&Value> {
        let mut found = self.all(kind);
        match (found.next(), found.next()) {
            (Some(object), None) => Ok(object),
            (None, _) => bail!("no {kind} rendered"),
            _ => bail!("more than one {kind} rendered"),
        }
    }

    /// The object of `kind` named `name`.
    pub fn get(&self, kind: &str, name: &str) -> Result<&Value> {
        self.all(kind)
            .find(|o| o["metadata"]["name"] == name)
            .with_context(|| format!("no {kind} {name} rendered"))
    }

    /// The kubegate container of the one Deployment.
    pub fn container(&self) -> Result<&Value> {
        self.one("Deployment")?["spec"]["template"]["spec"]["containers"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "kubegate"))
            .context("the Deployment has no kubegate container")
    }
}

/// A kustomization in a temporary folder over `deploy/<base>` plus `components` (folders of
/// `deploy/`), in `namespace` with its names prefixed `<namespace>-` if given: so that several
/// overlays can live side by side in the one test cluster, apart from its own `kubegate`.
pub fn wrap(base: &str, components: &[&str], namespace: Option<&str>) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let here = dir.path().canonicalize()?;
    let deploy = deploy_dir().canonicalize()?;
    // kustomize takes only relative paths: up to the root, then down to deploy/.
    let up: PathBuf = here
        .components()
        .skip(1)
        .map(|_| Component::ParentDir)
        .collect();
    let to = |folder: &str| {
        let path = up
            .join(deploy.strip_prefix("/").unwrap_or(&deploy))
            .join(folder);
        format!("  - {}\n", path.display())
    };
    let mut text = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
    );
    text.push_str(&to(base));
    if !components.is_empty() {
        text.push_str("components:\n");
        for component in components {
            text.push_str(&to(component));
        }
    }
    if let Some(namespace) = namespace {
        text.push_str(&format!(
            "namespace: {namespace}\nnamePrefix: {namespace}-\n"
        ));
    }
    std::fs::write(dir.path().join("kustomization.yaml"), text)?;
    Ok(dir)
}

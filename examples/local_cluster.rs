//! Runs the local control plane the tests use (etcd, kube-apiserver, kubelet stand-in) until
//! SIGTERM or SIGINT, for `deploy/local/demo`. Writes, under `--dir`: kubeconfigs for the admin
//! and for kubegate's identity, `cluster.env` (shell-sourceable facts), and `ready` once serving.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;

use anyhow::{Context, Result};
use support::ControlPlane;
use support::cluster::NODE_NAME;

#[tokio::main]
async fn main() -> Result<()> {
    kubegate::install_crypto_provider();
    let mut args = std::env::args().skip(1);
    let dir = match (args.next().as_deref(), args.next()) {
        (Some("--dir"), Some(dir)) => PathBuf::from(dir),
        _ => anyhow::bail!("usage: local_cluster --dir <folder>"),
    };
    let plane = ControlPlane::start(&dir)
        .await
        .context("starting the control plane")?;
    let admin_kubeconfig = plane.dir.join("admin.kubeconfig");
    plane.write_kubeconfig("admin", &admin_kubeconfig)?;
    plane.write_kubeconfig("kubegate", &plane.dir.join("kubegate.kubeconfig"))?;
    let facts = [
        ("KUBE_API_URL", plane.url.clone()),
        (
            "KUBE_ADMIN_KUBECONFIG",
            admin_kubeconfig.display().to_string(),
        ),
        ("KUBE_AUDIT_LOG", plane.audit_log.display().to_string()),
        (
            "KUBE_CONTAINER_LOGS",
            plane.container_logs.display().to_string(),
        ),
        ("KUBE_NODE_NAME", NODE_NAME.to_owned()),
    ];
    // Single-quoted for the shell, with any single quote in a value escaped.
    let env: String = facts
        .iter()
        .map(|(name, value)| format!("{name}='{}'\n", value.replace('\'', r"'\''")))
        .collect();
    std::fs::write(plane.dir.join("cluster.env"), env)?;
    std::fs::write(plane.dir.join("ready"), "")?;
    eprintln!("local control plane serving at {}", plane.url);

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    // Leaving main closes the tethers: etcd and kube-apiserver are killed with this process.
    let _ = std::fs::remove_file(plane.dir.join("ready"));
    eprintln!("local control plane stopping");
    Ok(())
}

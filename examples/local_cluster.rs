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
    let env = format!(
        "KUBE_API_URL={}\nKUBE_ADMIN_KUBECONFIG={}\nKUBE_AUDIT_LOG={}\nKUBE_CONTAINER_LOGS={}\nKUBE_NODE_NAME={}\n",
        plane.url,
        admin_kubeconfig.display(),
        plane.audit_log.display(),
        plane.container_logs.display(),
        NODE_NAME,
    );
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

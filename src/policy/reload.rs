//! Reloads the policies when their files change (a file watch on each policy file's folder and
//! each policy directory, so atomic replaces and Kubernetes ConfigMap updates are seen) and on
//! SIGHUP. A reload puts a new set in force only if it reads and validates; otherwise the last
//! good set stays, and the validator's message is logged.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{PolicyEngine, Reloaded};

/// Changes that come within this long of each other are one reload (an editor writes a file in
/// several steps; a ConfigMap update swaps a symlink and removes a folder).
const SETTLE: Duration = Duration::from_millis(200);

/// Starts reloading `engine` on SIGHUP and, if `watch_files`, when its files change; runs on the
/// current runtime until the process ends.
pub fn spawn(engine: Arc<PolicyEngine>, watch_files: bool) {
    let (changed, mut changes) = mpsc::unbounded_channel::<()>();
    let watcher = if watch_files {
        watch(&engine.sources().watched(), changed.clone())
    } else {
        None
    };
    let retry = changed.clone();
    spawn_hangup(changed);
    tokio::spawn(async move {
        // The watcher stops when dropped: it lives as long as this task.
        let _watcher = watcher;
        while changes.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while changes.try_recv().is_ok() {}
            let engine = Arc::clone(&engine);
            match tokio::task::spawn_blocking(move || engine.reload()).await {
                Ok(Ok(Reloaded::Replaced { version, policies })) => {
                    tracing::info!(policy.version = %version, policies, "policies reloaded");
                }
                Ok(Ok(Reloaded::Unchanged)) => tracing::debug!("policies unchanged"),
                Ok(Err(super::PolicyError::Changing)) => {
                    tracing::debug!("policy files changed while being read; reading again");
                    let _ = retry.send(());
                }
                Ok(Err(error)) => tracing::error!(
                    "policy reload refused, the last good set stays in force: {error}"
                ),
                Err(error) => tracing::error!(%error, "policy reload failed"),
            }
        }
    });
}

/// Watches each directory, and each file's folder, for changes.
fn watch(paths: &[PathBuf], changed: mpsc::UnboundedSender<()>) -> Option<RecommendedWatcher> {
    let mut watcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = changed.send(());
            }
        }) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(%error, "cannot watch policy files; they reload on SIGHUP only");
                return None;
            }
        };
    let mut folders: Vec<PathBuf> = paths
        .iter()
        .map(|path| {
            if path.is_dir() {
                path.clone()
            } else {
                path.parent().map(PathBuf::from).unwrap_or_default()
            }
        })
        .collect();
    folders.sort();
    folders.dedup();
    for folder in folders {
        if let Err(error) = watcher.watch(&folder, RecursiveMode::NonRecursive) {
            tracing::warn!(%error, folder = %folder.display(), "cannot watch a policy folder");
        }
    }
    Some(watcher)
}

fn spawn_hangup(changed: mpsc::UnboundedSender<()>) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hangup) => {
            tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading policies");
                    if changed.send(()).is_err() {
                        break;
                    }
                }
            });
        }
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGHUP; policies reload on file changes only")
        }
    }
}

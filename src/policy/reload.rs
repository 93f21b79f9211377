//! Reloads the policies when their files change (a file watch on each policy file's folder and
//! each policy directory, so atomic replaces and Kubernetes ConfigMap updates are seen) and on
//! SIGHUP. A reload puts a new set in force only if it reads and validates; otherwise the last
//! good set stays, and the validator's message is logged.
//!
//! Only changes that can touch the policies count: anything in a policy directory, a policy file
//! itself, or Kubernetes' `..data` swap beside it. Other files in a policy file's folder (an audit
//! log written there on every call) are not a reason to read the policies again.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
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
    let relevant = Relevant::of(paths);
    let mut watcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // A watch that lost events (or an event without paths) may have missed a policy.
            let reload = match &event {
                Ok(event) => event.need_rescan() || relevant.any(&event.paths),
                Err(_) => true,
            };
            if reload {
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

/// Which changed paths may change the policies.
#[derive(Debug, Default)]
struct Relevant {
    /// Policy directories: any entry in them.
    dirs: Vec<PathBuf>,
    /// Policy files: the file, or a `..`-named entry (Kubernetes' atomic writer) in its folder.
    files: Vec<PathBuf>,
}

impl Relevant {
    fn of(paths: &[PathBuf]) -> Relevant {
        let (dirs, files) = paths.iter().cloned().partition(|path| path.is_dir());
        Relevant { dirs, files }
    }

    /// Whether a change to these paths may change the policies (no paths: it may).
    fn any(&self, changed: &[PathBuf]) -> bool {
        changed.is_empty() || changed.iter().any(|path| self.one(path))
    }

    fn one(&self, changed: &Path) -> bool {
        let folder = changed.parent().unwrap_or(Path::new(""));
        if self.dirs.iter().any(|dir| dir == folder || dir == changed) {
            return true;
        }
        let name = changed.file_name().unwrap_or_default();
        self.files.iter().any(|file| {
            file.parent().unwrap_or(Path::new("")) == folder
                && (file.file_name() == Some(name) || is_atomic_writer_entry(name))
        })
    }
}

/// `..data`, `..data_tmp`, `..2026_12_02_…`: the entries a ConfigMap or Secret volume swaps.
fn is_atomic_writer_entry(name: &OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b"..")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_that_can_touch_the_policies_count() {
        let root = tempfile::tempdir().expect("temporary directory");
        let dir = root.path().join("policies");
        std::fs::create_dir(&dir).expect("policy directory");
        let file = root.path().join("tenant.cedar");
        let relevant = Relevant::of(&[dir.clone(), file.clone()]);
        // Anything in a policy directory, the directory itself, the policy file, a ConfigMap swap.
        assert!(relevant.any(&[dir.join("new.cedar")]));
        assert!(relevant.any(std::slice::from_ref(&dir)));
        assert!(relevant.any(std::slice::from_ref(&file)));
        assert!(relevant.any(&[root.path().join("..data")]));
        assert!(relevant.any(&[root.path().join("..2026_12_02_17_00_00.123")]));
        // Without paths, a change may have been anything.
        assert!(relevant.any(&[]));
        // The audit log beside a policy file, another file there, a file elsewhere: no.
        assert!(!relevant.any(&[root.path().join("audit.log")]));
        assert!(!relevant.any(&[root.path().join("tenant.cedar.swp")]));
        assert!(!relevant.any(&[PathBuf::from("/elsewhere/tenant.cedar")]));
        // One relevant path among others is enough.
        assert!(relevant.any(&[root.path().join("audit.log"), file]));
    }
}

//! Watches the configuration folder and pushes each new translation to the
//! proxy and the admin API.
//!
//! Change detection uses filesystem notifications, with a cheap fingerprint
//! poll (names, sizes and modification times) as a safety net for filesystems
//! that don't deliver them (network mounts, some container volumes). Bursts
//! of events are coalesced so an editor writing several files causes one
//! reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use notify::Watcher;
use tokio::sync::mpsc;

use crate::admin::AdminState;

/// Quiet period after the last filesystem event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Longest a burst may delay a reload: a file written continuously must not
/// postpone it forever.
const MAX_COALESCE: Duration = Duration::from_secs(1);
/// Fallback poll interval when no filesystem event arrives.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

pub struct ConfigWatcher {
    source: Mutex<weir_controller::DirSource>,
    proxy: weir_proxy::ProxyHandle,
    admin: AdminState,
}

impl ConfigWatcher {
    pub fn new(
        source: weir_controller::DirSource,
        proxy: weir_proxy::ProxyHandle,
        admin: AdminState,
    ) -> Arc<Self> {
        Arc::new(Self { source: Mutex::new(source), proxy, admin })
    }

    /// Re-reads the folder, translates it, and publishes the result. A broken
    /// file never stops the gateway: the source keeps that file's last good
    /// objects and reports the error, which we log and expose on /status.
    pub fn reload_now(&self) {
        let translation = {
            // The lock only serialises reloads; the request path never takes it.
            let mut source = self.source.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            source.reload()
        };
        for error in &translation.errors {
            log::warn!("configuration problem: {error}");
        }
        let snapshot = Arc::new(translation.snapshot);
        if self.proxy.served_version() != Some(snapshot.version) {
            log::info!(
                "serving configuration version {} ({} listeners, {} clusters)",
                snapshot.version,
                snapshot.listeners.len(),
                snapshot.clusters.len()
            );
            self.proxy.update(snapshot.clone());
        }
        self.admin.publish(snapshot, translation.statuses, translation.errors);
    }

    pub async fn run(self: Arc<Self>, dir: PathBuf) {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let _watcher = match start_notify(&dir, tx) {
            Ok(w) => Some(w),
            Err(e) => {
                log::warn!(
                    "cannot watch {} for changes ({e}); polling every {:?} instead",
                    dir.display(),
                    POLL_INTERVAL
                );
                None
            }
        };
        let mut fingerprint = folder_fingerprint(&dir);
        loop {
            let event = tokio::time::timeout(POLL_INTERVAL, rx.recv()).await;
            match event {
                Ok(None) => return,
                Ok(Some(())) => {
                    // Coalesce the burst, but never for longer than MAX_COALESCE.
                    let until = tokio::time::Instant::now() + MAX_COALESCE;
                    while tokio::time::Instant::now() < until {
                        match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                            Ok(Some(())) => continue,
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
                Err(_elapsed) => {}
            }
            let current = folder_fingerprint(&dir);
            if current == fingerprint {
                continue;
            }
            fingerprint = current;
            let this = self.clone();
            // Translation is CPU work; keep it off the async worker.
            let _ = tokio::task::spawn_blocking(move || this.reload_now()).await;
        }
    }
}

fn start_notify(dir: &Path, tx: mpsc::UnboundedSender<()>) -> notify::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Only YAML files matter; other files in the folder (logs, editor
        // swap files) must not trigger or delay reloads.
        if res.is_ok_and(|event| event.paths.iter().any(|p| is_yaml(p))) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Names, sizes and modification times of the YAML files in `dir`.
fn folder_fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            // Follow symlinks: Kubernetes ConfigMap volumes are symlink farms.
            let meta = std::fs::metadata(&path).ok()?;
            (is_yaml(&path) && meta.is_file()).then(|| (path, meta.len(), meta.modified().ok()))
        })
        .collect();
    entries.sort();
    entries
}

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

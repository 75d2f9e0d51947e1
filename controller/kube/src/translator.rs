//! The translation loop: applies watcher changes to the index, coalesces
//! bursts, translates, and publishes the snapshot and the status writes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use weir_model::Snapshot;

use crate::index::{Index, Output};
use crate::status::{self, StatusPatch};
use crate::watch::Change;

/// Quiet period after the last change before translating.
pub const QUIET: Duration = Duration::from_millis(100);
/// Longest a burst may delay a translation.
pub const MAX_COALESCE: Duration = Duration::from_secs(1);

/// Where the loop publishes.
pub struct Outputs {
    /// The latest snapshot; `None` until every watched kind was listed once.
    pub snapshots: watch::Sender<Option<Arc<Snapshot>>>,
    /// Status writes still needed.
    pub patches: watch::Sender<Vec<StatusPatch>>,
    /// Secrets the index needs (for the Secret fetcher).
    pub secrets: watch::Sender<BTreeSet<(String, String)>>,
}

/// Runs until `changes` closes. `kinds` are the watched kinds: nothing is
/// published before each has delivered its first full list, so a gateway
/// never receives a partial configuration.
pub async fn run(mut index: Index, mut changes: mpsc::UnboundedReceiver<Change>, kinds: BTreeSet<String>, out: Outputs) {
    let mut listed = BTreeSet::new();
    let mut secrets_fetched: Option<BTreeSet<(String, String)>> = None;
    let mut output: Option<Output> = None;
    let mut dirty = true;
    let mut last_errors = Vec::new();
    while let Some(first) = changes.recv().await {
        dirty |= apply(&mut index, first, &mut listed, &mut secrets_fetched);
        let deadline = Instant::now() + MAX_COALESCE;
        loop {
            let until = (Instant::now() + QUIET).min(deadline);
            match tokio::time::timeout_at(until, changes.recv()).await {
                Ok(Some(change)) => dirty |= apply(&mut index, change, &mut listed, &mut secrets_fetched),
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        let wanted = index.referenced_secrets();
        out.secrets.send_if_modified(|current| {
            let changed = *current != wanted;
            *current = wanted.clone();
            changed
        });
        let secrets_ready = secrets_fetched.as_ref().is_some_and(|f| wanted.is_subset(f));
        if !kinds.is_subset(&listed) || !secrets_ready {
            continue;
        }
        if dirty || output.is_none() {
            dirty = false;
            let next = index.translate();
            if next.errors != last_errors {
                for error in &next.errors {
                    log::warn!("configuration problem: {error}");
                }
                last_errors = next.errors.clone();
            }
            let new_version = out.snapshots.borrow().as_ref().map(|s| s.version) != Some(next.snapshot.version);
            if new_version {
                log::info!(
                    "publishing snapshot {} ({} listeners, {} clusters)",
                    next.snapshot.version,
                    next.snapshot.listeners.len(),
                    next.snapshot.clusters.len()
                );
                out.snapshots.send_replace(Some(next.snapshot.clone()));
            }
            output = Some(next);
        }
        if let Some(output) = &output {
            let patches = status::diff(&index, &output.statuses);
            out.patches.send_if_modified(|current| {
                let changed = *current != patches;
                *current = patches;
                changed
            });
        }
    }
}

/// Applies one change; returns whether translation input changed.
fn apply(
    index: &mut Index,
    change: Change,
    listed: &mut BTreeSet<String>,
    secrets_fetched: &mut Option<BTreeSet<(String, String)>>,
) -> bool {
    match change {
        Change::Apply { resource, key, object } => index.apply(&resource, key, object),
        Change::Delete { key } => index.delete(&key),
        Change::Replace { resource, items, unreadable } => {
            listed.insert(resource.kind.clone());
            index.replace_kind(&resource, items, &unreadable)
        }
        Change::SecretsFetched(names) => {
            *secrets_fetched = Some(names);
            false
        }
    }
}

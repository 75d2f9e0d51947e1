//! Wiring: watchers, Secret fetcher, translator, leader election and the
//! status writer, as tasks on the current runtime.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use weir_controller::{AddressPool, TranslateOptions};

use crate::index::{GatewayService, Index};
use crate::lease::{LeaderElector, LeaseOptions};
use crate::status::{StatusPatch, StatusWriter};

#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// GatewayClasses whose `spec.controllerName` equals this are ours.
    pub controller_name: String,
    /// The Service in front of the gateway replicas (Gateway addresses).
    pub gateway_service: GatewayService,
    /// Leader election; `None`: this replica always writes status.
    pub lease: Option<LeaseOptions>,
    /// How often referenced Secrets are re-read.
    pub secret_refresh: Duration,
}

/// A running controller. Dropping it stops every task.
pub struct Controller {
    pub snapshots: watch::Receiver<Option<Arc<weir_model::Snapshot>>>,
    pub patches: watch::Receiver<Vec<StatusPatch>>,
    pub leader: watch::Receiver<bool>,
    /// Status writes made by this replica.
    pub writes: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Controller {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the controller's tasks on the current Tokio runtime.
pub fn run(client: Client, opts: ControllerOptions) -> Controller {
    // Gateway pods listen on every interface; clients use the Service's
    // address (see `addresses`).
    let pool = AddressPool::new("0.0.0.0/32".parse().expect("valid CIDR")).expect("a /32 pool has its address");
    let index = Index::new(TranslateOptions::new(opts.controller_name.clone(), pool), opts.gateway_service.clone());

    let (changes_tx, changes_rx) = mpsc::unbounded_channel();
    let (snapshots_tx, snapshots) = watch::channel(None);
    let (patches_tx, patches) = watch::channel(Vec::new());
    let (secrets_tx, secrets_rx) = watch::channel(BTreeSet::new());
    let mut tasks = Vec::new();

    tasks.push(tokio::spawn(crate::secrets::run(client.clone(), secrets_rx, changes_tx.clone(), opts.secret_refresh)));
    let outputs = crate::translator::Outputs { snapshots: snapshots_tx, patches: patches_tx, secrets: secrets_tx };
    // Discovery may wait for the Gateway API CRDs; the snapshot server (and
    // its /healthz) must not, so watching starts in its own task. Dropping
    // the JoinSet (when this task is aborted) stops the watchers too.
    let watch_client = client.clone();
    tasks.push(tokio::spawn(async move {
        let resources = crate::watch::resources(&watch_client).await;
        let mut kinds: BTreeSet<String> = resources.iter().map(|r| r.kind.clone()).collect();
        kinds.insert("Secret".into());
        let mut set = tokio::task::JoinSet::new();
        for resource in resources {
            set.spawn(crate::watch::watch_kind(watch_client.clone(), resource, changes_tx.clone()));
        }
        drop(changes_tx);
        set.spawn(crate::translator::run(index, changes_rx, kinds, outputs));
        while set.join_next().await.is_some() {}
    }));

    let (leader_tx, leader) = watch::channel(opts.lease.is_none());
    match opts.lease {
        Some(lease) => tasks.push(tokio::spawn(LeaderElector::new(client.clone(), lease).run(leader_tx))),
        // Keep the sender alive so the writer does not see a closed channel.
        None => tasks.push(tokio::spawn(async move { leader_tx.closed().await })),
    }
    let writer = StatusWriter::new(client);
    let writes = writer.writes.clone();
    tasks.push(tokio::spawn(writer.run(patches.clone(), leader.clone())));
    Controller { snapshots, patches, leader, writes, tasks }
}

//! TLS Secrets, fetched by name: only the Secrets Gateway listeners
//! reference are read, so the controller needs `get` on Secrets and never
//! lists or watches them all. Referenced Secrets are re-read periodically to
//! pick up certificate rotation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::Client;
use tokio::sync::{mpsc, watch};
use weir_controller::ObjectKey;

use crate::convert::convert;
use crate::watch::Change;

/// How often referenced Secrets are re-read (certificate rotation).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Keeps the index's Secrets equal to the referenced ones. Each round sends
/// one `Change::Replace` with every referenced Secret that exists.
pub async fn run(
    client: Client,
    mut wanted: watch::Receiver<BTreeSet<(String, String)>>,
    tx: mpsc::UnboundedSender<Change>,
    refresh: Duration,
) {
    let resource = ApiResource::erase::<Secret>(&());
    let mut last: Option<BTreeMap<ObjectKey, Option<String>>> = None;
    loop {
        let names = wanted.borrow_and_update().clone();
        let mut items = Vec::new();
        let mut unreadable = Vec::new();
        let mut versions = BTreeMap::new();
        for (namespace, name) in &names {
            let key = ObjectKey { kind: "Secret".into(), namespace: Some(namespace.clone()), name: name.clone() };
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
            match api.get_opt(name).await {
                Ok(Some(object)) => match convert(&resource, &object) {
                    Ok(converted) => {
                        versions.insert(key.clone(), object.metadata.resource_version.clone());
                        items.push((key, converted));
                    }
                    Err(e) => {
                        log::warn!("cannot read {key}: {e}; fix the Secret");
                        unreadable.push(key);
                    }
                },
                // Missing: the Gateway listener reports the unresolved reference.
                Ok(None) => {}
                Err(e) => {
                    log::warn!(
                        "cannot get {key} ({e}); keeping its last version. The controller needs `get` on secrets \
                         (deploy/rbac.yaml)"
                    );
                    versions.insert(key.clone(), None);
                    unreadable.push(key);
                }
            }
        }
        // Only tell the index when something changed.
        if last.as_ref() != Some(&versions) || !unreadable.is_empty() {
            last = Some(versions);
            if tx.send(Change::Replace { resource: resource.clone(), items, unreadable }).is_err() {
                return;
            }
        }
        if tx.send(Change::SecretsFetched(names)).is_err() {
            return;
        }
        tokio::select! {
            changed = wanted.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(refresh) => {}
        }
    }
}

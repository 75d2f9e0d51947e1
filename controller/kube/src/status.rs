//! Status write-back: compare the desired status with the one the API server
//! has (ignoring `lastTransitionTime`), and patch the status subresource only
//! on a real change. Only the leader writes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::Client;
use serde_json::{json, Value};
use tokio::sync::watch;
use weir_controller::{ObjectKey, ObjectStatus};

use crate::index::Index;
use crate::kinds::STATUS_KINDS;

/// The field manager Weir's status writes are recorded under.
pub const FIELD_MANAGER: &str = "weir-controller";
/// Wait before retrying failed writes.
const RETRY_DELAY: Duration = Duration::from_secs(2);

/// One status write: the new `status` of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusPatch {
    pub key: ObjectKey,
    pub resource: ApiResource,
    pub status: Value,
}

/// The writes needed to bring the API server's statuses to `desired`.
pub fn diff(index: &Index, desired: &[ObjectStatus]) -> Vec<StatusPatch> {
    let ours = index.controller_name();
    let mut out = Vec::new();
    for status in desired.iter().filter(|s| STATUS_KINDS.contains(&s.kind.as_str())) {
        let key = ObjectKey { kind: status.kind.clone(), namespace: status.namespace.clone(), name: status.name.clone() };
        let Some(resource) = index.resource(&status.kind).filter(|_| index.contains(&key)) else { continue };
        let empty = json!({});
        let current = index.current_status(&key).unwrap_or(&empty);
        let wanted = if status.kind.ends_with("Route") {
            if parents_of(&status.status, ours).is_empty() && parents_of(current, ours).is_empty() {
                // Not attached to our Gateways, now or before: not ours to write.
                continue;
            }
            route_status(current, &status.status, ours)
        } else if status.status.as_object().is_some_and(|m| !m.is_empty()) {
            status.status.clone()
        } else {
            // Not ours (a GatewayClass of another controller, ...).
            continue;
        };
        if !same(current, &wanted) {
            out.push(StatusPatch { key, resource: resource.clone(), status: wanted });
        }
    }
    out
}

/// Route status is shared between controllers: keep the `parents` entries
/// of other controllers, replace ours.
fn route_status(current: &Value, desired: &Value, ours: &str) -> Value {
    let mut parents: Vec<Value> = current
        .get("parents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("controllerName").and_then(Value::as_str) != Some(ours))
        .cloned()
        .collect();
    parents.extend(desired.get("parents").and_then(Value::as_array).into_iter().flatten().cloned());
    json!({ "parents": parents })
}

/// The `parents` entries written by controller `ours`.
fn parents_of<'a>(status: &'a Value, ours: &str) -> Vec<&'a Value> {
    status
        .get("parents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("controllerName").and_then(Value::as_str) == Some(ours))
        .collect()
}

/// Whether `current` already says what `wanted` says, for the fields
/// `wanted` sets, ignoring `lastTransitionTime`.
pub fn same(current: &Value, wanted: &Value) -> bool {
    let Some(fields) = wanted.as_object() else { return strip(current) == strip(wanted) };
    fields.iter().all(|(k, v)| strip(current.get(k).unwrap_or(&Value::Null)) == strip(v))
}

fn strip(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(k, _)| *k != "lastTransitionTime").map(|(k, v)| (k.clone(), strip(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
        other => other.clone(),
    }
}

/// Applies the pending writes while this replica leads.
pub struct StatusWriter {
    client: Client,
    /// Status writes this replica made (tests and logs).
    pub writes: Arc<AtomicU64>,
}

impl StatusWriter {
    pub fn new(client: Client) -> Self {
        StatusWriter { client, writes: Arc::new(AtomicU64::new(0)) }
    }

    pub async fn run(self, mut pending: watch::Receiver<Vec<StatusPatch>>, mut leader: watch::Receiver<bool>) {
        // What this replica wrote and the API server may not have echoed yet;
        // prevents writing the same status twice while the watch catches up.
        let mut written: HashMap<ObjectKey, Value> = HashMap::new();
        loop {
            let mut retry = false;
            if *leader.borrow_and_update() {
                let patches = pending.borrow_and_update().clone();
                written.retain(|key, _| patches.iter().any(|p| p.key == *key));
                for patch in patches {
                    if written.get(&patch.key) == Some(&patch.status) {
                        continue;
                    }
                    match self.write(&patch).await {
                        Ok(()) => {
                            self.writes.fetch_add(1, Ordering::Relaxed);
                            log::info!("updated the status of {}", patch.key);
                            written.insert(patch.key, patch.status);
                        }
                        Err(kube::Error::Api(e)) if e.code == 404 => {}
                        Err(e) => {
                            log::warn!(
                                "cannot update the status of {} ({e}); retrying in {RETRY_DELAY:?}. The controller \
                                 needs `patch` on {}/status",
                                patch.key, patch.resource.plural
                            );
                            retry = true;
                        }
                    }
                }
            } else {
                written.clear();
            }
            let retry_timer = async {
                if retry { tokio::time::sleep(RETRY_DELAY).await } else { std::future::pending().await }
            };
            tokio::select! {
                changed = pending.changed() => if changed.is_err() { return },
                changed = leader.changed() => if changed.is_err() { return },
                _ = retry_timer => {}
            }
        }
    }

    async fn write(&self, patch: &StatusPatch) -> Result<(), kube::Error> {
        let api: Api<DynamicObject> = match &patch.key.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &patch.resource),
            None => Api::all_with(self.client.clone(), &patch.resource),
        };
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        api.patch_status(&patch.key.name, &params, &Patch::Merge(json!({ "status": patch.status })))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_times_do_not_count_as_changes() {
        let current = json!({"conditions": [{"type": "Accepted", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}], "extra": 1});
        let wanted = json!({"conditions": [{"type": "Accepted", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        assert!(same(&current, &wanted));
        let flipped = json!({"conditions": [{"type": "Accepted", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        assert!(!same(&current, &flipped));
    }

    #[test]
    fn route_status_keeps_other_controllers_parents() {
        let current = json!({"parents": [
            {"controllerName": "other.io/c", "parentRef": {"name": "a"}},
            {"controllerName": "weir.dev/gateway-controller", "parentRef": {"name": "old"}}]});
        let desired = json!({"parents": [{"controllerName": "weir.dev/gateway-controller", "parentRef": {"name": "gw"}}]});
        let merged = route_status(&current, &desired, "weir.dev/gateway-controller");
        assert_eq!(merged, json!({"parents": [
            {"controllerName": "other.io/c", "parentRef": {"name": "a"}},
            {"controllerName": "weir.dev/gateway-controller", "parentRef": {"name": "gw"}}]}));
    }
}

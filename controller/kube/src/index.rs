//! The in-memory index: every object Weir reads, as the watchers last saw it.
//!
//! Watchers call [`Index::apply`] / [`Index::delete`] / [`Index::replace_kind`];
//! [`Index::translate`] turns the whole index into a snapshot and the desired
//! statuses. The index does no I/O, so tests drive it with plain objects.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kube::core::ApiResource;
use weir_controller::{Object, ObjectKey, ObjectSet, ObjectStatus, TranslateOptions, TranslateState};

use crate::convert::Converted;

/// Where a Gateway's `status.addresses` come from: the Service in front of
/// the gateway replicas (`namespace`, `name`).
pub type GatewayService = Option<(String, String)>;

/// What one translation produced.
#[derive(Debug, Clone)]
pub struct Output {
    pub snapshot: Arc<weir_model::Snapshot>,
    /// Desired status of every object (`{}` for objects that are not ours).
    pub statuses: Vec<ObjectStatus>,
    /// Problems the translation found (also in the statuses).
    pub errors: Vec<weir_controller::Diagnostic>,
}

#[derive(Debug)]
pub struct Index {
    objects: BTreeMap<ObjectKey, Converted>,
    /// The resource each kind was watched as (for status writes).
    resources: BTreeMap<String, ApiResource>,
    opts: TranslateOptions,
    state: TranslateState,
    gateway_service: GatewayService,
    /// Version of the last snapshot handed out (see [`next_version`]).
    version: u64,
    translated_version: u64,
}

impl Index {
    pub fn new(opts: TranslateOptions, gateway_service: GatewayService) -> Self {
        Index {
            objects: BTreeMap::new(),
            resources: BTreeMap::new(),
            opts,
            state: TranslateState::new(),
            gateway_service,
            version: 0,
            translated_version: 0,
        }
    }

    pub fn controller_name(&self) -> &str {
        &self.opts.controller_name
    }

    /// Adds or replaces one object. Returns whether what the translation
    /// reads changed (a status-only update returns false).
    pub fn apply(&mut self, resource: &ApiResource, key: ObjectKey, converted: Converted) -> bool {
        self.resources.entry(resource.kind.clone()).or_insert_with(|| resource.clone());
        let changed = self.objects.get(&key).is_none_or(|old| old.object != converted.object);
        self.objects.insert(key, converted);
        changed
    }

    pub fn delete(&mut self, key: &ObjectKey) -> bool {
        self.objects.remove(key).is_some()
    }

    /// Replaces every object of `kind` (after a watcher's full re-list).
    /// Objects in `keep` (listed but unreadable) keep their last good version.
    pub fn replace_kind(
        &mut self,
        resource: &ApiResource,
        items: Vec<(ObjectKey, Converted)>,
        keep: &[ObjectKey],
    ) -> bool {
        let kind = resource.kind.clone();
        self.resources.insert(kind.clone(), resource.clone());
        let before: Vec<(ObjectKey, Object)> = self.objects_of(&kind);
        self.objects.retain(|key, _| key.kind != kind || keep.contains(key));
        self.objects.extend(items);
        before != self.objects_of(&kind)
    }

    fn objects_of(&self, kind: &str) -> Vec<(ObjectKey, Object)> {
        self.objects
            .iter()
            .filter(|(key, _)| key.kind == kind)
            .map(|(key, c)| (key.clone(), c.object.clone()))
            .collect()
    }

    pub fn resource(&self, kind: &str) -> Option<&ApiResource> {
        self.resources.get(kind)
    }

    /// The object's `status` as the API server last reported it.
    pub fn current_status(&self, key: &ObjectKey) -> Option<&serde_json::Value> {
        self.objects.get(key)?.status.as_ref()
    }

    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.objects.contains_key(key)
    }

    /// Secrets (`namespace`, `name`) that Gateway listeners reference: the
    /// only Secrets the controller reads.
    pub fn referenced_secrets(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for converted in self.objects.values() {
            let Object::Gateway(gateway) = &converted.object else { continue };
            let gateway_ns = gateway.metadata.namespace().to_string();
            for listener in &gateway.spec.listeners {
                for cert in listener.tls.iter().flat_map(|tls| &tls.certificate_refs) {
                    let core = cert.group.as_deref().unwrap_or("").is_empty();
                    if core && cert.kind.as_deref().unwrap_or("Secret") == "Secret" {
                        let ns = cert.namespace.clone().unwrap_or_else(|| gateway_ns.clone());
                        out.insert((ns, cert.name.clone()));
                    }
                }
            }
        }
        out
    }

    /// Translates the whole index.
    pub fn translate(&mut self) -> Output {
        let set: ObjectSet = self.objects.values().map(|c| c.object.clone()).collect();
        let translation = weir_controller::translate(&set, &self.opts, &mut self.state);
        let mut snapshot = translation.snapshot;
        if self.state.version() != self.translated_version || self.version == 0 {
            self.translated_version = self.state.version();
            self.version = next_version(self.version, SystemTime::now());
        }
        snapshot.version = self.version;
        let mut statuses = translation.statuses;
        let service = self.gateway_service.as_ref().and_then(|(ns, name)| {
            let key = ObjectKey { kind: "Service".into(), namespace: Some(ns.clone()), name: name.clone() };
            let converted = self.objects.get(&key)?;
            let Object::Service(service) = &converted.object else { return None };
            // The LoadBalancer ingress lives in the status, kept apart from the object.
            let mut service = service.clone();
            service.status = converted.status.clone().and_then(|s| serde_json::from_value(s).ok());
            Some(service)
        });
        if let Some((ns, name)) = &self.gateway_service {
            crate::addresses::set_gateway_addresses(&mut statuses, service.as_ref());
            let ready = self.ready_gateway_replicas(ns, name);
            crate::addresses::require_ready_replicas(&mut statuses, ready, &format!("{ns}/{name}"));
        }
        Output { snapshot: Arc::new(snapshot), statuses, errors: translation.errors }
    }
}

impl Index {
    /// Ready endpoints of the gateway Service: gateway replicas report ready
    /// only once they serve a snapshot.
    fn ready_gateway_replicas(&self, ns: &str, service: &str) -> usize {
        self.objects
            .values()
            .filter_map(|c| match &c.object {
                Object::EndpointSlice(slice) => Some(slice),
                _ => None,
            })
            .filter(|slice| {
                slice.metadata.namespace.as_deref() == Some(ns)
                    && slice.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")).map(String::as_str)
                        == Some(service)
            })
            .flat_map(|slice| &slice.endpoints)
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
            .count()
    }
}

/// Snapshot versions must grow across controller replicas too: a gateway
/// that reconnects to another replica ignores snapshots older than its own.
/// Milliseconds since the epoch (never less than the previous + 1) give every
/// replica the same clock-based order.
pub fn next_version(previous: u64, now: SystemTime) -> u64 {
    let millis = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    millis.max(previous + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::convert;
    use kube::core::DynamicObject;
    use serde_json::json;

    fn index() -> Index {
        let pool = weir_controller::AddressPool::new("0.0.0.0/32".parse().unwrap()).unwrap();
        Index::new(TranslateOptions::new("weir.dev/gateway-controller".into(), pool), None)
    }

    fn object(kind: &str, value: serde_json::Value) -> (ApiResource, ObjectKey, Converted) {
        let resource = crate::kinds::gateway_api_default(kind);
        let dynamic: DynamicObject = serde_json::from_value(value).unwrap();
        let key = crate::convert::key_of(&resource, &dynamic).unwrap();
        (resource.clone(), key, convert(&resource, &dynamic).unwrap())
    }

    fn gateway(status: serde_json::Value) -> (ApiResource, ObjectKey, Converted) {
        object("Gateway", json!({"metadata": {"name": "gw", "namespace": "app"}, "spec": {
            "gatewayClassName": "weir", "listeners": [
                {"name": "a", "port": 443, "protocol": "HTTPS", "tls": {"certificateRefs": [
                    {"name": "local"}, {"name": "shared", "namespace": "certs"},
                    {"group": "example.com", "kind": "Vault", "name": "not-a-secret"}]}}]},
            "status": status}))
    }

    #[test]
    fn only_secrets_listeners_reference_are_wanted() {
        let mut index = index();
        let (resource, key, converted) = gateway(json!({}));
        index.apply(&resource, key, converted);
        let wanted: Vec<_> = index.referenced_secrets().into_iter().collect();
        assert_eq!(wanted, [("app".to_string(), "local".to_string()), ("certs".into(), "shared".into())]);
    }

    #[test]
    fn status_only_updates_do_not_need_a_translation() {
        let mut index = index();
        let (resource, key, converted) = gateway(json!({}));
        assert!(index.apply(&resource, key.clone(), converted));
        let (_, _, with_status) = gateway(json!({"conditions": []}));
        assert!(!index.apply(&resource, key.clone(), with_status));
        assert_eq!(index.current_status(&key), Some(&json!({"conditions": []})));
    }

    #[test]
    fn a_relist_keeps_unreadable_objects_and_drops_deleted_ones() {
        let mut index = index();
        let (resource, key, converted) = gateway(json!({}));
        index.apply(&resource, key.clone(), converted);
        let (_, other_key, other) = object("Gateway", json!({"metadata": {"name": "other", "namespace": "app"},
            "spec": {"gatewayClassName": "weir"}}));
        index.apply(&resource, other_key.clone(), other);
        // `gw` could not be read this time; `other` is gone.
        assert!(index.replace_kind(&resource, Vec::new(), std::slice::from_ref(&key)));
        assert!(index.contains(&key));
        assert!(!index.contains(&other_key));
    }

    #[test]
    fn versions_grow_even_when_the_clock_does_not() {
        let now = SystemTime::now();
        let first = next_version(0, now);
        assert!(next_version(first, now) > first);
        assert!(next_version(first, now - std::time::Duration::from_secs(60)) > first);
    }
}

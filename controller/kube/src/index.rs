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
        if self.gateway_service.is_some() {
            crate::addresses::set_gateway_addresses(&mut statuses, service.as_ref());
        }
        Output { snapshot: Arc::new(snapshot), statuses, errors: translation.errors }
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

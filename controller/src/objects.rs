//! Typed Kubernetes objects and the set the translation reads.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Serialize;

use crate::api::{Gateway, GatewayClass, GrpcRoute, HttpRoute, ReferenceGrant};

/// One object the controller knows how to read. Kinds Weir does not
/// translate are kept as [`OtherObject`] so that their status can still be
/// listed (empty).
// Objects are parsed once per reload and kept in maps; the size difference
// between variants costs nothing worth an extra allocation per object.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    GatewayClass(GatewayClass),
    Gateway(Gateway),
    HttpRoute(HttpRoute),
    GrpcRoute(GrpcRoute),
    ReferenceGrant(ReferenceGrant),
    Service(Service),
    EndpointSlice(EndpointSlice),
    Secret(Secret),
    ConfigMap(ConfigMap),
    Namespace(Namespace),
    Other(OtherObject),
}

/// An object of a kind Weir does not translate (GRPCRoute, TLSRoute,
/// Deployment, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OtherObject {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub generation: Option<i64>,
}

/// Identity of an object: kind, namespace (None when cluster-scoped), name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectKey {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Kinds that are cluster-scoped (no namespace).
pub(crate) fn is_cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "GatewayClass"
            | "Namespace"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
    )
}

fn core_ns(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<String> {
    Some(
        meta.namespace
            .clone()
            .unwrap_or_else(|| "default".to_string()),
    )
}

impl Object {
    pub fn key(&self) -> ObjectKey {
        let (kind, namespace, name) = match self {
            Object::GatewayClass(o) => ("GatewayClass", None, o.metadata.name.clone()),
            Object::Gateway(o) => (
                "Gateway",
                Some(o.metadata.namespace().to_string()),
                o.metadata.name.clone(),
            ),
            Object::HttpRoute(o) => (
                "HTTPRoute",
                Some(o.metadata.namespace().to_string()),
                o.metadata.name.clone(),
            ),
            Object::GrpcRoute(o) => (
                "GRPCRoute",
                Some(o.metadata.namespace().to_string()),
                o.metadata.name.clone(),
            ),
            Object::ReferenceGrant(o) => (
                "ReferenceGrant",
                Some(o.metadata.namespace().to_string()),
                o.metadata.name.clone(),
            ),
            Object::Service(o) => (
                "Service",
                core_ns(&o.metadata),
                o.metadata.name.clone().unwrap_or_default(),
            ),
            Object::EndpointSlice(o) => (
                "EndpointSlice",
                core_ns(&o.metadata),
                o.metadata.name.clone().unwrap_or_default(),
            ),
            Object::Secret(o) => (
                "Secret",
                core_ns(&o.metadata),
                o.metadata.name.clone().unwrap_or_default(),
            ),
            Object::ConfigMap(o) => (
                "ConfigMap",
                core_ns(&o.metadata),
                o.metadata.name.clone().unwrap_or_default(),
            ),
            Object::Namespace(o) => (
                "Namespace",
                None,
                o.metadata.name.clone().unwrap_or_default(),
            ),
            Object::Other(o) => {
                return ObjectKey {
                    kind: o.kind.clone(),
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                }
            }
        };
        ObjectKey {
            kind: kind.to_string(),
            namespace,
            name,
        }
    }

    pub fn generation(&self) -> Option<i64> {
        match self {
            Object::GatewayClass(o) => o.metadata.generation,
            Object::Gateway(o) => o.metadata.generation,
            Object::HttpRoute(o) => o.metadata.generation,
            Object::GrpcRoute(o) => o.metadata.generation,
            Object::ReferenceGrant(o) => o.metadata.generation,
            Object::Service(o) => o.metadata.generation,
            Object::EndpointSlice(o) => o.metadata.generation,
            Object::Secret(o) => o.metadata.generation,
            Object::ConfigMap(o) => o.metadata.generation,
            Object::Namespace(o) => o.metadata.generation,
            Object::Other(o) => o.generation,
        }
    }

    pub fn set_generation(&mut self, generation: i64) {
        let slot = match self {
            Object::GatewayClass(o) => &mut o.metadata.generation,
            Object::Gateway(o) => &mut o.metadata.generation,
            Object::HttpRoute(o) => &mut o.metadata.generation,
            Object::GrpcRoute(o) => &mut o.metadata.generation,
            Object::ReferenceGrant(o) => &mut o.metadata.generation,
            Object::Service(o) => &mut o.metadata.generation,
            Object::EndpointSlice(o) => &mut o.metadata.generation,
            Object::Secret(o) => &mut o.metadata.generation,
            Object::ConfigMap(o) => &mut o.metadata.generation,
            Object::Namespace(o) => &mut o.metadata.generation,
            Object::Other(o) => &mut o.generation,
        };
        *slot = Some(generation);
    }
}

/// Namespaced lookup key: `(namespace, name)`.
pub type NsName = (String, String);

/// Every object the translation reads, indexed by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectSet {
    pub gateway_classes: BTreeMap<String, GatewayClass>,
    pub gateways: BTreeMap<NsName, Gateway>,
    pub http_routes: BTreeMap<NsName, HttpRoute>,
    pub grpc_routes: BTreeMap<NsName, GrpcRoute>,
    pub reference_grants: BTreeMap<NsName, ReferenceGrant>,
    pub services: BTreeMap<NsName, Service>,
    pub endpoint_slices: BTreeMap<NsName, EndpointSlice>,
    pub secrets: BTreeMap<NsName, Secret>,
    pub config_maps: BTreeMap<NsName, ConfigMap>,
    pub namespaces: BTreeMap<String, Namespace>,
    pub others: BTreeMap<ObjectKey, OtherObject>,
}

impl ObjectSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an object.
    pub fn insert(&mut self, object: Object) {
        let key = object.key();
        let ns_name = (key.namespace.clone().unwrap_or_default(), key.name.clone());
        match object {
            Object::GatewayClass(o) => drop(self.gateway_classes.insert(key.name, o)),
            Object::Gateway(o) => drop(self.gateways.insert(ns_name, o)),
            Object::HttpRoute(o) => drop(self.http_routes.insert(ns_name, o)),
            Object::GrpcRoute(o) => drop(self.grpc_routes.insert(ns_name, o)),
            Object::ReferenceGrant(o) => drop(self.reference_grants.insert(ns_name, o)),
            Object::Service(o) => drop(self.services.insert(ns_name, o)),
            Object::EndpointSlice(o) => drop(self.endpoint_slices.insert(ns_name, o)),
            Object::Secret(o) => drop(self.secrets.insert(ns_name, o)),
            Object::ConfigMap(o) => drop(self.config_maps.insert(ns_name, o)),
            Object::Namespace(o) => drop(self.namespaces.insert(key.name, o)),
            Object::Other(o) => drop(self.others.insert(key, o)),
        }
    }
}

impl FromIterator<Object> for ObjectSet {
    fn from_iter<T: IntoIterator<Item = Object>>(iter: T) -> Self {
        let mut set = ObjectSet::new();
        for object in iter {
            set.insert(object);
        }
        set
    }
}

//! backendRefs → clusters: Service ports and their EndpointSlice endpoints.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::{Service, ServicePort};
use weir_model::{Cluster, Endpoint, UpstreamProtocol};

use super::refgrant::{self, normalize_group};
use crate::api::GATEWAY_GROUP;
use crate::objects::ObjectSet;

/// Why a backend reference cannot be used; `reason()` is the route's
/// ResolvedRefs reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BackendError {
    #[error("{field}: {kind} {group:?} is not a supported backend kind")]
    InvalidKind {
        field: String,
        group: String,
        kind: String,
    },
    #[error("{field}: Weir has no extension filter {kind} {name:?} (group {group:?}); matching requests answer 500")]
    UnsupportedFilter {
        field: String,
        group: String,
        kind: String,
        name: String,
    },
    #[error(
        "{field}: reference to Service {namespace}/{name} is not permitted by any ReferenceGrant"
    )]
    RefNotPermitted {
        field: String,
        namespace: String,
        name: String,
    },
    #[error("{field}: Service {namespace}/{name} {problem}")]
    BackendNotFound {
        field: String,
        namespace: String,
        name: String,
        problem: String,
    },
    #[error(
        "{field}: Service {namespace}/{name} port {port} has unsupported appProtocol {protocol:?}"
    )]
    UnsupportedProtocol {
        field: String,
        namespace: String,
        name: String,
        port: i32,
        protocol: String,
    },
}

impl BackendError {
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            // "InvalidKind: [...] a reference to an unknown or unsupported Group and/or Kind"
            BackendError::InvalidKind { .. } | BackendError::UnsupportedFilter { .. } => {
                "InvalidKind"
            }
            BackendError::RefNotPermitted { .. } => "RefNotPermitted",
            BackendError::BackendNotFound { .. } => "BackendNotFound",
            BackendError::UnsupportedProtocol { .. } => "UnsupportedProtocol",
        }
    }
}

/// One backend reference as written (backendRef or mirror backendRef).
pub(crate) struct BackendRef<'a> {
    /// The referring route's kind, for ReferenceGrant checks.
    pub route_kind: &'a str,
    pub field: String,
    pub group: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub port: Option<i32>,
}

/// Resolves `backend` (referenced from an HTTPRoute in `route_ns`) to a
/// cluster, adding the cluster to `clusters`. Returns the cluster name.
pub(crate) fn resolve(
    objects: &ObjectSet,
    route_ns: &str,
    backend: &BackendRef<'_>,
    clusters: &mut BTreeMap<String, Cluster>,
) -> Result<String, BackendError> {
    let group = normalize_group(backend.group.unwrap_or(""));
    let kind = backend.kind.unwrap_or("Service");
    if !group.is_empty() || kind != "Service" {
        return Err(BackendError::InvalidKind {
            field: backend.field.clone(),
            group: group.to_string(),
            kind: kind.to_string(),
        });
    }
    let namespace = backend.namespace.unwrap_or(route_ns);
    let from = refgrant::From {
        group: GATEWAY_GROUP,
        kind: backend.route_kind,
        namespace: route_ns,
    };
    let to = refgrant::To {
        group: "",
        kind: "Service",
        namespace,
        name: backend.name,
    };
    if !refgrant::permitted(objects, from, to) {
        return Err(BackendError::RefNotPermitted {
            field: backend.field.clone(),
            namespace: namespace.to_string(),
            name: backend.name.to_string(),
        });
    }
    let not_found = |problem: String| BackendError::BackendNotFound {
        field: backend.field.clone(),
        namespace: namespace.to_string(),
        name: backend.name.to_string(),
        problem,
    };
    let service = objects
        .services
        .get(&(namespace.to_string(), backend.name.to_string()))
        .ok_or_else(|| not_found("does not exist".to_string()))?;
    let port_number = backend
        .port
        .ok_or_else(|| not_found("needs a port in the backendRef".to_string()))?;
    let port = service_ports(service)
        .iter()
        .find(|p| p.port == port_number)
        .ok_or_else(|| not_found(format!("has no port {port_number}")))?;
    let protocol = match port.app_protocol.as_deref() {
        Some("kubernetes.io/h2c") => UpstreamProtocol::H2c,
        Some("kubernetes.io/ws") => UpstreamProtocol::WebSocket,
        // WebSocket over TLS needs TLS origination, which a Service alone does not configure.
        Some(other @ "kubernetes.io/wss") => {
            return Err(BackendError::UnsupportedProtocol {
                field: backend.field.clone(),
                namespace: namespace.to_string(),
                name: backend.name.to_string(),
                port: port_number,
                protocol: other.to_string(),
            })
        }
        _ => UpstreamProtocol::Http1,
    };
    let name = format!("{namespace}/{}:{port_number}", backend.name);
    if !clusters.contains_key(&name) {
        let endpoints = endpoints(objects, namespace, backend.name, service, port);
        clusters.insert(
            name.clone(),
            Cluster {
                name: name.clone(),
                protocol,
                endpoints,
                connect_timeout: None,
                tls: None,
            },
        );
    }
    Ok(name)
}

fn service_ports(service: &Service) -> &[ServicePort] {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default()
}

/// Ready endpoints of the Service port, from the EndpointSlices labelled
/// `kubernetes.io/service-name: <service>`. The slice port is the one named
/// like the Service port ("ready: absent means ready", per EndpointConditions).
fn endpoints(
    objects: &ObjectSet,
    namespace: &str,
    service_name: &str,
    service: &Service,
    port: &ServicePort,
) -> Vec<Endpoint> {
    let port_name = port.name.as_deref().unwrap_or("");
    let single_port = service_ports(service).len() == 1;
    let mut out: Vec<Endpoint> = Vec::new();
    for ((ns, _), slice) in &objects.endpoint_slices {
        let owned = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"));
        if ns != namespace || owned.map(String::as_str) != Some(service_name) {
            continue;
        }
        let slice_ports = slice.ports.as_deref().unwrap_or_default();
        let by_name = slice_ports
            .iter()
            .find(|p| p.name.as_deref().unwrap_or("") == port_name);
        // A hand-written slice for a one-port Service may leave its port unnamed differently.
        let slice_port =
            by_name.or_else(|| (single_port && slice_ports.len() == 1).then(|| &slice_ports[0]));
        let Some(number) = slice_port
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            if endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for address in &endpoint.addresses {
                let Ok(ip) = address.parse::<IpAddr>() else {
                    continue;
                };
                out.push(Endpoint {
                    address: SocketAddr::new(ip, number),
                    weight: 1,
                    locality: endpoint.zone.clone(),
                    labels: BTreeMap::new(),
                    ready: true,
                });
            }
        }
    }
    out.sort_by_key(|e| e.address);
    out.dedup_by(|a, b| a.address == b.address);
    out
}

//! The per-request routing decision: which route, and what it does. Works on
//! the compiled table and plain request parts, so it is testable without a
//! socket.

use std::net::SocketAddr;
use std::sync::Arc;

use weir_model::{Cluster, Filter, ListenerProtocol, RouteAction, WeightedBackend};

use crate::balance::pick_backend;
use crate::errors::ProxyError;
use crate::matching::RequestView;
use crate::rewrite::{redirect_location, RedirectInput};
use crate::table::{CompiledRoute, ListenerTable, Lookup, RouteTable, VhostTable};

/// The matched route, kept in the request context (the `Arc`s keep the
/// snapshot's pieces alive for the request's lifetime).
#[derive(Debug, Clone)]
pub struct Matched {
    pub listener: Arc<ListenerTable>,
    pub vhost: Arc<VhostTable>,
    pub route_index: usize,
}

impl Matched {
    pub fn route(&self) -> &CompiledRoute {
        &self.vhost.routes[self.route_index]
    }
}

/// What to do with a request.
#[derive(Debug)]
pub enum Decision {
    Reject(ProxyError),
    Redirect {
        status: u16,
        location: String,
    },
    Direct {
        status: u16,
        body: Option<String>,
    },
    Forward {
        backend: usize,
        cluster: Arc<Cluster>,
    },
}

/// Inputs besides the request line and headers.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub local: SocketAddr,
    /// Normalised host (see `table::normalize_host`).
    pub host: &'a str,
    /// The connection is TLS.
    pub tls: bool,
    /// SNI of the TLS connection, normalised.
    pub sni: Option<&'a str>,
    /// A random number for the weighted backend choice.
    pub roll: u64,
}

pub fn decide(
    table: &RouteTable,
    arrival: Arrival<'_>,
    req: &RequestView<'_>,
) -> (Option<Matched>, Decision) {
    let Some(listener) = table.listener(arrival.local) else {
        return (None, Decision::Reject(ProxyError::NoRoute));
    };
    let lookup = listener.lookup(arrival.host, req);
    if arrival.tls {
        let vhost_listener = match &lookup {
            Lookup::Matched(vhost, _) | Lookup::NoRoute(vhost) => {
                Some(vhost.gateway_listener.as_str())
            }
            Lookup::NoListener | Lookup::NoVirtualHost => None,
        };
        if listener.is_misdirected(arrival.sni, vhost_listener) {
            return (None, Decision::Reject(ProxyError::Misdirected));
        }
    }
    let (vhost, route) = match lookup {
        Lookup::Matched(vhost, route) => (vhost, route),
        Lookup::NoListener | Lookup::NoVirtualHost | Lookup::NoRoute(_) => {
            return (None, Decision::Reject(ProxyError::NoRoute));
        }
    };
    let route_index = vhost
        .routes
        .iter()
        .position(|r| std::ptr::eq(r, route))
        .unwrap_or(0);
    let matched = Matched {
        listener: listener.clone(),
        vhost: vhost.clone(),
        route_index,
    };

    let decision = match &route.route.action {
        RouteAction::Redirect(redirect) => {
            let input = RedirectInput {
                scheme: scheme(listener.protocol),
                host: arrival.host,
                path: req.path,
                query: req.query,
                listener_port: listener.port,
            };
            Decision::Redirect {
                status: redirect.status,
                location: redirect_location(redirect, &input, route.matcher.prefix()),
            }
        }
        RouteAction::DirectResponse { status, body } => Decision::Direct {
            status: *status,
            body: body.clone(),
        },
        RouteAction::Forward(backends) => forward(table, backends, arrival.roll),
    };
    (Some(matched), decision)
}

/// Weighted choice among backendRefs; an invalid share (no cluster, or a
/// cluster missing from the snapshot) and an all-zero weight set answer 500.
fn forward(table: &RouteTable, backends: &[WeightedBackend], roll: u64) -> Decision {
    let Some(backend) = pick_backend(backends, roll) else {
        return Decision::Reject(ProxyError::InvalidBackend);
    };
    let index = backends
        .iter()
        .position(|b| std::ptr::eq(b, backend))
        .unwrap_or(0);
    match backend
        .cluster
        .as_deref()
        .and_then(|name| table.cluster(name))
    {
        Some(cluster) => Decision::Forward {
            backend: index,
            cluster: cluster.clone(),
        },
        None => Decision::Reject(ProxyError::InvalidBackend),
    }
}

/// The backendRef chosen for the request (its filters apply after the route's).
pub fn backend_of(matched: &Matched, backend: Option<usize>) -> Option<&WeightedBackend> {
    match &matched.route().route.action {
        RouteAction::Forward(backends) => backend.and_then(|i| backends.get(i)),
        RouteAction::Redirect(_) | RouteAction::DirectResponse { .. } => None,
    }
}

/// Mirror filters of the route and backend.
pub fn mirrors<'a>(
    filters: impl Iterator<Item = &'a Filter>,
) -> impl Iterator<Item = (&'a str, f64)> {
    filters.filter_map(|f| match f {
        Filter::Mirror {
            cluster: Some(cluster),
            percent,
        } => Some((cluster.as_str(), *percent)),
        _ => None,
    })
}

pub fn scheme(protocol: ListenerProtocol) -> &'static str {
    match protocol {
        ListenerProtocol::Http => "http",
        ListenerProtocol::Https => "https",
    }
}

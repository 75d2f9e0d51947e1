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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr};
    use weir_model::{
        Listener, ListenerTls, Redirect, Route, RouteMatch, RouteSource, Snapshot, SniCertificate,
        Timeouts, UpstreamProtocol, VirtualHost,
    };

    fn route(action: RouteAction) -> Route {
        Route {
            source: RouteSource {
                kind: "HTTPRoute".into(),
                namespace: "ns".into(),
                name: "r".into(),
                rule: 0,
                rule_name: None,
            },
            matcher: RouteMatch::default(),
            action,
            filters: vec![],
            timeouts: Timeouts::default(),
            retry: None,
        }
    }

    fn table(protocol: ListenerProtocol, vhosts: Vec<VirtualHost>) -> RouteTable {
        let tls = (protocol == ListenerProtocol::Https).then(|| ListenerTls {
            certificates: vec![SniCertificate {
                hostname: Some("a.example".into()),
                certificate: "c".into(),
                gateway_listener: "gw/a".into(),
            }],
        });
        let listener = Listener {
            name: "l".into(),
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8443,
            protocol,
            tls,
            virtual_hosts: vhosts,
        };
        let cluster = Cluster {
            name: "c".into(),
            protocol: UpstreamProtocol::Http1,
            endpoints: vec![],
            connect_timeout: None,
            tls: None,
        };
        let snapshot = Snapshot {
            version: 1,
            listeners: vec![listener],
            clusters: BTreeMap::from([("c".to_string(), cluster)]),
            certificates: BTreeMap::new(),
        };
        RouteTable::compile(&snapshot).0
    }

    fn run(t: &RouteTable, host: &str, sni: Option<&str>) -> Decision {
        let headers = http::HeaderMap::new();
        let req = RequestView {
            method: "GET",
            path: "/p",
            query: Some("q=1"),
            headers: &headers,
            port: 8443,
        };
        let arrival = Arrival {
            local: SocketAddr::from(([127, 0, 0, 1], 8443)),
            host,
            tls: sni.is_some(),
            sni,
            roll: 0,
        };
        decide(t, arrival, &req).1
    }

    fn vhost(host: &str, listener: &str, action: RouteAction) -> VirtualHost {
        VirtualHost {
            hostname: host.into(),
            gateway_listener: listener.into(),
            routes: vec![route(action)],
        }
    }

    #[test]
    fn forward_redirect_and_invalid_backend() {
        let forward = RouteAction::Forward(vec![WeightedBackend {
            cluster: Some("c".into()),
            weight: 1,
            filters: vec![],
        }]);
        let invalid = RouteAction::Forward(vec![WeightedBackend {
            cluster: Some("missing".into()),
            weight: 1,
            filters: vec![],
        }]);
        let redirect = RouteAction::Redirect(Redirect {
            scheme: None,
            hostname: None,
            path: None,
            port: None,
            status: 302,
        });
        let t = table(
            ListenerProtocol::Http,
            vec![
                vhost("f", "gw", forward),
                vhost("i", "gw", invalid),
                vhost("r", "gw", redirect),
            ],
        );
        assert!(matches!(
            run(&t, "f", None),
            Decision::Forward { backend: 0, .. }
        ));
        assert!(matches!(
            run(&t, "i", None),
            Decision::Reject(ProxyError::InvalidBackend)
        ));
        match run(&t, "r", None) {
            Decision::Redirect { status, location } => {
                assert_eq!((status, location.as_str()), (302, "http://r:8443/p?q=1"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            run(&t, "none", None),
            Decision::Reject(ProxyError::NoRoute)
        ));
    }

    #[test]
    fn misdirected_only_on_tls() {
        let direct = || RouteAction::DirectResponse {
            status: 200,
            body: None,
        };
        let t = table(
            ListenerProtocol::Https,
            vec![
                vhost("a.example", "gw/a", direct()),
                vhost("b.example", "gw/b", direct()),
            ],
        );
        assert!(matches!(
            run(&t, "a.example", Some("a.example")),
            Decision::Direct { .. }
        ));
        assert!(matches!(
            run(&t, "b.example", Some("a.example")),
            Decision::Reject(ProxyError::Misdirected)
        ));
        // No default certificate entry: an unknown SNI never makes a request misdirected.
        assert!(matches!(
            run(&t, "b.example", Some("z.example")),
            Decision::Direct { .. }
        ));
    }
}

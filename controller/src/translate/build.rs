//! Assembles the snapshot's sockets and virtual hosts from the attached routes.
//!
//! Listener isolation: on one socket, a request's Host selects the most
//! specific virtual host (exact, longest wildcard, `*`) with no fallback. So
//! that a virtual host serves exactly the routes of the most specific
//! listener for its hosts, virtual hosts are made for every listener hostname
//! and every effective route hostname, and each holds only the routes
//! attached to the listener(s) that are most specific for it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use weir_model::{Listener, ListenerProtocol, ListenerTls, Route, SniCertificate, VirtualHost};

use super::attach::Attachment;
use super::gateway::GatewayPlan;
use super::hostname::{self, ANY};
use super::precedence::Precedence;

/// A route attached somewhere, with its converted rules.
pub(crate) struct AttachedRoute<'a> {
    pub attachments: Vec<Attachment>,
    pub entries: &'a [(Precedence, Route)],
}

/// A Gateway listener bound on a socket: (gateway index, listener index).
type ListenerId = (usize, usize);

pub(crate) fn listeners(
    gateways: &[GatewayPlan<'_>],
    routes: &[AttachedRoute<'_>],
) -> Vec<Listener> {
    // Socket → the Gateway listeners served on it.
    let mut sockets: BTreeMap<(IpAddr, u16), (ListenerProtocol, Vec<ListenerId>)> = BTreeMap::new();
    for (g, gateway) in gateways.iter().enumerate() {
        let Some(address) = gateway.address.filter(|_| gateway.serving()) else {
            continue;
        };
        for (l, listener) in gateway.listeners.iter().enumerate() {
            let Some(protocol) = listener.protocol.filter(|_| listener.servable()) else {
                continue;
            };
            sockets
                .entry((address, listener.port))
                .or_insert((protocol, Vec::new()))
                .1
                .push((g, l));
        }
    }
    sockets
        .into_iter()
        .map(|((address, port), (protocol, members))| Listener {
            name: format!("{address}:{port}"),
            address,
            port,
            protocol,
            tls: (protocol == ListenerProtocol::Https).then(|| tls(gateways, &members)),
            virtual_hosts: virtual_hosts(gateways, &members, routes),
        })
        .collect()
}

fn listener_name(gateways: &[GatewayPlan<'_>], (g, l): ListenerId) -> String {
    format!("{}/{}", gateways[g].key(), gateways[g].listeners[l].name)
}

fn pattern<'p>(gateways: &'p [GatewayPlan<'_>], (g, l): ListenerId) -> &'p str {
    gateways[g].listeners[l].hostname.as_deref().unwrap_or(ANY)
}

fn virtual_hosts(
    gateways: &[GatewayPlan<'_>],
    members: &[ListenerId],
    routes: &[AttachedRoute<'_>],
) -> Vec<VirtualHost> {
    let on_socket = |a: &Attachment| members.contains(&(a.gateway, a.listener));
    let mut names: BTreeSet<String> = members
        .iter()
        .map(|m| pattern(gateways, *m).to_string())
        .collect();
    for route in routes {
        for a in route.attachments.iter().filter(|a| on_socket(a)) {
            names.extend(a.hostnames.iter().cloned());
        }
    }
    // Each host's owners: the listeners whose hostname is the most specific
    // one covering it. Only their routes are served there.
    let mut hosts: BTreeMap<String, (Vec<ListenerId>, BTreeSet<usize>)> = BTreeMap::new();
    for host in names {
        let best = members
            .iter()
            .map(|m| pattern(gateways, *m))
            .filter(|p| hostname::covers(p, &host))
            .max_by_key(|p| hostname::specificity(p));
        let Some(best) = best else { continue };
        let owners = members
            .iter()
            .copied()
            .filter(|m| pattern(gateways, *m) == best)
            .collect();
        hosts.insert(host, (owners, BTreeSet::new()));
    }
    // A route serves every host its effective hostnames cover: an exact
    // hostname only itself, a wildcard every host below it.
    for (index, route) in routes.iter().enumerate() {
        for a in route.attachments.iter().filter(|a| on_socket(a)) {
            let id = (a.gateway, a.listener);
            for h in &a.hostnames {
                if h.starts_with('*') {
                    for (host, (owners, served)) in hosts.iter_mut() {
                        if owners.contains(&id) && hostname::covers(h, host) {
                            served.insert(index);
                        }
                    }
                } else if let Some((owners, served)) = hosts.get_mut(h) {
                    if owners.contains(&id) {
                        served.insert(index);
                    }
                }
            }
        }
    }
    hosts
        .into_iter()
        .map(|(host, (owners, served))| {
            let mut entries: Vec<&(Precedence, Route)> = served
                .into_iter()
                .flat_map(|i| routes[i].entries.iter())
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            VirtualHost {
                hostname: host,
                gateway_listener: listener_name(gateways, owners[0]),
                routes: entries.into_iter().map(|(_, r)| r.clone()).collect(),
            }
        })
        .collect()
}

/// One SNI entry per listener: its hostname (or the default entry when it
/// has none) with its first valid certificate.
fn tls(gateways: &[GatewayPlan<'_>], members: &[ListenerId]) -> ListenerTls {
    let mut certificates: Vec<SniCertificate> = Vec::new();
    for &(g, l) in members {
        let listener = &gateways[g].listeners[l];
        let Some(certificate) = listener.certificates.first() else {
            continue;
        };
        if certificates.iter().any(|c| c.hostname == listener.hostname) {
            continue;
        }
        certificates.push(SniCertificate {
            hostname: listener.hostname.clone(),
            certificate: certificate.clone(),
            gateway_listener: listener_name(gateways, (g, l)),
        });
    }
    ListenerTls { certificates }
}

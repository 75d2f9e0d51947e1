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
    let mut hosts: BTreeSet<String> = members
        .iter()
        .map(|m| pattern(gateways, *m).to_string())
        .collect();
    for route in routes {
        for a in route.attachments.iter().filter(|a| on_socket(a)) {
            hosts.extend(a.hostnames.iter().cloned());
        }
    }
    hosts
        .into_iter()
        .filter_map(|host| {
            // The listeners whose hostname is the most specific one covering `host`.
            let best = members
                .iter()
                .map(|m| pattern(gateways, *m))
                .filter(|p| hostname::covers(p, &host))
                .max_by_key(|p| hostname::specificity(p))?;
            let owners: Vec<ListenerId> = members
                .iter()
                .copied()
                .filter(|m| pattern(gateways, *m) == best)
                .collect();
            let mut entries: Vec<&(Precedence, Route)> = Vec::new();
            for route in routes {
                let serves = route.attachments.iter().any(|a| {
                    owners.contains(&(a.gateway, a.listener))
                        && a.hostnames.iter().any(|h| hostname::covers(h, &host))
                });
                if serves {
                    entries.extend(route.entries.iter());
                }
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Some(VirtualHost {
                hostname: host,
                gateway_listener: listener_name(gateways, owners[0]),
                routes: entries.into_iter().map(|(_, r)| r.clone()).collect(),
            })
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

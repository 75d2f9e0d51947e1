//! The compiled route table: a [`Snapshot`] turned, once per update, into
//! per-socket lookup structures so that a request does one host lookup and a
//! short walk over pre-sorted routes.
//!
//! This module is pure (no Pingora, no I/O) so that tools such as
//! `weir explain` can answer "which route serves this request?" with the exact
//! code the data plane runs.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use weir_model::{Cluster, Listener, ListenerProtocol, Route, Snapshot, VirtualHost};

use crate::matching::{CompiledMatch, RequestView};

/// Everything the request path needs from one snapshot.
#[derive(Debug, Default)]
pub struct RouteTable {
    pub version: u64,
    listeners: HashMap<SocketAddr, Arc<ListenerTable>>,
    clusters: HashMap<String, Arc<Cluster>>,
}

/// One bound socket's virtual hosts.
#[derive(Debug)]
pub struct ListenerTable {
    pub name: String,
    pub port: u16,
    pub protocol: ListenerProtocol,
    pub hosts: HostIndex<Arc<VhostTable>>,
    /// SNI pattern → Gateway listener, to detect misdirected requests (421).
    pub sni_listeners: HostIndex<String>,
    /// The Gateway listener of the default certificate (SNI absent/unknown).
    pub default_sni_listener: Option<String>,
}

/// A virtual host with its routes compiled, in precedence order.
#[derive(Debug)]
pub struct VhostTable {
    pub hostname: String,
    pub gateway_listener: String,
    pub routes: Vec<CompiledRoute>,
}

#[derive(Debug)]
pub struct CompiledRoute {
    pub route: Route,
    pub matcher: CompiledMatch,
    /// `kind/ns/name/rule`, computed once for access logs.
    pub display_name: String,
}

/// Hostname-pattern index: exact names, `*.suffix` wildcards and the
/// catch-all `*`.
#[derive(Debug)]
pub struct HostIndex<T> {
    exact: HashMap<String, T>,
    /// Keyed by the suffix after `*.`, e.g. `example.com`.
    wildcard: HashMap<String, T>,
    any: Option<T>,
}

impl<T> Default for HostIndex<T> {
    fn default() -> Self {
        HostIndex {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            any: None,
        }
    }
}

impl<T> HostIndex<T> {
    /// Adds a pattern; the first entry for a pattern wins (the translator
    /// already ordered conflicting entries).
    pub fn insert(&mut self, pattern: &str, value: T) {
        let pattern = pattern.to_ascii_lowercase();
        if pattern == "*" {
            if self.any.is_none() {
                self.any = Some(value);
            }
        } else if let Some(suffix) = pattern.strip_prefix("*.") {
            self.wildcard.entry(suffix.to_string()).or_insert(value);
        } else {
            self.exact.entry(pattern).or_insert(value);
        }
    }

    /// Exact name, then the longest wildcard (`*.b.c` before `*.c`), then `*`.
    /// A wildcard needs at least one label in front of its suffix, so
    /// `example.com` does not match `*.example.com`. `host` must already be
    /// normalised with [`normalize_host`].
    pub fn lookup(&self, host: &str) -> Option<&T> {
        if let Some(v) = self.exact.get(host) {
            return Some(v);
        }
        if !self.wildcard.is_empty() {
            let mut rest = host;
            while let Some((_, suffix)) = rest.split_once('.') {
                if let Some(v) = self.wildcard.get(suffix) {
                    return Some(v);
                }
                rest = suffix;
            }
        }
        self.any.as_ref()
    }
}

/// Lower-cases a Host header / `:authority` value and strips its port and a
/// trailing dot (`Example.COM.:8080` → `example.com`). IPv6 literals keep
/// their brackets.
pub fn normalize_host(raw: &str) -> String {
    let raw = raw.trim();
    let without_port = if raw.starts_with('[') {
        match raw.find(']') {
            Some(end) => &raw[..=end],
            None => raw,
        }
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => raw,
        }
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// What a route lookup found.
#[derive(Debug)]
pub enum Lookup<'t> {
    /// No socket entry (the listener was removed while the connection lived).
    NoListener,
    /// No virtual host for this hostname on this socket.
    NoVirtualHost,
    /// A virtual host matched but none of its routes did (no fallback to a
    /// less specific host: listener isolation).
    NoRoute(&'t Arc<VhostTable>),
    Matched(&'t Arc<VhostTable>, &'t CompiledRoute),
}

impl RouteTable {
    /// Compiles a snapshot. Returns the table and one message per problem
    /// (e.g. an invalid regex: that route never matches, the rest works).
    pub fn compile(snapshot: &Snapshot) -> (RouteTable, Vec<String>) {
        let mut problems = Vec::new();
        let mut listeners = HashMap::new();
        for listener in &snapshot.listeners {
            let addr = SocketAddr::new(listener.address, listener.port);
            let table = compile_listener(listener, &mut problems);
            if listeners.insert(addr, Arc::new(table)).is_some() {
                problems.push(format!(
                    "listener {addr} appears twice; the last entry wins"
                ));
            }
        }
        let clusters = snapshot
            .clusters
            .iter()
            .map(|(name, cluster)| (name.clone(), Arc::new(cluster.clone())))
            .collect();
        (
            RouteTable {
                version: snapshot.version,
                listeners,
                clusters,
            },
            problems,
        )
    }

    /// The socket a connection was accepted on, by its local address; a
    /// socket bound to `0.0.0.0`/`::` is found by port.
    pub fn listener(&self, local: SocketAddr) -> Option<&Arc<ListenerTable>> {
        self.listeners.get(&local).or_else(|| {
            let any = match local.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            self.listeners.get(&SocketAddr::new(any, local.port()))
        })
    }

    pub fn cluster(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.clusters.get(name)
    }

    /// Finds the route for a request arriving on `local`.
    pub fn lookup(&self, local: SocketAddr, host: &str, req: &RequestView<'_>) -> Lookup<'_> {
        let Some(listener) = self.listener(local) else {
            return Lookup::NoListener;
        };
        listener.lookup(host, req)
    }
}

impl ListenerTable {
    /// Misdirected request (RFC 9110 §15.5.20) on a TLS connection: the SNI
    /// selected one Gateway listener and the Host another (or none, when the
    /// SNI named a specific listener). `vhost_listener` is the Gateway
    /// listener of the Host's virtual host.
    pub fn is_misdirected(&self, sni: Option<&str>, vhost_listener: Option<&str>) -> bool {
        match sni.and_then(|name| self.sni_listeners.lookup(name)) {
            Some(selected) => vhost_listener != Some(selected.as_str()),
            None => match (&self.default_sni_listener, vhost_listener) {
                (Some(default), Some(vhost)) => default != vhost,
                _ => false,
            },
        }
    }

    pub fn lookup(&self, host: &str, req: &RequestView<'_>) -> Lookup<'_> {
        let Some(vhost) = self.hosts.lookup(host) else {
            return Lookup::NoVirtualHost;
        };
        match vhost.routes.iter().find(|r| r.matcher.matches(req)) {
            Some(route) => Lookup::Matched(vhost, route),
            None => Lookup::NoRoute(vhost),
        }
    }
}

fn compile_listener(listener: &Listener, problems: &mut Vec<String>) -> ListenerTable {
    let mut hosts = HostIndex::default();
    for vhost in &listener.virtual_hosts {
        hosts.insert(&vhost.hostname, Arc::new(compile_vhost(vhost, problems)));
    }
    let mut sni_listeners = HostIndex::default();
    let mut default_sni_listener = None;
    for cert in listener.tls.iter().flat_map(|tls| tls.certificates.iter()) {
        match &cert.hostname {
            Some(hostname) => sni_listeners.insert(hostname, cert.gateway_listener.clone()),
            None => {
                default_sni_listener.get_or_insert_with(|| cert.gateway_listener.clone());
            }
        }
    }
    ListenerTable {
        name: listener.name.clone(),
        port: listener.port,
        protocol: listener.protocol,
        hosts,
        sni_listeners,
        default_sni_listener,
    }
}

fn compile_vhost(vhost: &VirtualHost, problems: &mut Vec<String>) -> VhostTable {
    let routes = vhost
        .routes
        .iter()
        .map(|route| {
            let display_name = route.source.display_name();
            let matcher = CompiledMatch::compile(&route.matcher).unwrap_or_else(|e| {
                problems.push(format!(
                    "route {display_name}: {e}; the route never matches"
                ));
                CompiledMatch::never()
            });
            CompiledRoute {
                route: route.clone(),
                matcher,
                display_name,
            }
        })
        .collect();
    VhostTable {
        hostname: vhost.hostname.clone(),
        gateway_listener: vhost.gateway_listener.clone(),
        routes,
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;

//! Building the Pingora peer for one attempt: endpoint choice, protocol and
//! per-attempt timeouts.

use std::net::SocketAddr;
use std::time::Duration;

use pingora_core::protocols::ALPN;
use pingora_core::upstreams::peer::HttpPeer;
use std::sync::Arc;

use crate::upstream_tls::PeerTls;
use weir_model::{Cluster, UpstreamProtocol};

/// Streams multiplexed on one h2c connection to a backend (Pingora's default
/// of 1 would open a connection per concurrent request).
const H2_MAX_STREAMS: usize = 100;
/// How long an idle pooled upstream connection is kept.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Per-attempt settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttemptLimits {
    /// Bounds each read of the response (the attempt's timeout).
    pub read_timeout: Option<Duration>,
    /// Bounds connect (+TLS): the cluster's connect timeout, cut to the deadline.
    pub connect_timeout: Option<Duration>,
}

/// The peer for `endpoint` of `cluster`. `upgrade` forces HTTP/1.1 because
/// an `Upgrade` (WebSocket) cannot travel over h2.
pub fn peer(
    cluster: &Cluster,
    tls: Option<&PeerTls>,
    endpoint: SocketAddr,
    upgrade: bool,
    limits: AttemptLimits,
) -> Box<HttpPeer> {
    let mut peer = match &cluster.tls {
        // The SNI is always set: with an empty SNI Pingora skips all verification.
        Some(origination) => HttpPeer::new(endpoint, true, origination.sni.clone()),
        None => HttpPeer::new(endpoint, false, String::new()),
    };
    if cluster.tls.is_some() {
        // Pingora's pool key ignores the CA list: keep clusters' connections apart.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&cluster.name, &mut hasher);
        peer.group_key = std::hash::Hasher::finish(&hasher);
        match tls {
            Some(material) => {
                peer.options.ca = material.ca.clone();
                peer.client_cert_key = material.client_cert.clone();
            }
            // Material failed to parse: trust nothing rather than the system roots.
            None => peer.options.ca = Some(Arc::from(Vec::new().into_boxed_slice())),
        }
    }
    let options = &mut peer.options;
    options.read_timeout = limits.read_timeout;
    options.write_timeout = limits.read_timeout;
    options.connection_timeout = limits.connect_timeout;
    options.total_connection_timeout = limits.connect_timeout;
    options.idle_timeout = Some(UPSTREAM_IDLE_TIMEOUT);
    match (cluster.protocol, upgrade) {
        (UpstreamProtocol::H2c, false) => {
            // Plain-text peer with min version 2 = h2c prior knowledge.
            options.set_http_version(2, 2);
            options.max_h2_streams = H2_MAX_STREAMS;
        }
        (UpstreamProtocol::H2c | UpstreamProtocol::Http1 | UpstreamProtocol::WebSocket, _) => {
            options.alpn = ALPN::H1;
        }
    }
    Box::new(peer)
}

/// Combines the cluster's connect timeout with the time left.
pub fn connect_timeout(cluster: &Cluster, remaining: Option<Duration>) -> Option<Duration> {
    match (cluster.connect_timeout, remaining) {
        (Some(c), Some(r)) => Some(c.min(r)),
        (c, r) => c.or(r),
    }
}

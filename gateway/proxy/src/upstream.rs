//! Building the Pingora peer for one attempt: endpoint choice, protocol and
//! per-attempt timeouts.

use std::net::SocketAddr;
use std::time::Duration;

use pingora_core::protocols::ALPN;
use pingora_core::upstreams::peer::HttpPeer;
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
    endpoint: SocketAddr,
    upgrade: bool,
    limits: AttemptLimits,
) -> Box<HttpPeer> {
    let (tls, sni) = match &cluster.tls {
        Some(tls) => (true, tls.sni.clone()),
        None => (false, String::new()),
    };
    let mut peer = HttpPeer::new(endpoint, tls, sni);
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

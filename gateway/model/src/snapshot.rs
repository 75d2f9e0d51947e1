//! Top-level snapshot: listeners (sockets), clusters, certificates.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::route::VirtualHost;

/// Everything one gateway serves, at one version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Monotonic version; a gateway ignores a snapshot older than its own.
    pub version: u64,
    /// One entry per socket the gateway binds (address + port).
    pub listeners: Vec<Listener>,
    /// Backend clusters by name (see [`Cluster::name`]).
    pub clusters: BTreeMap<String, Cluster>,
    /// Certificates by name (`namespace/secret-name`).
    pub certificates: BTreeMap<String, Certificate>,
}

/// Wire protocol a socket speaks to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ListenerProtocol {
    /// Cleartext HTTP/1.1 (and h2c with prior knowledge).
    Http,
    /// TLS terminated here, then HTTP/1.1 or HTTP/2 by ALPN.
    Https,
}

/// One bound socket. Several Gateway API listeners (possibly of several
/// Gateways sharing an address) on the same address and port become one
/// `Listener` whose virtual hosts keep them apart by hostname.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    /// Stable name, `address:port`.
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: ListenerProtocol,
    /// TLS settings; present exactly when `protocol` is `Https`.
    pub tls: Option<ListenerTls>,
    /// Virtual hosts. Lookup: exact hostname, then the longest matching
    /// wildcard (`*.example.com`), then the catch-all `*`. No fallback from a
    /// more specific host to a less specific one (listener isolation).
    pub virtual_hosts: Vec<VirtualHost>,
}

/// Certificates served on a TLS listener, chosen per handshake by SNI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerTls {
    /// SNI → certificate. Lookup like virtual hosts: exact, longest wildcard,
    /// then the entry whose `hostname` is `None` (served when SNI is absent or
    /// unknown).
    pub certificates: Vec<SniCertificate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SniCertificate {
    /// `example.com`, `*.example.com`, or `None` for the default.
    pub hostname: Option<String>,
    /// Key into [`Snapshot::certificates`].
    pub certificate: String,
    /// Which Gateway listener this SNI belongs to (`ns/gateway/listener`),
    /// used to detect misdirected requests (421).
    pub gateway_listener: String,
}

/// A certificate chain and its private key, PEM encoded.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private keys.
        f.debug_struct("Certificate").field("cert_pem_len", &self.cert_pem.len()).finish_non_exhaustive()
    }
}

/// How the gateway talks to a cluster's endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 (WebSocket upgrades pass through).
    #[default]
    Http1,
    /// Cleartext HTTP/2 with prior knowledge (appProtocol `kubernetes.io/h2c`).
    H2c,
    /// WebSocket (appProtocol `kubernetes.io/ws`): HTTP/1.1, upgrades forwarded.
    WebSocket,
}

/// A set of endpoints reached the same way: one Service port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// `namespace/service:port`.
    pub name: String,
    pub protocol: UpstreamProtocol,
    pub endpoints: Vec<Endpoint>,
    /// TCP connect timeout.
    pub connect_timeout: Option<Duration>,
    /// Origination of TLS to the endpoints (BackendTLSPolicy, DestinationRule).
    pub tls: Option<UpstreamTls>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Reachable address of the endpoint (pod IP + target port).
    pub address: std::net::SocketAddr,
    /// Relative weight inside the cluster (1 when unset).
    pub weight: u32,
    /// `region/zone` locality, when known.
    pub locality: Option<String>,
    /// Labels of the workload behind the endpoint (subset selection).
    pub labels: BTreeMap<String, String>,
    /// Only ready endpoints receive traffic.
    pub ready: bool,
}

/// TLS origination to a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamTls {
    /// SNI to send and name to verify.
    pub sni: String,
    /// PEM CA bundle; `None` means the system roots.
    pub ca_pem: Option<String>,
    /// Extra names accepted in the server certificate.
    pub subject_alt_names: Vec<String>,
    /// Client certificate (key into [`Snapshot::certificates`]).
    pub client_certificate: Option<String>,
}

//! Translation settings and the state carried from one translation to the next.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

/// The controller name Weir claims GatewayClasses for by default.
pub const DEFAULT_CONTROLLER_NAME: &str = "weir.dev/gateway-controller";

/// Settings of one controller instance.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslateOptions {
    /// GatewayClasses whose `spec.controllerName` equals this are ours.
    pub controller_name: String,
    /// Addresses handed out to Gateways.
    pub address_pool: AddressPool,
}

impl TranslateOptions {
    pub fn new(controller_name: String, address_pool: AddressPool) -> Self {
        TranslateOptions {
            controller_name,
            address_pool,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressPoolError {
    #[error("the pool {0} has no usable host address")]
    Empty(IpNet),
}

/// The addresses Gateways may be given, as one CIDR. In a pool of more than
/// one address the network and broadcast addresses are not handed out; a /32
/// (or /128) pool is its single address, shared by every Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPool {
    net: IpNet,
}

impl AddressPool {
    pub fn new(net: IpNet) -> Result<Self, AddressPoolError> {
        let pool = AddressPool { net };
        pool.hosts().next().ok_or(AddressPoolError::Empty(net))?;
        Ok(pool)
    }

    pub fn net(&self) -> IpNet {
        self.net
    }

    /// Whether `ip` may be handed out.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.net.contains(&ip) && (self.is_shared() || self.hosts().any(|h| h == ip))
    }

    /// A pool of one address: every Gateway shares it.
    pub fn is_shared(&self) -> bool {
        self.net.prefix_len() == self.net.max_prefix_len()
    }

    fn hosts(&self) -> Box<dyn Iterator<Item = IpAddr>> {
        if self.is_shared() {
            return Box::new(std::iter::once(self.net.addr()));
        }
        Box::new(self.net.hosts())
    }

    /// The first address not in `used`; with a shared pool, its one address.
    pub(crate) fn allocate(&self, used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
        if self.is_shared() {
            return Some(self.net.addr());
        }
        self.hosts().find(|ip| !used.contains(ip))
    }
}

/// What one translation leaves for the next: the snapshot version, sticky
/// Gateway addresses and condition transition times.
#[derive(Debug, Clone, Default)]
pub struct TranslateState {
    pub(crate) version: u64,
    /// The previous snapshot, with `version` zeroed, to detect changes.
    pub(crate) previous: Option<weir_model::Snapshot>,
    /// `ns/name` of a Gateway → its pool address, for the process lifetime.
    pub(crate) addresses: BTreeMap<String, IpAddr>,
    /// Condition identity → (status, lastTransitionTime).
    pub(crate) transitions: HashMap<String, (String, String)>,
}

impl TranslateState {
    pub fn new() -> Self {
        Self::default()
    }

    /// The version of the last snapshot produced.
    pub fn version(&self) -> u64 {
        self.version
    }
}

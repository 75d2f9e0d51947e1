//! Gateways of our classes: parameters, addresses and listeners.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use weir_model::{Certificate, ListenerProtocol};

use super::listeners::{self, ListenerPlan, Problem};
use crate::api::Gateway;
use crate::objects::ObjectSet;
use crate::options::{TranslateOptions, TranslateState};

/// One Gateway we manage, validated.
#[derive(Debug, Clone)]
pub(crate) struct GatewayPlan<'a> {
    pub gateway: &'a Gateway,
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    /// `Accepted=False` reason for the whole Gateway (InvalidParameters, UnsupportedAddress).
    pub not_accepted: Option<Problem>,
    /// `Programmed=False` because a requested address cannot be used.
    pub address_not_usable: Option<Problem>,
    pub address: Option<IpAddr>,
    pub listeners: Vec<ListenerPlan>,
}

impl GatewayPlan<'_> {
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether listeners of this Gateway are bound at all.
    pub(crate) fn serving(&self) -> bool {
        self.not_accepted.is_none()
            && self.address.is_some()
            && self.listeners.iter().any(ListenerPlan::servable)
    }
}

/// Validates every Gateway whose class is in `our_classes`, in namespace/name order.
pub(crate) fn plan_all<'a>(
    objects: &'a ObjectSet,
    our_classes: &BTreeSet<String>,
    opts: &TranslateOptions,
    state: &mut TranslateState,
    certificates: &mut BTreeMap<String, Certificate>,
) -> Vec<GatewayPlan<'a>> {
    let mut plans: Vec<GatewayPlan<'a>> = objects
        .gateways
        .iter()
        .filter(|(_, gw)| our_classes.contains(&gw.spec.gateway_class_name))
        .map(|((ns, name), gateway)| plan(objects, ns, name, gateway, certificates))
        .collect();
    assign_addresses(&mut plans, opts, state);
    mark_port_clashes(&mut plans);
    plans
}

fn plan<'a>(
    objects: &'a ObjectSet,
    namespace: &str,
    name: &str,
    gateway: &'a Gateway,
    certificates: &mut BTreeMap<String, Certificate>,
) -> GatewayPlan<'a> {
    let mut listeners: Vec<ListenerPlan> = gateway
        .spec
        .listeners
        .iter()
        .enumerate()
        .map(|(i, l)| listeners::plan(objects, namespace, i, l, certificates))
        .collect();
    listeners::mark_conflicts(&mut listeners);
    let mut plan = GatewayPlan {
        gateway,
        namespace: namespace.to_string(),
        name: name.to_string(),
        generation: gateway.metadata.generation(),
        not_accepted: None,
        address_not_usable: None,
        address: None,
        listeners,
    };
    // Weir takes no infrastructure parameters of its own; a ConfigMap is
    // accepted (and ignored) so that the reference can be valid.
    if let Some(params) = gateway
        .spec
        .infrastructure
        .as_ref()
        .and_then(|i| i.parameters_ref.as_ref())
    {
        let is_config_map =
            (params.group.is_empty() || params.group == "core") && params.kind == "ConfigMap";
        let exists = objects
            .config_maps
            .contains_key(&(namespace.to_string(), params.name.clone()));
        if !(is_config_map && exists) {
            plan.not_accepted = Some(Problem::new(
                "InvalidParameters",
                format!(
                    "spec.infrastructure.parametersRef: {}/{} {} is not a ConfigMap that exists in {namespace}",
                    params.group, params.kind, params.name
                ),
            ));
        }
    }
    plan
}

/// Gives each Gateway its address: a usable `spec.addresses` IPAddress, or
/// the sticky pool address (first come first served in ns/name order).
fn assign_addresses(
    plans: &mut [GatewayPlan<'_>],
    opts: &TranslateOptions,
    state: &mut TranslateState,
) {
    let pool = &opts.address_pool;
    let mut requested: Vec<Option<IpAddr>> = Vec::with_capacity(plans.len());
    for plan in plans.iter_mut() {
        let mut chosen = None;
        for (i, address) in plan.gateway.spec.addresses.iter().enumerate() {
            let field = format!("spec.addresses[{i}]");
            let kind = address.type_.as_deref().unwrap_or("IPAddress");
            if kind != "IPAddress" {
                set_once(
                    &mut plan.not_accepted,
                    "UnsupportedAddress",
                    format!("{field}.type: {kind} addresses are not supported"),
                );
                continue;
            }
            let Some(value) = address.value.as_deref().filter(|v| !v.is_empty()) else {
                continue;
            };
            match value.parse::<IpAddr>() {
                Err(_) => set_once(
                    &mut plan.not_accepted,
                    "UnsupportedAddress",
                    format!("{field}.value: {value:?} is not an IP address"),
                ),
                Ok(ip) if !pool.contains(ip) => set_once(
                    &mut plan.address_not_usable,
                    "AddressNotUsable",
                    format!(
                        "{field}.value: {ip} is outside the address pool {}",
                        pool.net()
                    ),
                ),
                Ok(ip) => {
                    chosen.get_or_insert(ip);
                }
            }
        }
        requested.push(chosen);
    }
    // Addresses taken by static requests and earlier assignments.
    let mut used: BTreeSet<IpAddr> = requested.iter().flatten().copied().collect();
    used.extend(state.addresses.values().copied());
    for (plan, requested) in plans.iter_mut().zip(requested) {
        let key = plan.key();
        plan.address = match requested {
            Some(ip) => Some(ip),
            None => match state.addresses.get(&key) {
                Some(ip) => Some(*ip),
                None => {
                    let ip = pool.allocate(&used);
                    if let Some(ip) = ip {
                        used.insert(ip);
                        state.addresses.insert(key, ip);
                    }
                    ip
                }
            },
        };
    }
}

fn set_once(slot: &mut Option<Problem>, reason: &'static str, message: String) {
    if slot.is_none() {
        *slot = Some(Problem::new(reason, message));
    }
}

/// Several Gateways may share an address (a /32 pool). Listeners of
/// different Gateways on one address and port must speak the same protocol;
/// the first Gateway in ns/name order keeps the port, later ones get
/// `Accepted=False PortUnavailable` on that listener.
fn mark_port_clashes(plans: &mut [GatewayPlan<'_>]) {
    let mut owners: BTreeMap<(IpAddr, u16), (ListenerProtocol, String)> = BTreeMap::new();
    for plan in plans.iter_mut() {
        let (Some(address), true) = (plan.address, plan.not_accepted.is_none()) else {
            continue;
        };
        let key = plan.key();
        for listener in plan
            .listeners
            .iter_mut()
            .filter(|l| l.not_accepted.is_none())
        {
            let Some(protocol) = listener.protocol else {
                continue;
            };
            match owners.get(&(address, listener.port)) {
                Some((owner_protocol, owner)) if *owner_protocol != protocol && *owner != key => {
                    listener.not_accepted = Some(Problem::new(
                        "PortUnavailable",
                        format!("port {} of {address} already serves another protocol for Gateway {owner}", listener.port),
                    ));
                }
                Some(_) => {}
                None => {
                    owners.insert((address, listener.port), (protocol, key.clone()));
                }
            }
        }
    }
}

//! Listener validation: protocol, allowed route kinds, TLS certificates and
//! conflicts between listeners.

use std::collections::BTreeMap;

use weir_model::{Certificate, ListenerProtocol};

use super::tls;
use crate::api::{self, LabelSelector, RouteGroupKind, GATEWAY_GROUP};
use crate::objects::ObjectSet;

/// A listener condition that is not `True`: reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Problem {
            reason,
            message: message.into(),
        }
    }
}

/// Which namespaces may attach routes (`allowedRoutes.namespaces.from`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AllowedNamespaces {
    Same,
    All,
    Selector(LabelSelector),
    None,
}

/// One Gateway listener after validation.
#[derive(Debug, Clone)]
pub(crate) struct ListenerPlan {
    pub name: String,
    pub port: u16,
    pub protocol: Option<ListenerProtocol>,
    /// Lower-cased; `None` matches every host.
    pub hostname: Option<String>,
    pub allowed_namespaces: AllowedNamespaces,
    /// Route kinds this listener accepts (only kinds Weir supports).
    pub supported_kinds: Vec<RouteGroupKind>,
    /// `Accepted=False` reason (UnsupportedProtocol, PortUnavailable, *Conflict).
    pub not_accepted: Option<Problem>,
    /// `Conflicted=True` reason.
    pub conflicted: Option<Problem>,
    /// `ResolvedRefs=False` reason (InvalidRouteKinds, InvalidCertificateRef, RefNotPermitted).
    pub unresolved: Option<Problem>,
    /// A certificate problem keeps the listener from being programmed.
    pub certificate_problem: bool,
    /// Valid certificates (keys of the snapshot's certificate map).
    pub certificates: Vec<String>,
    /// Filled in once routes are attached.
    pub attached_routes: usize,
}

impl ListenerPlan {
    /// Whether requests can be served by this listener (given a usable address).
    pub(crate) fn servable(&self) -> bool {
        self.not_accepted.is_none() && !self.certificate_problem && !self.supported_kinds.is_empty()
    }

    pub(crate) fn allows_kind(&self, group: &str, kind: &str) -> bool {
        self.supported_kinds
            .iter()
            .any(|k| k.group.as_deref().unwrap_or(GATEWAY_GROUP) == group && k.kind == kind)
    }
}

/// The route kinds Weir serves on HTTP and HTTPS listeners.
const ROUTE_KINDS: &[&str] = &["HTTPRoute", "GRPCRoute"];

fn route_kind(kind: &str) -> RouteGroupKind {
    RouteGroupKind {
        group: Some(GATEWAY_GROUP.to_string()),
        kind: kind.to_string(),
    }
}

/// Validates one listener of a Gateway in `gateway_ns`.
pub(crate) fn plan(
    objects: &ObjectSet,
    gateway_ns: &str,
    index: usize,
    listener: &api::Listener,
    certificates: &mut BTreeMap<String, Certificate>,
) -> ListenerPlan {
    let field = format!("spec.listeners[{index}]");
    let protocol = match listener.protocol.as_str() {
        "HTTP" => Some(ListenerProtocol::Http),
        "HTTPS" => Some(ListenerProtocol::Https),
        _ => None,
    };
    let mut plan = ListenerPlan {
        name: listener.name.clone(),
        port: u16::try_from(listener.port).unwrap_or(0),
        protocol,
        hostname: listener
            .hostname
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.to_ascii_lowercase()),
        allowed_namespaces: allowed_namespaces(listener),
        supported_kinds: Vec::new(),
        not_accepted: None,
        conflicted: None,
        unresolved: None,
        certificate_problem: false,
        certificates: Vec::new(),
        attached_routes: 0,
    };
    if protocol.is_none() {
        plan.not_accepted = Some(Problem::new(
            "UnsupportedProtocol",
            format!(
                "{field}.protocol: {} is not supported (HTTP and HTTPS are)",
                listener.protocol
            ),
        ));
        return plan;
    }
    if plan.port == 0 {
        plan.not_accepted = Some(Problem::new(
            "PortUnavailable",
            format!("{field}.port: {} is not a valid port", listener.port),
        ));
    }
    // "Kinds is a list of Route kinds [...] If unspecified or empty, the
    // implementation MUST select the Route kinds supported by the protocol."
    match listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_ref())
        .filter(|k| !k.is_empty())
    {
        None => plan.supported_kinds = ROUTE_KINDS.iter().map(|k| route_kind(k)).collect(),
        Some(kinds) => {
            let mut invalid = Vec::new();
            for kind in kinds {
                let group = kind.group.as_deref().unwrap_or(GATEWAY_GROUP);
                if group == GATEWAY_GROUP && ROUTE_KINDS.contains(&kind.kind.as_str()) {
                    let supported = route_kind(&kind.kind);
                    if !plan.supported_kinds.contains(&supported) {
                        plan.supported_kinds.push(supported);
                    }
                } else {
                    invalid.push(format!("{group}/{}", kind.kind));
                }
            }
            if !invalid.is_empty() {
                plan.unresolved = Some(Problem::new(
                    "InvalidRouteKinds",
                    format!(
                        "{field}.allowedRoutes.kinds: unsupported route kinds {}",
                        invalid.join(", ")
                    ),
                ));
            }
        }
    }
    if protocol == Some(ListenerProtocol::Https) {
        check_tls(
            objects,
            gateway_ns,
            &field,
            listener,
            &mut plan,
            certificates,
        );
    }
    plan
}

fn allowed_namespaces(listener: &api::Listener) -> AllowedNamespaces {
    let namespaces = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match namespaces.and_then(|n| n.from.as_deref()) {
        Some("All") => AllowedNamespaces::All,
        Some("Selector") => AllowedNamespaces::Selector(
            namespaces
                .and_then(|n| n.selector.clone())
                .unwrap_or_default(),
        ),
        Some("None") => AllowedNamespaces::None,
        _ => AllowedNamespaces::Same,
    }
}

fn check_tls(
    objects: &ObjectSet,
    gateway_ns: &str,
    field: &str,
    listener: &api::Listener,
    plan: &mut ListenerPlan,
    certificates: &mut BTreeMap<String, Certificate>,
) {
    let tls = listener.tls.clone().unwrap_or_default();
    if tls.mode.as_deref().is_some_and(|m| m != "Terminate") {
        plan.not_accepted = Some(Problem::new(
            "UnsupportedProtocol",
            format!(
                "{field}.tls.mode: HTTPS listeners terminate TLS; Passthrough needs protocol TLS"
            ),
        ));
        return;
    }
    if tls.certificate_refs.is_empty() {
        plan.certificate_problem = true;
        plan.unresolved = Some(Problem::new(
            "InvalidCertificateRef",
            format!("{field}.tls.certificateRefs: HTTPS needs a certificate"),
        ));
        return;
    }
    for (i, reference) in tls.certificate_refs.iter().enumerate() {
        let ref_field = format!("{field}.tls.certificateRefs[{i}]");
        match tls::resolve(objects, gateway_ns, ref_field, reference, certificates) {
            Ok(key) => plan.certificates.push(key),
            Err(e) => {
                plan.certificate_problem = true;
                // The first certificate problem is reported; route-kind problems
                // were found first but a certificate problem matters more.
                if plan
                    .unresolved
                    .as_ref()
                    .is_none_or(|p| p.reason == "InvalidRouteKinds")
                {
                    plan.unresolved = Some(Problem::new(e.reason(), e.to_string()));
                }
            }
        }
    }
}

/// Marks listeners of one Gateway that are not distinct: "Listeners are
/// distinct if they have different ports, or the same port and compatible
/// protocols with different hostnames". HTTP and HTTPS on one port are
/// incompatible (ProtocolConflict); the same port, protocol and hostname is a
/// HostnameConflict. All indistinct listeners are rejected, no winner is picked.
pub(crate) fn mark_conflicts(listeners: &mut [ListenerPlan]) {
    let n = listeners.len();
    let mut conflicts: Vec<Option<Problem>> = vec![None; n];
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (&listeners[i], &listeners[j]);
            if i == j || a.port != b.port || a.protocol.is_none() || b.protocol.is_none() {
                continue;
            }
            if a.protocol != b.protocol {
                conflicts[i] = Some(Problem::new(
                    "ProtocolConflict",
                    format!(
                        "listener {} uses port {} with another protocol than listener {}",
                        a.name, a.port, b.name
                    ),
                ));
            } else if a.hostname == b.hostname && conflicts[i].is_none() {
                conflicts[i] = Some(Problem::new(
                    "HostnameConflict",
                    format!(
                        "listener {} has the same port, protocol and hostname as listener {}",
                        a.name, b.name
                    ),
                ));
            }
        }
    }
    for (listener, conflict) in listeners.iter_mut().zip(conflicts) {
        if let Some(problem) = conflict {
            if listener.not_accepted.is_none() {
                listener.not_accepted = Some(problem.clone());
            }
            listener.conflicted = Some(problem);
        }
    }
}

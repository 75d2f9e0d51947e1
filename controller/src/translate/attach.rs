//! Route → Gateway attachment: parentRefs, sectionName/port, allowedRoutes
//! and hostname intersection.

use std::collections::BTreeMap;

use super::gateway::GatewayPlan;
use super::hostname;
use super::listeners::{AllowedNamespaces, Problem};
use crate::api::{ParentReference, GATEWAY_GROUP};
use crate::objects::ObjectSet;

/// A route attached to one listener, serving these hostnames there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attachment {
    pub gateway: usize,
    pub listener: usize,
    pub hostnames: Vec<String>,
}

/// What one parentRef resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParentOutcome {
    /// Not a Gateway we manage: no status entry from us.
    NotOurs,
    /// Attached to at least one listener.
    Attached(Vec<Attachment>),
    /// Ours, but not attached: `Accepted=False` with this reason.
    Rejected(Problem),
}

/// The labels a namespace is selected by; Kubernetes always sets
/// `kubernetes.io/metadata.name`.
pub(crate) fn namespace_labels(objects: &ObjectSet, namespace: &str) -> BTreeMap<String, String> {
    let mut labels = objects
        .namespaces
        .get(namespace)
        .and_then(|ns| ns.metadata.labels.clone())
        .unwrap_or_default();
    labels.insert(
        "kubernetes.io/metadata.name".to_string(),
        namespace.to_string(),
    );
    labels
}

/// Resolves one parentRef of a route of `route_kind` in `route_ns`.
pub(crate) fn attach(
    objects: &ObjectSet,
    gateways: &[GatewayPlan<'_>],
    route_kind: &str,
    route_ns: &str,
    route_hostnames: &[String],
    parent: &ParentReference,
) -> ParentOutcome {
    let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = parent.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || kind != "Gateway" {
        return ParentOutcome::NotOurs;
    }
    let namespace = parent.namespace.as_deref().unwrap_or(route_ns);
    let Some(gateway_index) = gateways
        .iter()
        .position(|g| g.namespace == namespace && g.name == parent.name)
    else {
        return ParentOutcome::NotOurs;
    };
    let gateway = &gateways[gateway_index];
    // "SectionName [...] When both Port and SectionName are specified, the
    // name and port of the selected listener must match both."
    let candidates: Vec<usize> = (0..gateway.listeners.len())
        .filter(|&i| {
            let l = &gateway.listeners[i];
            parent.section_name.as_deref().is_none_or(|s| s == l.name)
                && parent.port.is_none_or(|p| i32::from(l.port) == p)
        })
        .collect();
    if candidates.is_empty() {
        let wanted = match (&parent.section_name, parent.port) {
            (Some(s), Some(p)) => format!("listener {s} on port {p}"),
            (Some(s), None) => format!("listener {s}"),
            (None, Some(p)) => format!("a listener on port {p}"),
            (None, None) => "a listener".to_string(),
        };
        return ParentOutcome::Rejected(Problem::new(
            "NoMatchingParent",
            format!("Gateway {namespace}/{} has no {wanted}", parent.name),
        ));
    }
    let route_labels = namespace_labels(objects, route_ns);
    let allowed: Vec<usize> = candidates
        .into_iter()
        .filter(|&i| {
            let l = &gateway.listeners[i];
            let ns_ok = match &l.allowed_namespaces {
                AllowedNamespaces::Same => route_ns == gateway.namespace,
                AllowedNamespaces::All => true,
                AllowedNamespaces::Selector(selector) => selector.matches(&route_labels),
                AllowedNamespaces::None => false,
            };
            ns_ok && l.allows_kind(GATEWAY_GROUP, route_kind)
        })
        .collect();
    if allowed.is_empty() {
        return ParentOutcome::Rejected(Problem::new(
            "NotAllowedByListeners",
            format!("no listener of Gateway {namespace}/{} allows {route_kind}s from namespace {route_ns}", parent.name),
        ));
    }
    let attachments: Vec<Attachment> = allowed
        .into_iter()
        .filter_map(|i| {
            let hostnames =
                hostname::intersect(gateway.listeners[i].hostname.as_deref(), route_hostnames);
            (!hostnames.is_empty()).then_some(Attachment {
                gateway: gateway_index,
                listener: i,
                hostnames,
            })
        })
        .collect();
    if attachments.is_empty() {
        return ParentOutcome::Rejected(Problem::new(
            "NoMatchingListenerHostname",
            format!(
                "no listener hostname of Gateway {namespace}/{} intersects the route's hostnames",
                parent.name
            ),
        ));
    }
    ParentOutcome::Attached(attachments)
}

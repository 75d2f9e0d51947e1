//! Status stanzas for GatewayClasses, Gateways and HTTPRoutes.

use serde_json::{json, Value};

use super::attach::ParentOutcome;
use super::gateway::GatewayPlan;
use super::httproute::ConvertedRoute;
use super::listeners::ListenerPlan;
use crate::api::{GatewayClass, ParentReference, GATEWAY_GROUP};
use crate::status::Condition;

/// GatewayClass: `Accepted` for ours. Weir takes no class parameters, so a
/// parametersRef makes the class `Accepted=False InvalidParameters`.
pub(crate) fn gateway_class(class: &GatewayClass) -> Vec<Condition> {
    let generation = class.metadata.generation();
    let accepted = match &class.spec.parameters_ref {
        None => Condition::new("Accepted", true, "Accepted", "Handled by Weir", generation),
        Some(p) => Condition::new(
            "Accepted",
            false,
            "InvalidParameters",
            format!(
                "spec.parametersRef: Weir takes no parameters ({}/{} {})",
                p.group, p.kind, p.name
            ),
            generation,
        ),
    };
    // In standalone mode there are no installed CRDs to disagree with: the
    // versions Weir reads (v1, v1beta1, v1alpha2, v1alpha3) are supported.
    let supported = Condition::new(
        "SupportedVersion",
        true,
        "SupportedVersion",
        "Gateway API versions v1, v1beta1, v1alpha2 and v1alpha3 are supported",
        generation,
    );
    vec![accepted, supported]
}

pub(crate) fn gateway_conditions(plan: &GatewayPlan<'_>) -> Vec<Condition> {
    let generation = plan.generation;
    let invalid: Vec<&ListenerPlan> = plan
        .listeners
        .iter()
        .filter(|l| l.not_accepted.is_some())
        .collect();
    let valid = plan.listeners.len() - invalid.len();
    let accepted = if let Some(p) = &plan.not_accepted {
        Condition::new("Accepted", false, p.reason, p.message.clone(), generation)
    } else if !invalid.is_empty() {
        // "ListenersNotValid [...] can be the reason when Accepted is True or
        // False, depending on whether the listener being invalid causes the
        // entire Gateway to not be accepted."
        let names: Vec<&str> = invalid.iter().map(|l| l.name.as_str()).collect();
        let message = format!("listeners not valid: {}", names.join(", "));
        Condition::new(
            "Accepted",
            valid > 0,
            "ListenersNotValid",
            message,
            generation,
        )
    } else {
        Condition::new("Accepted", true, "Accepted", "Gateway accepted", generation)
    };
    let programmed = if !accepted.is_true() {
        Condition::new(
            "Programmed",
            false,
            "Invalid",
            "the Gateway is not accepted",
            generation,
        )
    } else if let Some(p) = &plan.address_not_usable {
        Condition::new("Programmed", false, p.reason, p.message.clone(), generation)
    } else if plan.address.is_none() {
        Condition::new(
            "Programmed",
            false,
            "AddressNotAssigned",
            "the address pool is exhausted",
            generation,
        )
    } else if !plan.serving() {
        Condition::new(
            "Programmed",
            false,
            "Invalid",
            "no listener can be served",
            generation,
        )
    } else {
        Condition::new(
            "Programmed",
            true,
            "Programmed",
            "Gateway programmed",
            generation,
        )
    };
    vec![accepted, programmed]
}

pub(crate) fn listener_conditions(
    plan: &GatewayPlan<'_>,
    listener: &ListenerPlan,
) -> Vec<Condition> {
    let generation = plan.generation;
    let accepted = match &listener.not_accepted {
        Some(p) => Condition::new("Accepted", false, p.reason, p.message.clone(), generation),
        None => Condition::new(
            "Accepted",
            true,
            "Accepted",
            "listener accepted",
            generation,
        ),
    };
    let resolved = match &listener.unresolved {
        Some(p) => Condition::new(
            "ResolvedRefs",
            false,
            p.reason,
            p.message.clone(),
            generation,
        ),
        None => Condition::new(
            "ResolvedRefs",
            true,
            "ResolvedRefs",
            "references resolved",
            generation,
        ),
    };
    let conflicted = match &listener.conflicted {
        Some(p) => Condition::new("Conflicted", true, p.reason, p.message.clone(), generation),
        None => Condition::new(
            "Conflicted",
            false,
            "NoConflicts",
            "no conflicts",
            generation,
        ),
    };
    let programmed = if listener.servable() && plan.serving() && plan.address_not_usable.is_none() {
        Condition::new(
            "Programmed",
            true,
            "Programmed",
            "listener programmed",
            generation,
        )
    } else {
        Condition::new(
            "Programmed",
            false,
            "Invalid",
            "listener is not served",
            generation,
        )
    };
    vec![accepted, programmed, resolved, conflicted]
}

/// The listener entry without conditions (they are stamped separately).
pub(crate) fn listener_entry(listener: &ListenerPlan, conditions: &[Condition]) -> Value {
    let kinds: Vec<Value> = listener
        .supported_kinds
        .iter()
        .map(|k| json!({"group": k.group.as_deref().unwrap_or(GATEWAY_GROUP), "kind": k.kind}))
        .collect();
    json!({
        "name": listener.name,
        "supportedKinds": kinds,
        "attachedRoutes": listener.attached_routes,
        "conditions": conditions,
    })
}

/// Conditions of one route parent entry.
///
/// Invalid rules are dropped. Per the spec: "If all Route Rules in a Route
/// are invalid, the entire Route would be considered invalid. If only a
/// portion of Route Rules are invalid, implementations MUST set the
/// "PartiallyInvalid" condition", and when dropping rules "The message for
/// this condition MUST start with the prefix "Dropped Rule" [...] the
/// "Accepted" condition MUST be set to "True"".
pub(crate) fn route_parent_conditions(
    outcome: &ParentOutcome,
    route: &ConvertedRoute,
    generation: i64,
) -> Vec<Condition> {
    let problems = || {
        let messages: Vec<String> = route.rule_errors.iter().map(ToString::to_string).collect();
        messages.join("; ")
    };
    let all_invalid = !route.rule_errors.is_empty() && route.entries.is_empty();
    let accepted = match outcome {
        ParentOutcome::Rejected(p) => {
            Condition::new("Accepted", false, p.reason, p.message.clone(), generation)
        }
        _ if all_invalid => Condition::new(
            "Accepted",
            false,
            "UnsupportedValue",
            format!("no valid rule: {}", problems()),
            generation,
        ),
        _ => Condition::new("Accepted", true, "Accepted", "route accepted", generation),
    };
    let resolved = match route.backend_errors.first() {
        None => Condition::new(
            "ResolvedRefs",
            true,
            "ResolvedRefs",
            "references resolved",
            generation,
        ),
        Some(first) => {
            let messages: Vec<String> = route
                .backend_errors
                .iter()
                .map(ToString::to_string)
                .collect();
            Condition::new(
                "ResolvedRefs",
                false,
                first.reason(),
                messages.join("; "),
                generation,
            )
        }
    };
    let mut conditions = vec![accepted, resolved];
    if !route.rule_errors.is_empty() && !all_invalid {
        conditions.push(Condition::new(
            "PartiallyInvalid",
            true,
            "UnsupportedValue",
            format!("Dropped Rule(s): {}", problems()),
            generation,
        ));
    }
    conditions
}

/// The parentRef as the status echoes it, with the API defaults for group
/// and kind filled in (as the API server stores them) and the namespace made
/// explicit, so that readers need not know the route's namespace.
pub(crate) fn parent_ref(parent: &ParentReference, route_ns: &str) -> ParentReference {
    ParentReference {
        group: Some(
            parent
                .group
                .clone()
                .unwrap_or_else(|| GATEWAY_GROUP.to_string()),
        ),
        kind: Some(parent.kind.clone().unwrap_or_else(|| "Gateway".to_string())),
        namespace: Some(
            parent
                .namespace
                .clone()
                .unwrap_or_else(|| route_ns.to_string()),
        ),
        ..parent.clone()
    }
}

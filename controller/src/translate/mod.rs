//! The translation: objects in, route model and status out. Pure apart from
//! reading the clock for condition transition times.

mod attach;
mod backends;
mod build;
mod filters;
mod gateway;
mod grpcroute;
mod hostname;
mod httproute;
mod kind_conflicts;
mod listeners;
mod matches;
mod precedence;
mod refgrant;
mod status;
mod tls;

use std::collections::{BTreeSet, HashMap};

use serde_json::{json, Value};
use weir_model::Snapshot;

use self::attach::ParentOutcome;
use self::build::AttachedRoute;
use crate::api::{Meta, ParentReference};
use crate::objects::ObjectSet;
use crate::options::{TranslateOptions, TranslateState};
use crate::status::{Condition, ObjectStatus, Translation};

const GATEWAY_API_VERSION: &str = "gateway.networking.k8s.io/v1";

/// Translates every object into a snapshot plus status stanzas.
pub fn translate(
    objects: &ObjectSet,
    opts: &TranslateOptions,
    state: &mut TranslateState,
) -> Translation {
    let mut snapshot = Snapshot::default();
    let mut statuses = Vec::new();
    let now = crate::time::now_rfc3339();
    // Transition times survive translations while a condition's status holds.
    let previous_transitions = std::mem::take(&mut state.transitions);
    let mut transitions = HashMap::new();
    let mut stamp = |scope: String, conditions: &mut Vec<Condition>| {
        for c in conditions.iter_mut() {
            let key = format!("{scope}/{}", c.type_);
            let time = match previous_transitions.get(&key) {
                Some((status, time)) if *status == c.status => time.clone(),
                _ => now.clone(),
            };
            c.last_transition_time = time.clone();
            transitions.insert(key, (c.status.clone(), time));
        }
    };

    // GatewayClasses: ours are those naming our controller.
    let mut our_classes = BTreeSet::new();
    let mut class_statuses = Vec::new();
    for (name, class) in &objects.gateway_classes {
        let mut status = json!({});
        if class.spec.controller_name == opts.controller_name {
            let mut conditions = status::gateway_class(class);
            if conditions.iter().all(Condition::is_true) {
                our_classes.insert(name.clone());
            }
            stamp(format!("GatewayClass/{name}"), &mut conditions);
            status = json!({ "conditions": conditions });
        }
        class_statuses.push(object_status(
            "GatewayClass",
            None,
            name,
            class.metadata.generation(),
            status,
        ));
    }

    // Gateways and routes need each other: plan Gateways, attach routes,
    // then write Gateway status with the attached route counts.
    let mut gateways = gateway::plan_all(
        objects,
        &our_classes,
        opts,
        state,
        &mut snapshot.certificates,
    );

    // Every route, converted once, with where each parentRef attaches.
    let mut route_results: Vec<RouteResult<'_>> = Vec::new();
    for ((ns, name), route) in &objects.http_routes {
        let converted = httproute::convert(objects, route, &mut snapshot.clusters);
        let spec = &route.spec;
        route_results.push(RouteResult::new(
            "HTTPRoute",
            ns,
            name,
            &route.metadata,
            &spec.parent_refs,
            &spec.hostnames,
            converted,
        ));
    }
    for ((ns, name), route) in &objects.grpc_routes {
        let converted = grpcroute::convert(objects, route, &mut snapshot.clusters);
        let spec = &route.spec;
        route_results.push(RouteResult::new(
            "GRPCRoute",
            ns,
            name,
            &route.metadata,
            &spec.parent_refs,
            &spec.hostnames,
            converted,
        ));
    }
    for r in &mut route_results {
        r.outcomes = r
            .parent_refs
            .iter()
            .map(|parent| attach::attach(objects, &gateways, r.kind, &r.ns, r.hostnames, parent))
            .collect();
    }
    let mut views: Vec<kind_conflicts::RouteView<'_>> = route_results
        .iter_mut()
        .map(|r| kind_conflicts::RouteView {
            kind: r.kind,
            ns: &r.ns,
            name: &r.name,
            created: r.meta.creation_timestamp.as_deref(),
            outcomes: &mut r.outcomes,
        })
        .collect();
    kind_conflicts::resolve(&mut views);
    drop(views);
    for r in &route_results {
        // "attachedRoutes [...] counts successfully attached Routes"; a route
        // naming one listener twice counts once.
        let mut counted = BTreeSet::new();
        for outcome in &r.outcomes {
            if let ParentOutcome::Attached(list) = outcome {
                for a in list {
                    if counted.insert((a.gateway, a.listener)) {
                        gateways[a.gateway].listeners[a.listener].attached_routes += 1;
                    }
                }
            }
        }
    }

    let attached: Vec<AttachedRoute<'_>> = route_results
        .iter()
        .map(|r| AttachedRoute {
            attachments: r
                .outcomes
                .iter()
                .filter_map(|o| match o {
                    ParentOutcome::Attached(list) => Some(list.clone()),
                    _ => None,
                })
                .flatten()
                .collect(),
            entries: &r.converted.entries,
        })
        .collect();
    snapshot.listeners = build::listeners(&gateways, &attached);

    // Gateway status.
    let mut gateway_statuses = Vec::new();
    for ((ns, name), gw) in &objects.gateways {
        let plan = gateways
            .iter()
            .find(|p| &p.namespace == ns && &p.name == name);
        let status = match plan {
            None => json!({}),
            Some(plan) => {
                let scope = format!("Gateway/{ns}/{name}");
                let mut conditions = status::gateway_conditions(plan);
                stamp(scope.clone(), &mut conditions);
                let listeners: Vec<Value> = plan
                    .listeners
                    .iter()
                    .map(|l| {
                        let mut conditions = status::listener_conditions(plan, l);
                        stamp(format!("{scope}/listener/{}", l.name), &mut conditions);
                        status::listener_entry(l, &conditions)
                    })
                    .collect();
                let addresses: Vec<Value> = plan
                    .address
                    .iter()
                    .map(|ip| json!({"type": "IPAddress", "value": ip.to_string()}))
                    .collect();
                json!({ "addresses": addresses, "conditions": conditions, "listeners": listeners })
            }
        };
        gateway_statuses.push(object_status(
            "Gateway",
            Some(ns),
            name,
            gw.metadata.generation(),
            status,
        ));
    }

    // Route status: one entry per parentRef that names a Gateway of ours.
    let mut route_statuses = Vec::new();
    for r in &route_results {
        let generation = r.meta.generation();
        let mut parents = Vec::new();
        for (i, outcome) in r.outcomes.iter().enumerate() {
            if *outcome == ParentOutcome::NotOurs {
                continue;
            }
            let mut conditions = status::route_parent_conditions(outcome, &r.converted, generation);
            stamp(
                format!("{}/{}/{}/parent/{i}", r.kind, r.ns, r.name),
                &mut conditions,
            );
            parents.push(json!({
                "parentRef": status::parent_ref(&r.parent_refs[i], &r.ns),
                "controllerName": opts.controller_name,
                "conditions": conditions,
            }));
        }
        let status = json!({ "parents": parents });
        route_statuses.push(object_status(
            r.kind,
            Some(&r.ns),
            &r.name,
            generation,
            status,
        ));
    }

    statuses.extend(class_statuses);
    statuses.extend(gateway_statuses);
    statuses.extend(route_statuses);
    // Other Gateway API kinds are listed with an empty status: we don't manage them.
    for (key, other) in &objects.others {
        if other.api_version.starts_with("gateway.networking.") {
            statuses.push(ObjectStatus {
                api_version: other.api_version.clone(),
                kind: key.kind.clone(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                generation: other.generation.unwrap_or(1),
                status: json!({}),
            });
        }
    }

    state.transitions = transitions;
    // Bump the version only when what is served changes.
    if state.previous.as_ref() != Some(&snapshot) {
        state.version += 1;
        state.previous = Some(snapshot.clone());
    }
    snapshot.version = state.version;
    Translation {
        snapshot,
        statuses,
        errors: Vec::new(),
    }
}

/// One route (any kind) on its way through the translation.
struct RouteResult<'a> {
    kind: &'static str,
    ns: String,
    name: String,
    meta: &'a Meta,
    parent_refs: &'a [ParentReference],
    hostnames: &'a [String],
    converted: httproute::ConvertedRoute,
    /// Per parentRef, in order.
    outcomes: Vec<ParentOutcome>,
}

impl<'a> RouteResult<'a> {
    fn new(
        kind: &'static str,
        ns: &str,
        name: &str,
        meta: &'a Meta,
        parent_refs: &'a [ParentReference],
        hostnames: &'a [String],
        converted: httproute::ConvertedRoute,
    ) -> Self {
        RouteResult {
            kind,
            ns: ns.to_string(),
            name: name.to_string(),
            meta,
            parent_refs,
            hostnames,
            converted,
            outcomes: Vec::new(),
        }
    }
}

fn object_status(
    kind: &str,
    namespace: Option<&String>,
    name: &str,
    generation: i64,
    status: Value,
) -> ObjectStatus {
    let api_version = if kind == "ReferenceGrant" {
        "gateway.networking.k8s.io/v1beta1"
    } else {
        GATEWAY_API_VERSION
    };
    ObjectStatus {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        namespace: namespace.cloned(),
        name: name.to_string(),
        generation,
        status,
    }
}

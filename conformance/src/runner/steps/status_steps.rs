//! Status steps: accepted, conditions, noAcceptedParents, attachedRoutes,
//! listenersStatus, routeParents — each a check polled against `/status`.

use serde_json::Value;

use crate::runner::case::{
    split_ref, AcceptedStep, AttachedRoutesStep, ConditionExpect, ConditionsStep, ListenerSelector,
    ListenersStatusStep, ObjectRef, RouteParentsStep,
};
use crate::runner::context::CaseCtx;
use crate::runner::objects::CONTROLLER_NAME;
use crate::runner::status::{conditions_at, conditions_match, str_field, summarize, ObjStatus, StatusView};

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

fn cond(t: &str, s: &str, r: Option<&str>) -> ConditionExpect {
    ConditionExpect { type_: t.into(), status: s.into(), reason: r.map(Into::into) }
}

/// Does a status parentRef name this parent (group, kind, namespace, name)?
fn parent_ref_is(p: &Value, group: &str, kind: &str, ns: Option<&str>, name: &str, route_ns: Option<&str>, ns_required: bool) -> bool {
    let r = p.get("parentRef").unwrap_or(&Value::Null);
    let g = str_field(r, "group").unwrap_or(GATEWAY_GROUP);
    let k = str_field(r, "kind").unwrap_or("Gateway");
    let n = str_field(r, "name").unwrap_or("");
    let pns = str_field(r, "namespace");
    let ns_ok = match pns {
        Some(pns) => Some(pns) == ns,
        None => !ns_required || ns == route_ns,
    };
    g == group && k == kind && n == name && ns_ok
}

pub fn check_accepted(view: &StatusView, s: &AcceptedStep) -> Result<(), String> {
    let parent_kind = s.parent_kind.as_deref().unwrap_or("Gateway");
    let (gns, gname) = split_ref(&s.gateway);
    let parent = view.require(parent_kind, &s.gateway)?;
    if parent_kind == "Gateway" && parent.address().is_none() {
        return Err(format!("Gateway {} has no status.addresses", s.gateway));
    }
    for route in &s.routes {
        let r = view.require(&s.route_kind, route)?;
        let (rns, _) = split_ref(route);
        let entry = r
            .parents()
            .iter()
            .find(|p| parent_ref_is(p, GATEWAY_GROUP, parent_kind, gns, gname, rns, false))
            .ok_or_else(|| format!("{} {route}: no status.parents entry for {parent_kind} {}", s.route_kind, s.gateway))?;
        if str_field(entry, "controllerName") != Some(CONTROLLER_NAME) {
            return Err(format!("{} {route}: parent controllerName {:?}", s.route_kind, str_field(entry, "controllerName")));
        }
        let mut want = vec![cond("Accepted", "True", Some("Accepted"))];
        if s.resolved_refs {
            want.push(cond("ResolvedRefs", "True", None));
        }
        conditions_match(crate::runner::status::arr(entry.get("conditions")), &want)
            .map_err(|e| format!("{} {route} parent {}: {e}", s.route_kind, s.gateway))?;
    }
    if s.route_kind == "TLSRoute" {
        return Ok(());
    }
    let want = [cond("ResolvedRefs", "True", None), cond("Accepted", "True", None), cond("Programmed", "True", None)];
    for l in parent.listeners() {
        let lname = str_field(l, "name").unwrap_or("");
        if let Some(only) = &s.listeners {
            if !only.iter().any(|o| o == lname) {
                continue;
            }
        }
        conditions_match(crate::runner::status::arr(l.get("conditions")), &want)
            .map_err(|e| format!("{parent_kind} {} listener {lname}: {e}", s.gateway))?;
    }
    if let Some(only) = &s.listeners {
        for o in only {
            if parent.listener(o).is_none() {
                return Err(format!("{parent_kind} {}: no status for listener {o}", s.gateway));
            }
        }
    }
    Ok(())
}

fn route_generation_current(obj: &ObjStatus<'_>) -> Result<(), String> {
    for p in obj.parents() {
        conditions_at(crate::runner::status::arr(p.get("conditions")), obj.generation())?;
    }
    Ok(())
}

pub fn check_conditions(view: &StatusView, s: &ConditionsStep) -> Result<(), String> {
    let obj = view.require(&s.kind, &s.object)?;
    let label = format!("{} {}", s.kind, s.object);
    // Listener conditions (not generation-checked).
    let listener_names: Option<Vec<String>> = match (&s.listener, &s.listeners) {
        (Some(l), _) => Some(vec![l.clone()]),
        (None, Some(ListenerSelector::Named(v))) => Some(v.clone()),
        (None, Some(ListenerSelector::Keyword(k))) if k == "all" => Some(
            obj.listeners().iter().filter_map(|l| str_field(l, "name").map(String::from)).collect(),
        ),
        (None, Some(ListenerSelector::Keyword(k))) => return Err(format!("unknown listeners keyword {k}")),
        (None, None) => None,
    };
    if let Some(names) = listener_names {
        if names.is_empty() {
            return Err(format!("{label}: no listeners in status"));
        }
        for n in &names {
            let l = obj.listener(n).ok_or_else(|| format!("{label}: no status for listener {n}"))?;
            conditions_match(crate::runner::status::arr(l.get("conditions")), &s.conditions)
                .map_err(|e| format!("{label} listener {n}: {e}"))?;
        }
        return Ok(());
    }
    match s.kind.as_str() {
        "BackendTLSPolicy" => {
            let ancestors = crate::runner::status::arr(obj.status().get("ancestors"));
            for a in ancestors {
                conditions_at(crate::runner::status::arr(a.get("conditions")), obj.generation())
                    .map_err(|e| format!("{label} ancestor: {e}"))?;
            }
            let parent = s.parent.as_deref().ok_or_else(|| format!("{label}: a policy conditions step needs parent"))?;
            let (pns, pname) = split_ref(parent);
            let a = ancestors
                .iter()
                .find(|a| {
                    let r = a.get("ancestorRef").unwrap_or(&Value::Null);
                    str_field(r, "name") == Some(pname) && str_field(r, "namespace").is_none_or(|n| Some(n) == pns)
                })
                .ok_or_else(|| format!("{label}: no status.ancestors entry for {parent}"))?;
            conditions_match(crate::runner::status::arr(a.get("conditions")), &s.conditions).map_err(|e| format!("{label} ancestor {parent}: {e}"))
        }
        "Gateway" | "GatewayClass" | "ListenerSet" => {
            if s.kind != "ListenerSet" {
                obj.conditions_current().map_err(|e| format!("{label}: {e}"))?;
            }
            conditions_match(obj.conditions(), &s.conditions).map_err(|e| format!("{label}: {e}"))
        }
        _ => {
            route_generation_current(&obj).map_err(|e| format!("{label}: {e}"))?;
            let parents = obj.parents();
            let entry = match &s.parent {
                Some(parent) => {
                    let (pns, pname) = split_ref(parent);
                    parents.iter().find(|p| {
                        let r = p.get("parentRef").unwrap_or(&Value::Null);
                        str_field(r, "name") == Some(pname) && str_field(r, "namespace").is_none_or(|n| Some(n) == pns)
                    })
                }
                None => parents.first(),
            };
            let entry = entry.ok_or_else(|| {
                format!("{label}: no status.parents entry for {}", s.parent.as_deref().unwrap_or("any parent"))
            })?;
            conditions_match(crate::runner::status::arr(entry.get("conditions")), &s.conditions)
                .map_err(|e| format!("{label} parent {}: {e}", s.parent.as_deref().unwrap_or("")))
        }
    }
}

/// `noAcceptedParents`: empty parents (seen twice in a row) or exactly one
/// parent, current, with Accepted=False.
pub async fn no_accepted_parents(ctx: &mut CaseCtx, s: &ObjectRef) -> Result<(), String> {
    let mut empty_seen = 0;
    let limit = ctx.shared.limits.status;
    ctx.poll(limit, |view| {
        let obj = view.require(&s.kind, &s.object)?;
        let parents = obj.parents();
        if parents.is_empty() {
            empty_seen += 1;
            return if empty_seen >= 2 { Ok(()) } else { Err("status.parents empty (waiting for a second read)".into()) };
        }
        empty_seen = 0;
        if parents.len() != 1 {
            return Err(format!("{} {}: {} parents, want none or one not accepted", s.kind, s.object, parents.len()));
        }
        route_generation_current(&obj)?;
        conditions_match(crate::runner::status::arr(parents[0].get("conditions")), &[cond("Accepted", "False", None)])
            .map_err(|e| format!("{} {}: {e}", s.kind, s.object))
    })
    .await
    .map(|_| ())
}

/// upstream GatewayMustHaveZeroRoutes.
pub fn check_zero_routes(view: &StatusView, gateway: &str) -> Result<(), String> {
    let gw = view.require("Gateway", gateway)?;
    gw.conditions_current().map_err(|e| format!("Gateway {gateway}: {e}"))?;
    let ls = gw.listeners();
    match ls {
        [] => Ok(()),
        [one] if one.get("attachedRoutes").and_then(Value::as_i64) == Some(0) => Ok(()),
        _ => Err(format!(
            "Gateway {gateway}: want no listener status or one with 0 attachedRoutes, got {}",
            ls.iter()
                .map(|l| format!("{}={}", str_field(l, "name").unwrap_or("?"), l.get("attachedRoutes").unwrap_or(&Value::Null)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

pub fn check_attached_routes(view: &StatusView, s: &AttachedRoutesStep) -> Result<(), String> {
    let gw = view.require("Gateway", &s.gateway)?;
    match &s.listeners {
        serde_yaml::Value::String(k) if k == "all" => {
            let count = s.count.unwrap_or(0);
            if count == 0 {
                return check_zero_routes(view, &s.gateway);
            }
            for l in gw.listeners() {
                let got = l.get("attachedRoutes").and_then(Value::as_i64);
                if got != Some(count) {
                    return Err(format!("listener {}: attachedRoutes {got:?}, want {count}", str_field(l, "name").unwrap_or("?")));
                }
            }
            Ok(())
        }
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                let lname = k.as_str().unwrap_or("");
                let want = v.as_i64();
                let l = gw.listener(lname).ok_or_else(|| format!("Gateway {}: no status for listener {lname}", s.gateway))?;
                let got = l.get("attachedRoutes").and_then(Value::as_i64);
                if got != want {
                    return Err(format!("Gateway {} listener {lname}: attachedRoutes {got:?}, want {want:?}", s.gateway));
                }
            }
            Ok(())
        }
        other => Err(format!("attachedRoutes: unsupported listeners value {other:?}")),
    }
}

pub fn check_listeners_status(view: &StatusView, s: &ListenersStatusStep) -> Result<(), String> {
    let obj = view.require(&s.kind, &s.object)?;
    let label = format!("{} {}", s.kind, s.object);
    let actual = obj.listeners();
    if actual.len() != s.listeners.len() {
        return Err(format!(
            "{label}: {} listeners in status ({}), want {}",
            actual.len(),
            actual.iter().filter_map(|l| str_field(l, "name")).collect::<Vec<_>>().join(", "),
            s.listeners.len()
        ));
    }
    for e in &s.listeners {
        let l = obj.listener(&e.name).ok_or_else(|| format!("{label}: no status for listener {}", e.name))?;
        if let Some(kinds) = &e.supported_kinds {
            let got = crate::runner::status::arr(l.get("supportedKinds"));
            if kinds.is_empty() && !got.is_empty() {
                return Err(format!("{label} listener {}: supportedKinds {got:?}, want none", e.name));
            }
            for k in kinds {
                let g = k.group.as_deref().unwrap_or(GATEWAY_GROUP);
                let found = got.iter().any(|a| {
                    str_field(a, "kind") == Some(k.kind.as_str()) && str_field(a, "group").unwrap_or(GATEWAY_GROUP) == g
                });
                if !found {
                    return Err(format!("{label} listener {}: supportedKinds lacks {g}/{} (got {got:?})", e.name, k.kind));
                }
            }
        }
        if let Some(want) = e.attached_routes {
            let got = l.get("attachedRoutes").and_then(Value::as_i64);
            if got != Some(want) {
                return Err(format!("{label} listener {}: attachedRoutes {got:?}, want {want}", e.name));
            }
        }
        conditions_match(crate::runner::status::arr(l.get("conditions")), &e.conditions)
            .map_err(|err| format!("{label} listener {}: {err}", e.name))?;
    }
    Ok(())
}

pub fn check_route_parents(view: &StatusView, s: &RouteParentsStep) -> Result<(), String> {
    let obj = view.require(&s.kind, &s.object)?;
    let (rns, _) = split_ref(&s.object);
    for e in &s.parents {
        let r = &e.parent_ref;
        let group = r.group.as_deref().unwrap_or(GATEWAY_GROUP);
        let kind = r.kind.as_deref().unwrap_or("Gateway");
        let ns = r.namespace.as_deref().or(rns);
        let entry = obj
            .parents()
            .iter()
            .find(|p| parent_ref_is(p, group, kind, ns, &r.name, rns, s.namespace_required))
            .ok_or_else(|| {
                format!(
                    "{} {}: no status.parents entry for {kind} {}/{} (have {})",
                    s.kind,
                    s.object,
                    ns.unwrap_or(""),
                    r.name,
                    obj.parents().len()
                )
            })?;
        if str_field(entry, "controllerName") != Some(CONTROLLER_NAME) {
            return Err(format!("{} {}: parent {} controllerName {:?}", s.kind, s.object, r.name, str_field(entry, "controllerName")));
        }
        let conds = crate::runner::status::arr(entry.get("conditions"));
        conditions_match(conds, &e.conditions)
            .map_err(|err| format!("{} {} parent {}: {err} (all: {})", s.kind, s.object, r.name, summarize(conds)))?;
    }
    Ok(())
}

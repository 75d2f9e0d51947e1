//! The status steps of a conformance case (FORMAT.md), checked on the
//! statuses of the last translation.

use std::path::Path;

use serde_json::Value;

use super::cluster::{Cluster, CONTROLLER};
use super::{split, substitute, ROOT};

pub type Check = Result<(), String>;

/// Runs the case's steps in order; returns how many status steps were checked.
pub fn run(cluster: &mut Cluster, case: &Value) -> Result<usize, String> {
    let mut checked = 0;
    for (i, step) in case["steps"].as_array().into_iter().flatten().enumerate() {
        let fail = |e: String| format!("step {i}: {e}");
        if let Some(s) = step.get("custom").and_then(Value::as_str) {
            // Prose steps that change objects cannot be replayed; stop here.
            if s.contains("merge patch") || s.contains("merge-patch") {
                return Ok(checked);
            }
            if let Some(rest) = s.split("NamespacesMustBeReady(").nth(1) {
                let namespace = rest.split(')').next().unwrap_or("");
                namespaces_ready(cluster, namespace).map_err(fail)?;
                checked += 1;
            }
            continue;
        }
        if step.get("requires").is_some() {
            continue;
        }
        let done = if let Some(s) = step.get("accepted") {
            accepted(cluster, s)
        } else if let Some(s) = step.get("conditions") {
            conditions(cluster, s)
        } else if let Some(s) = step.get("listenersStatus") {
            listeners_status(cluster, s)
        } else if let Some(s) = step.get("attachedRoutes") {
            attached_routes(cluster, s)
        } else if let Some(s) = step.get("noAcceptedParents") {
            no_accepted_parents(cluster, s)
        } else if let Some(s) = step.get("routeParents") {
            route_parents(cluster, s)
        } else if let Some(s) = step.get("requests") {
            super::requests::requests(cluster, s)
        } else if let Some(s) = step.get("apply") {
            apply(cluster, s).map_err(fail)?;
            continue;
        } else if let Some(s) = step.get("delete") {
            let (ns, name) = split(s["object"].as_str().unwrap_or(""));
            cluster.delete(s["kind"].as_str().unwrap_or(""), ns, name);
            cluster.reload();
            continue;
        } else {
            continue;
        };
        done.map_err(fail)?;
        checked += 1;
    }
    Ok(checked)
}

fn apply(cluster: &mut Cluster, step: &Value) -> Check {
    if let Some(file) = step["file"].as_str() {
        let text = std::fs::read_to_string(Path::new(ROOT).join("upstream").join(file))
            .map_err(|e| e.to_string())?;
        cluster.apply_yaml(&substitute(&text));
    } else if let Some(patch) = step.get("patch") {
        let (ns, name) = split(patch["object"].as_str().unwrap_or(""));
        if !cluster.patch(
            patch["kind"].as_str().unwrap_or(""),
            ns,
            name,
            &patch["merge"],
        ) {
            return Err(format!("patch target {patch} not found"));
        }
    } else if let Some(inline) = step.get("inline") {
        cluster.apply_yaml(&substitute(
            &serde_yaml::to_string(inline).map_err(|e| e.to_string())?,
        ));
    }
    cluster.reload();
    Ok(())
}

fn ns_of(object: &str) -> Option<&str> {
    let (ns, _) = split(object);
    (!ns.is_empty()).then_some(ns)
}

pub fn status<'a>(cluster: &'a Cluster, kind: &str, object: &str) -> Result<&'a Value, String> {
    let (_, name) = split(object);
    cluster
        .status(kind, ns_of(object), name)
        .ok_or_else(|| format!("{kind} {object} has no status entry"))
}

fn has_conditions(actual: &Value, expected: &Value, what: &str) -> Check {
    for e in expected.as_array().into_iter().flatten() {
        let found = actual
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == e["type"]);
        let Some(c) = found else {
            return Err(format!("{what}: no {} condition in {actual}", e["type"]));
        };
        if c["status"] != e["status"] || (e.get("reason").is_some() && c["reason"] != e["reason"]) {
            return Err(format!("{what}: expected {e}, got {c}"));
        }
    }
    Ok(())
}

fn current(conditions: &Value, generation: i64, what: &str) -> Check {
    for c in conditions.as_array().into_iter().flatten() {
        if c["observedGeneration"] != generation {
            return Err(format!(
                "{what}: condition {c} is not at generation {generation}"
            ));
        }
    }
    Ok(())
}

/// The route's parent entries for Gateway `gateway` (name and namespace).
fn parents_for<'a>(route: &'a Value, gateway: &str) -> Vec<&'a Value> {
    let (ns, name) = split(gateway);
    route["parents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["parentRef"]["name"] == name
                && (p["parentRef"]["namespace"].is_null() || p["parentRef"]["namespace"] == ns)
        })
        .collect()
}

fn accepted(cluster: &Cluster, step: &Value) -> Check {
    let kind = step["routeKind"].as_str().unwrap_or("HTTPRoute");
    let gateway = step["gateway"]
        .as_str()
        .unwrap_or("gateway-conformance-infra/same-namespace");
    let gw = status(cluster, "Gateway", gateway)?;
    if gw["addresses"].as_array().is_none_or(Vec::is_empty) {
        return Err(format!("Gateway {gateway} has no address"));
    }
    for route in step["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let rs = status(cluster, kind, route)?;
        let (gw_ns, gw_name) = split(gateway);
        let ok = rs["parents"].as_array().into_iter().flatten().any(|p| {
            let r = &p["parentRef"];
            r["name"] == gw_name
                && (r["namespace"].is_null() || r["namespace"] == gw_ns)
                && r["group"] == "gateway.networking.k8s.io"
                && r["kind"] == "Gateway"
                && p["controllerName"] == CONTROLLER
                && has_conditions(&p["conditions"], &serde_json::json!([{"type": "Accepted", "status": "True", "reason": "Accepted"}]), "")
                    .is_ok()
                && (step["resolvedRefs"] != true
                    || has_conditions(&p["conditions"], &serde_json::json!([{"type": "ResolvedRefs", "status": "True"}]), "").is_ok())
        });
        if !ok {
            return Err(format!("{kind} {route} is not accepted by {gateway}: {rs}"));
        }
    }
    let wanted: Option<Vec<&str>> = step["listeners"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect());
    for l in gw["listeners"].as_array().into_iter().flatten() {
        let name = l["name"].as_str().unwrap_or("");
        if wanted.as_ref().is_some_and(|w| !w.contains(&name)) {
            continue;
        }
        let all_true = serde_json::json!([
            {"type": "ResolvedRefs", "status": "True"}, {"type": "Accepted", "status": "True"}, {"type": "Programmed", "status": "True"}
        ]);
        has_conditions(
            &l["conditions"],
            &all_true,
            &format!("Gateway {gateway} listener {name}"),
        )?;
    }
    Ok(())
}

fn conditions(cluster: &Cluster, step: &Value) -> Check {
    let kind = step["kind"].as_str().unwrap_or("");
    let object = step["object"].as_str().unwrap_or("");
    let st = status(cluster, kind, object)?;
    let (_, name) = split(object);
    let generation = cluster.generation(kind, ns_of(object), name).unwrap_or(1);
    let expected = &step["conditions"];
    if let Some(parent) = step["parent"].as_str() {
        for p in st["parents"].as_array().into_iter().flatten() {
            current(&p["conditions"], generation, &format!("{kind} {object}"))?;
        }
        let parents = parents_for(st, parent);
        if parents
            .iter()
            .any(|p| has_conditions(&p["conditions"], expected, "").is_ok())
        {
            return Ok(());
        }
        return Err(format!(
            "{kind} {object} parent {parent}: expected {expected}, status {st}"
        ));
    }
    let mut listeners: Vec<&str> = step["listener"].as_str().into_iter().collect();
    match &step["listeners"] {
        Value::String(all) if all == "all" => listeners.extend(
            st["listeners"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["name"].as_str()),
        ),
        Value::Array(names) => listeners.extend(names.iter().filter_map(Value::as_str)),
        _ => {}
    }
    if listeners.is_empty() {
        current(&st["conditions"], generation, &format!("{kind} {object}"))?;
        return has_conditions(&st["conditions"], expected, &format!("{kind} {object}"));
    }
    for name in listeners {
        let l = st["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["name"] == name);
        let l = l.ok_or_else(|| format!("{kind} {object} has no listener {name}"))?;
        has_conditions(
            &l["conditions"],
            expected,
            &format!("{kind} {object} listener {name}"),
        )?;
    }
    Ok(())
}

fn listeners_status(cluster: &Cluster, step: &Value) -> Check {
    let object = step["object"].as_str().unwrap_or("");
    let st = status(cluster, step["kind"].as_str().unwrap_or("Gateway"), object)?;
    let actual = st["listeners"].as_array().cloned().unwrap_or_default();
    let expected = step["listeners"].as_array().cloned().unwrap_or_default();
    if actual.len() != expected.len() {
        return Err(format!(
            "{object}: {} listeners, expected {}: {st}",
            actual.len(),
            expected.len()
        ));
    }
    for e in &expected {
        let what = format!("{object} listener {}", e["name"]);
        let a = actual
            .iter()
            .find(|a| a["name"] == e["name"])
            .ok_or_else(|| format!("{what} missing"))?;
        let kinds = e["supportedKinds"].as_array().cloned().unwrap_or_default();
        let actual_kinds = a["supportedKinds"].as_array().cloned().unwrap_or_default();
        if kinds.is_empty() && !actual_kinds.is_empty() {
            return Err(format!("{what}: supportedKinds should be empty: {a}"));
        }
        if let Some(k) = kinds.iter().find(|k| !actual_kinds.contains(k)) {
            return Err(format!("{what}: supportedKinds lacks {k}: {a}"));
        }
        if a["attachedRoutes"] != e["attachedRoutes"] {
            return Err(format!(
                "{what}: attachedRoutes {} expected {}",
                a["attachedRoutes"], e["attachedRoutes"]
            ));
        }
        has_conditions(&a["conditions"], &e["conditions"], &what)?;
    }
    Ok(())
}

fn attached_routes(cluster: &Cluster, step: &Value) -> Check {
    let gateway = step["gateway"].as_str().unwrap_or("");
    let st = status(cluster, "Gateway", gateway)?;
    let listeners = st["listeners"].as_array().cloned().unwrap_or_default();
    let count_of = |name: &str| {
        listeners
            .iter()
            .find(|l| l["name"] == name)
            .map(|l| l["attachedRoutes"].clone())
    };
    match &step["listeners"] {
        Value::String(all) if all == "all" => {
            for l in &listeners {
                if l["attachedRoutes"] != step["count"] {
                    return Err(format!(
                        "{gateway} listener {}: attachedRoutes {}",
                        l["name"], l["attachedRoutes"]
                    ));
                }
            }
        }
        Value::Object(map) => {
            for (name, count) in map {
                if count_of(name).as_ref() != Some(count) {
                    return Err(format!(
                        "{gateway} listener {name}: attachedRoutes {:?}, expected {count}",
                        count_of(name)
                    ));
                }
            }
        }
        other => return Err(format!("unknown listeners form {other}")),
    }
    Ok(())
}

fn no_accepted_parents(cluster: &Cluster, step: &Value) -> Check {
    let object = step["object"].as_str().unwrap_or("");
    let st = status(
        cluster,
        step["kind"].as_str().unwrap_or("HTTPRoute"),
        object,
    )?;
    let parents = st["parents"].as_array().cloned().unwrap_or_default();
    let rejected = serde_json::json!([{"type": "Accepted", "status": "False"}]);
    match parents.as_slice() {
        [] => Ok(()),
        [one] if has_conditions(&one["conditions"], &rejected, "").is_ok() => Ok(()),
        _ => Err(format!("{object}: parents {st}")),
    }
}

fn route_parents(cluster: &Cluster, step: &Value) -> Check {
    let kind = step["kind"].as_str().unwrap_or("HTTPRoute");
    let object = step["object"].as_str().unwrap_or("");
    let st = status(cluster, kind, object)?;
    for e in step["parents"].as_array().into_iter().flatten() {
        let r = &e["parentRef"];
        let found = st["parents"].as_array().into_iter().flatten().any(|p| {
            let a = &p["parentRef"];
            a["name"] == r["name"]
                && a["group"] == r["group"]
                && a["kind"] == r["kind"]
                && (a["namespace"] == r["namespace"]
                    || (step["namespaceRequired"] == false && a["namespace"].is_null()))
                && p["controllerName"] == CONTROLLER
                && has_conditions(&p["conditions"], &e["conditions"], "").is_ok()
        });
        if !found {
            return Err(format!("{kind} {object}: no parent like {e} in {st}"));
        }
    }
    Ok(())
}

/// Upstream NamespacesMustBeReady: every Gateway of the namespace not
/// annotated `gateway-api/skip-this-for-readiness: "true"` is Accepted and
/// Programmed at its current generation.
fn namespaces_ready(cluster: &Cluster, namespace: &str) -> Check {
    let ready = serde_json::json!([{"type": "Accepted", "status": "True"}, {"type": "Programmed", "status": "True"}]);
    for ((kind, ns, name), gateway) in &cluster.objects {
        if kind != "Gateway" || ns != namespace {
            continue;
        }
        if gateway["metadata"]["annotations"]["gateway-api/skip-this-for-readiness"] == "true" {
            continue;
        }
        let st = cluster
            .status("Gateway", Some(ns), name)
            .ok_or_else(|| format!("Gateway {ns}/{name}: no status"))?;
        let generation = cluster.generation("Gateway", Some(ns), name).unwrap_or(1);
        let what = format!("Gateway {ns}/{name} readiness");
        current(&st["conditions"], generation, &what)?;
        has_conditions(&st["conditions"], &ready, &what)?;
    }
    Ok(())
}

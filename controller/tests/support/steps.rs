//! The status steps of a conformance case (FORMAT.md), checked on the
//! statuses of the last translation.

use std::path::Path;

use serde_json::Value;

use super::cluster::{Cluster, CONTROLLER};
use super::simulate::{self, Outcome, Request};
use super::{split, substitute, ROOT};

type Check = Result<(), String>;

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
            requests(cluster, s)
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

fn status<'a>(cluster: &'a Cluster, kind: &str, object: &str) -> Result<&'a Value, String> {
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

/// The Deployment a Service's endpoints belong to: the one whose pod labels
/// the Service selects (runner pod names start with the Deployment name).
fn deployment_of(cluster: &Cluster, cluster_name: &str) -> Option<String> {
    let (ns, rest) = cluster_name.split_once('/')?;
    let (svc, _) = rest.rsplit_once(':')?;
    let service = cluster
        .objects
        .get(&("Service".to_string(), ns.to_string(), svc.to_string()))?;
    let selector = service["spec"]["selector"].as_object()?;
    cluster
        .objects
        .iter()
        .filter(|((kind, dns, _), _)| kind == "Deployment" && dns == ns)
        .find(|(_, d)| {
            let labels = &d["spec"]["template"]["metadata"]["labels"];
            selector.iter().all(|(k, v)| &labels[k] == v)
        })
        .map(|((_, _, name), _)| name.clone())
}

/// Statuses the model decides (the rest come from backends or the proxy).
const MODEL_STATUSES: &[u64] = &[200, 301, 302, 303, 307, 308, 404, 500];

fn requests(cluster: &Cluster, step: &Value) -> Check {
    if step["expectFailure"] == true || step["expectError"] == true {
        return Ok(());
    }
    let gateway = step["gateway"].as_str().unwrap_or("");
    let st = status(cluster, "Gateway", gateway)?;
    let address: std::net::IpAddr = st["addresses"][0]["value"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("{gateway} has no address"))?;
    let scheme = step["scheme"].as_str().unwrap_or("http");
    let (gw_ns, gw_name) = split(gateway);
    let spec = &cluster.objects[&(
        "Gateway".to_string(),
        gw_ns.to_string(),
        gw_name.to_string(),
    )]["spec"];
    let wanted_protocol = if scheme == "https" { "HTTPS" } else { "HTTP" };
    let port = step["port"].as_u64().or_else(|| {
        spec["listeners"]
            .as_array()?
            .iter()
            .find(|l| l["protocol"] == wanted_protocol)?["port"]
            .as_u64()
    });
    let port = port.ok_or_else(|| format!("{gateway}: no {wanted_protocol} listener"))? as u16;
    for case in step["cases"].as_array().into_iter().flatten() {
        let req = &case["request"];
        let codes: Vec<u64> = match case["response"]["statusCodes"].as_array() {
            Some(codes) => codes.iter().filter_map(Value::as_u64).collect(),
            None => vec![200],
        };
        let path = req["path"].as_str().unwrap_or("/");
        if codes.iter().any(|c| !MODEL_STATUSES.contains(c)) || path.contains("/status/") {
            continue;
        }
        let headers: Vec<(String, String)> = req["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        let address_host = address.to_string();
        let host = req["host"].as_str().unwrap_or(&address_host);
        let request = Request {
            address,
            port,
            host,
            method: req["method"].as_str().unwrap_or("GET"),
            path,
            headers: &headers,
        };
        let outcome = simulate::route(&cluster.last.snapshot, &request);
        let what = format!("{} {host}{path} on {gateway}:{port}", request.method);
        if let Outcome::Forward { backends, .. } = &outcome {
            if backends.len() > 1 {
                continue; // weighted: decided per request by the proxy
            }
        }
        let got = u64::from(outcome.status());
        if got == 200 && !codes.contains(&200) {
            continue; // forwarded: the backend (or a timeout) decides the status
        }
        if !codes.contains(&got) {
            return Err(format!(
                "{what}: expected {codes:?}, the model answers {got}: {outcome:?}"
            ));
        }
        // As upstream, the backend is compared on a 200 only.
        if let (Some(backend), Outcome::Forward { backends, .. }, 200) =
            (case["backend"].as_str(), &outcome, got)
        {
            let cluster_name = backends
                .first()
                .and_then(|(c, _)| c.clone())
                .unwrap_or_default();
            let deployment = deployment_of(cluster, &cluster_name);
            if deployment.as_deref() != Some(backend) {
                return Err(format!(
                    "{what}: expected backend {backend}, routed to {cluster_name} ({deployment:?})"
                ));
            }
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

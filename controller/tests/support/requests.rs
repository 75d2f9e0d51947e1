//! `requests` steps replayed on the snapshot with the model simulator: the
//! route and backend that answer, and the statuses the model decides (404,
//! 500, redirects). Statuses that backends or timeouts decide are skipped.

use serde_json::Value;

use super::cluster::Cluster;
use super::simulate::{self, Outcome, Request};
use super::split;
use super::steps::{status, Check};

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

pub fn requests(cluster: &Cluster, step: &Value) -> Check {
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

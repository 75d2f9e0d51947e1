//! The longer `custom` procedures: percentage mirroring, manual EndpointSlices,
//! backend-naming headers, and the Gateway's applied addresses.

use std::time::{Duration, Instant};

use crate::runner::case::{RequestsStep, Step};
use crate::runner::context::CaseCtx;
use crate::runner::steps::requests::{add_query, attempt};

/// Upstream's percentage-mirror procedure (see HTTPRouteRequestPercentageMirror).
#[allow(clippy::too_many_arguments)]
pub async fn mirror_distribution(
    ctx: &mut CaseCtx,
    steps: &[crate::runner::case::StepEntry],
    index: usize,
    mirror_ns: &str,
    mirror: &str,
    path: &str,
    min: usize,
    max: usize,
) -> Result<(), String> {
    const ATTEMPTS: usize = 5;
    const TOTAL: usize = 500;
    let req_step: RequestsStep = steps[..index]
        .iter()
        .rev()
        .find_map(|s| match &s.kind {
            Step::Requests(r) => Some(r.clone()),
            _ => None,
        })
        .ok_or("mirror distribution: no requests step before it")?;
    let mut prepared = ctx.prepare_requests(&req_step).await?;
    let mut base = prepared.drain(..).next().ok_or("mirror distribution: the requests step has no case")?;
    base.mirrors.clear();
    let controls = ctx.backend_controls(mirror_ns, mirror);
    if controls.is_empty() {
        return Err(format!("mirror backend {mirror_ns}/{mirror} has no echo pods"));
    }
    let mut last = String::new();
    for n in 0..ATTEMPTS {
        let full = add_query(path, "gateway-api-conformance-request-id", &uuid::Uuid::new_v4().to_string());
        let deadline = Instant::now() + ctx.shared.limits.requests * 4;
        use futures::StreamExt;
        let results: Vec<Result<(), String>> = futures::stream::iter((0..TOTAL).map(|_| {
            let base = base.clone();
            let full = full.clone();
            async move {
                loop {
                    let a = attempt(&base, Some(&full)).await;
                    match a.verdict {
                        Ok(()) => return Ok(()),
                        Err(e) if Instant::now() > deadline => return Err(e),
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        }))
        .buffer_unordered(10)
        .collect()
        .await;
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            return Err(format!("mirror distribution: a request never got its answer: {e}"));
        }
        // Give in-flight mirror copies a moment to land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut count = 0;
        for c in &controls {
            let reqs = crate::runner::steps::requests::echo_requests(*c).await?;
            count += reqs.iter().filter(|r| r.get("path").and_then(|p| p.as_str()) == Some(full.as_str())).count();
        }
        if (min..=max).contains(&count) {
            return Ok(());
        }
        last = format!("attempt {}: {count} mirrored copies of {TOTAL}, want {min} to {max}", n + 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(format!("mirror distribution failed after {ATTEMPTS} attempts; {last}"))
}

/// A Gateway's spec.addresses as first applied (after placeholder substitution).
pub fn applied_addresses(ctx: &CaseCtx, gateway: &str) -> Result<Vec<serde_yaml::Value>, String> {
    ctx.applied_addresses.get(gateway).cloned().ok_or_else(|| format!("Gateway {gateway} had no spec.addresses when the case began"))
}

/// Sequential requests whose echoed header names the backend that answered.
pub async fn header_names_backend(ctx: &mut CaseCtx, gateway: &str, port: u16, times: usize, header: &str) -> Result<(), String> {
    use crate::runner::http_client::{send, ClientRequest, Proto};
    let (ip, port) = ctx.gateway_target(gateway, "http", Some(port)).await?;
    let addr = std::net::SocketAddr::new(ip, port);
    for i in 0..times {
        let req = ClientRequest {
            addr,
            proto: Proto::Http1,
            host: if port == 80 { ip.to_string() } else { addr.to_string() },
            method: "GET".into(),
            path: "/".into(),
            headers: Vec::new(),
            body: None,
            tls: None,
            timeout: Duration::from_secs(10),
        };
        let resp = send(&req).await.result.map_err(|e| format!("request {}: transport error: {}", i + 1, e.0))?;
        let echoed: crate::runner::compare::Echoed =
            serde_json::from_slice(&resp.body).map_err(|e| format!("request {}: status {}, body is not the echo JSON: {e}", i + 1, resp.status))?;
        let values: Vec<&String> = echoed.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(header)).flat_map(|(_, v)| v).collect();
        if values.len() != 1 {
            return Err(format!("request {}: header {header} has {} values {values:?}, want exactly one", i + 1, values.len()));
        }
        if !echoed.pod.starts_with(values[0].as_str()) {
            return Err(format!("request {}: header {header} is {:?} but pod {:?} answered", i + 1, values[0], echoed.pod));
        }
    }
    Ok(())
}

/// Upstream setupEndpointSlices: fill the manual IPv4 slices with the Deployment's pod addresses.
pub fn setup_endpoint_slices(ctx: &mut CaseCtx, deployment: &str, slices: &[String], namespace: &str) -> Result<(), String> {
    let pods = ctx.deployment_pods(deployment);
    if pods.is_empty() {
        return Err(format!("Deployment {deployment} has no pods"));
    }
    let endpoints: Vec<serde_json::Value> = pods.iter().map(|p| crate::runner::endpoints::endpoint_entry(&p.info)).collect();
    let merge = serde_yaml::to_value(serde_json::json!({"endpoints": endpoints})).map_err(|e| e.to_string())?;
    let mut changed = Vec::new();
    for s in slices {
        let reference = format!("{namespace}/{s}");
        changed.push(ctx.store.patch("EndpointSlice", &reference, &merge).map_err(|e| e.to_string())?);
    }
    changed.sort_unstable();
    changed.dedup();
    for fi in changed {
        ctx.store.write_file(&ctx.config_dir, fi).map_err(|e| format!("{e:#}"))?;
    }
    Ok(())
}

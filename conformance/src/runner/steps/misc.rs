//! Resilience steps: wait, backendControl, load, sticky.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::runner::case::{BackendControlStep, LoadStep, StickyStep};
use crate::runner::compare::parse_echo;
use crate::runner::context::CaseCtx;
use crate::runner::gateway_process::simple_request;
use crate::runner::http_client::{send, ClientRequest, Proto};

/// Parses durations like `500ms`, `2s`, `1m`, `1.5s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?}")),
    };
    Ok(Duration::from_secs_f64(secs))
}

pub async fn wait(s: &str) -> Result<(), String> {
    tokio::time::sleep(parse_duration(s)?).await;
    Ok(())
}

pub async fn backend_control(ctx: &mut CaseCtx, s: &BackendControlStep) -> Result<(), String> {
    let pods = ctx.deployment_pods(&s.deployment);
    if pods.is_empty() {
        return Err(format!("backendControl: Deployment {} has no echo pods", s.deployment));
    }
    let targets: Vec<_> = match s.pod {
        Some(i) => vec![pods.get(i).ok_or_else(|| format!("backendControl: Deployment {} has no pod {i}", s.deployment))?.clone()],
        None => pods,
    };
    let mut body = serde_json::json!({"mode": s.mode});
    if let Some(st) = s.status {
        body["status"] = serde_json::json!(st);
    }
    if let Some(d) = &s.delay {
        body["delay"] = serde_json::json!(d);
    }
    for p in targets {
        let req = hyper::Request::post("/mode")
            .header("host", p.control.to_string())
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let (code, resp) = simple_request(p.control, req).await.map_err(|e| format!("echo control {}: {e:#}", p.control))?;
        if code != 200 {
            return Err(format!("echo control {} POST /mode answered {code}: {}", p.control, String::from_utf8_lossy(&resp)));
        }
    }
    Ok(())
}

fn count_ok(spec: &serde_yaml::Value, n: usize) -> Result<bool, String> {
    let text = match spec {
        serde_yaml::Value::Number(x) => x.to_string(),
        serde_yaml::Value::String(s) => s.clone(),
        other => return Err(format!("bad count {other:?}")),
    };
    let t = text.trim();
    let parse = |x: &str| x.trim().parse::<usize>().map_err(|_| format!("bad count {t:?}"));
    Ok(if let Some(x) = t.strip_prefix(">=") {
        n >= parse(x)?
    } else if let Some(x) = t.strip_prefix("<=") {
        n <= parse(x)?
    } else {
        n == parse(t)?
    })
}

async fn target(ctx: &mut CaseCtx, gateway: &str, port: Option<u16>) -> Result<(SocketAddr, String), String> {
    let (ip, port) = ctx.gateway_target(gateway, "http", port).await?;
    let addr = SocketAddr::new(ip, port);
    Ok((addr, if port == 80 { ip.to_string() } else { addr.to_string() }))
}

pub async fn load(ctx: &mut CaseCtx, s: &LoadStep) -> Result<(), String> {
    let (addr, default_host) = target(ctx, &s.gateway, s.port).await?;
    let template = ClientRequest {
        addr,
        proto: Proto::Http1,
        host: s.request.host.clone().unwrap_or(default_host),
        method: s.request.method.clone().unwrap_or_else(|| "GET".into()),
        path: s.request.path.clone(),
        headers: s.request.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        body: None,
        tls: None,
        timeout: Duration::from_secs(30),
    };
    let start = Instant::now();
    let statuses: Vec<Option<u16>> = futures::stream::iter((0..s.total).map(|_| {
        let t = template.clone();
        async move { send(&t).await.result.ok().map(|r| r.status) }
    }))
    .buffer_unordered(s.concurrency.max(1))
    .collect()
    .await;
    let took = start.elapsed();
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    let mut errors = 0;
    for st in statuses {
        match st {
            Some(c) => *counts.entry(c).or_default() += 1,
            None => errors += 1,
        }
    }
    for (code, spec) in &s.expect.status_counts {
        let n = counts.get(code).copied().unwrap_or(0);
        if !count_ok(spec, n)? {
            return Err(format!("status {code}: {n} answers, want {spec:?} (all: {counts:?}, transport errors {errors})"));
        }
    }
    if let Some(max) = &s.expect.max_duration {
        let max = parse_duration(max)?;
        if took > max {
            return Err(format!("load took {took:?}, want at most {max:?}"));
        }
    }
    Ok(())
}

pub async fn sticky(ctx: &mut CaseCtx, s: &StickyStep) -> Result<(), String> {
    let (addr, default_host) = target(ctx, &s.gateway, s.port).await?;
    const PER_KEY: usize = 5;
    let mut pods_per_key: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for key in 0..s.keys {
        let value = format!("key-{key}");
        let mut headers = Vec::new();
        let mut path = s.request.path.clone();
        if let Some(h) = &s.key_header {
            headers.push((h.clone(), value.clone()));
        }
        if let Some(c) = &s.key_cookie {
            headers.push(("Cookie".into(), format!("{c}={value}")));
        }
        if let Some(q) = &s.key_query {
            path = crate::runner::steps::requests::add_query(&path, q, &value);
        }
        for _ in 0..PER_KEY {
            let req = ClientRequest {
                addr,
                proto: Proto::Http1,
                host: s.request.host.clone().unwrap_or_else(|| default_host.clone()),
                method: "GET".into(),
                path: path.clone(),
                headers: headers.clone(),
                body: None,
                tls: None,
                timeout: Duration::from_secs(10),
            };
            let resp = send(&req).await.result.map_err(|e| format!("sticky request: {}", e.0))?;
            if resp.status != 200 {
                return Err(format!("sticky request for {value}: status {}", resp.status));
            }
            let echoed = parse_echo(&resp, "GET")?;
            pods_per_key.entry(key).or_default().insert(echoed.pod);
        }
    }
    if s.expect.same_pod_per_key {
        if let Some((k, pods)) = pods_per_key.iter().find(|(_, p)| p.len() > 1) {
            return Err(format!("key-{k} landed on {} pods: {pods:?}", pods.len()));
        }
    }
    let distinct: BTreeSet<&String> = pods_per_key.values().flatten().collect();
    if distinct.len() < s.expect.min_distinct_pods {
        return Err(format!("{} keys spread over {} pods, want at least {}", s.keys, distinct.len(), s.expect.min_distinct_pods));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_counts() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(count_ok(&serde_yaml::Value::String(">=10".into()), 10).unwrap_or(false));
        assert!(!count_ok(&serde_yaml::Value::String("<=1".into()), 2).unwrap_or(true));
        assert!(count_ok(&serde_yaml::from_str("3").expect("n"), 3).unwrap_or(false));
    }
}

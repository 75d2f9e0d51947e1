//! The `weights` step (upstream TestWeightedDistribution): 500 samples, each
//! fraction within 0.05 of its weight, a 0 weight gets none; the whole sample
//! is retried up to 10 times.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;

use crate::runner::case::{RequestSpec, WeightsStep};
use crate::runner::compare::parse_echo;
use crate::runner::context::CaseCtx;
use crate::runner::http_client::{send, ClientRequest, Proto};

const SAMPLES: usize = 500;
const TOLERANCE: f64 = 0.05;
const ATTEMPTS: usize = 10;
const CONCURRENCY: usize = 10;

/// The backend of a pod: its name without the last two dash-separated parts.
pub fn backend_of(pod: &str) -> String {
    let parts: Vec<&str> = pod.split('-').collect();
    if parts.len() <= 2 {
        return pod.to_string();
    }
    parts[..parts.len() - 2].join("-")
}

/// Checks sample counts against expected weights.
/// Tallies one round of samples (backend name per sample) and checks the
/// distribution; any failed sample fails the round.
fn judge_samples(samples: Vec<Result<String, String>>, expected: &BTreeMap<String, f64>) -> Result<(), String> {
    let mut counts = BTreeMap::new();
    for sample in samples {
        match sample {
            Ok(backend) => *counts.entry(backend).or_insert(0usize) += 1,
            Err(e) => return Err(format!("a sample failed: {e}")),
        }
    }
    check_distribution(&counts, expected, SAMPLES)
}

pub fn check_distribution(counts: &BTreeMap<String, usize>, expected: &BTreeMap<String, f64>, total: usize) -> Result<(), String> {
    for (name, n) in counts {
        if !expected.contains_key(name) {
            return Err(format!("{n} samples landed on unexpected backend {name}"));
        }
    }
    for (name, w) in expected {
        let n = counts.get(name).copied().unwrap_or(0);
        let frac = n as f64 / total as f64;
        if *w == 0.0 && n > 0 {
            return Err(format!("backend {name} has weight 0 but got {n} samples"));
        }
        if (frac - w).abs() > TOLERANCE {
            return Err(format!("backend {name}: fraction {frac:.3}, want {w} +/- {TOLERANCE} (counts {counts:?})"));
        }
    }
    Ok(())
}

pub async fn run(ctx: &mut CaseCtx, s: &WeightsStep) -> Result<(), String> {
    if s.protocol.as_deref() == Some("grpc") {
        return run_grpc(ctx, s).await;
    }
    if s.protocol.as_deref() == Some("tcp") {
        return run_tcp(ctx, s).await;
    }
    if s.protocol.as_deref().is_some_and(|p| p != "http") {
        return Err(format!("weights with protocol {:?} is not implemented by the runner", s.protocol));
    }
    let req: RequestSpec = serde_yaml::from_value(s.request.clone()).map_err(|e| format!("weights request: {e}"))?;
    let (ip, port) = ctx.gateway_target(&s.gateway, "http", s.port).await?;
    let addr = SocketAddr::new(ip, port);
    let host = req.host.clone().unwrap_or_else(|| if port == 80 { ip.to_string() } else { addr.to_string() });
    // The expected namespace: that of the Deployments named as backends, when they agree.
    let namespaces: Vec<String> = s
        .expected
        .keys()
        .filter_map(|b| ctx.store.of_kind("Deployment").find(|d| crate::runner::objects::name(d) == b).and_then(|d| crate::runner::objects::namespace(d).map(String::from)))
        .collect();
    let want_ns = namespaces.first().filter(|n| namespaces.iter().all(|x| x == *n)).cloned();
    let template = ClientRequest {
        addr,
        proto: Proto::Http1,
        host,
        method: req.method.clone().unwrap_or_else(|| "GET".into()),
        path: req.path.clone(),
        headers: req.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        body: None,
        tls: None,
        timeout: Duration::from_secs(10),
    };
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        let samples: Vec<Result<String, String>> = futures::stream::iter((0..SAMPLES).map(|_| {
            let t = template.clone();
            let want_ns = want_ns.clone();
            async move {
                let out = send(&t).await;
                let resp = out.result.map_err(|e| e.0)?;
                if resp.status != 200 {
                    return Err(format!("status {}", resp.status));
                }
                let echoed = parse_echo(&resp, &t.method)?;
                if echoed.path != t.path {
                    return Err(format!("backend saw path {:?}, want {:?}", echoed.path, t.path));
                }
                if let Some(ns) = want_ns {
                    if echoed.namespace != ns {
                        return Err(format!("echoed namespace {:?}, want {ns:?}", echoed.namespace));
                    }
                }
                Ok(backend_of(&echoed.pod))
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
        let verdict = judge_samples(samples, &s.expected);
        match verdict {
            Ok(()) => return Ok(()),
            Err(e) => last = format!("attempt {}: {e}", attempt + 1),
        }
    }
    Err(format!("weighted distribution not met after {ATTEMPTS} attempts; last {last}"))
}

/// Weighted distribution of TCP connections (each sample a new connection sending TEST).
async fn run_tcp(ctx: &mut CaseCtx, s: &WeightsStep) -> Result<(), String> {
    let (ip, port) = ctx.gateway_target(&s.gateway, "tcp", s.port).await?;
    let addr = SocketAddr::new(ip, port);
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        let samples: Vec<Result<String, String>> = futures::stream::iter(
            (0..SAMPLES).map(|_| async move { crate::runner::steps::tls_tcp::tcp_pod(addr).await.map(|p| backend_of(&p)) }),
        )
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
        let verdict = judge_samples(samples, &s.expected);
        match verdict {
            Ok(()) => return Ok(()),
            Err(e) => last = format!("attempt {}: {e}", attempt + 1),
        }
    }
    Err(format!("weighted TCP distribution not met after {ATTEMPTS} attempts; last {last}"))
}

/// Weighted distribution of gRPC calls (the pod comes from the echoed context).
async fn run_grpc(ctx: &mut CaseCtx, s: &WeightsStep) -> Result<(), String> {
    use crate::runner::steps::grpc::{call, GrpcCase};
    let c: GrpcCase = serde_yaml::from_value(s.request.clone()).map_err(|e| format!("weights request: {e}"))?;
    let (ip, port) = ctx.gateway_target(&s.gateway, "http", s.port).await?;
    let addr = SocketAddr::new(ip, port);
    let md = c.request_metadata.clone().unwrap_or_default();
    let authority = md.authority.clone().unwrap_or_else(|| if port == 80 { ip.to_string() } else { addr.to_string() });
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        let samples: Vec<Result<String, String>> = futures::stream::iter((0..SAMPLES).map(|_| {
            let (authority, md) = (authority.clone(), md.metadata.clone());
            let method = c.method();
            async move {
                let r = call(addr, &authority, method, &md).await?;
                if r.code != 0 {
                    return Err(format!("gRPC status {} ({})", r.code, r.message));
                }
                let a = r.assertions.ok_or("OK without an EchoResponse")?;
                Ok(backend_of(&a.pod))
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
        let verdict = judge_samples(samples, &s.expected);
        match verdict {
            Ok(()) => return Ok(()),
            Err(e) => last = format!("attempt {}: {e}", attempt + 1),
        }
    }
    Err(format!("weighted gRPC distribution not met after {ATTEMPTS} attempts; last {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_name_from_pod() {
        assert_eq!(backend_of("infra-backend-v1-7f9-0"), "infra-backend-v1");
        assert_eq!(backend_of("a-b"), "a-b");
    }

    #[test]
    fn distribution() {
        let expected: BTreeMap<String, f64> = [("a".to_string(), 0.7), ("b".to_string(), 0.3), ("c".to_string(), 0.0)].into();
        let ok: BTreeMap<String, usize> = [("a".to_string(), 345), ("b".to_string(), 155)].into();
        assert_eq!(check_distribution(&ok, &expected, 500), Ok(()));
        let zero: BTreeMap<String, usize> = [("a".to_string(), 344), ("b".to_string(), 155), ("c".to_string(), 1)].into();
        assert!(check_distribution(&zero, &expected, 500).is_err());
        let off: BTreeMap<String, usize> = [("a".to_string(), 250), ("b".to_string(), 250)].into();
        assert!(check_distribution(&off, &expected, 500).is_err());
    }
}

//! The `requests` step: each case is sent until it holds for several requests
//! in a row (upstream's eventual consistency), or fails at the time limit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::runner::case::{RequestCase, RequestsStep};
use crate::runner::compare::{compare, Sent};
use crate::runner::context::CaseCtx;
use crate::runner::gateway_process::admin_get;
use crate::runner::http_client::{send, ClientRequest, Proto, TlsOptions};
use crate::runner::secrets::CertPem;
use crate::runner::tls_client::Trust;

/// Upstream RequiredConsecutiveSuccesses.
pub const CONSECUTIVE: usize = 3;
const MIRROR_PARAM: &str = "gateway-api-conformance-request-id";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CASE_CONCURRENCY: usize = 8;

/// Everything one request case needs, detached from the context so cases run concurrently.
#[derive(Clone)]
pub struct Prepared {
    pub index: usize,
    pub case: RequestCase,
    pub addr: SocketAddr,
    pub scheme: String,
    pub default_host: String,
    pub tls: Option<TlsOptions>,
    pub expected_client_cert: Option<String>,
    /// Control addresses of the pods of each mirror backend.
    pub mirrors: Vec<(String, Vec<SocketAddr>)>,
    pub expect_failure: bool,
    pub expect_error: bool,
    pub limit: Duration,
}

pub struct CaseOutcome {
    pub result: Result<(), String>,
    pub cert_requested: bool,
}

fn label(p: &Prepared) -> String {
    let c = &p.case;
    let name = c.test_case_name.clone().unwrap_or_default();
    format!(
        "case {} ({}{} {}{})",
        p.index,
        c.request.method.as_deref().unwrap_or("GET"),
        c.request.host.as_deref().map(|h| format!(" host={h}")).unwrap_or_default(),
        c.request.path,
        if name.is_empty() { String::new() } else { format!(" \"{name}\"") }
    )
}

/// Adds `name=value` to a path's query.
pub fn add_query(path: &str, name: &str, value: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{name}={value}")
}

/// One attempt: the request as sent, and how it compares.
pub struct Attempt {
    pub path: String,
    pub outcome: Result<crate::runner::http_client::ClientResponse, String>,
    pub verdict: Result<(), String>,
    pub cert_requested: bool,
}

pub async fn attempt(p: &Prepared, path_override: Option<&str>) -> Attempt {
    let c = &p.case;
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut path = path_override.unwrap_or(&c.request.path).replace("{uuid}", &uuid);
    let mut expected_path = c
        .expected_request
        .as_ref()
        .and_then(|e| e.path.clone())
        .unwrap_or_else(|| c.request.path.clone())
        .replace("{uuid}", &uuid);
    if path_override.is_some() {
        expected_path = path.clone();
    }
    if !c.mirrored_to.is_empty() && path_override.is_none() {
        let id = uuid::Uuid::new_v4().to_string();
        path = add_query(&path, MIRROR_PARAM, &id);
        expected_path = add_query(&expected_path, MIRROR_PARAM, &id);
    }
    let method = c.request.method.clone().unwrap_or_else(|| "GET".into());
    let mut headers: Vec<(String, String)> = c.request.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if !c.backend_set_response_headers.is_empty() {
        let v: Vec<String> = c.backend_set_response_headers.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        headers.push(("X-Echo-Set-Header".into(), v.join(",")));
    }
    let proto = match Proto::parse(c.request.protocol.as_deref(), &p.scheme) {
        Ok(pr) => pr,
        Err(e) => {
            return Attempt { path, outcome: Err(e.clone()), verdict: Err(e), cert_requested: false };
        }
    };
    let req = ClientRequest {
        addr: p.addr,
        proto,
        host: c.request.host.clone().unwrap_or_else(|| p.default_host.clone()),
        method: method.clone(),
        path: path.clone(),
        headers,
        body: c.request.body.clone(),
        tls: p.tls.clone(),
        timeout: REQUEST_TIMEOUT,
    };
    let out = send(&req).await;
    let cert_requested = out.cert_requested;
    match out.result {
        Err(e) => Attempt { path, outcome: Err(e.0.clone()), verdict: Err(format!("transport error: {}", e.0)), cert_requested },
        Ok(resp) => {
            let sent = Sent {
                scheme: &p.scheme,
                method: &method,
                path: &path,
                expected_path: &expected_path,
                expected_client_cert: p.expected_client_cert.as_deref(),
            };
            let verdict = compare(c, &sent, &resp);
            Attempt { path, outcome: Ok(resp), verdict, cert_requested }
        }
    }
}

/// Runs one case to consistency (or to its failure).
pub async fn run_case(p: Prepared) -> CaseOutcome {
    let start = Instant::now();
    let mut streak = 0usize;
    let mut last = String::from("no attempt");
    let mut cert_requested = false;
    loop {
        let a = attempt(&p, None).await;
        cert_requested |= a.cert_requested;
        let ok = if p.expect_error {
            match &a.outcome {
                Err(_) => Ok(()),
                Ok(r) => Err(format!("got an HTTP response ({}), want a transport error", r.status)),
            }
        } else if p.expect_failure {
            match &a.outcome {
                Ok(r) if r.status == 200 => {
                    return CaseOutcome { result: Err(format!("{}: got 200, want a failure", label(&p))), cert_requested };
                }
                Ok(r) if r.status == 408 || r.status == 504 => Err(format!("status {} (not yet)", r.status)),
                Ok(_) => Ok(()),
                Err(e) => Err(format!("transport error (not yet): {e}")),
            }
        } else {
            a.verdict.clone()
        };
        match ok {
            Ok(()) => {
                streak += 1;
                if streak >= CONSECUTIVE {
                    if !p.mirrors.is_empty() && !p.expect_failure && !p.expect_error {
                        if let Err(e) = check_mirrors(&p, &a.path).await {
                            return CaseOutcome { result: Err(format!("{}: {e}", label(&p))), cert_requested };
                        }
                    }
                    return CaseOutcome { result: Ok(()), cert_requested };
                }
            }
            Err(e) => {
                streak = 0;
                last = e;
            }
        }
        if start.elapsed() >= p.limit {
            return CaseOutcome {
                result: Err(format!("{}: not consistent within {:?}: {last}", label(&p), p.limit)),
                cert_requested,
            };
        }
        if streak == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Every mirror backend received a copy with exactly this request URI.
async fn check_mirrors(p: &Prepared, path: &str) -> Result<(), String> {
    let start = Instant::now();
    for (name, controls) in &p.mirrors {
        loop {
            let mut found = false;
            let mut last_err = String::new();
            for c in controls {
                match mirror_log_contains(*c, path).await {
                    Ok(true) => found = true,
                    Ok(false) => {}
                    Err(e) => last_err = e,
                }
            }
            if found {
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("mirror backend {name} never received {path} {last_err}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

pub async fn echo_requests(control: SocketAddr) -> Result<Vec<serde_json::Value>, String> {
    let (code, body) = admin_get(control, "/requests").await.map_err(|e| format!("echo control {control}: {e:#}"))?;
    if code != 200 {
        return Err(format!("echo control {control} /requests answered {code}"));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("echo /requests: {e}"))?;
    Ok(v.get("requests").and_then(|r| r.as_array()).cloned().unwrap_or_default())
}

async fn mirror_log_contains(control: SocketAddr, path: &str) -> Result<bool, String> {
    Ok(echo_requests(control).await?.iter().any(|r| r.get("path").and_then(|p| p.as_str()) == Some(path)))
}

impl CaseCtx {
    /// The certificates of a Gateway's listeners on `port` (what an HTTPS client trusts).
    pub fn listener_trust(&self, gateway: &str, port: u16) -> Trust {
        let mut t = Trust::default();
        let Some(gw) = self.store.get("Gateway", gateway) else { return t };
        let (gns, _) = crate::runner::case::split_ref(gateway);
        let listeners = gw.get("spec").and_then(|s| s.get("listeners")).and_then(|l| l.as_sequence()).cloned().unwrap_or_default();
        for l in &listeners {
            if l.get("port").and_then(|p| p.as_u64()) != Some(u64::from(port)) {
                continue;
            }
            let refs = l.get("tls").and_then(|t| t.get("certificateRefs")).and_then(|r| r.as_sequence()).cloned().unwrap_or_default();
            for r in &refs {
                let name = r.get("name").and_then(|n| n.as_str()).unwrap_or("");
                let ns = r.get("namespace").and_then(|n| n.as_str()).or(gns).unwrap_or("default");
                if let Some(c) = self.cert_pem(&format!("{ns}/{name}")) {
                    t.add_cert(&c);
                }
            }
        }
        // Istio Gateways: credentialName in the gateway's namespace (istio-system style).
        let servers = gw.get("spec").and_then(|s| s.get("servers")).and_then(|l| l.as_sequence()).cloned().unwrap_or_default();
        for s in &servers {
            if let Some(cred) = s.get("tls").and_then(|t| t.get("credentialName")).and_then(|c| c.as_str()) {
                if let Some(c) = self.cert_pem(&format!("{}/{cred}", gns.unwrap_or("istio-system"))) {
                    t.add_cert(&c);
                }
            }
        }
        t
    }

    /// A TLS Secret's certificate and key (and issuing CA when generated).
    pub fn cert_pem(&self, reference: &str) -> Option<CertPem> {
        if let Some(c) = self.case_secrets.secrets.get(reference).or_else(|| self.shared.generated.secrets.get(reference)) {
            return Some(c.clone());
        }
        let s = self.store.get("Secret", reference)?;
        let get = |k: &str| -> Option<String> {
            let raw = s.get("data").and_then(|d| d.get(k)).and_then(|v| v.as_str())?;
            crate::runner::base64::decode(raw).map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        Some(CertPem { cert: get("tls.crt")?, key: get("tls.key").unwrap_or_default(), ca: get("ca.crt") })
    }

    /// ConfigMap `ca.crt`.
    pub fn ca_pem(&self, reference: &str) -> Option<String> {
        let cm = self.store.get("ConfigMap", reference)?;
        cm.get("data").and_then(|d| d.get("ca.crt")).and_then(|v| v.as_str()).map(String::from)
    }

    /// Control addresses of the pods of a backend (Deployment, or the Service's selected pods).
    pub fn backend_controls(&self, namespace: &str, name: &str) -> Vec<SocketAddr> {
        let pods = self.deployment_pods(&format!("{namespace}/{name}"));
        if !pods.is_empty() {
            return pods.iter().map(|p| p.control).collect();
        }
        let Some(svc) = self.store.get("Service", &format!("{namespace}/{name}")) else { return Vec::new() };
        let sel = crate::runner::endpoints::service_selector(svc);
        self.pods
            .values()
            .flatten()
            .filter(|p| p.info.namespace == namespace && crate::runner::endpoints::labels_match(&sel, &p.info.labels))
            .map(|p| p.control)
            .collect()
    }

    /// Builds the detached per-case inputs of a requests step.
    pub async fn prepare_requests(&mut self, s: &RequestsStep) -> Result<Vec<Prepared>, String> {
        let scheme = s.scheme.clone().unwrap_or_else(|| "http".into());
        let (ip, port) = self.gateway_target(&s.gateway, &scheme, s.port).await?;
        let addr = SocketAddr::new(ip, port);
        let default_port = if scheme == "https" { 443 } else { 80 };
        let default_host = if port == default_port { ip.to_string() } else { addr.to_string() };
        let trust = match &s.server_certificate {
            Some(secret) => Trust::from_cert(&self.cert_pem(secret).ok_or_else(|| format!("no certificate Secret {secret}"))?),
            None => self.listener_trust(&s.gateway, port),
        };
        let mut out = Vec::new();
        for (index, c) in s.cases.iter().enumerate() {
            let tls = if scheme == "https" || Proto::parse(c.request.protocol.as_deref(), &scheme).map(Proto::is_tls).unwrap_or(false) {
                let sni = c
                    .server_name
                    .clone()
                    .or_else(|| c.request.sni.clone())
                    .or_else(|| s.server_name.clone())
                    .or_else(|| c.request.host.clone().map(|h| h.split(':').next().unwrap_or("").to_string()))
                    .unwrap_or_else(|| ip.to_string());
                let client_cert = match &c.request.client_cert {
                    Some(r) => Some(self.cert_pem(r).ok_or_else(|| format!("no client certificate Secret {r}"))?),
                    None => None,
                };
                Some(TlsOptions { sni, trust: trust.clone(), client_cert })
            } else {
                None
            };
            let expected_client_cert = match c.expected_request.as_ref().and_then(|e| e.client_cert.as_deref()) {
                Some(r) => Some(self.cert_pem(r).ok_or_else(|| format!("no Secret {r}"))?.cert),
                None => None,
            };
            let mirrors = c
                .mirrored_to
                .iter()
                .map(|m| (format!("{}/{}", m.namespace, m.name), self.backend_controls(&m.namespace, &m.name)))
                .collect::<Vec<_>>();
            if let Some((n, _)) = mirrors.iter().find(|(_, c)| c.is_empty()) {
                return Err(format!("mirror backend {n} has no echo pods"));
            }
            out.push(Prepared {
                index,
                case: c.clone(),
                addr,
                scheme: scheme.clone(),
                default_host: default_host.clone(),
                tls,
                expected_client_cert,
                mirrors,
                expect_failure: s.expect_failure,
                expect_error: s.expect_error,
                limit: self.shared.limits.requests,
            });
        }
        Ok(out)
    }
}

pub async fn run(ctx: &mut CaseCtx, s: &RequestsStep) -> Result<(), String> {
    let prepared = ctx.prepare_requests(s).await?;
    let outcomes: Vec<(usize, CaseOutcome)> = futures::stream::iter(prepared.into_iter().map(|p| async move {
        let i = p.index;
        (i, run_case(p).await)
    }))
    .buffer_unordered(CASE_CONCURRENCY)
    .collect()
    .await;
    let mut by_index: BTreeMap<usize, CaseOutcome> = outcomes.into_iter().collect();
    ctx.cert_requested = Some(by_index.values().any(|o| o.cert_requested));
    let failures: Vec<String> = by_index.iter_mut().filter_map(|(_, o)| o.result.clone().err()).collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} of {} request cases failed: {}", failures.len(), s.cases.len(), failures.join(" | ")))
    }
}

//! What a running case holds: its objects, config dir, gateway process, echo
//! pods, and the values custom steps remember (G0, G1, ...).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_yaml::Value;

use super::backends::{BackendPool, EchoPod};
use super::case::LoadedCase;
use super::endpoints::{endpoint_slices, PodInfo};
use super::gateway_process::GatewayProcess;
use super::objects::{kind, name, namespace, ObjectStore, Placeholders};
use super::secrets::Generated;
use super::status::StatusView;

/// Time limits (upstream uses ~60 s; ours are shorter so a failing case doesn't stall CI).
#[derive(Debug, Clone)]
pub struct Limits {
    pub status: Duration,
    pub requests: Duration,
    pub gateway_ready: Duration,
    pub poll: Duration,
}

pub struct RunShared {
    pub gateway_bin: PathBuf,
    pub limits: Limits,
    pub generated: Generated,
    pub pool: BackendPool,
    pub log_dir: PathBuf,
    pub keep_work: bool,
}

pub const ENDPOINTS_FILE: &str = "90-endpointslices.yaml";
pub const APPLIED_FILE: &str = "40-applied.yaml";
pub const BASE_FILE: &str = "10-base.yaml";

pub struct CaseCtx {
    pub shared: Arc<RunShared>,
    pub case: LoadedCase,
    pub store: ObjectStore,
    pub config_dir: PathBuf,
    pub gateway: Option<GatewayProcess>,
    pub pods: HashMap<String, Vec<Arc<EchoPod>>>,
    /// The Deployment each entry of `pods` was started from.
    pub started_from: HashMap<String, Value>,
    pub private_backends: bool,
    pub remembered: HashMap<String, (String, String, i64)>,
    /// Did the gateway ask the client for a certificate during the last requests step?
    pub cert_requested: Option<bool>,
    pub placeholders: Placeholders,
    /// Certificates generated for this case's own `secrets:`.
    pub case_secrets: Generated,
    pub step_index: usize,
    /// Each Gateway's spec.addresses as applied at the start (INVALID, UNUSABLE, USABLE...).
    pub applied_addresses: HashMap<String, Vec<Value>>,
    /// Gateway log size when each step began (for accessLog).
    pub step_log_offsets: Vec<u64>,
}

impl CaseCtx {
    pub fn gw(&self) -> Result<&GatewayProcess, String> {
        self.gateway.as_ref().ok_or_else(|| "gateway not running".to_string())
    }

    pub async fn status(&self) -> Result<StatusView, String> {
        self.gw()?.status().await.map_err(|e| format!("{e:#}"))
    }

    /// Polls `/status` until `check` passes or `limit` runs out (the last error is reported).
    pub async fn poll<F>(&mut self, limit: Duration, mut check: F) -> Result<StatusView, String>
    where
        F: FnMut(&StatusView) -> Result<(), String>,
    {
        let start = Instant::now();
        let mut last;
        loop {
            match self.status().await {
                Ok(view) => match check(&view) {
                    Ok(()) => return Ok(view),
                    Err(e) => {
                        let errs = view.errors_summary();
                        last = if errs.is_empty() { e } else { format!("{e} [gateway errors: {errs}]") };
                    }
                },
                Err(e) => last = format!("reading /status: {e}"),
            }
            if let Some(gw) = self.gateway.as_mut() {
                if let Some(exit) = gw.exited() {
                    return Err(format!("weir-gateway exited ({exit}); last log lines:\n{}", gw.log_tail(10)));
                }
            }
            if start.elapsed() >= limit {
                return Err(format!("not within {limit:?}: {last}"));
            }
            tokio::time::sleep(self.shared.limits.poll).await;
        }
    }

    pub fn all_pods(&self) -> Vec<PodInfo> {
        let mut v: Vec<PodInfo> = self.pods.values().flatten().map(|p| p.info.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Pods of a Deployment `ns/name`.
    pub fn deployment_pods(&self, reference: &str) -> Vec<Arc<EchoPod>> {
        self.pods.get(reference).cloned().unwrap_or_default()
    }

    /// Starts echo pods for Deployments that have none (or whose spec changed),
    /// drops pods of removed Deployments, and rewrites the EndpointSlices file.
    pub async fn sync_backends(&mut self) -> anyhow::Result<()> {
        let base_index = self.store.file_index(BASE_FILE);
        let mut wanted: HashMap<String, (Value, bool)> = HashMap::new();
        for (fi, f) in self.store.files.iter().enumerate() {
            for o in f.objects.iter().filter(|o| kind(o) == "Deployment") {
                let key = format!("{}/{}", namespace(o).unwrap_or("default"), name(o));
                let shared = !self.private_backends && Some(fi) == base_index;
                wanted.insert(key, (o.clone(), shared));
            }
        }
        self.pods.retain(|k, _| wanted.contains_key(k));
        let pool: &BackendPool = &self.shared.pool;
        let mut starts = Vec::new();
        for (key, (dep, shared)) in &wanted {
            let current_ok = self.pods.get(key).is_some_and(|pods| {
                pods.len() as u64 == super::backends::replicas(dep)
            });
            if !current_ok || !self.started_from.get(key).is_some_and(|d| d == dep) {
                let store = &self.store;
                starts.push(async move { (key.clone(), dep.clone(), pool.pods_for(store, dep, *shared).await) });
            }
        }
        let results = futures::future::join_all(starts).await;
        for (key, dep, r) in results {
            let pods = r.map_err(|e| e.context(format!("starting echo pods for Deployment {key}")))?;
            self.pods.insert(key.clone(), pods);
            self.started_from.insert(key, dep);
        }
        let slices = endpoint_slices(self.store.all(), &self.all_pods());
        let idx = match self.store.file_index(ENDPOINTS_FILE) {
            Some(i) => {
                self.store.files[i].objects = slices;
                i
            }
            None => {
                self.store.add_file(ENDPOINTS_FILE, slices);
                self.store.files.len() - 1
            }
        };
        self.store.write_file(&self.config_dir, idx)?;
        Ok(())
    }

    /// The address and listener port a step talks to.
    pub async fn gateway_target(&mut self, gateway: &str, scheme: &str, port: Option<u16>) -> Result<(IpAddr, u16), String> {
        let limit = self.shared.limits.status;
        let gw_ref = gateway.to_string();
        let view = self
            .poll(limit, |v| {
                let gw = v.require("Gateway", &gw_ref)?;
                gw.address().map(|_| ()).ok_or_else(|| format!("Gateway {gw_ref} has no status.addresses"))
            })
            .await?;
        let addr = view
            .require("Gateway", gateway)?
            .address()
            .ok_or("no address")?
            .parse::<IpAddr>()
            .map_err(|e| format!("Gateway {gateway} address: {e}"))?;
        let port = match port {
            Some(p) => p,
            None => self.default_port(gateway, scheme)?,
        };
        Ok((addr, port))
    }

    /// The first listener (Gateway API) or server (Istio) that fits the scheme.
    pub fn default_port(&self, gateway: &str, scheme: &str) -> Result<u16, String> {
        let gw = self.store.get("Gateway", gateway).ok_or_else(|| format!("no Gateway {gateway} in the case's objects"))?;
        let spec = gw.get("spec").cloned().unwrap_or(Value::Null);
        let wanted: &[&str] = match scheme {
            "https" => &["HTTPS", "TLS"],
            "tcp" => &["TCP", "TLS"],
            "tls" => &["TLS", "HTTPS"],
            _ => &["HTTP", "HTTP2"],
        };
        let mut first = None;
        let listeners = spec.get("listeners").and_then(Value::as_sequence).cloned().unwrap_or_default();
        for l in &listeners {
            let port = l.get("port").and_then(Value::as_u64).map(|p| p as u16);
            let proto = l.get("protocol").and_then(Value::as_str).unwrap_or("");
            first = first.or(port);
            if wanted.contains(&proto) {
                if let Some(p) = port {
                    return Ok(p);
                }
            }
        }
        let servers = spec.get("servers").and_then(Value::as_sequence).cloned().unwrap_or_default();
        for s in &servers {
            let port = s.get("port").and_then(|p| p.get("number")).and_then(Value::as_u64).map(|p| p as u16);
            let proto = s.get("port").and_then(|p| p.get("protocol")).and_then(Value::as_str).unwrap_or("");
            first = first.or(port);
            if wanted.contains(&proto.to_ascii_uppercase().as_str()) {
                if let Some(p) = port {
                    return Ok(p);
                }
            }
        }
        first.ok_or_else(|| format!("Gateway {gateway} has no listener port"))
    }
}

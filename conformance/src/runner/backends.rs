//! Echo backends: one `weir-echo` process per Deployment replica, each on its
//! own loopback IP. Deployments of the base manifests are started once per run
//! and shared; a case's own Deployments (or all of them, when the case drives
//! backends through `backendControl`) live for that case only.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_yaml::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::base64;
use super::endpoints::{labels_match, service_selector, PodInfo};
use super::objects::{kind, name, namespace, ObjectStore};

pub const HTTP_PORT: u16 = 3000;
pub const H2C_PORT: u16 = 3001;
pub const TLS_PORT: u16 = 8443;
pub const CONTROL_PORT: u16 = 19000;
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A running echo pod; the process dies with the last handle.
pub struct EchoPod {
    pub info: PodInfo,
    pub control: SocketAddr,
    _child: Child,
}

/// How a Deployment's container wants its echo server.
#[derive(Debug, Clone, PartialEq)]
pub struct EchoConfig {
    pub grpc: bool,
    pub tcp: bool,
    pub tcp_port: u16,
    pub tls_port: u16,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub client_ca: Option<String>,
}

pub struct BackendPool {
    echo_bin: PathBuf,
    work_dir: PathBuf,
    next_ip: AtomicU32,
    shared: tokio::sync::Mutex<HashMap<String, Vec<Arc<EchoPod>>>>,
}

fn env_value<'a>(container: &'a Value, key: &str) -> Option<&'a str> {
    container.get("env")?.as_sequence()?.iter().find_map(|e| {
        (e.get("name")?.as_str()? == key).then(|| e.get("value").and_then(Value::as_str)).flatten()
    })
}

fn has_env(container: &Value, key: &str) -> bool {
    container
        .get("env")
        .and_then(Value::as_sequence)
        .is_some_and(|s| s.iter().any(|e| e.get("name").and_then(Value::as_str) == Some(key)))
}

/// Reads the file a container sees at `path` from its secret/configMap volumes.
fn mounted_file(store: &ObjectStore, ns: &str, pod_spec: &Value, container: &Value, path: &str) -> anyhow::Result<String> {
    let mounts = container.get("volumeMounts").and_then(Value::as_sequence).cloned().unwrap_or_default();
    for m in &mounts {
        let mount_path = m.get("mountPath").and_then(Value::as_str).unwrap_or("");
        let Some(rel) = path.strip_prefix(mount_path).map(|r| r.trim_start_matches('/')) else { continue };
        let vol_name = m.get("name").and_then(Value::as_str).unwrap_or("");
        let vol = pod_spec
            .get("volumes")
            .and_then(Value::as_sequence)
            .and_then(|vs| vs.iter().find(|v| v.get("name").and_then(Value::as_str) == Some(vol_name)))
            .ok_or_else(|| anyhow!("volume {vol_name} not found"))?;
        let (source, obj_kind, obj_name_key) = if let Some(s) = vol.get("secret") {
            (s, "Secret", "secretName")
        } else if let Some(c) = vol.get("configMap") {
            (c, "ConfigMap", "name")
        } else {
            bail!("volume {vol_name} is neither a secret nor a configMap");
        };
        let obj_name = source.get(obj_name_key).and_then(Value::as_str).unwrap_or("");
        let key = source
            .get("items")
            .and_then(Value::as_sequence)
            .and_then(|items| {
                items.iter().find_map(|i| {
                    (i.get("path")?.as_str()? == rel).then(|| i.get("key").and_then(Value::as_str)).flatten()
                })
            })
            .unwrap_or(rel);
        let obj = store
            .get(obj_kind, &format!("{ns}/{obj_name}"))
            .ok_or_else(|| anyhow!("{obj_kind} {ns}/{obj_name} (mounted at {mount_path}) not found"))?;
        if let Some(s) = obj.get("stringData").and_then(|d| d.get(key)).and_then(Value::as_str) {
            return Ok(s.to_string());
        }
        let raw = obj
            .get("data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{obj_kind} {ns}/{obj_name} has no key {key}"))?;
        return if obj_kind == "Secret" {
            let bytes = base64::decode(raw).ok_or_else(|| anyhow!("{obj_kind} {ns}/{obj_name} key {key}: bad base64"))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            Ok(raw.to_string())
        };
    }
    bail!("no volume mount covers {path}")
}

/// The echo configuration of a Deployment's first container.
pub fn echo_config(store: &ObjectStore, deployment: &Value) -> anyhow::Result<EchoConfig> {
    let ns = namespace(deployment).unwrap_or("default");
    let pod_spec = deployment
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("spec"))
        .ok_or_else(|| anyhow!("Deployment without spec.template.spec"))?;
    let container = pod_spec
        .get("containers")
        .and_then(Value::as_sequence)
        .and_then(|c| c.first())
        .ok_or_else(|| anyhow!("Deployment without containers"))?;
    let file = |env: &str| -> anyhow::Result<Option<String>> {
        match env_value(container, env) {
            Some(path) => mounted_file(store, ns, pod_spec, container, path)
                .map(Some)
                .with_context(|| format!("env {env}")),
            None => Ok(None),
        }
    };
    let port = |env: &str, default: u16| env_value(container, env).and_then(|v| v.parse().ok()).unwrap_or(default);
    Ok(EchoConfig {
        grpc: has_env(container, "GRPC_ECHO_SERVER"),
        tcp: has_env(container, "TCP_ECHO_SERVER"),
        tcp_port: port("TCP_PORT", HTTP_PORT),
        tls_port: port("TLS_PORT", TLS_PORT),
        cert: file("TLS_SERVER_CERT")?,
        key: match file("TLS_SERVER_PRIV_KEY")? {
            Some(k) => Some(k),
            None => file("TLS_SERVER_PRIVKEY")?,
        },
        client_ca: file("TLS_CLIENT_CACERTS")?,
    })
}

fn template_labels(deployment: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(Value::Mapping(m)) = deployment
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
    {
        for (k, v) in m {
            if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                out.insert(k.to_string(), v.to_string());
            }
        }
    }
    out
}

fn container_ports(deployment: &Value) -> HashMap<String, u16> {
    let mut out = HashMap::new();
    let containers = deployment
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("spec"))
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    for c in &containers {
        for p in c.get("ports").and_then(Value::as_sequence).cloned().unwrap_or_default() {
            if let (Some(n), Some(port)) = (p.get("name").and_then(Value::as_str), p.get("containerPort").and_then(Value::as_u64)) {
                out.insert(n.to_string(), port as u16);
            }
        }
    }
    out
}

pub fn replicas(deployment: &Value) -> u64 {
    deployment.get("spec").and_then(|s| s.get("replicas")).and_then(Value::as_u64).unwrap_or(1)
}

impl BackendPool {
    pub fn new(echo_bin: PathBuf, work_dir: PathBuf) -> Self {
        BackendPool { echo_bin, work_dir, next_ip: AtomicU32::new(0), shared: Default::default() }
    }

    fn alloc_ip(&self) -> Ipv4Addr {
        let n = self.next_ip.fetch_add(1, Ordering::SeqCst);
        Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8)
    }

    /// Pods for a Deployment: shared ones (started once per run) or private ones.
    pub async fn pods_for(&self, store: &ObjectStore, deployment: &Value, shared: bool) -> anyhow::Result<Vec<Arc<EchoPod>>> {
        let config = echo_config(store, deployment)?;
        let identity = format!(
            "{}/{}\n{}\n{:?}",
            namespace(deployment).unwrap_or(""),
            name(deployment),
            serde_yaml::to_string(deployment).unwrap_or_default(),
            config
        );
        if !shared {
            return self.start_deployment(store, deployment, &config).await;
        }
        let mut map = self.shared.lock().await;
        if let Some(p) = map.get(&identity) {
            return Ok(p.clone());
        }
        let pods = self.start_deployment(store, deployment, &config).await?;
        map.insert(identity, pods.clone());
        Ok(pods)
    }

    async fn start_deployment(&self, store: &ObjectStore, deployment: &Value, config: &EchoConfig) -> anyhow::Result<Vec<Arc<EchoPod>>> {
        let ns = namespace(deployment).unwrap_or("default").to_string();
        let dep = name(deployment).to_string();
        let labels = template_labels(deployment);
        let service = store
            .all()
            .filter(|o| kind(o) == "Service" && namespace(o) == Some(ns.as_str()))
            .find(|s| labels_match(&service_selector(s), &labels))
            .map(|s| name(s).to_string());
        let mut pods = Vec::new();
        let starts = (0..replicas(deployment)).map(|i| {
            let ip = self.alloc_ip();
            let info = PodInfo {
                name: format!("{dep}-{}{}-{i}", ip.octets()[2], ip.octets()[3]),
                namespace: ns.clone(),
                deployment: dep.clone(),
                ip,
                labels: labels.clone(),
                container_ports: container_ports(deployment),
            };
            self.spawn(info, config, service.clone())
        });
        for p in futures::future::join_all(starts).await {
            pods.push(Arc::new(p?));
        }
        Ok(pods)
    }

    async fn spawn(&self, info: PodInfo, config: &EchoConfig, service: Option<String>) -> anyhow::Result<EchoPod> {
        let dir = self.work_dir.join(format!("{}.{}", info.namespace, info.name));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ip = info.ip;
        let control = SocketAddr::from((ip, CONTROL_PORT));
        let mut cmd = Command::new(&self.echo_bin);
        cmd.arg("--namespace").arg(&info.namespace).arg("--pod").arg(&info.name);
        if let Some(s) = &service {
            cmd.arg("--service").arg(s);
        }
        if config.tcp {
            cmd.arg("--tcp").arg("--http").arg(format!("{ip}:{}", config.tcp_port));
        } else {
            cmd.arg("--http").arg(format!("{ip}:{HTTP_PORT}")).arg("--h2c").arg(format!("{ip}:{H2C_PORT}"));
        }
        if config.grpc {
            cmd.arg("--grpc");
        }
        if let (Some(cert), Some(key)) = (&config.cert, &config.key) {
            let cert_path = write(&dir, "tls.crt", cert)?;
            let key_path = write(&dir, "tls.key", key)?;
            cmd.arg("--tls").arg(format!("{ip}:{}", config.tls_port)).arg("--cert").arg(cert_path).arg("--key").arg(key_path);
            if let Some(ca) = &config.client_ca {
                cmd.arg("--client-ca").arg(write(&dir, "client-ca.crt", ca)?);
            }
        }
        cmd.arg("--control").arg(control.to_string());
        let log = std::fs::File::create(dir.join("echo.log"))?;
        cmd.stdout(Stdio::piped()).stderr(Stdio::from(log)).stdin(Stdio::null()).kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {}", self.echo_bin.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if line.trim() == "READY" {
                    return Ok::<bool, std::io::Error>(true);
                }
            }
            Ok(false)
        })
        .await;
        match ready {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) | Ok(Err(_)) => {
                let status = child.wait().await.ok();
                let log = std::fs::read_to_string(dir.join("echo.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(3).collect();
                bail!(
                    "weir-echo for pod {} exited before READY ({status:?}): {}",
                    info.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )
            }
            Err(_) => bail!("weir-echo for pod {} printed no READY within {READY_TIMEOUT:?}", info.name),
        }
        // Keep draining stdout so the echo never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(EchoPod { info, control, _child: child })
    }
}

fn write(dir: &Path, file: &str, content: &str) -> anyhow::Result<PathBuf> {
    let p = dir.join(file);
    std::fs::write(&p, content).with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}

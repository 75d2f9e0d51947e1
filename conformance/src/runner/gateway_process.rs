//! One `weir-gateway` process per case, and its admin API (CONTRACTS.md).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::process::{Child, Command};

use super::status::StatusView;

pub struct GatewayProcess {
    child: Child,
    pub admin: SocketAddr,
    pub log_path: PathBuf,
}

/// A free loopback port (bound then released).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl GatewayProcess {
    pub async fn start(bin: &Path, config_dir: &Path, pool: &str, log_path: PathBuf, ready_timeout: Duration) -> anyhow::Result<Self> {
        let mut last_err = anyhow!("not started");
        // A freed port can be taken by someone else before the gateway binds it: retry.
        for _ in 0..3 {
            let admin = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
            let log2 = log.try_clone()?;
            let child = Command::new(bin)
                .arg("--config-dir")
                .arg(config_dir)
                .arg("--address-pool")
                .arg(pool)
                .arg("--admin-address")
                .arg(admin.to_string())
                .env("NO_COLOR", "1")
                .env("WEIR_LOG", std::env::var("WEIR_LOG").unwrap_or_else(|_| "info,weir::access=info".into()))
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log2))
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let mut gw = GatewayProcess { child, admin, log_path: log_path.clone() };
            match gw.wait_ready(ready_timeout).await {
                Ok(()) => return Ok(gw),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("weir-gateway exited ({status}) before ready:\n{}", self.log_tail(15));
            }
            if let Ok((200, _)) = admin_get(self.admin, "/ready").await {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("weir-gateway not ready within {timeout:?}:\n{}", self.log_tail(15));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn status(&self) -> anyhow::Result<StatusView> {
        let (code, body) = admin_get(self.admin, "/status").await?;
        if code != 200 {
            bail!("GET /status answered {code}");
        }
        let v: serde_json::Value = serde_json::from_slice(&body).context("GET /status: not JSON")?;
        Ok(StatusView::new(v))
    }

    /// Kills the process and waits until it is gone (its listeners are free).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    pub fn exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// The last `n` warning/error lines of the gateway's log (colour removed).
    pub fn problem_tail(&self, n: usize) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .map(super::steps::access_log::strip_ansi)
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("panicked"))
            .collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }

    /// The last `n` lines of the gateway's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(super::steps::access_log::strip_ansi).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// GET over HTTP/1.1 to a local admin/control API.
pub async fn admin_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, Bytes)> {
    let req = hyper::Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())?;
    simple_request(addr, req).await
}

/// Sends one request on a fresh HTTP/1.1 connection (2 s connect, 10 s total).
pub async fn simple_request<B>(addr: SocketAddr, req: hyper::Request<B>) -> anyhow::Result<(u16, Bytes)>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let fut = async {
        let stream = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connect {addr}: timeout"))??;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let resp = sender.send_request(req).await?;
        let code = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((code, body))
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await.map_err(|_| anyhow!("{addr}: timeout"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A fake admin API answering /ready and /status like CONTRACTS.md says.
    async fn fake_admin() -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let body = if req.starts_with("GET /status") {
                    r#"{"version": 3, "objects": [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "namespace": "ns", "name": "gw", "generation": 2,
                        "status": {"addresses": [{"type": "IPAddress", "value": "127.20.0.1"}], "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "observedGeneration": 2}],
                        "listeners": [{"name": "http", "attachedRoutes": 1, "conditions": []}]}}], "errors": []}"#
                } else {
                    "ready"
                };
                let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_ready_and_status_from_an_admin_api() {
        let addr = fake_admin().await;
        let (code, body) = admin_get(addr, "/ready").await.expect("ready");
        assert_eq!((code, &body[..]), (200, &b"ready"[..]));
        let (_, body) = admin_get(addr, "/status").await.expect("status");
        let view = StatusView::new(serde_json::from_slice(&body).expect("json"));
        let gw = view.require("Gateway", "ns/gw").expect("gateway");
        assert_eq!(gw.address(), Some("127.20.0.1"));
        assert_eq!(gw.conditions_current(), Ok(()));
        assert!(view.find("Gateway", "ns/other").is_none());
        assert_eq!(gw.listener("http").and_then(|l| l.get("attachedRoutes")).and_then(|v| v.as_i64()), Some(1));
    }
}

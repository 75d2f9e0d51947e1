//! `tls` (handshake checks on a listener) and `tcp` (the TCP echo exchange,
//! plain or through TLS).

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::runner::case::{TcpStep, TlsStep};
use crate::runner::context::CaseCtx;
use crate::runner::tls_client::{cert_valid_for, client_config, pem_certs, server_name, Trust};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const WELCOME: &str = "Gateway API Test TCP Server";

enum Handshake {
    Ok(Vec<rustls::pki_types::CertificateDer<'static>>),
    /// The peer closed or reset the TCP connection.
    Rejected(String),
    /// Any other failure (alert, certificate error, timeout).
    Failed(String),
}

async fn handshake(addr: SocketAddr, sni: &str) -> Handshake {
    let trust = Trust { any: true, ..Default::default() };
    let cfg = match client_config(&trust, None, &[], Arc::new(AtomicBool::new(false))) {
        Ok(c) => c,
        Err(e) => return Handshake::Failed(e),
    };
    let tcp = match tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Handshake::Failed(format!("connect: {e}")),
        Err(_) => return Handshake::Failed("connect timeout".into()),
    };
    let name = match server_name(sni) {
        Ok(n) => n,
        Err(e) => return Handshake::Failed(e),
    };
    match tokio::time::timeout(IO_TIMEOUT, tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp)).await {
        Err(_) => Handshake::Failed("handshake timeout".into()),
        Ok(Ok(s)) => Handshake::Ok(s.get_ref().1.peer_certificates().map(|c| c.iter().map(|x| x.clone().into_owned()).collect()).unwrap_or_default()),
        Ok(Err(e)) => {
            use std::io::ErrorKind::*;
            let closed = matches!(e.kind(), UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe);
            if closed {
                Handshake::Rejected(e.to_string())
            } else {
                Handshake::Failed(e.to_string())
            }
        }
    }
}

pub async fn tls(ctx: &mut CaseCtx, s: &TlsStep) -> Result<(), String> {
    let (ip, port) = ctx.gateway_target(&s.gateway, "https", s.port).await?;
    let addr = SocketAddr::new(ip, port);
    let trust = ctx.listener_trust(&s.gateway, port);
    let limit = ctx.shared.limits.requests;
    let start = Instant::now();
    let mut streak = 0;
    loop {
        let verdict = match (handshake(addr, &s.sni).await, s.expect.handshake.as_str()) {
            (Handshake::Ok(chain), "ok") => match &s.expect.certificate_for {
                Some(name) => cert_valid_for(&chain, name, &trust).map_err(|e| format!("served certificate is not valid for {name}: {e}")),
                None => Ok(()),
            },
            (Handshake::Ok(_), _) => Err(format!("handshake with SNI {} succeeded, want it to fail", s.sni)),
            (Handshake::Rejected(_), "fails") => Ok(()),
            (Handshake::Failed(e), "fails") if s.expect.connection.as_deref() != Some("rejected") => {
                let _ = e;
                Ok(())
            }
            (Handshake::Failed(e), "fails") => Err(format!("handshake failed without the connection being closed: {e}")),
            (Handshake::Rejected(e) | Handshake::Failed(e), _) => Err(format!("handshake with SNI {} failed: {e}", s.sni)),
        };
        match verdict {
            Ok(()) => {
                streak += 1;
                if streak >= crate::runner::steps::requests::CONSECUTIVE {
                    return Ok(());
                }
            }
            Err(e) => {
                streak = 0;
                if start.elapsed() >= limit {
                    return Err(format!("not within {limit:?}: {e}"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

pub async fn tcp_exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<serde_json::Value, String> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(IO_TIMEOUT, r.read_line(&mut line)).await.map_err(|_| "no welcome line".to_string())?.map_err(|e| format!("read: {e}"))?;
    if line.trim() != WELCOME {
        return Err(format!("welcome line {:?}, want {WELCOME:?}", line.trim()));
    }
    r.get_mut().write_all(b"TEST\n").await.map_err(|e| format!("write: {e}"))?;
    line.clear();
    tokio::time::timeout(IO_TIMEOUT, r.read_line(&mut line)).await.map_err(|_| "no TEST answer".to_string())?.map_err(|e| format!("read: {e}"))?;
    serde_json::from_str(line.trim()).map_err(|e| format!("TEST answer {:?} is not JSON: {e}", line.trim()))
}

pub async fn tcp(ctx: &mut CaseCtx, s: &TcpStep) -> Result<(), String> {
    let scheme = if s.tls { "tls" } else { "tcp" };
    let (ip, port) = ctx.gateway_target(&s.gateway, scheme, s.port).await?;
    let addr = SocketAddr::new(ip, port);
    let mut trust = Trust::default();
    if let Some(cm) = &s.ca_config_map {
        trust.roots.extend(pem_certs(&ctx.ca_pem(cm).ok_or_else(|| format!("no CA ConfigMap {cm}"))?));
    }
    if let Some(secret) = &s.server_certificate {
        trust.add_cert(&ctx.cert_pem(secret).ok_or_else(|| format!("no Secret {secret}"))?);
    }
    if trust.roots.is_empty() && trust.pinned.is_empty() {
        trust = ctx.listener_trust(&s.gateway, port);
    }
    let sni = s.server_name.clone().unwrap_or_else(|| ip.to_string());
    let limit = ctx.shared.limits.requests;
    let start = Instant::now();
    loop {
        let attempt = async {
            let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr)).await.map_err(|_| "connect timeout".to_string())?.map_err(|e| format!("connect {addr}: {e}"))?;
            if s.tls {
                let cfg = client_config(&trust, None, &[], Arc::new(AtomicBool::new(false)))?;
                let stream = tokio::time::timeout(IO_TIMEOUT, tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(server_name(&sni)?, tcp))
                    .await
                    .map_err(|_| "TLS handshake timeout".to_string())?
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                tcp_exchange(stream).await
            } else {
                tcp_exchange(tcp).await
            }
        };
        let verdict = attempt.await.and_then(|v| {
            let e = &s.expect;
            let get = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            if let Some(b) = &e.backend {
                if !get("pod").starts_with(b.as_str()) {
                    return Err(format!("answered by pod {:?}, want a pod of {b}", get("pod")));
                }
            }
            if let Some(ns) = &e.namespace {
                if &get("namespace") != ns {
                    return Err(format!("echoed namespace {:?}, want {ns:?}", get("namespace")));
                }
            }
            if let Some(t) = e.backend_is_tls {
                let got = v.get("isTLS").and_then(|x| x.as_bool()).unwrap_or(false);
                if got != t {
                    return Err(format!("backend isTLS {got}, want {t}"));
                }
            }
            let tls_field = |k: &str| v.get("tls").and_then(|t| t.get(k)).and_then(|x| x.as_str()).unwrap_or("").to_string();
            if let Some(h) = &e.hostname {
                if &tls_field("serverName") != h {
                    return Err(format!("backend saw SNI {:?}, want {h:?}", tls_field("serverName")));
                }
            }
            if let Some(p) = &e.tls_protocol {
                if &tls_field("negotiatedProtocol") != p {
                    return Err(format!("backend negotiated {:?}, want {p:?}", tls_field("negotiatedProtocol")));
                }
            }
            Ok(())
        });
        match verdict {
            Ok(()) => return Ok(()),
            Err(e) if start.elapsed() >= limit => return Err(format!("tcp to {addr}: not within {limit:?}: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// One plain TCP echo exchange: the pod that answered.
pub async fn tcp_pod(addr: SocketAddr) -> Result<String, String> {
    let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr)).await.map_err(|_| "connect timeout".to_string())?.map_err(|e| format!("connect {addr}: {e}"))?;
    let v = tcp_exchange(tcp).await?;
    let pod = v.get("pod").and_then(|p| p.as_str()).unwrap_or("").to_string();
    if pod.is_empty() {
        return Err("TEST answer names no pod".into());
    }
    Ok(pod)
}

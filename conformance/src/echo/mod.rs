//! The echo backend behind `weir-echo`: the Gateway API conformance echo
//! contract (FORMAT.md, "Echo backend contract") plus the control API of
//! CONTRACTS.md. `start` binds every socket and serves in the background.

pub mod answer;
pub mod conn;
pub mod control;
pub mod duration;
pub mod grpc;
pub mod http;
pub mod listener;
pub mod mode;
pub mod protobuf;
pub mod requests;
pub mod retry;
pub mod tcp;
pub mod tls;
pub mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use conn::Port;
use mode::ModeCell;
use requests::RequestLog;
use retry::RetryCounter;
use tls::TlsFiles;

/// Who the backend says it is in every answer (upstream's `Context`).
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub namespace: String,
    pub ingress: String,
    pub service: String,
    pub pod: String,
}

/// State shared by every listener of one backend.
#[derive(Debug, Default)]
pub struct Echo {
    pub identity: Identity,
    pub grpc: bool,
    pub mode: ModeCell,
    pub requests: RequestLog,
    pub retries: RetryCounter,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub identity: Identity,
    pub http: SocketAddr,
    pub h2c: Option<SocketAddr>,
    pub tls: Option<(SocketAddr, TlsFiles)>,
    pub grpc: bool,
    pub tcp: bool,
    pub control: SocketAddr,
}

/// A started backend. Dropping it stops accepting new connections.
pub struct Running {
    pub http: SocketAddr,
    pub h2c: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    pub control: SocketAddr,
    #[allow(dead_code)] // the in-process tests read it
    pub echo: Arc<Echo>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// HTTP over TLS offers both protocols by ALPN.
const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// Binds every socket (so the caller may print READY afterwards) and spawns
/// the servers on the current Tokio runtime.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let echo = Arc::new(Echo { identity: config.identity.clone(), grpc: config.grpc, ..Echo::default() });
    let http = bind(config.http, "--http").await?;
    let h2c = match config.h2c {
        Some(addr) if !config.tcp => Some(bind(addr, "--h2c").await?),
        Some(_) => {
            tracing::warn!("--h2c is not served in --tcp mode");
            None
        }
        None => None,
    };
    let tls = match &config.tls {
        Some((addr, files)) => {
            let alpn = if config.tcp { &[][..] } else { HTTP_ALPN };
            let acceptor = TlsAcceptor::from(tls::server_config(files, alpn)?);
            Some((bind(*addr, "--tls").await?, acceptor))
        }
        None => None,
    };
    let control = bind(config.control, "--control").await?;

    let mut running = Running {
        http: http.local_addr()?,
        h2c: h2c.as_ref().map(TcpListener::local_addr).transpose()?,
        tls: tls.as_ref().map(|(l, _)| l.local_addr()).transpose()?,
        control: control.local_addr()?,
        echo: echo.clone(),
        tasks: Vec::new(),
    };
    let tasks = &mut running.tasks;
    tasks.push(tokio::spawn(control::serve_control(control, echo.clone())));
    if config.tcp {
        let ports = tcp::Ports { tcp: running.http.port(), tls: running.tls.map(|a| a.port()) };
        tasks.push(tokio::spawn(tcp::serve_tcp(http, echo.clone(), None, ports)));
        if let Some((listener, acceptor)) = tls {
            tasks.push(tokio::spawn(tcp::serve_tcp(listener, echo.clone(), Some(acceptor), ports)));
        }
    } else {
        tasks.push(tokio::spawn(listener::serve_http(http, echo.clone(), Port::Http, None)));
        if let Some(listener) = h2c {
            tasks.push(tokio::spawn(listener::serve_http(listener, echo.clone(), Port::H2c, None)));
        }
        if let Some((listener, acceptor)) = tls {
            tasks.push(tokio::spawn(listener::serve_http(listener, echo.clone(), Port::Tls, Some(acceptor))));
        }
    }
    Ok(running)
}

async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("binding {flag} {addr}"))
}

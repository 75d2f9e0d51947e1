//! In-process harness: the data plane on loopback, tiny hyper backends, and
//! snapshot builders.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;
use weir_model::*;
use weir_proxy::{build_data_plane, ProxyHandle, ProxyOptions};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A free loopback port (bound then released: tiny race, fine on loopback).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub struct Gateway {
    pub handle: ProxyHandle,
    _shutdown: watch::Sender<bool>,
}

impl Gateway {
    pub fn start() -> Gateway {
        // WEIR_TEST_LOG=debug shows the proxy's logs (access log included).
        if let Ok(filter) = std::env::var("WEIR_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let opts = ProxyOptions {
            threads: 2,
            ..ProxyOptions::default()
        };
        let (data_plane, handle) = build_data_plane(&opts);
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move { data_plane.serve(rx).await });
        Gateway {
            handle,
            _shutdown: tx,
        }
    }

    /// Pushes a snapshot and waits until its listeners are live.
    pub async fn apply(&self, snapshot: Snapshot) {
        let version = snapshot.version;
        self.handle.update(Arc::new(snapshot));
        for _ in 0..200 {
            if self.handle.served_version() == Some(version) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("snapshot {version} never served");
    }
}

/// What the backend saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub host: Option<String>,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

#[derive(Debug, Clone)]
pub enum Behavior {
    /// 200 with `name` as body.
    Echo,
    /// Wait, then 200.
    Delay(Duration),
    /// Answer these statuses in turn, then 200.
    Statuses(VecDeque<u16>),
}

#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub behavior: Arc<Mutex<Behavior>>,
}

impl Backend {
    pub async fn start(name: &str, behavior: Behavior) -> Backend {
        Self::start_with(name, behavior, None).await
    }

    /// An HTTPS backend serving `cert_pem`/`key_pem` (HTTP/1.1).
    pub async fn start_tls(name: &str, cert_pem: &str, key_pem: &str) -> Backend {
        let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("certs");
        let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
            .expect("key")
            .expect("key present");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
        Self::start_with(
            name,
            Behavior::Echo,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }

    async fn start_with(
        name: &str,
        behavior: Behavior,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Backend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let backend = Backend {
            addr: listener.local_addr().expect("addr"),
            name: name.to_string(),
            seen: Arc::default(),
            behavior: Arc::new(Mutex::new(behavior)),
        };
        let b = backend.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let b = b.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let b = b.clone();
                        async move { Ok::<_, Infallible>(b.handle(req).await) }
                    });
                    if let Some(acceptor) = tls {
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        return;
                    }
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        backend
    }

    async fn handle(&self, mut req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req
            .headers()
            .get("upgrade")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
        {
            return upgrade_and_echo(&mut req);
        }
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let host = parts
            .headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let seen = Seen {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or("/".into(), |p| p.to_string()),
            host: host.or_else(|| parts.uri.authority().map(|a| a.to_string())),
            headers: parts.headers.clone(),
            body,
            version: parts.version,
        };
        self.seen.lock().expect("lock").push(seen);
        let behavior = self.behavior.lock().expect("lock").clone();
        let status = match behavior {
            Behavior::Echo => 200,
            Behavior::Delay(d) => {
                tokio::time::sleep(d).await;
                200
            }
            Behavior::Statuses(_) => {
                let mut guard = self.behavior.lock().expect("lock");
                match &mut *guard {
                    Behavior::Statuses(q) => q.pop_front().unwrap_or(200),
                    _ => 200,
                }
            }
        };
        Response::builder()
            .status(status)
            .header("x-backend", self.name.as_str())
            .body(Full::new(Bytes::from(self.name.clone())))
            .expect("response")
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// Answers a WebSocket upgrade with 101 and then echoes raw bytes (the
/// proxy only relays bytes, so no framing is needed).
fn upgrade_and_echo(req: &mut Request<Incoming>) -> Response<Full<Bytes>> {
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 1024];
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    });
    Response::builder()
        .status(101)
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        .body(Full::new(Bytes::new()))
        .expect("101")
}

/// A plain HTTP/1.1 client response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

pub async fn get(port: u16, host: &str, path: &str) -> Reply {
    send(port, http::Method::GET, host, path, &[], Bytes::new()).await
}

pub async fn send(
    port: u16,
    method: http::Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(body)).expect("request"))
        .await
        .expect("send");
    reply(resp).await
}

async fn reply(resp: Response<Incoming>) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Cleartext HTTP/2 with prior knowledge; `host` travels as `:authority`.
pub async fn get_h2c(port: u16, host: &str, path: &str) -> Reply {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .uri(format!("http://{host}{path}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    reply(sender.send_request(req).await.expect("send")).await
}

// ---- snapshot builders ----

pub fn source(name: &str) -> RouteSource {
    RouteSource {
        kind: "HTTPRoute".into(),
        namespace: "ns".into(),
        name: name.into(),
        rule: 0,
        rule_name: None,
    }
}

pub fn route(name: &str, path: PathMatch, action: RouteAction) -> Route {
    Route {
        source: source(name),
        matcher: RouteMatch {
            path,
            ..Default::default()
        },
        action,
        filters: vec![],
        timeouts: Timeouts::default(),
        retry: None,
    }
}

pub fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}

pub fn forward(cluster: &str) -> RouteAction {
    RouteAction::Forward(vec![WeightedBackend {
        cluster: Some(cluster.into()),
        weight: 1,
        filters: vec![],
    }])
}

pub fn vhost(hostname: &str, routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        hostname: hostname.into(),
        gateway_listener: format!("ns/gw/{hostname}"),
        routes,
    }
}

pub fn http_listener(port: u16, virtual_hosts: Vec<VirtualHost>) -> Listener {
    Listener {
        name: format!("127.0.0.1:{port}"),
        address: LOCALHOST,
        port,
        protocol: ListenerProtocol::Http,
        tls: None,
        virtual_hosts,
    }
}

pub fn cluster(name: &str, backends: &[&Backend]) -> (String, Cluster) {
    let endpoints = backends
        .iter()
        .map(|b| Endpoint {
            address: b.addr,
            weight: 1,
            locality: None,
            labels: BTreeMap::new(),
            ready: true,
        })
        .collect();
    (
        name.to_string(),
        Cluster {
            name: name.into(),
            protocol: UpstreamProtocol::Http1,
            endpoints,
            connect_timeout: None,
            tls: None,
        },
    )
}

pub fn snapshot(
    version: u64,
    listeners: Vec<Listener>,
    clusters: Vec<(String, Cluster)>,
) -> Snapshot {
    Snapshot {
        version,
        listeners,
        clusters: clusters.into_iter().collect(),
        certificates: BTreeMap::new(),
    }
}

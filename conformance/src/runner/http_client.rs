//! One HTTP request through the gateway on a fresh connection: HTTP/1.1,
//! cleartext HTTP/2 with prior knowledge, or TLS (HTTP/1.1 or h2 by ALPN).
//! Redirects are never followed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::secrets::CertPem;
use super::tls_client::{client_config, server_name, Trust};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Http1,
    H2c,
    Https,
    H2,
}

impl Proto {
    /// From `request.protocol` and the step's scheme.
    pub fn parse(protocol: Option<&str>, scheme: &str) -> Result<Proto, String> {
        match (protocol.map(|p| p.to_ascii_uppercase()), scheme) {
            (None, "https") => Ok(Proto::Https),
            (None, _) => Ok(Proto::Http1),
            (Some(p), _) => match p.as_str() {
                "HTTP" | "HTTP/1.1" => Ok(if scheme == "https" { Proto::Https } else { Proto::Http1 }),
                "H2C_PRIOR_KNOWLEDGE" | "H2C" => Ok(Proto::H2c),
                "HTTPS" => Ok(Proto::Https),
                "H2" | "HTTP/2" | "HTTP2" => Ok(if scheme == "https" { Proto::H2 } else { Proto::H2c }),
                other => Err(format!("unknown request protocol {other}")),
            },
        }
    }
    pub fn is_tls(self) -> bool {
        matches!(self, Proto::Https | Proto::H2)
    }
}

#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub sni: String,
    pub trust: Trust,
    pub client_cert: Option<CertPem>,
}

#[derive(Debug, Clone)]
pub struct ClientRequest {
    pub addr: SocketAddr,
    pub proto: Proto,
    /// Host header / :authority.
    pub host: String,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub tls: Option<TlsOptions>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ClientResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

/// A transport-level failure (no HTTP response).
#[derive(Debug, Clone)]
pub struct TransportError(pub String);

pub struct Outcome {
    pub result: Result<ClientResponse, TransportError>,
    /// The server sent a TLS CertificateRequest.
    pub cert_requested: bool,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

pub async fn send(req: &ClientRequest) -> Outcome {
    let requested = Arc::new(AtomicBool::new(false));
    let result = match tokio::time::timeout(req.timeout, send_inner(req, requested.clone())).await {
        Ok(r) => r,
        Err(_) => Err(TransportError(format!("no response within {:?}", req.timeout))),
    };
    Outcome { result, cert_requested: requested.load(Ordering::SeqCst) }
}

async fn send_inner(req: &ClientRequest, requested: Arc<AtomicBool>) -> Result<ClientResponse, TransportError> {
    let err = |what: &str, e: &dyn std::fmt::Display| TransportError(format!("{what}: {e}"));
    let tcp = TcpStream::connect(req.addr).await.map_err(|e| err(&format!("connect {}", req.addr), &e))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = match (&req.tls, req.proto.is_tls()) {
        (Some(tls), true) => {
            let alpn: &[&[u8]] = if req.proto == Proto::H2 { &[b"h2"] } else { &[b"http/1.1"] };
            let cfg = client_config(&tls.trust, tls.client_cert.as_ref(), alpn, requested).map_err(|e| err("tls config", &e))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
            let name = server_name(&tls.sni).map_err(|e| err("sni", &e))?;
            let stream = connector.connect(name, tcp).await.map_err(|e| err("TLS handshake", &e))?;
            Box::new(stream)
        }
        (None, true) => return Err(TransportError("TLS request without TLS options".into())),
        _ => Box::new(tcp),
    };
    let h2 = matches!(req.proto, Proto::H2 | Proto::H2c);
    let scheme = if req.proto.is_tls() { "https" } else { "http" };
    let uri = if h2 { format!("{scheme}://{}{}", req.host, req.path) } else { req.path.clone() };
    let mut builder = hyper::Request::builder().method(req.method.as_str()).uri(uri.as_str());
    if !h2 {
        builder = builder.header(http::header::HOST, req.host.as_str());
    }
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let body = Full::new(Bytes::from(req.body.clone().unwrap_or_default()));
    let request = builder.body(body).map_err(|e| err("building request", &e))?;
    let resp = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|e| err("h2 handshake", &e))?;
        tokio::spawn(conn);
        sender.send_request(request).await.map_err(|e| err("request", &e))?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| err("http1 handshake", &e))?;
        tokio::spawn(conn);
        sender.send_request(request).await.map_err(|e| err("request", &e))?
    };
    let status = resp.status().as_u16();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Err(err("reading body", &e)),
    };
    Ok(ClientResponse { status, headers, body, version })
}

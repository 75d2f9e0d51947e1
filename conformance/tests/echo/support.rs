//! Starting a backend on loopback port 0, certificates, and small clients.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::echo::{self, tls::TlsFiles, Config, Identity, Running};

pub const NAMESPACE: &str = "gateway-conformance-infra";
pub const POD: &str = "infra-backend-v1-abc-123";
pub const SERVICE: &str = "infra-backend-v1";

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

pub fn config() -> Config {
    Config {
        identity: Identity {
            namespace: NAMESPACE.into(),
            ingress: String::new(),
            service: SERVICE.into(),
            pod: POD.into(),
        },
        http: loopback(),
        h2c: Some(loopback()),
        tls: None,
        grpc: false,
        tcp: false,
        control: loopback(),
    }
}

pub async fn start(config: Config) -> Running {
    echo::start(config).await.expect("echo backend starts")
}

/// A CA, a server certificate for `echo.example` and a client certificate,
/// all signed by the CA, written as PEM files.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_der: CertificateDer<'static>,
    pub client_pem: String,
    pub client_der: CertificateDer<'static>,
    pub client_key_der: Vec<u8>,
}

pub const SERVER_NAME: &str = "echo.example";

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(vec![SERVER_NAME.to_string()]).unwrap();
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(vec!["client.example".to_string()]).unwrap();
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();

        std::fs::write(dir.path().join("tls.crt"), server.pem()).unwrap();
        std::fs::write(dir.path().join("tls.key"), server_key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
        Pki {
            dir,
            ca_der: ca.der().clone(),
            client_pem: client.pem(),
            client_der: client.der().clone(),
            client_key_der: client_key.serialize_der(),
        }
    }

    pub fn files(&self, client_ca: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("tls.crt"),
            key: self.path("tls.key"),
            client_ca: client_ca.then(|| self.path("ca.crt")),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A client config trusting the CA, offering `alpn`, presenting the
    /// client certificate when `with_client_cert`.
    pub fn client_config(&self, alpn: &[&[u8]], with_client_cert: bool) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = if with_client_cert {
            let key = PrivateKeyDer::try_from(self.client_key_der.clone()).unwrap();
            builder.with_client_auth_cert(vec![self.client_der.clone()], key).unwrap()
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let stream = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from(SERVER_NAME).unwrap(), stream)
        .await
}

/// An answer with its body read to the end.
pub struct Answer {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("echo body is JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn read(response: Response<hyper::body::Incoming>) -> Result<Answer, hyper::Error> {
    let (parts, body) = response.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    Ok(Answer { status: parts.status, headers: parts.headers, body: collected.to_bytes(), trailers })
}

/// One HTTP/1.1 request on a new connection over `io`.
pub async fn http1_on<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<Answer, hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(connection);
    read(sender.send_request(request).await?).await
}

/// One HTTP/2 request on a new connection over `io` (prior knowledge, or h2 by ALPN).
pub async fn http2_on<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<Answer, hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await?;
    tokio::spawn(connection);
    read(sender.send_request(request).await?).await
}

pub async fn http1(addr: SocketAddr, request: Request<Full<Bytes>>) -> Result<Answer, hyper::Error> {
    http1_on(TcpStream::connect(addr).await.expect("connect"), request).await
}

pub async fn http2(addr: SocketAddr, request: Request<Full<Bytes>>) -> Result<Answer, hyper::Error> {
    http2_on(TcpStream::connect(addr).await.expect("connect"), request).await
}

/// `GET path` with a Host header (HTTP/1.1 needs one).
pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).header("host", "echo.test").body(Full::default()).unwrap()
}

/// `GET` for HTTP/2, where the host is the URI's authority.
pub fn get_h2(path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("http://echo.test{path}")).body(Full::default()).unwrap()
}

pub fn post_json(path: &str, json: &str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "control")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json.to_string())))
        .unwrap()
}

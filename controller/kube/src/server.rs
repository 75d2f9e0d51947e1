//! The snapshot stream gateway replicas poll.
//!
//! `GET /snapshot?after=<version>` with `Authorization: Bearer <token>`:
//! answers at once with the current snapshot (JSON) when its version differs
//! from `after` (`after` absent or 0: the first fetch), else waits up to the
//! poll timeout for a new one and answers `204 No Content` if none came. A
//! gateway loops on it (long poll), so it gets every new snapshot as soon as
//! it is published. `/healthz` and `/ready` (a snapshot exists) serve probes.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use weir_model::Snapshot;

use crate::auth::{AuthError, Authenticator, Identity};

/// How long a poll waits for a new snapshot before answering 204.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct SnapshotServer {
    snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    auth: Arc<dyn Authenticator>,
    poll_timeout: Duration,
    /// The last encoded snapshot: every gateway gets the same bytes.
    encoded: Mutex<Option<(u64, Bytes)>>,
}

impl SnapshotServer {
    pub fn new(
        snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
        auth: Arc<dyn Authenticator>,
        poll_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(SnapshotServer { snapshots, auth, poll_timeout, encoded: Mutex::new(None) })
    }

    /// Serves connections from `listener` (TLS when `tls` is set) forever.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    log::warn!("snapshot server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let this = self.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let this = this.clone();
                    async move { Ok::<_, Infallible>(this.handle(req).await) }
                });
                let http = hyper::server::conn::http1::Builder::new();
                let result = match tls {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(stream) => http.serve_connection(TokioIo::new(stream), service).await,
                        Err(e) => return log::debug!("snapshot server: TLS handshake with {peer} failed: {e}"),
                    },
                    None => http.serve_connection(TokioIo::new(stream), service).await,
                };
                if let Err(e) = result {
                    log::debug!("snapshot server: connection from {peer}: {e}");
                }
            });
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported\n");
        }
        match req.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/ready" => match self.snapshots.borrow().is_some() {
                true => text(StatusCode::OK, "ready\n"),
                false => text(StatusCode::SERVICE_UNAVAILABLE, "no snapshot yet: waiting for the first full list\n"),
            },
            "/snapshot" => {
                let identity = match self.authenticate(&req).await {
                    Ok(identity) => identity,
                    Err(e) => {
                        log::warn!("snapshot request refused: {e}");
                        let code = match e {
                            AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                            AuthError::NotAllowed(..) => StatusCode::FORBIDDEN,
                            AuthError::Rejected(_) => StatusCode::UNAUTHORIZED,
                        };
                        return text(code, &format!("{e}\n"));
                    }
                };
                let after = after_version(req.uri().query());
                self.poll(&identity, after).await
            }
            _ => text(StatusCode::NOT_FOUND, "unknown path; try /snapshot, /ready or /healthz\n"),
        }
    }

    async fn authenticate(&self, req: &Request<Incoming>) -> Result<Identity, AuthError> {
        let header = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| AuthError::Rejected("no `Authorization: Bearer <token>` header".into()))?;
        self.auth.authenticate(token.trim()).await
    }

    async fn poll(&self, identity: &Identity, after: u64) -> Response<Full<Bytes>> {
        let mut snapshots = self.snapshots.clone();
        let wait = snapshots.wait_for(|s| s.as_ref().is_some_and(|s| s.version != after));
        let snapshot = match tokio::time::timeout(self.poll_timeout, wait).await {
            Ok(Ok(current)) => current.clone(),
            Ok(Err(_closed)) => return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
            Err(_elapsed) => None,
        };
        let Some(snapshot) = snapshot else {
            return Response::builder().status(StatusCode::NO_CONTENT).body(Full::new(Bytes::new())).unwrap_or_default();
        };
        log::debug!("sending snapshot {} to {}", snapshot.version, identity.username);
        match self.encode(identity, &snapshot) {
            Ok(body) => Response::builder()
                .header("content-type", "application/json")
                .header("x-weir-snapshot-version", snapshot.version)
                .body(Full::new(body))
                .unwrap_or_default(),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot encode the snapshot: {e}\n")),
        }
    }

    fn encode(&self, identity: &Identity, snapshot: &Snapshot) -> Result<Bytes, serde_json::Error> {
        let mut cache = self.encoded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((version, bytes)) = cache.as_ref() {
            if *version == snapshot.version {
                return Ok(bytes.clone());
            }
        }
        let bytes = Bytes::from(serde_json::to_vec(&for_gateway(identity, snapshot))?);
        *cache = Some((snapshot.version, bytes.clone()));
        Ok(bytes)
    }
}

/// What one gateway may see. All gateway replicas serve every listener
/// today, so they all get the same snapshot; certificates are limited to
/// those a listener serves or a cluster presents (no other private key ever
/// leaves the controller). Per-gateway filtering goes here.
pub fn for_gateway(_identity: &Identity, snapshot: &Snapshot) -> Snapshot {
    let mut out = snapshot.clone();
    let used: std::collections::BTreeSet<&str> = snapshot
        .listeners
        .iter()
        .flat_map(|l| l.tls.iter().flat_map(|t| &t.certificates))
        .map(|c| c.certificate.as_str())
        .chain(snapshot.clusters.values().filter_map(|c| c.tls.as_ref()?.client_certificate.as_deref()))
        .collect();
    out.certificates.retain(|name, _| used.contains(name.as_str()));
    out
}

fn after_version(query: Option<&str>) -> u64 {
    query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("after="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_model::{Certificate, Listener, ListenerProtocol, ListenerTls, SniCertificate};

    #[test]
    fn gateways_get_only_the_certificates_listeners_use() {
        let cert = || Certificate { cert_pem: "c".into(), key_pem: "k".into() };
        let mut snapshot = Snapshot::default();
        snapshot.certificates.insert("app/used".into(), cert());
        snapshot.certificates.insert("app/unused".into(), cert());
        snapshot.listeners.push(Listener {
            name: "0.0.0.0:443".into(),
            address: "0.0.0.0".parse().unwrap(),
            port: 443,
            protocol: ListenerProtocol::Https,
            tls: Some(ListenerTls {
                certificates: vec![SniCertificate {
                    hostname: None,
                    certificate: "app/used".into(),
                    gateway_listener: "app/gw/https".into(),
                }],
            }),
            virtual_hosts: Vec::new(),
        });
        let identity = Identity { username: "gw".into() };
        let sent = for_gateway(&identity, &snapshot);
        assert_eq!(sent.certificates.keys().collect::<Vec<_>>(), ["app/used"]);
    }

    #[test]
    fn after_is_read_from_the_query() {
        assert_eq!(after_version(Some("after=42")), 42);
        assert_eq!(after_version(Some("x=1&after=7")), 7);
        assert_eq!(after_version(None), 0);
        assert_eq!(after_version(Some("after=junk")), 0);
    }
}

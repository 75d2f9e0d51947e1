//! Kubernetes mode: snapshots come from `weir-controller` instead of a
//! folder (`--controller URL`).
//!
//! The gateway long-polls `GET <URL>/snapshot?after=<version>` with its
//! ServiceAccount token (`--token-file`, re-read on every request because
//! projected tokens rotate). While the controller is away it keeps serving
//! the last snapshot and reconnects with exponential backoff; `/ready` stays
//! 503 until the first snapshot is live. It needs no Kubernetes API access.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use crate::admin::AdminState;

/// First retry delay after a failure; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Connect + TLS handshake limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A poll never takes longer than this (the controller answers within 30 s).
const POLL_LIMIT: Duration = Duration::from_secs(60);

pub struct RemoteSource {
    url: hyper::Uri,
    token_file: Option<PathBuf>,
    tls: Option<tokio_rustls::TlsConnector>,
    bind_ip: std::net::IpAddr,
}

impl RemoteSource {
    pub fn new(
        url: &str,
        token_file: Option<PathBuf>,
        ca_file: Option<PathBuf>,
        bind_ip: std::net::IpAddr,
    ) -> anyhow::Result<Self> {
        let url: hyper::Uri = url.parse().with_context(|| format!("--controller {url:?} is not a URL"))?;
        let tls = match url.scheme_str() {
            Some("http") => None,
            Some("https") => Some(tls_connector(ca_file)?),
            _ => bail!("--controller {url}: use http:// or https://"),
        };
        if url.host().is_none() {
            bail!("--controller {url}: no host");
        }
        Ok(RemoteSource { url, token_file, tls, bind_ip })
    }

    /// Fetches snapshots forever, handing each to the proxy and the admin API.
    pub async fn run(self, proxy: weir_proxy::ProxyHandle, admin: AdminState) {
        let mut version = 0u64;
        let mut backoff = MIN_BACKOFF;
        loop {
            match tokio::time::timeout(POLL_LIMIT, self.fetch(version)).await {
                Ok(Ok(Some(mut snapshot))) => {
                    bind_on(&mut snapshot, self.bind_ip);
                    backoff = MIN_BACKOFF;
                    version = snapshot.version;
                    log::info!(
                        "serving snapshot {} from {} ({} listeners, {} clusters)",
                        snapshot.version,
                        self.url,
                        snapshot.listeners.len(),
                        snapshot.clusters.len()
                    );
                    let snapshot = Arc::new(snapshot);
                    proxy.update(snapshot.clone());
                    admin.publish(snapshot, Vec::new(), Vec::new());
                }
                Ok(Ok(None)) => backoff = MIN_BACKOFF,
                outcome => {
                    let error = match outcome {
                        Ok(Err(e)) => format!("{e:#}"),
                        _ => format!("no answer within {POLL_LIMIT:?}"),
                    };
                    log::warn!(
                        "cannot get a snapshot from the controller {}: {error}; still serving version {version}, \
                         retrying in {backoff:?}",
                        self.url
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One long poll: `Some` new snapshot, or `None` when nothing changed.
    async fn fetch(&self, after: u64) -> anyhow::Result<Option<weir_model::Snapshot>> {
        let host = self.url.host().unwrap_or_default().trim_matches(['[', ']']).to_string();
        let port = self.url.port_u16().unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), port)))
            .await
            .context("connect timed out")?
            .context("connect")?;
        let base = self.url.path().trim_end_matches('/');
        let mut request = hyper::Request::get(format!("{base}/snapshot?after={after}"))
            .header(hyper::header::HOST, self.url.authority().map_or(host.clone(), |a| a.to_string()));
        if let Some(path) = &self.token_file {
            let token = std::fs::read_to_string(path).with_context(|| format!("reading --token-file {}", path.display()))?;
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {}", token.trim()));
        }
        let request = request.body(Empty::<Bytes>::new())?;
        let response = match &self.tls {
            Some(connector) => {
                let name = rustls::pki_types::ServerName::try_from(host.clone()).context("controller host name")?;
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                    .await
                    .context("TLS handshake timed out")?
                    .context("TLS handshake")?;
                send(TokioIo::new(stream), request).await?
            }
            None => send(TokioIo::new(tcp), request).await?,
        };
        let status = response.status();
        let body = response.into_body().collect().await.context("reading the answer")?.to_bytes();
        match status {
            hyper::StatusCode::OK => Ok(Some(serde_json::from_slice(&body).context("decoding the snapshot")?)),
            hyper::StatusCode::NO_CONTENT => Ok(None),
            other => bail!("{other}: {}", String::from_utf8_lossy(&body).trim()),
        }
    }
}

/// The controller translates with every Gateway on `0.0.0.0`; this gateway
/// binds its listeners on `ip` instead. Listeners that would then share a
/// socket keep the first one (the controller never produces those).
fn bind_on(snapshot: &mut weir_model::Snapshot, ip: std::net::IpAddr) {
    let mut seen = std::collections::BTreeSet::new();
    snapshot.listeners.retain_mut(|listener| {
        listener.address = ip;
        listener.name = format!("{ip}:{}", listener.port);
        let first = seen.insert(listener.port);
        if !first {
            log::warn!("snapshot: two listeners on port {} after binding on {ip}; keeping the first", listener.port);
        }
        first
    });
}

async fn send<S>(io: TokioIo<S>, request: hyper::Request<Empty<Bytes>>) -> anyhow::Result<hyper::Response<hyper::body::Incoming>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.context("HTTP handshake")?;
    tokio::spawn(conn);
    sender.send_request(request).await.context("sending the request")
}

fn tls_connector(ca_file: Option<PathBuf>) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let path = ca_file.context("an https:// --controller needs --controller-ca (the CA that signed its certificate)")?;
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&path).with_context(|| format!("reading --controller-ca {}", path.display()))?;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.with_context(|| format!("parsing {}", path.display()))?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_bound_on_the_given_ip() {
        let listener = |address: &str, port| weir_model::Listener {
            name: format!("{address}:{port}"),
            address: address.parse().unwrap(),
            port,
            protocol: weir_model::ListenerProtocol::Http,
            tls: None,
            virtual_hosts: Vec::new(),
        };
        let mut snapshot = weir_model::Snapshot {
            listeners: vec![listener("0.0.0.0", 80), listener("0.0.0.0", 443)],
            ..Default::default()
        };
        bind_on(&mut snapshot, "10.1.2.3".parse().unwrap());
        let names: Vec<_> = snapshot.listeners.iter().map(|l| (l.name.as_str(), l.address.to_string())).collect();
        assert_eq!(names, [("10.1.2.3:80", "10.1.2.3".into()), ("10.1.2.3:443", "10.1.2.3".to_string())]);
    }

    #[test]
    fn https_needs_a_ca_and_other_schemes_are_refused() {
        let any = "0.0.0.0".parse().unwrap();
        assert!(RemoteSource::new("https://weir-controller:9443", None, None, any).is_err());
        assert!(RemoteSource::new("ftp://weir-controller", None, None, any).is_err());
        assert!(RemoteSource::new("http://127.0.0.1:9443", None, None, any).is_ok());
    }
}

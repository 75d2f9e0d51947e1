//! Request mirroring: a copy of the request (after request filters) is sent
//! to the mirror cluster on a separate task; its answer is discarded. A
//! semaphore bounds the copies in flight and a copy is dropped, never queued,
//! when it is exhausted, so mirroring can never slow the primary request.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pingora_http::RequestHeader;
use tokio::sync::Semaphore;
use weir_model::{Cluster, UpstreamProtocol};

use crate::balance::pick_endpoint;

/// Bodies up to this size are mirrored; larger bodies are not buffered and
/// the copy is sent without one.
pub const MIRROR_BODY_LIMIT: usize = 64 * 1024;
const HOP_BY_HOP: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];
const MIRROR_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Mirror {
    client: Client<HttpConnector, Full<Bytes>>,
    /// For h2c clusters (prior knowledge): they may refuse HTTP/1.1.
    h2c_client: Client<HttpConnector, Full<Bytes>>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

/// A request copy waiting for its body.
#[derive(Debug)]
pub struct PendingMirror {
    pub header: RequestHeader,
    pub clusters: Vec<Arc<Cluster>>,
    pub body: Vec<u8>,
    pub too_large: bool,
}

impl PendingMirror {
    /// Buffers a body chunk up to the limit.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.too_large || self.body.len() + chunk.len() > MIRROR_BODY_LIMIT {
            self.too_large = true;
            self.body.clear();
        } else {
            self.body.extend_from_slice(chunk);
        }
    }
}

impl Mirror {
    pub fn new(max_in_flight: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(MIRROR_TIMEOUT));
        Mirror {
            client: Client::builder(TokioExecutor::new()).build(connector.clone()),
            h2c_client: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build(connector),
            permits: Arc::new(Semaphore::new(max_in_flight)),
        }
    }

    /// Sends one copy per cluster. Never waits.
    pub fn send(&self, pending: PendingMirror) {
        let body = if pending.too_large {
            Bytes::new()
        } else {
            Bytes::from(pending.body)
        };
        for cluster in pending.clusters {
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                log::debug!(
                    "mirror to {}: too many copies in flight, dropped",
                    cluster.name
                );
                continue;
            };
            let Some(endpoint) = pick_endpoint(&cluster, rand::random(), &[]) else {
                log::debug!("mirror to {}: no ready endpoint", cluster.name);
                continue;
            };
            let Some(request) = build_request(&pending.header, endpoint, body.clone()) else {
                continue;
            };
            let client = match cluster.protocol {
                UpstreamProtocol::H2c => self.h2c_client.clone(),
                UpstreamProtocol::Http1 | UpstreamProtocol::WebSocket => self.client.clone(),
            };
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(MIRROR_TIMEOUT, client.request(request)).await {
                    Ok(Ok(_response)) => {}
                    Ok(Err(e)) => log::debug!("mirror to {endpoint} failed: {e}"),
                    Err(_) => log::debug!("mirror to {endpoint} timed out"),
                }
            });
        }
    }
}

fn build_request(
    header: &RequestHeader,
    endpoint: std::net::SocketAddr,
    body: Bytes,
) -> Option<http::Request<Full<Bytes>>> {
    let path = header.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let uri: http::Uri = format!("http://{endpoint}{path}").parse().ok()?;
    let mut builder = http::Request::builder()
        .method(header.method.clone())
        .uri(uri);
    for (name, value) in header.headers.iter() {
        // Framing is recomputed for the (possibly dropped) body, and
        // hop-by-hop headers belong to the client's connection (h2 forbids them).
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        builder = builder.header(name, value);
    }
    builder.body(Full::new(body)).ok()
}

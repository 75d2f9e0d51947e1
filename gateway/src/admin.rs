//! The admin API: readiness, object status and a dump of the route model.
//!
//! It binds to localhost by default (see `--admin-address`) because it shows
//! the whole configuration. It is never on the request path.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;

/// What the last reload produced, as the admin API shows it.
#[derive(Default)]
struct Published {
    snapshot: Arc<weir_model::Snapshot>,
    statuses: Vec<weir_controller::ObjectStatus>,
    errors: Vec<weir_controller::Diagnostic>,
}

#[derive(Clone, Default)]
pub struct AdminState {
    published: Arc<RwLock<Arc<Published>>>,
}

#[derive(Serialize)]
struct StatusBody<'a> {
    version: u64,
    objects: &'a [weir_controller::ObjectStatus],
    errors: &'a [weir_controller::Diagnostic],
}

impl AdminState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn publish(
        &self,
        snapshot: Arc<weir_model::Snapshot>,
        statuses: Vec<weir_controller::ObjectStatus>,
        errors: Vec<weir_controller::Diagnostic>,
    ) {
        let next = Arc::new(Published { snapshot, statuses, errors });
        *self.published.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    fn current(&self) -> Arc<Published> {
        self.published.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

pub async fn serve(listener: tokio::net::TcpListener, state: AdminState, proxy: Arc<weir_proxy::ProxyHandle>) {
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                log::warn!("admin API: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(handle(req, &state, &proxy)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn handle(req: Request<Incoming>, state: &AdminState, proxy: &weir_proxy::ProxyHandle) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported\n");
    }
    match req.uri().path() {
        "/ready" => match proxy.served_version() {
            Some(_) => text(StatusCode::OK, "ready\n"),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "no configuration served yet\n"),
        },
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/status" => {
            let published = state.current();
            json(&StatusBody {
                version: published.snapshot.version,
                objects: &published.statuses,
                errors: &published.errors,
            })
        }
        "/config" => json(&redacted(&state.current().snapshot)),
        _ => text(
            StatusCode::NOT_FOUND,
            "unknown path; try /ready, /healthz, /status or /config\n",
        ),
    }
}

/// The snapshot as JSON with every private key replaced: the admin API may be
/// exposed to probes on the pod network, and keys never leave the process.
fn redacted(snapshot: &weir_model::Snapshot) -> serde_json::Value {
    let mut value = serde_json::to_value(snapshot).unwrap_or_default();
    if let Some(certificates) = value.get_mut("certificates").and_then(|c| c.as_object_mut()) {
        for certificate in certificates.values_mut() {
            if let Some(key) = certificate.get_mut("key_pem") {
                *key = serde_json::Value::String("<redacted>".into());
            }
        }
    }
    value
}

fn json<T: Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot encode: {e}\n")),
    }
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

    #[test]
    fn config_dump_never_contains_private_keys() {
        let mut snapshot = weir_model::Snapshot::default();
        snapshot.certificates.insert(
            "ns/cert".into(),
            weir_model::Certificate {
                cert_pem: "-----BEGIN CERTIFICATE-----".into(),
                key_pem: "-----BEGIN PRIVATE KEY-----secret".into(),
            },
        );
        let dump = redacted(&snapshot).to_string();
        assert!(!dump.contains("secret"), "{dump}");
        assert!(dump.contains("<redacted>"), "{dump}");
        assert!(dump.contains("BEGIN CERTIFICATE"), "{dump}");
    }
}

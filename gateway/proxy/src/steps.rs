//! The named steps the `ProxyHttp` adapter calls: routing a request,
//! relaying an upgrade, shaping the upstream request, starting mirrors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use pingora_error::Result;
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use weir_model::{Cluster, Filter};

use crate::balance::pick_endpoint;
use crate::cors;
use crate::decide::{self, backend_of, mirrors, Arrival, Decision};
use crate::errors::ProxyError;
use crate::filters::{apply_request_header_filters, apply_response_header_filters};
use crate::matching::RequestView;
use crate::mirror::PendingMirror;
use crate::request;
use crate::respond::LocalResponse;
use crate::retry::Budget;
use crate::rewrite::modify_path;
use crate::tls::ClientSni;
use crate::upstream::{self};
use crate::websocket;

use crate::proxy::{RequestCtx, WeirProxy, DEFAULT_CONNECT_TIMEOUT};

pub(crate) fn local_addr(session: &Session) -> Option<SocketAddr> {
    session
        .as_downstream()
        .server_addr()
        .and_then(|a| a.as_inet())
        .copied()
}

pub(crate) fn client_ip(session: &Session) -> Option<std::net::IpAddr> {
    session
        .as_downstream()
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// (is TLS, SNI) of the downstream connection.
pub(crate) fn client_tls(session: &Session) -> (bool, Option<String>) {
    let Some(ssl) = session
        .as_downstream()
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
    else {
        return (false, None);
    };
    (
        true,
        ssl.extension.get::<ClientSni>().and_then(|s| s.0.clone()),
    )
}

impl WeirProxy {
    pub(crate) async fn reject(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        e: ProxyError,
    ) -> Result<bool> {
        ctx.failure = Some(e);
        let status = e.outcome().status;
        let mut response = LocalResponse::status(status);
        response.body = Some(Bytes::from(format!("{e}\n")));
        response.write(session, |_| {}).await?;
        Ok(true)
    }

    /// Step: the route and what it does.
    pub(crate) async fn route(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        // The one snapshot load of this request.
        let served = self.table.load_full();
        ctx.served = Some(served.clone());
        let table = &served.table;
        let Some(local) = local_addr(session) else {
            return self.reject(session, ctx, ProxyError::NoRoute).await;
        };
        let (tls, sni) = client_tls(session);
        let req = session.req_header();
        ctx.host = request::routing_host(req);
        let (path, query) = request::path_and_query(req);
        let view = RequestView {
            method: req.method.as_str(),
            path: &path,
            query: query.as_deref(),
            headers: &req.headers,
            port: local.port(),
        };
        let arrival = Arrival {
            local,
            host: &ctx.host,
            tls,
            sni: sni.as_deref(),
            roll: rand::random(),
        };
        let (matched, decision) = decide::decide(table, arrival, &view);
        ctx.path = path;
        if let Some(m) = &matched {
            ctx.scheme = decide::scheme(m.listener.protocol);
        }
        ctx.matched = matched;
        match decision {
            Decision::Reject(e) => self.reject(session, ctx, e).await,
            Decision::Redirect { status, location } => {
                let mut response = LocalResponse::status(status);
                response.headers.push(("location".into(), location));
                // Gateway API: response header modifiers apply to redirects too.
                let filters: Vec<Filter> = ctx.filters().cloned().collect();
                response
                    .write(session, |h| {
                        apply_response_header_filters(h, filters.iter())
                    })
                    .await?;
                Ok(true)
            }
            Decision::Direct { status, body } => {
                let mut response = LocalResponse::status(status);
                response.body = body.map(Bytes::from);
                let filters: Vec<Filter> = ctx.filters().cloned().collect();
                response
                    .write(session, |h| {
                        apply_response_header_filters(h, filters.iter())
                    })
                    .await?;
                Ok(true)
            }
            Decision::Forward { backend, cluster } => {
                ctx.backend = Some(backend);
                // Keyed like `Snapshot::clusters`, i.e. by the backendRef's cluster key.
                let key = ctx
                    .matched
                    .as_ref()
                    .and_then(|m| backend_of(m, ctx.backend))
                    .and_then(|b| b.cluster.as_deref());
                ctx.peer_tls = key.and_then(|k| served.upstream_tls.get(k)).cloned();
                ctx.cluster = Some(cluster);
                let route = ctx.matched.as_ref().map(|m| &m.route().route);
                ctx.budget = route.map(|r| Budget::new(ctx.start, &r.timeouts, r.retry.as_ref()));
                if let Some(policy) = cors::policy(ctx.filters()) {
                    let req = session.req_header();
                    if cors::is_preflight(req.method.as_str(), &req.headers) {
                        // Preflights are answered here; a refused origin gets no CORS headers.
                        let mut response = LocalResponse::status(204);
                        response.headers = cors::preflight_headers(policy, &req.headers);
                        response.write(session, |_| {}).await?;
                        return Ok(true);
                    }
                    ctx.cors_headers = cors::response_headers(policy, &req.headers);
                }
                if session.as_downstream().is_upgrade_req() {
                    return self.upgrade(session, ctx).await;
                }
                Ok(false)
            }
        }
    }

    /// Step: relay an HTTP/1.1 Upgrade (WebSocket) to one endpoint.
    pub(crate) async fn upgrade(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        let (Some(cluster), Some(budget)) = (ctx.cluster.clone(), ctx.budget.as_mut()) else {
            return self.reject(session, ctx, ProxyError::Internal).await;
        };
        budget.attempts = 1;
        let now = Instant::now();
        let (response_timeout, _) = budget.attempt_timeout(now);
        let connect = upstream::connect_timeout(&cluster, budget.remaining(now))
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let Some(endpoint) = pick_endpoint(&cluster, rand::random(), &[]) else {
            return self
                .reject(session, ctx, ProxyError::NoHealthyUpstream)
                .await;
        };
        ctx.upstream = Some(endpoint);
        let mut up = session.req_header().clone();
        self.shape_upstream_request(session, &mut up, ctx);
        match websocket::relay(session, &up, endpoint, connect, response_timeout).await {
            Ok(_) => Ok(true),
            Err(e) => self.reject(session, ctx, e).await,
        }
    }

    /// Step: the request as the backend sees it (origin-form target, Host,
    /// X-Forwarded-*, request header filters, URL rewrite).
    pub(crate) fn shape_upstream_request(
        &self,
        session: &Session,
        up: &mut RequestHeader,
        ctx: &RequestCtx,
    ) {
        let authority = request::request_authority(session.req_header());
        let (path, query) = request::path_and_query(session.req_header());
        let mut new_path: Option<String> = None;
        if up.uri.authority().is_some() || !up.raw_path().starts_with(b"/") {
            new_path = Some(path.clone());
        }
        if let Some(authority) = authority {
            let _ = up.insert_header(http::header::HOST, authority);
        }
        if let Some(ip) = client_ip(session) {
            let xff = match request::header_str(up, "x-forwarded-for") {
                Some(prev) => format!("{prev}, {ip}"),
                None => ip.to_string(),
            };
            let _ = up.insert_header("x-forwarded-for", xff);
        }
        let _ = up.insert_header("x-forwarded-proto", ctx.scheme);
        let prefix = ctx
            .matched
            .as_ref()
            .and_then(|m| m.route().matcher.prefix());
        for filter in ctx.filters() {
            match filter {
                Filter::RequestHeaders(_) => {
                    apply_request_header_filters(up, std::iter::once(filter))
                }
                Filter::UrlRewrite {
                    hostname,
                    path: modifier,
                } => {
                    if let Some(host) = hostname {
                        let _ = up.insert_header(http::header::HOST, host.as_str());
                    }
                    if let Some(modifier) = modifier {
                        new_path = Some(modify_path(&path, modifier, prefix));
                    }
                }
                Filter::ResponseHeaders(_) | Filter::Mirror { .. } | Filter::Cors(_) => {}
            }
        }
        if let Some(new_path) = new_path {
            let target = match &query {
                Some(q) => format!("{new_path}?{q}"),
                None => new_path,
            };
            match target.parse::<http::Uri>() {
                Ok(uri) => up.set_uri(uri),
                Err(e) => log::warn!("rewritten target {target:?} is not a valid URI: {e}"),
            }
        }
    }

    /// Step: start the mirror copies (once per request, after filters).
    pub(crate) fn start_mirrors(
        &self,
        session: &Session,
        up: &RequestHeader,
        ctx: &mut RequestCtx,
    ) {
        if ctx.mirror_started {
            return;
        }
        ctx.mirror_started = true;
        // The snapshot this request started with, not the newest one.
        let Some(served) = ctx.served.clone() else {
            return;
        };
        let table = &served.table;
        let clusters: Vec<Arc<Cluster>> = mirrors(ctx.filters())
            .filter(|(_, percent)| *percent >= 100.0 || rand::random::<f64>() * 100.0 < *percent)
            .filter_map(|(name, _)| table.cluster(name).cloned())
            .collect();
        if clusters.is_empty() {
            return;
        }
        let pending = PendingMirror {
            header: up.clone(),
            clusters,
            body: Vec::new(),
            too_large: false,
        };
        if request::has_body(session.req_header()) {
            ctx.mirror = Some(pending);
        } else {
            self.mirror.send(pending);
        }
    }
}

//! The Pingora `ProxyHttp` adapter: each phase calls the named steps of the
//! other modules on the request's snapshot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, ProxyWarnLogContext, Session};
use weir_model::{Cluster, Filter};

use crate::access_log::{self, AccessRecord};
use crate::balance::pick_endpoint;
use crate::cors;
use crate::decide::{self, backend_of, mirrors, Arrival, Decision, Matched};
use crate::errors::{to_pingora, ProxyError, ResponseFlag};
use crate::filters::{
    apply_request_header_filters, apply_response_header_filters, request_filters,
};
use crate::matching::RequestView;
use crate::mirror::{Mirror, PendingMirror};
use crate::request;
use crate::respond::LocalResponse;
use crate::retry::Budget;
use crate::rewrite::modify_path;
use crate::table::RouteTable;
use crate::tls::ClientSni;
use crate::upstream::{self, AttemptLimits};
use crate::upstream_tls::PeerTls;
use crate::websocket;
use std::collections::HashMap;

/// Default TCP connect timeout when a cluster sets none.
const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One compiled snapshot: the route table and the upstream TLS material.
#[derive(Debug, Default)]
pub struct Served {
    pub table: RouteTable,
    /// By cluster name.
    pub upstream_tls: HashMap<String, Arc<PeerTls>>,
}

pub struct WeirProxy {
    pub(crate) table: Arc<ArcSwap<Served>>,
    pub(crate) mirror: Mirror,
}

/// Per-request state. The `Arc`s pin the snapshot the request started with.
pub struct RequestCtx {
    start: Instant,
    host: String,
    path: String,
    scheme: &'static str,
    matched: Option<Matched>,
    backend: Option<usize>,
    cluster: Option<Arc<Cluster>>,
    budget: Option<Budget>,
    tried: Vec<SocketAddr>,
    upstream: Option<SocketAddr>,
    /// The current attempt's timeout is the overall deadline.
    attempt_by_deadline: bool,
    failure: Option<ProxyError>,
    mirror: Option<PendingMirror>,
    mirror_started: bool,
    /// CORS headers for the backend's response (allowed `Origin` only).
    cors_headers: Vec<(String, String)>,
    peer_tls: Option<Arc<PeerTls>>,
}

impl RequestCtx {
    fn filters(&self) -> impl Iterator<Item = &Filter> {
        self.matched
            .iter()
            .flat_map(|m| request_filters(&m.route().route, backend_of(m, self.backend)))
    }
}

fn local_addr(session: &Session) -> Option<SocketAddr> {
    session
        .as_downstream()
        .server_addr()
        .and_then(|a| a.as_inet())
        .copied()
}

fn client_ip(session: &Session) -> Option<std::net::IpAddr> {
    session
        .as_downstream()
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// (is TLS, SNI) of the downstream connection.
fn client_tls(session: &Session) -> (bool, Option<String>) {
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
    async fn reject(
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
    async fn route(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let served = self.table.load_full();
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
                ctx.peer_tls = served.upstream_tls.get(&cluster.name).cloned();
                ctx.backend = Some(backend);
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
    async fn upgrade(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
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
    fn shape_upstream_request(&self, session: &Session, up: &mut RequestHeader, ctx: &RequestCtx) {
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
    fn start_mirrors(&self, session: &Session, up: &RequestHeader, ctx: &mut RequestCtx) {
        if ctx.mirror_started {
            return;
        }
        ctx.mirror_started = true;
        let Some(matched) = &ctx.matched else { return };
        let served = self.table.load();
        let table = &served.table;
        let clusters: Vec<Arc<Cluster>> = mirrors(ctx.filters())
            .filter(|(_, percent)| *percent >= 100.0 || rand::random::<f64>() * 100.0 < *percent)
            .filter_map(|(name, _)| table.cluster(name).cloned())
            .collect();
        let _ = matched;
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

#[async_trait]
impl ProxyHttp for WeirProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            start: Instant::now(),
            host: String::new(),
            path: String::new(),
            scheme: "http",
            matched: None,
            backend: None,
            cluster: None,
            budget: None,
            tried: Vec::new(),
            upstream: None,
            attempt_by_deadline: false,
            failure: None,
            mirror: None,
            mirror_started: false,
            cors_headers: Vec::new(),
            peer_tls: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        self.route(session, ctx).await
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let (Some(budget), Some(cluster)) = (ctx.budget.as_mut(), ctx.cluster.clone()) else {
            ctx.failure = Some(ProxyError::Internal);
            return Err(to_pingora(ProxyError::Internal));
        };
        if let Some(wait) = budget.backoff(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let now = Instant::now();
        if budget.expired(now) {
            ctx.failure = Some(ProxyError::RequestTimeout);
            return Err(to_pingora(ProxyError::RequestTimeout));
        }
        budget.attempts += 1;
        let Some(endpoint) = pick_endpoint(&cluster, rand::random(), &ctx.tried) else {
            ctx.failure = Some(ProxyError::NoHealthyUpstream);
            return Err(to_pingora(ProxyError::NoHealthyUpstream));
        };
        ctx.tried.push(endpoint);
        ctx.upstream = Some(endpoint);
        let (read_timeout, by_deadline) = budget.attempt_timeout(now);
        ctx.attempt_by_deadline = by_deadline;
        let connect = upstream::connect_timeout(&cluster, budget.remaining(now))
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let limits = AttemptLimits {
            read_timeout,
            connect_timeout: Some(connect),
        };
        ctx.failure = None;
        Ok(upstream::peer(
            &cluster,
            ctx.peer_tls.as_deref(),
            endpoint,
            session.as_downstream().is_upgrade_req(),
            limits,
        ))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.shape_upstream_request(session, up, ctx);
        self.start_mirrors(session, up, ctx);
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(pending) = ctx.mirror.as_mut() {
            if let Some(chunk) = body {
                pending.push(chunk);
            }
            if end_of_stream {
                if let Some(pending) = ctx.mirror.take() {
                    self.mirror.send(pending);
                }
            }
        }
        Ok(())
    }

    /// Retry on a listed status: the response has not been written
    /// downstream yet, so raising an error here makes Pingora try again.
    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = resp.status.as_u16();
        let kind = ProxyError::RetryStatus(status);
        let retry = ctx
            .budget
            .as_ref()
            .is_some_and(|b| b.may_retry(kind, Instant::now()))
            && session.as_downstream().response_written().is_none()
            && !session.as_downstream().retry_buffer_truncated();
        if retry {
            ctx.failure = Some(kind);
            let mut e = Error::explain(ErrorType::HTTPStatus(status), "retrying on backend status");
            e.set_retry(true);
            return Err(e);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        for (name, value) in &ctx.cors_headers {
            let _ = resp.insert_header(name.clone(), value.clone());
        }
        apply_response_header_filters(resp, ctx.filters());
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let mut kind = ProxyError::from_pingora(&e);
        if ctx.attempt_by_deadline && matches!(e.etype(), ErrorType::ConnectTimedout) {
            kind = ProxyError::RequestTimeout;
        }
        ctx.failure = Some(kind);
        let retry = ctx
            .budget
            .as_ref()
            .is_some_and(|b| b.may_retry(kind, Instant::now()));
        e.set_retry(retry);
        e
    }

    /// Overridden to apply the route's retry policy; the reuse decision is
    /// always taken first (an undecided `ReusedOnly` panics in Pingora).
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("peer: {peer}"));
        e.retry.decide_reuse(client_reused);
        let mut kind = match ctx.failure {
            Some(status @ ProxyError::RetryStatus(_)) => status,
            _ => ProxyError::from_pingora(&e),
        };
        if kind == ProxyError::UpstreamTimeout && ctx.attempt_by_deadline {
            kind = ProxyError::RequestTimeout;
        }
        ctx.failure = Some(kind);
        let downstream = session.as_downstream();
        let replayable =
            downstream.response_written().is_none() && !downstream.retry_buffer_truncated();
        if !replayable {
            e.set_retry(false);
        } else if ctx
            .budget
            .as_ref()
            .is_some_and(|b| b.may_retry(kind, Instant::now()))
        {
            e.set_retry(true);
        } else if !session.req_header().method.is_idempotent() {
            e.set_retry(false);
        }
        // Otherwise Pingora's decision stands: retry once when a pooled
        // connection turned out to be closed.
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let kind = ctx.failure.unwrap_or_else(|| ProxyError::from_pingora(e));
        ctx.failure = Some(kind);
        let status = if session.as_downstream().response_written().is_some() {
            0
        } else {
            kind.outcome().status
        };
        if status > 0 {
            let mut response = LocalResponse::status(status);
            response.body = Some(Bytes::from(format!("{kind}\n")));
            if let Err(write_error) = response.write(session, |_| {}).await {
                log::debug!("writing the {status} error response failed: {write_error}");
            }
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        ctx: &RequestCtx,
        _e: &Error,
        _c: ProxyWarnLogContext,
    ) -> bool {
        // Retries on a listed status are policy, not a problem worth a warning.
        matches!(ctx.failure, Some(ProxyError::RetryStatus(_)))
    }

    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, _e: &Error) -> bool {
        // The access log already carries the status and flag.
        ctx.failure.is_some()
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session
            .as_downstream()
            .response_written()
            .map_or(0, |r| r.status.as_u16());
        let flag = ctx.failure.map_or(ResponseFlag::None, |f| f.outcome().flag);
        let req = session.req_header();
        access_log::log(&AccessRecord {
            method: req.method.as_str(),
            host: &ctx.host,
            path: &ctx.path,
            status,
            route: ctx
                .matched
                .as_ref()
                .map(|m| m.route().display_name.as_str()),
            upstream: ctx.upstream,
            flag,
            attempts: ctx.budget.as_ref().map_or(0, |b| b.attempts),
            duration: ctx.start.elapsed(),
        });
    }
}

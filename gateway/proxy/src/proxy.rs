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
use crate::decide::{backend_of, Matched};
use crate::errors::{to_pingora, ProxyError, ResponseFlag};
use crate::filters::{apply_response_header_filters, request_filters};
use crate::mirror::{Mirror, PendingMirror};
use crate::respond::LocalResponse;
use crate::retry::Budget;
use crate::table::RouteTable;
use crate::upstream::{self, AttemptLimits};
use crate::upstream_tls::PeerTls;
use std::collections::HashMap;

/// Default TCP connect timeout when a cluster sets none.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One compiled snapshot: the route table and the upstream TLS material.
#[derive(Debug, Default)]
pub struct Served {
    pub table: RouteTable,
    /// By `Snapshot::clusters` key.
    pub upstream_tls: HashMap<String, Arc<PeerTls>>,
}

pub struct WeirProxy {
    pub(crate) table: Arc<ArcSwap<Served>>,
    pub(crate) mirror: Mirror,
}

/// Per-request state. The `Arc`s pin the snapshot the request started with.
pub struct RequestCtx {
    pub(crate) served: Option<Arc<Served>>,
    pub(crate) start: Instant,
    pub(crate) host: String,
    pub(crate) path: String,
    pub(crate) scheme: &'static str,
    pub(crate) matched: Option<Matched>,
    pub(crate) backend: Option<usize>,
    pub(crate) cluster: Option<Arc<Cluster>>,
    pub(crate) budget: Option<Budget>,
    pub(crate) tried: Vec<SocketAddr>,
    pub(crate) upstream: Option<SocketAddr>,
    /// The current attempt's timeout is the overall deadline.
    pub(crate) attempt_by_deadline: bool,
    pub(crate) failure: Option<ProxyError>,
    pub(crate) mirror: Option<PendingMirror>,
    pub(crate) mirror_started: bool,
    /// CORS headers for the backend's response (allowed `Origin` only).
    pub(crate) cors_headers: Vec<(String, String)>,
    pub(crate) peer_tls: Option<Arc<PeerTls>>,
}

impl RequestCtx {
    pub(crate) fn filters(&self) -> impl Iterator<Item = &Filter> {
        self.matched
            .iter()
            .flat_map(|m| request_filters(&m.route().route, backend_of(m, self.backend)))
    }
}

#[async_trait]
impl ProxyHttp for WeirProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            served: None,
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
        let retried_out = ctx.budget.as_ref().is_some_and(|b| {
            b.attempts > 1 && b.policy.as_ref().is_some_and(|p| p.codes.contains(&status))
        });
        let flag = match ctx.failure {
            Some(failure) => failure.outcome().flag,
            // The last attempt's listed status passed through: retries ran out.
            None if retried_out => ResponseFlag::UpstreamRetryLimitExceeded,
            None => ResponseFlag::None,
        };
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

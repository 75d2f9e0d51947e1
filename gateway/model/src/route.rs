//! Virtual hosts, routes, matches, actions and filters.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A hostname pattern and the routes served for it on one socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualHost {
    /// `example.com` (exact), `*.example.com` (wildcard: one or more labels
    /// in front of `example.com`), or `*` (any host).
    pub hostname: String,
    /// The Gateway API listener (`ns/gateway/listener`) or Istio server this
    /// host belongs to; used for misdirected-request detection and in logs.
    pub gateway_listener: String,
    /// Routes in precedence order; the first whose [`RouteMatch`] matches wins.
    pub routes: Vec<Route>,
}

/// Where a route came from, for logs, metrics and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSource {
    /// `HTTPRoute`, `GRPCRoute`, `VirtualService`, ...
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Index of the rule inside the object.
    pub rule: usize,
    /// The rule's name, when the API gives one.
    pub rule_name: Option<String>,
}

impl RouteSource {
    /// `kind/namespace/name/rule`, as used in access logs.
    pub fn display_name(&self) -> String {
        format!("{}/{}/{}/{}", self.kind, self.namespace, self.name, self.rule)
    }
}

/// One match block of one rule, with what to do when it matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub source: RouteSource,
    pub matcher: RouteMatch,
    pub action: RouteAction,
    /// Filters applied to every request of this route, in order.
    pub filters: Vec<Filter>,
    pub timeouts: Timeouts,
    pub retry: Option<RetryPolicy>,
}

/// All conditions must hold (AND).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// Upper-case HTTP method, e.g. `GET`.
    pub method: Option<String>,
    pub headers: Vec<HeaderMatch>,
    pub query: Vec<QueryMatch>,
    /// Only match requests that arrived on this port (Istio `port`,
    /// Gateway API parentRef port are settled by the translator).
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PathMatch {
    /// The whole path (without query) equals the value.
    Exact(String),
    /// Path-segment prefix: `/foo` matches `/foo`, `/foo/` and `/foo/bar`,
    /// not `/foobar`. A trailing `/` in the value is ignored.
    Prefix(String),
    /// RE2-style regular expression that must match the whole path.
    Regex(String),
}

impl Default for PathMatch {
    fn default() -> Self {
        PathMatch::Prefix("/".to_string())
    }
}

/// Header names are matched case-insensitively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeaderMatch {
    pub name: String,
    pub value: StringMatch,
    /// Match when the condition does NOT hold (Istio `withoutHeaders`).
    #[serde(default)]
    pub invert: bool,
}

/// Query parameter names are matched case-sensitively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryMatch {
    pub name: String,
    pub value: StringMatch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    /// Must match the whole value.
    Regex(String),
    /// Present, any value.
    Present,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RouteAction {
    /// Proxy to one of the backends, chosen by weight.
    Forward(Vec<WeightedBackend>),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer directly (e.g. 500 when a rule has no valid backend).
    DirectResponse { status: u16, body: Option<String> },
}

/// One backendRef. A share of traffic whose backend is invalid is answered
/// with HTTP 500, as the Gateway API requires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedBackend {
    /// Key into [`crate::Snapshot::clusters`]; `None` when the reference is
    /// invalid (missing Service, refused by ReferenceGrant, unknown kind).
    pub cluster: Option<String>,
    /// Relative weight; 0 receives no traffic.
    pub weight: u32,
    /// Filters for requests sent to this backend only.
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redirect {
    /// `http` or `https`; `None` keeps the request's scheme.
    pub scheme: Option<String>,
    /// `None` keeps the request's host.
    pub hostname: Option<String>,
    pub path: Option<PathModifier>,
    /// `None`: derived per the Gateway API rules (scheme default port
    /// omitted, otherwise the listener port).
    pub port: Option<u16>,
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PathModifier {
    ReplaceFullPath(String),
    /// Replace the part matched by the route's `PathMatch::Prefix`.
    ReplacePrefixMatch(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Filter {
    RequestHeaders(HeaderModifier),
    ResponseHeaders(HeaderModifier),
    UrlRewrite {
        hostname: Option<String>,
        path: Option<PathModifier>,
    },
    /// Send a copy of the request to another cluster; its answer is discarded.
    Mirror {
        /// `None` when the mirror's backend reference is invalid (no copy sent).
        cluster: Option<String>,
        /// Share of requests mirrored, 0.0..=100.0.
        percent: f64,
    },
    Cors(CorsPolicy),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeaderModifier {
    /// Replace (or add) these headers.
    pub set: Vec<(String, String)>,
    /// Append these values (comma-joined with existing ones).
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CorsPolicy {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeouts {
    /// From the request's arrival to the last byte of the response header;
    /// covers all retries. Exceeding it answers 504.
    pub request: Option<Duration>,
    /// Per attempt to a backend. Exceeding it answers 504 (or retries).
    pub backend_request: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Response codes that are retried.
    pub codes: Vec<u16>,
    /// Retry when the connection to the backend fails or resets.
    pub on_connect_failure: bool,
    /// Wait between attempts.
    pub backoff: Option<Duration>,
    /// Per-try timeout (Istio perTryTimeout); `None` uses `backend_request`.
    pub per_try_timeout: Option<Duration>,
}

/// Free-form labels attached by translators (for metrics/logging).
pub type Labels = BTreeMap<String, String>;

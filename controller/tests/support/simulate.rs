//! A reference reading of the route model for tests: which route of a
//! snapshot answers a request, following the model's documented rules
//! (virtual host by exact name, longest wildcard, then `*`, no fallback;
//! routes walked in order, first match wins).

use std::net::IpAddr;

use weir_model::{PathMatch, RouteAction, Snapshot, StringMatch};

/// What the gateway would do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No listener on that address and port.
    NoListener,
    /// 404: no virtual host or no route matches.
    NotFound,
    /// Forwarded: (cluster or None for an invalid share, weight) per backend
    /// with weight, plus the matching route's `kind/ns/name/rule`.
    Forward {
        route: String,
        backends: Vec<(Option<String>, u32)>,
    },
    /// Answered directly (500 for a rule without valid backends) or redirected.
    Status { route: String, status: u16 },
}

impl Outcome {
    /// The HTTP status a single-backend answer would have (200 when forwarded
    /// to a valid cluster).
    pub fn status(&self) -> u16 {
        match self {
            Outcome::NoListener => 0,
            Outcome::NotFound => 404,
            Outcome::Forward { backends, .. } => match backends.as_slice() {
                [(Some(_), _)] => 200,
                [(None, _)] => 500,
                _ => 200,
            },
            Outcome::Status { status, .. } => *status,
        }
    }
}

pub struct Request<'a> {
    pub address: IpAddr,
    pub port: u16,
    pub host: &'a str,
    pub method: &'a str,
    /// Path with optional query.
    pub path: &'a str,
    pub headers: &'a [(String, String)],
}

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some("") => true,
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => pattern == host,
    }
}

fn full_match(re: &str, value: &str) -> bool {
    regex::Regex::new(&format!("^(?:{re})$")).is_ok_and(|r| r.is_match(value))
}

fn string_matches(m: &StringMatch, value: Option<&str>) -> bool {
    match (m, value) {
        (StringMatch::Exact(e), Some(v)) => e == v,
        (StringMatch::Prefix(p), Some(v)) => v.starts_with(p.as_str()),
        (StringMatch::Regex(re), Some(v)) => full_match(re, v),
        (StringMatch::Present, Some(_)) => true,
        (_, None) => false,
    }
}

fn path_matches(m: &PathMatch, path: &str) -> bool {
    match m {
        PathMatch::Exact(e) => e == path,
        PathMatch::Prefix(p) => {
            let p = p.trim_end_matches('/');
            path == p || path.starts_with(&format!("{p}/")) || p.is_empty()
        }
        PathMatch::Regex(re) => full_match(re, path),
    }
}

pub fn route(snapshot: &Snapshot, req: &Request<'_>) -> Outcome {
    let Some(listener) = snapshot
        .listeners
        .iter()
        .find(|l| l.address == req.address && l.port == req.port)
    else {
        return Outcome::NoListener;
    };
    let host = req
        .host
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let vhost = listener
        .virtual_hosts
        .iter()
        .filter(|v| host_matches(&v.hostname, &host))
        .max_by_key(|v| match v.hostname.as_str() {
            "*" => (0, 0),
            h if h.starts_with('*') => (1, h.len()),
            h => (2, h.len()),
        });
    let Some(vhost) = vhost else {
        return Outcome::NotFound;
    };
    let (path, query) = req.path.split_once('?').unwrap_or((req.path, ""));
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    for r in &vhost.routes {
        let m = &r.matcher;
        let ok = path_matches(&m.path, path)
            && m.method.as_deref().is_none_or(|x| x == req.method)
            && m.headers
                .iter()
                .all(|h| string_matches(&h.value, header(&h.name)) != h.invert)
            && m.query.iter().all(|q| {
                string_matches(
                    &q.value,
                    params.iter().find(|(n, _)| *n == q.name).map(|(_, v)| *v),
                )
            });
        if !ok {
            continue;
        }
        let route = r.source.display_name();
        return match &r.action {
            RouteAction::Forward(backends) => Outcome::Forward {
                route,
                backends: backends
                    .iter()
                    .filter(|b| b.weight > 0)
                    .map(|b| (b.cluster.clone(), b.weight))
                    .collect(),
            },
            RouteAction::Redirect(redirect) => Outcome::Status {
                route,
                status: redirect.status,
            },
            RouteAction::DirectResponse { status, .. } => Outcome::Status {
                route,
                status: *status,
            },
        };
    }
    Outcome::NotFound
}

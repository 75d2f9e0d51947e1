//! CORS (Gateway API `HTTPCORSFilter`): preflight answers and the headers
//! added to actual responses. Pure: works on `http::HeaderMap`.

use http::HeaderMap;
use weir_model::{CorsPolicy, Filter};

pub fn policy<'a>(mut filters: impl Iterator<Item = &'a Filter>) -> Option<&'a CorsPolicy> {
    filters.find_map(|f| match f {
        Filter::Cors(policy) => Some(policy),
        _ => None,
    })
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `*` allows any origin; `https://*.bar.com` allows any number of labels in
/// place of the `*`; anything else must equal the origin.
pub fn origin_allowed(policy: &CorsPolicy, origin: &str) -> bool {
    policy
        .allow_origins
        .iter()
        .any(|allowed| match allowed.split_once('*') {
            None => allowed == origin,
            Some(("", "")) => true,
            Some((prefix, suffix)) => {
                origin.len() > prefix.len() + suffix.len()
                    && origin.starts_with(prefix)
                    && origin.ends_with(suffix)
            }
        })
}

/// A preflight is an OPTIONS request with `Origin` and
/// `Access-Control-Request-Method`.
pub fn is_preflight(method: &str, headers: &HeaderMap) -> bool {
    method == "OPTIONS"
        && headers.contains_key("origin")
        && headers.contains_key("access-control-request-method")
}

/// Headers of the preflight answer; empty when the origin is not allowed
/// (the browser then refuses the actual request).
pub fn preflight_headers(policy: &CorsPolicy, headers: &HeaderMap) -> Vec<(String, String)> {
    let Some(origin) = header(headers, "origin").filter(|o| origin_allowed(policy, o)) else {
        return Vec::new();
    };
    let mut out = vec![(
        "access-control-allow-origin".to_string(),
        origin.to_string(),
    )];
    let requested_method = header(headers, "access-control-request-method").unwrap_or_default();
    let methods = if policy.allow_methods.iter().any(|m| m == "*") {
        // Echoing the requested method is valid with or without credentials.
        requested_method.to_string()
    } else {
        policy.allow_methods.join(", ")
    };
    if !methods.is_empty() {
        out.push(("access-control-allow-methods".into(), methods));
    }
    let allow_headers = if policy.allow_headers.iter().any(|h| h == "*") {
        header(headers, "access-control-request-headers")
            .unwrap_or_default()
            .to_string()
    } else {
        policy.allow_headers.join(", ")
    };
    if !allow_headers.is_empty() {
        out.push(("access-control-allow-headers".into(), allow_headers));
    }
    out.extend(common(policy));
    if let Some(max_age) = policy.max_age {
        out.push((
            "access-control-max-age".into(),
            max_age.as_secs().to_string(),
        ));
    }
    out
}

/// Headers added to the backend's response for an allowed `Origin`.
pub fn response_headers(policy: &CorsPolicy, headers: &HeaderMap) -> Vec<(String, String)> {
    let Some(origin) = header(headers, "origin").filter(|o| origin_allowed(policy, o)) else {
        return Vec::new();
    };
    let mut out = vec![(
        "access-control-allow-origin".to_string(),
        origin.to_string(),
    )];
    out.extend(common(policy));
    out
}

fn common(policy: &CorsPolicy) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !policy.expose_headers.is_empty() {
        out.push((
            "access-control-expose-headers".into(),
            policy.expose_headers.join(", "),
        ));
    }
    if policy.allow_credentials {
        out.push(("access-control-allow-credentials".into(), "true".into()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cors_1() -> CorsPolicy {
        CorsPolicy {
            allow_origins: vec!["https://www.foo.com".into(), "https://*.bar.com".into()],
            allow_methods: vec!["GET".into(), "OPTIONS".into()],
            allow_headers: vec!["x-header-1".into(), "x-header-2".into()],
            expose_headers: vec!["x-header-3".into(), "x-header-4".into()],
            allow_credentials: true,
            max_age: Some(Duration::from_secs(3600)),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    fn get<'a>(out: &'a [(String, String)], name: &str) -> Option<&'a str> {
        out.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn http_route_cors_origins() {
        let p = cors_1();
        assert!(origin_allowed(&p, "https://www.foo.com"));
        assert!(origin_allowed(&p, "https://www.bar.com"));
        assert!(origin_allowed(&p, "https://xpto.www.bar.com"));
        assert!(!origin_allowed(&p, "https://foobar.com"));
        assert!(!origin_allowed(&p, "https://.bar.com"));
        let any = CorsPolicy {
            allow_origins: vec!["*".into()],
            ..Default::default()
        };
        assert!(origin_allowed(&any, "https://foobar.com:12345"));
    }

    #[test]
    fn http_route_cors_preflight() {
        let req = headers(&[
            ("origin", "https://www.foo.com"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-header-1, x-header-2"),
        ]);
        assert!(is_preflight("OPTIONS", &req));
        let out = preflight_headers(&cors_1(), &req);
        assert_eq!(
            get(&out, "access-control-allow-origin"),
            Some("https://www.foo.com")
        );
        assert_eq!(
            get(&out, "access-control-allow-methods"),
            Some("GET, OPTIONS")
        );
        assert_eq!(
            get(&out, "access-control-allow-headers"),
            Some("x-header-1, x-header-2")
        );
        assert_eq!(
            get(&out, "access-control-expose-headers"),
            Some("x-header-3, x-header-4")
        );
        assert_eq!(get(&out, "access-control-max-age"), Some("3600"));
        assert_eq!(get(&out, "access-control-allow-credentials"), Some("true"));

        let denied = headers(&[
            ("origin", "https://foobar.com"),
            ("access-control-request-method", "GET"),
        ]);
        assert!(preflight_headers(&cors_1(), &denied).is_empty());
    }

    #[test]
    fn http_route_cors_wildcards_echo_the_request() {
        let p = CorsPolicy {
            allow_origins: vec!["*".into()],
            allow_methods: vec!["*".into()],
            allow_headers: vec!["*".into()],
            ..Default::default()
        };
        let req = headers(&[
            ("origin", "https://other.foo.com"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-header-1, x-header-2"),
        ]);
        let out = preflight_headers(&p, &req);
        assert_eq!(get(&out, "access-control-allow-methods"), Some("PUT"));
        assert_eq!(
            get(&out, "access-control-allow-headers"),
            Some("x-header-1, x-header-2")
        );
        assert_eq!(get(&out, "access-control-allow-credentials"), None);
        let simple = response_headers(&p, &headers(&[("origin", "https://other.foo.com")]));
        assert_eq!(
            get(&simple, "access-control-allow-origin"),
            Some("https://other.foo.com")
        );
    }
}

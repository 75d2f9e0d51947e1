//! Path rewriting and redirect `Location` construction, per the Gateway API
//! `HTTPPathModifier` and `HTTPRequestRedirectFilter` rules. Pure.

use weir_model::{PathModifier, Redirect};

/// Applies a path modifier to `path` (no query). `matched_prefix` is the
/// route's `PathPrefix` value without its trailing `/` (`None` when the route
/// did not match by prefix; `ReplacePrefixMatch` then replaces the full path,
/// which the translator should have rejected anyway).
pub fn modify_path(path: &str, modifier: &PathModifier, matched_prefix: Option<&str>) -> String {
    match modifier {
        PathModifier::ReplaceFullPath(full) => full.clone(),
        PathModifier::ReplacePrefixMatch(replacement) => {
            let rest = match matched_prefix {
                // The prefix matched segment-wise, so `rest` is empty or starts with `/`.
                Some(prefix) => path.get(prefix.len()..).unwrap_or(""),
                None => "",
            };
            // `/prefix/one` + ReplacePrefixMatch `/one`: `/prefix/one/two` → `/one/two`;
            // a replacement of `/` strips the prefix: `/strip-prefix/three` → `/three`,
            // `/strip-prefix` → `/`.
            let mut out = replacement.trim_end_matches('/').to_string();
            if rest.is_empty() && replacement.ends_with('/') && !out.is_empty() {
                out.push('/');
            }
            out.push_str(rest);
            if out.is_empty() {
                out.push('/');
            }
            out
        }
    }
}

/// The request as a redirect sees it.
#[derive(Debug, Clone, Copy)]
pub struct RedirectInput<'a> {
    /// `http` or `https`, from the listener.
    pub scheme: &'a str,
    /// Request host without port.
    pub host: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Port of the listener the request arrived on.
    pub listener_port: u16,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Builds the `Location` value of a redirect.
///
/// Port rules (Gateway API `HTTPRequestRedirectFilter.port`): an explicit port
/// wins; otherwise, when the filter sets a scheme, its well-known port; otherwise
/// the listener port. The port is omitted when it is the default for the
/// resulting scheme.
pub fn redirect_location(
    redirect: &Redirect,
    req: &RedirectInput<'_>,
    matched_prefix: Option<&str>,
) -> String {
    let scheme = redirect
        .scheme
        .as_deref()
        .unwrap_or(req.scheme)
        .to_ascii_lowercase();
    let host = redirect.hostname.as_deref().unwrap_or(req.host);
    let port = match (redirect.port, &redirect.scheme) {
        (Some(port), _) => port,
        (None, Some(s)) => default_port(s).unwrap_or(req.listener_port),
        (None, None) => req.listener_port,
    };
    let path = match &redirect.path {
        Some(modifier) => modify_path(req.path, modifier, matched_prefix),
        None => req.path.to_string(),
    };
    let mut location = format!("{scheme}://{host}");
    if default_port(&scheme) != Some(port) {
        location.push_str(&format!(":{port}"));
    }
    location.push_str(&path);
    if let Some(q) = req.query.filter(|q| !q.is_empty()) {
        location.push('?');
        location.push_str(q);
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(p: &str) -> PathModifier {
        PathModifier::ReplaceFullPath(p.into())
    }
    fn prefix(p: &str) -> PathModifier {
        PathModifier::ReplacePrefixMatch(p.into())
    }

    #[test]
    fn http_route_rewrite_path_cases() {
        // (request path, route prefix, modifier, expected) from HTTPRouteRewritePath.
        let cases = [
            ("/prefix/one/two", "/prefix/one", prefix("/one"), "/one/two"),
            (
                "/strip-prefix/three",
                "/strip-prefix",
                prefix("/"),
                "/three",
            ),
            ("/strip-prefix", "/strip-prefix", prefix("/"), "/"),
            ("/full/one/two", "/full/one", full("/one"), "/one"),
            (
                "/full/rewrite-path-and-modify-headers/test",
                "/full/rewrite-path-and-modify-headers",
                full("/test"),
                "/test",
            ),
            (
                "/prefix/rewrite-path-and-modify-headers/one",
                "/prefix/rewrite-path-and-modify-headers",
                prefix("/prefix"),
                "/prefix/one",
            ),
            ("/foo/", "/foo", prefix("/bar"), "/bar/"),
            ("/foo", "/foo", prefix("/bar/"), "/bar/"),
            ("/foo/x", "/foo", prefix("/bar/"), "/bar/x"),
            ("/anything", "", prefix("/new"), "/new/anything"),
        ];
        for (path, pfx, modifier, want) in cases {
            assert_eq!(
                modify_path(path, &modifier, Some(pfx)),
                want,
                "{path} {modifier:?}"
            );
        }
    }

    fn redirect(
        scheme: Option<&str>,
        host: Option<&str>,
        port: Option<u16>,
        path: Option<PathModifier>,
    ) -> Redirect {
        Redirect {
            scheme: scheme.map(Into::into),
            hostname: host.map(Into::into),
            path,
            port,
            status: 302,
        }
    }

    #[test]
    fn http_request_redirect_location_port_rules() {
        let on = |scheme, listener_port| RedirectInput {
            scheme,
            host: "example.org",
            path: "/a",
            query: None,
            listener_port,
        };
        let cases = [
            // scheme only: the scheme's well-known port, omitted.
            (
                redirect(Some("https"), None, None, None),
                on("http", 80),
                "https://example.org/a",
            ),
            (
                redirect(Some("https"), None, None, None),
                on("http", 8080),
                "https://example.org/a",
            ),
            (
                redirect(Some("http"), None, None, None),
                on("https", 8443),
                "http://example.org/a",
            ),
            // no scheme, no port: the listener port, omitted when default for the scheme.
            (
                redirect(None, Some("foo.com"), None, None),
                on("http", 80),
                "http://foo.com/a",
            ),
            (
                redirect(None, Some("foo.com"), None, None),
                on("http", 8080),
                "http://foo.com:8080/a",
            ),
            // explicit port: kept unless default for the resulting scheme.
            (
                redirect(None, None, Some(8083), None),
                on("http", 80),
                "http://example.org:8083/a",
            ),
            (
                redirect(Some("https"), None, Some(443), None),
                on("http", 80),
                "https://example.org/a",
            ),
            (
                redirect(Some("https"), None, Some(8443), None),
                on("http", 80),
                "https://example.org:8443/a",
            ),
            (
                redirect(None, None, Some(80), None),
                on("https", 443),
                "https://example.org:80/a",
            ),
            // path modifiers keep the query string.
            (
                redirect(None, None, None, Some(full("/full"))),
                RedirectInput {
                    query: Some("x=1"),
                    ..on("http", 80)
                },
                "http://example.org/full?x=1",
            ),
        ];
        for (r, input, want) in cases {
            assert_eq!(
                redirect_location(&r, &input, Some("")),
                want,
                "{r:?} {input:?}"
            );
        }
    }

    #[test]
    fn redirect_replace_prefix_match() {
        let r = redirect(None, None, None, Some(prefix("/redirected-prefix")));
        let input = RedirectInput {
            scheme: "http",
            host: "h",
            path: "/prefix/original",
            query: None,
            listener_port: 80,
        };
        assert_eq!(
            redirect_location(&r, &input, Some("/prefix")),
            "http://h/redirected-prefix/original"
        );
    }
}

//! Route match conditions, compiled once per snapshot (regexes included) and
//! evaluated per request. Pure: no Pingora types.

use http::header::HeaderName;
use http::HeaderMap;
use regex::Regex;
use weir_model::{PathMatch, RouteMatch, StringMatch};

/// The parts of a request that routes match on.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// Port of the socket the request arrived on.
    pub port: u16,
}

#[derive(Debug)]
pub struct CompiledMatch {
    path: PathMatcher,
    method: Option<String>,
    headers: Vec<(HeaderName, ValueMatcher, bool)>,
    query: Vec<(String, ValueMatcher)>,
    port: Option<u16>,
    never: bool,
}

#[derive(Debug)]
enum PathMatcher {
    Exact(String),
    /// Stored without a trailing `/` (so `/` becomes the empty string).
    Prefix(String),
    Regex(Regex),
}

#[derive(Debug)]
enum ValueMatcher {
    Exact(String),
    Prefix(String),
    Regex(Regex),
    Present,
}

/// A regex from the model that failed to compile, or a bad header name.
#[derive(Debug, thiserror::Error)]
pub enum MatchCompileError {
    #[error("invalid regex {0:?}: {1}")]
    Regex(String, regex::Error),
    #[error("invalid header name {0:?}")]
    HeaderName(String),
}

/// Regexes in the model must match the whole value (RE2 full match).
fn full_match_regex(re: &str) -> Result<Regex, MatchCompileError> {
    Regex::new(&format!("^(?:{re})$")).map_err(|e| MatchCompileError::Regex(re.to_string(), e))
}

impl ValueMatcher {
    fn compile(m: &StringMatch) -> Result<Self, MatchCompileError> {
        Ok(match m {
            StringMatch::Exact(v) => ValueMatcher::Exact(v.clone()),
            StringMatch::Prefix(v) => ValueMatcher::Prefix(v.clone()),
            StringMatch::Regex(re) => ValueMatcher::Regex(full_match_regex(re)?),
            StringMatch::Present => ValueMatcher::Present,
        })
    }

    fn matches(&self, value: Option<&str>) -> bool {
        let Some(value) = value else { return false };
        match self {
            ValueMatcher::Exact(v) => value == v,
            ValueMatcher::Prefix(v) => value.starts_with(v.as_str()),
            ValueMatcher::Regex(re) => re.is_match(value),
            ValueMatcher::Present => true,
        }
    }
}

impl CompiledMatch {
    pub fn compile(m: &RouteMatch) -> Result<Self, MatchCompileError> {
        let path = match &m.path {
            PathMatch::Exact(p) => PathMatcher::Exact(p.clone()),
            PathMatch::Prefix(p) => PathMatcher::Prefix(p.trim_end_matches('/').to_string()),
            PathMatch::Regex(re) => PathMatcher::Regex(full_match_regex(re)?),
        };
        let headers = m
            .headers
            .iter()
            .map(|h| {
                let name = HeaderName::from_bytes(h.name.as_bytes())
                    .map_err(|_| MatchCompileError::HeaderName(h.name.clone()))?;
                Ok((name, ValueMatcher::compile(&h.value)?, h.invert))
            })
            .collect::<Result<_, MatchCompileError>>()?;
        let query = m
            .query
            .iter()
            .map(|q| Ok((q.name.clone(), ValueMatcher::compile(&q.value)?)))
            .collect::<Result<_, MatchCompileError>>()?;
        Ok(CompiledMatch {
            path,
            method: m.method.as_ref().map(|s| s.to_ascii_uppercase()),
            headers,
            query,
            port: m.port,
            never: false,
        })
    }

    /// A matcher that never matches (stands in for one that failed to compile).
    pub fn never() -> Self {
        CompiledMatch {
            path: PathMatcher::Exact(String::new()),
            method: None,
            headers: Vec::new(),
            query: Vec::new(),
            port: None,
            never: true,
        }
    }

    /// All conditions must hold.
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        !self.never
            && self.port.is_none_or(|p| p == req.port)
            && self.method.as_deref().is_none_or(|m| m == req.method)
            && self.path.matches(req.path)
            && self.headers.iter().all(|(name, value, invert)| {
                value.matches(header_value(req.headers, name).as_deref()) != *invert
            })
            && self
                .query
                .iter()
                .all(|(name, value)| value.matches(query_value(req.query, name).as_deref()))
    }

    /// The literal prefix of a `Prefix` path match (without trailing `/`),
    /// used by `ReplacePrefixMatch`.
    pub fn prefix(&self) -> Option<&str> {
        match &self.path {
            PathMatcher::Prefix(p) => Some(p),
            _ => None,
        }
    }
}

impl PathMatcher {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatcher::Exact(p) => path == p,
            // Segment-wise: `/foo` matches `/foo`, `/foo/` and `/foo/bar` but not `/foobar`.
            PathMatcher::Prefix(p) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            PathMatcher::Regex(re) => re.is_match(path),
        }
    }
}

/// Header names are case-insensitive (`HeaderMap` normalises them); several
/// values of one header are compared joined by `,`, as Envoy does.
fn header_value(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    let mut joined = first.to_string();
    for v in values {
        joined.push(',');
        joined.push_str(v);
    }
    Some(joined)
}

/// The first value of query parameter `name` (names are case-sensitive),
/// percent-decoded.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+` (form encoding); invalid escapes stay as is.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_model::{HeaderMatch, QueryMatch};

    fn view<'a>(
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        headers: &'a HeaderMap,
    ) -> RequestView<'a> {
        RequestView {
            method,
            path,
            query,
            headers,
            port: 80,
        }
    }

    fn path_only(path: PathMatch) -> CompiledMatch {
        CompiledMatch::compile(&RouteMatch {
            path,
            ..Default::default()
        })
        .expect("compile")
    }

    #[test]
    fn path_prefix_matches_whole_segments() {
        let h = HeaderMap::new();
        let cases = [
            ("/foo", "/foo", true),
            ("/foo", "/foo/", true),
            ("/foo", "/foo/bar", true),
            ("/foo", "/foobar", false),
            ("/foo/", "/foo", true),
            ("/foo/", "/foo/bar", true),
            ("/", "/anything", true),
            ("/", "/", true),
            ("/v2", "/v1/v2", false),
        ];
        for (prefix, path, want) in cases {
            let m = path_only(PathMatch::Prefix(prefix.into()));
            assert_eq!(
                m.matches(&view("GET", path, None, &h)),
                want,
                "prefix {prefix} path {path}"
            );
        }
    }

    #[test]
    fn path_exact_and_regex_full_match() {
        let h = HeaderMap::new();
        let exact = path_only(PathMatch::Exact("/one".into()));
        assert!(exact.matches(&view("GET", "/one", None, &h)));
        assert!(!exact.matches(&view("GET", "/one/", None, &h)));
        let re = path_only(PathMatch::Regex("/v[0-9]+".into()));
        assert!(re.matches(&view("GET", "/v12", None, &h)));
        assert!(
            !re.matches(&view("GET", "/v12/x", None, &h)),
            "regex must match the whole path"
        );
        assert!(!re.matches(&view("GET", "/a/v1", None, &h)));
    }

    #[test]
    fn invalid_regex_is_a_compile_error() {
        let m = RouteMatch {
            path: PathMatch::Regex("(".into()),
            ..Default::default()
        };
        assert!(CompiledMatch::compile(&m).is_err());
        assert!(!CompiledMatch::never().matches(&view("GET", "/", None, &HeaderMap::new())));
    }

    #[test]
    fn header_names_are_case_insensitive_values_exact() {
        let m = CompiledMatch::compile(&RouteMatch {
            headers: vec![HeaderMatch {
                name: "Version".into(),
                value: StringMatch::Exact("two".into()),
                invert: false,
            }],
            ..Default::default()
        })
        .expect("compile");
        let mut h = HeaderMap::new();
        h.insert("version", "two".parse().expect("value"));
        assert!(m.matches(&view("GET", "/", None, &h)));
        h.insert("version", "Two".parse().expect("value"));
        assert!(
            !m.matches(&view("GET", "/", None, &h)),
            "values are case-sensitive"
        );
        assert!(!m.matches(&view("GET", "/", None, &HeaderMap::new())));
    }

    #[test]
    fn header_regex_present_and_invert() {
        let m = CompiledMatch::compile(&RouteMatch {
            headers: vec![
                HeaderMatch {
                    name: "x-re".into(),
                    value: StringMatch::Regex("a+b".into()),
                    invert: false,
                },
                HeaderMatch {
                    name: "x-present".into(),
                    value: StringMatch::Present,
                    invert: false,
                },
                HeaderMatch {
                    name: "x-not".into(),
                    value: StringMatch::Present,
                    invert: true,
                },
            ],
            ..Default::default()
        })
        .expect("compile");
        let mut h = HeaderMap::new();
        h.insert("x-re", "aab".parse().expect("v"));
        h.insert("x-present", "".parse().expect("v"));
        assert!(m.matches(&view("GET", "/", None, &h)));
        h.insert("x-not", "1".parse().expect("v"));
        assert!(!m.matches(&view("GET", "/", None, &h)));
    }

    #[test]
    fn query_params_are_case_sensitive_first_value_wins() {
        let m = CompiledMatch::compile(&RouteMatch {
            query: vec![QueryMatch {
                name: "animal".into(),
                value: StringMatch::Exact("whale".into()),
            }],
            ..Default::default()
        })
        .expect("compile");
        let h = HeaderMap::new();
        assert!(m.matches(&view("GET", "/", Some("animal=whale"), &h)));
        assert!(m.matches(&view(
            "GET",
            "/",
            Some("x=1&animal=whale&animal=dolphin"),
            &h
        )));
        assert!(!m.matches(&view("GET", "/", Some("animal=dolphin&animal=whale"), &h)));
        assert!(!m.matches(&view("GET", "/", Some("Animal=whale"), &h)));
        assert!(
            m.matches(&view("GET", "/", Some("animal=wh%61le"), &h)),
            "values are percent-decoded"
        );
        assert!(!m.matches(&view("GET", "/", None, &h)));
    }

    #[test]
    fn method_and_port() {
        let m = CompiledMatch::compile(&RouteMatch {
            method: Some("post".into()),
            port: Some(8080),
            ..Default::default()
        })
        .expect("compile");
        let h = HeaderMap::new();
        let mut v = view("POST", "/", None, &h);
        assert!(!m.matches(&v), "port 80 is not 8080");
        v.port = 8080;
        assert!(m.matches(&v));
        v.method = "GET";
        assert!(!m.matches(&v));
    }

    #[test]
    fn percent_decode_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

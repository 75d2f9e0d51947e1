//! The JSON echo of a request, with upstream echo-basic's field names
//! (`RequestAssertions` in gateway-api's conformance/echo-basic).

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue, Version};
use serde::Serialize;

use super::requests::SeenRequest;
use super::tls::TlsAssertions;
use super::Identity;

#[derive(Debug, Serialize)]
pub struct RequestAssertions {
    pub path: String,
    pub host: String,
    pub method: String,
    pub proto: String,
    pub headers: BTreeMap<String, Vec<String>>,
    pub namespace: String,
    pub ingress: String,
    pub service: String,
    pub pod: String,
    #[serde(rename = "httpPort")]
    pub http_port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsAssertions>,
}

impl RequestAssertions {
    pub fn new(
        request: &SeenRequest,
        version: Version,
        identity: &Identity,
        local_port: u16,
        tls: Option<&TlsAssertions>,
    ) -> Self {
        RequestAssertions {
            path: request.path.clone(),
            host: request.host.clone(),
            method: request.method.clone(),
            proto: proto(version).to_string(),
            headers: request.headers.clone(),
            namespace: identity.namespace.clone(),
            ingress: identity.ingress.clone(),
            service: identity.service.clone(),
            pod: identity.pod.clone(),
            http_port: local_port.to_string(),
            tls: tls.cloned(),
        }
    }
}

/// What the backend records of a request: Go's `RequestURI`, `Host` and
/// `Header` (which never holds `Host`).
pub fn seen_request<B>(request: &http::Request<B>) -> SeenRequest {
    let uri = request.uri();
    let path = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/").to_string();
    let host_header = request
        .headers()
        .get(http::header::HOST)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let authority = uri.authority().map(|a| a.as_str().to_string());
    // HTTP/2 carries the host in :authority; HTTP/1 in the Host header.
    let host = if request.version() == Version::HTTP_2 {
        authority.or(host_header)
    } else {
        host_header.or(authority)
    }
    .unwrap_or_default();
    SeenRequest {
        method: request.method().as_str().to_string(),
        path,
        host,
        headers: header_map(request.headers()),
    }
}

pub fn proto(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Headers as Go's `http.Header` holds them: canonical names, values in
/// arrival order, `Host` left out.
pub fn header_map(headers: &HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if name == http::header::HOST {
            continue;
        }
        map.entry(canonical_header_key(name.as_str()))
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    map
}

/// Go's `http.CanonicalHeaderKey`: the first letter and every letter after a
/// hyphen upper case, the rest lower case; names with characters outside the
/// token set are returned unchanged.
pub fn canonical_header_key(name: &str) -> String {
    let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_token) {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

/// The response headers asked for with `X-Echo-Set-Header: Name:value[,Name:value]`.
/// As upstream, a name given twice gets its values joined with a comma.
pub fn echo_set_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let mut out: Vec<(HeaderName, String)> = Vec::new();
    for list in headers.get_all("x-echo-set-header") {
        let Ok(list) = list.to_str() else { continue };
        for pair in list.split(',') {
            let Some((name, value)) = pair.trim().split_once(':') else { continue };
            let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) else { continue };
            let value = value.trim();
            match out.iter_mut().find(|(existing, _)| *existing == name) {
                Some((_, joined)) => {
                    joined.push(',');
                    joined.push_str(value);
                }
                None => out.push((name, value.to_string())),
            }
        }
    }
    out.into_iter()
        .filter_map(|(name, value)| HeaderValue::from_str(&value).ok().map(|v| (name, v)))
        .collect()
}

/// The first value of a query parameter, percent-decoded.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(name) == key).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let hex = |byte: u8| (byte as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_keys_match_go() {
        let table = [
            ("x-header-set", "X-Header-Set"),
            ("X-HEADER-SET", "X-Header-Set"),
            ("content-type", "Content-Type"),
            ("x-forwarded-for", "X-Forwarded-For"),
            ("user-agent", "User-Agent"),
            ("a", "A"),
            ("x--y", "X--Y"),
            ("bad header", "bad header"),
        ];
        for (name, want) in table {
            assert_eq!(canonical_header_key(name), want, "{name}");
        }
    }

    #[test]
    fn header_map_groups_values_and_drops_host() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.com"));
        headers.append("x-multi", HeaderValue::from_static("one"));
        headers.append("x-multi", HeaderValue::from_static("two"));
        let map = header_map(&headers);
        assert_eq!(map.get("X-Multi"), Some(&vec!["one".to_string(), "two".to_string()]));
        assert!(!map.contains_key("Host"));
    }

    #[test]
    fn echo_set_header_lists() {
        let mut headers = HeaderMap::new();
        headers.append("x-echo-set-header", HeaderValue::from_static("X-Header-Set-1:one,X-Header-Set-2: two"));
        headers.append("x-echo-set-header", HeaderValue::from_static("X-Header-Set-1:again"));
        let set = echo_set_headers(&headers);
        assert_eq!(set.len(), 2);
        assert_eq!(set[0].0.as_str(), "x-header-set-1");
        assert_eq!(set[0].1, "one,again");
        assert_eq!(set[1].1, "two");
    }

    #[test]
    fn query_params() {
        let query = Some("uuid=abc&succeedAfter=2&delay=1%30ms&flag");
        assert_eq!(query_param(query, "uuid").as_deref(), Some("abc"));
        assert_eq!(query_param(query, "succeedAfter").as_deref(), Some("2"));
        assert_eq!(query_param(query, "delay").as_deref(), Some("10ms"));
        assert_eq!(query_param(query, "flag").as_deref(), Some(""));
        assert_eq!(query_param(query, "missing"), None);
        assert_eq!(query_param(None, "uuid"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}

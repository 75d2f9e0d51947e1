//! Response comparison as FORMAT.md's "Comparison" (upstream CompareRoundTrip).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::case::RequestCase;
use super::http_client::ClientResponse;

/// The echo backend's JSON answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Echoed {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub http_port: Option<serde_json::Value>,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub pod: String,
    #[serde(default)]
    pub tls: Option<EchoedTls>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct EchoedTls {
    #[serde(default)]
    pub server_name: String,
    #[serde(default)]
    pub negotiated_protocol: String,
    #[serde(default)]
    pub peer_certificates: Vec<String>,
}

impl Echoed {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.join(","))
    }
}

/// What the request that produced a response looked like.
pub struct Sent<'a> {
    pub scheme: &'a str,
    pub method: &'a str,
    /// Path as sent (placeholders filled, request id added).
    pub path: &'a str,
    /// The path the backend must see (expectedRequest.path with the same substitutions).
    pub expected_path: &'a str,
    /// PEM of `expectedRequest.clientCert`, resolved by the caller.
    pub expected_client_cert: Option<&'a str>,
}

fn is_timeout(code: u16) -> bool {
    code == 408 || code == 504
}

/// The echoed request of a 200/204 (or an empty one when the body is not JSON).
pub fn parse_echo(resp: &ClientResponse, method: &str) -> Result<Echoed, String> {
    let is_json = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Ok(Echoed { method: method.to_string(), ..Default::default() });
    }
    serde_json::from_slice(&resp.body).map_err(|e| format!("echo body is not the expected JSON: {e}"))
}

fn header_value(headers: &http::HeaderMap, name: &str) -> Option<String> {
    let vals: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!vals.is_empty()).then(|| vals.join(","))
}

fn strip_ws(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

pub fn compare(case: &RequestCase, sent: &Sent<'_>, resp: &ClientResponse) -> Result<(), String> {
    let default_codes = [200u16];
    let codes: &[u16] = match &case.response {
        Some(r) if !r.status_codes.is_empty() => &r.status_codes,
        _ => &default_codes,
    };
    let status = resp.status;
    let timeout_ok = is_timeout(status) && codes.iter().any(|c| is_timeout(*c));
    if !codes.contains(&status) && !timeout_ok {
        let snippet: String = String::from_utf8_lossy(&resp.body).chars().take(160).collect();
        return Err(format!("status {status}, want one of {codes:?} (body: {snippet:?})"));
    }
    if let Some(p) = case.response.as_ref().and_then(|r| r.protocol.as_deref()) {
        let got = format!("{:?}", resp.version);
        if !got.eq_ignore_ascii_case(p) {
            return Err(format!("response protocol {got}, want {p}"));
        }
    }
    if status == 200 || status == 204 {
        compare_echo(case, sent, resp)
    } else if (300..400).contains(&status) {
        match &case.redirect_request {
            Some(r) => compare_redirect(r, sent, resp),
            None => Ok(()),
        }
    } else {
        Ok(())
    }
}

fn compare_echo(case: &RequestCase, sent: &Sent<'_>, resp: &ClientResponse) -> Result<(), String> {
    let echoed = parse_echo(resp, sent.method)?;
    let exp = case.expected_request.clone();
    let (host, method, headers, absent, http_port, sni) = match &exp {
        Some(e) => (
            e.host.clone(),
            e.method.clone().unwrap_or_else(|| "GET".into()),
            e.headers.clone(),
            e.absent_headers.clone(),
            e.http_port.clone(),
            e.sni.clone(),
        ),
        None => (
            case.request.host.clone(),
            case.request.method.clone().unwrap_or_else(|| "GET".into()),
            case.request.headers.clone(),
            Vec::new(),
            None,
            None,
        ),
    };
    if let Some(h) = host.filter(|h| !h.is_empty()) {
        if h != echoed.host {
            return Err(format!("backend saw host {:?}, want {h:?}", echoed.host));
        }
    }
    if sent.expected_path != echoed.path {
        return Err(format!("backend saw path {:?}, want {:?}", echoed.path, sent.expected_path));
    }
    if !method.eq_ignore_ascii_case(&echoed.method) {
        return Err(format!("backend saw method {:?}, want {method:?}", echoed.method));
    }
    let want_ns = case.namespace.clone().unwrap_or_default();
    if want_ns != echoed.namespace {
        return Err(format!("echoed namespace {:?}, want {want_ns:?} (pod {:?})", echoed.namespace, echoed.pod));
    }
    for (name, want) in &headers {
        match echoed.header(name) {
            None => return Err(format!("backend did not see header {name} (want {want:?})")),
            Some(got) if &got != want => return Err(format!("backend saw header {name}: {got:?}, want {want:?}")),
            _ => {}
        }
    }
    if let Some(p) = http_port {
        let got = match &echoed.http_port {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        if got != p {
            return Err(format!("backend saw httpPort {got:?}, want {p:?}"));
        }
    }
    for name in &absent {
        if let Some(v) = echoed.header(name) {
            return Err(format!("backend saw header {name}: {v:?}, which must be absent"));
        }
    }
    if let Some(r) = &case.response {
        for (name, want) in &r.headers {
            match header_value(&resp.headers, name) {
                None => return Err(format!("response lacks header {name} (want {want:?})")),
                Some(got) => {
                    let same = if r.ignore_whitespace { strip_ws(&got) == strip_ws(want) } else { &got == want };
                    if !same {
                        return Err(format!("response header {name}: {got:?}, want {want:?}"));
                    }
                }
            }
        }
        for (name, allowed) in &r.valid_header_values {
            let got = header_value(&resp.headers, name).ok_or_else(|| format!("response lacks header {name}"))?;
            let ok = allowed.iter().any(|a| if r.ignore_whitespace { strip_ws(a) == strip_ws(&got) } else { a == &got });
            if !ok {
                return Err(format!("response header {name}: {got:?}, want one of {allowed:?}"));
            }
        }
        for name in &r.absent_headers {
            if let Some(v) = header_value(&resp.headers, name) {
                return Err(format!("response has header {name}: {v:?}, which must be absent"));
            }
        }
    }
    if let Some(b) = case.backend.as_deref() {
        if !echoed.pod.starts_with(b) {
            return Err(format!("answered by pod {:?}, want a pod of {b}", echoed.pod));
        }
    }
    if let Some(want) = sni {
        let got = echoed.tls.as_ref().map(|t| t.server_name.clone()).unwrap_or_default();
        if got != want {
            return Err(format!("backend saw SNI {got:?}, want {want:?}"));
        }
    }
    if let Some(pem) = sent.expected_client_cert {
        let want = strip_ws(pem);
        let peers = echoed.tls.as_ref().map(|t| t.peer_certificates.clone()).unwrap_or_default();
        if !peers.iter().any(|p| strip_ws(p) == want) {
            return Err(format!("backend did not see the expected client certificate ({} peer certificates)", peers.len()));
        }
    }
    Ok(())
}

/// Parts of a Location header.
#[derive(Debug, PartialEq)]
pub struct Location {
    pub scheme: String,
    pub host: String,
    pub port: String,
    pub path: String,
}

pub fn parse_location(loc: &str) -> Location {
    let (scheme, rest) = match loc.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => (String::new(), loc),
    };
    let (authority, path_q) = if scheme.is_empty() {
        ("", rest)
    } else {
        match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        }
    };
    let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
        match stripped.split_once(']') {
            Some((h, p)) => (h.to_string(), p.trim_start_matches(':').to_string()),
            None => (authority.to_string(), String::new()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (authority.to_string(), String::new()),
        }
    };
    let path = path_q.split('?').next().unwrap_or("").to_string();
    Location { scheme, host, port, path }
}

fn compare_redirect(r: &super::case::RedirectExpect, sent: &Sent<'_>, resp: &ClientResponse) -> Result<(), String> {
    let loc = header_value(&resp.headers, "location").ok_or("redirect without a Location header")?;
    let got = parse_location(&loc);
    let want_scheme = r.scheme.clone().unwrap_or_else(|| sent.scheme.to_string());
    if got.scheme != want_scheme {
        return Err(format!("redirect scheme {:?}, want {want_scheme:?} (Location {loc})", got.scheme));
    }
    if let Some(h) = r.host.as_deref().filter(|h| !h.is_empty()) {
        if got.host != h {
            return Err(format!("redirect host {:?}, want {h:?} (Location {loc})", got.host));
        }
    }
    let want_path = r.path.clone().unwrap_or_else(|| sent.path.split('?').next().unwrap_or("").to_string());
    if got.path != want_path {
        return Err(format!("redirect path {:?}, want {want_path:?} (Location {loc})", got.path));
    }
    match r.port.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => {
            if got.port != p {
                return Err(format!("redirect port {:?}, want {p:?} (Location {loc})", got.port));
            }
        }
        None => {
            let default = if want_scheme == "https" { "443" } else { "80" };
            if !got.port.is_empty() && got.port != default {
                return Err(format!("redirect port {:?}, want {default} or none (Location {loc})", got.port));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::case::RequestCase;

    fn resp(status: u16, body: serde_json::Value, headers: &[(&str, &str)]) -> ClientResponse {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        for (k, v) in headers {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                http::HeaderValue::from_str(v).expect("value"),
            );
        }
        ClientResponse { status, headers: h, body: body.to_string().into(), version: http::Version::HTTP_11 }
    }

    fn case(yaml: &str) -> RequestCase {
        serde_yaml::from_str(yaml).expect("case")
    }

    fn sent<'a>(path: &'a str) -> Sent<'a> {
        Sent { scheme: "http", method: "GET", path, expected_path: path, expected_client_cert: None }
    }

    fn echo(path: &str, pod: &str, headers: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"path": path, "host": "example.com", "method": "GET", "namespace": "gateway-conformance-infra", "pod": pod, "headers": headers})
    }

    #[test]
    fn matching_backend_passes_and_wrong_backend_fails() {
        let c = case("{request: {path: /v2, headers: {Version: two}}, backend: infra-backend-v2, namespace: gateway-conformance-infra}");
        let ok = resp(200, echo("/v2", "infra-backend-v2-12-0", serde_json::json!({"Version": ["two"]})), &[]);
        assert_eq!(compare(&c, &sent("/v2"), &ok), Ok(()));
        let wrong = resp(200, echo("/v2", "infra-backend-v1-11-0", serde_json::json!({"Version": ["two"]})), &[]);
        assert!(compare(&c, &sent("/v2"), &wrong).unwrap_err().contains("infra-backend-v2"));
        let no_header = resp(200, echo("/v2", "infra-backend-v2-12-0", serde_json::json!({})), &[]);
        assert!(compare(&c, &sent("/v2"), &no_header).unwrap_err().contains("Version"));
    }

    #[test]
    fn status_codes_and_timeouts() {
        let c = case("{request: {path: /x}, response: {statusCodes: [504]}}");
        assert_eq!(compare(&c, &sent("/x"), &resp(408, serde_json::json!({}), &[])), Ok(()));
        assert!(compare(&c, &sent("/x"), &resp(200, serde_json::json!({}), &[])).is_err());
        let c404 = case("{request: {path: /x}, response: {statusCodes: [404]}}");
        assert_eq!(compare(&c404, &sent("/x"), &resp(404, serde_json::json!({}), &[])), Ok(()));
    }

    #[test]
    fn expected_request_headers_absent_and_response_headers() {
        let c = case(
            "{request: {path: /p, headers: {X-Remove: a}}, expectedRequest: {path: /p, headers: {X-Add: 'v1,v2'}, absentHeaders: [X-Remove]}, response: {headers: {X-Resp: r}, absentHeaders: [X-Gone]}, backend: b, namespace: gateway-conformance-infra}",
        );
        let good = resp(200, echo("/p", "b-1-0", serde_json::json!({"x-add": ["v1", "v2"]})), &[("x-resp", "r")]);
        assert_eq!(compare(&c, &sent("/p"), &good), Ok(()));
        let leaked = resp(200, echo("/p", "b-1-0", serde_json::json!({"X-Add": ["v1,v2"], "X-Remove": ["a"]})), &[("x-resp", "r")]);
        assert!(compare(&c, &sent("/p"), &leaked).unwrap_err().contains("X-Remove"));
        let extra = resp(200, echo("/p", "b-1-0", serde_json::json!({"X-Add": ["v1,v2"]})), &[("x-resp", "r"), ("x-gone", "1")]);
        assert!(compare(&c, &sent("/p"), &extra).unwrap_err().contains("X-Gone"));
    }

    #[test]
    fn namespace_absent_means_empty() {
        let c = case("{request: {path: /}}");
        let r = resp(200, echo("/", "p-1-0", serde_json::json!({})), &[]);
        assert!(compare(&c, &sent("/"), &r).unwrap_err().contains("namespace"));
    }

    #[test]
    fn redirects() {
        let c = case("{request: {path: /r?x=1, unfollowRedirect: true}, response: {statusCodes: [302]}, redirectRequest: {host: example.org}}");
        let mut r = resp(302, serde_json::json!({}), &[("location", "http://example.org/r")]);
        assert_eq!(compare(&c, &sent("/r?x=1"), &r), Ok(()));
        r.headers.insert("location", http::HeaderValue::from_static("http://example.org:8080/r"));
        assert!(compare(&c, &sent("/r?x=1"), &r).unwrap_err().contains("port"));
        let c2 = case("{request: {path: /r}, response: {statusCodes: [301]}, redirectRequest: {scheme: https, port: '8443', path: /new}}");
        let r2 = resp(301, serde_json::json!({}), &[("location", "https://h:8443/new?q")]);
        assert_eq!(compare(&c2, &sent("/r"), &r2), Ok(()));
        assert_eq!(
            parse_location("https://[::1]:443/a?b"),
            Location { scheme: "https".into(), host: "::1".into(), port: "443".into(), path: "/a".into() }
        );
    }

    #[test]
    fn non_json_200_echoes_only_the_method() {
        let c = case("{request: {path: /cors, method: OPTIONS}, expectedRequest: {path: ''}, namespace: ''}");
        let mut r = resp(200, serde_json::json!({}), &[]);
        r.headers.remove(http::header::CONTENT_TYPE);
        let s = Sent { scheme: "http", method: "OPTIONS", path: "/cors", expected_path: "", expected_client_cert: None };
        // expectedRequest.method defaults to GET as upstream does, so OPTIONS must be named to pass.
        assert!(compare(&c, &s, &r).is_err());
        let c2 = case("{request: {path: /cors, method: OPTIONS}, expectedRequest: {path: '', method: OPTIONS}, namespace: ''}");
        assert_eq!(compare(&c2, &s, &r), Ok(()));
    }
}

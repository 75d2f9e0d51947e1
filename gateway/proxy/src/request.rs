//! Reading what routing needs from a downstream request, and refusing
//! malformed ones.

use pingora_http::RequestHeader;

use crate::table::normalize_host;

/// The request host: the absolute-form / `:authority` authority if present
/// (RFC 9112 §3.2.2: it replaces Host), else the Host header. Raw, with port.
pub fn raw_authority(req: &RequestHeader) -> Option<String> {
    if let Some(authority) = req.uri.authority() {
        return Some(authority.as_str().to_string());
    }
    // Pingora keeps an h1 absolute-form target only in the raw path.
    let raw = req.raw_path();
    let rest = strip_scheme(raw)?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let authority = std::str::from_utf8(&rest[..end]).ok()?;
    // userinfo never names a host of ours.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if !authority.is_empty() {
        return Some(authority.to_string());
    }
    None
}

/// Like [`raw_authority`] but falling back to the Host header.
pub fn request_authority(req: &RequestHeader) -> Option<String> {
    raw_authority(req).or_else(|| header_str(req, "host").map(str::to_string))
}

/// Normalised host for routing (lower case, no port); empty when absent.
pub fn routing_host(req: &RequestHeader) -> String {
    request_authority(req)
        .map(|a| normalize_host(&a))
        .unwrap_or_default()
}

fn strip_scheme(raw: &[u8]) -> Option<&[u8]> {
    let lower: Vec<u8> = raw.iter().take(8).map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"http://") {
        Some(&raw[7..])
    } else if lower.starts_with(b"https://") {
        Some(&raw[8..])
    } else {
        None
    }
}

/// Path (without query) and query of the request target.
pub fn path_and_query(req: &RequestHeader) -> (String, Option<String>) {
    let uri = &req.uri;
    let path = if uri.path().is_empty() {
        "/"
    } else {
        uri.path()
    };
    (path.to_string(), uri.query().map(str::to_string))
}

pub fn header_str<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the request carries a body (for mirroring decisions).
pub fn has_body(req: &RequestHeader) -> bool {
    req.headers.contains_key(http::header::TRANSFER_ENCODING)
        || header_str(req, "content-length").is_some_and(|v| v.trim() != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_from_header_absolute_form_and_authority() {
        let mut req = RequestHeader::build("GET", b"/p?q=1", None).expect("req");
        req.insert_header("host", "Example.COM:8080").expect("host");
        assert_eq!(routing_host(&req), "example.com");
        assert_eq!(
            path_and_query(&req),
            ("/p".to_string(), Some("q=1".to_string()))
        );

        let mut abs = RequestHeader::build("GET", b"http://other.example:81/x", None).expect("req");
        abs.insert_header("host", "example.com").expect("host");
        assert_eq!(routing_host(&abs), "other.example");
    }
}

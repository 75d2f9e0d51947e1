//! Header modifiers on Pingora request/response headers, and collecting the
//! filters that apply to one request (route filters, then the chosen
//! backendRef's filters).

use pingora_http::{RequestHeader, ResponseHeader};
use weir_model::{Filter, HeaderModifier, Route, WeightedBackend};

/// Pingora's two header types share the modifier logic through this trait.
pub trait HeaderTarget {
    fn headers(&self) -> &http::HeaderMap;
    fn insert(&mut self, name: String, value: String) -> bool;
    fn remove(&mut self, name: &str);
}

macro_rules! header_target {
    ($t:ty) => {
        impl HeaderTarget for $t {
            fn headers(&self) -> &http::HeaderMap {
                &self.headers
            }
            fn insert(&mut self, name: String, value: String) -> bool {
                self.insert_header(name, value).is_ok()
            }
            fn remove(&mut self, name: &str) {
                self.remove_header(name);
            }
        }
    };
}
header_target!(RequestHeader);
header_target!(ResponseHeader);

/// Applies `set`, then `add`, then `remove` (Gateway API order). `add`
/// appends to an existing value with `,` so a single header line carries
/// both (`append-val-1,header-val-2`). Invalid names/values are skipped and
/// logged: a bad filter must not fail the request.
pub fn apply_header_modifier(target: &mut impl HeaderTarget, modifier: &HeaderModifier) {
    for (name, value) in &modifier.set {
        if !target.insert(name.to_ascii_lowercase(), value.clone()) {
            log::warn!("header modifier: cannot set {name:?}: invalid name or value");
        }
    }
    for (name, value) in &modifier.add {
        let lower = name.to_ascii_lowercase();
        let existing: Vec<String> = target
            .headers()
            .get_all(lower.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let joined = if existing.is_empty() {
            value.clone()
        } else {
            format!("{},{value}", existing.join(","))
        };
        if !target.insert(lower, joined) {
            log::warn!("header modifier: cannot add {name:?}: invalid name or value");
        }
    }
    for name in &modifier.remove {
        target.remove(&name.to_ascii_lowercase());
    }
}

/// Route filters followed by the backendRef's own filters.
pub fn request_filters<'a>(
    route: &'a Route,
    backend: Option<&'a WeightedBackend>,
) -> impl Iterator<Item = &'a Filter> {
    route
        .filters
        .iter()
        .chain(backend.into_iter().flat_map(|b| b.filters.iter()))
}

pub fn apply_request_header_filters<'a>(
    req: &mut RequestHeader,
    filters: impl Iterator<Item = &'a Filter>,
) {
    for filter in filters {
        if let Filter::RequestHeaders(m) = filter {
            apply_header_modifier(req, m);
        }
    }
}

pub fn apply_response_header_filters<'a>(
    resp: &mut ResponseHeader,
    filters: impl Iterator<Item = &'a Filter>,
) {
    for filter in filters {
        if let Filter::ResponseHeaders(m) = filter {
            apply_header_modifier(resp, m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_route_request_header_modifier_set_add_remove() {
        let mut req = RequestHeader::build("GET", b"/", None).expect("request");
        req.insert_header("x-header-set", "set-val")
            .expect("insert");
        req.insert_header("x-header-add-append", "append-val-1")
            .expect("insert");
        req.insert_header("x-header-remove", "remove-val")
            .expect("insert");
        let m = HeaderModifier {
            set: vec![("X-Header-Set".into(), "set-overwrites-values".into())],
            add: vec![
                ("X-Header-Add".into(), "header-val-1".into()),
                ("X-Header-Add-Append".into(), "header-val-2".into()),
            ],
            remove: vec!["X-Header-Remove".into()],
        };
        apply_header_modifier(&mut req, &m);
        let get = |n: &str| {
            req.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(
            get("x-header-set").as_deref(),
            Some("set-overwrites-values")
        );
        assert_eq!(get("x-header-add").as_deref(), Some("header-val-1"));
        assert_eq!(
            get("x-header-add-append").as_deref(),
            Some("append-val-1,header-val-2")
        );
        assert_eq!(get("x-header-remove"), None);
    }

    #[test]
    fn invalid_header_value_is_skipped() {
        let mut resp = ResponseHeader::build(200, None).expect("response");
        let m = HeaderModifier {
            set: vec![("bad name".into(), "v".into()), ("ok".into(), "v".into())],
            ..Default::default()
        };
        apply_header_modifier(&mut resp, &m);
        assert!(resp.headers.get("ok").is_some());
    }
}

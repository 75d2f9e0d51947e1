//! HTTPRoute filters → model filters (and the redirect action).

use std::collections::BTreeMap;
use std::time::Duration;

use weir_model::{Cluster, CorsPolicy, Filter, HeaderModifier, PathModifier, Redirect};

use super::backends::{self, BackendError, BackendRef};
use super::matches::RuleError;
use crate::api::{self, HttpPathModifier, HttpRouteFilter};
use crate::objects::ObjectSet;

/// Filters of one rule or backendRef, converted.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    pub filters: Vec<Filter>,
    pub redirect: Option<Redirect>,
    /// Mirror backends and extension filters that could not be resolved
    /// (ResolvedRefs=False).
    pub backend_errors: Vec<BackendError>,
    /// An ExtensionRef filter Weir cannot run: "the filter MUST NOT be
    /// skipped. Instead, requests that would have been processed by that
    /// filter MUST receive a HTTP error response."
    pub unresolved_extension: bool,
}

/// What the filters may refer to.
pub(crate) struct Env<'a> {
    pub objects: &'a ObjectSet,
    /// `HTTPRoute` or `GRPCRoute`.
    pub route_kind: &'a str,
    pub route_ns: &'a str,
    /// Whether the rule's matches all use a path prefix (needed by
    /// ReplacePrefixMatch).
    pub prefix_matches_only: bool,
}

/// Converts `filters` found at `field` (`spec.rules[0].filters`).
pub(crate) fn convert(
    env: &Env<'_>,
    filters: &[HttpRouteFilter],
    field: &str,
    clusters: &mut BTreeMap<String, Cluster>,
) -> Result<Converted, RuleError> {
    let mut out = Converted::default();
    check_combination(filters, field)?;
    for (i, filter) in filters.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let missing = |name: &str| {
            RuleError::new(
                format!("{field}.{name}"),
                format!("required for type {}", filter.type_),
            )
        };
        match filter.type_.as_str() {
            "RequestHeaderModifier" => {
                let m = filter
                    .request_header_modifier
                    .as_ref()
                    .ok_or_else(|| missing("requestHeaderModifier"))?;
                out.filters.push(Filter::RequestHeaders(header_modifier(m)));
            }
            "ResponseHeaderModifier" => {
                let m = filter
                    .response_header_modifier
                    .as_ref()
                    .ok_or_else(|| missing("responseHeaderModifier"))?;
                out.filters
                    .push(Filter::ResponseHeaders(header_modifier(m)));
            }
            "RequestRedirect" => {
                let r = filter
                    .request_redirect
                    .as_ref()
                    .ok_or_else(|| missing("requestRedirect"))?;
                out.redirect = Some(redirect(env, r, &format!("{field}.requestRedirect"))?);
            }
            "URLRewrite" => {
                let r = filter
                    .url_rewrite
                    .as_ref()
                    .ok_or_else(|| missing("urlRewrite"))?;
                let path = r
                    .path
                    .as_ref()
                    .map(|p| path_modifier(env, p, &format!("{field}.urlRewrite.path")))
                    .transpose()?;
                out.filters.push(Filter::UrlRewrite {
                    hostname: r.hostname.clone(),
                    path,
                });
            }
            "RequestMirror" => {
                let m = filter
                    .request_mirror
                    .as_ref()
                    .ok_or_else(|| missing("requestMirror"))?;
                let backend = &m.backend_ref;
                let reference = BackendRef {
                    route_kind: env.route_kind,
                    field: format!("{field}.requestMirror.backendRef"),
                    group: backend.group.as_deref(),
                    kind: backend.kind.as_deref(),
                    name: &backend.name,
                    namespace: backend.namespace.as_deref(),
                    port: backend.port,
                };
                let cluster =
                    match backends::resolve(env.objects, env.route_ns, &reference, clusters) {
                        Ok(name) => Some(name),
                        Err(e) => {
                            out.backend_errors.push(e);
                            None
                        }
                    };
                out.filters.push(Filter::Mirror {
                    cluster,
                    percent: mirror_percent(m),
                });
            }
            "CORS" => {
                let c = filter.cors.as_ref().ok_or_else(|| missing("cors"))?;
                out.filters.push(Filter::Cors(cors(c)));
            }
            "ExtensionRef" => {
                let r = filter
                    .extension_ref
                    .as_ref()
                    .ok_or_else(|| missing("extensionRef"))?;
                out.unresolved_extension = true;
                out.backend_errors.push(BackendError::UnsupportedFilter {
                    field: format!("{field}.extensionRef"),
                    group: r.group.clone(),
                    kind: r.kind.clone(),
                    name: r.name.clone(),
                });
            }
            other => {
                return Err(RuleError::new(
                    format!("{field}.type"),
                    format!("filter type {other:?} is not supported"),
                ));
            }
        }
    }
    Ok(out)
}

/// "Specifying the same filter multiple times is not supported unless
/// explicitly indicated in the filter" (only RequestMirror says so), and
/// "All filters are expected to be compatible with each other except for
/// the URLRewrite and RequestRedirect filters, which may not be combined."
fn check_combination(filters: &[HttpRouteFilter], field: &str) -> Result<(), RuleError> {
    for (i, filter) in filters.iter().enumerate() {
        let repeated = filters[..i].iter().any(|f| f.type_ == filter.type_);
        if repeated && filter.type_ != "RequestMirror" && filter.type_ != "ExtensionRef" {
            return Err(RuleError::new(
                format!("{field}[{i}].type"),
                format!("{} may appear only once", filter.type_),
            ));
        }
    }
    let has = |t: &str| filters.iter().any(|f| f.type_ == t);
    if has("URLRewrite") && has("RequestRedirect") {
        return Err(RuleError::new(
            field,
            "URLRewrite and RequestRedirect may not be combined",
        ));
    }
    Ok(())
}

fn header_modifier(m: &api::HeaderModifier) -> HeaderModifier {
    let pairs = |headers: &[api::HttpHeader]| -> Vec<(String, String)> {
        headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect()
    };
    HeaderModifier {
        set: pairs(&m.set),
        add: pairs(&m.add),
        remove: m.remove.clone(),
    }
}

fn path_modifier(
    env: &Env<'_>,
    p: &HttpPathModifier,
    field: &str,
) -> Result<PathModifier, RuleError> {
    match p.type_.as_str() {
        "ReplaceFullPath" => {
            let value = p
                .replace_full_path
                .clone()
                .ok_or_else(|| RuleError::new(format!("{field}.replaceFullPath"), "required"))?;
            Ok(PathModifier::ReplaceFullPath(value))
        }
        "ReplacePrefixMatch" => {
            // "ReplacePrefixMatch is only compatible with a PathPrefix HTTPRouteMatch."
            if !env.prefix_matches_only {
                return Err(RuleError::new(
                    format!("{field}.type"),
                    "ReplacePrefixMatch needs PathPrefix matches only",
                ));
            }
            let value = p
                .replace_prefix_match
                .clone()
                .ok_or_else(|| RuleError::new(format!("{field}.replacePrefixMatch"), "required"))?;
            Ok(PathModifier::ReplacePrefixMatch(value))
        }
        other => Err(RuleError::new(
            format!("{field}.type"),
            format!("unsupported path modifier {other:?}"),
        )),
    }
}

fn redirect(env: &Env<'_>, r: &api::RequestRedirect, field: &str) -> Result<Redirect, RuleError> {
    // The CRD defaults statusCode to 302; 301/302 are core, 303/307/308 extended.
    let status = r.status_code.unwrap_or(302);
    if ![301, 302, 303, 307, 308].contains(&status) {
        return Err(RuleError::new(
            format!("{field}.statusCode"),
            format!("unsupported redirect status {status}"),
        ));
    }
    if let Some(scheme) = r.scheme.as_deref() {
        if scheme != "http" && scheme != "https" {
            return Err(RuleError::new(
                format!("{field}.scheme"),
                format!("unsupported scheme {scheme:?}"),
            ));
        }
    }
    let port = r
        .port
        .map(|p| {
            u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                RuleError::new(format!("{field}.port"), format!("{p} is not a port"))
            })
        })
        .transpose()?;
    let path = r
        .path
        .as_ref()
        .map(|p| path_modifier(env, p, &format!("{field}.path")))
        .transpose()?;
    Ok(Redirect {
        scheme: r.scheme.clone(),
        hostname: r.hostname.clone(),
        path,
        port,
        status: u16::try_from(status).unwrap_or(302),
    })
}

/// `percent` (0-100) or `fraction` (numerator/denominator, default
/// denominator 100); 100% when neither is set.
fn mirror_percent(m: &api::RequestMirror) -> f64 {
    if let Some(p) = m.percent {
        return f64::from(p.clamp(0, 100));
    }
    if let Some(f) = &m.fraction {
        let denominator = f.denominator.unwrap_or(100);
        if denominator > 0 {
            return (100.0 * f64::from(f.numerator.max(0)) / f64::from(denominator))
                .clamp(0.0, 100.0);
        }
        return 0.0;
    }
    100.0
}

fn cors(c: &api::Cors) -> CorsPolicy {
    CorsPolicy {
        allow_origins: c.allow_origins.clone(),
        allow_methods: c.allow_methods.clone(),
        allow_headers: c.allow_headers.clone(),
        expose_headers: c.expose_headers.clone(),
        allow_credentials: c.allow_credentials.unwrap_or(false),
        // "MaxAge [...] The default value is 5 (seconds)."
        max_age: Some(Duration::from_secs(
            u64::try_from(c.max_age.unwrap_or(5)).unwrap_or(0),
        )),
    }
}

//! One GRPCRoute's rules → model routes. gRPC calls are HTTP/2 POSTs to
//! `/<service>/<method>`, so method matches become path matches.

use std::collections::BTreeMap;

use weir_model::{
    Cluster, HeaderMatch, PathMatch, Route, RouteAction, RouteMatch, RouteSource, StringMatch,
    Timeouts,
};

use super::filters::{self, Env};
use super::httproute::{forward, ConvertedRoute};
use super::matches::RuleError;
use super::precedence::Precedence;
use crate::api::{GrpcMethodMatch, GrpcRoute, GrpcRouteMatch, GrpcRouteRule};
use crate::objects::ObjectSet;

/// Filters a GRPCRoute may carry.
const GRPC_FILTERS: &[&str] = &[
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
];

pub(crate) fn convert(
    objects: &ObjectSet,
    route: &GrpcRoute,
    clusters: &mut BTreeMap<String, Cluster>,
) -> ConvertedRoute {
    let mut out = ConvertedRoute::default();
    // "If no rules are specified, [...]" the route matches nothing; rules
    // without matches match every gRPC request.
    for (index, rule) in route.spec.rules.iter().enumerate() {
        let field = format!("spec.rules[{index}]");
        match convert_rule(objects, route, index, rule, &field, clusters, &mut out) {
            Ok(entries) => out.entries.extend(entries),
            Err(e) => out.rule_errors.push(e),
        }
    }
    out
}

fn convert_rule(
    objects: &ObjectSet,
    route: &GrpcRoute,
    index: usize,
    rule: &GrpcRouteRule,
    field: &str,
    clusters: &mut BTreeMap<String, Cluster>,
    out: &mut ConvertedRoute,
) -> Result<Vec<(Precedence, Route)>, RuleError> {
    let namespace = route.metadata.namespace();
    let default_match = [GrpcRouteMatch::default()];
    let written: &[GrpcRouteMatch] = if rule.matches.is_empty() {
        &default_match
    } else {
        &rule.matches
    };
    let matchers = written
        .iter()
        .enumerate()
        .map(|(i, m)| convert_match(m, &format!("{field}.matches[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, f) in rule.filters.iter().enumerate() {
        if !GRPC_FILTERS.contains(&f.type_.as_str()) {
            return Err(RuleError::new(
                format!("{field}.filters[{i}].type"),
                format!("filter type {:?} is not supported on a GRPCRoute", f.type_),
            ));
        }
    }
    let env = Env {
        objects,
        route_kind: "GRPCRoute",
        route_ns: namespace,
        prefix_matches_only: false,
    };
    let mut errors = Vec::new();
    let converted = filters::convert(&env, &rule.filters, &format!("{field}.filters"), clusters)?;
    errors.extend(converted.backend_errors);
    let action = if converted.unresolved_extension {
        RouteAction::DirectResponse {
            status: 500,
            body: None,
        }
    } else {
        forward(&env, &rule.backend_refs, field, clusters, &mut errors)?
    };
    out.backend_errors.extend(errors);
    let source = RouteSource {
        kind: "GRPCRoute".to_string(),
        namespace: namespace.to_string(),
        name: route.metadata.name.clone(),
        rule: index,
        rule_name: rule.name.clone(),
    };
    Ok(matchers
        .into_iter()
        .enumerate()
        .map(|(i, matcher)| {
            let precedence = Precedence::new(
                &matcher,
                route.metadata.creation_timestamp.as_deref(),
                namespace,
                &route.metadata.name,
                index,
                i,
            );
            let route = Route {
                source: source.clone(),
                matcher,
                action: action.clone(),
                filters: converted.filters.clone(),
                timeouts: Timeouts::default(),
                retry: None,
            };
            (precedence, route)
        })
        .collect())
}

fn convert_match(m: &GrpcRouteMatch, field: &str) -> Result<RouteMatch, RuleError> {
    let path = match &m.method {
        None => PathMatch::Prefix("/".to_string()),
        Some(method) => method_path(method, &format!("{field}.method"))?,
    };
    let mut headers: Vec<HeaderMatch> = Vec::new();
    for (i, h) in m.headers.iter().enumerate() {
        let value = match h.type_.as_deref().unwrap_or("Exact") {
            "Exact" => StringMatch::Exact(h.value.clone()),
            "RegularExpression" => {
                check_regex(&format!("{field}.headers[{i}].value"), &h.value)?;
                StringMatch::Regex(h.value.clone())
            }
            other => {
                return Err(RuleError::new(
                    format!("{field}.headers[{i}].type"),
                    format!("unsupported match type {other:?}"),
                ))
            }
        };
        if !headers
            .iter()
            .any(|seen| seen.name.eq_ignore_ascii_case(&h.name))
        {
            headers.push(HeaderMatch {
                name: h.name.to_ascii_lowercase(),
                value,
                invert: false,
            });
        }
    }
    Ok(RouteMatch {
        path,
        method: None,
        headers,
        query: Vec::new(),
        port: None,
    })
}

/// `service` and `method` → the request path: exact `/S/M`, a `/S` prefix,
/// or a regular expression over both parts.
fn method_path(m: &GrpcMethodMatch, field: &str) -> Result<PathMatch, RuleError> {
    let service = m.service.as_deref().filter(|s| !s.is_empty());
    let method = m.method.as_deref().filter(|s| !s.is_empty());
    match m.type_.as_deref().unwrap_or("Exact") {
        "Exact" => {
            for (name, value) in [("service", service), ("method", method)] {
                if value.is_some_and(|v| v.contains('/')) {
                    return Err(RuleError::new(
                        format!("{field}.{name}"),
                        "must not contain '/'",
                    ));
                }
            }
            match (service, method) {
                (Some(s), Some(m)) => Ok(PathMatch::Exact(format!("/{s}/{m}"))),
                (Some(s), None) => Ok(PathMatch::Prefix(format!("/{s}"))),
                (None, Some(m)) => Ok(PathMatch::Regex(format!("/[^/]+/{}", regex::escape(m)))),
                // "At least one of Service and Method MUST be a non-empty string."
                (None, None) => Err(RuleError::new(field, "service or method is required")),
            }
        }
        "RegularExpression" => {
            let s = service.unwrap_or("[^/]+");
            let m = method.unwrap_or("[^/]+");
            check_regex(&format!("{field}.service"), s)?;
            check_regex(&format!("{field}.method"), m)?;
            Ok(PathMatch::Regex(format!("/(?:{s})/(?:{m})")))
        }
        other => Err(RuleError::new(
            format!("{field}.type"),
            format!("unsupported method match type {other:?}"),
        )),
    }
}

fn check_regex(field: &str, value: &str) -> Result<(), RuleError> {
    regex::Regex::new(value)
        .map(drop)
        .map_err(|e| RuleError::new(field, format!("invalid regular expression {value:?}: {e}")))
}

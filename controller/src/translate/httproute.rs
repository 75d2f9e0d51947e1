//! One HTTPRoute's rules → model routes (independent of where it attaches).

use std::collections::BTreeMap;

use weir_model::{
    Cluster, PathMatch, RetryPolicy, Route, RouteAction, RouteSource, Timeouts, WeightedBackend,
};

use super::backends::{self, BackendError, BackendRef};
use super::filters::{self, Env};
use super::matches::{self, RuleError};
use super::precedence::Precedence;
use crate::api::{HttpBackendRef, HttpRoute, HttpRouteMatch, HttpRouteRule};
use crate::duration::parse_duration;
use crate::objects::ObjectSet;

/// The route's rules, converted once and shared by every parent.
#[derive(Debug, Default)]
pub(crate) struct ConvertedRoute {
    /// One entry per match of every valid rule.
    pub entries: Vec<(Precedence, Route)>,
    /// Rules dropped because part of them cannot be served.
    pub rule_errors: Vec<RuleError>,
    /// Backend references that cannot be resolved (their share answers 500).
    pub backend_errors: Vec<BackendError>,
}

pub(crate) fn convert(
    objects: &ObjectSet,
    route: &HttpRoute,
    clusters: &mut BTreeMap<String, Cluster>,
) -> ConvertedRoute {
    let mut out = ConvertedRoute::default();
    for (index, rule) in route.spec.rules.iter().enumerate() {
        let field = format!("spec.rules[{index}]");
        // A rejected rule may leave an unused cluster behind; harmless.
        match convert_rule(
            objects,
            route,
            index,
            rule,
            &field,
            clusters,
            &mut out.backend_errors,
        ) {
            Ok(entries) => out.entries.extend(entries),
            Err(e) => out.rule_errors.push(e),
        }
    }
    out
}

fn convert_rule(
    objects: &ObjectSet,
    route: &HttpRoute,
    index: usize,
    rule: &HttpRouteRule,
    field: &str,
    clusters: &mut BTreeMap<String, Cluster>,
    backend_errors: &mut Vec<BackendError>,
) -> Result<Vec<(Precedence, Route)>, RuleError> {
    let namespace = route.metadata.namespace();
    // "If no matches are specified, the default is a prefix path match on
    // "/", which has the effect of matching every HTTP request."
    let default_match = [HttpRouteMatch::default()];
    let written: &[HttpRouteMatch] = if rule.matches.is_empty() {
        &default_match
    } else {
        &rule.matches
    };
    let matchers = written
        .iter()
        .enumerate()
        .map(|(i, m)| matches::convert(m, &format!("{field}.matches[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let env = Env {
        objects,
        route_kind: "HTTPRoute",
        route_ns: namespace,
        prefix_matches_only: matchers
            .iter()
            .all(|m| matches!(m.path, PathMatch::Prefix(_))),
    };
    let mut errors = Vec::new();
    let converted = filters::convert(&env, &rule.filters, &format!("{field}.filters"), clusters)?;
    errors.extend(converted.backend_errors);
    let timeouts = timeouts(rule, field)?;
    let retry = retry(rule, field)?;
    let action = match converted.redirect {
        _ if converted.unresolved_extension => RouteAction::DirectResponse {
            status: 500,
            body: None,
        },
        // A redirect answers the request itself; backendRefs are not used.
        Some(redirect) => RouteAction::Redirect(redirect),
        None => forward(&env, &rule.backend_refs, field, clusters, &mut errors)?,
    };
    backend_errors.extend(errors);
    let source = RouteSource {
        kind: "HTTPRoute".to_string(),
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
                timeouts: timeouts.clone(),
                retry: retry.clone(),
            };
            (precedence, route)
        })
        .collect())
}

/// backendRefs → weighted backends. "If all entries in BackendRefs are
/// invalid, and there are also no filters specified that would result in a
/// response being sent, the underlying implementation MUST return a 500
/// status code"; an invalid entry's share of traffic answers 500 as well.
pub(crate) fn forward(
    env: &Env<'_>,
    backend_refs: &[HttpBackendRef],
    field: &str,
    clusters: &mut BTreeMap<String, Cluster>,
    errors: &mut Vec<BackendError>,
) -> Result<RouteAction, RuleError> {
    if backend_refs.is_empty() {
        return Ok(RouteAction::DirectResponse {
            status: 500,
            body: None,
        });
    }
    let mut backends = Vec::new();
    let mut redirects = Vec::new();
    for (i, b) in backend_refs.iter().enumerate() {
        let ref_field = format!("{field}.backendRefs[{i}]");
        let weight = u32::try_from(b.weight.unwrap_or(1))
            .map_err(|_| RuleError::new(format!("{ref_field}.weight"), "must not be negative"))?;
        let reference = BackendRef {
            route_kind: env.route_kind,
            field: ref_field.clone(),
            group: b.group.as_deref(),
            kind: b.kind.as_deref(),
            name: &b.name,
            namespace: b.namespace.as_deref(),
            port: b.port,
        };
        let cluster = match backends::resolve(env.objects, env.route_ns, &reference, clusters) {
            Ok(name) => Some(name),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let converted =
            filters::convert(env, &b.filters, &format!("{ref_field}.filters"), clusters)?;
        errors.extend(converted.backend_errors);
        if weight > 0 {
            redirects.push((
                ref_field,
                converted.redirect.clone(),
                converted.filters.clone(),
            ));
        }
        // Requests this backend's unresolved extension filter would see answer 500.
        let cluster = cluster.filter(|_| !converted.unresolved_extension);
        backends.push(WeightedBackend {
            cluster,
            weight,
            filters: converted.filters,
        });
    }
    // With every weight 0 there is no backend to send to.
    if backends.iter().all(|b| b.weight == 0) {
        return Ok(RouteAction::DirectResponse {
            status: 500,
            body: None,
        });
    }
    // A RequestRedirect on a backendRef answers every request sent to that
    // backend. When every backend that gets traffic redirects the same way,
    // that is the rule's action; a mix cannot be expressed per backend.
    if redirects.iter().any(|(_, r, _)| r.is_some()) {
        let (first_field, first, filters) = &redirects[0];
        if redirects.iter().all(|(_, r, f)| r == first && f == filters) {
            if let Some(redirect) = first {
                return Ok(RouteAction::Redirect(redirect.clone()));
            }
        }
        return Err(RuleError::new(
            format!("{first_field}.filters"),
            "a RequestRedirect on a backendRef must be shared by every backendRef with a weight",
        ));
    }
    Ok(RouteAction::Forward(backends))
}

fn timeouts(rule: &HttpRouteRule, field: &str) -> Result<Timeouts, RuleError> {
    let Some(t) = &rule.timeouts else {
        return Ok(Timeouts::default());
    };
    // "Setting a timeout to the zero duration (e.g. "0s") SHOULD disable the timeout."
    let parse = |value: &Option<String>, name: &str| {
        value
            .as_deref()
            .map(|v| {
                parse_duration(v)
                    .map_err(|e| RuleError::new(format!("{field}.timeouts.{name}"), e.to_string()))
            })
            .transpose()
            .map(|d| d.filter(|d| !d.is_zero()))
    };
    let request = parse(&t.request, "request")?;
    let backend_request = parse(&t.backend_request, "backendRequest")?;
    // "BackendRequest [...] MUST be less than or equal to the Request timeout."
    if let (Some(r), Some(b)) = (request, backend_request) {
        if b > r {
            return Err(RuleError::new(
                format!("{field}.timeouts.backendRequest"),
                "must not exceed timeouts.request",
            ));
        }
    }
    Ok(Timeouts {
        request,
        backend_request,
    })
}

fn retry(rule: &HttpRouteRule, field: &str) -> Result<Option<RetryPolicy>, RuleError> {
    let Some(r) = &rule.retry else {
        return Ok(None);
    };
    let codes = r
        .codes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            u16::try_from(*c)
                .ok()
                .filter(|c| (400..600).contains(c))
                .ok_or_else(|| {
                    RuleError::new(
                        format!("{field}.retry.codes[{i}]"),
                        format!("{c} is not a 4xx/5xx status"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let backoff = r
        .backoff
        .as_deref()
        .map(|b| {
            parse_duration(b)
                .map_err(|e| RuleError::new(format!("{field}.retry.backoff"), e.to_string()))
        })
        .transpose()?;
    Ok(Some(RetryPolicy {
        // Unspecified attempts are implementation-specific; Weir retries once.
        attempts: u32::try_from(r.attempts.unwrap_or(1)).unwrap_or(0),
        codes,
        // A reset or refused connection is as retriable as a 5xx answer.
        on_connect_failure: true,
        backoff,
        per_try_timeout: None,
    }))
}

//! HTTPRoute matches → model matches, with regex validation.

use weir_model::{HeaderMatch, PathMatch, QueryMatch, RouteMatch, StringMatch};

use crate::api::{HttpHeaderMatch, HttpRouteMatch};

/// A rule that cannot be served as written. The whole rule is dropped and
/// the route gets `Accepted=False UnsupportedValue` naming `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub(crate) struct RuleError {
    pub field: String,
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        RuleError {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn check_regex(field: &str, value: &str) -> Result<(), RuleError> {
    regex::Regex::new(value)
        .map(drop)
        .map_err(|e| RuleError::new(field, format!("invalid regular expression {value:?}: {e}")))
}

/// Converts `spec.rules[r].matches[m]` (`field`).
pub(crate) fn convert(m: &HttpRouteMatch, field: &str) -> Result<RouteMatch, RuleError> {
    let path = m.path.clone().unwrap_or_default();
    let value = path.value.clone().unwrap_or_else(|| "/".to_string());
    let path_field = format!("{field}.path");
    let path = match path.type_.as_deref().unwrap_or("PathPrefix") {
        "Exact" | "PathPrefix" if !value.starts_with('/') => {
            return Err(RuleError::new(
                format!("{path_field}.value"),
                format!("{value:?} must start with '/'"),
            ))
        }
        "Exact" => PathMatch::Exact(value),
        "PathPrefix" => PathMatch::Prefix(value),
        "RegularExpression" => {
            check_regex(&format!("{path_field}.value"), &value)?;
            PathMatch::Regex(value)
        }
        other => {
            return Err(RuleError::new(
                format!("{path_field}.type"),
                format!("unsupported path match type {other:?}"),
            ))
        }
    };
    // "If multiple entries specify equivalent header names, only the first
    // entry with an equivalent name MUST be considered." (names are
    // case-insensitive for headers, case-sensitive for query parameters)
    let mut headers: Vec<HeaderMatch> = Vec::new();
    for (i, h) in m.headers.iter().enumerate() {
        let value = string_match(h, &format!("{field}.headers[{i}]"))?;
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
    let mut query: Vec<QueryMatch> = Vec::new();
    for (i, q) in m.query_params.iter().enumerate() {
        let value = string_match(q, &format!("{field}.queryParams[{i}]"))?;
        if !query.iter().any(|seen| seen.name == q.name) {
            query.push(QueryMatch {
                name: q.name.clone(),
                value,
            });
        }
    }
    Ok(RouteMatch {
        path,
        method: m.method.as_ref().map(|s| s.to_ascii_uppercase()),
        headers,
        query,
        port: None,
    })
}

fn string_match(m: &HttpHeaderMatch, field: &str) -> Result<StringMatch, RuleError> {
    match m.type_.as_deref().unwrap_or("Exact") {
        "Exact" => Ok(StringMatch::Exact(m.value.clone())),
        "RegularExpression" => {
            check_regex(&format!("{field}.value"), &m.value)?;
            Ok(StringMatch::Regex(m.value.clone()))
        }
        other => Err(RuleError::new(
            format!("{field}.type"),
            format!("unsupported match type {other:?}"),
        )),
    }
}

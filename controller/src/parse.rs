//! Multi-document YAML → typed [`Object`]s.
//!
//! Documents are split on `---` lines before parsing, so that one broken
//! document does not hide the others of its file (serde_yaml stops the
//! whole stream at the first syntax error).

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::objects::{is_cluster_scoped, Object, OtherObject};

/// A document that could not be read, with what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// 1-based line of the document's first line in the file.
    pub line: usize,
    /// `Kind ns/name`, when the document got that far.
    pub object: Option<String>,
    /// Field path such as `spec.listeners[0].port`, when known.
    pub field: Option<String>,
    pub message: String,
}

/// A parsed document: the object, plus the part whose changes bump the
/// generation (`spec`, or `data` for ConfigMap/Secret).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedObject {
    pub object: Object,
    pub generation_source: Value,
    /// `metadata.generation` was written in the file.
    pub explicit_generation: bool,
}

/// Parses every document of `text`; each document yields an object, nothing
/// (empty document), or an error.
pub fn parse_documents(text: &str) -> Vec<Result<ParsedObject, ParseError>> {
    split_documents(text)
        .into_iter()
        .filter_map(|(line, doc)| parse_document(doc.as_str(), line).transpose())
        .collect()
}

/// Splits on document separators (`---` at the start of a line), returning
/// each document with its first line number.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (index, line) in text.lines().enumerate() {
        let is_separator = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_separator {
            docs.push((start, std::mem::take(&mut current)));
            start = index + 2;
            // `--- {a: b}` carries content on the separator line.
            let rest = line[3..].trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                current.push_str(rest);
                current.push('\n');
                start = index + 1;
            }
        } else if line == "..." {
            continue;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.push((start, current));
    docs
}

fn parse_document(text: &str, line: usize) -> Result<Option<ParsedObject>, ParseError> {
    let err = |object: Option<String>, e: serde_yaml::Error| {
        let message = e.to_string();
        ParseError {
            line: line + e.location().map_or(0, |l| l.line().saturating_sub(1)),
            object,
            field: field_of(&message),
            message,
        }
    };
    let value: Value = serde_yaml::from_str(text).map_err(|e| err(None, e))?;
    if value.is_null() {
        return Ok(None);
    }
    let str_at = |path: &[&str]| -> Option<String> {
        let mut v = &value;
        for p in path {
            v = v.get(*p)?;
        }
        v.as_str().map(str::to_string)
    };
    let missing = |field: &str| ParseError {
        line,
        object: None,
        field: Some(field.to_string()),
        message: format!("{field} is required"),
    };
    let api_version = str_at(&["apiVersion"]).ok_or_else(|| missing("apiVersion"))?;
    let kind = str_at(&["kind"]).ok_or_else(|| missing("kind"))?;
    let name = str_at(&["metadata", "name"]).ok_or_else(|| missing("metadata.name"))?;
    let namespace = if is_cluster_scoped(&kind) {
        None
    } else {
        Some(str_at(&["metadata", "namespace"]).unwrap_or_else(|| "default".to_string()))
    };
    let label = match &namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    fn typed<T: DeserializeOwned>(text: &str) -> Result<T, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }
    let typed_result = match (group, kind.as_str()) {
        ("gateway.networking.k8s.io", "GatewayClass") => typed(text).map(Object::GatewayClass),
        ("gateway.networking.k8s.io", "Gateway") => typed(text).map(Object::Gateway),
        ("gateway.networking.k8s.io", "HTTPRoute") => typed(text).map(Object::HttpRoute),
        ("gateway.networking.k8s.io", "GRPCRoute") => typed(text).map(Object::GrpcRoute),
        ("gateway.networking.k8s.io", "ReferenceGrant") => typed(text).map(Object::ReferenceGrant),
        ("", "Service") => typed(text).map(Object::Service),
        ("discovery.k8s.io", "EndpointSlice") => typed(text).map(Object::EndpointSlice),
        ("", "Secret") => typed(text).map(Object::Secret),
        ("", "ConfigMap") => typed(text).map(Object::ConfigMap),
        ("", "Namespace") => typed(text).map(Object::Namespace),
        _ => Ok(Object::Other(OtherObject {
            api_version: api_version.clone(),
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            generation: None,
        })),
    };
    let object = typed_result.map_err(|e| err(Some(label), e))?;
    let explicit_generation = value
        .get("metadata")
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64);
    let mut object = object;
    if let Some(generation) = explicit_generation {
        object.set_generation(generation);
    }
    let generation_source = match kind.as_str() {
        "ConfigMap" | "Secret" => {
            let mut data = serde_yaml::Mapping::new();
            for key in ["data", "stringData", "binaryData"] {
                if let Some(v) = value.get(key) {
                    data.insert(Value::from(key), v.clone());
                }
            }
            Value::Mapping(data)
        }
        _ => value.get("spec").cloned().unwrap_or(Value::Null),
    };
    Ok(Some(ParsedObject {
        object,
        generation_source,
        explicit_generation: explicit_generation.is_some(),
    }))
}

/// serde_yaml prefixes messages with the failing path (`spec.listeners[0].port: ...`).
fn field_of(message: &str) -> Option<String> {
    let (head, _) = message.split_once(": ")?;
    let looks_like_path = !head.is_empty()
        && !head.contains(' ')
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '[' | ']' | '_' | '-'));
    looks_like_path.then(|| head.to_string())
}

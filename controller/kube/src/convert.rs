//! API server objects → the typed objects the translation reads.
//!
//! Objects go through the same parser as files in standalone mode, so both
//! modes read a field the same way.

use kube::core::{ApiResource, DynamicObject, TypeMeta};
use weir_controller::parse::parse_documents;
use weir_controller::{Object, ObjectKey};

/// Why an object from the API server could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("cannot encode the object: {0}")]
    Encode(#[from] serde_yaml::Error),
    #[error("{object}: {field}{message}")]
    Invalid { object: String, field: String, message: String },
    #[error("the object has no name")]
    NoName,
}

/// An object as Weir keeps it: the typed object plus its current `status`
/// (the status writer compares against it).
#[derive(Debug, Clone)]
pub struct Converted {
    pub object: Object,
    pub status: Option<serde_json::Value>,
}

/// The identity of a watched object, without parsing it.
pub fn key_of(resource: &ApiResource, object: &DynamicObject) -> Option<ObjectKey> {
    let name = object.metadata.name.clone()?;
    let namespace = match object.metadata.namespace.clone() {
        Some(ns) => Some(ns),
        None if matches!(resource.kind.as_str(), "GatewayClass" | "Namespace") => None,
        None => Some("default".to_string()),
    };
    Some(ObjectKey { kind: resource.kind.clone(), namespace, name })
}

/// Converts one watched object. List items come without `apiVersion` and
/// `kind`, so they are taken from the resource being watched.
pub fn convert(resource: &ApiResource, object: &DynamicObject) -> Result<Converted, ConvertError> {
    if object.metadata.name.is_none() {
        return Err(ConvertError::NoName);
    }
    let mut object = object.clone();
    object.types = Some(TypeMeta {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
    });
    // Server-side bookkeeping the translation never reads.
    object.metadata.managed_fields = None;
    let status = match &mut object.data {
        serde_json::Value::Object(map) => map.remove("status"),
        _ => None,
    };
    let text = serde_yaml::to_string(&object)?;
    let parsed = parse_documents(&text)
        .into_iter()
        .next()
        .ok_or(ConvertError::NoName)?
        .map_err(|e| ConvertError::Invalid {
            object: e.object.unwrap_or_else(|| format!("{} {:?}", resource.kind, object.metadata.name)),
            field: e.field.map(|f| format!("{f}: ")).unwrap_or_default(),
            message: e.message,
        })?;
    let mut typed = parsed.object;
    // The API server's generation is authoritative (core kinds have none).
    typed.set_generation(object.metadata.generation.unwrap_or(1));
    Ok(Converted { object: typed, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_without_type_meta_become_typed_objects() {
        let resource = crate::kinds::gateway_api_default("HTTPRoute");
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r", "namespace": "app", "generation": 4,
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"parentRefs": [{"name": "gw"}]},
            "status": {"parents": []}
        }))
        .unwrap();
        let converted = convert(&resource, &object).unwrap();
        assert!(matches!(converted.object, Object::HttpRoute(_)));
        assert_eq!(converted.object.generation(), Some(4));
        assert_eq!(converted.status, Some(serde_json::json!({"parents": []})));
        assert_eq!(key_of(&resource, &object).unwrap().to_string(), "HTTPRoute app/r");
    }

    #[test]
    fn a_malformed_spec_names_the_field() {
        let resource = crate::kinds::gateway_api_default("Gateway");
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "gw", "namespace": "app"},
            "spec": {"gatewayClassName": "weir", "listeners": [{"name": "l", "port": "x", "protocol": "HTTP"}]}
        }))
        .unwrap();
        let err = convert(&resource, &object).unwrap_err().to_string();
        assert!(err.contains("Gateway app/gw"), "{err}");
        assert!(err.contains("port"), "{err}");
    }
}

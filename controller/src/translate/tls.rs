//! Listener `tls.certificateRefs` → certificates.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use weir_model::Certificate;

use super::refgrant::{self, normalize_group};
use crate::api::{SecretObjectReference, GATEWAY_GROUP};
use crate::objects::ObjectSet;

/// A certificateRef that cannot be used; `reason()` is the listener's
/// ResolvedRefs reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CertificateError {
    #[error("{field}: {kind} in group {group:?} is not a supported certificate reference")]
    UnsupportedKind {
        field: String,
        group: String,
        kind: String,
    },
    #[error("{field}: Secret {namespace}/{name} in another namespace is not permitted by any ReferenceGrant")]
    RefNotPermitted {
        field: String,
        namespace: String,
        name: String,
    },
    #[error("{field}: Secret {namespace}/{name} does not exist")]
    NotFound {
        field: String,
        namespace: String,
        name: String,
    },
    #[error("{field}: Secret {namespace}/{name} is not a valid TLS secret: {problem}")]
    Invalid {
        field: String,
        namespace: String,
        name: String,
        problem: String,
    },
}

impl CertificateError {
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            CertificateError::RefNotPermitted { .. } => "RefNotPermitted",
            _ => "InvalidCertificateRef",
        }
    }
}

/// Resolves one certificateRef of a listener of a Gateway in `gateway_ns`,
/// adding the certificate to `certificates` under `ns/name`.
pub(crate) fn resolve(
    objects: &ObjectSet,
    gateway_ns: &str,
    field: String,
    reference: &SecretObjectReference,
    certificates: &mut BTreeMap<String, Certificate>,
) -> Result<String, CertificateError> {
    let group = normalize_group(reference.group.as_deref().unwrap_or(""));
    let kind = reference.kind.as_deref().unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        return Err(CertificateError::UnsupportedKind {
            field,
            group: group.to_string(),
            kind: kind.to_string(),
        });
    }
    let namespace = reference.namespace.as_deref().unwrap_or(gateway_ns);
    let name = reference.name.as_str();
    let from = refgrant::From {
        group: GATEWAY_GROUP,
        kind: "Gateway",
        namespace: gateway_ns,
    };
    let to = refgrant::To {
        group: "",
        kind: "Secret",
        namespace,
        name,
    };
    if !refgrant::permitted(objects, from, to) {
        return Err(CertificateError::RefNotPermitted {
            field,
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
    }
    let Some(secret) = objects
        .secrets
        .get(&(namespace.to_string(), name.to_string()))
    else {
        return Err(CertificateError::NotFound {
            field,
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
    };
    let certificate = certificate_of(secret).map_err(|problem| CertificateError::Invalid {
        field,
        namespace: namespace.to_string(),
        name: name.to_string(),
        problem,
    })?;
    let key = format!("{namespace}/{name}");
    certificates.insert(key.clone(), certificate);
    Ok(key)
}

/// `tls.crt` and `tls.key` of a `kubernetes.io/tls` Secret (from `data`, or
/// `stringData` as written by hand), checked to hold a PEM certificate chain
/// and a PEM private key.
fn certificate_of(secret: &Secret) -> Result<Certificate, String> {
    if let Some(kind) = secret.type_.as_deref() {
        if kind != "kubernetes.io/tls" {
            return Err(format!("type is {kind:?}, expected \"kubernetes.io/tls\""));
        }
    }
    let read = |key: &str| -> Result<String, String> {
        let from_string = secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))
            .cloned();
        let from_data = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| String::from_utf8(b.0.clone()));
        match (from_string, from_data) {
            (Some(s), _) => Ok(s),
            (None, Some(Ok(s))) => Ok(s),
            (None, Some(Err(_))) => Err(format!("{key} is not UTF-8 PEM")),
            (None, None) => Err(format!("{key} is missing")),
        }
    };
    let cert_pem = read("tls.crt")?;
    let key_pem = read("tls.key")?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut cert_pem.as_bytes()).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => {}
        Ok(_) => return Err("tls.crt holds no PEM certificate".to_string()),
        Err(e) => return Err(format!("tls.crt: {e}")),
    }
    match rustls_pemfile::private_key(&mut key_pem.as_bytes()) {
        Ok(Some(_)) => {}
        Ok(None) => return Err("tls.key holds no PEM private key".to_string()),
        Err(e) => return Err(format!("tls.key: {e}")),
    }
    Ok(Certificate { cert_pem, key_pem })
}

//! The kinds the controller watches, and the API calls (RBAC) it makes.

use kube::core::{ApiResource, GroupVersionKind};

/// The Gateway API group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Gateway API kinds, watched in whichever version the cluster serves
/// (discovery picks the preferred served version). Missing kinds (a CRD not
/// installed) are logged and skipped.
pub const GATEWAY_API_KINDS: &[&str] = &[
    "GatewayClass",
    "Gateway",
    "HTTPRoute",
    "GRPCRoute",
    "TLSRoute",
    "ReferenceGrant",
    "BackendTLSPolicy",
];

/// Kinds whose status Weir writes (through the status subresource).
pub const STATUS_KINDS: &[&str] = &[
    "GatewayClass",
    "Gateway",
    "HTTPRoute",
    "GRPCRoute",
    "TLSRoute",
    "BackendTLSPolicy",
];

/// Core kinds, watched cluster-wide.
pub fn core_kinds() -> Vec<ApiResource> {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    vec![
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<EndpointSlice>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Namespace>(&()),
    ]
}

/// The version Gateway API v1.4 serves a kind in, for code without
/// discovery (tests). The controller itself asks discovery.
pub fn gateway_api_default(kind: &str) -> ApiResource {
    let version = match kind {
        "TLSRoute" => "v1alpha2",
        "ReferenceGrant" => "v1beta1",
        _ => "v1",
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(GATEWAY_GROUP, version, kind))
}

/// One RBAC rule the code needs: (apiGroup, resource, verbs).
pub type Rule = (&'static str, &'static str, &'static [&'static str]);

/// kube-runtime watchers list (paged) then watch.
const WATCH: &[&str] = &["list", "watch"];
/// Status is written with a JSON merge patch on the status subresource.
const STATUS: &[&str] = &["patch"];

/// Every API call the controller makes, as RBAC rules. `deploy/rbac.yaml`
/// must grant exactly these (a test checks it). Keep it next to the code
/// that makes the calls: a new call without a rule here fails that test.
pub const CONTROLLER_RULES: &[Rule] = &[
    (GATEWAY_GROUP, "gatewayclasses", WATCH),
    (GATEWAY_GROUP, "gateways", WATCH),
    (GATEWAY_GROUP, "httproutes", WATCH),
    (GATEWAY_GROUP, "grpcroutes", WATCH),
    (GATEWAY_GROUP, "tlsroutes", WATCH),
    (GATEWAY_GROUP, "referencegrants", WATCH),
    (GATEWAY_GROUP, "backendtlspolicies", WATCH),
    // status::StatusWriter patches the status subresource only.
    (GATEWAY_GROUP, "gatewayclasses/status", STATUS),
    (GATEWAY_GROUP, "gateways/status", STATUS),
    (GATEWAY_GROUP, "httproutes/status", STATUS),
    (GATEWAY_GROUP, "grpcroutes/status", STATUS),
    (GATEWAY_GROUP, "tlsroutes/status", STATUS),
    (GATEWAY_GROUP, "backendtlspolicies/status", STATUS),
    ("", "services", WATCH),
    ("", "configmaps", WATCH),
    ("", "namespaces", WATCH),
    ("discovery.k8s.io", "endpointslices", WATCH),
    // secrets::SecretFetcher: GET by name only, never list or watch.
    ("", "secrets", &["get"]),
    // lease::LeaderElector.
    ("coordination.k8s.io", "leases", &["get", "create", "update"]),
    // auth::TokenReviewer.
    ("authentication.k8s.io", "tokenreviews", &["create"]),
];

/// The resource (plural) of a status kind, for the status path.
pub fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.strip_suffix('y').filter(|stem| !stem.ends_with(['a', 'e', 'o', 'u'])) {
        Some(stem) => format!("{stem}ies"),
        None if lower.ends_with("ss") => format!("{lower}es"),
        None => format!("{lower}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_match_the_crds() {
        assert_eq!(plural("GatewayClass"), "gatewayclasses");
        assert_eq!(plural("BackendTLSPolicy"), "backendtlspolicies");
        assert_eq!(plural("HTTPRoute"), "httproutes");
        assert_eq!(plural("Gateway"), "gateways");
        for kind in GATEWAY_API_KINDS {
            assert!(CONTROLLER_RULES.iter().any(|(g, r, _)| *g == GATEWAY_GROUP && *r == plural(kind)));
        }
        for kind in STATUS_KINDS {
            let sub = format!("{}/status", plural(kind));
            assert!(CONTROLLER_RULES.iter().any(|(_, r, _)| *r == sub), "{sub}");
        }
    }
}

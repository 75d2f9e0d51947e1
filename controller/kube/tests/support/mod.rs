//! Shared test helpers: the fake API server and a small cluster's objects.
#![allow(dead_code)]

pub mod fake_api;

use std::time::Duration;

use serde_json::{json, Value};

pub use fake_api::FakeApi;

pub const CONTROLLER_NAME: &str = "weir.dev/gateway-controller";
pub const GATEWAY_API: &str = "gateway.networking.k8s.io/v1";

/// Polls `check` every 20 ms until it returns `Some`, or panics naming `what`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn gateway_class(name: &str, controller: &str) -> Value {
    json!({"apiVersion": GATEWAY_API, "kind": "GatewayClass", "metadata": {"name": name},
           "spec": {"controllerName": controller}})
}

pub fn gateway(ns: &str, name: &str, class: &str, port: u16) -> Value {
    json!({"apiVersion": GATEWAY_API, "kind": "Gateway", "metadata": {"name": name, "namespace": ns},
           "spec": {"gatewayClassName": class, "listeners": [
               {"name": "http", "port": port, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]}})
}

pub fn http_route(ns: &str, name: &str, gateway: (&str, &str), host: &str, service: &str) -> Value {
    json!({"apiVersion": GATEWAY_API, "kind": "HTTPRoute", "metadata": {"name": name, "namespace": ns},
           "spec": {"parentRefs": [{"name": gateway.1, "namespace": gateway.0}], "hostnames": [host],
                    "rules": [{"backendRefs": [{"name": service, "port": 80}]}]}})
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A Service on port 80 and its EndpointSlice pointing at `backend`.
pub fn service_with_endpoint(ns: &str, name: &str, backend: std::net::SocketAddr) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
               "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend.port()}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": format!("{name}-1"), "namespace": ns,
                            "labels": {"kubernetes.io/service-name": name}},
               "addressType": "IPv4",
               "ports": [{"name": "http", "port": backend.port()}],
               "endpoints": [{"addresses": [backend.ip().to_string()], "conditions": {"ready": true}}]}),
    ]
}

/// The Service in front of the gateway replicas, with a LoadBalancer address.
pub fn gateway_service(ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "weir-gateway", "namespace": "weir-system"},
           "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10", "ports": [{"port": 80}]},
           "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}})
}

/// The controller options the tests use.
pub fn options(lease: Option<weir_kube::lease::LeaseOptions>) -> weir_kube::ControllerOptions {
    weir_kube::ControllerOptions {
        controller_name: CONTROLLER_NAME.into(),
        gateway_service: Some(("weir-system".into(), "weir-gateway".into())),
        lease,
        secret_refresh: Duration::from_millis(200),
    }
}

/// The snapshot as JSON text (for `contains` checks on host names).
pub fn snapshot_text(controller: &weir_kube::Controller) -> Option<(u64, String)> {
    let current = controller.snapshots.borrow().clone()?;
    Some((current.version, serde_json::to_string(&*current).unwrap()))
}

/// Status patches sent to paths ending in `suffix`.
pub fn patches_to(api: &FakeApi, suffix: &str) -> Vec<Value> {
    api.patches().into_iter().filter(|(path, _)| path.ends_with(suffix)).map(|(_, body)| body).collect()
}

/// A CA and a certificate it signed for `names`: (ca_pem, cert_pem, key_pem).
pub fn certificate_chain(names: &[&str]) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = CertificateParams::new(names).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// A `kubernetes.io/tls` Secret.
pub fn tls_secret(ns: &str, name: &str, cert_pem: &str, key_pem: &str) -> Value {
    use k8s_openapi::ByteString;
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(
            [("tls.crt".to_string(), ByteString(cert_pem.as_bytes().to_vec())), ("tls.key".to_string(), ByteString(key_pem.as_bytes().to_vec()))]
                .into(),
        ),
        ..Default::default()
    };
    let mut value = serde_json::to_value(secret).unwrap();
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("Secret");
    value
}

/// A Gateway with one HTTPS listener terminating with the Secret `secret`.
pub fn https_gateway(ns: &str, name: &str, class: &str, port: u16, secret: &str) -> Value {
    json!({"apiVersion": GATEWAY_API, "kind": "Gateway", "metadata": {"name": name, "namespace": ns},
           "spec": {"gatewayClassName": class, "listeners": [
               {"name": "https", "port": port, "protocol": "HTTPS",
                "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": secret}]}}]}})
}

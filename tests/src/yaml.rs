//! YAML builders for the objects the integration tests need.

use std::net::SocketAddr;

/// The port every test Gateway listens on (each test has its own address).
pub const PORT: u16 = 8080;

pub fn gateway_class() -> String {
    "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: weir}
spec: {controllerName: weir.dev/gateway-controller}
"
    .to_string()
}

/// A Gateway `default/gw` with one HTTP listener `http` on [`PORT`].
pub fn gateway() -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: weir
  listeners:
  - {{name: http, port: {PORT}, protocol: HTTP}}
"
    )
}

/// A Service `default/<name>` port 80 and an EndpointSlice pointing at `backend`.
pub fn service(name: &str, backend: SocketAddr) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  ports: [{{name: http, port: 80, targetPort: {port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: ['{ip}'], conditions: {{ready: true}}}}]
",
        port = backend.port(),
        ip = backend.ip()
    )
}

/// An HTTPRoute `default/<name>` on `gw` for `host`, path prefix `/`, to `service`.
pub fn route(name: &str, host: &str, service: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [{host}]
  rules:
  - backendRefs: [{{name: {service}, port: 80}}]
"
    )
}

/// Joins YAML documents.
pub fn docs(parts: &[String]) -> String {
    parts.join("---\n")
}

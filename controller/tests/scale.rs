//! Translation at scale: 10k HTTPRoutes over 1k hostnames on one Gateway.
//! Ignored by default (it measures, it does not assert on time); run with
//! `cargo test -p weir-controller --release --test scale -- --ignored --nocapture`.

use std::time::Instant;

use weir_controller::{
    translate, AddressPool, Object, ObjectSet, TranslateOptions, TranslateState,
};

fn objects(routes: usize) -> ObjectSet {
    let mut text = String::from(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: weir}
spec: {controllerName: weir.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: weir
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: default}
spec: {ports: [{port: 80}]}
",
    );
    for i in 0..routes {
        text.push_str(&format!(
            "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r{i}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [h{}.example.com]
  rules: [{{matches: [{{path: {{value: /p{i}}}}}], backendRefs: [{{name: svc, port: 80}}]}}]
",
            i % 1000
        ));
    }
    weir_controller::parse::parse_documents(&text)
        .into_iter()
        .map(|d| d.map(|p| p.object))
        .collect::<Result<Vec<Object>, _>>()
        .expect("parses")
        .into_iter()
        .collect()
}

#[test]
#[ignore]
fn ten_thousand_routes() {
    let set = objects(10_000);
    let opts = TranslateOptions::new(
        "weir.dev/gateway-controller".into(),
        AddressPool::new("127.0.0.1/32".parse().expect("net")).expect("pool"),
    );
    let mut state = TranslateState::new();
    for round in 0..3 {
        let start = Instant::now();
        let t = translate(&set, &opts, &mut state);
        let hosts = t.snapshot.listeners[0].virtual_hosts.len();
        println!(
            "round {round}: {:?} ({hosts} virtual hosts)",
            start.elapsed()
        );
        assert_eq!(hosts, 1001);
    }
}

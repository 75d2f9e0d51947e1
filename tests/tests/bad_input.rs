//! Bad input is reported precisely and never takes down what already works:
//! each test breaks one thing and checks both the report (status condition or
//! admin error naming the object and field) and that the other routes keep
//! serving.

use std::net::SocketAddr;

use serde_json::Value;
use weir_tests::yaml::{docs, gateway, gateway_class, route, service, PORT};
use weir_tests::{client::get_blocking, Backend, Gateway};

fn listener(gw: &Gateway) -> SocketAddr {
    SocketAddr::new(gw.address, PORT)
}

/// Serves `good.example.com` → backend "good" and returns the running gateway.
fn with_good_route(backend: &Backend, extra: &[(&str, &str)]) -> Gateway {
    let base = docs(&[gateway_class(), gateway(), service("good", backend.addr), route("good", "good.example.com", "good")]);
    let mut files = vec![("base.yaml", base.as_str())];
    files.extend_from_slice(extra);
    let gw = Gateway::start(&files).expect("gateway starts");
    gw.eventually("the good route serves", |gw| {
        let answer = get_blocking(listener(gw), "good.example.com", "/ok")?;
        Ok(answer.status == 200 && answer.text() == "good /ok")
    })
    .unwrap();
    gw
}

fn assert_good_still_serves(gw: &Gateway) {
    let answer = get_blocking(listener(gw), "good.example.com", "/still").expect("request");
    assert_eq!((answer.status, answer.text().as_str()), (200, "good /still"), "log:\n{}", gw.log_tail());
}

/// The conditions of the route's first parent.
fn parent_conditions(gw: &Gateway, route: &str) -> Vec<Value> {
    gw.object_status("HTTPRoute", "default", route)
        .ok()
        .flatten()
        .and_then(|s| s["parents"].get(0).map(|p| p["conditions"].clone()))
        .and_then(|c| c.as_array().cloned())
        .unwrap_or_default()
}

fn condition<'a>(conditions: &'a [Value], kind: &str) -> Option<&'a Value> {
    conditions.iter().find(|c| c["type"] == kind)
}

#[test]
fn malformed_yaml_is_reported_and_the_last_good_config_keeps_serving() {
    let backend = Backend::start("good").unwrap();
    let gw = with_good_route(&backend, &[]);
    // Break the very file that carries the working route.
    gw.write("base.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: [unclosed\n").unwrap();
    gw.eventually("an error naming base.yaml", |gw| {
        let status = gw.status()?;
        let errors = status["errors"].as_array().cloned().unwrap_or_default();
        Ok(errors.iter().any(|e| e["file"].as_str().is_some_and(|f| f.ends_with("base.yaml"))))
    })
    .unwrap();
    assert_good_still_serves(&gw);
    // A later good file is picked up again.
    let fixed = docs(&[gateway_class(), gateway(), service("good", backend.addr), route("good", "good.example.com", "good"), route("more", "more.example.com", "good")]);
    gw.write("base.yaml", &fixed).unwrap();
    gw.eventually("the fixed file is served", |gw| Ok(get_blocking(listener(gw), "more.example.com", "/x")?.status == 200))
        .unwrap();
}

#[test]
fn a_route_naming_a_missing_service_gets_backend_not_found_and_500() {
    let backend = Backend::start("good").unwrap();
    let broken = route("broken", "broken.example.com", "no-such-service");
    let gw = with_good_route(&backend, &[("broken.yaml", &broken)]);
    gw.eventually("ResolvedRefs=False BackendNotFound on the broken route", |gw| {
        let conditions = parent_conditions(gw, "broken");
        Ok(condition(&conditions, "ResolvedRefs").is_some_and(|c| {
            c["status"] == "False"
                && c["reason"] == "BackendNotFound"
                && c["message"].as_str().is_some_and(|m| m.contains("no-such-service"))
        }))
    })
    .unwrap();
    let answer = get_blocking(listener(&gw), "broken.example.com", "/").unwrap();
    assert_eq!(answer.status, 500, "the invalid backend's share answers 500");
    assert_good_still_serves(&gw);
}

#[test]
fn an_invalid_regex_rejects_that_route_only_and_names_the_field() {
    let backend = Backend::start("good").unwrap();
    let bad = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad-regex, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [regex.example.com]
  rules:
  - matches: [{path: {type: RegularExpression, value: '/(unclosed'}}]
    backendRefs: [{name: good, port: 80}]
";
    let gw = with_good_route(&backend, &[("bad.yaml", bad)]);
    gw.eventually("a False condition naming the regex field", |gw| {
        let conditions = parent_conditions(gw, "bad-regex");
        Ok(conditions.iter().any(|c| {
            c["status"] == "False"
                && c["message"].as_str().is_some_and(|m| m.contains("spec.rules[0].matches[0].path"))
        }))
    })
    .unwrap();
    let answer = get_blocking(listener(&gw), "regex.example.com", "/(unclosed").unwrap();
    assert_ne!(answer.status, 200, "a rejected rule must not serve");
    assert_good_still_serves(&gw);
}

#[test]
fn conflicting_listeners_are_marked_conflicted_and_the_rest_serves() {
    let backend = Backend::start("good").unwrap();
    // A second Gateway whose two listeners share port and hostname.
    let conflicted = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: clash, namespace: default}}
spec:
  gatewayClassName: weir
  listeners:
  - {{name: one, port: {port}, protocol: HTTP, hostname: clash.example.com}}
  - {{name: two, port: {port}, protocol: HTTP, hostname: clash.example.com}}
  - {{name: fine, port: {port}, protocol: HTTP, hostname: fine.example.com}}
",
        port = PORT + 1
    );
    let gw = with_good_route(&backend, &[("clash.yaml", &conflicted)]);
    gw.eventually("listeners one and two Conflicted=True HostnameConflict", |gw| {
        let Some(status) = gw.object_status("Gateway", "default", "clash")? else { return Ok(false) };
        let listeners = status["listeners"].as_array().cloned().unwrap_or_default();
        let conflicted = |name: &str| {
            listeners.iter().any(|l| {
                l["name"] == name
                    && l["conditions"].as_array().is_some_and(|cs| {
                        cs.iter().any(|c| c["type"] == "Conflicted" && c["status"] == "True" && c["reason"] == "HostnameConflict")
                    })
            })
        };
        let fine_ok = listeners.iter().any(|l| {
            l["name"] == "fine"
                && l["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Conflicted" && c["status"] == "False"))
        });
        Ok(conflicted("one") && conflicted("two") && fine_ok)
    })
    .unwrap();
    assert_good_still_serves(&gw);
}

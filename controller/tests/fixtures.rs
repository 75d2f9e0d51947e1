//! Golden translation tests: each `tests/fixtures/*.yaml` holds input
//! objects and the statuses, virtual hosts, clusters and request outcomes
//! they must produce. Every fixture gets a GatewayClass `weir` of ours.
//!
//! Expectation kinds (`expect:` list):
//! - `status`: conditions of an object, of one route parent or of one
//!   listener (`message` is a substring check), plus `attachedRoutes` /
//!   `supportedKinds` for listeners and `addresses` for Gateways.
//! - `noParents`: a route has no parent entry from us.
//! - `vhost`: the exact route order (`kind/ns/name/rule`, one per match) of a
//!   virtual host of a Gateway's port.
//! - `request`: what a request to a Gateway's port gets (route, status,
//!   backends), as the model reads.
//! - `cluster`: a cluster's endpoints and protocol.
//! - `sni`: the SNI entries (hostname → certificate) of a Gateway's port.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/simulate.rs"]
mod simulate;

use std::net::IpAddr;
use std::path::Path;

use cluster::{Cluster, CONTROLLER};
use serde_json::Value;
use simulate::{Outcome, Request};

fn split(object: &str) -> (Option<&str>, &str) {
    match object.split_once('/') {
        Some(("", name)) => (None, name),
        Some((ns, name)) => (Some(ns), name),
        None => (None, object),
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing {key} in {v}"))
}

fn check_conditions(actual: &Value, expected: &Value, what: &str) {
    for e in expected.as_array().into_iter().flatten() {
        let found = actual
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == e["type"]);
        let c = found.unwrap_or_else(|| panic!("{what}: no {} condition in {actual}", e["type"]));
        assert_eq!(c["status"], e["status"], "{what}: {}", c);
        if e.get("reason").is_some() {
            assert_eq!(c["reason"], e["reason"], "{what}: {}", c);
        }
        if let Some(m) = e["message"].as_str() {
            assert!(
                c["message"].as_str().is_some_and(|a| a.contains(m)),
                "{what}: message should contain {m:?}: {c}"
            );
        }
    }
}

fn gateway_address(cluster: &Cluster, gateway: &str) -> IpAddr {
    let (ns, name) = split(gateway);
    let st = cluster
        .status("Gateway", ns, name)
        .unwrap_or_else(|| panic!("no Gateway {gateway}"));
    st["addresses"][0]["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{gateway} has no address: {st}"))
}

fn check_status(cluster: &Cluster, e: &Value) {
    let kind = str_of(e, "kind");
    let object = str_of(e, "object");
    let (ns, name) = split(object);
    let st = cluster
        .status(kind, ns, name)
        .unwrap_or_else(|| panic!("no status for {kind} {object}"));
    let what = format!("{kind} {object}");
    if let Some(parent) = e["parent"].as_str() {
        let (pns, pname) = split(parent);
        let p = st["parents"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["parentRef"]["name"] == pname
                    && pns.is_none_or(|n| p["parentRef"]["namespace"] == n)
            })
            .unwrap_or_else(|| panic!("{what}: no parent {parent} in {st}"));
        assert_eq!(p["controllerName"], CONTROLLER);
        if let Some(section) = e["sectionName"].as_str() {
            assert_eq!(p["parentRef"]["sectionName"], section, "{what}");
        }
        check_conditions(
            &p["conditions"],
            &e["conditions"],
            &format!("{what} parent {parent}"),
        );
    } else if let Some(listener) = e["listener"].as_str() {
        let l = st["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["name"] == listener)
            .unwrap_or_else(|| panic!("{what}: no listener {listener} in {st}"));
        let what = format!("{what} listener {listener}");
        if let Some(n) = e.get("attachedRoutes") {
            assert_eq!(&l["attachedRoutes"], n, "{what}: attachedRoutes");
        }
        if let Some(kinds) = e.get("supportedKinds") {
            assert_eq!(&l["supportedKinds"], kinds, "{what}: supportedKinds");
        }
        check_conditions(&l["conditions"], &e["conditions"], &what);
    } else {
        if let Some(addresses) = e.get("addresses") {
            assert_eq!(&st["addresses"], addresses, "{what}: addresses");
        }
        check_conditions(&st["conditions"], &e["conditions"], &what);
    }
}

fn check_vhost(cluster: &Cluster, e: &Value) {
    let gateway = str_of(e, "gateway");
    let address = gateway_address(cluster, gateway);
    let port = e["port"].as_u64().unwrap_or(80) as u16;
    let snapshot = &cluster.last.snapshot;
    let listener = snapshot
        .listeners
        .iter()
        .find(|l| l.address == address && l.port == port)
        .unwrap_or_else(|| panic!("no listener {address}:{port}"));
    let hostname = str_of(e, "hostname");
    let vhost = listener
        .virtual_hosts
        .iter()
        .find(|v| v.hostname == hostname)
        .unwrap_or_else(|| {
            let names: Vec<&str> = listener
                .virtual_hosts
                .iter()
                .map(|v| v.hostname.as_str())
                .collect();
            panic!("{gateway}:{port}: no virtual host {hostname}; have {names:?}")
        });
    let routes: Vec<String> = vhost
        .routes
        .iter()
        .map(|r| r.source.display_name())
        .collect();
    let expected: Vec<String> = serde_json::from_value(e["routes"].clone()).expect("routes list");
    assert_eq!(
        routes, expected,
        "{gateway}:{port} virtual host {hostname} route order"
    );
    if let Some(all) = e["hostnames"].as_array() {
        let names: Vec<&str> = listener
            .virtual_hosts
            .iter()
            .map(|v| v.hostname.as_str())
            .collect();
        let expected: Vec<&str> = all.iter().filter_map(Value::as_str).collect();
        assert_eq!(names, expected, "{gateway}:{port} virtual hosts");
    }
}

fn check_request(cluster: &Cluster, e: &Value) {
    let gateway = str_of(e, "gateway");
    let headers: Vec<(String, String)> = e["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    let request = Request {
        address: gateway_address(cluster, gateway),
        port: e["port"].as_u64().unwrap_or(80) as u16,
        host: e["host"].as_str().unwrap_or("example.com"),
        method: e["method"].as_str().unwrap_or("GET"),
        path: e["path"].as_str().unwrap_or("/"),
        headers: &headers,
    };
    let outcome = simulate::route(&cluster.last.snapshot, &request);
    let what = format!(
        "{} {}{} via {gateway}",
        request.method, request.host, request.path
    );
    if let Some(status) = e["status"].as_u64() {
        assert_eq!(u64::from(outcome.status()), status, "{what}: {outcome:?}");
    }
    if let Some(route) = e["route"].as_str() {
        let actual = match &outcome {
            Outcome::Forward { route, .. } | Outcome::Status { route, .. } => route.as_str(),
            _ => "",
        };
        assert_eq!(actual, route, "{what}: {outcome:?}");
    }
    if let Some(expected) = e.get("backends") {
        let Outcome::Forward { backends, .. } = &outcome else {
            panic!("{what}: not forwarded: {outcome:?}")
        };
        let actual: Vec<Value> = backends
            .iter()
            .map(|(c, w)| serde_json::json!([c, w]))
            .collect();
        assert_eq!(&Value::Array(actual), expected, "{what}: backends");
    }
}

fn check_cluster(cluster: &Cluster, e: &Value) {
    let name = str_of(e, "name");
    let c = cluster
        .last
        .snapshot
        .clusters
        .get(name)
        .unwrap_or_else(|| panic!("no cluster {name}"));
    if let Some(endpoints) = e["endpoints"].as_array() {
        let actual: Vec<String> = c
            .endpoints
            .iter()
            .map(|ep| ep.address.to_string())
            .collect();
        let expected: Vec<&str> = endpoints.iter().filter_map(Value::as_str).collect();
        assert_eq!(actual, expected, "cluster {name} endpoints");
    }
    if let Some(protocol) = e["protocol"].as_str() {
        assert_eq!(
            format!("{:?}", c.protocol),
            protocol,
            "cluster {name} protocol"
        );
    }
}

fn check_sni(cluster: &Cluster, e: &Value) {
    let gateway = str_of(e, "gateway");
    let address = gateway_address(cluster, gateway);
    let port = e["port"].as_u64().unwrap_or(443) as u16;
    let listener = cluster
        .last
        .snapshot
        .listeners
        .iter()
        .find(|l| l.address == address && l.port == port);
    let listener = listener.unwrap_or_else(|| panic!("no listener {address}:{port}"));
    let tls = listener
        .tls
        .as_ref()
        .unwrap_or_else(|| panic!("{address}:{port} has no TLS"));
    let actual: Vec<Value> = tls
        .certificates
        .iter()
        .map(|c| serde_json::json!([c.hostname, c.certificate]))
        .collect();
    assert_eq!(
        &Value::Array(actual),
        &e["certificates"],
        "{gateway}:{port} SNI certificates"
    );
    for name in e["certificates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c[1].as_str())
    {
        assert!(
            cluster.last.snapshot.certificates.contains_key(name),
            "certificate {name} missing from snapshot"
        );
    }
}

fn run_fixture(path: &Path) {
    let text = std::fs::read_to_string(path).expect("fixture");
    let fixture: Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut cluster = Cluster::with_pool(fixture["pool"].as_str().unwrap_or(cluster::POOL));
    cluster.apply_yaml(&format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: weir}}\nspec: {{controllerName: {CONTROLLER}}}\n"
    ));
    let (cert, key) = (
        include_str!("fixtures/tls.crt"),
        include_str!("fixtures/tls.key"),
    );
    for object in fixture["objects"].as_array().into_iter().flatten() {
        // Substitute inside JSON strings so the PEM's newlines stay escaped.
        let escaped = |pem: &str| {
            serde_json::to_string(pem)
                .expect("json")
                .trim_matches('"')
                .to_string()
        };
        let text = serde_json::to_string(object).expect("json");
        let text = text
            .replace("{CERT}", &escaped(cert))
            .replace("{KEY}", &escaped(key));
        cluster.apply_value(serde_json::from_str(&text).expect("json"));
    }
    cluster.reload();
    assert!(
        cluster.last.errors.is_empty(),
        "{}: unexpected diagnostics {:?}",
        path.display(),
        cluster.last.errors
    );
    for e in fixture["expect"].as_array().into_iter().flatten() {
        if let Some(s) = e.get("status") {
            check_status(&cluster, s);
        } else if let Some(s) = e.get("noParents") {
            let (ns, name) = split(str_of(s, "object"));
            let st = cluster
                .status(str_of(s, "kind"), ns, name)
                .expect("route status");
            assert_eq!(
                st["parents"],
                serde_json::json!([]),
                "{} should have no parents",
                str_of(s, "object")
            );
        } else if let Some(s) = e.get("vhost") {
            check_vhost(&cluster, s);
        } else if let Some(s) = e.get("request") {
            check_request(&cluster, s);
        } else if let Some(s) = e.get("cluster") {
            check_cluster(&cluster, s);
        } else if let Some(s) = e.get("sni") {
            check_sni(&cluster, s);
        } else {
            panic!("{}: unknown expectation {e}", path.display());
        }
    }
}

#[test]
fn translation_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    let mut failures = Vec::new();
    for path in &paths {
        let result = std::panic::catch_unwind(|| run_fixture(path));
        match result {
            Ok(()) => println!(
                "ok   {}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                failures.push(format!("{}: {}", path.display(), msg.unwrap_or_default()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

//! Runs the status steps of the Gateway API conformance cases
//! (/work/shared/conformance/cases) against the translation: the objects of
//! each case go through the real DirSource, and every `accepted`,
//! `conditions`, `listenersStatus`, `attachedRoutes`, `noAcceptedParents`
//! and `routeParents` step is checked on the statuses we produce. Request
//! steps need the proxy and are left to the conformance runner.
//!
//! Skipped when the shared conformance material is absent (said loudly).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/simulate.rs"]
mod simulate;

use std::path::{Path, PathBuf};

use cluster::{Cluster, CONTROLLER};
use serde_json::Value;

const ROOT: &str = "/work/shared/conformance";
const CLASS: &str = "weir";
/// Inside the test pool (127.20.0.0/16) / outside it.
const USABLE_ADDRESS: &str = "127.20.250.1";
const UNUSABLE_ADDRESS: &str = "10.255.255.1";

/// Features Weir does not implement; cases needing them are skipped.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("TLSRoute", "no TLS passthrough/termination routes yet"),
    ("TCPRoute", "no TCP routes yet"),
    ("ListenerSet", "ListenerSet is not implemented"),
    ("BackendTLSPolicy", "no TLS origination yet"),
    (
        "GatewayFrontendClientCertificateValidation",
        "no client certificate validation yet",
    ),
    ("GatewayBackendClientCertificate", "no TLS origination yet"),
    (
        "GatewayInfrastructurePropagation",
        "no infrastructure to propagate labels to",
    ),
];

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn substitute(text: &str) -> String {
    text.replace("{GATEWAY_CLASS_NAME}", CLASS)
        .replace("{GATEWAY_CONTROLLER_NAME}", CONTROLLER)
        .replace("PLACEHOLDER_USABLE_ADDRS", USABLE_ADDRESS)
        .replace("PLACEHOLDER_UNUSABLE_ADDRS", UNUSABLE_ADDRESS)
}

fn split(object: &str) -> (&str, &str) {
    object.split_once('/').unwrap_or(("", object))
}

/// Secrets and CA ConfigMaps the suite generates at run time; one fixture
/// certificate stands in for all of them (the controller only checks PEM).
fn generated_secrets(cluster: &mut Cluster, entries: &Value) {
    let cert = include_str!("fixtures/tls.crt");
    let key = include_str!("fixtures/tls.key");
    for entry in entries.as_array().into_iter().flatten() {
        if let Some(target) = entry["secret"].as_str() {
            let (ns, name) = split(target);
            cluster.apply_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": name, "namespace": ns},
                "stringData": {"tls.crt": cert, "tls.key": key, "ca.crt": cert},
            }));
        }
        if let Some(target) = entry["configMap"].as_str() {
            let (ns, name) = split(target);
            cluster.apply_value(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns}, "data": {"ca.crt": cert},
            }));
        }
    }
}

fn load_case(case: &Value) -> Cluster {
    let mut cluster = Cluster::new();
    cluster.apply_yaml(&format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: {CLASS}}}\nspec: {{controllerName: {CONTROLLER}}}\n"
    ));
    generated_secrets(
        &mut cluster,
        &yaml_file(&Path::new(ROOT).join("upstream/SECRETS.yaml")),
    );
    generated_secrets(&mut cluster, &case["secrets"]);
    let mut files = vec!["base/manifests.yaml".to_string()];
    files.extend(
        case["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_string)),
    );
    for file in files {
        let text = std::fs::read_to_string(Path::new(ROOT).join("upstream").join(&file))
            .expect("manifest");
        cluster.apply_yaml(&substitute(&text));
    }
    for object in case["objects"].as_array().into_iter().flatten() {
        cluster.apply_yaml(&substitute(&serde_yaml::to_string(object).expect("yaml")));
    }
    cluster.reload();
    cluster
}

#[path = "support/requests.rs"]
mod requests;
#[path = "support/steps.rs"]
mod steps;

#[test]
fn conformance_case_status_steps() {
    let cases_dir = Path::new(ROOT).join("cases");
    if !cases_dir.is_dir() {
        println!(
            "SKIPPED: conformance material not found at {ROOT}; no conformance status checks ran"
        );
        return;
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&cases_dir)
        .expect("cases")
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    let (mut passed, mut skipped, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for path in paths {
        let case = yaml_file(&path);
        let name = case["name"].as_str().unwrap_or("?").to_string();
        let features: Vec<&str> = case["features"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if let Some((f, why)) = UNSUPPORTED.iter().find(|(f, _)| features.contains(f)) {
            skipped.push(format!("{name}: needs {f} ({why})"));
            continue;
        }
        let mut cluster = load_case(&case);
        match steps::run(&mut cluster, &case) {
            Ok(checked) => passed.push(format!("{name} ({checked} status steps)")),
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    println!(
        "conformance status steps: {} passed, {} skipped, {} failed",
        passed.len(),
        skipped.len(),
        failed.len()
    );
    for p in &passed {
        println!("  PASS {p}");
    }
    for s in &skipped {
        println!("  SKIP {s}");
    }
    for f in &failed {
        println!("  FAIL {f}");
    }
    assert!(
        failed.is_empty(),
        "{} conformance cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

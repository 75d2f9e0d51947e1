//! Every manifest under deploy/ parses as its Kubernetes kind with no
//! unknown fields, and the RBAC rules are exactly the calls the code makes
//! (`weir_kube::kinds::CONTROLLER_RULES`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::{apps, autoscaling, core, policy, rbac};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn documents() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(deploy_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if !value.is_null() {
                out.push((path.file_name().unwrap().to_string_lossy().into_owned(), value));
            }
        }
    }
    out
}

/// Parses `value` as `T` and checks that nothing was dropped on the way:
/// every field of the original must survive a round trip.
fn strict<T: DeserializeOwned + Serialize>(file: &str, value: &Value) {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    let mut unknown = Vec::new();
    missing_fields(value, &back, String::new(), &mut unknown);
    assert!(unknown.is_empty(), "{file}: {} has unknown fields {unknown:?}", value["kind"]);
}

fn missing_fields(original: &Value, back: &Value, path: String, out: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(o), Value::Object(b)) => {
            for (key, value) in o {
                match b.get(key) {
                    Some(v) => missing_fields(value, v, format!("{path}.{key}"), out),
                    None => out.push(format!("{path}.{key}")),
                }
            }
        }
        (Value::Array(o), Value::Array(b)) => {
            for (i, (x, y)) in o.iter().zip(b).enumerate() {
                missing_fields(x, y, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Kustomization and GatewayClass have no k8s-openapi type: known fields only.
fn known_keys(file: &str, value: &Value, allowed: &[&str]) {
    for key in value.as_object().unwrap().keys() {
        assert!(allowed.contains(&key.as_str()), "{file}: unknown field {key}");
    }
}

#[test]
fn every_manifest_is_its_kind_with_no_unknown_fields() {
    let docs = documents();
    let mut kinds = BTreeSet::new();
    for (file, doc) in &docs {
        let kind = doc["kind"].as_str().unwrap_or_else(|| panic!("{file}: no kind"));
        kinds.insert(kind.to_string());
        match (doc["apiVersion"].as_str().unwrap(), kind) {
            ("v1", "Namespace") => strict::<core::v1::Namespace>(file, doc),
            ("v1", "ServiceAccount") => strict::<core::v1::ServiceAccount>(file, doc),
            ("v1", "Service") => strict::<core::v1::Service>(file, doc),
            ("apps/v1", "Deployment") => strict::<apps::v1::Deployment>(file, doc),
            ("policy/v1", "PodDisruptionBudget") => strict::<policy::v1::PodDisruptionBudget>(file, doc),
            ("autoscaling/v2", "HorizontalPodAutoscaler") => strict::<autoscaling::v2::HorizontalPodAutoscaler>(file, doc),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => strict::<rbac::v1::ClusterRole>(file, doc),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => strict::<rbac::v1::ClusterRoleBinding>(file, doc),
            ("rbac.authorization.k8s.io/v1", "Role") => strict::<rbac::v1::Role>(file, doc),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => strict::<rbac::v1::RoleBinding>(file, doc),
            ("gateway.networking.k8s.io/v1", "GatewayClass") => {
                known_keys(file, doc, &["apiVersion", "kind", "metadata", "spec"]);
                known_keys(file, &doc["spec"], &["controllerName", "description", "parametersRef"]);
                assert_eq!(doc["spec"]["controllerName"], weir_controller::DEFAULT_CONTROLLER_NAME);
            }
            ("kustomize.config.k8s.io/v1beta1", "Kustomization") => {
                known_keys(file, doc, &["apiVersion", "kind", "namespace", "resources", "images"]);
                for resource in doc["resources"].as_array().unwrap() {
                    let path = deploy_dir().join(resource.as_str().unwrap());
                    assert!(path.exists(), "kustomization lists {} which does not exist", path.display());
                }
            }
            (api_version, kind) => panic!("{file}: no check for {api_version} {kind}; add one"),
        }
    }
    for kind in ["Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Service", "GatewayClass", "Kustomization"] {
        assert!(kinds.contains(kind), "deploy/ has no {kind}");
    }
}

#[test]
fn the_gateway_waits_longer_than_its_grace_period() {
    let docs = documents();
    let (_, gateway) = docs.iter().find(|(_, d)| d["kind"] == "Deployment" && d["metadata"]["name"] == "weir-gateway").unwrap();
    let pod = &gateway["spec"]["template"]["spec"];
    let args = pod["containers"][0]["args"].as_array().unwrap();
    let grace: i64 = args.iter().find_map(|a| a.as_str()?.strip_prefix("--grace-period=")?.parse().ok()).unwrap();
    assert!(pod["terminationGracePeriodSeconds"].as_i64().unwrap() > grace);
}

/// (apiGroup, resource, verb) triples.
type Grants = BTreeSet<(String, String, String)>;

fn grants_of(role: &Value) -> Grants {
    let mut out = Grants::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    let s = |v: &Value| v.as_str().unwrap().to_string();
                    out.insert((s(group), s(resource), s(verb)));
                }
            }
        }
    }
    out
}

#[test]
fn rbac_grants_exactly_what_the_code_calls() {
    let docs = documents();
    let bound_to = |account: &str| -> Grants {
        let mut grants = Grants::new();
        for (_, binding) in docs.iter().filter(|(_, d)| matches!(d["kind"].as_str(), Some("RoleBinding" | "ClusterRoleBinding"))) {
            let subjects = binding["subjects"].as_array().unwrap();
            if !subjects.iter().any(|s| s["kind"] == "ServiceAccount" && s["name"] == account) {
                continue;
            }
            let role_kind = &binding["roleRef"]["kind"];
            let role_name = &binding["roleRef"]["name"];
            let (_, role) = docs
                .iter()
                .find(|(_, d)| d["kind"] == *role_kind && d["metadata"]["name"] == *role_name)
                .unwrap_or_else(|| panic!("{role_kind} {role_name} is bound but not defined"));
            grants.extend(grants_of(role));
        }
        grants
    };
    let mut wanted = Grants::new();
    for (group, resource, verbs) in weir_kube::kinds::CONTROLLER_RULES {
        for verb in *verbs {
            wanted.insert((group.to_string(), resource.to_string(), verb.to_string()));
        }
    }
    let granted = bound_to("weir-controller");
    let extra: Vec<_> = granted.difference(&wanted).collect();
    let missing: Vec<_> = wanted.difference(&granted).collect();
    assert!(extra.is_empty() && missing.is_empty(), "deploy/rbac.yaml grants extra {extra:?}, misses {missing:?}");
    assert!(bound_to("weir-gateway").is_empty(), "the gateway must have no API access");
}

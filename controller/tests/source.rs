//! The YAML-folder source: malformed files, last-good objects, generations,
//! snapshot versions, sticky addresses.

#[path = "support/cluster.rs"]
mod cluster;

use cluster::{assert_condition, Cluster};

const CLASS: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: weir}
spec: {controllerName: weir.dev/gateway-controller}
";

fn gateway(name: &str, port: u16) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default}}
spec:
  gatewayClassName: weir
  listeners: [{{name: http, port: {port}, protocol: HTTP}}]
"
    )
}

fn route(name: &str, path: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{matches: [{{path: {{value: {path}}}}}]}}]
"
    )
}

fn served_routes(cluster: &Cluster) -> Vec<String> {
    let mut names: Vec<String> = cluster
        .last
        .snapshot
        .listeners
        .iter()
        .flat_map(|l| l.virtual_hosts.iter())
        .flat_map(|v| v.routes.iter())
        .map(|r| r.source.name.clone())
        .collect();
    names.sort();
    names
}

#[test]
fn a_malformed_file_is_reported_and_its_last_good_objects_keep_serving() {
    let mut c = Cluster::new();
    c.write_file("class.yaml", CLASS);
    c.write_file(
        "app.yaml",
        &[gateway("gw", 80), route("one", "/one")].join("---\n"),
    );
    c.reload_only();
    assert!(c.last.errors.is_empty(), "{:?}", c.last.errors);
    assert_eq!(served_routes(&c), ["one"]);

    // Break the whole file: nothing in it parses any more.
    c.write_file(
        "app.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: [unclosed\n",
    );
    c.reload_only();
    assert_eq!(c.last.errors.len(), 1, "{:?}", c.last.errors);
    let error = &c.last.errors[0];
    assert!(
        error
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with("app.yaml")),
        "{error:?}"
    );
    assert!(error.message.contains("line"), "{error:?}");
    assert_eq!(served_routes(&c), ["one"], "last good objects are kept");

    // One bad document among good ones: the good ones apply.
    let mixed = [
        gateway("gw", 80),
        route("one", "/one"),
        "kind: [broken\n".to_string(),
        route("two", "/two"),
    ];
    c.write_file("app.yaml", &mixed.join("---\n"));
    c.reload_only();
    assert_eq!(c.last.errors.len(), 1, "{:?}", c.last.errors);
    assert_eq!(served_routes(&c), ["one", "two"]);

    // Fixed: no error; the file's objects are exactly what it says.
    c.write_file(
        "app.yaml",
        &[gateway("gw", 80), route("two", "/two")].join("---\n"),
    );
    c.reload_only();
    assert!(c.last.errors.is_empty(), "{:?}", c.last.errors);
    assert_eq!(served_routes(&c), ["two"]);

    // Deleting a file deletes its objects.
    c.remove_file("app.yaml");
    c.reload_only();
    assert!(served_routes(&c).is_empty());
    assert!(c.status("Gateway", Some("default"), "gw").is_none());
}

#[test]
fn a_document_of_the_wrong_shape_names_object_and_field() {
    let mut c = Cluster::new();
    let bad = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: weir
  listeners: [{name: http, port: eighty, protocol: HTTP}]
";
    c.write_file("gw.yaml", bad);
    c.write_file("other.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: default}\nspec: {}\n");
    c.reload_only();
    assert_eq!(
        c.last.errors.len(),
        1,
        "unknown kinds are not errors: {:?}",
        c.last.errors
    );
    let error = &c.last.errors[0];
    assert_eq!(error.object.as_deref(), Some("Gateway default/gw"));
    assert_eq!(
        error.field.as_deref(),
        Some("spec.listeners[0].port"),
        "{error:?}"
    );
    assert!(error.to_string().contains("gw.yaml"), "{error}");
}

#[test]
fn generations_bump_on_spec_changes_only_and_conditions_follow() {
    let mut c = Cluster::new();
    c.apply_yaml(CLASS);
    c.apply_yaml(&gateway("gw", 80));
    c.reload();
    assert_eq!(c.generation("Gateway", Some("default"), "gw"), Some(1));
    let version = c.last.snapshot.version;
    let first_time = c.status("Gateway", Some("default"), "gw").unwrap()["conditions"][0]
        ["lastTransitionTime"]
        .clone();

    // Same objects again: nothing changes, not even the snapshot version.
    c.reload();
    assert_eq!(c.generation("Gateway", Some("default"), "gw"), Some(1));
    assert_eq!(c.last.snapshot.version, version);

    // A label is metadata, not spec.
    c.patch(
        "Gateway",
        "default",
        "gw",
        &serde_json::json!({"metadata": {"labels": {"a": "b"}}}),
    );
    c.reload();
    assert_eq!(c.generation("Gateway", Some("default"), "gw"), Some(1));

    // A spec change bumps the generation, observedGeneration and the snapshot.
    c.patch("Gateway", "default", "gw", &serde_json::json!({"spec": {"listeners": [{"name": "http", "port": 81, "protocol": "HTTP"}]}}));
    c.reload();
    assert_eq!(c.generation("Gateway", Some("default"), "gw"), Some(2));
    let status = c.status("Gateway", Some("default"), "gw").unwrap();
    for condition in status["conditions"].as_array().unwrap() {
        assert_eq!(condition["observedGeneration"], 2, "{condition}");
    }
    assert_condition(
        &status["conditions"],
        "Programmed",
        "True",
        Some("Programmed"),
        "gw",
    );
    // Still True: the transition time is kept.
    assert_eq!(status["conditions"][0]["lastTransitionTime"], first_time);
    assert_eq!(c.last.snapshot.version, version + 1);
    assert_eq!(c.last.snapshot.listeners[0].port, 81);

    // A generation written in the file wins.
    c.patch(
        "Gateway",
        "default",
        "gw",
        &serde_json::json!({"metadata": {"generation": 7}}),
    );
    c.reload();
    assert_eq!(c.generation("Gateway", Some("default"), "gw"), Some(7));
}

#[test]
fn pool_addresses_are_sticky_per_gateway() {
    let mut c = Cluster::new();
    c.apply_yaml(CLASS);
    c.apply_yaml(&gateway("m", 80));
    c.reload();
    let address = |c: &Cluster, name: &str| {
        c.status("Gateway", Some("default"), name).unwrap()["addresses"][0]["value"].clone()
    };
    assert_eq!(address(&c, "m"), "127.20.0.1");
    // A Gateway sorting before it arrives later: first come, first served.
    c.apply_yaml(&gateway("a", 80));
    c.reload();
    assert_eq!(address(&c, "m"), "127.20.0.1");
    assert_eq!(address(&c, "a"), "127.20.0.2");
    // Gone and back: the same address.
    c.delete("Gateway", "default", "a");
    c.reload();
    c.apply_yaml(&gateway("a", 80));
    c.reload();
    assert_eq!(address(&c, "a"), "127.20.0.2");
}

#[test]
fn objects_of_classes_that_are_not_ours_get_no_status() {
    let mut c = Cluster::new();
    c.apply_yaml(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/not-weir}
",
    );
    c.apply_yaml(&gateway("gw", 80).replace("gatewayClassName: weir", "gatewayClassName: other"));
    c.apply_yaml(&route("r", "/"));
    c.reload();
    assert_eq!(
        c.status("GatewayClass", None, "other"),
        Some(&serde_json::json!({}))
    );
    assert_eq!(
        c.status("Gateway", Some("default"), "gw"),
        Some(&serde_json::json!({}))
    );
    assert_eq!(
        c.status("HTTPRoute", Some("default"), "r"),
        Some(&serde_json::json!({"parents": []}))
    );
    assert!(c.last.snapshot.listeners.is_empty());
}

//! The controller against a fake API server: objects added, changed and
//! deleted flow to new snapshots and the right status patches; a dropped
//! watch resumes without losing events; leadership hands status writes over.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const WAIT: Duration = Duration::from_secs(10);
const ROUTE_STATUS: &str = "/namespaces/app/httproutes/web/status";

async fn cluster() -> FakeApi {
    let api = FakeApi::start().await;
    api.apply(namespace("app"));
    api.apply(gateway_class("weir", CONTROLLER_NAME));
    api.apply(gateway_class("other", "example.com/another-controller"));
    api.apply(gateway("app", "gw", "weir", 8080));
    api.apply(gateway_service("203.0.113.9"));
    for object in service_with_endpoint("app", "echo", "127.0.0.1:9999".parse().unwrap()) {
        api.apply(object);
    }
    api.apply(http_route("app", "web", ("app", "gw"), "a.example.com", "echo"));
    // Attached to another controller's Gateway: its status is not ours.
    api.apply(gateway("app", "foreign", "other", 9090));
    api.apply(http_route("app", "foreign-route", ("app", "foreign"), "f.example.com", "echo"));
    api
}

fn condition<'a>(conditions: &'a Value, type_: &str) -> &'a Value {
    conditions.as_array().and_then(|c| c.iter().find(|c| c["type"] == type_)).unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_flow_to_snapshots_and_status_patches() {
    let api = cluster().await;
    let controller = weir_kube::run(api.client(), options(None));

    let (v1, _) = wait_for("a snapshot routing a.example.com", WAIT, || {
        snapshot_text(&controller).filter(|(_, text)| text.contains("a.example.com"))
    })
    .await;

    // Our GatewayClass is accepted; the other controller's is left alone.
    let class = wait_for("the weir GatewayClass status", WAIT, || api.get(GATEWAY_API, "GatewayClass", "", "weir")?.get("status").cloned()).await;
    assert_eq!(condition(&class["conditions"], "Accepted")["status"], "True");
    assert!(patches_to(&api, "/gatewayclasses/other/status").is_empty());
    assert!(api.get(GATEWAY_API, "GatewayClass", "", "other").unwrap().get("status").is_none());

    // The Gateway's address is the gateway Service's LoadBalancer IP.
    let gw = wait_for("the Gateway status", WAIT, || api.get(GATEWAY_API, "Gateway", "app", "gw")?.get("status").cloned()).await;
    assert_eq!(gw["addresses"], json!([{"type": "IPAddress", "value": "203.0.113.9"}]));
    assert_eq!(condition(&gw["conditions"], "Accepted")["observedGeneration"], 1);
    // No gateway replica is ready yet: not programmed.
    assert_eq!(condition(&gw["conditions"], "Programmed")["reason"], "Pending");

    // A ready gateway replica (it serves a snapshot) behind the Service: programmed.
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "weir-gateway-1", "namespace": "weir-system",
                     "labels": {"kubernetes.io/service-name": "weir-gateway"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.7"], "conditions": {"ready": true}}]}));
    wait_for("Programmed=True once a replica is ready", WAIT, || {
        let status = api.get(GATEWAY_API, "Gateway", "app", "gw")?["status"].clone();
        (condition(&status["conditions"], "Programmed")["status"] == "True").then_some(())
    })
    .await;

    let route = wait_for("the route status", WAIT, || api.get(GATEWAY_API, "HTTPRoute", "app", "web")?.get("status").cloned()).await;
    assert_eq!(route["parents"][0]["controllerName"], CONTROLLER_NAME);
    assert_eq!(condition(&route["parents"][0]["conditions"], "Accepted")["observedGeneration"], 1);

    // Changed: new hostname → new snapshot, status for generation 2.
    api.apply(http_route("app", "web", ("app", "gw"), "b.example.com", "echo"));
    let (v2, text) = wait_for("a snapshot routing b.example.com", WAIT, || {
        snapshot_text(&controller).filter(|(_, text)| text.contains("b.example.com"))
    })
    .await;
    assert!(v2 > v1);
    assert!(!text.contains("a.example.com"));
    wait_for("route status for generation 2", WAIT, || {
        let status = api.get(GATEWAY_API, "HTTPRoute", "app", "web")?["status"].clone();
        (condition(&status["parents"][0]["conditions"], "Accepted")["observedGeneration"] == 2).then_some(())
    })
    .await;

    // Routes of other controllers' Gateways, and those Gateways, are left alone.
    assert!(patches_to(&api, "/httproutes/foreign-route/status").is_empty());
    assert!(patches_to(&api, "/gateways/foreign/status").is_empty());

    // No churn: once settled, nothing more is written.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let settled = api.patches().len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(api.patches().len(), settled, "status was rewritten without a change");

    // Deleted: the route leaves the snapshot.
    api.delete(GATEWAY_API, "HTTPRoute", "app", "web");
    wait_for("a snapshot without the route", WAIT, || {
        snapshot_text(&controller).filter(|(v, text)| *v > v2 && !text.contains("b.example.com"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_watch_resumes_without_losing_events() {
    let api = cluster().await;
    let controller = weir_kube::run(api.client(), options(None));
    wait_for("the first snapshot", WAIT, || snapshot_text(&controller).filter(|(_, t)| t.contains("a.example.com"))).await;
    let routes = "/apis/gateway.networking.k8s.io/v1/httproutes";
    let lists = api.lists(routes);

    // The watch drops and cannot be re-established for a while; meanwhile
    // the route changes twice and another one appears.
    api.refuse_watches(true);
    api.drop_watches();
    api.apply(http_route("app", "web", ("app", "gw"), "b.example.com", "echo"));
    api.apply(http_route("app", "web", ("app", "gw"), "c.example.com", "echo"));
    api.apply(http_route("app", "extra", ("app", "gw"), "d.example.com", "echo"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.refuse_watches(false);

    wait_for("both changes after the watch resumed", Duration::from_secs(20), || {
        snapshot_text(&controller).filter(|(_, t)| t.contains("c.example.com") && t.contains("d.example.com"))
    })
    .await;
    assert_eq!(api.lists(routes), lists, "the watcher re-listed instead of resuming from its resourceVersion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_hands_over_status_writes() {
    let api = cluster().await;
    let lease = |identity: &str| weir_kube::lease::LeaseOptions {
        namespace: "weir-system".into(),
        name: "weir-controller".into(),
        identity: identity.into(),
        duration: Duration::from_secs(1),
        renew_every: Duration::from_millis(200),
    };
    let a = weir_kube::run(api.client(), options(Some(lease("a"))));
    let b = weir_kube::run(api.client(), options(Some(lease("b"))));

    wait_for("the route status", WAIT, || api.get(GATEWAY_API, "HTTPRoute", "app", "web")?.get("status").cloned()).await;
    let (leader, follower) = if *a.leader.borrow() { (a, b) } else { (b, a) };
    assert!(*leader.leader.borrow() && !*follower.leader.borrow(), "exactly one leader");
    assert!(leader.writes.load(Ordering::Relaxed) > 0);
    assert_eq!(follower.writes.load(Ordering::Relaxed), 0, "the follower wrote status");
    let holder = api.get("coordination.k8s.io/v1", "Lease", "weir-system", "weir-controller").unwrap();
    let leader_name = holder["spec"]["holderIdentity"].as_str().unwrap().to_string();

    // The leader goes away without releasing the Lease; the follower takes
    // over once it expires, and writes the status of the next change.
    drop(leader);
    wait_for("the follower to lead", WAIT, || follower.leader.borrow().then_some(())).await;
    let holder = api.get("coordination.k8s.io/v1", "Lease", "weir-system", "weir-controller").unwrap();
    assert_ne!(holder["spec"]["holderIdentity"], leader_name.as_str());
    assert_eq!(holder["spec"]["leaseTransitions"], 1);

    api.apply(http_route("app", "web", ("app", "gw"), "b.example.com", "echo"));
    wait_for("route status for generation 2, written by the new leader", WAIT, || {
        let status = api.get(GATEWAY_API, "HTTPRoute", "app", "web")?["status"].clone();
        (condition(&status["parents"][0]["conditions"], "Accepted")["observedGeneration"] == 2).then_some(())
    })
    .await;
    assert!(follower.writes.load(Ordering::Relaxed) > 0);
    assert!(!patches_to(&api, ROUTE_STATUS).is_empty());
}

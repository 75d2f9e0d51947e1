//! TLS Secrets are read by name, only when a Gateway listener references
//! them, and re-read so that a rotated certificate reaches the snapshot.

mod support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(10);

fn certificate_pem(controller: &weir_kube::Controller, name: &str) -> Option<String> {
    let snapshot = controller.snapshots.borrow().clone()?;
    Some(snapshot.certificates.get(name)?.cert_pem.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referenced_secrets_are_fetched_by_name_and_rotations_are_picked_up() {
    let (_, cert, key) = certificate_chain(&["www.example.com"]);
    let api = FakeApi::start().await;
    api.apply(namespace("app"));
    api.apply(gateway_class("weir", CONTROLLER_NAME));
    api.apply(https_gateway("app", "gw", "weir", 8443, "www-tls"));
    api.apply(tls_secret("app", "www-tls", &cert, &key));
    api.apply(tls_secret("app", "unrelated", &cert, &key));

    let controller = weir_kube::run(api.client(), options(None));
    let served = wait_for("the listener certificate in the snapshot", WAIT, || certificate_pem(&controller, "app/www-tls")).await;
    assert_eq!(served.trim(), cert.trim());
    let snapshot = controller.snapshots.borrow().clone().unwrap();
    assert_eq!(snapshot.certificates.keys().collect::<Vec<_>>(), ["app/www-tls"], "only referenced Secrets are read");
    assert!(
        !api.listed_paths().iter().any(|p| p.contains("secrets")),
        "Secrets were listed: {:?}",
        api.listed_paths()
    );

    // Rotation: the new certificate replaces the old one.
    let (_, rotated, rotated_key) = certificate_chain(&["www.example.com"]);
    api.apply(tls_secret("app", "www-tls", &rotated, &rotated_key));
    wait_for("the rotated certificate", WAIT, || {
        certificate_pem(&controller, "app/www-tls").filter(|pem| pem.trim() == rotated.trim())
    })
    .await;
}

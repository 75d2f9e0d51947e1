//! The `weir-controller` binary end to end: kubeconfig → fake API server,
//! leader Lease, TokenReview-checked snapshot fetches, SIGTERM releases the
//! Lease.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: &str, path: &str, token: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut out)).await.ok()?.ok()?;
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_snapshots_and_holds_the_lease() {
    let api = FakeApi::start().await;
    api.apply(namespace("app"));
    api.apply(gateway_class("weir", CONTROLLER_NAME));
    api.apply(gateway("app", "gw", "weir", 8080));
    api.apply(http_route("app", "web", ("app", "gw"), "a.example.com", "echo"));
    api.add_token("gateway-token", "system:serviceaccount:weir-system:weir-gateway", "weir-controller");

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: \"{}\"}}}}]\n\
             users: [{{name: fake, user: {{}}}}]\ncontexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\n\
             current-context: fake\n",
            api.url
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir-controller"))
        .env("KUBECONFIG", &kubeconfig)
        .env("WEIR_LOG", "warn")
        .args(["--listen-address", &addr, "--identity", "controller-0", "--lease-namespace", "weir-system"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let answer = wait_for_async(&addr, "gateway-token").await;
    assert!(answer.contains("a.example.com"), "{answer}");
    let refused = get(&addr, "/snapshot", "stolen").await.unwrap_or_default();
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let lease = api.get("coordination.k8s.io/v1", "Lease", "weir-system", "weir-controller").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "controller-0");

    // SIGTERM: the Lease is released for the next replica.
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let lease = api.get("coordination.k8s.io/v1", "Lease", "weir-system", "weir-controller").unwrap();
    assert!(lease["spec"].get("holderIdentity").is_none_or(|h| h.is_null()), "{lease}");
}

/// Polls /snapshot until the controller answers 200.
async fn wait_for_async(addr: &str, token: &str) -> String {
    for _ in 0..250 {
        if let Some(answer) = get(addr, "/snapshot?after=0", token).await {
            if answer.starts_with("HTTP/1.1 200") {
                return answer;
            }
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!("the controller on {addr} never served a snapshot");
}

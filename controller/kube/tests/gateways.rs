//! End to end on loopback: a controller fed by a fake API server, two real
//! `weir-gateway` processes in Kubernetes mode (`--controller`). A route
//! change reaches both; with the controller gone they keep serving.
//!
//! Needs `target/debug/weir-gateway` (`cargo build -p weir-gateway`; the
//! test command builds it first).

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_kube::auth::{Authenticator, StaticTokens};
use weir_kube::server::SnapshotServer;

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "gateway-token";

struct Gateway {
    child: Child,
    admin: SocketAddr,
    ip: &'static str,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    // Test executables live in <target>/<profile>/deps/; the binary sits in
    // <target>/<profile>/, wherever CARGO_TARGET_DIR puts it.
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).map(PathBuf::from).unwrap_or_default();
    let path = profile_dir.join("weir-gateway");
    assert!(path.exists(), "{} is missing: run `cargo build -p weir-gateway` first", path.display());
    path
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

fn start_gateway(controller: &str, token_file: &std::path::Path, ip: &'static str) -> Gateway {
    start_gateway_with(controller, token_file, ip, &[])
}

fn start_gateway_with(controller: &str, token_file: &std::path::Path, ip: &'static str, extra: &[&str]) -> Gateway {
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1")).parse().unwrap();
    let child = Command::new(binary())
        .args(["--controller", controller, "--token-file"])
        .arg(token_file)
        .args(["--bind-ip", ip, "--admin-address", &admin.to_string(), "--threads", "1"])
        .args(extra)
        .env("WEIR_LOG", "warn,weir::access=off")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Gateway { child, admin, ip }
}

/// One HTTP/1.1 request; returns (status code, body).
async fn get(addr: SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await.ok()?.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let code = text.split(' ').nth(1)?.parse().ok()?;
    Some((code, text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string())))
}

/// A backend that answers `backend` to everything.
async fn backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nbackend")
                    .await;
            });
        }
    });
    addr
}

async fn wait_serving(gateway: &Gateway, port: u16, host: &str, want: u16) {
    let addr: SocketAddr = format!("{}:{port}", gateway.ip).parse().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = get(addr, host, "/").await;
        if got.as_ref().map(|(code, _)| *code) == Some(want) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "gateway on {addr}: {host} answered {got:?}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_follow_the_controller_and_survive_its_absence() {
    let backend = backend().await;
    let port = free_port("127.0.0.2").max(free_port("127.0.0.3"));
    let api = FakeApi::start().await;
    api.apply(namespace("app"));
    api.apply(gateway_class("weir", CONTROLLER_NAME));
    api.apply(gateway("app", "gw", "weir", port));
    api.apply(gateway_service("203.0.113.9"));
    for object in service_with_endpoint("app", "echo", backend) {
        api.apply(object);
    }
    api.apply(http_route("app", "web", ("app", "gw"), "a.example.com", "echo"));

    // Gateways start before the controller: not ready until a snapshot.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let server_port = free_port("127.0.0.1");
    let url = format!("http://127.0.0.1:{server_port}");
    let gateways = [start_gateway(&url, &token_file, "127.0.0.2"), start_gateway(&url, &token_file, "127.0.0.3")];
    tokio::time::sleep(Duration::from_millis(500)).await;
    for gateway in &gateways {
        let ready = get(gateway.admin, "localhost", "/ready").await;
        assert_eq!(ready.map(|r| r.0), Some(503), "ready before any snapshot");
    }

    let controller = weir_kube::run(api.client(), options(None));
    let auth: Arc<dyn Authenticator> =
        Arc::new(StaticTokens(vec![(TOKEN.into(), "system:serviceaccount:weir-system:weir-gateway".into())]));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", server_port)).await.unwrap();
    let server = SnapshotServer::new(controller.snapshots.clone(), auth, Duration::from_secs(2));
    let server_task = tokio::spawn(server.serve(listener, None));

    for gateway in &gateways {
        wait_serving(gateway, port, "a.example.com", 200).await;
        assert_eq!(get(gateway.admin, "localhost", "/ready").await.map(|r| r.0), Some(200));
    }

    // A route change reaches both gateways.
    api.apply(http_route("app", "web", ("app", "gw"), "b.example.com", "echo"));
    for gateway in &gateways {
        wait_serving(gateway, port, "b.example.com", 200).await;
        wait_serving(gateway, port, "a.example.com", 404).await;
    }

    // The controller goes away: both keep serving their last snapshot.
    server_task.abort();
    drop(controller);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for gateway in &gateways {
        let addr: SocketAddr = format!("{}:{port}", gateway.ip).parse().unwrap();
        let (code, body) = get(addr, "b.example.com", "/").await.expect("gateway still answers");
        assert_eq!((code, body.as_str()), (200, "backend"));
        assert_eq!(get(gateway.admin, "localhost", "/ready").await.map(|r| r.0), Some(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_need_an_accepted_token() {
    let (tx, rx) = tokio::sync::watch::channel(Some(Arc::new(weir_model::Snapshot { version: 7, ..Default::default() })));
    let auth: Arc<dyn Authenticator> = Arc::new(StaticTokens(vec![(TOKEN.into(), "gw".into())]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(SnapshotServer::new(rx, auth, Duration::from_millis(300)).serve(listener, None));

    let request = |headers: &str, path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
    let raw = |req: String| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    };
    assert!(raw(request("", "/snapshot")).await.starts_with("HTTP/1.1 401"));
    assert!(raw(request("Authorization: Bearer wrong\r\n", "/snapshot")).await.starts_with("HTTP/1.1 401"));
    let ok = raw(request(&format!("Authorization: Bearer {TOKEN}\r\n"), "/snapshot?after=0")).await;
    assert!(ok.starts_with("HTTP/1.1 200") && ok.contains("\"version\":7"), "{ok}");
    // Up to date: the poll waits, then says nothing changed.
    let same = raw(request(&format!("Authorization: Bearer {TOKEN}\r\n"), "/snapshot?after=7")).await;
    assert!(same.starts_with("HTTP/1.1 204"), "{same}");
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_fetch_snapshots_over_tls() {
    let backend = backend().await;
    let port = free_port("127.0.0.4");
    let api = FakeApi::start().await;
    api.apply(namespace("app"));
    api.apply(gateway_class("weir", CONTROLLER_NAME));
    api.apply(gateway("app", "gw", "weir", port));
    for object in service_with_endpoint("app", "echo", backend) {
        api.apply(object);
    }
    api.apply(http_route("app", "web", ("app", "gw"), "a.example.com", "echo"));
    let controller = weir_kube::run(api.client(), options(None));

    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate_chain(&["127.0.0.1"]);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (ca_file, cert_file, key_file, token_file) =
        (write("ca.crt", &ca), write("tls.crt", &cert), write("tls.key", &key), write("token", TOKEN));
    let auth: Arc<dyn Authenticator> = Arc::new(StaticTokens(vec![(TOKEN.into(), "gw".into())]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let tls = weir_kube::tls::acceptor(&cert_file, &key_file).unwrap();
    tokio::spawn(SnapshotServer::new(controller.snapshots.clone(), auth, Duration::from_secs(2)).serve(listener, Some(tls)));

    let gateway = start_gateway_with(&url, &token_file, "127.0.0.4", &["--controller-ca", ca_file.to_str().unwrap()]);
    wait_serving(&gateway, port, "a.example.com", 200).await;

    // A gateway that does not trust the controller's CA gets nothing.
    let (other_ca, _, _) = certificate_chain(&["127.0.0.1"]);
    let wrong_ca = write("other-ca.crt", &other_ca);
    let untrusting = start_gateway_with(&url, &token_file, "127.0.0.5", &["--controller-ca", wrong_ca.to_str().unwrap()]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(get(untrusting.admin, "localhost", "/ready").await.map(|r| r.0), Some(503));
}

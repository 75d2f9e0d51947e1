//! Routing on the wire: host/path routing, 404, snapshot swaps.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_and_path_and_answers_404() {
    let a = Backend::start("a", Behavior::Echo).await;
    let b = Backend::start("b", Behavior::Echo).await;
    let port = free_port();
    let gw = Gateway::start();
    gw.apply(snapshot(
        1,
        vec![http_listener(
            port,
            vec![
                vhost("a.example.com", vec![route("a", prefix("/"), forward("a"))]),
                vhost(
                    "*.example.com",
                    vec![route("b", prefix("/b"), forward("b"))],
                ),
            ],
        )],
        vec![cluster("a", &[&a]), cluster("b", &[&b])],
    ))
    .await;

    assert_eq!(get(port, "a.example.com", "/x").await.body, "a");
    assert_eq!(
        get(port, "A.Example.com:8080", "/x").await.body,
        "a",
        "host is case-insensitive, port stripped"
    );
    assert_eq!(get(port, "z.example.com", "/b/c").await.body, "b");
    // Listener isolation: the wildcard host has no route for `/x`; no fallback elsewhere.
    assert_eq!(get(port, "z.example.com", "/x").await.status, 404);
    assert_eq!(get(port, "other.org", "/").await.status, 404);
    // Segment prefix: `/bc` is not under `/b`.
    assert_eq!(get(port, "z.example.com", "/bc").await.status, 404);

    let seen = a.seen();
    assert_eq!(seen[0].path, "/x");
    assert_eq!(seen[0].host.as_deref(), Some("a.example.com"));
    assert_eq!(
        seen[0]
            .headers
            .get("x-forwarded-proto")
            .map(|v| v.to_str().unwrap_or("")),
        Some("http")
    );
    assert_eq!(
        seen[0]
            .headers
            .get("x-forwarded-for")
            .map(|v| v.to_str().unwrap_or("")),
        Some("127.0.0.1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_swap_changes_routes_and_listeners() {
    let a = Backend::start("a", Behavior::Echo).await;
    let b = Backend::start("b", Behavior::Echo).await;
    let (p1, p2) = (free_port(), free_port());
    let gw = Gateway::start();
    assert_eq!(gw.handle.served_version(), None);
    gw.apply(snapshot(
        1,
        vec![http_listener(
            p1,
            vec![vhost("*", vec![route("r", prefix("/"), forward("a"))])],
        )],
        vec![cluster("a", &[&a]), cluster("b", &[&b])],
    ))
    .await;
    assert_eq!(get(p1, "h", "/").await.body, "a");

    gw.apply(snapshot(
        2,
        vec![
            http_listener(
                p1,
                vec![vhost("*", vec![route("r", prefix("/"), forward("b"))])],
            ),
            http_listener(
                p2,
                vec![vhost("*", vec![route("r", prefix("/"), forward("a"))])],
            ),
        ],
        vec![cluster("a", &[&a]), cluster("b", &[&b])],
    ))
    .await;
    assert_eq!(gw.handle.served_version(), Some(2));
    assert_eq!(get(p1, "h", "/").await.body, "b");
    assert_eq!(get(p2, "h", "/").await.body, "a");

    // Removing a listener closes its socket.
    gw.apply(snapshot(3, vec![http_listener(p2, vec![])], vec![]))
        .await;
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", p1))
        .await
        .is_err());
    assert_eq!(get(p2, "h", "/").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_survives_a_snapshot_swap() {
    let slow = Backend::start("slow", Behavior::Delay(Duration::from_millis(300))).await;
    let port = free_port();
    let gw = Gateway::start();
    let routes = |cluster: &str| {
        vec![http_listener(
            port,
            vec![vhost("*", vec![route("r", prefix("/"), forward(cluster))])],
        )]
    };
    gw.apply(snapshot(1, routes("slow"), vec![cluster("slow", &[&slow])]))
        .await;

    let in_flight = tokio::spawn(async move { get(port, "h", "/slow").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The new snapshot drops the cluster; the request in flight keeps its own.
    gw.apply(snapshot(2, routes("gone"), vec![])).await;
    let reply = in_flight.await.expect("join");
    assert_eq!((reply.status, reply.body.as_str()), (200, "slow"));
    assert_eq!(
        get(port, "h", "/").await.status,
        500,
        "new requests see the new snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_failure_leaves_other_listeners_working() {
    let a = Backend::start("a", Behavior::Echo).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let port = free_port();
    let gw = Gateway::start();
    let vh = || vec![vhost("*", vec![route("r", prefix("/"), forward("a"))])];
    gw.apply(snapshot(
        1,
        vec![http_listener(taken_port, vh()), http_listener(port, vh())],
        vec![cluster("a", &[&a])],
    ))
    .await;
    assert_eq!(get(port, "h", "/").await.body, "a");
    // Once the port is free the listener binds without a new snapshot.
    drop(taken);
    let mut bound = false;
    for _ in 0..40 {
        if tokio::net::TcpStream::connect(("127.0.0.1", taken_port))
            .await
            .is_ok()
        {
            bound = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(bound, "bind retried");
    assert_eq!(get(taken_port, "h", "/").await.body, "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_downstream_and_h2c_upstream() {
    let a = Backend::start("a", Behavior::Echo).await;
    let port = free_port();
    let gw = Gateway::start();
    let (name, mut h2_cluster) = cluster("h2", &[&a]);
    h2_cluster.protocol = weir_model::UpstreamProtocol::H2c;
    gw.apply(snapshot(
        1,
        vec![http_listener(
            port,
            vec![
                vhost("h2.example", vec![route("h2", prefix("/"), forward("h2"))]),
                vhost("*", vec![route("h1", prefix("/"), forward("a"))]),
            ],
        )],
        vec![cluster("a", &[&a]), (name, h2_cluster)],
    ))
    .await;
    // Cleartext HTTP/2 client (prior knowledge), routed by :authority.
    let r = get_h2c(port, "h1.example", "/over-h2c").await;
    assert_eq!((r.status, r.body.as_str()), (200, "a"));
    let seen = a.seen();
    assert_eq!(seen[0].path, "/over-h2c");
    assert_eq!(seen[0].host.as_deref(), Some("h1.example"));
    assert_eq!(seen[0].version, http::Version::HTTP_11);
    // h2c cluster: the backend is spoken to with HTTP/2.
    assert_eq!(get(port, "h2.example", "/x").await.status, 200);
    let seen = a.seen();
    assert_eq!(seen[1].version, http::Version::HTTP_2);
    assert_eq!(seen[1].host.as_deref(), Some("h2.example"));
    assert_eq!(seen[1].path, "/x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_passes_through() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = Backend::start("a", Behavior::Echo).await;
    let port = free_port();
    let gw = Gateway::start();
    gw.apply(snapshot(
        1,
        vec![http_listener(
            port,
            vec![vhost("*", vec![route("ws", prefix("/"), forward("a"))])],
        )],
        vec![cluster("a", &[&a])],
    ))
    .await;
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            tcp.read(&mut byte).await.expect("read"),
            1,
            "connection closed early"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp.write_all(b"ping").await.expect("write");
    let mut echoed = [0u8; 4];
    tcp.read_exact(&mut echoed).await.expect("echo");
    assert_eq!(&echoed, b"ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_and_connect_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = Backend::start("a", Behavior::Echo).await;
    let port = free_port();
    let gw = Gateway::start();
    gw.apply(snapshot(
        1,
        vec![http_listener(
            port,
            vec![vhost("*", vec![route("r", prefix("/"), forward("a"))])],
        )],
        vec![cluster("a", &[&a])],
    ))
    .await;
    let raw = |req: &'static [u8]| async move {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        tcp.write_all(req).await.expect("write");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    // Both framings: Pingora applies Transfer-Encoding only (RFC 9112 §6.3),
    // drops Content-Length and closes the connection after the response, so
    // nothing can be smuggled behind the body. `raw` reads until close.
    let started = std::time::Instant::now();
    let te_cl = raw(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert!(te_cl.starts_with("HTTP/1.1 200"), "{te_cl}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "connection closed after the response"
    );
    let connect = raw(b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n").await;
    assert!(connect.starts_with("HTTP/1.1 405"), "{connect}");
    // Absolute-form: a Host that disagrees with the authority is refused
    // (Pingora); otherwise it is routed by the authority, only to our clusters.
    let mismatch =
        raw(b"GET http://elsewhere.example/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            .await;
    assert!(mismatch.starts_with("HTTP/1.1 400"), "{mismatch}");
    let absolute =
        raw(b"GET http://elsewhere.example/x HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n").await;
    assert!(absolute.starts_with("HTTP/1.1 200"), "{absolute}");
    let seen = a.seen();
    let paths: Vec<_> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/", "/x"],
        "no smuggled request, no CONNECT reached a backend"
    );
    assert!(seen[0].headers.get("content-length").is_none());
    assert_eq!(seen[1].host.as_deref(), Some("elsewhere.example"));
}

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
}

//! Route actions and filters on the wire: header modifiers, redirects,
//! rewrites, invalid backends, timeouts, retries, mirrors.

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use weir_model::*;

async fn serve(routes: Vec<Route>, clusters: Vec<(String, Cluster)>) -> (Gateway, u16) {
    let port = free_port();
    let gw = Gateway::start();
    gw.apply(snapshot(
        1,
        vec![http_listener(port, vec![vhost("*", routes)])],
        clusters,
    ))
    .await;
    (gw, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_header_modifiers() {
    let a = Backend::start("a", Behavior::Echo).await;
    let mut r = route("r", prefix("/"), forward("a"));
    r.filters = vec![
        Filter::RequestHeaders(HeaderModifier {
            set: vec![("X-Header-Set".into(), "set-overwrites-values".into())],
            add: vec![("X-Header-Add-Append".into(), "header-val-2".into())],
            remove: vec!["X-Header-Remove".into()],
        }),
        Filter::ResponseHeaders(HeaderModifier {
            set: vec![("X-Resp".into(), "yes".into())],
            add: vec![],
            remove: vec!["X-Backend".into()],
        }),
    ];
    let (_gw, port) = serve(vec![r], vec![cluster("a", &[&a])]).await;
    let reply = send(
        port,
        http::Method::GET,
        "h",
        "/",
        &[
            ("x-header-set", "old"),
            ("x-header-add-append", "append-val-1"),
            ("x-header-remove", "gone"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers.get("x-resp").map(|v| v.as_bytes()),
        Some(&b"yes"[..])
    );
    assert!(reply.headers.get("x-backend").is_none());
    let seen = &a.seen()[0];
    let h = |n: &str| {
        seen.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(h("x-header-set").as_deref(), Some("set-overwrites-values"));
    assert_eq!(
        h("x-header-add-append").as_deref(),
        Some("append-val-1,header-val-2")
    );
    assert_eq!(h("x-header-remove"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_location_and_status() {
    let redirect = |scheme: Option<&str>, port: Option<u16>, path: Option<PathModifier>, status| {
        RouteAction::Redirect(Redirect {
            scheme: scheme.map(Into::into),
            hostname: Some("example.org".into()),
            path,
            port,
            status,
        })
    };
    let mut prefixed = route(
        "p",
        prefix("/prefix"),
        redirect(
            None,
            None,
            Some(PathModifier::ReplacePrefixMatch("/new".into())),
            302,
        ),
    );
    prefixed.filters = vec![Filter::ResponseHeaders(HeaderModifier {
        set: vec![("x-on-redirect".into(), "1".into())],
        ..Default::default()
    })];
    let routes = vec![
        route(
            "s",
            prefix("/scheme"),
            redirect(Some("https"), None, None, 301),
        ),
        route(
            "port",
            prefix("/port"),
            redirect(None, Some(8443), None, 308),
        ),
        prefixed,
        route("listener", prefix("/"), redirect(None, None, None, 303)),
    ];
    let (_gw, port) = serve(routes, vec![]).await;
    let loc = |r: &Reply| {
        r.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };

    let r = get(port, "h", "/scheme/x").await;
    assert_eq!(
        (r.status, loc(&r).as_deref()),
        (301, Some("https://example.org/scheme/x"))
    );
    let r = get(port, "h", "/port").await;
    assert_eq!(
        (r.status, loc(&r)),
        (308, Some("http://example.org:8443/port".to_string()))
    );
    let r = get(port, "h", "/prefix/a?q=1").await;
    assert_eq!(
        (r.status, loc(&r)),
        (302, Some(format!("http://example.org:{port}/new/a?q=1")))
    );
    assert_eq!(
        r.headers.get("x-on-redirect").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    // No scheme, no port: the listener port (not 80 here) is kept.
    let r = get(port, "h", "/z").await;
    assert_eq!(
        (r.status, loc(&r)),
        (303, Some(format!("http://example.org:{port}/z")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_rewrite_is_seen_by_the_backend() {
    let a = Backend::start("a", Behavior::Echo).await;
    let mut prefix_rw = route("p", prefix("/prefix/one"), forward("a"));
    prefix_rw.filters = vec![Filter::UrlRewrite {
        hostname: Some("rewritten.example".into()),
        path: Some(PathModifier::ReplacePrefixMatch("/one".into())),
    }];
    let mut full_rw = route("f", prefix("/full"), forward("a"));
    full_rw.filters = vec![Filter::UrlRewrite {
        hostname: None,
        path: Some(PathModifier::ReplaceFullPath("/one".into())),
    }];
    let (_gw, port) = serve(vec![prefix_rw, full_rw], vec![cluster("a", &[&a])]).await;

    assert_eq!(get(port, "h", "/prefix/one/two?x=1").await.status, 200);
    assert_eq!(get(port, "h", "/full/a/b").await.status, 200);
    let seen = a.seen();
    assert_eq!(seen[0].path, "/one/two?x=1");
    assert_eq!(seen[0].host.as_deref(), Some("rewritten.example"));
    assert_eq!(seen[1].path, "/one");
    assert_eq!(seen[1].host.as_deref(), Some("h"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_backend_share_answers_500_and_direct_response() {
    let a = Backend::start("a", Behavior::Echo).await;
    let invalid = RouteAction::Forward(vec![WeightedBackend {
        cluster: None,
        weight: 1,
        filters: vec![],
    }]);
    let zero = RouteAction::Forward(vec![WeightedBackend {
        cluster: Some("a".into()),
        weight: 0,
        filters: vec![],
    }]);
    let routes = vec![
        route("invalid", prefix("/invalid"), invalid),
        route("zero", prefix("/zero"), zero),
        route("missing", prefix("/missing"), forward("not-in-snapshot")),
        route(
            "direct",
            prefix("/direct"),
            RouteAction::DirectResponse {
                status: 418,
                body: Some("teapot".into()),
            },
        ),
    ];
    let (_gw, port) = serve(routes, vec![cluster("a", &[&a])]).await;
    assert_eq!(get(port, "h", "/invalid").await.status, 500);
    assert_eq!(get(port, "h", "/zero").await.status, 500);
    assert_eq!(get(port, "h", "/missing").await.status, 500);
    let r = get(port, "h", "/direct").await;
    assert_eq!((r.status, r.body.as_str()), (418, "teapot"));
    assert!(a.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_timeout_answers_504() {
    let slow = Backend::start("slow", Behavior::Delay(Duration::from_secs(3))).await;
    let mut per_try = route("t", prefix("/backend"), forward("slow"));
    per_try.timeouts.backend_request = Some(Duration::from_millis(100));
    let mut overall = route("o", prefix("/request"), forward("slow"));
    overall.timeouts.request = Some(Duration::from_millis(100));
    let (_gw, port) = serve(vec![per_try, overall], vec![cluster("slow", &[&slow])]).await;
    let started = std::time::Instant::now();
    assert_eq!(get(port, "h", "/backend").await.status, 504);
    assert_eq!(get(port, "h", "/request").await.status, 504);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "timeouts cut the wait"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_on_listed_status_until_a_200() {
    let flaky = Backend::start("flaky", Behavior::Statuses(VecDeque::from([503, 503]))).await;
    let mut r = route("r", prefix("/"), forward("flaky"));
    r.retry = Some(RetryPolicy {
        attempts: 2,
        codes: vec![503],
        ..Default::default()
    });
    let (_gw, port) = serve(vec![r], vec![cluster("flaky", &[&flaky])]).await;
    let reply = get(port, "h", "/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(flaky.seen().len(), 3);

    // Attempts exhausted: the last backend answer passes through.
    *flaky.behavior.lock().expect("lock") =
        Behavior::Statuses(VecDeque::from([503, 503, 503, 503]));
    assert_eq!(get(port, "h", "/").await.status, 503);
    assert_eq!(flaky.seen().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_on_connect_failure_to_another_endpoint() {
    let good = Backend::start("good", Behavior::Echo).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let (name, mut c) = cluster("c", &[&good]);
    c.endpoints.push(Endpoint {
        address: dead_addr,
        weight: 1000,
        locality: None,
        labels: Default::default(),
        ready: true,
    });
    let mut r = route("r", prefix("/"), forward("c"));
    r.retry = Some(RetryPolicy {
        attempts: 1,
        on_connect_failure: true,
        ..Default::default()
    });
    let mut no_retry = route("n", prefix("/no-retry"), forward("c"));
    no_retry.retry = None;
    let (_gw, port) = serve(vec![no_retry, r], vec![(name, c)]).await;
    assert_eq!(get(port, "h", "/").await.body, "good");
    // Without a policy the (almost always chosen) dead endpoint fails the request.
    let mut failures = 0;
    for _ in 0..3 {
        if get(port, "h", "/no-retry").await.status == 503 {
            failures += 1;
        }
    }
    assert!(failures >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_receives_a_copy() {
    let primary = Backend::start("primary", Behavior::Echo).await;
    let shadow = Backend::start("shadow", Behavior::Echo).await;
    let mut r = route("r", prefix("/"), forward("primary"));
    r.filters = vec![
        Filter::RequestHeaders(HeaderModifier {
            set: vec![("x-filtered".into(), "1".into())],
            ..Default::default()
        }),
        Filter::Mirror {
            cluster: Some("shadow".into()),
            percent: 100.0,
        },
    ];
    let (_gw, port) = serve(
        vec![r],
        vec![
            cluster("primary", &[&primary]),
            cluster("shadow", &[&shadow]),
        ],
    )
    .await;
    assert_eq!(get(port, "h", "/m?x=1").await.body, "primary");
    let posted = send(
        port,
        http::Method::POST,
        "h",
        "/body",
        &[],
        Bytes::from_static(b"payload"),
    )
    .await;
    assert_eq!(posted.status, 200);
    for _ in 0..100 {
        if shadow.seen().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = shadow.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, "/m?x=1");
    assert_eq!(
        seen[0].headers.get("x-filtered").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_eq!(seen[1].method, "POST");
    assert_eq!(&seen[1].body[..], b"payload");

    // A mirror to an h2c cluster speaks HTTP/2 with prior knowledge.
    let h2_shadow = Backend::start("h2-shadow", Behavior::Echo).await;
    let (name, mut c) = cluster("h2-shadow", &[&h2_shadow]);
    c.protocol = UpstreamProtocol::H2c;
    let mut r = route("r", prefix("/"), forward("primary"));
    r.filters = vec![Filter::Mirror {
        cluster: Some("h2-shadow".into()),
        percent: 100.0,
    }];
    let (_gw2, port2) = serve(vec![r], vec![cluster("primary", &[&primary]), (name, c)]).await;
    assert_eq!(get(port2, "h", "/h2").await.status, 200);
    for _ in 0..100 {
        if !h2_shadow.seen().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        h2_shadow.seen().first().map(|s| s.version),
        Some(http::Version::HTTP_2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_answered_and_simple_response_decorated() {
    let a = Backend::start("a", Behavior::Echo).await;
    let mut r = route("cors", prefix("/"), forward("a"));
    r.filters = vec![Filter::Cors(CorsPolicy {
        allow_origins: vec!["https://*.bar.com".into()],
        allow_methods: vec!["GET".into()],
        allow_credentials: true,
        ..Default::default()
    })];
    let (_gw, port) = serve(vec![r], vec![cluster("a", &[&a])]).await;
    let pre = send(
        port,
        http::Method::OPTIONS,
        "h",
        "/",
        &[
            ("origin", "https://www.bar.com"),
            ("access-control-request-method", "GET"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.headers
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"https://www.bar.com"[..])
    );
    assert!(a.seen().is_empty(), "preflight answered by the gateway");
    let simple = send(
        port,
        http::Method::GET,
        "h",
        "/",
        &[("origin", "https://www.bar.com")],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        simple
            .headers
            .get("access-control-allow-credentials")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let denied = send(
        port,
        http::Method::GET,
        "h",
        "/",
        &[("origin", "https://evil.com")],
        Bytes::new(),
    )
    .await;
    assert_eq!(denied.status, 200);
    assert!(denied.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_respect_the_request_timeout() {
    // Every attempt fails with 500; retries continue only while the 300ms
    // request timeout allows, then 504.
    let flaky = Backend::start("flaky", Behavior::Statuses(VecDeque::from(vec![500; 100]))).await;
    let mut r = route("r", prefix("/"), forward("flaky"));
    r.timeouts.request = Some(Duration::from_millis(300));
    r.retry = Some(RetryPolicy {
        attempts: 50,
        codes: vec![500],
        backoff: Some(Duration::from_millis(40)),
        ..Default::default()
    });
    let (_gw, port) = serve(vec![r], vec![cluster("flaky", &[&flaky])]).await;
    let started = std::time::Instant::now();
    assert_eq!(get(port, "h", "/").await.status, 504);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(280) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    let attempts = flaky.seen().len();
    assert!((3..=9).contains(&attempts), "{attempts} attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_try_timeout_is_retried() {
    let slow = Backend::start("slow", Behavior::Delay(Duration::from_millis(300))).await;
    let fast = Backend::start("fast", Behavior::Echo).await;
    let (name, mut c) = cluster("c", &[&slow]);
    c.endpoints.push(Endpoint {
        address: fast.addr,
        weight: 1,
        locality: None,
        labels: Default::default(),
        ready: true,
    });
    let mut r = route("r", prefix("/"), forward("c"));
    r.timeouts.backend_request = Some(Duration::from_millis(100));
    r.retry = Some(RetryPolicy {
        attempts: 1,
        ..Default::default()
    });
    let (_gw, port) = serve(vec![r], vec![(name, c)]).await;
    // Whichever endpoint is tried first, the retry goes to the other one.
    for _ in 0..4 {
        assert_eq!(get(port, "h", "/").await.body, "fast");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_backends_split_traffic_and_apply_their_own_filters() {
    let a = Backend::start("a", Behavior::Echo).await;
    let b = Backend::start("b", Behavior::Echo).await;
    let z = Backend::start("z", Behavior::Echo).await;
    let backend = |cluster: &str, weight, filters| WeightedBackend {
        cluster: Some(cluster.into()),
        weight,
        filters,
    };
    let only_b = vec![Filter::RequestHeaders(HeaderModifier {
        set: vec![("x-to".into(), "b".into())],
        ..Default::default()
    })];
    let r = route(
        "w",
        prefix("/"),
        RouteAction::Forward(vec![
            backend("a", 3, vec![]),
            backend("b", 1, only_b),
            backend("z", 0, vec![]),
        ]),
    );
    let (_gw, port) = serve(
        vec![r],
        vec![
            cluster("a", &[&a]),
            cluster("b", &[&b]),
            cluster("z", &[&z]),
        ],
    )
    .await;
    for _ in 0..100 {
        assert_eq!(get(port, "h", "/").await.status, 200);
    }
    let (na, nb) = (a.seen().len(), b.seen().len());
    assert_eq!(na + nb, 100);
    assert!((60..=90).contains(&na), "3:1 split, got {na}:{nb}");
    assert!(z.seen().is_empty(), "weight 0 gets nothing");
    assert!(b.seen().iter().all(|s| s.headers.get("x-to").is_some()));
    assert!(a.seen().iter().all(|s| s.headers.get("x-to").is_none()));
}

/// A backend that closes the first `failures` connections right after
/// reading the request (no status line), then answers 200.
async fn resetting_backend(
    failures: usize,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                if n >= failures {
                    let _ = tcp
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                }
                // Dropping the socket closes the connection.
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_on_connection_reset_within_attempts() {
    use std::sync::atomic::Ordering;
    let policy = RetryPolicy {
        attempts: 2,
        on_connect_failure: true,
        ..Default::default()
    };
    for (failures, want_status, want_attempts) in [(2, 200, 3), (4, 503, 3)] {
        let (addr, seen) = resetting_backend(failures).await;
        let c = Cluster {
            name: "reset".into(),
            protocol: UpstreamProtocol::Http1,
            endpoints: vec![Endpoint {
                address: addr,
                weight: 1,
                locality: None,
                labels: Default::default(),
                ready: true,
            }],
            connect_timeout: None,
            tls: None,
        };
        let mut r = route("r", prefix("/"), forward("reset"));
        r.retry = Some(policy.clone());
        let (_gw, port) = serve(vec![r], vec![("reset".into(), c)]).await;
        assert_eq!(
            get(port, "h", "/").await.status,
            want_status,
            "{failures} resets"
        );
        assert_eq!(
            seen.load(Ordering::SeqCst),
            want_attempts,
            "{failures} resets"
        );
    }
}

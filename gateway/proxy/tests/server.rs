//! The public `build()` path: a real Pingora `Server` running the data plane
//! as a background service, fed through the handle from another thread
//! (as `weir-gateway` does).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;

#[test]
fn build_serves_snapshots_pushed_before_and_after_start() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let backend = rt.block_on(Backend::start("a", Behavior::Echo));
    let (p1, p2) = (free_port(), free_port());
    let listener = |port| {
        http_listener(
            port,
            vec![vhost("*", vec![route("r", prefix("/"), forward("a"))])],
        )
    };

    let (server, handle) = weir_proxy::build(weir_proxy::ProxyOptions {
        threads: 1,
        ..Default::default()
    });
    // Pushed before the server runs: bound once the service starts.
    handle.update(Arc::new(snapshot(
        1,
        vec![listener(p1)],
        vec![cluster("a", &[&backend])],
    )));
    assert_eq!(handle.served_version(), None);
    // The server thread lives until the test process exits.
    std::thread::spawn(move || server.run(pingora_core::server::RunArgs::default()));

    rt.block_on(async {
        for _ in 0..400 {
            if handle.served_version() == Some(1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(handle.served_version(), Some(1));
        assert_eq!(get(p1, "h", "/").await.body, "a");

        let h = handle.clone();
        let b = backend.clone();
        std::thread::spawn(move || {
            h.update(Arc::new(snapshot(
                2,
                vec![listener(p1), listener(p2)],
                vec![cluster("a", &[&b])],
            )))
        })
        .join()
        .expect("update thread");
        for _ in 0..400 {
            if handle.served_version() == Some(2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(get(p2, "h", "/").await.body, "a");
        // An older snapshot is ignored.
        handle.update(Arc::new(snapshot(1, vec![], vec![])));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(handle.served_version(), Some(2));
        assert_eq!(get(p1, "h", "/").await.status, 200);
    });
}

//! The control API: modes and the request log.

use std::time::{Duration, Instant};

use http::StatusCode;

use crate::support::{config, get, http1, post_json, start};

#[tokio::test]
async fn status_mode_then_normal() {
    let backend = start(config()).await;
    let set = http1(backend.control, post_json("/mode", r#"{"mode":"status","status":503}"#)).await.unwrap();
    assert_eq!(set.status, StatusCode::OK);
    let answer = http1(backend.http, get("/anything")).await.unwrap();
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(http1(backend.http, get("/health")).await.unwrap().status, StatusCode::SERVICE_UNAVAILABLE);
    // The control port itself is never affected.
    assert_eq!(http1(backend.control, get("/health")).await.unwrap().status, StatusCode::OK);

    http1(backend.control, post_json("/mode", r#"{"mode":"normal"}"#)).await.unwrap();
    assert_eq!(http1(backend.http, get("/anything")).await.unwrap().status, StatusCode::OK);
}

#[tokio::test]
async fn delay_mode_delays_every_answer() {
    let backend = start(config()).await;
    http1(backend.control, post_json("/mode", r#"{"mode":"delay","delay":"250ms"}"#)).await.unwrap();
    let started = Instant::now();
    assert_eq!(http1(backend.http, get("/")).await.unwrap().status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn refuse_mode_resets_connections() {
    let backend = start(config()).await;
    // A connection opened before the mode change: its next request is reset too.
    let early = tokio::net::TcpStream::connect(backend.http).await.unwrap();
    http1(backend.control, post_json("/mode", r#"{"mode":"refuse"}"#)).await.unwrap();
    assert!(http1(backend.http, get("/")).await.is_err(), "new connection refused");
    assert!(crate::support::http1_on(early, get("/")).await.is_err(), "open connection reset");
    http1(backend.control, post_json("/mode", r#"{"mode":"normal"}"#)).await.unwrap();
    assert_eq!(http1(backend.http, get("/")).await.unwrap().status, StatusCode::OK);
}

#[tokio::test]
async fn bad_mode_is_rejected_and_changes_nothing() {
    let backend = start(config()).await;
    let answer = http1(backend.control, post_json("/mode", r#"{"mode":"status","status":99999}"#)).await.unwrap();
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = http1(backend.control, post_json("/mode", "not json")).await.unwrap();
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let mode = http1(backend.control, get("/mode")).await.unwrap();
    assert_eq!(mode.json(), serde_json::json!({"mode": "normal"}));
}

#[tokio::test]
async fn requests_lists_every_data_plane_request() {
    let backend = start(config()).await;
    let request = http::Request::post("/mirror?gateway-api-conformance-request-id=42")
        .header("host", "mirror.example")
        .header("x-mirror", "yes")
        .body(http_body_util::Full::default())
        .unwrap();
    http1(backend.http, request).await.unwrap();
    http1(backend.http, get("/status/500")).await.unwrap();
    let seen = http1(backend.control, get("/requests")).await.unwrap().json();
    assert_eq!(seen["count"], 2);
    let first = &seen["requests"][0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/mirror?gateway-api-conformance-request-id=42");
    assert_eq!(first["host"], "mirror.example");
    assert_eq!(first["headers"]["X-Mirror"], serde_json::json!(["yes"]));
    assert_eq!(seen["requests"][1]["path"], "/status/500");

    http1(backend.control, http::Request::delete("/requests").header("host", "c").body(Default::default()).unwrap())
        .await
        .unwrap();
    let seen = http1(backend.control, get("/requests")).await.unwrap().json();
    assert_eq!(seen["count"], 0);
}

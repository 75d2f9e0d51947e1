//! The HTTP answers on the --http and --h2c ports.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{config, get, get_h2, http1, http2, start, NAMESPACE, POD, SERVICE};

#[tokio::test]
async fn echo_reports_the_request_and_the_backend() {
    let backend = start(config()).await;
    let request = Request::get("/some/path?q=1&r=two")
        .header("host", "example.com")
        .header("x-header-set", "one")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .body(Full::default())
        .unwrap();
    let answer = http1(backend.http, request).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/json");
    let json = answer.json();
    assert_eq!(json["path"], "/some/path?q=1&r=two");
    assert_eq!(json["host"], "example.com");
    assert_eq!(json["method"], "GET");
    assert_eq!(json["proto"], "HTTP/1.1");
    assert_eq!(json["headers"]["X-Header-Set"], serde_json::json!(["one"]));
    assert_eq!(json["headers"]["X-Multi"], serde_json::json!(["a", "b"]));
    assert!(json["headers"].get("Host").is_none(), "Go keeps Host out of the headers");
    assert_eq!(json["namespace"], NAMESPACE);
    assert_eq!(json["pod"], POD);
    assert_eq!(json["service"], SERVICE);
    assert_eq!(json["ingress"], "");
    assert_eq!(json["httpPort"], backend.http.port().to_string());
    assert!(json.get("tls").is_none(), "no tls on a cleartext connection");
}

#[tokio::test]
async fn health_and_status() {
    let backend = start(config()).await;
    let health = http1(backend.http, get("/health")).await.unwrap();
    assert_eq!((health.status, &health.body[..]), (StatusCode::OK, &b"OK"[..]));
    let teapot = http1(backend.http, get("/status/418")).await.unwrap();
    assert_eq!(teapot.status, StatusCode::IM_A_TEAPOT);
    assert!(teapot.body.is_empty());
    let bad = http1(backend.http, get("/status/abc")).await.unwrap();
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn echo_set_header_becomes_response_headers() {
    let backend = start(config()).await;
    let request = Request::get("/")
        .header("host", "echo.test")
        .header("x-echo-set-header", "X-Header-Set-1:value-1,X-Header-Set-2:value-2")
        .body(Full::default())
        .unwrap();
    let answer = http1(backend.http, request).await.unwrap();
    assert_eq!(answer.headers["x-header-set-1"], "value-1");
    assert_eq!(answer.headers["x-header-set-2"], "value-2");
}

#[tokio::test]
async fn delay_query_delays_the_answer() {
    let backend = start(config()).await;
    let started = Instant::now();
    let answer = http1(backend.http, get("/slow?delay=300ms")).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300), "took {:?}", started.elapsed());
    assert_eq!(answer.json()["path"], "/slow?delay=300ms");
    let bad = http1(backend.http, get("/slow?delay=soon")).await.unwrap();
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn retry_with_response_code_fails_then_echoes() {
    let backend = start(config()).await;
    let path = "/retry/x?responseCode=503&succeedAfter=2&uuid=u1";
    assert_eq!(http1(backend.http, get(path)).await.unwrap().status, StatusCode::SERVICE_UNAVAILABLE);
    // Another uuid has its own counter.
    let other = http1(backend.http, get("/retry/x?responseCode=500&succeedAfter=1&uuid=u2")).await.unwrap();
    assert_eq!(other.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(http1(backend.http, get(path)).await.unwrap().status, StatusCode::SERVICE_UNAVAILABLE);
    let third = http1(backend.http, get(path)).await.unwrap();
    assert_eq!(third.status, StatusCode::OK);
    assert_eq!(third.json()["path"], path);
    let missing = http1(backend.http, get("/retry/x?succeedAfter=1")).await.unwrap();
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "uuid is required");
}

#[tokio::test]
async fn retry_without_response_code_resets_the_connection() {
    let backend = start(config()).await;
    let path = "/retry/x?succeedAfter=2&uuid=reset&delayRetry=100ms";
    for attempt in 1..=2 {
        let started = Instant::now();
        let result = http1(backend.http, get(path)).await;
        assert!(result.is_err(), "attempt {attempt} must end without a response");
        assert!(started.elapsed() >= Duration::from_millis(100), "delayRetry waited");
    }
    let answer = http1(backend.http, get(path)).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn a_reset_is_a_tcp_reset() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = start(config()).await;
    let mut stream = TcpStream::connect(backend.http).await.unwrap();
    stream
        .write_all(b"GET /retry/x?succeedAfter=1&uuid=rst HTTP/1.1\r\nHost: echo.test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let error = stream.read(&mut buf).await.expect_err("RST, not a clean EOF");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn h2c_port_speaks_http2_and_rejects_plain_http1() {
    let backend = start(config()).await;
    let h2c = backend.h2c.unwrap();
    let answer = http2(h2c, get_h2("/h2?x=1")).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let json = answer.json();
    assert_eq!(json["proto"], "HTTP/2.0");
    assert_eq!(json["host"], "echo.test");
    assert_eq!(json["path"], "/h2?x=1");
    assert_eq!(json["httpPort"], h2c.port().to_string());

    let plain = http1(h2c, get("/h1")).await.unwrap();
    assert_eq!(plain.status, StatusCode::BAD_REQUEST);

    // An upgrade request is not refused (the upgrade itself is ignored).
    let upgrade = Request::get("/up")
        .header("host", "echo.test")
        .header("connection", "Upgrade, HTTP2-Settings")
        .header("upgrade", "h2c")
        .header("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA")
        .body(Full::<Bytes>::default())
        .unwrap();
    assert_eq!(http1(h2c, upgrade).await.unwrap().status, StatusCode::OK);
}

#[tokio::test]
async fn http_port_also_accepts_h2_prior_knowledge() {
    let backend = start(config()).await;
    let answer = http2(backend.http, get_h2("/")).await.unwrap();
    assert_eq!(answer.json()["proto"], "HTTP/2.0");
}

#[tokio::test]
async fn websocket_echoes_text_and_binary_frames() {
    let backend = start(config()).await;
    let stream = TcpStream::connect(backend.http).await.unwrap();
    let url = format!("ws://{}/ws", backend.http);
    let (mut socket, response) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket.send(Message::text("Websocket Support!")).await.unwrap();
    assert_eq!(socket.next().await.unwrap().unwrap(), Message::text("Websocket Support!"));
    socket.send(Message::binary(vec![1u8, 2, 3, 4, 5, 6, 7])).await.unwrap();
    assert_eq!(socket.next().await.unwrap().unwrap(), Message::binary(vec![1u8, 2, 3, 4, 5, 6, 7]));
    socket.close(None).await.unwrap();
    assert_eq!(backend.echo.requests.snapshot().requests[0].path, "/ws");
}

#[tokio::test]
async fn request_body_is_read_and_the_connection_kept() {
    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;
    let backend = start(config()).await;
    let stream = TcpStream::connect(backend.http).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    let connection = tokio::spawn(connection);
    let body = Bytes::from(vec![b'x'; 200 * 1024]);
    let post = Request::post("/upload").header("host", "echo.test").body(Full::new(body)).unwrap();
    let answer = sender.send_request(post).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.into_body().collect().await.unwrap();
    sender.ready().await.expect("connection still open");
    let again = sender.send_request(get("/again")).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert!(!connection.is_finished());
}

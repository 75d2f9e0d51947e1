//! The gRPC echo service, called with hand-made frames.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;

use crate::echo::grpc::SERVICE;
use crate::echo::protobuf::{fields, Value};
use crate::support::{config, http2, http2_on, start, tls_connect, Answer, Pki, NAMESPACE, POD, SERVER_NAME, SERVICE as SVC};

fn call(method: &str) -> Request<Full<Bytes>> {
    Request::post(format!("http://grpc.example/{SERVICE}/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-grpc-test", "meta-value")
        // An empty EchoRequest in a 5-byte frame.
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap()
}

/// The decoded EchoResponse fields that the runner reads.
#[derive(Debug, Default)]
struct Echoed {
    method: String,
    authority: String,
    headers: Vec<(String, String)>,
    context: Vec<(u32, String)>,
    tls: Vec<(u32, String)>,
}

fn string(value: &Value) -> String {
    match value {
        Value::Bytes(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
        other => panic!("expected a string, got {other:?}"),
    }
}

fn bytes<'a>(value: &Value<'a>) -> &'a [u8] {
    match value {
        Value::Bytes(bytes) => bytes,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn decode(answer: &Answer) -> Echoed {
    let body = &answer.body;
    assert_eq!(body[0], 0, "uncompressed");
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    assert_eq!(body.len(), 5 + len, "one message");
    let response = fields(&body[5..]).unwrap();
    assert_eq!(response.len(), 1);
    assert_eq!(response[0].0, 1, "EchoResponse.assertions");
    let mut echoed = Echoed::default();
    for (field, value) in fields(bytes(&response[0].1)).unwrap() {
        match field {
            1 => echoed.method = string(&value),
            2 => {
                let header = fields(bytes(&value)).unwrap();
                let get = |n| header.iter().find(|(f, _)| *f == n).map(|(_, v)| string(v)).unwrap_or_default();
                echoed.headers.push((get(1), get(2)));
            }
            3 => echoed.authority = string(&value),
            4 => echoed.context = fields(bytes(&value)).unwrap().iter().map(|(f, v)| (*f, string(v))).collect(),
            5 => echoed.tls = fields(bytes(&value)).unwrap().iter().map(|(f, v)| (*f, string(v))).collect(),
            other => panic!("unexpected Assertions field {other}"),
        }
    }
    echoed
}

fn assert_ok(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/grpc");
    let trailers = answer.trailers.as_ref().expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
}

async fn grpc_backend() -> (crate::echo::Running, SocketAddr) {
    let backend = start(crate::echo::Config { grpc: true, ..config() }).await;
    let h2c = backend.h2c.unwrap();
    (backend, h2c)
}

#[tokio::test]
async fn echo_round_trip_over_h2c() {
    let (backend, h2c) = grpc_backend().await;
    for method in ["Echo", "EchoTwo"] {
        let answer = http2(h2c, call(method)).await.unwrap();
        assert_ok(&answer);
        let echoed = decode(&answer);
        assert_eq!(echoed.method, format!("/{SERVICE}/{method}"));
        assert_eq!(echoed.authority, "grpc.example");
        assert!(echoed.headers.contains(&("x-grpc-test".into(), "meta-value".into())), "{:?}", echoed.headers);
        assert!(echoed.headers.contains(&(":authority".into(), "grpc.example".into())));
        assert!(!echoed.headers.iter().any(|(k, _)| k == "te"), "te is reserved");
        assert_eq!(
            echoed.context,
            vec![(1, NAMESPACE.to_string()), (3, SVC.to_string()), (4, POD.to_string())]
        );
        assert!(echoed.tls.is_empty());
    }
    // Also reachable with prior knowledge on the --http port.
    assert_ok(&http2(backend.http, call("Echo")).await.unwrap());
}

#[tokio::test]
async fn echo_three_is_unimplemented() {
    let (_backend, h2c) = grpc_backend().await;
    let answer = http2(h2c, call("EchoThree")).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let status = answer.trailers.as_ref().and_then(|t| t.get("grpc-status")).or(answer.headers.get("grpc-status"));
    assert_eq!(status.unwrap(), "12");
    assert!(answer.body.is_empty());
    let unknown = http2(h2c, call("Nope")).await.unwrap();
    assert_eq!(unknown.headers["grpc-status"], "12");
}

#[tokio::test]
async fn echo_over_tls_reports_the_handshake() {
    let pki = Pki::new();
    let backend = start(crate::echo::Config {
        grpc: true,
        tls: Some((crate::support::loopback(), pki.files(false))),
        ..config()
    })
    .await;
    let stream = tls_connect(backend.tls.unwrap(), pki.client_config(&[b"h2"], false)).await.unwrap();
    let answer = http2_on(stream, call("Echo")).await.unwrap();
    assert_ok(&answer);
    let tls = decode(&answer).tls;
    assert!(tls.contains(&(1, "TLSv1.3".to_string())), "{tls:?}");
    assert!(tls.contains(&(2, "h2".to_string())));
    assert!(tls.contains(&(3, SERVER_NAME.to_string())));
}

#[tokio::test]
async fn without_grpc_flag_a_grpc_call_gets_the_json_echo() {
    let backend = start(config()).await;
    let answer = http2(backend.h2c.unwrap(), call("Echo")).await.unwrap();
    assert_eq!(answer.json()["path"], format!("/{SERVICE}/Echo"));
}

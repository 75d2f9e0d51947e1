//! The gRPC echo service `gateway_api_conformance.echo_basic.grpcecho.GrpcEcho`:
//! `Echo` and `EchoTwo` answer with what the backend saw, `EchoThree` is
//! UNIMPLEMENTED, as upstream's grpc-echo server.

use bytes::{BufMut, BytesMut};
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited, StreamBody};
use hyper::body::{Frame, Incoming};

use super::conn::ConnInfo;
use super::http::{empty, Body};
use super::protobuf::{self, Writer};
use super::tls::TlsAssertions;
use super::Echo;

pub const SERVICE: &str = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho";

/// Larger than any EchoRequest (which is empty) a client could send.
const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// gRPC status codes used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    Internal = 13,
    Unimplemented = 12,
}

/// Headers gRPC keeps out of the request metadata (grpc-go `isReservedHeader`,
/// minus what it whitelists).
const RESERVED: &[&str] = &[
    "te",
    "connection",
    "grpc-encoding",
    "grpc-message",
    "grpc-message-type",
    "grpc-status",
    "grpc-status-details-bin",
    "grpc-timeout",
    "grpc-tags-bin",
    "grpc-trace-bin",
];

pub fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

pub async fn handle(echo: &Echo, conn: &ConnInfo, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let Some(method) = path.strip_prefix('/').and_then(|p| p.strip_prefix(SERVICE)).and_then(|p| p.strip_prefix('/'))
    else {
        return status_only(Code::Unimplemented, &format!("unknown service {path}"));
    };
    match method {
        "Echo" | "EchoTwo" => {}
        "EchoThree" => return status_only(Code::Unimplemented, "method EchoThree not implemented"),
        other => return status_only(Code::Unimplemented, &format!("unknown method {other} for service {SERVICE}")),
    }
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string))
        .unwrap_or_default();
    let metadata = metadata(&authority, request.headers());
    if let Err(message) = read_echo_request(request).await {
        return status_only(Code::Internal, &message);
    }
    let answer = echo_response(&format!("/{SERVICE}/{method}"), &metadata, &authority, echo, conn.tls.as_ref());
    ok_response(answer)
}

/// The request metadata as grpc-go shows it to a handler: lower-case keys,
/// `:authority` included, reserved headers left out.
fn metadata(authority: &str, headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out = vec![(":authority".to_string(), authority.to_string())];
    for (name, value) in headers {
        if RESERVED.contains(&name.as_str()) || name == header::HOST {
            continue;
        }
        out.push((name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()));
    }
    out
}

/// Reads the request's length-prefixed messages; EchoRequest has no fields,
/// so a message only has to be well formed.
async fn read_echo_request(request: Request<Incoming>) -> Result<(), String> {
    let body = Limited::new(request.into_body(), MAX_REQUEST)
        .collect()
        .await
        .map_err(|e| format!("reading request: {e}"))?
        .to_bytes();
    let mut rest = &body[..];
    while !rest.is_empty() {
        let [compressed, a, b, c, d, ..] = *rest else {
            return Err("truncated gRPC frame header".into());
        };
        if compressed != 0 {
            return Err("compressed messages are not supported".into());
        }
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        let message = rest.get(5..5 + len).ok_or("truncated gRPC message")?;
        protobuf::fields(message).map_err(|e| e.to_string())?;
        rest = &rest[5 + len..];
    }
    Ok(())
}

/// `EchoResponse{assertions: Assertions{...}}` (field numbers in FORMAT.md).
pub fn echo_response(
    method: &str,
    metadata: &[(String, String)],
    authority: &str,
    echo: &Echo,
    tls: Option<&TlsAssertions>,
) -> Vec<u8> {
    let mut assertions = Writer::default();
    assertions.string(1, method);
    for (key, value) in metadata {
        let mut header = Writer::default();
        header.string(1, key).string(2, value);
        assertions.message(2, header);
    }
    assertions.string(3, authority);
    let identity = &echo.identity;
    let mut context = Writer::default();
    context
        .string(1, &identity.namespace)
        .string(2, &identity.ingress)
        .string(3, &identity.service)
        .string(4, &identity.pod);
    assertions.message(4, context);
    if let Some(tls) = tls {
        let mut tls_assertions = Writer::default();
        tls_assertions
            .string(1, &tls.version)
            .string(2, &tls.negotiated_protocol)
            .string(3, &tls.server_name)
            .string(4, &tls.cipher_suite);
        for pem in &tls.peer_certificates {
            tls_assertions.string(5, pem);
        }
        assertions.message(5, tls_assertions);
    }
    let mut response = Writer::default();
    response.message(1, assertions);
    response.into_bytes()
}

fn grpc_headers(response: &mut Response<Body>) {
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
}

fn ok_response(message: Vec<u8>) -> Response<Body> {
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(&message);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(Code::Ok as u16));
    let frames = [Ok(Frame::data(frame.freeze())), Ok(Frame::trailers(trailers))];
    let mut response = Response::new(StreamBody::new(futures::stream::iter(frames)).boxed());
    grpc_headers(&mut response);
    response
}

/// A "trailers-only" answer: the status rides in the response headers.
pub fn status_only(code: Code, message: &str) -> Response<Body> {
    let mut response = empty(StatusCode::OK);
    grpc_headers(&mut response);
    let headers = response.headers_mut();
    headers.insert("grpc-status", HeaderValue::from(code as u16));
    if let Ok(message) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", message);
    }
    response
}

/// grpc-message is percent-encoded (gRPC over HTTP/2 spec).
fn percent_encode(message: &str) -> String {
    message
        .bytes()
        .map(|b| if (0x20..0x7f).contains(&b) && b != b'%' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

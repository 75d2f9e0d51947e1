//! The data-plane request handler: control mode first, then the echo
//! contract's routes (`/health`, `/status/NNN`, `/retry/`, WebSocket, gRPC,
//! and the JSON echo of everything else).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;

use super::answer::{echo_set_headers, query_param, seen_request, RequestAssertions};
use super::conn::{ConnInfo, Port};
use super::duration::parse_go_duration;
use super::mode::Mode;
use super::requests::SeenRequest;
use super::retry::Attempt;
use super::{grpc, websocket, Echo};

pub type Body = BoxBody<Bytes, Infallible>;

/// How long a handler that reset its connection lingers before giving up;
/// the connection task drops the connection (and this handler) long before.
const ABORT_LINGER: Duration = Duration::from_secs(10);

/// Request bodies are read (and dropped) up to this size before answering.
const MAX_DRAIN: usize = 1024 * 1024;

/// The handler's error: the connection was reset instead of answered.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by the echo backend")]
pub struct Aborted;

pub async fn handle(
    echo: Arc<Echo>,
    conn: Arc<ConnInfo>,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, Aborted> {
    let seen = seen_request(&request);
    echo.requests.record(seen.clone());
    tracing::debug!(method = %seen.method, path = %seen.path, host = %seen.host, "request");

    let mode = echo.mode.get();
    let keeps_body = (echo.grpc && grpc::is_grpc(&request)) || websocket::is_upgrade(&request);
    if mode != Mode::Refuse && !keeps_body {
        drain(request.body_mut()).await;
    }
    match mode {
        Mode::Normal => {}
        Mode::Status(status) => return Ok(empty(status)),
        Mode::Delay(delay) => tokio::time::sleep(delay).await,
        Mode::Refuse => return Err(reset(&conn).await),
    }

    if conn.port == Port::H2c && request.version() != Version::HTTP_2 && !asks_h2c_upgrade(&request) {
        return Ok(text(StatusCode::BAD_REQUEST, "Expected h2c request"));
    }
    if echo.grpc && grpc::is_grpc(&request) {
        return Ok(grpc::handle(&echo, &conn, request).await);
    }
    if websocket::is_upgrade(&request) {
        return Ok(websocket::accept(request));
    }

    let path = request.uri().path();
    let query = request.uri().query();
    if path == "/health" {
        return Ok(text(StatusCode::OK, "OK"));
    }
    if let Err(message) = delay_from_query(query).await {
        return Ok(text(StatusCode::BAD_REQUEST, &message));
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return Ok(match code.parse::<u16>().ok().and_then(|c| StatusCode::from_u16(c).ok()) {
            Some(status) => empty(status),
            None => text(StatusCode::BAD_REQUEST, "invalid status code"),
        });
    }
    if path.starts_with("/retry/") || path == "/retry" {
        match echo.retries.attempt(query) {
            Err(message) => return Ok(text(StatusCode::BAD_REQUEST, &message)),
            Ok(Attempt::Fail { delay, status }) => {
                tokio::time::sleep(delay).await;
                return match status {
                    Some(status) => Ok(empty(status)),
                    None => Err(reset(&conn).await),
                };
            }
            Ok(Attempt::Succeed) => {}
        }
    }
    Ok(echo_answer(&echo, &conn, &seen, &request))
}

/// The JSON echo, with the response headers the request asked for.
fn echo_answer<B>(echo: &Echo, conn: &ConnInfo, seen: &SeenRequest, request: &Request<B>) -> Response<Body> {
    let assertions =
        RequestAssertions::new(seen, request.version(), &echo.identity, conn.local_port, conn.tls.as_ref());
    let json = match serde_json::to_vec(&assertions) {
        Ok(json) => json,
        Err(error) => return text(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(json)).boxed());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    for (name, value) in echo_set_headers(request.headers()) {
        headers.append(name, value);
    }
    response
}

/// Reads and drops the request body (up to `MAX_DRAIN`), as Go's server
/// does after a handler: a socket closed with unread data sends an RST, which
/// would make the gateway lose the answer.
async fn drain(body: &mut Incoming) {
    let mut read = 0;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, Bytes::len);
        if read > MAX_DRAIN {
            break;
        }
    }
}

/// Waits for the `delay` query parameter, if any.
async fn delay_from_query(query: Option<&str>) -> Result<(), String> {
    if let Some(delay) = query_param(query, "delay") {
        let delay = parse_go_duration(&delay).map_err(|e| e.to_string())?;
        tokio::time::sleep(delay).await;
    }
    Ok(())
}

fn asks_h2c_upgrade<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get_all(header::UPGRADE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("h2c"))))
}

async fn reset(conn: &ConnInfo) -> Aborted {
    conn.abort.abort();
    tokio::time::sleep(ABORT_LINGER).await;
    Aborted
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Empty::new().boxed());
    *response.status_mut() = status;
    response
}

pub fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

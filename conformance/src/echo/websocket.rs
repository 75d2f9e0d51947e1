//! WebSocket echo: any request that asks for a WebSocket upgrade (upstream
//! uses `/ws`) gets one that sends every text and binary frame back.

use futures::{SinkExt, StreamExt};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Message, Role};
use tokio_tungstenite::WebSocketStream;

use super::http::{empty, text, Body};

pub fn is_upgrade<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// Answers the upgrade with 101 and echoes frames on the upgraded connection.
pub fn accept(mut request: Request<Incoming>) -> Response<Body> {
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let Ok(accept_key) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) else {
        return text(StatusCode::BAD_REQUEST, "invalid Sec-WebSocket-Key");
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                if let Err(error) = echo_frames(socket).await {
                    tracing::debug!(%error, "websocket ended with an error");
                }
            }
            Err(error) => tracing::debug!(%error, "websocket upgrade failed"),
        }
    });
    let mut response = empty(StatusCode::SWITCHING_PROTOCOLS);
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept_key);
    response
}

async fn echo_frames<S>(mut socket: WebSocketStream<S>) -> Result<(), tokio_tungstenite::tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(message) = socket.next().await {
        match message? {
            message @ (Message::Text(_) | Message::Binary(_)) => socket.send(message).await?,
            // tungstenite queues the pong and the close reply itself; flushing
            // sends them, and the stream ends once the close handshake is done.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => {
                socket.flush().await?
            }
        }
    }
    Ok(())
}

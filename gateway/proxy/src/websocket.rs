//! HTTP/1.1 Upgrade (WebSocket) relay.
//!
//! Pingora 0.9.1 proxies upgrades itself, but its h1 duplex loop can take
//! the end of the (empty) pre-upgrade request body, when it is dequeued
//! after the backend's 101, as the end of the upgraded stream, and closes
//! the tunnel right after the handshake (a race seen on loopback about half
//! of the time). Weir therefore relays upgrades itself: hyper speaks to the
//! backend, and the downstream side uses Pingora's own upgraded-body mode
//! (writing the 101 switches the session to pass-through).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use pingora_error::{Error, ErrorType, OrErr, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::errors::ProxyError;

const RELAY_BUFFER: usize = 16 * 1024;
/// Bound for a non-101 answer to an upgrade request.
const MAX_REFUSAL_BODY: usize = 64 * 1024;

/// Sends the upgrade request to `endpoint` and relays both directions until
/// either side closes. Errors before anything was written downstream carry
/// the [`ProxyError`] to answer with.
pub async fn relay(
    session: &mut Session,
    up: &RequestHeader,
    endpoint: SocketAddr,
    connect_timeout: Duration,
    response_timeout: Option<Duration>,
) -> std::result::Result<u16, ProxyError> {
    let tcp = match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(endpoint))
        .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(_)) | Err(_) => return Err(ProxyError::ConnectFailure),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|_| ProxyError::ConnectFailure)?;
    tokio::spawn(conn.with_upgrades());

    let request = to_hyper(up).ok_or(ProxyError::BadRequest)?;
    let sent = sender.send_request(request);
    let mut response = match response_timeout {
        Some(limit) => tokio::time::timeout(limit, sent)
            .await
            .map_err(|_| ProxyError::UpstreamTimeout)?,
        None => sent.await,
    }
    .map_err(|_| ProxyError::UpstreamReset)?;

    let status = response.status().as_u16();
    let mut header =
        ResponseHeader::build(status, None).map_err(|_| ProxyError::UpstreamProtocol)?;
    for (name, value) in response.headers() {
        header
            .append_header(name.clone(), value.clone())
            .map_err(|_| ProxyError::UpstreamProtocol)?;
    }
    if status != 101 {
        // The backend refused the upgrade: pass its answer through.
        let body = response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let body = body.slice(..body.len().min(MAX_REFUSAL_BODY));
        header
            .insert_header(http::header::CONTENT_LENGTH, body.len().to_string())
            .map_err(|_| ProxyError::Internal)?;
        let _ = write_all(session, header, body).await;
        return Ok(status);
    }
    let upgraded = hyper::upgrade::on(&mut response)
        .await
        .map_err(|_| ProxyError::UpstreamProtocol)?;
    if session
        .write_response_header(Box::new(header), false)
        .await
        .is_err()
    {
        return Ok(status);
    }
    if let Err(e) = pump(session, TokioIo::new(upgraded)).await {
        log::debug!("upgraded connection to {endpoint} ended: {e}");
    }
    Ok(status)
}

async fn write_all(session: &mut Session, header: ResponseHeader, body: Bytes) -> Result<()> {
    let empty = body.is_empty();
    session
        .write_response_header(Box::new(header), empty)
        .await?;
    if !empty {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Copies bytes both ways until one side closes.
async fn pump<S>(session: &mut Session, mut backend: S) -> Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; RELAY_BUFFER];
    loop {
        tokio::select! {
            from_client = session.as_downstream_mut().read_request_body() => {
                match from_client? {
                    Some(bytes) => backend.write_all(&bytes).await.or_err(ErrorType::WriteError, "to backend")?,
                    None => break,
                }
            }
            from_backend = backend.read(&mut buf) => {
                let n = from_backend.or_err(ErrorType::ReadError, "from backend")?;
                if n == 0 {
                    break;
                }
                session.write_response_body(Some(Bytes::copy_from_slice(&buf[..n])), false).await?;
            }
        }
    }
    let _ = backend.shutdown().await;
    session.write_response_body(None, true).await.or_else(|e| {
        log::debug!("closing the upgraded downstream: {e}");
        Ok::<(), Box<Error>>(())
    })
}

fn to_hyper(up: &RequestHeader) -> Option<http::Request<Empty<Bytes>>> {
    let target = up.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut builder = http::Request::builder()
        .method(up.method.clone())
        .uri(target);
    for (name, value) in up.headers.iter() {
        builder = builder.header(name, value);
    }
    builder.body(Empty::new()).ok()
}

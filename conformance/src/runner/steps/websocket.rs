//! The `websocket` step: open a WebSocket through the gateway and expect every
//! frame back unchanged (retried until it works or the time limit passes).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::runner::case::{WebsocketStep, WsFrame};
use crate::runner::context::CaseCtx;

async fn exchange_once(addr: SocketAddr, host: &str, s: &WebsocketStep) -> Result<(), String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let url = format!("ws://{host}{}", s.path);
    let mut req = url.as_str().into_client_request().map_err(|e| format!("request {url}: {e}"))?;
    if let Some(o) = &s.origin {
        let v = o.parse().map_err(|e| format!("origin: {e}"))?;
        req.headers_mut().insert("Origin", v);
    }
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await.map_err(|e| format!("websocket handshake: {e}"))?;
    for f in &s.exchange {
        let msg = match f {
            WsFrame::Text(t) => Message::text(t.clone()),
            WsFrame::Binary(b) => Message::binary(b.clone()),
        };
        ws.send(msg.clone()).await.map_err(|e| format!("send: {e}"))?;
        loop {
            let got = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .map_err(|_| "no frame back within 5s".to_string())?
                .ok_or("connection closed")?
                .map_err(|e| format!("receive: {e}"))?;
            if got.is_ping() || got.is_pong() {
                continue;
            }
            if got != msg {
                return Err(format!("sent {msg:?}, got back {got:?}"));
            }
            break;
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

pub async fn run(ctx: &mut CaseCtx, s: &WebsocketStep) -> Result<(), String> {
    let (ip, port) = ctx.gateway_target(&s.gateway, "http", s.port).await?;
    let addr = SocketAddr::new(ip, port);
    let host = s.host.clone().unwrap_or_else(|| if port == 80 { ip.to_string() } else { addr.to_string() });
    let start = Instant::now();
    let limit = ctx.shared.limits.requests;
    loop {
        match exchange_once(addr, &host, s).await {
            Ok(()) => return Ok(()),
            Err(e) if start.elapsed() >= limit => return Err(format!("websocket {}: not within {limit:?}: {e}", s.path)),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

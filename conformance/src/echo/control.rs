//! The control API (CONTRACTS.md): `GET /requests`, `POST /mode`,
//! `GET /health` on a port of its own that gateway traffic never reaches.
//! Also `GET /mode` and `DELETE /requests` (forgets the recorded requests).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::http::{text, Body};
use super::mode::{Mode, ModeRequest};
use super::Echo;

/// A mode request is a few dozen bytes.
const MAX_BODY: usize = 64 * 1024;

pub async fn serve_control(listener: TcpListener, echo: Arc<Echo>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "control accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let echo = echo.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(echo.clone(), request));
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "control connection ended with an error");
            }
        });
    }
}

async fn handle(echo: Arc<Echo>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = request.method().clone();
    Ok(match (method, request.uri().path()) {
        (Method::GET, "/health") => text(StatusCode::OK, "OK"),
        (Method::GET, "/requests") => json(StatusCode::OK, &echo.requests.snapshot()),
        (Method::DELETE, "/requests") => {
            echo.requests.clear();
            json(StatusCode::OK, &echo.requests.snapshot())
        }
        (Method::GET, "/mode") => json(StatusCode::OK, &ModeRequest::from(echo.mode.get())),
        (Method::POST, "/mode") => match read_mode(request).await {
            Ok(mode) => {
                tracing::info!(?mode, "mode changed");
                echo.mode.set(mode);
                json(StatusCode::OK, &ModeRequest::from(mode))
            }
            Err(message) => text(StatusCode::BAD_REQUEST, &message),
        },
        (_, "/health" | "/requests" | "/mode") => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    })
}

async fn read_mode(request: Request<Incoming>) -> Result<Mode, String> {
    let body = Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading body: {e}"))?
        .to_bytes();
    let request: ModeRequest = serde_json::from_slice(&body).map_err(|e| format!("invalid mode: {e}"))?;
    Mode::try_from(request).map_err(|e| e.to_string())
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
            *response.status_mut() = status;
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

//! Accept loops for the HTTP data-plane ports: each connection is served by
//! hyper (HTTP/1.1 and HTTP/2 detected from the first bytes), over TLS when
//! the port has a certificate.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::conn::{self, ConnAbort, ConnInfo, Port};
use super::mode::Mode;
use super::tls::TlsAssertions;
use super::{http, Echo};

/// Back-off after a failed `accept` (for example, out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

pub async fn serve_http(listener: TcpListener, echo: Arc<Echo>, port: Port, tls: Option<TlsAcceptor>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if echo.mode.get() == Mode::Refuse {
            conn::reset(stream);
            continue;
        }
        let echo = echo.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(error) = serve_connection(stream, echo, port, tls).await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    echo: Arc<Echo>,
    port: Port,
    tls: Option<TlsAcceptor>,
) -> anyhow::Result<()> {
    let _ = stream.set_nodelay(true);
    let local_port = stream.local_addr()?.port();
    let (stream, abort) = ConnAbort::attach(stream)?;
    match tls {
        None => {
            let info = ConnInfo { port, local_port, tls: None, abort };
            serve_hyper(stream, echo, Arc::new(info)).await
        }
        Some(acceptor) => {
            let stream = acceptor.accept(stream).await?;
            let tls = TlsAssertions::of(stream.get_ref().1);
            let info = ConnInfo { port, local_port, tls: Some(tls), abort };
            serve_hyper(stream, echo, Arc::new(info)).await
        }
    }
}

async fn serve_hyper<IO>(io: IO, echo: Arc<Echo>, info: Arc<ConnInfo>) -> anyhow::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service_info = info.clone();
    let service = service_fn(move |request| http::handle(echo.clone(), service_info.clone(), request));
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::select! {
        result = connection => result.map_err(|error| anyhow::anyhow!(error)),
        // A handler reset the connection: dropping it closes the socket with
        // SO_LINGER 0, which sends the RST.
        () = info.abort.aborted() => Ok(()),
    }
}

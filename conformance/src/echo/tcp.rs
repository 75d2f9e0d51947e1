//! The TCP echo server (FORMAT.md "A TCP backend"): a welcome line, then
//! line commands `TEST`, `IS_TLS` and `PING`, in clear or over TLS.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::mode::Mode;
use super::tls::TlsAssertions;
use super::{conn, Echo};

pub const WELCOME: &str = "Gateway API Test TCP Server\n";

/// A command line longer than this ends the session.
const MAX_LINE: usize = 4096;

#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub tcp: u16,
    pub tls: Option<u16>,
}

/// The `TEST` answer.
#[derive(Debug, Serialize)]
struct TestAnswer<'a> {
    namespace: &'a str,
    ingress: &'a str,
    service: &'a str,
    pod: &'a str,
    tcpport: String,
    tlsport: String,
    #[serde(rename = "isTLS")]
    is_tls: bool,
    tls: TcpTls<'a>,
}

#[derive(Debug, Serialize)]
struct TcpTls<'a> {
    version: &'a str,
    #[serde(rename = "serverName")]
    server_name: &'a str,
    #[serde(rename = "negotiatedProtocol")]
    negotiated_protocol: &'a str,
    curves: &'a str,
    #[serde(rename = "cipherSuite")]
    cipher_suite: &'a str,
}

pub async fn serve_tcp(listener: TcpListener, echo: Arc<Echo>, tls: Option<TlsAcceptor>, ports: Ports) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
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
            if let Err(error) = serve_connection(stream, echo, tls, ports).await {
                tracing::debug!(%error, "tcp session ended with an error");
            }
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    echo: Arc<Echo>,
    tls: Option<TlsAcceptor>,
    ports: Ports,
) -> std::io::Result<()> {
    match tls {
        None => session(stream, &echo, None, ports).await,
        Some(acceptor) => {
            let stream = acceptor.accept(stream).await?;
            let assertions = TlsAssertions::of(stream.get_ref().1);
            session(stream, &echo, Some(assertions), ports).await
        }
    }
}

async fn session<S>(stream: S, echo: &Echo, tls: Option<TlsAssertions>, ports: Ports) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    stream.write_all(WELCOME.as_bytes()).await?;
    stream.flush().await?;
    let mut line = String::new();
    loop {
        line.clear();
        let read = (&mut stream).take(MAX_LINE as u64).read_line(&mut line).await?;
        if read == 0 {
            return Ok(());
        }
        if let Mode::Delay(delay) = echo.mode.get() {
            tokio::time::sleep(delay).await;
        }
        let answer = match line.trim() {
            "TEST" => test_answer(echo, tls.as_ref(), ports)?,
            "IS_TLS" => tls.is_some().to_string(),
            "PING" => "PONG".to_string(),
            "" => continue,
            other => other.to_string(),
        };
        stream.write_all(answer.as_bytes()).await?;
        stream.write_all(b"\n").await?;
        stream.flush().await?;
    }
}

fn test_answer(echo: &Echo, tls: Option<&TlsAssertions>, ports: Ports) -> std::io::Result<String> {
    let identity = &echo.identity;
    let none = TlsAssertions::default();
    let t = tls.unwrap_or(&none);
    let answer = TestAnswer {
        namespace: &identity.namespace,
        ingress: &identity.ingress,
        service: &identity.service,
        pod: &identity.pod,
        tcpport: ports.tcp.to_string(),
        tlsport: ports.tls.map(|p| p.to_string()).unwrap_or_default(),
        is_tls: tls.is_some(),
        tls: TcpTls {
            version: &t.version,
            server_name: &t.server_name,
            negotiated_protocol: &t.negotiated_protocol,
            curves: &t.curve,
            cipher_suite: &t.cipher_suite,
        },
    };
    serde_json::to_string(&answer).map_err(std::io::Error::other)
}

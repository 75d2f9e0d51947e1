//! TCP echo server mode.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::{config, loopback, start, tls_connect, Pki, NAMESPACE, POD, SERVER_NAME};

async fn line<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut BufReader<S>) -> String {
    let mut line = String::new();
    stream.read_line(&mut line).await.unwrap();
    line
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut BufReader<S>, command: &str) -> String {
    stream.get_mut().write_all(format!("{command}\n").as_bytes()).await.unwrap();
    line(stream).await.trim_end().to_string()
}

fn tcp_config(pki: Option<&Pki>) -> crate::echo::Config {
    crate::echo::Config { tcp: true, tls: pki.map(|p| (loopback(), p.files(false))), ..config() }
}

#[tokio::test]
async fn welcome_test_is_tls_ping() {
    let backend = start(tcp_config(None)).await;
    let mut stream = BufReader::new(TcpStream::connect(backend.http).await.unwrap());
    assert_eq!(line(&mut stream).await, "Gateway API Test TCP Server\n");
    let test: serde_json::Value = serde_json::from_str(&command(&mut stream, "TEST").await).unwrap();
    assert_eq!(test["namespace"], NAMESPACE);
    assert_eq!(test["pod"], POD);
    assert_eq!(test["isTLS"], false);
    assert_eq!(test["tcpport"], backend.http.port().to_string());
    assert_eq!(command(&mut stream, "IS_TLS").await, "false");
    assert_eq!(command(&mut stream, "PING").await, "PONG");
}

#[tokio::test]
async fn tls_variant_reports_server_name() {
    let pki = Pki::new();
    let backend = start(tcp_config(Some(&pki))).await;
    let tls_port = backend.tls.unwrap();
    let stream = tls_connect(tls_port, pki.client_config(&[], false)).await.unwrap();
    let mut stream = BufReader::new(stream);
    assert_eq!(line(&mut stream).await, "Gateway API Test TCP Server\n");
    let test: serde_json::Value = serde_json::from_str(&command(&mut stream, "TEST").await).unwrap();
    assert_eq!(test["isTLS"], true);
    assert_eq!(test["tlsport"], tls_port.port().to_string());
    assert_eq!(test["tls"]["serverName"], SERVER_NAME);
    assert_eq!(test["tls"]["version"], "TLSv1.3");
    assert_eq!(command(&mut stream, "IS_TLS").await, "true");
}

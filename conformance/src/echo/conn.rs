//! One accepted data-plane connection: what the handlers know about it, and
//! how a handler resets it (the `/retry/` failure without `responseCode`, and
//! the `refuse` mode).

use std::io;
use std::sync::Mutex;

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;

use super::tls::TlsAssertions;

/// Which listener a connection arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// HTTP/1.1, plus HTTP/2 prior knowledge (gRPC backends are reached that way).
    Http,
    /// Cleartext HTTP/2 only; plain HTTP/1 is answered 400.
    H2c,
    /// HTTPS, h2 or http/1.1 by ALPN.
    Tls,
}

pub struct ConnInfo {
    pub port: Port,
    pub local_port: u16,
    pub tls: Option<TlsAssertions>,
    pub abort: ConnAbort,
}

/// Resets a connection from inside a request handler.
///
/// The handler cannot reach the socket (hyper owns it), so a second handle on
/// the same socket is kept: `abort` sets `SO_LINGER 0` through it, and the
/// connection task, woken by `aborted`, drops the connection — the close then
/// sends a TCP RST instead of a FIN, with no HTTP response.
pub struct ConnAbort {
    socket: Mutex<Option<TcpSocket>>,
    notify: Notify,
}

impl ConnAbort {
    pub fn attach(stream: TcpStream) -> io::Result<(TcpStream, ConnAbort)> {
        let std_stream = stream.into_std()?;
        let handle = std_stream.try_clone()?;
        let stream = TcpStream::from_std(std_stream)?;
        let abort = ConnAbort {
            socket: Mutex::new(Some(TcpSocket::from_std_stream(handle))),
            notify: Notify::new(),
        };
        Ok((stream, abort))
    }

    pub fn abort(&self) {
        let socket = self.socket.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(socket) = socket {
            if let Err(error) = socket.set_zero_linger() {
                tracing::warn!(%error, "cannot set SO_LINGER 0; the connection closes with a FIN");
            }
        }
        self.notify.notify_one();
    }

    /// Resolves once `abort` was called.
    pub async fn aborted(&self) {
        self.notify.notified().await
    }
}

/// Resets a freshly accepted connection (the `refuse` mode).
pub fn reset(stream: TcpStream) {
    if let Err(error) = stream.set_zero_linger() {
        tracing::warn!(%error, "cannot set SO_LINGER 0");
    }
    drop(stream);
}
